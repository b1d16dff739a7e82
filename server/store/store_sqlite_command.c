/* store_sqlite_command.c - device commands in the SQLite store: one command
 * or a batch (a rollout's rows: one transaction for all, not one per
 * device), their state changes, and the lookups by id, by nonce and by
 * device. Params and results are JSON text in their columns and jansson
 * values in the rows (decoded here, once, on the way out; store_int.h).
 * Commands are fleet traffic: synchronous=NORMAL, no generation move
 * (store.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "clock.h"
#include "store_int.h"
#include "store_sqlite_int.h"
#include "xmalloc.h"

#define Q(s) fota_store_sqlite_cast(s)
#define STMT(id, sql) fota_store_sqlite_stmt(q, (id), (sql))

#define COMMAND_COLS \
    "SELECT id, device_id, nonce, action, params, state, result, created, updated FROM commands"

static void read_command(sqlite3_stmt *st, void *row)
{
    struct fota_command *c = row;

    memset(c, 0, sizeof *c);
    c->id = sqlite3_column_int64(st, 0);
    c->device_id = sqlite3_column_int64(st, 1);
    c->nonce = sqlite3_column_int64(st, 2);
    fota_store_sqlite_col_text(st, 3, c->action, sizeof c->action);
    c->params = fota_store_json_decode((const char *)sqlite3_column_text(st, 4),
                                       (size_t)sqlite3_column_bytes(st, 4), 1);
    c->state = sqlite3_column_int(st, 5);
    c->result = fota_store_json_decode((const char *)sqlite3_column_text(st, 6),
                                       (size_t)sqlite3_column_bytes(st, 6), 0);
    c->created = sqlite3_column_int64(st, 7);
    c->updated = sqlite3_column_int64(st, 8);
}

/* Binds a JSON column's text (NULL: ""). */
static void bind_json(sqlite3_stmt *st, int idx, const char *text)
{
    sqlite3_bind_text(st, idx, text ? text : "", -1, SQLITE_STATIC);
}

/* Inserts n commands like tmpl for device_ids[i] inside the caller's
 * transaction (see command_create_many in store.h); now is their created
 * and updated. The template's params and result are encoded once for all
 * rows. */
static int insert_rows(struct sql_store *q, const struct fota_command *tmpl,
                       const int64_t *device_ids, int64_t *nonces, int64_t *ids, size_t n,
                       int64_t now)
{
    int state = tmpl->state ? tmpl->state : FOTA_CMD_QUEUED;
    char *params = fota_store_json_encode(tmpl->params);
    char *result = fota_store_json_encode(tmpl->result);
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < n; i++) {
        int64_t nonce = nonces[i] ? nonces[i] : fota_store_nonce();
        sqlite3_stmt *st = STMT(SQ_CMD_INSERT,
                                "INSERT INTO commands (id, device_id, nonce, action, params, state,"
                                " result, created, updated) VALUES (" SQL_NEXT_ID("commands")
                                ", ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id");
        if (st) {
            sqlite3_bind_int64(st, 1, device_ids[i]);
            sqlite3_bind_int64(st, 2, nonce);
            SQL_BIND_STR(st, 3, tmpl->action);
            bind_json(st, 4, params);
            sqlite3_bind_int(st, 5, state);
            bind_json(st, 6, result);
            sqlite3_bind_int64(st, 7, now);
            sqlite3_bind_int64(st, 8, now);
        }
        rc = fota_store_sqlite_exec(q, st, "command_create", &ids[i]);
        if (rc == 0)
            nonces[i] = nonce;
    }
    free(params);
    free(result);
    return rc;
}

/* insert_rows in a transaction of its own. */
static int insert_many(struct sql_store *q, const struct fota_command *tmpl,
                       const int64_t *device_ids, int64_t *nonces, int64_t *ids, size_t n,
                       int64_t now)
{
    int rc = fota_store_sqlite_begin(q, 0);
    if (rc == 0)
        rc = insert_rows(q, tmpl, device_ids, nonces, ids, n, now);
    return fota_store_sqlite_finish(q, rc);
}

int fota_store_sqlite_command_create(struct fota_store *s, struct fota_command *c)
{
    struct sql_store *q = Q(s);
    int64_t now = fota_clock_wall_s(), id = 0, nonce = c->nonce;
    int rc;

    if (!c->action[0])
        return FOTA_EINVAL;
    fota_store_sqlite_lock(q);
    q->hot = 1;                /* not a cached table (store.h) */
    rc = insert_many(q, c, &c->device_id, &nonce, &id, 1, now);
    if (rc == 0)
        fota_store_command_created(c, id, nonce, now);
    return fota_store_sqlite_unlock(q, rc);
}

static void read_id(sqlite3_stmt *st, void *row)
{
    *(int64_t *)row = sqlite3_column_int64(st, 0);
}

/* Inside the caller's transaction: the device's queued commands of action
 * older than command id become cancelled, replaced by it (the result of
 * command_create_replacing in store.h). *oldp (oldp may be NULL: freed
 * here) gets their ids, oldest first, *noldp their number. */
static int replace_queued(struct sql_store *q, int64_t device_id, const char *action, int64_t id,
                          int64_t now, int64_t **oldp, size_t *noldp)
{
    int64_t *old = NULL;
    size_t nold = 0;
    sqlite3_stmt *st = STMT(SQ_CMD_QUEUED_LIKE, "SELECT id FROM commands WHERE device_id = ?"
                                                " AND state = ? AND action = ? AND id < ?"
                                                " ORDER BY id");
    if (st) {
        sqlite3_bind_int64(st, 1, device_id);
        sqlite3_bind_int(st, 2, FOTA_CMD_QUEUED);
        sqlite3_bind_text(st, 3, action, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, id);
    }
    int rc = fota_store_sqlite_collect(q, st, read_id, sizeof *old, (void **)&old, &nold,
                                       "command_replace");
    if (rc == 0 && nold) {
        json_t *why = json_pack("{s:o, s:I}", "cancelled",
                                json_sprintf("replaced by command %lld", (long long)id),
                                "replaced_by", (json_int_t)id);
        char *text = fota_store_json_encode(why);
        json_decref(why);
        for (size_t i = 0; rc == 0 && i < nold; i++) {
            st = STMT(SQ_CMD_REPLACE, "UPDATE commands SET state = ?, result = ?, updated = ?"
                                      " WHERE id = ?");
            if (st) {
                sqlite3_bind_int(st, 1, FOTA_CMD_CANCELLED);
                bind_json(st, 2, text);
                sqlite3_bind_int64(st, 3, now);
                sqlite3_bind_int64(st, 4, old[i]);
            }
            rc = fota_store_sqlite_exec(q, st, "command_replace", NULL);
        }
        free(text);
    }
    if (rc == 0 && oldp) {
        *oldp = old;
        *noldp = nold;
    } else {
        free(old);
    }
    return rc;
}

int fota_store_sqlite_command_create_many(struct fota_store *s, const struct fota_command *tmpl,
                                          const int64_t *device_ids, int64_t *nonces,
                                          int64_t *ids, size_t n)
{
    struct sql_store *q = Q(s);
    int64_t now;
    int rc;

    if (!tmpl->action[0])
        return FOTA_EINVAL;
    if (n == 0)
        return 0;
    fota_store_sqlite_lock(q);
    q->hot = 1;                /* not a cached table (store.h) */
    now = fota_clock_wall_s();
    rc = fota_store_sqlite_begin(q, 0);
    if (rc == 0)
        rc = insert_rows(q, tmpl, device_ids, nonces, ids, n, now);
    /* A new upgrade replaces the device's queued ones (store.h). */
    for (size_t i = 0; rc == 0 && i < n && strcmp(tmpl->action, "sys_upgrade") == 0; i++)
        rc = replace_queued(q, device_ids[i], tmpl->action, ids[i], now, NULL, NULL);
    rc = fota_store_sqlite_finish(q, rc);
    return fota_store_sqlite_unlock(q, rc);
}

#define UPDATE_ROWS_SQL                                                                     \
    "UPDATE commands SET state = ?1, result = COALESCE(?2, result), updated = ?3 WHERE id = ?4"

/* Writes rows[0..n) in one transaction; rows[i].result NULL keeps the
 * stored result, and a result shared with the row before is not encoded
 * again (a rollout's rows share theirs). *changed (may be NULL) gets the
 * number of rows written.
 * keep_ended: a row that would open an ended command again is skipped
 * (command_update_batch). */
static int update_rows(struct sql_store *q, const struct fota_command_set *rows, size_t n,
                       int keep_ended, int64_t *changed)
{
    int64_t now = fota_clock_wall_s(), k = 0;
    const struct json_t *last = NULL;
    char *text = NULL;
    int rc = fota_store_sqlite_begin(q, 0);

    for (size_t i = 0; rc == 0 && i < n; i++) {
        sqlite3_stmt *st = keep_ended
            ? STMT(SQ_CMD_UPDATE_KEEP,
                   UPDATE_ROWS_SQL " AND " FOTA_SQL_CMD_NOT_REOPENED("state", "?1"))
            : STMT(SQ_CMD_UPDATE, UPDATE_ROWS_SQL);
        if (rows[i].result && rows[i].result != last) {
            free(text);
            text = fota_store_json_encode(rows[i].result);
            last = rows[i].result;
        }
        if (st) {
            sqlite3_bind_int(st, 1, rows[i].state);
            if (rows[i].result)
                bind_json(st, 2, text);
            sqlite3_bind_int64(st, 3, rows[i].updated ? rows[i].updated : now);
            sqlite3_bind_int64(st, 4, rows[i].id);
        }
        rc = fota_store_sqlite_exec(q, st, "command_update", NULL);
        if (rc == 0)
            k += sqlite3_changes64(q->db);
    }
    if (changed)
        *changed = k;
    free(text);
    return fota_store_sqlite_finish(q, rc);
}

int fota_store_sqlite_command_update(struct fota_store *s, const struct fota_command *c)
{
    struct sql_store *q = Q(s);
    struct fota_command_set row = { c->id, c->state, c->updated, c->result };
    int64_t changed = 0;
    int rc;

    fota_store_sqlite_lock(q);
    q->hot = 1;                /* not a cached table (store.h) */
    rc = update_rows(q, &row, 1, 0, &changed);
    if (rc == 0 && changed == 0)
        rc = FOTA_ENOENT;
    return fota_store_sqlite_unlock(q, rc);
}

int fota_store_sqlite_command_update_batch(struct fota_store *s, const struct fota_command_set *rows,
                                           size_t n)
{
    struct sql_store *q = Q(s);

    if (n == 0)
        return 0;
    fota_store_sqlite_lock(q);
    q->hot = 1;                /* not a cached table (store.h) */
    return fota_store_sqlite_unlock(q, update_rows(q, rows, n, 1, NULL));
}

int fota_store_sqlite_command_get(struct fota_store *s, int64_t id, struct fota_command *out)
{
    struct sql_store *q = Q(s);
    sqlite3_stmt *st;

    fota_store_sqlite_lock(q);
    st = STMT(SQ_CMD_GET, COMMAND_COLS " WHERE id = ?");
    if (st)
        sqlite3_bind_int64(st, 1, id);
    return fota_store_sqlite_unlock(q, fota_store_sqlite_one(q, st, read_command, out,
                                                             "command_get"));
}

int fota_store_sqlite_command_find_nonce(struct fota_store *s, int64_t device_id, int64_t nonce,
                                         struct fota_command *out)
{
    struct sql_store *q = Q(s);
    sqlite3_stmt *st;

    fota_store_sqlite_lock(q);
    st = STMT(SQ_CMD_FIND_NONCE,
              COMMAND_COLS " WHERE device_id = ? AND nonce = ? ORDER BY id DESC LIMIT 1");
    if (st) {
        sqlite3_bind_int64(st, 1, device_id);
        sqlite3_bind_int64(st, 2, nonce);
    }
    return fota_store_sqlite_unlock(q, fota_store_sqlite_one(q, st, read_command, out,
                                                             "command_find_nonce"));
}

int fota_store_sqlite_command_list_device(struct fota_store *s, int64_t device_id, int state,
                                          struct fota_command **out, size_t *n)
{
    struct sql_store *q = Q(s);
    sqlite3_stmt *st;

    fota_store_sqlite_lock(q);
    st = STMT(SQ_CMD_LIST, COMMAND_COLS " WHERE device_id = ? AND (? = 0 OR state = ?) ORDER BY id");
    if (st) {
        sqlite3_bind_int64(st, 1, device_id);
        sqlite3_bind_int(st, 2, state);
        sqlite3_bind_int(st, 3, state);
    }
    return fota_store_sqlite_unlock(q, fota_store_sqlite_collect(q, st, read_command, sizeof **out,
                                                                 (void **)out, n,
                                                                 "command_list_device"));
}

/* ---- the device channel's reads and replies ---------------------------- */

int fota_store_sqlite_command_queued_devices(struct fota_store *s, const int64_t *device_ids,
                                             size_t n, uint8_t *queued)
{
    struct sql_store *q = Q(s);
    int rc = 0;

    fota_store_sqlite_lock(q);
    for (size_t i = 0; i < n && rc == 0; i++) {
        sqlite3_stmt *st = STMT(SQ_CMD_QUEUED_ANY, "SELECT COUNT(*) FROM (SELECT 1 FROM commands"
                                                   " WHERE device_id = ? AND state = ? LIMIT 1)");
        int64_t k = 0;
        if (st) {
            sqlite3_bind_int64(st, 1, device_ids[i]);
            sqlite3_bind_int(st, 2, FOTA_CMD_QUEUED);
        }
        rc = fota_store_sqlite_exec(q, st, "command_queued_devices", &k);
        queued[i] = k > 0;
    }
    return fota_store_sqlite_unlock(q, rc);
}

/* Inside a transaction: the reply to the device's command of this nonce. */
static int reply_tx(struct sql_store *q, int64_t device_id, int64_t nonce, int status,
                    const char *text, struct fota_command *row)
{
    sqlite3_stmt *st = STMT(SQ_CMD_FIND_NONCE, COMMAND_COLS " WHERE device_id = ? AND nonce = ?"
                                                            " ORDER BY id DESC LIMIT 1");
    if (st) {
        sqlite3_bind_int64(st, 1, device_id);
        sqlite3_bind_int64(st, 2, nonce);
    }
    int rc = fota_store_sqlite_one(q, st, read_command, row, "command_reply");
    if (rc != 0)
        return rc;
    if (!fota_store_command_open(row->state))
        return FOTA_EBUSY;
    st = STMT(SQ_CMD_REPLY, "UPDATE commands SET state = ?, result = ?, updated = ? WHERE id = ?");
    if (st) {
        sqlite3_bind_int(st, 1, fota_store_command_reply_state(row->action, status));
        bind_json(st, 2, text);   /* NULL: "" (no result) */
        sqlite3_bind_int64(st, 3, fota_clock_wall_s());
        sqlite3_bind_int64(st, 4, row->id);
    }
    int64_t id = row->id;
    rc = fota_store_sqlite_exec(q, st, "command_reply", NULL);
    fota_store_command_cleanup(row);
    memset(row, 0, sizeof *row);
    st = rc ? NULL : STMT(SQ_CMD_GET, COMMAND_COLS " WHERE id = ?");
    if (st)
        sqlite3_bind_int64(st, 1, id);
    return rc ? rc : fota_store_sqlite_one(q, st, read_command, row, "command_reply");
}

int fota_store_sqlite_command_reply(struct fota_store *s, int64_t device_id, int64_t nonce,
                                    int status, const struct json_t *result,
                                    struct fota_command *out)
{
    struct sql_store *q = Q(s);
    struct fota_command row;
    char *text = result ? fota_store_json_encode(result) : NULL;
    int rc;

    memset(&row, 0, sizeof row);
    fota_store_sqlite_lock(q);
    q->hot = 1;                /* not a cached table (store.h) */
    rc = fota_store_sqlite_begin(q, 0);
    if (rc == 0) {
        rc = reply_tx(q, device_id, nonce, status, text, &row);
        /* A refusal changed nothing: commit the empty transaction all the same. */
        int end = fota_store_sqlite_finish(q, rc == FOTA_EBUSY || rc == FOTA_ENOENT ? 0 : rc);
        if (end != 0)
            rc = end;
    }
    free(text);
    fota_store_command_give(&row, out, rc);
    return fota_store_sqlite_unlock(q, rc);
}

/* ---- a queued command cancelled, or replaced by a new one ---------------- */

int fota_store_sqlite_command_cancel(struct fota_store *s, int64_t device_id, int64_t id,
                                     const struct json_t *result, struct fota_command *out)
{
    struct sql_store *q = Q(s);
    struct fota_command row;
    char *text = result ? fota_store_json_encode(result)
                        : fota_xstrdup("{\"cancelled\": \"by request\"}");
    sqlite3_stmt *st;
    int rc;

    memset(&row, 0, sizeof row);
    fota_store_sqlite_lock(q);
    q->hot = 1;                /* not a cached table (store.h) */
    /* Durable: an upgrade the admin was told is cancelled stays cancelled. */
    rc = fota_store_sqlite_begin(q, 1);
    st = rc ? NULL : STMT(SQ_CMD_CANCEL, "UPDATE commands SET state = ?, result = ?, updated = ?"
                                         " WHERE id = ? AND device_id = ? AND state = ?");
    if (st) {
        sqlite3_bind_int(st, 1, FOTA_CMD_CANCELLED);
        bind_json(st, 2, text);
        sqlite3_bind_int64(st, 3, fota_clock_wall_s());
        sqlite3_bind_int64(st, 4, id);
        sqlite3_bind_int64(st, 5, device_id);
        sqlite3_bind_int(st, 6, FOTA_CMD_QUEUED);
    }
    if (rc == 0)
        rc = fota_store_sqlite_exec(q, st, "command_cancel", NULL);
    int changed = rc == 0 && sqlite3_changes(q->db) > 0;
    if (rc == 0) {
        st = STMT(SQ_CMD_GET, COMMAND_COLS " WHERE id = ?");
        if (st)
            sqlite3_bind_int64(st, 1, id);
        rc = fota_store_sqlite_one(q, st, read_command, &row, "command_cancel");
        if (rc == 0 && row.device_id != device_id)
            rc = FOTA_ENOENT;
        else if (rc == 0 && !changed)
            rc = FOTA_EBUSY;
    }
    /* A refusal changed nothing: commit the empty transaction all the same. */
    int end = fota_store_sqlite_finish(q, rc == FOTA_EBUSY || rc == FOTA_ENOENT ? 0 : rc);
    if (end != 0)
        rc = end;
    free(text);
    fota_store_command_give(&row, out, rc);
    return fota_store_sqlite_unlock(q, rc);
}

int fota_store_sqlite_command_create_replacing(struct fota_store *s, struct fota_command *c,
                                               int64_t *replaced, size_t cap, size_t *nreplaced)
{
    struct sql_store *q = Q(s);
    int64_t now = fota_clock_wall_s(), id = 0, nonce = c->nonce, *old = NULL;
    size_t nold = 0;
    int rc;

    if (nreplaced)
        *nreplaced = 0;
    if (!c->action[0])
        return FOTA_EINVAL;
    fota_store_sqlite_lock(q);
    q->hot = 1;                /* not a cached table (store.h) */
    rc = fota_store_sqlite_begin(q, 0);
    if (rc == 0)
        rc = insert_rows(q, c, &c->device_id, &nonce, &id, 1, now);
    if (rc == 0)
        rc = replace_queued(q, c->device_id, c->action, id, now, &old, &nold);
    rc = fota_store_sqlite_finish(q, rc);
    if (rc == 0) {
        fota_store_command_created(c, id, nonce, now);
        fota_store_replaced_out(old, nold, replaced, cap, nreplaced);
    }
    free(old);
    return fota_store_sqlite_unlock(q, rc);
}
