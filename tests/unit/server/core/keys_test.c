/* keys_test.c - server/core/keys.c: key format, hashing, derivation,
 * Authorization header parsing, key files and the master key sector. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fota_err.h"
#include "keys.h"

static void test_generate_and_valid(void **st)
{
    char a[FOTA_KEY_BUF], b[FOTA_KEY_BUF];
    (void)st;
    assert_int_equal(fota_key_generate(a), 0);
    assert_int_equal(fota_key_generate(b), 0);
    assert_int_equal(strlen(a), 40);
    assert_true(fota_key_valid(a, 40));
    assert_string_not_equal(a, b);
    assert_false(fota_key_valid(a, 39));
    assert_false(fota_key_valid("zz3456789012345678901234567890123456789a", 40));
    assert_true(fota_key_valid("ABCDEF7890123456789012345678901234567890", 40));
}

static void test_hash_and_equal(void **st)
{
    char h[65];
    (void)st;
    fota_key_hash("abc", 3, h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_true(fota_key_equal("abcd", "abcd", 4));
    assert_false(fota_key_equal("abcd", "abce", 4));
}

static void test_derive(void **st)
{
    uint8_t secret[FOTA_SECRET_LEN];
    char m1[FOTA_KEY_BUF], m2[FOTA_KEY_BUF], o1[FOTA_KEY_BUF], g1[FOTA_KEY_BUF];
    (void)st;
    memset(secret, 7, sizeof(secret));
    fota_key_derive(secret, "master", 1, 0, m1);
    fota_key_derive(secret, "master", 1, 0, m2);
    fota_key_derive(secret, "owner", 1, 0, o1);
    fota_key_derive(secret, "master", 1, 1, g1);
    assert_string_equal(m1, m2);           /* deterministic */
    assert_string_not_equal(m1, o1);       /* per kind */
    assert_string_not_equal(m1, g1);       /* per generation */
    assert_true(fota_key_valid(m1, strlen(m1)));
    secret[0] ^= 1;
    fota_key_derive(secret, "master", 1, 0, m2);
    assert_string_not_equal(m1, m2);       /* per secret */
}

/* The pre-keyed deriver gives fota_key_derive's keys, for any kind, id, generation and secret. */
static void test_deriver(void **st)
{
    uint8_t secret[FOTA_SECRET_LEN];
    char a[FOTA_KEY_BUF], b[FOTA_KEY_BUF];
    (void)st;
    for (int s = 0; s < 3; s++) {
        for (size_t i = 0; i < sizeof(secret); i++)
            secret[i] = (uint8_t)(i * 31 + (size_t)s * 7 + 1);
        struct fota_key_deriver *kd = fota_key_deriver_new(secret);
        assert_non_null(kd);
        static const char *const kinds[] = { "owner", "master", "product" };
        const int64_t ids[] = { 0, 1, 2, 10, 19000, 9007199254740993LL, INT64_MAX, -7, INT64_MIN };
        const int gens[] = { 0, 1, 9, 10, 123456, INT_MAX, -1, INT_MIN };
        for (int k = 0; k < 3; k++)
            for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
                for (size_t g = 0; g < sizeof(gens) / sizeof(gens[0]); g++) {
                    fota_key_derive(secret, kinds[k], ids[i], gens[g], a);
                    memset(b, 'x', sizeof(b));
                    fota_key_deriver_run(kd, kinds[k], ids[i], gens[g], b);
                    assert_string_equal(a, b);
                }
        fota_key_deriver_free(kd);
    }
    fota_key_deriver_free(NULL);
}

static void test_header(void **st)
{
    const char *k;
    size_t n;
    (void)st;
    assert_int_equal(fota_key_from_header("token abc", &k, &n), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(k, "abc", 3);
    assert_int_equal(fota_key_from_header("Token  abc  ", &k, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(fota_key_from_header("TOKEN x", &k, &n), 0);
    assert_int_equal(fota_key_from_header("Bearer abc", &k, &n), FOTA_EAUTH);
    assert_int_equal(fota_key_from_header("token", &k, &n), FOTA_EAUTH);
    assert_int_equal(fota_key_from_header("token ", &k, &n), FOTA_EAUTH);
    assert_int_equal(fota_key_from_header("tokenabc", &k, &n), FOTA_EAUTH);
}

static void test_files(void **st)
{
    char dir[] = "/tmp/fota-keys-XXXXXX", path[256], key[FOTA_KEY_BUF], back[FOTA_KEY_BUF];
    uint8_t s1[FOTA_SECRET_LEN], s2[FOTA_SECRET_LEN];
    struct stat sb;
    int created;
    (void)st;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/secret.key", dir);
    assert_int_equal(fota_key_secret_load(path, s1, &created), 0);
    assert_int_equal(created, 1);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(sb.st_size, FOTA_SECRET_LEN);
    assert_int_equal(fota_key_secret_load(path, s2, &created), 0);
    assert_int_equal(created, 0);
    assert_memory_equal(s1, s2, FOTA_SECRET_LEN);
    unlink(path);

    snprintf(path, sizeof(path), "%s/owner.key", dir);
    assert_int_equal(fota_key_read_file(path, back), FOTA_ENOENT);
    assert_int_equal(fota_key_generate(key), 0);
    assert_int_equal(fota_key_write_file(path, key), 0);
    assert_int_equal(fota_key_write_file(path, key), FOTA_EEXIST);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(fota_key_read_file(path, back), 0);
    assert_string_equal(key, back);
    FILE *f = fopen(path, "w");
    fputs("not a key\n", f);
    fclose(f);
    assert_int_equal(fota_key_read_file(path, back), FOTA_EINVAL);
    unlink(path);
    rmdir(dir);
}

static void test_keybin(void **st)
{
    uint8_t *s = malloc(FOTA_KEYBIN_SIZE);
    const char *key = "0123456789abcdef0123456789abcdef01234567";
    const char *tok = "fedcba9876543210fedcba9876543210fedcba98";
    (void)st;
    fota_key_bin_build(key, tok, 0, s);
    assert_memory_equal(s, key, 40);
    assert_memory_equal(s + 40, tok, 40);
    assert_int_equal(s[80], 0);
    for (size_t i = 81; i < FOTA_KEYBIN_SIZE; i++)
        assert_int_equal(s[i], 0xFF);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_and_valid), cmocka_unit_test(test_hash_and_equal),
        cmocka_unit_test(test_derive),             cmocka_unit_test(test_deriver),
        cmocka_unit_test(test_header),
        cmocka_unit_test(test_files),              cmocka_unit_test(test_keybin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
