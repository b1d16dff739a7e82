/* hub.h - the one way fotad's modules call each other: a topic, an event
 * struct, and the modules that subscribed to it. A module that needs an
 * answer or a veto from others ("is this release still pushed?") publishes,
 * and whoever owns that knowledge subscribes; neither includes the other.
 *
 * Subscriptions are made in a module's start() (main thread, before the
 * worker loops run) and removed in its stop(); they never change while
 * requests are served. Subscribers run on the main loop: fota_hub_publish
 * runs them on the caller's thread, which must be the main loop, and
 * fota_hub_publish_any gets there from any thread. No allocation: a topic
 * holds at most FOTA_HUB_SUBS_MAX subscribers. */
#ifndef FOTA_HUB_H
#define FOTA_HUB_H

#include <stddef.h>
#include <stdint.h>

struct fota_server;
struct json_t;

enum fota_hub_topic {
    /* A device's rows and keys were just deleted from the store (struct
     * fota_hub_device_deleted). Every subscriber drops what it holds for the
     * device and returns 0; the device channel closes the device's
     * connections and adds their number to *closed (the API reports it). */
    FOTA_HUB_DEVICE_DELETED,
    /* Veto before a device is deleted (struct fota_hub_device): the id of a
     * rollout that is still writing the device's command row, else 0. */
    FOTA_HUB_DEVICE_BUSY,
    /* Veto before a release is deleted (struct fota_hub_release): the id of
     * a running rollout that targets the product and version, else 0. */
    FOTA_HUB_RELEASE_BUSY,
    /* Before the API reads download counts or bytes, or commands (event
     * NULL): the download counts batched in memory, and the commands that
     * completed Arduino downloads delivered, are written to the store.
     * Published with fota_hub_publish on the reader's own thread (its
     * subscribers are thread-safe): off the loops they write at once, so the
     * read that follows sees them; on a loop they queue on the loop's store
     * lanes. */
    FOTA_HUB_DOWNLOADS_SYNC,
    /* A device identified on the device channel, a pull-based device
     * checked in after a checkin_interval or more without one, or a device
     * said Online over MQTT (struct fota_hub_presence). */
    FOTA_HUB_DEVICE_ONLINE,
    /* A device's last identified connection closed, or it said Offline
     * over MQTT (struct fota_hub_presence). */
    FOTA_HUB_DEVICE_OFFLINE,
    /* A D4/D5 reply to a command (struct fota_hub_reply). A subscriber that
     * owns the nonce returns non-zero: the reply is taken. */
    FOTA_HUB_DEVICE_REPLY,
    /* A D7 report of an upgrade's outcome (struct fota_hub_report). A
     * subscriber that consumed it returns non-zero. */
    FOTA_HUB_DEVICE_REPORT,
    /* A pull-based device was offered a version (its sys_upgrade command
     * row is written; struct fota_hub_offer). A subscriber that can tell
     * the device to fetch it now (MQTT) answers FOTA_HUB_OFFER_TRIGGERED,
     * or FOTA_HUB_OFFER_UNREACHABLE for a device it knows but cannot reach
     * now; 0: the device takes it at its next check-in. */
    FOTA_HUB_DEVICE_OFFER,
    FOTA_HUB_TOPICS
};

struct fota_hub_device {
    int64_t device_id;
};

struct fota_hub_device_deleted {
    int64_t device_id;
    int *closed;                 /* subscribers add the connections they closed */
};

struct fota_hub_release {
    int64_t product_id;
    const char *version;
};

struct fota_hub_presence {
    int64_t device_id;
    int64_t product_id;
    uint64_t conn_id;            /* the channel connection, for logs */
    const char *version;         /* the version the device says it runs (a D1 activation's
                                    rom_version), borrowed; NULL when it said none */
};

struct fota_hub_reply {
    int64_t device_id;
    int64_t nonce;
    int status;                  /* the reply's "status" (200: done, 4xx/5xx: failed) */
    const struct json_t *result; /* the reply, decoded once (the whole line as a JSON
                                    object), borrowed for the call; never NULL */
};

struct fota_hub_report {
    int64_t device_id;
    int ok;                      /* 1: upgraded, 0: the device reports a failure */
    const char *version;         /* the version now running, "" if not reported */
    const char *target;          /* the version it was asked to install, "" if unknown */
    char *full;                  /* a subscriber that pushed the upgrade writes the full
                                    version here when version is its (15-byte) prefix */
    size_t full_cap;
};

struct fota_hub_offer {
    int64_t device_id;
    int64_t product_id;
    const char *version;
};
#define FOTA_HUB_OFFER_TRIGGERED   1
#define FOTA_HUB_OFFER_UNREACHABLE 2

/* A subscriber: returns 0 to let the event pass on, anything else to answer
 * it (the value publish returns). event is the topic's struct, borrowed. */
typedef int64_t (*fota_hub_cb)(void *ud, const void *event);

#define FOTA_HUB_SUBS_MAX 8

struct fota_hub_sub {
    fota_hub_cb cb;
    void *ud;
};

/* Lives in struct fota_server (server.h). */
struct fota_hub {
    struct fota_hub_sub subs[FOTA_HUB_TOPICS][FOTA_HUB_SUBS_MAX];
    unsigned n[FOTA_HUB_TOPICS];
};

/* Adds cb(ud) to topic, after the existing subscribers. 0, or FOTA_EINVAL
 * for an unknown topic or a NULL cb, FOTA_ETOOBIG when the topic is full. */
int fota_hub_subscribe(struct fota_server *srv, enum fota_hub_topic topic, fota_hub_cb cb,
                       void *ud);
/* Removes the subscription made with the same cb and ud (no-op if absent). */
void fota_hub_unsubscribe(struct fota_server *srv, enum fota_hub_topic topic, fota_hub_cb cb,
                          void *ud);
/* Calls topic's subscribers in order with event until one returns non-zero;
 * returns that value, or 0 when every subscriber (or none) returned 0. */
int64_t fota_hub_publish(struct fota_server *srv, enum fota_hub_topic topic, const void *event);
/* The same from any thread: inline on the main loop, else through
 * fota_loop_call(main loop) while the caller waits (a worker loop, a store
 * thread: loop.h says why that cannot deadlock). event stays borrowed for
 * the call. Returns 0 when the main loop is closed (shutting down): no
 * subscriber answered. */
int64_t fota_hub_publish_any(struct fota_server *srv, enum fota_hub_topic topic,
                             const void *event);

#endif
