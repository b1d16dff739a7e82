/* store_cases_arduino.c - conformance cases of the Arduino-core rows
 * (store_arduino.h): product settings, served-file facts, device
 * registration by MAC or name, reports and upgrade tracking, what goes with
 * a deleted product or device, and which of these move the generation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fota_str.h"
#include "store_fixture.h"

static struct fota_arduino_product aprod(int64_t pid)
{
    struct fota_arduino_product p;
    memset(&p, 0, sizeof p);
    p.product_id = pid;
    p.gzip = 1;
    p.core = 27;
    p.flash_mode = 3;
    snprintf(p.signing_key, sizeof p.signing_key, "-----BEGIN PUBLIC KEY-----\nAAAA\n");
    p.checkin_interval = 3600;
    p.confirm_after = 60;
    return p;
}

static void test_arduino_product(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t pid = mk_product(s, "p"), other = mk_product(s, "q");
    struct fota_arduino_product p = aprod(pid), g;
    uint64_t gen;

    assert_int_equal(s->ops->arduino_product_get(s, pid, &g), FOTA_ENOENT);
    gen = fota_store_generation(s);
    assert_int_equal(s->ops->arduino_product_put(s, &p), 0);
    assert_true(fota_store_generation(s) > gen);
    assert_int_equal(s->ops->arduino_product_get(s, pid, &g), 0);
    assert_int_equal(g.product_id, pid);
    assert_int_equal(g.gzip, 1);
    assert_int_equal(g.core, 27);
    assert_int_equal(g.flash_mode, 3);
    assert_string_equal(g.signing_key, p.signing_key);
    assert_int_equal(g.checkin_interval, 3600);
    assert_int_equal(g.confirm_after, 60);
    /* replaced as a whole */
    p.gzip = 0;
    p.flash_mode = -1;
    p.signing_key[0] = '\0';
    p.checkin_interval = 120;
    assert_int_equal(s->ops->arduino_product_put(s, &p), 0);
    assert_int_equal(s->ops->arduino_product_get(s, pid, &g), 0);
    assert_int_equal(g.gzip, 0);
    assert_int_equal(g.flash_mode, -1);
    assert_string_equal(g.signing_key, "");
    assert_int_equal(g.checkin_interval, 120);
    assert_int_equal(s->ops->arduino_product_get(s, other, &g), FOTA_ENOENT);
    p.product_id = 999;
    assert_int_equal(s->ops->arduino_product_put(s, &p), FOTA_ENOENT);
    /* the row goes with its product */
    assert_int_equal(s->ops->product_delete(s, pid), 0);
    assert_int_equal(s->ops->arduino_product_get(s, pid, &g), FOTA_ENOENT);
    assert_int_equal(store_log_errors, 0);
}

static void test_arduino_blob(void **state)
{
    struct fota_store *s = store_of(state);
    struct fota_arduino_blob b[2], g;

    memset(b, 0, sizeof b);
    for (int i = 0; i < 2; i++) {
        fake_hash(b[i].sha256, 10 + i);
        snprintf(b[i].md5, sizeof b[i].md5, "%032x", 0xabc + i);
        b[i].gzip = i;
        b[i].sig_form = 1;
        b[i].image_size = 400000 + i;
        snprintf(b[i].image_md5, sizeof b[i].image_md5, "%032x", 0x1000 + i);
        fake_hash(b[i].image_sha256, 20 + i);
        for (int m = 0; m < 4; m++)
            snprintf(b[i].sketch_md5[m], sizeof b[i].sketch_md5[m], "%031x%d", 0x77 + i, m);
        b[i].flash_mode = 2;
        b[i].flash_size = 4 << 20;
        b[i].sketch_size = 400000;
    }
    assert_int_equal(s->ops->arduino_blob_put(s, b, 2), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(s->ops->arduino_blob_get(s, b[i].sha256, &g), 0);
        assert_memory_equal(&g, &b[i], sizeof g);
    }
    /* the same bytes keep their first facts */
    b[0].image_size = 1;
    assert_int_equal(s->ops->arduino_blob_put(s, b, 1), 0);
    assert_int_equal(s->ops->arduino_blob_get(s, b[0].sha256, &g), 0);
    assert_int_equal(g.image_size, 400000);
    assert_int_equal(s->ops->arduino_blob_put(s, b, 0), 0);
    assert_int_equal(s->ops->arduino_blob_get(s, b[0].image_sha256, &g), FOTA_ENOENT);
    assert_int_equal(store_log_errors, 0);
}

static struct fota_arduino_device adev(const char *mac)
{
    struct fota_arduino_device a;
    memset(&a, 0, sizeof a);
    fota_str_copy(a.sta_mac, sizeof a.sta_mac, mac);
    fota_str_copy(a.ap_mac, sizeof a.ap_mac, mac);
    a.chip_id = 15602487;
    a.free_space = 4194304;
    a.sketch_size = 400000;
    a.chip_size = 4194304;
    snprintf(a.sketch_md5, sizeof a.sketch_md5, "0123456789abcdef0123456789abcdef");
    snprintf(a.sdk_version, sizeof a.sdk_version, "2.2.2-dev(38a443e)");
    snprintf(a.version, sizeof a.version, "14.4.1(release-tasmota)");
    snprintf(a.mode, sizeof a.mode, "sketch");
    a.last_checkin = 1700000100;
    return a;
}

static int64_t reg(struct fota_store *s, int64_t pid, const char *name, struct fota_arduino_device *a)
{
    struct fota_device d;
    memset(&d, 0, sizeof d);
    d.product_id = pid;
    fota_str_copy(d.name, sizeof d.name, name);
    d.last_active = a->last_checkin;
    int rc = s->ops->arduino_device_register(s, &d, a);
    if (rc)
        return rc;
    assert_true(d.id > 0);
    assert_true(d.created > 0);
    assert_int_equal(a->device_id, d.id);
    assert_int_equal(a->product_id, pid);
    return d.id;
}

static void test_arduino_register_find(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t pid = mk_product(s, "p"), p2 = mk_product(s, "q"), id, id2, api;
    struct fota_arduino_device a = adev("DE:BA:7A:B1:E0:42"), g;
    struct fota_device d;
    uint64_t gen = fota_store_generation(s);

    id = reg(s, pid, "DE:BA:7A:B1:E0:42", &a);
    assert_true(id > 0);
    assert_true(fota_store_generation(s) > gen);
    assert_int_equal(s->ops->device_get(s, id, &d), 0);
    assert_string_equal(d.name, "DE:BA:7A:B1:E0:42");
    assert_int_equal(d.last_active, 1700000100);
    assert_int_equal(s->ops->arduino_device_find(s, pid, "DE:BA:7A:B1:E0:42", NULL, &g), 0);
    assert_memory_equal(&g, &a, sizeof g);
    assert_int_equal(s->ops->arduino_device_get(s, id, &g), 0);
    assert_memory_equal(&g, &a, sizeof g);
    assert_int_equal(s->ops->arduino_device_find(s, pid, NULL, "DE:BA:7A:B1:E0:42", &g), 0);
    assert_int_equal(g.device_id, id);
    /* one device per MAC and product; another product may have the same MAC */
    a = adev("DE:BA:7A:B1:E0:42");
    assert_int_equal(reg(s, pid, "dup", &a), FOTA_EEXIST);
    id2 = reg(s, p2, "x", &a);
    assert_true(id2 > id);
    /* a device named in its URL (ESPHome) has no MAC; several may */
    a = adev("");
    int64_t n1 = reg(s, pid, "kitchen", &a);
    a = adev("");
    int64_t n2 = reg(s, pid, "hall", &a);
    assert_true(n1 > 0 && n2 > n1);
    assert_int_equal(s->ops->arduino_device_find(s, pid, NULL, "hall", &g), 0);
    assert_int_equal(g.device_id, n2);
    assert_string_equal(g.sta_mac, "");
    /* a device made through the API: found by its bssid, no arduino row yet */
    api = mk_device(s, pid, "api", 0); /* bssid 18:fe:34:00:00:01 */
    assert_int_equal(s->ops->arduino_device_find(s, pid, "18:FE:34:00:00:01", NULL, &g), 0);
    assert_int_equal(g.device_id, api);
    assert_int_equal(g.product_id, pid);
    assert_int_equal(g.chip_id, -1);
    assert_string_equal(g.sketch_md5, "");
    assert_int_equal(s->ops->arduino_device_find(s, pid, NULL, "api", &g), 0);
    assert_int_equal(g.device_id, api);
    assert_int_equal(s->ops->arduino_device_get(s, api, &g), FOTA_ENOENT);
    /* misses and misuse */
    assert_int_equal(s->ops->arduino_device_find(s, pid, "00:00:00:00:00:01", NULL, &g), FOTA_ENOENT);
    assert_int_equal(s->ops->arduino_device_find(s, pid, NULL, "nobody", &g), FOTA_ENOENT);
    assert_int_equal(s->ops->arduino_device_find(s, pid, NULL, NULL, &g), FOTA_EINVAL);
    assert_int_equal(s->ops->arduino_device_find(s, pid, "x", "y", &g), FOTA_EINVAL);
    a = adev("00:00:00:00:00:02");
    assert_int_equal(reg(s, 999, "ghost", &a), FOTA_ENOENT);
    assert_int_equal(store_log_errors, 0);
}

static void test_arduino_report_track(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t pid = mk_product(s, "p"), id, api;
    struct fota_arduino_device a = adev("DE:BA:7A:B1:E0:42"), r[3], g, *list;
    struct fota_device d;
    uint64_t gen;
    size_t n;

    id = reg(s, pid, "dev", &a);
    api = mk_device(s, pid, "api", 0);
    gen = fota_store_generation(s);

    /* tracking first: reports leave it alone */
    g = a;
    snprintf(g.target, sizeof g.target, "2.0.0");
    g.target_rom_id = 7;
    g.served_at = 1700000200;
    fota_str_copy(g.served_md5, sizeof g.served_md5, a.sketch_md5);
    assert_int_equal(s->ops->arduino_device_track(s, &g), 0);

    r[0] = a;
    r[0].sta_mac[0] = '\0'; /* keeps the stored MAC */
    snprintf(r[0].sketch_md5, sizeof r[0].sketch_md5, "ffffffffffffffffffffffffffffffff");
    snprintf(r[0].version, sizeof r[0].version, "2.0.0");
    r[0].free_space = 1000;
    r[0].last_checkin = 1700000300;
    r[1] = adev("5C:CF:7F:00:00:01"); /* creates the API device's row */
    r[1].device_id = api;
    r[2] = adev("5C:CF:7F:00:00:02"); /* unknown device: skipped */
    r[2].device_id = 4242;
    r[0].device_id = id;
    assert_int_equal(s->ops->arduino_device_report(s, r, 3), 0);
    assert_int_equal(s->ops->arduino_device_report(s, r, 0), 0);
    assert_int_equal(fota_store_generation(s), gen);

    assert_int_equal(s->ops->arduino_device_get(s, id, &g), 0);
    assert_string_equal(g.sta_mac, "DE:BA:7A:B1:E0:42");
    assert_string_equal(g.sketch_md5, "ffffffffffffffffffffffffffffffff");
    assert_string_equal(g.version, "2.0.0");
    assert_int_equal(g.free_space, 1000);
    assert_int_equal(g.last_checkin, 1700000300);
    assert_string_equal(g.target, "2.0.0");
    assert_int_equal(g.target_rom_id, 7);
    assert_int_equal(g.served_at, 1700000200);
    assert_string_equal(g.served_md5, "0123456789abcdef0123456789abcdef");
    assert_int_equal(s->ops->device_get(s, id, &d), 0);
    assert_int_equal(d.last_active, 1700000300);

    /* tracking leaves the report alone */
    g.target[0] = '\0';
    g.target_rom_id = 0;
    g.served_at = 0;
    g.sketch_md5[0] = '\0';
    assert_int_equal(s->ops->arduino_device_track(s, &g), 0);
    assert_int_equal(s->ops->arduino_device_get(s, id, &g), 0);
    assert_string_equal(g.target, "");
    assert_string_equal(g.sketch_md5, "ffffffffffffffffffffffffffffffff");
    g.device_id = 4242;
    assert_int_equal(s->ops->arduino_device_track(s, &g), FOTA_ENOENT);
    assert_int_equal(fota_store_generation(s), gen);

    assert_int_equal(s->ops->arduino_device_get(s, api, &g), 0);
    assert_string_equal(g.sta_mac, "5C:CF:7F:00:00:01");
    assert_int_equal(g.chip_id, 15602487);
    assert_int_equal(s->ops->arduino_device_find(s, pid, "5C:CF:7F:00:00:01", NULL, &g), 0);
    assert_int_equal(g.device_id, api);

    assert_int_equal(s->ops->arduino_device_list(s, pid, &list, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].device_id, id);
    assert_int_equal(list[1].device_id, api);
    free(list);
    assert_int_equal(s->ops->arduino_device_list(s, 999, &list, &n), 0);
    assert_int_equal(n, 0);
    assert_non_null(list);
    free(list);
    assert_int_equal(store_log_errors, 0);
}

/* The rows go with their device; the MAC can register again. */
static void test_arduino_device_delete(void **state)
{
    struct store_fixture *fx = store_fx(state);
    struct fota_store *s = fx->s;
    int64_t pid = mk_product(s, "p"), id, id2;
    struct fota_arduino_device a = adev("DE:BA:7A:B1:E0:42"), g;

    id = reg(s, pid, "dev", &a);
    assert_int_equal(s->ops->device_delete(s, id), 0);
    assert_int_equal(s->ops->arduino_device_get(s, id, &g), FOTA_ENOENT);
    assert_int_equal(s->ops->arduino_device_find(s, pid, "DE:BA:7A:B1:E0:42", NULL, &g), FOTA_ENOENT);
    a = adev("DE:BA:7A:B1:E0:42");
    id2 = reg(s, pid, "dev", &a);
    assert_true(id2 > id);
    store_fixture_reopen(fx);
    s = fx->s;
    assert_int_equal(s->ops->arduino_device_find(s, pid, "DE:BA:7A:B1:E0:42", NULL, &g), 0);
    assert_int_equal(g.device_id, id2);
    assert_int_equal(store_log_errors, 0);
}

/* A product's broker settings, a device's explicit target and what MQTT
 * discovery learnt: each written by its own op, none disturbing the others
 * or the report, none moving the generation except the product's. */
static void test_arduino_mqtt_pin(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t pid = mk_product(s, "p"), id;
    struct fota_arduino_product p = aprod(pid), gp;
    struct fota_arduino_device a = adev("DE:BA:7A:B1:E0:42"), g, r;
    uint64_t gen;

    snprintf(p.mqtt_url, sizeof p.mqtt_url, "mqtt://127.0.0.1:1883");
    snprintf(p.mqtt_username, sizeof p.mqtt_username, "fotad");
    snprintf(p.mqtt_password, sizeof p.mqtt_password, "s3cret");
    assert_int_equal(s->ops->arduino_product_put(s, &p), 0);
    assert_int_equal(s->ops->arduino_product_get(s, pid, &gp), 0);
    assert_string_equal(gp.mqtt_url, "mqtt://127.0.0.1:1883");
    assert_string_equal(gp.mqtt_username, "fotad");
    assert_string_equal(gp.mqtt_password, "s3cret");

    id = reg(s, pid, "dev", &a);
    assert_int_equal(s->ops->arduino_device_get(s, id, &g), 0);
    assert_string_equal(g.pin_version, "");
    assert_string_equal(g.mqtt_topic, "");
    assert_int_equal(g.mqtt_seen, 0);
    gen = fota_store_generation(s);

    g.device_id = id;
    snprintf(g.pin_version, sizeof g.pin_version, "2.0.0");
    snprintf(g.pin_current, sizeof g.pin_current, "1.0.0");
    assert_int_equal(s->ops->arduino_device_track(s, &g), 0);
    memset(&r, 0, sizeof r);
    r.device_id = id;
    snprintf(r.mqtt_topic, sizeof r.mqtt_topic, "tasmota_B1E042");
    snprintf(r.mqtt_lwt, sizeof r.mqtt_lwt, "Online");
    snprintf(r.mqtt_version, sizeof r.mqtt_version, "14.4.1(release-tasmota)");
    r.mqtt_seen = 1700000500;
    assert_int_equal(s->ops->arduino_device_mqtt(s, &r), 0);
    /* a report leaves both alone */
    a.device_id = id;
    a.last_checkin = 1700000600;
    assert_int_equal(s->ops->arduino_device_report(s, &a, 1), 0);
    assert_int_equal(fota_store_generation(s), gen);

    assert_int_equal(s->ops->arduino_device_get(s, id, &g), 0);
    assert_string_equal(g.pin_version, "2.0.0");
    assert_string_equal(g.pin_current, "1.0.0");
    assert_string_equal(g.mqtt_topic, "tasmota_B1E042");
    assert_string_equal(g.mqtt_lwt, "Online");
    assert_string_equal(g.mqtt_version, "14.4.1(release-tasmota)");
    assert_int_equal(g.mqtt_seen, 1700000500);
    assert_int_equal(g.last_checkin, 1700000600);
    assert_string_equal(g.sta_mac, "DE:BA:7A:B1:E0:42");
    /* tracking leaves the MQTT fields alone, and the reverse */
    g.pin_version[0] = '\0';
    assert_int_equal(s->ops->arduino_device_track(s, &g), 0);
    r.mqtt_lwt[0] = '\0';
    snprintf(r.mqtt_lwt, sizeof r.mqtt_lwt, "Offline");
    assert_int_equal(s->ops->arduino_device_mqtt(s, &r), 0);
    assert_int_equal(s->ops->arduino_device_get(s, id, &g), 0);
    assert_string_equal(g.pin_version, "");
    assert_string_equal(g.mqtt_lwt, "Offline");
    assert_string_equal(g.mqtt_topic, "tasmota_B1E042");
    r.device_id = 4242;
    assert_int_equal(s->ops->arduino_device_mqtt(s, &r), FOTA_ENOENT);
    assert_int_equal(store_log_errors, 0);
}

/* Completed downloads in one call: each row's ledger and, for a device,
 * its served tracking (pins and report untouched); rows of unknown files
 * and devices skipped. Device traffic: the catalog generation stays, each
 * device's arduino generation moves, as with tracking and MQTT writes;
 * reports leave both of a device's generations. */
static void test_arduino_served(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t pid = mk_product(s, "p"), id, api, bytes = 0, file;
    struct fota_arduino_device a = adev("DE:BA:7A:B1:E0:42"), g;
    struct fota_arduino_download w[5];
    struct fota_rom r;
    uint64_t gen, dg, ag, dapi;

    mk_rom(s, pid, "2.0.0");
    assert_int_equal(s->ops->rom_get(s, pid, "2.0.0", &r), 0);
    file = r.files[0].id;
    id = reg(s, pid, "dev", &a);
    api = mk_device(s, pid, "api", 0); /* no arduino row yet */
    g = a;
    snprintf(g.pin_version, sizeof g.pin_version, "1.0.0");
    snprintf(g.pin_current, sizeof g.pin_current, "0.9.0");
    /* tracking and MQTT move the device's arduino generation, not its own */
    ag = fota_store_arduino_generation(s, id);
    dg = fota_store_device_generation(s, id);
    assert_int_equal(s->ops->arduino_device_track(s, &g), 0);
    assert_true(fota_store_arduino_generation(s, id) > ag);
    ag = fota_store_arduino_generation(s, id);
    assert_int_equal(s->ops->arduino_device_mqtt(s, &g), 0);
    assert_true(fota_store_arduino_generation(s, id) > ag);
    assert_true(fota_store_device_generation(s, id) == dg);
    ag = fota_store_arduino_generation(s, id);
    a.last_checkin++;
    assert_int_equal(s->ops->arduino_device_report(s, &a, 1), 0);
    assert_true(fota_store_arduino_generation(s, id) == ag);
    assert_true(fota_store_device_generation(s, id) == dg);

    memset(w, 0, sizeof w);
    w[0] = (struct fota_arduino_download){ .device_id = id, .file_id = file, .bytes = 1000,
                                           .completed = 1, .target_rom_id = r.id,
                                           .served_at = 1700000500 };
    snprintf(w[0].target, sizeof w[0].target, "2.0.0");
    snprintf(w[0].served_md5, sizeof w[0].served_md5, "0123456789abcdef0123456789abcdef");
    w[1] = (struct fota_arduino_download){ .device_id = 0, .file_id = file, .bytes = 500,
                                           .completed = 1 };          /* anonymous */
    w[2] = w[0];
    w[2].device_id = 4242;                                           /* unknown device */
    w[3] = w[0];
    w[3].file_id = 999999;                                           /* unknown file */
    snprintf(w[3].target, sizeof w[3].target, "9.9.9");
    w[4] = w[0];
    w[4].device_id = api;                                            /* its row is made */
    gen = fota_store_generation(s);
    ag = fota_store_arduino_generation(s, id);
    dapi = fota_store_arduino_generation(s, api);
    assert_int_equal(s->ops->arduino_device_served(s, w, 5), 0);
    assert_int_equal(s->ops->arduino_device_served(s, w, 0), 0);
    assert_int_equal(fota_store_generation(s), gen);
    assert_true(fota_store_arduino_generation(s, id) > ag);
    assert_true(fota_store_arduino_generation(s, api) > dapi);

    assert_int_equal(s->ops->arduino_device_get(s, id, &g), 0);
    assert_string_equal(g.target, "2.0.0");
    assert_int_equal(g.target_rom_id, r.id);
    assert_int_equal(g.served_at, 1700000500);
    assert_string_equal(g.served_md5, "0123456789abcdef0123456789abcdef");
    assert_string_equal(g.pin_version, "1.0.0");
    assert_string_equal(g.pin_current, "0.9.0");
    assert_int_equal(g.last_checkin, a.last_checkin);
    assert_string_equal(g.version, "14.4.1(release-tasmota)");
    assert_int_equal(s->ops->arduino_device_get(s, api, &g), 0);
    assert_string_equal(g.target, "2.0.0");
    assert_int_equal(s->ops->arduino_device_get(s, 4242, &g), FOTA_ENOENT);

    assert_int_equal(s->ops->download_bytes(s, id, &bytes), 0);
    assert_int_equal(bytes, 1000);
    assert_int_equal(s->ops->download_bytes(s, 0, &bytes), 0);
    assert_int_equal(bytes, 500);
    assert_int_equal(s->ops->rom_get(s, pid, "2.0.0", &r), 0);
    assert_int_equal(r.files[0].download_count, 4); /* id, anonymous, 4242, api */

    w[0].bytes = -1;
    assert_int_equal(s->ops->arduino_device_served(s, w, 1), FOTA_EINVAL);
    assert_int_equal(store_log_errors, 0);
}

const struct CMUnitTest store_cases_arduino[] = {
    cmocka_unit_test(test_arduino_product),
    cmocka_unit_test(test_arduino_blob),
    cmocka_unit_test(test_arduino_register_find),
    cmocka_unit_test(test_arduino_report_track),
    cmocka_unit_test(test_arduino_device_delete),
    cmocka_unit_test(test_arduino_mqtt_pin),
    cmocka_unit_test(test_arduino_served),
};
const size_t store_cases_arduino_n = sizeof store_cases_arduino / sizeof store_cases_arduino[0];
