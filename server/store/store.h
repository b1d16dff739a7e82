/* store.h - fotad's metadata store behind one operations table.
 *
 * SQLite (WAL) and PostgreSQL implement struct fota_store_ops; the
 * conformance suite (tests/unit/server/store/) runs the same cases on each,
 * so they cannot drift apart. All calls are synchronous. SQLite's cost
 * microseconds and fotad makes them on its event loops too; PostgreSQL's
 * wait for a round trip, so fotad makes them in the store executor's jobs
 * (store_exec.h: store threads), on other threads of its own or at
 * start-up, never on an event loop while it serves (the loop guard,
 * fota_store_set_loop_guard). An implementation serialises internally.
 * Firmware bytes are NOT here: they live in the content-addressed blob store
 * (blob.h); rows only name files by SHA-256.
 *
 * Conventions: 0 on success, negative FOTA_E* (fota_err.h) on failure;
 * FOTA_ENOENT for unknown ids, FOTA_EEXIST for unique-key clashes, FOTA_EIO for
 * a database error (the implementation logs the detail). Strings are
 * NUL-terminated and truncated to their field size by the caller (the API
 * validates lengths before it gets here). Lists are returned as one array
 * (fota_xmalloc: out of memory aborts, so no op reports it) the caller frees
 * with free() (commands: fota_store_command_list_free). Times are Unix seconds (fota_clock_wall_s). */
#ifndef FOTA_STORE_H
#define FOTA_STORE_H

#include <stddef.h>
#include <stdint.h>
#include "fota_err.h"
#include "store_arduino.h"

struct json_t;

#define FOTA_NAME_MAX      64   /* product/device/file names, incl. NUL */
#define FOTA_VERSION_MAX   64   /* release version strings, incl. NUL */
#define FOTA_TEXT_MAX      1024 /* descriptions */
#define FOTA_CHANGELOG_MAX 8192
#define FOTA_HASH_HEX      65   /* SHA-256 as lower-case hex + NUL */
#define FOTA_BLOB_CHUNK    (256 * 1024)   /* a stored blob's pieces (blob_put, blob_fetch) */
#define FOTA_ROM_MAX_FILES 10
#define FOTA_STORE_DEVICE_SLOTS 4096 /* device generations (struct fota_store) */
#define FOTA_JSON_MAX      2048 /* command params (as text), message bodies */

struct fota_product {
    int64_t id;
    char    name[FOTA_NAME_MAX];
    char    serial[FOTA_NAME_MAX];     /* Espressif "serial" / ptype code as text */
    char    status[16];                /* "deployed", "development", ... */
    char    description[FOTA_TEXT_MAX];
    int     flash_map;                 /* size map code 0..9 (fwimg.h) */
    int     slot_check;                /* FOTA_SLOT_CHECK_*: how a release's slots are told */
    int64_t created;
    /* Filled by product_get/product_list only (product_head leaves them 0). */
    int64_t devices_total;
    int64_t devices_activated;
    char    current_version[FOTA_VERSION_MAX]; /* "" when none is current */
};

/* struct fota_product.slot_check: what identifies user1.bin / user2.bin at
 * release upload. BYTE3 (0, the default): byte 3 must be the slot number, as
 * NONOS >= 2.0 devices check. NAME: RTOS 1.x images (flash settings in byte 3)
 * are taken as the slot their file name says (FOTA_RELEASE_F_SLOT_BY_NAME). */
#define FOTA_SLOT_CHECK_BYTE3 0
#define FOTA_SLOT_CHECK_NAME  1

struct fota_rom_file {
    int64_t id;                        /* set by rom_create */
    char    name[FOTA_NAME_MAX];       /* "user1.bin", "user2.bin", ... */
    char    sha256[FOTA_HASH_HEX];     /* blob key */
    int64_t size;
    int     slot;                      /* 0 none, 1 user1, 2 user2 (from the image) */
    int64_t download_count;
};

struct fota_rom {
    int64_t id;
    int64_t product_id;
    char    version[FOTA_VERSION_MAX];
    char    codename[FOTA_NAME_MAX];
    char    changelog[FOTA_CHANGELOG_MAX];
    int     current;                   /* 1: the product's recommended version */
    int64_t created;
    size_t  nfiles;
    struct fota_rom_file files[FOTA_ROM_MAX_FILES];
};

struct fota_device {
    int64_t id;
    int64_t product_id;
    char    name[FOTA_NAME_MAX];
    char    bssid[18];                 /* "18:fe:34:97:f3:cd", lower-case; "" unknown */
    int     activated;
    int64_t activated_at;
    char    rom_version[FOTA_VERSION_MAX];
    int     running_slot;              /* 0 unknown, 1 user1, 2 user2 */
    int64_t last_active;
    int     online;
    int64_t created;
    int     key_generation;            /* master key derivation counter (keys.h) */
};

/* Fields for device_update: which members of struct fota_device to write. */
enum {
    FOTA_DEV_F_NAME        = 1 << 0,
    FOTA_DEV_F_BSSID       = 1 << 1,
    FOTA_DEV_F_ACTIVATION  = 1 << 2,   /* activated, activated_at */
    FOTA_DEV_F_ROM_VERSION = 1 << 3,
    FOTA_DEV_F_SLOT        = 1 << 4,
    FOTA_DEV_F_PRESENCE    = 1 << 5,   /* last_active, online */
    FOTA_DEV_F_KEYGEN      = 1 << 6
};

/* What the device itself reports (its version after an upgrade, its slot, its
 * presence): a durable store may write these like messages and presence
 * (surviving a crash of fotad, not necessarily a power loss), since the report
 * that set them is written that way too. Any other field makes the update
 * fully durable. */
#define FOTA_DEV_F_REPORTED (FOTA_DEV_F_ROM_VERSION | FOTA_DEV_F_SLOT | FOTA_DEV_F_PRESENCE)

/* One row of a batched presence write (pings do not fsync one by one). */
struct fota_presence {
    int64_t device_id;
    int64_t last_active;
    int     online;
};

enum fota_key_kind {
    FOTA_KEY_ADMIN = 1,    /* full control */
    FOTA_KEY_OWNER,        /* one device, API side */
    FOTA_KEY_MASTER,       /* one device: device channel and ROM download */
    FOTA_KEY_PRODUCT       /* read-only ROM listing/download for one product */
};

struct fota_key {
    char    hash[FOTA_HASH_HEX];       /* SHA-256 hex of the 40-char key; never the key */
    int     kind;                      /* enum fota_key_kind */
    int64_t product_id;                /* 0 for admin */
    int64_t device_id;                 /* 0 unless owner/master */
    int64_t created;
};

/* device_create_many: at most this many devices a call; each has this many
 * key rows (master and owner). */
#define FOTA_DEVICE_BATCH_MAX 1000
#define FOTA_DEVICE_KEYS      2

/* Fills the key rows of device d (its id and created set) for
 * device_create_many: hash and kind of each of keys[0..FOTA_DEVICE_KEYS);
 * the store sets their product, device and created. Runs inside the
 * store's transaction: no store calls. */
typedef void (*fota_store_device_keys_fn)(void *ud, const struct fota_device *d,
                                          struct fota_key keys[FOTA_DEVICE_KEYS]);

enum fota_command_state {
    FOTA_CMD_QUEUED = 1,   /* device offline: delivered when it next connects */
    FOTA_CMD_DELIVERED,    /* written to the device's connection */
    FOTA_CMD_ACKED,        /* the device's D4 reply with the same nonce arrived */
    FOTA_CMD_DONE,         /* finished (e.g. upgrade reported success) */
    FOTA_CMD_FAILED,
    FOTA_CMD_TIMEOUT,
    FOTA_CMD_CANCELLED
};

/* A command row. Its params and result are decoded once, where the row
 * leaves the store, and travel as jansson values from there: a row read
 * from the store owns one reference to each (fota_store_command_cleanup
 * drops them); a row handed to the store is only read (the store encodes
 * it: sorted keys, json.dumps separators). */
struct fota_command {
    int64_t id;
    int64_t device_id;
    int64_t nonce;                     /* 31-bit positive, fits the device's parser */
    char    action[32];                /* "sys_upgrade", "sys_reboot", ... */
    struct json_t *params;             /* a JSON object: {"version": "v1.1"}; read rows: never
                                          NULL (an empty object when none was stored) */
    int     state;                     /* enum fota_command_state */
    struct json_t *result;             /* the device's reply or the outcome; NULL: none */
    int64_t created;
    int64_t updated;
};

/* Drops c's references to params and result and sets them to NULL (c's
 * storage stays the caller's). NULL-safe; a cleaned row may be cleaned again. */
void fota_store_command_cleanup(struct fota_command *c);
/* The end of an op that read *row for its caller: *out takes it when rc is
 * 0 or FOTA_EBUSY (the row as it stands, refused), else row is cleaned and
 * *out zeroed. out may be NULL (row cleaned). */
void fota_store_command_give(struct fota_command *row, struct fota_command *out, int rc);
/* 1 when a command in state may still take its device's reply or report
 * (DELIVERED, ACKED, TIMEOUT), and the state a reply with status moves it
 * to (command_reply). */
int fota_store_command_open(int state);
int fota_store_command_reply_state(const char *action, int status);
/* Cleans every row of a list from command_list_device, then frees it. */
void fota_store_command_list_free(struct fota_command *list, size_t n);

/* One row of command_update_batch. */
struct fota_command_set {
    int64_t     id;
    int         state;                 /* enum fota_command_state */
    int64_t     updated;               /* 0 = now */
    const struct json_t *result;       /* borrowed; NULL leaves the stored result as it is.
                                          Rows sharing one value are encoded once. */
};

struct fota_message {
    int64_t id;
    int64_t product_id;
    int64_t device_id;                 /* 0 for product-wide messages */
    char    action[48];                /* "rom_update_available", "device_upgrade_success", ... */
    char    body[FOTA_JSON_MAX];       /* JSON object text */
    int64_t created;
};

/* A device's report (D7) as report_batch writes it: its message and the
 * fields it reports of the device. */
struct fota_report_row {
    struct fota_message m;             /* id and created are set by report_batch */
    unsigned fields;                   /* FOTA_DEV_F_ROM_VERSION, FOTA_DEV_F_SLOT, or 0 */
    char    rom_version[FOTA_VERSION_MAX];
    int     running_slot;
};

/* report_batch's check of its rows, both backends: FOTA_EINVAL for a row
 * with an empty action or a field other than ROM_VERSION and SLOT, else 0. */
int fota_store_report_rows_check(const struct fota_report_row *rows, size_t n);

struct fota_message_filter {
    int64_t product_id;                /* 0 = any */
    int64_t device_id;                 /* 0 = any */
    int64_t before_id;                 /* 0 = newest; else only ids < before_id (paging) */
    int64_t after_id;                  /* 0 = none; else only ids > after_id (following) */
    size_t  limit;                     /* max rows; 0 means 50 */
};

/* Downloads of one file by one device (0: anonymous), for the ledger. */
struct fota_download_row {
    int64_t device_id;
    int64_t file_id;
    int64_t bytes;
    int completed;                  /* downloads finished (download_count) */
};

/* A finished legacy (port 5555) transfer. */
struct fota_transfer {
    int64_t id;
    char    peer[64];                  /* "1.2.3.4:5678" or "[::1]:5678" */
    int     section;                   /* 1 or 2 */
    int64_t bytes;
    char    result[32];                /* "ok", "client_closed", "stalled", ... */
    int64_t duration_ms;
    char    mode[16];                  /* "paced" or "stream" */
    int64_t created;
};

/* Where a retention round is: the backend's own bookkeeping, zeroed by the
 * caller to start a round and left alone until the round is over. */
struct fota_prune_pos {
    int     phase;
    int64_t excess;                    /* rows still to go (over keep_rows; of device_id) */
    int64_t device_id, id, count;      /* the per-device pass: where it stopped */
};

/* Retention of a log table (messages, transfers): a round removes the rows
 * outside any of the limits set. */
struct fota_retention {
    int64_t older_than;                /* Unix seconds: rows created before go; 0 = no age limit */
    int64_t keep_rows;                 /* only the newest keep_rows rows stay; 0 = no limit */
    int64_t keep_per_device;           /* messages: each device's newest rows stay; 0 = no limit */
    size_t  max_batch;                 /* rows one call deletes at most; 0 = FOTA_PRUNE_BATCH */
    struct fota_prune_pos pos;         /* zero before a round's first call */
};
#define FOTA_PRUNE_BATCH 500

/* ---- Rollouts (server/rollout/; SQLite: store_sqlite_rollout*.c) ---- */

enum fota_rollout_state {
    FOTA_ROLLOUT_RUNNING = 1,
    FOTA_ROLLOUT_CANCELLING,           /* cancelled; pushed members still report */
    FOTA_ROLLOUT_CANCELLED,
    FOTA_ROLLOUT_FINISHED,
    FOTA_ROLLOUT_INTERRUPTED,          /* imported from DATA/jobs.json while it ran */
    FOTA_ROLLOUT_PAUSED,               /* by itself (a stage's failures) or on request: nothing
                                          new starts until it is resumed */
    FOTA_ROLLOUT_APPROVAL              /* its next stage waits for an approval */
};

enum fota_rollout_member_state {
    FOTA_RM_WAITING = 1,               /* online, waiting for room in the window */
    FOTA_RM_QUEUED,                    /* offline: pushed within the window once it connects */
    FOTA_RM_DELIVERED,                 /* sys_upgrade written to its connection */
    FOTA_RM_ACKED,                     /* its D4 arrived */
    FOTA_RM_DONE,                      /* its D7 reported success (and it stayed healthy) */
    FOTA_RM_FAILED,
    FOTA_RM_TIMEOUT,
    FOTA_RM_DELETED,                   /* the device was deleted */
    FOTA_RM_CANCELLED,                 /* the rollout stopped before pushing to it */
    FOTA_RM_VERIFYING                  /* it reported success; its health time runs */
};

/* Why a member failed (fota_rollout_member_row.reason; docs/api.md). */
enum fota_rollout_reason {
    FOTA_RR_NONE = 0,
    FOTA_RR_REFUSED,                   /* its D4 was an error */
    FOTA_RR_REPORTED,                  /* it reported a failed upgrade */
    FOTA_RR_PUSH,                      /* the push could not be written or stored */
    FOTA_RR_OLD_VERSION,               /* it came back on another version than the rollout's */
    FOTA_RR_REBOOT_LOOP,               /* it rebooted more than max_reboots in its health time */
    FOTA_RR_SILENT,                    /* gone at the end of its health time */
    FOTA_RR_NO_REBOOT                  /* never came back after the rollout's reboot */
};

/* How many members are in each state (and the selection's skipped devices). */
struct fota_rollout_counts {
    int64_t total, skipped, waiting, queued, active, delivered, acked;
    int64_t succeeded, failed, timed_out, deleted, cancelled, verifying;
};

#define FOTA_ROLLOUT_STAGES_MAX 16

/* How a stage's members were chosen (docs/api.md, "Stages"). */
enum fota_rollout_stage_kind {
    FOTA_STAGE_ALL = 0,                /* the rollout has no stages: every member */
    FOTA_STAGE_PERCENT,                /* up to value % of the members, counting earlier stages */
    FOTA_STAGE_COUNT,                  /* value more members */
    FOTA_STAGE_DEVICES,                /* the listed devices (value: how many were listed) */
    FOTA_STAGE_REST                    /* the members the listed stages left over */
};

struct fota_rollout_stage {
    int     kind;                      /* enum fota_rollout_stage_kind */
    int64_t value;
    int     success;                   /* % of its members that must succeed before the next */
    int64_t max_failures;              /* failed + timed out that pause the rollout; -1: none */
    int     approval;                  /* 1: it starts only once approved */
    int64_t fail_base;                 /* its failures when the rollout was last resumed */
    int64_t total, succeeded, failed, timed_out, deleted, cancelled;
    int64_t started, approved;         /* Unix seconds; 0: not yet */
};

/* hours_from/hours_to: a maintenance window in minutes of the UTC day. */
#define FOTA_ROLLOUT_ANY_HOUR (-1)
#define FOTA_ROLLOUT_REASON_MAX 200

struct fota_rollout_row {
    int64_t id;
    int64_t product_id;
    char    version[FOTA_VERSION_MAX];
    char    filter[FOTA_JSON_MAX];     /* the request's filter, JSON object text */
    int     reboot;
    int64_t window;                    /* devices of the product upgrading at once */
    int64_t timeout_s;                 /* a pushed device must report by then */
    int64_t max_failures;              /* a stage's default; -1: no limit */
    int     state;                     /* enum fota_rollout_state */
    int     halted;                    /* paused by itself: a stage's failures passed its limit */
    struct fota_rollout_counts n;
    double  ms_delivered, ms_acked, ms_finished; /* since created; < 0: not yet */
    int64_t created;
    int64_t updated;
    int64_t health_s;                  /* a success counts once it stayed healthy this long; 0: at once */
    int64_t max_reboots;               /* reboots allowed in the health time beyond the rollout's own */
    int     hours_from, hours_to;      /* maintenance window; FOTA_ROLLOUT_ANY_HOUR: none */
    int64_t seed;                      /* the order percent and count stages take members in */
    int64_t rollback_of;               /* the rollout this one rolls back; 0: none */
    int64_t paused_at;                 /* Unix seconds of the pause; 0: not paused */
    char    pause_reason[FOTA_ROLLOUT_REASON_MAX];
    int     stage;                     /* the current stage, 0-based */
    int     nstages;                   /* 0 (a rollout stored before stages): one ALL stage */
    struct fota_rollout_stage stages[FOTA_ROLLOUT_STAGES_MAX];
};

struct fota_rollout_member_row {
    int64_t rollout_id;
    int64_t device_id;
    int     stage;                     /* 0-based */
    int     state;                     /* enum fota_rollout_member_state */
    int64_t command_id;                /* its sys_upgrade command row, 0 before the push */
    int64_t nonce;
    int64_t pushed;                    /* Unix seconds of the push, 0 before it */
    int64_t updated;                   /* 0 = now (rollout_save) */
    int     reason;                    /* enum fota_rollout_reason */
    int     boots;                     /* boots seen in its health time */
    int64_t reported;                  /* Unix seconds of its success report (health began); 0 */
    char    pre_version[FOTA_VERSION_MAX]; /* its version when selected: written by the first
                                              save only (later saves keep the stored one) */
};

/* What happened to a member of a rollout on an instance other than the one
 * driving it (docs/scale-out.md): a row of rollout_events, written by the
 * instance holding the device, consumed by the driver. */
enum fota_rollout_event_kind {
    FOTA_REV_ONLINE = 1,               /* its device identified here (version) */
    FOTA_REV_REPLY = 2,                /* its D4 reply (status) */
    FOTA_REV_REPORT = 3,               /* its D7 report (status 1 upgraded, 0 failed; version) */
    FOTA_REV_OFFLINE = 4,              /* its device's connection here closed */
    FOTA_REV_PUSHED = 5                /* the push went out on its connection here */
};

struct fota_rollout_event {
    int64_t id;                        /* set by the store: its row's, in insertion order */
    int64_t rollout_id;
    int64_t device_id;
    int64_t nonce;
    int     kind;                      /* enum fota_rollout_event_kind */
    int     status;
    char    version[FOTA_VERSION_MAX];
    int64_t instance_id;               /* the instance that wrote it */
    int64_t at;                        /* Unix seconds */
};

#define FOTA_ROLLOUT_EVENTS_ROW  32    /* events one stored row holds at most (about 2 KB:
                                          PostgreSQL keeps it in its page) */
#define FOTA_ROLLOUT_EVENTS_TAKE 256   /* stored rows one rollout_events_take consumes at most */

/* ---- A fleet's devices selected, sorted and paged; their tags
 * (store_sqlite_devpage.c, store_sqlite_tags.c; docs/api.md "Devices") ---- */

#define FOTA_TAG_MAX         64   /* a tag incl. NUL: 1..63 of A-Z a-z 0-9 . _ - : = */
#define FOTA_TAGS_PER_DEVICE 32   /* tags one device carries at most */
#define FOTA_SELECT_MAX      16   /* tags, or versions, in one selection */

/* 1 when tag is a valid tag (FOTA_TAG_MAX, its characters), else 0. */
int fota_store_tag_valid(const char *tag);

/* Which devices: every member set must match. Strings are borrowed for
 * the call. */
struct fota_device_sel {
    int64_t     product_id;            /* 0: every product */
    const char *name;                  /* NULL, or exactly this name */
    const char *q;                     /* NULL, or a search (below) */
    const char *tags[FOTA_SELECT_MAX]; /* carries every one of them */
    size_t      ntags;
    const char *versions[FOTA_SELECT_MAX]; /* rom_version is one of them ("" unknown) */
    size_t      nversions;
    int         online;                /* -1 any; 1 online; 0 offline (the rule below) */
    int64_t     checkin_before;        /* 0, or last_active < this (a device never seen: 0) */
    int64_t     checkin_after;         /* 0, or last_active >= this */
};

/* The orders of device_page; each is completed by the device id, so two
 * devices never tie and a page's last row is a position in the order. */
enum fota_device_sort {
    FOTA_DEVICE_SORT_ID = 0,
    FOTA_DEVICE_SORT_NAME,
    FOTA_DEVICE_SORT_VERSION,          /* rom_version (text order) */
    FOTA_DEVICE_SORT_LAST_ACTIVE,      /* the last check-in: ping, connect or HTTP check-in */
    FOTA_DEVICE_SORT_CREATED
};

/* A position in an order: the sort key and id of the last row of the page
 * before (fota_device_key_of takes them from a row). id 0: the start. */
struct fota_device_key {
    int64_t id;
    int64_t num;                       /* last_active or created */
    char    text[FOTA_VERSION_MAX];    /* name or rom_version */
};

struct fota_device_query {
    struct fota_device_sel sel;
    int    sort;                       /* enum fota_device_sort */
    int    desc;                       /* 1: descending (ids too) */
    struct fota_device_key after;      /* only rows after this position */
    size_t limit;                      /* at most this many rows; 0: every one */
};

/* The position of row d in the order sort (for the next page's after). */
void fota_device_key_of(const struct fota_device *d, int sort, struct fota_device_key *out);

/* A tag and the number of devices carrying it (tag_list). */
struct fota_tag_count {
    char    tag[FOTA_TAG_MAX];
    int64_t devices;
};

/* device_tags_edit's modes. */
enum { FOTA_TAGS_ADD = 1, FOTA_TAGS_REMOVE, FOTA_TAGS_SET };

/* A rollout's counters at one moment (GET /v1/rollouts/ID/progress). */
struct fota_rollout_sample {
    int64_t rollout_id;
    int64_t t;                         /* Unix seconds */
    struct fota_rollout_counts n;
};
#define FOTA_ROLLOUT_SAMPLES_MAX 1440  /* samples kept per rollout (store.h, rollout_sample_add) */

/* One row of device_census: the devices of a product that run one version
 * (what GET /metrics shows, server/metrics/). */
struct fota_census_row {
    int64_t product_id;
    char    product[FOTA_NAME_MAX];    /* the product's name */
    int     arduino;                   /* 1: platform "arduino" (store_arduino.h), 0: "nonos" */
    char    version[FOTA_VERSION_MAX]; /* the devices' rom_version; "" unknown or no device */
    int64_t devices;                   /* 0 only in the row of a product without devices */
    int64_t online;                    /* nonos: online (device channel); arduino: a check-in
                                          within the product's checkin_interval */
    char    current[FOTA_VERSION_MAX]; /* the product's current release, "" none */
    int64_t releases;                  /* the product's releases */
};

/* One bucket of product_activity: what a product's fleet did in [t, t + step). */
struct fota_activity_row {
    int64_t t;                         /* the bucket's start, Unix seconds (a multiple of step) */
    int64_t upgraded;                  /* device_upgrade_success messages */
    int64_t failed;                    /* device_upgrade_failed messages */
    int64_t downloads;                 /* finished firmware downloads (the ledger's completions) */
    int64_t bytes;                     /* firmware bytes sent */
};
/* How long a product's per-minute activity counts are kept (seconds). */
#define FOTA_ACTIVITY_KEEP_S (31 * 86400)

struct fota_store;
struct fota_reserve;                   /* reserve.h */

struct fota_store_ops {
    const char *name;                                      /* "sqlite", "postgresql", ... */
    void (*close)(struct fota_store *s);                   /* flushes and frees; NULL-safe wrapper below */

    /* Products. product_create sets p->id and p->created. EEXIST on a duplicate name.
     * EINVAL for an empty name or a slot_check other than FOTA_SLOT_CHECK_*;
     * an empty status is stored as "development".
     * product_list is in id order. product_get and product_list count the
     * products' devices (O(devices): two counts over a product's rows);
     * product_head and product_heads are the same rows without them
     * (devices_total and devices_activated 0), in time independent of the
     * fleet: what a route, a device path or a module that checks or reads the
     * products themselves takes. */
    int (*product_create)(struct fota_store *s, struct fota_product *p);
    int (*product_get)(struct fota_store *s, int64_t id, struct fota_product *out);
    int (*product_head)(struct fota_store *s, int64_t id, struct fota_product *out);
    int (*product_find)(struct fota_store *s, const char *name, struct fota_product *out);
    int (*product_list)(struct fota_store *s, struct fota_product **out, size_t *n);
    int (*product_heads)(struct fota_store *s, struct fota_product **out, size_t *n);

    /* Releases. rom_create inserts the release and its file rows in ONE
     * transaction (blobs must already be durable); sets ids and created.
     * EEXIST if (product, version) exists. rom_set_current makes exactly one
     * release of the product current, atomically.
     * rom_create: ENOENT for an unknown product, EINVAL for an empty version or
     * nfiles > FOTA_ROM_MAX_FILES, EEXIST also for two files with the same
     * name (nothing is written then); rom->current is ignored (a new release
     * is never current: call rom_set_current). File ids and download counts
     * are filled in; files come back in the order they were given.
     * rom_set_current: ENOENT (and no change) for an unknown version. */
    int (*rom_create)(struct fota_store *s, struct fota_rom *rom);
    int (*rom_get)(struct fota_store *s, int64_t product_id, const char *version, struct fota_rom *out);
    int (*rom_list)(struct fota_store *s, int64_t product_id, struct fota_rom **out, size_t *n); /* newest first */
    int (*rom_set_current)(struct fota_store *s, int64_t product_id, const char *version);
    int (*rom_current)(struct fota_store *s, int64_t product_id, struct fota_rom *out); /* ENOENT if none */

    /* Devices. device_create sets d->id and d->created; ENOENT for an unknown
     * product. device_list: product_id 0 lists every device; id order.
     * device_update writes only the FOTA_DEV_F_* groups in fields; ENOENT for
     * an unknown id; with only FOTA_DEV_F_REPORTED fields it need not fsync. device_presence_batch writes all rows in one transaction
     * and skips ids that do not exist. */
    int (*device_create)(struct fota_store *s, struct fota_device *d);
    /* device_create_many: the n devices d[] (1..FOTA_DEVICE_BATCH_MAX, each
     * as device_create takes it) and each one's key rows (keys() once per
     * device, its id known), in one transaction: all or none. Sets each
     * id (ascending in d's order) and created. EINVAL for n out of range,
     * ENOENT for an unknown product, EEXIST for a key hash that exists. */
    int (*device_create_many)(struct fota_store *s, struct fota_device *d, size_t n,
                              fota_store_device_keys_fn keys, void *ud);
    int (*device_get)(struct fota_store *s, int64_t id, struct fota_device *out);
    int (*device_list)(struct fota_store *s, int64_t product_id, struct fota_device **out, size_t *n);
    int (*device_update)(struct fota_store *s, const struct fota_device *d, unsigned fields);
    int (*device_presence_batch)(struct fota_store *s, const struct fota_presence *rows, size_t n);

    /* Keys (hashed). EEXIST on a duplicate hash; ENOENT if a non-zero
     * product_id/device_id does not exist. key_create sets created when 0.
     * key_delete_for_device: kind 0 deletes every kind; 0 even if none matched. */
    int (*key_create)(struct fota_store *s, const struct fota_key *k);
    int (*key_lookup)(struct fota_store *s, const char *hash_hex, struct fota_key *out);
    int (*key_delete_for_device)(struct fota_store *s, int64_t device_id, int kind);

    /* Commands. command_create sets id, created, updated. command_list_device
     * returns a device's commands in the given state (0 = any), oldest first.
     * command_create: ENOENT for an unknown device; nonce 0 gets a random
     * 31-bit nonce, state 0 becomes FOTA_CMD_QUEUED (both written back).
     * command_update: updated 0 means now; ENOENT for an unknown id.
     * command_create, _get, _find_nonce and _list_device: see struct
     * fota_command for who owns params and result. */
    int (*command_create)(struct fota_store *s, struct fota_command *c);
    int (*command_update)(struct fota_store *s, const struct fota_command *c); /* state, result, updated */
    int (*command_get)(struct fota_store *s, int64_t id, struct fota_command *out);
    /* command_find_nonce: the device's newest command (highest id) with this
     * nonce, the lookup of a device's reply; ENOENT if it has none. Indexed:
     * its cost does not grow with the device's number of commands. */
    int (*command_find_nonce)(struct fota_store *s, int64_t device_id, int64_t nonce,
                              struct fota_command *out);
    int (*command_list_device)(struct fota_store *s, int64_t device_id, int state,
                               struct fota_command **out, size_t *n);

    /* Batched commands (bulk upgrades, server/device/rpc_fanout.c): one
     * transaction for all rows, not one per device.
     * command_create_many inserts n commands that differ only in device and
     * nonce: tmpl gives action, params, state (0 = QUEUED) and result;
     * nonces[i] 0 gets a random 31-bit nonce (written back); ids[i] receives
     * row i's id. EINVAL for an empty action, ENOENT (nothing written) if a
     * device does not exist. A sys_upgrade batch replaces, in the same
     * transaction, each device's queued sys_upgrade commands older than
     * its new row, as command_create_replacing does (whatever state the
     * batch is written in): a rollout's upgrade never queues a second.
     * command_update_batch writes state and updated (0 = now) of every row,
     * and result where it is not NULL; unknown ids are skipped, and so is a
     * row that would open again (queued, delivered, acked) a command that
     * ended (done, failed, cancelled): a batch made from what its writer
     * knew before (a rollout's members) never undoes the outcome that
     * another writer recorded meanwhile (an Arduino check-in's failure). */
    int (*command_create_many)(struct fota_store *s, const struct fota_command *tmpl,
                               const int64_t *device_ids, int64_t *nonces, int64_t *ids, size_t n);
    int (*command_update_batch)(struct fota_store *s, const struct fota_command_set *rows, size_t n);

    /* Messages, newest first. product_id/device_id are not checked (0 = none).
     * EINVAL for an empty action. message_list: with after_id != 0 the rows
     * come OLDEST first (a "follow" feed: ask again with after_id = the last
     * id received and no message is skipped however many arrived); otherwise
     * newest first (browse back with before_id = the last id received).
     * limit 0 means 50; limits above 1000 are clamped to 1000. */
    int (*message_add)(struct fota_store *s, struct fota_message *m);  /* sets id, created if 0 */
    /* n device reports in one transaction, device traffic (not fsynced, no
     * new catalog generation): each row's reported fields as device_update
     * writes them (its device's generation moves; a device that no longer
     * exists is skipped) and its message as message_add writes it (id and
     * created set, counted in its product's minute), ids in row order.
     * EINVAL (nothing written) for a row with an empty action or a field
     * other than FOTA_DEV_F_ROM_VERSION and FOTA_DEV_F_SLOT. */
    int (*report_batch)(struct fota_store *s, struct fota_report_row *rows, size_t n);
    int (*message_list)(struct fota_store *s, const struct fota_message_filter *f,
                        struct fota_message **out, size_t *n);

    /* Download ledger: bytes served per device and file (adds). device_id 0
     * is an anonymous (product key) download. ENOENT for an unknown file id,
     * EINVAL for negative bytes or completed; completed (a count of finished
     * downloads, usually 0 or 1, more for a batch) is added to the file's
     * download_count. download_bytes sums a device's bytes over all files. */
    int (*download_add)(struct fota_store *s, int64_t device_id, int64_t file_id, int64_t bytes, int completed);
    /* n rows of download_add in one transaction (a serving loop's batch): a
     * row of an unknown file is skipped, the others are written; EINVAL
     * (nothing written) for negative bytes or completed in any row. The
     * rows may repeat a (device, file): they add up. Device traffic: no new
     * generation. */
    int (*download_add_batch)(struct fota_store *s, const struct fota_download_row *rows, size_t n);
    int (*download_bytes)(struct fota_store *s, int64_t device_id, int64_t *bytes);

    /* Legacy transfers, newest first; transfer_add sets id, and created if 0;
     * limit as for message_list. */
    int (*transfer_add)(struct fota_store *s, struct fota_transfer *t);
    int (*transfer_list)(struct fota_store *s, size_t limit, struct fota_transfer **out, size_t *n);

    /* Retention (fotad's store module calls these on a timer). A round is
     * calls with the same r (r->pos zeroed before the first) until *more
     * comes back 0; then no row is outside the retention r as it was when
     * the round began (rows that arrive meanwhile wait for the next round).
     * Each call is one transaction, neither fsynced nor a new generation,
     * that deletes at most r->max_batch rows (*deleted), the oldest first,
     * and reads a bounded part of the table, so the store is held for a
     * short moment however large the table. Rows are judged in id order
     * (ids follow arrival): by age from the oldest row up to the first one
     * younger than older_than (a row stays while an older-by-id row is
     * kept); by count and per device the newest stay (messages of device_id
     * 0, the product-wide ones, count only towards keep_rows). Kept rows
     * keep their ids and no deleted id is handed out again, so a follower's
     * message_list after_id skips only what was pruned. EINVAL for a
     * negative limit; after an error r->pos is as before the call, so the
     * round may go on. */
    int (*message_prune)(struct fota_store *s, struct fota_retention *r, size_t *deleted,
                         int *more);
    int (*transfer_prune)(struct fota_store *s, struct fota_retention *r, size_t *deleted,
                          int *more);

    /* Blob references: every distinct rom_files sha256, sorted ascending
     * (strcmp), for the start-up sweep of orphan blobs. *out is the
     * caller's to free (non-NULL even when *n is 0). EIO. */
    int (*blob_refs)(struct fota_store *s, char (**out)[FOTA_HASH_HEX], size_t *n);

    /* Release files kept in the store itself, so that several fotad share
     * them (PostgreSQL: tables blobs and blob_chunks); NULL both for a store
     * whose files live only in DATA/blobs (SQLite). Each instance keeps a
     * verified local copy (blob.h: fota_blob_store_set_remote).
     * blob_put: the len bytes under sha256 (which the caller computed), one
     * durable transaction; nothing is written when the store holds that
     * blob already. EUNAVAIL, ENOSPC, EIO.
     * blob_fetch: the blob's bytes in order, handed to sink in pieces of at
     * most FOTA_BLOB_CHUNK bytes (a non-zero return from sink stops it and
     * is returned); *size (may be NULL) gets the size the store recorded.
     * ENOENT when the store has no such blob, EIO when a piece is missing,
     * EUNAVAIL. */
    int (*blob_put)(struct fota_store *s, const char *sha256, const void *data, size_t len);
    int (*blob_fetch)(struct fota_store *s, const char *sha256,
                      int (*sink)(void *ud, const void *data, size_t len), void *ud,
                      int64_t *size);

    /* Deletion (admin). Each runs in ONE durable transaction (all or
     * nothing) and starts a new generation, so per-loop caches drop the
     * rows and keys at their next request. Blobs are not touched: ask
     * blob_refs afterwards for what is still referenced. Messages stay (a
     * log). Ids are never handed out again after a delete (device and product
     * keys are derived from them).
     * rom_delete: the release (product_id, version), its file rows and their
     * download ledger rows. out (may be NULL) receives the release as it was,
     * files included. ENOENT for an unknown release; EBUSY (nothing removed)
     * if it is the product's current release and the product has a device
     * (with no device left, the current release may go too: the product then
     * has none).
     * device_delete: the device, its keys (every kind), its commands and its
     * download ledger rows. ENOENT for an unknown id.
     * product_delete: the product and its product keys. ENOENT for an unknown
     * id; EBUSY (nothing removed) while it has a device or a release. */
    int (*rom_delete)(struct fota_store *s, int64_t product_id, const char *version,
                      struct fota_rom *out);
    int (*device_delete)(struct fota_store *s, int64_t id);
    int (*product_delete)(struct fota_store *s, int64_t id);

    /* Arduino-core products (store_arduino.h, server/arduino/).
     * arduino_product_put inserts or replaces a product's row (durable;
     * ENOENT for an unknown product); arduino_product_get: ENOENT when the
     * product is not an arduino product.
     * arduino_blob_put records the facts of n served files (durable, before
     * the release naming them is created); a sha256 already known keeps its
     * row. arduino_blob_get: ENOENT when unknown.
     * arduino_device_register writes the device row and its arduino row in
     * one durable transaction (d->id, d->created, a->device_id, a->product_id
     * set; the device's other fields take their defaults, except name, bssid
     * and last_active); EEXIST when the product has a device with that
     * non-empty sta_mac already.
     * arduino_device_find: a product's device by STA MAC (its arduino row, or
     * a device whose bssid is that MAC) or, with sta_mac NULL, by name; out
     * has only device_id and product_id (chip_id -1) when the device has no
     * arduino row yet. ENOENT when none; EINVAL unless exactly one of
     * sta_mac and name is given.
     * arduino_device_get: by device id; ENOENT without an arduino row.
     * arduino_device_list: a product's arduino rows in device-id order
     * (array as for the other lists).
     * arduino_device_report writes the reported fields and last_checkin of n
     * rows (creating missing rows; an empty sta_mac keeps the stored one)
     * and each device's last_active, in one transaction; rows of unknown
     * devices are skipped. arduino_device_track writes target,
     * target_rom_id, served_at, served_md5, pin_version and pin_current of
     * one device; arduino_device_mqtt writes its mqtt_topic, mqtt_lwt,
     * mqtt_version and mqtt_seen (both ENOENT for an unknown device). The
     * three are device traffic: not fsynced one by one, no new generation.
     * arduino_device_served writes n completed downloads in one transaction
     * (device traffic too): each row's ledger as download_add does, and for
     * a device its target, target_rom_id, served_at and served_md5 (pins
     * and the rest stay; an unknown device's are skipped); a row of an
     * unknown file is skipped whole; EINVAL (nothing written) for negative
     * bytes or completed. */
    int (*arduino_product_put)(struct fota_store *s, const struct fota_arduino_product *p);
    int (*arduino_product_get)(struct fota_store *s, int64_t product_id,
                               struct fota_arduino_product *out);
    int (*arduino_blob_put)(struct fota_store *s, const struct fota_arduino_blob *b, size_t n);
    int (*arduino_blob_get)(struct fota_store *s, const char *sha256, struct fota_arduino_blob *out);
    int (*arduino_device_register)(struct fota_store *s, struct fota_device *d,
                                   struct fota_arduino_device *a);
    int (*arduino_device_find)(struct fota_store *s, int64_t product_id, const char *sta_mac,
                               const char *name, struct fota_arduino_device *out);
    int (*arduino_device_get)(struct fota_store *s, int64_t device_id,
                              struct fota_arduino_device *out);
    int (*arduino_device_list)(struct fota_store *s, int64_t product_id,
                               struct fota_arduino_device **out, size_t *n);
    int (*arduino_device_report)(struct fota_store *s, const struct fota_arduino_device *rows,
                                 size_t n);
    int (*arduino_device_track)(struct fota_store *s, const struct fota_arduino_device *a);
    int (*arduino_device_mqtt)(struct fota_store *s, const struct fota_arduino_device *a);
    int (*arduino_device_served)(struct fota_store *s, const struct fota_arduino_download *rows,
                                 size_t n);

    /* Rollouts. rollout_create inserts r (state, settings, stages and
     * counters as given) and sets id, created and updated. rollout_save
     * writes, in ONE transaction, the state, pause, current stage, counters
     * and marks of nr rollouts and their stages' counters and times
     * (unknown ids are skipped) and inserts or updates nm member rows (the
     * key is rollout_id + device_id; pre_version only on insert), so a
     * flush of thousands of members is one commit. rollout_get: ENOENT for
     * an unknown id. rollout_list: newest first; product_id 0 = any,
     * state 0 = any. rollout_members: a rollout's members in device id
     * order, those with device_id > after_device only, in state (0 = any),
     * at most limit (0 = all). */
    int (*rollout_create)(struct fota_store *s, struct fota_rollout_row *r);
    int (*rollout_save)(struct fota_store *s, const struct fota_rollout_row *rs, size_t nr,
                        const struct fota_rollout_member_row *ms, size_t nm);
    int (*rollout_get)(struct fota_store *s, int64_t id, struct fota_rollout_row *out);
    int (*rollout_list)(struct fota_store *s, int64_t product_id, int state,
                        struct fota_rollout_row **out, size_t *n);
    int (*rollout_members)(struct fota_store *s, int64_t rollout_id, int64_t after_device,
                           int state, size_t limit, struct fota_rollout_member_row **out,
                           size_t *n);
    /* Several fotad on one database (PostgreSQL only; NULL on SQLite).
     * rollout_events_add inserts n events in one statement, as rows of at
     * most FOTA_ROLLOUT_EVENTS_ROW events in their order, and, in the same
     * commit, notifies channel fota_rollout_ev. rollout_events_take deletes
     * the oldest rows (at most FOTA_ROLLOUT_EVENTS_TAKE: fewer when none is
     * left) and returns their events in order, each with its row's id
     * (ascending; the events of one row share it); fenced like the
     * engine's writes (fota_store_fence). rollout_queued_held: the members of the
     * rollouts ids[0..nids) stored as queued whose device a live instance
     * other than instance_id holds (device_conn), rollout_id and device_id
     * set. */
    int (*rollout_events_add)(struct fota_store *s, const struct fota_rollout_event *rows,
                              size_t n);
    int (*rollout_events_take)(struct fota_store *s, struct fota_rollout_event **out, size_t *n);
    int (*rollout_queued_held)(struct fota_store *s, const int64_t *ids, size_t nids,
                               int64_t instance_id, struct fota_rollout_member_row **out,
                               size_t *n);
    /* A rollout's progress over time. rollout_sample_add stores n samples
     * (one transaction; a sample at the same second as a stored one of its
     * rollout replaces it); a rollout then holding more than
     * FOTA_ROLLOUT_SAMPLES_MAX loses every second one (its newest kept)
     * until it does not, so old stretches grow coarser and the table stays
     * bounded. rollout_samples: a rollout's samples, oldest first. */
    int (*rollout_sample_add)(struct fota_store *s, const struct fota_rollout_sample *rows,
                              size_t n);
    int (*rollout_samples)(struct fota_store *s, int64_t rollout_id,
                           struct fota_rollout_sample **out, size_t *n);

    /* Census, one query each (GET /metrics). device_census: one row per
     * product and device version, products in id order and each product's
     * versions by device count, most first (then by version); a product
     * without devices has one row with devices 0. now (Unix seconds) decides
     * which arduino devices are online. rollout_census: counts[state] = the
     * rollouts in that state (enum fota_rollout_state), for states below
     * ncounts; counts[0] = 0. Read-only: no generation, no fsync. */
    int (*device_census)(struct fota_store *s, int64_t now, struct fota_census_row **out,
                         size_t *n);
    int (*rollout_census)(struct fota_store *s, int64_t *counts, size_t ncounts);

    /* A fleet's devices (docs/api.md, "Devices").
     * device_page: the devices q->sel selects, in q's order, after the
     * position q->after, at most q->limit (0: all) into *out (array as
     * for device_list). Each row's online is the device's presence, the
     * one rule every list, filter and count uses: a device of an arduino
     * product is online as fota_arduino_online (store_arduino.h) says at
     * now (Unix seconds); any other as its device channel says (the
     * online column the presence batch writes). q->sel.q searches: a
     * device matches when its name contains q (ASCII case ignored); when q
     * is hex digits with ':', '-' or '.' between them, also when its MAC
     * (bssid, or an arduino device's STA MAC) contains those digits, or
     * its chip id in hex does; when q is decimal digits, also when its
     * chip id in decimal does. total (may be NULL) gets the number of
     * devices sel selects, the cursor and limit aside. EINVAL for a sort
     * other than FOTA_DEVICE_SORT_* or more than FOTA_SELECT_MAX tags or
     * versions. Read-only: no generation, no fsync.
     * device_tags_edit: on each of the nd devices (one transaction, all or
     * nothing; durable, no generation move: tags are not cached) ADD the
     * nt tags (ones it carries stay once), REMOVE them (ones it lacks are
     * no error) or SET exactly them. EINVAL for an invalid tag
     * (fota_store_tag_valid) or mode; ENOENT when a device does not exist;
     * ERANGE when a device would carry more than FOTA_TAGS_PER_DEVICE.
     * Deleting a device deletes its tags.
     * device_tags: a device's tags in strcmp order (*out the caller's to
     * free, never NULL on success); ENOENT for an unknown device.
     * tag_list: the tags the devices of product_id (0: every product)
     * carry, in strcmp order, each with its number of devices. */
    int (*device_page)(struct fota_store *s, const struct fota_device_query *q, int64_t now,
                       struct fota_device **out, size_t *n, int64_t *total);
    int (*device_tags_edit)(struct fota_store *s, const int64_t *device_ids, size_t nd, int mode,
                            const char *const *tags, size_t nt);
    int (*device_tags)(struct fota_store *s, int64_t device_id, char (**out)[FOTA_TAG_MAX],
                       size_t *n);
    int (*tag_list)(struct fota_store *s, int64_t product_id, struct fota_tag_count **out,
                    size_t *n);

    /* A device's queued commands (docs/api.md, "Commands").
     * command_cancel: the device's command id, when still queued, becomes
     * cancelled with result (borrowed; NULL: {"cancelled": "by request"});
     * out (may be NULL) gets the row as it is after the call (params and
     * result as for command_get). ENOENT when device_id has no command id;
     * EBUSY (nothing changed; out shows its state) when it is past queued.
     * command_create_replacing: command_create, and in the same
     * transaction every queued command of c's device with c's action
     * becomes cancelled with the result {"cancelled": "replaced by command
     * ID", "replaced_by": ID}: a new upgrade replaces the queued one rather
     * than queueing a second. *nreplaced (may be NULL) gets their number,
     * replaced (may be NULL) their first cap ids, oldest first. */
    int (*command_cancel)(struct fota_store *s, int64_t device_id, int64_t id,
                          const struct json_t *result, struct fota_command *out);
    int (*command_create_replacing)(struct fota_store *s, struct fota_command *c,
                                    int64_t *replaced, size_t cap, size_t *nreplaced);

    /* A product's fleet at a glance (GET /v1/products/ID/overview); SQL
     * aggregates, never a device list. Read-only: no generation, no fsync.
     * product_census: device_census's rows of one product only (a product
     * without devices: one row with devices 0); ENOENT for an unknown
     * product.
     * product_activity: the product's counts summed per step seconds, the
     * buckets [t, t + step) with t a multiple of step from since's bucket up
     * to until (exclusive), in time order, only the buckets with a count
     * (array as for the lists). The store counts per minute as it writes:
     * message_add a device_upgrade_success or _failed message of a product
     * (in the minute of its created), download_add the completions and
     * bytes of a file's product (in the current minute); minutes older than
     * FOTA_ACTIVITY_KEEP_S go as new ones are counted, and with their
     * product. EINVAL unless step is a multiple of 60 from 60 to 86400 and
     * since <= until. */
    int (*product_census)(struct fota_store *s, int64_t product_id, int64_t now,
                          struct fota_census_row **out, size_t *n);
    int (*product_activity)(struct fota_store *s, int64_t product_id, int64_t since,
                            int64_t until, int64_t step, struct fota_activity_row **out,
                            size_t *n);

    /* The device channel's command work (server/device/): one statement for
     * a batch of devices, one transaction for a device's reply.
     * command_queued_devices: queued[i] becomes 1 when device_ids[i] has a
     * queued command, else 0 (an unknown id: 0). Read-only: no generation.
     * command_reply: the device's answer to the push with this nonce, to
     * its newest command with it (as command_find_nonce): a command still
     * open (DELIVERED, ACKED or TIMEOUT) becomes FAILED for a status other
     * than 200, else ACKED when its action is sys_upgrade (its D7 report
     * ends it) and DONE for any other, with result (borrowed; NULL: none)
     * and updated now. out (may be NULL) gets the row as after the call
     * (params and result as for command_get). ENOENT when the device has
     * no command with this nonce; EBUSY (nothing changed; out shows its
     * state) when it is not open. */
    int (*command_queued_devices)(struct fota_store *s, const int64_t *device_ids, size_t n,
                                  uint8_t *queued);
    int (*command_reply)(struct fota_store *s, int64_t device_id, int64_t nonce, int status,
                         const struct json_t *result, struct fota_command *out);
};

/* Every implementation's handle starts with this. */
struct fota_store {
    const struct fota_store_ops *ops;
    fota_log_cb log;
    void *log_ud;
    /* Catalog generation, for caches: grows (atomically) after every op that
     * changed the catalog: products, releases and their files, keys, devices
     * created or deleted, a device's key generation. Ops that write only
     * fleet traffic (presence, reported device fields, names, commands,
     * messages, ledgers, transfers) leave it as it is, so a busy fleet does
     * not empty the download caches (a move too many costs a cache refill,
     * never a wrong answer). Read with fota_store_generation(). Every
     * backend counts, starting at 1 when it opens; the conformance suite
     * checks which ops move it and which do not. */
    uint64_t generation;
    /* Device generations, for caches of one device's state: the slot of a
     * device (fota_store_device_generation) grows, before the op returns,
     * after every op that wrote its row (device_update; presence aside) or
     * its commands (any op: create, update, cancel, replace); its arduino
     * slot (fota_store_arduino_generation) after every write of its arduino
     * tracking and MQTT fields (arduino_device_track, _mqtt, _served).
     * Reports, presence and ledgers leave both. Devices whose ids are
     * FOTA_STORE_DEVICE_SLOTS apart share a slot (a refill too many, never a
     * wrong answer). A cache reads a slot before it reads the rows it covers
     * and holds them while the slot and the catalog generation stay as they
     * were. */
    uint64_t device_generation[FOTA_STORE_DEVICE_SLOTS];
    uint64_t arduino_generation[FOTA_STORE_DEVICE_SLOTS];
    /* The disk reserve (reserve.h) that a removal an admin asked for
     * (rom_delete, device_delete, product_delete, key_delete_for_device)
     * gives back when it finds the disk full, to retry once; NULL for none.
     * Set with fota_store_set_reserve before the store is shared between
     * threads, and cleared before the reserve is closed. */
    struct fota_reserve *reserve;
    /* How the store executor (store_exec.h) runs this store's jobs. 0: on
     * the submitting thread, for ops that cost microseconds and serialise
     * internally (SQLite). 1: on store threads of its own, for ops that may
     * wait for a round trip; each of them calls thread_begin (may be NULL)
     * before its first job and thread_end (may be NULL) after its last, to
     * set up and drop what the thread's ops use (a connection). Set by the
     * backend at open; a test may set threaded on any store whose ops are
     * thread-safe. */
    int threaded;
    void (*thread_begin)(struct fota_store *s);
    void (*thread_end)(struct fota_store *s);
    /* The loop guard (fota_store_set_loop_guard); NULL: off. Read and
     * written atomically. */
    int (*loop_guard)(void);
    /* PostgreSQL shared by several fotad: this process's row in the
     * instances table (cluster.h), set once before any device connects;
     * 0 alone (always on SQLite). With it, device_presence_batch also
     * records which instance holds each device it marks online
     * (device_conn), and marks a device offline only while no other
     * instance holds it. */
    int64_t instance_id;
};

/* Arms the loop guard of a store whose ops wait for a round trip
 * (threaded): guard() answers the index of the event loop the calling
 * thread runs, or -1 (fota_loop_current_index). An op called where it
 * answers a loop logs ERROR `store op called on an event loop op=X loop=N`
 * (at most once a second per op, with the number held back) and then runs:
 * the loop waits for it, as it would without the guard. NULL disarms it.
 * SQLite's ops cost microseconds and run on the loops by design: it never
 * looks. Any thread, at any time. */
static inline void fota_store_set_loop_guard(struct fota_store *s, int (*guard)(void))
{
    __atomic_store_n(&s->loop_guard, guard, __ATOMIC_RELEASE);
}

static inline void fota_store_set_reserve(struct fota_store *s, struct fota_reserve *r)
{
    s->reserve = r;
}

static inline uint64_t fota_store_generation(const struct fota_store *s)
{
    return __atomic_load_n(&s->generation, __ATOMIC_ACQUIRE);
}

static inline uint64_t fota_store_device_generation(const struct fota_store *s, int64_t device_id)
{
    return __atomic_load_n(&s->device_generation[(uint64_t)device_id % FOTA_STORE_DEVICE_SLOTS],
                           __ATOMIC_ACQUIRE);
}

static inline uint64_t fota_store_arduino_generation(const struct fota_store *s, int64_t device_id)
{
    return __atomic_load_n(&s->arduino_generation[(uint64_t)device_id % FOTA_STORE_DEVICE_SLOTS],
                           __ATOMIC_ACQUIRE);
}

/* Move a device's generation or its arduino one: a backend after writing
 * its state, or a writer that holds a write of it in a batch of its own
 * (the batch then answers for the device until it is written). */
static inline void fota_store_device_touch(struct fota_store *s, int64_t device_id)
{
    __atomic_add_fetch(&s->device_generation[(uint64_t)device_id % FOTA_STORE_DEVICE_SLOTS], 1,
                       __ATOMIC_RELEASE);
}

static inline void fota_store_arduino_touch(struct fota_store *s, int64_t device_id)
{
    __atomic_add_fetch(&s->arduino_generation[(uint64_t)device_id % FOTA_STORE_DEVICE_SLOTS], 1,
                       __ATOMIC_RELEASE);
}

/* The newest schema version this fotad's SQLite store knows (its number of
 * migrations; PostgreSQL's migration N is the same schema). */
int fota_store_sqlite_schema_version(void);

/* Opens (creating if needed) the SQLite store at path, applying numbered
 * schema migrations; WAL mode. On failure *out is NULL and err holds a message. */
int fota_store_sqlite_open(const char *path, fota_log_cb log, void *log_ud,
                           struct fota_store **out, char *err, size_t errlen);

/* Opens the PostgreSQL store at dsn (libpq's connection string or URI),
 * applying the same numbered schema migrations as SQLite (store_pg_schema.c).
 * Each thread that calls an op uses a connection of its own, made at its
 * first op; a lost connection is made again at a later op, and an op that
 * finds the database unreachable answers FOTA_EUNAVAIL. On failure *out is
 * NULL and err holds a message. */
int fota_store_pg_open(const char *dsn, fota_log_cb log, void *log_ud, struct fota_store **out,
                       char *err, size_t errlen);
/* The calling thread is done with s for now: its connection goes back to the
 * store's spare pool (a thread that ends does the same by itself). */
void fota_store_pg_thread_done(struct fota_store *s);
/* Applies one payload of PostgreSQL channel fota_gen to s's generations:
 * "c" the catalog, "d:ID,ID,..." / "a:ID,..." those devices' device or
 * arduino slots, "d*" / "a*" every such slot, "*" everything. Anything else
 * is ignored. Any thread (the cluster's listener applies other instances'
 * writes with it). */
void fota_store_pg_gen_apply(struct fota_store *s, const char *payload);
/* 1 when pid is the backend of one of s's own connections (whose
 * notifications its ops have applied already), else 0. Any thread. */
int fota_store_pg_own_backend(struct fota_store *s, int pid);

/* The lease that fences the calling thread's writes (docs/scale-out.md):
 * while epoch is non-zero, every transaction a PostgreSQL op of this thread
 * begins first locks lease `rollouts` FOR SHARE and checks that this
 * instance (instance_id) holds it at that epoch and that it has not
 * expired; otherwise the op does nothing and answers FOTA_EPERM. The lock
 * holds a takeover back until the transaction ends, so a write that passed
 * the check lands before another instance can take the lease and read the
 * rows. 0 lifts the fence. SQLite and a store without instance_id ignore
 * it. The rollout engine sets it around its write jobs. */
void fota_store_fence(int64_t epoch);
/* The calling thread's fence epoch (0: none). */
int64_t fota_store_fence_epoch(void);

/* Rollout requests asked of the instance that drives the rollouts (table
 * rollout_asks, docs/scale-out.md "Where to ask"): an instance without lease
 * rollouts writes a request (the POST's path and JSON body), the holder takes
 * it, runs it and writes its reply (HTTP status, body), and the asker reads
 * and deletes the row. Each rings channel fota_rollout_ask in its commit:
 * "ask:ID" when written, "ans:ID:ASKER" when answered. PostgreSQL stores
 * with an instance_id only (another store: FOTA_ENOTSUP); any thread but an
 * event loop (store jobs). */
/* Writes a request of this instance into *id, unless no instance holds lease
 * rollouts unexpired (FOTA_ENOENT: nobody would take it). Requests older
 * than ten minutes (their asker gave up long ago) go in the same statement. */
int fota_store_pg_ask_add(struct fota_store *s, const char *path, const char *body,
                          int64_t *id);
/* Takes request id for this instance: its path and body (malloc'd, the
 * caller frees them), FOTA_ENOENT when it is gone or taken already. */
int fota_store_pg_ask_take(struct fota_store *s, int64_t id, char **path, char **body);
/* The reply of request id, taken by this instance. FOTA_ENOENT when the
 * asker gave up on it (deleted). */
int fota_store_pg_ask_answer(struct fota_store *s, int64_t id, int status, const char *reply);
/* How a request ended, read and deleted by its asker. */
struct fota_store_ask_end {
    int64_t taker;                     /* the instance that took it, 0 none */
    int status;                        /* its reply's HTTP status, 0 none */
    char *reply;                       /* its reply's body (malloc'd; "" with none) */
};
/* Ends request id when nobody took it or its reply is there, or in any case
 * with force: 0 and *out, FOTA_EAGAIN when it is taken and not answered
 * (without force: the row stays), FOTA_ENOENT when it is gone. */
int fota_store_pg_ask_end(struct fota_store *s, int64_t id, int force,
                          struct fota_store_ask_end *out);

/* NULL-safe close. */
static inline void fota_store_close(struct fota_store *s)
{
    if (s)
        s->ops->close(s);
}

#endif
