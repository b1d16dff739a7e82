/* store_pg_rollout_ev.c - the rows through which a rollout's driver hears
 * of members whose device another instance holds (docs/scale-out.md): the
 * events that instance inserts (rollout_events, a batch of events per row
 * as arrays, one statement per batch, notifying fota_rollout_ev in its
 * commit), the driver's consumption of them in order (DELETE ... RETURNING
 * of whole rows, fenced by lease rollouts, their arrays taken apart here),
 * and the queued members whose device another live instance holds.
 * PostgreSQL only: SQLite has one fotad. */
#include <stdlib.h>
#include <string.h>

#include "fota_str.h"
#include "store_pg_int.h"
#include "xmalloc.h"

enum { E_ROLLOUT, E_DEVICE, E_NONCE, E_KIND, E_STATUS, E_VERSION, E_AT, E_NCOL };

/* One statement: the events as rows of at most FOTA_ROLLOUT_EVENTS_ROW,
 * each a run of one instance's events in the order given, cut from the
 * column arrays by slices whose bounds (1-based, $8 and $9) and instance
 * ($10) fotad computed (a slice is a copy; no grouping, no sort, no
 * aggregate per column), ids drawn in the rows' order; then one
 * notification whatever their number. */
static const char EV_ADD_SQL[] =
    "WITH ins AS (INSERT INTO rollout_events (instance_id, rollout_id, device_id, nonce, kind,"
    " status, version, at)"
    " SELECT g.i, ($1::int8[])[g.b:g.e], ($2::int8[])[g.b:g.e], ($3::int8[])[g.b:g.e],"
    " ($4::int8[])[g.b:g.e], ($5::int8[])[g.b:g.e], ($6::text[])[g.b:g.e],"
    " ($7::int8[])[g.b:g.e]"
    " FROM unnest($8::int8[], $9::int8[], $10::int8[]) WITH ORDINALITY AS g(b, e, i, o)"
    " ORDER BY g.o RETURNING 1)"
    " SELECT pg_notify('fota_rollout_ev', count(*)::text) FROM ins";

int fota_store_pg_rollout_events_add(struct fota_store *s, const struct fota_rollout_event *rows,
                                     size_t n)
{
    struct pg_array_param a[E_NCOL], lo, hi, inst;
    struct pg_params p = { 0 };
    struct pg_conn *c;
    int rc;

    if (n == 0)
        return 0;
    if ((rc = fota_store_pg_enter(s, "rollout_events_add", &c)) != 0)
        return rc;
    c->hot = 1;
    for (int k = 0; k < E_NCOL; k++)
        fota_store_pg_array_init(&a[k], k == E_VERSION ? FOTA_PG_TEXT_ARRAY : FOTA_PG_INT8_ARRAY);
    fota_store_pg_array_init(&lo, FOTA_PG_INT8_ARRAY);
    fota_store_pg_array_init(&hi, FOTA_PG_INT8_ARRAY);
    fota_store_pg_array_init(&inst, FOTA_PG_INT8_ARRAY);
    size_t first = 0;
    for (size_t i = 0; i < n; i++) {
        const struct fota_rollout_event *e = &rows[i];
        fota_store_pg_array_int(&a[E_ROLLOUT], e->rollout_id);
        fota_store_pg_array_int(&a[E_DEVICE], e->device_id);
        fota_store_pg_array_int(&a[E_NONCE], e->nonce);
        fota_store_pg_array_int(&a[E_KIND], e->kind);
        fota_store_pg_array_int(&a[E_STATUS], e->status);
        PG_ARRAY_STR(&a[E_VERSION], e->version);
        fota_store_pg_array_int(&a[E_AT], e->at);
        /* a stored row ends after its last event: the row is full, the
         * batch ends, or the next event is another instance's */
        if (i + 1 == n || i + 1 - first == FOTA_ROLLOUT_EVENTS_ROW ||
            rows[i + 1].instance_id != e->instance_id) {
            fota_store_pg_array_int(&lo, (int64_t)first + 1);
            fota_store_pg_array_int(&hi, (int64_t)i + 1);
            fota_store_pg_array_int(&inst, e->instance_id);
            first = i + 1;
        }
    }
    for (int k = 0; k < E_NCOL; k++)
        fota_store_pg_param_array(&p, &a[k]);
    fota_store_pg_param_array(&p, &lo);
    fota_store_pg_param_array(&p, &hi);
    fota_store_pg_param_array(&p, &inst);
    rc = fota_store_pg_exec_tx(c, PQ_RO_EV_ADD, EV_ADD_SQL, &p, 0, "rollout_events_add", NULL);
    for (int k = 0; k < E_NCOL; k++)
        fota_store_pg_array_free(&a[k]);
    fota_store_pg_array_free(&lo);
    fota_store_pg_array_free(&hi);
    fota_store_pg_array_free(&inst);
    return fota_store_pg_leave(c, rc);
}

/* The oldest rows, deleted, in id order; each row's events (its arrays)
 * are taken apart by fotad (unpack_row), in array order. */
static const char EV_TAKE_SQL[] =
    "WITH t AS (DELETE FROM rollout_events WHERE id IN (SELECT id FROM rollout_events"
    " ORDER BY id LIMIT $1) RETURNING id, instance_id, rollout_id, device_id, nonce, kind,"
    " status, version, at)"
    " SELECT id, instance_id, rollout_id, device_id, nonce, kind, status, version, at"
    " FROM t ORDER BY id";

enum { T_ID, T_INSTANCE, T_ROLLOUT, T_DEVICE, T_NONCE, T_KIND, T_STATUS, T_VERSION, T_AT,
       T_NCOL };

/* Appends row's events to *out (*n of *cap). A row whose arrays do not
 * read as arrays of one length (written by hand?) is logged and skipped:
 * it is deleted all the same, and the driver's pushes it named are asked
 * again once untaken. */
static void unpack_row(struct fota_store *s, const PGresult *r, int row,
                       struct fota_rollout_event **out, size_t *n, size_t *cap)
{
    const char *cur[T_NCOL];
    const int64_t id = fota_store_pg_col_int(r, row, T_ID),
                  instance_id = fota_store_pg_col_int(r, row, T_INSTANCE);
    size_t start = *n;
    int more = 1;

    for (int k = T_ROLLOUT; k < T_NCOL; k++)
        cur[k] = PQgetvalue(r, row, k);
    while (more == 1) {
        int64_t v[T_NCOL] = { 0 };
        char version[FOTA_VERSION_MAX], num[32];
        /* one element of every array: all there, or all at their end */
        for (int k = T_ROLLOUT; k < T_NCOL; k++) {
            int got = k == T_VERSION ? fota_store_pg_array_next(&cur[k], version, sizeof version)
                                     : fota_store_pg_array_next(&cur[k], num, sizeof num);
            if (k == T_ROLLOUT)
                more = got;
            else if (got != more)
                more = -1;
            if (more != 1)
                break;
            if (k != T_VERSION) {
                char *end;
                v[k] = strtoll(num, &end, 10);
                if (end == num || *end)
                    more = -1;
            }
        }
        if (more != 1)
            break;
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 256;
            *out = fota_xreallocarray(*out, *cap, sizeof **out);
        }
        struct fota_rollout_event *e = &(*out)[(*n)++];
        memset(e, 0, sizeof *e);
        e->id = id;
        e->instance_id = instance_id;
        e->rollout_id = v[T_ROLLOUT];
        e->device_id = v[T_DEVICE];
        e->nonce = v[T_NONCE];
        e->kind = (int)v[T_KIND];
        e->status = (int)v[T_STATUS];
        e->at = v[T_AT];
        fota_str_copy(e->version, sizeof e->version, version);
    }
    if (more < 0) {
        fota_store_logf(s, FOTA_LOG_WARN, "rollout events row not read id=%lld "
                        "reason=\"its arrays are not of one length\"",
                        (long long)id);
        *n = start;
    }
}

int fota_store_pg_rollout_events_take(struct fota_store *s, struct fota_rollout_event **out,
                                      size_t *n)
{
    struct pg_params p = { 0 };
    struct pg_conn *c;
    int rc;

    *out = NULL;
    *n = 0;
    if ((rc = fota_store_pg_enter(s, "rollout_events_take", &c)) != 0)
        return rc;
    c->hot = 1;
    fota_store_pg_param_int(&p, FOTA_ROLLOUT_EVENTS_TAKE);
    /* In a transaction of its own: the fence (lease rollouts) is checked at
     * its start, so only the driver consumes. */
    rc = fota_store_pg_begin(c, 0);
    PGresult *r = rc == 0 ? fota_store_pg_run(c, PQ_RO_EV_TAKE, EV_TAKE_SQL, &p,
                                              "rollout_events_take", &rc) : NULL;
    size_t cap = 0;
    for (int i = 0; r && i < PQntuples(r); i++)
        unpack_row(s, r, i, out, n, &cap);
    PQclear(r);
    if (c->in_tx)
        rc = fota_store_pg_finish(c, rc);
    if (rc != 0) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return fota_store_pg_leave(c, rc);
}

static void read_pair(const PGresult *r, int row, void *out)
{
    struct fota_rollout_member_row *m = out;

    memset(m, 0, sizeof *m);
    m->rollout_id = fota_store_pg_col_int(r, row, 0);
    m->device_id = fota_store_pg_col_int(r, row, 1);
    m->state = FOTA_RM_QUEUED;
}

int fota_store_pg_rollout_queued_held(struct fota_store *s, const int64_t *ids, size_t nids,
                                      int64_t instance_id, struct fota_rollout_member_row **out,
                                      size_t *n)
{
    struct pg_array_param a;
    struct pg_params p = { 0 };
    struct pg_conn *c;
    int rc;

    *out = NULL;
    *n = 0;
    if (nids == 0)
        return 0;
    if ((rc = fota_store_pg_enter(s, "rollout_queued_held", &c)) != 0)
        return rc;
    fota_store_pg_array_init(&a, FOTA_PG_INT8_ARRAY);
    for (size_t i = 0; i < nids; i++)
        fota_store_pg_array_int(&a, ids[i]);
    fota_store_pg_param_array(&p, &a);
    fota_store_pg_param_int(&p, instance_id);
    fota_store_pg_param_int(&p, FOTA_RM_QUEUED);
    rc = fota_store_pg_collect(c, PQ_RO_QUEUED_HELD,
                               "SELECT m.rollout_id, m.device_id FROM rollout_members m"
                               " JOIN device_conn h ON h.device_id = m.device_id"
                               " JOIN instances i ON i.id = h.instance_id"
                               " WHERE m.rollout_id = ANY($1::int8[]) AND m.state = $3"
                               " AND i.state = 1 AND h.instance_id <> $2"
                               " ORDER BY m.rollout_id, m.device_id",
                               &p, read_pair, sizeof **out, (void **)out, n,
                               "rollout_queued_held");
    fota_store_pg_array_free(&a);
    return fota_store_pg_leave(c, rc);
}
