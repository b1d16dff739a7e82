/* api_device.c - device-facing REST endpoints with Espressif's shapes:
 * GET /v1/ping/, GET /v1/device/ (the key's device), GET /v1/device/rom/
 * (the product's releases, recommended_rom_version; ?is_format_simple=true). */
#include <string.h>

#include "http.h"
#include "log.h"

static void ping(struct fota_req *r)
{
    json_t *j = json_object();
    json_object_set_new(j, "epoch", json_integer(fota_server_now()));
    fota_reply_json(r, 200, j);
}

void fota_api_device_routes(struct fota_server *srv)
{
    fota_http_route(srv, FOTA_M_GET | FOTA_M_POST, "/v1/ping/", ping, NULL);
}
