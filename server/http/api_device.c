/* api_device.c - device-facing REST endpoints with Espressif's shapes:
 * GET /v1/ping/, GET /v1/device/ (the key's device; POST ?method=PUT
 * renames), GET /v1/device/rom/ (the product's releases and
 * recommended_rom_version; ?is_format_simple=true; the action=download_rom
 * branch is api_rpc.c's fota_api_rom_download). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "log.h"

/* Defined in api_rpc.c (the part the device module takes over). */
void fota_api_rom_download(struct fota_req *r);

static void ping(struct fota_req *r)
{
    json_t *j = json_object();
    json_object_set_new(j, "epoch", json_integer(fota_server_now()));
    fota_reply_json(r, 200, j);
}

/* The device an owner/master key belongs to; replies on failure. */
static int key_device(struct fota_req *r, struct fota_key *key, struct fota_device *d)
{
    if (fota_req_auth(r, key))
        return -1;
    if (key->kind != FOTA_KEY_OWNER && key->kind != FOTA_KEY_MASTER) {
        fota_reply_error(r, 403, "this needs a device key (owner or master)");
        return -1;
    }
    return fota_api_device_load(r, key->device_id, d) ? -1 : 0;
}

static void device_self(struct fota_req *r)
{
    struct fota_key key;
    struct fota_device d;
    char cur[FOTA_VERSION_MAX];

    if (key_device(r, &key, &d))
        return;
    fota_api_current_version(r->srv, d.product_id, cur, sizeof(cur));
    json_t *dv = fota_json_device(&d);
    json_object_set_new(dv, "latest_rom_version", json_string(cur));
    json_t *j = json_object();
    json_object_set_new(j, "device", dv);
    fota_reply_json(r, 200, j);
}

static void device_rename(struct fota_req *r)
{
    struct fota_key key;
    struct fota_device d;
    json_t *body, *dev, *name;

    if (key_device(r, &key, &d))
        return;
    body = fota_req_json_body(r);
    if (!body)
        return;
    dev = json_object_get(body, "device");
    name = json_object_get(dev ? dev : body, "name");
    if (!json_is_string(name) || json_string_length(name) == 0 ||
        json_string_length(name) >= sizeof(d.name) ||
        memchr(json_string_value(name), '\0', json_string_length(name))) {
        fota_reply_error(r, 422, "device.name must be a string of 1..%zu characters",
                         sizeof(d.name) - 1);
        json_decref(body);
        return;
    }
    memcpy(d.name, json_string_value(name), json_string_length(name) + 1);
    json_decref(body);
    int e = r->srv->store->ops->device_update(r->srv->store, &d, FOTA_DEV_F_NAME);
    if (e) {
        fota_reply_error(r, 500, "store error %s", fota_errname(e));
        return;
    }
    fota_reply_json(r, 200, NULL);
}

static void device_rom(struct fota_req *r)
{
    struct fota_server *srv = r->srv;
    struct fota_key key;
    struct fota_product p;
    struct fota_rom *list = NULL;
    size_t n = 0;
    int64_t pid;

    const char *action = fota_req_query(r, "action");
    if (action && strcmp(action, "download_rom") == 0) {
        fota_api_rom_download(r);
        return;
    }
    if (fota_req_auth(r, &key))
        return;
    pid = key.product_id;
    if (key.kind == FOTA_KEY_ADMIN) {
        const char *q = fota_req_query(r, "product_id");
        pid = q ? strtoll(q, NULL, 10) : 0;
        if (pid <= 0) {
            fota_reply_error(r, 400, "the admin key needs product_id=");
            return;
        }
    }
    if (fota_api_product_load(r, pid, &p))
        return;
    fota_hub_publish(srv, FOTA_HUB_DOWNLOADS_SYNC, NULL);
    int e = srv->store->ops->rom_list(srv->store, pid, &list, &n);
    if (e) {
        fota_reply_error(r, 500, "store error %s", fota_errname(e));
        return;
    }
    const char *simple = fota_req_query(r, "is_format_simple");
    int is_simple = simple && strcmp(simple, "true") == 0;
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        if (is_simple)
            json_array_append_new(arr, json_pack("{s:s, s:b, s:s}", "life_cycle", "release",
                                                 "recommended", list[i].current != 0,
                                                 "version", list[i].version));
        else
            json_array_append_new(arr, fota_json_rom(&list[i]));
    }
    free(list);
    json_t *j = json_object();
    json_object_set_new(j, "productRoms", arr);
    json_object_set_new(j, "recommended_rom_version", json_string(p.current_version));
    fota_reply_json(r, 200, j);
}

void fota_api_device_routes(struct fota_server *srv)
{
    fota_http_route(srv, FOTA_M_GET | FOTA_M_POST, "/v1/ping/", ping, NULL);
    fota_http_route(srv, FOTA_M_GET, "/v1/device/", device_self, NULL);
    fota_http_route(srv, FOTA_M_PUT, "/v1/device/", device_rename, NULL);
    /* ROM downloads and listings run on every loop (store, blobs and the
     * download hook are thread-safe): the fleet-scale hot path. */
    fota_http_route_flags(srv, FOTA_M_GET, "/v1/device/rom/", device_rom, NULL,
                          FOTA_ROUTE_ANY_LOOP);
}
