/* fotasim_ardsk.h - the sketches a fota-sim Arduino-core device runs: a
 * plain sketch that calls ESPhttpUpdate.update(client, url, version) at
 * boot and every --checkin-interval (fotasim_ardsk.c), Tasmota
 * (fotasim_tasmota.c) and ESPHome (fotasim_esphome.c). */
#ifndef FOTASIM_ARDSK_H
#define FOTASIM_ARDSK_H

#include <stddef.h>

#include "fotasim_ard.h"

extern const struct fotasim_sketch fotasim_ardsk_checkin;
extern const struct fotasim_sketch fotasim_tasmota_dev_sketch;
extern const struct fotasim_sketch fotasim_esphome_dev_sketch;

/* --url with the simulator's placeholders for device d: {index} (decimal)
 * and {mac} (12 lower-case hex digits). Returns 0 or -1 (does not fit). */
int fotasim_ardsk_url(const struct fotasim_dev *d, const char *tmpl, char *out, size_t cap);
/* The same, but a URL that does not fit fails the device ("OPTION does not
 * fit", option being the flag that gave tmpl) and returns -1. */
int fotasim_ardsk_url_or_fail(struct fotasim_dev *d, const char *option, const char *tmpl,
                              char *out, size_t cap);
/* The device reached the server (ok) or failed to: without --upgrade-to,
 * done or failed (reason); with it, done once it reached the server on
 * the target, failed after --max-attempts failures in a row. */
void fotasim_ardsk_settle(struct fotasim_dev *d, int ok, const char *reason);

#endif
