/* keycache_test.c - server/core/keycache.c and the gencache table under it:
 * a hit costs no store call, the catalog generation drops entries, unknown
 * keys are believed for 10 s (the test clock), memory stays bounded under a
 * flood of unknown keys, and loops reading while the catalog changes never
 * see a row older than the last write that returned. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "fota_err.h"
#include "gencache.h"
#include "keycache.h"
#include "keys.h"
#include "store.h"

/* A store that knows the keys "k<N>" for N < nknown (device_id N plus
 * version x 1,000,000) and counts its key_lookup calls. */
static struct fake {
    struct fota_store base;
    int nknown;
    int nadmin;       /* "k<N>" for N < nadmin are admin keys */
    int version;      /* atomic: what a lookup answers in device_id */
    int calls;        /* atomic */
} fk;

static int fake_key_lookup(struct fota_store *s, const char *hash_hex, struct fota_key *out)
{
    (void)s;
    __atomic_add_fetch(&fk.calls, 1, __ATOMIC_RELAXED);
    /* The hash of "k<N>" is found by trying the known keys (small sets only). */
    for (int i = 0; i < fk.nknown; i++) {
        char key[32], h[65];
        int n = snprintf(key, sizeof key, "k%d", i);
        fota_key_hash(key, (size_t)n, h);
        if (strcmp(h, hash_hex) == 0) {
            memset(out, 0, sizeof *out);
            memcpy(out->hash, h, sizeof h);
            out->kind = i < fk.nadmin ? FOTA_KEY_ADMIN : FOTA_KEY_MASTER;
            out->product_id = 7;
            out->device_id = i + 1000000LL * __atomic_load_n(&fk.version, __ATOMIC_ACQUIRE);
            out->created = 1234;
            return 0;
        }
    }
    return FOTA_ENOENT;
}

static const struct fota_store_ops fake_ops = { .name = "fake", .key_lookup = fake_key_lookup };

static struct fota_store *fake_store(int nknown)
{
    memset(&fk, 0, sizeof fk);
    fk.base.ops = &fake_ops;
    fk.base.generation = 1;
    fk.nknown = nknown;
    return &fk.base;
}

static void hash_of(const char *key, char h[65])
{
    fota_key_hash(key, strlen(key), h);
}

static int calls(void)
{
    return __atomic_load_n(&fk.calls, __ATOMIC_RELAXED);
}

static void test_hit_costs_no_store_call(void **state)
{
    (void)state;
    struct fota_store *st = fake_store(4);
    struct fota_keycache *kc = fota_keycache_new(4096);
    struct fota_key k, k2;
    char h[65];
    hash_of("k2", h);
    assert_int_equal(fota_keycache_lookup(kc, st, h, &k), 0);
    assert_int_equal(calls(), 1);
    assert_int_equal(fota_keycache_lookup(kc, st, h, &k2), 0);
    assert_int_equal(calls(), 1);
    assert_string_equal(k2.hash, h);
    assert_int_equal(k2.kind, FOTA_KEY_MASTER);
    assert_int_equal(k2.product_id, 7);
    assert_int_equal(k2.device_id, 2);
    assert_int_equal(k2.created, 1234);
    /* a NULL cache is the store alone */
    assert_int_equal(fota_keycache_lookup(NULL, st, h, &k2), 0);
    assert_int_equal(calls(), 2);
    /* not a hash: never cached, the store answers */
    assert_int_equal(fota_keycache_lookup(kc, st, "zz", &k2), FOTA_ENOENT);
    assert_int_equal(fota_keycache_lookup(kc, st, "zz", &k2), FOTA_ENOENT);
    assert_int_equal(calls(), 4);
    fota_keycache_free(kc);
    fota_keycache_free(NULL);
}

static void test_catalog_generation_drops_entries(void **state)
{
    (void)state;
    struct fota_store *st = fake_store(4);
    struct fota_keycache *kc = fota_keycache_new(4096);
    struct fota_key k;
    char h[65];
    hash_of("k3", h);
    assert_int_equal(fota_keycache_lookup(kc, st, h, &k), 0);
    /* the key is deleted: the write moves the generation before it returns */
    fk.nknown = 0;
    st->generation++;
    assert_int_equal(fota_keycache_lookup(kc, st, h, &k), FOTA_ENOENT);
    assert_int_equal(calls(), 2);
    /* and created again: the negative entry goes with the next generation */
    fk.nknown = 4;
    fk.version = 1;
    st->generation++;
    assert_int_equal(fota_keycache_lookup(kc, st, h, &k), 0);
    assert_int_equal(k.device_id, 1000003);
    assert_int_equal(calls(), 3);
    /* a lookup that read the generation before a write keeps no newer row out */
    fota_keycache_put(kc, st->generation - 1, h, NULL);
    assert_int_equal(fota_keycache_get(kc, st->generation, h, &k), 0);
    fota_keycache_free(kc);
}

/* An admin key a lookup found stays known across catalog generations (the
 * HTTP gate's question) until a lookup finds it gone or of another kind;
 * the newest FOTA_KEYCACHE_ADMINS are kept. */
static void test_admin_keys_outlive_the_generation(void **state)
{
    (void)state;
    struct fota_store *st = fake_store(4);
    struct fota_keycache *kc = fota_keycache_new(4096);
    struct fota_key k;
    char h0[65], h2[65];
    fk.nadmin = 2;
    hash_of("k0", h0);
    hash_of("k2", h2);
    assert_int_equal(fota_keycache_admin_seen(kc, h0, &k), 0);
    assert_int_equal(fota_keycache_lookup(kc, st, h0, &k), 0);
    assert_int_equal(fota_keycache_lookup(kc, st, h2, &k), 0);
    st->generation++;
    assert_int_equal(fota_keycache_get(kc, st->generation, h0, &k), FOTA_EAGAIN);
    memset(&k, 0, sizeof k);
    assert_int_equal(fota_keycache_admin_seen(kc, h0, &k), 1);
    assert_int_equal(k.kind, FOTA_KEY_ADMIN);
    assert_string_equal(k.hash, h0);
    assert_int_equal(fota_keycache_admin_seen(kc, h2, &k), 0);   /* a master key */
    /* the admin key becomes a master key, then is deleted: forgotten at the lookup */
    fk.nadmin = 0;
    assert_int_equal(fota_keycache_lookup(kc, st, h0, &k), 0);
    assert_int_equal(fota_keycache_admin_seen(kc, h0, &k), 0);
    fk.nadmin = 2;
    st->generation++;
    assert_int_equal(fota_keycache_lookup(kc, st, h0, &k), 0);
    assert_int_equal(fota_keycache_admin_seen(kc, h0, &k), 1);
    fk.nknown = 0;
    st->generation++;
    assert_int_equal(fota_keycache_lookup(kc, st, h0, &k), FOTA_ENOENT);
    assert_int_equal(fota_keycache_admin_seen(kc, h0, &k), 0);
    /* a bound: the newest FOTA_KEYCACHE_ADMINS of more */
    char hs[FOTA_KEYCACHE_ADMINS + 4][65];
    for (int i = 0; i < FOTA_KEYCACHE_ADMINS + 4; i++) {
        char name[16];
        snprintf(name, sizeof name, "a%d", i);
        hash_of(name, hs[i]);
        memset(&k, 0, sizeof k);
        memcpy(k.hash, hs[i], sizeof hs[i]);
        k.kind = FOTA_KEY_ADMIN;
        fota_keycache_admin_note(kc, &k);
    }
    for (int i = 0; i < FOTA_KEYCACHE_ADMINS + 4; i++)
        assert_int_equal(fota_keycache_admin_seen(kc, hs[i], &k), i >= 4);
    /* noting one again keeps it among the newest */
    memcpy(k.hash, hs[4], sizeof hs[4]);
    fota_keycache_admin_note(kc, &k);
    memcpy(k.hash, h2, sizeof h2);
    fota_keycache_admin_note(kc, &k);
    assert_int_equal(fota_keycache_admin_seen(kc, hs[4], &k), 1);
    assert_int_equal(fota_keycache_admin_seen(kc, hs[5], &k), 0);
    fota_keycache_free(kc);
}

static void test_unknown_key_believed_ten_seconds(void **state)
{
    (void)state;
    struct fota_store *st = fake_store(0);
    struct fota_keycache *kc = fota_keycache_new(4096);
    struct fota_key k;
    char h[65];
    hash_of("nobody", h);
    assert_int_equal(fota_keycache_lookup(kc, st, h, &k), FOTA_ENOENT);
    assert_int_equal(fota_keycache_lookup(kc, st, h, &k), FOTA_ENOENT);
    assert_int_equal(calls(), 1);
    fota_clock_advance_ms(FOTA_KEYCACHE_UNKNOWN_MS - 1);
    assert_int_equal(fota_keycache_get(kc, st->generation, h, &k), FOTA_ENOENT);
    assert_int_equal(calls(), 1);
    fota_clock_advance_ms(1);
    assert_int_equal(fota_keycache_get(kc, st->generation, h, &k), FOTA_EAGAIN);
    assert_int_equal(fota_keycache_lookup(kc, st, h, &k), FOTA_ENOENT);
    assert_int_equal(calls(), 2);
    fota_keycache_free(kc);
}

/* 200,000 made-up keys against a cache of 4,096 holding 1,000 real ones:
 * the table does not grow, and every real key still answers from it. */
static void test_flood_of_unknown_keys_is_bounded(void **state)
{
    (void)state;
    struct fota_store *st = fake_store(0);
    struct fota_keycache *kc = fota_keycache_new(4096);
    struct fota_key k;
    char h[65], key[32];
    size_t entries, bytes, bytes_real;
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "real%d", i);
        hash_of(key, h);
        memset(&k, 0, sizeof k);
        k.device_id = i;
        fota_keycache_put(kc, st->generation, h, &k);
    }
    fota_keycache_stats(kc, &entries, &bytes_real);
    assert_int_equal(entries, 1000);
    for (int i = 0; i < 200000; i++) {
        snprintf(key, sizeof key, "fake%d", i);
        hash_of(key, h);
        assert_int_equal(fota_keycache_lookup(kc, st, h, &k), FOTA_ENOENT);
    }
    assert_int_equal(calls(), 200000);
    fota_keycache_stats(kc, &entries, &bytes);
    assert_int_equal(bytes, bytes_real);
    assert_true(entries <= 4096);
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "real%d", i);
        hash_of(key, h);
        assert_int_equal(fota_keycache_get(kc, st->generation, h, &k), 0);
        assert_int_equal(k.device_id, i);
    }
    fota_keycache_free(kc);
}

/* Real keys past the capacity: the least used go, memory stays at the cap. */
static void test_capacity_is_a_cap(void **state)
{
    (void)state;
    struct fota_store *st = fake_store(0);
    struct fota_keycache *kc = fota_keycache_new(4096);
    struct fota_key k;
    char h[65], key[32];
    size_t entries, bytes, bytes0;
    fota_keycache_stats(kc, &entries, &bytes0);
    assert_int_equal(entries, 0);
    memset(&k, 0, sizeof k);
    for (int i = 0; i < 50000; i++) {
        snprintf(key, sizeof key, "many%d", i);
        hash_of(key, h);
        fota_keycache_put(kc, st->generation, h, &k);
    }
    fota_keycache_stats(kc, &entries, &bytes);
    assert_true(entries <= 4096 && entries > 2048);
    assert_true(bytes > bytes0);
    assert_true(bytes <= 4096 * (bytes0 / (64 * FOTA_GENCACHE_WAYS)));
    fota_keycache_free(kc);
}

/* Four readers on a few keys while a writer changes the rows and moves the
 * generation (as the store: the row first, then the generation, then the
 * op returns). A reader that starts after a write returned never sees an
 * older row. */
#define READERS 4
#define WRITES 300
static int done_version;   /* atomic: the last write that returned */

static void *reader(void *arg)
{
    struct fota_keycache *kc = arg;
    char h[4][65];
    for (int i = 0; i < 4; i++) {
        char key[8];
        snprintf(key, sizeof key, "k%d", i);
        hash_of(key, h[i]);
    }
    for (int n = 0; n < 20000; n++) {
        int v = __atomic_load_n(&done_version, __ATOMIC_ACQUIRE);
        struct fota_key k;
        int i = n % 4;
        if (fota_keycache_lookup(kc, &fk.base, h[i], &k) != 0 || k.device_id % 1000000 != i ||
            k.device_id / 1000000 < v)
            return (void *)1;
        if (v == WRITES)
            break;
    }
    return NULL;
}

static void test_concurrent_readers_see_every_returned_write(void **state)
{
    (void)state;
    struct fota_store *st = fake_store(4);
    struct fota_keycache *kc = fota_keycache_new(4096);
    pthread_t t[READERS];
    done_version = 0;
    for (int i = 0; i < READERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, reader, kc), 0);
    for (int v = 1; v <= WRITES; v++) {
        __atomic_store_n(&fk.version, v, __ATOMIC_RELEASE);
        __atomic_add_fetch(&st->generation, 1, __ATOMIC_RELEASE);
        __atomic_store_n(&done_version, v, __ATOMIC_RELEASE);
        for (int spin = 0; spin < 2000; spin++)
            (void)fota_store_generation(st);   /* let the readers hit meanwhile */
    }
    for (int i = 0; i < READERS; i++) {
        void *bad = NULL;
        assert_int_equal(pthread_join(t[i], &bad), 0);
        assert_null(bad);
    }
    fota_keycache_free(kc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_costs_no_store_call),
        cmocka_unit_test(test_catalog_generation_drops_entries),
        cmocka_unit_test(test_admin_keys_outlive_the_generation),
        cmocka_unit_test(test_unknown_key_believed_ten_seconds),
        cmocka_unit_test(test_flood_of_unknown_keys_is_bounded),
        cmocka_unit_test(test_capacity_is_a_cap),
        cmocka_unit_test(test_concurrent_readers_see_every_returned_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
