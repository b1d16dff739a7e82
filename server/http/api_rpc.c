/* api_rpc.c - the seams of the device channel module (server/device/, issue 4)
 * in the REST API: GET/HEAD /v1/device/rom/?action=download_rom goes to
 * srv->rom_download, and GET /v1/device/rpc/ answers 501 until the module
 * installs its own route (server/device/rpc.c: push to the device, wait for
 * its reply, 202 when offline), which it does at start-up. */
#include "http.h"

void fota_api_rom_download(struct fota_req *r);

void fota_api_rom_download(struct fota_req *r)
{
    if (r->srv->rom_download) {
        r->srv->rom_download(r->srv->rom_download_ud, r);
        return;
    }
    fota_reply_error(r, 501, "ROM download is served by the device channel module, "
                             "which is not built in");
}

static void rpc_unavailable(struct fota_req *r)
{
    fota_reply_error(r, 501, "device commands are served by the device channel module, "
                             "which is not built in");
}

void fota_api_rpc_routes(struct fota_server *srv)
{
    fota_http_route(srv, FOTA_M_GET | FOTA_M_POST, "/v1/device/rpc/", rpc_unavailable, NULL);
}
