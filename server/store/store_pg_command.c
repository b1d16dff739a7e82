/* store_pg_command.c - device commands in the PostgreSQL store
 * (store_sqlite_command.c's ops in PostgreSQL's form): one command or a
 * batch, their state changes, the lookups by id, by nonce and by device, and
 * the cancel and replace of queued ones. A batch is one statement over
 * unnest() arrays, not one per row. Where SQLite's one writer made a
 * check-then-write safe, the device's row is held first (FOR NO KEY UPDATE:
 * two replacers of one device take turns, while a plain insert's foreign
 * key check, a KEY SHARE lock, does not wait). Commands are fleet traffic:
 * synchronous_commit off except for a cancel, no catalog generation. */
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "clock.h"
#include "store_pg_int.h"
#include "xmalloc.h"

#define COMMAND_COLS \
    "SELECT id, device_id, nonce, action, params, state, result, created, updated FROM commands"

static void read_command(const PGresult *r, int row, void *out)
{
    struct fota_command *c = out;

    memset(c, 0, sizeof *c);
    c->id = fota_store_pg_col_int(r, row, 0);
    c->device_id = fota_store_pg_col_int(r, row, 1);
    c->nonce = fota_store_pg_col_int(r, row, 2);
    fota_store_pg_col_text(r, row, 3, c->action, sizeof c->action);
    c->params = fota_store_json_decode(PQgetvalue(r, row, 4), (size_t)PQgetlength(r, row, 4), 1);
    c->state = (int)fota_store_pg_col_int(r, row, 5);
    c->result = fota_store_json_decode(PQgetvalue(r, row, 6), (size_t)PQgetlength(r, row, 6), 0);
    c->created = fota_store_pg_col_int(r, row, 7);
    c->updated = fota_store_pg_col_int(r, row, 8);
}

/* A JSON column's text (NULL: "", which reads back as none). */
static void param_json(struct pg_params *a, const char *text)
{
    fota_store_pg_param_text(a, text ? text : "", text ? strlen(text) : 0);
}

/* ---- creating commands ----------------------------------------------------- */

/* Holds the rows of the n devices ids[0..n) (any order, repeats allowed)
 * until the transaction ends, in id order so two batches never deadlock;
 * only their count comes back. */
static int lock_devices(struct pg_conn *c, const int64_t *ids, size_t n, const char *what)
{
    struct pg_params a = { 0 };
    struct pg_array_param v;
    int rc;

    fota_store_pg_array_init(&v, FOTA_PG_INT8_ARRAY);
    for (size_t i = 0; i < n; i++)
        fota_store_pg_array_int(&v, ids[i]);
    fota_store_pg_param_array(&a, &v);
    rc = fota_store_pg_exec(c, PQ_CMD_LOCK_DEVICES,
                            "SELECT COUNT(*) FROM (SELECT id FROM devices WHERE id = ANY($1)"
                            " ORDER BY id FOR NO KEY UPDATE) AS l",
                            &a, what, NULL);
    fota_store_pg_array_free(&v);
    return rc;
}

/* Inside a transaction: one command like tmpl for device_id, its id into
 * *id. */
static int insert_one(struct pg_conn *c, const struct fota_command *tmpl, int64_t device_id,
                      int64_t nonce, int64_t now, int64_t *id)
{
    char *params = fota_store_json_encode(tmpl->params);
    char *result = fota_store_json_encode(tmpl->result);
    struct pg_params a = { 0 };
    int rc;

    fota_store_pg_param_int(&a, device_id);
    fota_store_pg_param_int(&a, nonce);
    PG_PARAM_STR(&a, tmpl->action);
    param_json(&a, params);
    fota_store_pg_param_int(&a, tmpl->state ? tmpl->state : FOTA_CMD_QUEUED);
    param_json(&a, result);
    fota_store_pg_param_int(&a, now);
    rc = fota_store_pg_exec(c, PQ_CMD_INSERT,
                            "INSERT INTO commands (device_id, nonce, action, params, state,"
                            " result, created, updated) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)"
                            " RETURNING id",
                            &a, "command_create", id);
    free(params);
    free(result);
    return rc;
}

static int create_tx(struct pg_conn *c, struct fota_command *cmd, int64_t nonce, int64_t now,
                     int64_t *id)
{
    int rc = fota_store_pg_begin(c, 0);

    if (rc == 0)
        rc = insert_one(c, cmd, cmd->device_id, nonce, now, id);
    return fota_store_pg_finish(c, rc);
}

int fota_store_pg_command_create(struct fota_store *s, struct fota_command *cmd)
{
    int64_t now = fota_clock_wall_s(), id = 0;
    int64_t nonce = cmd->nonce ? cmd->nonce : fota_store_nonce();
    struct pg_conn *c;
    int rc;

    if (!cmd->action[0])
        return FOTA_EINVAL;
    if ((rc = fota_store_pg_enter(s, "command_create", &c)) != 0)
        return rc;
    c->hot = 1;                /* not a cached table (store.h) */
    rc = FOTA_EAGAIN;
    for (int i = 0; i < FOTA_PG_TRIES && rc == FOTA_EAGAIN; i++)
        rc = create_tx(c, cmd, nonce, now, &id);
    if (rc == 0)
        fota_store_command_created(cmd, id, nonce, now);
    return fota_store_pg_leave(c, rc);
}

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

static void read_id(const PGresult *r, int row, void *out)
{
    *(int64_t *)out = fota_store_pg_col_int(r, row, 0);
}

/* Inside the transaction that inserted command id (holding the device's
 * row): device_id's queued commands of action older than it become
 * cancelled, replaced by it. *old (freed by the caller) gets their ids,
 * oldest first, *nold their number. */
static int replace_queued(struct pg_conn *c, int64_t device_id, const char *action, int64_t id,
                          int64_t now, int64_t **old, size_t *nold)
{
    json_t *why = json_pack("{s:o, s:I}", "cancelled",
                            json_sprintf("replaced by command %lld", (long long)id),
                            "replaced_by", (json_int_t)id);
    char *text = fota_store_json_encode(why);
    struct pg_params a = { 0 };
    int rc;

    json_decref(why);
    fota_store_pg_param_int(&a, FOTA_CMD_CANCELLED);
    param_json(&a, text);
    fota_store_pg_param_int(&a, now);
    fota_store_pg_param_int(&a, device_id);
    fota_store_pg_param_int(&a, FOTA_CMD_QUEUED);
    fota_store_pg_param_text(&a, action, strlen(action));
    fota_store_pg_param_int(&a, id);
    rc = fota_store_pg_collect(c, PQ_CMD_REPLACE,
                               "UPDATE commands SET state = $1, result = $2, updated = $3"
                               " WHERE device_id = $4 AND state = $5 AND action = $6 AND id < $7"
                               " RETURNING id",
                               &a, read_id, sizeof **old, (void **)old, nold, "command_replace");
    if (rc == 0)
        qsort(*old, *nold, sizeof **old, cmp_id);
    free(text);
    return rc;
}

static int replacing_tx(struct pg_conn *c, struct fota_command *cmd, int64_t nonce, int64_t now,
                        int64_t *id, int64_t **old, size_t *nold)
{
    int64_t found = 0;
    int rc = fota_store_pg_begin(c, 0);
    struct pg_params a = { 0 };

    free(*old);
    *old = NULL;
    *nold = 0;
    /* The device's row first: a second replacer waits here, then sees this
     * one's row as queued and replaces it. */
    fota_store_pg_param_int(&a, cmd->device_id);
    if (rc == 0)
        rc = fota_store_pg_exec(c, PQ_CMD_LOCK_DEVICE,
                                "SELECT 1 FROM devices WHERE id = $1 FOR NO KEY UPDATE", &a,
                                "command_create_replacing", &found);
    if (rc == 0 && !found)
        rc = FOTA_ENOENT;
    if (rc == 0)
        rc = insert_one(c, cmd, cmd->device_id, nonce, now, id);
    if (rc == 0)
        rc = replace_queued(c, cmd->device_id, cmd->action, *id, now, old, nold);
    return fota_store_pg_finish(c, rc);
}

int fota_store_pg_command_create_replacing(struct fota_store *s, struct fota_command *cmd,
                                           int64_t *replaced, size_t cap, size_t *nreplaced)
{
    int64_t now = fota_clock_wall_s(), id = 0, *old = NULL;
    int64_t nonce = cmd->nonce ? cmd->nonce : fota_store_nonce();
    size_t nold = 0;
    struct pg_conn *c;
    int rc;

    if (nreplaced)
        *nreplaced = 0;
    if (!cmd->action[0])
        return FOTA_EINVAL;
    if ((rc = fota_store_pg_enter(s, "command_create_replacing", &c)) != 0)
        return rc;
    c->hot = 1;                /* not a cached table (store.h) */
    rc = FOTA_EAGAIN;
    for (int i = 0; i < FOTA_PG_TRIES && rc == FOTA_EAGAIN; i++)
        rc = replacing_tx(c, cmd, nonce, now, &id, &old, &nold);
    if (rc == 0) {
        fota_store_command_created(cmd, id, nonce, now);
        fota_store_replaced_out(old, nold, replaced, cap, nreplaced);
    }
    free(old);
    return fota_store_pg_leave(c, rc);
}

/* command_create_many's transaction: ids come from the identity's
 * sequence (PostgreSQL names it commands_id_seq) first, in ascending order,
 * so row i's id is known without relying on the order of RETURNING; then
 * one insert and (an upgrade batch) one replace. */
static int create_many_tx(struct pg_conn *c, const struct fota_command *tmpl,
                          const int64_t *device_ids, const int64_t *nonces, int64_t *ids, size_t n,
                          int64_t now, const char *params, const char *result)
{
    int upgrade = strcmp(tmpl->action, "sys_upgrade") == 0;
    struct pg_array_param vid, vdev, vnonce;
    struct pg_params a = { 0 };
    PGresult *r;
    int rc = fota_store_pg_begin(c, 0);

    fota_store_pg_array_init(&vid, FOTA_PG_INT8_ARRAY);
    fota_store_pg_array_init(&vdev, FOTA_PG_INT8_ARRAY);
    fota_store_pg_array_init(&vnonce, FOTA_PG_INT8_ARRAY);

    if (rc == 0 && upgrade)
        rc = lock_devices(c, device_ids, n, "command_create_many");
    if (rc == 0) {
        fota_store_pg_param_int(&a, (int64_t)n);
        r = fota_store_pg_run(c, PQ_CMD_IDS,
                              "SELECT nextval('commands_id_seq') AS id"
                              " FROM generate_series(1, $1) ORDER BY id",
                              &a, "command_create_many", &rc);
        if (r && (size_t)PQntuples(r) != n)
            rc = FOTA_EIO;
        for (size_t i = 0; r && rc == 0 && i < n; i++)
            ids[i] = fota_store_pg_col_int(r, (int)i, 0);
        PQclear(r);
    }
    if (rc == 0) {
        for (size_t i = 0; i < n; i++) {
            fota_store_pg_array_int(&vid, ids[i]);
            fota_store_pg_array_int(&vdev, device_ids[i]);
            fota_store_pg_array_int(&vnonce, nonces[i]);
        }
        memset(&a, 0, sizeof a);
        fota_store_pg_param_array(&a, &vid);
        fota_store_pg_param_array(&a, &vdev);
        fota_store_pg_param_array(&a, &vnonce);
        fota_store_pg_param_text(&a, tmpl->action, sizeof tmpl->action);
        param_json(&a, params);
        fota_store_pg_param_int(&a, tmpl->state ? tmpl->state : FOTA_CMD_QUEUED);
        param_json(&a, result);
        fota_store_pg_param_int(&a, now);
        rc = fota_store_pg_exec(c, PQ_CMD_INSERT_MANY,
                                "INSERT INTO commands (id, device_id, nonce, action, params,"
                                " state, result, created, updated)"
                                " SELECT v.id, v.device_id, v.nonce, $4, $5, $6, $7, $8, $8"
                                " FROM unnest($1, $2, $3) AS v(id, device_id, nonce)",
                                &a, "command_create_many", NULL);
    }
    /* A new upgrade replaces its device's queued ones (store.h): each old
     * row by the first new row of its device after it, the text as
     * fota_store_json_encode writes {"cancelled": ..., "replaced_by": ID}. */
    if (rc == 0 && upgrade) {
        memset(&a, 0, sizeof a);
        fota_store_pg_param_array(&a, &vdev);
        fota_store_pg_param_array(&a, &vid);
        fota_store_pg_param_int(&a, FOTA_CMD_CANCELLED);
        fota_store_pg_param_int(&a, FOTA_CMD_QUEUED);
        fota_store_pg_param_int(&a, now);
        rc = fota_store_pg_exec(c, PQ_CMD_REPLACE_MANY,
                                "UPDATE commands c SET state = $3, updated = $5,"
                                " result = '{\"cancelled\": \"replaced by command ' || r.by"
                                " || '\", \"replaced_by\": ' || r.by || '}'"
                                " FROM (SELECT o.id, MIN(v.id) AS by FROM commands o"
                                "       JOIN unnest($1, $2) AS v(device_id, id)"
                                "         ON o.device_id = v.device_id AND o.id < v.id"
                                "       WHERE o.state = $4 AND o.action = 'sys_upgrade'"
                                "       GROUP BY o.id) AS r"
                                " WHERE c.id = r.id",
                                &a, "command_create_many", NULL);
    }
    fota_store_pg_array_free(&vid);
    fota_store_pg_array_free(&vdev);
    fota_store_pg_array_free(&vnonce);
    return fota_store_pg_finish(c, rc);
}

int fota_store_pg_command_create_many(struct fota_store *s, const struct fota_command *tmpl,
                                      const int64_t *device_ids, int64_t *nonces, int64_t *ids,
                                      size_t n)
{
    struct pg_conn *c;
    int64_t *mine, now;
    char *params, *result;
    int rc;

    if (!tmpl->action[0])
        return FOTA_EINVAL;
    if (n == 0)
        return 0;
    if ((rc = fota_store_pg_enter(s, "command_create_many", &c)) != 0)
        return rc;
    c->hot = 1;                /* not a cached table (store.h) */
    now = fota_clock_wall_s();
    mine = fota_xreallocarray(NULL, n, sizeof *mine);
    for (size_t i = 0; i < n; i++)
        mine[i] = nonces[i] ? nonces[i] : fota_store_nonce();
    params = fota_store_json_encode(tmpl->params);
    result = fota_store_json_encode(tmpl->result);
    rc = FOTA_EAGAIN;
    for (int i = 0; i < FOTA_PG_TRIES && rc == FOTA_EAGAIN; i++)
        rc = create_many_tx(c, tmpl, device_ids, mine, ids, n, now, params, result);
    if (rc == 0)
        memcpy(nonces, mine, n * sizeof *nonces);
    free(mine);
    free(params);
    free(result);
    return fota_store_pg_leave(c, rc);
}

/* ---- state changes ---------------------------------------------------------- */

/* One row of a batch, with its place in the caller's array and its
 * result's index among the distinct results (0: keep the stored one). */
struct set_row {
    int64_t id, updated;
    int state;
    size_t at;
    int64_t result;
};

static int cmp_set(const void *a, const void *b)
{
    const struct set_row *x = a, *y = b;

    if (x->id != y->id)
        return (x->id > y->id) - (x->id < y->id);
    return (x->at > y->at) - (x->at < y->at);
}

#define UPDATE_ROWS_SQL                                                                     \
    "UPDATE commands c SET state = v.state, updated = v.updated,"                               \
    " result = COALESCE($5[v.ri::int4], c.result)"                                              \
    " FROM unnest($1, $2, $3, $4) AS v(id, state, updated, ri) WHERE c.id = v.id"

/* Writes rows[0..n) in one statement, in a transaction of its own. A
 * result shared with the row before is encoded and sent once (a rollout's
 * rows share theirs); an id given more than once ends as SQLite's writes
 * in order leave it: the last row's state and time, the last result that
 * was not NULL. *changed gets the number of rows written.
 * keep_ended: a row that would open an ended command again is skipped
 * (command_update_batch). */
static int update_rows(struct pg_conn *c, const struct fota_command_set *rows, size_t n,
                       int keep_ended, int64_t *changed)
{
    int64_t now = fota_clock_wall_s(), nres = 0;
    struct set_row *v = fota_xreallocarray(NULL, n, sizeof *v);
    struct pg_array_param vid, vstate, vupd, vres, texts;
    const struct json_t *last = NULL;
    struct pg_params a = { 0 };
    size_t k = 0;
    int rc;

    fota_store_pg_array_init(&vid, FOTA_PG_INT8_ARRAY);
    fota_store_pg_array_init(&vstate, FOTA_PG_INT8_ARRAY);
    fota_store_pg_array_init(&vupd, FOTA_PG_INT8_ARRAY);
    fota_store_pg_array_init(&vres, FOTA_PG_INT8_ARRAY);
    fota_store_pg_array_init(&texts, FOTA_PG_TEXT_ARRAY);
    for (size_t i = 0; i < n; i++) {
        if (rows[i].result && rows[i].result != last) {
            char *text = fota_store_json_encode(rows[i].result);
            fota_store_pg_array_text(&texts, text, text ? strlen(text) : 0);
            free(text);
            last = rows[i].result;
            nres++;
        }
        v[i] = (struct set_row){ rows[i].id, rows[i].updated ? rows[i].updated : now,
                                 rows[i].state, i, rows[i].result ? nres : 0 };
    }
    qsort(v, n, sizeof *v, cmp_set);
    for (size_t i = 0; i < n; i++) {   /* merge the rows of one id into its first */
        if (k && v[k - 1].id == v[i].id) {
            int64_t keep = v[i].result ? v[i].result : v[k - 1].result;
            v[k - 1] = v[i];
            v[k - 1].result = keep;
        } else {
            v[k++] = v[i];
        }
    }
    for (size_t i = 0; i < k; i++) {
        fota_store_pg_array_int(&vid, v[i].id);
        fota_store_pg_array_int(&vstate, v[i].state);
        fota_store_pg_array_int(&vupd, v[i].updated);
        fota_store_pg_array_int(&vres, v[i].result);
    }
    fota_store_pg_param_array(&a, &vid);
    fota_store_pg_param_array(&a, &vstate);
    fota_store_pg_param_array(&a, &vupd);
    fota_store_pg_param_array(&a, &vres);
    fota_store_pg_param_array(&a, &texts);
    rc = FOTA_EAGAIN;
    for (int i = 0; i < FOTA_PG_TRIES && rc == FOTA_EAGAIN; i++) {
        int64_t before = c->changes;
        /* $5[0] is NULL: the stored result stays */
        rc = fota_store_pg_exec_tx(c, keep_ended ? PQ_CMD_UPDATE_KEEP : PQ_CMD_UPDATE_MANY,
                                   keep_ended ? UPDATE_ROWS_SQL " AND "
                                                FOTA_SQL_CMD_NOT_REOPENED("c.state", "v.state")
                                              : UPDATE_ROWS_SQL,
                                   &a, 0, "command_update", NULL);
        *changed = c->changes - before;
    }
    free(v);
    fota_store_pg_array_free(&vid);
    fota_store_pg_array_free(&vstate);
    fota_store_pg_array_free(&vupd);
    fota_store_pg_array_free(&vres);
    fota_store_pg_array_free(&texts);
    return rc;
}

int fota_store_pg_command_update(struct fota_store *s, const struct fota_command *cmd)
{
    struct fota_command_set row = { cmd->id, cmd->state, cmd->updated, cmd->result };
    int64_t changed = 0;
    struct pg_conn *c;
    int rc;

    if ((rc = fota_store_pg_enter(s, "command_update", &c)) != 0)
        return rc;
    c->hot = 1;                /* not a cached table (store.h) */
    rc = update_rows(c, &row, 1, 0, &changed);
    if (rc == 0 && changed == 0)
        rc = FOTA_ENOENT;
    return fota_store_pg_leave(c, rc);
}

int fota_store_pg_command_update_batch(struct fota_store *s, const struct fota_command_set *rows,
                                       size_t n)
{
    int64_t changed = 0;
    struct pg_conn *c;
    int rc;

    if (n == 0)
        return 0;
    if ((rc = fota_store_pg_enter(s, "command_update_batch", &c)) != 0)
        return rc;
    c->hot = 1;                /* not a cached table (store.h) */
    return fota_store_pg_leave(c, update_rows(c, rows, n, 1, &changed));
}

/* ---- lookups ------------------------------------------------------------------ */

int fota_store_pg_command_get(struct fota_store *s, int64_t id, struct fota_command *out)
{
    struct pg_params a = { 0 };
    struct pg_conn *c;
    int rc;

    if ((rc = fota_store_pg_enter(s, "command_get", &c)) != 0)
        return rc;
    fota_store_pg_param_int(&a, id);
    rc = fota_store_pg_one(c, PQ_CMD_GET, COMMAND_COLS " WHERE id = $1", &a, read_command, out,
                           "command_get");
    return fota_store_pg_leave(c, rc);
}

int fota_store_pg_command_find_nonce(struct fota_store *s, int64_t device_id, int64_t nonce,
                                     struct fota_command *out)
{
    struct pg_params a = { 0 };
    struct pg_conn *c;
    int rc;

    if ((rc = fota_store_pg_enter(s, "command_find_nonce", &c)) != 0)
        return rc;
    fota_store_pg_param_int(&a, device_id);
    fota_store_pg_param_int(&a, nonce);
    rc = fota_store_pg_one(c, PQ_CMD_FIND_NONCE,
                           COMMAND_COLS " WHERE device_id = $1 AND nonce = $2"
                                        " ORDER BY id DESC LIMIT 1",
                           &a, read_command, out, "command_find_nonce");
    return fota_store_pg_leave(c, rc);
}

int fota_store_pg_command_list_device(struct fota_store *s, int64_t device_id, int state,
                                      struct fota_command **out, size_t *n)
{
    struct pg_params a = { 0 };
    struct pg_conn *c;
    int rc;

    *out = NULL;
    *n = 0;
    if ((rc = fota_store_pg_enter(s, "command_list_device", &c)) != 0)
        return rc;
    fota_store_pg_param_int(&a, device_id);
    fota_store_pg_param_int(&a, state);
    rc = fota_store_pg_collect(c, PQ_CMD_LIST,
                               COMMAND_COLS " WHERE device_id = $1 AND ($2 = 0 OR state = $2)"
                                            " ORDER BY id",
                               &a, read_command, sizeof **out, (void **)out, n,
                               "command_list_device");
    return fota_store_pg_leave(c, rc);
}

/* ---- the device channel's reads and replies ------------------------------------ */

int fota_store_pg_command_queued_devices(struct fota_store *s, const int64_t *device_ids,
                                         size_t n, uint8_t *queued)
{
    struct pg_params a = { 0 };
    struct pg_array_param v;
    int64_t *have = NULL;
    size_t nhave = 0;
    struct pg_conn *c;
    int rc;

    memset(queued, 0, n);
    if (n == 0)
        return 0;
    if ((rc = fota_store_pg_enter(s, "command_queued_devices", &c)) != 0)
        return rc;
    fota_store_pg_array_init(&v, FOTA_PG_INT8_ARRAY);
    for (size_t i = 0; i < n; i++)
        fota_store_pg_array_int(&v, device_ids[i]);
    fota_store_pg_param_array(&a, &v);
    fota_store_pg_param_int(&a, FOTA_CMD_QUEUED);
    rc = fota_store_pg_collect(c, PQ_CMD_QUEUED_ANY,
                               "SELECT DISTINCT device_id FROM commands"
                               " WHERE device_id = ANY($1) AND state = $2",
                               &a, read_id, sizeof *have, (void **)&have, &nhave,
                               "command_queued_devices");
    fota_store_pg_array_free(&v);
    if (rc == 0) {
        qsort(have, nhave, sizeof *have, cmp_id);
        for (size_t i = 0; i < n; i++)
            queued[i] = bsearch(&device_ids[i], have, nhave, sizeof *have, cmp_id) != NULL;
    }
    free(have);
    return fota_store_pg_leave(c, rc);
}

static int reply_tx(struct pg_conn *c, int64_t device_id, int64_t nonce, int status,
                    const char *text, struct fota_command *row)
{
    struct pg_params a = { 0 };
    int rc;

    fota_store_command_cleanup(row);
    memset(row, 0, sizeof *row);
    if ((rc = fota_store_pg_begin(c, 0)) != 0)
        return rc;
    fota_store_pg_param_int(&a, device_id);
    fota_store_pg_param_int(&a, nonce);
    rc = fota_store_pg_one(c, PQ_CMD_REPLY_FIND,
                           COMMAND_COLS " WHERE device_id = $1 AND nonce = $2"
                                        " ORDER BY id DESC LIMIT 1 FOR UPDATE",
                           &a, read_command, row, "command_reply");
    if (rc == 0 && !fota_store_command_open(row->state))
        rc = FOTA_EBUSY;
    if (rc == 0) {
        int64_t id = row->id;
        memset(&a, 0, sizeof a);
        fota_store_pg_param_int(&a, fota_store_command_reply_state(row->action, status));
        param_json(&a, text);   /* NULL: "" (no result) */
        fota_store_pg_param_int(&a, fota_clock_wall_s());
        fota_store_pg_param_int(&a, id);
        rc = fota_store_pg_exec(c, PQ_CMD_REPLY,
                                "UPDATE commands SET state = $1, result = $2, updated = $3"
                                " WHERE id = $4",
                                &a, "command_reply", NULL);
        fota_store_command_cleanup(row);
        memset(row, 0, sizeof *row);
        if (rc == 0) {
            memset(&a, 0, sizeof a);
            fota_store_pg_param_int(&a, id);
            rc = fota_store_pg_one(c, PQ_CMD_GET, COMMAND_COLS " WHERE id = $1", &a, read_command,
                                   row, "command_reply");
        }
    }
    /* A refusal changed nothing: the transaction ends all the same. */
    int end = fota_store_pg_finish(c, rc == FOTA_EBUSY || rc == FOTA_ENOENT ? 0 : rc);
    return end != 0 ? end : rc;
}

int fota_store_pg_command_reply(struct fota_store *s, int64_t device_id, int64_t nonce, int status,
                                const struct json_t *result, struct fota_command *out)
{
    char *text = result ? fota_store_json_encode(result) : NULL;
    struct fota_command row;
    struct pg_conn *c;
    int rc;

    memset(&row, 0, sizeof row);
    rc = fota_store_pg_enter(s, "command_reply", &c);
    if (rc == 0) {
        c->hot = 1;            /* not a cached table (store.h) */
        rc = FOTA_EAGAIN;
        for (int i = 0; i < FOTA_PG_TRIES && rc == FOTA_EAGAIN; i++)
            rc = reply_tx(c, device_id, nonce, status, text, &row);
        rc = fota_store_pg_leave(c, rc);
    }
    free(text);
    fota_store_command_give(&row, out, rc);
    return rc;
}

/* ---- a queued command cancelled ---------------------------------------------- */

static int cancel_tx(struct pg_conn *c, int64_t device_id, int64_t id, const char *text,
                     struct fota_command *row)
{
    struct pg_params a = { 0 };
    int64_t before = c->changes;
    int changed, rc;

    fota_store_command_cleanup(row);
    memset(row, 0, sizeof *row);
    /* Durable: an upgrade the admin was told is cancelled stays cancelled. */
    if ((rc = fota_store_pg_begin(c, 1)) != 0)
        return rc;
    fota_store_pg_param_int(&a, FOTA_CMD_CANCELLED);
    param_json(&a, text);
    fota_store_pg_param_int(&a, fota_clock_wall_s());
    fota_store_pg_param_int(&a, id);
    fota_store_pg_param_int(&a, device_id);
    fota_store_pg_param_int(&a, FOTA_CMD_QUEUED);
    rc = fota_store_pg_exec(c, PQ_CMD_CANCEL,
                            "UPDATE commands SET state = $1, result = $2, updated = $3"
                            " WHERE id = $4 AND device_id = $5 AND state = $6",
                            &a, "command_cancel", NULL);
    changed = rc == 0 && c->changes > before;
    if (rc == 0) {
        memset(&a, 0, sizeof a);
        fota_store_pg_param_int(&a, id);
        rc = fota_store_pg_one(c, PQ_CMD_GET, COMMAND_COLS " WHERE id = $1", &a, read_command,
                               row, "command_cancel");
        if (rc == 0 && row->device_id != device_id)
            rc = FOTA_ENOENT;
        else if (rc == 0 && !changed)
            rc = FOTA_EBUSY;
    }
    /* A refusal changed nothing: the transaction ends all the same. */
    int end = fota_store_pg_finish(c, rc == FOTA_EBUSY || rc == FOTA_ENOENT ? 0 : rc);
    return end != 0 ? end : rc;
}

int fota_store_pg_command_cancel(struct fota_store *s, int64_t device_id, int64_t id,
                                 const struct json_t *result, struct fota_command *out)
{
    char *text = result ? fota_store_json_encode(result)
                        : fota_xstrdup("{\"cancelled\": \"by request\"}");
    struct fota_command row;
    struct pg_conn *c;
    int rc;

    memset(&row, 0, sizeof row);
    rc = fota_store_pg_enter(s, "command_cancel", &c);
    if (rc == 0) {
        c->hot = 1;            /* not a cached table (store.h) */
        rc = FOTA_EAGAIN;
        for (int i = 0; i < FOTA_PG_TRIES && rc == FOTA_EAGAIN; i++)
            rc = cancel_tx(c, device_id, id, text, &row);
        rc = fota_store_pg_leave(c, rc);
    }
    free(text);
    fota_store_command_give(&row, out, rc);
    return rc;
}
