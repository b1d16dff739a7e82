/* store_sqlite_batch.c - batched command writes in the SQLite store: the
 * rows of a bulk upgrade (one INSERT per device, one transaction for all)
 * and their state changes, so a fan-out to 19,000 devices is a few
 * transactions instead of 38,000. */
#include <stdlib.h>
#include <string.h>
#include "store_sqlite_int.h"

#define Q(s) fota_store_sqlite_cast(s)

/* Prepares sql on the connection (not cached: one statement per batch). */
static sqlite3_stmt *prepare(struct sql_store *q, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK) {
        fota_store_sqlite_err(q, sqlite3_errcode(q->db), "batch prepare");
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

int fota_store_sqlite_command_create_many(struct fota_store *s, const struct fota_command *tmpl,
                                          const int64_t *device_ids, int64_t *nonces,
                                          int64_t *ids, size_t n)
{
    struct sql_store *q = Q(s);
    int64_t now = fota_store_now();
    int state = tmpl->state ? tmpl->state : FOTA_CMD_QUEUED;
    sqlite3_stmt *st;
    int rc;

    if (!tmpl->action[0])
        return FOTA_EINVAL;
    if (n == 0)
        return 0;
    fota_store_sqlite_lock(q);
    q->hot = 1;                /* not a cached table (store.h) */
    st = prepare(q, "INSERT INTO commands (id, device_id, nonce, action, params, state, result,"
                    " created, updated) VALUES (" SQL_NEXT_ID("commands") ", ?, ?, ?, ?, ?, ?, ?, ?)"
                    " RETURNING id");
    rc = st ? fota_store_sqlite_begin(q, 0) : FOTA_EIO;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        int64_t nonce = nonces[i] ? nonces[i] : fota_store_nonce();
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        sqlite3_bind_int64(st, 1, device_ids[i]);
        sqlite3_bind_int64(st, 2, nonce);
        SQL_BIND_STR(st, 3, tmpl->action);
        SQL_BIND_STR(st, 4, tmpl->params);
        sqlite3_bind_int(st, 5, state);
        SQL_BIND_STR(st, 6, tmpl->result);
        sqlite3_bind_int64(st, 7, now);
        sqlite3_bind_int64(st, 8, now);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW) {
            ids[i] = sqlite3_column_int64(st, 0);
            nonces[i] = nonce;
            step = sqlite3_step(st);
        }
        if (step != SQLITE_DONE)
            rc = fota_store_sqlite_err(q, step, "command_create_many");
    }
    if (st && rc == 0)
        rc = fota_store_sqlite_commit(q);
    else if (st)
        fota_store_sqlite_rollback(q);
    sqlite3_finalize(st);
    return fota_store_sqlite_unlock(q, rc);
}

int fota_store_sqlite_command_update_batch(struct fota_store *s, const struct fota_command_set *rows,
                                           size_t n)
{
    struct sql_store *q = Q(s);
    int64_t now = fota_store_now();
    sqlite3_stmt *st;
    int rc;

    if (n == 0)
        return 0;
    fota_store_sqlite_lock(q);
    q->hot = 1;                /* not a cached table (store.h) */
    st = prepare(q, "UPDATE commands SET state = ?, result = COALESCE(?, result), updated = ?"
                    " WHERE id = ?");
    rc = st ? fota_store_sqlite_begin(q, 0) : FOTA_EIO;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        sqlite3_bind_int(st, 1, rows[i].state);
        if (rows[i].result)
            sqlite3_bind_text(st, 2, rows[i].result, (int)strnlen(rows[i].result, FOTA_JSON_MAX - 1),
                              SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 3, rows[i].updated ? rows[i].updated : now);
        sqlite3_bind_int64(st, 4, rows[i].id);
        int step = sqlite3_step(st);
        if (step != SQLITE_DONE)
            rc = fota_store_sqlite_err(q, step, "command_update_batch");
    }
    if (st && rc == 0)
        rc = fota_store_sqlite_commit(q);
    else if (st)
        fota_store_sqlite_rollback(q);
    sqlite3_finalize(st);
    return fota_store_sqlite_unlock(q, rc);
}
