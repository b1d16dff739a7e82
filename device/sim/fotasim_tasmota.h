/* fotasim_tasmota.h - the pure parts of fota-sim's Tasmota (§8): the URL an
 * OTA attempt fetches. */
#ifndef FOTASIM_TASMOTA_H
#define FOTASIM_TASMOTA_H

#include <stddef.h>
#include <stdint.h>

/* GetOtaUrl: %04d -> chip id & 0x1fff, else %d -> the chip id. */
void fotasim_tasmota_get_ota_url(const char *otaurl, uint32_t chip_id, char *out, size_t cap);
/* The -minimal rewrite, in place: in the file name after the last '/', cut
 * at the last '-' (else at the first '.'), then "-minimal" + the type (the
 * name from its first '.'). */
void fotasim_tasmota_minimal_url(char *url, size_t cap);
/* The URL of the attempt whose counter (decremented before it) is *retry:
 * GetOtaUrl, the -minimal rewrite when ota_loader is set (not in a minimal
 * build), then below 5: ".gz" appended, or *retry forced to 1 when the URL
 * already holds ".gz" (case-insensitive). Returns 0. */
int fotasim_tasmota_attempt_url(const char *otaurl, uint32_t chip_id, int ota_loader, int minimal,
                                int *retry, char *out, size_t cap);

#endif
