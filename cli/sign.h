/* sign.h - the signature trailer of an Arduino-core release file (reference
 * arduino-ota §7.2): payload || signature || uint32_le(len(signature)), made
 * with the fleet's RSA private key exactly as `openssl dgst -sha256 -sign
 * private.pem` makes the signature (PKCS#1 v1.5 over the SHA-256
 * DigestInfo: deterministic, so the bytes are the same) or in core 2.5's
 * legacy form (PKCS#1 v1.5 type 1 around the bare digest, what `signing.py
 * --legacy` writes). The private key stays on the operator's machine: fotad
 * holds only the public one. No output; a failure comes back as one
 * sentence in err. */
#ifndef FOTA_CLI_SIGN_H
#define FOTA_CLI_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

enum fota_cli_sign_form {
    FOTA_CLI_SIGN_STANDARD = 0,   /* cores >= 2.6 (openssl dgst -sha256 -sign) */
    FOTA_CLI_SIGN_LEGACY          /* cores 2.5.x */
};

/* Reads an RSA private key from the PEM file path (PKCS#8 "PRIVATE KEY" or
 * PKCS#1 "RSA PRIVATE KEY"; an encrypted key is refused: nobody is asked
 * for a pass phrase). Returns 0 with *key (EVP_PKEY_free it), or
 * FOTA_ENOENT (cannot read), FOTA_EINVAL (not a PEM private key,
 * encrypted), FOTA_ECONFIG (not RSA), with err. */
int fota_cli_sign_key_load(const char *path, EVP_PKEY **key, char *err, size_t cap);

/* Signs in[0, len) with key in the given form: *out (malloc'ed, the caller
 * frees) = in || signature || uint32_le(signature length), *out_len bytes.
 * Returns 0, FOTA_ENOMEM or FOTA_EIO (OpenSSL refused), with err. */
int fota_cli_sign(EVP_PKEY *key, enum fota_cli_sign_form form, const uint8_t *in, size_t len,
                  uint8_t **out, size_t *out_len, char *err, size_t cap);

#endif
