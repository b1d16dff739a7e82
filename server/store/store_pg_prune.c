/* store_pg_prune.c - retention of the two log tables (messages, transfers)
 * in the PostgreSQL store: store_sqlite_prune.c's round of bounded calls,
 * each one transaction (synchronous_commit off) that deletes at most
 * max_batch rows and reads a bounded part of the table.
 *
 * The same walk as SQLite's: age and the total count cut a prefix in id
 * order (the count taken once a round), and the per-device cap reads the
 * (device_id, id) index in slices of SCAN entries from where the previous
 * call stopped; here the slice is grouped per device in the database, so a
 * slice costs one row per device on the wire, not one per message.
 * Identities never hand out an id twice, so no id floor is kept. */
#include <stdlib.h>
#include "store_pg_int.h"
#include "xmalloc.h"

/* Index entries the per-device pass reads per call. */
#define SCAN 20000

enum { PH_START, PH_PREFIX, PH_DEVICES, PH_DONE };

/* The SQL of one table. */
struct prune_table {
    int pq_walk, pq_count, pq_nth, pq_cut;
    const char *walk;             /* created of the oldest rows, LIMIT $1 */
    const char *count;
    const char *nth;              /* the id of the ($1+1)-th oldest row */
    const char *cut;              /* DELETE id <= $1 */
};

static const struct prune_table msg_table = {
    PQ_PRUNE_MSG_WALK, PQ_PRUNE_MSG_COUNT, PQ_PRUNE_MSG_NTH, PQ_PRUNE_MSG_CUT,
    "SELECT created FROM messages ORDER BY id LIMIT $1",
    "SELECT COUNT(*) FROM messages",
    "SELECT id FROM messages ORDER BY id LIMIT 1 OFFSET $1",
    "DELETE FROM messages WHERE id <= $1",
};

static const struct prune_table xfer_table = {
    PQ_PRUNE_XFER_WALK, PQ_PRUNE_XFER_COUNT, PQ_PRUNE_XFER_NTH, PQ_PRUNE_XFER_CUT,
    "SELECT created FROM transfers ORDER BY id LIMIT $1",
    "SELECT COUNT(*) FROM transfers",
    "SELECT id FROM transfers ORDER BY id LIMIT 1 OFFSET $1",
    "DELETE FROM transfers WHERE id <= $1",
};

/* A statement with one or two integer parameters; first as for
 * fota_store_pg_exec. */
static int run2(struct pg_conn *c, int id, const char *sql, int n, int64_t v1, int64_t v2,
                int64_t *first)
{
    struct pg_params a = { 0 };

    fota_store_pg_param_int(&a, v1);
    if (n > 1)
        fota_store_pg_param_int(&a, v2);
    return fota_store_pg_exec(c, id, sql, &a, "prune", first);
}

/* How many of the oldest rows (at most budget) were created before
 * older_than, counted from the oldest up to the first younger row. */
static int age_walk(struct pg_conn *c, const struct prune_table *t, int64_t older_than,
                    int64_t budget, int64_t *n)
{
    struct pg_params a = { 0 };
    PGresult *r;
    int rc;

    *n = 0;
    fota_store_pg_param_int(&a, budget);
    r = fota_store_pg_run(c, t->pq_walk, t->walk, &a, "prune", &rc);
    if (!r)
        return rc;
    for (int i = 0; i < PQntuples(r) && fota_store_pg_col_int(r, i, 0) < older_than; i++)
        (*n)++;
    PQclear(r);
    return 0;
}

/* Deletes the m oldest rows of the table (m > 0); *last gets the largest id
 * deleted. */
static int cut_oldest(struct pg_conn *c, const struct prune_table *t, int64_t m, int64_t *last)
{
    int rc = run2(c, t->pq_nth, t->nth, 1, m - 1, 0, last);

    if (rc)
        return rc;
    return run2(c, t->pq_cut, t->cut, 1, *last, 0, NULL);
}

/* Age and total count: the oldest rows outside either, at most budget.
 * The prefix is done when fewer than budget had to go. */
static int prune_prefix(struct pg_conn *c, const struct prune_table *t, struct fota_retention *r,
                        int64_t budget, int64_t *deleted, int64_t *last)
{
    struct fota_prune_pos *pos = &r->pos;
    int64_t m = 0;
    int rc = 0;

    if (r->older_than > 0)
        rc = age_walk(c, t, r->older_than, budget, &m);
    if (rc == 0 && pos->excess > m)
        m = pos->excess < budget ? pos->excess : budget;
    if (rc == 0 && m > 0)
        rc = cut_oldest(c, t, m, last);
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

/* Reads up to SCAN entries of the (device_id, id) index after pos, counted
 * per device by the database, into runs of one device each. The last run
 * may be cut by the slice's end: it goes back into pos (device, last id
 * read, count so far) instead of the array. *end: the index ended within
 * the slice. */
static int scan_slice(struct pg_conn *c, struct fota_prune_pos *pos, struct dev_count **out,
                      size_t *n, int *end)
{
    struct dev_count cur = { pos->device_id, pos->count }, *runs;
    struct pg_params a = { 0 };
    int64_t rows = 0, id = pos->id;
    size_t k = 0;
    PGresult *r;
    int rc, groups;

    /* (0, INT64_MAX) to start: the product-wide rows (device 0) are not a
     * device's. The row value seeks the index. */
    fota_store_pg_param_int(&a, pos->device_id);
    fota_store_pg_param_int(&a, pos->id);
    fota_store_pg_param_int(&a, SCAN);
    r = fota_store_pg_run(c, PQ_PRUNE_MSG_SCAN,
                          "SELECT device_id, COUNT(*), MAX(id) FROM"
                          " (SELECT device_id, id FROM messages WHERE (device_id, id) > ($1, $2)"
                          "  ORDER BY device_id, id LIMIT $3) AS s"
                          " GROUP BY device_id ORDER BY device_id",
                          &a, "prune", &rc);
    if (!r)
        return rc;
    groups = PQntuples(r);
    runs = fota_xreallocarray(NULL, (size_t)groups + 2, sizeof *runs);
    for (int i = 0; i < groups; i++) {
        int64_t dev = fota_store_pg_col_int(r, i, 0), cnt = fota_store_pg_col_int(r, i, 1);

        rows += cnt;
        id = fota_store_pg_col_int(r, i, 2);
        if (dev != cur.device_id) {
            if (cur.count > 0)
                runs[k++] = cur;
            cur = (struct dev_count){ dev, 0 };
        }
        cur.count += cnt;
    }
    PQclear(r);
    *end = rows < SCAN;
    if (*end && cur.count > 0) {   /* the last device is whole */
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
static int cut_device(struct pg_conn *c, int64_t dev, int64_t n, int64_t *last)
{
    int rc = run2(c, PQ_PRUNE_MSG_DEV_LAST,
                  "SELECT id FROM messages WHERE device_id = $1 ORDER BY id LIMIT 1 OFFSET $2", 2,
                  dev, n - 1, last);

    if (rc)
        return rc;
    return run2(c, PQ_PRUNE_MSG_DEV_CUT, "DELETE FROM messages WHERE device_id = $1 AND id <= $2",
                2, dev, *last, NULL);
}

/* The per-device cap of messages, one slice of the index: every device
 * counted whole in it that is over keep loses its oldest rows, within the
 * budget. A device cut short by the budget keeps the rows it still has to
 * lose in pos->excess, and the next call starts with them. */
static int prune_devices(struct pg_conn *c, struct fota_retention *r, int64_t budget,
                         int64_t *deleted, int64_t *last)
{
    struct fota_prune_pos *pos = &r->pos;
    struct dev_count *runs = NULL;
    int64_t keep = r->keep_per_device, n, cut = 0;
    size_t nruns = 0;
    int end = 0, rc;

    if (pos->excess > 0) {   /* the rest of a device cut short */
        n = pos->excess < budget - *deleted ? pos->excess : budget - *deleted;
        rc = cut_device(c, pos->device_id, n, &cut);
        if (rc)
            return rc;
        *deleted += n;
        if (cut > *last)
            *last = cut;
        pos->excess -= n;
        if (pos->excess > 0 || *deleted == budget)
            return 0;
    }
    rc = scan_slice(c, pos, &runs, &nruns, &end);
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
            rc = cut_device(c, runs[i].device_id, n, &cut);
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
static int round_start(struct pg_conn *c, const struct prune_table *t, struct fota_retention *r)
{
    int64_t total = 0;
    int rc = 0;

    r->pos = (struct fota_prune_pos){ .phase = PH_PREFIX, .id = INT64_MAX };
    if (r->keep_rows > 0) {
        rc = fota_store_pg_exec(c, t->pq_count, t->count, NULL, "prune", &total);
        if (total > r->keep_rows)
            r->pos.excess = total - r->keep_rows;
    }
    return rc;
}

/* One call's transaction; r->pos moves only when it commits. */
static int prune_tx(struct pg_conn *c, const struct prune_table *t, struct fota_retention *r,
                    int per_device, int64_t budget, int64_t *n)
{
    struct fota_prune_pos before = r->pos;
    int64_t last = 0;
    int rc;

    *n = 0;
    if ((rc = fota_store_pg_begin(c, 0)) != 0)
        return rc;
    if (r->pos.phase == PH_START)
        rc = round_start(c, t, r);
    if (rc == 0 && r->pos.phase == PH_PREFIX)
        rc = prune_prefix(c, t, r, budget, n, &last);
    if (rc == 0 && r->pos.phase == PH_DEVICES && !(per_device && r->keep_per_device > 0))
        r->pos.phase = PH_DONE;
    if (rc == 0 && r->pos.phase == PH_DEVICES && *n < budget)
        rc = prune_devices(c, r, budget, n, &last);
    rc = fota_store_pg_finish(c, rc);
    if (rc != 0)
        r->pos = before;
    return rc;
}

static int prune(struct fota_store *s, const struct prune_table *t, struct fota_retention *r,
                 int per_device, size_t *deleted, int *more)
{
    int64_t budget = (int64_t)(r->max_batch ? r->max_batch : FOTA_PRUNE_BATCH), n = 0;
    struct pg_conn *c;
    int rc;

    *deleted = 0;
    *more = 0;
    if (r->older_than < 0 || r->keep_rows < 0 || r->keep_per_device < 0 || budget < 0)
        return FOTA_EINVAL;
    if (r->pos.phase == PH_DONE)
        return 0;
    if ((rc = fota_store_pg_enter(s, "prune", &c)) != 0)
        return rc;
    c->hot = 1;   /* a log table: no cache holds it (store.h) */
    rc = FOTA_EAGAIN;
    for (int i = 0; i < FOTA_PG_TRIES && rc == FOTA_EAGAIN; i++)
        rc = prune_tx(c, t, r, per_device, budget, &n);
    if (rc == 0) {
        *deleted = (size_t)n;
        *more = r->pos.phase != PH_DONE;
    }
    return fota_store_pg_leave(c, rc);
}

int fota_store_pg_message_prune(struct fota_store *s, struct fota_retention *r, size_t *deleted,
                                int *more)
{
    return prune(s, &msg_table, r, 1, deleted, more);
}

int fota_store_pg_transfer_prune(struct fota_store *s, struct fota_retention *r, size_t *deleted,
                                 int *more)
{
    return prune(s, &xfer_table, r, 0, deleted, more);
}
