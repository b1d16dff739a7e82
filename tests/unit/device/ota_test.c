/* ota_test.c - streaming an image into the inactive slot (good, wrong
 * slot, corrupt, too big; nothing written outside the slot) and the
 * power-cut sweep: power lost at every flash operation of an upgrade +
 * flip + boot sequence must still boot a valid image, old or new. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "devtest.h"

#define SIZE (1024u * 1024u)

struct rig {
    struct fotasim_flash f;
    struct fotadev_layout l;
    struct fotadev_flash_ops ops;
    uint8_t *snap;
};

static void rig_init(struct rig *r, uint32_t seed)
{
    size_t len;
    uint8_t *img;
    assert_int_equal(fotasim_flash_init(&r->f, SIZE, seed), 0);
    assert_int_equal(fotadev_layout_get(2, &r->l), 0);
    r->ops = fotasim_flash_ops(&r->f);
    img = devtest_image(1, 2, "v1.0.0t1(a)", 4096, &len);
    assert_non_null(img);
    assert_int_equal(fotasim_flash_program(&r->f, r->l.slot_addr[0], img, (uint32_t)len), 0);
    free(img);
    /* junk in user2 from an older firmware: must be erased before use */
    {
        static const uint8_t zero[3 * 4096];
        assert_int_equal(fotasim_flash_program(&r->f, r->l.slot_addr[1], zero, sizeof(zero)), 0);
    }
    r->snap = devtest_dump(&r->f);
    assert_non_null(r->snap);
}

static void rig_free(struct rig *r)
{
    fotasim_flash_cleanup(&r->f);
    free(r->snap);
}

/* Nothing outside [user2, user2 + slot budget) changed. */
static void assert_outside_untouched(struct rig *r)
{
    uint32_t a = r->l.slot_addr[1], b = a + r->l.slot_size;
    uint8_t *now = devtest_dump(&r->f);
    assert_non_null(now);
    assert_memory_equal(now, r->snap, a);
    assert_memory_equal(now + b, r->snap + b, SIZE - b);
    free(now);
}

static int stream(struct rig *r, const uint8_t *img, size_t len, size_t chunk)
{
    struct fotadev_ota o;
    size_t off;
    int rc;
    assert_int_equal(fotadev_ota_begin(&o, &r->ops, &r->l, FOTADEV_SLOT_USER2), 0);
    for (off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        if ((rc = fotadev_ota_update(&o, img + off, n)) < 0)
            return rc;
    }
    return fotadev_ota_end(&o, NULL);
}

/* portable = 1: the device's own CRC (no host accelerators in the ops). */
static void rig_mode(struct rig *r, int portable)
{
    if (portable) {
        r->ops.crc32 = NULL;
        r->ops.crc_read = NULL;
    }
}

static void good_image(int portable)
{
    struct rig r;
    size_t len;
    uint8_t *img = devtest_image(2, 2, "v2.0.0t1(a)", 20000, &len);
    rig_init(&r, 1);
    rig_mode(&r, portable);
    assert_int_equal(stream(&r, img, len, 1337), 0);
    {
        uint8_t *now = devtest_dump(&r.f);
        assert_memory_equal(now + r.l.slot_addr[1], img, len);
        free(now);
    }
    assert_outside_untouched(&r);
    /* only the sectors the image needs were erased */
    assert_int_equal(r.f.erases, (len + 4095) / 4096);
    /* 1-byte chunks work too */
    assert_int_equal(stream(&r, img, len, 1), 0);
    free(img);
    rig_free(&r);
}

static void test_good_image(void **state)
{
    (void)state;
    good_image(0);
    good_image(1);
}

static void test_wrong_slot_refused(void **state)
{
    struct rig r;
    size_t len;
    uint8_t *img = devtest_image(1, 2, "v2.0.0t1(a)", 4096, &len);
    (void)state;
    rig_init(&r, 1);
    assert_int_equal(stream(&r, img, len, 512), FOTA_ESLOT);
    {
        uint8_t *now = devtest_dump(&r.f);
        assert_memory_equal(now, r.snap, SIZE);        /* nothing written at all */
        free(now);
    }
    free(img);
    rig_free(&r);
}

static void corrupt_refused(int portable)
{
    struct rig r;
    size_t len;
    uint8_t *img = devtest_image(2, 2, "v2.0.0t1(a)", 4096, &len);
    int rc;
    rig_init(&r, 1);
    rig_mode(&r, portable);
    img[100] ^= 1;                                      /* irom: only the CRC sees it */
    assert_int_equal(stream(&r, img, len, 700), FOTA_ECRC);
    img[100] ^= 1;
    img[len - 1] ^= 0x80;                               /* the CRC word itself */
    assert_int_equal(stream(&r, img, len, 700), FOTA_ECRC);
    img[len - 1] ^= 0x80;
    img[0] = 0x7F;                                      /* not an image */
    assert_int_equal(stream(&r, img, len, 700), FOTA_EMAGIC);
    img[0] = 0xEA;
    rc = stream(&r, img, len - 10, 700);                /* truncated */
    assert_true(rc == FOTA_ETRUNC || rc == FOTA_ECRC);
    assert_outside_untouched(&r);
    free(img);
    rig_free(&r);
}

/* The stream was sound, but the flash does not hold it any more (a bit
 * flipped after the write): only the read-back CRC sees it, in both modes. */
static void test_readback_crc(void **state)
{
    size_t len;
    uint8_t *img = devtest_image(2, 2, "v2.0.0t1(a)", 20000, &len);
    (void)state;
    for (int portable = 0; portable < 2; portable++) {
        struct rig r;
        struct fotadev_ota o;
        rig_init(&r, 1);
        rig_mode(&r, portable);
        assert_int_equal(fotadev_ota_begin(&o, &r.ops, &r.l, FOTADEV_SLOT_USER2), 0);
        assert_int_equal(fotadev_ota_update(&o, img, len), 0);
        devtest_xor(&r.f, r.l.slot_addr[1] + 9000, 0x10);
        assert_int_equal(fotadev_ota_end(&o, NULL), FOTA_ECRC);
        rig_free(&r);
    }
    free(img);
}

static void test_corrupt_refused(void **state)
{
    (void)state;
    corrupt_refused(0);
    corrupt_refused(1);
}

static void test_too_big_refused(void **state)
{
    struct rig r;
    struct fotadev_ota o;
    uint8_t *img, junk[4096];
    size_t len;
    uint32_t off;
    int rc = 0;
    (void)state;
    rig_init(&r, 1);
    img = devtest_image(2, 2, "v2.0.0t1(a)", 4096, &len);
    assert_int_equal(fotadev_ota_begin(&o, &r.ops, &r.l, FOTADEV_SLOT_USER2), 0);
    assert_int_equal(fotadev_ota_erase(&o, r.l.slot_size + 1), FOTA_ETOOBIG);
    assert_int_equal(fotadev_ota_begin(&o, &r.ops, &r.l, FOTADEV_SLOT_USER2), 0);
    /* an irom that claims to be 1 MB: fed junk until the slot is full */
    img[12] = 0x00; img[13] = 0xF0; img[14] = 0x0F; img[15] = 0x00;
    assert_int_equal(fotadev_ota_update(&o, img, 16), 0);
    memset(junk, 0xA5, sizeof(junk));
    for (off = 16; off < r.l.slot_size + 8192 && rc == 0; off += sizeof(junk))
        rc = fotadev_ota_update(&o, junk, sizeof(junk));
    assert_true(rc == FOTA_ETOOBIG || rc == FOTA_ERANGE);
    assert_outside_untouched(&r);
    free(img);
    rig_free(&r);
}

/* One upgrade: stream to user2, flip, then "restart" into the loader.
 * Returns 0 when it ran to the end, FOTA_EIO when power was lost. */
static int upgrade_once(struct rig *r, const uint8_t *img, size_t len)
{
    struct fotadev_ota o;
    int rc;
    if ((rc = fotadev_ota_begin(&o, &r->ops, &r->l, FOTADEV_SLOT_USER2)) < 0)
        return rc;
    if ((rc = fotadev_ota_erase(&o, (uint32_t)len)) < 0)
        return rc;
    if ((rc = fotadev_ota_update(&o, img, len)) < 0)
        return rc;
    if ((rc = fotadev_ota_end(&o, NULL)) < 0)
        return rc;
    return fotasim_boot_flip(&r->f, &r->l);
}

static void sweep(int loader)
{
    size_t len;
    uint8_t *img = devtest_image(2, 2, "v2.0.0t1(a)", 9000, &len);
    long total, cut;
    struct rig r;
    struct fotasim_boot b;
    assert_non_null(img);

    /* count the operations of a clean run (first boot + upgrade + boot) */
    rig_init(&r, 9);
    assert_int_equal(fotasim_boot_run(&r.f, &r.l, loader, &b), 0);
    assert_int_equal(upgrade_once(&r, img, len), 0);
    assert_int_equal(fotasim_boot_run(&r.f, &r.l, loader, &b), 0);
    assert_string_equal(b.version, "v2.0.0t1(a)");
    total = r.f.ops;
    rig_free(&r);
    assert_true(total > 5);

    for (cut = 0; cut <= total; cut++) {
        int new_seen;
        rig_init(&r, (uint32_t)cut + 100);
        r.f.cut_at = cut;
        if (fotasim_boot_run(&r.f, &r.l, loader, &b) == 0 && b.ok)
            (void)upgrade_once(&r, img, len);
        if (r.f.powered)                 /* the cut was in the final boot */
            (void)fotasim_boot_run(&r.f, &r.l, loader, &b);
        fotasim_flash_power_on(&r.f);
        assert_int_equal(fotasim_boot_run(&r.f, &r.l, loader, &b), 0);
        assert_true(b.ok);
        new_seen = strcmp(b.version, "v2.0.0t1(a)") == 0;
        assert_true(new_seen || strcmp(b.version, "v1.0.0t1(a)") == 0);
        if (!new_seen) {
            /* recovery: the same upgrade, uninterrupted, now succeeds */
            assert_int_equal(upgrade_once(&r, img, len), 0);
            assert_int_equal(fotasim_boot_run(&r.f, &r.l, loader, &b), 0);
            assert_string_equal(b.version, "v2.0.0t1(a)");
        }
        rig_free(&r);
    }
    free(img);
}

static void test_power_cut_sweep_boot17(void **state)
{
    (void)state;
    sweep(7);
}

static void test_power_cut_sweep_boot12(void **state)
{
    (void)state;
    sweep(2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_image),         cmocka_unit_test(test_wrong_slot_refused),
        cmocka_unit_test(test_corrupt_refused),    cmocka_unit_test(test_readback_crc),
        cmocka_unit_test(test_too_big_refused),
        cmocka_unit_test(test_power_cut_sweep_boot17), cmocka_unit_test(test_power_cut_sweep_boot12),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
