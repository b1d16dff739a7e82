/* pem_test.c - fota_pem_kind over the key files fotactl and fotad meet:
 * public (SPKI, PKCS#1), private (PKCS#8, PKCS#1, EC), encrypted (PKCS#8,
 * the traditional Proc-Type header), a file with both, and no key. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "pem.h"

static enum fota_pem_kind kind(const char *s)
{
    return fota_pem_kind(s, strlen(s));
}

static void test_public(void **state)
{
    (void)state;
    assert_int_equal(kind("-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n"),
                     FOTA_PEM_PUBLIC);
    assert_int_equal(kind("-----BEGIN RSA PUBLIC KEY-----\nMIIB\n-----END RSA PUBLIC KEY-----\n"),
                     FOTA_PEM_PUBLIC);
}

static void test_private(void **state)
{
    (void)state;
    assert_int_equal(kind("-----BEGIN PRIVATE KEY-----"), FOTA_PEM_PRIVATE);
    assert_int_equal(kind("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n"),
                     FOTA_PEM_PRIVATE);
    assert_int_equal(kind("-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----\n"),
                     FOTA_PEM_PRIVATE);
    /* a public key next to its private key is still a private key file */
    assert_int_equal(kind("-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n"
                          "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"),
                     FOTA_PEM_PRIVATE);
}

static void test_encrypted(void **state)
{
    (void)state;
    assert_int_equal(kind("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIF\n"
                          "-----END ENCRYPTED PRIVATE KEY-----\n"),
                     FOTA_PEM_ENCRYPTED);
    assert_int_equal(kind("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
                          "DEK-Info: AES-128-CBC,00\n\nMIIE\n-----END RSA PRIVATE KEY-----\n"),
                     FOTA_PEM_ENCRYPTED);
}

static void test_none(void **state)
{
    static const char nul[] = "-----BEGIN PUBLIC KEY\0-----";
    (void)state;
    assert_int_equal(kind("hello"), FOTA_PEM_NONE);
    assert_int_equal(kind("-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n"),
                     FOTA_PEM_NONE);
    assert_int_equal(fota_pem_kind(NULL, 0), FOTA_PEM_NONE);
    assert_int_equal(fota_pem_kind(nul, sizeof nul - 1), FOTA_PEM_NONE);
    /* the length bounds the search: a marker past it is not seen */
    assert_int_equal(fota_pem_kind("-----BEGIN PUBLIC KEY-----", 25), FOTA_PEM_NONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_public),
        cmocka_unit_test(test_private),
        cmocka_unit_test(test_encrypted),
        cmocka_unit_test(test_none),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
