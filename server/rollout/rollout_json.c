/* rollout_json.c - the JSON views of rollouts (docs/api.md, "Rollouts"):
 * a rollout with its settings, counters, stages, pause and maintenance
 * window; a member with its stage, state, reason, health and times; a
 * progress sample. Times are Unix seconds (null: not yet). */
#include "rollout_int.h"

#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "rollout_plan.h"

static const char *state_name(int st)
{
    switch (st) {
    case FOTA_ROLLOUT_RUNNING: return "running";
    case FOTA_ROLLOUT_CANCELLING: return "cancelling";
    case FOTA_ROLLOUT_CANCELLED: return "cancelled";
    case FOTA_ROLLOUT_FINISHED: return "finished";
    case FOTA_ROLLOUT_PAUSED: return "paused";
    case FOTA_ROLLOUT_APPROVAL: return "awaiting_approval";
    default: return "interrupted";
    }
}

static const char *const member_states[] = { "?", "waiting", "queued", "delivered", "acked",
                                             "done", "failed", "timeout", "deleted", "cancelled",
                                             "verifying" };
#define NSTATES (sizeof member_states / sizeof member_states[0])

const char *fota_rollout_member_state_name(int st)
{
    return st > 0 && st < (int)NSTATES ? member_states[st] : "?";
}

int fota_rollout_member_state_of(const char *s)
{
    for (size_t i = 1; i < NSTATES; i++)
        if (strcmp(s, member_states[i]) == 0)
            return (int)i;
    return 0;
}

const char *fota_rollout_reason_name(int reason)
{
    static const char *const names[] = { "", "refused", "reported", "push_failed",
                                         "old_version", "reboot_loop", "silent", "no_reboot" };
    return reason > 0 && reason < (int)(sizeof names / sizeof names[0]) ? names[reason] : "";
}

static json_t *mark(double ms)
{
    return ms >= 0 ? json_real(ms) : json_null();
}

static json_t *when(int64_t t)
{
    return t > 0 ? json_integer(t) : json_null();
}

static json_t *opt_count(int64_t v)
{
    return v >= 0 ? json_integer(v) : json_null();
}

static const char *kind_name(int kind)
{
    switch (kind) {
    case FOTA_STAGE_PERCENT: return "percent";
    case FOTA_STAGE_COUNT: return "count";
    case FOTA_STAGE_DEVICES: return "devices";
    case FOTA_STAGE_REST: return "rest";
    default: return "all";
    }
}

/* "pending", "awaiting_approval", "running", "passed" or "ended". */
static const char *stage_state(const struct fota_rollout_row *w, int k)
{
    const struct fota_rollout_stage *g = &w->stages[k];
    int over = w->state == FOTA_ROLLOUT_FINISHED || w->state == FOTA_ROLLOUT_CANCELLED ||
               w->state == FOTA_ROLLOUT_CANCELLING || w->state == FOTA_ROLLOUT_INTERRUPTED;
    if (k > w->stage)
        return over ? "skipped" : "pending";
    if (!g->started)
        return over ? "skipped" : "awaiting_approval";
    if (k < w->stage)
        return "passed";
    return over ? "ended" : "running";
}

static json_t *stage_json(const struct fota_rollout_row *w, int k)
{
    const struct fota_rollout_stage *g = &w->stages[k];
    json_t *j = json_pack("{s:i, s:s, s:s, s:i, s:o, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o}",
                          "stage", k + 1, "kind", kind_name(g->kind), "state", stage_state(w, k),
                          "success", g->success, "max_failures", opt_count(g->max_failures),
                          "approval", g->approval, "total", (json_int_t)g->total, "succeeded",
                          (json_int_t)g->succeeded, "failed", (json_int_t)g->failed, "timed_out",
                          (json_int_t)g->timed_out, "deleted", (json_int_t)g->deleted,
                          "cancelled", (json_int_t)g->cancelled, "started", when(g->started),
                          "approved", when(g->approved));
    if (g->kind == FOTA_STAGE_PERCENT || g->kind == FOTA_STAGE_COUNT ||
        g->kind == FOTA_STAGE_DEVICES)
        json_object_set_new(j, g->kind == FOTA_STAGE_PERCENT ? "percent"
                               : g->kind == FOTA_STAGE_COUNT ? "count"
                                                             : "listed",
                            json_integer(g->value));
    return j;
}

static json_t *hours_json(const struct fota_rollout_row *w)
{
    if (w->hours_from == FOTA_ROLLOUT_ANY_HOUR)
        return json_null();
    char from[16], to[16];
    snprintf(from, sizeof from, "%02d:%02d", w->hours_from / 60, w->hours_from % 60);
    snprintf(to, sizeof to, "%02d:%02d", w->hours_to / 60, w->hours_to % 60);
    int64_t now = fota_clock_wall_s();
    return json_pack("{s:s, s:s, s:b, s:I}", "from", from, "to", to, "open",
                     fota_rollout_hours_open(w->hours_from, w->hours_to, now), "next_change",
                     (json_int_t)fota_rollout_hours_next(w->hours_from, w->hours_to, now));
}

static void put_counts(json_t *j, const struct fota_rollout_counts *n)
{
    const struct {
        const char *k;
        int64_t v;
    } counts[] = { { "total", n->total }, { "skipped", n->skipped }, { "queued", n->queued },
                   { "waiting", n->waiting }, { "in_progress", n->active },
                   { "delivered", n->delivered }, { "acked", n->acked },
                   { "verifying", n->verifying }, { "succeeded", n->succeeded },
                   { "failed", n->failed }, { "timed_out", n->timed_out },
                   { "deleted", n->deleted }, { "cancelled", n->cancelled } };
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        json_object_set_new(j, counts[i].k, json_integer(counts[i].v));
}

json_t *fota_rollout_json(const struct fota_rollout_row *w)
{
    json_error_t jerr;
    json_t *f = json_loads(w->filter, 0, &jerr);
    json_t *j = json_pack("{s:I, s:I, s:s, s:o, s:b, s:I, s:I, s:b, s:o, s:I, s:s}",
                          "id", (json_int_t)w->id, "product_id", (json_int_t)w->product_id,
                          "version", w->version, "filter", json_is_object(f) ? f : json_object(),
                          "reboot", w->reboot, "window", (json_int_t)w->window,
                          "timeout", (json_int_t)w->timeout_s, "halted", w->halted,
                          "max_failures", opt_count(w->max_failures),
                          "created", (json_int_t)w->created, "state", state_name(w->state));
    if (!json_is_object(f))
        json_decref(f);
    put_counts(j, &w->n);
    json_object_set_new(j, "elapsed_ms",
                        json_pack("{s:o, s:o, s:o}", "delivered", mark(w->ms_delivered), "acked",
                                  mark(w->ms_acked), "finished", mark(w->ms_finished)));
    json_object_set_new(j, "health", json_integer(w->health_s));
    json_object_set_new(j, "max_reboots", json_integer(w->max_reboots));
    json_object_set_new(j, "hours", hours_json(w));
    json_object_set_new(j, "seed", json_integer(w->seed));
    json_object_set_new(j, "rollback_of", w->rollback_of ? json_integer(w->rollback_of)
                                                         : json_null());
    json_object_set_new(j, "paused", w->state == FOTA_ROLLOUT_PAUSED
                                         ? json_pack("{s:s, s:b, s:o}", "reason", w->pause_reason,
                                                     "auto", w->halted, "at", when(w->paused_at))
                                         : json_null());
    int nst = w->nstages > 0 ? w->nstages : 0;
    json_object_set_new(j, "stage", json_integer(nst ? w->stage + 1 : 1));
    json_t *arr = json_array();
    for (int k = 0; k < nst; k++)
        json_array_append_new(arr, stage_json(w, k));
    json_object_set_new(j, "stages", arr);
    return j;
}

json_t *fota_rollout_member_json(const struct fota_rollout_member_row *m, int64_t health_s)
{
    json_t *health = json_null();
    if (m->reported > 0 && health_s > 0)
        health = json_pack("{s:I, s:I, s:i}", "since", (json_int_t)m->reported, "until",
                           (json_int_t)(m->reported + health_s), "boots", m->boots);
    return json_pack("{s:I, s:i, s:s, s:o, s:o, s:s, s:o, s:o, s:o, s:I}", "device_id",
                     (json_int_t)m->device_id, "stage", m->stage + 1, "state",
                     fota_rollout_member_state_name(m->state), "reason",
                     m->reason ? json_string(fota_rollout_reason_name(m->reason)) : json_null(),
                     "health", health, "pre_version", m->pre_version, "command_id",
                     m->command_id > 0 ? json_integer(m->command_id) : json_null(), "pushed",
                     when(m->pushed), "reported", when(m->reported), "updated",
                     (json_int_t)m->updated);
}

json_t *fota_rollout_sample_json(const struct fota_rollout_sample *x)
{
    json_t *j = json_pack("{s:I}", "t", (json_int_t)x->t);
    put_counts(j, &x->n);
    json_object_del(j, "total");
    json_object_del(j, "skipped");
    return j;
}
