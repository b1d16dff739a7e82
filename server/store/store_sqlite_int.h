/* store_sqlite_int.h - internals shared by the store_sqlite*.c files.
 *
 * One connection, one mutex: every op locks, runs its statements (cached,
 * prepared on first use) and unlocks. Statements are identified by the enum
 * below; their SQL sits beside the code that uses it. */
#ifndef FOTA_STORE_SQLITE_INT_H
#define FOTA_STORE_SQLITE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include "store_int.h"

enum sql_stmt_id {
    SQ_BEGIN, SQ_COMMIT, SQ_ROLLBACK,
    SQ_PRODUCT_INSERT, SQ_PRODUCT_GET, SQ_PRODUCT_HEAD, SQ_PRODUCT_FIND, SQ_PRODUCT_LIST,
    SQ_PRODUCT_HEADS,
    SQ_ROM_INSERT, SQ_ROM_FILE_INSERT, SQ_ROM_GET, SQ_ROM_FILES, SQ_ROM_LIST, SQ_ROM_CURRENT,
    SQ_ROM_ID, SQ_ROM_CLEAR_CURRENT, SQ_ROM_SET_CURRENT, SQ_BLOB_REFS,
    SQ_DEVICE_INSERT, SQ_DEVICE_GET, SQ_DEVICE_LIST, SQ_DEVICE_LIST_ALL, SQ_DEVICE_UPDATE,
    SQ_DEVICE_PRESENCE,
    SQ_KEY_INSERT, SQ_KEY_LOOKUP, SQ_KEY_DELETE,
    SQ_CMD_INSERT, SQ_CMD_UPDATE, SQ_CMD_UPDATE_KEEP, SQ_CMD_GET, SQ_CMD_LIST, SQ_CMD_FIND_NONCE,
    SQ_MSG_INSERT, SQ_REPORT_DEVICE,
    SQ_MSG_LIST0,                     /* 8 variants: filter bits, see message_list */
    SQ_MSG_LIST_LAST = SQ_MSG_LIST0 + 7,
    SQ_DL_UPSERT, SQ_DL_COUNT_FILE, SQ_DL_SUM,
    SQ_XFER_INSERT, SQ_XFER_LIST,
    SQ_DEL_ROM_DEVICES, SQ_DEL_ROM_DL, SQ_DEL_ROM_FILE_ROWS, SQ_DEL_ROM,
    SQ_DEL_DEV_KEYS, SQ_DEL_DEV_MAXCMD, SQ_DEL_DEV_CMDS, SQ_DEL_DEV_DL, SQ_DEL_DEV, SQ_ID_FLOOR,
    SQ_DEL_PRODUCT_COUNT, SQ_DEL_PRODUCT_KEYS, SQ_DEL_PRODUCT,
    SQ_ARDUINO0, SQ_ARDUINO_LAST = SQ_ARDUINO0 + 19,   /* store_sqlite_arduino.c */
    SQ_PRUNE_MSG_WALK, SQ_PRUNE_MSG_COUNT, SQ_PRUNE_MSG_NTH, SQ_PRUNE_MSG_CUT,
    SQ_PRUNE_MSG_SCAN, SQ_PRUNE_MSG_DEV_LAST, SQ_PRUNE_MSG_DEV_CUT,
    SQ_PRUNE_XFER_WALK, SQ_PRUNE_XFER_COUNT, SQ_PRUNE_XFER_NTH, SQ_PRUNE_XFER_CUT,
    SQ_TAG_DEVICE, SQ_TAG_ADD, SQ_TAG_DEL, SQ_TAG_CLEAR, SQ_TAG_COUNT, SQ_TAG_GET,
    SQ_TAG_LIST, SQ_TAG_LIST_ALL, SQ_TAG_DEVICES, SQ_DEL_DEV_TAGS,
    SQ_CMD_CANCEL, SQ_CMD_QUEUED_LIKE, SQ_CMD_REPLACE, SQ_CMD_QUEUED_ANY, SQ_CMD_REPLY,
    SQ_MINUTE_COUNT, SQ_MINUTE_DOWNLOAD, SQ_MINUTE_PRUNE, SQ_MINUTE_SUM, SQ_DEL_PRODUCT_MINUTES,
    SQ_COUNT_
};

struct sql_store {
    struct fota_store base;           /* first: the public handle */
    pthread_mutex_t lock;
    sqlite3 *db;
    sqlite3_stmt *stmt[SQ_COUNT_];
    int durable;                      /* synchronous=FULL for the open transaction */
    int hot;                          /* this op's changes do not bump base.generation */
    sqlite3_int64 changes_seen;       /* sqlite3_total_changes64 at the last unlock */
    struct fota_store_ratelimit full_log;   /* "no space left" lines */
    int64_t minutes_pruned;           /* the minute product_minutes was last pruned in */
};

static inline struct sql_store *fota_store_sqlite_cast(struct fota_store *s)
{
    return (struct sql_store *)s;
}

/* Returns the cached statement id, preparing sql on first use; NULL (logged)
 * if it does not prepare. The statement is reset and unbound. */
sqlite3_stmt *fota_store_sqlite_stmt(struct sql_store *q, int id, const char *sql);
/* A statement of its own (not cached: the caller finalizes it) for sql, of
 * len bytes (-1: up to its NUL); NULL when it does not prepare (logged with
 * what). For statements built per call or run seldom. */
sqlite3_stmt *fota_store_sqlite_prepare(struct sql_store *q, const char *sql, int len,
                                       const char *what);
/* Resets a statement after use (bindings cleared); NULL-safe. */
void fota_store_sqlite_done(sqlite3_stmt *st);
/* Maps an SQLite result code to FOTA_E* (constraint: EEXIST unique, ENOENT
 * foreign key, EINVAL other; busy: EBUSY; SQLITE_NOMEM: ENOMEM;
 * SQLITE_FULL, or an I/O error whose errno is ENOSPC/EDQUOT: ENOSPC, logged
 * at most once a second; else EIO), logging real failures. */
int fota_store_sqlite_err(struct sql_store *q, int rc, const char *what);
/* Steps st to completion (INSERT/UPDATE/DELETE, or a query of one value);
 * if first is non-NULL the first column of the first row (RETURNING id, a
 * COUNT) is stored there (left as it is when there is no row). Resets st. */
int fota_store_sqlite_exec(struct sql_store *q, sqlite3_stmt *st, const char *what, int64_t *first);
/* Write transactions (BEGIN IMMEDIATE / COMMIT / ROLLBACK). durable != 0
 * runs this one transaction with synchronous=FULL (the commit is fsynced);
 * commit and rollback restore NORMAL. A failed commit rolls back. */
int fota_store_sqlite_begin(struct sql_store *q, int durable);
int fota_store_sqlite_commit(struct sql_store *q);
void fota_store_sqlite_rollback(struct sql_store *q);
/* Ends the open transaction: commits when rc is 0 (returning the commit's
 * result), else rolls back and returns rc. */
int fota_store_sqlite_finish(struct sql_store *q, int rc);
/* A removal an admin asked for (a delete, a key removal) failed with rc:
 * when rc is FOTA_ENOSPC and the store's disk reserve held room, that room
 * is given back (reserve.h) and 1 returned: run the transaction again, once
 * (the reserve is then empty). 0 otherwise. */
int fota_store_sqlite_make_room(struct sql_store *q, int rc, const char *what);
/* st (bound by the caller) alone in its own transaction, durable or not;
 * first as for fota_store_sqlite_exec. st is reset also when BEGIN fails. */
int fota_store_sqlite_exec_tx(struct sql_store *q, sqlite3_stmt *st, int durable, const char *what,
                              int64_t *first);

/* One download ledger row (download_add's statements) inside the open
 * transaction: FOTA_ENOENT for an unknown file id. It is the device's row
 * (_row: FOTA_ENOENT for an unknown file) and the file's counts and
 * activity (_file: sums of several rows of one file in one go). */
int fota_store_sqlite_ledger_add(struct sql_store *q, int64_t device_id, int64_t file_id,
                                 int64_t bytes, int completed);
int fota_store_sqlite_ledger_row(struct sql_store *q, int64_t device_id, int64_t file_id,
                                 int64_t bytes, int completed);
int fota_store_sqlite_ledger_file(struct sql_store *q, int64_t file_id, int64_t bytes,
                                  int64_t completed);

/* Fills one row struct from the current row of a statement. */
typedef void (*fota_store_sqlite_reader)(sqlite3_stmt *st, void *row);
/* Steps st (bound by the caller; NULL: FOTA_EIO) for at most one row: 0 and
 * read() into out on a row, FOTA_ENOENT when there is none. Resets st. */
int fota_store_sqlite_one(struct sql_store *q, sqlite3_stmt *st, fota_store_sqlite_reader read,
                          void *out, const char *what);
/* Steps st to its end, read() filling one elem-sized slot per row of a
 * fota_xmalloc'd array handed to *out (the caller free()s it; a 1-slot block
 * when there are no rows, so never NULL on success) with the count in *n.
 * On failure *out is NULL and *n 0. Resets st. */
int fota_store_sqlite_collect(struct sql_store *q, sqlite3_stmt *st, fota_store_sqlite_reader read,
                              size_t elem, void **out, size_t *n, const char *what);
/* Copies a text column into a fixed buffer (NULL -> ""). */
void fota_store_sqlite_col_text(sqlite3_stmt *st, int col, char *dst, size_t n);
/* Binds a fixed-size text field without reading past its end. */
int fota_store_sqlite_bind_text(sqlite3_stmt *st, int idx, const char *s, size_t n);
/* Binds v, or NULL when v is 0 (optional foreign keys). */
int fota_store_sqlite_bind_id(sqlite3_stmt *st, int idx, int64_t v);

#define SQL_BIND_STR(st, idx, field) fota_store_sqlite_bind_text((st), (idx), (field), sizeof(field))

void fota_store_sqlite_lock(struct sql_store *q);
int fota_store_sqlite_unlock(struct sql_store *q, int rc);

/* Applies every numbered migration not yet recorded (store_sqlite_schema.c). */
int fota_store_sqlite_migrate(struct sql_store *q, char *err, size_t errlen);

/* Operations (store_sqlite_catalog.c: products and releases). */
int fota_store_sqlite_product_create(struct fota_store *s, struct fota_product *p);
int fota_store_sqlite_product_get(struct fota_store *s, int64_t id, struct fota_product *out);
int fota_store_sqlite_product_head(struct fota_store *s, int64_t id, struct fota_product *out);
int fota_store_sqlite_product_find(struct fota_store *s, const char *name, struct fota_product *out);
int fota_store_sqlite_product_list(struct fota_store *s, struct fota_product **out, size_t *n);
int fota_store_sqlite_product_heads(struct fota_store *s, struct fota_product **out, size_t *n);
int fota_store_sqlite_rom_create(struct fota_store *s, struct fota_rom *rom);
int fota_store_sqlite_rom_get(struct fota_store *s, int64_t product_id, const char *version,
                              struct fota_rom *out);
int fota_store_sqlite_blob_refs(struct fota_store *s, char (**out)[FOTA_HASH_HEX], size_t *n);
int fota_store_sqlite_rom_list(struct fota_store *s, int64_t product_id, struct fota_rom **out,
                               size_t *n);
int fota_store_sqlite_rom_set_current(struct fota_store *s, int64_t product_id, const char *version);
int fota_store_sqlite_rom_current(struct fota_store *s, int64_t product_id, struct fota_rom *out);
/* Release (product_id, version) with its files, inside the caller's lock
 * (and transaction, if any); ENOENT if none. */
int fota_store_sqlite_rom_read(struct sql_store *q, int64_t product_id, const char *version,
                               struct fota_rom *out);

/* Operations (store_sqlite_fleet.c: devices, keys, messages, ledgers). */
/* A struct fota_device from a row of id, product_id, name, bssid, activated,
 * activated_at, rom_version, running_slot, last_active, online, created,
 * key_generation. */
void fota_store_sqlite_read_device(sqlite3_stmt *st, void *row);
int fota_store_sqlite_device_create(struct fota_store *s, struct fota_device *d);
int fota_store_sqlite_device_create_many(struct fota_store *s, struct fota_device *d, size_t n,
                                         fota_store_device_keys_fn keys, void *ud);
int fota_store_sqlite_device_get(struct fota_store *s, int64_t id, struct fota_device *out);
int fota_store_sqlite_device_list(struct fota_store *s, int64_t product_id, struct fota_device **out,
                                  size_t *n);
int fota_store_sqlite_device_update(struct fota_store *s, const struct fota_device *d, unsigned fields);
int fota_store_sqlite_device_presence_batch(struct fota_store *s, const struct fota_presence *rows,
                                            size_t n);
int fota_store_sqlite_key_create(struct fota_store *s, const struct fota_key *k);
int fota_store_sqlite_key_lookup(struct fota_store *s, const char *hash_hex, struct fota_key *out);
int fota_store_sqlite_key_delete_for_device(struct fota_store *s, int64_t device_id, int kind);
int fota_store_sqlite_message_add(struct fota_store *s, struct fota_message *m);
int fota_store_sqlite_report_batch(struct fota_store *s, struct fota_report_row *rows, size_t n);
int fota_store_sqlite_message_list(struct fota_store *s, const struct fota_message_filter *f,
                                   struct fota_message **out, size_t *n);
int fota_store_sqlite_download_add(struct fota_store *s, int64_t device_id, int64_t file_id,
                                   int64_t bytes, int completed);
int fota_store_sqlite_download_add_batch(struct fota_store *s, const struct fota_download_row *rows,
                                         size_t n);
int fota_store_sqlite_download_bytes(struct fota_store *s, int64_t device_id, int64_t *bytes);
int fota_store_sqlite_transfer_add(struct fota_store *s, struct fota_transfer *t);
int fota_store_sqlite_transfer_list(struct fota_store *s, size_t limit, struct fota_transfer **out,
                                    size_t *n);

/* Operations (store_sqlite_command.c: commands, one or a batch). */
int fota_store_sqlite_command_create(struct fota_store *s, struct fota_command *c);
int fota_store_sqlite_command_update(struct fota_store *s, const struct fota_command *c);
int fota_store_sqlite_command_get(struct fota_store *s, int64_t id, struct fota_command *out);
int fota_store_sqlite_command_find_nonce(struct fota_store *s, int64_t device_id, int64_t nonce,
                                         struct fota_command *out);
int fota_store_sqlite_command_queued_devices(struct fota_store *s, const int64_t *device_ids,
                                             size_t n, uint8_t *queued);
int fota_store_sqlite_command_reply(struct fota_store *s, int64_t device_id, int64_t nonce,
                                    int status, const struct json_t *result,
                                    struct fota_command *out);
int fota_store_sqlite_command_list_device(struct fota_store *s, int64_t device_id, int state,
                                          struct fota_command **out, size_t *n);
int fota_store_sqlite_command_create_many(struct fota_store *s, const struct fota_command *tmpl,
                                          const int64_t *device_ids, int64_t *nonces,
                                          int64_t *ids, size_t n);
int fota_store_sqlite_command_update_batch(struct fota_store *s, const struct fota_command_set *rows,
                                           size_t n);

/* Operations (store_sqlite_rollout.c: rollouts and their members). */
int fota_store_sqlite_rollout_create(struct fota_store *s, struct fota_rollout_row *r);
int fota_store_sqlite_rollout_save(struct fota_store *s, const struct fota_rollout_row *rs,
                                   size_t nr, const struct fota_rollout_member_row *ms, size_t nm);
int fota_store_sqlite_rollout_get(struct fota_store *s, int64_t id, struct fota_rollout_row *out);
int fota_store_sqlite_rollout_list(struct fota_store *s, int64_t product_id, int state,
                                   struct fota_rollout_row **out, size_t *n);
int fota_store_sqlite_rollout_members(struct fota_store *s, int64_t rollout_id, int64_t after_device,
                                      int state, size_t limit,
                                      struct fota_rollout_member_row **out, size_t *n);
/* store_sqlite_rollout_samples.c: a rollout's progress samples. */
int fota_store_sqlite_rollout_sample_add(struct fota_store *s,
                                         const struct fota_rollout_sample *rows, size_t n);
int fota_store_sqlite_rollout_samples(struct fota_store *s, int64_t rollout_id,
                                      struct fota_rollout_sample **out, size_t *n);
/* store_sqlite_rollout_import.c: at open, after the migrations: imports the
 * DATA/jobs.json and jobs-ID.rows beside the database (db_path) once and
 * removes them. 0, or the error (logged; the files stay for the next start). */
int fota_store_sqlite_rollout_import(struct sql_store *q, const char *db_path);

/* Operations (store_sqlite_census.c: the counts of GET /metrics and of a
 * product's overview). */
int fota_store_sqlite_device_census(struct fota_store *s, int64_t now,
                                    struct fota_census_row **out, size_t *n);
int fota_store_sqlite_product_census(struct fota_store *s, int64_t product_id, int64_t now,
                                     struct fota_census_row **out, size_t *n);
int fota_store_sqlite_rollout_census(struct fota_store *s, int64_t *counts, size_t ncounts);

/* Operations (store_sqlite_devpage.c: a fleet's devices selected, sorted
 * and paged; store_sqlite_tags.c: their tags). */
int fota_store_sqlite_device_page(struct fota_store *s, const struct fota_device_query *qy,
                                  int64_t now, struct fota_device **out, size_t *n,
                                  int64_t *total);
int fota_store_sqlite_device_tags_edit(struct fota_store *s, const int64_t *device_ids, size_t nd,
                                       int mode, const char *const *tags, size_t nt);
int fota_store_sqlite_device_tags(struct fota_store *s, int64_t device_id,
                                  char (**out)[FOTA_TAG_MAX], size_t *n);
int fota_store_sqlite_tag_list(struct fota_store *s, int64_t product_id,
                               struct fota_tag_count **out, size_t *n);

/* Operations (store_sqlite_command.c: a queued command cancelled or replaced). */
int fota_store_sqlite_command_cancel(struct fota_store *s, int64_t device_id, int64_t id,
                                     const struct json_t *result, struct fota_command *out);
int fota_store_sqlite_command_create_replacing(struct fota_store *s, struct fota_command *c,
                                               int64_t *replaced, size_t cap, size_t *nreplaced);

/* Operations (store_sqlite_overview.c: a product's activity at a glance). */
int fota_store_sqlite_product_activity(struct fota_store *s, int64_t product_id, int64_t since,
                                       int64_t until, int64_t step,
                                       struct fota_activity_row **out, size_t *n);
/* Inside an open write transaction: adds a product's counts to its minute
 * (upgraded and failed reports), or a file's completions and bytes to its
 * product's current minute, and drops the minutes past
 * FOTA_ACTIVITY_KEEP_S once a minute. 0 or FOTA_E*. */
int fota_store_sqlite_activity_reports(struct sql_store *q, int64_t product_id, int64_t when,
                                       int64_t upgraded, int64_t failed);
int fota_store_sqlite_activity_download(struct sql_store *q, int64_t file_id, int64_t bytes,
                                        int64_t completed);

/* Operations (store_sqlite_delete.c: deletion of releases, devices, products). */
int fota_store_sqlite_rom_delete(struct fota_store *s, int64_t product_id, const char *version,
                                 struct fota_rom *out);
int fota_store_sqlite_device_delete(struct fota_store *s, int64_t id);
int fota_store_sqlite_product_delete(struct fota_store *s, int64_t id);

/* Operations (store_sqlite_prune.c: retention of messages and transfers). */
int fota_store_sqlite_message_prune(struct fota_store *s, struct fota_retention *r,
                                    size_t *deleted, int *more);
int fota_store_sqlite_transfer_prune(struct fota_store *s, struct fota_retention *r,
                                     size_t *deleted, int *more);

/* Operations (store_sqlite_arduino.c: Arduino-core products, files, devices). */
int fota_store_sqlite_arduino_product_put(struct fota_store *s, const struct fota_arduino_product *p);
int fota_store_sqlite_arduino_product_get(struct fota_store *s, int64_t product_id,
                                          struct fota_arduino_product *out);
int fota_store_sqlite_arduino_blob_put(struct fota_store *s, const struct fota_arduino_blob *b,
                                       size_t n);
int fota_store_sqlite_arduino_blob_get(struct fota_store *s, const char *sha256,
                                       struct fota_arduino_blob *out);
int fota_store_sqlite_arduino_device_register(struct fota_store *s, struct fota_device *d,
                                              struct fota_arduino_device *a);
int fota_store_sqlite_arduino_device_find(struct fota_store *s, int64_t product_id,
                                          const char *sta_mac, const char *name,
                                          struct fota_arduino_device *out);
int fota_store_sqlite_arduino_device_get(struct fota_store *s, int64_t device_id,
                                         struct fota_arduino_device *out);
int fota_store_sqlite_arduino_device_list(struct fota_store *s, int64_t product_id,
                                          struct fota_arduino_device **out, size_t *n);
int fota_store_sqlite_arduino_device_report(struct fota_store *s,
                                            const struct fota_arduino_device *rows, size_t n);
int fota_store_sqlite_arduino_device_track(struct fota_store *s, const struct fota_arduino_device *a);
int fota_store_sqlite_arduino_device_mqtt(struct fota_store *s, const struct fota_arduino_device *a);
int fota_store_sqlite_arduino_device_served(struct fota_store *s,
                                            const struct fota_arduino_download *rows, size_t n);

/* The id a new row of devices / products / commands / messages / transfers
 * gets: one above both the largest id in the table and the largest id ever
 * deleted from it (id_floor, migration 3), so SQLite's rowid (max + 1) never
 * repeats a deleted id (derived keys; in-memory waits that still hold a
 * command id; a message follower's after_id once retention emptied the
 * table). */
#define SQL_NEXT_ID(table)                                                                   \
    "(SELECT MAX(h) + 1 FROM (SELECT COALESCE(MAX(id), 0) AS h FROM " table                  \
    " UNION ALL SELECT high AS h FROM id_floor WHERE tbl = '" table "') AS ids)"
/* Records that id was deleted from table (the largest one is kept), so
 * SQL_NEXT_ID never hands it out again. Runs inside the caller's lock and
 * transaction; 0 or the store error. */
int fota_store_sqlite_floor_raise(struct sql_store *q, const char *table, int64_t id);

#endif
