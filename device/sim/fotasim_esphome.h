/* fotasim_esphome.h - the pure parts of fota-sim's ESPHome (§9): the
 * manifest of the update component and the join of its ota.path. */
#ifndef FOTASIM_ESPHOME_H
#define FOTASIM_ESPHOME_H

#include <stddef.h>

struct fotasim_manifest {
    char version[64];
    char path[256];
    char md5[64];
};

/* Parses a manifest (§9.3): name, version and builds are required; builds
 * are searched in order, a build without chipFamily before the one for
 * "ESP8266" aborts; that build needs ota.path and ota.md5 (strings).
 * Returns 0, or -1 with why. */
int fotasim_esphome_manifest(const char *json, size_t len, struct fotasim_manifest *m,
                             const char **why);
/* ota.path against the manifest URL: containing "http" anywhere it is used
 * as it is; starting with '/' it follows scheme://host[:port] (everything
 * before the first '/' after index 8); else the manifest URL up to its last
 * '/'. Returns 0 or -1 (does not fit). */
int fotasim_esphome_join(const char *manifest_url, const char *path, char *out, size_t cap);

#endif
