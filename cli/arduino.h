/* arduino.h - what fotactl knows about arduino products (ESP8266 Arduino
 * core: sketches, Tasmota, ESPHome; docs/arduino.md): the fleet options of
 * `product create --platform arduino` and `product arduino` as the REST
 * body, the names release files are uploaded under (firmware.bin,
 * firmware-minimal.bin), the local check of a file before a byte is sent,
 * and the gzip container for a product that serves gzip. No output: a
 * failure comes back as one sentence in err. */
#ifndef FOTA_CLI_ARDUINO_H
#define FOTA_CLI_ARDUINO_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "args.h"

#define FOTA_CLI_ARDUINO_SECONDS_MAX (30 * 86400)   /* the server's limit for intervals */

/* Adds the fleet options a holds to body (REST names: gzip, arduino_core,
 * flash_mode, checkin_interval, confirm_after), each checked for shape:
 * --gzip / --no-gzip (not both), --arduino-core 2.4|2.5|2.6|2.7|3.0|3.1 (a
 * third ".N" is allowed), --flash-mode qio|qout|dio|dout|none (none: the
 * next release's), --checkin-interval 1s..30d and --confirm-after 0..30d
 * (seconds, or a number with s, m, h or d). Options the command's table
 * lacks are never set. --signing-key is the caller's (a file:
 * fota_cli_arduino_signing_key). Returns how many options were added
 * (>= 0), or FOTA_EINVAL with err. */
int fota_cli_arduino_settings(const struct fota_cli_args *a, json_t *body, char *err, size_t cap);

/* Parses an interval: "90", "90s", "15m", "1h", "2d" into *seconds, within
 * lo..hi. Returns 0 or FOTA_EINVAL. */
int fota_cli_arduino_seconds(const char *s, long lo, long hi, long *seconds);

/* Adds pem (len bytes, the text of --signing-key FILE) as signing_key to
 * body. A private key is refused before anything is sent (it must never
 * leave the machine), and so is a text without a PEM public key. Returns 0
 * or FOTA_EINVAL with err naming path. */
int fota_cli_arduino_signing_key(const char *path, const char *pem, size_t len, json_t *body,
                                 char *err, size_t cap);

/* 1 when data starts as a gzip container does (1f 8b). */
int fota_cli_arduino_is_gzip(const uint8_t *data, size_t len);

/* The name a release file is uploaded under: "firmware-minimal.bin" when
 * the base name of path contains "minimal" (Tasmota's two-step), else
 * "firmware.bin"; ".gz" appended when data is a gzip container. */
void fota_cli_arduino_file_name(const char *path, const uint8_t *data, size_t len, char *out,
                                size_t cap);

/* The local check before an upload: a gzip container starts 1f 8b (fotad
 * inflates it and checks the image inside); any other file must be an
 * Arduino image as fotad takes it (common/arduino_img.h; a signature
 * trailer is bytes after the sketch). Returns 0, or the parser's FOTA_E*
 * with a sentence naming the offset in reason. */
int fota_cli_arduino_check(const uint8_t *data, size_t len, char *reason, size_t cap);

/* One gzip member at the best level (the container eboot inflates, not a
 * raw zlib stream; no name, time 0: the same bytes give the same file).
 * *out is malloc'ed (the caller frees). Returns 0, FOTA_ENOMEM or FOTA_EIO. */
int fota_cli_arduino_gzip(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len);

#endif
