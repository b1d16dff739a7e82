/* store_cases_fleet.c - conformance cases: devices, keys, commands,
 * messages, the download and transfer ledgers, concurrent callers, and the
 * catalog generation (which ops move it and which leave it). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "clock.h"
#include "store_fixture.h"

static void test_devices(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t pid = mk_product(s, "p"), p2 = mk_product(s, "p2");
    int64_t id = mk_device(s, pid, "dev", 0), id2 = mk_device(s, pid, "dev2", 0);
    struct fota_device d, g, *list = NULL;
    struct fota_presence pr[3];
    size_t n = 0;

    mk_device(s, p2, "elsewhere", 0);
    memset(&d, 0, sizeof d);
    d.product_id = 5555555;
    assert_int_equal(s->ops->device_create(s, &d), FOTA_ENOENT);

    assert_int_equal(s->ops->device_get(s, id, &g), 0);
    assert_string_equal(g.name, "dev");
    assert_string_equal(g.bssid, "18:fe:34:00:00:01");
    assert_string_equal(g.rom_version, "v1.0");
    assert_int_equal(g.product_id, pid);
    assert_true(g.created > 1600000000);
    assert_int_equal(s->ops->device_get(s, 987654, &g), FOTA_ENOENT);

    /* only the masked fields change */
    memset(&d, 0, sizeof d);
    d.id = id;
    snprintf(d.name, sizeof d.name, "renamed");
    snprintf(d.bssid, sizeof d.bssid, "ff:ff:ff:ff:ff:ff");
    d.running_slot = 2;
    assert_int_equal(s->ops->device_update(s, &d, FOTA_DEV_F_NAME), 0);
    assert_int_equal(s->ops->device_get(s, id, &g), 0);
    assert_string_equal(g.name, "renamed");
    assert_string_equal(g.bssid, "18:fe:34:00:00:01");
    assert_int_equal(g.running_slot, 0);
    assert_string_equal(g.rom_version, "v1.0");

    d.activated = 1;
    d.activated_at = 1700000123;
    snprintf(d.rom_version, sizeof d.rom_version, "v2.1");
    d.last_active = 1700000999;
    d.online = 1;
    d.key_generation = 3;
    assert_int_equal(s->ops->device_update(s, &d, FOTA_DEV_F_BSSID | FOTA_DEV_F_ACTIVATION |
                                                      FOTA_DEV_F_ROM_VERSION | FOTA_DEV_F_SLOT), 0);
    assert_int_equal(s->ops->device_get(s, id, &g), 0);
    assert_string_equal(g.bssid, "ff:ff:ff:ff:ff:ff");
    assert_int_equal(g.activated, 1);
    assert_int_equal(g.activated_at, 1700000123);
    assert_string_equal(g.rom_version, "v2.1");
    assert_int_equal(g.running_slot, 2);
    assert_int_equal(g.last_active, 0);
    assert_int_equal(g.online, 0);
    assert_int_equal(g.key_generation, 0);
    assert_int_equal(s->ops->device_update(s, &d, FOTA_DEV_F_PRESENCE | FOTA_DEV_F_KEYGEN), 0);
    assert_int_equal(s->ops->device_get(s, id, &g), 0);
    assert_int_equal(g.last_active, 1700000999);
    assert_int_equal(g.online, 1);
    assert_int_equal(g.key_generation, 3);
    assert_string_equal(g.name, "renamed");
    d.id = 7777777;
    assert_int_equal(s->ops->device_update(s, &d, FOTA_DEV_F_NAME), FOTA_ENOENT);

    /* presence batch; an unknown id is skipped */
    pr[0] = (struct fota_presence){ id, 1700001000, 0 };
    pr[1] = (struct fota_presence){ 31337313, 1700001000, 1 };
    pr[2] = (struct fota_presence){ id2, 1700001001, 1 };
    assert_int_equal(s->ops->device_presence_batch(s, pr, 3), 0);
    assert_int_equal(s->ops->device_presence_batch(s, pr, 0), 0);
    assert_int_equal(s->ops->device_get(s, id, &g), 0);
    assert_int_equal(g.last_active, 1700001000);
    assert_int_equal(g.online, 0);
    assert_string_equal(g.name, "renamed");
    assert_int_equal(s->ops->device_get(s, id2, &g), 0);
    assert_int_equal(g.last_active, 1700001001);
    assert_int_equal(g.online, 1);
    /* a device named twice in a batch (gone, then back): its last row */
    pr[0] = (struct fota_presence){ id2, 1700001002, 0 };
    pr[1] = (struct fota_presence){ id, 1700001002, 1 };
    pr[2] = (struct fota_presence){ id2, 1700001003, 1 };
    assert_int_equal(s->ops->device_presence_batch(s, pr, 3), 0);
    assert_int_equal(s->ops->device_get(s, id2, &g), 0);
    assert_int_equal(g.last_active, 1700001003);
    assert_int_equal(g.online, 1);
    pr[0] = (struct fota_presence){ id2, 1700001004, 1 };
    pr[1] = (struct fota_presence){ id2, 1700001005, 0 };
    assert_int_equal(s->ops->device_presence_batch(s, pr, 2), 0);
    assert_int_equal(s->ops->device_get(s, id2, &g), 0);
    assert_int_equal(g.last_active, 1700001005);
    assert_int_equal(g.online, 0);
    assert_int_equal(s->ops->device_get(s, id, &g), 0);
    assert_int_equal(g.online, 1);

    assert_int_equal(s->ops->device_list(s, pid, &list, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].id, id);
    assert_int_equal(list[1].id, id2);
    free(list);
    assert_int_equal(s->ops->device_list(s, 0, &list, &n), 0);
    assert_int_equal(n, 3);
    free(list);
}

static void test_keys(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t pid = mk_product(s, "p"), dev = mk_device(s, pid, "d", 1);
    struct fota_key k, g;

    memset(&k, 0, sizeof k);
    fake_hash(k.hash, 10);
    k.kind = FOTA_KEY_ADMIN;
    assert_int_equal(s->ops->key_create(s, &k), 0);
    assert_int_equal(s->ops->key_create(s, &k), FOTA_EEXIST);

    fake_hash(k.hash, 11);
    k.kind = FOTA_KEY_OWNER;
    k.product_id = pid;
    k.device_id = dev;
    assert_int_equal(s->ops->key_create(s, &k), 0);
    fake_hash(k.hash, 12);
    k.kind = FOTA_KEY_MASTER;
    assert_int_equal(s->ops->key_create(s, &k), 0);
    fake_hash(k.hash, 13);
    k.device_id = 8888888;
    assert_int_equal(s->ops->key_create(s, &k), FOTA_ENOENT);

    fake_hash(k.hash, 10);
    assert_int_equal(s->ops->key_lookup(s, k.hash, &g), 0);
    assert_int_equal(g.kind, FOTA_KEY_ADMIN);
    assert_int_equal(g.product_id, 0);
    assert_int_equal(g.device_id, 0);
    assert_true(g.created > 1600000000);
    fake_hash(k.hash, 11);
    assert_int_equal(s->ops->key_lookup(s, k.hash, &g), 0);
    assert_int_equal(g.kind, FOTA_KEY_OWNER);
    assert_int_equal(g.product_id, pid);
    assert_int_equal(g.device_id, dev);
    assert_string_equal(g.hash, k.hash);
    fake_hash(k.hash, 13);
    assert_int_equal(s->ops->key_lookup(s, k.hash, &g), FOTA_ENOENT);

    /* delete the owner key only, then everything of the device */
    assert_int_equal(s->ops->key_delete_for_device(s, dev, FOTA_KEY_OWNER), 0);
    fake_hash(k.hash, 11);
    assert_int_equal(s->ops->key_lookup(s, k.hash, &g), FOTA_ENOENT);
    fake_hash(k.hash, 12);
    assert_int_equal(s->ops->key_lookup(s, k.hash, &g), 0);
    assert_int_equal(s->ops->key_delete_for_device(s, dev, 0), 0);
    assert_int_equal(s->ops->key_lookup(s, k.hash, &g), FOTA_ENOENT);
    fake_hash(k.hash, 10);
    assert_int_equal(s->ops->key_lookup(s, k.hash, &g), 0);   /* admin untouched */
    assert_int_equal(s->ops->key_delete_for_device(s, dev, 0), 0);  /* none left: still 0 */
}

static void test_commands(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t pid = mk_product(s, "p"), dev = mk_device(s, pid, "d", 1);
    struct fota_command c, c2, g, *list = NULL;
    size_t n = 0;

    memset(&c, 0, sizeof c);
    c.device_id = dev;
    snprintf(c.action, sizeof c.action, "sys_upgrade");
    c.params = json_of("{\"version\": \"v1.1\"}");
    assert_int_equal(s->ops->command_create(s, &c), 0);
    assert_true(c.id > 0);
    assert_true(c.nonce > 0 && c.nonce <= 0x7fffffff);
    assert_int_equal(c.state, FOTA_CMD_QUEUED);
    assert_true(c.created > 1600000000 && c.updated == c.created);

    memset(&c2, 0, sizeof c2);
    c2.device_id = dev;
    c2.nonce = 12345;
    c2.state = FOTA_CMD_DELIVERED;
    snprintf(c2.action, sizeof c2.action, "sys_reboot");
    assert_int_equal(s->ops->command_create(s, &c2), 0);
    assert_int_equal(c2.nonce, 12345);
    c2.device_id = 4444444;
    assert_int_equal(s->ops->command_create(s, &c2), FOTA_ENOENT);

    assert_int_equal(s->ops->command_get(s, c.id, &g), 0);
    assert_string_equal(g.action, "sys_upgrade");
    assert_json_text(g.params, "{\"version\": \"v1.1\"}");
    assert_null(g.result);
    assert_int_equal(g.nonce, c.nonce);
    assert_int_equal(g.device_id, dev);
    fota_store_command_cleanup(&g);

    c.state = FOTA_CMD_DONE;
    c.result = json_of("{\"status\": 200}");
    c.updated = 1800000000;
    assert_int_equal(s->ops->command_update(s, &c), 0);
    assert_int_equal(s->ops->command_get(s, c.id, &g), 0);
    assert_int_equal(g.state, FOTA_CMD_DONE);
    assert_json_text(g.result, "{\"status\": 200}");
    assert_int_equal(g.updated, 1800000000);
    assert_json_text(g.params, "{\"version\": \"v1.1\"}");
    g.id = 99999999;
    assert_int_equal(s->ops->command_update(s, &g), FOTA_ENOENT);
    assert_int_equal(s->ops->command_get(s, 99999999, &g), FOTA_ENOENT);
    fota_store_command_cleanup(&g);
    fota_store_command_cleanup(&c);

    assert_int_equal(s->ops->command_list_device(s, dev, 0, &list, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].id, c.id);   /* oldest first */
    assert_int_equal(list[1].id, c2.id);
    assert_json_text(list[1].params, "{}");   /* none stored: an empty object */
    fota_store_command_list_free(list, n);
    assert_int_equal(s->ops->command_list_device(s, dev, FOTA_CMD_DELIVERED, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].action, "sys_reboot");
    fota_store_command_list_free(list, n);
    assert_int_equal(s->ops->command_list_device(s, dev, FOTA_CMD_QUEUED, &list, &n), 0);
    assert_int_equal(n, 0);
    fota_store_command_list_free(list, n);
}

/* A reply names its command by nonce: the device's newest command with it,
 * never another device's. */
static void test_command_find_nonce(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t pid = mk_product(s, "p"), a = mk_device(s, pid, "a", 1), b = mk_device(s, pid, "b", 1);
    int64_t devs[3] = { a, b, a }, nonces[3] = { 0, 0, 0 }, ids[3];
    struct fota_command c, old, g;

    memset(&c, 0, sizeof c);
    c.device_id = a;
    c.nonce = 4242;
    snprintf(c.action, sizeof c.action, "sys_reboot");
    assert_int_equal(s->ops->command_create(s, &c), 0);
    old = c;
    assert_int_equal(s->ops->command_find_nonce(s, a, 4242, &g), 0);
    assert_int_equal(g.id, old.id);
    assert_int_equal(g.device_id, a);
    assert_string_equal(g.action, "sys_reboot");
    assert_int_equal(g.state, FOTA_CMD_QUEUED);
    fota_store_command_cleanup(&g);
    assert_int_equal(s->ops->command_find_nonce(s, b, 4242, &g), FOTA_ENOENT);
    assert_int_equal(s->ops->command_find_nonce(s, a, 4243, &g), FOTA_ENOENT);
    assert_int_equal(s->ops->command_find_nonce(s, 987654, 4242, &g), FOTA_ENOENT);

    /* the same nonce again on a: the newest wins; on b: b's own */
    snprintf(c.action, sizeof c.action, "sys_upgrade");
    assert_int_equal(s->ops->command_create(s, &c), 0);
    assert_true(c.id > old.id);
    c.device_id = b;
    assert_int_equal(s->ops->command_create(s, &c), 0);
    assert_int_equal(s->ops->command_find_nonce(s, a, 4242, &g), 0);
    assert_int_equal(g.id, c.id - 1);
    assert_string_equal(g.action, "sys_upgrade");
    fota_store_command_cleanup(&g);
    assert_int_equal(s->ops->command_find_nonce(s, b, 4242, &g), 0);
    assert_int_equal(g.id, c.id);
    fota_store_command_cleanup(&g);

    /* batch rows are found by the nonces they were given, with their state */
    memset(&c, 0, sizeof c);
    snprintf(c.action, sizeof c.action, "sys_upgrade");
    assert_int_equal(s->ops->command_create_many(s, &c, devs, nonces, ids, 3), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(s->ops->command_find_nonce(s, devs[i], nonces[i], &g), 0);
        assert_int_equal(g.id, ids[i]);
        fota_store_command_cleanup(&g);
    }
    json_t *ok = json_of("{\"status\": 200}");
    struct fota_command_set set = { ids[1], FOTA_CMD_ACKED, 0, ok };
    assert_int_equal(s->ops->command_update_batch(s, &set, 1), 0);
    json_decref(ok);
    assert_int_equal(s->ops->command_find_nonce(s, b, nonces[1], &g), 0);
    assert_int_equal(g.state, FOTA_CMD_ACKED);
    assert_json_text(g.result, "{\"status\": 200}");
    fota_store_command_cleanup(&g);
}

static void test_messages(void **state)
{
    struct fota_store *s = store_of(state);
    struct fota_message_filter f;
    struct fota_message m, *list = NULL;
    int64_t id[6];
    size_t n = 0;

    id[0] = add_msg(s, 1, 10, "m0");
    id[1] = add_msg(s, 1, 11, "m1");
    id[2] = add_msg(s, 2, 20, "m2");
    id[3] = add_msg(s, 1, 10, "m3");
    id[4] = add_msg(s, 1, 0, "m4");
    memset(&m, 0, sizeof m);
    m.product_id = 2;
    m.created = 1234567;
    snprintf(m.action, sizeof m.action, "m5");
    assert_int_equal(s->ops->message_add(s, &m), 0);
    id[5] = m.id;
    assert_int_equal(m.created, 1234567);
    memset(&m, 0, sizeof m);
    assert_int_equal(s->ops->message_add(s, &m), FOTA_EINVAL);   /* no action */

    memset(&f, 0, sizeof f);
    assert_int_equal(s->ops->message_list(s, &f, &list, &n), 0);
    assert_int_equal(n, 6);
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(list[i].id, id[5 - i]);   /* newest first */
    assert_string_equal(list[1].body, "{\"a\": \"m4\"}");
    assert_int_equal(list[0].created, 1234567);
    free(list);

    f.product_id = 1;
    assert_int_equal(s->ops->message_list(s, &f, &list, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(list[0].id, id[4]);
    assert_int_equal(list[3].id, id[0]);
    free(list);

    f.device_id = 10;
    assert_int_equal(s->ops->message_list(s, &f, &list, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].id, id[3]);
    assert_int_equal(list[1].id, id[0]);
    free(list);

    /* paging backwards with before_id */
    memset(&f, 0, sizeof f);
    f.limit = 2;
    assert_int_equal(s->ops->message_list(s, &f, &list, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(list[1].id, id[4]);
    f.before_id = list[1].id;
    free(list);
    assert_int_equal(s->ops->message_list(s, &f, &list, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].id, id[3]);
    assert_int_equal(list[1].id, id[2]);
    free(list);

    /* following with after_id: oldest first so a limit skips nothing */
    memset(&f, 0, sizeof f);
    f.after_id = id[1];
    f.limit = 2;
    assert_int_equal(s->ops->message_list(s, &f, &list, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].id, id[2]);
    assert_int_equal(list[1].id, id[3]);
    free(list);
    f.after_id = id[5];
    assert_int_equal(s->ops->message_list(s, &f, &list, &n), 0);
    assert_int_equal(n, 0);
    free(list);
}

/* report_batch: every row's reported fields and message in one
 * transaction, ids in row order; a deleted device's row keeps its message;
 * a bad row writes nothing; reports count in their product's minute and
 * move their device's generation, not the catalog's. */
static void test_report_batch(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t pid = mk_product(s, "reports"), a = mk_device(s, pid, "a", 1);
    int64_t b = mk_device(s, pid, "b", 1);
    struct fota_report_row rows[3];
    struct fota_device d;
    struct fota_message_filter f;
    struct fota_message *list = NULL;
    size_t n = 0;

    memset(rows, 0, sizeof rows);
    int64_t devs[3] = { a, b, 999999 };
    for (int i = 0; i < 3; i++) {
        rows[i].m.product_id = pid;
        rows[i].m.device_id = devs[i];
        snprintf(rows[i].m.action, sizeof rows[i].m.action, "device_upgrade_success");
        snprintf(rows[i].m.body, sizeof rows[i].m.body, "{\"i\": %d}", i);
        rows[i].fields = FOTA_DEV_F_ROM_VERSION | FOTA_DEV_F_SLOT;
        snprintf(rows[i].rom_version, sizeof rows[i].rom_version, "v2.%d", i);
        rows[i].running_slot = 2;
    }
    rows[1].fields = FOTA_DEV_F_ROM_VERSION;   /* its slot stays */
    rows[1].m.created = 1234567;
    uint64_t gen = fota_store_generation(s), ga = fota_store_device_generation(s, a);
    assert_int_equal(s->ops->report_batch(s, rows, 3), 0);
    assert_true(fota_store_generation(s) == gen);
    assert_true(fota_store_device_generation(s, a) > ga);
    assert_true(rows[0].m.id > 0 && rows[1].m.id > rows[0].m.id && rows[2].m.id > rows[1].m.id);
    assert_true(rows[0].m.created > 0);
    assert_int_equal(rows[1].m.created, 1234567);
    assert_int_equal(s->ops->device_get(s, a, &d), 0);
    assert_string_equal(d.rom_version, "v2.0");
    assert_int_equal(d.running_slot, 2);
    assert_int_equal(s->ops->device_get(s, b, &d), 0);
    assert_string_equal(d.rom_version, "v2.1");
    assert_int_equal(d.running_slot, 0);
    memset(&f, 0, sizeof f);
    f.product_id = pid;
    assert_int_equal(s->ops->message_list(s, &f, &list, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(list[0].id, rows[2].m.id);
    assert_int_equal(list[0].device_id, 999999);
    assert_string_equal(list[2].body, "{\"i\": 0}");
    free(list);

    /* a bad row: nothing of the batch is written */
    struct fota_report_row bad[2];
    memcpy(bad, rows, sizeof bad);
    bad[0].m.id = bad[1].m.id = 0;
    bad[1].fields = FOTA_DEV_F_NAME;
    assert_int_equal(s->ops->report_batch(s, bad, 2), FOTA_EINVAL);
    bad[1].fields = 0;
    bad[1].m.action[0] = '\0';
    assert_int_equal(s->ops->report_batch(s, bad, 2), FOTA_EINVAL);
    assert_int_equal(s->ops->report_batch(s, bad, 0), 0);
    assert_int_equal(s->ops->message_list(s, &f, &list, &n), 0);
    assert_int_equal(n, 3);
    free(list);

    /* counted as message_add counts them */
    struct fota_activity_row *act = NULL;
    int64_t now = fota_clock_wall_s();
    assert_int_equal(s->ops->product_activity(s, pid, now - 3600, now + 60, 3600, &act, &n), 0);
    int64_t up = 0;
    for (size_t i = 0; i < n; i++)
        up += act[i].upgraded;
    assert_int_equal(up, 2);   /* the one of 1234567 is older than the window */
    free(act);
}

static void test_downloads(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t pid = mk_product(s, "p"), dev = mk_device(s, pid, "d", 1);
    struct fota_rom r;
    int64_t bytes = -1;

    fill_rom(&r, pid, "v1");
    assert_int_equal(s->ops->rom_create(s, &r), 0);
    assert_int_equal(s->ops->download_bytes(s, dev, &bytes), 0);
    assert_int_equal(bytes, 0);

    assert_int_equal(s->ops->download_add(s, dev, r.files[0].id, 1000, 0), 0);
    assert_int_equal(s->ops->download_add(s, dev, r.files[0].id, 299000, 1), 0);
    assert_int_equal(s->ops->download_add(s, dev, r.files[1].id, 500, 0), 0);
    assert_int_equal(s->ops->download_add(s, 0, r.files[1].id, 300004, 1), 0);   /* product key */
    assert_int_equal(s->ops->download_add(s, dev, 76543210, 5, 0), FOTA_ENOENT);
    assert_int_equal(s->ops->download_add(s, dev, r.files[0].id, -5, 0), FOTA_EINVAL);

    assert_int_equal(s->ops->download_bytes(s, dev, &bytes), 0);
    assert_int_equal(bytes, 300500);
    assert_int_equal(s->ops->download_bytes(s, 0, &bytes), 0);
    assert_int_equal(bytes, 300004);
    assert_int_equal(s->ops->rom_get(s, pid, "v1", &r), 0);
    assert_int_equal(r.files[0].download_count, 1);
    assert_int_equal(r.files[1].download_count, 1);
}

static void test_download_batch(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t pid = mk_product(s, "p"), dev = mk_device(s, pid, "d", 1);
    int64_t other = mk_device(s, pid, "e", 2);
    struct fota_rom r;
    int64_t bytes = -1;

    fill_rom(&r, pid, "v1");
    assert_int_equal(s->ops->rom_create(s, &r), 0);
    struct fota_download_row rows[] = {
        { dev, r.files[0].id, 1000, 0 },
        { dev, r.files[0].id, 299000, 1 },      /* the same (device, file): adds up */
        { dev, 76543210, 5, 1 },                /* an unknown file: skipped */
        { dev, r.files[1].id, 500, 0 },
        { 0, r.files[1].id, 300004, 1 },        /* product key */
        { other, r.files[1].id, 7, 1 },
    };
    assert_int_equal(s->ops->download_add_batch(s, rows, 6), 0);
    assert_int_equal(s->ops->download_add_batch(s, rows, 0), 0);
    assert_int_equal(s->ops->download_bytes(s, dev, &bytes), 0);
    assert_int_equal(bytes, 300500);
    assert_int_equal(s->ops->download_bytes(s, 0, &bytes), 0);
    assert_int_equal(bytes, 300004);
    assert_int_equal(s->ops->download_bytes(s, other, &bytes), 0);
    assert_int_equal(bytes, 7);
    assert_int_equal(s->ops->rom_get(s, pid, "v1", &r), 0);
    assert_int_equal(r.files[0].download_count, 1);
    assert_int_equal(r.files[1].download_count, 2);

    /* a negative row anywhere: nothing of the batch is written */
    struct fota_download_row bad[] = {
        { dev, r.files[0].id, 10, 1 },
        { dev, r.files[1].id, -1, 0 },
    };
    assert_int_equal(s->ops->download_add_batch(s, bad, 2), FOTA_EINVAL);
    bad[1].bytes = 1;
    bad[1].completed = -1;
    assert_int_equal(s->ops->download_add_batch(s, bad, 2), FOTA_EINVAL);
    assert_int_equal(s->ops->download_bytes(s, dev, &bytes), 0);
    assert_int_equal(bytes, 300500);
    assert_int_equal(s->ops->rom_get(s, pid, "v1", &r), 0);
    assert_int_equal(r.files[0].download_count, 1);
}

static void test_transfers(void **state)
{
    struct fota_store *s = store_of(state);
    struct fota_transfer t, *list = NULL;
    size_t n = 0;

    for (int i = 0; i < 3; i++) {
        memset(&t, 0, sizeof t);
        snprintf(t.peer, sizeof t.peer, "127.0.0.1:%d", 40000 + i);
        t.section = 1 + (i & 1);
        t.bytes = 1000 * (i + 1);
        snprintf(t.result, sizeof t.result, i == 2 ? "stalled" : "ok");
        t.duration_ms = 10 * i;
        snprintf(t.mode, sizeof t.mode, "paced");
        assert_int_equal(s->ops->transfer_add(s, &t), 0);
        assert_true(t.id > 0 && t.created > 1600000000);
    }
    assert_int_equal(s->ops->transfer_list(s, 2, &list, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].peer, "127.0.0.1:40002");
    assert_string_equal(list[0].result, "stalled");
    assert_int_equal(list[0].bytes, 3000);
    assert_int_equal(list[0].section, 1);
    assert_int_equal(list[0].duration_ms, 20);
    assert_string_equal(list[0].mode, "paced");
    assert_string_equal(list[1].peer, "127.0.0.1:40001");
    free(list);
    assert_int_equal(s->ops->transfer_list(s, 0, &list, &n), 0);
    assert_int_equal(n, 3);
    free(list);
}


struct thread_arg {
    struct fota_store *s;
    int base;
    int fails;
};

static void *writer_thread(void *p)
{
    struct thread_arg *a = p;
    struct fota_message m;
    struct fota_product q;

    for (int i = 0; i < 40; i++) {
        memset(&m, 0, sizeof m);
        m.product_id = a->base;
        snprintf(m.action, sizeof m.action, "t%d", i);
        if (a->s->ops->message_add(a->s, &m) != 0)
            a->fails++;
        if (a->s->ops->product_get(a->s, 1, &q) != 0)
            a->fails++;
    }
    return NULL;
}

static void test_threads(void **state)
{
    struct fota_store *s = store_of(state);
    struct thread_arg args[4];
    pthread_t th[4];
    struct fota_message_filter f;
    struct fota_message *list = NULL;
    size_t n = 0;

    assert_int_equal(mk_product(s, "shared") > 0, 1);
    for (int i = 0; i < 4; i++) {
        args[i] = (struct thread_arg){ s, i + 1, 0 };
        assert_int_equal(pthread_create(&th[i], NULL, writer_thread, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].fails, 0);
    }
    memset(&f, 0, sizeof f);
    f.limit = 1000;
    assert_int_equal(s->ops->message_list(s, &f, &list, &n), 0);
    assert_int_equal(n, 160);
    free(list);
}

/* A follower reading "after the last id it saw" while writers add messages
 * on threads of their own sees every message once, in id order: ids are
 * handed out in commit order (one writer in SQLite; an advisory lock to the
 * commit in PostgreSQL), so none commits behind an id already read. */
#define FOLLOW_WRITERS 4
#define FOLLOW_EACH    60

static void *follow_writer(void *p)
{
    struct thread_arg *a = p;
    struct fota_message m;

    for (int i = 0; i < FOLLOW_EACH; i++) {
        memset(&m, 0, sizeof m);
        m.product_id = a->base;
        snprintf(m.action, sizeof m.action, "f%d", i);
        if (a->s->ops->message_add(a->s, &m) != 0)
            a->fails++;
    }
    return NULL;
}

static void test_message_follow(void **state)
{
    struct fota_store *s = store_of(state);
    struct thread_arg args[FOLLOW_WRITERS];
    pthread_t th[FOLLOW_WRITERS];
    struct fota_message_filter f;
    struct fota_message *list = NULL;
    int64_t last, deadline = fota_clock_mono_ms() + 20000;
    size_t n = 0, seen = 0, total = FOLLOW_WRITERS * FOLLOW_EACH, disorder = 0;

    last = add_msg(s, 9, 0, "start");   /* following starts after it (after_id 0: newest first) */
    for (int i = 0; i < FOLLOW_WRITERS; i++) {
        args[i] = (struct thread_arg){ s, i + 1, 0 };
        assert_int_equal(pthread_create(&th[i], NULL, follow_writer, &args[i]), 0);
    }
    /* Polls until every message is seen or the deadline passes. */
    while (seen < total && fota_clock_mono_ms() < deadline) {
        memset(&f, 0, sizeof f);
        f.after_id = last;
        f.limit = 7;
        if (s->ops->message_list(s, &f, &list, &n) != 0)
            break;   /* asserted below, once the writers are joined */
        for (size_t i = 0; i < n; i++) {
            disorder += list[i].id <= last;
            last = list[i].id;
        }
        seen += n;
        free(list);
    }
    for (int i = 0; i < FOLLOW_WRITERS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].fails, 0);
    }
    assert_int_equal(disorder, 0);
    /* what is there now: the follower saw it all, and nothing more is left */
    memset(&f, 0, sizeof f);
    f.limit = 1000;
    assert_int_equal(s->ops->message_list(s, &f, &list, &n), 0);
    assert_int_equal(n, total + 1);
    free(list);
    assert_int_equal(seen, total);
}

/* Stored times come from fotad's clock (clock.h), not the database's or
 * the C library's: moved a day forward, every new row says so. */
static void test_clock(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t t0 = fota_clock_wall_s() + 86400, pid, dev;
    struct fota_product p;
    struct fota_device d;
    struct fota_rom r;
    struct fota_command c;
    struct fota_message m;
    struct fota_transfer t;
    struct fota_key k;

    fota_clock_advance_ms(86400 * 1000);
    pid = mk_product(s, "later");
    dev = mk_device(s, pid, "d", 0);
    mk_rom(s, pid, "v1");
    mk_key(s, FOTA_KEY_PRODUCT, pid, 0, 50);
    memset(&c, 0, sizeof c);
    c.device_id = dev;
    snprintf(c.action, sizeof c.action, "sys_reboot");
    assert_int_equal(s->ops->command_create(s, &c), 0);
    memset(&m, 0, sizeof m);
    snprintf(m.action, sizeof m.action, "hello");
    assert_int_equal(s->ops->message_add(s, &m), 0);
    memset(&t, 0, sizeof t);
    snprintf(t.result, sizeof t.result, "ok");
    assert_int_equal(s->ops->transfer_add(s, &t), 0);

    assert_int_equal(s->ops->product_get(s, pid, &p), 0);
    assert_true(p.created >= t0);
    assert_int_equal(s->ops->device_get(s, dev, &d), 0);
    assert_true(d.created >= t0);
    assert_int_equal(s->ops->rom_get(s, pid, "v1", &r), 0);
    assert_true(r.created >= t0);
    fake_hash(k.hash, 50);
    assert_int_equal(s->ops->key_lookup(s, k.hash, &k), 0);
    assert_true(k.created >= t0);
    assert_int_equal(s->ops->command_get(s, c.id, &c), 0);
    assert_true(c.created >= t0 && c.updated >= t0);
    fota_store_command_cleanup(&c);
    assert_true(m.created >= t0 && t.created >= t0);
}

/* The generation moves with the catalog (what the download caches hold:
 * keys, devices, releases) and stays put under fleet traffic, so a busy
 * fleet keeps those caches warm (store.h). Deletes: store_cases_delete.c. */
#define MOVES(call)                                                                \
    do {                                                                           \
        uint64_t g0_ = fota_store_generation(s);                                   \
        assert_int_equal((call), 0);                                               \
        assert_true(fota_store_generation(s) > g0_);                               \
    } while (0)
#define STAYS(call)                                                                \
    do {                                                                           \
        uint64_t g0_ = fota_store_generation(s);                                   \
        assert_int_equal((call), 0);                                               \
        assert_true(fota_store_generation(s) == g0_);                              \
    } while (0)

static void test_generation(void **state)
{
    struct fota_store *s = store_of(state);
    struct fota_product p;
    struct fota_device d;
    struct fota_rom r;
    struct fota_key k;
    struct fota_command c;
    struct fota_message m;
    struct fota_transfer t;
    struct fota_command_set set;
    struct fota_presence pr;
    int64_t pid, dev, ids[1], nonces[1] = { 0 }, devs[1];

    assert_true(fota_store_generation(s) > 0);   /* counting from the start */

    /* the catalog: every write moves it */
    memset(&p, 0, sizeof p);
    snprintf(p.name, sizeof p.name, "gen");
    MOVES(s->ops->product_create(s, &p));
    pid = p.id;
    memset(&d, 0, sizeof d);
    d.product_id = pid;
    MOVES(s->ops->device_create(s, &d));
    dev = d.id;
    fill_rom(&r, pid, "v1");
    MOVES(s->ops->rom_create(s, &r));
    MOVES(s->ops->rom_set_current(s, pid, "v1"));
    memset(&k, 0, sizeof k);
    fake_hash(k.hash, 40);
    k.kind = FOTA_KEY_MASTER;
    k.product_id = pid;
    k.device_id = dev;
    MOVES(s->ops->key_create(s, &k));
    MOVES(s->ops->key_delete_for_device(s, dev, FOTA_KEY_MASTER));
    d.key_generation = 1;
    MOVES(s->ops->device_update(s, &d, FOTA_DEV_F_KEYGEN));

    /* fleet traffic: reported fields, names, presence, commands, messages,
     * ledgers and transfers leave it */
    snprintf(d.rom_version, sizeof d.rom_version, "v9");
    snprintf(d.name, sizeof d.name, "renamed");
    STAYS(s->ops->device_update(s, &d, FOTA_DEV_F_REPORTED | FOTA_DEV_F_NAME));
    pr = (struct fota_presence){ dev, 1700000000, 1 };
    STAYS(s->ops->device_presence_batch(s, &pr, 1));
    memset(&c, 0, sizeof c);
    c.device_id = dev;
    snprintf(c.action, sizeof c.action, "sys_upgrade");
    STAYS(s->ops->command_create(s, &c));
    c.state = FOTA_CMD_DONE;
    STAYS(s->ops->command_update(s, &c));
    devs[0] = dev;
    STAYS(s->ops->command_create_many(s, &c, devs, nonces, ids, 1));
    memset(&set, 0, sizeof set);
    set.id = ids[0];
    set.state = FOTA_CMD_ACKED;
    STAYS(s->ops->command_update_batch(s, &set, 1));
    memset(&m, 0, sizeof m);
    m.device_id = dev;
    snprintf(m.action, sizeof m.action, "device_upgrade_success");
    STAYS(s->ops->message_add(s, &m));
    memset(&t, 0, sizeof t);
    t.section = 1;
    snprintf(t.result, sizeof t.result, "ok");
    STAYS(s->ops->transfer_add(s, &t));
    STAYS(s->ops->download_add(s, dev, r.files[0].id, 1000, 1));
    struct fota_download_row dl = { dev, r.files[0].id, 1000, 1 };
    STAYS(s->ops->download_add_batch(s, &dl, 1));
}

/* A device's generation moves with every write of its row and its commands
 * (what the check-in caches of server/arduino hold), not with another
 * device's, nor with presence, messages or ledgers (store.h). */
#define DEV_MOVES(dev, other, call)                                                \
    do {                                                                           \
        uint64_t d0_ = fota_store_device_generation(s, (dev));                     \
        uint64_t o0_ = fota_store_device_generation(s, (other));                   \
        assert_int_equal((call), 0);                                               \
        assert_true(fota_store_device_generation(s, (dev)) > d0_);                 \
        assert_true(fota_store_device_generation(s, (other)) == o0_);              \
    } while (0)
#define DEV_STAYS(dev, call)                                                       \
    do {                                                                           \
        uint64_t d0_ = fota_store_device_generation(s, (dev));                     \
        assert_int_equal((call), 0);                                               \
        assert_true(fota_store_device_generation(s, (dev)) == d0_);                \
    } while (0)

static void test_device_generation(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t pid = mk_product(s, "devgen"), a = mk_device(s, pid, "a", 1);
    int64_t b = mk_device(s, pid, "b", 1), devs[2] = { a, b }, ids[2], nonces[2] = { 0, 0 };
    struct fota_device d;
    struct fota_command c;
    struct fota_command_set set[2];
    struct fota_message m;
    struct fota_presence pr;
    struct fota_rom r;
    uint64_t ga, gb;

    /* ids that share no slot */
    assert_true((uint64_t)a % FOTA_STORE_DEVICE_SLOTS != (uint64_t)b % FOTA_STORE_DEVICE_SLOTS);
    mk_rom(s, pid, "v1");
    assert_int_equal(s->ops->rom_get(s, pid, "v1", &r), 0);

    assert_int_equal(s->ops->device_get(s, a, &d), 0);
    snprintf(d.rom_version, sizeof d.rom_version, "v2");
    DEV_MOVES(a, b, s->ops->device_update(s, &d, FOTA_DEV_F_ROM_VERSION));
    memset(&c, 0, sizeof c);
    c.device_id = a;
    snprintf(c.action, sizeof c.action, "sys_upgrade");
    DEV_MOVES(a, b, s->ops->command_create(s, &c));
    c.state = FOTA_CMD_DELIVERED;
    DEV_MOVES(a, b, s->ops->command_update(s, &c));

    /* a batch moves each device it writes */
    ga = fota_store_device_generation(s, a);
    gb = fota_store_device_generation(s, b);
    assert_int_equal(s->ops->command_create_many(s, &c, devs, nonces, ids, 2), 0);
    assert_true(fota_store_device_generation(s, a) > ga);
    assert_true(fota_store_device_generation(s, b) > gb);
    memset(set, 0, sizeof set);
    set[0].id = ids[1];
    set[0].state = FOTA_CMD_ACKED;
    set[1].id = 999999; /* unknown: skipped */
    set[1].state = FOTA_CMD_ACKED;
    DEV_MOVES(b, a, s->ops->command_update_batch(s, set, 2));

    /* a queued command replaced, then the new one cancelled */
    memset(&c, 0, sizeof c);
    c.device_id = a;
    snprintf(c.action, sizeof c.action, "sys_upgrade");
    DEV_MOVES(a, b, s->ops->command_create(s, &c));
    DEV_MOVES(a, b, s->ops->command_create_replacing(s, &c, NULL, 0, NULL));
    DEV_MOVES(a, b, s->ops->command_cancel(s, a, c.id, NULL, NULL));

    /* an unknown command moves nothing */
    ga = fota_store_device_generation(s, a);
    c.id = 999999;
    assert_int_equal(s->ops->command_update(s, &c), FOTA_ENOENT);
    assert_true(fota_store_device_generation(s, a) == ga);

    pr = (struct fota_presence){ a, 1700000000, 1 };
    DEV_STAYS(a, s->ops->device_presence_batch(s, &pr, 1));
    memset(&m, 0, sizeof m);
    m.device_id = a;
    snprintf(m.action, sizeof m.action, "device_upgrade_success");
    DEV_STAYS(a, s->ops->message_add(s, &m));
    DEV_STAYS(a, s->ops->download_add(s, a, r.files[0].id, 1000, 1));
    struct fota_download_row dl = { a, r.files[0].id, 1000, 1 };
    DEV_STAYS(a, s->ops->download_add_batch(s, &dl, 1));
}

/* device_create_many's key rows: hashes made of the device id ("k" + kind +
 * id), so that a device named twice would collide. */
static void batch_keys(void *ud, const struct fota_device *d, struct fota_key k[FOTA_DEVICE_KEYS])
{
    int *calls = ud;
    (*calls)++;
    for (int i = 0; i < FOTA_DEVICE_KEYS; i++) {
        memset(&k[i], 0, sizeof k[i]);
        snprintf(k[i].hash, sizeof k[i].hash, "k%d-%lld", i, (long long)d->id);
        k[i].kind = i == 0 ? FOTA_KEY_MASTER : FOTA_KEY_OWNER;
    }
}

static void test_devices_many(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t pid = mk_product(s, "batch"), before = mk_device(s, pid, "before", 0);
    struct fota_device ds[3], g, *list = NULL;
    struct fota_key k;
    size_t n = 0;
    int calls = 0;

    memset(ds, 0, sizeof ds);
    for (int i = 0; i < 3; i++) {
        ds[i].product_id = pid;
        snprintf(ds[i].name, sizeof ds[i].name, "batch-%d", i);
    }
    snprintf(ds[1].bssid, sizeof ds[1].bssid, "18:fe:34:00:00:09");
    assert_int_equal(s->ops->device_create_many(s, ds, 0, batch_keys, &calls), FOTA_EINVAL);
    assert_int_equal(s->ops->device_create_many(s, ds, FOTA_DEVICE_BATCH_MAX + 1, batch_keys,
                                                &calls), FOTA_EINVAL);
    assert_int_equal(s->ops->device_create_many(s, ds, 3, batch_keys, &calls), 0);
    assert_int_equal(calls, 3);
    assert_true(ds[0].id > before && ds[1].id > ds[0].id && ds[2].id > ds[1].id);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(s->ops->device_get(s, ds[i].id, &g), 0);
        assert_string_equal(g.name, ds[i].name);
        assert_int_equal(g.product_id, pid);
        assert_int_equal(g.created, ds[i].created);
        assert_true(g.created > 1600000000);
        for (int j = 0; j < FOTA_DEVICE_KEYS; j++) {
            char h[FOTA_HASH_HEX];
            snprintf(h, sizeof h, "k%d-%lld", j, (long long)ds[i].id);
            assert_int_equal(s->ops->key_lookup(s, h, &k), 0);
            assert_int_equal(k.kind, j == 0 ? FOTA_KEY_MASTER : FOTA_KEY_OWNER);
            assert_int_equal(k.product_id, pid);
            assert_int_equal(k.device_id, ds[i].id);
            assert_true(k.created > 1600000000);
        }
    }
    assert_int_equal(s->ops->device_get(s, ds[1].id, &g), 0);
    assert_string_equal(g.bssid, "18:fe:34:00:00:09");

    /* all or none: an unknown product in the middle leaves no device and no key */
    struct fota_device more[3];
    memset(more, 0, sizeof more);
    more[0].product_id = more[2].product_id = pid;
    more[1].product_id = 5555555;
    assert_int_equal(s->ops->device_create_many(s, more, 3, batch_keys, &calls), FOTA_ENOENT);
    assert_int_equal(s->ops->device_list(s, pid, &list, &n), 0);
    assert_int_equal(n, 4);   /* "before" and the three */
    free(list);
    assert_int_equal(s->ops->device_create_many(s, more, 1, batch_keys, &calls), 0);
    assert_true(more[0].id > ds[2].id);
}

const struct CMUnitTest store_cases_fleet[] = {
    cmocka_unit_test(test_devices),
    cmocka_unit_test(test_devices_many),
    cmocka_unit_test(test_keys),
    cmocka_unit_test(test_commands),
    cmocka_unit_test(test_command_find_nonce),
    cmocka_unit_test(test_messages),
    cmocka_unit_test(test_report_batch),
    cmocka_unit_test(test_downloads),
    cmocka_unit_test(test_download_batch),
    cmocka_unit_test(test_transfers),
    cmocka_unit_test(test_threads),
    cmocka_unit_test(test_message_follow),
    cmocka_unit_test(test_clock),
    cmocka_unit_test(test_generation),
    cmocka_unit_test(test_device_generation),
};
const size_t store_cases_fleet_n = sizeof store_cases_fleet / sizeof store_cases_fleet[0];
