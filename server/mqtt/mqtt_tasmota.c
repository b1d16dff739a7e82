/* mqtt_tasmota.c - the broker URL, Tasmota's topics and payloads, the
 * OtaUrl, and a product's MQTT settings as REST shows and takes them. Pure:
 * the module (mqtt_module.c) does the I/O. */
#include "mqtt_tasmota.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arduino_hdr.h"
#include "fota_str.h"
#include "xmalloc.h"

const char *const fota_mqtt_subscriptions[FOTA_MQTT_NSUBS] = {
    "tele/+/LWT", "tele/+/INFO1", "stat/+/STATUS5", "stat/+/STATUS2", "stat/+/UPGRADE"};

static int fail(char *reason, size_t cap, const char *text)
{
    fota_str_copy(reason, cap, text);
    return FOTA_EINVAL;
}

int fota_mqtt_url_parse(const char *url, struct fota_mqtt_url *out, char *reason, size_t cap)
{
    const char *p, *host, *end;
    size_t hlen;

    memset(out, 0, sizeof *out);
    if (!url)
        return fail(reason, cap, "mqtt.url is required");
    if (strncmp(url, "mqtt://", 7) == 0) {
        p = url + 7;
        out->port = 1883;
    } else if (strncmp(url, "mqtts://", 8) == 0) {
        p = url + 8;
        out->tls = 1;
        out->port = 8883;
    } else {
        return fail(reason, cap, "mqtt.url must start with mqtt:// or mqtts://");
    }
    if (*p == '[') { /* [IPv6] */
        host = p + 1;
        end = strchr(host, ']');
        if (!end || end == host)
            return fail(reason, cap, "mqtt.url: an IPv6 host goes in brackets, [::1]");
        hlen = (size_t)(end - host);
        p = end + 1;
    } else {
        host = p;
        hlen = strcspn(p, ":/");
        p += hlen;
    }
    if (hlen == 0 || hlen >= sizeof out->host)
        return fail(reason, cap, "mqtt.url has no host (mqtt://HOST:PORT)");
    for (size_t i = 0; i < hlen; i++)
        if ((unsigned char)host[i] <= 0x20 || (unsigned char)host[i] >= 0x7F || host[i] == '@')
            return fail(reason, cap, "mqtt.url: the host is a name or an address (the user "
                                     "name and password go in username and password)");
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    if (*p == ':') {
        char *e = NULL;
        long port = strtol(p + 1, &e, 10);
        if (e == p + 1 || port < 1 || port > 65535)
            return fail(reason, cap, "mqtt.url: the port is 1 to 65535");
        out->port = (int)port;
        p = e;
    }
    if (*p == '/')
        p++;
    if (*p)
        return fail(reason, cap, "mqtt.url takes no path: mqtt://HOST:PORT");
    return 0;
}

int fota_mqtt_msg_kind(const char *topic, char *device_topic, size_t cap)
{
    static const struct {
        const char *prefix, *sub;
        int kind;
    } kinds[] = {{"tele/", "/LWT", FOTA_MQTT_M_LWT}, {"tele/", "/INFO1", FOTA_MQTT_M_INFO1},
                 {"stat/", "/STATUS5", FOTA_MQTT_M_STATUS5},
                 {"stat/", "/STATUS2", FOTA_MQTT_M_STATUS2},
                 {"stat/", "/UPGRADE", FOTA_MQTT_M_UPGRADE}};
    size_t n = topic ? strlen(topic) : 0;

    if (cap)
        device_topic[0] = '\0';
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        size_t pl = strlen(kinds[i].prefix), sl = strlen(kinds[i].sub);
        if (n <= pl + sl || strncmp(topic, kinds[i].prefix, pl) != 0 ||
            strcmp(topic + n - sl, kinds[i].sub) != 0)
            continue;
        const char *t = topic + pl;
        size_t tl = n - pl - sl;
        if (memchr(t, '/', tl) || tl >= cap)
            return FOTA_MQTT_M_OTHER; /* a topic of another full-topic shape */
        memcpy(device_topic, t, tl);
        device_topic[tl] = '\0';
        return kinds[i].kind;
    }
    return FOTA_MQTT_M_OTHER;
}

/* The payload as a JSON object, or NULL. New reference. */
static json_t *object_of(const char *payload, size_t len)
{
    json_error_t err;
    json_t *j = payload ? json_loadb(payload, len, 0, &err) : NULL;
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

int fota_mqtt_tasmota_version(const char *payload, size_t len, char *out, size_t cap)
{
    json_t *j = object_of(payload, len), *v = NULL;
    const char *wrap[] = {"Info1", "StatusFWR"};
    int rc = FOTA_EINVAL;

    for (size_t i = 0; j && !v && i < 2; i++)
        v = json_object_get(json_object_get(j, wrap[i]), "Version");
    if (j && !v)
        v = json_object_get(j, "Version"); /* INFO1 before the Info1 wrapper */
    if (json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) < cap) {
        fota_str_copy(out, cap, json_string_value(v));
        rc = 0;
    }
    json_decref(j);
    return rc;
}

int fota_mqtt_tasmota_mac(const char *payload, size_t len, char out[FOTA_ARDUINO_MAC_MAX])
{
    json_t *j = object_of(payload, len);
    json_t *v = json_object_get(json_object_get(j, "StatusNET"), "Mac");
    uint8_t mac[6];
    int rc = FOTA_EINVAL;

    if (json_is_string(v) &&
        fota_arduino_mac_parse(json_string_value(v), json_string_length(v), mac) == 0) {
        fota_arduino_mac_format(mac, out);
        rc = 0;
    }
    json_decref(j);
    return rc;
}

int fota_mqtt_tasmota_upgrade(const char *payload, size_t len, char *text, size_t cap)
{
    json_t *j = object_of(payload, len);
    const char *s = json_string_value(json_object_get(j, "Upgrade"));
    int rc = -1;

    if (s && strncmp(s, "Successful", 10) == 0) {
        rc = 1;
    } else if (s && strncmp(s, "Failed", 6) == 0) {
        fota_str_copy_utf8(text, cap, s, strlen(s));   /* shown in JSON: whole characters */
        rc = 0;
    }
    json_decref(j);
    return rc;
}

int fota_mqtt_tasmota_ota_url(const char *public_url, const char *product_key, char *out,
                              size_t cap)
{
    size_t n = strlen(public_url);
    while (n > 0 && public_url[n - 1] == '/')
        n--;
    int w = snprintf(out, cap, "%.*s/v1/arduino/%s/firmware.bin", (int)n, public_url, product_key);
    return w < 0 || (size_t)w >= cap ? FOTA_ETOOBIG : 0;
}

/* ---- settings */

/* 1 when UTF-8 s holds a control character, C0 (and DEL) or C1 (U+0080 to
 * U+009F, C2 80 to C2 9F): MQTT text may not, and libmosquitto refuses it. */
static int has_control(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f || (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f))
            return 1;
    return 0;
}

static int set_text(const json_t *v, const char *name, char *dst, size_t size, char *reason,
                    size_t cap)
{
    if (!v)
        return 0; /* absent: kept */
    if (json_is_null(v)) {
        dst[0] = '\0';
        return 0;
    }
    if (!json_is_string(v)) {
        snprintf(reason, cap, "mqtt.%s must be a string", name);
        return 400;
    }
    if (json_string_length(v) >= size) {
        snprintf(reason, cap, "mqtt.%s is longer than %zu bytes", name, size - 1);
        return 422;
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        snprintf(reason, cap, "mqtt.%s holds a NUL character", name);
        return 422;
    }
    if (strcmp(name, "password") != 0 && has_control(json_string_value(v))) {
        snprintf(reason, cap, "mqtt.%s holds a control character (MQTT text has none)", name);
        return 422;
    }
    fota_str_copy(dst, size, json_string_value(v));
    return 0;
}

int fota_mqtt_settings_apply(const json_t *mqtt, struct fota_arduino_product *p, char *reason,
                             size_t cap)
{
    struct fota_mqtt_url u;
    const char *key;
    json_t *v;
    int st;

    if (!mqtt)
        return 0;
    if (json_is_null(mqtt)) { /* no broker */
        p->mqtt_url[0] = p->mqtt_username[0] = p->mqtt_password[0] = '\0';
        return 0;
    }
    if (!json_is_object(mqtt)) {
        fota_str_copy(reason, cap, "mqtt must be an object: {\"url\", \"username\", \"password\"}");
        return 400;
    }
    json_object_foreach((json_t *)mqtt, key, v) {
        if (strcmp(key, "url") != 0 && strcmp(key, "username") != 0 &&
            strcmp(key, "password") != 0) {
            snprintf(reason, cap, "unknown key mqtt.%.40s (url, username, password)", key);
            return 400;
        }
    }
    v = json_object_get(mqtt, "url");
    if (!v && !p->mqtt_url[0]) {
        fota_str_copy(reason, cap, "mqtt.url is required (mqtt://HOST:PORT or mqtts://HOST:PORT)");
        return 400;
    }
    /* into a copy: p changes only when every value is right */
    struct fota_arduino_product *n = fota_xmemdup(p, sizeof *p);
    if ((st = set_text(v, "url", n->mqtt_url, sizeof n->mqtt_url, reason, cap)) == 0 &&
        (st = set_text(json_object_get(mqtt, "username"), "username", n->mqtt_username,
                       sizeof n->mqtt_username, reason, cap)) == 0 &&
        (st = set_text(json_object_get(mqtt, "password"), "password", n->mqtt_password,
                       sizeof n->mqtt_password, reason, cap)) == 0) {
        if (!n->mqtt_url[0]) /* "url": null or "": no broker */
            n->mqtt_username[0] = n->mqtt_password[0] = '\0';
        else if (fota_mqtt_url_parse(n->mqtt_url, &u, reason, cap) != 0)
            st = 422;
    }
    if (st == 0)
        *p = *n;
    free(n);
    return st;
}

json_t *fota_mqtt_settings_json(const struct fota_arduino_product *p)
{
    if (!p->mqtt_url[0])
        return json_null();
    return json_pack("{s:s, s:o, s:b}", "url", p->mqtt_url, "username",
                     p->mqtt_username[0] ? json_string(p->mqtt_username) : json_null(),
                     "password_set", p->mqtt_password[0] != '\0');
}
