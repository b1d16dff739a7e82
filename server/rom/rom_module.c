/* rom_module.c - the rom module (rom.h): its state (one part per loop,
 * made at start for every loop the http module created, and the progress
 * table), its route /v1/device/rom/ on every loop with the quick answer to
 * a stock HEAD, and its subscription to DOWNLOADS_SYNC. Stop runs after the worker loops ended and before the
 * http module closes the connections: bodies still in flight forget the
 * module then. */
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "log.h"
#include "rom_int.h"
#include "xmalloc.h"

/* One route for Espressif's device path: the download, or the listing. */
static void rom_route(struct fota_req *r)
{
    const char *action = fota_req_query(r, "action");
    if (action && strcmp(action, "download_rom") == 0)
        fota_rom_download(r);
    else
        fota_rom_list(r);
}

static int64_t rom_on_sync(void *ud, const void *event)
{
    (void)event;
    fota_rom_ledger_sync(ud);
    return 0;
}

static void rom_stop(struct fota_server *srv, void *state)
{
    struct fota_rom_ctx *ctx = state;
    if (!ctx)
        return;
    fota_hub_unsubscribe(srv, FOTA_HUB_DOWNLOADS_SYNC, rom_on_sync, ctx);
    for (int i = 0; i < ctx->nloops; i++) {
        struct fota_rom_loop *rl = ctx->loops[i];
        fota_rom_ledger_cleanup(rl);
        fota_rom_body_detach_all(rl);
        fota_rom_blobs_close(rl);
        free(rl);
    }
    fota_rom_progress_cleanup(&ctx->progress);
    free(ctx);
}

static int rom_start(struct fota_server *srv, void **state)
{
    struct fota_rom_ctx *ctx = fota_xcalloc(1, sizeof(*ctx));
    ctx->srv = srv;
    fota_rom_progress_init(&ctx->progress);
    for (int i = 0; i < srv->nloops; i++) {
        struct fota_rom_loop *rl = fota_xcalloc(1, sizeof(*rl));
        rl->ctx = ctx;
        rl->loop = srv->loops[i];
        ctx->loops[i] = rl;
        ctx->nloops = i + 1;
        if (fota_rom_ledger_init(rl) != 0) {
            rom_stop(srv, ctx);
            return FOTA_ENOMEM;
        }
    }
    /* Downloads and listings run on every loop (store, blobs and the per-loop
     * state are safe there): the fleet-scale hot path. */
    int rc = fota_http_route_flags(srv, FOTA_M_GET, "/v1/device/rom/", rom_route, ctx,
                                   FOTA_ROUTE_ANY_LOOP);
    if (rc == 0)
        rc = fota_http_quick_head(srv, "/v1/device/rom/", fota_rom_quick_head, ctx);
    if (rc == 0)
        rc = fota_rom_metrics_register(ctx);
    if (rc == 0)
        rc = fota_hub_subscribe(srv, FOTA_HUB_DOWNLOADS_SYNC, rom_on_sync, ctx);
    if (rc != 0) {
        FOTA_ERROR("mod=rom cannot register error=%s", fota_errname(rc));
        rom_stop(srv, ctx);
        return rc;
    }
    *state = ctx;
    return 0;
}

const struct fota_module fota_rom_module = {
    .name = "rom",
    .start = rom_start,
    .stop = rom_stop,
};
