/* rom_metrics.c - the ROM download's metrics (docs/metrics.md): bodies in
 * flight, body bytes written to sockets, and downloads by how they ended,
 * all with endpoint="rom". Each loop counts in its own part of the module
 * (struct fota_rom_loop, written by that loop only: no locked instruction
 * on the download path); a scrape sums the parts. */
#include "rom_int.h"

static const struct fota_metric_desc flight_desc = FOTA_METRIC_DOWNLOADS_IN_FLIGHT(0, NULL);
static const struct fota_metric_desc bytes_desc = FOTA_METRIC_DOWNLOAD_BYTES(0, NULL);
static const struct fota_metric_desc done_desc = {
    "fota_downloads_total",
    "Firmware downloads that ended, by endpoint and result: complete (every body byte written "
    "to the socket) or aborted (the connection went first).",
    FOTA_METRIC_COUNTER, 0, NULL
};

/* The sum over the loops of the metric at offset off in struct fota_rom_loop. */
static int64_t sum(const struct fota_rom_ctx *ctx, size_t off)
{
    uint64_t v = 0;
    for (int i = 0; i < ctx->nloops; i++)
        v += fota_metric_get((const struct fota_metric *)(const void *)((const char *)ctx->loops[i] +
                                                                         off));
    return (int64_t)v;
}

static void flight_collect(void *ud, struct fota_metric_out *o)
{
    fota_metric_put(o, "endpoint=\"rom\"", sum(ud, offsetof(struct fota_rom_loop, m_flight)));
}

static void bytes_collect(void *ud, struct fota_metric_out *o)
{
    fota_metric_put(o, "endpoint=\"rom\"", sum(ud, offsetof(struct fota_rom_loop, m_bytes)));
}

static void done_collect(void *ud, struct fota_metric_out *o)
{
    fota_metric_put(o, "endpoint=\"rom\",result=\"complete\"",
                    sum(ud, offsetof(struct fota_rom_loop, m_complete)));
    fota_metric_put(o, "endpoint=\"rom\",result=\"aborted\"",
                    sum(ud, offsetof(struct fota_rom_loop, m_aborted)));
}

int fota_rom_metrics_register(struct fota_rom_ctx *ctx)
{
    int rc = fota_metric_register_fn(ctx->srv, &flight_desc, flight_collect, ctx);
    if (rc == 0)
        rc = fota_metric_register_fn(ctx->srv, &bytes_desc, bytes_collect, ctx);
    return rc < 0 ? rc : fota_metric_register_fn(ctx->srv, &done_desc, done_collect, ctx);
}
