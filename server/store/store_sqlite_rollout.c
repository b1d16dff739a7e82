/* store_sqlite_rollout.c - rollouts in the SQLite store (migration 6): the
 * rollout rows (settings, state, counters) and their members (one row per
 * device). A flush of the rollout engine is one transaction however many
 * members changed (rollout_save); statements are prepared per call, since
 * each op runs a batch or a rare read. */
#include <string.h>
#include "clock.h"
#include "store_sqlite_int.h"

#define Q(s) fota_store_sqlite_cast(s)

#define ROLLOUT_COLS                                                                        \
    "SELECT id, product_id, version, filter, reboot, window_size, timeout_s, max_failures,"  \
    " state, halted, n_total, n_skipped, n_waiting, n_queued, n_active, n_delivered,"      \
    " n_acked, n_succeeded, n_failed, n_timed_out, n_deleted, n_cancelled, ms_delivered,"  \
    " ms_acked, ms_finished, created, updated FROM rollouts"

static sqlite3_stmt *prepare(struct sql_store *q, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK) {
        fota_store_sqlite_err(q, sqlite3_errcode(q->db), "rollout prepare");
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

static void bind_mark(sqlite3_stmt *st, int idx, double ms)
{
    if (ms < 0)
        sqlite3_bind_null(st, idx);
    else
        sqlite3_bind_double(st, idx, ms);
}

static double col_mark(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL ? -1 : sqlite3_column_double(st, col);
}

/* Binds the counters (12 values) from index idx on. */
static void bind_counts(sqlite3_stmt *st, int idx, const struct fota_rollout_counts *n)
{
    const int64_t v[] = { n->total, n->skipped, n->waiting, n->queued, n->active, n->delivered,
                          n->acked, n->succeeded, n->failed, n->timed_out, n->deleted,
                          n->cancelled };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        sqlite3_bind_int64(st, idx + (int)i, v[i]);
}

static void read_rollout(sqlite3_stmt *st, struct fota_rollout_row *r)
{
    memset(r, 0, sizeof *r);
    r->id = sqlite3_column_int64(st, 0);
    r->product_id = sqlite3_column_int64(st, 1);
    fota_store_sqlite_col_text(st, 2, r->version, sizeof r->version);
    fota_store_sqlite_col_text(st, 3, r->filter, sizeof r->filter);
    r->reboot = sqlite3_column_int(st, 4);
    r->window = sqlite3_column_int64(st, 5);
    r->timeout_s = sqlite3_column_int64(st, 6);
    r->max_failures = sqlite3_column_int64(st, 7);
    r->state = sqlite3_column_int(st, 8);
    r->halted = sqlite3_column_int(st, 9);
    int64_t *v[] = { &r->n.total, &r->n.skipped, &r->n.waiting, &r->n.queued, &r->n.active,
                     &r->n.delivered, &r->n.acked, &r->n.succeeded, &r->n.failed,
                     &r->n.timed_out, &r->n.deleted, &r->n.cancelled };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        *v[i] = sqlite3_column_int64(st, 10 + (int)i);
    r->ms_delivered = col_mark(st, 22);
    r->ms_acked = col_mark(st, 23);
    r->ms_finished = col_mark(st, 24);
    r->created = sqlite3_column_int64(st, 25);
    r->updated = sqlite3_column_int64(st, 26);
}

int fota_store_sqlite_rollout_create(struct fota_store *s, struct fota_rollout_row *r)
{
    struct sql_store *q = Q(s);
    int64_t now = fota_clock_wall_s();
    sqlite3_stmt *st;
    int rc;

    if (!r->version[0] || r->product_id <= 0)
        return FOTA_EINVAL;
    fota_store_sqlite_lock(q);
    q->hot = 1;                /* not a cached table (store.h) */
    st = prepare(q, "INSERT INTO rollouts (product_id, version, filter, reboot, window_size,"
                    " timeout_s, max_failures, state, halted, n_total, n_skipped, n_waiting,"
                    " n_queued, n_active, n_delivered, n_acked, n_succeeded, n_failed,"
                    " n_timed_out, n_deleted, n_cancelled, ms_delivered, ms_acked, ms_finished,"
                    " created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                    " ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id");
    if (!st)
        return fota_store_sqlite_unlock(q, FOTA_EIO);
    sqlite3_bind_int64(st, 1, r->product_id);
    SQL_BIND_STR(st, 2, r->version);
    sqlite3_bind_text(st, 3, r->filter[0] ? r->filter : "{}", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 4, r->reboot);
    sqlite3_bind_int64(st, 5, r->window);
    sqlite3_bind_int64(st, 6, r->timeout_s);
    sqlite3_bind_int64(st, 7, r->max_failures);
    sqlite3_bind_int(st, 8, r->state ? r->state : FOTA_ROLLOUT_RUNNING);
    sqlite3_bind_int(st, 9, r->halted);
    bind_counts(st, 10, &r->n);
    bind_mark(st, 22, r->ms_delivered);
    bind_mark(st, 23, r->ms_acked);
    bind_mark(st, 24, r->ms_finished);
    sqlite3_bind_int64(st, 25, r->created ? r->created : now);
    sqlite3_bind_int64(st, 26, now);
    rc = fota_store_sqlite_begin(q, 0);
    if (rc == 0)
        rc = fota_store_sqlite_exec(q, st, "rollout_create", &r->id);
    if (rc == 0)
        rc = fota_store_sqlite_commit(q);
    else
        fota_store_sqlite_rollback(q);
    sqlite3_finalize(st);
    if (rc == 0) {
        r->created = r->created ? r->created : now;
        r->updated = now;
    }
    return fota_store_sqlite_unlock(q, rc);
}

static int save_rollouts(struct sql_store *q, sqlite3_stmt *st, const struct fota_rollout_row *rs,
                         size_t nr, int64_t now)
{
    for (size_t i = 0; i < nr; i++) {
        const struct fota_rollout_row *r = &rs[i];
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        sqlite3_bind_int(st, 1, r->state);
        sqlite3_bind_int(st, 2, r->halted);
        bind_counts(st, 3, &r->n);
        bind_mark(st, 15, r->ms_delivered);
        bind_mark(st, 16, r->ms_acked);
        bind_mark(st, 17, r->ms_finished);
        sqlite3_bind_int64(st, 18, now);
        sqlite3_bind_int64(st, 19, r->id);
        if (sqlite3_step(st) != SQLITE_DONE)
            return fota_store_sqlite_err(q, sqlite3_errcode(q->db), "rollout_save");
    }
    return 0;
}

static int save_members(struct sql_store *q, sqlite3_stmt *st,
                        const struct fota_rollout_member_row *ms, size_t nm, int64_t now)
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
        if (sqlite3_step(st) != SQLITE_DONE)
            return fota_store_sqlite_err(q, sqlite3_errcode(q->db), "rollout_save members");
    }
    return 0;
}

int fota_store_sqlite_rollout_save(struct fota_store *s, const struct fota_rollout_row *rs,
                                   size_t nr, const struct fota_rollout_member_row *ms, size_t nm)
{
    struct sql_store *q = Q(s);
    int64_t now = fota_clock_wall_s();
    sqlite3_stmt *ur = NULL, *um = NULL;
    int rc;

    if (nr == 0 && nm == 0)
        return 0;
    fota_store_sqlite_lock(q);
    q->hot = 1;
    ur = prepare(q, "UPDATE rollouts SET state = ?, halted = ?, n_total = ?, n_skipped = ?,"
                    " n_waiting = ?, n_queued = ?, n_active = ?, n_delivered = ?, n_acked = ?,"
                    " n_succeeded = ?, n_failed = ?, n_timed_out = ?, n_deleted = ?,"
                    " n_cancelled = ?, ms_delivered = ?, ms_acked = ?, ms_finished = ?,"
                    " updated = ? WHERE id = ?");
    um = prepare(q, "INSERT INTO rollout_members (rollout_id, device_id, stage, state, command_id,"
                    " nonce, pushed, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (rollout_id, device_id) DO UPDATE SET stage = excluded.stage,"
                    " state = excluded.state, command_id = excluded.command_id,"
                    " nonce = excluded.nonce, pushed = excluded.pushed, updated = excluded.updated");
    rc = ur && um ? fota_store_sqlite_begin(q, 0) : FOTA_EIO;
    if (rc == 0)
        rc = save_members(q, um, ms, nm, now);
    if (rc == 0)
        rc = save_rollouts(q, ur, rs, nr, now);
    if (rc == 0)
        rc = fota_store_sqlite_commit(q);
    else if (ur && um)
        fota_store_sqlite_rollback(q);
    sqlite3_finalize(ur);
    sqlite3_finalize(um);
    return fota_store_sqlite_unlock(q, rc);
}

static void read_rollout_v(sqlite3_stmt *st, void *row)
{
    read_rollout(st, row);
}

static void read_member(sqlite3_stmt *st, void *row)
{
    struct fota_rollout_member_row *m = row;
    m->rollout_id = sqlite3_column_int64(st, 0);
    m->device_id = sqlite3_column_int64(st, 1);
    m->stage = sqlite3_column_int(st, 2);
    m->state = sqlite3_column_int(st, 3);
    m->command_id = sqlite3_column_int64(st, 4);
    m->nonce = sqlite3_column_int64(st, 5);
    m->pushed = sqlite3_column_int64(st, 6);
    m->updated = sqlite3_column_int64(st, 7);
}

int fota_store_sqlite_rollout_get(struct fota_store *s, int64_t id, struct fota_rollout_row *out)
{
    struct sql_store *q = Q(s);

    fota_store_sqlite_lock(q);
    sqlite3_stmt *st = prepare(q, ROLLOUT_COLS " WHERE id = ?");
    if (st)
        sqlite3_bind_int64(st, 1, id);
    int rc = fota_store_sqlite_one(q, st, read_rollout_v, out, "rollout_get");
    sqlite3_finalize(st);
    return fota_store_sqlite_unlock(q, rc);
}

int fota_store_sqlite_rollout_list(struct fota_store *s, int64_t product_id, int state,
                                   struct fota_rollout_row **out, size_t *n)
{
    struct sql_store *q = Q(s);

    fota_store_sqlite_lock(q);
    sqlite3_stmt *st = prepare(q, ROLLOUT_COLS " WHERE (? = 0 OR product_id = ?)"
                                  " AND (? = 0 OR state = ?) ORDER BY id DESC");
    if (st) {
        sqlite3_bind_int64(st, 1, product_id);
        sqlite3_bind_int64(st, 2, product_id);
        sqlite3_bind_int(st, 3, state);
        sqlite3_bind_int(st, 4, state);
    }
    int rc = fota_store_sqlite_collect(q, st, read_rollout_v, sizeof **out, (void **)out, n,
                                       "rollout_list");
    sqlite3_finalize(st);
    return fota_store_sqlite_unlock(q, rc);
}

int fota_store_sqlite_rollout_members(struct fota_store *s, int64_t rollout_id, int64_t after_device,
                                      size_t limit, struct fota_rollout_member_row **out, size_t *n)
{
    struct sql_store *q = Q(s);

    fota_store_sqlite_lock(q);
    sqlite3_stmt *st = prepare(q, "SELECT rollout_id, device_id, stage, state, command_id, nonce,"
                                  " pushed, updated FROM rollout_members WHERE rollout_id = ?"
                                  " AND device_id > ? ORDER BY device_id LIMIT ?");
    if (st) {
        sqlite3_bind_int64(st, 1, rollout_id);
        sqlite3_bind_int64(st, 2, after_device);
        sqlite3_bind_int64(st, 3, limit ? (int64_t)limit : -1);
    }
    int rc = fota_store_sqlite_collect(q, st, read_member, sizeof **out, (void **)out, n,
                                       "rollout_members");
    sqlite3_finalize(st);
    return fota_store_sqlite_unlock(q, rc);
}
