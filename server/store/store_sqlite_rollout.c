/* store_sqlite_rollout.c - rollouts in the SQLite store (migrations 6 and
 * 8): the rollout rows (settings, state, pause, counters) and their stages
 * (settings, counters, times), written together. A flush of the rollout
 * engine is one transaction however many members changed (rollout_save,
 * the members' part in store_sqlite_rollout_members.c); statements are
 * prepared per call, since each op runs a batch or a rare read. */
#include <stdlib.h>
#include <string.h>
#include "clock.h"
#include "store_sqlite_int.h"
#include "store_sqlite_rollout.h"

#define Q(s) fota_store_sqlite_cast(s)

sqlite3_stmt *fota_store_sqlite_rollout_prepare(struct sql_store *q, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK) {
        fota_store_sqlite_err(q, sqlite3_errcode(q->db), "rollout prepare");
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

#define prepare fota_store_sqlite_rollout_prepare

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

void fota_store_sqlite_rollout_bind_counts(sqlite3_stmt *st, int idx,
                                           const struct fota_rollout_counts *n)
{
    const int64_t v[] = { n->total, n->skipped, n->waiting, n->queued, n->active, n->delivered,
                          n->acked, n->succeeded, n->failed, n->timed_out, n->deleted,
                          n->cancelled, n->verifying };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        sqlite3_bind_int64(st, idx + (int)i, v[i]);
}

void fota_store_sqlite_rollout_col_counts(sqlite3_stmt *st, int col, struct fota_rollout_counts *n)
{
    int64_t *v[] = { &n->total, &n->skipped, &n->waiting, &n->queued, &n->active,
                     &n->delivered, &n->acked, &n->succeeded, &n->failed, &n->timed_out,
                     &n->deleted, &n->cancelled, &n->verifying };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        *v[i] = sqlite3_column_int64(st, col + (int)i);
}

static void read_rollout(sqlite3_stmt *st, void *row)
{
    struct fota_rollout_row *r = row;
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
    fota_store_sqlite_rollout_col_counts(st, 10, &r->n);
    r->ms_delivered = col_mark(st, 23);
    r->ms_acked = col_mark(st, 24);
    r->ms_finished = col_mark(st, 25);
    r->created = sqlite3_column_int64(st, 26);
    r->updated = sqlite3_column_int64(st, 27);
    r->health_s = sqlite3_column_int64(st, 28);
    r->max_reboots = sqlite3_column_int64(st, 29);
    r->hours_from = sqlite3_column_int(st, 30);
    r->hours_to = sqlite3_column_int(st, 31);
    r->seed = sqlite3_column_int64(st, 32);
    r->rollback_of = sqlite3_column_int64(st, 33);
    r->paused_at = sqlite3_column_int64(st, 34);
    fota_store_sqlite_col_text(st, 35, r->pause_reason, sizeof r->pause_reason);
    r->stage = sqlite3_column_int(st, 36);
}

/* A stage row (FOTA_SQL_STAGE_COLS) into its rollout's row: *row is the rollout. */
static void read_stage(sqlite3_stmt *st, struct fota_rollout_row *r)
{
    int idx = sqlite3_column_int(st, 1);
    if (idx < 0 || idx >= FOTA_ROLLOUT_STAGES_MAX)
        return;
    struct fota_rollout_stage *g = &r->stages[idx];
    g->kind = sqlite3_column_int(st, 2);
    g->value = sqlite3_column_int64(st, 3);
    g->success = sqlite3_column_int(st, 4);
    g->max_failures = sqlite3_column_int64(st, 5);
    g->approval = sqlite3_column_int(st, 6);
    g->fail_base = sqlite3_column_int64(st, 7);
    g->total = sqlite3_column_int64(st, 8);
    g->succeeded = sqlite3_column_int64(st, 9);
    g->failed = sqlite3_column_int64(st, 10);
    g->timed_out = sqlite3_column_int64(st, 11);
    g->deleted = sqlite3_column_int64(st, 12);
    g->cancelled = sqlite3_column_int64(st, 13);
    g->started = sqlite3_column_int64(st, 14);
    g->approved = sqlite3_column_int64(st, 15);
    if (idx + 1 > r->nstages)
        r->nstages = idx + 1;
}

static int cmp_row_id(const void *a, const void *b)
{
    int64_t x = ((const struct fota_rollout_row *)a)->id;
    int64_t y = ((const struct fota_rollout_row *)b)->id;
    return x < y ? 1 : x > y ? -1 : 0;   /* rows are newest (highest id) first */
}

/* Reads the stages of the n rows (newest first, as rollout_list returns
 * them) with one statement over their id range, each put in its row.
 * Under the caller's lock. */
static int read_stages(struct sql_store *q, struct fota_rollout_row *rows, size_t n)
{
    if (n == 0)
        return 0;
    sqlite3_stmt *st = prepare(q, FOTA_SQL_STAGE_COLS " WHERE rollout_id >= ? AND rollout_id <= ?");
    if (!st)
        return FOTA_EIO;
    sqlite3_bind_int64(st, 1, rows[n - 1].id);
    sqlite3_bind_int64(st, 2, rows[0].id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct fota_rollout_row key = { .id = sqlite3_column_int64(st, 0) };
        struct fota_rollout_row *r = bsearch(&key, rows, n, sizeof *rows, cmp_row_id);
        if (r)
            read_stage(st, r);
    }
    rc = rc == SQLITE_DONE ? 0 : fota_store_sqlite_err(q, rc, "rollout stages");
    sqlite3_finalize(st);
    return rc;
}

/* Inserts (insert != 0) or updates r's stage rows; under the caller's
 * transaction. */
static int write_stages(struct sql_store *q, sqlite3_stmt *st, const struct fota_rollout_row *r,
                        int insert)
{
    for (int i = 0; i < r->nstages && i < FOTA_ROLLOUT_STAGES_MAX; i++) {
        const struct fota_rollout_stage *g = &r->stages[i];
        const int64_t v[] = { g->fail_base, g->total, g->succeeded, g->failed, g->timed_out,
                              g->deleted, g->cancelled, g->started, g->approved };
        int k = 1;
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        for (size_t j = 0; j < sizeof v / sizeof v[0]; j++)
            sqlite3_bind_int64(st, k++, v[j]);
        if (insert) {
            sqlite3_bind_int(st, k++, g->kind);
            sqlite3_bind_int64(st, k++, g->value);
            sqlite3_bind_int(st, k++, g->success);
            sqlite3_bind_int64(st, k++, g->max_failures);
            sqlite3_bind_int(st, k++, g->approval);
        }
        sqlite3_bind_int64(st, k++, r->id);
        sqlite3_bind_int(st, k, i);
        if (sqlite3_step(st) != SQLITE_DONE)
            return fota_store_sqlite_err(q, sqlite3_errcode(q->db), "rollout stages write");
    }
    return 0;
}

int fota_store_sqlite_rollout_create(struct fota_store *s, struct fota_rollout_row *r)
{
    struct sql_store *q = Q(s);
    int64_t now = fota_clock_wall_s();
    sqlite3_stmt *st, *sg;
    int rc;

    if (!r->version[0] || r->product_id <= 0 || r->nstages < 0 ||
        r->nstages > FOTA_ROLLOUT_STAGES_MAX)
        return FOTA_EINVAL;
    fota_store_sqlite_lock(q);
    q->hot = 1;                /* not a cached table (store.h) */
    st = prepare(q, "INSERT INTO rollouts (product_id, version, filter, reboot, window_size,"
                    " timeout_s, max_failures, state, halted, n_total, n_skipped, n_waiting,"
                    " n_queued, n_active, n_delivered, n_acked, n_succeeded, n_failed,"
                    " n_timed_out, n_deleted, n_cancelled, n_verifying, ms_delivered, ms_acked,"
                    " ms_finished, created, updated, health_s, max_reboots, hours_from, hours_to,"
                    " seed, rollback_of, paused_at, pause_reason, stage) VALUES (?, ?, ?, ?, ?,"
                    " ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                    " ?, ?, ?, ?, ?, ?) RETURNING id");
    sg = prepare(q, "INSERT INTO rollout_stages (fail_base, n_total, n_succeeded, n_failed,"
                    " n_timed_out, n_deleted, n_cancelled, started, approved, kind, value,"
                    " success, max_failures, approval, rollout_id, idx) VALUES (?, ?, ?, ?, ?,"
                    " ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    if (!st || !sg) {
        sqlite3_finalize(st);
        sqlite3_finalize(sg);
        return fota_store_sqlite_unlock(q, FOTA_EIO);
    }
    sqlite3_bind_int64(st, 1, r->product_id);
    SQL_BIND_STR(st, 2, r->version);
    sqlite3_bind_text(st, 3, r->filter[0] ? r->filter : "{}", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 4, r->reboot);
    sqlite3_bind_int64(st, 5, r->window);
    sqlite3_bind_int64(st, 6, r->timeout_s);
    sqlite3_bind_int64(st, 7, r->max_failures);
    sqlite3_bind_int(st, 8, r->state ? r->state : FOTA_ROLLOUT_RUNNING);
    sqlite3_bind_int(st, 9, r->halted);
    fota_store_sqlite_rollout_bind_counts(st, 10, &r->n);
    bind_mark(st, 23, r->ms_delivered);
    bind_mark(st, 24, r->ms_acked);
    bind_mark(st, 25, r->ms_finished);
    sqlite3_bind_int64(st, 26, r->created ? r->created : now);
    sqlite3_bind_int64(st, 27, now);
    sqlite3_bind_int64(st, 28, r->health_s);
    sqlite3_bind_int64(st, 29, r->max_reboots);
    sqlite3_bind_int(st, 30, r->hours_from);
    sqlite3_bind_int(st, 31, r->hours_to);
    sqlite3_bind_int64(st, 32, r->seed);
    sqlite3_bind_int64(st, 33, r->rollback_of);
    sqlite3_bind_int64(st, 34, r->paused_at);
    SQL_BIND_STR(st, 35, r->pause_reason);
    sqlite3_bind_int(st, 36, r->stage);
    rc = fota_store_sqlite_begin(q, 0);
    if (rc == 0)
        rc = fota_store_sqlite_exec(q, st, "rollout_create", &r->id);
    if (rc == 0)
        rc = write_stages(q, sg, r, 1);
    if (rc == 0)
        rc = fota_store_sqlite_commit(q);
    else
        fota_store_sqlite_rollback(q);
    sqlite3_finalize(st);
    sqlite3_finalize(sg);
    if (rc == 0) {
        r->created = r->created ? r->created : now;
        r->updated = now;
    }
    return fota_store_sqlite_unlock(q, rc);
}

static int save_rollouts(struct sql_store *q, sqlite3_stmt *st, sqlite3_stmt *sg,
                         const struct fota_rollout_row *rs, size_t nr, int64_t now)
{
    for (size_t i = 0; i < nr; i++) {
        const struct fota_rollout_row *r = &rs[i];
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        sqlite3_bind_int(st, 1, r->state);
        sqlite3_bind_int(st, 2, r->halted);
        fota_store_sqlite_rollout_bind_counts(st, 3, &r->n);
        bind_mark(st, 16, r->ms_delivered);
        bind_mark(st, 17, r->ms_acked);
        bind_mark(st, 18, r->ms_finished);
        sqlite3_bind_int64(st, 19, now);
        sqlite3_bind_int64(st, 20, r->paused_at);
        SQL_BIND_STR(st, 21, r->pause_reason);
        sqlite3_bind_int(st, 22, r->stage);
        sqlite3_bind_int64(st, 23, r->id);
        if (sqlite3_step(st) != SQLITE_DONE)
            return fota_store_sqlite_err(q, sqlite3_errcode(q->db), "rollout_save");
        int rc = write_stages(q, sg, r, 0);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int fota_store_sqlite_rollout_save(struct fota_store *s, const struct fota_rollout_row *rs,
                                   size_t nr, const struct fota_rollout_member_row *ms, size_t nm)
{
    struct sql_store *q = Q(s);
    int64_t now = fota_clock_wall_s();
    sqlite3_stmt *ur = NULL, *ug = NULL, *um = NULL;
    int rc;

    if (nr == 0 && nm == 0)
        return 0;
    fota_store_sqlite_lock(q);
    q->hot = 1;
    ur = prepare(q, "UPDATE rollouts SET state = ?, halted = ?, n_total = ?, n_skipped = ?,"
                    " n_waiting = ?, n_queued = ?, n_active = ?, n_delivered = ?, n_acked = ?,"
                    " n_succeeded = ?, n_failed = ?, n_timed_out = ?, n_deleted = ?,"
                    " n_cancelled = ?, n_verifying = ?, ms_delivered = ?, ms_acked = ?,"
                    " ms_finished = ?, updated = ?, paused_at = ?, pause_reason = ?, stage = ?"
                    " WHERE id = ?");
    ug = prepare(q, "UPDATE rollout_stages SET fail_base = ?, n_total = ?, n_succeeded = ?,"
                    " n_failed = ?, n_timed_out = ?, n_deleted = ?, n_cancelled = ?,"
                    " started = ?, approved = ? WHERE rollout_id = ? AND idx = ?");
    um = fota_store_sqlite_rollout_member_stmt(q);
    rc = ur && ug && um ? fota_store_sqlite_begin(q, 0) : FOTA_EIO;
    if (rc == 0)
        rc = fota_store_sqlite_rollout_save_members(q, um, ms, nm, now);
    if (rc == 0)
        rc = save_rollouts(q, ur, ug, rs, nr, now);
    if (rc == 0)
        rc = fota_store_sqlite_commit(q);
    else if (ur && ug && um)
        fota_store_sqlite_rollback(q);
    sqlite3_finalize(ur);
    sqlite3_finalize(ug);
    sqlite3_finalize(um);
    return fota_store_sqlite_unlock(q, rc);
}

int fota_store_sqlite_rollout_get(struct fota_store *s, int64_t id, struct fota_rollout_row *out)
{
    struct sql_store *q = Q(s);

    fota_store_sqlite_lock(q);
    sqlite3_stmt *st = prepare(q, FOTA_SQL_ROLLOUT_COLS " WHERE id = ?");
    if (st)
        sqlite3_bind_int64(st, 1, id);
    int rc = fota_store_sqlite_one(q, st, read_rollout, out, "rollout_get");
    sqlite3_finalize(st);
    if (rc == 0)
        rc = read_stages(q, out, 1);
    return fota_store_sqlite_unlock(q, rc);
}

int fota_store_sqlite_rollout_list(struct fota_store *s, int64_t product_id, int state,
                                   struct fota_rollout_row **out, size_t *n)
{
    struct sql_store *q = Q(s);

    fota_store_sqlite_lock(q);
    sqlite3_stmt *st = prepare(q, FOTA_SQL_ROLLOUT_COLS " WHERE (? = 0 OR product_id = ?)"
                                  " AND (? = 0 OR state = ?) ORDER BY id DESC");
    if (st) {
        sqlite3_bind_int64(st, 1, product_id);
        sqlite3_bind_int64(st, 2, product_id);
        sqlite3_bind_int(st, 3, state);
        sqlite3_bind_int(st, 4, state);
    }
    int rc = fota_store_sqlite_collect(q, st, read_rollout, sizeof **out, (void **)out, n,
                                       "rollout_list");
    sqlite3_finalize(st);
    if (rc == 0 && (rc = read_stages(q, *out, *n)) < 0) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return fota_store_sqlite_unlock(q, rc);
}
