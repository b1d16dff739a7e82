/* pem.h - what kind of key a PEM text holds, read from its markers alone
 * (no decoding): fotactl refuses to send a private key as a product's
 * signing key and explains why a signing key does not load; fotad refuses
 * a private key in signing_key. Portable C99, no allocation. */
#ifndef FOTA_PEM_H
#define FOTA_PEM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum fota_pem_kind {
    FOTA_PEM_NONE = 0,     /* no key marker */
    FOTA_PEM_PUBLIC,       /* "-----BEGIN PUBLIC KEY-----" or "-----BEGIN RSA PUBLIC KEY-----" */
    FOTA_PEM_PRIVATE,      /* a "... PRIVATE KEY-----" marker (PKCS#8, PKCS#1, EC, ...) */
    FOTA_PEM_ENCRYPTED     /* a private key under a pass phrase ("ENCRYPTED" in the text) */
};

/* The kind of key in text[0, len) (NUL bytes are ordinary bytes here). A
 * private marker wins over a public one, so a file holding both counts as a
 * private key. text may be NULL when len is 0. */
enum fota_pem_kind fota_pem_kind(const char *text, size_t len);

#ifdef __cplusplus
}
#endif

#endif
