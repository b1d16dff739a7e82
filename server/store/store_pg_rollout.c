/* store_pg_rollout.c - rollouts in the PostgreSQL store
 * (store_sqlite_rollout*.c's statements in PostgreSQL's form): the rollout
 * rows (settings, state, pause, counters), their stages, their members and
 * their progress samples (their census is in store_pg_census.c). Rollouts are
 * not cached (hot: no new catalog generation) and their writes are not
 * durable one by one (synchronous_commit off), as in SQLite. A flush of
 * the engine (rollout_save) is one transaction of three statements over
 * unnest() arrays whatever the number of rollouts, stages and members;
 * a row named twice in one batch takes its last values, as one statement
 * per row in order would leave it. The PostgreSQL store never imports
 * DATA/jobs*.json (store_sqlite_rollout_import.c): its rows come from
 * `fotad migrate`. */
#include <stdlib.h>
#include <string.h>
#include "clock.h"
#include "store_pg_int.h"
#include "xmalloc.h"

#define N_COUNTS 13

static void counts_of(const struct fota_rollout_counts *n, int64_t v[N_COUNTS])
{
    const int64_t x[N_COUNTS] = { n->total, n->skipped, n->waiting, n->queued, n->active,
                                  n->delivered, n->acked, n->succeeded, n->failed,
                                  n->timed_out, n->deleted, n->cancelled, n->verifying };
    memcpy(v, x, sizeof x);
}

static void col_counts(const PGresult *r, int row, int col, struct fota_rollout_counts *n)
{
    int64_t *v[N_COUNTS] = { &n->total, &n->skipped, &n->waiting, &n->queued, &n->active,
                             &n->delivered, &n->acked, &n->succeeded, &n->failed,
                             &n->timed_out, &n->deleted, &n->cancelled, &n->verifying };
    for (int i = 0; i < N_COUNTS; i++)
        *v[i] = fota_store_pg_col_int(r, row, col + i);
}

/* A mark (ms since created): NULL before it happened, < 0 in C. */
static void param_mark(struct pg_params *p, double ms)
{
    if (ms < 0)
        fota_store_pg_param_null(p, FOTA_PG_FLOAT8);
    else
        fota_store_pg_param_double(p, ms);
}

static void array_mark(struct pg_array_param *a, double ms)
{
    if (ms < 0)
        fota_store_pg_array_null(a);
    else
        fota_store_pg_array_double(a, ms);
}

static double col_mark(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? -1 : fota_store_pg_col_double(r, row, col);
}

static void read_rollout(const PGresult *r, int row, void *out)
{
    struct fota_rollout_row *x = out;

    memset(x, 0, sizeof *x);
    x->id = fota_store_pg_col_int(r, row, 0);
    x->product_id = fota_store_pg_col_int(r, row, 1);
    fota_store_pg_col_text(r, row, 2, x->version, sizeof x->version);
    fota_store_pg_col_text(r, row, 3, x->filter, sizeof x->filter);
    x->reboot = (int)fota_store_pg_col_int(r, row, 4);
    x->window = fota_store_pg_col_int(r, row, 5);
    x->timeout_s = fota_store_pg_col_int(r, row, 6);
    x->max_failures = fota_store_pg_col_int(r, row, 7);
    x->state = (int)fota_store_pg_col_int(r, row, 8);
    x->halted = (int)fota_store_pg_col_int(r, row, 9);
    col_counts(r, row, 10, &x->n);
    x->ms_delivered = col_mark(r, row, 23);
    x->ms_acked = col_mark(r, row, 24);
    x->ms_finished = col_mark(r, row, 25);
    x->created = fota_store_pg_col_int(r, row, 26);
    x->updated = fota_store_pg_col_int(r, row, 27);
    x->health_s = fota_store_pg_col_int(r, row, 28);
    x->max_reboots = fota_store_pg_col_int(r, row, 29);
    x->hours_from = (int)fota_store_pg_col_int(r, row, 30);
    x->hours_to = (int)fota_store_pg_col_int(r, row, 31);
    x->seed = fota_store_pg_col_int(r, row, 32);
    x->rollback_of = fota_store_pg_col_int(r, row, 33);
    x->paused_at = fota_store_pg_col_int(r, row, 34);
    fota_store_pg_col_text(r, row, 35, x->pause_reason, sizeof x->pause_reason);
    x->stage = (int)fota_store_pg_col_int(r, row, 36);
}

/* A stage row (FOTA_SQL_STAGE_COLS) into its rollout's row r. */
static void read_stage(const PGresult *res, int row, struct fota_rollout_row *r)
{
    int64_t idx = fota_store_pg_col_int(res, row, 1);
    struct fota_rollout_stage *g;

    if (idx < 0 || idx >= FOTA_ROLLOUT_STAGES_MAX)
        return;
    g = &r->stages[idx];
    g->kind = (int)fota_store_pg_col_int(res, row, 2);
    g->value = fota_store_pg_col_int(res, row, 3);
    g->success = (int)fota_store_pg_col_int(res, row, 4);
    g->max_failures = fota_store_pg_col_int(res, row, 5);
    g->approval = (int)fota_store_pg_col_int(res, row, 6);
    g->fail_base = fota_store_pg_col_int(res, row, 7);
    g->total = fota_store_pg_col_int(res, row, 8);
    g->succeeded = fota_store_pg_col_int(res, row, 9);
    g->failed = fota_store_pg_col_int(res, row, 10);
    g->timed_out = fota_store_pg_col_int(res, row, 11);
    g->deleted = fota_store_pg_col_int(res, row, 12);
    g->cancelled = fota_store_pg_col_int(res, row, 13);
    g->started = fota_store_pg_col_int(res, row, 14);
    g->approved = fota_store_pg_col_int(res, row, 15);
    if (idx + 1 > r->nstages)
        r->nstages = (int)idx + 1;
}

static int cmp_row_id(const void *a, const void *b)
{
    int64_t x = ((const struct fota_rollout_row *)a)->id;
    int64_t y = ((const struct fota_rollout_row *)b)->id;
    return x < y ? 1 : x > y ? -1 : 0;   /* rows are newest (highest id) first */
}

/* Reads the stages of the n rows (newest first, as rollout_list returns
 * them) with one statement over their id range, each put in its row. */
static int read_stages(struct pg_conn *c, struct fota_rollout_row *rows, size_t n)
{
    struct pg_params p = { 0 };
    PGresult *r;
    int rc;

    if (n == 0)
        return 0;
    fota_store_pg_param_int(&p, rows[n - 1].id);
    fota_store_pg_param_int(&p, rows[0].id);
    r = fota_store_pg_run(c, PQ_RO_STAGES, FOTA_SQL_STAGE_COLS " WHERE rollout_id >= $1 AND rollout_id <= $2",
                          &p, "rollout stages", &rc);
    if (!r)
        return rc;
    for (int i = 0; i < PQntuples(r); i++) {
        struct fota_rollout_row key = { .id = fota_store_pg_col_int(r, i, 0) };
        struct fota_rollout_row *x = bsearch(&key, rows, n, sizeof *rows, cmp_row_id);
        if (x)
            read_stage(r, i, x);
    }
    PQclear(r);
    return 0;
}

/* ---- create -------------------------------------------------------------- */

static const char CREATE_SQL[] =
    "INSERT INTO rollouts (product_id, version, filter, reboot, window_size, timeout_s,"
    " max_failures, state, halted, n_total, n_skipped, n_waiting, n_queued, n_active,"
    " n_delivered, n_acked, n_succeeded, n_failed, n_timed_out, n_deleted, n_cancelled,"
    " n_verifying, ms_delivered, ms_acked, ms_finished, created, updated, health_s,"
    " max_reboots, hours_from, hours_to, seed, rollback_of, paused_at, pause_reason, stage)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,"
    " $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34,"
    " $35, $36) RETURNING id";

enum { G_ROLLOUT, G_IDX, G_FAIL_BASE, G_TOTAL, G_SUCCEEDED, G_FAILED, G_TIMED_OUT, G_DELETED,
       G_CANCELLED, G_STARTED, G_APPROVED, G_KIND, G_VALUE, G_SUCCESS, G_MAX_FAILURES,
       G_APPROVAL, G_NCOL };

/* The stage rows of rs[0..nr), columns G_ROLLOUT .. G_APPROVED (and with
 * settings, the rest) into col (each initialised here, freed by the caller). */
static void stage_arrays(struct pg_array_param *col, int settings, const struct fota_rollout_row *rs,
                         size_t nr)
{
    int ncol = settings ? G_NCOL : G_KIND;

    for (int k = 0; k < ncol; k++)
        fota_store_pg_array_init(&col[k], FOTA_PG_INT8_ARRAY);
    for (size_t j = 0; j < nr; j++) {
        const struct fota_rollout_row *r = &rs[j];
        for (int i = 0; i < r->nstages && i < FOTA_ROLLOUT_STAGES_MAX; i++) {
            const struct fota_rollout_stage *g = &r->stages[i];
            const int64_t v[G_NCOL] = {
                [G_ROLLOUT] = r->id,           [G_IDX] = i,
                [G_FAIL_BASE] = g->fail_base,  [G_TOTAL] = g->total,
                [G_SUCCEEDED] = g->succeeded,  [G_FAILED] = g->failed,
                [G_TIMED_OUT] = g->timed_out,  [G_DELETED] = g->deleted,
                [G_CANCELLED] = g->cancelled,  [G_STARTED] = g->started,
                [G_APPROVED] = g->approved,    [G_KIND] = g->kind,
                [G_VALUE] = g->value,          [G_SUCCESS] = g->success,
                [G_MAX_FAILURES] = g->max_failures, [G_APPROVAL] = g->approval,
            };
            for (int k = 0; k < ncol; k++)
                fota_store_pg_array_int(&col[k], v[k]);
        }
    }
}

static int create_tx(struct pg_conn *c, const struct fota_rollout_row *r, int64_t now,
                     int64_t *id)
{
    struct pg_array_param col[G_NCOL];
    struct fota_rollout_row copy;
    struct pg_params p = { 0 };
    int64_t v[N_COUNTS];
    int rc;

    if ((rc = fota_store_pg_begin(c, 0)) != 0)
        return rc;
    fota_store_pg_param_int(&p, r->product_id);
    PG_PARAM_STR(&p, r->version);
    fota_store_pg_param_text(&p, r->filter[0] ? r->filter : "{}", sizeof r->filter);
    fota_store_pg_param_int(&p, r->reboot);
    fota_store_pg_param_int(&p, r->window);
    fota_store_pg_param_int(&p, r->timeout_s);
    fota_store_pg_param_int(&p, r->max_failures);
    fota_store_pg_param_int(&p, r->state ? r->state : FOTA_ROLLOUT_RUNNING);
    fota_store_pg_param_int(&p, r->halted);
    counts_of(&r->n, v);
    for (int i = 0; i < N_COUNTS; i++)
        fota_store_pg_param_int(&p, v[i]);
    param_mark(&p, r->ms_delivered);
    param_mark(&p, r->ms_acked);
    param_mark(&p, r->ms_finished);
    fota_store_pg_param_int(&p, r->created ? r->created : now);
    fota_store_pg_param_int(&p, now);
    fota_store_pg_param_int(&p, r->health_s);
    fota_store_pg_param_int(&p, r->max_reboots);
    fota_store_pg_param_int(&p, r->hours_from);
    fota_store_pg_param_int(&p, r->hours_to);
    fota_store_pg_param_int(&p, r->seed);
    fota_store_pg_param_int(&p, r->rollback_of);
    fota_store_pg_param_int(&p, r->paused_at);
    PG_PARAM_STR(&p, r->pause_reason);
    fota_store_pg_param_int(&p, r->stage);
    rc = fota_store_pg_exec(c, PQ_RO_CREATE, CREATE_SQL, &p, "rollout_create", id);
    if (rc == 0 && r->nstages > 0) {
        copy = *r;
        copy.id = *id;
        stage_arrays(col, 1, &copy, 1);
        memset(&p, 0, sizeof p);
        for (int k = 0; k < G_NCOL; k++)
            fota_store_pg_param_array(&p, &col[k]);
        rc = fota_store_pg_exec(
            c, PQ_RO_CREATE_STAGES,
            "INSERT INTO rollout_stages (rollout_id, idx, fail_base, n_total, n_succeeded,"
            " n_failed, n_timed_out, n_deleted, n_cancelled, started, approved, kind, value,"
            " success, max_failures, approval) SELECT * FROM unnest($1::int8[], $2::int8[],"
            " $3::int8[], $4::int8[], $5::int8[], $6::int8[], $7::int8[], $8::int8[],"
            " $9::int8[], $10::int8[], $11::int8[], $12::int8[], $13::int8[], $14::int8[],"
            " $15::int8[], $16::int8[])",
            &p, "rollout_create", NULL);
        for (int k = 0; k < G_NCOL; k++)
            fota_store_pg_array_free(&col[k]);
    }
    return fota_store_pg_finish(c, rc);
}

int fota_store_pg_rollout_create(struct fota_store *s, struct fota_rollout_row *r)
{
    int64_t now = fota_clock_wall_s(), id = 0;
    struct pg_conn *c;
    int rc;

    if (!r->version[0] || r->product_id <= 0 || r->nstages < 0 ||
        r->nstages > FOTA_ROLLOUT_STAGES_MAX)
        return FOTA_EINVAL;
    if ((rc = fota_store_pg_enter(s, "rollout_create", &c)) != 0)
        return rc;
    c->hot = 1;   /* not a cached table (store.h) */
    rc = FOTA_EAGAIN;
    for (int i = 0; i < FOTA_PG_TRIES && rc == FOTA_EAGAIN; i++)
        rc = create_tx(c, r, now, &id);
    if (rc == 0) {
        r->id = id;
        r->created = r->created ? r->created : now;
        r->updated = now;
    }
    return fota_store_pg_leave(c, rc);
}

/* ---- save ---------------------------------------------------------------- */

enum { M_ROLLOUT, M_DEVICE, M_STAGE, M_STATE, M_COMMAND, M_NONCE, M_PUSHED, M_UPDATED, M_REASON,
       M_BOOTS, M_REPORTED, M_PRE, M_NCOL };

/* The members, each key once: its last row, with the version of its first
 * (pre_version is written by the insert only, left out of DO UPDATE). */
static const char SAVE_MEMBERS_SQL[] =
    "INSERT INTO rollout_members (rollout_id, device_id, stage, state, command_id, nonce,"
    " pushed, updated, reason, boots, reported, pre_version)"
    " SELECT r, d, stage, state, cmd, nonce, pushed, updated, reason, boots, reported, pre"
    " FROM (SELECT DISTINCT ON (r, d) r, d, stage, state, cmd, nonce, pushed, updated, reason,"
    " boots, reported, first_value(pre) OVER (PARTITION BY r, d ORDER BY o) AS pre"
    " FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::int8[], $6::int8[],"
    " $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::text[])"
    " WITH ORDINALITY AS u(r, d, stage, state, cmd, nonce, pushed, updated, reason, boots,"
    " reported, pre, o) ORDER BY r, d, o DESC) AS m"
    " ON CONFLICT (rollout_id, device_id) DO UPDATE SET"
    " stage = excluded.stage, state = excluded.state, command_id = excluded.command_id,"
    " nonce = excluded.nonce, pushed = excluded.pushed, updated = excluded.updated,"
    " reason = excluded.reason, boots = excluded.boots, reported = excluded.reported";

/* The same when each key is in the batch once (the engine's flushes): the
 * rows as given, without the sort and the window over them. */
static const char SAVE_MEMBERS_ONCE_SQL[] =
    "INSERT INTO rollout_members (rollout_id, device_id, stage, state, command_id, nonce,"
    " pushed, updated, reason, boots, reported, pre_version)"
    " SELECT * FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::int8[],"
    " $6::int8[], $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::text[])"
    " ON CONFLICT (rollout_id, device_id) DO UPDATE SET"
    " stage = excluded.stage, state = excluded.state, command_id = excluded.command_id,"
    " nonce = excluded.nonce, pushed = excluded.pushed, updated = excluded.updated,"
    " reason = excluded.reason, boots = excluded.boots, reported = excluded.reported";

enum { S_ID, S_STATE, S_HALTED, S_COUNTS, S_MS_DELIVERED = S_COUNTS + N_COUNTS, S_MS_ACKED,
       S_MS_FINISHED, S_PAUSED_AT, S_PAUSE_REASON, S_STAGE, S_NCOL };

/* Unknown ids match no row: skipped. */
static const char SAVE_ROLLOUTS_SQL[] =
    "UPDATE rollouts SET state = u.state, halted = u.halted, n_total = u.n_total,"
    " n_skipped = u.n_skipped, n_waiting = u.n_waiting, n_queued = u.n_queued,"
    " n_active = u.n_active, n_delivered = u.n_delivered, n_acked = u.n_acked,"
    " n_succeeded = u.n_succeeded, n_failed = u.n_failed, n_timed_out = u.n_timed_out,"
    " n_deleted = u.n_deleted, n_cancelled = u.n_cancelled, n_verifying = u.n_verifying,"
    " ms_delivered = u.ms_delivered, ms_acked = u.ms_acked, ms_finished = u.ms_finished,"
    " updated = $23, paused_at = u.paused_at, pause_reason = u.pause_reason, stage = u.stage"
    " FROM (SELECT DISTINCT ON (id) * FROM unnest($1::int8[], $2::int8[], $3::int8[],"
    " $4::int8[], $5::int8[], $6::int8[], $7::int8[], $8::int8[], $9::int8[], $10::int8[],"
    " $11::int8[], $12::int8[], $13::int8[], $14::int8[], $15::int8[], $16::int8[],"
    " $17::float8[], $18::float8[], $19::float8[], $20::int8[], $21::text[], $22::int8[])"
    " WITH ORDINALITY AS u(id, state, halted, n_total, n_skipped, n_waiting, n_queued,"
    " n_active, n_delivered, n_acked, n_succeeded, n_failed, n_timed_out, n_deleted,"
    " n_cancelled, n_verifying, ms_delivered, ms_acked, ms_finished, paused_at, pause_reason,"
    " stage, o) ORDER BY id, o DESC) AS u WHERE rollouts.id = u.id";

static const char SAVE_STAGES_SQL[] =
    "UPDATE rollout_stages SET fail_base = u.fail_base, n_total = u.n_total,"
    " n_succeeded = u.n_succeeded, n_failed = u.n_failed, n_timed_out = u.n_timed_out,"
    " n_deleted = u.n_deleted, n_cancelled = u.n_cancelled, started = u.started,"
    " approved = u.approved"
    " FROM (SELECT DISTINCT ON (r, i) * FROM unnest($1::int8[], $2::int8[], $3::int8[],"
    " $4::int8[], $5::int8[], $6::int8[], $7::int8[], $8::int8[], $9::int8[], $10::int8[],"
    " $11::int8[]) WITH ORDINALITY AS u(r, i, fail_base, n_total, n_succeeded, n_failed,"
    " n_timed_out, n_deleted, n_cancelled, started, approved, o) ORDER BY r, i, o DESC) AS u"
    " WHERE rollout_stages.rollout_id = u.r AND rollout_stages.idx = u.i";

/* The batch's arrays, built once and bound again by each try. */
struct save_batch {
    struct pg_array_param m[M_NCOL], r[S_NCOL], g[G_NCOL];
    size_t nm, nr, ng;
    int64_t now;
    int once;                          /* each member key in it once */
};

static int cmp_member_key(const void *a, const void *b)
{
    const struct fota_rollout_member_row *x = *(const struct fota_rollout_member_row *const *)a;
    const struct fota_rollout_member_row *y = *(const struct fota_rollout_member_row *const *)b;

    if (x->rollout_id != y->rollout_id)
        return (x->rollout_id > y->rollout_id) - (x->rollout_id < y->rollout_id);
    return (x->device_id > y->device_id) - (x->device_id < y->device_id);
}

/* 1 when no (rollout, device) is in ms[0..n) twice. */
static int members_once(const struct fota_rollout_member_row *ms, size_t n)
{
    const struct fota_rollout_member_row **v = fota_xreallocarray(NULL, n ? n : 1, sizeof *v);
    int once = 1;

    for (size_t i = 0; i < n; i++)
        v[i] = &ms[i];
    qsort(v, n, sizeof *v, cmp_member_key);
    for (size_t i = 1; i < n && once; i++)
        once = cmp_member_key(&v[i - 1], &v[i]) != 0;
    free(v);
    return once;
}

static void save_batch_init(struct save_batch *b, const struct fota_rollout_row *rs, size_t nr,
                            const struct fota_rollout_member_row *ms, size_t nm, int64_t now)
{
    int64_t v[N_COUNTS];

    memset(b, 0, sizeof *b);
    b->nm = nm;
    b->nr = nr;
    b->now = now;
    b->once = members_once(ms, nm);
    for (int k = 0; k < M_NCOL; k++)
        fota_store_pg_array_init(&b->m[k], k == M_PRE ? FOTA_PG_TEXT_ARRAY : FOTA_PG_INT8_ARRAY);
    for (size_t i = 0; i < nm; i++) {
        const struct fota_rollout_member_row *x = &ms[i];
        fota_store_pg_array_int(&b->m[M_ROLLOUT], x->rollout_id);
        fota_store_pg_array_int(&b->m[M_DEVICE], x->device_id);
        fota_store_pg_array_int(&b->m[M_STAGE], x->stage);
        fota_store_pg_array_int(&b->m[M_STATE], x->state);
        fota_store_pg_array_int(&b->m[M_COMMAND], x->command_id);
        fota_store_pg_array_int(&b->m[M_NONCE], x->nonce);
        fota_store_pg_array_int(&b->m[M_PUSHED], x->pushed);
        fota_store_pg_array_int(&b->m[M_UPDATED], x->updated ? x->updated : now);
        fota_store_pg_array_int(&b->m[M_REASON], x->reason);
        fota_store_pg_array_int(&b->m[M_BOOTS], x->boots);
        fota_store_pg_array_int(&b->m[M_REPORTED], x->reported);
        PG_ARRAY_STR(&b->m[M_PRE], x->pre_version);
    }
    for (int k = 0; k < S_NCOL; k++)
        fota_store_pg_array_init(&b->r[k], k == S_PAUSE_REASON ? FOTA_PG_TEXT_ARRAY
                                           : k >= S_MS_DELIVERED && k <= S_MS_FINISHED
                                               ? FOTA_PG_FLOAT8_ARRAY
                                               : FOTA_PG_INT8_ARRAY);
    for (size_t i = 0; i < nr; i++) {
        const struct fota_rollout_row *x = &rs[i];
        fota_store_pg_array_int(&b->r[S_ID], x->id);
        fota_store_pg_array_int(&b->r[S_STATE], x->state);
        fota_store_pg_array_int(&b->r[S_HALTED], x->halted);
        counts_of(&x->n, v);
        for (int k = 0; k < N_COUNTS; k++)
            fota_store_pg_array_int(&b->r[S_COUNTS + k], v[k]);
        array_mark(&b->r[S_MS_DELIVERED], x->ms_delivered);
        array_mark(&b->r[S_MS_ACKED], x->ms_acked);
        array_mark(&b->r[S_MS_FINISHED], x->ms_finished);
        fota_store_pg_array_int(&b->r[S_PAUSED_AT], x->paused_at);
        PG_ARRAY_STR(&b->r[S_PAUSE_REASON], x->pause_reason);
        fota_store_pg_array_int(&b->r[S_STAGE], x->stage);
        for (int k = 0; k < x->nstages && k < FOTA_ROLLOUT_STAGES_MAX; k++)
            b->ng++;
    }
    stage_arrays(b->g, 0, rs, nr);
}

static void save_batch_free(struct save_batch *b)
{
    for (int k = 0; k < M_NCOL; k++)
        fota_store_pg_array_free(&b->m[k]);
    for (int k = 0; k < S_NCOL; k++)
        fota_store_pg_array_free(&b->r[k]);
    for (int k = 0; k < G_KIND; k++)
        fota_store_pg_array_free(&b->g[k]);
}

static int save_tx(struct pg_conn *c, struct save_batch *b)
{
    struct pg_params p;
    int rc;

    if ((rc = fota_store_pg_begin(c, 0)) != 0)
        return rc;
    if (b->nm) {
        memset(&p, 0, sizeof p);
        for (int k = 0; k < M_NCOL; k++)
            fota_store_pg_param_array(&p, &b->m[k]);
        rc = b->once ? fota_store_pg_exec(c, PQ_RO_SAVE_MEMBERS_ONCE, SAVE_MEMBERS_ONCE_SQL, &p,
                                          "rollout_save members", NULL)
                     : fota_store_pg_exec(c, PQ_RO_SAVE_MEMBERS, SAVE_MEMBERS_SQL, &p,
                                          "rollout_save members", NULL);
    }
    if (rc == 0 && b->nr) {
        memset(&p, 0, sizeof p);
        for (int k = 0; k < S_NCOL; k++)
            fota_store_pg_param_array(&p, &b->r[k]);
        fota_store_pg_param_int(&p, b->now);
        rc = fota_store_pg_exec(c, PQ_RO_SAVE_ROLLOUTS, SAVE_ROLLOUTS_SQL, &p, "rollout_save",
                                NULL);
    }
    if (rc == 0 && b->ng) {
        memset(&p, 0, sizeof p);
        for (int k = 0; k < G_KIND; k++)
            fota_store_pg_param_array(&p, &b->g[k]);
        rc = fota_store_pg_exec(c, PQ_RO_SAVE_STAGES, SAVE_STAGES_SQL, &p,
                                "rollout stages write", NULL);
    }
    return fota_store_pg_finish(c, rc);
}

int fota_store_pg_rollout_save(struct fota_store *s, const struct fota_rollout_row *rs, size_t nr,
                               const struct fota_rollout_member_row *ms, size_t nm)
{
    struct save_batch b;
    struct pg_conn *c;
    int rc;

    if (nr == 0 && nm == 0)
        return 0;
    if ((rc = fota_store_pg_enter(s, "rollout_save", &c)) != 0)
        return rc;
    c->hot = 1;
    save_batch_init(&b, rs, nr, ms, nm, fota_clock_wall_s());
    rc = FOTA_EAGAIN;
    for (int i = 0; i < FOTA_PG_TRIES && rc == FOTA_EAGAIN; i++)
        rc = save_tx(c, &b);
    save_batch_free(&b);
    return fota_store_pg_leave(c, rc);
}

/* ---- reads --------------------------------------------------------------- */

int fota_store_pg_rollout_get(struct fota_store *s, int64_t id, struct fota_rollout_row *out)
{
    struct pg_params p = { 0 };
    struct pg_conn *c;
    int rc;

    if ((rc = fota_store_pg_enter(s, "rollout_get", &c)) != 0)
        return rc;
    fota_store_pg_param_int(&p, id);
    rc = fota_store_pg_one(c, PQ_RO_GET, FOTA_SQL_ROLLOUT_COLS " WHERE id = $1", &p, read_rollout, out,
                           "rollout_get");
    if (rc == 0)
        rc = read_stages(c, out, 1);
    return fota_store_pg_leave(c, rc);
}

int fota_store_pg_rollout_list(struct fota_store *s, int64_t product_id, int state,
                               struct fota_rollout_row **out, size_t *n)
{
    struct pg_params p = { 0 };
    struct pg_conn *c;
    int rc;

    *out = NULL;
    *n = 0;
    if ((rc = fota_store_pg_enter(s, "rollout_list", &c)) != 0)
        return rc;
    fota_store_pg_param_int(&p, product_id);
    fota_store_pg_param_int(&p, state);
    rc = fota_store_pg_collect(c, PQ_RO_LIST,
                               FOTA_SQL_ROLLOUT_COLS " WHERE ($1 = 0 OR product_id = $1)"
                               " AND ($2 = 0 OR state = $2) ORDER BY id DESC",
                               &p, read_rollout, sizeof **out, (void **)out, n, "rollout_list");
    if (rc == 0 && (rc = read_stages(c, *out, *n)) != 0) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return fota_store_pg_leave(c, rc);
}

static void read_member(const PGresult *r, int row, void *out)
{
    struct fota_rollout_member_row *m = out;

    memset(m, 0, sizeof *m);
    m->rollout_id = fota_store_pg_col_int(r, row, 0);
    m->device_id = fota_store_pg_col_int(r, row, 1);
    m->stage = (int)fota_store_pg_col_int(r, row, 2);
    m->state = (int)fota_store_pg_col_int(r, row, 3);
    m->command_id = fota_store_pg_col_int(r, row, 4);
    m->nonce = fota_store_pg_col_int(r, row, 5);
    m->pushed = fota_store_pg_col_int(r, row, 6);
    m->updated = fota_store_pg_col_int(r, row, 7);
    m->reason = (int)fota_store_pg_col_int(r, row, 8);
    m->boots = (int)fota_store_pg_col_int(r, row, 9);
    m->reported = fota_store_pg_col_int(r, row, 10);
    fota_store_pg_col_text(r, row, 11, m->pre_version, sizeof m->pre_version);
}

int fota_store_pg_rollout_members(struct fota_store *s, int64_t rollout_id, int64_t after_device,
                                  int state, size_t limit, struct fota_rollout_member_row **out,
                                  size_t *n)
{
    struct pg_params p = { 0 };
    struct pg_conn *c;
    int rc;

    *out = NULL;
    *n = 0;
    if ((rc = fota_store_pg_enter(s, "rollout_members", &c)) != 0)
        return rc;
    fota_store_pg_param_int(&p, rollout_id);
    fota_store_pg_param_int(&p, after_device);
    fota_store_pg_param_int(&p, state);
    if (limit)   /* LIMIT NULL: all (SQLite's LIMIT -1) */
        fota_store_pg_param_int(&p, (int64_t)limit);
    else
        fota_store_pg_param_null(&p, FOTA_PG_INT8);
    rc = fota_store_pg_collect(c, PQ_RO_MEMBERS,
                               "SELECT rollout_id, device_id, stage, state, command_id, nonce,"
                               " pushed, updated, reason, boots, reported, pre_version"
                               " FROM rollout_members WHERE rollout_id = $1 AND device_id > $2"
                               " AND ($3 = 0 OR state = $3) ORDER BY device_id LIMIT $4",
                               &p, read_member, sizeof **out, (void **)out, n,
                               "rollout_members");
    return fota_store_pg_leave(c, rc);
}

/* ---- samples ------------------------------------------------------------- */

/* A sample at the same second as another of its rollout replaces it (the
 * batch's last one wins). */
static const char SAMPLE_ADD_SQL[] =
    "INSERT INTO rollout_samples (rollout_id, t, " FOTA_SQL_SAMPLE_COUNTS ")"
    " SELECT r, t, " FOTA_SQL_SAMPLE_COUNTS " FROM (SELECT DISTINCT ON (r, t) * FROM unnest($1::int8[],"
    " $2::int8[], $3::int8[], $4::int8[], $5::int8[], $6::int8[], $7::int8[], $8::int8[],"
    " $9::int8[], $10::int8[], $11::int8[], $12::int8[], $13::int8[], $14::int8[], $15::int8[])"
    " WITH ORDINALITY AS u(r, t, " FOTA_SQL_SAMPLE_COUNTS ", o) ORDER BY r, t, o DESC) AS u"
    FOTA_SQL_SAMPLE_UPSERT;

/* Halves the samples of rollout id while it holds more than the bound:
 * deletes those at odd positions (0 = the oldest), the newest kept. Each
 * round is one statement that deletes nothing once the rollout is within
 * the bound. */
static int thin(struct pg_conn *c, int64_t id)
{
    struct pg_params p = { 0 };
    int rc = 0;

    fota_store_pg_param_int(&p, id);
    fota_store_pg_param_int(&p, FOTA_ROLLOUT_SAMPLES_MAX);
    for (int round = 0; rc == 0 && round < 32; round++) {
        int64_t before = c->changes;
        rc = fota_store_pg_exec(c, PQ_RO_THIN,
                                "DELETE FROM rollout_samples WHERE rollout_id = $1 AND t IN"
                                " (SELECT t FROM (SELECT t, ROW_NUMBER() OVER (ORDER BY t) - 1"
                                " AS pos, COUNT(*) OVER () AS n FROM rollout_samples"
                                " WHERE rollout_id = $1) AS s"
                                " WHERE n > $2 AND pos % 2 = 1 AND pos < n - 1)",
                                &p, "rollout samples thin", NULL);
        if (c->changes == before)
            break;
    }
    return rc;
}

static int sample_tx(struct pg_conn *c, struct pg_array_param *col,
                     const struct fota_rollout_sample *rows, size_t n)
{
    struct pg_params p = { 0 };
    int rc;

    if ((rc = fota_store_pg_begin(c, 0)) != 0)
        return rc;
    for (int k = 0; k < 2 + N_COUNTS; k++)
        fota_store_pg_param_array(&p, &col[k]);
    rc = fota_store_pg_exec(c, PQ_RO_SAMPLE_ADD, SAMPLE_ADD_SQL, &p, "rollout_sample_add", NULL);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (i == 0 || rows[i].rollout_id != rows[i - 1].rollout_id)
            rc = thin(c, rows[i].rollout_id);
    return fota_store_pg_finish(c, rc);
}

int fota_store_pg_rollout_sample_add(struct fota_store *s, const struct fota_rollout_sample *rows,
                                     size_t n)
{
    struct pg_array_param col[2 + N_COUNTS];
    struct pg_conn *c;
    int64_t v[N_COUNTS];
    int rc;

    if (n == 0)
        return 0;
    if ((rc = fota_store_pg_enter(s, "rollout_sample_add", &c)) != 0)
        return rc;
    c->hot = 1;
    for (int k = 0; k < 2 + N_COUNTS; k++)
        fota_store_pg_array_init(&col[k], FOTA_PG_INT8_ARRAY);
    for (size_t i = 0; i < n; i++) {
        fota_store_pg_array_int(&col[0], rows[i].rollout_id);
        fota_store_pg_array_int(&col[1], rows[i].t);
        counts_of(&rows[i].n, v);
        for (int k = 0; k < N_COUNTS; k++)
            fota_store_pg_array_int(&col[2 + k], v[k]);
    }
    rc = FOTA_EAGAIN;
    for (int i = 0; i < FOTA_PG_TRIES && rc == FOTA_EAGAIN; i++)
        rc = sample_tx(c, col, rows, n);
    for (int k = 0; k < 2 + N_COUNTS; k++)
        fota_store_pg_array_free(&col[k]);
    return fota_store_pg_leave(c, rc);
}

static void read_sample(const PGresult *r, int row, void *out)
{
    struct fota_rollout_sample *x = out;

    memset(x, 0, sizeof *x);
    x->rollout_id = fota_store_pg_col_int(r, row, 0);
    x->t = fota_store_pg_col_int(r, row, 1);
    col_counts(r, row, 2, &x->n);
}

int fota_store_pg_rollout_samples(struct fota_store *s, int64_t rollout_id,
                                  struct fota_rollout_sample **out, size_t *n)
{
    struct pg_params p = { 0 };
    struct pg_conn *c;
    int rc;

    *out = NULL;
    *n = 0;
    if ((rc = fota_store_pg_enter(s, "rollout_samples", &c)) != 0)
        return rc;
    fota_store_pg_param_int(&p, rollout_id);
    rc = fota_store_pg_collect(c, PQ_RO_SAMPLES,
                               "SELECT rollout_id, t, " FOTA_SQL_SAMPLE_COUNTS " FROM rollout_samples"
                               " WHERE rollout_id = $1 ORDER BY t",
                               &p, read_sample, sizeof **out, (void **)out, n,
                               "rollout_samples");
    return fota_store_pg_leave(c, rc);
}

