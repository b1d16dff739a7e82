/* arduino_module.c - the arduino module (arduino.h): its state (one part
 * per loop, made at start for every loop the http module created), the
 * device endpoints on every loop and the fleet-settings route on the main
 * loop. */
#include <stdlib.h>

#include <event2/event.h>

#include "arduino_int.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "store_exec.h"
#include "xmalloc.h"

/* The API is about to read what downloads wrote: the batched downloads land
 * first, and off the loops the commands completed downloads delivered. */
static int64_t arduino_on_sync(void *ud, const void *event)
{
    (void)event;
    fota_arduino_served_flush_any(ud);
    if (!fota_loop_current())
        fota_arduino_taken_sync(ud);
    return 0;
}

/* After the loops ended: the last check-ins and downloads are written, then freed. */
static void arduino_stop(struct fota_server *srv, void *state)
{
    struct fota_arduino_ctx *ctx = state;
    if (!ctx)
        return;
    fota_hub_unsubscribe(srv, FOTA_HUB_DOWNLOADS_SYNC, arduino_on_sync, ctx);
    for (int i = 0; i < ctx->nloops; i++) {
        struct fota_arduino_loop *al = ctx->loops[i];
        if (al->flush_ev)
            event_free(al->flush_ev);
        fota_arduino_cache_free(al);
        fota_arduino_blobs_close(al);
        free(al->visit);
        free(al);
    }
    fota_arduino_batch_destroy(ctx);
    fota_arduino_taken_destroy(ctx);
    free(ctx);
}

/* A worker loop's own thread, before it serves: its batch timer. */
static void arduino_loop_start(struct fota_server *srv, void *state, struct fota_loop *loop)
{
    struct fota_arduino_ctx *ctx = state;
    int i = fota_loop_index(loop);
    (void)srv;
    if (i > 0 && i < ctx->nloops &&
        fota_arduino_batch_timer(ctx->loops[i], fota_loop_base(loop)) != 0)
        FOTA_ERROR("mod=arduino no check-in timer loop=%d", i);
}

static int arduino_start(struct fota_server *srv, void **state)
{
    struct fota_arduino_ctx *ctx = fota_xcalloc(1, sizeof(*ctx));
    int rc;

    ctx->srv = srv;
    if (srv->exec)
        ctx->lane = fota_store_lane_new(srv->exec, "arduino_batch");
    fota_arduino_batch_init(ctx);
    fota_arduino_taken_init(ctx);
    for (int i = 0; i < srv->nloops; i++) {
        ctx->loops[i] = fota_xcalloc(1, sizeof(struct fota_arduino_loop));
        ctx->loops[i]->ctx = ctx;
        ctx->loops[i]->visit = fota_xmalloc(sizeof(struct fota_arduino_visit));
        ctx->nloops = i + 1;
    }
    if (fota_arduino_batch_timer(ctx->loops[0], srv->base) != 0) {
        arduino_stop(srv, ctx);
        return FOTA_ENOMEM;
    }
    /* Check-ins and downloads run on every loop (blobs and the per-loop
     * part are safe there; what the caches cannot answer runs in a store
     * job): a fleet's polling is the hot path. */
    rc = fota_http_route_flags(srv, FOTA_M_GET, "/v1/arduino/*/*", fota_arduino_serve, ctx,
                               FOTA_ROUTE_ANY_LOOP);
    if (rc == 0)
        rc = fota_http_route_flags(srv, FOTA_M_GET, "/v1/arduino/*/d/*/*", fota_arduino_serve,
                                   ctx, FOTA_ROUTE_ANY_LOOP);
    /* The check-ins of devices that run their target, answered from the
     * head (http.h, fota_http_quick): the same answer, a fraction of the work. */
    if (rc == 0)
        rc = fota_http_quick(srv, "/v1/arduino/*/*", fota_arduino_quick, ctx);
    if (rc == 0)
        rc = fota_http_quick(srv, "/v1/arduino/*/d/*/*", fota_arduino_quick, ctx);
    if (rc == 0)
        rc = fota_http_route_flags(srv, FOTA_M_GET | FOTA_M_PUT, "/v1/products/*/arduino",
                                   fota_arduino_settings, ctx, FOTA_ROUTE_STORE);
    if (rc == 0)
        rc = fota_hub_subscribe(srv, FOTA_HUB_DOWNLOADS_SYNC, arduino_on_sync, ctx);
    if (rc != 0) {
        FOTA_ERROR("mod=arduino cannot register error=%s", fota_errname(rc));
        arduino_stop(srv, ctx);
        return rc;
    }
    *state = ctx;
    return 0;
}

const struct fota_module fota_arduino_module = {
    .name = "arduino",
    .start = arduino_start,
    .loop_start = arduino_loop_start,
    .stop = arduino_stop,
};
