/* relcache.h - releases by product and version, shared by all threads, for
 * the paths that read one release per device event: a D7 report's slot, an
 * RPC's sys_upgrade, a rollout's health set-up. A release answers while the
 * catalog generation (releases, their files, which one is current) is the one
 * read before it (store.h). Its files' download counts are as of that read:
 * the ledgers move no generation, so callers that show them ask the store.
 * Memory: about 10 KiB per release held, at most FOTA_RELCACHE_RELEASES. */
#ifndef FOTA_RELCACHE_H
#define FOTA_RELCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define FOTA_RELCACHE_RELEASES 64

struct fota_relcache;

/* A cache holding at most about max_releases releases. Allocates or aborts. */
struct fota_relcache *fota_relcache_new(size_t max_releases);
/* NULL-safe. */
void fota_relcache_free(struct fota_relcache *rc);

/* Release version of product_id (download counts as of its read): the
 * cache, and on a miss the store's rom_get, whose row it keeps. rc NULL: the
 * store only. 0 or rom_get's error. Any thread. */
int fota_relcache_get(struct fota_relcache *rc, struct fota_store *st, int64_t product_id,
                      const char *version, struct fota_rom *out);

/* Entries held and bytes allocated (tests). */
void fota_relcache_stats(struct fota_relcache *rc, size_t *entries, size_t *bytes);

#endif
