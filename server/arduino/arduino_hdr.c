/* arduino_hdr.c - the x-ESP8266-* headers of an update request parsed into
 * struct fota_arduino_hdrs: one table of names, strict value syntax (a
 * malformed value marks the header bad and leaves its field empty). */
#include "arduino_hdr.h"

#include <string.h>

#include "fota_err.h"

enum kind { K_U32, K_MAC, K_MD5, K_TEXT, K_MODE };

/* a name and its length */
#define HDR(name, bit, kind) \
    { \
        name, sizeof(name) - 1, bit, kind \
    }
static const struct {
    const char *name;
    size_t len;
    unsigned bit;
    enum kind kind;
} hdrs[] = {
    HDR("x-ESP8266-Chip-ID", FOTA_ARDUINO_H_CHIP_ID, K_U32),
    HDR("x-ESP8266-STA-MAC", FOTA_ARDUINO_H_STA_MAC, K_MAC),
    HDR("x-ESP8266-AP-MAC", FOTA_ARDUINO_H_AP_MAC, K_MAC),
    HDR("x-ESP8266-free-space", FOTA_ARDUINO_H_FREE_SPACE, K_U32),
    HDR("x-ESP8266-sketch-size", FOTA_ARDUINO_H_SKETCH_SIZE, K_U32),
    HDR("x-ESP8266-sketch-md5", FOTA_ARDUINO_H_SKETCH_MD5, K_MD5),
    HDR("x-ESP8266-chip-size", FOTA_ARDUINO_H_CHIP_SIZE, K_U32),
    HDR("x-ESP8266-sdk-version", FOTA_ARDUINO_H_SDK_VERSION, K_TEXT),
    HDR("x-ESP8266-mode", FOTA_ARDUINO_H_MODE, K_MODE),
    HDR("x-ESP8266-version", FOTA_ARDUINO_H_VERSION, K_TEXT),
};

#define HDR_PREFIX_LEN 10 /* strlen("x-ESP8266-") */

void fota_arduino_hdrs_init(struct fota_arduino_hdrs *h)
{
    memset(h, 0, sizeof *h);
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int name_eq(const char *a, size_t n, const char *b)
{
    size_t i;
    for (i = 0; i < n && b[i]; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return 0;
    return i == n && b[i] == '\0';
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = lower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int parse_u32(const char *s, size_t n, uint32_t *out)
{
    uint64_t v = 0;

    if (n == 0 || n > 10)
        return FOTA_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return FOTA_EINVAL;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > UINT32_MAX)
        return FOTA_EINVAL;
    *out = (uint32_t)v;
    return 0;
}

int fota_arduino_mac_parse(const char *s, size_t len, uint8_t mac[6])
{
    uint8_t m[6];

    if (len != 17)
        return FOTA_EINVAL;
    for (int i = 0; i < 6; i++) {
        int hi = hexval((unsigned char)s[3 * i]), lo = hexval((unsigned char)s[3 * i + 1]);
        if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':'))
            return FOTA_EINVAL;
        m[i] = (uint8_t)(hi << 4 | lo);
    }
    memcpy(mac, m, 6);
    return 0;
}

void fota_arduino_mac_format(const uint8_t mac[6], char out[FOTA_ARDUINO_MAC_TEXT])
{
    static const char hex[] = "0123456789ABCDEF";
    for (int i = 0; i < 6; i++) {
        out[3 * i] = hex[mac[i] >> 4];
        out[3 * i + 1] = hex[mac[i] & 15];
        out[3 * i + 2] = i < 5 ? ':' : '\0';
    }
}

static int parse_text(const char *s, size_t n, char *out, size_t cap)
{
    if (n >= cap)
        return FOTA_EINVAL;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7E)
            return FOTA_EINVAL;
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

static int parse_md5(const char *s, size_t n, char out[33])
{
    char t[33];

    if (n != 32)
        return FOTA_EINVAL;
    for (size_t i = 0; i < 32; i++) {
        if (hexval((unsigned char)s[i]) < 0)
            return FOTA_EINVAL;
        t[i] = (char)lower((unsigned char)s[i]);
    }
    t[32] = '\0';
    memcpy(out, t, sizeof t);
    return 0;
}

static enum fota_arduino_mode parse_mode(const char *s, size_t n)
{
    if (name_eq(s, n, "sketch"))
        return FOTA_ARDUINO_MODE_SKETCH;
    if (name_eq(s, n, "spiffs"))
        return FOTA_ARDUINO_MODE_SPIFFS;
    if (name_eq(s, n, "version"))
        return FOTA_ARDUINO_MODE_VERSION;
    return FOTA_ARDUINO_MODE_OTHER;
}

/* The field of a header, cleared (a repeated header replaces the earlier). */
static void clear_field(struct fota_arduino_hdrs *h, unsigned bit)
{
    switch (bit) {
    case FOTA_ARDUINO_H_CHIP_ID: h->chip_id = 0; break;
    case FOTA_ARDUINO_H_STA_MAC: memset(h->sta_mac, 0, 6); break;
    case FOTA_ARDUINO_H_AP_MAC: memset(h->ap_mac, 0, 6); break;
    case FOTA_ARDUINO_H_FREE_SPACE: h->free_space = 0; break;
    case FOTA_ARDUINO_H_SKETCH_SIZE: h->sketch_size = 0; break;
    case FOTA_ARDUINO_H_SKETCH_MD5: h->sketch_md5[0] = '\0'; break;
    case FOTA_ARDUINO_H_CHIP_SIZE: h->chip_size = 0; break;
    case FOTA_ARDUINO_H_SDK_VERSION: h->sdk_version[0] = '\0'; break;
    case FOTA_ARDUINO_H_MODE: h->mode = FOTA_ARDUINO_MODE_NONE; break;
    case FOTA_ARDUINO_H_VERSION: h->version[0] = '\0'; break;
    default: break;
    }
}

int fota_arduino_hdrs_feed(struct fota_arduino_hdrs *h, const char *name, size_t nlen,
                           const char *value, size_t vlen)
{
    size_t i;
    int rc = 0;

    /* every name starts "x-ESP8266-": most of a request's headers stop here */
    if (nlen <= HDR_PREFIX_LEN || lower((unsigned char)name[0]) != 'x' ||
        !name_eq(name, HDR_PREFIX_LEN, "x-ESP8266-"))
        return 0;
    for (i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++)
        if (hdrs[i].len == nlen &&
            name_eq(name + HDR_PREFIX_LEN, nlen - HDR_PREFIX_LEN, hdrs[i].name + HDR_PREFIX_LEN))
            break;
    if (i == sizeof hdrs / sizeof hdrs[0])
        return 0;
    while (vlen && (*value == ' ' || *value == '\t')) {
        value++;
        vlen--;
    }
    while (vlen && (value[vlen - 1] == ' ' || value[vlen - 1] == '\t'))
        vlen--;
    h->seen |= hdrs[i].bit;
    h->bad &= ~hdrs[i].bit;
    clear_field(h, hdrs[i].bit);
    switch (hdrs[i].bit) {
    case FOTA_ARDUINO_H_CHIP_ID: rc = parse_u32(value, vlen, &h->chip_id); break;
    case FOTA_ARDUINO_H_STA_MAC: rc = fota_arduino_mac_parse(value, vlen, h->sta_mac); break;
    case FOTA_ARDUINO_H_AP_MAC: rc = fota_arduino_mac_parse(value, vlen, h->ap_mac); break;
    case FOTA_ARDUINO_H_FREE_SPACE: rc = parse_u32(value, vlen, &h->free_space); break;
    case FOTA_ARDUINO_H_SKETCH_SIZE: rc = parse_u32(value, vlen, &h->sketch_size); break;
    case FOTA_ARDUINO_H_SKETCH_MD5: rc = parse_md5(value, vlen, h->sketch_md5); break;
    case FOTA_ARDUINO_H_CHIP_SIZE: rc = parse_u32(value, vlen, &h->chip_size); break;
    case FOTA_ARDUINO_H_SDK_VERSION:
        rc = parse_text(value, vlen, h->sdk_version, sizeof h->sdk_version);
        break;
    case FOTA_ARDUINO_H_MODE: h->mode = parse_mode(value, vlen); break;
    case FOTA_ARDUINO_H_VERSION:
        rc = parse_text(value, vlen, h->version, sizeof h->version);
        break;
    default: break;
    }
    if (rc) {
        h->bad |= hdrs[i].bit;
        clear_field(h, hdrs[i].bit);
    }
    return 1;
}

int fota_arduino_hdrs_parse_block(struct fota_arduino_hdrs *h, const char *buf, size_t len)
{
    size_t pos = 0;

    for (;;) {
        const char *lf = memchr(buf + pos, '\n', len - pos);
        size_t end, colon;

        if (!lf)
            return len - pos > FOTA_ARDUINO_HDR_LINE_MAX ? FOTA_EPROTO : FOTA_EAGAIN;
        end = (size_t)(lf - buf);
        if (end - pos > FOTA_ARDUINO_HDR_LINE_MAX)
            return FOTA_EPROTO;
        {
            size_t e = end;
            if (e > pos && buf[e - 1] == '\r')
                e--;
            if (e == pos) /* the empty line */
                return end + 1 > (size_t)INT32_MAX ? FOTA_EPROTO : (int)(end + 1);
            for (colon = pos; colon < e && buf[colon] != ':'; colon++)
                ;
            if (colon == e || colon == pos)
                return FOTA_EPROTO;
            fota_arduino_hdrs_feed(h, buf + pos, colon - pos, buf + colon + 1, e - colon - 1);
        }
        pos = end + 1;
    }
}

int fota_arduino_hdrs_is_device(const struct fota_arduino_hdrs *h)
{
    return (h->seen & FOTA_ARDUINO_H_STA_MAC) && !(h->bad & FOTA_ARDUINO_H_STA_MAC);
}

const char *fota_arduino_mode_name(enum fota_arduino_mode mode)
{
    switch (mode) {
    case FOTA_ARDUINO_MODE_SKETCH: return "sketch";
    case FOTA_ARDUINO_MODE_SPIFFS: return "spiffs";
    case FOTA_ARDUINO_MODE_VERSION: return "version";
    case FOTA_ARDUINO_MODE_OTHER: return "other";
    default: return "";
    }
}
