/* arduino_hdr.h - the x-ESP8266-* request headers ESPhttpUpdate sends with
 * every update request (reference arduino-ota §2.1), parsed into plain data.
 * Pure: no I/O, no allocation, no logging; fed one header at a time (from
 * evhttp) or a whole header block (tests, fuzzer). */
#ifndef FOTA_ARDUINO_HDR_H
#define FOTA_ARDUINO_HDR_H

#include <stddef.h>
#include <stdint.h>

#define FOTA_ARDUINO_HDR_VERSION_MAX 64   /* version value incl. NUL (a release version) */
#define FOTA_ARDUINO_HDR_SDK_MAX     48   /* "2.2.2-dev(38a443e)" and the like, incl. NUL */
#define FOTA_ARDUINO_HDR_LINE_MAX    8192 /* a header line in parse_block */
#define FOTA_ARDUINO_MAC_TEXT        18   /* "DE:BA:7A:B1:E0:42" + NUL */

/* Bits of struct fota_arduino_hdrs.seen / .bad, one per header. */
#define FOTA_ARDUINO_H_CHIP_ID     0x001u
#define FOTA_ARDUINO_H_STA_MAC     0x002u
#define FOTA_ARDUINO_H_AP_MAC      0x004u
#define FOTA_ARDUINO_H_FREE_SPACE  0x008u
#define FOTA_ARDUINO_H_SKETCH_SIZE 0x010u
#define FOTA_ARDUINO_H_SKETCH_MD5  0x020u
#define FOTA_ARDUINO_H_CHIP_SIZE   0x040u
#define FOTA_ARDUINO_H_SDK_VERSION 0x080u
#define FOTA_ARDUINO_H_MODE        0x100u
#define FOTA_ARDUINO_H_VERSION     0x200u

/* x-ESP8266-mode */
enum fota_arduino_mode {
    FOTA_ARDUINO_MODE_NONE = 0,  /* header absent */
    FOTA_ARDUINO_MODE_SKETCH,    /* update() */
    FOTA_ARDUINO_MODE_SPIFFS,    /* updateFS() / updateSpiffs() */
    FOTA_ARDUINO_MODE_VERSION,   /* core master's getAvailableVersion() */
    FOTA_ARDUINO_MODE_OTHER
};

/* What the headers say. A field is set only when its bit is in seen and not
 * in bad; a malformed header leaves it zero/empty. */
struct fota_arduino_hdrs {
    unsigned seen;                    /* FOTA_ARDUINO_H_* present */
    unsigned bad;                     /* present but malformed (or too long) */
    uint32_t chip_id;
    uint8_t sta_mac[6];
    uint8_t ap_mac[6];
    uint32_t free_space;              /* bytes */
    uint32_t sketch_size;             /* bytes, absolute (eboot included) */
    uint32_t chip_size;               /* physical flash, bytes */
    char sketch_md5[33];              /* 32 lower-case hex (case folded) */
    char sdk_version[FOTA_ARDUINO_HDR_SDK_MAX];
    enum fota_arduino_mode mode;
    char version[FOTA_ARDUINO_HDR_VERSION_MAX]; /* as sent (Tasmota: "14.4.1(release-tasmota)") */
};

void fota_arduino_hdrs_init(struct fota_arduino_hdrs *h);

/* Feeds one header: name[0, nlen) compared case-insensitively, value[0,
 * vlen) trimmed of spaces and tabs at both ends. A repeated header replaces
 * the earlier one. Returns 1 when the name is one of the x-ESP8266-* headers
 * above, 0 otherwise (h unchanged). Numbers: decimal digits only, at most
 * 2^32 - 1; MACs: six hex pairs with colons; md5: 32 hex; text: printable
 * ASCII within its maximum. */
int fota_arduino_hdrs_feed(struct fota_arduino_hdrs *h, const char *name, size_t nlen,
                           const char *value, size_t vlen);

/* Parses a header block: "Name: value" lines ending in LF or CR LF, up to
 * and including the empty line that ends it; every line goes to _feed.
 * Returns the bytes consumed (> 0), FOTA_EAGAIN when the empty line has not
 * come yet, or FOTA_EPROTO for a line without a colon at index > 0 or longer
 * than FOTA_ARDUINO_HDR_LINE_MAX. */
int fota_arduino_hdrs_parse_block(struct fota_arduino_hdrs *h, const char *buf, size_t len);

/* 1 when the request identifies a device: a well-formed x-ESP8266-STA-MAC. */
int fota_arduino_hdrs_is_device(const struct fota_arduino_hdrs *h);

/* "DE:BA:7A:B1:E0:42" (upper case, as WiFi.macAddress() prints it). */
void fota_arduino_mac_format(const uint8_t mac[6], char out[FOTA_ARDUINO_MAC_TEXT]);

/* Parses that form (hex in any case) into mac. Returns 0 or FOTA_EINVAL. */
int fota_arduino_mac_parse(const char *s, size_t len, uint8_t mac[6]);

/* "sketch", "spiffs", "version", "other", "" for NONE. */
const char *fota_arduino_mode_name(enum fota_arduino_mode mode);

#endif
