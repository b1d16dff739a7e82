/* devcache.c - the shared device row cache (devcache.h): a gencache table
 * keyed by device id, tag 0 the catalog generation, tag 1 the device's. */
#include "devcache.h"

#include <stdlib.h>

#include "clock.h"
#include "gencache.h"
#include "xmalloc.h"

#define DEVCACHE_SHARDS 16

struct fota_devcache {
    struct fota_gencache *c;
};

struct fota_devcache *fota_devcache_new(size_t max_devices)
{
    struct fota_devcache *dc = fota_xmalloc(sizeof *dc);
    dc->c = fota_gencache_new(sizeof(int64_t), sizeof(struct fota_device), DEVCACHE_SHARDS,
                              max_devices);
    return dc;
}

void fota_devcache_free(struct fota_devcache *dc)
{
    if (!dc)
        return;
    fota_gencache_free(dc->c);
    free(dc);
}

/* From the cache when the tags of mask match, else device_get (kept). */
static int get(struct fota_devcache *dc, struct fota_store *st, int64_t id, unsigned mask,
               struct fota_device *out)
{
    if (!dc)
        return st->ops->device_get(st, id, out);
    /* Both generations before the row (store.h). */
    uint64_t tags[2] = { fota_store_generation(st), fota_store_device_generation(st, id) };
    uint64_t h = fota_gencache_mix((uint64_t)id);
    int64_t now = fota_clock_mono_ms();
    if (fota_gencache_get(dc->c, &id, h, tags, mask, now, out) == FOTA_GENCACHE_HIT)
        return 0;
    int rc = st->ops->device_get(st, id, out);
    if (rc == 0)
        fota_gencache_put(dc->c, &id, h, tags, out, now, 0);
    return rc;
}

int fota_devcache_get(struct fota_devcache *dc, struct fota_store *st, int64_t id,
                      struct fota_device *out)
{
    return get(dc, st, id, 3, out);
}

int fota_devcache_peek(struct fota_devcache *dc, const struct fota_store *st, int64_t id,
                       struct fota_device *out)
{
    if (!dc)
        return FOTA_EAGAIN;
    uint64_t tags[2] = { fota_store_generation(st), fota_store_device_generation(st, id) };
    return fota_gencache_get(dc->c, &id, fota_gencache_mix((uint64_t)id), tags, 3,
                             fota_clock_mono_ms(), out) == FOTA_GENCACHE_HIT
               ? 0
               : FOTA_EAGAIN;
}

int fota_devcache_key_generation(struct fota_devcache *dc, struct fota_store *st, int64_t id,
                                 int *key_generation)
{
    struct fota_device d;
    int rc = get(dc, st, id, 1, &d);
    if (rc == 0)
        *key_generation = d.key_generation;
    return rc;
}

int fota_devcache_product(struct fota_devcache *dc, struct fota_store *st, int64_t id,
                          int64_t *product_id)
{
    struct fota_device d;
    int rc = get(dc, st, id, 1, &d);
    if (rc == 0)
        *product_id = d.product_id;
    return rc;
}

int fota_devcache_product_peek(struct fota_devcache *dc, const struct fota_store *st, int64_t id,
                               int64_t *product_id)
{
    struct fota_device d;
    if (!dc)
        return FOTA_EAGAIN;
    uint64_t tags[2] = { fota_store_generation(st), fota_store_device_generation(st, id) };
    if (fota_gencache_get(dc->c, &id, fota_gencache_mix((uint64_t)id), tags, 1,
                          fota_clock_mono_ms(), &d) != FOTA_GENCACHE_HIT)
        return FOTA_EAGAIN;
    *product_id = d.product_id;
    return 0;
}

void fota_devcache_stats(struct fota_devcache *dc, size_t *entries, size_t *bytes)
{
    fota_gencache_stats(dc->c, entries, bytes);
}
