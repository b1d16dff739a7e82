/* hex_test.c - fota_hex_encode: every byte value, the terminator, and the
 * empty input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "hex.h"

static void test_every_byte(void **state)
{
    uint8_t all[256];
    char out[2 * sizeof all + 2], want[3];
    (void)state;
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    memset(out, 'x', sizeof out);
    fota_hex_encode(all, sizeof all, out);
    for (int i = 0; i < 256; i++) {
        snprintf(want, sizeof want, "%02x", (unsigned)i);
        assert_memory_equal(out + 2 * i, want, 2);
    }
    assert_int_equal(out[2 * sizeof all], '\0');
    assert_int_equal(out[2 * sizeof all + 1], 'x');     /* nothing written past it */
}

static void test_digest(void **state)
{
    const uint8_t d[4] = { 0xde, 0xad, 0x0b, 0xef };
    char out[9];
    (void)state;
    fota_hex_encode(d, sizeof d, out);
    assert_string_equal(out, "dead0bef");
}

static void test_empty(void **state)
{
    char out[1] = { 'x' };
    (void)state;
    fota_hex_encode(NULL, 0, out);
    assert_int_equal(out[0], '\0');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_byte),
        cmocka_unit_test(test_digest),
        cmocka_unit_test(test_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
