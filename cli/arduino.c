/* arduino.c - fotactl's side of arduino products (arduino.h): fleet
 * options into the REST body, upload names, the local image check and the
 * gzip container. */
#include "arduino.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "arduino_img.h"
#include "fota_err.h"
#include "pem.h"

static const char *const core_lines[] = { "2.4", "2.5", "2.6", "2.7", "3.0", "3.1", NULL };

/* "2.7" or "2.7.4" for a known line. */
static int core_ok(const char *s)
{
    for (size_t i = 0; core_lines[i]; i++) {
        if (strncmp(s, core_lines[i], 3) != 0)
            continue;
        if (s[3] == '\0')
            return 1;
        if (s[3] != '.' || !s[4])
            return 0;
        for (const char *c = s + 4; *c; c++)
            if (*c < '0' || *c > '9' || c - (s + 4) >= 3)
                return 0;
        return 1;
    }
    return 0;
}

int fota_cli_arduino_seconds(const char *s, long lo, long hi, long *seconds)
{
    char *end;
    long v, mul = 1;

    if (!s || *s < '0' || *s > '9')
        return FOTA_EINVAL;
    v = strtol(s, &end, 10);
    if (end[0] && end[1])
        return FOTA_EINVAL;
    switch (end[0]) {
    case '\0':
    case 's': break;
    case 'm': mul = 60; break;
    case 'h': mul = 3600; break;
    case 'd': mul = 86400; break;
    default: return FOTA_EINVAL;
    }
    if (v < 0 || v > hi / mul || v * mul < lo)
        return FOTA_EINVAL;
    *seconds = v * mul;
    return 0;
}

/* The option's value when the command's table has it and it was given. */
static const char *opt(const struct fota_cli_args *a, const char *name)
{
    return fota_cli_args_get(a, name);
}

int fota_cli_arduino_settings(const struct fota_cli_args *a, json_t *body, char *err, size_t cap)
{
    const char *s;
    long secs;
    int n = 0;

    if (opt(a, "gzip") && opt(a, "no-gzip")) {
        snprintf(err, cap, "give --gzip or --no-gzip, not both");
        return FOTA_EINVAL;
    }
    if (opt(a, "gzip") || opt(a, "no-gzip")) {
        json_object_set_new(body, "gzip", json_boolean(opt(a, "gzip") != NULL));
        n++;
    }
    if ((s = opt(a, "arduino-core"))) {
        if (!core_ok(s)) {
            snprintf(err, cap, "--arduino-core wants the core line the devices run: 2.4, 2.5, "
                               "2.6, 2.7, 3.0 or 3.1");
            return FOTA_EINVAL;
        }
        json_object_set_new(body, "arduino_core", json_string(s));
        n++;
    }
    if ((s = opt(a, "flash-mode"))) {
        if (strcmp(s, "none") == 0) {
            json_object_set_new(body, "flash_mode", json_null());
        } else if (fota_arduino_flash_mode_parse(s) >= 0) {
            json_object_set_new(body, "flash_mode",
                                json_string(fota_arduino_flash_mode_name(
                                    fota_arduino_flash_mode_parse(s))));
        } else {
            snprintf(err, cap, "--flash-mode wants qio, qout, dio, dout (the fleet's) or none "
                               "(the next release's)");
            return FOTA_EINVAL;
        }
        n++;
    }
    if ((s = opt(a, "checkin-interval"))) {
        if (fota_cli_arduino_seconds(s, 1, FOTA_CLI_ARDUINO_SECONDS_MAX, &secs) != 0) {
            snprintf(err, cap, "--checkin-interval wants 1s to 30d (seconds, or a number with "
                               "s, m, h or d)");
            return FOTA_EINVAL;
        }
        json_object_set_new(body, "checkin_interval", json_integer(secs));
        n++;
    }
    if ((s = opt(a, "confirm-after"))) {
        if (fota_cli_arduino_seconds(s, 0, FOTA_CLI_ARDUINO_SECONDS_MAX, &secs) != 0) {
            snprintf(err, cap, "--confirm-after wants 0 to 30d (seconds, or a number with s, "
                               "m, h or d)");
            return FOTA_EINVAL;
        }
        json_object_set_new(body, "confirm_after", json_integer(secs));
        n++;
    }
    return n;
}

int fota_cli_arduino_signing_key(const char *path, const char *pem, size_t len, json_t *body,
                                 char *err, size_t cap)
{
    enum fota_pem_kind kind = fota_pem_kind(pem, len);

    if (kind == FOTA_PEM_PRIVATE || kind == FOTA_PEM_ENCRYPTED) {
        snprintf(err, cap, "%s is a private key; the product takes the public one (openssl "
                           "pkey -in %s -pubout -out public.pem); nothing was sent",
                 path, path);
        return FOTA_EINVAL;
    }
    if (kind != FOTA_PEM_PUBLIC) {
        snprintf(err, cap, "%s is not a PEM public key (-----BEGIN PUBLIC KEY-----)", path);
        return FOTA_EINVAL;
    }
    json_object_set_new(body, "signing_key", json_stringn(pem, len));
    return 0;
}

int fota_cli_arduino_is_gzip(const uint8_t *data, size_t len)
{
    return len >= 2 && data[0] == 0x1f && data[1] == 0x8b;
}

void fota_cli_arduino_file_name(const char *path, const uint8_t *data, size_t len, char *out,
                                size_t cap)
{
    const char *base = strrchr(path, '/');

    base = base ? base + 1 : path;
    snprintf(out, cap, "%s%s", strstr(base, "minimal") ? "firmware-minimal.bin" : "firmware.bin",
             fota_cli_arduino_is_gzip(data, len) ? ".gz" : "");
}

int fota_cli_arduino_check(const uint8_t *data, size_t len, char *reason, size_t cap)
{
    struct fota_arduino_img_info info;
    int rc;

    if (fota_cli_arduino_is_gzip(data, len))
        return 0;
    rc = fota_arduino_img_parse(data, len, &info);
    if (rc != 0)
        snprintf(reason, cap, "%s (at offset 0x%x)", info.reason ? info.reason : fota_strerror(rc),
                 (unsigned)info.error_offset);
    return rc;
}

int fota_cli_arduino_gzip(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len)
{
    z_stream z;
    uLong bound;
    uint8_t *buf;
    int rc;

    *out = NULL;
    *out_len = 0;
    memset(&z, 0, sizeof(z));
    /* 15 + 16: a gzip header and trailer around the deflate stream */
    if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        return FOTA_ENOMEM;
    bound = deflateBound(&z, (uLong)len);
    buf = malloc(bound);
    if (!buf) {
        deflateEnd(&z);
        return FOTA_ENOMEM;
    }
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    z.next_out = buf;
    z.avail_out = (uInt)bound;
    rc = deflate(&z, Z_FINISH);
    *out_len = bound - z.avail_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(buf);
        *out_len = 0;
        return FOTA_EIO;
    }
    *out = buf;
    return 0;
}
