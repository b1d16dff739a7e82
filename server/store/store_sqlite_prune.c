/* store_sqlite_prune.c - retention of the two log tables (messages,
 * transfers) in the SQLite store: the statements of store_prune.c's walk
 * (struct fota_prune_ops), each call one transaction that deletes at most
 * max_batch rows and reads a bounded part of the table, so the store's lock
 * is held for milliseconds however far behind the retention is or however
 * large the table.
 *
 * The age walk starts at the oldest row and stops at the first one young
 * enough (no index on created: it reads only rows it then deletes, plus
 * one); SQLite counts an index's entries without reading the rows. The
 * per-device slice reads the (device_id, id) index entry by entry. Every
 * statement is plain SQL that PostgreSQL runs as it is (row values
 * included). */
#include <stdlib.h>
#include "store_sqlite_int.h"
#include "xmalloc.h"

#define Q(s) fota_store_sqlite_cast(s)
#define STMT(id, sql) fota_store_sqlite_stmt(q, (id), (sql))

/* The SQL of one table. */
struct prune_table {
    const char *name;             /* id_floor's tbl */
    int sq_walk, sq_count, sq_nth, sq_cut;
    const char *walk;             /* created of the oldest rows, LIMIT ? */
    const char *count;
    const char *nth;              /* the id of the (?+1)-th oldest row */
    const char *cut;              /* DELETE id <= ? */
};

static const struct prune_table msg_table = {
    "messages", SQ_PRUNE_MSG_WALK, SQ_PRUNE_MSG_COUNT, SQ_PRUNE_MSG_NTH, SQ_PRUNE_MSG_CUT,
    "SELECT created FROM messages ORDER BY id LIMIT ?",
    "SELECT COUNT(*) FROM messages",
    "SELECT id FROM messages ORDER BY id LIMIT 1 OFFSET ?",
    "DELETE FROM messages WHERE id <= ?",
};

static const struct prune_table xfer_table = {
    "transfers", SQ_PRUNE_XFER_WALK, SQ_PRUNE_XFER_COUNT, SQ_PRUNE_XFER_NTH, SQ_PRUNE_XFER_CUT,
    "SELECT created FROM transfers ORDER BY id LIMIT ?",
    "SELECT COUNT(*) FROM transfers",
    "SELECT id FROM transfers ORDER BY id LIMIT 1 OFFSET ?",
    "DELETE FROM transfers WHERE id <= ?",
};

/* What the statements of one call run on (struct fota_prune_ops's ctx). */
struct prune_ctx {
    struct sql_store *q;
    const struct prune_table *t;
};

static int count_rows(void *ctx, int64_t *total)
{
    struct prune_ctx *x = ctx;
    struct sql_store *q = x->q;

    return fota_store_sqlite_exec(q, STMT(x->t->sq_count, x->t->count), "prune", total);
}

/* How many of the oldest rows (at most budget) were created before
 * older_than, counted from the oldest up to the first younger row. */
static int age_walk(void *ctx, int64_t older_than, int64_t budget, int64_t *n)
{
    struct prune_ctx *x = ctx;
    struct sql_store *q = x->q;
    const struct prune_table *t = x->t;
    sqlite3_stmt *st = STMT(t->sq_walk, t->walk);
    int rc;

    *n = 0;
    if (!st)
        return FOTA_EIO;
    sqlite3_bind_int64(st, 1, budget);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && sqlite3_column_int64(st, 0) < older_than)
        (*n)++;
    rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : fota_store_sqlite_err(q, rc, "prune");
    fota_store_sqlite_done(st);
    return rc;
}

/* Deletes the m oldest rows of the table (m > 0); *last gets the largest id
 * deleted. */
static int cut_oldest(void *ctx, int64_t m, int64_t *last)
{
    struct prune_ctx *x = ctx;
    struct sql_store *q = x->q;
    const struct prune_table *t = x->t;
    sqlite3_stmt *st = STMT(t->sq_nth, t->nth);
    int rc;

    if (st)
        sqlite3_bind_int64(st, 1, m - 1);
    rc = fota_store_sqlite_exec(q, st, "prune", last);
    if (rc)
        return rc;
    st = STMT(t->sq_cut, t->cut);
    if (st)
        sqlite3_bind_int64(st, 1, *last);
    return fota_store_sqlite_exec(q, st, "prune", NULL);
}

/* struct fota_prune_ops scan_slice: the index entries read one by one. */
static int scan_slice(void *ctx, struct fota_prune_pos *pos, struct fota_prune_run **out,
                      size_t *n, int *end)
{
    struct sql_store *q = ((struct prune_ctx *)ctx)->q;
    struct fota_prune_run *runs = NULL;
    struct fota_prune_run cur = { pos->device_id, pos->count };
    int64_t rows = 0, dev, id = pos->id;
    size_t k = 0, cap = 0;
    sqlite3_stmt *st;
    int rc;

    /* (0, INT64_MAX) to start: the product-wide rows (device 0) are not a
     * device's. A row value bound seeks the index; PostgreSQL does the same. */
    st = STMT(SQ_PRUNE_MSG_SCAN,
              "SELECT device_id, id FROM messages WHERE (device_id, id) > (?, ?)"
              " ORDER BY device_id, id LIMIT ?");
    if (!st)
        return FOTA_EIO;
    sqlite3_bind_int64(st, 1, pos->device_id);
    sqlite3_bind_int64(st, 2, pos->id);
    sqlite3_bind_int64(st, 3, FOTA_PRUNE_SCAN);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        rows++;
        dev = sqlite3_column_int64(st, 0);
        id = sqlite3_column_int64(st, 1);
        if (dev != cur.device_id) {
            if (cur.count > 0) {
                if (k == cap) {
                    cap = cap ? cap * 2 : 64;
                    runs = fota_xreallocarray(runs, cap, sizeof *runs);
                }
                runs[k++] = cur;
            }
            cur = (struct fota_prune_run){ dev, 0 };
        }
        cur.count++;
    }
    rc = rc == SQLITE_DONE ? 0 : fota_store_sqlite_err(q, rc, "prune");
    fota_store_sqlite_done(st);
    if (rc) {
        free(runs);
        return rc;
    }
    *end = rows < FOTA_PRUNE_SCAN;
    if (*end && cur.count > 0) {   /* the last device is whole */
        if (k == cap)
            runs = fota_xreallocarray(runs, cap + 1, sizeof *runs);
        runs[k++] = cur;
        cur.count = 0;
    }
    pos->device_id = cur.device_id;
    pos->id = id;
    pos->count = cur.count;
    *out = runs;
    *n = k;
    return 0;
}

/* Deletes device dev's n oldest rows; *last as for cut_oldest. */
static int cut_device(void *ctx, int64_t dev, int64_t n, int64_t *last)
{
    struct sql_store *q = ((struct prune_ctx *)ctx)->q;
    sqlite3_stmt *st = STMT(SQ_PRUNE_MSG_DEV_LAST,
                            "SELECT id FROM messages WHERE device_id = ? ORDER BY id LIMIT 1 OFFSET ?");
    int rc;

    if (st) {
        sqlite3_bind_int64(st, 1, dev);
        sqlite3_bind_int64(st, 2, n - 1);
    }
    rc = fota_store_sqlite_exec(q, st, "prune", last);
    if (rc)
        return rc;
    st = STMT(SQ_PRUNE_MSG_DEV_CUT, "DELETE FROM messages WHERE device_id = ? AND id <= ?");
    if (st) {
        sqlite3_bind_int64(st, 1, dev);
        sqlite3_bind_int64(st, 2, *last);
    }
    return fota_store_sqlite_exec(q, st, "prune", NULL);
}

static const struct fota_prune_ops prune_ops = {
    .count = count_rows, .age_walk = age_walk, .cut_oldest = cut_oldest,
    .scan_slice = scan_slice, .cut_device = cut_device,
};

static int prune(struct fota_store *s, const struct prune_table *t, struct fota_retention *r,
                 int per_device, size_t *deleted, int *more)
{
    struct sql_store *q = Q(s);
    struct prune_ctx ctx = { q, t };
    struct fota_prune_pos before = r->pos;
    int64_t budget, n = 0, last = 0;
    int rc;

    *deleted = 0;
    *more = 0;
    if ((rc = fota_store_prune_budget(r, &budget)) != 0)
        return rc;
    if (r->pos.phase == FOTA_PRUNE_DONE)
        return 0;
    fota_store_sqlite_lock(q);
    q->hot = 1;   /* a log table: no cache holds it (store.h) */
    rc = fota_store_sqlite_begin(q, 0);
    if (rc)
        goto out;
    rc = fota_store_prune_call(&prune_ops, &ctx, r, per_device, budget, &n, &last);
    /* the largest id deleted: a follower's after_id would skip a new row
     * that reused it */
    if (rc == 0 && last > 0)
        rc = fota_store_sqlite_floor_raise(q, t->name, last);
    rc = fota_store_sqlite_finish(q, rc);
    if (rc == 0) {
        *deleted = (size_t)n;
        *more = r->pos.phase != FOTA_PRUNE_DONE;
    } else {
        r->pos = before;
    }
out:
    return fota_store_sqlite_unlock(q, rc);
}

int fota_store_sqlite_message_prune(struct fota_store *s, struct fota_retention *r,
                                    size_t *deleted, int *more)
{
    return prune(s, &msg_table, r, 1, deleted, more);
}

int fota_store_sqlite_transfer_prune(struct fota_store *s, struct fota_retention *r,
                                     size_t *deleted, int *more)
{
    return prune(s, &xfer_table, r, 0, deleted, more);
}
