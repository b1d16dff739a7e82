/* store_pg_ask.c - rollout requests asked of the instance that drives the
 * rollouts (store.h: fota_store_pg_ask_*, table rollout_asks of migration
 * 15). One statement each, in its own transaction, ringing channel
 * fota_rollout_ask in its commit: the row is the truth, the ring a doorbell.
 * None moves the catalog generation (hot): no cache reads the table. */
#include <stdlib.h>
#include <string.h>

#include "store_pg_int.h"
#include "xmalloc.h"

/* The asker's row when it is taken or answered: ten minutes is far beyond
 * any wait of an asker (its request's reply went out long before). */
#define ASK_STALE "interval '10 minutes'"

static char *col_dup(const PGresult *r, int row, int col)
{
    size_t n = (size_t)PQgetlength(r, row, col);
    char *s = fota_xmalloc(n + 1);

    memcpy(s, PQgetvalue(r, row, col), n);
    s[n] = '\0';
    return s;
}

/* Enters op on s's connection for this thread, or FOTA_ENOTSUP for a store
 * of one fotad. */
static int ask_enter(struct fota_store *s, const char *op, struct pg_conn **c)
{
    int rc;

    if (!s->instance_id)
        return FOTA_ENOTSUP;
    if ((rc = fota_store_pg_enter(s, op, c)) == 0)
        (*c)->hot = 1;
    return rc;
}

int fota_store_pg_ask_add(struct fota_store *s, const char *path, const char *body, int64_t *id)
{
    struct pg_params a = { 0 };
    struct pg_conn *c;
    int rc;

    *id = 0;
    if ((rc = ask_enter(s, "ask_add", &c)) != 0)
        return rc;
    fota_store_pg_param_int(&a, s->instance_id);
    fota_store_pg_param_text(&a, path, strlen(path));
    fota_store_pg_param_text(&a, body, strlen(body));
    rc = fota_store_pg_exec_tx(c, PQ_ASK_ADD,
                               "WITH old AS (DELETE FROM rollout_asks"
                               " WHERE made < clock_timestamp() - " ASK_STALE "),"
                               " a AS (INSERT INTO rollout_asks (asker, path, body, made)"
                               " SELECT $1, $2, $3, clock_timestamp() WHERE EXISTS"
                               " (SELECT 1 FROM leases WHERE name = 'rollouts'"
                               " AND expires > clock_timestamp()) RETURNING id)"
                               " SELECT id, pg_notify('fota_rollout_ask', 'ask:' || id) FROM a",
                               &a, 1, "ask_add", id);
    if (rc == 0 && *id == 0)
        rc = FOTA_ENOENT;
    return fota_store_pg_leave(c, rc);
}

struct taken {
    char *path, *body;
};

static void read_taken(const PGresult *r, int row, void *out)
{
    struct taken *t = out;

    t->path = col_dup(r, row, 0);
    t->body = col_dup(r, row, 1);
}

int fota_store_pg_ask_take(struct fota_store *s, int64_t id, char **path, char **body)
{
    struct pg_params a = { 0 };
    struct taken t = { NULL, NULL };
    struct pg_conn *c;
    int rc;

    *path = *body = NULL;
    if ((rc = ask_enter(s, "ask_take", &c)) != 0)
        return rc;
    fota_store_pg_param_int(&a, id);
    fota_store_pg_param_int(&a, s->instance_id);
    rc = fota_store_pg_one(c, PQ_ASK_TAKE,
                           "UPDATE rollout_asks SET taker = $2 WHERE id = $1 AND taker = 0"
                           " RETURNING path, body",
                           &a, read_taken, &t, "ask_take");
    if (rc == 0) {
        *path = t.path;
        *body = t.body;
    }
    return fota_store_pg_leave(c, rc);
}

int fota_store_pg_ask_answer(struct fota_store *s, int64_t id, int status, const char *reply)
{
    struct pg_params a = { 0 };
    struct pg_conn *c;
    int64_t asker = 0;
    int rc;

    if ((rc = ask_enter(s, "ask_answer", &c)) != 0)
        return rc;
    fota_store_pg_param_int(&a, id);
    fota_store_pg_param_int(&a, s->instance_id);
    fota_store_pg_param_int(&a, status);
    fota_store_pg_param_text(&a, reply, strlen(reply));
    rc = fota_store_pg_exec_tx(c, PQ_ASK_ANSWER,
                               "UPDATE rollout_asks SET status = $3, reply = $4"
                               " WHERE id = $1 AND taker = $2"
                               " RETURNING asker, pg_notify('fota_rollout_ask',"
                               " 'ans:' || id || ':' || asker)",
                               &a, 1, "ask_answer", &asker);
    if (rc == 0 && asker == 0)
        rc = FOTA_ENOENT;
    return fota_store_pg_leave(c, rc);
}

static void read_end(const PGresult *r, int row, void *out)
{
    struct fota_store_ask_end *e = out;

    e->taker = fota_store_pg_col_int(r, row, 0);
    e->status = (int)fota_store_pg_col_int(r, row, 1);
    e->reply = col_dup(r, row, 2);
}

int fota_store_pg_ask_end(struct fota_store *s, int64_t id, int force,
                          struct fota_store_ask_end *out)
{
    struct pg_params a = { 0 };
    struct pg_conn *c;
    int rc;

    memset(out, 0, sizeof *out);
    if ((rc = ask_enter(s, "ask_end", &c)) != 0)
        return rc;
    fota_store_pg_param_int(&a, id);
    fota_store_pg_param_int(&a, force);
    /* The row when it can end, else whether it is still there (taken). */
    rc = fota_store_pg_one(c, PQ_ASK_END,
                           "WITH d AS (DELETE FROM rollout_asks WHERE id = $1"
                           " AND ($2 <> 0 OR taker = 0 OR status <> 0)"
                           " RETURNING taker, status, reply)"
                           " SELECT taker, status, reply FROM d"
                           " UNION ALL SELECT -1, 0, '' FROM rollout_asks"
                           " WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM d)",
                           &a, read_end, out, "ask_end");
    int waits = rc == 0 && out->taker < 0;
    if (waits) {
        free(out->reply);
        memset(out, 0, sizeof *out);
    }
    rc = fota_store_pg_leave(c, rc);
    return rc == 0 && waits ? FOTA_EAGAIN : rc;   /* (leave reads EAGAIN as retries spent) */
}
