/* devchan_cmd.c - command delivery on the device channel: a command the
 * REST API just stored goes to its device's connection now (with a wait for
 * the reply when the caller wants one), or stays queued and is delivered
 * when the device next comes online, one per second, from one channel-wide
 * list of devices to check. */
#include "devchan_int.h"

#include <stdlib.h>

#include <string.h>

#include <event2/event.h>

#include "clock.h"
#include "xmalloc.h"

int fota_devchan_deliver(struct fota_devchan *ch, struct fota_command *cmd, unsigned timeout_s,
                         fota_devchan_done_cb cb, void *ud, struct fota_devchan_wait **wait)
{
    if (wait)
        *wait = NULL;
    struct fota_dconn *c = ch ? fota_devchan_conn_find(ch, cmd->device_id) : NULL;
    if (!c || c->closing)
        return FOTA_CMD_QUEUED;
    int rc = fota_devchan_push(c, cmd);
    if (rc < 0)
        return rc;
    fota_devchan_requeue_note(c, cmd);   /* redelivered if c drops first */
    if (cb && cmd->state == FOTA_CMD_DELIVERED) {
        struct fota_devchan_wait *w =
            fota_devchan_wait_add(ch, cmd->device_id, cmd->nonce, cmd->id, timeout_s, cb, ud);
        if (wait)
            *wait = w;
    }
    return cmd->state;
}

static void deliver_cb(evutil_socket_t fd, short what, void *ud);

/* Pushes c's oldest queued command; with more queued, the next one in 1 s. */
static void deliver_next(struct fota_dconn *c)
{
    struct fota_store *st = c->ch->srv->store;
    if (!c->online || c->closing)
        return;
    struct fota_command *list = NULL;
    size_t n = 0;
    if (st->ops->command_list_device(st, c->device_id, FOTA_CMD_QUEUED, &list, &n) == 0 && n > 0 &&
        fota_devchan_push(c, &list[0]) == 0) /* one per wake-up: one TCP segment, one message */
        fota_devchan_requeue_note(c, &list[0]);
    fota_store_command_list_free(list, n);
    if (n > 1) {
        if (!c->deliver_ev)
            c->deliver_ev = evtimer_new(c->ch->srv->base, deliver_cb, c);
        struct timeval tv = { 1, 0 };
        evtimer_add(c->deliver_ev, &tv);
        return;
    }
    /* Nothing more queued: an idle connection keeps no timer (memory per device). */
    if (c->deliver_ev)
        event_free(c->deliver_ev);
    c->deliver_ev = NULL;
}

static void deliver_cb(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    deliver_next(ud);
}

static void kick_cb(evutil_socket_t fd, short what, void *ud)
{
    struct fota_devchan *ch = ud;
    (void)fd;
    (void)what;
    /* The due ones, bounded per wake-up (one store query each); connections
     * that went away are skipped, ones with their own timer are left to it. */
    int64_t now = fota_clock_mono_ms();
    size_t n = 0;
    while (n < ch->nkick && n < 2048 && ch->kick[n].due_ms <= now) {
        struct fota_dconn *c = fota_devchan_conn_find(ch, ch->kick[n++].device_id);
        if (c && !(c->deliver_ev && evtimer_pending(c->deliver_ev, NULL)))
            deliver_next(c);
    }
    memmove(ch->kick, ch->kick + n, (ch->nkick - n) * sizeof *ch->kick);
    ch->nkick -= n;
    if (ch->nkick > 0) {
        int64_t wait = ch->kick[0].due_ms - now;
        struct timeval tv = { 0, (suseconds_t)(wait > 0 ? wait * 1000 : 1000) };
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

void fota_devchan_kick_free(struct fota_devchan *ch)
{
    if (ch->kick_ev)
        event_free(ch->kick_ev);
    ch->kick_ev = NULL;
    free(ch->kick);
    ch->kick = NULL;
    ch->nkick = ch->capkick = 0;
}
