/* sha256.h - SHA-256 (FIPS 180-4) in caller storage, no heap, no OS calls.
 * Used by the image codec (fota_fwimg_*) so the device and the server hash
 * firmware the same way. Streaming: init / update... / final. */
#ifndef FOTA_SHA256_H
#define FOTA_SHA256_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FOTA_SHA256_LEN 32

/* Hash state; treat the fields as private. Copyable (plain data). */
struct fota_sha256 {
    uint32_t h[8];
    uint64_t total;      /* bytes hashed so far */
    uint8_t buf[64];
    uint32_t buf_len;
};

void fota_sha256_init(struct fota_sha256 *c);
/* data may be NULL when len is 0. */
void fota_sha256_update(struct fota_sha256 *c, const void *data, size_t len);
/* Writes the 32-byte digest; the state must be re-initialised before reuse. */
void fota_sha256_final(struct fota_sha256 *c, uint8_t out[FOTA_SHA256_LEN]);
/* One shot. */
void fota_sha256(const void *data, size_t len, uint8_t out[FOTA_SHA256_LEN]);

#ifdef __cplusplus
}
#endif

#endif
