/* relcache.c - the shared release cache (relcache.h): a gencache table of 4
 * shards keyed by product id and version, tag 0 the catalog generation. */
#include "relcache.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "fota_str.h"
#include "gencache.h"
#include "xmalloc.h"

#define RELCACHE_SHARDS 4

struct rel_key {
    int64_t product_id;
    char version[FOTA_VERSION_MAX];   /* NUL-padded: keys compare as bytes */
};

struct fota_relcache {
    struct fota_gencache *c;
};

struct fota_relcache *fota_relcache_new(size_t max_releases)
{
    struct fota_relcache *rc = fota_xmalloc(sizeof *rc);
    rc->c = fota_gencache_new(sizeof(struct rel_key), sizeof(struct fota_rom), RELCACHE_SHARDS,
                              max_releases);
    return rc;
}

void fota_relcache_free(struct fota_relcache *rc)
{
    if (!rc)
        return;
    fota_gencache_free(rc->c);
    free(rc);
}

int fota_relcache_get(struct fota_relcache *rc, struct fota_store *st, int64_t product_id,
                      const char *version, struct fota_rom *out)
{
    struct rel_key k;
    size_t len = strlen(version);
    if (!rc || len >= sizeof k.version)
        return st->ops->rom_get(st, product_id, version, out);
    memset(&k, 0, sizeof k);
    k.product_id = product_id;
    memcpy(k.version, version, len);
    uint64_t h = fota_gencache_mix((uint64_t)product_id << 32 ^
                                   fota_str_hash(FOTA_STR_HASH_SEED, version));
    uint64_t tags[2] = { fota_store_generation(st), 0 };   /* before the row (store.h) */
    int64_t now = fota_clock_mono_ms();
    if (fota_gencache_get(rc->c, &k, h, tags, 1, now, out) == FOTA_GENCACHE_HIT)
        return 0;
    int r = st->ops->rom_get(st, product_id, version, out);
    if (r == 0)
        fota_gencache_put(rc->c, &k, h, tags, out, now, 0);
    return r;
}

void fota_relcache_stats(struct fota_relcache *rc, size_t *entries, size_t *bytes)
{
    fota_gencache_stats(rc->c, entries, bytes);
}
