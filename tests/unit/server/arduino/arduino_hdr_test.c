/* arduino_hdr_test.c - the x-ESP8266-* header parser on the exact request of
 * reference arduino-ota §2.1, on its variants (no version, spiffs, Tasmota's
 * version text) and on malformed, repeated and oversized values. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "arduino_hdr.h"
#include "fota_err.h"

/* §2.1, captured from core 3.1.2, after the request line. */
static const char core312[] =
    "Host: 127.0.0.1:18090\r\n"
    "User-Agent: ESP8266-http-Update\r\n"
    "Connection: close\r\n"
    "x-ESP8266-Chip-ID: 15602487\r\n"
    "x-ESP8266-STA-MAC: DE:BA:7A:B1:E0:42\r\n"
    "x-ESP8266-AP-MAC: DE:BA:7A:B1:E0:42\r\n"
    "x-ESP8266-free-space: 4194304\r\n"
    "x-ESP8266-sketch-size: 400000\r\n"
    "x-ESP8266-sketch-md5: 0123456789abcdef0123456789abcdef\r\n"
    "x-ESP8266-chip-size: 4194304\r\n"
    "x-ESP8266-sdk-version: 2.5.0\r\n"
    "x-ESP8266-mode: sketch\r\n"
    "x-ESP8266-version: 1.0.0\r\n"
    "Content-Length: 0\r\n"
    "\r\n";

static void test_core_request(void **state)
{
    struct fota_arduino_hdrs h;
    const uint8_t mac[6] = {0xDE, 0xBA, 0x7A, 0xB1, 0xE0, 0x42};
    char text[FOTA_ARDUINO_MAC_TEXT];
    (void)state;

    fota_arduino_hdrs_init(&h);
    assert_int_equal(fota_arduino_hdrs_parse_block(&h, core312, sizeof core312 - 1),
                     (int)(sizeof core312 - 1));
    assert_int_equal(h.seen, 0x3FFu);
    assert_int_equal(h.bad, 0);
    assert_true(fota_arduino_hdrs_is_device(&h));
    assert_int_equal(h.chip_id, 15602487);
    assert_memory_equal(h.sta_mac, mac, 6);
    assert_memory_equal(h.ap_mac, mac, 6);
    assert_int_equal(h.free_space, 4194304);
    assert_int_equal(h.sketch_size, 400000);
    assert_string_equal(h.sketch_md5, "0123456789abcdef0123456789abcdef");
    assert_int_equal(h.chip_size, 4194304);
    assert_string_equal(h.sdk_version, "2.5.0");
    assert_int_equal(h.mode, FOTA_ARDUINO_MODE_SKETCH);
    assert_string_equal(h.version, "1.0.0");
    fota_arduino_mac_format(h.sta_mac, text);
    assert_string_equal(text, "DE:BA:7A:B1:E0:42");
    assert_string_equal(fota_arduino_mode_name(h.mode), "sketch");
}

/* Without a version argument the header is absent (13 headers); Tasmota's
 * version carries its build name; updateFS asks for spiffs. */
static void test_variants(void **state)
{
    struct fota_arduino_hdrs h;
    const char *tas = "x-ESP8266-STA-MAC: 5C:CF:7F:00:00:01\n"
                      "x-ESP8266-sdk-version: 2.2.2-dev(38a443e)\n"
                      "x-ESP8266-mode: spiffs\n"
                      "x-ESP8266-version: 14.4.1(release-tasmota)\n\n";
    (void)state;

    fota_arduino_hdrs_init(&h);
    assert_int_equal(fota_arduino_hdrs_parse_block(&h, tas, strlen(tas)), (int)strlen(tas));
    assert_string_equal(h.version, "14.4.1(release-tasmota)");
    assert_string_equal(h.sdk_version, "2.2.2-dev(38a443e)");
    assert_int_equal(h.mode, FOTA_ARDUINO_MODE_SPIFFS);
    assert_false(h.seen & FOTA_ARDUINO_H_SKETCH_MD5);
    assert_string_equal(h.sketch_md5, "");

    fota_arduino_hdrs_init(&h);
    assert_int_equal(fota_arduino_hdrs_feed(&h, "X-esp8266-MODE", 14, " version ", 9), 1);
    assert_int_equal(h.mode, FOTA_ARDUINO_MODE_VERSION);
    assert_int_equal(fota_arduino_hdrs_feed(&h, "x-ESP8266-mode", 14, "ota", 3), 1);
    assert_int_equal(h.mode, FOTA_ARDUINO_MODE_OTHER);
    assert_int_equal(fota_arduino_hdrs_feed(&h, "Host", 4, "x", 1), 0);
    assert_int_equal(fota_arduino_hdrs_feed(&h, "x-ESP8266-", 10, "x", 1), 0);
    assert_int_equal(fota_arduino_hdrs_feed(&h, "x-ESP8266-versionX", 18, "x", 1), 0);
    assert_false(fota_arduino_hdrs_is_device(&h));
    /* ESPHome: no x-ESP8266 header at all */
    fota_arduino_hdrs_init(&h);
    const char *esphome = "Host: h\r\nUser-Agent: ESPHome/2024.11.0 (https://esphome.io)\r\n"
                          "Accept-Encoding: identity;q=1,chunked;q=0.1,*;q=0\r\n"
                          "Connection: keep-alive\r\nContent-Length: 0\r\n\r\n";
    assert_int_equal(fota_arduino_hdrs_parse_block(&h, esphome, strlen(esphome)),
                     (int)strlen(esphome));
    assert_int_equal(h.seen, 0);
}

static void test_malformed(void **state)
{
    struct fota_arduino_hdrs h;
    char longv[80];
    (void)state;

    fota_arduino_hdrs_init(&h);
#define FEED(n, v) fota_arduino_hdrs_feed(&h, n, strlen(n), v, strlen(v))
    FEED("x-ESP8266-STA-MAC", "DE:BA:7A:B1:E0");
    FEED("x-ESP8266-AP-MAC", "DE-BA-7A-B1-E0-42");
    FEED("x-ESP8266-Chip-ID", "-1");
    FEED("x-ESP8266-free-space", "4294967296");
    FEED("x-ESP8266-sketch-size", "12a");
    FEED("x-ESP8266-sketch-md5", "0123456789abcdef0123456789abcdeg");
    FEED("x-ESP8266-chip-size", "");
    FEED("x-ESP8266-sdk-version", "2.2\x01");
    assert_int_equal(h.bad, h.seen);
    assert_int_equal(h.seen, 0xFFu);
    assert_false(fota_arduino_hdrs_is_device(&h));
    assert_int_equal(h.free_space, 0);
    assert_string_equal(h.sketch_md5, "");
    assert_string_equal(h.sdk_version, "");

    /* limits: the largest u32, upper-case MD5 folded, version length */
    FEED("x-ESP8266-free-space", "4294967295");
    assert_int_equal(h.free_space, 4294967295u);
    assert_false(h.bad & FOTA_ARDUINO_H_FREE_SPACE);
    FEED("x-ESP8266-sketch-md5", "  0123456789ABCDEF0123456789ABCDEF\t");
    assert_string_equal(h.sketch_md5, "0123456789abcdef0123456789abcdef");
    memset(longv, 'v', 63);
    longv[63] = '\0';
    FEED("x-ESP8266-version", longv);
    assert_string_equal(h.version, longv);
    longv[63] = 'v';
    longv[64] = '\0';
    FEED("x-ESP8266-version", longv);
    assert_true(h.bad & FOTA_ARDUINO_H_VERSION);
    assert_string_equal(h.version, "");
    /* a repeated header replaces the earlier one, good or bad */
    FEED("x-ESP8266-STA-MAC", "de:ba:7a:b1:e0:42");
    assert_true(fota_arduino_hdrs_is_device(&h));
    FEED("x-ESP8266-STA-MAC", "zz:ba:7a:b1:e0:42");
    assert_false(fota_arduino_hdrs_is_device(&h));
    {
        uint8_t zero[6] = {0};
        assert_memory_equal(h.sta_mac, zero, 6);
    }
#undef FEED
}

static void test_block_tristate(void **state)
{
    struct fota_arduino_hdrs h;
    char big[FOTA_ARDUINO_HDR_LINE_MAX + 16];
    (void)state;

    fota_arduino_hdrs_init(&h);
    assert_int_equal(fota_arduino_hdrs_parse_block(&h, core312, 40), FOTA_EAGAIN);
    assert_int_equal(fota_arduino_hdrs_parse_block(&h, "", 0), FOTA_EAGAIN);
    assert_int_equal(fota_arduino_hdrs_parse_block(&h, "\r\n", 2), 2);
    assert_int_equal(fota_arduino_hdrs_parse_block(&h, "\nrest", 5), 1);
    assert_int_equal(fota_arduino_hdrs_parse_block(&h, "no colon\r\n\r\n", 12), FOTA_EPROTO);
    assert_int_equal(fota_arduino_hdrs_parse_block(&h, ": value\r\n\r\n", 11), FOTA_EPROTO);
    memset(big, 'a', sizeof big);
    big[0] = 'X';
    big[1] = ':';
    assert_int_equal(fota_arduino_hdrs_parse_block(&h, big, sizeof big), FOTA_EPROTO);
    big[sizeof big - 1] = '\n';
    assert_int_equal(fota_arduino_hdrs_parse_block(&h, big, sizeof big), FOTA_EPROTO);
    /* every prefix of the request needs more, the whole is consumed */
    for (size_t n = 0; n + 1 < sizeof core312 - 1; n++) {
        fota_arduino_hdrs_init(&h);
        assert_int_equal(fota_arduino_hdrs_parse_block(&h, core312, n), FOTA_EAGAIN);
    }
}

static void test_mac_parse(void **state)
{
    uint8_t m[6];
    (void)state;
    assert_int_equal(fota_arduino_mac_parse("00:11:22:aa:BB:ff", 17, m), 0);
    assert_int_equal(m[5], 0xFF);
    assert_int_equal(m[3], 0xAA);
    assert_int_equal(fota_arduino_mac_parse("00:11:22:aa:BB:ff:", 18, m), FOTA_EINVAL);
    assert_int_equal(fota_arduino_mac_parse("00:11:22:aa:BB;ff", 17, m), FOTA_EINVAL);
    assert_int_equal(fota_arduino_mac_parse("0011:22:aa:BB:ff0", 17, m), FOTA_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_core_request),
        cmocka_unit_test(test_variants),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_block_tristate),
        cmocka_unit_test(test_mac_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
