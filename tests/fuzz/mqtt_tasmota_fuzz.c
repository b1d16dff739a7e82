/* mqtt_tasmota_fuzz.c - libFuzzer target for what fotad reads from Tasmota
 * over MQTT: the input is a topic, a NUL and a payload. The topic's kind and
 * device topic, INFO1/Status 2's version, Status 5's MAC, UPGRADE's outcome
 * and a broker URL parse of the payload: results stay NUL-terminated within
 * their buffers and are whole UTF-8 characters (JSON views show them), a
 * MAC found prints and parses back to itself. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "arduino_hdr.h"
#include "fota_err.h"
#include "mqtt_tasmota.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *nul = memchr(data, 0, size);
    char topic[256], dev[FOTA_MQTT_TOPIC_MAX], v[64], mac[FOTA_ARDUINO_MAC_MAX], text[96];
    char url[FOTA_MQTT_URL_MAX], why[160];
    struct fota_mqtt_url u;
    const char *payload;
    size_t tl, plen;
    uint8_t back[6];

    if (!nul)
        return 0;
    tl = (size_t)(nul - (const char *)data);
    if (tl >= sizeof topic)
        return 0;
    memcpy(topic, data, tl + 1);
    payload = nul + 1;
    plen = size - tl - 1;
    int k = fota_mqtt_msg_kind(topic, dev, sizeof dev);
    if (k < FOTA_MQTT_M_OTHER || k > FOTA_MQTT_M_UPGRADE || !memchr(dev, 0, sizeof dev) ||
        (k != FOTA_MQTT_M_OTHER && (!dev[0] || strchr(dev, '/'))))
        abort();
    int vr = fota_mqtt_tasmota_version(payload, plen, v, sizeof v);
    if (vr == 0 && (!v[0] || !memchr(v, 0, sizeof v)))
        abort();
    if (fota_mqtt_tasmota_mac(payload, plen, mac) == 0 &&
        (strlen(mac) != 17 || fota_arduino_mac_parse(mac, 17, back) != 0))
        abort();
    int r = fota_mqtt_tasmota_upgrade(payload, plen, text, sizeof text);
    if (r < -1 || r > 1 || (r == 0 && strncmp(text, "Failed", 6) != 0))
        abort();
    /* The version and the failure text end up in JSON views: whole UTF-8. */
    json_t *jv = vr == 0 ? json_string(v) : json_null(), *jt = r == 0 ? json_string(text) : json_null();
    if (!jv || !jt)
        abort();
    json_decref(jv);
    json_decref(jt);
    if (plen < sizeof url) {
        memcpy(url, payload, plen);
        url[plen] = '\0';
        if (fota_mqtt_url_parse(url, &u, why, sizeof why) == 0 &&
            (!u.host[0] || u.port < 1 || u.port > 65535 || !memchr(u.host, 0, sizeof u.host)))
            abort();
    }
    return 0;
}
