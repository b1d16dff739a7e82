/* mqtt_client.h - one MQTT client of fotad (libmosquitto) on a thread of its
 * own: it connects (DNS, TCP and TLS happen there, never on an event loop),
 * subscribes on every connect, keeps the session alive, reconnects after a
 * loss (1 s, doubling to 30 s), and hands what happens to the main loop as
 * posted jobs: the owner's callback always runs on the main loop, in the
 * order things happened. Publishing is allowed from the main loop at any
 * time (libmosquitto queues the packet and wakes the client's thread). */
#ifndef FOTA_MQTT_CLIENT_H
#define FOTA_MQTT_CLIENT_H

#include <stddef.h>
#include <stdint.h>

struct fota_server;
struct fota_mqtt_client;

enum fota_mqtt_event_kind {
    FOTA_MQTT_E_UP = 1,              /* connected (CONNACK 0) and subscribed */
    FOTA_MQTT_E_DOWN,                /* a connect failed or the session ended (text says why) */
    FOTA_MQTT_E_MESSAGE              /* topic, payload (len bytes, NUL after them) */
};

struct fota_mqtt_event {
    int kind;
    const char *text;                /* DOWN: the reason */
    const char *topic;
    const char *payload;
    size_t len;
};

/* Main loop; ev and its strings are borrowed for the call. */
typedef void (*fota_mqtt_client_cb)(void *owner, const struct fota_mqtt_event *ev);

struct fota_mqtt_client_cfg {
    const char *host;
    int port;
    int tls;                         /* verify the broker against the system's CAs */
    const char *username, *password; /* NULL or "": none */
    const char *client_id;
    const char *const *subs;         /* topic filters, subscribed at QoS 0 */
    size_t nsubs;
};

/* Every client the module made, until each is freed (main loop only). */
struct fota_mqtt_clients {
    struct fota_mqtt_client *head;
};

/* Process-wide libmosquitto set-up, once before the first client and after
 * the last one. */
int fota_mqtt_lib_init(void);
void fota_mqtt_lib_cleanup(void);

/* Makes a client and starts its thread (main loop). NULL when the client
 * cannot be made (logged). cfg's strings are copied. */
struct fota_mqtt_client *fota_mqtt_client_start(struct fota_server *srv,
                                                struct fota_mqtt_clients *all,
                                                const struct fota_mqtt_client_cfg *cfg,
                                                fota_mqtt_client_cb cb, void *owner);
/* Publishes payload on topic, QoS 0, not retained. 0, or FOTA_ENOENT when
 * the client is not connected now, or FOTA_EIO. Main loop. */
int fota_mqtt_client_publish(struct fota_mqtt_client *c, const char *topic, const char *payload);
/* The owner lets go (main loop): no callback runs for it any more; the
 * client disconnects, and is freed on the main loop once its thread ended.
 * NULL-safe. */
void fota_mqtt_client_release(struct fota_mqtt_client *c);
/* After the loops ended: stops, joins and frees every client still in all. */
void fota_mqtt_clients_shutdown(struct fota_mqtt_clients *all);

#endif
