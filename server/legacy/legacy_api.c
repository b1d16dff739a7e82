/* legacy_api.c - GET /v1/legacy/transfers/: the port-5555 transfers the legacy module
 * recorded (peer, section, bytes, result, duration, mode), newest first, plus the running
 * listener's counts. Admin key only; reads the store, which serialises internally, and the
 * listener's atomic counters, so it runs as a store job (FOTA_ROUTE_STORE). */
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "legacy_api.h"

#define LIST_DEFAULT 50
#define LIST_MAX     1000

/* ?limit=N: 1..LIST_MAX, default LIST_DEFAULT; -1 if malformed or out of range. */
static long list_limit(const struct fota_req *r)
{
    const char *s = fota_req_query(r, "limit");
    char *end;
    long v;

    if (!s)
        return LIST_DEFAULT;
    if (!s[0] || strspn(s, "0123456789") != strlen(s) || strlen(s) > 6)
        return -1;
    v = strtol(s, &end, 10);
    return v >= 1 && v <= LIST_MAX ? v : -1;
}

static json_t *transfer_json(const struct fota_transfer *t)
{
    return fota_http_json_pack("{s:I, s:s, s:i, s:I, s:s, s:I, s:s, s:I}", "id", (json_int_t)t->id,
                     "peer", t->peer, "section", t->section, "bytes", (json_int_t)t->bytes,
                     "result", t->result, "duration_ms", (json_int_t)t->duration_ms, "mode",
                     t->mode, "created", (json_int_t)t->created);
}

static void transfers_list(struct fota_req *r)
{
    const struct fota_legacy *lg = r->ud;
    struct fota_store *st = r->srv->store;
    struct fota_transfer *list = NULL;
    struct fota_key key;
    unsigned active = 0, queued = 0;
    uint64_t served_ok = 0;
    size_t n = 0;
    json_t *arr, *j;
    long limit;
    int e;

    if (fota_req_admin(r, &key))
        return;
    limit = list_limit(r);
    if (limit < 0) {
        fota_reply_error(r, 400, "limit must be a number 1..%d", LIST_MAX);
        return;
    }
    e = st->ops->transfer_list(st, (size_t)limit, &list, &n);
    if (e) {
        fota_reply_status(r, e, "legacy transfers");
        return;
    }
    arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, transfer_json(&list[i]));
    free(list);
    if (lg)
        fota_legacy_stats(lg, &active, &queued, &served_ok);
    j = json_object();
    json_object_set_new(j, "transfers", arr);
    json_object_set_new(j, "legacy", fota_http_json_pack("{s:b, s:I, s:I, s:I}", "enabled", lg != NULL,
                                               "active", (json_int_t)active, "queued",
                                               (json_int_t)queued, "served_ok",
                                               (json_int_t)served_ok));
    fota_reply_json(r, 200, j);
}

int fota_legacy_api_routes(struct fota_server *srv, const struct fota_legacy *lg)
{
    /* the handler only reads through lg; the route table keeps a plain void * */
    return fota_http_route_flags(srv, FOTA_M_GET, "/v1/legacy/transfers/", transfers_list,
                                 (void *)(uintptr_t)lg, FOTA_ROUTE_STORE);
}
