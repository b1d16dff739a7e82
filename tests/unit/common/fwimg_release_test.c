/* fwimg_release_test.c - fota_fwimg_release_check: a good release passes, and
 * each refusal comes with its error code and a sentence naming the file. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "fota_err.h"
#include "fwimg.h"

struct img {
    uint8_t *b;
    size_t len;
};

static struct img mk(int slot, int map, size_t total)
{
    struct fota_fwimg_build_opts o;
    struct img r;
    fota_fwimg_build_opts_init(&o);
    o.slot = slot;
    o.size_map = map;
    o.version = "v1.1";
    o.seed = (uint32_t)slot;
    if (total)
        assert_int_equal(fota_fwimg_build_fit(&o, total), 0);
    r.len = fota_fwimg_build_size(&o);
    r.b = malloc(r.len);
    assert_non_null(r.b);
    assert_int_equal(fota_fwimg_build(&o, r.b, r.len, &r.len), 0);
    return r;
}

/* An RTOS 1.x gen_appbin image (EA 04 <mode> <map<<4|freq>, no slot number). */
static struct img mk_rtos1(int map, int mode, int freq, uint32_t seed)
{
    struct fota_fwimg_build_opts o;
    struct fota_fwimg_info in;
    struct img r;
    fota_fwimg_build_opts_init(&o);
    o.size_map = map;
    o.flash_mode = mode;
    o.flash_freq = freq;
    o.seed = seed;
    o.rtos1_header = 1;
    r.len = fota_fwimg_build_size(&o);
    r.b = malloc(r.len);
    assert_non_null(r.b);
    assert_int_equal(fota_fwimg_build(&o, r.b, r.len, &r.len), 0);
    assert_int_equal(fota_fwimg_parse(r.b, r.len, &in), 0);
    assert_int_equal(in.variant, FOTA_FWIMG_VARIANT_LEGACY);
    assert_int_equal(in.slot, FOTA_FWIMG_SLOT_UNKNOWN);
    assert_int_equal(in.byte2, mode);
    assert_int_equal(in.byte3, (map << 4) | freq);
    return r;
}

static void fix_crc(struct img *m)
{
    uint32_t c = fota_esp_crc_stored(fota_crc32_update(0, m->b, m->len - 4));
    for (int i = 0; i < 4; i++)
        m->b[m->len - 4 + (size_t)i] = (uint8_t)(c >> (8 * i));
}

/* Runs the check on user1/user2 (+ extra files) and returns the code;
 * the reason is left in why. */
static char why[512];

static int check2(int map, const char *n1, const uint8_t *d1, size_t l1,
                  const char *n2, const uint8_t *d2, size_t l2)
{
    struct fota_release_file f[3] = {
        { n1, d1, l1, NULL }, { n2, d2, l2, NULL }, { "README.txt", (const uint8_t *)"hi", 2, NULL },
    };
    memset(why, 'x', sizeof why);
    return fota_fwimg_release_check(fota_flash_map_get(map), f, 3, why, sizeof why);
}

/* check2 with release flags and info reports (ia/ib may be NULL). */
static int check2f(int map, uint32_t flags, const char *n1, const struct img *a, const char *n2,
                   const struct img *b)
{
    struct fota_release_file f[2] = { { n1, a->b, a->len, NULL }, { n2, b->b, b->len, NULL } };
    memset(why, 'x', sizeof why);
    return fota_fwimg_release_check_flags(fota_flash_map_get(map), f, 2, flags, why, sizeof why);
}

static void expect(int rc, int want, const char *needle)
{
    assert_int_equal(rc, want);
    if (!strstr(why, needle))
        fail_msg("reason \"%s\" lacks \"%s\"", why, needle);
}

static void test_good_release(void **state)
{
    struct img a = mk(1, 2, 0), b = mk(2, 2, 0);
    struct fota_fwimg_info ia, ib;
    struct fota_release_file f[2];
    (void)state;
    assert_int_equal(check2(2, "user1.bin", a.b, a.len, "user2.bin", b.b, b.len), 0);
    assert_string_equal(why, "");
    /* order of files does not matter; map unknown skips map rules */
    assert_int_equal(check2(2, "user2.bin", b.b, b.len, "user1.bin", a.b, a.len), 0);
    f[0] = (struct fota_release_file){ "user1.bin", a.b, a.len, NULL };
    f[1] = (struct fota_release_file){ "user2.bin", b.b, b.len, NULL };
    assert_int_equal(fota_fwimg_release_check(NULL, f, 2, NULL, 0), 0);
    /* pre-parsed infos, no data */
    assert_int_equal(fota_fwimg_parse(a.b, a.len, &ia), 0);
    assert_int_equal(fota_fwimg_parse(b.b, b.len, &ib), 0);
    f[0] = (struct fota_release_file){ "user1.bin", NULL, 0, &ia };
    f[1] = (struct fota_release_file){ "user2.bin", NULL, 0, &ib };
    assert_int_equal(fota_fwimg_release_check(fota_flash_map_get(2), f, 2, why, sizeof why), 0);
    /* maps 2, 3 and 4 share the slot layout */
    assert_int_equal(check2(3, "user1.bin", a.b, a.len, "user2.bin", b.b, b.len), 0);
    free(a.b);
    free(b.b);
}

static void test_file_set(void **state)
{
    struct img a = mk(1, 2, 0), b = mk(2, 2, 0);
    struct fota_release_file f[11];
    char small[12];
    (void)state;
    for (int i = 0; i < 11; i++)
        f[i] = (struct fota_release_file){ "x", a.b, a.len, NULL };
    assert_int_equal(fota_fwimg_release_check(NULL, f, 11, why, sizeof why), FOTA_EINVAL);
    expect(FOTA_EINVAL, FOTA_EINVAL, "at most 10 files");
    expect(check2(2, "user1.bin", a.b, a.len, "user1.bin", b.b, b.len), FOTA_EINVAL,
           "user1.bin appears twice");
    expect(check2(2, "user1.bin", a.b, a.len, "", b.b, b.len), FOTA_EINVAL, "file 2");
    expect(check2(2, "user1.bin", a.b, a.len, "user2.BIN", b.b, b.len), FOTA_ENOENT,
           "user2.bin is missing: a release needs both user1.bin and user2.bin for flash map 2");
    expect(check2(5, "app.bin", a.b, a.len, "user2.bin", b.b, b.len), FOTA_ENOENT,
           "user1.bin is missing");
    /* the reason is truncated, still terminated */
    f[0] = (struct fota_release_file){ "user1.bin", a.b, a.len, NULL };
    memset(small, 'x', sizeof small);
    assert_int_equal(fota_fwimg_release_check(NULL, f, 1, small, sizeof small), FOTA_ENOENT);
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_memory_equal(small, "user2.bin i", 11);
    free(a.b);
    free(b.b);
}

static void test_not_images(void **state)
{
    static const char html[] = "<!DOCTYPE html>\n<html><body>502 Bad Gateway</body></html>";
    static const uint8_t zip[] = { 'P', 'K', 3, 4, 20, 0, 0, 0, 8, 0 };
    static const uint8_t elf[] = { 0x7F, 'E', 'L', 'F', 1, 1, 1, 0 };
    static const uint8_t e902[] = { 0xE9, 0x02, 0x00, 0x20, 0, 0, 0x10, 0x40 };
    struct img b = mk(2, 2, 0);
    (void)state;
    expect(check2(2, "user1.bin", (const uint8_t *)html, sizeof html - 1, "user2.bin", b.b, b.len),
           FOTA_EINVAL, "user1.bin is an HTML page, not an ESP8266 image");
    expect(check2(2, "user1.bin", zip, sizeof zip, "user2.bin", b.b, b.len),
           FOTA_EINVAL, "user1.bin is a zip file, not an ESP8266 image: unpack it");
    expect(check2(2, "user1.bin", elf, sizeof elf, "user2.bin", b.b, b.len),
           FOTA_EINVAL, "user1.bin is an ELF file");
    expect(check2(2, "user1.bin", (const uint8_t *)"hello world", 11, "user2.bin", b.b, b.len),
           FOTA_EINVAL, "user1.bin is not an ESP8266 image (it starts with 68 65 6C 6C");
    expect(check2(2, "user1.bin", NULL, 0, "user2.bin", b.b, b.len),
           FOTA_EINVAL, "user1.bin is an empty file");
    expect(check2(2, "user1.bin", e902, sizeof e902, "user2.bin", b.b, b.len),
           FOTA_EINVAL, "not an OTA image (it starts with E9 02 00 20");
    free(b.b);
}

static void test_damaged(void **state)
{
    struct img a = mk(1, 2, 0), b = mk(2, 2, 0);
    (void)state;
    expect(check2(2, "user1.bin", a.b, a.len - 100, "user2.bin", b.b, b.len),
           FOTA_ETRUNC, "user1.bin is not a complete ESP8266 image: truncated");
    b.b[2000] ^= 1;
    expect(check2(2, "user1.bin", a.b, a.len, "user2.bin", b.b, b.len),
           FOTA_ECRC, "user2.bin has a bad CRC (stored 0x");
    fix_crc(&b);                                     /* CRC right, segment checksum wrong */
    b.b[b.len - 5] ^= 0x20;
    fix_crc(&b);
    expect(check2(2, "user1.bin", a.b, a.len, "user2.bin", b.b, b.len),
           FOTA_ECHECKSUM, "user2.bin has a bad segment checksum");
    free(a.b);
    free(b.b);
}

static void test_slots(void **state)
{
    struct img a = mk(1, 2, 0), b = mk(2, 2, 0);
    (void)state;
    /* swapped names */
    expect(check2(2, "user1.bin", b.b, b.len, "user2.bin", a.b, a.len),
           FOTA_ESLOT, "user1.bin is a user2 image (byte 3 = 2): user1.bin must be built");
    /* esptool --version 2 / RTOS 1.x header: byte 3 holds size map and frequency */
    a.b[2] = 0;
    a.b[3] = 0x20;
    fix_crc(&a);
    expect(check2(2, "user1.bin", a.b, a.len, "user2.bin", b.b, b.len),
           FOTA_ESLOT, "user1.bin has no slot number in byte 3 (0x20");
    free(a.b);
    free(b.b);
}

/* slot_check "name": RTOS 1.x images are the slot their name says, if bytes 2-3 are sound
 * flash settings; the default stays strict. */
static void test_slot_by_name(void **state)
{
    const uint32_t byname = FOTA_RELEASE_F_SLOT_BY_NAME;
    struct img r1 = mk_rtos1(2, 0, 0, 11), r2 = mk_rtos1(2, 0, 0, 12);
    struct img n1 = mk(1, 2, 0), n2 = mk(2, 2, 0), big = mk_rtos1(5, 2, 15, 13);
    struct fota_fwimg_info in;
    (void)state;

    /* default (and flags 0): refused, with the reason and the way out */
    expect(check2(2, "user1.bin", r1.b, r1.len, "user2.bin", r2.b, r2.len), FOTA_ESLOT,
           "user1.bin has no slot number in byte 3 (0x20, a v2/legacy image");
    expect(check2f(2, 0, "user1.bin", &r1, "user2.bin", &r2), FOTA_ESLOT,
           "create the product with slot_check \"name\"");
    /* by name: accepted, also with the map unknown; files may be given in any order */
    expect(check2f(2, byname, "user1.bin", &r1, "user2.bin", &r2), 0, "");
    assert_string_equal(why, "");
    assert_int_equal(check2f(-1, byname, "user2.bin", &r2, "user1.bin", &r1), 0);
    /* a NONOS >= 2.0 pair still passes, and mixing is allowed (same map) */
    assert_int_equal(check2f(2, byname, "user1.bin", &n1, "user2.bin", &n2), 0);
    assert_int_equal(check2f(2, byname, "user1.bin", &r1, "user2.bin", &n2), 0);
    /* a slot number naming the other slot is refused in name mode too */
    expect(check2f(2, byname, "user1.bin", &n2, "user2.bin", &r2), FOTA_ESLOT,
           "user1.bin is a user2 image (byte 3 = 2)");
    /* the map rules apply to the size map of byte 3 / the E9 header */
    expect(check2f(2, byname, "user1.bin", &big, "user2.bin", &r2), FOTA_ECONFIG,
           "user1.bin is built for flash size map 5");
    /* a flash setting in byte 3 that is no size map (7 has no OTA layout, 3 no frequency) */
    r1.b[3] = 0x70;
    fix_crc(&r1);
    expect(check2f(2, byname, "user1.bin", &r1, "user2.bin", &r2), FOTA_ESLOT,
           "user1.bin has no slot number in byte 3 (0x70, a v2/legacy image) and bytes 2-3 (00 70)");
    r1.b[3] = 0x23;
    fix_crc(&r1);
    expect(check2f(2, byname, "user1.bin", &r1, "user2.bin", &r2), FOTA_ESLOT,
           "are not the flash mode, size map and frequency of its E9 header (0x00 0x20)");
    /* byte 3 disagreeing with the E9 header (map 3 vs 2), flash mode beyond DOUT */
    r1.b[3] = 0x30;
    fix_crc(&r1);
    expect(check2f(2, byname, "user1.bin", &r1, "user2.bin", &r2), FOTA_ESLOT,
           "user1.bin has no slot number");
    r1.b[3] = 0x20;
    r1.b[2] = 4;
    fix_crc(&r1);
    expect(check2f(2, byname, "user1.bin", &r1, "user2.bin", &r2), FOTA_ESLOT, "(04 20)");
    /* the other rules still run first: a bad CRC is a bad CRC */
    r1.b[2] = 0;
    fix_crc(&r1);
    r1.b[r1.len - 1] ^= 1;
    expect(check2f(2, byname, "user1.bin", &r1, "user2.bin", &r2), FOTA_ECRC,
           "user1.bin has a bad CRC");
    /* parse alone never decides a slot from a name */
    assert_int_equal(fota_fwimg_parse(r2.b, r2.len, &in), 0);
    assert_int_equal(in.slot_src, FOTA_FWIMG_SLOTSRC_NONE);
    free(r1.b);
    free(r2.b);
    free(n1.b);
    free(n2.b);
    free(big.b);
}

static void test_budget_and_maps(void **state)
{
    const struct fota_flash_map *m0 = fota_flash_map_get(0);
    struct img a, b, big;
    (void)state;
    /* exactly the budget passes, 16 bytes more does not */
    a = mk(1, 0, m0->slot_budget);
    assert_int_equal(a.len, m0->slot_budget - 12);             /* largest ≡ 4 mod 16 */
    big = mk(2, 0, m0->slot_budget + 4);
    assert_int_equal(big.len, m0->slot_budget + 4);
    expect(check2(0, "user1.bin", a.b, a.len, "user2.bin", big.b, big.len), FOTA_ETOOBIG,
           "user2.bin is 237572 bytes, more than the 237568-byte slot budget of flash map 0");
    b = mk(2, 0, 0);
    assert_int_equal(check2(0, "user1.bin", a.b, a.len, "user2.bin", b.b, b.len), 0);
    free(a.b);
    free(b.b);
    free(big.b);

    /* built for 1024+1024, product is 512+512 */
    a = mk(1, 5, 0);
    b = mk(2, 5, 0);
    expect(check2(2, "user1.bin", a.b, a.len, "user2.bin", b.b, b.len), FOTA_ECONFIG,
           "user1.bin is built for flash size map 5 (2MB 1024+1024, user2 at 0x101000) but the "
           "product uses flash map 2 (1MB 512+512, user2 at 0x81000)");
    assert_int_equal(check2(5, "user1.bin", a.b, a.len, "user2.bin", b.b, b.len), 0);
    free(b.b);
    /* the two images disagree */
    b = mk(2, 6, 0);
    expect(check2(5, "user1.bin", a.b, a.len, "user2.bin", b.b, b.len), FOTA_ECONFIG,
           "user1.bin is built for flash size map 5 but user2.bin for map 6");
    expect(check2(-1, "user1.bin", a.b, a.len, "user2.bin", b.b, b.len), FOTA_ECONFIG,
           "map 5 but user2.bin for map 6");
    free(a.b);
    free(b.b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_release),
        cmocka_unit_test(test_file_set),
        cmocka_unit_test(test_not_images),
        cmocka_unit_test(test_damaged),
        cmocka_unit_test(test_slots),
        cmocka_unit_test(test_slot_by_name),
        cmocka_unit_test(test_budget_and_maps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
