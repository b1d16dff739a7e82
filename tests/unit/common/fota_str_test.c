/* fota_str_test.c - common/fota_str.c: the bounded copies, the copy of
 * whole UTF-8 characters (a cut never leaves half of one, invalid bytes end
 * the copy), and the copy of a path's directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "fota_str.h"

static void test_copy(void **st)
{
    char b[4];
    (void)st;
    assert_int_equal(fota_str_copy(b, sizeof b, "abcdef"), 6);
    assert_string_equal(b, "abc");
    assert_int_equal(fota_str_copy(b, sizeof b, NULL), 0);
    assert_string_equal(b, "");
    assert_int_equal(fota_str_copy_n(b, sizeof b, "a\0bc", 4), 4);
    assert_string_equal(b, "a");
}

static void test_copy_dir(void **st)
{
    char b[8];
    (void)st;
    assert_int_equal(fota_str_copy_dir(b, sizeof b, "dir/file"), 3);
    assert_string_equal(b, "dir");
    assert_int_equal(fota_str_copy_dir(b, sizeof b, "/a/b/c.tar"), 4);
    assert_string_equal(b, "/a/b");
    assert_int_equal(fota_str_copy_dir(b, sizeof b, "/file"), 1);
    assert_string_equal(b, "/");
    assert_int_equal(fota_str_copy_dir(b, sizeof b, "file"), 1);
    assert_string_equal(b, ".");
    /* truncated: the length says so */
    assert_int_equal(fota_str_copy_dir(b, sizeof b, "0123456789/f"), 10);
    assert_string_equal(b, "0123456");
}

/* The copy of src (n bytes) into cap bytes. */
static const char *u8(const char *src, size_t n, size_t cap)
{
    static char out[32];
    memset(out, 'Z', sizeof out);
    size_t k = fota_str_copy_utf8(out, cap, src, n);
    assert_int_equal(k, strlen(out));
    return out;
}

static void test_copy_utf8(void **st)
{
    (void)st;
    assert_string_equal(u8("plain", 5, 32), "plain");
    assert_string_equal(u8("plain", 5, 4), "pla");
    /* é (2), € (3), 😀 (4) kept whole or left out whole */
    assert_string_equal(u8("a\xc3\xa9", 3, 4), "a\xc3\xa9");
    assert_string_equal(u8("a\xc3\xa9", 3, 3), "a");
    assert_string_equal(u8("\xe2\x82\xac!", 4, 4), "\xe2\x82\xac");
    assert_string_equal(u8("\xe2\x82\xac!", 4, 3), "");
    assert_string_equal(u8("x\xf0\x9f\x98\x80", 5, 6), "x\xf0\x9f\x98\x80");
    assert_string_equal(u8("x\xf0\x9f\x98\x80", 5, 5), "x");
    /* invalid bytes end the copy: stray continuation, overlong, surrogate,
     * past U+10FFFF, a lead byte without its continuation, 0xff */
    assert_string_equal(u8("ok\x80z", 4, 32), "ok");
    assert_string_equal(u8("ok\xc0\x80z", 5, 32), "ok");
    assert_string_equal(u8("ok\xe0\x80\x80z", 6, 32), "ok");
    assert_string_equal(u8("ok\xed\xa0\x80z", 6, 32), "ok");
    assert_string_equal(u8("ok\xf4\x90\x80\x80z", 7, 32), "ok");
    assert_string_equal(u8("ok\xe2\x82z", 5, 32), "ok");
    assert_string_equal(u8("ok\xffz", 4, 32), "ok");
    /* a NUL ends it; NULL is ""; no room writes nothing */
    assert_string_equal(u8("a\0b", 3, 32), "a");
    assert_string_equal(u8(NULL, 9, 32), "");
    char one = 'Z';
    assert_int_equal(fota_str_copy_utf8(&one, 0, "abc", 3), 0);
    assert_int_equal(one, 'Z');
    assert_int_equal(fota_str_copy_utf8(&one, 1, "abc", 3), 0);
    assert_int_equal(one, '\0');
}

/* FNV-1a's published 32-bit vectors; continuing equals hashing the whole. */
static void test_hash(void **st)
{
    (void)st;
    assert_int_equal(fota_str_hash(FOTA_STR_HASH_SEED, ""), 0x811c9dc5u);
    assert_int_equal(fota_str_hash(FOTA_STR_HASH_SEED, NULL), 0x811c9dc5u);
    assert_int_equal(fota_str_hash(FOTA_STR_HASH_SEED, "a"), 0xe40c292cu);
    assert_int_equal(fota_str_hash(FOTA_STR_HASH_SEED, "foobar"), 0xbf9cf968u);
    assert_int_equal(fota_str_hash(fota_str_hash(FOTA_STR_HASH_SEED, "foo"), "bar"),
                     0xbf9cf968u);
    assert_int_not_equal(fota_str_hash(FOTA_STR_HASH_SEED ^ 1u, "a"),
                         fota_str_hash(FOTA_STR_HASH_SEED, "a"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy),
        cmocka_unit_test(test_copy_utf8),
        cmocka_unit_test(test_copy_dir),
        cmocka_unit_test(test_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
