/* fotasim_pool.c - sectors shared by content between simulated flashes:
 * once a device wrote a sector that another already holds, both point at
 * one read-only copy (copy-on-write in fotasim_flash.c), so a fleet that
 * downloaded the same image keeps it once. */
#include <stdlib.h>
#include <string.h>

#include "fotasim.h"

#define SEC FOTADEV_SECTOR

/* Hash of a sector from one 8-byte word in every 64 bytes (multiply-
 * xorshift): equal sectors are confirmed with memcmp, so the hash only has
 * to spread distinct ones, and image sectors differ nearly everywhere. */
static uint64_t sector_hash(const uint8_t *p)
{
    uint64_t h = 0x9E3779B97F4A7C15ull, w;
    uint32_t i;
    for (i = 0; i < SEC; i += 64) {
        memcpy(&w, p + i + ((i >> 6) & 7u) * 8, 8);   /* a different word of each line */
        h = (h ^ w) * 0x100000001B3ull;
        h ^= h >> 29;
    }
    h ^= h >> 33;                         /* the pool indexes by the low bits */
    h *= 0xFF51AFD7ED558CCDull;
    return h ^ (h >> 29);
}

void fotasim_pool_init(struct fotasim_pool *p)
{
    memset(p, 0, sizeof(*p));
}

void fotasim_pool_cleanup(struct fotasim_pool *p)
{
    size_t i;
    for (i = 0; i < p->nmemo; i++)
        free(p->memo[i].secs);
    for (i = 0; i < p->ncrc_memo; i++)
        free(p->crc_memo[i].secs);
    for (i = 0; i < p->cap; i++)
        free(p->slot[i]);
    free(p->slot);
    memset(p, 0, sizeof(*p));
}

static int pool_grow(struct fotasim_pool *p)
{
    size_t ncap = p->cap ? p->cap * 2 : 1024, i, j;
    uint8_t **ns = calloc(ncap, sizeof(*ns));
    if (!ns)
        return FOTA_ENOMEM;
    for (i = 0; i < p->cap; i++) {
        if (!p->slot[i])
            continue;
        for (j = (size_t)sector_hash(p->slot[i]) & (ncap - 1); ns[j]; j = (j + 1) & (ncap - 1))
            ;
        ns[j] = p->slot[i];
    }
    free(p->slot);
    p->slot = ns;
    p->cap = ncap;
    return 0;
}

int fotasim_pool_adopt(struct fotasim_pool *p, struct fotasim_flash *f, uint32_t first, uint32_t n)
{
    uint32_t s;
    size_t j;

    for (s = first; s < first + n && s < f->nsec; s++) {
        uint8_t *d = f->sec[s];
        if (!f->owned[s] || !d)
            continue;
        if (p->used * 2 >= p->cap && pool_grow(p) < 0)
            return FOTA_ENOMEM;
        for (j = (size_t)sector_hash(d) & (p->cap - 1); p->slot[j]; j = (j + 1) & (p->cap - 1))
            if (memcmp(p->slot[j], d, SEC) == 0)
                break;
        if (p->slot[j]) {                 /* an identical sector is pooled: share it */
            free(d);
            f->sec[s] = p->slot[j];
            p->shared++;
        } else {                          /* the pool takes this one */
            p->slot[j] = d;
            p->used++;
        }
        f->owned[s] = 0;
    }
    return 0;
}
