/* arduino_int.h - what the arduino module's files share: its state (one
 * part per loop), one device request as it is worked out, and the functions
 * between arduino_serve.c (the device endpoints), arduino_track.c (devices,
 * targets, confirmation) and arduino_module.c. Private to server/arduino. */
#ifndef FOTA_ARDUINO_INT_H
#define FOTA_ARDUINO_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "arduino.h"
#include "arduino_hdr.h"
#include "arduino_pull.h"
#include "server.h"

struct event;
struct event_base;
struct fota_req;

/* A body being sent, found again by its request when it completes: a ring,
 * so an aborted download's slot is simply reused later. */
#define FOTA_ARDUINO_PENDING 256
struct fota_arduino_pending {
    const void *req;
    int64_t product_id, device_id, file_id, rom_id, bytes, cmd_id;
    char version[FOTA_VERSION_MAX];
    char md5_before[FOTA_ARDUINO_MD5_TEXT];
};

/* Per-loop caches of what a check-in looks up: a product key's product and
 * settings, a release's files and facts. Valid while the store's generation
 * is unchanged (every catalog write moves it), like the rom module's. */
#define FOTA_ARDUINO_KEY_SLOTS 8
struct fota_arduino_key_entry {
    uint64_t gen;                     /* 0: empty */
    char key[FOTA_KEY_BUF];
    struct fota_product product;
    struct fota_arduino_product ap;
};
#define FOTA_ARDUINO_REL_SLOTS 8
struct fota_arduino_rel_entry {
    uint64_t gen;                     /* 0: empty */
    int64_t product_id;
    struct fota_arduino_rel rel;
    char changelog[FOTA_CHANGELOG_MAX];
};

/* Per-loop cache of the devices that check in: what a check-in reads of a
 * device (its row, its arduino row, its open upgrade command), keyed by
 * product and STA MAC or URL name (arduino_cache.c). An entry answers while
 * the store's catalog generation and the device's generation (store.h:
 * every write of its row, commands or tracking moves it) are as they were
 * before it was read, and its last check-in is younger than the product's
 * checkin_interval (an older one may make this check-in a return after a
 * silence, which only the store can tell). Sets of a few ways, the least
 * recently used replaced; entries are allocated as devices appear. */
#define FOTA_ARDUINO_DEV_SETS 1024
#define FOTA_ARDUINO_DEV_WAYS 4
struct fota_arduino_dev_entry {
    uint64_t gen;                     /* 0: not valid (the device id is still a hint) */
    uint64_t devgen;                  /* the device's generation before the reads */
    uint64_t used;                    /* the loop's tick at its last use */
    int64_t product_id;
    char key[FOTA_NAME_MAX];          /* the STA MAC as text, or the URL's name */
    struct fota_device device;
    struct fota_arduino_device adev;
    int64_t cmd_id;                   /* the open sys_upgrade, 0 none */
    char cmd_version[FOTA_VERSION_MAX];
};

/* Completed downloads wait here, in one batch for all loops, for their
 * ledger rows and the device's tracking (the upgrade in flight): written
 * in one transaction once a second, when full, before anything reads a
 * device's tracking (a check-in of a device in the batch, MQTT, the API)
 * and when the API reads download counts (hub DOWNLOADS_SYNC). Adding a
 * device's row moves its generation, so no cached check-in answers for it
 * while its row waits (arduino_served.c). */
#define FOTA_ARDUINO_SERVED_MAX 256
struct fota_arduino_served_batch {
    pthread_mutex_t mu;               /* held while the batch is written */
    size_t n;                         /* read without mu as a hint (atomic) */
    struct fota_arduino_download rows[FOTA_ARDUINO_SERVED_MAX];
};

/* Check-in reports are written in batches (one transaction per loop and
 * second, or when full), like presence: a polling fleet costs no write per
 * request. A device's rows merge; tracking fields are not in them. */
#define FOTA_ARDUINO_BATCH_MAX 256
#define FOTA_ARDUINO_BATCH_MS  1000
#define FOTA_ARDUINO_QUIET_S   10     /* a quiet check-in's time, written at most this often */

/* One loop's part; touched only on that loop's thread, except the report
 * batch (batch_mu: the API flushes it from the main loop). */
struct fota_arduino_loop {
    struct fota_arduino_ctx *ctx;
    struct fota_arduino_pending pending[FOTA_ARDUINO_PENDING];
    unsigned pending_next;
    struct fota_arduino_key_entry keys[FOTA_ARDUINO_KEY_SLOTS];
    struct fota_arduino_rel_entry rels[FOTA_ARDUINO_REL_SLOTS];
    pthread_mutex_t batch_mu;
    size_t nbatch;
    struct fota_arduino_device batch[FOTA_ARDUINO_BATCH_MAX];
    struct event *flush_ev;           /* the batch timer, on the loop's base */
    uint64_t tick;                    /* device cache use counter */
    struct fota_arduino_dev_entry *dev[FOTA_ARDUINO_DEV_SETS * FOTA_ARDUINO_DEV_WAYS];
    struct fota_arduino_visit *visit; /* the request being worked out (handlers never defer) */
};

/* The module's state; every route's ud. */
struct fota_arduino_ctx {
    struct fota_server *srv;
    struct fota_arduino_loop *loops[FOTA_LOOPS_MAX];
    int nloops;
    struct fota_arduino_served_batch served;
};

/* One device request being worked out (arduino_serve.c fills the request
 * facts, arduino_track.c the device and its target). */
struct fota_arduino_visit {
    struct fota_arduino_ctx *ctx;
    struct fota_arduino_loop *al;     /* the request's loop */
    uint64_t gen;                     /* the store's generation when it began */
    int64_t now;
    struct fota_arduino_hdrs h;       /* seen == 0: no x-ESP8266-* header */
    const char *name;                 /* the URL's device segment, or NULL */
    char devkey[FOTA_NAME_MAX];       /* the device's STA MAC as text, or its name */
    /* The device (device.id 0: anonymous) and its arduino row. */
    struct fota_device device;
    struct fota_arduino_device adev;
    /* The device's open sys_upgrade as read with it (open_known: by the
     * identification, from the store or the loop's cache). */
    int open_known;
    int64_t open_cmd_id;
    char open_version[FOTA_VERSION_MAX];
    /* The device's generation before its rows were read, and whose. */
    int64_t devgen_id;
    uint64_t devgen;
    /* Its target: the release it should run, and where that came from. */
    int64_t cmd_id;                   /* a queued sys_upgrade, or 0 */
    int have_rel;
    /* From here on each member is written before it is read (the product
     * by the key's lookup, the release and changelog with have_rel): a
     * check-in clears only what comes before (FOTA_ARDUINO_VISIT_CLEAR). */
    struct fota_product product;
    struct fota_arduino_product ap;
    struct fota_arduino_rel rel;
    char changelog[FOTA_CHANGELOG_MAX];
};
#define FOTA_ARDUINO_VISIT_CLEAR offsetof(struct fota_arduino_visit, product)

/* arduino_track.c */
/* Finds or registers the device the request names (STA MAC, else the URL's
 * name); anonymous requests keep device.id 0. Then records its report and
 * judges the upgrade it was served (success, failure). 0, or a negative
 * FOTA_E* when the store fails. */
int fota_arduino_identify(struct fota_arduino_visit *v);
/* Loads the release the device (or an anonymous request) should get into
 * v->rel: its queued sys_upgrade's version, else the product's current one.
 * 0, FOTA_ENOENT (no release), or the store's error. */
int fota_arduino_target(struct fota_arduino_visit *v);
/* Loads product_id's release version into rel (its files and their facts). */
int fota_arduino_rel_load(struct fota_server *srv, int64_t product_id, const char *version,
                          struct fota_arduino_rel *rel, char *changelog, size_t cap);
/* The same through the loop's cache (changelog may be NULL). */
int fota_arduino_rel_get(struct fota_arduino_visit *v, const char *version,
                         struct fota_arduino_rel *rel, char *changelog, size_t cap);
/* The device runs v->adev.target, seen as "sketch_md5" (a check-in) or
 * "version" (over MQTT) with the text what: its version is set, its
 * command for the target is done (an explicit upgrade: it becomes the
 * device's pin), a device_upgrade_success message is written, the hub
 * hears DEVICE_REPORT and the tracking is cleared. */
void fota_arduino_upgrade_success(struct fota_arduino_visit *v, const char *seen,
                                  const char *what);
/* The upgrade to v->adev.target failed for reason: the command is failed,
 * a device_upgrade_failed message written, DEVICE_REPORT (ok 0) heard and
 * the tracking cleared. */
void fota_arduino_upgrade_failed(struct fota_arduino_visit *v, const char *reason);
/* The device's newest sys_upgrade still open (queued, delivered, acked):
 * 0 with its id and version, FOTA_ENOENT, or FOTA_EIO. */
int fota_arduino_open_upgrade(struct fota_store *st, int64_t device_id, int64_t *cmd_id,
                              char *version, size_t cap);
/* Queues a device's report in its loop's batch (written when full), unless
 * it says nothing stored (the row as written, may be NULL) does not, its
 * time less than quiet_s after the stored one (0: the same second), and the
 * batch holds no row of the device. 1 when queued. */
int fota_arduino_report_add(struct fota_arduino_loop *al, const struct fota_arduino_device *row,
                            const struct fota_arduino_device *stored, int64_t quiet_s);
/* Writes al's batched reports now. Any thread. */
void fota_arduino_report_flush(struct fota_arduino_loop *al);
/* Every loop's batch, now (before the API reads devices). Any thread; NULL-safe. */
void fota_arduino_report_sync(struct fota_arduino_ctx *ctx);
/* Starts al's batch timer on base. 0 or FOTA_ENOMEM. */
int fota_arduino_report_timer(struct fota_arduino_loop *al, struct event_base *base);
/* A body that the device will refuse after its first bytes was answered:
 * records the device_upgrade_failed message that says why. */
void fota_arduino_refused(struct fota_arduino_visit *v, int kind, int64_t size, int verdict);
/* A body was sent whole (its request completed): the ledger, and for a
 * device the upgrade now in flight. Any loop. */
void fota_arduino_served(struct fota_arduino_ctx *ctx, const struct fota_arduino_pending *p);

/* arduino_cache.c */
/* Fills v->device, v->adev and the open upgrade from the loop's cache when
 * its entry for the device v names (by_mac or by_name) answers; 1 then.
 * Otherwise 0, with v->devgen_id and v->devgen set for the device the
 * entry last held (0 when none), to be read before the store. */
int fota_arduino_cache_get(struct fota_arduino_visit *v, const char *key);
/* Keeps what the visit identified (device, arduino row after its report,
 * open upgrade) for the device named key; valid only when v->devgen was
 * read for this very device before its rows. */
void fota_arduino_cache_put(struct fota_arduino_visit *v, const char *key);
/* Frees the loop's entries. */
void fota_arduino_cache_free(struct fota_arduino_loop *al);

/* arduino_served.c */
/* A body was sent whole: its ledger row and the device's tracking join
 * the batch (written when full). Any loop. */
void fota_arduino_served_add(struct fota_arduino_ctx *ctx, const struct fota_arduino_download *row);
/* Writes the batch now. Any thread; NULL-safe. */
void fota_arduino_served_flush(struct fota_arduino_ctx *ctx);
/* Writes the batch now if it holds a row of device_id; 1 if it did. */
int fota_arduino_served_sync(struct fota_arduino_ctx *ctx, int64_t device_id);

/* arduino_serve.c: the handler of /v1/arduino/KEY/FILE and
 * /v1/arduino/KEY/d/NAME/FILE (GET, HEAD), on every loop. */
void fota_arduino_serve(struct fota_req *r);

/* arduino_rest.c: GET|PUT /v1/products/ID/arduino (admin, main loop). */
void fota_arduino_settings(struct fota_req *r);
/* Checks the settings among themselves and the signing key; 0 or 422 with reason. */
int fota_arduino_settings_check(const struct fota_arduino_product *p, char *reason, size_t cap);

#endif
