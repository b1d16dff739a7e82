/* flash_test.c - the virtual NOR flash, the protected 3-sector parameter
 * save/load (§7.3), the boot byte logic (§7.4: boot versions 2/31 and
 * >= 1.3) and the simulated loader's checksum test and fallback. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "devtest.h"

#define SIZE (1024u * 1024u)

static void test_nor_semantics(void **state)
{
    struct fotasim_flash f;
    uint8_t b[8] = {0xF0, 0x0F, 0xAA, 0x55, 1, 2, 3, 4}, r[8];
    (void)state;
    assert_int_equal(fotasim_flash_init(&f, SIZE, 1), 0);
    assert_int_equal(fotasim_flash_write(&f, 0x1000, b, 4), 0);
    b[0] = 0x3C; /* 0xF0 & 0x3C = 0x30: writing cannot set bits */
    assert_int_equal(fotasim_flash_write(&f, 0x1000, b, 4), 0);
    assert_int_equal(fotasim_flash_read(&f, 0x1000, r, 4), 0);
    assert_int_equal(r[0], 0x30);
    assert_int_equal(r[1], 0x0F);
    /* alignment: address and length */
    assert_int_equal(fotasim_flash_write(&f, 0x1002, b, 4), FOTA_EINVAL);
    assert_int_equal(fotasim_flash_write(&f, 0x1004, b, 3), FOTA_EINVAL);
    assert_int_equal(fotasim_flash_write(&f, SIZE - 4, b, 8), FOTA_ERANGE);
    assert_int_equal(fotasim_flash_erase(&f, 1), 0);
    assert_int_equal(fotasim_flash_read(&f, 0x1000, r, 4), 0);
    assert_int_equal(r[0], 0xFF);
    assert_int_equal(fotasim_flash_erase(&f, SIZE / 4096), FOTA_ERANGE);
    /* a cut: the op is torn, then everything fails until power on */
    f.cut_at = f.ops + 1;
    assert_int_equal(fotasim_flash_write(&f, 0x2000, b, 8), 0);
    assert_int_equal(fotasim_flash_erase(&f, 2), FOTA_EIO);
    assert_int_equal(fotasim_flash_read(&f, 0x2000, r, 4), FOTA_EIO);
    fotasim_flash_power_on(&f);
    assert_int_equal(fotasim_flash_read(&f, 0x2000, r, 4), 0);
    fotasim_flash_cleanup(&f);
}

static void test_layouts(void **state)
{
    struct fotadev_layout l;
    (void)state;
    assert_int_equal(fotadev_layout_get(2, &l), 0);
    assert_int_equal(l.slot_addr[1], 0x81000);
    assert_int_equal(l.sysparam_sec, 0xFD);
    assert_int_equal(fotadev_layout_get(0, &l), 0);
    assert_int_equal(l.slot_addr[1], 0x41000);
    assert_int_equal(l.sysparam_sec, 0x7D);
    assert_true(l.slot_addr[1] + l.slot_size <= 0x7B000);
    assert_int_equal(fotadev_layout_get(5, &l), 0);
    assert_int_equal(l.slot_addr[1], 0x101000);
    assert_int_equal(fotadev_layout_get(6, &l), 0);
    assert_int_equal(l.sysparam_sec, 0x3FD);
    assert_int_equal(fotadev_layout_get(7, &l), FOTA_EINVAL);
}

static void test_sysparam(void **state)
{
    struct fotasim_flash f;
    struct fotadev_flash_ops ops;
    uint8_t a[16], b[16], r[16];
    uint16_t sec = 0xFD;
    long ops_before;
    (void)state;
    assert_int_equal(fotasim_flash_init(&f, SIZE, 1), 0);
    ops = fotasim_flash_ops(&f);
    memset(a, 0x11, sizeof(a));
    memset(b, 0x22, sizeof(b));
    /* erased flag: byte0 0xFF -> copy 1 is active */
    assert_int_equal(fotadev_sysparam_load(&ops, sec, 0, r, 4), 0);
    assert_int_equal(r[0], 0xFF);
    assert_int_equal(fotadev_sysparam_save(&ops, sec, a, sizeof(a)), 0);
    assert_int_equal(devtest_at(&f, (sec + 2u) * 4096), 0);       /* new copy 0 */
    assert_int_equal(fotasim_flash_peek(&f, sec * 4096, r, sizeof(r)), 0);
    assert_memory_equal(r, a, sizeof(a));
    assert_int_equal(fotadev_sysparam_load(&ops, sec, 0, r, sizeof(r)), 0);
    assert_memory_equal(r, a, sizeof(a));
    assert_int_equal(fotadev_sysparam_save(&ops, sec, b, sizeof(b)), 0);
    assert_int_equal(devtest_at(&f, (sec + 2u) * 4096), 1);
    assert_int_equal(fotadev_sysparam_load(&ops, sec, 4, r, 4), 0);
    assert_memory_equal(r, b, 4);
    /* flag record: magics and save count */
    assert_int_equal(devtest_at(&f, (sec + 2u) * 4096 + 4), 0xAA);
    assert_int_equal(devtest_at(&f, (sec + 2u) * 4096 + 8), 2);
    assert_int_equal(devtest_at(&f, (sec + 2u) * 4096 + 28), 0x55);
    /* copy 0 already holds a: only the flag is rewritten */
    ops_before = f.ops;
    assert_int_equal(fotadev_sysparam_save(&ops, sec, a, sizeof(a)), 0);
    assert_int_equal(f.ops - ops_before, 2);
    assert_int_equal(fotadev_sysparam_load(&ops, sec, 0, r, sizeof(r)), 0);
    assert_memory_equal(r, a, sizeof(a));
    assert_int_equal(fotadev_sysparam_save(&ops, sec, a, 6), FOTA_EINVAL);
    fotasim_flash_cleanup(&f);
}

/* Power lost at each flash operation of a save: old or new, never junk. */
static void test_sysparam_power_cut(void **state)
{
    uint8_t a[64], b[64], r[64];
    uint16_t sec = 0xFD;
    (void)state;
    memset(a, 0x5A, sizeof(a));
    memset(b, 0xC3, sizeof(b));
    for (int first = 0; first < 2; first++) {
        for (long cut = 0; cut < 6; cut++) {
            struct fotasim_flash f;
            struct fotadev_flash_ops ops;
            assert_int_equal(fotasim_flash_init(&f, SIZE, (uint32_t)cut + 3), 0);
            ops = fotasim_flash_ops(&f);
            /* first == 1: active copy is 1 before the cut save */
            assert_int_equal(fotadev_sysparam_save(&ops, sec, a, sizeof(a)), 0);
            if (first)
                assert_int_equal(fotadev_sysparam_save(&ops, sec, a, sizeof(a)), 0);
            f.cut_at = f.ops + cut;
            (void)fotadev_sysparam_save(&ops, sec, b, sizeof(b));
            fotasim_flash_power_on(&f);
            assert_int_equal(fotadev_sysparam_load(&ops, sec, 0, r, sizeof(r)), 0);
            assert_true(memcmp(r, a, sizeof(r)) == 0 || memcmp(r, b, sizeof(r)) == 0);
            fotasim_flash_cleanup(&f);
        }
    }
}

static void test_userbin_check(void **state)
{
    uint8_t bp[2];
    (void)state;
    /* erased: ver 31, nibble 0xF -> user1 */
    bp[0] = 0xFF; bp[1] = 0xFF;
    assert_int_equal(fotadev_boot_running_slot(bp), FOTADEV_SLOT_USER1);
    /* boot v1.2 (ver 2): low nibble 1 -> user2 */
    bp[0] = 0x01; bp[1] = 0x02;
    assert_int_equal(fotadev_boot_running_slot(bp), FOTADEV_SLOT_USER2);
    assert_int_equal(fotadev_boot_flip(bp), FOTADEV_SLOT_USER1);
    assert_int_equal(bp[0], 0x00);
    assert_int_equal(fotadev_boot_running_slot(bp), FOTADEV_SLOT_USER1);
    assert_int_equal(fotadev_boot_flip(bp), FOTADEV_SLOT_USER2);
    assert_int_equal(bp[0], 0x01);
    /* boot >= 1.3 (ver 7): usr_bin/boot_statue */
    bp[1] = 0x87;
    bp[0] = 0x04 | 0;  assert_int_equal(fotadev_boot_running_slot(bp), FOTADEV_SLOT_USER1);
    bp[0] = 0x04 | 1;  assert_int_equal(fotadev_boot_running_slot(bp), FOTADEV_SLOT_USER2);
    bp[0] = 0x00 | 1;  assert_int_equal(fotadev_boot_running_slot(bp), FOTADEV_SLOT_USER1);
    bp[0] = 0x00 | 0;  assert_int_equal(fotadev_boot_running_slot(bp), FOTADEV_SLOT_USER2);
    /* flip from normal running user1: usr_bin 1, status 1 */
    bp[0] = 0x04; bp[1] = 0x07;
    assert_int_equal(fotadev_boot_flip(bp), FOTADEV_SLOT_USER2);
    assert_int_equal(bp[0], 0x05);
    assert_int_equal(bp[1], 0x87);          /* normal boot mode set */
    /* flip while running the fallback (usr_bin 1 failed, user1 runs):
     * usr_bin stays 1, status 1 -> boots user2, the not-running slot */
    bp[0] = 0x01; bp[1] = 0x87;
    assert_int_equal(fotadev_boot_running_slot(bp), FOTADEV_SLOT_USER1);
    assert_int_equal(fotadev_boot_flip(bp), FOTADEV_SLOT_USER2);
    assert_int_equal(bp[0], 0x05);
    /* in every case the flip targets the slot that is not running */
    for (int b0 = 0; b0 < 256; b0++) {
        for (int ver = 0; ver < 32; ver++) {
            uint8_t x[2] = {(uint8_t)b0, (uint8_t)(0x80 | ver)};
            int run = fotadev_boot_running_slot(x);
            fotadev_boot_flip(x);
            if ((ver == 2 || ver == 31) || (b0 & 3) <= 1)
                assert_int_equal(fotadev_boot_wanted_slot(x), run ^ 1);
        }
    }
}

static void program_image(struct fotasim_flash *f, uint32_t addr, int slot, const char *ver)
{
    size_t len;
    uint8_t *img = devtest_image(slot, 2, ver, 4096, &len);
    assert_non_null(img);
    assert_int_equal(fotasim_flash_program(f, addr, img, (uint32_t)len), 0);
    free(img);
}

static void test_loader(void **state)
{
    struct fotasim_flash f;
    struct fotadev_layout l;
    struct fotasim_boot b;
    static const int loaders[] = {31, 2, 7};
    (void)state;
    assert_int_equal(fotadev_layout_get(2, &l), 0);
    for (size_t i = 0; i < 3; i++) {
        int lv = loaders[i];
        assert_int_equal(fotasim_flash_init(&f, SIZE, 1), 0);
        program_image(&f, l.slot_addr[0], 1, "v1.0.0t1(a)");
        program_image(&f, l.slot_addr[1], 2, "v2.0.0t1(a)");
        /* erased parameter area: user1 */
        assert_int_equal(fotasim_boot_run(&f, &l, lv, &b), 0);
        assert_true(b.ok);
        assert_int_equal(b.slot, FOTADEV_SLOT_USER1);
        assert_string_equal(b.version, "v1.0.0t1(a)");
        assert_int_equal(fotasim_boot_running_slot(&f, &l), FOTADEV_SLOT_USER1);
        /* system_upgrade_reboot flips to user2 */
        assert_int_equal(fotasim_boot_flip(&f, &l), 0);
        assert_int_equal(fotasim_boot_run(&f, &l, lv, &b), 0);
        assert_int_equal(b.slot, FOTADEV_SLOT_USER2);
        assert_string_equal(b.version, "v2.0.0t1(a)");
        assert_int_equal(fotasim_boot_running_slot(&f, &l), FOTADEV_SLOT_USER2);
        /* corrupt user2's checksummed data: the loader falls back */
        devtest_xor(&f, l.slot_addr[1] + 16 + 4096 + 8 + 8 + 5, 0x40);
        assert_true(fotasim_boot_image_check(&f, l.slot_addr[1], l.slot_size) < 0);
        assert_int_equal(fotasim_boot_run(&f, &l, lv, &b), 0);
        assert_true(b.ok);
        assert_true(b.fallback);
        assert_int_equal(b.slot, FOTADEV_SLOT_USER1);
        if (lv != 2 && lv != 31) {
            /* boot_statue = 0 recorded: userbin_check says user1 runs, and the
             * next flip targets user2 again */
            assert_int_equal(fotasim_boot_running_slot(&f, &l), FOTADEV_SLOT_USER1);
            assert_int_equal(devtest_at(&f, (l.sysparam_sec + (devtest_at(&f, (l.sysparam_sec + 2u) * 4096) ? 1u : 0u)) * 4096 + 1) & 0x1F, lv);
        }
        fotasim_flash_cleanup(&f);
    }
}

/* Identical sectors of two flashes end up as one pooled copy, still
 * copy-on-write: a write to one flash leaves the other alone. */
static void test_dedupe(void **state)
{
    struct fotasim_flash a, b;
    struct fotasim_pool pool;
    uint8_t data[3 * 4096], w[4] = {0, 0, 0, 0};
    size_t before;
    (void)state;
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)((i * 7) ^ (i >> 9));
    assert_int_equal(fotasim_flash_init(&a, SIZE, 1), 0);
    assert_int_equal(fotasim_flash_init(&b, SIZE, 2), 0);
    fotasim_pool_init(&pool);
    assert_int_equal(fotasim_flash_program(&a, 0x81000, data, sizeof(data)), 0);
    assert_int_equal(fotasim_flash_program(&b, 0x81000, data, sizeof(data)), 0);
    before = fotasim_flash_footprint(&a) + fotasim_flash_footprint(&b);
    assert_int_equal(fotasim_pool_adopt(&pool, &a, 0x81, 3), 0);
    assert_int_equal(fotasim_pool_adopt(&pool, &b, 0x81, 3), 0);
    assert_int_equal(pool.used, 3);
    assert_int_equal(pool.shared, 3);
    assert_int_equal(before - (fotasim_flash_footprint(&a) + fotasim_flash_footprint(&b)), 6 * 4096);
    assert_int_equal(fotasim_flash_write(&a, 0x81000, w, 4), 0);
    assert_int_equal(devtest_at(&a, 0x81000), 0);
    assert_int_equal(devtest_at(&b, 0x81000), data[0]);
    assert_int_equal(devtest_at(&b, 0x82000 + 5), data[4096 + 5]);
    assert_int_equal(fotasim_flash_erase(&b, 0x82), 0);
    assert_int_equal(devtest_at(&b, 0x82000), 0xFF);
    assert_int_equal(devtest_at(&a, 0x82000), data[4096]);
    fotasim_flash_cleanup(&a);
    fotasim_flash_cleanup(&b);
    fotasim_pool_cleanup(&pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nor_semantics),  cmocka_unit_test(test_layouts),
        cmocka_unit_test(test_sysparam),       cmocka_unit_test(test_sysparam_power_cut),
        cmocka_unit_test(test_userbin_check),  cmocka_unit_test(test_loader),
        cmocka_unit_test(test_dedupe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
