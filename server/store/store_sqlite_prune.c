/* store_sqlite_prune.c - retention of the two log tables (messages,
 * transfers) in the SQLite store, a round of bounded calls: each call is one
 * transaction that deletes at most max_batch rows and reads a bounded part
 * of the table, so the store's lock is held for milliseconds however far
 * behind the retention is or however large the table.
 *
 * The oldest rows are the lowest ids (ids follow arrival). Age and the total
 * count both cut a prefix of the table in id order: the age walk starts at
 * the oldest row and stops at the first one young enough (no index on
 * created: it reads only rows it then deletes, plus one); the count is taken
 * once a round (SQLite counts an index's entries without reading the rows).
 * The per-device cap walks the (device_id, id) index in slices of SCAN
 * entries, from where the previous call stopped (struct fota_prune_pos),
 * counting each device's rows. Every statement is plain SQL that PostgreSQL
 * runs as it is (row values included). */
#include <stdlib.h>
#include "store_sqlite_int.h"
#include "xmalloc.h"

#define Q(s) fota_store_sqlite_cast(s)
#define STMT(id, sql) fota_store_sqlite_stmt(q, (id), (sql))

/* Index entries the per-device pass reads per call. */
#define SCAN 20000

enum { PH_START, PH_PREFIX, PH_DEVICES, PH_DONE };

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

/* How many of the oldest rows (at most budget) were created before
 * older_than, counted from the oldest up to the first younger row. */
static int age_walk(struct sql_store *q, const struct prune_table *t, int64_t older_than,
                    int64_t budget, int64_t *n)
{
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
static int cut_oldest(struct sql_store *q, const struct prune_table *t, int64_t m, int64_t *last)
{
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

/* Age and total count: the oldest rows outside either, at most budget.
 * The prefix is done when fewer than budget had to go. */
static int prune_prefix(struct sql_store *q, const struct prune_table *t,
                        struct fota_retention *r, int64_t budget, int64_t *deleted, int64_t *last)
{
    struct fota_prune_pos *pos = &r->pos;
    int64_t m = 0;
    int rc = 0;

    if (r->older_than > 0)
        rc = age_walk(q, t, r->older_than, budget, &m);
    if (rc == 0 && pos->excess > m)
        m = pos->excess < budget ? pos->excess : budget;
    if (rc == 0 && m > 0)
        rc = cut_oldest(q, t, m, last);
    if (rc)
        return rc;
    *deleted += m;
    pos->excess = pos->excess > m ? pos->excess - m : 0;
    if (m < budget)
        pos->phase = PH_DEVICES;
    return 0;
}

/* One device's count from the index slice. */
struct dev_count {
    int64_t device_id, count;
};

/* Reads up to SCAN entries of the (device_id, id) index after pos into
 * runs of one device each. The last run may be cut by the slice's end: it
 * goes back into pos (device, last id read, count so far) instead of the
 * array. *end: the index ended within the slice. */
static int scan_slice(struct sql_store *q, struct fota_prune_pos *pos, struct dev_count **out,
                      size_t *n, int *end)
{
    struct dev_count *runs = NULL;
    struct dev_count cur = { pos->device_id, pos->count };
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
    sqlite3_bind_int64(st, 3, SCAN);
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
            cur = (struct dev_count){ dev, 0 };
        }
        cur.count++;
    }
    rc = rc == SQLITE_DONE ? 0 : fota_store_sqlite_err(q, rc, "prune");
    fota_store_sqlite_done(st);
    if (rc) {
        free(runs);
        return rc;
    }
    *end = rows < SCAN;
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
static int cut_device(struct sql_store *q, int64_t dev, int64_t n, int64_t *last)
{
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

/* The per-device cap of messages, one slice of the index: every device
 * counted whole in it that is over keep loses its oldest rows, within the
 * budget. A device cut short by the budget keeps the rows it still has to
 * lose in pos->excess, and the next call starts with them. */
static int prune_devices(struct sql_store *q, struct fota_retention *r, int64_t budget,
                         int64_t *deleted, int64_t *last)
{
    struct fota_prune_pos *pos = &r->pos;
    struct dev_count *runs = NULL;
    int64_t keep = r->keep_per_device, n, cut = 0;
    size_t nruns = 0;
    int end = 0, rc;

    if (pos->excess > 0) {   /* the rest of a device cut short */
        n = pos->excess < budget - *deleted ? pos->excess : budget - *deleted;
        rc = cut_device(q, pos->device_id, n, &cut);
        if (rc)
            return rc;
        *deleted += n;
        if (cut > *last)
            *last = cut;
        pos->excess -= n;
        if (pos->excess > 0 || *deleted == budget)
            return 0;
    }
    rc = scan_slice(q, pos, &runs, &nruns, &end);
    for (size_t i = 0; rc == 0 && i < nruns; i++) {
        int cut_short;

        if (runs[i].count <= keep)
            continue;
        n = runs[i].count - keep;
        cut_short = n > budget - *deleted;
        if (cut_short) {   /* the rest of this device at the next call, then the scan after it */
            *pos = (struct fota_prune_pos){ .phase = PH_DEVICES, .excess = n - (budget - *deleted),
                                            .device_id = runs[i].device_id, .id = INT64_MAX };
            n = budget - *deleted;
            end = 0;
        }
        if (n > 0)
            rc = cut_device(q, runs[i].device_id, n, &cut);
        if (rc)
            break;
        *deleted += n;
        if (cut > *last)
            *last = cut;
        if (cut_short)
            break;
    }
    free(runs);
    if (rc == 0 && end)
        pos->phase = PH_DONE;
    return rc;
}

/* A round's first call: the count over keep_rows, and where the per-device
 * pass starts. */
static int round_start(struct sql_store *q, const struct prune_table *t, struct fota_retention *r)
{
    int64_t total = 0;
    int rc = 0;

    r->pos = (struct fota_prune_pos){ .phase = PH_PREFIX, .id = INT64_MAX };
    if (r->keep_rows > 0) {
        rc = fota_store_sqlite_exec(q, STMT(t->sq_count, t->count), "prune", &total);
        if (total > r->keep_rows)
            r->pos.excess = total - r->keep_rows;
    }
    return rc;
}

static int prune(struct fota_store *s, const struct prune_table *t, struct fota_retention *r,
                 int per_device, size_t *deleted, int *more)
{
    struct sql_store *q = Q(s);
    struct fota_prune_pos before = r->pos;
    int64_t budget = (int64_t)(r->max_batch ? r->max_batch : FOTA_PRUNE_BATCH), n = 0, last = 0;
    int rc;

    *deleted = 0;
    *more = 0;
    if (r->older_than < 0 || r->keep_rows < 0 || r->keep_per_device < 0 || budget < 0)
        return FOTA_EINVAL;
    if (r->pos.phase == PH_DONE)
        return 0;
    fota_store_sqlite_lock(q);
    q->hot = 1;   /* a log table: no cache holds it (store.h) */
    rc = fota_store_sqlite_begin(q, 0);
    if (rc)
        goto out;
    if (r->pos.phase == PH_START)
        rc = round_start(q, t, r);
    if (rc == 0 && r->pos.phase == PH_PREFIX)
        rc = prune_prefix(q, t, r, budget, &n, &last);
    if (rc == 0 && r->pos.phase == PH_DEVICES && !(per_device && r->keep_per_device > 0))
        r->pos.phase = PH_DONE;
    if (rc == 0 && r->pos.phase == PH_DEVICES && n < budget)
        rc = prune_devices(q, r, budget, &n, &last);
    /* the largest id deleted: a follower's after_id would skip a new row
     * that reused it */
    if (rc == 0 && last > 0)
        rc = fota_store_sqlite_floor_raise(q, t->name, last);
    rc = fota_store_sqlite_finish(q, rc);
    if (rc == 0) {
        *deleted = (size_t)n;
        *more = r->pos.phase != PH_DONE;
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
