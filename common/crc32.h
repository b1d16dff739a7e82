/* crc32.h - the CRC-32 that ESP8266 OTA images carry (zlib/IEEE 802.3 CRC-32,
 * reflected polynomial 0xEDB88320) and the way gen_appbin/esptool store it.
 * Portable C99, no OS calls; shared by fotad, fotactl and libfotadev. */
#ifndef FOTA_CRC32_H
#define FOTA_CRC32_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* zlib crc32() semantics: start with crc = 0, feed the data in any number of
 * pieces, the result is the finished CRC (pre- and post-inversion are done
 * inside). fota_crc32_update(0, "123456789", 9) == 0xCBF43926.
 * data may be NULL when len is 0. */
uint32_t fota_crc32_update(uint32_t crc, const void *data, size_t len);

/* The value an ESP8266 image stores (little-endian) in its last 4 bytes,
 * given the zlib CRC-32 of everything before them (protocol ref §5.1):
 * (c & 0x80000000) ? ~c : c + 1. Equal to the device-side abs() check. */
uint32_t fota_esp_crc_stored(uint32_t zlib_crc);

#ifdef __cplusplus
}
#endif

#endif
