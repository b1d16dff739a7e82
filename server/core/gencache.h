/* gencache.h - a bounded table of fixed-size values tagged with the store's
 * generations, shared by every thread: the engine of the key, device and
 * release caches (keycache.h, devcache.h, relcache.h).
 *
 * Shards by hash, each behind its own mutex; each shard is set-associative
 * (FOTA_GENCACHE_WAYS ways) and doubles its sets when a row finds its set
 * full, up to the capacity given at creation, so memory follows the rows in
 * use and never passes the cap. An entry carries two tags, the generations
 * read before the row was (store.h): tag 0 is a generation that only grows
 * (the catalog's), tag 1 a second one of the caller's (a device's). It
 * answers while the tags the caller names equal the current ones. A negative
 * entry (the store has no such row) also has an expiry, never makes a shard
 * grow and never pushes out a positive one: a flood of unknown keys costs a
 * fixed amount of memory. */
#ifndef FOTA_GENCACHE_H
#define FOTA_GENCACHE_H

#include <stddef.h>
#include <stdint.h>

#define FOTA_GENCACHE_WAYS 16

struct fota_gencache;

/* The results of fota_gencache_get. */
enum {
    FOTA_GENCACHE_MISS = 0,     /* not cached, or no longer valid: ask the store */
    FOTA_GENCACHE_HIT = 1,      /* the value was copied out */
    FOTA_GENCACHE_ABSENT = 2    /* a negative entry: the store has no such row */
};

/* A table of keys of key_size bytes and values of val_size bytes, split in
 * shards (a power of two), holding at most about max_entries (rounded up to
 * shards x ways x a power of two). Allocates or aborts; free with
 * fota_gencache_free (NULL-safe). */
struct fota_gencache *fota_gencache_new(size_t key_size, size_t val_size, unsigned shards,
                                        size_t max_entries);
void fota_gencache_free(struct fota_gencache *c);

/* Looks key up (hash: a well-mixed 64-bit hash of it). An entry answers when
 * tags[i] equals its tag i for every bit i of mask (bit 0: tag 0, bit 1:
 * tag 1) and, if negative, while now_ms is before its expiry. HIT copies the
 * value into val (val_size bytes). Any thread. */
int fota_gencache_get(struct fota_gencache *c, const void *key, uint64_t hash,
                      const uint64_t tags[2], unsigned mask, int64_t now_ms, void *val);

/* Keeps key's value (val_size bytes) read under tags, or with val NULL a
 * negative entry that answers until expires_ms. An entry of the same key
 * read under newer tags stays as it is. now_ms tells which negative entries
 * have expired. Any thread. */
void fota_gencache_put(struct fota_gencache *c, const void *key, uint64_t hash,
                       const uint64_t tags[2], const void *val, int64_t now_ms,
                       int64_t expires_ms);

/* Entries held (positive and negative) and bytes of the shards' tables. */
void fota_gencache_stats(struct fota_gencache *c, size_t *entries, size_t *bytes);

/* A 64-bit mix (splitmix64's finaliser), for hashes of integers. */
static inline uint64_t fota_gencache_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

#endif
