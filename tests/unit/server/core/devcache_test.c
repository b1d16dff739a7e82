/* devcache_test.c - server/core/devcache.c: a device's row answers from the
 * cache until its device generation or the catalog generation moves; its key
 * generation until the catalog generation moves; readers on several threads
 * while the row changes never see a row older than the last write. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "devcache.h"
#include "fota_err.h"
#include "store.h"

/* A store of devices 1..9 whose key generation and rom_version follow
 * `version`, counting device_get calls. */
static struct fake {
    struct fota_store base;
    int version;   /* atomic */
    int calls;     /* atomic */
} fk;

static int fake_device_get(struct fota_store *s, int64_t id, struct fota_device *out)
{
    (void)s;
    __atomic_add_fetch(&fk.calls, 1, __ATOMIC_RELAXED);
    if (id < 1 || id > 9)
        return FOTA_ENOENT;
    int v = __atomic_load_n(&fk.version, __ATOMIC_ACQUIRE);
    memset(out, 0, sizeof *out);
    out->id = id;
    out->product_id = 3;
    out->key_generation = v;
    snprintf(out->rom_version, sizeof out->rom_version, "v%d", v);
    return 0;
}

static const struct fota_store_ops fake_ops = { .name = "fake", .device_get = fake_device_get };

static struct fota_store *fake_store(void)
{
    memset(&fk, 0, sizeof fk);
    fk.base.ops = &fake_ops;
    fk.base.generation = 1;
    return &fk.base;
}

static int calls(void)
{
    return __atomic_load_n(&fk.calls, __ATOMIC_RELAXED);
}

static void test_row_until_its_generations_move(void **state)
{
    (void)state;
    struct fota_store *st = fake_store();
    struct fota_devcache *dc = fota_devcache_new(1024);
    struct fota_device d;
    assert_int_equal(fota_devcache_get(dc, st, 4, &d), 0);
    assert_int_equal(fota_devcache_get(dc, st, 4, &d), 0);
    assert_int_equal(calls(), 1);
    assert_int_equal(d.id, 4);
    assert_int_equal(d.product_id, 3);
    assert_string_equal(d.rom_version, "v0");
    /* the device's row written (a D7's version): its generation moves */
    fk.version = 1;
    fota_store_device_touch(st, 4);
    assert_int_equal(fota_devcache_get(dc, st, 4, &d), 0);
    assert_string_equal(d.rom_version, "v1");
    assert_int_equal(calls(), 2);
    /* another device's write leaves this one (a slot of its own) */
    fota_store_device_touch(st, 5);
    assert_int_equal(fota_devcache_get(dc, st, 4, &d), 0);
    assert_int_equal(calls(), 2);
    /* a catalog write (a device deleted, its id reused) drops it too */
    fk.version = 2;
    st->generation++;
    assert_int_equal(fota_devcache_get(dc, st, 4, &d), 0);
    assert_string_equal(d.rom_version, "v2");
    assert_int_equal(calls(), 3);
    /* unknown devices are not cached */
    assert_int_equal(fota_devcache_get(dc, st, 42, &d), FOTA_ENOENT);
    assert_int_equal(fota_devcache_get(dc, st, 42, &d), FOTA_ENOENT);
    assert_int_equal(calls(), 5);
    /* NULL: the store alone */
    assert_int_equal(fota_devcache_get(NULL, st, 4, &d), 0);
    assert_int_equal(calls(), 6);
    fota_devcache_free(dc);
    fota_devcache_free(NULL);
}

static void test_key_generation_follows_the_catalog(void **state)
{
    (void)state;
    struct fota_store *st = fake_store();
    struct fota_devcache *dc = fota_devcache_new(1024);
    struct fota_device d;
    int kg = -1;
    assert_int_equal(fota_devcache_get(dc, st, 6, &d), 0);
    /* its commands written (the push before this one): the key stays */
    fota_store_device_touch(st, 6);
    assert_int_equal(fota_devcache_key_generation(dc, st, 6, &kg), 0);
    assert_int_equal(kg, 0);
    assert_int_equal(calls(), 1);
    /* ...but the full row is read again */
    assert_int_equal(fota_devcache_get(dc, st, 6, &d), 0);
    assert_int_equal(calls(), 2);
    /* keys rotated: a catalog write */
    fk.version = 5;
    fota_store_device_touch(st, 6);
    st->generation++;
    assert_int_equal(fota_devcache_key_generation(dc, st, 6, &kg), 0);
    assert_int_equal(kg, 5);
    assert_int_equal(calls(), 3);
    assert_int_equal(fota_devcache_key_generation(dc, st, 6, &kg), 0);
    assert_int_equal(calls(), 3);
    assert_int_equal(fota_devcache_key_generation(dc, st, 77, &kg), FOTA_ENOENT);
    fota_devcache_free(dc);
}

/* The product from the cache alone (a loop's question): any row read under
 * the catalog generation, its device's own moves left aside; never the
 * store. */
static void test_product_peek(void **state)
{
    (void)state;
    struct fota_store *st = fake_store();
    struct fota_devcache *dc = fota_devcache_new(1024);
    int64_t pid = 0;
    assert_int_equal(fota_devcache_product_peek(dc, st, 2, &pid), FOTA_EAGAIN);
    assert_int_equal(calls(), 0);
    assert_int_equal(fota_devcache_product(dc, st, 2, &pid), 0);
    pid = 0;
    fota_store_device_touch(st, 2);   /* a D7 of it written */
    assert_int_equal(fota_devcache_product_peek(dc, st, 2, &pid), 0);
    assert_int_equal(pid, 3);
    st->generation++;                 /* a catalog write: deleted, perhaps */
    assert_int_equal(fota_devcache_product_peek(dc, st, 2, &pid), FOTA_EAGAIN);
    assert_int_equal(fota_devcache_product_peek(NULL, st, 2, &pid), FOTA_EAGAIN);
    assert_int_equal(calls(), 1);
    fota_devcache_free(dc);
}

#define READERS 4
#define WRITES 300
static int done_version;   /* atomic */

static void *reader(void *arg)
{
    struct fota_devcache *dc = arg;
    for (int n = 0; n < 20000; n++) {
        int v = __atomic_load_n(&done_version, __ATOMIC_ACQUIRE), kg;
        struct fota_device d;
        int64_t id = 1 + n % 9;
        if (fota_devcache_get(dc, &fk.base, id, &d) != 0 || d.id != id || d.key_generation < v)
            return (void *)1;
        if (fota_devcache_key_generation(dc, &fk.base, id, &kg) != 0 || kg < v)
            return (void *)1;
        if (v == WRITES)
            break;
    }
    return NULL;
}

/* The writer changes every device's row, moving device 1..9's generations
 * (and every 10th time the catalog's) after the row, as a store does. */
static void test_concurrent_readers(void **state)
{
    (void)state;
    struct fota_store *st = fake_store();
    struct fota_devcache *dc = fota_devcache_new(1024);
    pthread_t t[READERS];
    done_version = 0;
    for (int i = 0; i < READERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, reader, dc), 0);
    for (int v = 1; v <= WRITES; v++) {
        __atomic_store_n(&fk.version, v, __ATOMIC_RELEASE);
        for (int64_t id = 1; id <= 9; id++)
            fota_store_device_touch(st, id);
        /* key generations are catalog: every change moves it */
        __atomic_add_fetch(&st->generation, 1, __ATOMIC_RELEASE);
        __atomic_store_n(&done_version, v, __ATOMIC_RELEASE);
        for (int spin = 0; spin < 2000; spin++)
            (void)fota_store_generation(st);
    }
    for (int i = 0; i < READERS; i++) {
        void *bad = NULL;
        assert_int_equal(pthread_join(t[i], &bad), 0);
        assert_null(bad);
    }
    fota_devcache_free(dc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_row_until_its_generations_move),
        cmocka_unit_test(test_key_generation_follows_the_catalog),
        cmocka_unit_test(test_product_peek),
        cmocka_unit_test(test_concurrent_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
