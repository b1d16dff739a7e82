/* api_device.c - device-facing REST endpoints with Espressif's shapes:
 * GET /v1/ping/ and GET /v1/device/ (the key's device; POST ?method=PUT
 * renames). GET /v1/device/rom/ is the rom module's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "clock.h"
#include "log.h"

static void handle_ping(struct fota_req *r)
{
    json_t *j = json_object();
    json_object_set_new(j, "epoch", json_integer(fota_clock_wall_s()));
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

static void handle_device_self(struct fota_req *r)
{
    struct fota_key key;
    struct fota_device d;
    char cur[FOTA_VERSION_MAX];

    if (key_device(r, &key, &d))
        return;
    fota_api_current_version(r->srv, d.product_id, cur, sizeof(cur));
    json_t *dv = fota_api_json_device(&d);
    json_object_set_new(dv, "latest_rom_version", json_string(cur));
    json_t *j = json_object();
    json_object_set_new(j, "device", dv);
    fota_reply_json(r, 200, j);
}

static void handle_device_rename(struct fota_req *r)
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
        fota_reply_status(r, e, "device %lld", (long long)d.id);
        return;
    }
    fota_reply_json(r, 200, NULL);
}

int fota_api_device_routes(struct fota_api *api)
{
    static const struct fota_api_route routes[] = {
        { FOTA_M_GET | FOTA_M_POST, "/v1/ping/", handle_ping, FOTA_ROUTE_STORE },
        { FOTA_M_GET, "/v1/device/", handle_device_self, FOTA_ROUTE_STORE },
        { FOTA_M_PUT, "/v1/device/", handle_device_rename, FOTA_ROUTE_STORE },
    };
    return fota_api_routes_add(api, routes, sizeof(routes) / sizeof(routes[0]));
}
