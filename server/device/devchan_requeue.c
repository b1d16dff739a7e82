/* devchan_requeue.c - redelivery of a sys_upgrade whose connection dropped
 * before the device answered. Entries (device, connection, command) live in a
 * small hash table from the push to the connection's close; the store's row
 * decides at close (a D4 reply has moved it on from DELIVERED). */
#include "devchan_requeue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devchan_int.h"
#include "dlprogress.h"
#include "log.h"

#define RQ_BUCKETS 256
#define RQ_MARK "\"requeued\""

struct rq_entry {
    struct fota_devchan *ch;
    int64_t device_id, cmd_id;
    uint64_t conn_id;
    int64_t delivered;             /* Unix seconds */
    struct rq_entry *next;
};

static struct rq_entry *rq_buckets[RQ_BUCKETS];   /* main loop only */

static struct rq_entry **rq_slot(const struct fota_devchan *ch, int64_t device_id)
{
    struct rq_entry **pp = &rq_buckets[(uint64_t)device_id % RQ_BUCKETS];
    while (*pp && !((*pp)->ch == ch && (*pp)->device_id == device_id))
        pp = &(*pp)->next;
    return pp;
}

void fota_devchan_requeue_note(struct fota_dconn *c, const struct fota_command *cmd)
{
    if (cmd->state != FOTA_CMD_DELIVERED || strcmp(cmd->action, "sys_upgrade") != 0 ||
        c->device_id <= 0)
        return;
    struct rq_entry **pp = rq_slot(c->ch, c->device_id), *e = *pp;
    if (!e) {
        if (!(e = calloc(1, sizeof(*e))))
            return;   /* no redelivery for this one: as before */
        e->ch = c->ch;
        e->device_id = c->device_id;
        *pp = e;
    }
    e->cmd_id = cmd->id;   /* the newest upgrade pushed is the one that counts */
    e->conn_id = c->id;
    e->delivered = cmd->updated ? cmd->updated : fota_server_now();
}

/* Answers an RPC waiting for the command's reply: it is queued again. */
static void wake_waiter(struct fota_devchan *ch, const struct fota_command *cmd)
{
    for (struct fota_devchan_wait *w = ch->waits; w; w = w->next) {
        if (w->device_id == cmd->device_id && w->nonce == cmd->nonce) {
            fota_devchan_done_cb cb = w->cb;
            void *ud = w->ud;
            fota_devchan_cancel(ch, w);
            cb(ud, FOTA_CMD_QUEUED, NULL);
            return;
        }
    }
}

void fota_devchan_requeue_on_close(struct fota_dconn *c)
{
    if (c->device_id <= 0)
        return;
    struct rq_entry **pp = rq_slot(c->ch, c->device_id), *e = *pp;
    if (!e || e->conn_id != c->id)
        return;
    *pp = e->next;
    struct fota_devchan *ch = e->ch;
    struct fota_store *st = ch->srv->store;
    struct fota_command cmd;
    int64_t delivered = e->delivered;
    int rc = st->ops->command_get(st, e->cmd_id, &cmd);
    free(e);
    if (rc < 0 || cmd.state != FOTA_CMD_DELIVERED)
        return;   /* answered (or gone): nothing to redo */
    struct fota_dl_info dl;
    const char *keep = NULL;
    if (fota_dl_get(cmd.device_id, &dl) == 0 && dl.started >= delivered)
        keep = "the device started a download after the push";
    else if (strstr(cmd.result, RQ_MARK))
        keep = "already requeued once";
    if (keep) {
        FOTA_INFO("command not requeued conn=%llu dev=%lld cmd=%lld reason=\"%s\"",
                  (unsigned long long)c->id, (long long)cmd.device_id, (long long)cmd.id, keep);
        return;
    }
    cmd.state = FOTA_CMD_QUEUED;
    snprintf(cmd.result, sizeof cmd.result,
             "{" RQ_MARK ": \"the connection closed before the device's reply\"}");
    cmd.updated = fota_server_now();
    rc = st->ops->command_update(st, &cmd);
    if (rc < 0) {
        FOTA_ERROR("command requeue failed cmd=%lld dev=%lld error=%s", (long long)cmd.id,
                   (long long)cmd.device_id, fota_errname(rc));
        return;
    }
    FOTA_INFO("command requeued conn=%llu dev=%lld cmd=%lld action=%s nonce=%lld",
              (unsigned long long)c->id, (long long)cmd.device_id, (long long)cmd.id, cmd.action,
              (long long)cmd.nonce);
    wake_waiter(ch, &cmd);
    /* A newer connection of the device (a reconnect replaced this one) gets
     * it on its next delivery pass; otherwise the next identify does. */
    struct fota_dconn *now = fota_devchan_find(ch, cmd.device_id);
    if (now && now != c && now->online)
        fota_devchan_kick_later(ch, cmd.device_id);
}
