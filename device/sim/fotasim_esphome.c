/* fotasim_esphome.c - ESPHome's update-component manifest (§9.3) and the
 * join of its ota.path to the manifest URL. Pure. The device side is
 * fotasim_esphome_dev.c. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "fota_str.h"
#include "fotasim_esphome.h"

/* ---- pure ---- */

static int json_str_field(json_t *o, const char *key, char *out, size_t cap)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v && fota_str_copy(out, cap, v) < cap ? 0 : -1;
}

int fotasim_esphome_manifest(const char *json, size_t len, struct fotasim_manifest *m,
                             const char **why)
{
    json_t *root = json_loadb(json, len, 0, NULL), *builds, *b, *ota;
    size_t i;
    int rc = -1;

    memset(m, 0, sizeof(*m));
    *why = "not a JSON object";
    if (!json_is_object(root))
        goto out;
    *why = "name, version and builds are required";
    builds = json_object_get(root, "builds");
    if (!json_is_string(json_object_get(root, "name")) ||
        json_str_field(root, "version", m->version, sizeof(m->version)) < 0 || !json_is_array(builds))
        goto out;
    json_array_foreach(builds, i, b) {
        const char *fam = json_string_value(json_object_get(b, "chipFamily"));
        if (!fam) {
            *why = "a build without chipFamily";
            goto out;
        }
        if (strcmp(fam, "ESP8266") != 0)
            continue;
        ota = json_object_get(b, "ota");
        *why = "the ESP8266 build has no ota.path and ota.md5";
        if (!json_is_object(ota) || json_str_field(ota, "path", m->path, sizeof(m->path)) < 0 ||
            json_str_field(ota, "md5", m->md5, sizeof(m->md5)) < 0)
            goto out;
        rc = 0;
        goto out;
    }
    *why = "no build for ESP8266";
out:
    json_decref(root);
    return rc;
}

int fotasim_esphome_join(const char *manifest_url, const char *path, char *out, size_t cap)
{
    size_t n;
    if (strstr(path, "http"))
        return fota_str_copy(out, cap, path) < cap ? 0 : -1;
    if (path[0] == '/') {
        const char *slash = strlen(manifest_url) > 8 ? strchr(manifest_url + 8, '/') : NULL;
        n = slash ? (size_t)(slash - manifest_url) : strlen(manifest_url);
    } else {
        const char *last = strrchr(manifest_url, '/');
        n = last ? (size_t)(last - manifest_url) + 1 : 0;
    }
    if (n + strlen(path) + 1 > cap)
        return -1;
    memcpy(out, manifest_url, n);
    fota_str_copy(out + n, cap - n, path);
    return 0;
}

