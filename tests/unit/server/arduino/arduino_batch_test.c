/* arduino_batch_test.c - server/arduino/arduino_batch.c: the batches of
 * completed downloads and reports shared by the loops, against a store that
 * records what it is given. A device's downloads of one file merge (bytes
 * and counts add up, the latest tracking holds), another file writes the
 * batch first, anonymous downloads merge per file; a check-in reads a
 * device's waiting download through the batch; reports merge per device and
 * skip what the stored row says already; a device's sync writes only when
 * it waits. Many rounds of many devices whose ids collide in the batches'
 * tables: every lookup still ends and finds what it should. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "arduino_int.h"
#include "fota_str.h"

/* ---- a store that records the rows it is asked to write */

#define KEEP 64   /* the first rows are kept; all are counted */
static struct fota_arduino_download written[KEEP];
static size_t nwritten, served_calls;
static int64_t bytes_written;
static struct fota_arduino_device reported[KEEP];
static size_t nreported, report_calls, reported_old;

static struct fota_arduino_device seen(int64_t id);
static int check_while_written; /* rows being written are still seen by check-ins */

static int rec_served(struct fota_store *s, const struct fota_arduino_download *rows, size_t n)
{
    (void)s;
    for (size_t i = 0; check_while_written && i < n; i++)
        if (rows[i].device_id > 0)
            assert_int_equal(seen(rows[i].device_id).served_at, rows[i].served_at);
    for (size_t i = 0; i < n; i++, nwritten++) {
        if (nwritten < KEEP)
            written[nwritten] = rows[i];
        bytes_written += rows[i].bytes;
    }
    served_calls++;
    return 0;
}

static int rec_report(struct fota_store *s, const struct fota_arduino_device *rows, size_t n)
{
    (void)s;
    for (size_t i = 0; i < n; i++, nreported++) {
        if (nreported < KEEP)
            reported[nreported] = rows[i];
        if (nreported > 0 && rows[i].last_checkin < 1000)
            reported_old++;
    }
    report_calls++;
    return 0;
}

static struct fota_store_ops ops = {
    .arduino_device_served = rec_served,
    .arduino_device_report = rec_report,
};
static struct fota_store store = { .ops = &ops };
static struct fota_server srv = { .store = &store };
static struct fota_arduino_ctx *ctx;

static int setup(void **state)
{
    (void)state;
    ctx = calloc(1, sizeof *ctx);
    assert_non_null(ctx);
    ctx->srv = &srv;
    fota_arduino_batch_init(ctx);
    nwritten = served_calls = nreported = report_calls = reported_old = 0;
    check_while_written = 1;
    bytes_written = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fota_arduino_batch_destroy(ctx);
    free(ctx);
    return 0;
}

static struct fota_arduino_download dl(int64_t device, int64_t file, int64_t bytes,
                                       const char *target, int64_t at)
{
    struct fota_arduino_download d;
    memset(&d, 0, sizeof d);
    d.device_id = device;
    d.file_id = file;
    d.bytes = bytes;
    d.completed = 1;
    fota_str_copy(d.target, sizeof d.target, target);
    d.target_rom_id = file;
    d.served_at = at;
    snprintf(d.served_md5, sizeof d.served_md5, "%032lld", (long long)device);
    return d;
}

/* The tracking a check-in of device id reads through the batch, over a
 * stored row without one (also while the batch is being written). */
static struct fota_arduino_device seen(int64_t id)
{
    struct fota_arduino_device a;
    memset(&a, 0, sizeof a);
    a.device_id = id;
    fota_arduino_served_lock(ctx);
    fota_arduino_served_overlay(ctx, &a);
    fota_arduino_served_unlock(ctx);
    return a;
}

static void test_downloads_merge(void **state)
{
    struct fota_arduino_download d;
    struct fota_arduino_device a;
    (void)state;

    d = dl(7, 1, 100, "2.0.0", 1000);
    fota_arduino_served_add(ctx, &d);
    d = dl(7, 1, 50, "2.0.1", 1001);
    fota_arduino_served_add(ctx, &d);
    d = dl(0, 1, 10, "", 0);      /* anonymous, file 1 */
    fota_arduino_served_add(ctx, &d);
    fota_arduino_served_add(ctx, &d);
    assert_int_equal(served_calls, 0);
    a = seen(7);
    assert_string_equal(a.target, "2.0.1");
    assert_int_equal(a.served_at, 1001);
    assert_string_equal(seen(8).target, "");
    memset(&a, 0, sizeof a);      /* the same over a cached row */
    a.device_id = 7;
    fota_arduino_served_overlay_locked(ctx, &a);
    assert_string_equal(a.target, "2.0.1");
    /* another file of the device: the batch is written first */
    d = dl(7, 2, 30, "2.0.2", 1002);
    fota_arduino_served_add(ctx, &d);
    assert_int_equal(served_calls, 1);
    assert_int_equal(nwritten, 2);
    assert_int_equal(written[0].device_id, 7);
    assert_int_equal(written[0].bytes, 150);
    assert_int_equal(written[0].completed, 2);
    assert_string_equal(written[0].target, "2.0.1");
    assert_int_equal(written[1].device_id, 0);
    assert_int_equal(written[1].bytes, 20);
    assert_int_equal(written[1].completed, 2);
    assert_string_equal(seen(7).target, "2.0.2");
    /* a device's sync writes only when it waits */
    fota_arduino_served_sync(ctx, 8);
    assert_int_equal(served_calls, 1);
    fota_arduino_served_sync(ctx, 7);
    assert_int_equal(served_calls, 2);
    assert_int_equal(nwritten, 3);
    assert_string_equal(seen(7).target, "");
    fota_arduino_served_flush(ctx);
    assert_int_equal(served_calls, 2);
}

/* Rounds of many devices (ids that collide in the table), written by syncs
 * of one device, by a full batch and by flushes: each device's waiting
 * download is the one a check-in reads, and none is lost or written twice. */
static void test_downloads_rounds(void **state)
{
    static int64_t waiting[4096];
    int64_t bytes_in = 0;
    unsigned seed = 12345;
    (void)state;

    memset(waiting, 0, sizeof waiting);
    for (int round = 0; round < 40; round++) {
        for (int k = 0; k < 300; k++) {
            seed = seed * 1103515245u + 12345u;
            int64_t id = 1 + (int64_t)((seed >> 8) % 4000) * 1024 % 4093;
            struct fota_arduino_download d = dl(id, 5, 1 + k, "v", round * 1000 + k);
            fota_arduino_served_add(ctx, &d);
            bytes_in += d.bytes;
            waiting[id] = round * 1000 + k;
        }
        for (int64_t id = 1; id < 4096; id++) {
            struct fota_arduino_device a = seen(id);
            if (a.served_at != waiting[id] && waiting[id] != 0) {
                /* written meanwhile (a full batch): no longer waiting */
                assert_int_equal(a.served_at, 0);
                waiting[id] = 0;
            }
        }
        seed = seed * 1103515245u + 12345u;
        fota_arduino_served_sync(ctx, 1 + (int64_t)(seed % 4000));
        if (round % 3 == 0)
            fota_arduino_served_flush(ctx);
        for (int64_t id = 1; id < 4096; id++)
            if (seen(id).served_at == 0)
                waiting[id] = 0;
    }
    fota_arduino_served_flush(ctx);
    assert_int_equal(bytes_written, bytes_in);
    for (int64_t id = 1; id < 4096; id++)
        assert_int_equal(seen(id).served_at, 0);
}

static struct fota_arduino_device rep(int64_t id, int64_t at, const char *md5)
{
    struct fota_arduino_device a;
    memset(&a, 0, sizeof a);
    a.device_id = id;
    a.last_checkin = at;
    fota_str_copy(a.sketch_md5, sizeof a.sketch_md5, md5);
    return a;
}

static void test_reports(void **state)
{
    struct fota_arduino_device stored = rep(3, 100, "aa"), r;
    (void)state;

    /* nothing new: skipped within quiet_s, written after it */
    r = rep(3, 105, "aa");
    assert_int_equal(fota_arduino_report_add(ctx, &r, &stored, 10), 0);
    assert_int_equal(fota_arduino_report_add(ctx, &r, &stored, 0), 1);
    r = rep(3, 106, "bb");        /* merges: the later row holds */
    assert_int_equal(fota_arduino_report_add(ctx, &r, &stored, 10), 1);
    r = rep(3, 100, "aa");        /* equal to the stored one, but a row waits: merges */
    assert_int_equal(fota_arduino_report_add(ctx, &r, &stored, 10), 1);
    assert_int_equal(fota_arduino_report_sync_device(ctx, 4), 0);
    assert_int_equal(report_calls, 0);
    assert_int_equal(fota_arduino_report_sync_device(ctx, 3), 1);
    assert_int_equal(report_calls, 1);
    assert_int_equal(nreported, 1);
    assert_int_equal(reported[0].last_checkin, 100);
    assert_string_equal(reported[0].sketch_md5, "aa");
    assert_int_equal(fota_arduino_report_sync_device(ctx, 3), 0);

    /* many rounds of colliding ids: full batches and syncs, nothing lost */
    for (int round = 0; round < 30; round++) {
        for (int64_t k = 0; k < 700; k++) {
            r = rep(1 + (k * 1024) % 5003, 1000 + round, "cc");
            fota_arduino_report_add(ctx, &r, NULL, 0);
        }
        fota_arduino_report_sync_device(ctx, 1 + (round * 1024) % 5003);
    }
    fota_arduino_report_sync(ctx);
    assert_int_equal(fota_arduino_report_sync_device(ctx, 1), 0);
    assert_true(nreported > 1);
    assert_int_equal(reported_old, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_downloads_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_downloads_rounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reports, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
