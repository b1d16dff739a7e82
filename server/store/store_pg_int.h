/* store_pg_int.h - internals shared by the store_pg*.c files.
 *
 * A connection per thread: an op runs on the calling thread's own PGconn
 * (thread-local, per store), taken from a small pool of spare connections
 * or made on first use, so ops of different threads run side by side and
 * the database serialises them. Statements are prepared by name on each
 * connection when first used (again after a reconnect), with the parameter
 * types their first call binds; their SQL sits beside the code that uses
 * it, as in the SQLite store (store_sqlite_int.h). */
#ifndef FOTA_STORE_PG_INT_H
#define FOTA_STORE_PG_INT_H

#include <pthread.h>
#include <libpq-fe.h>
#include "store_int.h"

/* Prepared statements, one name ("s<id>") per id on every connection;
 * each op file adds its ids here. */
enum pg_stmt_id {
    PQ_SCHEMA_NEWEST,
    /* store_pg_catalog.c */
    PQ_PRODUCT_INSERT, PQ_PRODUCT_GET, PQ_PRODUCT_HEAD, PQ_PRODUCT_FIND, PQ_PRODUCT_LIST,
    PQ_PRODUCT_HEADS, PQ_PRODUCT_LOCK,
    PQ_ROM_INSERT, PQ_ROM_FILE_INSERT, PQ_ROM_GET, PQ_ROM_CURRENT, PQ_ROM_LIST, PQ_ROM_ID,
    PQ_ROM_CLEAR_CURRENT, PQ_ROM_SET_CURRENT, PQ_BLOB_REFS,
    /* store_pg_delete.c */
    PQ_DEL_ROM_DEVICES, PQ_DEL_ROM_DL, PQ_DEL_ROM_FILE_ROWS, PQ_DEL_ROM,
    PQ_DEL_PRODUCT_COUNT, PQ_DEL_PRODUCT_KEYS, PQ_DEL_PRODUCT_MINUTES, PQ_DEL_PRODUCT,
    /* store_pg_census.c, store_pg_overview.c, store_pg_tags.c, store_pg_devpage.c */
    PQ_CENSUS_ALL, PQ_CENSUS_PRODUCT, PQ_CENSUS_ROLLOUTS, PQ_CENSUS_ACTIVITY,
    PQ_TAG_LOCK, PQ_TAG_CLEAR, PQ_TAG_DEL, PQ_TAG_ADD, PQ_TAG_OVER, PQ_TAG_GET, PQ_TAG_LIST,
    PQ_TAG_LIST_ALL, PQ_PAGE_KIND,
    /* store_pg_fleet.c (and store_pg_delete.c's device delete) */
    PQ_DEVICE_INSERT, PQ_DEVICE_IDS, PQ_DEVICE_INSERT_MANY, PQ_KEY_INSERT_MANY, PQ_DEVICE_GET, PQ_DEVICE_LIST, PQ_DEVICE_LIST_ALL, PQ_DEVICE_UPDATE,
    PQ_DEVICE_PRESENCE, PQ_DEVICE_PRESENCE_HELD, PQ_KEY_INSERT, PQ_KEY_LOOKUP, PQ_KEY_DELETE, PQ_MINUTE_PRUNE,
    PQ_MINUTE_COUNT, PQ_MINUTE_DOWNLOAD, PQ_MSG_INSERT, PQ_REPORT_DEVICE, PQ_MSG_INSERT_MANY,
    PQ_MSG_LIST0,
    PQ_MSG_LIST7 = PQ_MSG_LIST0 + 7, PQ_DL_UPSERT, PQ_DL_COUNT_FILE, PQ_DL_SUM, PQ_XFER_INSERT,
    PQ_XFER_LIST, PQ_DEL_DEV_LOCK, PQ_DEL_DEV_KEYS, PQ_DEL_DEV_CMDS, PQ_DEL_DEV_DL,
    PQ_DEL_DEV_TAGS, PQ_DEL_DEV,
    /* store_pg_command.c, store_pg_prune.c */
    PQ_CMD_INSERT, PQ_CMD_LOCK_DEVICE, PQ_CMD_LOCK_DEVICES, PQ_CMD_REPLACE, PQ_CMD_IDS,
    PQ_CMD_INSERT_MANY, PQ_CMD_REPLACE_MANY, PQ_CMD_UPDATE_MANY, PQ_CMD_UPDATE_KEEP, PQ_CMD_GET,
    PQ_CMD_FIND_NONCE,
    PQ_CMD_LIST, PQ_CMD_CANCEL, PQ_CMD_QUEUED_ANY, PQ_CMD_REPLY_FIND, PQ_CMD_REPLY,
    PQ_PRUNE_MSG_WALK, PQ_PRUNE_MSG_COUNT, PQ_PRUNE_MSG_NTH, PQ_PRUNE_MSG_CUT,
    PQ_PRUNE_XFER_WALK, PQ_PRUNE_XFER_COUNT, PQ_PRUNE_XFER_NTH, PQ_PRUNE_XFER_CUT,
    PQ_PRUNE_MSG_SCAN, PQ_PRUNE_MSG_DEV_LAST, PQ_PRUNE_MSG_DEV_CUT,
    /* store_pg_arduino.c */
    PQ_A_PRODUCT_PUT, PQ_A_PRODUCT_GET, PQ_A_BLOB_PUT, PQ_A_BLOB_GET, PQ_A_REGISTER,
    PQ_A_FIND_MAC, PQ_A_FIND_BSSID, PQ_A_FIND_NAME, PQ_A_DEV_GET, PQ_A_DEV_LIST, PQ_A_REPORT,
    PQ_A_REPORT_ACTIVE, PQ_A_TRACK, PQ_A_MQTT, PQ_A_SERVED_LEDGER, PQ_A_SERVED_COUNT,
    PQ_A_SERVED_MINUTE, PQ_A_SERVED_DEVICE,
    /* store_pg_rollout.c */
    PQ_RO_STAGES, PQ_RO_CREATE, PQ_RO_CREATE_STAGES, PQ_RO_SAVE_MEMBERS, PQ_RO_SAVE_MEMBERS_ONCE, PQ_RO_SAVE_ROLLOUTS,
    PQ_RO_SAVE_STAGES, PQ_RO_GET, PQ_RO_LIST, PQ_RO_MEMBERS, PQ_RO_SAMPLE_ADD, PQ_RO_THIN,
    PQ_RO_SAMPLES, PQ_RO_EV_ADD, PQ_RO_EV_TAKE, PQ_RO_QUEUED_HELD,
    /* store_pg_blob.c */
    PQ_BLOB_INSERT, PQ_BLOB_CHUNK_INSERT, PQ_BLOB_GET, PQ_BLOB_CHUNK_GET,
    /* store_pg_ask.c */
    PQ_ASK_ADD, PQ_ASK_TAKE, PQ_ASK_ANSWER, PQ_ASK_END,
    /* store_pg.c */
    PQ_LEASE_FENCE,
    PQ_COUNT_
};

/* Parameter types (pg_type.oid; libpq-dev has no header for them). */
#define FOTA_PG_INT8   ((Oid)20)
#define FOTA_PG_TEXT   ((Oid)25)
#define FOTA_PG_FLOAT8 ((Oid)701)
#define FOTA_PG_INT8_ARRAY   ((Oid)1016)
#define FOTA_PG_TEXT_ARRAY   ((Oid)1009)
#define FOTA_PG_FLOAT8_ARRAY ((Oid)1022)

#define FOTA_PG_PARAMS_MAX 48
#define FOTA_PG_CONN_MAX   96   /* connections of one store, spare ones included: the
                                   executor's threads (at most 64) and a few others */
#define FOTA_PG_GUARD_OPS  16   /* ops the loop guard limits its lines for, each alone */
#define FOTA_PG_SPARE_MAX  4    /* idle connections kept for the next thread */

struct pg_store;

/* One connection, used by one thread at a time (the thread it belongs to). */
struct pg_conn {
    struct pg_store *q;
    PGconn *pg;
    struct pg_conn *next;             /* q->all */
    struct pg_conn *next_spare;       /* q->spare while nobody holds it */
    int broken;                       /* lost: reconnect before the next op */
    int64_t retry_ms;                 /* fota_clock_mono_ms() before which no reconnect is tried */
    int backoff_ms;                   /* the wait after a failed reconnect: 50 ms doubling to 1 s */
    int in_tx;                        /* a transaction is open */
    int be_pid;                       /* its backend's pid, 0 while lost (atomic: read by
                                         fota_store_pg_own_backend from any thread) */
    /* The op running on it (fota_store_pg_enter .. _leave). */
    const char *op;
    int hot;                          /* this op's changes do not move base.generation */
    int64_t changes;                  /* rows this op inserted, updated or deleted */
    int notified;                     /* a commit of this op told other instances (fota_gen "c") */
    char *gen_mine;                   /* this op's generation payloads ("d:1,2;a:3;"), from
                                         its triggers' DEBUG1 messages; applied at its end */
    size_t gen_len, gen_cap;
    int gen_all;                      /* more than GEN_MINE_MAX bytes of them: every slot */
    uint64_t statements;              /* statements run on it (fota_store_pg_run): what an op
                                         costs in round trips (tests) */
    unsigned char prepared[(PQ_COUNT_ + 8) / 8];   /* bit per statement id */
};

struct pg_store {
    struct fota_store base;           /* first: the public handle */
    char *dsn;
    pthread_key_t key;                /* the calling thread's struct pg_conn */
    pthread_mutex_t lock;             /* all, spare, nconn, nspare and the log limits */
    struct pg_conn *all;              /* every connection, held or spare */
    struct pg_conn *spare;
    unsigned nconn, nspare;
    struct fota_store_ratelimit full_log;   /* "no space left" lines */
    struct fota_store_ratelimit down_log;   /* "store unavailable" lines */
    /* The loop guard's lines, limited per op (the last slot takes any op
     * past the others). */
    struct {
        const char *op;
        struct fota_store_ratelimit rl;
    } guard_log[FOTA_PG_GUARD_OPS];
    int64_t minutes_pruned;           /* the minute product_minutes was last pruned in (atomic) */
};

static inline struct pg_store *fota_store_pg_cast(struct fota_store *s)
{
    return (struct pg_store *)s;
}

/* Starts an op on the calling thread's connection (*out): takes one from
 * the spare pool or connects when the thread has none, and reconnects one
 * that was lost (not more often than its back-off allows). 0, or
 * FOTA_EUNAVAIL when no connection can be had, FOTA_EBUSY when the store
 * has FOTA_PG_CONN_MAX already. Every successful enter is paired with
 * fota_store_pg_leave. */
int fota_store_pg_enter(struct fota_store *s, const char *op, struct pg_conn **out);
/* Ends the op: rolls back a transaction it left open, applies the
 * generation notifications of its own writes (fota_store_pg_gen_apply),
 * moves the catalog generation when it changed rows and is not hot, maps a
 * retry that ran out (FOTA_EAGAIN) to FOTA_EBUSY. Returns rc. */
int fota_store_pg_leave(struct pg_conn *c, int rc);
/* (fota_store_pg_gen_apply, the payloads of channel fota_gen: store.h.) */

/* The parameters of one statement, bound in order ($1, $2, ...). Integers
 * travel as text, text in binary form with its length (so a fixed-size
 * field needs no NUL). Values are borrowed until the statement has run. */
struct pg_params {
    int n;
    Oid types[FOTA_PG_PARAMS_MAX];
    const char *values[FOTA_PG_PARAMS_MAX];
    int lengths[FOTA_PG_PARAMS_MAX];
    int formats[FOTA_PG_PARAMS_MAX];
    char num[FOTA_PG_PARAMS_MAX][32];
};

void fota_store_pg_param_int(struct pg_params *p, int64_t v);
/* v, or NULL when v is 0 (optional foreign keys). */
void fota_store_pg_param_id(struct pg_params *p, int64_t v);
/* At most n bytes of s (up to its NUL). */
void fota_store_pg_param_text(struct pg_params *p, const char *s, size_t n);
void fota_store_pg_param_double(struct pg_params *p, double v);
void fota_store_pg_param_null(struct pg_params *p, Oid type);

#define PG_PARAM_STR(p, field) fota_store_pg_param_text((p), (field), sizeof(field))

/* An array parameter (store_pg_array.c): one column of a batch, for
 * unnest() in the statement, built element by element in PostgreSQL's
 * binary form. type is FOTA_PG_INT8_ARRAY, _TEXT_ARRAY or _FLOAT8_ARRAY;
 * the elements' kind must match it. fota_store_pg_param_array binds it (no
 * element may be added after); the caller frees it once the statement has
 * run. */
struct pg_array_param {
    char *buf;
    size_t len, cap;
    Oid type;
    int n;
    int nulls;   /* an element is NULL */
};

void fota_store_pg_array_init(struct pg_array_param *a, Oid type);
void fota_store_pg_array_int(struct pg_array_param *a, int64_t v);
/* At most n bytes of s (up to its NUL). */
void fota_store_pg_array_text(struct pg_array_param *a, const char *s, size_t n);
void fota_store_pg_array_double(struct pg_array_param *a, double v);
void fota_store_pg_array_null(struct pg_array_param *a);
void fota_store_pg_param_array(struct pg_params *p, struct pg_array_param *a);
void fota_store_pg_array_free(struct pg_array_param *a);
/* The next element of a one-dimensional array in PostgreSQL's text output
 * ({1,2}, {abc,"a \"b\"",NULL}) at *p, which starts at the array's '{' and
 * is moved past the element: into out (cap bytes, NUL-terminated, cut to
 * fit; NULL reads as ""). 1: an element, 0: the array's end, -1: not such
 * an array. */
int fota_store_pg_array_next(const char **p, char *out, size_t cap);

#define PG_ARRAY_STR(a, field) fota_store_pg_array_text((a), (field), sizeof(field))

/* Runs statement id (sql; prepared on this connection at first use with
 * p's types) with p's values (p NULL: none); id < 0 runs sql unprepared
 * (SQL built per call, or run seldom). Returns the result (the caller
 * PQclear()s it) with *rc 0, or NULL with *rc the mapped error. Rows that
 * an INSERT, UPDATE or DELETE changed count towards the op's changes. */
PGresult *fota_store_pg_run(struct pg_conn *c, int id, const char *sql, const struct pg_params *p,
                            const char *what, int *rc);
/* fota_store_pg_run to completion; if first is non-NULL the first column
 * of the first row (RETURNING id, a COUNT) is stored there (left as it is
 * when there is no row). */
int fota_store_pg_exec(struct pg_conn *c, int id, const char *sql, const struct pg_params *p,
                       const char *what, int64_t *first);
/* Fills one row struct from row `row` of a result. */
typedef void (*fota_store_pg_reader)(const PGresult *r, int row, void *out);
/* At most one row: 0 and read() into out on a row, FOTA_ENOENT when there
 * is none. */
int fota_store_pg_one(struct pg_conn *c, int id, const char *sql, const struct pg_params *p,
                      fota_store_pg_reader read, void *out, const char *what);
/* Every row, read() filling one elem-sized slot per row of a
 * fota_xmalloc'd array handed to *out (the caller free()s it; a 1-slot
 * block when there are no rows, so never NULL on success) with the count
 * in *n. On failure *out is NULL and *n 0. */
int fota_store_pg_collect(struct pg_conn *c, int id, const char *sql, const struct pg_params *p,
                          fota_store_pg_reader read, size_t elem, void **out, size_t *n,
                          const char *what);

/* Transactions (READ COMMITTED). durable 0 runs this one with
 * synchronous_commit off (telemetry: survives a crash of fotad, not
 * necessarily of the database's machine), 1 with the server's setting. */
int fota_store_pg_begin(struct pg_conn *c, int durable);
int fota_store_pg_commit(struct pg_conn *c);
void fota_store_pg_rollback(struct pg_conn *c);
/* Ends the open transaction: commits when rc is 0 (returning the commit's
 * result), else rolls back and returns rc. */
int fota_store_pg_finish(struct pg_conn *c, int rc);
/* One statement alone in its own transaction, durable or not; first as for
 * fota_store_pg_exec. A serialization failure or deadlock runs it again, up
 * to FOTA_PG_TRIES times in all. */
int fota_store_pg_exec_tx(struct pg_conn *c, int id, const char *sql, const struct pg_params *p,
                          int durable, const char *what, int64_t *first);
#define FOTA_PG_TRIES 3

/* Maps a failed result (NULL: the connection's own error) to FOTA_E* by
 * SQLSTATE: 23505 EEXIST, 23503 ENOENT, other 23xxx and 22xxx EINVAL,
 * 40001/40P01 EAGAIN (the transaction may run again), 55P03 (lock timeout)
 * and 57014 (statement timeout) EBUSY, 53100 ENOSPC (logged at most once a
 * second), class 08, 57P01-57P03 and 25006 (read only: a standby) or a
 * broken connection EUNAVAIL (the connection is dropped and made again at
 * the next op), anything else EIO, logged. */
int fota_store_pg_err(struct pg_conn *c, const PGresult *r, const char *what);

/* Column values of row `row` (NULL reads as 0 or ""). */
int64_t fota_store_pg_col_int(const PGresult *r, int row, int col);
double fota_store_pg_col_double(const PGresult *r, int row, int col);
void fota_store_pg_col_text(const PGresult *r, int row, int col, char *dst, size_t n);

/* Applies every numbered migration not yet recorded (store_pg_schema.c) on
 * c, each in its own transaction under an advisory lock. */
int fota_store_pg_migrate(struct pg_conn *c, char *err, size_t errlen);
/* The number of migrations this fotad knows (the schema's version). */
int fota_store_pg_schema_version(void);
/* The newest migration recorded in the database (0: none) into *v. */
int fota_store_pg_schema_recorded(struct pg_conn *c, int64_t *v);

/* Catalog (store_pg_catalog.c). Release (product_id, version) with its
 * files into out, in one statement; ENOENT if none. */
int fota_store_pg_rom_read(struct pg_conn *c, int64_t product_id, const char *version,
                           struct fota_rom *out);
/* Inside a transaction: holds product id's row until it ends, so that the
 * product's catalog writers take turns and no device or release of it is
 * inserted meanwhile (their foreign key needs a share of the row); ENOENT
 * when there is no such product. */
int fota_store_pg_product_lock(struct pg_conn *c, int64_t id, const char *what);

/* Fleet (store_pg_fleet.c). A struct fota_device from a row of id,
 * product_id, name, bssid, activated, activated_at, rom_version,
 * running_slot, last_active, online, created, key_generation. */
void fota_store_pg_read_device(const PGresult *r, int row, void *out);
/* One download ledger row inside the open transaction: the device's row
 * (_row: FOTA_ENOENT for an unknown file, the transaction still usable) and
 * the file's count and activity (_file: sums of several rows of one file in
 * one go). */
int fota_store_pg_ledger_row(struct pg_conn *c, int64_t device_id, int64_t file_id,
                             int64_t bytes, int completed);
int fota_store_pg_ledger_file(struct pg_conn *c, int64_t file_id, int64_t bytes,
                              int64_t completed);
/* Counts upgrade reports in their product's minute (product_minutes), inside
 * the open transaction; minutes past FOTA_ACTIVITY_KEEP_S go once a minute. */
int fota_store_pg_activity_reports(struct pg_conn *c, int64_t product_id, int64_t when,
                                   int64_t upgraded, int64_t failed);
/* Once a minute per store, inside the open transaction, the minutes of
 * product_minutes past FOTA_ACTIVITY_KEEP_S go (an index on minute: the
 * cost is the rows removed); called by the writers of product_minutes. */
int fota_store_pg_minutes_prune(struct pg_conn *c);

/* Operations (store_pg_catalog.c: products and releases; store_pg_delete.c:
 * the release and product deletes; store_pg_census.c, store_pg_overview.c,
 * store_pg_devpage.c, store_pg_tags.c: the census, a product's activity, the
 * device pages and tags; store_pg_command.c: commands; store_pg_prune.c:
 * retention; store_pg_arduino.c: the Arduino-core rows; store_pg_rollout.c:
 * rollouts). */
int fota_store_pg_product_create(struct fota_store *s, struct fota_product *p);
int fota_store_pg_product_get(struct fota_store *s, int64_t id, struct fota_product *out);
int fota_store_pg_product_head(struct fota_store *s, int64_t id, struct fota_product *out);
int fota_store_pg_product_find(struct fota_store *s, const char *name, struct fota_product *out);
int fota_store_pg_product_list(struct fota_store *s, struct fota_product **out, size_t *n);
int fota_store_pg_product_heads(struct fota_store *s, struct fota_product **out, size_t *n);
int fota_store_pg_rom_create(struct fota_store *s, struct fota_rom *rom);
int fota_store_pg_rom_get(struct fota_store *s, int64_t product_id, const char *version,
                          struct fota_rom *out);
int fota_store_pg_rom_list(struct fota_store *s, int64_t product_id, struct fota_rom **out,
                           size_t *n);
int fota_store_pg_rom_set_current(struct fota_store *s, int64_t product_id, const char *version);
int fota_store_pg_rom_current(struct fota_store *s, int64_t product_id, struct fota_rom *out);
int fota_store_pg_device_create(struct fota_store *s, struct fota_device *d);
int fota_store_pg_device_create_many(struct fota_store *s, struct fota_device *d, size_t n,
                                     fota_store_device_keys_fn keys, void *ud);
int fota_store_pg_device_get(struct fota_store *s, int64_t id, struct fota_device *out);
int fota_store_pg_device_list(struct fota_store *s, int64_t product_id, struct fota_device **out,
                              size_t *n);
int fota_store_pg_device_update(struct fota_store *s, const struct fota_device *d,
                                unsigned fields);
int fota_store_pg_device_presence_batch(struct fota_store *s, const struct fota_presence *rows,
                                        size_t n);
int fota_store_pg_key_create(struct fota_store *s, const struct fota_key *k);
int fota_store_pg_key_lookup(struct fota_store *s, const char *hash_hex, struct fota_key *out);
int fota_store_pg_key_delete_for_device(struct fota_store *s, int64_t device_id, int kind);
int fota_store_pg_command_create(struct fota_store *s, struct fota_command *c);
int fota_store_pg_command_update(struct fota_store *s, const struct fota_command *c);
int fota_store_pg_command_get(struct fota_store *s, int64_t id, struct fota_command *out);
int fota_store_pg_command_find_nonce(struct fota_store *s, int64_t device_id, int64_t nonce,
                                     struct fota_command *out);
int fota_store_pg_command_queued_devices(struct fota_store *s, const int64_t *device_ids,
                                         size_t n, uint8_t *queued);
int fota_store_pg_command_reply(struct fota_store *s, int64_t device_id, int64_t nonce, int status,
                                const struct json_t *result, struct fota_command *out);
int fota_store_pg_command_list_device(struct fota_store *s, int64_t device_id, int state,
                                      struct fota_command **out, size_t *n);
int fota_store_pg_command_create_many(struct fota_store *s, const struct fota_command *tmpl,
                                      const int64_t *device_ids, int64_t *nonces, int64_t *ids,
                                      size_t n);
int fota_store_pg_command_update_batch(struct fota_store *s, const struct fota_command_set *rows,
                                       size_t n);
int fota_store_pg_rollout_events_add(struct fota_store *s, const struct fota_rollout_event *rows,
                                     size_t n);
int fota_store_pg_rollout_events_take(struct fota_store *s, struct fota_rollout_event **out,
                                      size_t *n);
int fota_store_pg_rollout_queued_held(struct fota_store *s, const int64_t *ids, size_t nids,
                                      int64_t instance_id, struct fota_rollout_member_row **out,
                                      size_t *n);
int fota_store_pg_message_add(struct fota_store *s, struct fota_message *m);
int fota_store_pg_report_batch(struct fota_store *s, struct fota_report_row *rows, size_t n);
int fota_store_pg_message_list(struct fota_store *s, const struct fota_message_filter *f,
                               struct fota_message **out, size_t *n);
int fota_store_pg_download_add(struct fota_store *s, int64_t device_id, int64_t file_id,
                               int64_t bytes, int completed);
int fota_store_pg_download_add_batch(struct fota_store *s, const struct fota_download_row *rows,
                                     size_t n);
int fota_store_pg_download_bytes(struct fota_store *s, int64_t device_id, int64_t *bytes);
int fota_store_pg_transfer_add(struct fota_store *s, struct fota_transfer *t);
int fota_store_pg_transfer_list(struct fota_store *s, size_t limit, struct fota_transfer **out,
                                size_t *n);
int fota_store_pg_message_prune(struct fota_store *s, struct fota_retention *r, size_t *deleted,
                                int *more);
int fota_store_pg_transfer_prune(struct fota_store *s, struct fota_retention *r, size_t *deleted,
                                 int *more);
int fota_store_pg_blob_refs(struct fota_store *s, char (**out)[FOTA_HASH_HEX], size_t *n);
int fota_store_pg_blob_put(struct fota_store *s, const char *sha256, const void *data, size_t len);
int fota_store_pg_blob_fetch(struct fota_store *s, const char *sha256,
                             int (*sink)(void *ud, const void *data, size_t len), void *ud,
                             int64_t *size);
int fota_store_pg_rom_delete(struct fota_store *s, int64_t product_id, const char *version,
                             struct fota_rom *out);
int fota_store_pg_device_delete(struct fota_store *s, int64_t id);
int fota_store_pg_product_delete(struct fota_store *s, int64_t id);
int fota_store_pg_arduino_product_put(struct fota_store *s, const struct fota_arduino_product *p);
int fota_store_pg_arduino_product_get(struct fota_store *s, int64_t product_id,
                                      struct fota_arduino_product *out);
int fota_store_pg_arduino_blob_put(struct fota_store *s, const struct fota_arduino_blob *b,
                                   size_t n);
int fota_store_pg_arduino_blob_get(struct fota_store *s, const char *sha256,
                                   struct fota_arduino_blob *out);
int fota_store_pg_arduino_device_register(struct fota_store *s, struct fota_device *d,
                                          struct fota_arduino_device *a);
int fota_store_pg_arduino_device_find(struct fota_store *s, int64_t product_id,
                                      const char *sta_mac, const char *name,
                                      struct fota_arduino_device *out);
int fota_store_pg_arduino_device_get(struct fota_store *s, int64_t device_id,
                                     struct fota_arduino_device *out);
int fota_store_pg_arduino_device_list(struct fota_store *s, int64_t product_id,
                                      struct fota_arduino_device **out, size_t *n);
int fota_store_pg_arduino_device_report(struct fota_store *s,
                                        const struct fota_arduino_device *rows, size_t n);
int fota_store_pg_arduino_device_track(struct fota_store *s, const struct fota_arduino_device *a);
int fota_store_pg_arduino_device_mqtt(struct fota_store *s, const struct fota_arduino_device *a);
int fota_store_pg_arduino_device_served(struct fota_store *s,
                                        const struct fota_arduino_download *rows, size_t n);
int fota_store_pg_rollout_create(struct fota_store *s, struct fota_rollout_row *r);
int fota_store_pg_rollout_save(struct fota_store *s, const struct fota_rollout_row *rs, size_t nr,
                               const struct fota_rollout_member_row *ms, size_t nm);
int fota_store_pg_rollout_get(struct fota_store *s, int64_t id, struct fota_rollout_row *out);
int fota_store_pg_rollout_list(struct fota_store *s, int64_t product_id, int state,
                               struct fota_rollout_row **out, size_t *n);
int fota_store_pg_rollout_members(struct fota_store *s, int64_t rollout_id, int64_t after_device,
                                  int state, size_t limit, struct fota_rollout_member_row **out,
                                  size_t *n);
int fota_store_pg_rollout_sample_add(struct fota_store *s, const struct fota_rollout_sample *rows,
                                     size_t n);
int fota_store_pg_rollout_samples(struct fota_store *s, int64_t rollout_id,
                                  struct fota_rollout_sample **out, size_t *n);
int fota_store_pg_device_census(struct fota_store *s, int64_t now, struct fota_census_row **out,
                                size_t *n);
int fota_store_pg_rollout_census(struct fota_store *s, int64_t *counts, size_t ncounts);
int fota_store_pg_device_page(struct fota_store *s, const struct fota_device_query *qy,
                              int64_t now, struct fota_device **out, size_t *n, int64_t *total);
int fota_store_pg_device_tags_edit(struct fota_store *s, const int64_t *device_ids, size_t nd,
                                   int mode, const char *const *tags, size_t nt);
int fota_store_pg_device_tags(struct fota_store *s, int64_t device_id,
                              char (**out)[FOTA_TAG_MAX], size_t *n);
int fota_store_pg_tag_list(struct fota_store *s, int64_t product_id, struct fota_tag_count **out,
                           size_t *n);
int fota_store_pg_command_cancel(struct fota_store *s, int64_t device_id, int64_t id,
                                 const struct json_t *result, struct fota_command *out);
int fota_store_pg_command_create_replacing(struct fota_store *s, struct fota_command *c,
                                           int64_t *replaced, size_t cap, size_t *nreplaced);
int fota_store_pg_product_census(struct fota_store *s, int64_t product_id, int64_t now,
                                 struct fota_census_row **out, size_t *n);
int fota_store_pg_product_activity(struct fota_store *s, int64_t product_id, int64_t since,
                                   int64_t until, int64_t step, struct fota_activity_row **out,
                                   size_t *n);

#endif
