/* store_cases_catalog.c - conformance cases: products and releases (create,
 * read, list, the one current release, also switched by two handles at
 * once, the counts a product carries and its head without them) and the
 * blob references the orphan sweep keeps. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store_fixture.h"

static void test_products(void **state)
{
    struct fota_store *s = store_of(state);
    struct fota_product p, q, *list = NULL;
    size_t n = 0;
    int64_t a = mk_product(s, "alpha"), b;

    memset(&p, 0, sizeof p);
    snprintf(p.name, sizeof p.name, "alpha");
    assert_int_equal(s->ops->product_create(s, &p), FOTA_EEXIST);
    memset(&p, 0, sizeof p);
    assert_int_equal(s->ops->product_create(s, &p), FOTA_EINVAL);   /* empty name */
    b = mk_product(s, "beta");
    assert_true(b != a);

    assert_int_equal(s->ops->product_get(s, a, &q), 0);
    assert_int_equal(q.id, a);
    assert_string_equal(q.name, "alpha");
    assert_string_equal(q.serial, "serial-alpha");
    assert_string_equal(q.description, "product alpha");
    assert_string_equal(q.status, "development");
    assert_int_equal(q.flash_map, 4);
    assert_int_equal(q.slot_check, FOTA_SLOT_CHECK_BYTE3);   /* the default */
    assert_true(q.created > 1600000000);
    assert_int_equal(q.devices_total, 0);
    assert_string_equal(q.current_version, "");

    assert_int_equal(s->ops->product_find(s, "beta", &q), 0);
    assert_int_equal(q.id, b);
    assert_int_equal(s->ops->product_find(s, "gamma", &q), FOTA_ENOENT);
    assert_int_equal(s->ops->product_get(s, 999999, &q), FOTA_ENOENT);

    assert_int_equal(s->ops->product_list(s, &list, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].id, a);
    assert_int_equal(list[1].id, b);
    free(list);

    /* slot_check is stored and read back by get, find and list; other values refused */
    memset(&p, 0, sizeof p);
    snprintf(p.name, sizeof p.name, "seed-fleet");
    p.slot_check = 7;
    assert_int_equal(s->ops->product_create(s, &p), FOTA_EINVAL);
    p.slot_check = FOTA_SLOT_CHECK_NAME;
    assert_int_equal(s->ops->product_create(s, &p), 0);
    assert_int_equal(s->ops->product_get(s, p.id, &q), 0);
    assert_int_equal(q.slot_check, FOTA_SLOT_CHECK_NAME);
    assert_int_equal(s->ops->product_find(s, "seed-fleet", &q), 0);
    assert_int_equal(q.slot_check, FOTA_SLOT_CHECK_NAME);
    assert_int_equal(s->ops->product_list(s, &list, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(list[0].slot_check, FOTA_SLOT_CHECK_BYTE3);
    assert_int_equal(list[2].slot_check, FOTA_SLOT_CHECK_NAME);
    free(list);
}

static void test_roms(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t pid = mk_product(s, "p"), other = mk_product(s, "other");
    struct fota_rom r, g, *list = NULL;
    struct fota_product p;
    size_t n = 0;
    char h[FOTA_HASH_HEX];

    fill_rom(&r, pid, "v1.0");
    assert_int_equal(s->ops->rom_create(s, &r), 0);
    assert_true(r.id > 0 && r.files[0].id > 0 && r.files[1].id > 0);
    assert_true(r.files[0].id != r.files[1].id);
    assert_true(r.created > 1600000000);

    /* round trip, both files */
    assert_int_equal(s->ops->rom_get(s, pid, "v1.0", &g), 0);
    assert_int_equal(g.id, r.id);
    assert_int_equal(g.product_id, pid);
    assert_string_equal(g.codename, "code-v1.0");
    assert_string_equal(g.changelog, "changes in v1.0\nline two");
    assert_int_equal(g.current, 0);
    assert_int_equal(g.nfiles, 2);
    assert_string_equal(g.files[0].name, "user1.bin");
    fake_hash(h, 1);
    assert_string_equal(g.files[0].sha256, h);
    assert_int_equal(g.files[0].size, 300000);
    assert_int_equal(g.files[0].slot, 1);
    assert_int_equal(g.files[0].id, r.files[0].id);
    assert_string_equal(g.files[1].name, "user2.bin");
    fake_hash(h, 2);
    assert_string_equal(g.files[1].sha256, h);
    assert_int_equal(g.files[1].size, 300004);
    assert_int_equal(g.files[1].slot, 2);
    assert_int_equal(g.files[1].download_count, 0);

    /* duplicate version in the same product; same version elsewhere is fine */
    fill_rom(&r, pid, "v1.0");
    assert_int_equal(s->ops->rom_create(s, &r), FOTA_EEXIST);
    mk_rom(s, other, "v1.0");
    fill_rom(&r, 424242, "v9");
    assert_int_equal(s->ops->rom_create(s, &r), FOTA_ENOENT);
    fill_rom(&r, pid, "");
    assert_int_equal(s->ops->rom_create(s, &r), FOTA_EINVAL);
    fill_rom(&r, pid, "v1.0");
    r.nfiles = FOTA_ROM_MAX_FILES + 1;
    assert_int_equal(s->ops->rom_create(s, &r), FOTA_EINVAL);
    assert_int_equal(s->ops->rom_get(s, pid, "v2.0", &g), FOTA_ENOENT);

    /* a release whose second file clashes with the first: nothing is left */
    fill_rom(&r, pid, "v1.5");
    snprintf(r.files[1].name, sizeof r.files[1].name, "user1.bin");
    assert_int_equal(s->ops->rom_create(s, &r), FOTA_EEXIST);
    assert_int_equal(s->ops->rom_get(s, pid, "v1.5", &g), FOTA_ENOENT);
    mk_rom(s, pid, "v1.5");   /* the version is still free */

    mk_rom(s, pid, "v2.0");
    assert_int_equal(s->ops->rom_list(s, pid, &list, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(list[0].version, "v2.0");   /* newest first */
    assert_string_equal(list[1].version, "v1.5");
    assert_string_equal(list[2].version, "v1.0");
    assert_int_equal(list[2].nfiles, 2);
    free(list);

    /* current: none, then exclusive */
    assert_int_equal(s->ops->rom_current(s, pid, &g), FOTA_ENOENT);
    assert_int_equal(s->ops->rom_set_current(s, pid, "v1.0"), 0);
    assert_int_equal(s->ops->rom_current(s, pid, &g), 0);
    assert_string_equal(g.version, "v1.0");
    assert_int_equal(g.current, 1);
    assert_int_equal(g.nfiles, 2);
    assert_int_equal(s->ops->product_get(s, pid, &p), 0);
    assert_string_equal(p.current_version, "v1.0");

    assert_int_equal(s->ops->rom_set_current(s, pid, "v2.0"), 0);
    assert_int_equal(s->ops->rom_set_current(s, pid, "v2.0"), 0);   /* again: no-op */
    assert_int_equal(s->ops->rom_set_current(s, pid, "v7"), FOTA_ENOENT);
    assert_int_equal(s->ops->rom_list(s, pid, &list, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(list[0].current, 1);
    assert_int_equal(list[1].current, 0);
    assert_int_equal(list[2].current, 0);
    free(list);
    assert_int_equal(s->ops->product_get(s, pid, &p), 0);
    assert_string_equal(p.current_version, "v2.0");
    /* the other product's release is not touched */
    assert_int_equal(s->ops->rom_current(s, other, &g), FOTA_ENOENT);
    assert_int_equal(s->ops->product_get(s, other, &p), 0);
    assert_string_equal(p.current_version, "");
}

/* blob_refs: distinct, sorted, every release's files (the orphan sweep's keep list). */
static void test_blob_refs(void **state)
{
    struct fota_store *s = store_of(state);
    char (*refs)[FOTA_HASH_HEX] = NULL;
    char h1[FOTA_HASH_HEX], h2[FOTA_HASH_HEX], h3[FOTA_HASH_HEX];
    struct fota_rom r;
    size_t n = 99;
    int64_t pid = mk_product(s, "refs");

    assert_int_equal(s->ops->blob_refs(s, &refs, &n), 0);
    assert_non_null(refs);
    assert_int_equal(n, 0);
    free(refs);
    mk_rom(s, pid, "v1");
    mk_rom(s, pid, "v2");          /* same two hashes again */
    fill_rom(&r, pid, "v3");
    fake_hash(r.files[1].sha256, 3);
    assert_int_equal(s->ops->rom_create(s, &r), 0);
    fake_hash(h1, 1);
    fake_hash(h2, 2);
    fake_hash(h3, 3);
    assert_int_equal(s->ops->blob_refs(s, &refs, &n), 0);
    assert_int_equal(n, 3);
    for (size_t i = 1; i < n; i++)
        assert_true(strcmp(refs[i - 1], refs[i]) < 0);
    for (size_t i = 0; i < n; i++)
        assert_true(strcmp(refs[i], h1) == 0 || strcmp(refs[i], h2) == 0 ||
                    strcmp(refs[i], h3) == 0);
    free(refs);
}

static void test_product_counts(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t a = mk_product(s, "a"), b = mk_product(s, "b");
    struct fota_product p, *list = NULL;
    size_t n = 0;

    mk_device(s, a, "d1", 1);
    mk_device(s, a, "d2", 0);
    mk_device(s, a, "d3", 1);
    mk_device(s, b, "d4", 0);
    mk_rom(s, a, "v1");
    assert_int_equal(s->ops->rom_set_current(s, a, "v1"), 0);

    assert_int_equal(s->ops->product_get(s, a, &p), 0);
    assert_int_equal(p.devices_total, 3);
    assert_int_equal(p.devices_activated, 2);
    assert_string_equal(p.current_version, "v1");
    assert_int_equal(s->ops->product_find(s, "a", &p), 0);
    assert_int_equal(p.devices_total, 3);

    /* product_head: the same row without counting the devices */
    struct fota_product h;
    assert_int_equal(s->ops->product_get(s, a, &p), 0);
    assert_int_equal(s->ops->product_head(s, a, &h), 0);
    assert_int_equal(h.id, a);
    assert_string_equal(h.name, p.name);
    assert_string_equal(h.serial, p.serial);
    assert_string_equal(h.status, p.status);
    assert_string_equal(h.description, p.description);
    assert_int_equal(h.flash_map, p.flash_map);
    assert_int_equal(h.slot_check, p.slot_check);
    assert_int_equal(h.created, p.created);
    assert_string_equal(h.current_version, "v1");
    assert_int_equal(h.devices_total, 0);
    assert_int_equal(h.devices_activated, 0);
    assert_int_equal(s->ops->product_head(s, 999999, &h), FOTA_ENOENT);
    assert_int_equal(s->ops->product_heads(s, &list, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].id, a);
    assert_string_equal(list[0].name, "a");
    assert_string_equal(list[0].current_version, "v1");
    assert_int_equal(list[0].devices_total, 0);
    assert_int_equal(list[1].id, b);
    assert_int_equal(list[1].devices_total, 0);
    free(list);
    list = NULL;

    assert_int_equal(s->ops->product_list(s, &list, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].devices_total, 3);
    assert_int_equal(list[0].devices_activated, 2);
    assert_string_equal(list[0].current_version, "v1");
    assert_int_equal(list[1].devices_total, 1);
    assert_int_equal(list[1].devices_activated, 0);
    assert_string_equal(list[1].current_version, "");
    free(list);
}

/* Two store handles on one database (two fotad, or two threads of one on
 * PostgreSQL) switching one product's current release at once: every
 * switch succeeds, and one release is current at the end. */
struct switcher {
    struct fota_store *s;
    int64_t pid;
    int failures;
};

static void *switch_run(void *arg)
{
    struct switcher *w = arg;

    for (int i = 0; i < 40; i++)
        if (w->s->ops->rom_set_current(w->s, w->pid, i % 2 ? "v1" : "v2") != 0)
            w->failures++;
    return NULL;
}

static void test_set_current_race(void **state)
{
    struct store_fixture *fx = store_fx(state);
    struct fota_store *s = fx->s, *s2 = NULL;
    int64_t pid = mk_product(s, "p");
    struct switcher w[2];
    struct fota_rom *list = NULL;
    pthread_t t[2];
    size_t n = 0, current = 0;

    mk_rom(s, pid, "v1");
    mk_rom(s, pid, "v2");
    assert_int_equal(fx->backend->open(fx, &s2), 0);
    w[0] = (struct switcher){ .s = s, .pid = pid };
    w[1] = (struct switcher){ .s = s2, .pid = pid };
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, switch_run, &w[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    fota_store_close(s2);
    assert_int_equal(w[0].failures, 0);
    assert_int_equal(w[1].failures, 0);
    assert_int_equal(s->ops->rom_list(s, pid, &list, &n), 0);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++)
        current += list[i].current ? 1 : 0;
    free(list);
    assert_int_equal(current, 1);
    assert_int_equal(store_log_errors, 0);
}

const struct CMUnitTest store_cases_catalog[] = {
    cmocka_unit_test(test_products),
    cmocka_unit_test(test_roms),
    cmocka_unit_test(test_blob_refs),
    cmocka_unit_test(test_product_counts),
    cmocka_unit_test(test_set_current_race),
};
const size_t store_cases_catalog_n = sizeof store_cases_catalog / sizeof store_cases_catalog[0];
