/* arduino.h - the arduino module (fota_arduino_module, server.h): products
 * of platform "arduino" whose devices run the ESP8266 Arduino core
 * (ESPhttpUpdate sketches, Tasmota, ESPHome) and pull their firmware over
 * HTTP from /v1/arduino/PRODUCT_KEY/[d/DEVICE_NAME/]FILE. The module owns
 * those routes and GET|PUT /v1/products/ID/arduino (the fleet settings).
 *
 * The REST catalog (server/api/) calls the functions below for what it
 * shows and accepts on arduino products; each is a no-op or a plain "not
 * arduino" answer for other products. Main loop (API handlers), except
 * where noted. docs/arduino.md; reference arduino-ota. */
#ifndef FOTA_ARDUINO_H
#define FOTA_ARDUINO_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct fota_server;
struct fota_mp_part;
struct fota_req;

/* The module (server.h), started after the http module. */
extern const struct fota_module fota_arduino_module;

/* ---- products */

/* Reads "platform" ("nonos", the default, or "arduino") and, for arduino,
 * the options gzip (bool), arduino_core ("2.4" ... "3.1"), flash_mode
 * ("qio"|"qout"|"dio"|"dout", absent: the first release's), signing_key
 * (RSA public key, PEM), checkin_interval and confirm_after (seconds) from
 * a product-creation body into *out (product_id left 0). Returns 0 with
 * *is_arduino set, or an HTTP status (400, 422) with a sentence in reason. */
int fota_arduino_product_parse(const json_t *body, struct fota_arduino_product *out,
                               int *is_arduino, char *reason, size_t cap);

/* The admin key, then the settings of the arduino product the route's first
 * capture names (GET|PUT /v1/products/ID/arduino and /mqtt): 0 with *out
 * (out->product_id is the product's id), or non-zero after replying (401,
 * 403, 404 "not an arduino product", the store's error). */
int fota_arduino_admin_product(struct fota_req *r, struct fota_arduino_product *out);

/* Adds "platform" and, for an arduino product, its settings to a product's
 * JSON view. */
void fota_arduino_product_json(struct fota_server *srv, int64_t product_id, json_t *product);

/* ---- devices */

/* Adds an arduino device's last report ("arduino": {...}: MACs, chip id,
 * sketch MD5 and size, free space, chip size, SDK and version strings,
 * last check-in, the upgrade being served) to its JSON view, and sets
 * "online" (a check-in within the product's checkin_interval). */
void fota_arduino_device_json(struct fota_server *srv, const struct fota_device *d,
                              json_t *device);

/* ---- what devices say over MQTT (server/mqtt/), in store jobs (they call
 * the store): never on a loop */

/* The device of product_id with STA MAC mac ("5C:CF:7F:B1:E0:42"), found
 * as a check-in finds it or registered as a check-in would (named by its
 * MAC) when new: a device seen over MQTT and its HTTP check-ins are one.
 * 0 with *device_id, or the store's error. */
int fota_arduino_mqtt_device(struct fota_server *srv, int64_t product_id, const char *mac,
                             int64_t *device_id);
/* The device reported the version it runs (Tasmota's INFO1 after a boot,
 * or its answer to Status 2: "14.4.1(release-tasmota)"). With an upgrade
 * open (served and not judged yet, or an open sys_upgrade command) whose
 * version it is up to the parenthesis, the upgrade succeeded, as at a
 * confirming check-in; a minimal build is a step; any other version is
 * recorded quietly as the device's. Returns FOTA_ARDUINO_OUT_NONE,
 * _SUCCESS or _STEP (arduino_pull.h). */
int fota_arduino_mqtt_version(struct fota_server *srv, int64_t device_id, const char *version);
/* Tasmota said its upgrade loop failed ("Failed <reason>" on
 * stat/TOPIC/UPGRADE): an open upgrade fails with that reason. 1 when one
 * was open. */
int fota_arduino_mqtt_failed(struct fota_server *srv, int64_t device_id, const char *text);
/* 1 when the device has an upgrade open. */
int fota_arduino_upgrade_open(struct fota_server *srv, int64_t device_id);

/* ---- releases */

/* Adds each arduino file's facts (MD5 served, gzip, the image's size,
 * MD5s, flash mode and size, signature form) and the gzip saving to a
 * release's JSON view; files without facts are left as they are. */
void fota_arduino_rom_json(struct fota_server *srv, const struct fota_rom *rom, json_t *view);

/* An arduino release being uploaded: the files fotad will store (derived:
 * the gzip container, the inflated image) and their facts. */
struct fota_arduino_release;

/* 1 when product_id is an arduino product (its uploads go through
 * fota_arduino_release_prepare), 0 otherwise. */
int fota_arduino_is_product(struct fota_server *srv, int64_t product_id);

/* Takes the file parts of an upload for an arduino product (firmware.bin
 * required, firmware-minimal.bin optional, each plain or gzip, named by
 * the part's file name or field name) with a copy of the product's
 * settings. Main loop; cheap: the files themselves are checked by
 * fota_arduino_release_check. Returns 0 with *out (free with
 * fota_arduino_release_free), or an HTTP status (404, 422, 400) with a
 * sentence in reason. The parts' data must stay alive until the release
 * is freed. */
int fota_arduino_release_prepare(struct fota_server *srv, int64_t product_id,
                                 const struct fota_mp_part *const *parts, size_t nparts,
                                 struct fota_arduino_release **out, char *reason, size_t cap);
/* Checks the files against the settings prepare copied (inflating,
 * compressing at the best level, verifying signatures, hashing: the CPU of
 * an upload) and derives the files fotad will store. Touches only ar: any
 * thread (the api module runs it on its upload writer thread, so a large
 * upload does not stall the main loop). Returns 0, or 422 with a sentence
 * naming the file in reason. */
int fota_arduino_release_check(struct fota_arduino_release *ar, char *reason, size_t cap);
/* After fota_arduino_release_check: the files to store: count, then each
 * as a part (data, len) and a name. */
size_t fota_arduino_release_nfiles(const struct fota_arduino_release *ar);
const struct fota_mp_part *fota_arduino_release_part(const struct fota_arduino_release *ar,
                                                     size_t i);
const char *fota_arduino_release_name(const struct fota_arduino_release *ar, size_t i);
/* Before the release's store transaction (the blobs are durable): records
 * the files' facts and, the first time, the product's flash mode. 0 or the
 * store's error. */
int fota_arduino_release_commit(struct fota_server *srv, const struct fota_arduino_release *ar);
/* NULL-safe. */
void fota_arduino_release_free(struct fota_arduino_release *ar);

#endif
