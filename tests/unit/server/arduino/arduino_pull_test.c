/* arduino_pull_test.c - the device-endpoint decisions: which stored file
 * answers which URL (gzip products, Tasmota's -minimal names, eboot's
 * in-place rule), 304 on any of the four mode-byte MD5s, the device's own
 * refusals answered with a 200 and the real length, confirmation and failure
 * at the next check-in, and ESPHome's manifest. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "arduino_img.h"
#include "arduino_pull.h"
#include "fota_err.h"
#include "fota_str.h"

static void md5_fill(char out[4][FOTA_ARDUINO_MD5_TEXT], int seed)
{
    for (int m = 0; m < 4; m++)
        snprintf(out[m], FOTA_ARDUINO_MD5_TEXT, "%08x%08x%08x%08x", seed, m, seed, m);
}

static void file(struct fota_arduino_rel *rel, int k, int64_t size, int gzip, int seed)
{
    struct fota_arduino_rel_file *f = &rel->f[k];
    memset(f, 0, sizeof *f);
    f->present = 1;
    f->file_id = 100 + k;
    f->size = size;
    f->facts.gzip = gzip;
    f->facts.flash_mode = 3;
    f->facts.flash_size = 4 << 20;
    f->facts.image_size = 400000;
    f->facts.sketch_size = 400000;
    md5_fill(f->facts.sketch_md5, seed);
}

/* v2.0: firmware.bin (400000), firmware.bin.gz (280000), the minimal pair. */
static void rel_full(struct fota_arduino_rel *rel)
{
    memset(rel, 0, sizeof *rel);
    rel->rom_id = 9;
    fota_str_copy(rel->version, sizeof rel->version, "2.0");
    file(rel, FOTA_ARDUINO_K_BIN, 400000, 0, 1);
    file(rel, FOTA_ARDUINO_K_BIN_GZ, 280000, 1, 1);
    file(rel, FOTA_ARDUINO_K_MIN, 300000, 0, 2);
    file(rel, FOTA_ARDUINO_K_MIN_GZ, 200000, 1, 2);
}

static void hdrs(struct fota_arduino_hdrs *h, uint32_t free_space, uint32_t sketch, uint32_t chip,
                 const char *md5)
{
    char b[32];
    fota_arduino_hdrs_init(h);
#define F(n, v) fota_arduino_hdrs_feed(h, n, strlen(n), v, strlen(v))
    F("x-ESP8266-STA-MAC", "DE:BA:7A:B1:E0:42");
    snprintf(b, sizeof b, "%u", free_space);
    F("x-ESP8266-free-space", b);
    snprintf(b, sizeof b, "%u", sketch);
    F("x-ESP8266-sketch-size", b);
    snprintf(b, sizeof b, "%u", chip);
    F("x-ESP8266-chip-size", b);
    if (md5)
        F("x-ESP8266-sketch-md5", md5);
    F("x-ESP8266-mode", "sketch");
    F("x-ESP8266-version", "1.0");
#undef F
}

static void test_kinds(void **state)
{
    (void)state;
    assert_int_equal(fota_arduino_kind_of("firmware.bin"), FOTA_ARDUINO_K_BIN);
    assert_int_equal(fota_arduino_kind_of("firmware.bin.gz"), FOTA_ARDUINO_K_BIN_GZ);
    assert_int_equal(fota_arduino_kind_of("firmware-minimal.bin"), FOTA_ARDUINO_K_MIN);
    assert_int_equal(fota_arduino_kind_of("firmware-minimal.bin.gz"), FOTA_ARDUINO_K_MIN_GZ);
    assert_int_equal(fota_arduino_kind_of("firmware.md5"), FOTA_ARDUINO_K_MD5);
    assert_int_equal(fota_arduino_kind_of("manifest.json"), FOTA_ARDUINO_K_MANIFEST);
    assert_int_equal(fota_arduino_kind_of("firmware.BIN"), -1);
    assert_int_equal(fota_arduino_kind_of("tasmota-minimal.bin"), -1);
    assert_int_equal(fota_arduino_kind_of(NULL), -1);
    assert_string_equal(fota_arduino_kind_name(FOTA_ARDUINO_K_MIN_GZ), "firmware-minimal.bin.gz");
}

static void test_pick(void **state)
{
    struct fota_arduino_rel rel;
    struct fota_arduino_hdrs h;
    (void)state;

    rel_full(&rel);
    /* gzip product: both names serve the container */
    assert_int_equal(fota_arduino_pick(&rel, FOTA_ARDUINO_K_BIN, 1, NULL), FOTA_ARDUINO_K_BIN_GZ);
    assert_int_equal(fota_arduino_pick(&rel, FOTA_ARDUINO_K_BIN_GZ, 1, NULL), FOTA_ARDUINO_K_BIN_GZ);
    assert_int_equal(fota_arduino_pick(&rel, FOTA_ARDUINO_K_MIN, 1, NULL), FOTA_ARDUINO_K_MIN_GZ);
    /* plain product (no gz files stored) */
    rel.f[FOTA_ARDUINO_K_BIN_GZ].present = 0;
    rel.f[FOTA_ARDUINO_K_MIN_GZ].present = 0;
    assert_int_equal(fota_arduino_pick(&rel, FOTA_ARDUINO_K_BIN, 0, NULL), FOTA_ARDUINO_K_BIN);
    assert_int_equal(fota_arduino_pick(&rel, FOTA_ARDUINO_K_BIN_GZ, 0, NULL), -1);
    assert_int_equal(fota_arduino_pick(&rel, FOTA_ARDUINO_K_MIN, 0, NULL), FOTA_ARDUINO_K_MIN);
    assert_int_equal(fota_arduino_pick(&rel, FOTA_ARDUINO_K_MIN_GZ, 0, NULL), -1);
    rel.f[FOTA_ARDUINO_K_MIN].present = 0;
    assert_int_equal(fota_arduino_pick(&rel, FOTA_ARDUINO_K_MIN, 0, NULL), -1);
    assert_int_equal(fota_arduino_pick(NULL, FOTA_ARDUINO_K_BIN, 0, NULL), -1);
    assert_int_equal(fota_arduino_pick(&rel, FOTA_ARDUINO_K_MD5, 0, NULL), -1);

    /* eboot's in-place inflate (§6.1): sketch area 1 MB = 400000 + 648576.
     * 400000 inflated + 282624 (280000 rounded) fits; with free space 200000
     * it does not, and the plain image is served instead */
    rel_full(&rel);
    hdrs(&h, 648576, 400000, 1 << 20, NULL);
    assert_int_equal(fota_arduino_pick(&rel, FOTA_ARDUINO_K_BIN, 1, &h), FOTA_ARDUINO_K_BIN_GZ);
    hdrs(&h, 200000, 200000, 1 << 20, NULL);
    assert_int_equal(fota_arduino_pick(&rel, FOTA_ARDUINO_K_BIN, 1, &h), FOTA_ARDUINO_K_BIN);
    assert_int_equal(fota_arduino_pick(&rel, FOTA_ARDUINO_K_BIN_GZ, 1, &h), FOTA_ARDUINO_K_BIN);
    /* a signed gzip release has no plain file: refuse */
    rel.f[FOTA_ARDUINO_K_BIN].present = 0;
    assert_int_equal(fota_arduino_pick(&rel, FOTA_ARDUINO_K_BIN, 1, &h), -2);
}

static void test_runs_any_mode_byte(void **state)
{
    struct fota_arduino_rel rel;
    struct fota_arduino_hdrs h;
    char md5s[4][FOTA_ARDUINO_MD5_TEXT];
    (void)state;

    rel_full(&rel);
    md5_fill(md5s, 1);
    for (int m = 0; m < 4; m++) {
        hdrs(&h, 1 << 20, 400000, 4 << 20, md5s[m]);
        assert_true(fota_arduino_runs(&rel, &h));
    }
    md5_fill(md5s, 2); /* the minimal image is not the target */
    hdrs(&h, 1 << 20, 400000, 4 << 20, md5s[0]);
    assert_false(fota_arduino_runs(&rel, &h));
    /* the version header counts only without an MD5 */
    fota_arduino_hdrs_feed(&h, "x-ESP8266-version", 17, "2.0", 3);
    assert_false(fota_arduino_runs(&rel, &h));
    hdrs(&h, 1 << 20, 400000, 4 << 20, NULL);
    assert_false(fota_arduino_runs(&rel, &h)); /* "1.0" */
    fota_arduino_hdrs_feed(&h, "x-ESP8266-version", 17, "2.0", 3);
    assert_true(fota_arduino_runs(&rel, &h));
    assert_false(fota_arduino_runs(&rel, NULL));
    assert_false(fota_arduino_runs(NULL, &h));
}

static void test_decide(void **state)
{
    struct fota_arduino_rel rel;
    struct fota_arduino_hdrs h;
    struct fota_arduino_answer a;
    char md5s[4][FOTA_ARDUINO_MD5_TEXT];
    (void)state;

    rel_full(&rel);
    rel.f[FOTA_ARDUINO_K_BIN_GZ].present = 0;
    rel.f[FOTA_ARDUINO_K_MIN_GZ].present = 0;
    md5_fill(md5s, 1);

    /* a fitting image */
    hdrs(&h, 1 << 20, 300000, 4 << 20, "00000000000000000000000000000000");
    fota_arduino_decide(&rel, FOTA_ARDUINO_K_BIN, 0, 31, &h, 1, &a);
    assert_int_equal(a.status, 200);
    assert_int_equal(a.file, FOTA_ARDUINO_K_BIN);
    assert_int_equal(a.verdict, FOTA_ARDUINO_ACCEPT);
    assert_int_equal(a.send, 400000);
    /* already running it, in another flash mode */
    hdrs(&h, 1 << 20, 300000, 4 << 20, md5s[1]);
    fota_arduino_decide(&rel, FOTA_ARDUINO_K_BIN, 0, 31, &h, 1, &a);
    assert_int_equal(a.status, 304);
    assert_int_equal(a.file, -1);
    /* too big: 200 with the real length, 4 bytes, the device refuses (-100) */
    hdrs(&h, 399999, 300000, 4 << 20, "00000000000000000000000000000000");
    fota_arduino_decide(&rel, FOTA_ARDUINO_K_BIN, 0, 31, &h, 1, &a);
    assert_int_equal(a.status, 200);
    assert_int_equal(a.verdict, FOTA_ARDUINO_TOO_LESS_SPACE);
    assert_int_equal(a.send, 4);
    assert_string_equal(a.why, "Not Enough space");
    /* ... and the minimal image fits: Tasmota's second step */
    fota_arduino_decide(&rel, FOTA_ARDUINO_K_MIN, 0, 31, &h, 1, &a);
    assert_int_equal(a.status, 200);
    assert_int_equal(a.file, FOTA_ARDUINO_K_MIN);
    assert_int_equal(a.verdict, FOTA_ARDUINO_ACCEPT);
    assert_int_equal(a.send, 300000);
    /* built for 4 MB, the chip has 1 MB: -107 */
    hdrs(&h, 1 << 20, 300000, 1 << 20, "00000000000000000000000000000000");
    fota_arduino_decide(&rel, FOTA_ARDUINO_K_BIN, 0, 31, &h, 1, &a);
    assert_int_equal(a.status, 200);
    assert_int_equal(a.verdict, FOTA_ARDUINO_WRONG_FLASH);
    assert_int_equal(a.send, 4);
    /* spiffs, version requests */
    hdrs(&h, 1 << 20, 300000, 4 << 20, NULL);
    fota_arduino_hdrs_feed(&h, "x-ESP8266-mode", 14, "spiffs", 6);
    fota_arduino_decide(&rel, FOTA_ARDUINO_K_BIN, 0, 31, &h, 1, &a);
    assert_int_equal(a.status, 304);
    fota_arduino_hdrs_feed(&h, "x-ESP8266-mode", 14, "version", 7);
    fota_arduino_decide(&rel, FOTA_ARDUINO_K_BIN, 0, 31, &h, 1, &a);
    assert_int_equal(a.status, 304);
    /* no release: a device hears "no update", others 404 */
    hdrs(&h, 1 << 20, 300000, 4 << 20, NULL);
    fota_arduino_decide(NULL, FOTA_ARDUINO_K_BIN, 0, 31, &h, 1, &a);
    assert_int_equal(a.status, 304);
    fota_arduino_decide(NULL, FOTA_ARDUINO_K_BIN, 0, 31, NULL, 0, &a);
    assert_int_equal(a.status, 404);
    /* no such file */
    fota_arduino_decide(&rel, FOTA_ARDUINO_K_BIN_GZ, 0, 31, &h, 1, &a);
    assert_int_equal(a.status, 404);
    /* anonymous and ESPHome: always the file, no verdict */
    fota_arduino_decide(&rel, FOTA_ARDUINO_K_BIN, 0, 31, NULL, 0, &a);
    assert_int_equal(a.status, 200);
    assert_int_equal(a.send, 400000);
    fota_arduino_decide(&rel, FOTA_ARDUINO_K_BIN, 0, 31, NULL, 1, &a);
    assert_int_equal(a.status, 200);

    /* gzip bodies: accepted by cores >= 2.7, refused by older ones (-106) */
    rel_full(&rel);
    hdrs(&h, 1 << 20, 300000, 4 << 20, NULL);
    fota_arduino_decide(&rel, FOTA_ARDUINO_K_BIN, 1, 27, &h, 1, &a);
    assert_int_equal(a.file, FOTA_ARDUINO_K_BIN_GZ);
    assert_int_equal(a.verdict, FOTA_ARDUINO_ACCEPT);
    assert_int_equal(a.send, 280000);
    fota_arduino_decide(&rel, FOTA_ARDUINO_K_BIN, 1, 26, &h, 1, &a);
    assert_int_equal(a.verdict, FOTA_ARDUINO_BAD_HEADER);
    /* gzip is never flash-size checked by the device */
    hdrs(&h, 1 << 20, 300000, 512 << 10, NULL);
    fota_arduino_decide(&rel, FOTA_ARDUINO_K_BIN, 1, 31, &h, 1, &a);
    assert_int_equal(a.verdict, FOTA_ARDUINO_ACCEPT);
    /* the in-place rule with no plain image: 409 */
    rel.f[FOTA_ARDUINO_K_BIN].present = 0;
    hdrs(&h, 200000, 200000, 4 << 20, NULL);
    fota_arduino_decide(&rel, FOTA_ARDUINO_K_BIN, 1, 31, &h, 1, &a);
    assert_int_equal(a.status, 409);
}

static void test_head_of(void **state)
{
    struct fota_arduino_blob b;
    uint8_t head[4];
    (void)state;
    memset(&b, 0, sizeof b);
    b.flash_mode = 2;
    b.flash_size = 16 << 20;
    fota_arduino_head_of(&b, head);
    assert_int_equal(head[0], 0xE9);
    assert_int_equal(head[2], 2);
    assert_int_equal(head[3], 0x90);
    b.flash_size = 256 << 10;
    fota_arduino_head_of(&b, head);
    assert_int_equal(head[3], 0x10);
    b.gzip = 1;
    fota_arduino_head_of(&b, head);
    assert_int_equal(head[0], 0x1F);
    assert_int_equal(head[1], 0x8B);
}

static void test_confirm(void **state)
{
    struct fota_arduino_device a;
    struct fota_arduino_hdrs h;
    char target[4][FOTA_ARDUINO_MD5_TEXT], minimal[4][FOTA_ARDUINO_MD5_TEXT];
    const char *old = "0123456789abcdef0123456789abcdef";
    (void)state;

    md5_fill(target, 1);
    md5_fill(minimal, 2);
    memset(&a, 0, sizeof a);
    hdrs(&h, 1 << 20, 300000, 4 << 20, old);
    assert_int_equal(fota_arduino_confirm(&a, &h, target, minimal, 1000, 60), FOTA_ARDUINO_OUT_NONE);

    fota_str_copy(a.target, sizeof a.target, "2.0");
    fota_str_copy(a.served_md5, sizeof a.served_md5, old);
    a.served_at = 1000;
    /* downloaded, not rebooted yet: the old MD5 before confirm_after is nothing */
    assert_int_equal(fota_arduino_confirm(&a, &h, target, minimal, 1059, 60), FOTA_ARDUINO_OUT_NONE);
    assert_int_equal(fota_arduino_confirm(&a, &h, target, minimal, 1060, 60), FOTA_ARDUINO_OUT_FAILED);
    /* not downloaded (yet): never a failure */
    a.served_at = 0;
    assert_int_equal(fota_arduino_confirm(&a, &h, target, minimal, 99999, 60), FOTA_ARDUINO_OUT_NONE);
    a.served_at = 1000;
    /* the target image in any flash mode */
    for (int m = 0; m < 4; m++) {
        hdrs(&h, 1 << 20, 300000, 4 << 20, target[m]);
        assert_int_equal(fota_arduino_confirm(&a, &h, target, minimal, 1001, 60),
                         FOTA_ARDUINO_OUT_SUCCESS);
    }
    /* Tasmota's minimal image is a step */
    hdrs(&h, 1 << 20, 300000, 4 << 20, minimal[3]);
    assert_int_equal(fota_arduino_confirm(&a, &h, target, minimal, 5000, 60), FOTA_ARDUINO_OUT_STEP);
    assert_int_equal(fota_arduino_confirm(&a, &h, target, NULL, 5000, 60), FOTA_ARDUINO_OUT_NONE);
    /* the full image downloaded on the minimal one, still the minimal one after confirm_after */
    fota_str_copy(a.served_md5, sizeof a.served_md5, minimal[3]);
    assert_int_equal(fota_arduino_confirm(&a, &h, target, minimal, 1059, 60), FOTA_ARDUINO_OUT_STEP);
    assert_int_equal(fota_arduino_confirm(&a, &h, target, minimal, 1060, 60), FOTA_ARDUINO_OUT_FAILED);
    fota_str_copy(a.served_md5, sizeof a.served_md5, old);
    /* a third image: nothing to say */
    hdrs(&h, 1 << 20, 300000, 4 << 20, "ffffffffffffffffffffffffffffffff");
    assert_int_equal(fota_arduino_confirm(&a, &h, target, minimal, 5000, 60), FOTA_ARDUINO_OUT_NONE);
    /* without an MD5 the version header decides */
    hdrs(&h, 1 << 20, 300000, 4 << 20, NULL);
    assert_int_equal(fota_arduino_confirm(&a, &h, target, minimal, 5000, 60), FOTA_ARDUINO_OUT_NONE);
    fota_arduino_hdrs_feed(&h, "x-ESP8266-version", 17, "2.0", 3);
    assert_int_equal(fota_arduino_confirm(&a, &h, target, minimal, 5000, 60), FOTA_ARDUINO_OUT_SUCCESS);
    assert_int_equal(fota_arduino_confirm(&a, NULL, target, minimal, 5000, 60), FOTA_ARDUINO_OUT_NONE);
}

/* The target's order: a command, then a pin while the current release has
 * not moved since it was set, then the current release. */
static void test_target_of(void **state)
{
    const char *v = NULL;
    int lapsed = -1;
    (void)state;
    assert_int_equal(fota_arduino_target_of("3.0", "2.0", "1.0", "1.0", &v, &lapsed),
                     FOTA_ARDUINO_SRC_COMMAND);
    assert_string_equal(v, "3.0");
    assert_int_equal(lapsed, 0);
    assert_int_equal(fota_arduino_target_of("", "2.0", "1.0", "1.0", &v, &lapsed),
                     FOTA_ARDUINO_SRC_PIN);
    assert_string_equal(v, "2.0");
    assert_int_equal(lapsed, 0);
    /* the product's current release changed: the pin lapses */
    assert_int_equal(fota_arduino_target_of(NULL, "2.0", "1.0", "1.1", &v, &lapsed),
                     FOTA_ARDUINO_SRC_CURRENT);
    assert_string_equal(v, "1.1");
    assert_int_equal(lapsed, 1);
    /* pinned when the product had no current release: holds until it has one */
    assert_int_equal(fota_arduino_target_of("", "2.0", "", "", &v, &lapsed), FOTA_ARDUINO_SRC_PIN);
    assert_int_equal(fota_arduino_target_of("", "2.0", "", "1.0", &v, &lapsed),
                     FOTA_ARDUINO_SRC_CURRENT);
    assert_int_equal(lapsed, 1);
    assert_int_equal(fota_arduino_target_of("", "", "", "1.0", &v, &lapsed),
                     FOTA_ARDUINO_SRC_CURRENT);
    assert_int_equal(lapsed, 0);
    assert_int_equal(fota_arduino_target_of(NULL, NULL, NULL, NULL, &v, &lapsed),
                     FOTA_ARDUINO_SRC_NONE);
    assert_string_equal(v, "");
}

/* Tasmota's Version: the release up to the parenthesis; a minimal build is
 * a step whatever its version. */
static void test_version_match(void **state)
{
    char base[16];
    (void)state;
    assert_int_equal(fota_arduino_version_match("14.4.1(release-tasmota)", "14.4.1"),
                     FOTA_ARDUINO_V_TARGET);
    assert_int_equal(fota_arduino_version_match("14.4.1", "14.4.1"), FOTA_ARDUINO_V_TARGET);
    assert_int_equal(fota_arduino_version_match("14.4.1(tasmota)", "14.4.1(tasmota)"),
                     FOTA_ARDUINO_V_TARGET);
    assert_int_equal(fota_arduino_version_match("14.4.1(release-minimal)", "14.4.1"),
                     FOTA_ARDUINO_V_MINIMAL);
    assert_int_equal(fota_arduino_version_match("14.4.1(minimal)", ""), FOTA_ARDUINO_V_MINIMAL);
    assert_int_equal(fota_arduino_version_match("14.4.10(tasmota)", "14.4.1"),
                     FOTA_ARDUINO_V_OTHER);
    assert_int_equal(fota_arduino_version_match("14.4(tasmota)", "14.4.1"), FOTA_ARDUINO_V_OTHER);
    assert_int_equal(fota_arduino_version_match("", "14.4.1"), FOTA_ARDUINO_V_OTHER);
    assert_int_equal(fota_arduino_version_match(NULL, "14.4.1"), FOTA_ARDUINO_V_OTHER);
    assert_int_equal(fota_arduino_version_match("14.4.1(tasmota)", NULL), FOTA_ARDUINO_V_OTHER);
    fota_arduino_version_base("14.4.1(release-tasmota)", base, sizeof base);
    assert_string_equal(base, "14.4.1");
    fota_arduino_version_base("2.0", base, sizeof base);
    assert_string_equal(base, "2.0");
}

static void test_manifest(void **state)
{
    json_t *m;
    char *s;
    (void)state;

    m = fota_arduino_manifest("Kitchen plug", "1.4.0", "d41d8cd98f00b204e9800998ecf8427e",
                              "Fixes relay chatter");
    s = json_dumps(m, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(s, "{\"builds\":[{\"chipFamily\":\"ESP8266\",\"ota\":{\"md5\":"
                           "\"d41d8cd98f00b204e9800998ecf8427e\",\"path\":\"firmware.bin\","
                           "\"summary\":\"Fixes relay chatter\"}}],\"name\":\"Kitchen plug\","
                           "\"version\":\"1.4.0\"}");
    free(s);
    json_decref(m);
    m = fota_arduino_manifest("p", "1", "d41d8cd98f00b204e9800998ecf8427e", "");
    assert_null(json_object_get(json_object_get(json_array_get(json_object_get(m, "builds"), 0),
                                                "ota"), "summary"));
    assert_true(json_is_string(json_object_get(m, "version")));
    json_decref(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinds),
        cmocka_unit_test(test_pick),
        cmocka_unit_test(test_runs_any_mode_byte),
        cmocka_unit_test(test_decide),
        cmocka_unit_test(test_head_of),
        cmocka_unit_test(test_confirm),
        cmocka_unit_test(test_target_of),
        cmocka_unit_test(test_version_match),
        cmocka_unit_test(test_manifest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
