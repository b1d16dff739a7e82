/* fwimg_test.c - the image codec: every layout parsed (v1 and old images are
 * assembled by hand here), slot decisions, streaming == one-shot for any
 * chunking, single-byte corruption always detected, builder round trips,
 * flash maps. The release rules: fwimg_release_test.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "fota_err.h"
#include "fwimg.h"

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

static void fix_crc(uint8_t *img, size_t len)
{
    put32(img + len - 4, fota_esp_crc_stored(fota_crc32_update(0, img, len - 4)));
}

/* A small built image; caller frees. */
static uint8_t *build(const struct fota_fwimg_build_opts *o, size_t *len)
{
    size_t n = fota_fwimg_build_size(o);
    uint8_t *b;
    assert_true(n > 0);
    b = malloc(n);
    assert_non_null(b);
    assert_int_equal(fota_fwimg_build(o, b, n, len), 0);
    assert_int_equal(*len, n);
    return b;
}

static void small_opts(struct fota_fwimg_build_opts *o, int slot, int map)
{
    fota_fwimg_build_opts_init(o);
    o->slot = slot;
    o->size_map = map;
    o->irom_size = 32;
    o->text_size = 20;
    o->data_size = 6;
    o->rodata_size = 9;
    o->version = "v1.1";
    o->seed = 7;
}

/* A hand-made E9 image: 3 segments, checksum; then nothing, a CRC, or (old
 * layout) 0xFF to 0x10000 + irom_len bytes of irom + CRC if crc. */
static size_t mk_e9(uint8_t *b, uint8_t b2, uint8_t b3, int old, int crc, uint32_t irom_len)
{
    static const uint32_t addr[3] = { 0x40100000u, 0x3FFE8000u, 0x3FFE8010u };
    static const uint32_t len[3] = { 16, 8, 12 };
    uint8_t x = 0xEF;
    size_t p = 8;

    b[0] = 0xE9; b[1] = 3; b[2] = b2; b[3] = b3;
    put32(b + 4, 0x40100004u);
    for (int s = 0; s < 3; s++) {
        put32(b + p, addr[s]);
        put32(b + p + 4, len[s]);
        p += 8;
        for (uint32_t i = 0; i < len[s]; i++) {
            b[p] = (uint8_t)((uint32_t)s * 31 + i * 5 + 1);
            x ^= b[p++];
        }
    }
    while ((p & 15) != 15)
        b[p++] = 0;
    b[p++] = x;
    if (old) {
        while (p < 0x10000)
            b[p++] = 0xFF;
        for (uint32_t i = 0; i < irom_len; i++)
            b[p++] = (uint8_t)(i * 13 + 7);
    }
    if (crc) {
        p += 4;
        fix_crc(b, p);
    }
    return p;
}

/* ------------------------------------------------------------ builder */

static void test_builder_roundtrip(void **state)
{
    static const int maps[] = { 0, 2, 5, 6 };
    (void)state;
    for (size_t m = 0; m < 4; m++) {
        for (int slot = 1; slot <= 2; slot++) {
            struct fota_fwimg_build_opts o;
            struct fota_fwimg_info in;
            uint8_t sha[32];
            size_t len;
            uint8_t *img;

            fota_fwimg_build_opts_init(&o);
            o.slot = slot;
            o.size_map = maps[m];
            o.flash_mode = 2;
            o.flash_freq = 15;
            o.version = "v2.0.3-rc1";
            o.seed = (uint32_t)(m * 10 + (size_t)slot);
            img = build(&o, &len);
            assert_int_equal(len % 16, 4);
            assert_int_equal(fota_fwimg_parse(img, len, &in), 0);
            assert_int_equal(in.layout, FOTA_FWIMG_LAYOUT_V2);
            assert_int_equal(in.variant, FOTA_FWIMG_VARIANT_NONOS2);
            assert_int_equal(in.slot, slot);
            assert_int_equal(in.slot_src, FOTA_FWIMG_SLOTSRC_BYTE3);
            assert_int_equal(in.size_map, maps[m]);
            assert_int_equal(in.flash_mode, 2);
            assert_int_equal(in.flash_freq, 15);
            assert_int_equal(in.crc_state, FOTA_FWIMG_CRC_VALID);
            assert_int_equal(in.crc_stored, in.crc_computed);
            assert_true(in.checksum_valid);
            assert_int_equal(in.checksum_offset % 16, 15);
            assert_int_equal(in.total_size, len);
            assert_int_equal(in.entry, 0x40100004u);
            assert_int_equal(in.irom_offset, 16);
            assert_int_equal(in.irom_len, 0x1000);
            assert_int_equal(in.nsegs, 3);
            assert_int_equal(in.segs[0].addr, 0x40100000u);
            assert_int_equal(in.segs[0].len, 0x800);
            assert_int_equal(in.segs[1].addr, 0x3FFE8000u);
            assert_int_equal(in.segs[1].len, 0x40);
            assert_int_equal(in.segs[2].addr, 0x3FFE8040u);
            assert_int_equal(in.segs[2].len, 0x200);
            assert_int_equal(in.segs[0].offset, 16 + 0x1000 + 8 + 8);
            assert_string_equal(in.version, "v2.0.3-rc1");
            assert_int_equal(in.version_offset, 16);
            assert_true(in.has_sha256);
            fota_sha256(img, len, sha);
            assert_memory_equal(in.sha256, sha, 32);
            assert_int_equal(in.error, 0);
            assert_null(in.error_what);
            /* the device's own download check accepts it for its slot only */
            assert_int_equal(fota_fwimg_check_head(img, len, slot), 0);
            assert_int_equal(fota_fwimg_check_head(img, len, 3 - slot), FOTA_ESLOT);
            assert_int_equal(fota_fwimg_sniff(img, len), FOTA_FWIMG_KIND_IMAGE);
            free(img);
        }
    }
}

static void test_builder_options(void **state)
{
    struct fota_fwimg_build_opts o;
    struct fota_fwimg_info in;
    uint8_t small[64];
    size_t len, want;
    uint8_t *img;
    (void)state;

    fota_fwimg_build_opts_init(&o);
    /* no .data: two segments, .rodata at the DRAM start */
    o.data_size = 0;
    o.version = NULL;
    img = build(&o, &len);
    assert_int_equal(fota_fwimg_parse(img, len, &in), 0);
    assert_int_equal(in.nsegs, 2);
    assert_int_equal(in.segs[1].addr, 0x3FFE8000u);
    assert_string_equal(in.version, "");
    free(img);
    /* unaligned sizes are padded to 4 (segments) and 16 (irom); the version grows irom */
    small_opts(&o, 2, 2);
    o.irom_size = 0;
    o.version = "0123456789abcdefghijklmnopqrstu";       /* 31 chars: the longest */
    img = build(&o, &len);
    assert_int_equal(fota_fwimg_parse(img, len, &in), 0);
    assert_int_equal(in.irom_len, 48);
    assert_int_equal(in.segs[0].len, 20);
    assert_int_equal(in.segs[1].len, 8);
    assert_int_equal(in.segs[2].len, 12);
    assert_string_equal(in.version, o.version);
    free(img);
    /* same options, same bytes; another seed, other bytes */
    small_opts(&o, 1, 2);
    {
        size_t l1, l2;
        uint8_t *a = build(&o, &l1), *b;
        o.seed = 8;
        b = build(&o, &l2);
        assert_int_equal(l1, l2);
        assert_memory_not_equal(a, b, l1);
        o.seed = 7;
        free(b);
        b = build(&o, &l2);
        assert_memory_equal(a, b, l1);
        free(a);
        free(b);
    }
    /* invalid options */
    small_opts(&o, 3, 2);
    assert_int_equal(fota_fwimg_build_size(&o), 0);
    assert_int_equal(fota_fwimg_build(&o, small, sizeof small, &len), FOTA_EINVAL);
    small_opts(&o, 1, 7);
    assert_int_equal(fota_fwimg_build_size(&o), 0);
    small_opts(&o, 1, 2);
    o.flash_freq = 3;
    assert_int_equal(fota_fwimg_build_size(&o), 0);
    small_opts(&o, 1, 2);
    o.version = "0123456789abcdefghijklmnopqrstuv";      /* 32 chars */
    assert_int_equal(fota_fwimg_build_size(&o), 0);
    o.version = "bad\nversion";
    assert_int_equal(fota_fwimg_build_size(&o), 0);
    small_opts(&o, 1, 2);
    o.text_size = 0x8001;
    assert_int_equal(fota_fwimg_build_size(&o), 0);
    /* too small a buffer: ETOOBIG and the size needed */
    small_opts(&o, 1, 2);
    want = fota_fwimg_build_size(&o);
    assert_int_equal(fota_fwimg_build(&o, small, sizeof small, &len), FOTA_ETOOBIG);
    assert_int_equal(len, want);
}

static void test_builder_fit(void **state)
{
    struct fota_fwimg_build_opts o;
    (void)state;
    fota_fwimg_build_opts_init(&o);
    o.version = "v1";
    assert_int_equal(fota_fwimg_build_fit(&o, 100004), 0);       /* 100004 ≡ 4 mod 16 */
    assert_int_equal(fota_fwimg_build_size(&o), 100004);
    assert_int_equal(fota_fwimg_build_fit(&o, 100010), 0);
    assert_int_equal(fota_fwimg_build_size(&o), 100004);
    assert_int_equal(fota_fwimg_build_fit(&o, 100), FOTA_ERANGE);
    o.slot = 0;
    assert_int_equal(fota_fwimg_build_fit(&o, 100004), FOTA_EINVAL);
}

/* ------------------------------------------------------------ layouts */

static void test_v1_layout(void **state)
{
    uint8_t b[256];
    struct fota_fwimg_info in;
    size_t n;
    (void)state;

    n = mk_e9(b, 2, 0x20, 0, 0, 0);                      /* DIO, map 2, 40 MHz, no CRC */
    assert_int_equal(n, 80);
    assert_int_equal(fota_fwimg_parse(b, n, &in), 0);
    assert_int_equal(in.layout, FOTA_FWIMG_LAYOUT_V1);
    assert_int_equal(in.variant, FOTA_FWIMG_VARIANT_FLASHHDR);
    assert_int_equal(in.flash_mode, 2);
    assert_int_equal(in.size_map, 2);
    assert_int_equal(in.flash_freq, 0);
    assert_int_equal(in.slot, FOTA_FWIMG_SLOT_UNKNOWN);
    assert_int_equal(in.slot_src, FOTA_FWIMG_SLOTSRC_NONE);
    assert_int_equal(in.crc_state, FOTA_FWIMG_CRC_ABSENT);
    assert_int_equal(in.checksum_offset, 79);
    assert_true(in.checksum_valid);
    assert_int_equal(in.nsegs, 3);
    assert_int_equal(in.segs[2].addr, 0x3FFE8010u);
    assert_int_equal(in.entry, 0x40100004u);
    assert_int_equal(in.irom_len, 0);
    /* absent CRC is refused only on request */
    assert_int_equal(fota_fwimg_parse_flags(b, n, FOTA_FWIMG_F_REQUIRE_CRC, &in), FOTA_ECRC);

    n = mk_e9(b, 0, 1, 0, 1, 0);                         /* gen_appbin app byte, CRC */
    assert_int_equal(n, 84);
    assert_int_equal(fota_fwimg_parse(b, n, &in), 0);
    assert_int_equal(in.layout, FOTA_FWIMG_LAYOUT_V1);
    assert_int_equal(in.variant, FOTA_FWIMG_VARIANT_APP);
    assert_int_equal(in.slot, FOTA_FWIMG_SLOT_USER1);
    assert_int_equal(in.slot_src, FOTA_FWIMG_SLOTSRC_BYTE3);
    assert_int_equal(in.size_map, -1);
    assert_int_equal(in.crc_state, FOTA_FWIMG_CRC_VALID);
    b[83] ^= 0x10;
    assert_int_equal(fota_fwimg_parse(b, n, &in), FOTA_ECRC);
    assert_int_equal(in.crc_state, FOTA_FWIMG_CRC_INVALID);
    /* 1..3 bytes of tail: a cut CRC */
    assert_int_equal(fota_fwimg_parse(b, 82, &in), FOTA_ETRUNC);
    /* a 5th byte that is not 0xFF padding */
    b[84] = 0x00;
    assert_int_equal(fota_fwimg_parse(b, 85, &in), FOTA_EPROTO);
}

static void test_old_layout(void **state)
{
    uint8_t *b = malloc(0x10000 + 1024);
    struct fota_fwimg_info in;
    size_t n;
    (void)state;
    assert_non_null(b);

    n = mk_e9(b, 0, 2, 1, 1, 300);
    assert_int_equal(n, 0x10000 + 300 + 4);
    assert_int_equal(fota_fwimg_parse(b, n, &in), 0);
    assert_int_equal(in.layout, FOTA_FWIMG_LAYOUT_OLD);
    assert_int_equal(in.variant, FOTA_FWIMG_VARIANT_APP);
    assert_int_equal(in.slot, FOTA_FWIMG_SLOT_USER2);
    assert_int_equal(in.irom_offset, 0x10000);
    assert_int_equal(in.irom_len, 300);
    assert_int_equal(in.crc_state, FOTA_FWIMG_CRC_VALID);
    b[0x10000 + 5] ^= 1;                                 /* irom is only covered by the CRC */
    assert_int_equal(fota_fwimg_parse(b, n, &in), FOTA_ECRC);
    assert_true(in.checksum_valid);
    b[0x10000 + 5] ^= 1;
    b[0x8000] = 0xFE;                                    /* padding must be 0xFF */
    assert_int_equal(fota_fwimg_parse(b, n, &in), FOTA_EPROTO);
    assert_int_equal(in.error_offset, 0x8000);
    b[0x8000] = 0xFF;
    /* padding but no irom */
    assert_int_equal(fota_fwimg_parse(b, 0x10000, &in), FOTA_ETRUNC);

    /* SDK 0.9: E9 03 00 00, no CRC */
    n = mk_e9(b, 0, 0, 1, 0, 256);
    assert_int_equal(fota_fwimg_parse(b, n, &in), 0);
    assert_int_equal(in.layout, FOTA_FWIMG_LAYOUT_OLD);
    assert_int_equal(in.variant, FOTA_FWIMG_VARIANT_SDK09);
    assert_int_equal(in.slot, FOTA_FWIMG_SLOT_UNKNOWN);
    assert_int_equal(in.crc_state, FOTA_FWIMG_CRC_ABSENT);
    assert_int_equal(in.irom_len, 256);
    assert_int_equal(fota_fwimg_check_head(b, n, 1), FOTA_ESLOT);

    /* an esptool v1 flash dump (0x00000.bin, 0xFF, 0x10000.bin): no CRC either */
    n = mk_e9(b, 2, 0x20, 1, 0, 64);
    assert_int_equal(fota_fwimg_parse(b, n, &in), 0);
    assert_int_equal(in.layout, FOTA_FWIMG_LAYOUT_OLD);
    assert_int_equal(in.variant, FOTA_FWIMG_VARIANT_FLASHHDR);
    assert_int_equal(in.crc_state, FOTA_FWIMG_CRC_ABSENT);
    assert_int_equal(in.size_map, 2);
    /* ... unless it ends with one */
    n = mk_e9(b, 2, 0x20, 1, 1, 64);
    assert_int_equal(fota_fwimg_parse(b, n, &in), 0);
    assert_int_equal(in.crc_state, FOTA_FWIMG_CRC_VALID);
    assert_int_equal(in.irom_len, 64);
    free(b);
}

static void test_v2_legacy_variant(void **state)
{
    struct fota_fwimg_build_opts o;
    struct fota_fwimg_info in;
    size_t len;
    uint8_t *img;
    (void)state;

    small_opts(&o, 1, 5);
    img = build(&o, &len);
    img[2] = 2;                  /* RTOS 1.x: flash_mode, (map<<4)|freq */
    img[3] = 0x50;
    fix_crc(img, len);
    assert_int_equal(fota_fwimg_parse(img, len, &in), 0);
    assert_int_equal(in.layout, FOTA_FWIMG_LAYOUT_V2);
    assert_int_equal(in.variant, FOTA_FWIMG_VARIANT_LEGACY);
    assert_int_equal(in.slot, FOTA_FWIMG_SLOT_UNKNOWN);
    assert_int_equal(in.size_map, 5);                    /* from the E9 header */
    assert_int_equal(in.byte3, 0x50);
    assert_int_equal(fota_fwimg_check_head(img, len, 1), FOTA_ESLOT);
    free(img);
}

/* esptool --version 2 without irom: EA 04 header directly followed by E9 */
static void test_v2_without_irom(void **state)
{
    uint8_t b[256], x;
    struct fota_fwimg_info in;
    size_t n;
    (void)state;
    (void)mk_e9(b + 8, 2, 0x20, 0, 0, 0);              /* E9 image at 8, checksum at 8 + 79 */
    b[0] = 0xEA; b[1] = 0x04; b[2] = 2; b[3] = 0x20;
    put32(b + 4, 0x40100004u);
    /* its segments end at 8 + 68 = 76, so the checksum belongs at 76 | 15 = 79 */
    x = b[8 + 79];
    memset(b + 76, 0, 16);
    b[79] = x;
    n = 79 + 1 + 4;
    fix_crc(b, n);
    assert_int_equal(fota_fwimg_parse(b, n, &in), 0);
    assert_int_equal(in.layout, FOTA_FWIMG_LAYOUT_V2);
    assert_int_equal(in.variant, FOTA_FWIMG_VARIANT_LEGACY);
    assert_int_equal(in.irom_len, 0);
    assert_int_equal(in.irom_offset, 0);
    assert_int_equal(in.nsegs, 3);
    assert_int_equal(in.segs[0].offset, 8 + 8 + 8);
    assert_int_equal(in.size_map, 2);
    assert_int_equal(in.crc_state, FOTA_FWIMG_CRC_VALID);
}

/* ------------------------------------------------------------ streaming */

static int stream_chunks(const uint8_t *b, size_t n, size_t step, uint32_t flags,
                         struct fota_fwimg_info *out)
{
    struct fota_fwimg_stream s;
    fota_fwimg_begin(&s, flags);
    for (size_t off = 0; off < n; off += step)
        (void)fota_fwimg_update(&s, b + off, off + step > n ? n - off : step);
    return fota_fwimg_end(&s, out);
}

static void test_stream_equals_oneshot(void **state)
{
    struct fota_fwimg_build_opts o;
    struct fota_fwimg_info a, b;
    uint8_t *old = malloc(0x10000 + 64);
    size_t len, n;
    uint8_t *img;
    (void)state;
    assert_non_null(old);

    fota_fwimg_build_opts_init(&o);
    o.version = "v9";
    img = build(&o, &len);
    memset(&a, 0x55, sizeof a);
    memset(&b, 0xAA, sizeof b);
    assert_int_equal(fota_fwimg_parse(img, len, &a), 0);
    for (size_t step = 1; step <= 17; step++) {
        assert_int_equal(stream_chunks(img, len, step, 0, &b), 0);
        assert_memory_equal(&a, &b, sizeof a);
    }
    assert_int_equal(stream_chunks(img, len, 4096, 0, &b), 0);
    assert_memory_equal(&a, &b, sizeof a);
    /* the same for a damaged one (report identical, also on error) */
    img[100] ^= 0x40;
    assert_int_equal(fota_fwimg_parse(img, len, &a), FOTA_ECRC);
    assert_int_equal(stream_chunks(img, len, 1, 0, &b), FOTA_ECRC);
    assert_memory_equal(&a, &b, sizeof a);
    /* old layout byte by byte */
    n = mk_e9(old, 0, 1, 1, 1, 40);
    assert_int_equal(fota_fwimg_parse(old, n, &a), 0);
    assert_int_equal(stream_chunks(old, n, 1, 0, &b), 0);
    assert_memory_equal(&a, &b, sizeof a);
    assert_int_equal(stream_chunks(old, n, 333, 0, &b), 0);
    assert_memory_equal(&a, &b, sizeof a);
    /* without SHA-256 */
    assert_int_equal(stream_chunks(img, len, 7, FOTA_FWIMG_F_NO_SHA256, &b), FOTA_ECRC);
    assert_false(b.has_sha256);
    free(img);
    free(old);
}

static void test_stream_early_errors(void **state)
{
    struct fota_fwimg_stream s;
    struct fota_fwimg_info in;
    static const uint8_t html[] = "<!DOCTYPE html><html>";
    static const uint8_t ea05[] = { 0xEA, 0x05 };
    static const uint8_t user1[] = { 0xEA, 0x04, 0x00, 0x01, 0x04 };
    static const uint8_t e9many[] = { 0xE9, 0x11 };
    (void)state;

    fota_fwimg_begin(&s, 0);
    assert_int_equal(fota_fwimg_update(&s, html, 1), FOTA_EMAGIC);   /* after 1 byte */
    assert_int_equal(fota_fwimg_update(&s, html + 1, 1), FOTA_EMAGIC); /* sticky */
    assert_int_equal(fota_fwimg_end(&s, &in), FOTA_EMAGIC);
    assert_int_equal(in.error_offset, 0);
    assert_non_null(in.error_what);

    fota_fwimg_begin(&s, 0);
    assert_int_equal(fota_fwimg_update(&s, ea05, 1), 0);
    assert_int_equal(fota_fwimg_update(&s, ea05 + 1, 1), FOTA_EMAGIC); /* after 2 bytes */

    fota_fwimg_begin(&s, 0);
    assert_int_equal(fota_fwimg_update(&s, e9many, 2), FOTA_ERANGE);

    /* expected slot: decided on byte 3, not before */
    fota_fwimg_begin(&s, FOTA_FWIMG_F_EXPECT_USER2);
    assert_int_equal(fota_fwimg_update(&s, user1, 3), 0);
    assert_int_equal(fota_fwimg_update(&s, user1 + 3, 1), FOTA_ESLOT);
    fota_fwimg_begin(&s, FOTA_FWIMG_F_EXPECT_USER1);
    assert_int_equal(fota_fwimg_update(&s, user1, sizeof user1), 0);

    /* incomplete input */
    fota_fwimg_begin(&s, 0);
    assert_int_equal(fota_fwimg_update(&s, user1, sizeof user1), 0);
    assert_int_equal(fota_fwimg_end(&s, &in), FOTA_ETRUNC);
    assert_int_equal(fota_fwimg_parse(NULL, 0, &in), FOTA_ETRUNC);
    assert_string_equal(in.error_what, "empty file");
}

static void test_stream_structure_errors(void **state)
{
    struct fota_fwimg_build_opts o;
    struct fota_fwimg_info in;
    size_t len;
    uint8_t *img, *big;
    (void)state;

    small_opts(&o, 1, 2);
    img = build(&o, &len);
    /* every truncation is ETRUNC (never success) */
    for (size_t n = 0; n < len; n++)
        assert_int_equal(fota_fwimg_parse(img, n, &in), FOTA_ETRUNC);
    /* data after the CRC, reported at the first extra byte */
    big = calloc(1, len + 3);
    assert_non_null(big);
    memcpy(big, img, len);
    assert_int_equal(fota_fwimg_parse(big, len + 3, &in), FOTA_EPROTO);
    assert_int_equal(in.error_offset, len);
    /* a second header without E9 */
    memcpy(big, img, len);
    big[16 + 32] = 0xEA;                                 /* irom is 32 bytes */
    assert_int_equal(fota_fwimg_parse(big, len, &in), FOTA_EMAGIC);
    assert_int_equal(in.error_offset, 16 + 32);
    /* an irom length beyond any flash */
    memcpy(big, img, len);
    put32(big + 12, 0x7FFFFFF0u);
    assert_int_equal(fota_fwimg_parse(big, len, &in), FOTA_ERANGE);
    free(big);
    free(img);
}

/* Any single changed byte is reported (CRC or checksum or structure). */
static void test_every_byte_flip(void **state)
{
    struct fota_fwimg_build_opts o;
    struct fota_fwimg_info in;
    size_t len;
    uint8_t *img;
    (void)state;

    small_opts(&o, 2, 2);
    img = build(&o, &len);
    assert_true(len < 200);
    for (size_t i = 0; i < len; i++) {
        static const uint8_t masks[] = { 0x01, 0x80, 0xFF };
        for (size_t k = 0; k < sizeof masks; k++) {
            int rc;
            img[i] ^= masks[k];
            rc = fota_fwimg_parse(img, len, &in);
            assert_int_not_equal(rc, 0);
            if (rc == FOTA_ECRC || rc == FOTA_ECHECKSUM)
                assert_true(in.crc_state == FOTA_FWIMG_CRC_INVALID || !in.checksum_valid);
            /* inside segment data both the CRC and the checksum see it */
            if (i >= in.segs[0].offset && i < in.segs[0].offset + in.segs[0].len) {
                assert_int_equal(rc, FOTA_ECRC);
                assert_false(in.checksum_valid);
            }
            img[i] ^= masks[k];
        }
    }
    assert_int_equal(fota_fwimg_parse(img, len, &in), 0);
    free(img);

    /* a realistic-size image: every byte, one mask, without SHA for speed */
    fota_fwimg_build_opts_init(&o);
    img = build(&o, &len);
    for (size_t i = 0; i < len; i++) {
        img[i] ^= 0x5A;
        assert_int_not_equal(fota_fwimg_parse_flags(img, len, FOTA_FWIMG_F_NO_SHA256, &in), 0);
        img[i] ^= 0x5A;
    }
    free(img);
}

/* ------------------------------------------------------------ misc */

static void test_sniff_and_head(void **state)
{
    static const uint8_t zip[] = { 'P', 'K', 3, 4, 20, 0 };
    static const uint8_t gz[] = { 0x1F, 0x8B, 8 };
    static const uint8_t elf[] = { 0x7F, 'E', 'L', 'F', 1 };
    static const uint8_t bom_html[] = "\xEF\xBB\xBF\r\n  <html>";
    static const uint8_t e903[] = { 0xE9, 0x03, 0, 1 };
    static const uint8_t e902[] = { 0xE9, 0x02, 0, 1 };
    (void)state;
    assert_int_equal(fota_fwimg_sniff(NULL, 0), FOTA_FWIMG_KIND_EMPTY);
    assert_int_equal(fota_fwimg_sniff(zip, sizeof zip), FOTA_FWIMG_KIND_ZIP);
    assert_int_equal(fota_fwimg_sniff(gz, sizeof gz), FOTA_FWIMG_KIND_GZIP);
    assert_int_equal(fota_fwimg_sniff(elf, sizeof elf), FOTA_FWIMG_KIND_ELF);
    assert_int_equal(fota_fwimg_sniff(bom_html, sizeof bom_html - 1), FOTA_FWIMG_KIND_HTML);
    assert_int_equal(fota_fwimg_sniff((const uint8_t *)"hello", 5), FOTA_FWIMG_KIND_OTHER);
    assert_int_equal(fota_fwimg_sniff(e903, 4), FOTA_FWIMG_KIND_IMAGE);
    assert_int_equal(fota_fwimg_check_head(e903, 1, 1), FOTA_EAGAIN);
    assert_int_equal(fota_fwimg_check_head(e903, 3, 1), FOTA_EAGAIN);
    assert_int_equal(fota_fwimg_check_head(e903, 4, 1), 0);
    assert_int_equal(fota_fwimg_check_head(e903, 4, 2), FOTA_ESLOT);
    assert_int_equal(fota_fwimg_check_head(e903, 2, 0), 0);
    assert_int_equal(fota_fwimg_check_head(e902, 4, 1), FOTA_EMAGIC);   /* device wants E9 03 */
    assert_int_equal(fota_fwimg_check_head(zip, 1, 1), FOTA_EMAGIC);
    assert_string_equal(fota_fwimg_layout_name(FOTA_FWIMG_LAYOUT_OLD), "old");
    assert_string_equal(fota_fwimg_variant_name(FOTA_FWIMG_VARIANT_NONOS2), "nonos2");
    assert_string_equal(fota_fwimg_slot_name(2), "user2");
    assert_string_equal(fota_fwimg_crc_state_name(FOTA_FWIMG_CRC_INVALID), "invalid");
    assert_string_equal(fota_fwimg_flash_freq_name(15), "80MHz");
    assert_string_equal(fota_fwimg_flash_freq_name(9), "unknown");
    assert_string_equal(fota_fwimg_flash_mode_name(-1), "unknown");
    assert_string_equal(fota_fwimg_kind_name(FOTA_FWIMG_KIND_ZIP), "a zip file");
}

static void test_flash_maps(void **state)
{
    static const int known[] = { 0, 2, 3, 4, 5, 6, 8, 9 };
    (void)state;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        const struct fota_flash_map *m = fota_flash_map_get(known[i]);
        assert_non_null(m);
        assert_int_equal(m->map, known[i]);
        assert_int_equal(m->user1_addr, 0x1000);
        assert_int_equal(m->nslots, 2);
        assert_int_equal(m->sys_param_addr, m->flash_size - 0x3000);
        assert_int_equal(m->rf_cal_addr, m->flash_size - 0x5000);
        assert_int_equal(m->phy_init_addr, m->flash_size - 0x4000);
        /* a full-budget image in either slot overlaps nothing */
        assert_true(m->user1_addr + m->slot_budget <= m->user2_addr);
        if (m->priv_param_addr)
            assert_true(m->user1_addr + m->slot_budget <= m->priv_param_addr);
        assert_true(m->user2_addr + m->slot_budget <= m->rf_cal_addr);
        assert_true(m->user2_addr + m->slot_budget <= 2 * m->slot_size);  /* inside its half */
        assert_int_equal(m->slot_budget % 4096, 0);
    }
    assert_int_equal(fota_flash_map_get(0)->user2_addr, 0x41000);
    assert_int_equal(fota_flash_map_get(0)->slot_budget, 58 * 4096);
    assert_int_equal(fota_flash_map_get(2)->user2_addr, 0x81000);
    assert_int_equal(fota_flash_map_get(2)->slot_budget, 122 * 4096);
    assert_int_equal(fota_flash_map_get(2)->sdk3_ota_size, 0x6A000);
    assert_int_equal(fota_flash_map_get(5)->user2_addr, 0x101000);
    assert_int_equal(fota_flash_map_get(9)->slot_budget, 250 * 4096);
    assert_int_equal(fota_flash_map_get(9)->sys_param_addr, 0xFFD000);
    assert_null(fota_flash_map_get(1));
    assert_null(fota_flash_map_get(7));
    assert_null(fota_flash_map_get(-1));
    assert_null(fota_flash_map_get(10));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builder_roundtrip),
        cmocka_unit_test(test_builder_options),
        cmocka_unit_test(test_builder_fit),
        cmocka_unit_test(test_v1_layout),
        cmocka_unit_test(test_old_layout),
        cmocka_unit_test(test_v2_legacy_variant),
        cmocka_unit_test(test_v2_without_irom),
        cmocka_unit_test(test_stream_equals_oneshot),
        cmocka_unit_test(test_stream_early_errors),
        cmocka_unit_test(test_stream_structure_errors),
        cmocka_unit_test(test_every_byte_flip),
        cmocka_unit_test(test_sniff_and_head),
        cmocka_unit_test(test_flash_maps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
