/* mqtt_int.h - what the mqtt module's files share: the module's state, one
 * product's fleet on its broker (mqtt_fleet.c: discovery, confirmation,
 * triggers) and the module's life (mqtt_module.c: settings, the clients
 * following the products' settings, the route). Private to server/mqtt. */
#ifndef FOTA_MQTT_INT_H
#define FOTA_MQTT_INT_H

#include <stdint.h>

#include "mqtt.h"
#include "mqtt_client.h"
#include "mqtt_tasmota.h"

struct event;
struct fota_store_lane;

/* The module's settings (its config rows). */
struct fota_mqtt_conf {
    char public_url[256];
};

/* A device seen on a product's broker, by its Tasmota topic. */
struct fota_mqtt_dev {
    char topic[FOTA_MQTT_TOPIC_MAX];
    int64_t device_id;               /* 0 until its MAC is known (Status 5) */
    char lwt[16];                    /* "Online", "Offline", "" unknown */
    char version[64];                /* the last INFO1 or Status 2 Version */
    int64_t seen;                    /* wall s of its last message */
    int64_t asked_ms;                /* last Status 5 question (monotonic), 0 none */
    int asks;                        /* Status 5 questions unanswered */
    int version_waits;               /* an INFO1 came before its MAC: judged once known */
};

/* One arduino product with a broker. */
struct fota_mqtt_fleet {
    struct fota_mqtt *m;
    struct fota_mqtt_fleet *next;
    uint64_t serial;                 /* unique in the module: store jobs find it by this */
    int64_t product_id;
    char url[FOTA_MQTT_URL_MAX], username[FOTA_MQTT_CRED_MAX], password[FOTA_MQTT_CRED_MAX];
    struct fota_mqtt_client *client; /* NULL until its known devices are loaded */
    int up;                          /* connected and subscribed */
    char error[160];                 /* why it is not, "" */
    int64_t since;                   /* wall s of the last change of up */
    struct fota_mqtt_dev *devs;      /* sorted by topic */
    size_t ndevs, capdevs;
    int64_t triggered, confirmed, failed;   /* counts since it started */
};

struct fota_mqtt {
    struct fota_server *srv;
    const struct fota_mqtt_conf *conf;
    struct fota_mqtt_fleet *fleets;
    struct fota_mqtt_clients clients;
    struct event *tick;              /* follows the products' settings */
    uint64_t gen;                    /* the store generation of the settings applied */
    int following;                   /* a follow job is in flight */
    struct fota_store_lane *lane;    /* `mqtt`: the module's store jobs, in order */
    uint64_t fleet_serial;           /* the last fleet's */
    int warned_public_url;
};

/* mqtt_fleet.c */
/* Starts a fleet for product p's broker: its known devices are loaded by a
 * store job, then its client starts (a fleet whose client cannot be made
 * leaves m->fleets then, logged). NULL when the URL does not parse
 * (logged). */
struct fota_mqtt_fleet *fota_mqtt_fleet_start(struct fota_mqtt *m,
                                              const struct fota_arduino_product *p);
/* Once a second: topics whose MAC is unknown are asked again. */
void fota_mqtt_fleet_tick(struct fota_mqtt_fleet *f);
/* Lets its client go and frees it. */
void fota_mqtt_fleet_stop(struct fota_mqtt_fleet *f);
/* The fleet's device with device_id, or NULL. */
struct fota_mqtt_dev *fota_mqtt_fleet_dev_by_id(struct fota_mqtt_fleet *f, int64_t device_id);
/* The hub's DEVICE_OFFER: tells a device of a fleet to fetch its offer. */
int64_t fota_mqtt_on_offer(void *ud, const void *event);
/* The hub's DEVICE_DELETED: forgets the device's id. */
int64_t fota_mqtt_on_deleted(void *ud, const void *event);
/* {"url", "username", "password_set", "connected", ...} of a fleet. */
json_t *fota_mqtt_fleet_json(const struct fota_mqtt_fleet *f);

#endif
