/* store_cases_census.c - conformance cases of the census queries behind
 * GET /metrics: devices per product and version (most first), online as
 * the channel says for nonos products and as the last check-in says for
 * arduino ones, a product without devices, its current release and release
 * count; rollouts counted by state. Neither moves the generation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fota_str.h"
#include "store_fixture.h"

static int64_t dev_at(struct fota_store *s, int64_t pid, const char *name, const char *version,
                      int online)
{
    int64_t id = mk_device(s, pid, name, 1);
    struct fota_device d;
    assert_int_equal(s->ops->device_get(s, id, &d), 0);
    fota_str_copy(d.rom_version, sizeof d.rom_version, version);
    d.online = online;
    d.last_active = 1700000000;
    assert_int_equal(s->ops->device_update(s, &d, FOTA_DEV_F_ROM_VERSION | FOTA_DEV_F_PRESENCE), 0);
    return id;
}

static int64_t ard_dev(struct fota_store *s, int64_t pid, const char *mac, int64_t checkin)
{
    struct fota_device d;
    struct fota_arduino_device a;
    memset(&d, 0, sizeof d);
    memset(&a, 0, sizeof a);
    d.product_id = pid;
    fota_str_copy(d.name, sizeof d.name, mac);
    fota_str_copy(a.sta_mac, sizeof a.sta_mac, mac);
    a.chip_id = -1;
    a.last_checkin = checkin;
    assert_int_equal(s->ops->arduino_device_register(s, &d, &a), 0);
    fota_str_copy(d.rom_version, sizeof d.rom_version, "2.0");
    assert_int_equal(s->ops->device_update(s, &d, FOTA_DEV_F_ROM_VERSION), 0);
    return d.id;
}

static void test_device_census(void **state)
{
    struct fota_store *s = store_of(state);
    const int64_t now = 1700001000;
    int64_t a = mk_product(s, "alpha"), b = mk_product(s, "beta"), c = mk_product(s, "gamma");
    mk_rom(s, a, "v1");
    mk_rom(s, a, "v2");
    assert_int_equal(s->ops->rom_set_current(s, a, "v2"), 0);
    dev_at(s, a, "a1", "v1", 1);
    dev_at(s, a, "a2", "v2", 1);
    dev_at(s, a, "a3", "v2", 0);
    dev_at(s, a, "a4", "v2", 1);
    dev_at(s, a, "a5", "", 0);
    /* b is an arduino product: online is a check-in within 600 s */
    struct fota_arduino_product ap;
    memset(&ap, 0, sizeof ap);
    ap.product_id = b;
    ap.flash_mode = -1;
    ap.checkin_interval = 600;
    ap.confirm_after = 60;
    assert_int_equal(s->ops->arduino_product_put(s, &ap), 0);
    ard_dev(s, b, "5C:CF:7F:00:00:01", now - 10);
    ard_dev(s, b, "5C:CF:7F:00:00:02", now - 601);
    ard_dev(s, b, "5C:CF:7F:00:00:03", 0);
    uint64_t gen = fota_store_generation(s);

    struct fota_census_row *rows = NULL;
    size_t n = 0;
    assert_int_equal(s->ops->device_census(s, now, &rows, &n), 0);
    assert_int_equal(fota_store_generation(s), gen);
    assert_int_equal(n, 5);
    /* alpha: v2 (3 devices, 2 online), then v1 and "" (1 each, in version order) */
    assert_int_equal(rows[0].product_id, a);
    assert_string_equal(rows[0].product, "alpha");
    assert_int_equal(rows[0].arduino, 0);
    assert_string_equal(rows[0].version, "v2");
    assert_int_equal(rows[0].devices, 3);
    assert_int_equal(rows[0].online, 2);
    assert_string_equal(rows[0].current, "v2");
    assert_int_equal(rows[0].releases, 2);
    assert_string_equal(rows[1].version, "");
    assert_int_equal(rows[1].devices, 1);
    assert_int_equal(rows[1].online, 0);
    assert_string_equal(rows[2].version, "v1");
    assert_int_equal(rows[2].devices, 1);
    assert_int_equal(rows[2].online, 1);
    /* beta: arduino, one device checked in within the interval */
    assert_int_equal(rows[3].product_id, b);
    assert_int_equal(rows[3].arduino, 1);
    assert_string_equal(rows[3].version, "2.0");
    assert_int_equal(rows[3].devices, 3);
    assert_int_equal(rows[3].online, 1);
    assert_string_equal(rows[3].current, "");
    assert_int_equal(rows[3].releases, 0);
    /* gamma: no devices, one row */
    assert_int_equal(rows[4].product_id, c);
    assert_string_equal(rows[4].product, "gamma");
    assert_int_equal(rows[4].devices, 0);
    assert_int_equal(rows[4].online, 0);
    assert_string_equal(rows[4].version, "");
    free(rows);
}

static void test_device_census_empty(void **state)
{
    struct fota_store *s = store_of(state);
    struct fota_census_row *rows = NULL;
    size_t n = 7;
    assert_int_equal(s->ops->device_census(s, 1700000000, &rows, &n), 0);
    assert_int_equal(n, 0);
    assert_non_null(rows);
    free(rows);
}

static void test_rollout_census(void **state)
{
    struct fota_store *s = store_of(state);
    static const int states[] = { FOTA_ROLLOUT_RUNNING, FOTA_ROLLOUT_FINISHED,
                                  FOTA_ROLLOUT_FINISHED, FOTA_ROLLOUT_CANCELLED };
    int64_t counts[8];
    memset(counts, 0x55, sizeof counts);
    assert_int_equal(s->ops->rollout_census(s, counts, 8), 0);
    for (int i = 0; i < 8; i++)
        assert_int_equal(counts[i], 0);
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
        struct fota_rollout_row r;
        memset(&r, 0, sizeof r);
        r.product_id = 1;
        snprintf(r.version, sizeof r.version, "v%zu", i);
        snprintf(r.filter, sizeof r.filter, "{}");
        r.window = 1;
        r.timeout_s = 60;
        r.max_failures = -1;
        r.state = states[i];
        r.ms_delivered = r.ms_acked = r.ms_finished = -1;
        assert_int_equal(s->ops->rollout_create(s, &r), 0);
    }
    uint64_t gen = fota_store_generation(s);
    assert_int_equal(s->ops->rollout_census(s, counts, 8), 0);
    assert_int_equal(fota_store_generation(s), gen);
    assert_int_equal(counts[0], 0);
    assert_int_equal(counts[FOTA_ROLLOUT_RUNNING], 1);
    assert_int_equal(counts[FOTA_ROLLOUT_CANCELLING], 0);
    assert_int_equal(counts[FOTA_ROLLOUT_CANCELLED], 1);
    assert_int_equal(counts[FOTA_ROLLOUT_FINISHED], 2);
    /* states at or beyond ncounts are left out */
    int64_t two[2];
    assert_int_equal(s->ops->rollout_census(s, two, 2), 0);
    assert_int_equal(two[0], 0);
    assert_int_equal(two[1], 1);
}

const struct CMUnitTest store_cases_census[] = {
    cmocka_unit_test(test_device_census),
    cmocka_unit_test(test_device_census_empty),
    cmocka_unit_test(test_rollout_census),
};
const size_t store_cases_census_n = sizeof store_cases_census / sizeof store_cases_census[0];
