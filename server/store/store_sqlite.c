/* store_sqlite.c - the SQLite fota_store: open, pragmas, statement cache,
 * transactions, the row helpers every op uses (one row, all rows) and error
 * mapping. The operations live in store_sqlite_catalog.c (products,
 * releases), store_sqlite_fleet.c (devices, keys, messages, ledgers),
 * store_sqlite_command.c and store_sqlite_delete.c; the schema in
 * store_sqlite_schema.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fota_str.h"
#include "reserve.h"
#include "store_sqlite_int.h"
#include "xmalloc.h"

void fota_store_sqlite_lock(struct sql_store *q)
{
    pthread_mutex_lock(&q->lock);
}

int fota_store_sqlite_unlock(struct sql_store *q, int rc)
{
    /* Any row changed by this op (other than the hot ledgers) starts a new
     * generation: caches of keys, devices and releases drop their entries. */
    sqlite3_int64 tc = q->db ? sqlite3_total_changes64(q->db) : 0;
    if (tc != q->changes_seen) {
        q->changes_seen = tc;
        if (!q->hot)
            __atomic_add_fetch(&q->base.generation, 1, __ATOMIC_RELEASE);
    }
    q->hot = 0;
    pthread_mutex_unlock(&q->lock);
    return rc;
}

sqlite3_stmt *fota_store_sqlite_stmt(struct sql_store *q, int id, const char *sql)
{
    int rc;

    if (q->stmt[id])
        return q->stmt[id];
    /* PERSISTENT: these live as long as the connection, so SQLite keeps them
     * out of its short-lived lookaside memory. */
    rc = sqlite3_prepare_v3(q->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &q->stmt[id], NULL);
    if (rc != SQLITE_OK) {
        fota_store_logf(&q->base, FOTA_LOG_ERROR, "prepare failed stmt=%d error=\"%s\"", id,
                        sqlite3_errmsg(q->db));
        sqlite3_finalize(q->stmt[id]);
        q->stmt[id] = NULL;
    }
    return q->stmt[id];
}

sqlite3_stmt *fota_store_sqlite_prepare(struct sql_store *q, const char *sql, int len,
                                       const char *what)
{
    sqlite3_stmt *st = NULL;

    if (sqlite3_prepare_v2(q->db, sql, len, &st, NULL) != SQLITE_OK) {
        fota_store_sqlite_err(q, sqlite3_errcode(q->db), what);
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

void fota_store_sqlite_done(sqlite3_stmt *st)
{
    if (!st)
        return;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* errno values of a file system without room (the disk, or a quota). */
static int no_room(int e)
{
    return e == ENOSPC || e == EDQUOT;
}

/* The disk (or the database's size limit) is full: every write fails until
 * space is freed, so the line is logged at most once a second. */
static int full(struct sql_store *q, const char *what)
{
    unsigned held;

    if (fota_store_ratelimit_pass(&q->full_log, &held))
        fota_store_logf(&q->base, FOTA_LOG_ERROR,
                        "no space left on device op=%s error=\"%s\" suppressed=%u", what,
                        sqlite3_errmsg(q->db), held);
    return FOTA_ENOSPC;
}

int fota_store_sqlite_make_room(struct sql_store *q, int rc, const char *what)
{
    return rc == FOTA_ENOSPC && fota_reserve_release(q->base.reserve, what);
}

int fota_store_sqlite_err(struct sql_store *q, int rc, const char *what)
{
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
            return FOTA_EEXIST;
        if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
            return FOTA_ENOENT;
        fota_store_logf(&q->base, FOTA_LOG_WARN, "constraint op=%s error=\"%s\"", what,
                        sqlite3_errmsg(q->db));
        return FOTA_EINVAL;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        fota_store_logf(&q->base, FOTA_LOG_WARN, "database busy op=%s", what);
        return FOTA_EBUSY;
    case SQLITE_NOMEM:
        return FOTA_ENOMEM;
    case SQLITE_FULL:
        return full(q, what);
    default:
        if ((rc & 0xff) == SQLITE_IOERR && no_room(sqlite3_system_errno(q->db)))
            return full(q, what);   /* a write or fsync refused for want of room */
        fota_store_logf(&q->base, FOTA_LOG_ERROR, "sqlite error op=%s rc=%d error=\"%s\"",
                        what, rc, sqlite3_errmsg(q->db));
        return FOTA_EIO;
    }
}

int fota_store_sqlite_exec(struct sql_store *q, sqlite3_stmt *st, const char *what, int64_t *first)
{
    int rc, row = 0, ret = 0;

    if (!st)
        return FOTA_EIO;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (row++ == 0 && first)
            *first = sqlite3_column_int64(st, 0);
    }
    if (rc != SQLITE_DONE)
        ret = fota_store_sqlite_err(q, rc, what);
    fota_store_sqlite_done(st);
    return ret;
}

int fota_store_sqlite_one(struct sql_store *q, sqlite3_stmt *st, fota_store_sqlite_reader read,
                          void *out, const char *what)
{
    int rc;

    if (!st)
        return FOTA_EIO;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        read(st, out);
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        rc = FOTA_ENOENT;
    } else {
        rc = fota_store_sqlite_err(q, rc, what);
    }
    fota_store_sqlite_done(st);
    return rc;
}

int fota_store_sqlite_collect(struct sql_store *q, sqlite3_stmt *st, fota_store_sqlite_reader read,
                              size_t elem, void **out, size_t *n, const char *what)
{
    unsigned char *arr = NULL;
    size_t k = 0, cap = 0;
    int rc;

    *out = NULL;
    *n = 0;
    if (!st)
        return FOTA_EIO;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (k == cap) {
            cap = cap ? cap * 2 : 8;
            arr = fota_xreallocarray(arr, cap, elem);
        }
        read(st, arr + k++ * elem);
    }
    rc = rc == SQLITE_DONE ? 0 : fota_store_sqlite_err(q, rc, what);
    fota_store_sqlite_done(st);
    if (rc != 0) {
        free(arr);
        return rc;
    }
    *out = arr ? arr : fota_xcalloc(1, elem);
    *n = k;
    return 0;
}

/* Switches the connection's sync level; only valid outside a transaction. */
static void set_sync(struct sql_store *q, int full)
{
    if (sqlite3_exec(q->db, full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", NULL,
                     NULL, NULL) != SQLITE_OK)
        fota_store_logf(&q->base, FOTA_LOG_WARN, "cannot set synchronous error=\"%s\"",
                        sqlite3_errmsg(q->db));
}

int fota_store_sqlite_begin(struct sql_store *q, int durable)
{
    int rc;

    if (durable) {
        set_sync(q, 1);
        q->durable = 1;
    }
    /* IMMEDIATE takes the write lock up front: a deferred transaction that
     * later upgrades can fail with SQLITE_BUSY half-way through. */
    rc = fota_store_sqlite_exec(q, fota_store_sqlite_stmt(q, SQ_BEGIN, "BEGIN IMMEDIATE"),
                                "begin", NULL);
    if (rc != 0 && q->durable) {
        set_sync(q, 0);
        q->durable = 0;
    }
    return rc;
}

int fota_store_sqlite_commit(struct sql_store *q)
{
    int rc = fota_store_sqlite_exec(q, fota_store_sqlite_stmt(q, SQ_COMMIT, "COMMIT"), "commit",
                                    NULL);

    if (rc != 0)
        fota_store_sqlite_rollback(q);
    if (q->durable) {
        set_sync(q, 0);
        q->durable = 0;
    }
    return rc;
}

void fota_store_sqlite_rollback(struct sql_store *q)
{
    /* Only when a transaction is open: after some errors SQLite has already
     * rolled back by itself. */
    if (!sqlite3_get_autocommit(q->db))
        fota_store_sqlite_exec(q, fota_store_sqlite_stmt(q, SQ_ROLLBACK, "ROLLBACK"), "rollback",
                               NULL);
    if (q->durable) {
        set_sync(q, 0);
        q->durable = 0;
    }
}

int fota_store_sqlite_finish(struct sql_store *q, int rc)
{
    if (rc == 0)
        return fota_store_sqlite_commit(q);
    fota_store_sqlite_rollback(q);
    return rc;
}

int fota_store_sqlite_exec_tx(struct sql_store *q, sqlite3_stmt *st, int durable, const char *what,
                              int64_t *first)
{
    int rc = fota_store_sqlite_begin(q, durable);

    if (rc) {
        fota_store_sqlite_done(st);
        return rc;
    }
    return fota_store_sqlite_finish(q, fota_store_sqlite_exec(q, st, what, first));
}

void fota_store_sqlite_col_text(sqlite3_stmt *st, int col, char *dst, size_t n)
{
    fota_str_copy(dst, n, (const char *)sqlite3_column_text(st, col));
}

int fota_store_sqlite_bind_text(sqlite3_stmt *st, int idx, const char *s, size_t n)
{
    /* STATIC is safe: every op resets its statements before it returns. */
    return sqlite3_bind_text(st, idx, s, (int)strnlen(s, n), SQLITE_STATIC);
}

int fota_store_sqlite_bind_id(sqlite3_stmt *st, int idx, int64_t v)
{
    return v ? sqlite3_bind_int64(st, idx, v) : sqlite3_bind_null(st, idx);
}

int fota_store_sqlite_floor_raise(struct sql_store *q, const char *table, int64_t id)
{
    sqlite3_stmt *st = fota_store_sqlite_stmt(q, SQ_ID_FLOOR,
                                              "INSERT INTO id_floor (tbl, high) VALUES (?, ?)"
                                              " ON CONFLICT (tbl) DO UPDATE SET high = CASE"
                                              " WHEN excluded.high > id_floor.high"
                                              " THEN excluded.high ELSE id_floor.high END");

    if (st) {
        sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, id);
    }
    return fota_store_sqlite_exec(q, st, "id_floor", NULL);
}

static void sqlite_close(struct fota_store *s)
{
    struct sql_store *q = fota_store_sqlite_cast(s);

    for (int i = 0; i < SQ_COUNT_; i++)
        sqlite3_finalize(q->stmt[i]);
    if (q->db) {
        /* Lets the planner refresh statistics; cheap when nothing changed. */
        sqlite3_exec(q->db, "PRAGMA optimize", NULL, NULL, NULL);
        if (sqlite3_close(q->db) != SQLITE_OK)
            fota_store_logf(s, FOTA_LOG_ERROR, "close failed error=\"%s\"",
                            sqlite3_errmsg(q->db));
    }
    pthread_mutex_destroy(&q->lock);
    free(q);
}

static const struct fota_store_ops sqlite_ops = {
    .name = "sqlite",
    .close = sqlite_close,
    .product_create = fota_store_sqlite_product_create,
    .product_get = fota_store_sqlite_product_get,
    .product_head = fota_store_sqlite_product_head,
    .product_find = fota_store_sqlite_product_find,
    .product_list = fota_store_sqlite_product_list,
    .product_heads = fota_store_sqlite_product_heads,
    .rom_create = fota_store_sqlite_rom_create,
    .rom_get = fota_store_sqlite_rom_get,
    .rom_list = fota_store_sqlite_rom_list,
    .rom_set_current = fota_store_sqlite_rom_set_current,
    .rom_current = fota_store_sqlite_rom_current,
    .device_create = fota_store_sqlite_device_create,
    .device_create_many = fota_store_sqlite_device_create_many,
    .device_get = fota_store_sqlite_device_get,
    .device_list = fota_store_sqlite_device_list,
    .device_update = fota_store_sqlite_device_update,
    .device_presence_batch = fota_store_sqlite_device_presence_batch,
    .key_create = fota_store_sqlite_key_create,
    .key_lookup = fota_store_sqlite_key_lookup,
    .key_delete_for_device = fota_store_sqlite_key_delete_for_device,
    .command_create = fota_store_sqlite_command_create,
    .command_update = fota_store_sqlite_command_update,
    .rollout_create = fota_store_sqlite_rollout_create,
    .rollout_save = fota_store_sqlite_rollout_save,
    .rollout_get = fota_store_sqlite_rollout_get,
    .rollout_list = fota_store_sqlite_rollout_list,
    .rollout_members = fota_store_sqlite_rollout_members,
    .rollout_sample_add = fota_store_sqlite_rollout_sample_add,
    .rollout_samples = fota_store_sqlite_rollout_samples,
    .command_get = fota_store_sqlite_command_get,
    .command_find_nonce = fota_store_sqlite_command_find_nonce,
    .command_list_device = fota_store_sqlite_command_list_device,
    .command_create_many = fota_store_sqlite_command_create_many,
    .command_update_batch = fota_store_sqlite_command_update_batch,
    .message_add = fota_store_sqlite_message_add,
    .report_batch = fota_store_sqlite_report_batch,
    .message_list = fota_store_sqlite_message_list,
    .download_add = fota_store_sqlite_download_add,
    .download_add_batch = fota_store_sqlite_download_add_batch,
    .download_bytes = fota_store_sqlite_download_bytes,
    .transfer_add = fota_store_sqlite_transfer_add,
    .transfer_list = fota_store_sqlite_transfer_list,
    .message_prune = fota_store_sqlite_message_prune,
    .transfer_prune = fota_store_sqlite_transfer_prune,
    .blob_refs = fota_store_sqlite_blob_refs,
    .rom_delete = fota_store_sqlite_rom_delete,
    .device_delete = fota_store_sqlite_device_delete,
    .product_delete = fota_store_sqlite_product_delete,
    .arduino_product_put = fota_store_sqlite_arduino_product_put,
    .arduino_product_get = fota_store_sqlite_arduino_product_get,
    .arduino_blob_put = fota_store_sqlite_arduino_blob_put,
    .arduino_blob_get = fota_store_sqlite_arduino_blob_get,
    .arduino_device_register = fota_store_sqlite_arduino_device_register,
    .arduino_device_find = fota_store_sqlite_arduino_device_find,
    .arduino_device_get = fota_store_sqlite_arduino_device_get,
    .arduino_device_list = fota_store_sqlite_arduino_device_list,
    .arduino_device_report = fota_store_sqlite_arduino_device_report,
    .arduino_device_track = fota_store_sqlite_arduino_device_track,
    .arduino_device_mqtt = fota_store_sqlite_arduino_device_mqtt,
    .arduino_device_served = fota_store_sqlite_arduino_device_served,
    .device_census = fota_store_sqlite_device_census,
    .rollout_census = fota_store_sqlite_rollout_census,
    .device_page = fota_store_sqlite_device_page,
    .device_tags_edit = fota_store_sqlite_device_tags_edit,
    .device_tags = fota_store_sqlite_device_tags,
    .tag_list = fota_store_sqlite_tag_list,
    .command_cancel = fota_store_sqlite_command_cancel,
    .command_create_replacing = fota_store_sqlite_command_create_replacing,
    .product_census = fota_store_sqlite_product_census,
    .product_activity = fota_store_sqlite_product_activity,
    .command_queued_devices = fota_store_sqlite_command_queued_devices,
    .command_reply = fota_store_sqlite_command_reply,
};

/* Runs one pragma and, if want is non-NULL, checks the value it returns. */
static int pragma(struct sql_store *q, const char *sql, const char *want, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(q->db, sql, -1, &st, NULL);
    int ok = rc == SQLITE_OK;

    if (ok) {
        rc = sqlite3_step(st);
        ok = rc == SQLITE_ROW || rc == SQLITE_DONE;
        if (ok && want) {
            const char *got = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
            ok = got && strcmp(got, want) == 0;
            if (!ok)
                snprintf(err, errlen, "%s: got \"%s\", wanted \"%s\"", sql, got ? got : "", want);
        } else if (!ok) {
            snprintf(err, errlen, "%s: %s", sql, sqlite3_errmsg(q->db));
        }
    } else {
        snprintf(err, errlen, "%s: %s", sql, sqlite3_errmsg(q->db));
    }
    sqlite3_finalize(st);
    return ok ? 0 : FOTA_EIO;
}

/* Device generations (store.h) move from inside SQLite: this connection's
 * temporary triggers call fota_device_touched(device id) for every row of a
 * device's commands written and every write of its row other than
 * presence, and fota_arduino_touched(device id) for every write of its
 * arduino tracking or MQTT fields, whichever op wrote them (ops added later
 * included). Reports and presence leave them: the column lists name what a
 * cached check-in depends on. The triggers run inside the op, under the
 * store's mutex, before it returns. */
static void device_touched(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    struct sql_store *q = sqlite3_user_data(ctx);
    (void)argc;
    fota_store_device_touch(&q->base, sqlite3_value_int64(argv[0]));
}

static void arduino_touched(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    struct sql_store *q = sqlite3_user_data(ctx);
    (void)argc;
    fota_store_arduino_touch(&q->base, sqlite3_value_int64(argv[0]));
}

static const char DEVICE_TRIGGERS[] =
    "CREATE TEMP TRIGGER devgen_cmd_insert AFTER INSERT ON commands"
    " BEGIN SELECT fota_device_touched(NEW.device_id); END;"
    "CREATE TEMP TRIGGER devgen_cmd_update AFTER UPDATE ON commands"
    " BEGIN SELECT fota_device_touched(NEW.device_id); END;"
    "CREATE TEMP TRIGGER devgen_cmd_delete AFTER DELETE ON commands"
    " BEGIN SELECT fota_device_touched(OLD.device_id); END;"
    "CREATE TEMP TRIGGER devgen_device AFTER UPDATE OF name, bssid, activated, activated_at,"
    " rom_version, running_slot, key_generation ON devices"
    " BEGIN SELECT fota_device_touched(NEW.id); END;"
    "CREATE TEMP TRIGGER devgen_arduino_insert AFTER INSERT ON arduino_devices"
    " BEGIN SELECT fota_arduino_touched(NEW.device_id); END;"
    "CREATE TEMP TRIGGER devgen_arduino_update AFTER UPDATE OF target, target_rom_id, served_at,"
    " served_md5, pin_version, pin_current, mqtt_topic, mqtt_lwt, mqtt_version, mqtt_seen"
    " ON arduino_devices BEGIN SELECT fota_arduino_touched(NEW.device_id); END;";

static int device_triggers(struct sql_store *q, char *err, size_t errlen)
{
    char *msg = NULL;
    int rc = sqlite3_create_function_v2(q->db, "fota_device_touched", 1, SQLITE_UTF8, q,
                                        device_touched, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_create_function_v2(q->db, "fota_arduino_touched", 1, SQLITE_UTF8, q,
                                        arduino_touched, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(q->db, DEVICE_TRIGGERS, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        snprintf(err, errlen, "device generation triggers: %s",
                 msg ? msg : sqlite3_errmsg(q->db));
    sqlite3_free(msg);
    return rc == SQLITE_OK ? 0 : FOTA_EIO;
}

int fota_store_sqlite_open(const char *path, fota_log_cb log, void *log_ud,
                           struct fota_store **out, char *err, size_t errlen)
{
    struct sql_store *q;
    int rc;

    *out = NULL;
    if (errlen)
        err[0] = '\0';
    q = fota_xcalloc(1, sizeof *q);
    q->base.ops = &sqlite_ops;
    q->base.log = log;
    q->base.log_ud = log_ud;
    q->lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    /* NOMUTEX: our own mutex serialises every use of the connection. */
    rc = sqlite3_open_v2(path, &q->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path,
                 q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_extended_result_codes(q->db, 1);
    sqlite3_busy_timeout(q->db, 5000);   /* another process (fotactl, sqlite3 CLI) may hold the lock */
    /* WAL + synchronous=NORMAL: a commit is appended to the WAL without an
     * fsync. That is durable across any crash of fotad itself (the kernel
     * holds the pages) and never corrupts the database; only a power loss or
     * kernel crash can roll back the last transactions. High-rate writes
     * (presence, messages, ledgers) take that trade. Writes an admin was told
     * succeeded (products, releases, current version, devices, keys) run
     * with synchronous=FULL for their one transaction, so the commit itself
     * is fsynced; release publish also fsyncs its blobs (blob.c) before the
     * transaction that names them. */
    /* journal_size_limit: a checkpoint that resets the WAL truncates it to
     * 8 MiB, so a burst (retention deleting a backlog, a large rollout
     * save) does not keep its high-water mark on disk; the 8 MiB kept are
     * rewritten in place, room the next writes need not ask the disk for. */
    if (pragma(q, "PRAGMA journal_mode=WAL", "wal", err, errlen) ||
        pragma(q, "PRAGMA synchronous=NORMAL", NULL, err, errlen) ||
        pragma(q, "PRAGMA foreign_keys=ON", NULL, err, errlen) ||
        pragma(q, "PRAGMA journal_size_limit=8388608", "8388608", err, errlen))
        goto fail;
    if (fota_store_sqlite_migrate(q, err, errlen) != 0)
        goto fail;
    fota_store_sqlite_rollout_import(q, path);   /* logged; retried at the next open */
    if (device_triggers(q, err, errlen) != 0)
        goto fail;
    q->changes_seen = sqlite3_total_changes64(q->db);
    q->base.generation = 1;   /* counting: caches may be used */
    *out = &q->base;
    return 0;
fail:
    if (!err[0])
        snprintf(err, errlen, "cannot open %s", path);
    fota_store_logf(&q->base, FOTA_LOG_ERROR, "open failed path=%s error=\"%s\"", path, err);
    sqlite3_close(q->db);
    pthread_mutex_destroy(&q->lock);
    free(q);
    return FOTA_EIO;
}
