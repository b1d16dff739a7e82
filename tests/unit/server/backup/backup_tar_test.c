/* backup_tar_test.c - server/backup/backup_tar.c: headers written and read
 * back, sizes past the octal field, the end block, and refusals (no magic,
 * a wrong checksum, malformed numbers). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "backup_tar.h"
#include "fota_err.h"

/* Recomputes a header's checksum after a test changed a byte. */
static void rechecksum(uint8_t *h)
{
    unsigned sum = 0;
    memset(h + 148, ' ', 8);
    for (size_t i = 0; i < FOTA_TAR_BLOCK; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    h[155] = ' ';
}

static void test_round_trip(void **st)
{
    uint8_t h[FOTA_TAR_BLOCK];
    struct fota_tar_entry e;
    (void)st;
    assert_int_equal(fota_tar_header_make(h, "blobs/sha256/ab/abc", 6788, 0600, 1796588431), 0);
    assert_memory_equal(h + 257, "ustar\0"
                                 "00",
                        8);
    assert_int_equal(fota_tar_header_parse(h, &e), 0);
    assert_string_equal(e.name, "blobs/sha256/ab/abc");
    assert_int_equal(e.size, 6788);
    assert_int_equal(e.mode, 0600);
    assert_int_equal(e.mtime, 1796588431);
    assert_int_equal(e.type, '0');
    /* the checksum field as every tar writes it: six octal digits, NUL, space */
    assert_int_equal(h[154], '\0');
    assert_int_equal(h[155], ' ');
}

static void test_sizes(void **st)
{
    uint8_t h[FOTA_TAR_BLOCK];
    struct fota_tar_entry e;
    const uint64_t sizes[] = { 0, 1, 511, 512, 513, 077777777777ull, 1ull << 33,
                               (1ull << 40) + 5 };
    (void)st;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        assert_int_equal(fota_tar_header_make(h, "fota.db", sizes[i], 0600, 0), 0);
        assert_int_equal(fota_tar_header_parse(h, &e), 0);
        assert_true(e.size == sizes[i]);
        /* past 11 octal digits the field is GNU base-256 */
        assert_int_equal(h[124] == 0x80, sizes[i] > 077777777777ull);
    }
    assert_int_equal(fota_tar_pad(0), 0);
    assert_int_equal(fota_tar_pad(1), 511);
    assert_int_equal(fota_tar_pad(512), 0);
    assert_int_equal(fota_tar_member_bytes(513), 512 + 1024);
}

static void test_names(void **st)
{
    uint8_t h[FOTA_TAR_BLOCK];
    struct fota_tar_entry e;
    char name[128];
    (void)st;
    assert_int_equal(fota_tar_header_make(h, "", 1, 0600, 0), FOTA_EINVAL);
    memset(name, 'a', 100);
    name[100] = '\0';
    assert_int_equal(fota_tar_header_make(h, name, 1, 0600, 0), FOTA_EINVAL);
    name[99] = '\0';
    assert_int_equal(fota_tar_header_make(h, name, 1, 0600, 0), 0);
    assert_int_equal(fota_tar_header_make(h, "x", 1, 0600, -1), FOTA_EINVAL);
    /* a prefix field (written by other tars for long names) is joined */
    assert_int_equal(fota_tar_header_make(h, "name", 1, 0600, 0), 0);
    memcpy(h + 345, "some/dir", 8);
    rechecksum(h);
    assert_int_equal(fota_tar_header_parse(h, &e), 0);
    assert_string_equal(e.name, "some/dir/name");
    /* a name filling its whole field without NUL */
    memset(h, 0, FOTA_TAR_BLOCK);
    assert_int_equal(fota_tar_header_make(h, "n", 1, 0600, 0), 0);
    memset(h, 'b', 100);
    rechecksum(h);
    assert_int_equal(fota_tar_header_parse(h, &e), 0);
    assert_int_equal(strlen(e.name), 100);
}

static void test_refused(void **st)
{
    uint8_t h[FOTA_TAR_BLOCK], z[FOTA_TAR_BLOCK];
    struct fota_tar_entry e;
    (void)st;
    memset(z, 0, sizeof(z));
    assert_int_equal(fota_tar_header_parse(z, &e), 1);
    assert_int_equal(fota_tar_header_make(h, "fota.db", 10, 0600, 0), 0);
    h[0] = 'g';   /* checksum no longer matches */
    assert_int_equal(fota_tar_header_parse(h, &e), FOTA_ECHECKSUM);
    assert_int_equal(fota_tar_header_make(h, "fota.db", 10, 0600, 0), 0);
    memcpy(h + 257, "USTAR", 5);
    assert_int_equal(fota_tar_header_parse(h, &e), FOTA_EMAGIC);
    /* GNU's magic "ustar  \0" is read */
    assert_int_equal(fota_tar_header_make(h, "fota.db", 10, 0600, 0), 0);
    memcpy(h + 257, "ustar  \0", 8);
    rechecksum(h);
    assert_int_equal(fota_tar_header_parse(h, &e), 0);
    /* a size that is not octal */
    assert_int_equal(fota_tar_header_make(h, "fota.db", 10, 0600, 0), 0);
    memcpy(h + 124, "0000000009x\0", 12);
    rechecksum(h);
    assert_int_equal(fota_tar_header_parse(h, &e), FOTA_EPROTO);
    /* base-256 beyond 2^63 */
    assert_int_equal(fota_tar_header_make(h, "fota.db", 10, 0600, 0), 0);
    memset(h + 124, 0xff, 12);
    h[124] = 0x80;
    rechecksum(h);
    assert_int_equal(fota_tar_header_parse(h, &e), FOTA_EPROTO);
    /* an empty name */
    assert_int_equal(fota_tar_header_make(h, "x", 10, 0600, 0), 0);
    h[0] = '\0';
    rechecksum(h);
    assert_int_equal(fota_tar_header_parse(h, &e), FOTA_EPROTO);
    /* other member types are read; the caller refuses them */
    assert_int_equal(fota_tar_header_make(h, "dir", 0, 0700, 0), 0);
    h[156] = '5';
    rechecksum(h);
    assert_int_equal(fota_tar_header_parse(h, &e), 0);
    assert_int_equal(e.type, '5');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
