/* rollout_push.c - a rollout's pushes: the sys_upgrade line encoded once
 * per rollout with placeholders for the owner key and the nonce (each push
 * patches a copy: a key derivation from the pre-keyed HMAC and two memcpy),
 * written through the device channel's find-and-send; the window pump that
 * keeps at most `window` devices of a product between push and report, the
 * reboots after a success and the report timeouts (monotonic). The
 * sys_reboot line is encoded once per rollout the same way. */
#include "rollout_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "devchan.h"
#include "devproto.h"
#include "keys.h"
#include "log.h"
#include "xmalloc.h"

#define TMPL_NONCE 1999999999

/* Encodes action's push into t with placeholders: a key of 'A's and
 * TMPL_NONCE, each found exactly once and in that order, or t stays empty
 * (each push is then encoded in full). */
static void make_one(struct fota_rollout_tmpl *t, const char *action, const char *version)
{
    char buf[FOTA_DEVPROTO_PUSH_MAX], auth[FOTA_KEY_BUF], nonce[32];
    memset(auth, 'A', FOTA_KEY_LEN);
    auth[FOTA_KEY_LEN] = '\0';
    int n = fota_devproto_push_rpc(buf, sizeof buf, action, version, auth, TMPL_NONCE);
    if (n <= 0)
        return;
    buf[n] = '\0';
    snprintf(nonce, sizeof nonce, "\"nonce\": %d", TMPL_NONCE);
    const char *a = strstr(buf, auth), *k = strstr(buf, nonce);
    if (!a || !k || a > k || strstr(a + 1, auth) || strstr(k + 1, nonce))
        return;
    free(t->text);
    t->text = fota_xmemdup(buf, (size_t)n);
    t->len = n;
    t->auth_off = (int)(a - buf);
    t->nonce_off = (int)(k - buf) + (int)strlen(nonce) - 10;
    t->nonce_end = (int)(k - buf) + (int)strlen(nonce);
}

void fota_rollout_make_template(struct fota_rollout *r)
{
    make_one(&r->upgrade, "sys_upgrade", r->row.version);
    make_one(&r->reboot, "sys_reboot", NULL);
}

/* t's line with auth and nonce in buf: its length, or -1 when t cannot
 * carry them (the caller encodes the push in full). */
static int from_template(const struct fota_rollout_tmpl *t, const char *auth, int64_t nonce,
                         char buf[FOTA_DEVPROTO_PUSH_MAX])
{
    if (!t->text || strlen(auth) != FOTA_KEY_LEN)
        return -1;
    memcpy(buf, t->text, (size_t)t->nonce_off);
    memcpy(buf + t->auth_off, auth, FOTA_KEY_LEN);
    int k = snprintf(buf + t->nonce_off, 16, "%d", (int)nonce);
    int rest = t->len - t->nonce_end;
    if (k <= 0 || t->nonce_off + k + rest >= FOTA_DEVPROTO_PUSH_MAX)
        return -1;
    memcpy(buf + t->nonce_off + k, t->text + t->nonce_end, (size_t)rest);
    return t->nonce_off + k + rest;
}

int fota_rollout_push_one(struct fota_rollout *r, const struct fota_rollout_member *m,
                          const char *action)
{
    struct fota_rollouts *ro = r->ro;
    char auth[FOTA_KEY_BUF], buf[FOTA_DEVPROTO_PUSH_MAX];
    if (!ro->kd)
        ro->kd = fota_key_deriver_new(ro->srv->secret);
    if (ro->kd) {
        fota_key_deriver_run(ro->kd, "owner", m->device_id, m->keygen, auth);
    } else {
        struct fota_device d = { .id = m->device_id, .key_generation = m->keygen };
        fota_server_device_key(ro->srv, "owner", &d, auth);
    }
    int reboot = strcmp(action, "sys_reboot") == 0;
    int64_t nonce = reboot ? fota_devchan_nonce() : m->nonce;
    int n = from_template(reboot ? &r->reboot : &r->upgrade, auth, nonce, buf);
    if (n < 0)
        n = fota_devproto_push_rpc(buf, sizeof buf, action, reboot ? NULL : r->row.version, auth,
                                   nonce);
    if (n < 0)
        return n;
    return fota_devchan_send(ro->ch, m->device_id, buf, n);
}

int64_t fota_rollout_product_active(struct fota_rollouts *ro, int64_t product_id)
{
    int64_t a = 0;
    for (struct fota_rollout *r = ro->list; r; r = r->next)
        if (r->row.product_id == product_id)
            a += r->row.n.active + (int64_t)r->offering;
    return a;
}

/* Several instances: m's device is not connected here; the instance
 * holding it pushes it. m counts against the window from now on, WAITING
 * until that instance says it pushed (back to QUEUED when none says so by
 * FOTA_ROLLOUT_TAKE_S). */
static void push_remote(struct fota_rollout *r, struct fota_rollout_member *m)
{
    fota_rollout_remote_push(r, m);
    m->remote = 1;
    m->active = 1;
    r->row.n.active++;
    m->pushed_s = (int32_t)fota_rollout_now_s(r);
}

/* Pushes member m (WAITING) if its device is connected, else it is queued
 * until it connects (several instances: the instance holding it is asked
 * to push it). Returns 1 if it now counts against the window. */
static int push_member(struct fota_rollout *r, struct fota_rollout_member *m)
{
    int here = fota_devchan_online(r->ro->ch, m->device_id);
    if (!here && r->ro->remote && !r->pull) {
        push_remote(r, m);
        return 1;
    }
    int rc = here ? fota_rollout_push_one(r, m, "sys_upgrade") : FOTA_ENOENT;
    if (rc == FOTA_ENOENT) {
        if (m->cmd_id > 0) { /* gone again before its push: a new row when it is back */
            fota_rollout_rows_cancel(r->ro, &m->cmd_id, 1,
                                     "the device went offline before its push");
            m->cmd_id = 0;
        }
        r->row.n.waiting--;
        r->row.n.queued++;
        fota_rollout_set_state(r, m, FOTA_RM_QUEUED); /* pushed when it connects */
        return 0;
    }
    if (rc < 0) {
        FOTA_WARN("rollout push failed rollout=%lld dev=%lld error=%s", (long long)r->row.id,
                  (long long)m->device_id, fota_errname(rc));
        r->row.n.waiting--;
        fota_rollout_finish_member(r, m, FOTA_RM_FAILED, FOTA_RR_PUSH);
        return 0;
    }
    fota_rollout_count_delivered(r, m);
    fota_rollout_set_state(r, m, FOTA_RM_DELIVERED);
    /* a member that connected has its row, or a job writes it (rollout.c) */
    r->need_rows += m->cmd_id == 0 && !m->row_pending;
    return 1;
}

void fota_rollout_pump(struct fota_rollout *r)
{
    r->pumped = 1;
    if (!fota_rollout_may_start(r))
        return;
    if (r->pull) {
        fota_rollout_pull_pump(r);
        return;
    }
    int64_t room_used = fota_rollout_product_active(r->ro, r->row.product_id);
    int64_t now = fota_clock_mono_ms();
    size_t k = 0;
    /* Members that came online first (they waited longest), then the rest in id order. */
    while (k < r->nready && r->ready[k].due_ms <= now && room_used < r->row.window) {
        struct fota_rollout_member *m = &r->m[r->ready[k++].idx];
        if (m->state == FOTA_RM_WAITING && !m->remote && fota_rollout_eligible(r, m))
            room_used += push_member(r, m); /* a later stage's member: found by the cursor */
    }
    if (k > 0) {
        memmove(r->ready, r->ready + k, (r->nready - k) * sizeof *r->ready);
        r->nready -= k;
    }
    while (r->cursor < r->n && room_used < r->row.window) {
        struct fota_rollout_member *m = &r->m[r->cursor++];
        if (m->state == FOTA_RM_WAITING && !m->remote && fota_rollout_eligible(r, m))
            room_used += push_member(r, m);
    }
    fota_rollout_marks(r);
    if (r->ro->remote)
        fota_rollout_remote_send(r->ro);
}

void fota_rollout_taken(struct fota_rollout *r, struct fota_rollout_member *m)
{
    if (m->state != FOTA_RM_WAITING && m->state != FOTA_RM_QUEUED)
        return;
    m->remote = 0;
    fota_rollout_count_delivered(r, m);
    fota_rollout_set_state(r, m, FOTA_RM_DELIVERED);
    r->need_rows += m->cmd_id == 0 && !m->row_pending;
    fota_rollout_marks(r);
}

/* A push asked of another instance that none made (the device left before
 * it, or the notification was lost): its slot is free again, the member
 * queued (found again once another instance or this one holds its device),
 * or cancelled when the rollout no longer pushes. */
static void untaken(struct fota_rollout *r, struct fota_rollout_member *m)
{
    m->remote = 0;
    m->active = 0;
    r->row.n.active--;
    if (!fota_rollout_live(r->row.state)) {
        r->row.n.waiting--;
        fota_rollout_finish_member(r, m, FOTA_RM_CANCELLED, FOTA_RR_NONE);
        return;
    }
    FOTA_DEBUG("rollout push not taken rollout=%lld dev=%lld", (long long)r->row.id,
               (long long)m->device_id);
    r->row.n.waiting--;
    r->row.n.queued++;
    fota_rollout_set_state(r, m, FOTA_RM_QUEUED);
    fota_rollout_act_soon(r->ro);
}

void fota_rollout_send_reboots(struct fota_rollout *r)
{
    for (size_t i = 0; i < r->nreboots && r->nreboot > 0; i++) {
        struct fota_rollout_member *m = &r->m[r->reboots[i]];
        if (!m->reboot_due)
            continue;   /* its device was deleted meanwhile */
        m->reboot_due = 0;
        r->nreboot--;
        fota_rollout_push_one(r, m, "sys_reboot"); /* FOTA_ENOENT: not connected, no reboot */
    }
    r->nreboots = 0;
}

void fota_rollout_check_timeouts(struct fota_rollout *r)
{
    if (r->pull) {
        fota_rollout_pull_timeouts(r);
        return;
    }
    int64_t now_s = (fota_clock_mono_ms() - r->t0_ms) / 1000;
    for (size_t i = 0; i < r->n && r->row.n.active > 0; i++) {
        struct fota_rollout_member *m = &r->m[i];
        if (m->remote &&
            now_s >= (int64_t)m->pushed_s + FOTA_ROLLOUT_TAKE_S + r->ro->events_late_s)
            untaken(r, m);
        else if (m->active && now_s >= (int64_t)m->pushed_s + r->row.timeout_s)
            fota_rollout_finish_member(r, m, FOTA_RM_TIMEOUT, FOTA_RR_NONE);
    }
}

int fota_rollout_repush(struct fota_rollout *r, struct fota_rollout_member *m)
{
    if (!fota_devchan_online(r->ro->ch, m->device_id)) {
        if (r->ro->remote && !r->pull)
            fota_rollout_remote_push(r, m); /* the instance holding it, if any */
        return 0;
    }
    int rc = fota_rollout_push_one(r, m, "sys_upgrade");
    if (rc < 0 && rc != FOTA_ENOENT)
        FOTA_WARN("rollout push again failed rollout=%lld dev=%lld error=%s",
                  (long long)r->row.id, (long long)m->device_id, fota_errname(rc));
    else if (rc == 0)
        FOTA_INFO("rollout pushed again rollout=%lld dev=%lld nonce=%d", (long long)r->row.id,
                  (long long)m->device_id, (int)m->nonce);
    return rc == 0;
}
