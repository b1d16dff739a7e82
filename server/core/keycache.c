/* keycache.c - the shared API key cache (keycache.h): keys as the 32 bytes
 * of their SHA-256 in a gencache table of 64 shards, tag 0 the catalog
 * generation. */
#include "keycache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "gencache.h"
#include "xmalloc.h"

#define KEYCACHE_SHARDS 64

/* What an entry keeps of struct fota_key (its hash is the entry's key). */
struct key_val {
    int64_t product_id;
    int64_t device_id;
    int64_t created;
    int32_t kind;
};

struct fota_keycache {
    struct fota_gencache *c;
    /* Admin keys a lookup found, the newest first: what a loop may take as
     * an admin key while the catalog generation has dropped its entry. */
    pthread_mutex_t admin_mu;
    struct fota_key admin[FOTA_KEYCACHE_ADMINS];
    size_t nadmin;
};

struct fota_keycache *fota_keycache_new(size_t max_keys)
{
    struct fota_keycache *kc = fota_xmalloc(sizeof *kc);
    kc->c = fota_gencache_new(32, sizeof(struct key_val), KEYCACHE_SHARDS, max_keys);
    pthread_mutex_init(&kc->admin_mu, NULL);
    kc->nadmin = 0;
    return kc;
}

void fota_keycache_free(struct fota_keycache *kc)
{
    if (!kc)
        return;
    fota_gencache_free(kc->c);
    pthread_mutex_destroy(&kc->admin_mu);
    free(kc);
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The 32 bytes of a 64-hex hash, and a hash of them for the table. 0, or
 * FOTA_EINVAL for anything else (never cached). */
static int parse(const char *hex, uint8_t out[32], uint64_t *hash)
{
    for (size_t i = 0; i < 32; i++) {
        int hi = hexval(hex[2 * i]), lo = hi < 0 ? -1 : hexval(hex[2 * i + 1]);
        if (lo < 0)
            return FOTA_EINVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    if (hex[64])
        return FOTA_EINVAL;
    uint64_t h;
    memcpy(&h, out, sizeof h);   /* SHA-256 output: already uniform */
    *hash = h;
    return 0;
}

int fota_keycache_get(struct fota_keycache *kc, uint64_t gen, const char *hash_hex,
                      struct fota_key *out)
{
    uint8_t raw[32];
    uint64_t h, tags[2] = { gen, 0 };
    struct key_val v;
    if (parse(hash_hex, raw, &h) != 0)
        return FOTA_EAGAIN;
    switch (fota_gencache_get(kc->c, raw, h, tags, 1, fota_clock_mono_ms(), &v)) {
    case FOTA_GENCACHE_HIT:
        memcpy(out->hash, hash_hex, FOTA_HASH_HEX);
        out->kind = v.kind;
        out->product_id = v.product_id;
        out->device_id = v.device_id;
        out->created = v.created;
        return 0;
    case FOTA_GENCACHE_ABSENT:
        return FOTA_ENOENT;
    default:
        return FOTA_EAGAIN;
    }
}

void fota_keycache_put(struct fota_keycache *kc, uint64_t gen, const char *hash_hex,
                       const struct fota_key *k)
{
    uint8_t raw[32];
    uint64_t h, tags[2] = { gen, 0 };
    if (parse(hash_hex, raw, &h) != 0)
        return;
    int64_t now = fota_clock_mono_ms();
    if (!k) {
        fota_gencache_put(kc->c, raw, h, tags, NULL, now, now + FOTA_KEYCACHE_UNKNOWN_MS);
        return;
    }
    struct key_val v;
    memset(&v, 0, sizeof v);   /* the padding too: the table copies whole values */
    v.kind = k->kind;
    v.product_id = k->product_id;
    v.device_id = k->device_id;
    v.created = k->created;
    fota_gencache_put(kc->c, raw, h, tags, &v, now, 0);
}

/* Index of hash_hex among the admin keys, or -1. Under admin_mu. */
static int admin_find(const struct fota_keycache *kc, const char *hash_hex)
{
    for (size_t i = 0; i < kc->nadmin; i++)
        if (memcmp(kc->admin[i].hash, hash_hex, FOTA_HASH_HEX - 1) == 0)
            return (int)i;
    return -1;
}

void fota_keycache_admin_note(struct fota_keycache *kc, const struct fota_key *k)
{
    if (!kc || strlen(k->hash) != FOTA_HASH_HEX - 1)
        return;
    pthread_mutex_lock(&kc->admin_mu);
    int i = admin_find(kc, k->hash);
    size_t n = i >= 0 ? (size_t)i
                      : kc->nadmin < FOTA_KEYCACHE_ADMINS ? kc->nadmin++ : FOTA_KEYCACHE_ADMINS - 1;
    memmove(&kc->admin[1], &kc->admin[0], n * sizeof kc->admin[0]);
    kc->admin[0] = *k;
    pthread_mutex_unlock(&kc->admin_mu);
}

/* hash_hex is not (or no longer) an admin key. */
static void admin_forget(struct fota_keycache *kc, const char *hash_hex)
{
    pthread_mutex_lock(&kc->admin_mu);
    int i = admin_find(kc, hash_hex);
    if (i >= 0) {
        kc->nadmin--;
        memmove(&kc->admin[i], &kc->admin[i + 1], (kc->nadmin - (size_t)i) * sizeof kc->admin[0]);
    }
    pthread_mutex_unlock(&kc->admin_mu);
}

int fota_keycache_admin_seen(struct fota_keycache *kc, const char *hash_hex, struct fota_key *out)
{
    pthread_mutex_lock(&kc->admin_mu);
    int i = admin_find(kc, hash_hex);
    if (i >= 0)
        *out = kc->admin[i];
    pthread_mutex_unlock(&kc->admin_mu);
    return i >= 0;
}

int fota_keycache_lookup(struct fota_keycache *kc, struct fota_store *st, const char *hash_hex,
                         struct fota_key *out)
{
    if (!kc)
        return st->ops->key_lookup(st, hash_hex, out);
    uint64_t gen = fota_store_generation(st);   /* before the row: store.h */
    int rc = fota_keycache_get(kc, gen, hash_hex, out);
    if (rc != FOTA_EAGAIN)
        return rc;
    rc = st->ops->key_lookup(st, hash_hex, out);
    if (rc == 0 || rc == FOTA_ENOENT)
        fota_keycache_put(kc, gen, hash_hex, rc == 0 ? out : NULL);
    if (rc == 0 && out->kind == FOTA_KEY_ADMIN)
        fota_keycache_admin_note(kc, out);
    else if (rc == 0 || rc == FOTA_ENOENT)
        admin_forget(kc, hash_hex);
    return rc;
}

void fota_keycache_stats(struct fota_keycache *kc, size_t *entries, size_t *bytes)
{
    fota_gencache_stats(kc->c, entries, bytes);
}
