/* sign_test.c - unit tests of fotactl's release signing (cli/sign.c): the
 * trailer is payload || signature || uint32_le(length) (reference
 * arduino-ota §7.2); the standard signature verifies as PKCS#1 v1.5 over
 * the SHA-256 DigestInfo and the legacy one around the bare digest (both
 * checked with OpenSSL's verify, independent of the signing code), each is
 * deterministic; keys that cannot sign are refused with a sentence: a
 * public key, an encrypted key, an EC key, a file that is no key. (That the
 * bytes equal `openssl dgst -sha256 -sign`'s is checked against the openssl
 * command in tests/integration/cli_arduino_test.py.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "fota_err.h"
#include "sign.h"

static char dir[64];
static EVP_PKEY *rsa;

static void path_of(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static int setup(void **state)
{
    char p[128];
    FILE *f;

    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/fotactl-sign-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    rsa = EVP_RSA_gen(2048);
    if (!rsa)
        return -1;
    path_of(p, sizeof(p), "private.pem");   /* PKCS#8, as openssl genpkey writes */
    f = fopen(p, "w");
    if (!f || PEM_write_PrivateKey(f, rsa, NULL, NULL, 0, NULL, NULL) != 1)
        return -1;
    fclose(f);
    path_of(p, sizeof(p), "public.pem");
    f = fopen(p, "w");
    if (!f || PEM_write_PUBKEY(f, rsa) != 1)
        return -1;
    fclose(f);
    path_of(p, sizeof(p), "encrypted.pem");
    f = fopen(p, "w");
    if (!f || PEM_write_PrivateKey(f, rsa, EVP_aes_128_cbc(), (unsigned char *)"secret", 6, NULL,
                                   NULL) != 1)
        return -1;
    fclose(f);
    return 0;
}

static int teardown(void **state)
{
    static const char *const names[] = { "private.pem", "public.pem", "encrypted.pem",
                                         "ec.pem", "junk.pem" };
    char p[128];

    (void)state;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        path_of(p, sizeof(p), names[i]);
        unlink(p);
    }
    EVP_PKEY_free(rsa);
    return rmdir(dir);
}

static EVP_PKEY *load(const char *name)
{
    char p[128], err[512];
    EVP_PKEY *k = NULL;

    path_of(p, sizeof(p), name);
    assert_int_equal(fota_cli_sign_key_load(p, &k, err, sizeof(err)), 0);
    return k;
}

static uint32_t trailer_len(const uint8_t *out, size_t len)
{
    return (uint32_t)out[len - 4] | (uint32_t)out[len - 3] << 8 | (uint32_t)out[len - 2] << 16 |
           (uint32_t)out[len - 1] << 24;
}

static void test_standard(void **state)
{
    uint8_t payload[5000], *out = NULL, *again = NULL;
    size_t len = 0, len2 = 0;
    char err[256];
    EVP_PKEY *k = load("private.pem");
    EVP_MD_CTX *md = EVP_MD_CTX_new();

    (void)state;
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)(i * 7);
    assert_int_equal(fota_cli_sign(k, FOTA_CLI_SIGN_STANDARD, payload, sizeof(payload), &out,
                                   &len, err, sizeof(err)),
                     0);
    assert_int_equal(len, sizeof(payload) + 256 + 4);
    assert_memory_equal(out, payload, sizeof(payload));
    assert_int_equal(trailer_len(out, len), 256);
    /* RSASSA-PKCS1-v1_5 with SHA-256, verified with the public half */
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, rsa), 1);
    assert_int_equal(EVP_DigestVerify(md, out + sizeof(payload), 256, payload, sizeof(payload)),
                     1);
    /* deterministic: the same bytes again */
    assert_int_equal(fota_cli_sign(k, FOTA_CLI_SIGN_STANDARD, payload, sizeof(payload), &again,
                                   &len2, err, sizeof(err)),
                     0);
    assert_int_equal(len2, len);
    assert_memory_equal(again, out, len);
    /* a changed payload does not verify */
    payload[100] ^= 1;
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, rsa), 1);
    assert_int_not_equal(EVP_DigestVerify(md, out + sizeof(payload), 256, payload,
                                          sizeof(payload)),
                         1);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(k);
    free(out);
    free(again);
}

static void test_legacy(void **state)
{
    uint8_t payload[300], digest[32], rec[256], *out = NULL;
    size_t len = 0, reclen = sizeof(rec);
    unsigned dlen = 0;
    char err[256];
    EVP_PKEY *k = load("private.pem");
    EVP_PKEY_CTX *v = EVP_PKEY_CTX_new(rsa, NULL);

    (void)state;
    memset(payload, 0x42, sizeof(payload));
    assert_int_equal(fota_cli_sign(k, FOTA_CLI_SIGN_LEGACY, payload, sizeof(payload), &out, &len,
                                   err, sizeof(err)),
                     0);
    assert_int_equal(len, sizeof(payload) + 260);
    assert_int_equal(trailer_len(out, len), 256);
    /* the padding holds the bare digest (32 bytes), no DigestInfo */
    assert_int_equal(EVP_Digest(payload, sizeof(payload), digest, &dlen, EVP_sha256(), NULL), 1);
    assert_non_null(v);
    assert_int_equal(EVP_PKEY_verify_recover_init(v), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(v, RSA_PKCS1_PADDING), 1);
    assert_int_equal(EVP_PKEY_verify_recover(v, rec, &reclen, out + sizeof(payload), 256), 1);
    assert_int_equal(reclen, 32);
    assert_memory_equal(rec, digest, 32);
    EVP_PKEY_CTX_free(v);
    EVP_PKEY_free(k);
    free(out);
}

static void refused(const char *name, int want, const char *words)
{
    char p[128], err[512];
    EVP_PKEY *k = (EVP_PKEY *)1;

    path_of(p, sizeof(p), name);
    err[0] = '\0';
    assert_int_equal(fota_cli_sign_key_load(p, &k, err, sizeof(err)), want);
    assert_null(k);
    if (!strstr(err, words))
        fail_msg("%s: %s lacks %s", name, err, words);
}

static void test_keys_refused(void **state)
{
    char p[128];
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    FILE *f;

    (void)state;
    refused("public.pem", FOTA_EINVAL, "is a public key; signing needs the private key");
    refused("encrypted.pem", FOTA_EINVAL, "is encrypted");
    refused("missing.pem", FOTA_ENOENT, "cannot read");
    path_of(p, sizeof(p), "junk.pem");
    f = fopen(p, "w");
    assert_non_null(f);
    fputs("not a key\n", f);
    fclose(f);
    refused("junk.pem", FOTA_EINVAL, "is not a PEM private key");
    assert_non_null(ec);
    path_of(p, sizeof(p), "ec.pem");
    f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, ec, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    EVP_PKEY_free(ec);
    refused("ec.pem", FOTA_ECONFIG, "is not an RSA key");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_standard),
        cmocka_unit_test(test_legacy),
        cmocka_unit_test(test_keys_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
