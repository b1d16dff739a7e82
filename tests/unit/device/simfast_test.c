/* simfast_test.c - fota-sim's host fast paths give the device's answers:
 * zlib's CRC equals the portable table CRC, the CRC read-back equals read +
 * CRC, sectors pooled at write time stay copy-on-write, and the pool's
 * memos (CRC read-back, the loader's version read) never answer for bytes
 * that changed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "crc32.h"
#include "devtest.h"

#define SIZE (1024u * 1024u)

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    uint32_t x = seed ? seed : 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
}

/* The table CRC of flash [addr, addr + len) through plain reads. */
static uint32_t table_crc(struct fotasim_flash *f, uint32_t addr, uint32_t len)
{
    uint8_t *buf = malloc(len ? len : 1);
    uint32_t c;
    assert_non_null(buf);
    assert_int_equal(fotasim_flash_peek(f, addr, buf, len), 0);
    c = fota_crc32_update(0, buf, len);
    free(buf);
    return c;
}

/* Writes data at addr the way the OTA code does: erase, then 64-byte writes. */
static void ota_like_write(struct fotasim_flash *f, uint32_t addr, const uint8_t *data, uint32_t len)
{
    uint32_t off;
    for (off = 0; off < len; off += 4096)
        assert_int_equal(fotasim_flash_erase(f, (addr + off) / 4096), 0);
    for (off = 0; off < len; off += 64)
        assert_int_equal(fotasim_flash_write(f, addr + off, data + off, len - off < 64 ? len - off : 64), 0);
}

static void test_crc32_equal(void **state)
{
    static const size_t lens[] = {0, 1, 3, 4, 7, 8, 31, 47, 63, 64, 65, 79, 80, 127, 128, 129, 191,
                                  1456, 1460, 4095, 4096, 9001};
    uint8_t buf[10000];
    (void)state;
    fill(buf, sizeof(buf), 7);
    assert_int_equal(fotasim_crc32(0, "123456789", 9), 0xCBF43926u);
    for (size_t off = 0; off < 9; off++)
        for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
            assert_int_equal(fotasim_crc32(0, buf + off, lens[i]), fota_crc32_update(0, buf + off, lens[i]));
            assert_int_equal(fotasim_crc32(0xDEADBEEFu, buf + off, lens[i]),
                             fota_crc32_update(0xDEADBEEFu, buf + off, lens[i]));
        }
    /* continued in pieces: the same as one call */
    {
        uint32_t c = 0;
        for (size_t off = 0; off < sizeof(buf); off += 333)
            c = fotasim_crc32(c, buf + off, sizeof(buf) - off < 333 ? sizeof(buf) - off : 333);
        assert_int_equal(c, fota_crc32_update(0, buf, sizeof(buf)));
    }
}

static void test_crc_read(void **state)
{
    struct fotasim_flash f;
    uint8_t *data = malloc(3 * 4096 + 100);
    uint32_t c;
    (void)state;
    assert_non_null(data);
    fill(data, 3 * 4096 + 100, 3);
    assert_int_equal(fotasim_flash_init(&f, SIZE, 1), 0);
    assert_int_equal(fotasim_flash_program(&f, 0x81000, data, 3 * 4096 + 100), 0);
    /* aligned, unaligned, across erased sectors, a tail */
    for (uint32_t a = 0x80ffc; a <= 0x81008; a += 4)
        for (uint32_t n = 0; n <= 5 * 4096; n += 4096 - 12) {
            c = 0;
            assert_int_equal(fotasim_flash_crc_read(&f, a, n, &c), 0);
            assert_int_equal(c, table_crc(&f, a, n));
        }
    c = 0;
    assert_int_equal(fotasim_flash_crc_read(&f, SIZE - 4, 8, &c), FOTA_ERANGE);
    f.powered = 0;
    assert_int_equal(fotasim_flash_crc_read(&f, 0x81000, 8, &c), FOTA_EIO);
    fotasim_flash_cleanup(&f);
    free(data);
}

/* Two devices write the same bytes: one pooled copy, written sectors handed
 * over at write time; the CRC read-back of the second is the memo; a write
 * to one device's pooled sector copies it and changes neither the other
 * device nor the memoised answer for it. */
static void test_pool_and_crc_memo(void **state)
{
    struct fotasim_flash a, b;
    struct fotasim_pool pool;
    const uint32_t len = 5 * 4096 + 1000, base = 0x81000;
    uint8_t *img = malloc(len), w[4] = {0, 0, 0, 0};
    uint32_t ca = 0, cb = 0, cb2 = 0;
    (void)state;
    assert_non_null(img);
    fill(img, len, 11);
    fotasim_pool_init(&pool);
    assert_int_equal(fotasim_flash_init(&a, SIZE, 1), 0);
    assert_int_equal(fotasim_flash_init(&b, SIZE, 2), 0);
    a.pool = b.pool = &pool;
    ota_like_write(&a, base, img, len);
    ota_like_write(&b, base, img, len);
    /* the 5 whole sectors went to the pool when written; the tail is owned */
    assert_int_equal(pool.used, 5);
    assert_int_equal(pool.shared, 5);
    for (uint32_t s = 0; s < 5; s++) {
        assert_int_equal(a.owned[0x81 + s], 0);
        assert_ptr_equal(a.sec[0x81 + s], b.sec[0x81 + s]);
    }
    assert_int_equal(b.owned[0x86], 1);
    assert_int_equal(fotasim_flash_crc_read(&a, base, len, &ca), 0);
    assert_int_equal(pool.crc_memo_hits, 0);
    assert_int_equal(fotasim_flash_crc_read(&b, base, len, &cb), 0);
    assert_int_equal(pool.crc_memo_hits, 1);
    assert_int_equal(ca, fota_crc32_update(0, img, len));
    assert_int_equal(cb, ca);
    /* a NOR write into b's pooled sector: b gets its own copy, a keeps the image */
    assert_int_equal(fotasim_flash_write(&b, base + 2 * 4096 + 8, w, 4), 0);
    assert_int_equal(b.owned[0x83], 1);
    assert_int_equal(devtest_at(&a, base + 2 * 4096 + 8), img[2 * 4096 + 8]);
    assert_int_equal(devtest_at(&b, base + 2 * 4096 + 8), 0);
    assert_int_equal(fotasim_flash_crc_read(&b, base, len, &cb2), 0);
    assert_int_equal(cb2, table_crc(&b, base, len));
    assert_true(cb2 != ca);
    /* after an erase and a different image, b's answer is b's bytes */
    img[100] ^= 0x55;
    ota_like_write(&b, base, img, len);
    cb2 = 0;
    assert_int_equal(fotasim_flash_crc_read(&b, base, len, &cb2), 0);
    assert_int_equal(cb2, fota_crc32_update(0, img, len));
    ca = 0;
    assert_int_equal(fotasim_flash_crc_read(&a, base, len, &ca), 0);
    assert_int_equal(ca, cb);
    fotasim_flash_cleanup(&a);
    fotasim_flash_cleanup(&b);
    fotasim_pool_cleanup(&pool);
    free(img);
}

/* The loader's version read is memoised for pooled images, and a device
 * holding another image (or a corrupt one) is never given the memo. */
static void test_version_memo(void **state)
{
    struct fotasim_flash f[3];
    struct fotasim_pool pool;
    struct fotadev_layout l;
    struct fotasim_boot b;
    size_t len1, len2, len3;
    uint8_t *v1 = devtest_image(1, 2, "v1.0.0t1(a)", 4096, &len1);
    uint8_t *v2 = devtest_image(2, 2, "v2.0.0t1(a)", 20000, &len2);
    uint8_t *v3 = devtest_image(2, 2, "v3.0.0t1(a)", 20000, &len3);
    (void)state;
    assert_non_null(v1);
    assert_non_null(v2);
    assert_non_null(v3);
    assert_int_equal(fotadev_layout_get(2, &l), 0);
    fotasim_pool_init(&pool);
    for (int i = 0; i < 3; i++) {
        const uint8_t *img = i == 2 ? v3 : v2;
        assert_int_equal(fotasim_flash_init(&f[i], SIZE, (uint32_t)i + 1), 0);
        f[i].pool = &pool;
        assert_int_equal(fotasim_flash_program(&f[i], l.slot_addr[0], v1, (uint32_t)len1), 0);
        ota_like_write(&f[i], l.slot_addr[1], img, (uint32_t)(i == 2 ? len3 : len2));
        assert_int_equal(fotasim_boot_run(&f[i], &l, 7, &b), 0);
        assert_string_equal(b.version, "v1.0.0t1(a)");
        /* the image's last (partial) sector is pooled as the upgrade ends */
        assert_int_equal(fotasim_pool_adopt(&pool, &f[i], l.slot_addr[1] / 4096,
                                              (uint32_t)(len2 + 4095) / 4096), 0);
        assert_int_equal(fotasim_boot_flip(&f[i], &l), 0);
    }
    assert_int_equal(fotasim_boot_run(&f[0], &l, 7, &b), 0);
    assert_string_equal(b.version, "v2.0.0t1(a)");
    assert_int_equal(pool.memo_hits, 0);
    assert_int_equal(fotasim_boot_run(&f[1], &l, 7, &b), 0);
    assert_string_equal(b.version, "v2.0.0t1(a)");
    assert_int_equal(pool.memo_hits, 1);
    assert_int_equal(fotasim_boot_run(&f[2], &l, 7, &b), 0);
    assert_string_equal(b.version, "v3.0.0t1(a)");           /* other bytes, other answer */
    assert_int_equal(pool.memo_hits, 1);
    /* corrupt device 1's image (its own copy now): the loader falls back */
    {
        uint32_t irom = (uint32_t)v2[12] | (uint32_t)v2[13] << 8 | (uint32_t)v2[14] << 16 |
                        (uint32_t)v2[15] << 24;   /* the E9 part after it is checksummed */
        devtest_xor(&f[1], l.slot_addr[1] + 16 + irom + 8 + 8 + 5, 0x40);
    }
    assert_int_equal(fotasim_boot_run(&f[1], &l, 7, &b), 0);
    assert_true(b.fallback);
    assert_string_equal(b.version, "v1.0.0t1(a)");
    for (int i = 0; i < 3; i++)
        fotasim_flash_cleanup(&f[i]);
    fotasim_pool_cleanup(&pool);
    free(v1);
    free(v2);
    free(v3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32_equal),
        cmocka_unit_test(test_crc_read),
        cmocka_unit_test(test_pool_and_crc_memo),
        cmocka_unit_test(test_version_memo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
