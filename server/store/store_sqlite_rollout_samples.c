/* store_sqlite_rollout_samples.c - a rollout's progress over time in the
 * SQLite store: its counters at moments the engine picks (about one a
 * minute while something changes), at most FOTA_ROLLOUT_SAMPLES_MAX per
 * rollout. A rollout over the bound loses every second sample, oldest
 * first, so its recent stretch keeps the engine's resolution and older
 * stretches grow coarser: the table never grows with a rollout's age. */
#include <string.h>
#include "store_sqlite_rollout.h"

#define Q(s) fota_store_sqlite_cast(s)

/* Halves the samples of rollout id while it holds more than the bound:
 * deletes those at odd positions (0 = the oldest), the newest kept. */
static int thin(struct sql_store *q, int64_t id)
{
    sqlite3_stmt *cnt = fota_store_sqlite_rollout_prepare(
        q, "SELECT COUNT(*) FROM rollout_samples WHERE rollout_id = ?");
    sqlite3_stmt *del = fota_store_sqlite_rollout_prepare(
        q, "DELETE FROM rollout_samples WHERE rollout_id = ? AND t IN (SELECT t FROM (SELECT t,"
           " ROW_NUMBER() OVER (ORDER BY t) - 1 AS pos, COUNT(*) OVER () AS n FROM"
           " rollout_samples WHERE rollout_id = ?) WHERE pos % 2 = 1 AND pos < n - 1)");
    int64_t n = 0;
    int rc = cnt && del ? 0 : FOTA_EIO;
    for (int round = 0; rc == 0 && round < 32; round++) {
        sqlite3_bind_int64(cnt, 1, id);
        rc = fota_store_sqlite_exec(q, cnt, "rollout samples count", &n);
        if (rc < 0 || n <= FOTA_ROLLOUT_SAMPLES_MAX)
            break;
        sqlite3_bind_int64(del, 1, id);
        sqlite3_bind_int64(del, 2, id);
        rc = fota_store_sqlite_exec(q, del, "rollout samples thin", NULL);
    }
    sqlite3_finalize(cnt);
    sqlite3_finalize(del);
    return rc;
}

int fota_store_sqlite_rollout_sample_add(struct fota_store *s,
                                         const struct fota_rollout_sample *rows, size_t n)
{
    struct sql_store *q = Q(s);
    int rc;

    if (n == 0)
        return 0;
    fota_store_sqlite_lock(q);
    q->hot = 1;
    sqlite3_stmt *st = fota_store_sqlite_rollout_prepare(
        q, "INSERT INTO rollout_samples (rollout_id, t, " FOTA_SQL_SAMPLE_COUNTS ") VALUES (?, ?, ?, ?,"
           " ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" FOTA_SQL_SAMPLE_UPSERT);
    rc = st ? fota_store_sqlite_begin(q, 0) : FOTA_EIO;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        sqlite3_bind_int64(st, 1, rows[i].rollout_id);
        sqlite3_bind_int64(st, 2, rows[i].t);
        fota_store_sqlite_rollout_bind_counts(st, 3, &rows[i].n);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = fota_store_sqlite_err(q, sqlite3_errcode(q->db), "rollout_sample_add");
    }
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (i == 0 || rows[i].rollout_id != rows[i - 1].rollout_id)
            rc = thin(q, rows[i].rollout_id);
    if (st)
        rc = fota_store_sqlite_finish(q, rc);
    sqlite3_finalize(st);
    return fota_store_sqlite_unlock(q, rc);
}

static void read_sample(sqlite3_stmt *st, void *row)
{
    struct fota_rollout_sample *x = row;
    memset(x, 0, sizeof *x);
    x->rollout_id = sqlite3_column_int64(st, 0);
    x->t = sqlite3_column_int64(st, 1);
    fota_store_sqlite_rollout_col_counts(st, 2, &x->n);
}

int fota_store_sqlite_rollout_samples(struct fota_store *s, int64_t rollout_id,
                                      struct fota_rollout_sample **out, size_t *n)
{
    struct sql_store *q = Q(s);

    fota_store_sqlite_lock(q);
    sqlite3_stmt *st = fota_store_sqlite_rollout_prepare(
        q, "SELECT rollout_id, t, " FOTA_SQL_SAMPLE_COUNTS " FROM rollout_samples WHERE rollout_id = ?"
           " ORDER BY t");
    if (st)
        sqlite3_bind_int64(st, 1, rollout_id);
    int rc = fota_store_sqlite_collect(q, st, read_sample, sizeof **out, (void **)out, n,
                                       "rollout_samples");
    sqlite3_finalize(st);
    return fota_store_sqlite_unlock(q, rc);
}
