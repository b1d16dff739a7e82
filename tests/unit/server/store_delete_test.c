/* store_delete_test.c - rom_delete, device_delete and product_delete on the
 * SQLite store: what goes, what stays, the refusals
 * that change nothing, the generation bump and ids that never come back. */
#include "store_test_util.h"

static int64_t mk_key(struct fota_store *s, int kind, int64_t product, int64_t device, int seed)
{
    struct fota_key k;
    memset(&k, 0, sizeof k);
    fake_hash(k.hash, seed);
    k.kind = kind;
    k.product_id = product;
    k.device_id = device;
    assert_int_equal(s->ops->key_create(s, &k), 0);
    return 0;
}

static int64_t mk_command(struct fota_store *s, int64_t device)
{
    struct fota_command c;
    memset(&c, 0, sizeof c);
    c.device_id = device;
    snprintf(c.action, sizeof c.action, "sys_reboot");
    assert_int_equal(s->ops->command_create(s, &c), 0);
    return c.id;
}

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
    struct fota_store *s = ((struct ctx *)*state)->s;
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
    if (gen)
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
    struct fota_store *s = ((struct ctx *)*state)->s;
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
    if (gen)
        assert_true(fota_store_generation(s) > gen);
    assert_int_equal(s->ops->device_get(s, a, &d), FOTA_ENOENT);
    fake_hash(h, 11);
    assert_int_equal(s->ops->key_lookup(s, h, &k), FOTA_ENOENT);
    fake_hash(h, 12);
    assert_int_equal(s->ops->key_lookup(s, h, &k), FOTA_ENOENT);
    assert_int_equal(s->ops->command_get(s, ca, &c), FOTA_ENOENT);
    assert_int_equal(s->ops->command_list_device(s, a, 0, &cl, &n), 0);
    assert_int_equal(n, 0);
    free(cl);
    assert_int_equal(s->ops->download_bytes(s, a, &bytes), 0);
    assert_int_equal(bytes, 0);
    /* the other device keeps everything */
    fake_hash(h, 13);
    assert_int_equal(s->ops->key_lookup(s, h, &k), 0);
    assert_int_equal(s->ops->command_get(s, cb, &c), 0);
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
    struct fota_store *s = ((struct ctx *)*state)->s;
    int64_t keep = mk_product(s, "keep"), pid = mk_product(s, "p"), dev;
    struct fota_product p, *list = NULL;
    struct fota_key k;
    char h[FOTA_HASH_HEX];
    size_t n = 0;

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

    assert_int_equal(s->ops->product_delete(s, pid), 0);
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

/* SQLite only: the id floor survives a reopen. */
static void test_sqlite_floor_reopen(void **state)
{
    struct ctx *c = *state;
    int64_t pid = mk_product(c->s, "p"), d1 = mk_device(c->s, pid, "a", 0);

    assert_int_equal(c->s->ops->device_delete(c->s, d1), 0);
    fota_store_close(c->s);
    c->s = open_sqlite(c->path);
    assert_true(mk_device(c->s, pid, "b", 0) > d1);
    assert_int_equal(log_errors, 0);
}

#define SHARED_TESTS(X) X(test_rom_delete) X(test_device_delete) X(test_product_delete)

static struct ctx sql_ctx = { NULL, "" };

#define SQL_T(f) cmocka_unit_test_prestate_setup_teardown(f, open_store, close_store, &sql_ctx),

int main(void)
{
    const struct CMUnitTest sql_tests[] = { SHARED_TESTS(SQL_T) SQL_T(test_sqlite_floor_reopen) };
    int fails = 0;

    if (make_tmpdir() != 0)
        return 1;
    fails += cmocka_run_group_tests_name("store_delete.sqlite", sql_tests, NULL, NULL);
    rmdir(tmpdir);
    return fails ? 1 : 0;
}
