/* sha256_test.c - FIPS 180-4 / NIST example vectors for fota_sha256, in one
 * piece and in awkward chunks (across the 56/64-byte padding edges). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "sha256.h"

static void hex(const uint8_t d[32], char out[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void check(const void *data, size_t len, const char *want)
{
    uint8_t d[32];
    char h[65];
    fota_sha256(data, len, d);
    hex(d, h);
    assert_string_equal(h, want);
    /* the same in 1..7-byte pieces */
    struct fota_sha256 c;
    fota_sha256_init(&c);
    for (size_t off = 0, step = 1; off < len; off += step, step = step % 7 + 1)
        fota_sha256_update(&c, (const uint8_t *)data + off, off + step > len ? len - off : step);
    fota_sha256_final(&c, d);
    hex(d, h);
    assert_string_equal(h, want);
}

static void test_nist(void **state)
{
    (void)state;
    check("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    check("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    check("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    check("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
          112, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

static void test_million_a(void **state)
{
    static uint8_t a[1000];
    struct fota_sha256 c;
    uint8_t d[32];
    char h[65];
    (void)state;
    memset(a, 'a', sizeof a);
    fota_sha256_init(&c);
    for (int i = 0; i < 1000; i++)
        fota_sha256_update(&c, a, sizeof a);
    fota_sha256_final(&c, d);
    hex(d, h);
    assert_string_equal(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* Lengths around the padding boundary against a second computation split differently. */
static void test_padding_edges(void **state)
{
    uint8_t buf[130], d1[32], d2[32];
    (void)state;
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 7 + 3);
    for (size_t n = 50; n <= 130; n++) {
        struct fota_sha256 c;
        fota_sha256(buf, n, d1);
        fota_sha256_init(&c);
        fota_sha256_update(&c, buf, n / 3);
        fota_sha256_update(&c, buf + n / 3, n - n / 3);
        fota_sha256_final(&c, d2);
        assert_memory_equal(d1, d2, 32);
    }
    /* 55 and 56 bytes differ from each other and from 64 */
    fota_sha256(buf, 55, d1);
    fota_sha256(buf, 56, d2);
    assert_memory_not_equal(d1, d2, 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nist),
        cmocka_unit_test(test_million_a),
        cmocka_unit_test(test_padding_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
