/* rollout.c - the rollout module: members' states and counters, the hub
 * subscribers that move them (a device online, its D4 reply and D7 report,
 * its deletion; the vetoes on deleting a device or release still in use),
 * the batched writes (every 200 ms: the new command rows grouped by state,
 * then one command_update_batch and one rollout_save for all dirty members
 * of all rollouts) and the module's start and stop. The writes are jobs on
 * the store lane `rollout` (store_exec.h), built from copies on the main
 * loop, which never waits for them: a member whose command row a job
 * writes is row_pending until the job's continuation brings its id. Offline members and
 * online ones take one path: a member waits in its rollout until its stage
 * has started, its device is connected and the window has room. */
#include "rollout_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "clock.h"
#include "cluster.h"
#include "devchan.h"
#include "fota_str.h"
#include "hub.h"
#include "keys.h"
#include "log.h"
#include "loop.h"
#include "xmalloc.h"

/* 1 for the states of a pushed member that has or will have a command row. */
static int pushed_state(int st)
{
    return (st >= FOTA_RM_DELIVERED && st <= FOTA_RM_TIMEOUT) || st == FOTA_RM_VERIFYING;
}

int64_t fota_rollout_now_s(const struct fota_rollout *r)
{
    return (fota_clock_mono_ms() - r->t0_ms) / 1000;
}

void fota_rollout_act_soon(struct fota_rollouts *ro)
{
    event_active(ro->soon, EV_TIMEOUT, 0);
}

double fota_rollout_since_ms(const struct fota_rollout *r)
{
    return (double)(fota_clock_mono_ms() - r->t0_ms);
}

struct fota_rollout *fota_rollout_new(struct fota_rollouts *ro)
{
    struct fota_rollout *r = fota_xcalloc(1, sizeof *r);
    r->ro = ro;
    r->t0_ms = fota_clock_mono_ms();
    r->row.ms_delivered = r->row.ms_acked = r->row.ms_finished = -1;
    r->row.max_failures = -1;
    r->row.hours_from = r->row.hours_to = FOTA_ROLLOUT_ANY_HOUR;
    r->open = 1;
    return r;
}

void fota_rollout_free(struct fota_rollout *r)
{
    if (!r)
        return;
    free(r->m);
    free(r->reboots);
    free(r->ready);
    free(r->upgrade.text);
    free(r->reboot.text);
    free(r->pre);
    json_decref(r->ok_result);
    free(r);
}

void fota_rollout_set_state(struct fota_rollout *r, struct fota_rollout_member *m, int st)
{
    m->state = (uint8_t)st;
    if (!m->dirty)
        r->ndirty++;
    /* Its command row too (2: only the member row, see insert_rows). A pull
     * member's row moves with its device (the arduino module writes it),
     * except at the ends the rollout decides: a timeout, a cancel. */
    if (r->pull && st != FOTA_RM_TIMEOUT && st != FOTA_RM_CANCELLED)
        m->dirty = m->dirty == 1 ? 1 : 2;
    else
        m->dirty = 1;
}

void fota_rollout_set_state_member(struct fota_rollout *r, struct fota_rollout_member *m, int st)
{
    m->state = (uint8_t)st;
    if (!m->dirty)
        r->ndirty++;
    m->dirty = m->dirty == 1 ? 1 : 2;
}

void fota_rollout_marks(struct fota_rollout *r)
{
    struct fota_rollout_row *w = &r->row;
    int64_t n = (int64_t)r->n;
    if (w->ms_delivered < 0 && w->n.delivered == n)
        w->ms_delivered = fota_rollout_since_ms(r);
    if (w->ms_acked < 0 && w->n.acked == n)
        w->ms_acked = fota_rollout_since_ms(r);
    if (w->ms_finished < 0 && fota_rollout_ended(r) == n) {
        w->ms_finished = fota_rollout_since_ms(r);
        w->state = w->state == FOTA_ROLLOUT_CANCELLING ? FOTA_ROLLOUT_CANCELLED
                                                       : FOTA_ROLLOUT_FINISHED;
        w->paused_at = 0;
        FOTA_INFO("rollout ended rollout=%lld state=%s succeeded=%lld failed=%lld timed_out=%lld "
                  "ms=%.1f", (long long)w->id,
                  w->state == FOTA_ROLLOUT_FINISHED ? "finished" : "cancelled",
                  (long long)w->n.succeeded, (long long)w->n.failed, (long long)w->n.timed_out,
                  w->ms_finished);
        fota_rollout_sample(r, 1);
    }
}

void fota_rollout_finish_member(struct fota_rollout *r, struct fota_rollout_member *m, int st,
                                int reason)
{
    struct fota_rollout_counts *n = &r->row.n;
    struct fota_rollout_stage *g = &r->row.stages[m->stage];
    if (m->active) {
        m->active = 0;
        n->active--;
    }
    m->remote = 0;
    if (m->state == FOTA_RM_VERIFYING)
        n->verifying--;
    n->succeeded += st == FOTA_RM_DONE;
    n->timed_out += st == FOTA_RM_TIMEOUT;
    n->cancelled += st == FOTA_RM_CANCELLED;
    n->deleted += st == FOTA_RM_DELETED;
    n->failed += st == FOTA_RM_FAILED;
    g->succeeded += st == FOTA_RM_DONE;
    g->timed_out += st == FOTA_RM_TIMEOUT;
    g->cancelled += st == FOTA_RM_CANCELLED;
    g->deleted += st == FOTA_RM_DELETED;
    g->failed += st == FOTA_RM_FAILED;
    m->reason = (uint8_t)reason;
    if (m->state == FOTA_RM_VERIFYING)
        fota_rollout_set_state_member(r, m, st); /* its command row stays done */
    else
        fota_rollout_set_state(r, m, st);
    if (st == FOTA_RM_DONE || st == FOTA_RM_FAILED || st == FOTA_RM_TIMEOUT ||
        st == FOTA_RM_DELETED)
        fota_rollout_gate(r);
}

void fota_rollout_count_delivered(struct fota_rollout *r, struct fota_rollout_member *m)
{
    struct fota_rollout_counts *n = &r->row.n;
    if (m->state == FOTA_RM_WAITING)
        n->waiting--;
    else if (m->state == FOTA_RM_QUEUED)
        n->queued--;
    else
        return;
    n->delivered++;
    m->pushed_s = (int32_t)((fota_clock_mono_ms() - r->t0_ms) / 1000);
    if (!m->active) { /* one pushed through another instance counts already */
        m->active = 1;
        n->active++;
    }
}

size_t fota_rollout_cancel(struct fota_rollout *r)
{
    size_t k = 0, nback = 0;
    int64_t *back = NULL;
    if (fota_rollout_live(r->row.state))
        r->row.state = FOTA_ROLLOUT_CANCELLING;
    r->row.paused_at = 0;
    for (size_t i = 0; i < r->n; i++) {
        struct fota_rollout_member *m = &r->m[i];
        if (m->state == FOTA_RM_WAITING && m->remote) {
            continue; /* pushed by another instance: it reports, or is not taken */
        } else if (m->state == FOTA_RM_WAITING) {
            r->row.n.waiting--;
        } else if (m->state == FOTA_RM_QUEUED) {
            r->row.n.queued--;
        } else if (r->pull && m->state == FOTA_RM_DELIVERED && m->cmd_id > 0) {
            /* a pull device offered but not downloading yet is called back:
             * its row is cancelled now, before its next check-in takes it */
            if (!back)
                back = fota_xreallocarray(NULL, r->n, sizeof *back);
            back[nback++] = m->cmd_id;
        } else {
            continue;
        }
        fota_rollout_finish_member(r, m, FOTA_RM_CANCELLED, FOTA_RR_NONE);
        k++;
    }
    if (nback)
        fota_rollout_pull_call_back(r, back, nback);
    free(back);
    r->nready = 0;
    fota_rollout_marks(r);
    return k;
}

struct fota_rollout *fota_rollout_find(struct fota_rollouts *ro, int64_t id)
{
    for (struct fota_rollout *r = ro->list; r; r = r->next)
        if (r->row.id == id)
            return r;
    return NULL;
}

size_t fota_rollout_running(struct fota_rollouts *ro)
{
    size_t k = 0;
    for (struct fota_rollout *r = ro->list; r; r = r->next)
        k += fota_rollout_live(r->row.state) || r->row.state == FOTA_ROLLOUT_CANCELLING;
    return k;
}

/* Members are in device id order. */
struct fota_rollout_member *fota_rollout_member_at(struct fota_rollout *r, int64_t device_id)
{
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->m[mid].device_id < device_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < r->n && r->m[lo].device_id == device_id ? &r->m[lo] : NULL;
}

/* The open member of a rollout for device_id (and nonce, when non-zero). */
static struct fota_rollout_member *member_find(struct fota_rollouts *ro, int64_t device_id,
                                               int64_t nonce, struct fota_rollout **out)
{
    for (struct fota_rollout *r = ro->list; r; r = r->next) {
        struct fota_rollout_member *m = fota_rollout_member_at(r, device_id);
        if (!m || !fota_rollout_member_open(m->state) || (nonce && m->nonce != nonce))
            continue;
        *out = r;
        return m;
    }
    return NULL;
}

void fota_rollout_ready_add(struct fota_rollout *r, struct fota_rollout_member *m, int64_t due_ms)
{
    if (r->nready == r->capready) {
        r->capready = r->capready ? r->capready * 2 : 64;
        r->ready = fota_xreallocarray(r->ready, r->capready, sizeof *r->ready);
    }
    r->ready[r->nready++] = (struct fota_rollout_ready){ (uint32_t)(m - r->m), due_ms };
}

/* ---- writes on the lane ------------------------------------------------- */

static int cmd_state(int st);
static json_t *cmd_result(const struct fota_rollout *r, int st);

/* A job of the engine with the lease's epoch at its submission: its
 * writes are fenced by it (fota_store_fence), so a driver that lost lease
 * rollouts meanwhile writes nothing over its successor's rows. */
struct fenced {
    fota_store_job_fn job;
    fota_store_done_fn done;
    void *arg;
    int64_t epoch;
};

static void fenced_job(struct fota_store *st, void *arg)
{
    struct fenced *f = arg;
    int own = f->done == NULL;   /* no continuation: the job's end is f's */
    fota_store_fence(f->epoch);
    f->job(st, f->arg);
    fota_store_fence(0);
    if (own)
        free(f);
}

static void fenced_done(void *arg, int cancelled)
{
    struct fenced *f = arg;
    f->done(f->arg, cancelled);
    free(f);
}

int fota_rollout_submit(struct fota_rollouts *ro, const char *what, fota_store_job_fn job,
                        fota_store_done_fn done, void *arg)
{
    return fota_rollout_submit_on(ro, ro->lane, what, job, done, arg);
}

int fota_rollout_submit_on(struct fota_rollouts *ro, struct fota_store_lane *lane,
                           const char *what, fota_store_job_fn job, fota_store_done_fn done,
                           void *arg)
{
    struct fota_server *srv = ro->srv;
    if (!srv->exec) { /* no executor (a test's server): the job here and now */
        job(srv->store, arg);
        if (done && fota_loop_post(srv->loops[0], done, arg) != 0)
            done(arg, 1);
        return 0;
    }
    struct fenced *f = fota_xmalloc(sizeof *f);
    *f = (struct fenced){ job, done, arg, ro->clustered ? ro->epoch : 0 };
    int rc = fota_store_submit(srv->exec, lane, done ? srv->loops[0] : NULL, fenced_job,
                               done ? fenced_done : NULL, f);
    if (rc < 0) {
        free(f);
        FOTA_ERROR("rollout write not queued what=%s error=%s", what, fota_errname(rc));
    }
    return rc;
}

/* A write's failure: fenced off (lease rollouts lost, another instance
 * drives) is expected and a warning; anything else an error. */
#define WRITE_FAILED(rc, fmt, ...)                                                            \
    do {                                                                                      \
        if ((rc) == FOTA_EPERM)                                                               \
            FOTA_WARN(fmt " reason=\"lease rollouts lost: another instance drives\"",         \
                      __VA_ARGS__);                                                           \
        else                                                                                  \
            FOTA_ERROR(fmt, __VA_ARGS__);                                                     \
    } while (0)

/* New command rows of members of one rollout in one state: one
 * command_create_many. */
struct ins_group {
    struct fota_rollout *r;            /* held (r->jobs) until the continuation; the job
                                          reads none of it */
    int64_t rollout_id;
    struct fota_command t;             /* params owned, result a reference (w->refs) */
    size_t k;
    int64_t *ids, *nonces, *cids;
    uint32_t *idx;                     /* the members, in r->m */
    size_t *row;                       /* each one's member row in the write's ms */
    int before_push;                   /* row_before_push's: a failure leaves no row */
    int rc;
};

/* One job on the lane: new command rows, then command row states, then
 * rollouts and member rows (a transaction each), from copies made on the
 * main loop. Its continuation hands the new rows' ids to their members. */
struct fota_rollout_write {
    struct fota_rollouts *ro;
    struct ins_group *ins;
    size_t nins, capins;
    struct fota_command_set *cs;
    size_t nc, capc;
    struct fota_rollout_member_row *ms;
    size_t nm, capm;
    struct fota_rollout_row *rs;
    size_t nr;
    json_t **refs;                     /* the results cs and ins borrow: a reference each */
    struct fota_rollout **ended;       /* rollouts whose ended row it writes (held: r->jobs) */
    size_t nended;
    size_t nrefs, caprefs;
    int64_t now;
};

static struct fota_rollout_write *write_new(struct fota_rollouts *ro)
{
    struct fota_rollout_write *w = fota_xcalloc(1, sizeof *w);
    w->ro = ro;
    w->now = fota_clock_wall_s();
    return w;
}

/* A reference to v for as long as the write lives (v NULL: none). */
static const json_t *write_ref(struct fota_rollout_write *w, json_t *v)
{
    if (!v)
        return NULL;
    for (size_t i = 0; i < w->nrefs; i++)
        if (w->refs[i] == v)
            return v;
    if (w->nrefs == w->caprefs) {
        w->caprefs = w->caprefs ? w->caprefs * 2 : 8;
        w->refs = fota_xreallocarray(w->refs, w->caprefs, sizeof *w->refs);
    }
    w->refs[w->nrefs++] = json_incref(v);
    return v;
}

static void write_free(struct fota_rollout_write *w)
{
    for (size_t i = 0; i < w->nins; i++) {
        struct ins_group *g = &w->ins[i];
        json_decref(g->t.params);
        free(g->ids);
        free(g->nonces);
        free(g->cids);
        free(g->idx);
        free(g->row);
    }
    for (size_t i = 0; i < w->nrefs; i++)
        json_decref(w->refs[i]);
    free(w->refs);
    free(w->ended);
    free(w->ins);
    free(w->cs);
    free(w->ms);
    free(w->rs);
    free(w);
}

/* m's member row as it stands, appended to the write; m is clean then. */
static size_t write_member(struct fota_rollout_write *w, struct fota_rollout *r,
                           struct fota_rollout_member *m)
{
    if (w->nm == w->capm) {
        w->capm = w->capm ? w->capm * 2 : 16;
        w->ms = fota_xreallocarray(w->ms, w->capm, sizeof *w->ms);
    }
    struct fota_rollout_member_row *x = &w->ms[w->nm];
    memset(x, 0, sizeof *x);
    x->rollout_id = r->row.id;
    x->device_id = m->device_id;
    x->stage = m->stage;
    x->state = m->state;
    x->command_id = m->cmd_id > 0 ? m->cmd_id : 0;
    x->nonce = m->nonce;
    x->pushed = pushed_state(m->state) ? r->row.created + m->pushed_s : 0;
    x->updated = w->now;
    x->reason = m->reason;
    x->boots = m->boots;
    x->reported = m->reported ? r->row.created + m->since_s : 0;
    fota_str_copy(x->pre_version, sizeof x->pre_version,
                  r->pre && m->pre < r->npre ? r->pre[m->pre] : "");
    if (m->dirty) {
        m->dirty = 0;
        r->ndirty--;
    }
    return w->nm++;
}

/* Command rows for the k members ms[] of r, written in state st (a
 * member state), with their member rows; the members are row_pending
 * until the continuation. */
static void write_insert(struct fota_rollout_write *w, struct fota_rollout *r, int st,
                         struct fota_rollout_member **ms, size_t k, int before_push)
{
    if (w->nins == w->capins) {
        w->capins = w->capins ? w->capins * 2 : 8;
        w->ins = fota_xreallocarray(w->ins, w->capins, sizeof *w->ins);
    }
    struct ins_group *g = &w->ins[w->nins++];
    memset(g, 0, sizeof *g);
    g->r = r;
    g->rollout_id = r->row.id;
    r->jobs++;
    g->before_push = before_push;
    fota_str_copy(g->t.action, sizeof g->t.action, "sys_upgrade");
    g->t.params = json_pack("{s:s}", "version", r->row.version);
    g->t.state = before_push ? FOTA_CMD_DELIVERED : cmd_state(st);
    g->t.result = (json_t *)write_ref(w, before_push ? NULL : cmd_result(r, st));
    g->k = k;
    g->ids = fota_xreallocarray(NULL, k, sizeof *g->ids);
    g->nonces = fota_xreallocarray(NULL, k, sizeof *g->nonces);
    g->cids = fota_xcalloc(k, sizeof *g->cids);
    g->idx = fota_xreallocarray(NULL, k, sizeof *g->idx);
    g->row = fota_xreallocarray(NULL, k, sizeof *g->row);
    for (size_t i = 0; i < k; i++) {
        struct fota_rollout_member *m = ms[i];
        g->ids[i] = m->device_id;
        g->nonces[i] = m->nonce;
        g->idx[i] = (uint32_t)(m - r->m);
        g->row[i] = write_member(w, r, m);
        m->row_pending = 1;
    }
}

static void write_job(struct fota_store *st, void *arg)
{
    struct fota_rollout_write *w = arg;
    for (size_t i = 0; i < w->nins; i++) {
        struct ins_group *g = &w->ins[i];
        g->rc = st->ops->command_create_many(st, &g->t, g->ids, g->nonces, g->cids, g->k);
        if (g->rc < 0 && (!g->before_push || g->rc == FOTA_EPERM))
            WRITE_FAILED(g->rc, "rollout rows not written rollout=%lld rows=%zu error=%s",
                         (long long)g->rollout_id, g->k, fota_errname(g->rc));
        for (size_t j = 0; j < g->k && g->rc == 0; j++)
            w->ms[g->row[j]].command_id = g->cids[j];
    }
    int rc = w->nc ? st->ops->command_update_batch(st, w->cs, w->nc) : 0;
    if (rc < 0)
        WRITE_FAILED(rc, "rollout command rows not updated rows=%zu error=%s", w->nc,
                     fota_errname(rc));
    rc = w->nr || w->nm ? st->ops->rollout_save(st, w->rs, w->nr, w->ms, w->nm) : 0;
    if (rc < 0)
        WRITE_FAILED(rc, "rollout state not saved rollouts=%zu members=%zu error=%s", w->nr,
                     w->nm, fota_errname(rc));
}

/* A new command row's id reaches its member (main loop). */
static void ins_apply(struct ins_group *g, size_t i)
{
    struct fota_rollout *r = g->r;
    struct fota_rollout_member *m = &r->m[g->idx[i]];
    m->row_pending = 0;
    if (g->rc < 0) {
        if (!g->before_push)
            m->cmd_id = m->cmd_id ? m->cmd_id : -1;   /* counted without a row */
        else if (m->cmd_id == 0 && pushed_state(m->state))
            r->need_rows++;   /* pushed meanwhile: it gets its row with the others */
        return;
    }
    if (m->cmd_id != 0)
        return;   /* deleted meanwhile (-1): its row went with the device */
    m->cmd_id = g->cids[i];
    if (m->state == FOTA_RM_QUEUED) {
        /* gone again before its push: a new row when it is back */
        fota_rollout_rows_cancel(r->ro, &m->cmd_id, 1, "the device went offline before its push");
        m->cmd_id = 0;
    } else if (m->state == FOTA_RM_WAITING && m->dirty == 1) {
        m->dirty = 2;   /* its row stays delivered while it waits for the pump */
    }
    /* a member that moved on meanwhile is dirty: the next flush writes its
     * command row's state */
}

static void write_done(void *arg, int cancelled)
{
    struct fota_rollout_write *w = arg;
    for (size_t i = 0; i < w->nins && !cancelled; i++) {
        struct ins_group *g = &w->ins[i];
        for (size_t j = 0; j < g->k && !g->r->gone; j++)
            ins_apply(g, j);
        g->r->jobs--;
    }
    for (size_t i = 0; i < w->nended && !cancelled; i++)
        w->ended[i]->jobs--;
    write_free(w);
}

/* Queues w; when the lane is full its rows wait for a later write (the
 * members dirty again, the new rows to be made again). */
static void write_submit(struct fota_rollout_write *w)
{
    if (w->nins == 0 && w->nc == 0 && w->nr == 0 && w->nm == 0) {
        write_free(w);
        return;
    }
    /* Freed on the main loop, always: the results it references are the
     * rollouts' too, and jansson reads a reference count plainly before
     * its atomic decrement (a race with the main loop's under TSan). */
    if (fota_rollout_submit(w->ro, "rows", write_job, write_done, w) == 0)
        return;
    for (size_t i = 0; i < w->nm; i++) {
        struct fota_rollout *r = fota_rollout_find(w->ro, w->ms[i].rollout_id);
        struct fota_rollout_member *m = r ? fota_rollout_member_at(r, w->ms[i].device_id) : NULL;
        if (m && !m->dirty) {
            m->dirty = 1;
            r->ndirty++;
        }
    }
    for (size_t i = 0; i < w->nins; i++) {
        struct ins_group *g = &w->ins[i];
        for (size_t j = 0; j < g->k; j++) {
            struct fota_rollout_member *m = &g->r->m[g->idx[j]];
            m->row_pending = 0;
            g->r->need_rows += !g->before_push && m->cmd_id == 0 && pushed_state(m->state);
        }
        g->r->jobs--;
    }
    for (size_t i = 0; i < w->nended; i++) {
        w->ended[i]->jobs--;
        w->ended[i]->final_sent = 0;
    }
    write_free(w);
}

struct rows_cancel {
    struct fota_command_set *cs;
    size_t k;
    json_t *why;
};

static void rows_cancel_job(struct fota_store *st, void *arg)
{
    struct rows_cancel *c = arg;
    int rc = st->ops->command_update_batch(st, c->cs, c->k);
    if (rc < 0)
        WRITE_FAILED(rc, "rollout command rows not cancelled rows=%zu error=%s", c->k,
                     fota_errname(rc));
    json_decref(c->why);
    free(c->cs);
    free(c);
}

void fota_rollout_rows_cancel(struct fota_rollouts *ro, const int64_t *ids, size_t k,
                              const char *why)
{
    if (k == 0)
        return;
    struct rows_cancel *c = fota_xmalloc(sizeof *c);
    c->cs = fota_xreallocarray(NULL, k, sizeof *c->cs);
    c->k = k;
    c->why = json_pack("{s:s}", "withdrawn", why);
    for (size_t i = 0; i < k; i++)
        c->cs[i] = (struct fota_command_set){ ids[i], FOTA_CMD_CANCELLED, 0, c->why };
    if (fota_rollout_submit(ro, "cancel", rows_cancel_job, NULL, c) < 0) {
        json_decref(c->why);
        free(c->cs);
        free(c);
    }
}

/* ---- hub subscribers ---------------------------------------------------- */

/* A member whose device connects while the window has room for it gets
 * its command row at once, before the device channel sends the device's
 * queued commands (both wait FOTA_ROLLOUT_ONLINE_MS): the store cancels the
 * queued upgrade it replaces (command_create_many), so the device receives
 * the rollout's version only. The row reads delivered, the push follows on
 * the next pump; one that cannot wait for a slot gets no row (docs/api.md).
 * The row is written by a job on the lane (with the member's row, so that
 * a stop before its continuation loses nothing); the continuation gives
 * the member its cmd_id. */
static void row_before_push(struct fota_rollout *r, struct fota_rollout_member *m)
{
    if (r->pull || m->cmd_id != 0 || m->row_pending || !fota_rollout_may_start(r) ||
        !fota_rollout_eligible(r, m) ||
        fota_rollout_product_active(r->ro, r->row.product_id) >= r->row.window)
        return;
    struct fota_rollout_write *w = write_new(r->ro);
    write_insert(w, r, FOTA_RM_DELIVERED, &m, 1, 1);
    write_submit(w);
}

/* A queued member's device connected: it waits for the window like the
 * others. A verifying member's device came back: a boot of its health time. */
static void online(struct fota_rollouts *ro, const struct fota_hub_presence *ev)
{
    for (struct fota_rollout *r = ro->list; r; r = r->next) {
        struct fota_rollout_member *m = fota_rollout_member_at(r, ev->device_id);
        if (m && m->state == FOTA_RM_VERIFYING) {
            fota_rollout_health_online(r, m, ev->version);
            continue;
        }
        if (m && m->state == FOTA_RM_WAITING && m->remote) {
            /* its push was asked of another instance; its device is here now,
             * or identified again on the instance that holds it */
            if (fota_rollout_push_one(r, m, "sys_upgrade") == 0)
                fota_rollout_taken(r, m);
            else
                fota_rollout_remote_push(r, m);
            continue;
        }
        if (m && ro->clustered && !r->pull &&
            (m->state == FOTA_RM_DELIVERED || m->state == FOTA_RM_ACKED) &&
            !(ev->version && ev->version[0] &&
              strncmp(r->row.version, ev->version, strlen(ev->version)) == 0)) {
            /* pushed, not reported, back on an old version: its push may have
             * died with another instance; its report of the new version ends it */
            fota_rollout_repush(r, m);
            continue;
        }
        if (!m || m->state != FOTA_RM_QUEUED || !fota_rollout_live(r->row.state))
            continue;
        r->row.n.queued--;
        r->row.n.waiting++;
        fota_rollout_set_state(r, m, FOTA_RM_WAITING);
        row_before_push(r, m);
        fota_rollout_ready_add(r, m, fota_clock_mono_ms() + FOTA_ROLLOUT_ONLINE_MS);
    }
}

static int64_t on_online(void *ud, const void *event)
{
    struct fota_rollouts *ro = ud;
    online(ro, event);
    if (ro->remote) {
        fota_rollout_remote_online(ro, event);
        fota_rollout_remote_send(ro);
    }
    return 0;
}

void fota_rollout_feed_online(struct fota_rollouts *ro, const struct fota_hub_presence *ev)
{
    online(ro, ev);
}

static int64_t reply(struct fota_rollouts *ro, const struct fota_hub_reply *ev)
{
    struct fota_rollout *r = NULL;
    struct fota_rollout_member *m = ev->nonce ? member_find(ro, ev->device_id, ev->nonce, &r) : NULL;
    if (!m || m->state < FOTA_RM_DELIVERED || m->state == FOTA_RM_VERIFYING)
        return 0;
    if (m->state != FOTA_RM_ACKED)
        r->row.n.acked++;
    if (ev->status != 200) {
        fota_rollout_finish_member(r, m, FOTA_RM_FAILED, FOTA_RR_REFUSED);
        fota_rollout_act_soon(ro); /* its window slot is free */
    } else {
        fota_rollout_set_state(r, m, FOTA_RM_ACKED);
        if (r->pull) /* it took its offer: the time to confirm counts from its download */
            m->pushed_s = (int32_t)((fota_clock_mono_ms() - r->t0_ms) / 1000);
    }
    fota_rollout_marks(r);
    FOTA_DEBUG("rollout ack rollout=%lld dev=%lld status=%d", (long long)r->row.id,
               (long long)ev->device_id, ev->status);
    return r->row.id;
}

static int64_t on_reply(void *ud, const void *event)
{
    struct fota_rollouts *ro = ud;
    int64_t id = reply(ro, event);
    return id || !ro->remote ? id : fota_rollout_remote_reply(ro, event);
}

void fota_rollout_feed_reply(struct fota_rollouts *ro, const struct fota_hub_reply *ev)
{
    reply(ro, ev);
}

static int64_t report(struct fota_rollouts *ro, const struct fota_hub_report *ev)
{
    struct fota_rollout *r = NULL;
    struct fota_rollout_member *m = member_find(ro, ev->device_id, 0, &r);
    if (!m || m->state < FOTA_RM_DELIVERED)
        return 0;   /* not pushed by a rollout: the channel's command path takes it */
    if (r->pull && ev->target && ev->target[0] && strcmp(ev->target, r->row.version) != 0)
        return 0;   /* the outcome of another upgrade of the device */
    if (m->state == FOTA_RM_VERIFYING) {
        if (!r->pull)
            return 0; /* a NONOS device's next upgrade: the channel's command path */
        fota_rollout_health_report(r, m, ev->ok);
        return r->row.id;
    }
    if (m->state != FOTA_RM_ACKED)
        r->row.n.acked++;
    const char *v = ev->version ? ev->version : "";
    if (ev->ok && v[0] && ev->full && strncmp(r->row.version, v, strlen(v)) == 0)
        fota_str_copy(ev->full, ev->full_cap, r->row.version);
    if (ev->ok && r->row.reboot && !r->pull) {
        m->reboot_due = 1; /* after the D7 reply: next loop turn */
        r->nreboot++;
        if (r->nreboots == r->capreboots) {
            r->capreboots = r->capreboots ? r->capreboots * 2 : 64;
            r->reboots = fota_xreallocarray(r->reboots, r->capreboots, sizeof *r->reboots);
        }
        r->reboots[r->nreboots++] = (uint32_t)(m - r->m);
    }
    if (ev->ok)
        fota_rollout_health_begin(r, m);
    else
        fota_rollout_finish_member(r, m, FOTA_RM_FAILED, FOTA_RR_REPORTED);
    fota_rollout_marks(r);
    fota_rollout_act_soon(ro);
    return r->row.id;
}

static int64_t on_report(void *ud, const void *event)
{
    struct fota_rollouts *ro = ud;
    const struct fota_hub_report *ev = event;
    int64_t id = report(ro, ev);
    return id || !ro->remote ? id : fota_rollout_remote_report(ro, ev);
}

void fota_rollout_feed_report(struct fota_rollouts *ro, const struct fota_hub_report *ev)
{
    report(ro, ev);
}

static int64_t on_deleted(void *ud, const void *event)
{
    struct fota_rollouts *ro = ud;
    const struct fota_hub_device_deleted *ev = event;
    struct fota_rollout *r = NULL;
    struct fota_rollout_member *m;
    while ((m = member_find(ro, ev->device_id, 0, &r)) != NULL) {
        if (m->state == FOTA_RM_WAITING)
            r->row.n.waiting--;
        else if (m->state == FOTA_RM_QUEUED)
            r->row.n.queued--;
        if (m->cmd_id == 0 && !m->row_pending && pushed_state(m->state))
            r->need_rows--;
        fota_rollout_finish_member(r, m, FOTA_RM_DELETED, FOTA_RR_NONE);
        m->cmd_id = -1;   /* its command row went with the device */
        FOTA_INFO("rollout member gone rollout=%lld dev=%lld reason=\"device deleted\"",
                  (long long)r->row.id, (long long)ev->device_id);
        fota_rollout_marks(r);
    }
    for (r = ro->list; r; r = r->next) { /* a finished member may still await its reboot */
        struct fota_rollout_member *x = fota_rollout_member_at(r, ev->device_id);
        if (x && x->reboot_due) {
            x->reboot_due = 0;
            r->nreboot--;
        }
    }
    fota_rollout_act_soon(ro); /* the window has room again */
    return 0;
}

static int64_t on_release_busy(void *ud, const void *event)
{
    struct fota_rollouts *ro = ud;
    const struct fota_hub_release *ev = event;
    for (struct fota_rollout *r = ro->list; r; r = r->next) {
        if (r->row.product_id != ev->product_id || strcmp(r->row.version, ev->version) != 0 ||
            fota_rollout_ended(r) == (int64_t)r->n)
            continue;
        return r->row.id;
    }
    return 0;
}

/* A pushed member whose command row is not written yet, or one whose row
 * a job writes now, would make command_create_many refuse the whole group:
 * the device waits. */
static int64_t on_device_busy(void *ud, const void *event)
{
    struct fota_rollouts *ro = ud;
    const struct fota_hub_device *ev = event;
    for (struct fota_rollout *r = ro->list; r; r = r->next) {
        struct fota_rollout_member *m =
            r->need_rows || r->jobs ? fota_rollout_member_at(r, ev->device_id) : NULL;
        if (m && m->cmd_id == 0 && (pushed_state(m->state) || m->row_pending))
            return r->row.id;
    }
    return 0;
}

/* ---- batched writes ----------------------------------------------------- */

static int cmd_state(int st)
{
    switch (st) {
    case FOTA_RM_DELIVERED: return FOTA_CMD_DELIVERED;
    case FOTA_RM_ACKED: return FOTA_CMD_ACKED;
    case FOTA_RM_DONE: return FOTA_CMD_DONE;
    case FOTA_RM_VERIFYING: return FOTA_CMD_DONE;   /* the upgrade is done; its health runs */
    case FOTA_RM_FAILED: return FOTA_CMD_FAILED;
    case FOTA_RM_TIMEOUT: return FOTA_CMD_TIMEOUT;
    default: return FOTA_CMD_CANCELLED;
    }
}

/* The command row result of a member's state (NULL: the store's default).
 * Members in one state share one value, which the store encodes once per
 * batch. */
static json_t *cmd_result(const struct fota_rollout *r, int st)
{
    return st == FOTA_RM_DONE || st == FOTA_RM_VERIFYING ? r->ok_result
           : st == FOTA_RM_ACKED  ? r->ro->acked_result
           : st == FOTA_RM_FAILED ? r->ro->failed_result
                                  : NULL;
}

/* The command rows of pushed members that have none, one command_create_many
 * per state present, each written in the state its member has reached, so
 * the acknowledgement storm of a large rollout runs without database work
 * and most rows are written once. A failed group (a device deleted
 * meanwhile) leaves its members without rows; the rollout still counts
 * them. With hold (several instances, whose driver writes at every flush),
 * a member pushed within the last FOTA_ROLLOUT_ROWS_MS or so (longer while
 * the other instances' events come late) that has not answered yet keeps
 * waiting: it almost always answers within that time, and its command and
 * member rows are then written once, in the state of its answer, not
 * delivered first and again acknowledged. A driver killed
 * meanwhile leaves such a member's row as the rollout's start wrote it
 * (waiting): its successor queues it and has it pushed again, with its
 * nonce. */
static void insert_rows(struct fota_rollout_write *w, struct fota_rollout *r, int hold)
{
    struct fota_rollout_member **ms = fota_xreallocarray(NULL, r->need_rows, sizeof *ms);
    static const int states[] = { FOTA_RM_DELIVERED, FOTA_RM_ACKED, FOTA_RM_DONE,
                                  FOTA_RM_VERIFYING, FOTA_RM_FAILED, FOTA_RM_TIMEOUT };
    /* pushed_s counts whole seconds: an age under young_s is 1-2 s at most,
     * plus how late the other instances' answers reach the driver now */
    const int64_t now_s = fota_rollout_now_s(r),
                  young_s = FOTA_ROLLOUT_ROWS_MS / 1000 + 1 + r->ro->events_late_s;
    size_t held = 0;
    for (size_t si = 0; si < sizeof states / sizeof states[0]; si++) {
        size_t k = 0;
        for (size_t i = 0; i < r->n && k + held < r->need_rows; i++) {
            struct fota_rollout_member *m = &r->m[i];
            if (m->state != states[si] || m->cmd_id != 0 || m->row_pending)
                continue;
            if (hold && m->state == FOTA_RM_DELIVERED && now_s - m->pushed_s < young_s)
                held++;
            else
                ms[k++] = m;
        }
        if (k > 0)
            write_insert(w, r, states[si], ms, k, 0);
    }
    r->need_rows = held;
    r->rows_due = 0;
    free(ms);
}

/* Into w: the missing command rows of the rollouts whose time has come
 * (all when all is set), the member rows and command row states of every
 * dirty member, and the rollout rows. Pushed members whose command row is
 * not written yet wait for it. */
static void flush_into(struct fota_rollout_write *w, struct fota_rollouts *ro, int all)
{
    size_t nr = 0;
    for (struct fota_rollout *r = ro->list; r; r = r->next) {
        if (r->need_rows > 0 && (all || r->rows_due))
            insert_rows(w, r, !all && ro->clustered && !r->pull);
        nr++;
    }
    if (nr == 0)
        return;
    w->rs = fota_xreallocarray(NULL, nr, sizeof *w->rs);
    for (struct fota_rollout *r = ro->list; r; r = r->next) {
        w->rs[w->nr++] = r->row;
        if (!r->final_sent && (r->row.state == FOTA_ROLLOUT_FINISHED ||
                               r->row.state == FOTA_ROLLOUT_CANCELLED)) {
            if (!w->ended)
                w->ended = fota_xreallocarray(NULL, nr, sizeof *w->ended);
            w->ended[w->nended++] = r;
            r->final_sent = 1;
            r->jobs++;
        }
        if (!r->stored)
            continue;
        for (size_t i = 0; i < r->n && r->ndirty > 0; i++) {
            struct fota_rollout_member *m = &r->m[i];
            if (!m->dirty || m->row_pending || (m->cmd_id == 0 && pushed_state(m->state)))
                continue;
            if (m->cmd_id > 0 && m->dirty == 1) {
                if (w->nc == w->capc) {
                    w->capc = w->capc ? w->capc * 2 : 64;
                    w->cs = fota_xreallocarray(w->cs, w->capc, sizeof *w->cs);
                }
                w->cs[w->nc++] = (struct fota_command_set){
                    m->cmd_id, cmd_state(m->state), w->now,
                    write_ref(w, cmd_result(r, m->state)) };
            }
            write_member(w, r, m);
        }
    }
}

void fota_rollout_flush(struct fota_rollouts *ro)
{
    struct fota_rollout_write *w = write_new(ro);
    flush_into(w, ro, 0);
    write_submit(w);
}

void fota_rollout_save_now(struct fota_rollout *r)
{
    struct fota_rollout_write *w = write_new(r->ro);
    if (r->need_rows > 0)
        insert_rows(w, r, 0);
    r->stored = 1;
    flush_into(w, r->ro, 0);
    write_submit(w);
}

/* Frees the rollouts dropped at a lost lease whose jobs are back. */
static void free_gone(struct fota_rollouts *ro)
{
    for (struct fota_rollout **pp = &ro->gone; *pp;) {
        struct fota_rollout *r = *pp;
        if (r->jobs == 0) {
            *pp = r->next;
            fota_rollout_free(r);
        } else {
            pp = &r->next;
        }
    }
}

/* Lease rollouts (cluster.h): taken, this instance resumes every live
 * rollout from the store (a job; the previous driver's last writes are
 * there, fenced writes of its are not); lost, it drops them at once,
 * writing nothing more (the new driver resumes them from the rows). */
static void lease_check(struct fota_rollouts *ro)
{
    int64_t epoch = fota_cluster_rollouts_epoch(ro->srv);
    if (epoch == ro->epoch && (epoch != 0 || !ro->list))
        return;
    size_t dropped = 0;
    while (ro->list) {
        struct fota_rollout *r = ro->list;
        ro->list = r->next;
        r->gone = 1;
        r->next = ro->gone;
        ro->gone = r;
        dropped++;
    }
    if (ro->epoch != 0 && epoch != ro->epoch)
        FOTA_WARN("rollouts no longer driven here epoch=%lld rollouts=%zu reason=\"lease "
                  "rollouts lost\"", (long long)ro->epoch, dropped);
    ro->epoch = epoch;
    if (epoch != 0) {
        FOTA_INFO("rollouts driven here epoch=%lld", (long long)epoch);
        ro->resuming++;
        fota_rollout_resume_all(ro, 0);
    }
}

/* Drops the rollouts that ended and whose every row is written. */
static void drop_ended(struct fota_rollouts *ro)
{
    for (struct fota_rollout **pp = &ro->list; *pp;) {
        struct fota_rollout *r = *pp;
        int over = r->row.state == FOTA_ROLLOUT_FINISHED || r->row.state == FOTA_ROLLOUT_CANCELLED;
        if (over && r->stored && r->final_sent && r->ndirty == 0 && r->nreboot == 0 &&
            r->jobs == 0) {
            *pp = r->next;
            fota_rollout_free(r);
        } else {
            pp = &r->next;
        }
    }
}

/* The next loop turn after a report (so after the D7 reply went out): the
 * reboot and the next push of the window do not wait for the tick. */
static void soon_cb(evutil_socket_t fd, short what, void *ud)
{
    struct fota_rollouts *ro = ud;
    (void)fd;
    (void)what;
    for (struct fota_rollout *r = ro->list; r; r = r->next) {
        if (r->nreboot > 0)
            fota_rollout_send_reboots(r);
        fota_rollout_pump(r);
    }
}

static void timer_cb(evutil_socket_t fd, short what, void *ud)
{
    struct fota_rollouts *ro = ud;
    (void)fd;
    (void)what;
    if (ro->clustered) {
        lease_check(ro);
        free_gone(ro);
        fota_rollout_remote_tick(ro);
        if (ro->epoch == 0)
            return;
    }
    for (struct fota_rollout *r = ro->list; r; r = r->next) {
        /* Several instances: the rows are written at once, for a driver
         * that dies leaves its successor only what it wrote. */
        int burst_over = r->row.n.acked >= r->row.n.delivered ||
                         fota_rollout_since_ms(r) >= FOTA_ROLLOUT_ROWS_MS || ro->clustered;
        if (r->need_rows > 0 && r->pumped && burst_over)
            r->rows_due = 1;   /* written by the flush below, in the states of its end */
        if (!r->stored && r->pumped && burst_over)
            r->stored = 1;
        if (r->row.n.active > 0)
            fota_rollout_check_timeouts(r);
        if (r->row.n.verifying > 0)
            fota_rollout_health_check(r);
        if (r->nreboot > 0)
            fota_rollout_send_reboots(r);
        fota_rollout_hours_tick(r);
        fota_rollout_pump(r);
        fota_rollout_sample(r, 0);
    }
    fota_rollout_flush(ro);
    drop_ended(ro);
}

void fota_rollout_start(struct fota_rollouts *ro, struct fota_rollout *r)
{
    fota_rollout_make_template(r);
    json_decref(r->ok_result);
    r->ok_result = json_pack("{s:s, s:s}", "action", "device_upgrade_success", "rom_version",
                             r->row.version);
    r->next = ro->list;
    ro->list = r;
    fota_rollout_marks(r);
    /* The pushes start on the next loop pass, not in this one: on the main
     * loop the 202 then goes out before them, not after 19,000 pushes. */
    struct timeval next_pass = { 0, 0 };
    event_add(ro->soon, &next_pass);
}

/* ---- module ------------------------------------------------------------- */

static const struct {
    enum fota_hub_topic topic;
    fota_hub_cb cb;
} subs[] = {
    { FOTA_HUB_DEVICE_ONLINE, on_online },
    { FOTA_HUB_DEVICE_REPLY, on_reply },
    { FOTA_HUB_DEVICE_REPORT, on_report },
    { FOTA_HUB_DEVICE_DELETED, on_deleted },
    { FOTA_HUB_RELEASE_BUSY, on_release_busy },
    { FOTA_HUB_DEVICE_BUSY, on_device_busy },
};

static void module_stop(struct fota_server *srv, void *state)
{
    struct fota_rollouts *ro = state;
    if (!ro)
        return;
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        fota_hub_unsubscribe(srv, subs[i].topic, subs[i].cb, ro);
    fota_rollout_remote_stop(ro);
    /* The last write: queued on the lane; its continuation does not run
     * (the loop stopped), so it borrows nothing of the rollouts freed here. */
    struct fota_rollout_write *w = write_new(ro);
    for (struct fota_rollout *r = ro->list; r; r = r->next)
        r->stored = 1;
    flush_into(w, ro, 1);
    write_submit(w);
    /* The write lands, and its continuation (cancelled: it frees the
     * write) runs, before the rollouts whose results it references are
     * freed here and, several instances, before the cluster module frees
     * lease rollouts (the fence would refuse it after). */
    fota_store_exec_drain(srv->exec);
    fota_rollout_ask_stop(ro);
    while (ro->list) {
        struct fota_rollout *r = ro->list;
        ro->list = r->next;
        fota_rollout_free(r);
    }
    while (ro->gone) {
        struct fota_rollout *r = ro->gone;
        ro->gone = r->next;
        fota_rollout_free(r);
    }
    if (ro->timer)
        event_free(ro->timer);
    if (ro->soon)
        event_free(ro->soon);
    fota_key_deriver_free(ro->kd);
    json_decref(ro->acked_result);
    json_decref(ro->failed_result);
    free(ro);
}

static int module_start(struct fota_server *srv, void **state)
{
    if (!srv->devchan || !srv->http)
        return 0;   /* no device channel or no REST API: nothing to roll out with */
    struct fota_rollouts *ro = fota_xcalloc(1, sizeof *ro);
    ro->srv = srv;
    ro->ch = srv->devchan;
    ro->acked_result = json_pack("{s:i}", "status", 200);
    ro->failed_result = json_pack("{s:s}", "action", "device_upgrade_failed");
    ro->lane = srv->exec ? fota_store_lane_new(srv->exec, "rollout") : NULL;
    ro->timer = event_new(srv->base, -1, EV_PERSIST, timer_cb, ro);
    ro->soon = event_new(srv->base, -1, 0, soon_cb, ro);
    struct timeval tv = { 0, FOTA_ROLLOUT_FLUSH_MS * 1000 };
    event_add(ro->timer, &tv);
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (fota_hub_subscribe(srv, subs[i].topic, subs[i].cb, ro) < 0) {
            FOTA_ERROR("cannot subscribe the rollouts to the hub");
            module_stop(srv, ro);
            return FOTA_ENOMEM;
        }
    ro->clustered = fota_cluster_instance_id(srv) != 0;
    if (fota_rollout_api_routes(ro) < 0 || fota_rollout_ask_start(ro) < 0) {
        FOTA_ERROR("cannot add the rollout routes");
        module_stop(srv, ro);
        return FOTA_ENOMEM;
    }
    /* Here when this instance holds lease rollouts (always alone; the
     * cluster module took it at its start if free), and start-up may wait
     * for the store; else where and when it is taken (lease_check). */
    if (fota_rollout_remote_start(ro) < 0) {
        module_stop(srv, ro);
        return FOTA_ENOMEM;
    }
    ro->epoch = fota_cluster_rollouts_epoch(srv);
    if (ro->epoch != 0) {
        if (ro->clustered)
            FOTA_INFO("rollouts driven here epoch=%lld", (long long)ro->epoch);
        fota_rollout_resume_all(ro, 1);
    }
    *state = ro;
    return 0;
}

const struct fota_module fota_rollout_module = {
    .name = "rollout",
    .start = module_start,
    .reload = NULL,
    .drain = NULL,
    .stop = module_stop,
};
