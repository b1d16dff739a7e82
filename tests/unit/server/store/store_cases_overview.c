/* store_cases_overview.c - conformance cases of a product's overview
 * (store.h: product_census, product_activity): one product's devices per
 * version with their online count, an unknown product; the activity per
 * minute counted by message_add (upgrade reports only, of a product) and
 * download_add (the file's product), summed per bucket, bounded by since
 * and until; minutes past FOTA_ACTIVITY_KEEP_S and a deleted product's
 * minutes gone; bad steps refused; neither read moves the generation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "clock.h"
#include "fota_str.h"
#include "store_fixture.h"

static void dev_on(struct fota_store *s, int64_t pid, const char *name, const char *version,
                   int online)
{
    int64_t id = mk_device(s, pid, name, 1);
    struct fota_device d;
    assert_int_equal(s->ops->device_get(s, id, &d), 0);
    fota_str_copy(d.rom_version, sizeof d.rom_version, version);
    d.online = online;
    d.last_active = 1700000000;
    assert_int_equal(s->ops->device_update(s, &d, FOTA_DEV_F_ROM_VERSION | FOTA_DEV_F_PRESENCE), 0);
}

static void report(struct fota_store *s, int64_t pid, const char *action, int64_t created)
{
    struct fota_message m;
    memset(&m, 0, sizeof m);
    m.product_id = pid;
    m.device_id = 1;
    m.created = created;
    fota_str_copy(m.action, sizeof m.action, action);
    fota_str_copy(m.body, sizeof m.body, "{}");
    assert_int_equal(s->ops->message_add(s, &m), 0);
}

static void test_product_census(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t a = mk_product(s, "alpha"), b = mk_product(s, "beta");
    mk_rom(s, a, "v1");
    mk_rom(s, a, "v2");
    assert_int_equal(s->ops->rom_set_current(s, a, "v2"), 0);
    dev_on(s, a, "a1", "v1", 1);
    dev_on(s, a, "a2", "v2", 1);
    dev_on(s, a, "a3", "v2", 0);
    dev_on(s, a, "a4", "v2", 1);
    dev_on(s, a, "a5", "", 0);
    dev_on(s, b, "b1", "v9", 1);   /* another product's device: not counted */
    uint64_t gen = fota_store_generation(s);

    struct fota_census_row *rows = NULL;
    size_t n = 0;
    assert_int_equal(s->ops->product_census(s, a, 1700001000, &rows, &n), 0);
    assert_int_equal(fota_store_generation(s), gen);
    assert_int_equal(n, 3);
    assert_string_equal(rows[0].version, "v2");
    assert_int_equal(rows[0].devices, 3);
    assert_int_equal(rows[0].online, 2);
    assert_string_equal(rows[0].product, "alpha");
    assert_string_equal(rows[0].current, "v2");
    assert_int_equal(rows[0].releases, 2);
    /* ties in version order: "" before v1 */
    assert_string_equal(rows[1].version, "");
    assert_int_equal(rows[1].online, 0);
    assert_string_equal(rows[2].version, "v1");
    assert_int_equal(rows[2].online, 1);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(rows[i].product_id, a);
    free(rows);

    /* a product without devices: one row of 0 */
    int64_t c = mk_product(s, "gamma");
    assert_int_equal(s->ops->product_census(s, c, 1700001000, &rows, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].devices, 0);
    assert_int_equal(rows[0].online, 0);
    free(rows);

    rows = (void *)1;
    assert_int_equal(s->ops->product_census(s, 999, 1700001000, &rows, &n), FOTA_ENOENT);
    assert_null(rows);
    assert_int_equal(n, 0);
}

static void test_product_activity(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t a = mk_product(s, "alpha"), b = mk_product(s, "beta");
    struct fota_rom rom;
    fill_rom(&rom, a, "v1");
    assert_int_equal(s->ops->rom_create(s, &rom), 0);
    int64_t now = fota_clock_wall_s(), t0 = now / 3600 * 3600 - 7200;   /* two hours back */

    report(s, a, "device_upgrade_success", t0 + 5);
    report(s, a, "device_upgrade_success", t0 + 50);
    report(s, a, "device_upgrade_failed", t0 + 59);
    report(s, a, "device_upgrade_success", t0 + 61);     /* the next minute */
    report(s, a, "device_upgrade_success", t0 + 3600);   /* the next hour */
    report(s, a, "rom_update_available", t0 + 5);        /* not a report */
    report(s, 0, "device_upgrade_success", t0 + 5);      /* no product */
    report(s, b, "device_upgrade_failed", t0 + 5);       /* another product */
    /* downloads count in the current minute, for the file's product */
    assert_int_equal(s->ops->download_add(s, 7, rom.files[0].id, 4096, 1), 0);
    assert_int_equal(s->ops->download_add(s, 8, rom.files[1].id, 1000, 0), 0);
    assert_int_equal(s->ops->download_add(s, 8, rom.files[1].id, 24, 1), 0);
    uint64_t gen = fota_store_generation(s);

    struct fota_activity_row *rows = NULL;
    size_t n = 0;
    /* per minute over the first hour */
    assert_int_equal(s->ops->product_activity(s, a, t0, t0 + 3600, 60, &rows, &n), 0);
    assert_int_equal(fota_store_generation(s), gen);
    assert_int_equal(n, 2);
    assert_int_equal(rows[0].t, t0);
    assert_int_equal(rows[0].upgraded, 2);
    assert_int_equal(rows[0].failed, 1);
    assert_int_equal(rows[0].downloads, 0);
    assert_int_equal(rows[1].t, t0 + 60);
    assert_int_equal(rows[1].upgraded, 1);
    assert_int_equal(rows[1].failed, 0);
    free(rows);

    /* per hour up to now (inclusive of its minute): the downloads' bucket last */
    assert_int_equal(s->ops->product_activity(s, a, t0 + 1, now + 1, 3600, &rows, &n), 0);
    assert_true(n >= 2);
    assert_int_equal(rows[0].t, t0);   /* since is rounded down to its bucket */
    assert_int_equal(rows[0].upgraded, 3);
    assert_int_equal(rows[0].failed, 1);
    int64_t up = 0, dls = 0, bytes = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(rows[i].t % 3600, 0);
        if (i)
            assert_true(rows[i].t > rows[i - 1].t);
        up += rows[i].upgraded;
        dls += rows[i].downloads;
        bytes += rows[i].bytes;
    }
    assert_int_equal(up, 4);
    assert_int_equal(dls, 2);
    assert_int_equal(bytes, 4096 + 1000 + 24);
    assert_int_equal(rows[n - 1].t, now / 3600 * 3600);
    free(rows);

    /* the other product's and nobody's */
    assert_int_equal(s->ops->product_activity(s, b, t0, now + 60, 86400, &rows, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].failed, 1);
    assert_int_equal(rows[0].upgraded, 0);
    free(rows);
    assert_int_equal(s->ops->product_activity(s, 999, t0, now + 60, 60, &rows, &n), 0);
    assert_int_equal(n, 0);
    free(rows);

    /* until is exclusive: the hour bucket's reports before t0 + 60 only */
    assert_int_equal(s->ops->product_activity(s, a, t0, t0 + 60, 3600, &rows, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].upgraded, 2);
    free(rows);

    /* refused steps and ranges */
    rows = (void *)1;
    assert_int_equal(s->ops->product_activity(s, a, t0, now, 30, &rows, &n), FOTA_EINVAL);
    assert_null(rows);
    assert_int_equal(s->ops->product_activity(s, a, t0, now, 90, &rows, &n), FOTA_EINVAL);
    assert_int_equal(s->ops->product_activity(s, a, t0, now, 86460, &rows, &n), FOTA_EINVAL);
    assert_int_equal(s->ops->product_activity(s, a, now, t0, 60, &rows, &n), FOTA_EINVAL);
}

/* Minutes past the keep go at the first count of a minute; a deleted
 * product's minutes go with it. */
static void test_product_activity_kept(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t a = mk_product(s, "alpha");
    int64_t now = fota_clock_wall_s();
    int64_t old = (now - FOTA_ACTIVITY_KEEP_S - 7200) / 60 * 60;
    struct fota_activity_row *rows = NULL;
    size_t n = 0;

    report(s, a, "device_upgrade_success", old);
    assert_int_equal(s->ops->product_activity(s, a, old - 60, old + 60, 60, &rows, &n), 0);
    assert_int_equal(n, 0);
    free(rows);

    report(s, a, "device_upgrade_success", now);
    assert_int_equal(s->ops->product_activity(s, a, now, now + 60, 60, &rows, &n), 0);
    assert_int_equal(n, 1);
    free(rows);
    assert_int_equal(s->ops->product_delete(s, a), 0);
    assert_int_equal(s->ops->product_activity(s, a, now, now + 60, 60, &rows, &n), 0);
    assert_int_equal(n, 0);
    free(rows);
}

const struct CMUnitTest store_cases_overview[] = {
    cmocka_unit_test(test_product_census),
    cmocka_unit_test(test_product_activity),
    cmocka_unit_test(test_product_activity_kept),
};
const size_t store_cases_overview_n = sizeof store_cases_overview / sizeof store_cases_overview[0];
