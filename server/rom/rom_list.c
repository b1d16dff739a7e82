/* rom_list.c - GET /v1/device/rom/ without action=download_rom: the
 * releases of the key's product (an admin key names it with product_id=)
 * and its recommended_rom_version, in Espressif's shape; ?is_format_simple=
 * true gives version, recommended and life_cycle only. Runs on every loop
 * (the route is FOTA_ROUTE_ANY_LOOP), like the download beside it. */
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "rom_int.h"

void fota_rom_list(struct fota_req *r)
{
    struct fota_rom_ctx *ctx = r->ud;
    struct fota_store *st = ctx->srv->store;
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
    int e = st->ops->product_get(st, pid, &p);
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
