/* api_fleet.c - a fleet of thousands through the API (docs/api.md,
 * "Devices", "Tags", "Commands"): the device lists in pages, sorted,
 * searched and filtered (GET /v1/products/ID/devices/, and
 * GET /v1/devices/ across products), devices' tags (one device's,
 * /v1/devices/ID/tags/, and many at once by a selection,
 * /v1/products/ID/tags/), and the cancel of a queued command
 * (DELETE /v1/devices/ID/commands/CID/). Selections are read by
 * api_select.c, one parser for a query and a filter. Admin key, except the
 * cancel (the device's own keys may too). Main loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_select.h"
#include "clock.h"
#include "log.h"
#include "xmalloc.h"

#define LIMIT_MAX 1000                 /* devices in one page */

json_t *fota_api_device_tags(struct fota_server *srv, int64_t device_id)
{
    char(*tags)[FOTA_TAG_MAX] = NULL;
    size_t n = 0;
    json_t *a = json_array();
    if (srv->store->ops->device_tags(srv->store, device_id, &tags, &n) == 0)
        for (size_t i = 0; i < n; i++)
            json_array_append_new(a, json_string(tags[i]));
    free(tags);
    return a;
}

/* ---- the lists */

static int list_param(const char *name)
{
    static const char *const own[] = { "limit", "cursor", "sort", "total", "method", NULL };
    for (int i = 0; own[i]; i++)
        if (strcmp(name, own[i]) == 0)
            return 1;
    return 0;
}

static int all_list_param(const char *name)
{
    return list_param(name) || strcmp(name, "product_id") == 0;
}

/* A positive decimal id, or -1. */
static int64_t parse_id(const char *s)
{
    char *end;
    long long v = s && *s >= '0' && *s <= '9' ? strtoll(s, &end, 10) : -1;
    return v > 0 && *end == '\0' ? v : -1;
}

/* GET a device list: the selection of the query within product (0: every
 * product), in pages. latest: the product's current version (NULL: each
 * device's own product's). */
static void device_list(struct fota_req *r, int64_t product, const char *latest,
                        int (*skip)(const char *))
{
    struct fota_store *st = r->srv->store;
    struct fota_api_select s;
    struct fota_device_query q;
    struct fota_device *rows = NULL;
    char reason[160], cursor[FOTA_API_CURSOR_MAX], sortname[24];
    int64_t now = fota_clock_wall_s(), total = -1;
    size_t n = 0, limit = 0;
    int want_total, rc;

    memset(&q, 0, sizeof q);
    if (fota_api_select_query(&r->query, now, skip, &s, reason, sizeof reason) != 0) {
        fota_reply_error(r, 400, "%s", reason);
        goto out;
    }
    q.sel = s.sel;
    q.sel.product_id = product;
    if (fota_api_sort_parse(fota_req_query(r, "sort"), &q.sort, &q.desc) != 0) {
        fota_reply_error(r, 400, "sort must be id, name, version, last_active or created, "
                                 "with a leading - for descending");
        goto out;
    }
    const char *v = fota_req_query(r, "limit");
    if (v) {
        int64_t l = parse_id(v);
        if (l < 1 || l > LIMIT_MAX) {
            fota_reply_error(r, 400, "limit must be 1..%d", LIMIT_MAX);
            goto out;
        }
        limit = (size_t)l;
    }
    fota_api_sort_name(q.sort, q.desc, sortname, sizeof sortname);
    v = fota_req_query(r, "cursor");
    if (v && fota_api_cursor_decode(v, q.sort, q.desc, &q.after) != 0) {
        fota_reply_error(r, 400, "cursor is not a cursor of this list in the order sort=%s "
                                 "(take next_cursor of the page before, with the same sort)",
                         sortname);
        goto out;
    }
    want_total = !q.after.id;
    v = fota_req_query(r, "total");
    if (v && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)) {
        want_total = 1;
    } else if (v && (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)) {
        want_total = 0;
    } else if (v) {
        fota_reply_error(r, 400, "total must be true or false");
        goto out;
    }
    q.limit = limit ? limit + 1 : 0;   /* one more: is there a next page? */
    rc = st->ops->device_page(st, &q, now, &rows, &n, want_total ? &total : NULL);
    if (rc != 0) {
        fota_reply_status(r, rc, "devices");
        goto out;
    }
    json_t *next = json_null();
    if (limit && n > limit) {
        struct fota_device_key k;
        n = limit;
        fota_device_key_of(&rows[n - 1], q.sort, &k);
        if (fota_api_cursor_encode(q.sort, q.desc, &k, cursor, sizeof cursor) > 0)
            next = json_string(cursor);
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, fota_api_device_view(r->srv, &rows[i], latest));
    fota_reply_json(r, 200, fota_http_json_pack("{s:o, s:o, s:o, s:s}", "devices", arr,
                                                "next_cursor", next, "total",
                                                total >= 0 ? json_integer(total) : json_null(),
                                                "sort", sortname));
out:
    free(rows);
    fota_api_select_cleanup(&s);
}

static void handle_product_devices(struct fota_req *r)
{
    struct fota_product p;
    if (fota_api_admin_product(r, &p))
        return;
    device_list(r, p.id, p.current_version, list_param);
}

static void handle_all_devices(struct fota_req *r)
{
    struct fota_key key;
    struct fota_product p;
    int64_t pid = 0;
    if (fota_req_admin(r, &key))
        return;
    const char *v = fota_req_query(r, "product_id");
    if (v) {
        pid = parse_id(v);
        if (pid < 0) {
            fota_reply_error(r, 400, "product_id must be a product id");
            return;
        }
        if (fota_api_product_load(r, pid, &p))
            return;
    }
    device_list(r, pid, pid ? p.current_version : NULL, all_list_param);
}

/* ---- tags */

/* The tags of a body member: a list of valid tags (at most
 * FOTA_TAGS_PER_DEVICE), borrowed from v into tags. 0, or a reply was sent. */
static int body_tags(struct fota_req *r, const char *key, const json_t *v, const char **tags,
                     size_t *n)
{
    size_t i;
    json_t *e;
    *n = 0;
    if (!json_is_array(v) || json_array_size(v) > FOTA_TAGS_PER_DEVICE) {
        fota_reply_error(r, 400, "%s must be a list of at most %d tags", key,
                         FOTA_TAGS_PER_DEVICE);
        return -1;
    }
    json_array_foreach(v, i, e) {
        if (!json_is_string(e) || !fota_store_tag_valid(json_string_value(e))) {
            fota_reply_error(r, 422, "%s: \"%.64s\" is not a tag (1..63 of A-Z a-z 0-9 . _ - : =)",
                             key, json_is_string(e) ? json_string_value(e) : "?");
            return -1;
        }
        tags[(*n)++] = json_string_value(e);
    }
    return 0;
}

/* Replies to a failed tag edit. */
static void edit_failed(struct fota_req *r, int rc, const char *what)
{
    if (rc == FOTA_ERANGE)
        fota_reply_error(r, 422, "a device carries at most %d tags", FOTA_TAGS_PER_DEVICE);
    else
        fota_reply_status(r, rc, "%s", what);
}

/* The device of the path (admin key): 0, or a reply was sent. */
static int admin_device(struct fota_req *r, struct fota_device *d)
{
    struct fota_key key;
    if (fota_req_admin(r, &key))
        return -1;
    int64_t id = fota_req_cap_id(r, 0);
    if (id < 0)
        return -1;
    return fota_api_device_load(r, id, d) ? -1 : 0;
}

static void reply_tags(struct fota_req *r, int64_t device_id)
{
    fota_reply_json(r, 200, fota_http_json_pack("{s:I, s:o}", "device_id", (json_int_t)device_id,
                                                "tags", fota_api_device_tags(r->srv, device_id)));
}

static void handle_tags_get(struct fota_req *r)
{
    struct fota_device d;
    if (admin_device(r, &d) == 0)
        reply_tags(r, d.id);
}

/* PUT: exactly these tags; POST: these too. Body {"tags": [...]}. */
static void handle_tags_write(struct fota_req *r)
{
    struct fota_device d;
    const char *tags[FOTA_TAGS_PER_DEVICE];
    size_t n = 0;
    json_t *body = NULL;
    if (admin_device(r, &d) || !(body = fota_req_json_body(r)))
        goto out;
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v) {
        if (strcmp(key, "tags") != 0) {
            fota_reply_error(r, 400, "unknown key \"%.40s\" (tags)", key);
            goto out;
        }
    }
    if (body_tags(r, "tags", json_object_get(body, "tags"), tags, &n) < 0)
        goto out;
    int mode = r->method == FOTA_M_PUT ? FOTA_TAGS_SET : FOTA_TAGS_ADD;
    int rc = r->srv->store->ops->device_tags_edit(r->srv->store, &d.id, 1, mode, tags, n);
    if (rc != 0) {
        edit_failed(r, rc, "device");
        goto out;
    }
    FOTA_INFO("device tags %s dev=%lld tags=%zu", mode == FOTA_TAGS_SET ? "set" : "added",
              (long long)d.id, n);
    reply_tags(r, d.id);
out:
    json_decref(body);
}

/* PUT /v1/devices/ID/tags/TAG adds one, DELETE removes it. */
static void handle_tag_one(struct fota_req *r)
{
    struct fota_device d;
    if (admin_device(r, &d))
        return;
    const char *tag = r->caps[1];
    if (!fota_store_tag_valid(tag)) {
        fota_reply_error(r, 422, "\"%.64s\" is not a tag (1..63 of A-Z a-z 0-9 . _ - : =)", tag);
        return;
    }
    int mode = r->method == FOTA_M_DELETE ? FOTA_TAGS_REMOVE : FOTA_TAGS_ADD;
    int rc = r->srv->store->ops->device_tags_edit(r->srv->store, &d.id, 1, mode, &tag, 1);
    if (rc != 0) {
        edit_failed(r, rc, "device");
        return;
    }
    FOTA_INFO("device tag %s dev=%lld tag=%s", mode == FOTA_TAGS_ADD ? "added" : "removed",
              (long long)d.id, tag);
    reply_tags(r, d.id);
}

static json_t *tag_counts(struct fota_req *r, int64_t product_id)
{
    struct fota_tag_count *t = NULL;
    size_t n = 0;
    json_t *a = json_array();
    int rc = r->srv->store->ops->tag_list(r->srv->store, product_id, &t, &n);
    for (size_t i = 0; rc == 0 && i < n; i++)
        json_array_append_new(a, fota_http_json_pack("{s:s, s:I}", "tag", t[i].tag, "devices",
                                                     (json_int_t)t[i].devices));
    free(t);
    if (rc != 0) {
        json_decref(a);
        fota_reply_status(r, rc, "tags of product %lld", (long long)product_id);
        return NULL;
    }
    return a;
}

static void handle_product_tags(struct fota_req *r)
{
    struct fota_product p;
    if (fota_api_admin_product(r, &p))
        return;
    json_t *a = tag_counts(r, p.id);
    if (a)
        fota_reply_json(r, 200, fota_http_json_pack("{s:I, s:o}", "product_id", (json_int_t)p.id,
                                                    "tags", a));
}

/* The ids of the product's devices a bulk body's filter selects; NULL
 * after a reply. */
static int64_t *bulk_devices(struct fota_req *r, int64_t pid, const json_t *filter, size_t *nids)
{
    struct fota_api_select s;
    struct fota_device_query q;
    struct fota_device *rows = NULL;
    char reason[160];
    size_t n = 0;
    int64_t *ids = NULL;

    *nids = 0;
    if (!json_is_object(filter)) {
        fota_reply_error(r, 400, "filter is required: an object selecting the devices as a "
                                 "list's query does ({} for every device of the product)");
        return NULL;
    }
    if (fota_api_select_json(filter, fota_clock_wall_s(), &s, reason, sizeof reason) != 0) {
        fota_reply_error(r, 400, "%s", reason);
        goto out;
    }
    memset(&q, 0, sizeof q);
    q.sel = s.sel;
    q.sel.product_id = pid;
    int rc = r->srv->store->ops->device_page(r->srv->store, &q, fota_clock_wall_s(), &rows, &n,
                                             NULL);
    if (rc != 0) {
        fota_reply_status(r, rc, "devices of product %lld", (long long)pid);
        goto out;
    }
    ids = fota_xcalloc(n ? n : 1, sizeof *ids);
    for (size_t i = 0; i < n; i++)
        if (fota_api_select_has_id(&s, rows[i].id))
            ids[(*nids)++] = rows[i].id;
out:
    free(rows);
    fota_api_select_cleanup(&s);
    return ids;
}

/* POST /v1/products/ID/tags/ {"filter": {...}, "add": [...], "remove": [...]}:
 * the selected devices of the product lose the tags to remove, then get
 * the tags to add (each step one transaction). */
static void handle_product_tags_edit(struct fota_req *r)
{
    struct fota_product p;
    const char *add[FOTA_TAGS_PER_DEVICE], *del[FOTA_TAGS_PER_DEVICE];
    size_t nadd = 0, ndel = 0, nids = 0;
    int64_t *ids = NULL;
    json_t *body = NULL, *v;
    const char *key;
    int rc = 0;

    if (fota_api_admin_product(r, &p) || !(body = fota_req_json_body(r)))
        goto out;
    json_object_foreach(body, key, v) {
        if (strcmp(key, "filter") != 0 && strcmp(key, "add") != 0 && strcmp(key, "remove") != 0) {
            fota_reply_error(r, 400, "unknown key \"%.40s\" (filter, add, remove)", key);
            goto out;
        }
    }
    if ((v = json_object_get(body, "add")) && body_tags(r, "add", v, add, &nadd) < 0)
        goto out;
    if ((v = json_object_get(body, "remove")) && body_tags(r, "remove", v, del, &ndel) < 0)
        goto out;
    if (nadd + ndel == 0) {
        fota_reply_error(r, 400, "add or remove: the tags to add to or remove from the devices");
        goto out;
    }
    if (!(ids = bulk_devices(r, p.id, json_object_get(body, "filter"), &nids)))
        goto out;
    struct fota_store *st = r->srv->store;
    if (ndel)
        rc = st->ops->device_tags_edit(st, ids, nids, FOTA_TAGS_REMOVE, del, ndel);
    if (rc == 0 && nadd)
        rc = st->ops->device_tags_edit(st, ids, nids, FOTA_TAGS_ADD, add, nadd);
    if (rc != 0) {
        edit_failed(r, rc, "devices");
        goto out;
    }
    FOTA_INFO("device tags edited product=%lld devices=%zu added=%zu removed=%zu",
              (long long)p.id, nids, nadd, ndel);
    json_t *a = tag_counts(r, p.id);
    if (a)
        fota_reply_json(r, 200, fota_http_json_pack("{s:I, s:I, s:o}", "product_id",
                                                    (json_int_t)p.id, "devices",
                                                    (json_int_t)nids, "tags", a));
out:
    free(ids);
    json_decref(body);
}

/* ---- commands */

/* DELETE /v1/devices/ID/commands/CID/: the admin or the device's own keys. */
static void handle_command_cancel(struct fota_req *r)
{
    struct fota_key key;
    struct fota_device d;
    struct fota_command c;
    if (fota_req_auth(r, &key))
        return;
    int64_t id = fota_req_cap_id(r, 0), cid;
    if (id < 0 || (cid = fota_req_cap_id(r, 1)) < 0)
        return;
    if (key.kind != FOTA_KEY_ADMIN &&
        !((key.kind == FOTA_KEY_OWNER || key.kind == FOTA_KEY_MASTER) && key.device_id == id)) {
        fota_reply_error(r, 403, key.kind == FOTA_KEY_OWNER || key.kind == FOTA_KEY_MASTER
                                     ? "this key belongs to another device"
                                     : "this needs the admin key or the device's own key");
        return;
    }
    if (fota_api_device_load(r, id, &d))
        return;
    int rc = r->srv->store->ops->command_cancel(r->srv->store, d.id, cid, NULL, &c);
    if (rc == FOTA_ENOENT) {
        fota_reply_error(r, 404, "device %lld has no command %lld", (long long)d.id,
                         (long long)cid);
        return;
    }
    if (rc == FOTA_EBUSY) {
        json_t *j = fota_api_json_command(&c);
        const char *state = json_string_value(json_object_get(j, "state"));
        fota_reply_json(r, 409, fota_http_json_pack(
            "{s:o, s:o}", "command", j, "message",
            json_sprintf("command %lld is %s: only a queued command can be cancelled",
                         (long long)cid, state ? state : "past queued")));
        fota_store_command_cleanup(&c);
        return;
    }
    if (rc != 0) {
        fota_reply_status(r, rc, "command %lld", (long long)cid);
        return;
    }
    FOTA_INFO("command cancelled dev=%lld cmd=%lld action=%s", (long long)d.id, (long long)cid,
              c.action);
    fota_reply_json(r, 200, fota_http_json_pack("{s:o}", "command", fota_api_json_command(&c)));
    fota_store_command_cleanup(&c);
}

int fota_api_fleet_routes(struct fota_api *api)
{
    static const struct fota_api_route routes[] = {
        { FOTA_M_GET, "/v1/products/*/devices/", handle_product_devices, FOTA_ROUTE_STORE },
        { FOTA_M_GET, "/v1/devices/", handle_all_devices, FOTA_ROUTE_STORE },
        { FOTA_M_GET, "/v1/devices/*/tags/", handle_tags_get, FOTA_ROUTE_STORE },
        { FOTA_M_PUT | FOTA_M_POST, "/v1/devices/*/tags/", handle_tags_write, FOTA_ROUTE_STORE },
        { FOTA_M_PUT | FOTA_M_DELETE, "/v1/devices/*/tags/*", handle_tag_one, FOTA_ROUTE_STORE },
        { FOTA_M_GET, "/v1/products/*/tags/", handle_product_tags, FOTA_ROUTE_STORE },
        { FOTA_M_POST, "/v1/products/*/tags/", handle_product_tags_edit, FOTA_ROUTE_STORE },
        { FOTA_M_DELETE, "/v1/devices/*/commands/*/", handle_command_cancel, FOTA_ROUTE_STORE },
    };
    return fota_api_routes_add(api, routes, sizeof(routes) / sizeof(routes[0]));
}
