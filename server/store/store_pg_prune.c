/* store_pg_prune.c - retention of the two log tables (messages, transfers)
 * in the PostgreSQL store: the statements of store_prune.c's walk (struct
 * fota_prune_ops), each call one transaction (synchronous_commit off) that
 * deletes at most max_batch rows and reads a bounded part of the table.
 *
 * The per-device slice is grouped per device in the database, so a slice
 * costs one row per device on the wire, not one per message. Identities
 * never hand out an id twice, so no id floor is kept. */
#include <stdlib.h>
#include "store_pg_int.h"
#include "xmalloc.h"

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

/* What the statements of one call run on (struct fota_prune_ops's ctx). */
struct prune_ctx {
    struct pg_conn *c;
    const struct prune_table *t;
};

static int count_rows(void *ctx, int64_t *total)
{
    struct prune_ctx *x = ctx;

    return fota_store_pg_exec(x->c, x->t->pq_count, x->t->count, NULL, "prune", total);
}

/* How many of the oldest rows (at most budget) were created before
 * older_than, counted from the oldest up to the first younger row. */
static int age_walk(void *ctx, int64_t older_than, int64_t budget, int64_t *n)
{
    struct pg_conn *c = ((struct prune_ctx *)ctx)->c;
    const struct prune_table *t = ((struct prune_ctx *)ctx)->t;
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
static int cut_oldest(void *ctx, int64_t m, int64_t *last)
{
    struct pg_conn *c = ((struct prune_ctx *)ctx)->c;
    const struct prune_table *t = ((struct prune_ctx *)ctx)->t;
    int rc = run2(c, t->pq_nth, t->nth, 1, m - 1, 0, last);

    if (rc)
        return rc;
    return run2(c, t->pq_cut, t->cut, 1, *last, 0, NULL);
}

/* struct fota_prune_ops scan_slice: the slice's entries counted per
 * device by the database. */
static int scan_slice(void *ctx, struct fota_prune_pos *pos, struct fota_prune_run **out,
                      size_t *n, int *end)
{
    struct pg_conn *c = ((struct prune_ctx *)ctx)->c;
    struct fota_prune_run cur = { pos->device_id, pos->count }, *runs;
    struct pg_params a = { 0 };
    int64_t rows = 0, id = pos->id;
    size_t k = 0;
    PGresult *r;
    int rc, groups;

    /* (0, INT64_MAX) to start: the product-wide rows (device 0) are not a
     * device's. The row value seeks the index. */
    fota_store_pg_param_int(&a, pos->device_id);
    fota_store_pg_param_int(&a, pos->id);
    fota_store_pg_param_int(&a, FOTA_PRUNE_SCAN);
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
            cur = (struct fota_prune_run){ dev, 0 };
        }
        cur.count += cnt;
    }
    PQclear(r);
    *end = rows < FOTA_PRUNE_SCAN;
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
static int cut_device(void *ctx, int64_t dev, int64_t n, int64_t *last)
{
    struct pg_conn *c = ((struct prune_ctx *)ctx)->c;
    int rc = run2(c, PQ_PRUNE_MSG_DEV_LAST,
                  "SELECT id FROM messages WHERE device_id = $1 ORDER BY id LIMIT 1 OFFSET $2", 2,
                  dev, n - 1, last);

    if (rc)
        return rc;
    return run2(c, PQ_PRUNE_MSG_DEV_CUT, "DELETE FROM messages WHERE device_id = $1 AND id <= $2",
                2, dev, *last, NULL);
}

static const struct fota_prune_ops prune_ops = {
    .count = count_rows, .age_walk = age_walk, .cut_oldest = cut_oldest,
    .scan_slice = scan_slice, .cut_device = cut_device,
};

/* One call's transaction; r->pos moves only when it commits. */
static int prune_tx(struct pg_conn *c, const struct prune_table *t, struct fota_retention *r,
                    int per_device, int64_t budget, int64_t *n)
{
    struct prune_ctx ctx = { c, t };
    struct fota_prune_pos before = r->pos;
    int64_t last = 0;
    int rc;

    *n = 0;
    if ((rc = fota_store_pg_begin(c, 0)) != 0)
        return rc;
    rc = fota_store_prune_call(&prune_ops, &ctx, r, per_device, budget, n, &last);
    rc = fota_store_pg_finish(c, rc);
    if (rc != 0)
        r->pos = before;
    return rc;
}

static int prune(struct fota_store *s, const struct prune_table *t, struct fota_retention *r,
                 int per_device, size_t *deleted, int *more)
{
    int64_t budget, n = 0;
    struct pg_conn *c;
    int rc;

    *deleted = 0;
    *more = 0;
    if ((rc = fota_store_prune_budget(r, &budget)) != 0)
        return rc;
    if (r->pos.phase == FOTA_PRUNE_DONE)
        return 0;
    if ((rc = fota_store_pg_enter(s, "prune", &c)) != 0)
        return rc;
    c->hot = 1;   /* a log table: no cache holds it (store.h) */
    rc = FOTA_EAGAIN;
    for (int i = 0; i < FOTA_PG_TRIES && rc == FOTA_EAGAIN; i++)
        rc = prune_tx(c, t, r, per_device, budget, &n);
    if (rc == 0) {
        *deleted = (size_t)n;
        *more = r->pos.phase != FOTA_PRUNE_DONE;
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
