/* sign.c - the signature trailer of Arduino-core release files (sign.h):
 * OpenSSL's EVP_DigestSign with SHA-256 and PKCS#1 v1.5 padding, the same
 * operation `openssl dgst -sha256 -sign` performs, or EVP_PKEY_sign over the
 * bare digest for core 2.5's legacy form. */
#include "sign.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "fota_err.h"
#include "pem.h"

/* No pass phrase is ever asked for: an encrypted key fails to load. */
static int no_pass(char *buf, int size, int rwflag, void *ud)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)ud;
    return -1;
}

int fota_cli_sign_key_load(const char *path, EVP_PKEY **key, char *err, size_t cap)
{
    FILE *f = fopen(path, "r");
    char head[64 * 1024];
    size_t n;

    *key = NULL;
    if (!f) {
        snprintf(err, cap, "cannot read %s (%s)", path, strerror(errno));
        return FOTA_ENOENT;
    }
    n = fread(head, 1, sizeof(head), f);
    rewind(f);
    *key = PEM_read_PrivateKey(f, NULL, no_pass, NULL);
    fclose(f);
    ERR_clear_error();
    if (!*key) {
        enum fota_pem_kind kind = fota_pem_kind(head, n);

        if (kind == FOTA_PEM_ENCRYPTED)
            snprintf(err, cap, "%s is encrypted; write a plain copy for signing (openssl pkey "
                               "-in %s -out plain.pem) and keep it as safe",
                     path, path);
        else if (kind == FOTA_PEM_PUBLIC)
            snprintf(err, cap, "%s is a public key; signing needs the private key (the public "
                               "one is the product's --signing-key)",
                     path);
        else
            snprintf(err, cap, "%s is not a PEM private key", path);
        return FOTA_EINVAL;
    }
    if (EVP_PKEY_get_base_id(*key) != EVP_PKEY_RSA) {
        snprintf(err, cap, "%s is not an RSA key (the core verifies RSA signatures)", path);
        EVP_PKEY_free(*key);
        *key = NULL;
        return FOTA_ECONFIG;
    }
    return 0;
}

/* PKCS#1 v1.5 over the SHA-256 DigestInfo of in: `openssl dgst -sha256 -sign`. */
static int sign_standard(EVP_PKEY *key, const uint8_t *in, size_t len, uint8_t *sig,
                         size_t *siglen)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok;

    if (!md)
        return 0;
    ok = EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, key) == 1 &&
         EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1 &&
         EVP_DigestSign(md, sig, siglen, in, len) == 1;
    EVP_MD_CTX_free(md);
    return ok;
}

/* PKCS#1 v1.5 type 1 around the bare SHA-256 of in: core 2.5's form. */
static int sign_legacy(EVP_PKEY *key, const uint8_t *in, size_t len, uint8_t *sig,
                       size_t *siglen)
{
    uint8_t digest[32];
    unsigned dlen = 0;
    EVP_PKEY_CTX *pctx;
    int ok;

    if (EVP_Digest(in, len, digest, &dlen, EVP_sha256(), NULL) != 1 || dlen != sizeof(digest))
        return 0;
    pctx = EVP_PKEY_CTX_new(key, NULL);
    if (!pctx)
        return 0;
    ok = EVP_PKEY_sign_init(pctx) == 1 &&
         EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1 &&
         EVP_PKEY_sign(pctx, sig, siglen, digest, sizeof(digest)) == 1;
    EVP_PKEY_CTX_free(pctx);
    return ok;
}

int fota_cli_sign(EVP_PKEY *key, enum fota_cli_sign_form form, const uint8_t *in, size_t len,
                  uint8_t **out, size_t *out_len, char *err, size_t cap)
{
    size_t siglen = (size_t)EVP_PKEY_get_size(key);
    uint8_t *buf;
    int ok;

    *out = NULL;
    *out_len = 0;
    if (siglen == 0 || siglen > 1024 || len > SIZE_MAX - siglen - 4) {
        snprintf(err, cap, "the key's signature length (%zu bytes) is not one a device takes",
                 siglen);
        return FOTA_EIO;
    }
    buf = malloc(len + siglen + 4);
    if (!buf) {
        snprintf(err, cap, "out of memory");
        return FOTA_ENOMEM;
    }
    if (len)
        memcpy(buf, in, len);
    ok = form == FOTA_CLI_SIGN_LEGACY ? sign_legacy(key, in, len, buf + len, &siglen)
                                      : sign_standard(key, in, len, buf + len, &siglen);
    if (!ok) {
        unsigned long e = ERR_get_error();
        char why[256];

        ERR_error_string_n(e, why, sizeof(why));
        ERR_clear_error();
        snprintf(err, cap, "OpenSSL could not sign (%s)", e ? why : "no reason given");
        free(buf);
        return FOTA_EIO;
    }
    buf[len + siglen] = (uint8_t)(siglen & 0xff);
    buf[len + siglen + 1] = (uint8_t)(siglen >> 8 & 0xff);
    buf[len + siglen + 2] = (uint8_t)(siglen >> 16 & 0xff);
    buf[len + siglen + 3] = (uint8_t)(siglen >> 24 & 0xff);
    *out = buf;
    *out_len = len + siglen + 4;
    return 0;
}
