/* hex.h - lower-case hexadecimal text of bytes: digests (SHA-256, MD5) and
 * keys as fotad stores and shows them, fotactl prints them and fota-sim
 * compares them. Portable C99, no allocation. */
#ifndef FOTA_HEX_H
#define FOTA_HEX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Writes the n bytes of in as 2 * n lower-case hex digits and a NUL into
 * out, which holds at least 2 * n + 1 bytes. in may be NULL when n is 0. */
void fota_hex_encode(const uint8_t *in, size_t n, char *out);

#ifdef __cplusplus
}
#endif

#endif
