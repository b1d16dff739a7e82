/* arduino_img_test.c - the Arduino .bin validator on images laid out as
 * elf2bin.py and esptool-ck write them (arduino_build.h): the core >= 2.7
 * "wrong" checksum, every size code, truncation at every length, broken
 * walks, and the core's refusal verdicts on a body's first bytes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "arduino_build.h"
#include "arduino_img.h"
#include "fota_err.h"

#define IROM 3000u

static uint8_t *build(const struct ab_spec *sp, size_t *len)
{
    uint8_t *b = calloc(1, AB_MAX_LEN(sp->irom_len) + 4096);
    assert_non_null(b);
    *len = ab_build(b, sp);
    return b;
}

/* The CRC elf2bin stores: over the file with the two words zeroed. */
static uint32_t ab_crc8266_with_zero_words(const uint8_t *b, size_t len)
{
    uint8_t *c = malloc(len);
    uint32_t crc;
    assert_non_null(c);
    memcpy(c, b, len);
    memset(c + 0x1010, 0, 8);
    crc = ab_crc8266(c, len);
    free(c);
    return crc;
}

static const struct ab_spec spec27 = {.mode = 3, .size_code = 4, .freq = 0, .nsketch = 5,
                                      .irom_len = IROM, .add_crc = 1, .seed = 7};

/* Every image built by core >= 2.7: the checksum matches only with the CRC
 * words zeroed, and must be accepted. */
static void test_core27_wrong_checksum_accepted(void **state)
{
    struct fota_arduino_img_info in;
    size_t len;
    uint8_t *b = build(&spec27, &len);
    (void)state;

    assert_int_equal(fota_arduino_img_parse(b, len, &in), 0);
    assert_int_equal(in.error, 0);
    assert_null(in.reason);
    assert_int_equal(in.sketch_csum, FOTA_ARDUINO_CSUM_CRC_ZEROED);
    assert_int_not_equal(in.sketch.checksum_stored, in.sketch.checksum_computed);
    assert_int_equal(in.crc_words, FOTA_ARDUINO_CRCW_VALID);
    assert_int_equal(in.crc_len_word, len);
    assert_int_equal(in.crc_val_word, ab_crc8266_with_zero_words(b, len));
    assert_int_equal(in.flash_mode, 3);
    assert_int_equal(in.size_code, 4);
    assert_int_equal(in.flash_size, 4u << 20);
    assert_int_equal(in.freq_code, 0);
    assert_int_equal(in.sketch_size, len);
    assert_int_equal(in.file_len, len);
    assert_int_equal(in.trailing, 0);
    assert_int_equal(len % 16, 0);
    assert_int_equal(in.eboot.nsegs, 2);
    assert_int_equal(in.eboot.offset, 0);
    assert_int_equal(in.eboot.entry, 0x4010f480u);
    assert_true(in.eboot.end <= 0x1000);
    assert_int_equal(in.sketch.offset, 0x1000);
    assert_int_equal(in.sketch.nsegs, 5);
    assert_int_equal(in.sketch.entry, 0x401000c0u);
    assert_int_equal(in.sketch.end, len);
    free(b);
}

/* Cores 2.5.1-2.6.x (elf2bin, no CRC words) and <= 2.5.0 (esptool-ck, 4 segments). */
static void test_plain_checksum_and_esptool_ck(void **state)
{
    struct fota_arduino_img_info in;
    struct ab_spec sp = spec27;
    size_t len;
    uint8_t *b;
    (void)state;

    sp.add_crc = 0;
    b = build(&sp, &len);
    assert_int_equal(fota_arduino_img_parse(b, len, &in), 0);
    assert_int_equal(in.sketch_csum, FOTA_ARDUINO_CSUM_STORED);
    assert_int_equal(in.crc_words, FOTA_ARDUINO_CRCW_ABSENT);
    free(b);

    sp.nsketch = 4;
    sp.mode = 2;
    b = build(&sp, &len);
    assert_int_equal(fota_arduino_img_parse(b, len, &in), 0);
    assert_int_equal(in.sketch.nsegs, 4);
    assert_int_equal(in.flash_mode, 2);
    assert_int_equal(in.sketch_size, len);
    free(b);
}

/* getSketchSize rounds (pos + 16) & ~15: a walk ending on a 16-byte
 * boundary still gets a whole block for its checksum. Every irom length
 * modulo 16 gives a file whose sketch_size is its length. */
static void test_sketch_size_every_alignment(void **state)
{
    struct fota_arduino_img_info in;
    (void)state;

    assert_int_equal(fota_arduino_sketch_round(0x101F), 0x1020);
    assert_int_equal(fota_arduino_sketch_round(0x1020), 0x1030);
    assert_int_equal(fota_arduino_sketch_round(0x1021), 0x1030);
    for (uint32_t extra = 0; extra < 16; extra++) {
        struct ab_spec sp = spec27;
        size_t len;
        uint8_t *b;
        sp.irom_len = 1000 + extra;
        b = build(&sp, &len);
        assert_int_equal(fota_arduino_img_parse(b, len, &in), 0);
        assert_int_equal(in.sketch_size, len);
        assert_int_equal(in.sketch.end - 1 - in.sketch.seg_end, 15 - (in.sketch.seg_end % 16));
        free(b);
    }
}

static void test_size_codes_decoded(void **state)
{
    static const uint32_t want[16] = {512u << 10, 256u << 10, 1u << 20, 2u << 20, 4u << 20,
                                      0, 0, 0, 8u << 20, 16u << 20, 0, 0, 0, 0, 0, 0};
    (void)state;

    for (unsigned c = 0; c < 16; c++) {
        struct fota_arduino_img_info in;
        struct ab_spec sp = spec27;
        size_t len;
        uint8_t *b;
        int rc;

        assert_int_equal(fota_arduino_flash_size(c), want[c]);
        sp.size_code = (uint8_t)c;
        sp.freq = 15;
        b = build(&sp, &len);
        rc = fota_arduino_img_parse(b, len, &in);
        if (want[c]) {
            assert_int_equal(rc, 0);
            assert_int_equal(in.flash_size, want[c]);
            assert_int_equal(in.freq_code, 15);
        } else {
            assert_int_equal(rc, FOTA_EINVAL);
            assert_int_equal(in.error_offset, 3);
            assert_non_null(strstr(in.reason, "size code"));
        }
        free(b);
    }
    /* Codes are not ordered: code 1 (256 KB) is smaller than code 0 (512 KB). */
    assert_true(fota_arduino_flash_size(1) < fota_arduino_flash_size(0));
}

static void test_flash_modes(void **state)
{
    (void)state;
    for (unsigned m = 0; m < 8; m++) {
        struct fota_arduino_img_info in;
        struct ab_spec sp = spec27;
        size_t len;
        uint8_t *b;
        sp.mode = (uint8_t)m;
        b = build(&sp, &len);
        assert_int_equal(fota_arduino_img_parse(b, len, &in), m < 4 ? 0 : FOTA_EINVAL);
        assert_int_equal(in.flash_mode, (int)m);
        if (m >= 4)
            assert_int_equal(in.error_offset, 2);
        free(b);
    }
    assert_string_equal(fota_arduino_flash_mode_name(0), "qio");
    assert_string_equal(fota_arduino_flash_mode_name(1), "qout");
    assert_string_equal(fota_arduino_flash_mode_name(2), "dio");
    assert_string_equal(fota_arduino_flash_mode_name(3), "dout");
    assert_string_equal(fota_arduino_flash_mode_name(4), "unknown");
    assert_string_equal(fota_arduino_flash_mode_name(-1), "unknown");
    assert_int_equal(fota_arduino_flash_mode_parse("DOUT"), 3);
    assert_int_equal(fota_arduino_flash_mode_parse("qio"), 0);
    assert_int_equal(fota_arduino_flash_mode_parse("qou"), -1);
    assert_int_equal(fota_arduino_flash_mode_parse("qoutx"), -1);
    assert_int_equal(fota_arduino_flash_mode_parse(""), -1);
    assert_int_equal(fota_arduino_flash_mode_parse(NULL), -1);
}

/* A file cut at any length fails as truncated, never passes or reads
 * beyond the cut (ASan sees the copy's bounds). */
static void test_truncated_everywhere(void **state)
{
    struct fota_arduino_img_info in;
    struct ab_spec sp = spec27;
    size_t len;
    uint8_t *b;
    (void)state;

    sp.irom_len = 40;
    b = build(&sp, &len);
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *c = malloc(cut ? cut : 1);
        assert_non_null(c);
        memcpy(c, b, cut);
        assert_int_equal(fota_arduino_img_parse(c, cut, &in), FOTA_ETRUNC);
        assert_non_null(in.reason);
        assert_true(in.error_offset <= cut);
        free(c);
    }
    free(b);
}

/* Bytes after the sketch (a foreign trailer) are allowed and counted. */
static void test_trailing_bytes(void **state)
{
    struct fota_arduino_img_info in;
    size_t len;
    uint8_t *b = build(&spec27, &len);
    (void)state;

    memset(b + len, 0x5A, 260);
    assert_int_equal(fota_arduino_img_parse(b, len + 260, &in), 0);
    assert_int_equal(in.sketch_size, len);
    assert_int_equal(in.trailing, 260);
    assert_int_equal(in.crc_words, FOTA_ARDUINO_CRCW_MISMATCH);
    free(b);
}

static void set_le32(uint8_t *p, uint32_t v)
{
    ab_le32(p, v);
}

static void test_broken_walks(void **state)
{
    struct fota_arduino_img_info in;
    size_t len;
    uint8_t *b = build(&spec27, &len);
    uint8_t *c = malloc(len);
    (void)state;
    assert_non_null(c);

    /* segment counts */
    memcpy(c, b, len);
    c[1] = 0;
    assert_int_equal(fota_arduino_img_parse(c, len, &in), FOTA_ERANGE);
    assert_int_equal(in.error_offset, 1);
    c[1] = 17;
    assert_int_equal(fota_arduino_img_parse(c, len, &in), FOTA_ERANGE);
    memcpy(c, b, len);
    c[0x1001] = 0;
    assert_int_equal(fota_arduino_img_parse(c, len, &in), FOTA_ERANGE);
    assert_int_equal(in.error_offset, 0x1001);
    c[0x1001] = 255;
    assert_int_equal(fota_arduino_img_parse(c, len, &in), FOTA_ERANGE);

    /* an eboot segment reaching into the sketch */
    memcpy(c, b, len);
    set_le32(c + 8 + 4, 0x2000);
    assert_int_equal(fota_arduino_img_parse(c, len, &in), FOTA_ERANGE);
    assert_non_null(strstr(in.reason, "0x1000"));
    /* a huge segment length does not wrap around */
    memcpy(c, b, len);
    set_le32(c + 0x1008 + 4, 0xFFFFFFF8u);
    assert_int_equal(fota_arduino_img_parse(c, len, &in), FOTA_ETRUNC);
    set_le32(c + 0x1008 + 4, 0xFFFFFFFFu);
    assert_int_equal(fota_arduino_img_parse(c, len, &in), FOTA_ETRUNC);
    /* more segments than the data holds */
    memcpy(c, b, len);
    c[0x1001] = 16;
    assert_int_equal(fota_arduino_img_parse(c, len, &in), FOTA_ETRUNC);

    /* magic bytes */
    memcpy(c, b, len);
    c[0] = 0xEA;
    assert_int_equal(fota_arduino_img_parse(c, len, &in), FOTA_EMAGIC);
    assert_int_equal(in.error_offset, 0);
    memcpy(c, b, len);
    c[0x1000] = 0xE8;
    assert_int_equal(fota_arduino_img_parse(c, len, &in), FOTA_EMAGIC);
    assert_int_equal(in.error_offset, 0x1000);
    c[0] = 0x1F;
    c[1] = 0x8B;
    assert_int_equal(fota_arduino_img_parse(c, len, &in), FOTA_EMAGIC);
    assert_non_null(strstr(in.reason, "gzip"));

    /* checksums */
    memcpy(c, b, len);
    c[20] ^= 1; /* eboot .text data */
    assert_int_equal(fota_arduino_img_parse(c, len, &in), FOTA_ECHECKSUM);
    assert_non_null(strstr(in.reason, "eboot"));
    memcpy(c, b, len);
    c[0x1010 + 100] ^= 0x40; /* sketch irom data */
    assert_int_equal(fota_arduino_img_parse(c, len, &in), FOTA_ECHECKSUM);
    assert_int_equal(in.error_offset, len - 1);
    assert_non_null(strstr(in.reason, "sketch"));
    memcpy(c, b, len);
    c[len - 1] ^= 0x01; /* the sketch checksum byte itself */
    assert_int_equal(fota_arduino_img_parse(c, len, &in), FOTA_ECHECKSUM);

    /* empty and oversized input */
    assert_int_equal(fota_arduino_img_parse(NULL, 0, &in), FOTA_ETRUNC);
    assert_int_equal(fota_arduino_img_parse(c, (size_t)FOTA_ARDUINO_MAX_SIZE + 1, &in),
                     FOTA_ERANGE);
    free(c);
    free(b);
}

/* With the checksum recomputed over the patched words, the stored form
 * matches (a build tool that rewrites the checksum). */
static void test_checksum_stored_with_words_set(void **state)
{
    struct fota_arduino_img_info in;
    size_t len;
    uint8_t *b = build(&spec27, &len);
    uint8_t x = 0;
    (void)state;

    for (int i = 0; i < 8; i++)
        x ^= b[0x1010 + i];
    b[len - 1] ^= x;
    assert_int_equal(fota_arduino_img_parse(b, len, &in), 0);
    assert_int_equal(in.sketch_csum, FOTA_ARDUINO_CSUM_STORED);
    /* the CRC words cover the checksum byte: the CRC no longer matches */
    assert_int_equal(in.crc_words, FOTA_ARDUINO_CRCW_MISMATCH);
    free(b);
}

static void test_crc(void **state)
{
    (void)state;
    assert_int_equal(fota_arduino_crc_update(0xFFFFFFFFu, "123456789", 9), 0x0376E6E7u);
    assert_int_equal(ab_crc8266((const uint8_t *)"123456789", 9), 0x0376E6E7u);
    uint32_t c = fota_arduino_crc_update(0xFFFFFFFFu, "1234", 4);
    assert_int_equal(fota_arduino_crc_update(c, "56789", 5), 0x0376E6E7u);
}

static void test_device_verdict(void **state)
{
    const uint8_t e9_4m[4] = {0xE9, 5, 3, 0x40}, e9_16m[4] = {0xE9, 5, 3, 0x90};
    const uint8_t e9_code5[4] = {0xE9, 5, 3, 0x50}, gz[4] = {0x1F, 0x8B, 8, 0};
    const uint8_t zero[4] = {0, 0, 0, 0}, badgz[4] = {0x1F, 0x00, 0, 0};
    const uint32_t mb4 = 4u << 20;
    (void)state;

    assert_int_equal(fota_arduino_device_verdict(e9_4m, 4, 400000, mb4, mb4, 0), FOTA_ARDUINO_ACCEPT);
    assert_int_equal(fota_arduino_device_verdict(e9_4m, 4, 0, mb4, mb4, 0), FOTA_ARDUINO_NO_SIZE);
    assert_int_equal(fota_arduino_device_verdict(e9_4m, 4, 8u << 20, mb4, mb4, 1),
                     FOTA_ARDUINO_TOO_LESS_SPACE);
    assert_int_equal(fota_arduino_device_verdict(e9_4m, 4, (uint64_t)mb4 + 1, mb4, mb4, 1),
                     FOTA_ARDUINO_TOO_LESS_SPACE);
    assert_int_equal(fota_arduino_device_verdict(e9_4m, 4, mb4, mb4, mb4, 1), FOTA_ARDUINO_ACCEPT);
    assert_int_equal(fota_arduino_device_verdict(zero, 4, 1000, mb4, mb4, 1),
                     FOTA_ARDUINO_BAD_HEADER);
    assert_int_equal(fota_arduino_device_verdict(e9_16m, 4, 1000, mb4, mb4, 1),
                     FOTA_ARDUINO_WRONG_FLASH);
    assert_int_equal(fota_arduino_device_verdict(e9_16m, 4, 1000, mb4, 16u << 20, 1),
                     FOTA_ARDUINO_ACCEPT);
    /* an undefined code decodes to 0 and passes */
    assert_int_equal(fota_arduino_device_verdict(e9_code5, 4, 1000, mb4, mb4, 1),
                     FOTA_ARDUINO_ACCEPT);
    /* gzip: cores >= 2.7 only, never flash-size checked; the magic byte after 1F is
     * the updater's (error 10), not this early check */
    assert_int_equal(fota_arduino_device_verdict(gz, 4, 1000, mb4, mb4, 1), FOTA_ARDUINO_ACCEPT);
    assert_int_equal(fota_arduino_device_verdict(gz, 4, 1000, mb4, mb4, 0),
                     FOTA_ARDUINO_BAD_HEADER);
    assert_int_equal(fota_arduino_device_verdict(badgz, 4, 1000, mb4, mb4, 1),
                     FOTA_ARDUINO_ACCEPT);
    /* fewer than 4 body bytes */
    assert_int_equal(fota_arduino_device_verdict(e9_4m, 3, 3, mb4, mb4, 1),
                     FOTA_ARDUINO_BAD_HEADER);
    assert_int_equal(fota_arduino_device_verdict(e9_4m, 2, 1000, mb4, mb4, 1),
                     FOTA_ARDUINO_BAD_HEADER);

    assert_string_equal(fota_arduino_verdict_string(-100), "Not Enough space");
    assert_string_equal(fota_arduino_verdict_string(-101), "Server Did Not Report Size");
    assert_string_equal(fota_arduino_verdict_string(-106), "Verify Bin Header Failed");
    assert_string_equal(fota_arduino_verdict_string(-107), "New Binary Does Not Fit Flash Size");
    assert_string_equal(fota_arduino_verdict_string(0), "");
    assert_string_equal(fota_arduino_verdict_string(-5), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_core27_wrong_checksum_accepted),
        cmocka_unit_test(test_plain_checksum_and_esptool_ck),
        cmocka_unit_test(test_sketch_size_every_alignment),
        cmocka_unit_test(test_size_codes_decoded),
        cmocka_unit_test(test_flash_modes),
        cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_trailing_bytes),
        cmocka_unit_test(test_broken_walks),
        cmocka_unit_test(test_checksum_stored_with_words_set),
        cmocka_unit_test(test_crc),
        cmocka_unit_test(test_device_verdict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
