/* gencache.c - the shared, generation-tagged cache table (gencache.h): shards
 * of set-associative slots, each shard under its own mutex, growing by
 * doubling its sets. A set's hashes lie side by side (two cache lines), so a
 * lookup scans them and touches one slot: the one whose hash matched. */
#include "gencache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

enum { SLOT_EMPTY = 0, SLOT_POSITIVE, SLOT_NEGATIVE };

/* A slot: this head, then the key, then the value (each 8-byte aligned).
 * Its hash is in the shard's hashes[] at the same index. */
struct slot_head {
    uint64_t tag[2];
    int64_t expires;   /* negative entries: monotonic ms */
    uint32_t used;     /* the shard's tick at the last use: the least used goes */
    uint32_t state;    /* SLOT_* */
};

/* Hashes carry their top bit, so 0 marks an empty slot in hashes[]. */
#define HASH_SET (1ULL << 63)

struct shard {
    pthread_mutex_t lock;
    uint64_t *hashes;       /* nsets x FOTA_GENCACHE_WAYS, 0 when empty */
    unsigned char *slots;   /* nsets x FOTA_GENCACHE_WAYS slots */
    size_t nsets;
    size_t entries;
    uint32_t tick;
} __attribute__((aligned(64)));   /* one cache line each: loops on other shards do not share it */

struct fota_gencache {
    size_t key_size, val_size, stride;
    size_t max_sets;        /* per shard, a power of two */
    unsigned nshards, shard_bits;
    struct shard *shards;
};

static size_t round8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

static struct slot_head *slot_at(const struct fota_gencache *c, unsigned char *slots, size_t i)
{
    return (struct slot_head *)(void *)(slots + i * c->stride);
}

static unsigned char *slot_key(struct slot_head *h)
{
    return (unsigned char *)(h + 1);
}

static unsigned char *slot_val(const struct fota_gencache *c, struct slot_head *h)
{
    return slot_key(h) + round8(c->key_size);
}

struct fota_gencache *fota_gencache_new(size_t key_size, size_t val_size, unsigned shards,
                                        size_t max_entries)
{
    struct fota_gencache *c = fota_xcalloc(1, sizeof *c);
    c->key_size = key_size;
    c->val_size = val_size;
    c->stride = sizeof(struct slot_head) + round8(key_size) + round8(val_size);
    c->nshards = 1;
    while (c->nshards < shards)
        c->nshards <<= 1;
    while ((1u << c->shard_bits) < c->nshards)
        c->shard_bits++;
    c->max_sets = 1;
    while (c->max_sets * FOTA_GENCACHE_WAYS * c->nshards < max_entries)
        c->max_sets <<= 1;
    /* aligned_alloc: the shards' cache-line alignment */
    c->shards = aligned_alloc(64, c->nshards * sizeof *c->shards);
    if (!c->shards)
        abort();
    for (unsigned i = 0; i < c->nshards; i++) {
        struct shard *s = &c->shards[i];
        memset(s, 0, sizeof *s);
        pthread_mutex_init(&s->lock, NULL);
        s->nsets = 1;
        s->hashes = fota_xcalloc(FOTA_GENCACHE_WAYS, sizeof *s->hashes);
        s->slots = fota_xcalloc(FOTA_GENCACHE_WAYS, c->stride);
    }
    return c;
}

void fota_gencache_free(struct fota_gencache *c)
{
    if (!c)
        return;
    for (unsigned i = 0; i < c->nshards; i++) {
        pthread_mutex_destroy(&c->shards[i].lock);
        free(c->shards[i].hashes);
        free(c->shards[i].slots);
    }
    free(c->shards);
    free(c);
}

static struct shard *shard_of(struct fota_gencache *c, uint64_t hash)
{
    return &c->shards[hash & (c->nshards - 1)];
}

/* The first slot of hash's set in s. */
static size_t set_of(const struct fota_gencache *c, const struct shard *s, uint64_t hash)
{
    return (size_t)((hash >> c->shard_bits) & (s->nsets - 1)) * FOTA_GENCACHE_WAYS;
}

static struct slot_head *find(struct fota_gencache *c, struct shard *s, const void *key,
                              uint64_t hash)
{
    size_t base = set_of(c, s, hash);
    for (size_t w = 0; w < FOTA_GENCACHE_WAYS; w++) {
        if (s->hashes[base + w] != hash)
            continue;
        struct slot_head *h = slot_at(c, s->slots, base + w);
        if (memcmp(slot_key(h), key, c->key_size) == 0)
            return h;
    }
    return NULL;
}

int fota_gencache_get(struct fota_gencache *c, const void *key, uint64_t hash,
                      const uint64_t tags[2], unsigned mask, int64_t now_ms, void *val)
{
    hash |= HASH_SET;
    struct shard *s = shard_of(c, hash);
    int rc = FOTA_GENCACHE_MISS;
    pthread_mutex_lock(&s->lock);
    struct slot_head *h = find(c, s, key, hash);
    if (h && (!(mask & 1) || h->tag[0] == tags[0]) && (!(mask & 2) || h->tag[1] == tags[1])) {
        if (h->state == SLOT_POSITIVE) {
            memcpy(val, slot_val(c, h), c->val_size);
            h->used = ++s->tick;
            rc = FOTA_GENCACHE_HIT;
        } else if (now_ms < h->expires) {
            rc = FOTA_GENCACHE_ABSENT;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* A slot no lookup can answer from any more: empty, read under an older
 * tag 0 (which only grows), or a negative entry that expired. */
static int is_dead(const struct slot_head *h, const uint64_t tags[2], int64_t now_ms)
{
    return h->state == SLOT_EMPTY || h->tag[0] < tags[0] ||
           (h->state == SLOT_NEGATIVE && h->expires <= now_ms);
}

/* Doubles s's sets; the dead slots stay behind. Each old set splits into two
 * new ones by one more bit of the hash, so every entry finds a way. */
static void grow(struct fota_gencache *c, struct shard *s, const uint64_t tags[2], int64_t now_ms)
{
    size_t nsets = s->nsets * 2;
    uint64_t *hashes = fota_xcalloc(nsets * FOTA_GENCACHE_WAYS, sizeof *hashes);
    unsigned char *slots = fota_xcalloc(nsets * FOTA_GENCACHE_WAYS, c->stride);
    size_t entries = 0;
    for (size_t i = 0; i < s->nsets * FOTA_GENCACHE_WAYS; i++) {
        struct slot_head *h = slot_at(c, s->slots, i);
        if (is_dead(h, tags, now_ms))
            continue;
        uint64_t hash = s->hashes[i];
        size_t base = (size_t)((hash >> c->shard_bits) & (nsets - 1)) * FOTA_GENCACHE_WAYS;
        for (size_t w = 0; w < FOTA_GENCACHE_WAYS; w++) {
            if (hashes[base + w] == 0) {
                hashes[base + w] = hash;
                memcpy(slot_at(c, slots, base + w), h, c->stride);
                entries++;
                break;
            }
        }
    }
    free(s->hashes);
    free(s->slots);
    s->hashes = hashes;
    s->slots = slots;
    s->nsets = nsets;
    s->entries = entries;
}

/* The slot for a new entry in hash's set, or NULL for a negative entry that
 * finds only positive ones. May grow the shard for a positive entry. */
static struct slot_head *victim(struct fota_gencache *c, struct shard *s, uint64_t hash,
                                const uint64_t tags[2], int positive, int64_t now_ms)
{
    for (;;) {
        size_t base = set_of(c, s, hash);
        struct slot_head *lru_neg = NULL, *lru_pos = NULL;
        for (size_t w = 0; w < FOTA_GENCACHE_WAYS; w++) {
            struct slot_head *h = slot_at(c, s->slots, base + w);
            if (is_dead(h, tags, now_ms))
                return h;
            struct slot_head **lru = h->state == SLOT_NEGATIVE ? &lru_neg : &lru_pos;
            if (!*lru || h->used < (*lru)->used)
                *lru = h;
        }
        if (lru_neg || !positive)
            return lru_neg;
        if (s->nsets >= c->max_sets)
            return lru_pos;
        grow(c, s, tags, now_ms);
    }
}

void fota_gencache_put(struct fota_gencache *c, const void *key, uint64_t hash,
                       const uint64_t tags[2], const void *val, int64_t now_ms,
                       int64_t expires_ms)
{
    hash |= HASH_SET;
    struct shard *s = shard_of(c, hash);
    pthread_mutex_lock(&s->lock);
    struct slot_head *h = find(c, s, key, hash);
    if (h && (h->tag[0] > tags[0] || (h->tag[0] == tags[0] && h->tag[1] > tags[1])))
        goto out;   /* a newer read of the same row */
    if (!h)
        h = victim(c, s, hash, tags, val != NULL, now_ms);
    if (!h)
        goto out;
    if (h->state == SLOT_EMPTY)
        s->entries++;
    s->hashes[(size_t)((unsigned char *)h - s->slots) / c->stride] = hash;
    h->tag[0] = tags[0];
    h->tag[1] = tags[1];
    h->expires = val ? 0 : expires_ms;
    h->state = val ? SLOT_POSITIVE : SLOT_NEGATIVE;
    h->used = ++s->tick;
    memcpy(slot_key(h), key, c->key_size);
    if (val)
        memcpy(slot_val(c, h), val, c->val_size);
    else
        memset(slot_val(c, h), 0, c->val_size);
out:
    pthread_mutex_unlock(&s->lock);
}

void fota_gencache_stats(struct fota_gencache *c, size_t *entries, size_t *bytes)
{
    size_t e = 0, b = 0;
    for (unsigned i = 0; i < c->nshards; i++) {
        struct shard *s = &c->shards[i];
        pthread_mutex_lock(&s->lock);
        e += s->entries;
        b += s->nsets * FOTA_GENCACHE_WAYS * (c->stride + sizeof *s->hashes);
        pthread_mutex_unlock(&s->lock);
    }
    if (entries)
        *entries = e;
    if (bytes)
        *bytes = b;
}
