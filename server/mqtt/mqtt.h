/* mqtt.h - the mqtt module (fota_mqtt_module, server.h): Tasmota fleets
 * over MQTT. For every arduino product whose settings name a broker
 * ("mqtt": {"url", "username", "password"}) fotad keeps one client
 * (mqtt_client.h), subscribes to Tasmota's tele/+/LWT and tele/+/INFO1,
 * learns each device's MAC with Status 5 so that it is the same device as
 * its HTTP check-ins, and tells a device to fetch the version a rollout
 * offers it (OtaUrl, then Upgrade 1; hub topic DEVICE_OFFER). Its INFO1
 * after the reboot confirms the upgrade. Setting `public_url`: the base URL
 * devices reach fotad at. Route: GET|PUT /v1/products/ID/mqtt. Main loop.
 * docs/arduino.md "Tasmota over MQTT". */
#ifndef FOTA_MQTT_H
#define FOTA_MQTT_H

#include "server.h"

extern const struct fota_module fota_mqtt_module;

#endif
