/* mqtt_tasmota.h - what fotad reads from and writes to Tasmota devices over
 * MQTT, free of I/O: the broker URL of a product's settings, the topics of
 * Tasmota's default full topic %prefix%/%topic%/ (tele/TOPIC/LWT, INFO1,
 * stat/TOPIC/STATUS5, STATUS2, UPGRADE), the version in INFO1 and Status 2,
 * the MAC in Status 5, the outcome on UPGRADE, and the OtaUrl a device is
 * given. Shapes as current Tasmota (xdrv_02_9_mqtt.ino MqttConnected,
 * support_command.ino CmndStatus, support_tasmota.ino Every250mSeconds);
 * docs/arduino.md "Tasmota over MQTT". */
#ifndef FOTA_MQTT_TASMOTA_H
#define FOTA_MQTT_TASMOTA_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "store.h"

/* A product's broker: mqtt://HOST[:PORT] (1883) or mqtts://HOST[:PORT]
 * (8883); HOST a name, an IPv4 address or [IPv6]; nothing after the port
 * but an optional "/". */
struct fota_mqtt_url {
    int tls;
    char host[FOTA_MQTT_URL_MAX];
    int port;
};
/* 0, or FOTA_EINVAL with a sentence in reason. */
int fota_mqtt_url_parse(const char *url, struct fota_mqtt_url *out, char *reason, size_t cap);

/* What a message's topic is (the device's %topic% into topic, cap bytes). */
enum fota_mqtt_msg {
    FOTA_MQTT_M_OTHER = 0,
    FOTA_MQTT_M_LWT,          /* tele/TOPIC/LWT: "Online" / "Offline" */
    FOTA_MQTT_M_INFO1,        /* tele/TOPIC/INFO1: after each boot's first connect */
    FOTA_MQTT_M_STATUS5,      /* stat/TOPIC/STATUS5: the answer to Status 5 (network) */
    FOTA_MQTT_M_STATUS2,      /* stat/TOPIC/STATUS2: the answer to Status 2 (firmware) */
    FOTA_MQTT_M_UPGRADE       /* stat/TOPIC/UPGRADE: the end of its upgrade loop */
};
int fota_mqtt_msg_kind(const char *topic, char *device_topic, size_t cap);

/* The topic filters fotad subscribes to. */
extern const char *const fota_mqtt_subscriptions[];
#define FOTA_MQTT_NSUBS 5

/* The Version of INFO1 ({"Info1":{"Version":...}}, or the older flat
 * {"Version":...}) or of Status 2 ({"StatusFWR":{"Version":...}}) into out.
 * 0, or FOTA_EINVAL (no version in it). */
int fota_mqtt_tasmota_version(const char *payload, size_t len, char *out, size_t cap);
/* The Mac of Status 5 ({"StatusNET":{"Mac":"5C:CF:7F:..."}}), formatted as
 * fotad keys devices ("5C:CF:7F:B1:E0:42", upper case). 0 or FOTA_EINVAL. */
int fota_mqtt_tasmota_mac(const char *payload, size_t len, char out[FOTA_ARDUINO_MAC_MAX]);
/* UPGRADE's {"Upgrade":"Successful. Restarting"} (1), {"Upgrade":"Failed
 * <reason>"} (0, the whole text into text), anything else -1. */
int fota_mqtt_tasmota_upgrade(const char *payload, size_t len, char *text, size_t cap);
/* The OtaUrl of a product: PUBLIC_URL/v1/arduino/KEY/firmware.bin. 0, or
 * FOTA_ETOOBIG when it does not fit cap. */
int fota_mqtt_tasmota_ota_url(const char *public_url, const char *product_key, char *out,
                              size_t cap);

/* ---- a product's MQTT settings, REST side */

/* Applies "mqtt" of a settings body ({"url", "username", "password"}, or
 * null: no broker) over p: a missing username or password keeps the stored
 * one, null or "" clears it; the url is checked. 0, or 400/422 with reason. */
int fota_mqtt_settings_apply(const json_t *mqtt, struct fota_arduino_product *p, char *reason,
                             size_t cap);
/* {"url", "username", "password_set"} (never the password), or JSON null
 * without a broker. New reference. */
json_t *fota_mqtt_settings_json(const struct fota_arduino_product *p);

#endif
