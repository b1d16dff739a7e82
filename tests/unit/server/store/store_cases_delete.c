/* store_cases_delete.c - conformance cases: rom_delete, device_delete and
 * product_delete: what goes, what stays, the refusals that change nothing,
 * the generation bump and ids that never come back (also after a reopen). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store_fixture.h"

static size_t count_roms(struct fota_store *s, int64_t pid)
{
    struct fota_rom *list = NULL;
    size_t n = 0;
    assert_int_equal(s->ops->rom_list(s, pid, &list, &n), 0);
    free(list);
    return n;
}

static int referenced(struct fota_store *s, const char *hash)
{
    char (*refs)[FOTA_HASH_HEX] = NULL;
    size_t n = 0;
    int found = 0;
    assert_int_equal(s->ops->blob_refs(s, &refs, &n), 0);
    for (size_t i = 0; i < n; i++)
        found |= strcmp(refs[i], hash) == 0;
    free(refs);
    return found;
}

static void test_rom_delete(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t pid = mk_product(s, "p"), dev = mk_device(s, pid, "d", 1), bytes = 0;
    struct fota_rom r1, r2, gone, g;
    uint64_t gen;

    fill_rom(&r1, pid, "v1.0");
    assert_int_equal(s->ops->rom_create(s, &r1), 0);
    fill_rom(&r2, pid, "v1.1");
    fake_hash(r2.files[1].sha256, 9);    /* user1.bin shared with v1.0, user2.bin its own */
    assert_int_equal(s->ops->rom_create(s, &r2), 0);
    assert_int_equal(s->ops->rom_set_current(s, pid, "v1.1"), 0);
    assert_int_equal(s->ops->download_add(s, dev, r1.files[0].id, 1000, 1), 0);
    assert_int_equal(s->ops->download_add(s, dev, r2.files[0].id, 10, 0), 0);

    /* the current release is refused and stays whole */
    assert_int_equal(s->ops->rom_delete(s, pid, "v1.1", NULL), FOTA_EBUSY);
    assert_int_equal(s->ops->rom_get(s, pid, "v1.1", &g), 0);
    assert_int_equal(g.nfiles, 2);
    assert_int_equal(s->ops->rom_delete(s, pid, "v9", NULL), FOTA_ENOENT);
    assert_int_equal(s->ops->rom_delete(s, pid + 1000, "v1.0", NULL), FOTA_ENOENT);

    gen = fota_store_generation(s);
    memset(&gone, 0, sizeof gone);
    assert_int_equal(s->ops->rom_delete(s, pid, "v1.0", &gone), 0);
    assert_true(fota_store_generation(s) > gen);
    assert_int_equal(gone.id, r1.id);
    assert_string_equal(gone.version, "v1.0");
    assert_int_equal(gone.nfiles, 2);
    assert_string_equal(gone.files[1].sha256, r1.files[1].sha256);
    assert_int_equal(gone.files[0].download_count, 1);
    assert_int_equal(s->ops->rom_get(s, pid, "v1.0", &g), FOTA_ENOENT);
    assert_int_equal(s->ops->rom_delete(s, pid, "v1.0", NULL), FOTA_ENOENT);
    assert_int_equal(count_roms(s, pid), 1);
    /* its ledger rows went with its files; the other release's stayed */
    assert_int_equal(s->ops->download_bytes(s, dev, &bytes), 0);
    assert_int_equal(bytes, 10);
    assert_int_equal(s->ops->download_add(s, dev, r1.files[0].id, 1, 0), FOTA_ENOENT);
    /* the shared blob is still named, the lone one is not */
    assert_true(referenced(s, r1.files[0].sha256));
    assert_false(referenced(s, r1.files[1].sha256));
    /* the version can be published again */
    fill_rom(&r1, pid, "v1.0");
    assert_int_equal(s->ops->rom_create(s, &r1), 0);
}

static void test_device_delete(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t pid = mk_product(s, "p");
    int64_t a = mk_device(s, pid, "a", 1), b = mk_device(s, pid, "b", 0), bytes = 0;
    int64_t ca = mk_command(s, a), cb = mk_command(s, b), rid;
    struct fota_key k;
    struct fota_device d;
    struct fota_command c, *cl = NULL;
    struct fota_product p;
    struct fota_rom r;
    size_t n = 9;
    char h[FOTA_HASH_HEX];
    uint64_t gen;

    fill_rom(&r, pid, "v1");
    assert_int_equal(s->ops->rom_create(s, &r), 0);
    rid = r.files[0].id;
    mk_key(s, FOTA_KEY_MASTER, pid, a, 11);
    mk_key(s, FOTA_KEY_OWNER, pid, a, 12);
    mk_key(s, FOTA_KEY_MASTER, pid, b, 13);
    assert_int_equal(s->ops->download_add(s, a, rid, 500, 1), 0);
    assert_int_equal(s->ops->download_add(s, b, rid, 7, 0), 0);
    add_msg(s, pid, a, "device_upgrade_success");

    gen = fota_store_generation(s);
    assert_int_equal(s->ops->device_delete(s, a), 0);
    assert_true(fota_store_generation(s) > gen);
    assert_int_equal(s->ops->device_get(s, a, &d), FOTA_ENOENT);
    fake_hash(h, 11);
    assert_int_equal(s->ops->key_lookup(s, h, &k), FOTA_ENOENT);
    fake_hash(h, 12);
    assert_int_equal(s->ops->key_lookup(s, h, &k), FOTA_ENOENT);
    assert_int_equal(s->ops->command_get(s, ca, &c), FOTA_ENOENT);
    assert_int_equal(s->ops->command_list_device(s, a, 0, &cl, &n), 0);
    assert_int_equal(n, 0);
    fota_store_command_list_free(cl, n);
    assert_int_equal(s->ops->download_bytes(s, a, &bytes), 0);
    assert_int_equal(bytes, 0);
    /* the other device keeps everything */
    fake_hash(h, 13);
    assert_int_equal(s->ops->key_lookup(s, h, &k), 0);
    assert_int_equal(s->ops->command_get(s, cb, &c), 0);
    fota_store_command_cleanup(&c);
    assert_int_equal(s->ops->download_bytes(s, b, &bytes), 0);
    assert_int_equal(bytes, 7);
    assert_int_equal(s->ops->product_get(s, pid, &p), 0);
    assert_int_equal(p.devices_total, 1);
    assert_int_equal(p.devices_activated, 0);
    assert_int_equal(s->ops->device_delete(s, a), FOTA_ENOENT);
    assert_int_equal(s->ops->device_delete(s, 999999), FOTA_ENOENT);

    /* the highest id deleted is never handed out again (derived keys; a
     * bulk upgrade may still hold the command id) */
    assert_int_equal(s->ops->device_delete(s, b), 0);
    int64_t c3 = mk_device(s, pid, "c", 0);
    assert_true(c3 > b);
    assert_true(mk_command(s, c3) > cb);
    {
        struct fota_command tmpl;
        int64_t devs[2] = { c3, c3 }, nonces[2] = { 0, 0 }, ids[2] = { 0, 0 };
        int64_t d4 = mk_device(s, pid, "d4", 0), top = mk_command(s, d4);
        assert_int_equal(s->ops->device_delete(s, d4), 0);
        memset(&tmpl, 0, sizeof tmpl);
        snprintf(tmpl.action, sizeof tmpl.action, "sys_upgrade");
        assert_int_equal(s->ops->command_create_many(s, &tmpl, devs, nonces, ids, 2), 0);
        assert_true(ids[0] > top && ids[1] > ids[0]);
    }
}

static void test_product_delete(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t keep = mk_product(s, "keep"), pid = mk_product(s, "p"), dev;
    struct fota_product p, *list = NULL;
    struct fota_key k;
    char h[FOTA_HASH_HEX];
    size_t n = 0;
    uint64_t gen;

    dev = mk_device(s, pid, "d", 0);
    mk_rom(s, pid, "v1");
    mk_key(s, FOTA_KEY_PRODUCT, pid, 0, 21);
    mk_key(s, FOTA_KEY_PRODUCT, keep, 0, 22);

    /* refused, and nothing changes, while it has a device or a release */
    assert_int_equal(s->ops->product_delete(s, pid), FOTA_EBUSY);
    assert_int_equal(s->ops->device_delete(s, dev), 0);
    assert_int_equal(s->ops->product_delete(s, pid), FOTA_EBUSY);
    fake_hash(h, 21);
    assert_int_equal(s->ops->key_lookup(s, h, &k), 0);
    assert_int_equal(s->ops->rom_delete(s, pid, "v1", NULL), 0);

    gen = fota_store_generation(s);
    assert_int_equal(s->ops->product_delete(s, pid), 0);
    assert_true(fota_store_generation(s) > gen);
    assert_int_equal(s->ops->product_get(s, pid, &p), FOTA_ENOENT);
    assert_int_equal(s->ops->product_find(s, "p", &p), FOTA_ENOENT);
    assert_int_equal(s->ops->key_lookup(s, h, &k), FOTA_ENOENT);
    fake_hash(h, 22);
    assert_int_equal(s->ops->key_lookup(s, h, &k), 0);
    assert_int_equal(s->ops->product_list(s, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].id, keep);
    free(list);
    assert_int_equal(s->ops->product_delete(s, pid), FOTA_ENOENT);
    /* a current release goes once the product has no device */
    assert_int_equal(s->ops->product_delete(s, keep), 0);
    keep = mk_product(s, "keep2");
    dev = mk_device(s, keep, "d2", 0);
    mk_rom(s, keep, "v7");
    assert_int_equal(s->ops->rom_set_current(s, keep, "v7"), 0);
    assert_int_equal(s->ops->rom_delete(s, keep, "v7", NULL), FOTA_EBUSY);
    assert_int_equal(s->ops->device_delete(s, dev), 0);
    assert_int_equal(s->ops->rom_delete(s, keep, "v7", NULL), 0);
    assert_int_equal(s->ops->product_get(s, keep, &p), 0);
    assert_string_equal(p.current_version, "");
    assert_int_equal(s->ops->product_delete(s, keep), 0);
    /* the name is free again; the id is not */
    assert_true(mk_product(s, "p") > pid);
    assert_int_equal(s->ops->device_create(s, &(struct fota_device){ .product_id = pid }),
                     FOTA_ENOENT);
}

/* The ids a delete retired stay retired after a restart. */
static void test_delete_reopen(void **state)
{
    struct store_fixture *fx = store_fx(state);
    int64_t pid = mk_product(fx->s, "p"), d1 = mk_device(fx->s, pid, "a", 0);
    int64_t c1 = mk_command(fx->s, d1), p2 = mk_product(fx->s, "p2");

    assert_int_equal(fx->s->ops->device_delete(fx->s, d1), 0);
    assert_int_equal(fx->s->ops->product_delete(fx->s, p2), 0);
    store_fixture_reopen(fx);
    assert_true(mk_device(fx->s, pid, "b", 0) > d1);
    assert_true(mk_command(fx->s, mk_device(fx->s, pid, "c", 0)) > c1);
    assert_true(mk_product(fx->s, "p3") > p2);
    assert_int_equal(store_log_errors, 0);
}

/* Releases and a product deleted with catalog ops alone: what the deletes
 * refuse and return, and that a deleted product's name is free again while
 * its id is not. */
static void test_catalog_delete(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t pid = mk_product(s, "p");
    char (*refs)[FOTA_HASH_HEX] = NULL;
    struct fota_rom gone, g;
    struct fota_product p;
    size_t n = 99;
    uint64_t gen;

    mk_rom(s, pid, "v1");
    mk_rom(s, pid, "v2");
    assert_int_equal(s->ops->rom_set_current(s, pid, "v2"), 0);

    gen = fota_store_generation(s);
    memset(&gone, 0, sizeof gone);
    assert_int_equal(s->ops->rom_delete(s, pid, "v1", &gone), 0);
    assert_true(fota_store_generation(s) > gen);
    assert_string_equal(gone.version, "v1");
    assert_int_equal(gone.nfiles, 2);
    assert_string_equal(gone.files[0].name, "user1.bin");
    assert_int_equal(s->ops->rom_delete(s, pid, "v1", NULL), FOTA_ENOENT);
    assert_int_equal(s->ops->rom_delete(s, pid + 1000, "v2", NULL), FOTA_ENOENT);

    /* a product with a release stays; its current release goes (no devices) */
    assert_int_equal(s->ops->product_delete(s, pid), FOTA_EBUSY);
    assert_int_equal(s->ops->rom_get(s, pid, "v2", &g), 0);
    assert_int_equal(g.nfiles, 2);
    assert_int_equal(s->ops->rom_delete(s, pid, "v2", NULL), 0);
    assert_int_equal(s->ops->rom_current(s, pid, &g), FOTA_ENOENT);

    gen = fota_store_generation(s);
    assert_int_equal(s->ops->product_delete(s, pid), 0);
    assert_true(fota_store_generation(s) > gen);
    assert_int_equal(s->ops->product_get(s, pid, &p), FOTA_ENOENT);
    assert_int_equal(s->ops->product_find(s, "p", &p), FOTA_ENOENT);
    assert_int_equal(s->ops->product_delete(s, pid), FOTA_ENOENT);
    assert_int_equal(s->ops->blob_refs(s, &refs, &n), 0);
    assert_int_equal(n, 0);
    free(refs);
    assert_true(mk_product(s, "p") > pid);
    assert_int_equal(store_log_errors, 0);
}

const struct CMUnitTest store_cases_delete[] = {
    cmocka_unit_test(test_catalog_delete),
    cmocka_unit_test(test_rom_delete),
    cmocka_unit_test(test_device_delete),
    cmocka_unit_test(test_product_delete),
    cmocka_unit_test(test_delete_reopen),
};
const size_t store_cases_delete_n = sizeof store_cases_delete / sizeof store_cases_delete[0];
