/* rollout_stage.c - a rollout's stages as it runs: which members may be
 * pushed (those of the stages started so far), the gates looked at after
 * every outcome (a stage's failures past its max_failures pause the
 * rollout; a current stage that reached its success threshold starts the
 * next one, or waits for its approval; one that ended below it pauses the
 * rollout), pause, resume and approval, the maintenance window (nothing
 * new starts outside it) and the progress samples (docs/api.md, "Stages").
 * Every change lands in the row the batched writes save. */
#include "rollout_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "rollout_plan.h"
#include "xmalloc.h"

int64_t fota_rollout_stage_failures(const struct fota_rollout_stage *g)
{
    return g->failed + g->timed_out;
}

int fota_rollout_eligible(const struct fota_rollout *r, const struct fota_rollout_member *m)
{
    const struct fota_rollout_row *w = &r->row;
    return m->stage < w->stage || (m->stage == w->stage && w->stages[w->stage].started != 0);
}

int fota_rollout_may_start(struct fota_rollout *r)
{
    int st = r->row.state;
    return (st == FOTA_ROLLOUT_RUNNING || st == FOTA_ROLLOUT_APPROVAL) && r->open;
}

void fota_rollout_stages_default(struct fota_rollout *r)
{
    struct fota_rollout_row *w = &r->row;
    if (w->nstages > 0)
        return;
    struct fota_rollout_stage *g = &w->stages[0];
    memset(g, 0, sizeof *g);
    g->kind = FOTA_STAGE_ALL;
    g->value = 100;
    g->success = 100;
    g->max_failures = w->max_failures;
    g->total = w->n.total;
    g->succeeded = w->n.succeeded;
    g->failed = w->n.failed;
    g->timed_out = w->n.timed_out;
    g->deleted = w->n.deleted;
    g->cancelled = w->n.cancelled;
    g->started = w->created;
    w->nstages = 1;
    w->stage = 0;
}

/* Members a stage needs upgraded before the next starts: its success % of
 * those not deleted or cancelled, rounded up. */
static int64_t stage_need(const struct fota_rollout_stage *g)
{
    int64_t base = g->total - g->deleted - g->cancelled;
    return base <= 0 ? 0 : (base * g->success + 99) / 100;
}

static int stage_ended(const struct fota_rollout_stage *g)
{
    return g->succeeded + g->failed + g->timed_out + g->deleted + g->cancelled >= g->total;
}

void fota_rollout_pause(struct fota_rollout *r, int autom, const char *fmt, ...)
{
    struct fota_rollout_row *w = &r->row;
    if (w->state != FOTA_ROLLOUT_RUNNING && w->state != FOTA_ROLLOUT_APPROVAL)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->pause_reason, sizeof w->pause_reason, fmt, ap);
    va_end(ap);
    w->state = FOTA_ROLLOUT_PAUSED;
    w->halted = autom;
    w->paused_at = fota_clock_wall_s();
    r->nready = 0;   /* waiting members are found again by the pump once resumed */
    size_t back = r->pull ? fota_rollout_pull_recall(r, "the rollout was paused") : 0;
    FOTA_WARN("rollout paused rollout=%lld stage=%d by=%s offers_recalled=%zu reason=\"%s\"",
              (long long)w->id, w->stage + 1, autom ? "itself" : "request", back,
              w->pause_reason);
}

/* Makes stage k current: started now, or awaiting its approval. */
static void enter_stage(struct fota_rollout *r, int k, int approved)
{
    struct fota_rollout_row *w = &r->row;
    struct fota_rollout_stage *g = &w->stages[k];
    w->stage = k;
    if (g->approval && !approved && g->total > 0) {
        w->state = FOTA_ROLLOUT_APPROVAL;
        FOTA_INFO("rollout stage awaits approval rollout=%lld stage=%d devices=%lld",
                  (long long)w->id, k + 1, (long long)g->total);
        return;
    }
    int64_t now = fota_clock_wall_s();
    if (approved)
        g->approved = now;
    g->started = now;
    w->state = FOTA_ROLLOUT_RUNNING;
    r->cursor = 0;   /* its members are anywhere in the id order */
    FOTA_INFO("rollout stage started rollout=%lld stage=%d devices=%lld", (long long)w->id,
              k + 1, (long long)g->total);
    fota_rollout_act_soon(r->ro);
}

void fota_rollout_gate(struct fota_rollout *r)
{
    struct fota_rollout_row *w = &r->row;
    for (int guard = 0; guard <= FOTA_ROLLOUT_STAGES_MAX; guard++) {
        if (w->state != FOTA_ROLLOUT_RUNNING && w->state != FOTA_ROLLOUT_APPROVAL)
            return;
        for (int k = 0; k <= w->stage && k < w->nstages; k++) {
            const struct fota_rollout_stage *g = &w->stages[k];
            int64_t f = fota_rollout_stage_failures(g) - g->fail_base;
            if (g->max_failures >= 0 && g->started && f > g->max_failures) {
                fota_rollout_pause(r, 1, "stage %d: %lld devices failed or timed out, more than "
                                   "its max_failures %lld", k + 1, (long long)f,
                                   (long long)g->max_failures);
                return;
            }
        }
        const struct fota_rollout_stage *g = &w->stages[w->stage];
        if (!g->started || w->stage + 1 >= w->nstages)
            return;   /* awaiting its approval, or the last stage: the rollout ends with it */
        if (g->succeeded < stage_need(g)) {
            if (stage_ended(g))
                fota_rollout_pause(r, 1, "stage %d ended with %lld of %lld devices upgraded, "
                                   "below its success threshold of %d %%", w->stage + 1,
                                   (long long)g->succeeded, (long long)g->total, g->success);
            return;
        }
        enter_stage(r, w->stage + 1, 0);   /* an empty stage passes at once: loop */
    }
}

int fota_rollout_resume(struct fota_rollout *r)
{
    struct fota_rollout_row *w = &r->row;
    if (w->state != FOTA_ROLLOUT_PAUSED)
        return FOTA_EINVAL;
    for (int k = 0; k < w->nstages; k++)
        w->stages[k].fail_base = fota_rollout_stage_failures(&w->stages[k]);
    w->state = w->stages[w->stage].started ? FOTA_ROLLOUT_RUNNING : FOTA_ROLLOUT_APPROVAL;
    w->halted = 0;
    w->paused_at = 0;
    w->pause_reason[0] = '\0';
    r->cursor = 0;
    FOTA_INFO("rollout resumed by request rollout=%lld stage=%d", (long long)w->id, w->stage + 1);
    const struct fota_rollout_stage *g = &w->stages[w->stage];
    if (g->started && w->stage + 1 < w->nstages && stage_ended(g) && g->succeeded < stage_need(g))
        enter_stage(r, w->stage + 1, 0);   /* the operator accepts the stage as it ended */
    fota_rollout_gate(r);
    fota_rollout_act_soon(r->ro);
    return 0;
}

int fota_rollout_approve(struct fota_rollout *r)
{
    struct fota_rollout_row *w = &r->row;
    if (w->state == FOTA_ROLLOUT_PAUSED)
        return FOTA_EINVAL;
    if (w->state == FOTA_ROLLOUT_APPROVAL) {
        enter_stage(r, w->stage, 1);
    } else if (w->state == FOTA_ROLLOUT_RUNNING && w->stage + 1 < w->nstages) {
        enter_stage(r, w->stage + 1, 1);   /* started now, whatever the current stage's progress */
    } else {
        return FOTA_ENOENT;
    }
    fota_rollout_gate(r);
    return 0;
}

void fota_rollout_hours_tick(struct fota_rollout *r)
{
    const struct fota_rollout_row *w = &r->row;
    if (w->hours_from == FOTA_ROLLOUT_ANY_HOUR || !fota_rollout_live(w->state))
        return;
    int open = fota_rollout_hours_open(w->hours_from, w->hours_to, fota_clock_wall_s());
    if (open == r->open)
        return;
    r->open = open;
    size_t back = 0;
    if (!open && r->pull)
        back = fota_rollout_pull_recall(r, "its maintenance window closed");
    if (open)
        r->cursor = 0;
    FOTA_INFO("rollout maintenance window %s rollout=%lld offers_recalled=%zu",
              open ? "opened" : "closed", (long long)w->id, back);
}

static void sample_job(struct fota_store *st, void *arg)
{
    struct fota_rollout_sample *x = arg;
    int rc = st->ops->rollout_sample_add(st, x, 1);
    if (rc < 0)
        FOTA_WARN("rollout progress not stored rollout=%lld error=%s", (long long)x->rollout_id,
                  fota_errname(rc));
    free(x);
}

void fota_rollout_sample(struct fota_rollout *r, int final)
{
    int64_t now = fota_clock_wall_s(), minute = now / 60;
    if (!final && (minute == r->sample_min || !r->stored))
        return;
    if (!final && r->sample_min && memcmp(&r->sampled, &r->row.n, sizeof r->sampled) == 0) {
        r->sample_min = minute;   /* nothing moved: no sample */
        return;
    }
    struct fota_rollout_sample *x = fota_xmalloc(sizeof *x);
    *x = (struct fota_rollout_sample){ r->row.id, now, r->row.n };
    if (fota_rollout_submit(r->ro, "sample", sample_job, NULL, x) < 0)
        free(x);
    r->sample_min = minute;
    r->sampled = r->row.n;
}
