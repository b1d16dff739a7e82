/* store_reserve_test.c - the disk reserve's ballast file (reserve.h) on a
 * disk with room: made at open with its blocks allocated, given back once
 * (the second release has nothing to give), made whole again by a refill,
 * cut to a smaller size, removed with size 0. A full disk is
 * tests/integration/disk_full_test.py's. Runs in a mkdtemp dir under /tmp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "store/reserve.h"

static char root[64], path[128];
static int warns;

static void test_log(void *ud, int level, const char *msg)
{
    (void)ud;
    (void)msg;
    warns += level >= FOTA_LOG_WARN;
}

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof root, "/tmp/fota-reserve-test-XXXXXX");
    assert_non_null(mkdtemp(root));
    snprintf(path, sizeof path, "%s/reserve", root);
    warns = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    assert_int_equal(rmdir(root), 0);
    return 0;
}

/* The file's size and the bytes its blocks hold. */
static void file_is(off_t size, off_t at_least_held)
{
    struct stat st;

    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, size);
    assert_true((off_t)st.st_blocks * 512 >= at_least_held);
}

static void test_reserve(void **state)
{
    struct fota_reserve *r = NULL;

    (void)state;
    assert_int_equal(fota_reserve_open(path, 256 * 1024, test_log, NULL, &r), 0);
    file_is(256 * 1024, 256 * 1024);
    assert_int_equal(fota_reserve_held(r), 256 * 1024);
    assert_int_equal(fota_reserve_size(r), 256 * 1024);
    assert_int_equal(fota_reserve_refill(r), 0);          /* whole already */

    assert_int_equal(fota_reserve_release(r, "rom_delete"), 1);
    file_is(0, 0);
    assert_int_equal(fota_reserve_held(r), 0);
    assert_int_equal(warns, 1);                           /* the release says why */
    assert_int_equal(fota_reserve_release(r, "rom_delete"), 0);
    assert_int_equal(fota_reserve_refill(r), 1);          /* this disk has room */
    file_is(256 * 1024, 256 * 1024);
    fota_reserve_close(r);

    /* a smaller size at the next start cuts the file */
    assert_int_equal(fota_reserve_open(path, 64 * 1024, test_log, NULL, &r), 0);
    file_is(64 * 1024, 64 * 1024);
    fota_reserve_close(r);
    /* size 0: no ballast, the file goes; releases and refills do nothing */
    assert_int_equal(fota_reserve_open(path, 0, test_log, NULL, &r), 0);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(fota_reserve_release(r, "x"), 0);
    assert_int_equal(fota_reserve_refill(r), 0);
    assert_int_equal(fota_reserve_held(r), 0);
    fota_reserve_close(r);
    assert_int_equal(fota_reserve_release(NULL, "x"), 0);
    assert_int_equal(warns, 1);
}

static void test_reserve_bad_path(void **state)
{
    struct fota_reserve *r = (struct fota_reserve *)1;
    char bad[160];

    (void)state;
    snprintf(bad, sizeof bad, "%s/no/such/dir/reserve", root);
    assert_int_equal(fota_reserve_open(bad, 4096, test_log, NULL, &r), FOTA_EIO);
    assert_null(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reserve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reserve_bad_path, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
