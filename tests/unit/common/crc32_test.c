/* crc32_test.c - zlib CRC-32 and the ESP8266 stored form against the vectors
 * of reference §5.2, chunking independence, and the 0x80000000 edge. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "crc32.h"

static void test_vectors(void **state)
{
    uint8_t all[256];
    (void)state;
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    assert_int_equal(fota_crc32_update(0, "123456789", 9), 0xCBF43926u);
    assert_int_equal(fota_esp_crc_stored(fota_crc32_update(0, "123456789", 9)), 0x340BC6D9u);
    assert_int_equal(fota_crc32_update(0, "abc", 3), 0x352441C2u);
    assert_int_equal(fota_esp_crc_stored(fota_crc32_update(0, "abc", 3)), 0x352441C3u);
    assert_int_equal(fota_crc32_update(0, NULL, 0), 0u);
    assert_int_equal(fota_esp_crc_stored(fota_crc32_update(0, "", 0)), 0x00000001u);
    assert_int_equal(fota_crc32_update(0, all, sizeof all), 0x29058C73u);
    assert_int_equal(fota_esp_crc_stored(fota_crc32_update(0, all, sizeof all)), 0x29058C74u);
}

static void test_chunked(void **state)
{
    const char *s = "The quick brown fox jumps over the lazy dog";
    size_t n = strlen(s);
    (void)state;
    assert_int_equal(fota_crc32_update(0, s, n), 0x414FA339u);
    for (size_t cut = 0; cut <= n; cut++) {
        uint32_t c = fota_crc32_update(0, s, cut);
        c = fota_crc32_update(c, s + cut, n - cut);
        assert_int_equal(c, 0x414FA339u);
    }
}

/* The device computes abs((int32)~c); the writer ~c or c+1 (§5.2). Equal,
 * also at the edges. */
static void test_stored_matches_device_abs(void **state)
{
    static const uint32_t cs[] = { 0, 1, 0x7FFFFFFFu, 0x80000000u, 0x80000001u, 0xFFFFFFFFu,
                                   0xCBF43926u, 0x352441C2u };
    (void)state;
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        uint32_t raw = ~cs[i];
        int64_t sv = (int32_t)raw;          /* the NONOS ABS on the unfinished register */
        uint32_t dev = (uint32_t)(sv < 0 ? -sv : sv);
        assert_int_equal(fota_esp_crc_stored(cs[i]), dev);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_stored_matches_device_abs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
