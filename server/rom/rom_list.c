/* rom_list.c - GET /v1/device/rom/ without action=download_rom: the
 * releases of the key's product (an admin key names it with product_id=)
 * and its recommended_rom_version, in Espressif's shape; ?is_format_simple=
 * true gives version, recommended and life_cycle only. The route runs on
 * every loop (FOTA_ROUTE_ANY_LOOP), like the download beside it; the
 * listing itself is a store job (on a store thread, or inline for SQLite)
 * that replies; its continuation releases the request. */
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "rom_int.h"
#include "store_exec.h"

static void rom_list_reply(struct fota_store *st, struct fota_req *r)
{
    struct fota_rom_ctx *ctx = r->ud;
    struct fota_key key;
    struct fota_product p;
    struct fota_rom *list = NULL;
    size_t n = 0;

    if (fota_req_auth(r, &key))
        return;
    int64_t pid = key.product_id;
    if (key.kind == FOTA_KEY_ADMIN) {
        const char *q = fota_req_query(r, "product_id");
        pid = q ? strtoll(q, NULL, 10) : 0;
        if (pid <= 0) {
            fota_reply_error(r, 400, "the admin key needs product_id=");
            return;
        }
    }
    int e = st->ops->product_head(st, pid, &p);
    if (e) {
        fota_reply_status(r, e, "product %lld", (long long)pid);
        return;
    }
    fota_rom_ledger_sync(ctx);   /* the download counts are exact */
    e = st->ops->rom_list(st, pid, &list, &n);
    if (e) {
        fota_reply_status(r, e, "releases of product %lld", (long long)pid);
        return;
    }
    const char *simple = fota_req_query(r, "is_format_simple");
    int is_simple = simple && strcmp(simple, "true") == 0;
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        if (is_simple)
            json_array_append_new(arr, fota_http_json_pack("{s:s, s:b, s:s}", "life_cycle", "release",
                                                 "recommended", list[i].current != 0,
                                                 "version", list[i].version));
        else
            json_array_append_new(arr, fota_rom_json(&list[i]));
    }
    free(list);
    json_t *j = json_object();
    json_object_set_new(j, "productRoms", arr);
    json_object_set_new(j, "recommended_rom_version", json_string(p.current_version));
    fota_reply_json(r, 200, j);
}

static void rom_list_job(struct fota_store *st, void *arg)
{
    struct fota_req *r = arg;
    rom_list_reply(st, r);
    if (!r->replied)
        fota_reply_error(r, 500, "internal error: no reply");
}

/* On r's loop, after the reply (never inline: the handler may still read r). */
static void rom_list_done(void *arg, int cancelled)
{
    (void)cancelled;
    fota_req_release(arg);
}

void fota_rom_list(struct fota_req *r)
{
    struct fota_server *srv = ((struct fota_rom_ctx *)r->ud)->srv;
    if (!srv->exec) {
        rom_list_reply(srv->store, r);
        return;
    }
    fota_req_defer(r);
    if (fota_store_submit(srv->exec, NULL, r->loop, rom_list_job, rom_list_done, r) != 0) {
        r->deferred = 0;
        fota_reply_error(r, 503, "store busy: too many requests wait for the store");
    }
}
