/* arduino_pull.h - the decisions behind fotad's answers to Arduino-core
 * devices (ESPhttpUpdate, Tasmota, ESPHome), free of I/O: which stored file
 * answers which URL, whether the device already runs its target (304), what
 * the device will do with a 200 (its own refusal checks), when a check-in
 * confirms or fails an upgrade, and ESPHome's manifest. The module
 * (arduino_module.c) feeds them from the store and the request.
 * Rules and reasons: reference arduino-ota §4, §6, §8, §9, §10; docs/arduino.md. */
#ifndef FOTA_ARDUINO_PULL_H
#define FOTA_ARDUINO_PULL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "arduino_hdr.h"
#include "store.h"

/* What a device URL asks for (its last segment). The first four are also
 * the names of a release's stored files. */
enum fota_arduino_kind {
    FOTA_ARDUINO_K_BIN = 0,       /* firmware.bin */
    FOTA_ARDUINO_K_BIN_GZ,        /* firmware.bin.gz */
    FOTA_ARDUINO_K_MIN,           /* firmware-minimal.bin (Tasmota's two-step) */
    FOTA_ARDUINO_K_MIN_GZ,        /* firmware-minimal.bin.gz */
    FOTA_ARDUINO_K_MD5,           /* firmware.md5 (ESPHome md5_url) */
    FOTA_ARDUINO_K_MANIFEST,      /* manifest.json (ESPHome update) */
    FOTA_ARDUINO_K_FILES = FOTA_ARDUINO_K_MD5 /* the stored kinds */
};

/* The kind of a URL's file name, or -1. */
int fota_arduino_kind_of(const char *name);
/* The file name of a kind ("firmware.bin", ...). */
const char *fota_arduino_kind_name(enum fota_arduino_kind k);

/* One stored file of a release, with the facts of its bytes. */
struct fota_arduino_rel_file {
    int present;
    int64_t file_id;
    int64_t size;
    char sha256[65];
    struct fota_arduino_blob facts;
};

/* A release as the device endpoints see it. */
struct fota_arduino_rel {
    int64_t rom_id;
    char version[FOTA_VERSION_MAX];
    struct fota_arduino_rel_file f[FOTA_ARDUINO_K_FILES];
};

/* The device facts a decision uses, from x-ESP8266-* headers (NULL or
 * seen == 0 for ESPHome and anonymous requests). */
int fota_arduino_hdr_has(const struct fota_arduino_hdrs *h, unsigned bit);

/* Which stored file answers a request for kind k (an image kind): on a
 * gzip product firmware.bin and firmware.bin.gz serve the gzip container, the
 * -minimal names the minimal image; a .gz name without a gzip file is 404.
 * A gzip file that eboot could not inflate in place on this device (§6.1,
 * from free-space and sketch-size) gives way to the plain file. Returns the
 * stored kind, -1 (404: the release has no such file), or -2 (only a gzip
 * file that does not fit exists: refuse). */
int fota_arduino_pick(const struct fota_arduino_rel *rel, enum fota_arduino_kind k, int gzip_product,
                      const struct fota_arduino_hdrs *h);

/* 1 when the device already runs rel's image: its x-ESP8266-sketch-md5 is
 * one of the four mode-byte variants of the image (§6.3), or, without an
 * MD5, its x-ESP8266-version is rel's version. */
int fota_arduino_runs(const struct fota_arduino_rel *rel, const struct fota_arduino_hdrs *h);

/* The first 4 bytes of a stored file as the device checks them (byte 0 and
 * byte 3's size code), rebuilt from its facts. */
void fota_arduino_head_of(const struct fota_arduino_blob *facts, uint8_t head[4]);

/* The answer to an image request. */
struct fota_arduino_answer {
    int status;                /* 200, 304, 404, or 409 (refused: see why) */
    int file;                  /* stored kind served with 200, else -1 */
    int verdict;               /* the device's own verdict on the 200 (enum fota_arduino_verdict) */
    int64_t send;              /* body bytes to send: the file's size, or its first
                                * bytes when the device will refuse it after them */
    const char *why;           /* static text for the log and messages, "" when plain */
};

/* Decides the answer to a request for image kind k of target release rel
 * (NULL: no release) on a product with the gzip option and core line core:
 * x-ESP8266-mode other than sketch: 304; the device runs rel: 304; no file:
 * 404; otherwise 200, with the device's predicted verdict (free-space and
 * chip-size known) and, when it will refuse (-100, -106, -107), only the
 * first 4 bytes to send: the real Content-Length goes out, and Tasmota's
 * -minimal step starts from that refusal (§8, §10.3). device: 1 when the
 * request identified a device (a 304 is its "no update"); anonymous and
 * ESPHome requests get 404 when there is no release. */
void fota_arduino_decide(const struct fota_arduino_rel *rel, enum fota_arduino_kind k,
                         int gzip_product, int core, const struct fota_arduino_hdrs *h,
                         int device, struct fota_arduino_answer *out);

/* What a check-in says about the upgrade a device was served. */
enum fota_arduino_outcome {
    FOTA_ARDUINO_OUT_NONE = 0,  /* nothing to record */
    FOTA_ARDUINO_OUT_SUCCESS,   /* it runs the target image (any mode byte) */
    FOTA_ARDUINO_OUT_STEP,      /* it runs the target's minimal image (Tasmota) */
    FOTA_ARDUINO_OUT_FAILED     /* still the old image confirm_after s after the download */
};

/* Judges a check-in of device a (its tracking fields) that reports h, with
 * target's and the minimal image's sketch MD5s (minimal may be NULL), at
 * now: the target's MD5 is a success; the MD5 it had when its download
 * completed, confirm_after s or more later, a failure (also when that was
 * the minimal image); the minimal image's otherwise a step. Without an MD5
 * the version header stands in (equal to a->target). */
enum fota_arduino_outcome fota_arduino_confirm(const struct fota_arduino_device *a,
                                               const struct fota_arduino_hdrs *h,
                                               const char target_md5[4][FOTA_ARDUINO_MD5_TEXT],
                                               const char minimal_md5[4][FOTA_ARDUINO_MD5_TEXT],
                                               int64_t now, int64_t confirm_after);

/* Where a device's target comes from, in order: its open upgrade command
 * (an RPC or a rollout), the version an explicit upgrade installed (its
 * pin) while the product's current release is still the one it was then,
 * the product's current release. */
enum fota_arduino_source {
    FOTA_ARDUINO_SRC_NONE = 0,      /* nothing: the product has no current release */
    FOTA_ARDUINO_SRC_COMMAND,
    FOTA_ARDUINO_SRC_PIN,
    FOTA_ARDUINO_SRC_CURRENT
};

/* Chooses the target version among cmd_version (the open upgrade
 * command's, "" none), pin_version/pin_current (the pin and the current
 * release when it was set) and current (the product's current release, ""
 * none); NULL counts as "". *out points at the chosen string ("" for
 * NONE); *lapsed is 1 when a pin exists but the current release moved since
 * (the caller forgets it). Returns the enum fota_arduino_source. */
int fota_arduino_target_of(const char *cmd_version, const char *pin_version,
                           const char *pin_current, const char *current, const char **out,
                           int *lapsed);

/* What a version reported over MQTT says (Tasmota's INFO1 or Status 2
 * Version: the release, then the build name in parentheses,
 * "14.4.1(release-tasmota)"). */
enum fota_arduino_vmatch {
    FOTA_ARDUINO_V_OTHER = 0,       /* another version */
    FOTA_ARDUINO_V_TARGET,          /* target's, up to the parenthesis (or whole) */
    FOTA_ARDUINO_V_MINIMAL          /* a minimal build (its parenthesis names "minimal") */
};
int fota_arduino_version_match(const char *reported, const char *target);
/* The version up to its parenthesis into out (cap bytes). */
void fota_arduino_version_base(const char *reported, char *out, size_t cap);

/* ESPHome's manifest (§9.3): name, version (the exact release string),
 * builds[0] = {chipFamily "ESP8266", ota {path "firmware.bin", md5, and
 * summary when not empty}}. Every value a JSON string. New reference. */
json_t *fota_arduino_manifest(const char *name, const char *version, const char *md5,
                              const char *summary);

#endif
