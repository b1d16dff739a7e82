/* api.c - the api module (api.h): the REST catalog's routes, registered by
 * each file's table, its upload queue, and the lookups its handlers share.
 * The routes that only read and write the store run as store jobs
 * (FOTA_ROUTE_STORE, the hub through fota_hub_publish_any); the live
 * message feed runs on the loop that took its connection; uploads, file
 * downloads and the release delete (the upload queue) on the main loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "fota_str.h"
#include "log.h"
#include "xmalloc.h"

int fota_api_routes_add(struct fota_api *api, const struct fota_api_route *routes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct fota_api_route *rt = &routes[i];
        int rc = fota_http_route_flags(api->srv, rt->methods, rt->pattern, rt->fn, api,
                                       rt->flags);
        if (rc != 0) {
            FOTA_ERROR("mod=api cannot add route path=%s error=%s", rt->pattern,
                       fota_errname(rc));
            return rc;
        }
    }
    return 0;
}

static int product_load(struct fota_req *r, int64_t id, int counted, struct fota_product *out)
{
    struct fota_store *st = r->srv->store;
    int e = counted ? st->ops->product_get(st, id, out) : st->ops->product_head(st, id, out);
    if (e)
        fota_reply_status(r, e, "product %lld", (long long)id);
    return e;
}

int fota_api_product_load(struct fota_req *r, int64_t id, struct fota_product *out)
{
    return product_load(r, id, 0, out);
}

int fota_api_device_load(struct fota_req *r, int64_t id, struct fota_device *out)
{
    struct fota_store *st = r->srv->store;
    int e = st->ops->device_get(st, id, out);
    if (e)
        fota_reply_status(r, e, "device %lld", (long long)id);
    return e;
}

static int admin_product(struct fota_req *r, int counted, struct fota_product *out)
{
    struct fota_key key;
    if (fota_req_admin(r, &key))
        return FOTA_EAUTH;
    int64_t pid = fota_req_cap_id(r, 0);
    if (pid < 0)
        return FOTA_ENOENT;
    return product_load(r, pid, counted, out);
}

int fota_api_admin_product(struct fota_req *r, struct fota_product *out)
{
    return admin_product(r, 0, out);
}

int fota_api_admin_product_counted(struct fota_req *r, struct fota_product *out)
{
    return admin_product(r, 1, out);
}

void fota_api_current_version(struct fota_server *srv, int64_t product_id, char *out, size_t cap)
{
    struct fota_rom rom;
    if (cap)
        out[0] = '\0';
    if (srv->store->ops->rom_current(srv->store, product_id, &rom) == 0)
        fota_str_copy(out, cap, rom.version);
}

int fota_api_utf8_ok(const char *p, size_t len)
{
    if (memchr(p, '\0', len))
        return 0;
    json_t *j = json_stringn(p, len);
    if (!j)
        return 0;
    json_decref(j);
    return 1;
}

int fota_api_filename_ok(const char *s, size_t len)
{
    if (len == 0 || len >= FOTA_NAME_MAX || s[0] == '.')
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

void fota_api_product_key(const struct fota_server *srv, int64_t product_id,
                          char out[FOTA_KEY_BUF])
{
    fota_key_derive(srv->secret, "product", product_id, 0, out);
}

/* ---------------------------------------------------------------- module */

static void api_stop(struct fota_server *srv, void *state)
{
    struct fota_api *api = state;
    (void)srv;
    if (!api)
        return;
    fota_api_roms_shutdown(api);
    free(api);
}

static int api_start(struct fota_server *srv, void **state)
{
    int (*const files[])(struct fota_api *) = {
        fota_api_products_routes, fota_api_roms_routes,     fota_api_devices_routes,
        fota_api_device_routes,   fota_api_messages_routes, fota_api_delete_routes,
        fota_api_fleet_routes,
        fota_api_overview_routes,
    };
    struct fota_api *api = fota_xcalloc(1, sizeof(*api));
    api->srv = srv;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        int rc = files[i](api);
        if (rc != 0) {
            api_stop(srv, api);
            return rc;
        }
    }
    *state = api;
    return 0;
}

const struct fota_module fota_api_module = {
    .name = "api",
    .start = api_start,
    .stop = api_stop,
};
