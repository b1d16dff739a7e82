/* fotasim_mqtt.h - one MQTT client of a simulated Tasmota device:
 * libmosquitto (Debian's libmosquitto) driven from the fleet's libevent
 * loop without threads (its socket's read and write events, a timer for
 * keep-alive and reconnects). */
#ifndef FOTASIM_MQTT_H
#define FOTASIM_MQTT_H

#include <stddef.h>

#include <event2/event.h>

struct fotasim_mqtt;

struct fotasim_mqtt_cfg {
    const char *host;           /* numeric address of the broker */
    int port;
    const char *client_id;
    const char *will_topic, *will_payload;   /* retained */
    int keepalive;              /* seconds */
    /* connected: the session is up (subscribe and announce now) */
    void (*on_connect)(void *ud);
    void (*on_message)(void *ud, const char *topic, const char *payload, size_t len);
    void *ud;
};

/* Process-wide set-up of libmosquitto (once, before any client). */
int fotasim_mqtt_lib_init(void);
void fotasim_mqtt_lib_cleanup(void);

/* Connects (asynchronously; reconnects 10 s after a loss, as Tasmota).
 * NULL when the client cannot be made. */
struct fotasim_mqtt *fotasim_mqtt_new(struct event_base *base, const struct fotasim_mqtt_cfg *cfg);
/* Ends the client without a DISCONNECT (the broker publishes the will, as
 * for a device that rebooted). NULL is a no-op. */
void fotasim_mqtt_free(struct fotasim_mqtt *m);
int fotasim_mqtt_subscribe(struct fotasim_mqtt *m, const char *topic);
int fotasim_mqtt_publish(struct fotasim_mqtt *m, const char *topic, const char *payload, int retain);

#endif
