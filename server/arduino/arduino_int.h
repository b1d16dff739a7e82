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
#include "http.h"
#include "server.h"

struct event;
struct event_base;
struct fota_req;
struct fota_store_lane;

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
 * device (its row and open upgrade command, its arduino row), keyed by
 * product and STA MAC or URL name (arduino_cache.c). The device's id holds
 * while the catalog generation is unchanged; its row and command while the
 * device's generation is (store.h: every write of its row or commands moves
 * it), its arduino row while the device's arduino generation is (tracking,
 * MQTT) and its last check-in is younger than the product's
 * checkin_interval (an older one may make this check-in a return after a
 * silence, which only the store can tell). Each generation was read before
 * the rows it covers. Sets of a few ways, the least recently used replaced;
 * entries are allocated as devices appear. */
#define FOTA_ARDUINO_DEV_SETS 1024
#define FOTA_ARDUINO_DEV_WAYS 4
struct fota_arduino_dev_entry {
    uint64_t gen;                     /* catalog generation; 0: nothing holds (the id is a hint) */
    uint64_t devgen;                  /* the device's generation before its row was read */
    uint64_t agen;                    /* its arduino generation before its arduino row was read */
    uint64_t used;                    /* the loop's tick at its last use */
    int64_t product_id;
    char key[FOTA_NAME_MAX];          /* the STA MAC as text, or the URL's name */
    struct fota_device device;
    struct fota_arduino_device adev;
    int64_t cmd_id;                   /* the open sys_upgrade, 0 none */
    char cmd_version[FOTA_VERSION_MAX];
};

/* Open descriptors of the blobs a loop serves (arduino_serve.c): a blob is
 * named by its SHA-256 and never changes, so a download takes no open,
 * fstat and close; the release lookup before it still decides what may be
 * served. An entry is reopened after the catalog generation moved, and the
 * first download after a move closes those no body reads (a deleted
 * release's blob does not keep its space). Bodies hold a reference; an
 * entry still read when the module stops is freed by its last body. */
#define FOTA_ARDUINO_BLOB_SLOTS 4
struct fota_arduino_blob_fd {
    uint64_t gen;
    char sha256[65];
    int fd;
    int64_t size;
    unsigned refs;                    /* bodies in flight reading fd */
    int orphan;                       /* the module stopped: the last body frees it */
};

/* What check-ins write waits in two batches for all loops (arduino_batch.c),
 * each written in one transaction when due, when full, or when the API is
 * about to read (hub DOWNLOADS_SYNC for the ledger):
 * - completed downloads: the ledger row and the device's tracking (the
 *   upgrade in flight), arduino_device_served; a device's downloads of one
 *   file merge (bytes and counts add up, the latest tracking holds; another
 *   file writes the batch first), anonymous ones per file. Written every
 *   FOTA_ARDUINO_SERVED_MS: until then a check-in reads the device's
 *   tracking through the batch (fota_arduino_served_lock/_overlay, also
 *   over a cached row), and a write of its tracking by other means writes
 *   the batch first.
 * - reports: the x-ESP8266-* facts and check-in time, arduino_device_report,
 *   written about once a second, a device's rows merged (one batch for all
 *   loops: a device's later row always wins, whichever loop took its
 *   check-ins); a check-in of a device with a row waiting writes it first.
 * n is read without mu as a hint (atomic); mu is held while a batch is
 * written. Locks nest in one order: the downloads' mu, the reports' mu,
 * the store's. */
#define FOTA_ARDUINO_SERVED_MAX  2048
#define FOTA_ARDUINO_SERVED_HASH 4096 /* key -> row + 1 (0 empty), open addressing */
#define FOTA_ARDUINO_SERVED_MS   5000
struct fota_arduino_served_rows {
    size_t n;
    uint16_t index[FOTA_ARDUINO_SERVED_HASH];
    struct fota_arduino_download rows[FOTA_ARDUINO_SERVED_MAX];
};
struct fota_arduino_served_batch {
    pthread_mutex_t mu;               /* fill, and which rows are being written */
    pthread_mutex_t write_mu;         /* held by the one writer, while it writes */
    size_t n;                         /* fill->n, read without mu as a hint (atomic) */
    size_t nout;                      /* out->n while it is written, the same */
    int64_t since_ms;                 /* when fill's oldest row came (monotonic) */
    /* Rows are added to fill; a writer swaps it with out under mu and
     * writes out without mu (check-ins go on), which readers still see
     * until it is written. */
    struct fota_arduino_served_rows *fill, *out;
};
#define FOTA_ARDUINO_BATCH_MAX 512
#define FOTA_ARDUINO_BATCH_HASH 1024  /* device id -> row + 1 (0 empty), open addressing */
#define FOTA_ARDUINO_BATCH_MS  1000
#define FOTA_ARDUINO_QUIET_S   10     /* a quiet check-in's time, written at most this often */
struct fota_arduino_report_batch {
    pthread_mutex_t mu;
    size_t n;
    uint16_t index[FOTA_ARDUINO_BATCH_HASH];
    struct fota_arduino_device rows[FOTA_ARDUINO_BATCH_MAX];
};

/* One loop's part; touched only on that loop's thread. */
struct fota_arduino_loop {
    struct fota_arduino_ctx *ctx;
    struct fota_arduino_pending pending[FOTA_ARDUINO_PENDING];
    unsigned pending_next;
    struct fota_arduino_key_entry keys[FOTA_ARDUINO_KEY_SLOTS];
    struct fota_arduino_rel_entry rels[FOTA_ARDUINO_REL_SLOTS];
    struct event *flush_ev;           /* the batches' timer, on the loop's base */
    uint64_t tick;                    /* device cache use counter */
    struct fota_arduino_dev_entry *dev[FOTA_ARDUINO_DEV_SETS * FOTA_ARDUINO_DEV_WAYS];
    struct fota_arduino_visit *visit; /* a check-in answered from the caches (never deferred) */
    struct fota_arduino_blob_fd *blobs[FOTA_ARDUINO_BLOB_SLOTS];
    uint64_t blob_swept;              /* the catalog generation of the last sweep */
};

/* The module's state; every route's ud. */
/* Completed downloads whose command is still to be marked delivered, in
 * the order of their jobs on the lane (arduino_track.c): a read of the API
 * off the loops writes them first (fota_arduino_taken_sync), so it sees
 * what the device was answered, as with the inline store. */
struct fota_arduino_taken_list {
    pthread_mutex_t mu;         /* head and the entries' claimed */
    pthread_mutex_t write_mu;   /* held while an entry taken out is written */
    /* Held across the module's read and write of a command row (a download's
     * `delivered`, a check-in's outcome): with store threads they run at
     * once, and a `delivered` written over the failure a check-in recorded
     * meanwhile would open the command again. Taken after write_mu. */
    pthread_mutex_t cmd_mu;
    struct fota_arduino_taken *head;
};

struct fota_arduino_ctx {
    struct fota_server *srv;
    struct fota_arduino_loop *loops[FOTA_LOOPS_MAX];
    int nloops;
    /* The store jobs of the batches and of completed downloads, in order
     * (NULL without an executor: they run where they are asked for). */
    struct fota_store_lane *lane;
    struct fota_arduino_served_batch served;
    struct fota_arduino_report_batch reports;
    struct fota_arduino_taken_list taken;
};

/* What a visit worked out in a store job reads of its loop's caches,
 * copied on the loop before the job (the job never touches the loop's
 * part), and the releases the job read, which its continuation gives to
 * the loop's cache. */
struct fota_arduino_offloop {
    int dev_found;
    struct fota_arduino_dev_entry dev;            /* the device's entry (dev_found) */
    struct fota_arduino_rel_entry *rel_copy;      /* the product's current release, or NULL */
    struct fota_arduino_rel_entry *rel_read[2];   /* read by the job, or NULL */
};

/* One device request being worked out (arduino_serve.c fills the request
 * facts, arduino_track.c the device and its target). On its loop (al set)
 * or in a store job (al NULL, off set: the loop's caches as copied). */
struct fota_arduino_visit {
    struct fota_arduino_ctx *ctx;
    struct fota_arduino_loop *al;     /* the request's loop; NULL off the loop */
    struct fota_arduino_offloop *off; /* a store job's copies, else NULL */
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
    /* The device's generations before its rows were read, and whose. */
    int64_t devgen_id;
    uint64_t devgen, agen;
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
    struct fota_arduino_answer ans;   /* an image kind's answer, set with it */
};
#define FOTA_ARDUINO_VISIT_CLEAR offsetof(struct fota_arduino_visit, product)

/* arduino_track.c */
/* Finds or registers the device the request names (STA MAC, else the URL's
 * name); anonymous requests keep device.id 0. Then records its report and
 * judges the upgrade it was served (success, failure). 0, or a negative
 * FOTA_E* when the store fails. */
int fota_arduino_identify(struct fota_arduino_visit *v);
/* A visit answered from the loop's caches alone: the device (by its STA
 * MAC or the URL's name; or none: anonymous) and its target release cached
 * and vouched for by their generations, no command, no download waiting to
 * be judged, no pin to end, no version to record and, for an image kind,
 * an answer (v->ans) that records nothing (no refusal: head 1 for HEAD),
 * so the only effects of the visit are its report (batched) and its cache
 * entry: 1 when so (both done, v->rel and v->have_rel set, the changelog
 * for a manifest), 0 when the full visit must run in a store job (nothing
 * changed). v is set up as fota_arduino_serve sets it, its product
 * resolved and its headers read; on its loop. */
int fota_arduino_visit_cached(struct fota_arduino_visit *v, int kind, int head);
/* The same for a device (by STA MAC) whose answer to kind is 304. */
int fota_arduino_quick_current(struct fota_arduino_visit *v, int kind);
/* v->ans: the answer to image kind for what v identified and targeted. */
void fota_arduino_visit_decide(struct fota_arduino_visit *v, int kind);
/* On the loop, before v goes to a store job: off takes copies of the
 * loop's entries the job may read (the device's and the product's current
 * release, when have_product: v->product is the key's), and v leaves the
 * loop (al NULL, off set). */
void fota_arduino_offloop_begin(struct fota_arduino_visit *v, struct fota_arduino_offloop *off,
                                int have_product);
/* Off the loop: frees v->off's releases; on the loop (al set again) gives
 * those the job read to the loop's cache first. */
void fota_arduino_offloop_end(struct fota_arduino_visit *v);
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
/* A body that the device will refuse after its first bytes was answered:
 * records the device_upgrade_failed message that says why. */
void fota_arduino_refused(struct fota_arduino_visit *v, int kind, int64_t size, int verdict);
/* A body was sent whole (its request completed): the ledger, and for a
 * device the upgrade now in flight (the batch, at once: its next check-in
 * sees it) and its command delivered (on a loop a store job on ctx->lane,
 * which tells the hub). Any loop. */
void fota_arduino_served(struct fota_arduino_ctx *ctx, const struct fota_arduino_pending *p);
/* Marks delivered, now, the commands of completed downloads whose store
 * jobs have not run (or waits for the one running): before the API reads
 * commands or rollouts. Off the loops only (a store thread). NULL-safe. */
void fota_arduino_taken_sync(struct fota_arduino_ctx *ctx);
void fota_arduino_taken_init(struct fota_arduino_ctx *ctx);
void fota_arduino_taken_destroy(struct fota_arduino_ctx *ctx);

/* arduino_cache.c */
/* The loop's entry for the device v names by key (any state), or NULL;
 * off the loop the entry copied for the job (v->off), or NULL. */
struct fota_arduino_dev_entry *fota_arduino_cache_find(struct fota_arduino_visit *v,
                                                       const char *key);
/* 1 when e's last check-in is younger than the product's checkin_interval. */
int fota_arduino_cache_fresh(const struct fota_arduino_visit *v,
                             const struct fota_arduino_dev_entry *e);
/* Keeps what the visit identified (device, arduino row as written, open
 * upgrade) for the device named key, with the generations the visit read
 * before its rows (v->devgen_id says for which device; another: kept as a
 * hint only). */
void fota_arduino_cache_put(struct fota_arduino_visit *v, const char *key);
/* Frees the loop's entries. */
void fota_arduino_cache_free(struct fota_arduino_loop *al);

/* arduino_batch.c */
/* A body was sent whole: its ledger row and the device's tracking join
 * their batch. Any thread: on a loop a row that must wait for the batch's
 * write (another file of the device, a full batch) joins in a store job on
 * ctx->lane. */
void fota_arduino_served_add(struct fota_arduino_ctx *ctx, const struct fota_arduino_download *row);
/* Reading a device's tracking from the store: between _lock and _unlock,
 * no download joins or leaves the batch; _overlay then applies the
 * device's download waiting in it (if any) to a, the row as read.
 * _overlay_locked does the same for a row as stored that a cache holds
 * (valid while the device's arduino generation is unchanged: writing the
 * batch moves it). */
void fota_arduino_served_lock(struct fota_arduino_ctx *ctx);
void fota_arduino_served_overlay(struct fota_arduino_ctx *ctx, struct fota_arduino_device *a);
void fota_arduino_served_unlock(struct fota_arduino_ctx *ctx);
void fota_arduino_served_overlay_locked(struct fota_arduino_ctx *ctx, struct fota_arduino_device *a);
/* Writes the downloads' batch now (before the API reads counts). Not on
 * a loop (the store is called); NULL-safe. */
void fota_arduino_served_flush(struct fota_arduino_ctx *ctx);
/* The same asked on a loop (hub DOWNLOADS_SYNC): a store job on ctx->lane,
 * at once on any other thread or without an executor. NULL-safe. */
void fota_arduino_served_flush_any(struct fota_arduino_ctx *ctx);
/* Writes the downloads' batch now if it holds a row of device_id (before
 * its tracking is written by other means). Any thread. */
void fota_arduino_served_sync(struct fota_arduino_ctx *ctx, int64_t device_id);
/* Queues a device's report (written when the batch is full), unless it
 * says nothing stored (the row as written, may be NULL) does not, its time
 * less than quiet_s after the stored one (0: the same second), and the
 * batch holds no row of the device. 1 when queued. Any thread: on a loop
 * a full batch is written by a store job on ctx->lane, and a row that
 * finds it full meanwhile is not queued (0: the device's next check-in
 * reports again). */
int fota_arduino_report_add(struct fota_arduino_ctx *ctx, const struct fota_arduino_device *row,
                            const struct fota_arduino_device *stored, int64_t quiet_s);
/* Writes the reports' batch now if it holds a row of device_id (before
 * its report is read); 1 if it did. Any thread. */
int fota_arduino_report_sync_device(struct fota_arduino_ctx *ctx, int64_t device_id);
/* Writes both batches now (before the API reads devices or counts, at
 * stop). Any thread; NULL-safe. */
void fota_arduino_report_sync(struct fota_arduino_ctx *ctx);
/* Writes both batches now if they hold a row of device_id (before its
 * rows are read without the batches). Any thread. */
void fota_arduino_batch_sync(struct fota_arduino_ctx *ctx, int64_t device_id);
/* Starts al's timer that writes the batches when due (a store job on
 * ctx->lane), on base. 0 or FOTA_ENOMEM. */
int fota_arduino_batch_timer(struct fota_arduino_loop *al, struct event_base *base);
/* Initialises and destroys ctx's batches (destroy writes what is left). */
void fota_arduino_batch_init(struct fota_arduino_ctx *ctx);
void fota_arduino_batch_destroy(struct fota_arduino_ctx *ctx);

/* arduino_serve.c: the loop's blob descriptors closed (or left to their
 * last body), at stop. */
void fota_arduino_blobs_close(struct fota_arduino_loop *al);
/* arduino_serve.c: the handler of /v1/arduino/KEY/FILE and
 * /v1/arduino/KEY/d/NAME/FILE (GET, HEAD), on every loop. */
void fota_arduino_serve(struct fota_req *r);
/* arduino_serve.c: the quick answer of the same routes (fota_http_quick):
 * 304 for a device's check-in that fota_arduino_quick_current answers,
 * else 0 and fota_arduino_serve takes the request. */
int fota_arduino_quick(void *ud, int loop, char caps[][FOTA_ROUTE_CAP_LEN], int ncaps,
                       const char *lines, size_t len, int64_t *dev_id);

/* arduino_rest.c: GET|PUT /v1/products/ID/arduino (admin, main loop). */
void fota_arduino_settings(struct fota_req *r);
/* Checks the settings among themselves and the signing key; 0 or 422 with reason. */
int fota_arduino_settings_check(const struct fota_arduino_product *p, char *reason, size_t cap);

#endif
