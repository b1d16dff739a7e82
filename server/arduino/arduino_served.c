/* arduino_served.c - completed downloads of arduino files, batched for all
 * loops (struct fota_arduino_served_batch, arduino_int.h): each one's
 * ledger row and, for a device, the upgrade now in flight, written in one
 * transaction (arduino_device_served) instead of two per download. A
 * device's row moves its generation when it joins, so the loops' caches do
 * not answer for it, and whatever reads a device's tracking writes the
 * batch first when the device is in it: the next check-in sees its
 * download. A crash loses the rows of the last second, like the ROM ledger:
 * the download counts and a tracking that makes the device download again. */
#include "arduino_int.h"
#include "log.h"

/* Under b->mu. */
static void write_rows(struct fota_arduino_ctx *ctx)
{
    struct fota_arduino_served_batch *b = &ctx->served;
    struct fota_store *st = ctx->srv->store;
    size_t n = __atomic_load_n(&b->n, __ATOMIC_RELAXED);
    int rc;

    if (n == 0)
        return;
    rc = st->ops->arduino_device_served(st, b->rows, n);
    if (rc < 0 && rc != FOTA_ENOSPC) /* a full disk: the store says so once a second */
        FOTA_WARN("arduino downloads not stored rows=%zu error=%s", n, fota_errname(rc));
    __atomic_store_n(&b->n, 0, __ATOMIC_RELAXED);
}

void fota_arduino_served_add(struct fota_arduino_ctx *ctx, const struct fota_arduino_download *row)
{
    struct fota_arduino_served_batch *b = &ctx->served;
    size_t n;

    pthread_mutex_lock(&b->mu);
    n = __atomic_load_n(&b->n, __ATOMIC_RELAXED);
    if (n == FOTA_ARDUINO_SERVED_MAX) {
        write_rows(ctx);
        n = 0;
    }
    b->rows[n] = *row;
    __atomic_store_n(&b->n, n + 1, __ATOMIC_RELAXED);
    /* after the row is in: a cache that still sees the old generation
     * answers as if the download completed after it */
    if (row->device_id > 0)
        fota_store_device_touch(ctx->srv->store, row->device_id);
    pthread_mutex_unlock(&b->mu);
}

void fota_arduino_served_flush(struct fota_arduino_ctx *ctx)
{
    if (!ctx || __atomic_load_n(&ctx->served.n, __ATOMIC_RELAXED) == 0)
        return;
    pthread_mutex_lock(&ctx->served.mu);
    write_rows(ctx);
    pthread_mutex_unlock(&ctx->served.mu);
}

int fota_arduino_served_sync(struct fota_arduino_ctx *ctx, int64_t device_id)
{
    struct fota_arduino_served_batch *b;
    int found = 0;

    if (!ctx || device_id <= 0 || __atomic_load_n(&ctx->served.n, __ATOMIC_RELAXED) == 0)
        return 0;
    b = &ctx->served;
    pthread_mutex_lock(&b->mu);
    for (size_t i = 0; i < b->n && !found; i++)
        found = b->rows[i].device_id == device_id;
    if (found)
        write_rows(ctx);
    pthread_mutex_unlock(&b->mu);
    return found;
}
