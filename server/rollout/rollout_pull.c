/* rollout_pull.c - rollouts of pull-based devices (arduino products:
 * sketches, Tasmota, ESPHome). Such a device cannot be pushed to: it asks
 * for its firmware. A rollout offers it its version by writing the member's
 * sys_upgrade command row as queued, which the device's next check-in takes
 * as its target, and tells the hub (FOTA_HUB_DEVICE_OFFER), so that a device
 * reachable over MQTT is told to fetch it now. A member holds a window slot
 * from the offer until its outcome (DEVICE_REPORT: the confirming check-in,
 * a failing one, Tasmota's own report) or its timeout. Offers go to online
 * members (a check-in within the product's checkin_interval, or Online over
 * MQTT); the others wait, queued, until their device shows up.
 *
 * Deadlines (monotonic, from the offer, then from the download once the
 * device took it): a device told over MQTT has the rollout's timeout; one
 * that polls has its checkin_interval on top. An offer nobody took by then is
 * withdrawn when the device never checked in since (its row is cancelled, the
 * member waits again and frees its slot: a device that never checks in stays
 * waiting without holding the window); a device that checked in without
 * taking it, or took it and never confirmed, timed out. docs/arduino.md. */
#include "rollout_int.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "fota_str.h"
#include "hub.h"
#include "log.h"
#include "xmalloc.h"

int fota_rollout_pull_setup(struct fota_rollout *r, struct fota_store *st)
{
    struct fota_arduino_product *p = fota_xmalloc(sizeof(*p));
    int rc = st->ops->arduino_product_get(st, r->row.product_id, p);

    if (rc == 0) {
        r->pull = 1;
        r->grace_s = p->checkin_interval > 0 ? p->checkin_interval : 0;
        fota_rollout_health_setup(r);   /* the image a healthy member checks in with */
    }
    free(p);
    return rc == 0 ? 1 : rc == FOTA_ENOENT ? 0 : rc;
}

int fota_rollout_pull_presence(struct fota_store *st, int64_t product_id, int64_t grace_s,
                               struct fota_rollout_seen **out, size_t *n)
{
    struct fota_arduino_device *ds = NULL;
    size_t nd = 0;
    int64_t now = fota_clock_wall_s();
    int rc = st->ops->arduino_device_list(st, product_id, &ds, &nd);

    *out = NULL;
    *n = 0;
    if (rc < 0)
        return rc;
    *out = fota_xcalloc(nd ? nd : 1, sizeof **out);
    for (size_t i = 0; i < nd; i++) {
        struct fota_rollout_seen *s = &(*out)[i];
        s->device_id = ds[i].device_id;
        s->mqtt = ds[i].mqtt_topic[0] != '\0';
        /* a device known over MQTT is where its LWT says; one that polls is
         * online while its last check-in is younger than checkin_interval */
        s->online = s->mqtt ? strcmp(ds[i].mqtt_lwt, "Online") == 0
                            : ds[i].last_checkin > 0 && now - ds[i].last_checkin < grace_s;
    }
    *n = nd;
    free(ds);
    return 0;
}

static int cmp_seen(const void *a, const void *b)
{
    int64_t x = ((const struct fota_rollout_seen *)a)->device_id;
    int64_t y = ((const struct fota_rollout_seen *)b)->device_id;
    return x < y ? -1 : x > y;
}

const struct fota_rollout_seen *fota_rollout_pull_find(const struct fota_rollout_seen *seen,
                                                      size_t n, int64_t device_id)
{
    struct fota_rollout_seen key = { .device_id = device_id };
    return seen && n ? bsearch(&key, seen, n, sizeof *seen, cmp_seen) : NULL;
}

void fota_rollout_pull_call_back(struct fota_rollout *r, const int64_t *cmd_ids, size_t k)
{
    fota_rollout_rows_cancel(r->ro, cmd_ids, k, "the rollout was cancelled");
}

size_t fota_rollout_pull_recall(struct fota_rollout *r, const char *why)
{
    struct fota_rollout_counts *n = &r->row.n;
    int64_t *back = NULL;
    size_t k = 0;

    for (size_t i = 0; i < r->n && n->active > 0; i++) {
        struct fota_rollout_member *m = &r->m[i];
        if (m->state != FOTA_RM_DELIVERED || m->cmd_id <= 0)
            continue;   /* not offered, or downloading already: it goes on */
        if (!back)
            back = fota_xreallocarray(NULL, r->n, sizeof *back);
        back[k++] = m->cmd_id;
        m->cmd_id = 0;
        m->active = 0;
        m->triggered = 0;
        n->active--;
        n->delivered--;
        n->waiting++;
        fota_rollout_set_state(r, m, FOTA_RM_WAITING);
    }
    fota_rollout_rows_cancel(r->ro, back, k, why);
    free(back);
    return k;
}

/* Offers to k members of a rollout: their command rows, written by a job
 * (one transaction; a device deleted meanwhile makes the batch fail: then
 * one at a time), then the hub's OFFER in the continuation. */
struct offer {
    struct fota_rollout *r;            /* held (r->jobs) until the continuation */
    struct fota_command t;             /* params owned */
    size_t k;
    int64_t *ids, *nonces, *cids;
    uint32_t *idx;
};

static void offer_free(struct offer *o)
{
    json_decref(o->t.params);
    free(o->ids);
    free(o->nonces);
    free(o->cids);
    free(o->idx);
    free(o);
}

static void offer_job(struct fota_store *st, void *arg)
{
    struct offer *o = arg;
    int rc = st->ops->command_create_many(st, &o->t, o->ids, o->nonces, o->cids, o->k);
    for (size_t i = 0; rc < 0 && i < o->k; i++)
        if (st->ops->command_create_many(st, &o->t, &o->ids[i], &o->nonces[i], &o->cids[i], 1) < 0)
            o->cids[i] = 0;
}

/* Each member with its row is offered on the hub; one that stopped
 * waiting meanwhile (a halt, a cancel, a pause) has its row cancelled. */
static void offer_done(void *arg, int cancelled)
{
    struct offer *o = arg;
    struct fota_rollout *r = o->r;
    struct fota_rollouts *ro = r->ro;
    int64_t *gone = fota_xreallocarray(NULL, o->k, sizeof *gone);
    size_t ngone = 0, unreachable = 0;
    int64_t taken = 0, now = fota_clock_mono_ms();
    if (cancelled) {
        free(gone);
        offer_free(o);
        return;
    }
    r->jobs--;
    r->offering -= o->k;
    for (size_t i = 0; i < o->k; i++) {
        struct fota_rollout_member *m = &r->m[o->idx[i]];
        m->row_pending = 0;
        if (m->state != FOTA_RM_WAITING || !fota_rollout_may_start(r) ||
            !fota_rollout_eligible(r, m)) {
            if (o->cids[i] > 0)
                gone[ngone++] = o->cids[i];
            if (m->state == FOTA_RM_WAITING)
                fota_rollout_ready_add(r, m, now);   /* offered when the rollout goes on */
            continue;
        }
        if (o->cids[i] <= 0) {
            FOTA_WARN("rollout offer failed rollout=%lld dev=%lld reason=\"its command row "
                      "cannot be written\"", (long long)r->row.id, (long long)m->device_id);
            r->row.n.waiting--;
            fota_rollout_finish_member(r, m, FOTA_RM_FAILED, FOTA_RR_PUSH);
            continue;
        }
        struct fota_hub_offer ev = { m->device_id, r->row.product_id, r->row.version };
        int64_t a = fota_hub_publish(ro->srv, FOTA_HUB_DEVICE_OFFER, &ev);
        if (a == FOTA_HUB_OFFER_UNREACHABLE) {
            /* known over MQTT but not reachable now: it waits for its Online */
            gone[ngone++] = o->cids[i];
            r->row.n.waiting--;
            r->row.n.queued++;
            fota_rollout_set_state(r, m, FOTA_RM_QUEUED);
            unreachable++;
            continue;
        }
        m->cmd_id = o->cids[i];
        m->triggered = a == FOTA_HUB_OFFER_TRIGGERED;
        fota_rollout_count_delivered(r, m);
        fota_rollout_set_state(r, m, FOTA_RM_DELIVERED);
        taken++;
    }
    fota_rollout_rows_cancel(ro, gone, ngone, "the device is not reachable over MQTT");
    FOTA_DEBUG("rollout offers rollout=%lld offered=%lld unreachable=%zu", (long long)r->row.id,
               (long long)taken, ngone);
    if (unreachable || ngone)
        fota_rollout_act_soon(ro);   /* their slots go to the next members */
    fota_rollout_marks(r);
    free(gone);
    offer_free(o);
}

/* Queues the offers to the k members idx[] (they hold window slots until
 * the job is back). */
static void offer(struct fota_rollout *r, const uint32_t *idx, size_t k)
{
    struct offer *o = fota_xcalloc(1, sizeof *o);
    o->r = r;
    o->k = k;
    fota_str_copy(o->t.action, sizeof o->t.action, "sys_upgrade");
    o->t.params = json_pack("{s:s}", "version", r->row.version);
    o->t.state = FOTA_CMD_QUEUED;
    o->ids = fota_xreallocarray(NULL, k, sizeof *o->ids);
    o->nonces = fota_xreallocarray(NULL, k, sizeof *o->nonces);
    o->cids = fota_xcalloc(k, sizeof *o->cids);
    o->idx = fota_xmemdup(idx, k * sizeof *idx);
    for (size_t i = 0; i < k; i++) {
        o->ids[i] = r->m[idx[i]].device_id;
        o->nonces[i] = r->m[idx[i]].nonce;
    }
    if (fota_rollout_submit(r->ro, "offer", offer_job, offer_done, o) < 0) {
        int64_t now = fota_clock_mono_ms();
        for (size_t i = 0; i < k; i++)
            fota_rollout_ready_add(r, &r->m[idx[i]], now + 1000);   /* again in a second */
        offer_free(o);
        return;
    }
    r->jobs++;
    r->offering += k;
    for (size_t i = 0; i < k; i++)
        r->m[idx[i]].row_pending = 1;
}

void fota_rollout_pull_pump(struct fota_rollout *r)
{
    int64_t room = r->row.window - fota_rollout_product_active(r->ro, r->row.product_id);
    int64_t now = fota_clock_mono_ms();
    uint32_t *idx;
    size_t k = 0, ready_used = 0;

    if (room <= 0 || !fota_rollout_may_start(r) || r->offering)
        return;   /* an offer on its way: its continuation pumps again */
    idx = fota_xreallocarray(NULL, (size_t)(room < (int64_t)r->n ? room : (int64_t)r->n) + 1,
                             sizeof *idx);
    /* members whose device showed up first (they waited longest) */
    while (ready_used < r->nready && r->ready[ready_used].due_ms <= now && (int64_t)k < room) {
        struct fota_rollout_member *m = &r->m[r->ready[ready_used++].idx];
        if (m->state == FOTA_RM_WAITING && !m->row_pending && fota_rollout_eligible(r, m))
            idx[k++] = (uint32_t)(m - r->m);
    }
    while (r->cursor < r->n && (int64_t)k < room) {
        struct fota_rollout_member *m = &r->m[r->cursor++];
        if (m->state == FOTA_RM_WAITING && !m->row_pending && fota_rollout_eligible(r, m))
            idx[k++] = (uint32_t)(m - r->m);
    }
    if (ready_used > 0) {
        memmove(r->ready, r->ready + ready_used, (r->nready - ready_used) * sizeof *r->ready);
        r->nready -= ready_used;
    }
    if (k > 0)
        offer(r, idx, k);
    free(idx);
    fota_rollout_marks(r);
}

/* The offer to m ran out with the device unseen since: it goes back to
 * waiting (a device told over MQTT is told again when the window has room,
 * one that polls waits until it checks in) and frees its slot. */
static void withdraw(struct fota_rollout *r, struct fota_rollout_member *m)
{
    struct fota_rollout_counts *n = &r->row.n;
    int64_t cmd = m->cmd_id;

    fota_rollout_rows_cancel(r->ro, &cmd, 1, "the device did not check in");
    m->cmd_id = 0;
    m->active = 0;
    n->active--;
    n->delivered--;
    if (m->triggered) {
        n->waiting++;
        fota_rollout_set_state(r, m, FOTA_RM_WAITING);
        fota_rollout_ready_add(r, m, fota_clock_mono_ms());
    } else {
        n->queued++;
        fota_rollout_set_state(r, m, FOTA_RM_QUEUED);
    }
    FOTA_INFO("rollout offer withdrawn rollout=%lld dev=%lld reason=\"no check-in since the "
              "offer\" waits=%s", (long long)r->row.id, (long long)m->device_id,
              m->triggered ? "window" : "check-in");
    m->triggered = 0;
}

/* An offered member past its deadline, and what the store says of it. */
struct late {
    uint32_t idx;
    int64_t cmd_id, device_id;
    int replaced;                      /* its row was replaced by a newer upgrade */
    int have;                          /* its arduino row was read: */
    int64_t last_checkin;
};

struct lates {
    struct fota_rollout *r;            /* held (r->jobs) until the continuation */
    struct late *v;
    size_t n;
};

/* Whether the offer's command row was replaced by a newer upgrade of the
 * device (a direct one, or another rollout's offer: command_create_many). */
static int replaced(struct fota_store *st, int64_t cmd_id)
{
    struct fota_command c;
    int yes;

    if (cmd_id <= 0 || st->ops->command_get(st, cmd_id, &c) != 0)
        return 0;
    yes = c.state == FOTA_CMD_CANCELLED && json_object_get(c.result, "replaced_by") != NULL;
    fota_store_command_cleanup(&c);
    return yes;
}

static void lates_job(struct fota_store *st, void *arg)
{
    struct lates *l = arg;
    struct fota_arduino_device a;
    for (size_t i = 0; i < l->n; i++) {
        struct late *x = &l->v[i];
        x->replaced = replaced(st, x->cmd_id);
        if (!x->replaced && st->ops->arduino_device_get(st, x->device_id, &a) == 0) {
            x->have = 1;
            x->last_checkin = a.last_checkin;
        }
    }
}

/* An offered member timed out: replaced, withdrawn (not seen since the
 * offer) or timed out. */
static void late_end(struct fota_rollout *r, struct fota_rollout_member *m, const struct late *x,
                     int64_t now_s)
{
    if (x->replaced) {
        /* a newer upgrade took its place: it ends (never offered again,
         * which would replace that one in turn), its row stays replaced */
        FOTA_INFO("rollout member timed out rollout=%lld dev=%lld state=replaced",
                  (long long)r->row.id, (long long)m->device_id);
        fota_rollout_finish_member(r, m, FOTA_RM_TIMEOUT, FOTA_RR_NONE);
        m->dirty = 2; /* only its member row is left to write */
        return;
    }
    /* seconds on both sides: a check-in in the second of the offer
     * counts as before it (a withdrawal is no failure) */
    int64_t offered = r->row.created + m->pushed_s;
    if (!x->have || x->last_checkin <= offered) {
        withdraw(r, m);
        return;
    }
    FOTA_INFO("rollout member timed out rollout=%lld dev=%lld state=offered waited_s=%lld",
              (long long)r->row.id, (long long)m->device_id, (long long)(now_s - m->pushed_s));
    fota_rollout_finish_member(r, m, FOTA_RM_TIMEOUT, FOTA_RR_NONE);
}

static void lates_done(void *arg, int cancelled)
{
    struct lates *l = arg;
    struct fota_rollout *r = l->r;
    if (!cancelled) {
        int64_t now_s = (fota_clock_mono_ms() - r->t0_ms) / 1000;
        r->jobs--;
        r->timing = 0;
        for (size_t i = 0; i < l->n; i++) {
            struct fota_rollout_member *m = &r->m[l->v[i].idx];
            if (m->active && m->state == FOTA_RM_DELIVERED && m->cmd_id == l->v[i].cmd_id)
                late_end(r, m, &l->v[i], now_s);   /* else it moved on meanwhile */
        }
        fota_rollout_marks(r);
        fota_rollout_act_soon(r->ro);   /* freed slots */
    }
    free(l->v);
    free(l);
}

void fota_rollout_pull_timeouts(struct fota_rollout *r)
{
    int64_t now_s = (fota_clock_mono_ms() - r->t0_ms) / 1000;
    struct lates *l = NULL;

    for (size_t i = 0; i < r->n && r->row.n.active > 0; i++) {
        struct fota_rollout_member *m = &r->m[i];
        if (!m->active)
            continue;
        int64_t limit = r->row.timeout_s + (m->triggered ? 0 : r->grace_s);
        if (now_s < (int64_t)m->pushed_s + limit)
            continue;
        if (m->state == FOTA_RM_DELIVERED) {
            /* the store says whether it was replaced or seen since (a job) */
            if (r->timing)
                continue;
            if (!l) {
                l = fota_xcalloc(1, sizeof *l);
                l->v = fota_xreallocarray(NULL, (size_t)r->row.n.active, sizeof *l->v);
            }
            if (l->n < (size_t)r->row.n.active)
                l->v[l->n++] = (struct late){ .idx = (uint32_t)i, .cmd_id = m->cmd_id,
                                              .device_id = m->device_id };
            continue;
        }
        FOTA_INFO("rollout member timed out rollout=%lld dev=%lld state=downloaded waited_s=%lld",
                  (long long)r->row.id, (long long)m->device_id,
                  (long long)(now_s - m->pushed_s));
        fota_rollout_finish_member(r, m, FOTA_RM_TIMEOUT, FOTA_RR_NONE);
    }
    fota_rollout_marks(r);
    if (!l)
        return;
    l->r = r;
    if (fota_rollout_submit(r->ro, "timeouts", lates_job, lates_done, l) < 0) {
        free(l->v);
        free(l);
        return;   /* looked at again on the next tick */
    }
    r->jobs++;
    r->timing = 1;
}

void fota_rollout_pull_resume(struct fota_rollout *r, const struct fota_rollout_seen *seen,
                              size_t ns)
{
    if (!seen) {
        FOTA_WARN("rollout presence unknown rollout=%lld: queued members wait for their "
                  "devices", (long long)r->row.id);
        return;
    }
    for (size_t i = 0; i < r->n; i++) {
        struct fota_rollout_member *m = &r->m[i];
        const struct fota_rollout_seen *s = fota_rollout_pull_find(seen, ns, m->device_id);
        if (!s)
            continue;
        if (m->active)
            m->triggered = s->mqtt != 0;
        else if (m->state == FOTA_RM_QUEUED && s->online) {
            r->row.n.queued--;
            r->row.n.waiting++;
            fota_rollout_set_state(r, m, FOTA_RM_WAITING);
        }
    }
    r->cursor = 0;
}
