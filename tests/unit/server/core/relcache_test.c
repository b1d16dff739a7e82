/* relcache_test.c - server/core/relcache.c: a release answers from the cache
 * until the catalog generation moves, per product and version. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "fota_err.h"
#include "fota_str.h"
#include "relcache.h"
#include "store.h"

/* Products 1 to 1,000 have releases "v1" and "v2", one file whose slot is the
 * store's `slot`; rom_get calls are counted. */
static struct fake {
    struct fota_store base;
    int slot;
    int calls;
} fk;

static int fake_rom_get(struct fota_store *s, int64_t product_id, const char *version,
                        struct fota_rom *out)
{
    (void)s;
    fk.calls++;
    if (product_id < 1 || product_id > 1000 || (strcmp(version, "v1") && strcmp(version, "v2")))
        return FOTA_ENOENT;
    memset(out, 0, sizeof *out);
    out->id = product_id * 10 + version[1] - '0';
    out->product_id = product_id;
    fota_str_copy(out->version, sizeof out->version, version);
    out->nfiles = 1;
    snprintf(out->files[0].name, sizeof out->files[0].name, "user1.bin");
    out->files[0].slot = fk.slot;
    return 0;
}

static const struct fota_store_ops fake_ops = { .name = "fake", .rom_get = fake_rom_get };

static void test_release_until_the_catalog_moves(void **state)
{
    (void)state;
    memset(&fk, 0, sizeof fk);
    fk.base.ops = &fake_ops;
    fk.base.generation = 1;
    fk.slot = 1;
    struct fota_store *st = &fk.base;
    struct fota_relcache *rc = fota_relcache_new(FOTA_RELCACHE_RELEASES);
    struct fota_rom rom;
    assert_int_equal(fota_relcache_get(rc, st, 1, "v1", &rom), 0);
    assert_int_equal(fota_relcache_get(rc, st, 1, "v1", &rom), 0);
    assert_int_equal(fk.calls, 1);
    assert_int_equal(rom.id, 11);
    assert_string_equal(rom.version, "v1");
    assert_int_equal(rom.files[0].slot, 1);
    /* another version, another product: entries of their own */
    assert_int_equal(fota_relcache_get(rc, st, 1, "v2", &rom), 0);
    assert_int_equal(rom.id, 12);
    assert_int_equal(fota_relcache_get(rc, st, 2, "v1", &rom), 0);
    assert_int_equal(rom.id, 21);
    assert_int_equal(fk.calls, 3);
    assert_int_equal(fota_relcache_get(rc, st, 1, "v2", &rom), 0);
    assert_int_equal(fota_relcache_get(rc, st, 2, "v1", &rom), 0);
    assert_int_equal(fk.calls, 3);
    /* a release replaced (deleted and uploaded again): a catalog write */
    fk.slot = 2;
    st->generation++;
    assert_int_equal(fota_relcache_get(rc, st, 1, "v1", &rom), 0);
    assert_int_equal(rom.files[0].slot, 2);
    assert_int_equal(fk.calls, 4);
    /* unknown releases are not cached */
    assert_int_equal(fota_relcache_get(rc, st, 1, "v9", &rom), FOTA_ENOENT);
    assert_int_equal(fota_relcache_get(rc, st, 1, "v9", &rom), FOTA_ENOENT);
    assert_int_equal(fk.calls, 6);
    /* a version too long for a key goes to the store */
    char longv[FOTA_VERSION_MAX + 8];
    memset(longv, 'x', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    assert_int_equal(fota_relcache_get(rc, st, 1, longv, &rom), FOTA_ENOENT);
    assert_int_equal(fk.calls, 7);
    /* more releases than it holds: it stays at its size and still answers */
    size_t entries, bytes;
    for (int i = 0; i < 200; i++) {
        char v[16];
        snprintf(v, sizeof v, "v%d", 1 + i % 2);
        assert_int_equal(fota_relcache_get(rc, st, 3 + i, v, &rom), 0);
        assert_int_equal(rom.product_id, 3 + i);
    }
    fota_relcache_stats(rc, &entries, &bytes);
    assert_true(entries <= FOTA_RELCACHE_RELEASES);
    assert_int_equal(fota_relcache_get(NULL, st, 1, "v1", &rom), 0);
    fota_relcache_free(rc);
    fota_relcache_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_release_until_the_catalog_moves),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
