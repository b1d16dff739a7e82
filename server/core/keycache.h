/* keycache.h - the API keys every loop resolves, shared by all threads:
 * struct fota_key by the SHA-256 of the key, so that a device's identify or
 * activation, a download's or a check-in's key and a REST request's
 * Authorization cost no store round trip while the catalog stays as it was.
 *
 * Entries carry the catalog generation read before the store's key_lookup
 * (store.h: keys, devices and their key generations are catalog), so any
 * catalog write (a key created, a device's keys rotated, a device or product
 * deleted) drops every entry at once. An unknown key is kept as such for
 * FOTA_KEYCACHE_UNKNOWN_MS: a flood of made-up keys costs one store query per
 * key per 10 s, in a table that does not grow for them (gencache.h).
 * Memory: about 104 bytes per key held plus the table's free ways, at most
 * FOTA_KEYCACHE_KEYS x 104 bytes (26 MiB) for 100,000 devices' master and
 * owner keys. */
#ifndef FOTA_KEYCACHE_H
#define FOTA_KEYCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define FOTA_KEYCACHE_KEYS       (1u << 18)   /* 262,144: 2 keys per device for 100,000 */
#define FOTA_KEYCACHE_UNKNOWN_MS 10000        /* how long "no such key" is believed */
#define FOTA_KEYCACHE_ADMINS     16           /* admin keys remembered across generations */

struct fota_keycache;

/* A cache holding at most about max_keys keys. Allocates or aborts. */
struct fota_keycache *fota_keycache_new(size_t max_keys);
/* NULL-safe. */
void fota_keycache_free(struct fota_keycache *kc);

/* The cache alone. hash_hex: the key's SHA-256 as 64 lower-case hex
 * (fota_key_hash); gen: the catalog generation the caller read
 * (fota_store_generation). 0 with *out filled, FOTA_ENOENT for a key known
 * not to exist, FOTA_EAGAIN when the store must be asked. */
int fota_keycache_get(struct fota_keycache *kc, uint64_t gen, const char *hash_hex,
                      struct fota_key *out);
/* Keeps the store's answer for hash_hex, read under gen (read BEFORE the
 * store's key_lookup): its row, or k NULL for "no such key". */
void fota_keycache_put(struct fota_keycache *kc, uint64_t gen, const char *hash_hex,
                       const struct fota_key *k);

/* The cache, and on a miss the store's key_lookup, whose answer it keeps (a
 * row; FOTA_ENOENT for 10 s; other errors not at all). kc NULL: the store
 * only. 0, FOTA_ENOENT or the store's error. Any thread. */
int fota_keycache_lookup(struct fota_keycache *kc, struct fota_store *st, const char *hash_hex,
                         struct fota_key *out);

/* Admin keys outlive the catalog generation: a loop that must decide at
 * once (the HTTP gate: may this head's body be an upload?) takes a key that
 * a lookup found to be an admin key as one until a later lookup finds it
 * gone or of another kind. The request's own authentication, a lookup off
 * the loop, still decides; this only lets the body in. The newest
 * FOTA_KEYCACHE_ADMINS are kept. Any thread. */
void fota_keycache_admin_note(struct fota_keycache *kc, const struct fota_key *k);
/* 1 with *out filled when hash_hex is such an admin key, else 0. */
int fota_keycache_admin_seen(struct fota_keycache *kc, const char *hash_hex, struct fota_key *out);

/* Entries held and bytes allocated (tests, docs). */
void fota_keycache_stats(struct fota_keycache *kc, size_t *entries, size_t *bytes);

#endif
