/* store_sqlite_fleet.c - devices, keys, messages and the download and
 * transfer ledgers in the SQLite store (commands: store_sqlite_command.c).
 *
 * Devices and keys are written durably (synchronous=FULL for the commit);
 * the high-rate rows (presence, messages, ledgers) use the
 * connection's synchronous=NORMAL: see the comment in store_sqlite.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "clock.h"
#include "store_sqlite_int.h"
#include "xmalloc.h"

#define Q(s) fota_store_sqlite_cast(s)
#define STMT(id, sql) fota_store_sqlite_stmt(q, (id), (sql))

/* ---- devices ----------------------------------------------------------- */

/* The columns fota_store_sqlite_read_device reads, in its order. */
#define DEVICE_COLS                                                                       \
    "SELECT id, product_id, name, bssid, activated, activated_at, rom_version, running_slot," \
    " last_active, online, created, key_generation FROM devices"

void fota_store_sqlite_read_device(sqlite3_stmt *st, void *row)
{
    struct fota_device *d = row;

    memset(d, 0, sizeof *d);
    d->id = sqlite3_column_int64(st, 0);
    d->product_id = sqlite3_column_int64(st, 1);
    fota_store_sqlite_col_text(st, 2, d->name, sizeof d->name);
    fota_store_sqlite_col_text(st, 3, d->bssid, sizeof d->bssid);
    d->activated = sqlite3_column_int(st, 4);
    d->activated_at = sqlite3_column_int64(st, 5);
    fota_store_sqlite_col_text(st, 6, d->rom_version, sizeof d->rom_version);
    d->running_slot = sqlite3_column_int(st, 7);
    d->last_active = sqlite3_column_int64(st, 8);
    d->online = sqlite3_column_int(st, 9);
    d->created = sqlite3_column_int64(st, 10);
    d->key_generation = sqlite3_column_int(st, 11);
}

static sqlite3_stmt *device_insert(struct sql_store *q, const struct fota_device *d, int64_t now)
{
    sqlite3_stmt *st = STMT(SQ_DEVICE_INSERT,
              "INSERT INTO devices (id, product_id, name, bssid, activated, activated_at, rom_version,"
              " running_slot, last_active, online, created, key_generation)"
              " VALUES (" SQL_NEXT_ID("devices") ", ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id");
    if (st) {
        sqlite3_bind_int64(st, 1, d->product_id);
        SQL_BIND_STR(st, 2, d->name);
        SQL_BIND_STR(st, 3, d->bssid);
        sqlite3_bind_int(st, 4, d->activated);
        sqlite3_bind_int64(st, 5, d->activated_at);
        SQL_BIND_STR(st, 6, d->rom_version);
        sqlite3_bind_int(st, 7, d->running_slot);
        sqlite3_bind_int64(st, 8, d->last_active);
        sqlite3_bind_int(st, 9, d->online);
        sqlite3_bind_int64(st, 10, now);
        sqlite3_bind_int(st, 11, d->key_generation);
    }
    return st;
}

int fota_store_sqlite_device_create(struct fota_store *s, struct fota_device *d)
{
    struct sql_store *q = Q(s);
    int64_t now = fota_clock_wall_s(), id = 0;
    int rc;

    fota_store_sqlite_lock(q);
    rc = fota_store_sqlite_exec_tx(q, device_insert(q, d, now), 1, "device_create", &id);
    if (rc == 0) {
        d->id = id;
        d->created = now;
    }
    return fota_store_sqlite_unlock(q, rc);
}

static sqlite3_stmt *key_insert(struct sql_store *q, const struct fota_key *k)
{
    sqlite3_stmt *st = STMT(SQ_KEY_INSERT, "INSERT INTO api_keys (hash, kind, product_id,"
                                           " device_id, created) VALUES (?, ?, ?, ?, ?)");
    if (st) {
        SQL_BIND_STR(st, 1, k->hash);
        sqlite3_bind_int(st, 2, k->kind);
        fota_store_sqlite_bind_id(st, 3, k->product_id);
        fota_store_sqlite_bind_id(st, 4, k->device_id);
        sqlite3_bind_int64(st, 5, k->created ? k->created : fota_clock_wall_s());
    }
    return st;
}

/* One device of device_create_many and its keys, in the open transaction. */
static int create_one(struct sql_store *q, struct fota_device *d, int64_t now,
                      fota_store_device_keys_fn keys, void *ud)
{
    struct fota_key ks[FOTA_DEVICE_KEYS];
    int64_t id = 0;
    int rc = fota_store_sqlite_exec(q, device_insert(q, d, now), "device_create_many", &id);

    if (rc)
        return rc;
    d->id = id;
    d->created = now;
    memset(ks, 0, sizeof ks);
    keys(ud, d, ks);
    for (int j = 0; j < FOTA_DEVICE_KEYS && rc == 0; j++) {
        if (!ks[j].hash[0])
            return FOTA_EINVAL;
        ks[j].product_id = d->product_id;
        ks[j].device_id = d->id;
        ks[j].created = now;
        rc = fota_store_sqlite_exec(q, key_insert(q, &ks[j]), "device_create_many", NULL);
    }
    return rc;
}

int fota_store_sqlite_device_create_many(struct fota_store *s, struct fota_device *d, size_t n,
                                         fota_store_device_keys_fn keys, void *ud)
{
    struct sql_store *q = Q(s);
    int64_t now = fota_clock_wall_s();
    int rc;

    if (n == 0 || n > FOTA_DEVICE_BATCH_MAX || !keys)
        return FOTA_EINVAL;
    fota_store_sqlite_lock(q);
    rc = fota_store_sqlite_begin(q, 1);
    if (rc == 0) {
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = create_one(q, &d[i], now, keys, ud);
        rc = fota_store_sqlite_finish(q, rc);
    }
    return fota_store_sqlite_unlock(q, rc);
}

int fota_store_sqlite_device_get(struct fota_store *s, int64_t id, struct fota_device *out)
{
    struct sql_store *q = Q(s);
    sqlite3_stmt *st;

    fota_store_sqlite_lock(q);
    st = STMT(SQ_DEVICE_GET, DEVICE_COLS " WHERE id = ?");
    if (st)
        sqlite3_bind_int64(st, 1, id);
    return fota_store_sqlite_unlock(q, fota_store_sqlite_one(q, st, fota_store_sqlite_read_device, out, "device_get"));
}

int fota_store_sqlite_device_list(struct fota_store *s, int64_t product_id, struct fota_device **out,
                                  size_t *n)
{
    struct sql_store *q = Q(s);
    sqlite3_stmt *st;

    fota_store_sqlite_lock(q);
    if (product_id)
        st = STMT(SQ_DEVICE_LIST, DEVICE_COLS " WHERE product_id = ? ORDER BY id");
    else
        st = STMT(SQ_DEVICE_LIST_ALL, DEVICE_COLS " ORDER BY id");
    if (st && product_id)
        sqlite3_bind_int64(st, 1, product_id);
    return fota_store_sqlite_unlock(q, fota_store_sqlite_collect(q, st, fota_store_sqlite_read_device, sizeof **out,
                                                                 (void **)out, n, "device_list"));
}

int fota_store_sqlite_device_update(struct fota_store *s, const struct fota_device *d, unsigned fields)
{
    struct sql_store *q = Q(s);
    sqlite3_stmt *st;
    int rc;

    fota_store_sqlite_lock(q);
    q->hot = !(fields & FOTA_DEV_F_KEYGEN);   /* only keys are cached (store.h) */
    /* One statement for every mask: each column keeps its value unless its
     * flag is set (portable CASE, no SQL built at run time). */
    st = STMT(SQ_DEVICE_UPDATE,
              "UPDATE devices SET"
              " name = CASE WHEN ? <> 0 THEN ? ELSE name END,"
              " bssid = CASE WHEN ? <> 0 THEN ? ELSE bssid END,"
              " activated = CASE WHEN ? <> 0 THEN ? ELSE activated END,"
              " activated_at = CASE WHEN ? <> 0 THEN ? ELSE activated_at END,"
              " rom_version = CASE WHEN ? <> 0 THEN ? ELSE rom_version END,"
              " running_slot = CASE WHEN ? <> 0 THEN ? ELSE running_slot END,"
              " last_active = CASE WHEN ? <> 0 THEN ? ELSE last_active END,"
              " online = CASE WHEN ? <> 0 THEN ? ELSE online END,"
              " key_generation = CASE WHEN ? <> 0 THEN ? ELSE key_generation END"
              " WHERE id = ?");
    if (st) {
        sqlite3_bind_int(st, 1, !!(fields & FOTA_DEV_F_NAME));
        SQL_BIND_STR(st, 2, d->name);
        sqlite3_bind_int(st, 3, !!(fields & FOTA_DEV_F_BSSID));
        SQL_BIND_STR(st, 4, d->bssid);
        sqlite3_bind_int(st, 5, !!(fields & FOTA_DEV_F_ACTIVATION));
        sqlite3_bind_int(st, 6, d->activated);
        sqlite3_bind_int(st, 7, !!(fields & FOTA_DEV_F_ACTIVATION));
        sqlite3_bind_int64(st, 8, d->activated_at);
        sqlite3_bind_int(st, 9, !!(fields & FOTA_DEV_F_ROM_VERSION));
        SQL_BIND_STR(st, 10, d->rom_version);
        sqlite3_bind_int(st, 11, !!(fields & FOTA_DEV_F_SLOT));
        sqlite3_bind_int(st, 12, d->running_slot);
        sqlite3_bind_int(st, 13, !!(fields & FOTA_DEV_F_PRESENCE));
        sqlite3_bind_int64(st, 14, d->last_active);
        sqlite3_bind_int(st, 15, !!(fields & FOTA_DEV_F_PRESENCE));
        sqlite3_bind_int(st, 16, d->online);
        sqlite3_bind_int(st, 17, !!(fields & FOTA_DEV_F_KEYGEN));
        sqlite3_bind_int(st, 18, d->key_generation);
        sqlite3_bind_int64(st, 19, d->id);
    }
    /* Admin fields and KEYGEN (which master key is valid) are fsynced; what
     * the device reports is written like its report message (store.h). */
    rc = fota_store_sqlite_exec_tx(q, st, (fields & ~(unsigned)FOTA_DEV_F_REPORTED) != 0, "device_update", NULL);
    if (rc == 0 && sqlite3_changes(q->db) == 0)
        rc = FOTA_ENOENT;
    return fota_store_sqlite_unlock(q, rc);
}

int fota_store_sqlite_device_presence_batch(struct fota_store *s, const struct fota_presence *rows,
                                            size_t n)
{
    struct sql_store *q = Q(s);
    sqlite3_stmt *st;
    int rc;

    if (n == 0)
        return 0;
    fota_store_sqlite_lock(q);
    q->hot = 1;
    rc = fota_store_sqlite_begin(q, 0);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        st = STMT(SQ_DEVICE_PRESENCE, "UPDATE devices SET last_active = ?, online = ? WHERE id = ?");
        if (st) {
            sqlite3_bind_int64(st, 1, rows[i].last_active);
            sqlite3_bind_int(st, 2, rows[i].online);
            sqlite3_bind_int64(st, 3, rows[i].device_id);
        }
        rc = fota_store_sqlite_exec(q, st, "device_presence_batch", NULL);
    }
    rc = fota_store_sqlite_finish(q, rc);
    return fota_store_sqlite_unlock(q, rc);
}

/* ---- keys -------------------------------------------------------------- */

static void read_key(sqlite3_stmt *st, void *row)
{
    struct fota_key *k = row;

    memset(k, 0, sizeof *k);
    fota_store_sqlite_col_text(st, 0, k->hash, sizeof k->hash);
    k->kind = sqlite3_column_int(st, 1);
    k->product_id = sqlite3_column_int64(st, 2);
    k->device_id = sqlite3_column_int64(st, 3);
    k->created = sqlite3_column_int64(st, 4);
}

int fota_store_sqlite_key_create(struct fota_store *s, const struct fota_key *k)
{
    struct sql_store *q = Q(s);
    int rc;

    if (!k->hash[0])
        return FOTA_EINVAL;
    fota_store_sqlite_lock(q);
    rc = fota_store_sqlite_exec_tx(q, key_insert(q, k), 1, "key_create", NULL);
    return fota_store_sqlite_unlock(q, rc);
}

int fota_store_sqlite_key_lookup(struct fota_store *s, const char *hash_hex, struct fota_key *out)
{
    struct sql_store *q = Q(s);
    sqlite3_stmt *st;

    fota_store_sqlite_lock(q);
    st = STMT(SQ_KEY_LOOKUP,
              "SELECT hash, kind, COALESCE(product_id, 0), COALESCE(device_id, 0), created"
              " FROM api_keys WHERE hash = ?");
    if (st)
        fota_store_sqlite_bind_text(st, 1, hash_hex, FOTA_HASH_HEX);
    return fota_store_sqlite_unlock(q, fota_store_sqlite_one(q, st, read_key, out, "key_lookup"));
}

int fota_store_sqlite_key_delete_for_device(struct fota_store *s, int64_t device_id, int kind)
{
    struct sql_store *q = Q(s);
    sqlite3_stmt *st;
    int rc;

    fota_store_sqlite_lock(q);
    do {   /* a removal: on a full disk it may use the reserve (store_sqlite_delete.c) */
        st = STMT(SQ_KEY_DELETE,
                  "DELETE FROM api_keys WHERE device_id = ? AND (? = 0 OR kind = ?)");
        if (st) {
            sqlite3_bind_int64(st, 1, device_id);
            sqlite3_bind_int(st, 2, kind);
            sqlite3_bind_int(st, 3, kind);
        }
        rc = fota_store_sqlite_exec_tx(q, st, 1, "key_delete_for_device", NULL);
    } while (fota_store_sqlite_make_room(q, rc, "key_delete_for_device"));
    return fota_store_sqlite_unlock(q, rc);
}

/* ---- messages ---------------------------------------------------------- */

static void read_message(sqlite3_stmt *st, void *row)
{
    struct fota_message *m = row;

    memset(m, 0, sizeof *m);
    m->id = sqlite3_column_int64(st, 0);
    m->product_id = sqlite3_column_int64(st, 1);
    m->device_id = sqlite3_column_int64(st, 2);
    fota_store_sqlite_col_text(st, 3, m->action, sizeof m->action);
    fota_store_sqlite_col_text(st, 4, m->body, sizeof m->body);
    m->created = sqlite3_column_int64(st, 5);
}

/* m's row, inside the caller's transaction; an upgrade report also counts
 * in its product's minute (product_activity). */
static int message_insert(struct sql_store *q, const struct fota_message *m, int64_t created,
                          int64_t *id)
{
    int up = strcmp(m->action, "device_upgrade_success") == 0;
    int failed = strcmp(m->action, "device_upgrade_failed") == 0;
    sqlite3_stmt *st = STMT(SQ_MSG_INSERT,
                            "INSERT INTO messages (id, product_id, device_id, action, body, created)"
                            " VALUES (" SQL_NEXT_ID("messages") ", ?, ?, ?, ?, ?) RETURNING id");
    if (st) {
        sqlite3_bind_int64(st, 1, m->product_id);
        sqlite3_bind_int64(st, 2, m->device_id);
        SQL_BIND_STR(st, 3, m->action);
        SQL_BIND_STR(st, 4, m->body);
        sqlite3_bind_int64(st, 5, created);
    }
    int rc = fota_store_sqlite_exec(q, st, "message_add", id);
    if (rc == 0 && (up || failed) && m->product_id > 0)
        rc = fota_store_sqlite_activity_reports(q, m->product_id, created, up, failed);
    return rc;
}

int fota_store_sqlite_message_add(struct fota_store *s, struct fota_message *m)
{
    struct sql_store *q = Q(s);
    int64_t created = m->created ? m->created : fota_clock_wall_s(), id = 0;
    int rc;

    if (!m->action[0])
        return FOTA_EINVAL;
    fota_store_sqlite_lock(q);
    q->hot = 1;                /* not a cached table (store.h) */
    rc = fota_store_sqlite_begin(q, 0);
    if (rc)
        return fota_store_sqlite_unlock(q, rc);
    rc = fota_store_sqlite_finish(q, message_insert(q, m, created, &id));
    if (rc == 0) {
        m->id = id;
        m->created = created;
    }
    return fota_store_sqlite_unlock(q, rc);
}

int fota_store_sqlite_report_batch(struct fota_store *s, struct fota_report_row *rows, size_t n)
{
    struct sql_store *q = Q(s);
    int64_t now = fota_clock_wall_s();
    int rc;

    if (fota_store_report_rows_check(rows, n) != 0)
        return FOTA_EINVAL;
    if (n == 0)
        return 0;
    fota_store_sqlite_lock(q);
    q->hot = 1;                /* reported fields and messages: not cached (store.h) */
    rc = fota_store_sqlite_begin(q, 0);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct fota_report_row *r = &rows[i];
        if (r->fields) {
            sqlite3_stmt *st = STMT(SQ_REPORT_DEVICE,
                                    "UPDATE devices SET"
                                    " rom_version = CASE WHEN ? <> 0 THEN ? ELSE rom_version END,"
                                    " running_slot = CASE WHEN ? <> 0 THEN ? ELSE running_slot END"
                                    " WHERE id = ?");
            if (st) {
                sqlite3_bind_int(st, 1, !!(r->fields & FOTA_DEV_F_ROM_VERSION));
                SQL_BIND_STR(st, 2, r->rom_version);
                sqlite3_bind_int(st, 3, !!(r->fields & FOTA_DEV_F_SLOT));
                sqlite3_bind_int(st, 4, r->running_slot);
                sqlite3_bind_int64(st, 5, r->m.device_id);
            }
            rc = fota_store_sqlite_exec(q, st, "report_batch", NULL);
        }
        int64_t created = r->m.created ? r->m.created : now;
        if (rc == 0)
            rc = message_insert(q, &r->m, created, &r->m.id);
        if (rc == 0)
            r->m.created = created;
    }
    rc = fota_store_sqlite_finish(q, rc);
    if (rc != 0)
        for (size_t i = 0; i < n; i++)
            rows[i].m.id = 0;
    return fota_store_sqlite_unlock(q, rc);
}

int fota_store_sqlite_message_list(struct fota_store *s, const struct fota_message_filter *f,
                                   struct fota_message **out, size_t *n)
{
    struct sql_store *q = Q(s);
    /* Eight fixed statements, one per (product?, device?, ascending?), so
     * each can use its index instead of "? = 0 OR col = ?" scans. The id
     * window is always bound: (after_id, before_id) with 0/INT64_MAX. */
    int variant = (f->product_id ? 1 : 0) | (f->device_id ? 2 : 0) | (f->after_id ? 4 : 0);
    char sql[320];
    sqlite3_stmt *st;
    int idx = 1;

    snprintf(sql, sizeof sql,
             "SELECT id, product_id, device_id, action, body, created FROM messages"
             " WHERE id > ? AND id < ?%s%s ORDER BY id %s LIMIT ?",
             (variant & 1) ? " AND product_id = ?" : "", (variant & 2) ? " AND device_id = ?" : "",
             (variant & 4) ? "ASC" : "DESC");
    fota_store_sqlite_lock(q);
    st = STMT(SQ_MSG_LIST0 + variant, sql);
    if (st) {
        sqlite3_bind_int64(st, idx++, f->after_id > 0 ? f->after_id : 0);
        sqlite3_bind_int64(st, idx++, f->before_id > 0 ? f->before_id : INT64_MAX);
        if (variant & 1)
            sqlite3_bind_int64(st, idx++, f->product_id);
        if (variant & 2)
            sqlite3_bind_int64(st, idx++, f->device_id);
        sqlite3_bind_int64(st, idx, (int64_t)fota_store_limit(f->limit));
    }
    return fota_store_sqlite_unlock(q, fota_store_sqlite_collect(q, st, read_message, sizeof **out,
                                                                 (void **)out, n, "message_list"));
}

/* ---- download ledger and transfers ------------------------------------- */

int fota_store_sqlite_ledger_row(struct sql_store *q, int64_t device_id, int64_t file_id,
                                 int64_t bytes, int completed)
{
    /* INSERT ... ON CONFLICT DO UPDATE: same syntax in PostgreSQL */
    sqlite3_stmt *st = STMT(SQ_DL_UPSERT,
                            "INSERT INTO downloads (device_id, file_id, bytes, completions)"
                            " VALUES (?, ?, ?, ?) ON CONFLICT (device_id, file_id) DO UPDATE SET"
                            " bytes = downloads.bytes + excluded.bytes,"
                            " completions = downloads.completions + excluded.completions");
    if (st) {
        sqlite3_bind_int64(st, 1, device_id);
        sqlite3_bind_int64(st, 2, file_id);
        sqlite3_bind_int64(st, 3, bytes);
        sqlite3_bind_int(st, 4, completed);
    }
    return fota_store_sqlite_exec(q, st, "download_add", NULL);
}

int fota_store_sqlite_ledger_file(struct sql_store *q, int64_t file_id, int64_t bytes,
                                  int64_t completed)
{
    sqlite3_stmt *st;
    int rc = 0;

    if (completed) {
        st = STMT(SQ_DL_COUNT_FILE,
                  "UPDATE rom_files SET download_count = download_count + ? WHERE id = ?");
        if (st) {
            sqlite3_bind_int64(st, 1, completed);
            sqlite3_bind_int64(st, 2, file_id);
        }
        rc = fota_store_sqlite_exec(q, st, "download_add", NULL);
    }
    if (rc == 0 && (completed || bytes))
        rc = fota_store_sqlite_activity_download(q, file_id, bytes, completed);
    return rc;
}

int fota_store_sqlite_ledger_add(struct sql_store *q, int64_t device_id, int64_t file_id,
                                 int64_t bytes, int completed)
{
    int rc = fota_store_sqlite_ledger_row(q, device_id, file_id, bytes, completed);
    return rc ? rc : fota_store_sqlite_ledger_file(q, file_id, bytes, completed);
}

int fota_store_sqlite_download_add(struct fota_store *s, int64_t device_id, int64_t file_id,
                                   int64_t bytes, int completed)
{
    struct sql_store *q = Q(s);
    int rc;

    if (bytes < 0 || completed < 0)
        return FOTA_EINVAL;
    fota_store_sqlite_lock(q);
    q->hot = 1;
    rc = fota_store_sqlite_begin(q, 0);
    if (rc == 0)
        rc = fota_store_sqlite_ledger_add(q, device_id, file_id, bytes, completed);
    rc = fota_store_sqlite_finish(q, rc);
    return fota_store_sqlite_unlock(q, rc);
}

int fota_store_sqlite_download_add_batch(struct fota_store *s, const struct fota_download_row *rows,
                                         size_t n)
{
    struct sql_store *q = Q(s);
    struct fota_download_row *sums;
    size_t nsums = 0;
    int rc;

    for (size_t i = 0; i < n; i++)
        if (rows[i].bytes < 0 || rows[i].completed < 0)
            return FOTA_EINVAL;
    if (n == 0)
        return 0;
    sums = fota_xcalloc(n, sizeof *sums);
    fota_store_sqlite_lock(q);
    q->hot = 1;
    rc = fota_store_sqlite_begin(q, 0);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const struct fota_download_row *w = &rows[i];
        size_t k;
        /* a file deleted meanwhile: its row is skipped, the others stay */
        rc = fota_store_sqlite_ledger_row(q, w->device_id, w->file_id, w->bytes, w->completed);
        if (rc == FOTA_ENOENT) {
            rc = 0;
            continue;
        }
        /* the file's count and activity once per batch, not once per row */
        for (k = 0; k < nsums && sums[k].file_id != w->file_id; k++)
            ;
        if (k == nsums)
            sums[nsums++].file_id = w->file_id;
        sums[k].bytes += w->bytes;
        sums[k].completed += w->completed;
    }
    for (size_t k = 0; rc == 0 && k < nsums; k++)
        rc = fota_store_sqlite_ledger_file(q, sums[k].file_id, sums[k].bytes, sums[k].completed);
    rc = fota_store_sqlite_finish(q, rc);
    free(sums);
    return fota_store_sqlite_unlock(q, rc);
}

int fota_store_sqlite_download_bytes(struct fota_store *s, int64_t device_id, int64_t *bytes)
{
    struct sql_store *q = Q(s);
    sqlite3_stmt *st;
    int64_t sum = 0;
    int rc;

    fota_store_sqlite_lock(q);
    st = STMT(SQ_DL_SUM, "SELECT COALESCE(SUM(bytes), 0) FROM downloads WHERE device_id = ?");
    if (st)
        sqlite3_bind_int64(st, 1, device_id);
    rc = fota_store_sqlite_exec(q, st, "download_bytes", &sum);
    if (rc == 0)
        *bytes = sum;
    return fota_store_sqlite_unlock(q, rc);
}

static void read_transfer(sqlite3_stmt *st, void *row)
{
    struct fota_transfer *t = row;

    memset(t, 0, sizeof *t);
    t->id = sqlite3_column_int64(st, 0);
    fota_store_sqlite_col_text(st, 1, t->peer, sizeof t->peer);
    t->section = sqlite3_column_int(st, 2);
    t->bytes = sqlite3_column_int64(st, 3);
    fota_store_sqlite_col_text(st, 4, t->result, sizeof t->result);
    t->duration_ms = sqlite3_column_int64(st, 5);
    fota_store_sqlite_col_text(st, 6, t->mode, sizeof t->mode);
    t->created = sqlite3_column_int64(st, 7);
}

int fota_store_sqlite_transfer_add(struct fota_store *s, struct fota_transfer *t)
{
    struct sql_store *q = Q(s);
    int64_t created = t->created ? t->created : fota_clock_wall_s(), id = 0;
    sqlite3_stmt *st;
    int rc;

    fota_store_sqlite_lock(q);
    q->hot = 1;                /* not a cached table (store.h) */
    st = STMT(SQ_XFER_INSERT,
              "INSERT INTO transfers (id, peer, section, bytes, result, duration_ms, mode, created)"
              " VALUES (" SQL_NEXT_ID("transfers") ", ?, ?, ?, ?, ?, ?, ?) RETURNING id");
    if (st) {
        SQL_BIND_STR(st, 1, t->peer);
        sqlite3_bind_int(st, 2, t->section);
        sqlite3_bind_int64(st, 3, t->bytes);
        SQL_BIND_STR(st, 4, t->result);
        sqlite3_bind_int64(st, 5, t->duration_ms);
        SQL_BIND_STR(st, 6, t->mode);
        sqlite3_bind_int64(st, 7, created);
    }
    rc = fota_store_sqlite_exec_tx(q, st, 0, "transfer_add", &id);
    if (rc == 0) {
        t->id = id;
        t->created = created;
    }
    return fota_store_sqlite_unlock(q, rc);
}

int fota_store_sqlite_transfer_list(struct fota_store *s, size_t limit, struct fota_transfer **out,
                                    size_t *n)
{
    struct sql_store *q = Q(s);
    sqlite3_stmt *st;

    fota_store_sqlite_lock(q);
    st = STMT(SQ_XFER_LIST,
              "SELECT id, peer, section, bytes, result, duration_ms, mode, created FROM transfers"
              " ORDER BY id DESC LIMIT ?");
    if (st)
        sqlite3_bind_int64(st, 1, (int64_t)fota_store_limit(limit));
    return fota_store_sqlite_unlock(q, fota_store_sqlite_collect(q, st, read_transfer, sizeof **out,
                                                                 (void **)out, n, "transfer_list"));
}
