/* rollout_resume.c - the rollouts that were live when fotad stopped
 * (running, paused, awaiting an approval or cancelling), rebuilt from their
 * rows at start: their stages, pause and counters as stored; pushed members
 * wait for their report (their timeout counts from the stored push time),
 * verifying ones go on with their health time (from the stored report
 * time, their boots as counted), the others wait for their device to
 * connect. */
#include "rollout_int.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "devchan.h"
#include "log.h"
#include "rollout_plan.h"
#include "xmalloc.h"

static int cmp_dev(const void *a, const void *b)
{
    int64_t x = ((const struct fota_device *)a)->id, y = ((const struct fota_device *)b)->id;
    return x < y ? -1 : x > y;
}

/* Seconds from the rollout's creation to a stored Unix time, as an
 * in-memory offset from t0 (clamped to what the member fields hold). */
static int32_t offset_s(const struct fota_rollout_row *row, int64_t at)
{
    int64_t d = at - row->created;
    return (int32_t)(d < 0 ? 0 : d > INT32_MAX ? INT32_MAX : d);
}

static void member_from_row(struct fota_rollout *r, struct fota_rollout_member *m,
                            const struct fota_rollout_member_row *w, const struct fota_device *d)
{
    struct fota_rollout_counts *n = &r->row.n;
    m->device_id = w->device_id;
    m->cmd_id = w->command_id;
    m->nonce = (int32_t)w->nonce;
    m->keygen = d ? d->key_generation : 0;
    m->state = (uint8_t)w->state;
    m->stage = (uint8_t)(w->stage >= 0 && w->stage < r->row.nstages ? w->stage : 0);
    m->reason = (uint8_t)w->reason;
    m->boots = (uint8_t)(w->boots < 255 ? w->boots : 255);
    m->pushed_s = offset_s(&r->row, w->pushed);
    m->reported = w->reported > 0;
    m->since_s = offset_s(&r->row, w->reported);
    if (m->state == FOTA_RM_WAITING || m->state == FOTA_RM_QUEUED) {
        m->state = FOTA_RM_QUEUED;
        n->queued++;
    } else if (m->state == FOTA_RM_DELIVERED || m->state == FOTA_RM_ACKED) {
        m->active = 1;
        n->active++;
        r->need_rows += m->cmd_id == 0;
    } else if (m->state == FOTA_RM_VERIFYING) {
        n->verifying++;
        r->need_rows += m->cmd_id == 0;
    }
}

/* What the store holds of one live rollout, read by the job. */
struct resume_read {
    struct fota_rollout_row row;
    struct fota_rollout_member_row *ms;
    struct fota_device *ds;
    size_t nm, nd;
    int failed;                        /* its members or devices could not be read */
    struct fota_rollout *r;            /* its pull settings (fota_rollout_pull_setup) */
    struct fota_rollout_seen *seen;    /* pull: its devices' presence */
    size_t nseen;
    int seen_rc;
};

/* The live rollouts read from the store (the job), then installed in the
 * engine (the continuation, on the main loop). */
struct fota_rollout_resume {
    struct fota_rollouts *ro;
    int64_t epoch;                     /* the lease's, when the read was asked */
    int counted;                       /* in ro->resuming (a takeover's) */
    struct resume_read *v;
    size_t n, cap;
};

/* Rebuilds a live rollout from its rows (main loop). */
static void resume_one(struct fota_rollouts *ro, struct resume_read *x)
{
    const struct fota_rollout_row *row = &x->row;
    struct fota_rollout_member_row *ms = x->ms;
    struct fota_device *ds = x->ds;
    size_t nm = x->nm, nd = x->nd;
    if (x->failed) {
        FOTA_ERROR("rollout not resumed rollout=%lld reason=\"store read failed\"",
                   (long long)row->id);
        return;
    }
    struct fota_rollout *r = x->r;
    x->r = NULL;
    r->row = *row;
    r->t0_ms = fota_clock_mono_ms() - (fota_clock_wall_s() - row->created) * 1000;
    r->m = fota_xcalloc(nm ? nm : 1, sizeof *r->m);
    r->n = nm;
    r->cursor = 0;                     /* waiting members are found again as their devices connect */
    r->stored = r->pumped = 1;
    r->open = row->hours_from == FOTA_ROLLOUT_ANY_HOUR ||
              fota_rollout_hours_open(row->hours_from, row->hours_to, fota_clock_wall_s());
    fota_rollout_stages_default(r);
    struct fota_rollout_counts *n = &r->row.n;
    n->waiting = n->queued = n->active = n->verifying = 0;
    for (size_t i = 0; i < nm; i++) {
        struct fota_rollout_member *m = &r->m[i];
        struct fota_device key = { .id = ms[i].device_id };
        const struct fota_device *d = bsearch(&key, ds, nd, sizeof *ds, cmp_dev);
        member_from_row(r, m, &ms[i], d);
        if (!d && fota_rollout_member_open(m->state)) { /* deleted while fotad was stopped */
            n->queued -= m->state == FOTA_RM_QUEUED;
            fota_rollout_finish_member(r, m, FOTA_RM_DELETED, FOTA_RR_NONE);
            m->cmd_id = m->cmd_id ? m->cmd_id : -1;
        }
    }
    if (r->pull)
        fota_rollout_pull_resume(r, x->seen_rc < 0 ? NULL : x->seen, x->nseen);
    if (nm == 0 && row->n.total > 0) {
        /* Stopped within its first second, before its members were written. */
        r->row.state = FOTA_ROLLOUT_CANCELLED;
        r->row.n.cancelled = row->n.total - fota_rollout_ended(r);
        FOTA_WARN("rollout not resumed rollout=%lld reason=\"fotad stopped before its members "
                  "were stored\"", (long long)row->id);
    }
    fota_rollout_start(ro, r);
    if (ro->clustered)
        fota_rollout_takeover(r);
    FOTA_INFO("rollout resumed rollout=%lld members=%zu in_progress=%lld queued=%lld "
              "verifying=%lld stage=%d state=%s", (long long)row->id, nm, (long long)n->active,
              (long long)n->queued, (long long)n->verifying, r->row.stage + 1,
              r->row.state == FOTA_ROLLOUT_PAUSED     ? "paused"
              : r->row.state == FOTA_ROLLOUT_APPROVAL ? "awaiting_approval"
              : r->row.state == FOTA_ROLLOUT_RUNNING  ? "running"
                                                      : "cancelling");
}

/* The job: every live rollout with its members, its devices' key
 * generations and, for a pull rollout, its settings and presence. It
 * touches nothing of the engine (the rollouts it makes are its own). */
static void resume_read_job(struct fota_store *st, void *arg)
{
    static const int states[] = { FOTA_ROLLOUT_RUNNING, FOTA_ROLLOUT_APPROVAL,
                                  FOTA_ROLLOUT_PAUSED, FOTA_ROLLOUT_CANCELLING };
    struct fota_rollout_resume *res = arg;
    for (size_t s = 0; s < sizeof states / sizeof states[0]; s++) {
        struct fota_rollout_row *rows = NULL;
        size_t n = 0;
        if (st->ops->rollout_list(st, 0, states[s], &rows, &n) < 0) {
            FOTA_ERROR("rollouts not resumed reason=\"store read failed\"");
            continue;
        }
        for (size_t i = n; i-- > 0;) { /* oldest first: the list is newest first */
            if (res->n == res->cap) {
                res->cap = res->cap ? res->cap * 2 : 8;
                res->v = fota_xreallocarray(res->v, res->cap, sizeof *res->v);
            }
            struct resume_read *x = &res->v[res->n++];
            memset(x, 0, sizeof *x);
            x->row = rows[i];
            if (st->ops->rollout_members(st, x->row.id, 0, 0, 0, &x->ms, &x->nm) < 0 ||
                st->ops->device_list(st, x->row.product_id, &x->ds, &x->nd) < 0) {
                x->failed = 1;
                continue;
            }
            x->r = fota_rollout_new(res->ro);
            x->r->row = x->row;
            if (fota_rollout_pull_setup(x->r, st) == 1)
                x->seen_rc = fota_rollout_pull_presence(st, x->row.product_id, x->r->grace_s,
                                                        &x->seen, &x->nseen);
        }
        free(rows);
    }
}

static void resume_free(struct fota_rollout_resume *res)
{
    for (size_t i = 0; i < res->n; i++) {
        free(res->v[i].ms);
        free(res->v[i].ds);
        free(res->v[i].seen);
        fota_rollout_free(res->v[i].r);
    }
    free(res->v);
    free(res);
}

/* The continuation: the rollouts join the engine (one the engine holds
 * already is left as it is); none when the lease moved meanwhile. */
static void resume_install(void *arg, int cancelled)
{
    struct fota_rollout_resume *res = arg;
    res->ro->resuming -= res->counted;
    cancelled = cancelled || res->epoch != res->ro->epoch;
    for (size_t i = 0; i < res->n && !cancelled; i++)
        if (!fota_rollout_find(res->ro, res->v[i].row.id))
            resume_one(res->ro, &res->v[i]);
    resume_free(res);
}

void fota_rollout_resume_all(struct fota_rollouts *ro, int now)
{
    struct fota_rollout_resume *res = fota_xcalloc(1, sizeof *res);
    res->ro = ro;
    res->epoch = ro->epoch;
    if (!now) {
        res->counted = ro->clustered;
        if (fota_rollout_submit(ro, "resume", resume_read_job, resume_install, res) < 0) {
            ro->resuming -= res->counted;
            resume_free(res);
        }
        return;
    }
    resume_read_job(ro->srv->store, res);
    resume_install(res, 0);
}

void fota_rollout_takeover(struct fota_rollout *r)
{
    int64_t now = fota_clock_mono_ms();
    size_t woke = 0, again = 0;
    if (!fota_rollout_live(r->row.state) && r->row.state != FOTA_ROLLOUT_CANCELLING)
        return;
    for (size_t i = 0; i < r->n; i++) {
        struct fota_rollout_member *m = &r->m[i];
        if (m->state == FOTA_RM_QUEUED && fota_rollout_live(r->row.state) &&
            fota_devchan_online(r->ro->ch, m->device_id)) {
            r->row.n.queued--;
            r->row.n.waiting++;
            fota_rollout_set_state(r, m, FOTA_RM_WAITING);
            fota_rollout_ready_add(r, m, now);
            woke++;
        } else if (m->state == FOTA_RM_DELIVERED || m->state == FOTA_RM_ACKED) {
            again += (size_t)fota_rollout_repush(r, m);
        }
    }
    FOTA_INFO("rollout taken over rollout=%lld waiting=%zu pushed_again=%zu",
              (long long)r->row.id, woke, again);
}
