/* arduino_sig.c - the core's signed-update trailer (payload || signature ||
 * uint32_le(length), §7.2) checked with OpenSSL the way the device's BearSSL
 * does: RSA PKCS#1 v1.5 type 1, recovered and compared against the SHA-256 of
 * the payload as a DigestInfo (cores >= 2.6) or bare (cores 2.5.x). fotad
 * holds only the public key. */
#include "arduino_file.h"

#include <string.h>

#include <openssl/decoder.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "fota_err.h"
#include "pem.h"

/* DigestInfo prefixes for SHA-256: with the NULL parameters (what openssl
 * dgst -sign writes) and without them (BearSSL accepts both). */
static const uint8_t di_null[19] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                    0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
static const uint8_t di_bare[17] = {0x30, 0x2f, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48,
                                    0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x04, 0x20};

const char *fota_arduino_sig_form_name(enum fota_arduino_sig_form form)
{
    switch (form) {
    case FOTA_ARDUINO_SIG_STANDARD: return "standard";
    case FOTA_ARDUINO_SIG_LEGACY: return "legacy";
    default: return "none";
    }
}

int fota_arduino_sig_split(const uint8_t *buf, size_t len, size_t *payload_len,
                           const uint8_t **sig, size_t *sig_len)
{
    uint32_t n;

    if (len < 4)
        return FOTA_ENOENT;
    n = (uint32_t)buf[len - 4] | (uint32_t)buf[len - 3] << 8 | (uint32_t)buf[len - 2] << 16 |
        (uint32_t)buf[len - 1] << 24;
    if (n < FOTA_ARDUINO_SIG_MIN || n > FOTA_ARDUINO_SIG_MAX || (size_t)n > len - 4)
        return FOTA_ENOENT;
    *payload_len = len - 4 - n;
    *sig = buf + *payload_len;
    *sig_len = n;
    return 0;
}

/* An RSA public key from PEM, or NULL with *reason. */
static EVP_PKEY *load_key(const char *pem, size_t pem_len, const char **reason)
{
    OSSL_DECODER_CTX *dctx;
    EVP_PKEY *pkey = NULL;
    const unsigned char *p = (const unsigned char *)pem;
    size_t left = pem_len;

    if (!pem || pem_len == 0) {
        *reason = "signing_key is empty";
        return NULL;
    }
    if (fota_pem_kind(pem, pem_len) >= FOTA_PEM_PRIVATE) {
        *reason = "signing_key holds a private key: give fotad the public key "
                  "(openssl rsa -in private.key -pubout)";
        return NULL;
    }
    dctx = OSSL_DECODER_CTX_new_for_pkey(&pkey, "PEM", NULL, "RSA",
                                         OSSL_KEYMGMT_SELECT_PUBLIC_KEY, NULL, NULL);
    if (!dctx) {
        *reason = "cannot read PEM keys (OpenSSL decoder unavailable)";
        return NULL;
    }
    if (OSSL_DECODER_from_data(dctx, &p, &left) != 1 || !pkey) {
        OSSL_DECODER_CTX_free(dctx);
        EVP_PKEY_free(pkey);
        *reason = "signing_key is not an RSA public key in PEM form";
        return NULL;
    }
    OSSL_DECODER_CTX_free(dctx);
    return pkey;
}

int fota_arduino_sig_key_check(const char *pem, size_t pem_len, unsigned *bits,
                               const char **reason)
{
    EVP_PKEY *pkey = load_key(pem, pem_len, reason);

    if (!pkey)
        return FOTA_ECONFIG;
    if (bits)
        *bits = (unsigned)EVP_PKEY_get_bits(pkey);
    EVP_PKEY_free(pkey);
    return 0;
}

int fota_arduino_sig_verify(const char *pem, size_t pem_len, const uint8_t *payload,
                            size_t payload_len, const uint8_t *sig, size_t sig_len,
                            enum fota_arduino_sig_form *form, const char **reason)
{
    EVP_PKEY *pkey;
    EVP_PKEY_CTX *ctx = NULL;
    uint8_t rec[FOTA_ARDUINO_SIG_MAX], md[32];
    size_t rlen = sizeof rec;
    unsigned mdlen = 0;
    int rc = FOTA_EAUTH;

    *form = FOTA_ARDUINO_SIG_NONE;
    pkey = load_key(pem, pem_len, reason);
    if (!pkey)
        return FOTA_ECONFIG;
    if (sig_len != (size_t)EVP_PKEY_get_size(pkey)) {
        *reason = "signature length is not the key's modulus length (the device refuses it)";
        rc = FOTA_EINVAL;
        goto out;
    }
    if (EVP_Digest(payload, payload_len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        *reason = "SHA-256 failed";
        rc = FOTA_EIO;
        goto out;
    }
    ctx = EVP_PKEY_CTX_new(pkey, NULL);
    if (!ctx || EVP_PKEY_verify_recover_init(ctx) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1) {
        *reason = "RSA verification could not start";
        rc = FOTA_EIO;
        goto out;
    }
    *reason = "signature does not verify with signing_key (tampered file or another key)";
    if (EVP_PKEY_verify_recover(ctx, rec, &rlen, sig, sig_len) != 1)
        goto out;
    if (rlen == sizeof di_null + 32 && memcmp(rec, di_null, sizeof di_null) == 0 &&
        memcmp(rec + sizeof di_null, md, 32) == 0)
        *form = FOTA_ARDUINO_SIG_STANDARD;
    else if (rlen == sizeof di_bare + 32 && memcmp(rec, di_bare, sizeof di_bare) == 0 &&
             memcmp(rec + sizeof di_bare, md, 32) == 0)
        *form = FOTA_ARDUINO_SIG_STANDARD;
    else if (rlen == 32 && memcmp(rec, md, 32) == 0)
        *form = FOTA_ARDUINO_SIG_LEGACY;
    else
        goto out;
    *reason = NULL;
    rc = 0;
out:
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    return rc;
}
