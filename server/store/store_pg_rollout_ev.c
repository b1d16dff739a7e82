/* store_pg_rollout_ev.c - the rows through which a rollout's driver hears
 * of members whose device another instance holds (docs/scale-out.md): the
 * events that instance inserts (rollout_events, a batch of events per row
 * as arrays, one statement per batch, notifying fota_rollout_ev in its
 * commit), the driver's consumption of them in order (DELETE ... RETURNING
 * taken apart by unnest, fenced by lease rollouts), and the queued members
 * whose device another live instance holds. PostgreSQL only: SQLite has
 * one fotad. */
#include <stdlib.h>
#include <string.h>

#include "store_pg_int.h"

enum { E_ROLLOUT, E_DEVICE, E_NONCE, E_KIND, E_STATUS, E_VERSION, E_INSTANCE, E_AT, E_NCOL };

/* One statement: the events as rows of at most FOTA_ROLLOUT_EVENTS_ROW
 * ($9), each instance's apart, in the order given (ids drawn in the
 * order of the rows' first events), then one notification whatever their
 * number. */
static const char EV_ADD_SQL[] =
    "WITH ins AS (INSERT INTO rollout_events (instance_id, rollout_id, device_id, nonce, kind,"
    " status, version, at)"
    " SELECT i, array_agg(r ORDER BY o), array_agg(d ORDER BY o), array_agg(n ORDER BY o),"
    " array_agg(k ORDER BY o), array_agg(s ORDER BY o), array_agg(v ORDER BY o),"
    " array_agg(a ORDER BY o)"
    " FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::int8[], $6::text[],"
    " $7::int8[], $8::int8[]) WITH ORDINALITY AS u(r, d, n, k, s, v, i, a, o)"
    " GROUP BY i, (o - 1) / $9 ORDER BY min(o) RETURNING 1)"
    " SELECT pg_notify('fota_rollout_ev', count(*)::text) FROM ins";

int fota_store_pg_rollout_events_add(struct fota_store *s, const struct fota_rollout_event *rows,
                                     size_t n)
{
    struct pg_array_param a[E_NCOL];
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
    for (size_t i = 0; i < n; i++) {
        const struct fota_rollout_event *e = &rows[i];
        fota_store_pg_array_int(&a[E_ROLLOUT], e->rollout_id);
        fota_store_pg_array_int(&a[E_DEVICE], e->device_id);
        fota_store_pg_array_int(&a[E_NONCE], e->nonce);
        fota_store_pg_array_int(&a[E_KIND], e->kind);
        fota_store_pg_array_int(&a[E_STATUS], e->status);
        PG_ARRAY_STR(&a[E_VERSION], e->version);
        fota_store_pg_array_int(&a[E_INSTANCE], e->instance_id);
        fota_store_pg_array_int(&a[E_AT], e->at);
    }
    for (int k = 0; k < E_NCOL; k++)
        fota_store_pg_param_array(&p, &a[k]);
    fota_store_pg_param_int(&p, FOTA_ROLLOUT_EVENTS_ROW);
    rc = fota_store_pg_exec_tx(c, PQ_RO_EV_ADD, EV_ADD_SQL, &p, 0, "rollout_events_add", NULL);
    for (int k = 0; k < E_NCOL; k++)
        fota_store_pg_array_free(&a[k]);
    return fota_store_pg_leave(c, rc);
}

static void read_event(const PGresult *r, int row, void *out)
{
    struct fota_rollout_event *e = out;

    memset(e, 0, sizeof *e);
    e->id = fota_store_pg_col_int(r, row, 0);
    e->rollout_id = fota_store_pg_col_int(r, row, 1);
    e->device_id = fota_store_pg_col_int(r, row, 2);
    e->nonce = fota_store_pg_col_int(r, row, 3);
    e->kind = (int)fota_store_pg_col_int(r, row, 4);
    e->status = (int)fota_store_pg_col_int(r, row, 5);
    fota_store_pg_col_text(r, row, 6, e->version, sizeof e->version);
    e->instance_id = fota_store_pg_col_int(r, row, 7);
    e->at = fota_store_pg_col_int(r, row, 8);
}

/* The oldest rows, deleted, their events in row id and then array order. */
static const char EV_TAKE_SQL[] =
    "WITH t AS (DELETE FROM rollout_events WHERE id IN (SELECT id FROM rollout_events"
    " ORDER BY id LIMIT $1) RETURNING id, instance_id, rollout_id, device_id, nonce, kind,"
    " status, version, at)"
    " SELECT t.id, u.r, u.d, u.n, u.k, u.s, u.v, t.instance_id, u.a FROM t,"
    " unnest(t.rollout_id, t.device_id, t.nonce, t.kind, t.status, t.version, t.at)"
    " WITH ORDINALITY AS u(r, d, n, k, s, v, a, o) ORDER BY t.id, u.o";

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
    if (rc == 0)
        rc = fota_store_pg_collect(c, PQ_RO_EV_TAKE, EV_TAKE_SQL, &p, read_event, sizeof **out,
                                   (void **)out, n, "rollout_events_take");
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
