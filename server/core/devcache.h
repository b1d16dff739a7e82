/* devcache.h - devices' rows, shared by all threads: struct fota_device by id
 * for the device channel (activation, the owner key of a push) and the RPC,
 * so that a device read since its last write costs no store round trip.
 *
 * A row answers while the catalog generation (a device created or deleted,
 * its key generation) and the device's own generation (every write of its
 * row but presence, every write of its commands) are the ones read before
 * it (store.h). Presence moves neither: the presence fields of a cached row
 * (last_active, online) are as of its read, so callers that need them ask
 * the store. Memory: about 264 bytes per device held plus free ways, at most
 * FOTA_DEVCACHE_DEVICES x 264 bytes (33 MiB); a device takes an entry only
 * when one of these paths reads it. */
#ifndef FOTA_DEVCACHE_H
#define FOTA_DEVCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define FOTA_DEVCACHE_DEVICES (1u << 17)   /* 131,072: a fleet of 100,000 */

struct fota_devcache;

/* A cache holding at most about max_devices rows. Allocates or aborts. */
struct fota_devcache *fota_devcache_new(size_t max_devices);
/* NULL-safe. */
void fota_devcache_free(struct fota_devcache *dc);

/* Device id's row (presence fields as of its read): the cache, and on a miss
 * the store's device_get, whose row it keeps. dc NULL: the store only. 0 or
 * device_get's error. Any thread. */
int fota_devcache_get(struct fota_devcache *dc, struct fota_store *st, int64_t id,
                      struct fota_device *out);

/* The cache alone: 0 with *out filled (as fota_devcache_get would), or
 * FOTA_EAGAIN when the store must be asked (dc NULL: always). Any thread. */
int fota_devcache_peek(struct fota_devcache *dc, const struct fota_store *st, int64_t id,
                       struct fota_device *out);

/* What a device's derived keys need (keys.h): its key generation, from any
 * row of it read under the current catalog generation (the device's own
 * generation moves with its commands, which leave its keys as they are),
 * else as fota_devcache_get. 0 or device_get's error. */
int fota_devcache_key_generation(struct fota_devcache *dc, struct fota_store *st, int64_t id,
                                 int *key_generation);

/* A device's product (a device never changes product), from any row of
 * it read under the current catalog generation (its own generation moves
 * with its commands and reports, which leave its product and its existence
 * as they are: a delete moves the catalog's), else as fota_devcache_get.
 * What a download's key check needs. 0 or device_get's error. */
int fota_devcache_product(struct fota_devcache *dc, struct fota_store *st, int64_t id,
                          int64_t *product_id);

/* The same from the cache alone (no store: a loop's question): 0, or
 * FOTA_EAGAIN when no row of the device read under the catalog generation
 * is held. */
int fota_devcache_product_peek(struct fota_devcache *dc, const struct fota_store *st, int64_t id,
                               int64_t *product_id);

/* Entries held and bytes allocated (tests, docs). */
void fota_devcache_stats(struct fota_devcache *dc, size_t *entries, size_t *bytes);

#endif
