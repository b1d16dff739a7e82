/* devchan_cmd.c - command delivery on the device channel: a command the
 * REST API just stored goes to its device's connection now (with a wait for
 * the reply when the caller wants one), or stays queued and is delivered
 * when the device next comes online, one per second, from one channel-wide
 * list of devices to check. The store's part (which devices have queued
 * commands, a device's oldest) runs as store jobs (devchan_job.c). */
#include "devchan_int.h"

#include <stdlib.h>

#include <string.h>

#include <event2/event.h>

#include "clock.h"
#include "devcache.h"
#include "log.h"
#include "recovery.h"
#include "xmalloc.h"

int fota_devchan_deliver(struct fota_devchan *ch, struct fota_command *cmd, int key_generation,
                         unsigned timeout_s, fota_devchan_done_cb cb, void *ud,
                         struct fota_devchan_wait **wait)
{
    if (wait)
        *wait = NULL;
    struct fota_dconn *c = ch ? fota_devchan_conn_find(ch, cmd->device_id) : NULL;
    if (!c || c->closing)
        return FOTA_CMD_QUEUED;
    if (c->queued_cmd == (uint32_t)cmd->id) {
        /* The queued path read it between its store write and now, and pushed it:
         * the device has it (same nonce); only the wait for its reply is added. */
        cmd->state = fota_devchan_push_no_reply(cmd) ? FOTA_CMD_DONE : FOTA_CMD_DELIVERED;
        FOTA_DEBUG("command pushed already conn=%llu dev=%lld cmd=%lld nonce=%lld",
                   (unsigned long long)c->id, (long long)cmd->device_id, (long long)cmd->id,
                   (long long)cmd->nonce);
    } else {
        int rc = fota_devchan_push(c, cmd, key_generation);
        if (rc < 0)
            return rc;
        fota_devchan_requeue_note(c, cmd);   /* redelivered if c drops first */
    }
    if (cb && cmd->state == FOTA_CMD_DELIVERED) {
        struct fota_devchan_wait *w =
            fota_devchan_wait_add(ch, cmd->device_id, cmd->nonce, cmd->id, timeout_s, cb, ud);
        if (wait)
            *wait = w;
    }
    return cmd->state;
}

/* A connection's queued commands, read by a store job: the oldest with its
 * device's key generation (the push's owner key), and how many there are. */
struct deliver_job {
    struct fota_devchan_job j;
    int64_t device_id;
    uint64_t for_conn;                 /* the connection it reads for */
    struct fota_command *list;
    size_t n;
    int key_generation;
    uint8_t push_seq;                  /* the connection's push_seq when the read was asked */
};

static void deliver_cb(evutil_socket_t fd, short what, void *ud);
static void deliver_next(struct fota_dconn *c);

static void deliver_run(struct fota_store *st, struct fota_devchan_job *j)
{
    struct deliver_job *p = (struct deliver_job *)j;
    if (st->ops->command_list_device(st, p->device_id, FOTA_CMD_QUEUED, &p->list, &p->n) < 0) {
        p->list = NULL;
        p->n = 0;
    }
    if (p->n > 0)
        fota_recovery_hold_point("deliver_read");   /* test builds only (recovery.h) */
    if (p->n > 0 && fota_devcache_key_generation(j->srv->devcache, st, p->device_id,
                                                 &p->key_generation) < 0)
        p->key_generation = -1;
}

static void deliver_drop(struct fota_devchan_job *j)
{
    struct deliver_job *p = (struct deliver_job *)j;
    fota_store_command_list_free(p->list, p->n);
    free(p);
}

/* Pushes the oldest queued command (one per wake-up: one TCP segment, one
 * message); with more queued, the next one in 1 s. A connection that closed
 * or gave way to a newer one meanwhile gets nothing (the newer one reads
 * its own). A connection pushed to while the read ran (its creator's own
 * delivery) reads again: the list may hold that command as still queued,
 * and the new read comes after the push's store write on the same lane. */
static void deliver_done(struct fota_devchan_job *j, struct fota_dconn *unused)
{
    struct deliver_job *p = (struct deliver_job *)j;
    struct fota_dconn *c = fota_devchan_conn_by_id(j->ch, p->for_conn);
    (void)unused;
    if (!c) {
        deliver_drop(j);
        return;
    }
    c->delivering = 0;
    if (!c->online || c->closing || c->device_id != p->device_id) {
        deliver_drop(j);
        return;
    }
    if (c->push_seq != p->push_seq) {
        FOTA_DEBUG("queued commands read again conn=%llu dev=%lld reason=\"pushed meanwhile\"",
                   (unsigned long long)c->id, (long long)c->device_id);
        deliver_drop(j);
        deliver_next(c);
        return;
    }
    if (p->n > 0 && fota_devchan_push(c, &p->list[0], p->key_generation) == 0) {
        c->queued_cmd = (uint32_t)p->list[0].id;
        fota_devchan_requeue_note(c, &p->list[0]);
    }
    if (p->n > 1) {
        if (!c->deliver_ev)
            c->deliver_ev = evtimer_new(c->ch->srv->base, deliver_cb, c);
        struct timeval tv = { 1, 0 };
        evtimer_add(c->deliver_ev, &tv);
    } else if (c->deliver_ev) {
        /* Nothing more queued: an idle connection keeps no timer (memory per device). */
        event_free(c->deliver_ev);
        c->deliver_ev = NULL;
    }
    deliver_drop(j);
}

/* Reads c's queued commands in a job; its continuation pushes. */
static void deliver_next(struct fota_dconn *c)
{
    if (!c->online || c->closing || c->delivering)
        return;
    struct deliver_job *p = fota_devchan_job_new(c->ch, sizeof *p);
    p->j.run = deliver_run;
    p->j.done = deliver_done;
    p->j.drop = deliver_drop;
    p->device_id = c->device_id;
    p->for_conn = c->id;
    p->push_seq = c->push_seq;
    if (fota_devchan_job_submit(c->ch, NULL, c->device_id, &p->j) < 0) {
        free(p);   /* the lane is full: the 1 s retry asks again */
        if (!c->deliver_ev)
            c->deliver_ev = evtimer_new(c->ch->srv->base, deliver_cb, c);
        struct timeval tv = { 1, 0 };
        evtimer_add(c->deliver_ev, &tv);
        return;
    }
    c->delivering = 1;
}

static void deliver_cb(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    deliver_next(ud);
}

/* Which of the due devices have queued commands: one store query for all
 * (command_queued_devices); the ones that have get their delivery pass. */
struct kick_job {
    struct fota_devchan_job j;
    size_t n;
    int64_t *ids;
    uint8_t *queued;
    int rc;
};

static void kick_run(struct fota_store *st, struct fota_devchan_job *j)
{
    struct kick_job *p = (struct kick_job *)j;
    p->rc = st->ops->command_queued_devices(st, p->ids, p->n, p->queued);
}

static void kick_drop(struct fota_devchan_job *j)
{
    struct kick_job *p = (struct kick_job *)j;
    free(p->ids);
    free(p->queued);
    free(p);
}

static void kick_done(struct fota_devchan_job *j, struct fota_dconn *unused)
{
    struct kick_job *p = (struct kick_job *)j;
    struct fota_devchan *ch = j->ch;
    (void)unused;
    ch->nkicking--;
    for (size_t i = 0; i < p->n; i++) {
        if (p->rc == 0 && !p->queued[i])
            continue;
        struct fota_dconn *c = fota_devchan_conn_find(ch, p->ids[i]);
        if (c && !(c->deliver_ev && evtimer_pending(c->deliver_ev, NULL)))
            deliver_next(c);
    }
    kick_drop(j);
}

static void kick_cb(evutil_socket_t fd, short what, void *ud)
{
    struct fota_devchan *ch = ud;
    (void)fd;
    (void)what;
    /* The due ones, bounded per wake-up (one store query for all);
     * connections that went away are skipped, ones with their own timer
     * are left to it. */
    int64_t now = fota_clock_mono_ms();
    size_t n = 0, m = 0;
    struct kick_job *p = fota_devchan_job_new(ch, sizeof *p);
    p->ids = fota_xreallocarray(NULL, FOTA_DEVCHAN_KICK_BATCH, sizeof *p->ids);
    while (n < ch->nkick && n < FOTA_DEVCHAN_KICK_BATCH && ch->kick[n].due_ms <= now) {
        struct fota_dconn *c = fota_devchan_conn_find(ch, ch->kick[n++].device_id);
        if (c && !c->delivering && !(c->deliver_ev && evtimer_pending(c->deliver_ev, NULL)))
            p->ids[m++] = c->device_id;
    }
    p->n = m;
    p->queued = fota_xcalloc(m ? m : 1, 1);
    p->j.run = kick_run;
    p->j.done = kick_done;
    p->j.drop = kick_drop;
    if (m == 0) {
        kick_drop(&p->j);
    } else if (fota_devchan_job_submit_on(ch, NULL, NULL, &p->j) < 0) {
        kick_drop(&p->j);
        n = 0;   /* the store takes no more: these stay due, tried again below */
    } else {
        ch->nkicking++;
    }
    memmove(ch->kick, ch->kick + n, (ch->nkick - n) * sizeof *ch->kick);
    ch->nkick -= n;
    if (ch->nkick > 0) {
        int64_t wait = ch->kick[0].due_ms - now;
        struct timeval tv = { 0, (suseconds_t)(wait > 0 ? wait * 1000 : 1000) };
        if (n == 0 && wait <= 0)
            tv.tv_usec = 100000;   /* refused by a full lane: not before 100 ms */
        evtimer_add(ch->kick_ev, &tv);
    }
}

void fota_devchan_kick_later(struct fota_devchan *ch, int64_t device_id)
{
    if (!ch->kick_ev)
        ch->kick_ev = evtimer_new(ch->srv->base, kick_cb, ch);
    if (ch->nkick == ch->capkick) {
        ch->capkick = ch->capkick ? ch->capkick * 2 : 256;
        ch->kick = fota_xreallocarray(ch->kick, ch->capkick, sizeof *ch->kick);
    }
    ch->kick[ch->nkick++] =
        (struct fota_kick){ device_id, fota_clock_mono_ms() + FOTA_DEVCHAN_KICK_MS };
    if (!evtimer_pending(ch->kick_ev, NULL)) {
        struct timeval tv = { 0, FOTA_DEVCHAN_KICK_MS * 1000 };
        evtimer_add(ch->kick_ev, &tv);
    }
}

size_t fota_devchan_kick_all(struct fota_devchan *ch)
{
    size_t n = 0;
    for (struct fota_dconn *c = ch->conns; c; c = c->next)
        if (c->online && !c->closing && c->device_id > 0) {
            fota_devchan_kick_later(ch, c->device_id);
            n++;
        }
    return n;
}

void fota_devchan_kick_free(struct fota_devchan *ch)
{
    if (ch->kick_ev)
        event_free(ch->kick_ev);
    ch->kick_ev = NULL;
    free(ch->kick);
    ch->kick = NULL;
    ch->nkick = ch->capkick = 0;
}
