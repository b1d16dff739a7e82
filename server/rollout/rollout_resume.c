/* rollout_resume.c - the rollouts that were live when fotad stopped
 * (running, paused, awaiting an approval or cancelling), rebuilt from their
 * rows at start: their stages, pause and counters as stored; pushed members
 * wait for their report (their timeout counts from the stored push time),
 * verifying ones go on with their health time (from the stored report
 * time, their boots as counted), the others wait for their device to
 * connect. */
#include "rollout_int.h"

#include <stdlib.h>

#include "clock.h"
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

/* Rebuilds a live rollout from its rows. */
static void resume_one(struct fota_rollouts *ro, const struct fota_rollout_row *row)
{
    struct fota_store *st = ro->srv->store;
    struct fota_rollout_member_row *ms = NULL;
    struct fota_device *ds = NULL;
    size_t nm = 0, nd = 0;
    if (st->ops->rollout_members(st, row->id, 0, 0, 0, &ms, &nm) < 0 ||
        st->ops->device_list(st, row->product_id, &ds, &nd) < 0) {
        FOTA_ERROR("rollout not resumed rollout=%lld reason=\"store read failed\"",
                   (long long)row->id);
        free(ms);
        free(ds);
        return;
    }
    struct fota_rollout *r = fota_rollout_new(ro);
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
    free(ms);
    free(ds);
    if (fota_rollout_pull_setup(r, st) == 1)
        fota_rollout_pull_resume(r);
    if (nm == 0 && row->n.total > 0) {
        /* Stopped within its first second, before its members were written. */
        r->row.state = FOTA_ROLLOUT_CANCELLED;
        r->row.n.cancelled = row->n.total - fota_rollout_ended(r);
        FOTA_WARN("rollout not resumed rollout=%lld reason=\"fotad stopped before its members "
                  "were stored\"", (long long)row->id);
    }
    fota_rollout_start(ro, r);
    FOTA_INFO("rollout resumed rollout=%lld members=%zu in_progress=%lld queued=%lld "
              "verifying=%lld stage=%d state=%s", (long long)row->id, nm, (long long)n->active,
              (long long)n->queued, (long long)n->verifying, r->row.stage + 1,
              r->row.state == FOTA_ROLLOUT_PAUSED     ? "paused"
              : r->row.state == FOTA_ROLLOUT_APPROVAL ? "awaiting_approval"
              : r->row.state == FOTA_ROLLOUT_RUNNING  ? "running"
                                                      : "cancelling");
}

void fota_rollout_resume_all(struct fota_rollouts *ro)
{
    static const int states[] = { FOTA_ROLLOUT_RUNNING, FOTA_ROLLOUT_APPROVAL,
                                  FOTA_ROLLOUT_PAUSED, FOTA_ROLLOUT_CANCELLING };
    struct fota_store *st = ro->srv->store;
    for (size_t s = 0; s < sizeof states / sizeof states[0]; s++) {
        struct fota_rollout_row *rows = NULL;
        size_t n = 0;
        if (st->ops->rollout_list(st, 0, states[s], &rows, &n) < 0) {
            FOTA_ERROR("rollouts not resumed reason=\"store read failed\"");
            continue;
        }
        for (size_t i = n; i-- > 0;) /* oldest first: the list is newest first */
            resume_one(ro, &rows[i]);
        free(rows);
    }
}
