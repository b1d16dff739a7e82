/* store_sqlite_rollout_members.c - a rollout's member rows in the SQLite
 * store: upserted in the engine's batches (rollout_save's transaction; the
 * version a device ran when it was selected is written once, with the
 * member's first row) and read in device id order, a page at a time or
 * whole (a resumption). */
#include <string.h>
#include "store_sqlite_rollout.h"

#define Q(s) fota_store_sqlite_cast(s)

sqlite3_stmt *fota_store_sqlite_rollout_member_stmt(struct sql_store *q)
{
    return fota_store_sqlite_rollout_prepare(
        q, "INSERT INTO rollout_members (rollout_id, device_id, stage, state, command_id, nonce,"
           " pushed, updated, reason, boots, reported, pre_version) VALUES (?, ?, ?, ?, ?, ?, ?,"
           " ?, ?, ?, ?, ?) ON CONFLICT (rollout_id, device_id) DO UPDATE SET"
           " stage = excluded.stage, state = excluded.state, command_id = excluded.command_id,"
           " nonce = excluded.nonce, pushed = excluded.pushed, updated = excluded.updated,"
           " reason = excluded.reason, boots = excluded.boots, reported = excluded.reported");
}

int fota_store_sqlite_rollout_save_members(struct sql_store *q, sqlite3_stmt *st,
                                           const struct fota_rollout_member_row *ms, size_t nm,
                                           int64_t now)
{
    for (size_t i = 0; i < nm; i++) {
        const struct fota_rollout_member_row *m = &ms[i];
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        sqlite3_bind_int64(st, 1, m->rollout_id);
        sqlite3_bind_int64(st, 2, m->device_id);
        sqlite3_bind_int(st, 3, m->stage);
        sqlite3_bind_int(st, 4, m->state);
        sqlite3_bind_int64(st, 5, m->command_id);
        sqlite3_bind_int64(st, 6, m->nonce);
        sqlite3_bind_int64(st, 7, m->pushed);
        sqlite3_bind_int64(st, 8, m->updated ? m->updated : now);
        sqlite3_bind_int(st, 9, m->reason);
        sqlite3_bind_int(st, 10, m->boots);
        sqlite3_bind_int64(st, 11, m->reported);
        SQL_BIND_STR(st, 12, m->pre_version);
        if (sqlite3_step(st) != SQLITE_DONE)
            return fota_store_sqlite_err(q, sqlite3_errcode(q->db), "rollout_save members");
    }
    return 0;
}

static void read_member(sqlite3_stmt *st, void *row)
{
    struct fota_rollout_member_row *m = row;
    memset(m, 0, sizeof *m);
    m->rollout_id = sqlite3_column_int64(st, 0);
    m->device_id = sqlite3_column_int64(st, 1);
    m->stage = sqlite3_column_int(st, 2);
    m->state = sqlite3_column_int(st, 3);
    m->command_id = sqlite3_column_int64(st, 4);
    m->nonce = sqlite3_column_int64(st, 5);
    m->pushed = sqlite3_column_int64(st, 6);
    m->updated = sqlite3_column_int64(st, 7);
    m->reason = sqlite3_column_int(st, 8);
    m->boots = sqlite3_column_int(st, 9);
    m->reported = sqlite3_column_int64(st, 10);
    fota_store_sqlite_col_text(st, 11, m->pre_version, sizeof m->pre_version);
}

int fota_store_sqlite_rollout_members(struct fota_store *s, int64_t rollout_id, int64_t after_device,
                                      int state, size_t limit,
                                      struct fota_rollout_member_row **out, size_t *n)
{
    struct sql_store *q = Q(s);

    fota_store_sqlite_lock(q);
    sqlite3_stmt *st = fota_store_sqlite_rollout_prepare(
        q, "SELECT rollout_id, device_id, stage, state, command_id, nonce, pushed, updated,"
           " reason, boots, reported, pre_version FROM rollout_members WHERE rollout_id = ?"
           " AND device_id > ? AND (? = 0 OR state = ?) ORDER BY device_id LIMIT ?");
    if (st) {
        sqlite3_bind_int64(st, 1, rollout_id);
        sqlite3_bind_int64(st, 2, after_device);
        sqlite3_bind_int(st, 3, state);
        sqlite3_bind_int(st, 4, state);
        sqlite3_bind_int64(st, 5, limit ? (int64_t)limit : -1);
    }
    int rc = fota_store_sqlite_collect(q, st, read_member, sizeof **out, (void **)out, n,
                                       "rollout_members");
    sqlite3_finalize(st);
    return fota_store_sqlite_unlock(q, rc);
}
