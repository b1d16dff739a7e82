/* rom_range_test.c - server/device/rom.c: the Range header of a resumed ROM download. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "rom.h"

static void test_range(void **st)
{
    (void)st;
    int64_t a = -1, b = -1;
    assert_int_equal(fota_rom_range(NULL, 100, &a, &b), 0);
    assert_int_equal(fota_rom_range("bytes=10-19", 100, &a, &b), 1);
    assert_int_equal(a, 10);
    assert_int_equal(b, 19);
    assert_int_equal(fota_rom_range("bytes=90-", 100, &a, &b), 1);
    assert_int_equal(a, 90);
    assert_int_equal(b, 99);
    assert_int_equal(fota_rom_range("bytes=50-500", 100, &a, &b), 1); /* clamped to the end */
    assert_int_equal(b, 99);
    assert_int_equal(fota_rom_range("bytes=-30", 100, &a, &b), 1);   /* the last 30 bytes */
    assert_int_equal(a, 70);
    assert_int_equal(b, 99);
    assert_int_equal(fota_rom_range("bytes=-300", 100, &a, &b), 1);
    assert_int_equal(a, 0);
    assert_int_equal(fota_rom_range("bytes=100-", 100, &a, &b), -1); /* past the end: 416 */
    assert_int_equal(fota_rom_range("bytes=20-10", 100, &a, &b), -1);
    assert_int_equal(fota_rom_range("bytes=-0", 100, &a, &b), -1);
    assert_int_equal(fota_rom_range("bytes=0-1,5-6", 100, &a, &b), 0); /* multi: whole file */
    assert_int_equal(fota_rom_range("items=0-1", 100, &a, &b), 0);
    assert_int_equal(fota_rom_range("bytes=x-1", 100, &a, &b), 0);
    assert_int_equal(fota_rom_range("bytes=1-x", 100, &a, &b), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_range) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
