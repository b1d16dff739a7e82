/* devchan_requeue.c - redelivery of a sys_upgrade whose connection dropped
 * before the device answered (docs/protocol.md, "Commands whose connection
 * drops"). Entries (device, connection, command) live in a small hash table
 * of the channel from the push to the connection's close; the store's row
 * decides at close (a D4 reply has moved it on from DELIVERED), read and
 * written by a store job on the device's lane. */
#include "devchan_int.h"

#include <stdlib.h>

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "clock.h"
#include "rom.h"
#include "log.h"
#include "xmalloc.h"

#define RQ_MARK "requeued"   /* the result member of a requeued command */

struct fota_devchan_rq {
    int64_t device_id, cmd_id;
    uint64_t conn_id;
    int64_t delivered;                 /* Unix seconds */
    struct fota_devchan_rq *next;
};

static struct fota_devchan_rq **rq_slot(struct fota_devchan *ch, int64_t device_id)
{
    struct fota_devchan_rq **pp = &ch->rq[(uint64_t)device_id % FOTA_DEVCHAN_RQ_BUCKETS];
    while (*pp && (*pp)->device_id != device_id)
        pp = &(*pp)->next;
    return pp;
}

void fota_devchan_requeue_note(struct fota_dconn *c, const struct fota_command *cmd)
{
    if (cmd->state != FOTA_CMD_DELIVERED || strcmp(cmd->action, "sys_upgrade") != 0 ||
        c->device_id <= 0)
        return;
    struct fota_devchan_rq **pp = rq_slot(c->ch, c->device_id), *e = *pp;
    if (!e) {
        e = fota_xcalloc(1, sizeof *e);
        e->device_id = c->device_id;
        *pp = e;
    }
    e->cmd_id = cmd->id;   /* the newest upgrade pushed is the one that counts */
    e->conn_id = c->id;
    e->delivered = cmd->updated ? cmd->updated : fota_clock_wall_s();
}

/* Why cmd (still DELIVERED) stays as it is, or NULL: it goes back to the queue. */
static const char *keep_reason(struct fota_server *srv, const struct fota_command *cmd,
                               int64_t delivered)
{
    struct fota_rom_progress dl;
    if (fota_rom_progress_get(srv, cmd->device_id, &dl) == 0 && dl.started >= delivered)
        return "the device started a download after the push";
    if (json_object_get(cmd->result, RQ_MARK))
        return "already requeued once";
    return NULL;
}

/* The decision and the write, a store job on the device's lane (after the
 * push's own write and any D4 of the device). */
struct requeue_job {
    struct fota_devchan_job j;
    void (*again)(struct fota_devchan *ch, int64_t device_id);
    uint64_t conn_id;
    int64_t cmd_id, delivered;
    const char *keep;                  /* why not requeued (static text), NULL */
    int rc, requeued;
    struct fota_command cmd;
};

static void requeue_run(struct fota_store *st, struct fota_devchan_job *j)
{
    struct requeue_job *p = (struct requeue_job *)j;
    struct fota_command *cmd = &p->cmd;
    if (st->ops->command_get(st, p->cmd_id, cmd) < 0 || cmd->state != FOTA_CMD_DELIVERED)
        return;   /* answered (or gone): nothing to redo */
    if ((p->keep = keep_reason(j->srv, cmd, p->delivered)) != NULL)
        return;
    cmd->state = FOTA_CMD_QUEUED;
    json_decref(cmd->result);
    cmd->result = json_pack("{s:s}", RQ_MARK, "the connection closed before the device's reply");
    cmd->updated = fota_clock_wall_s();
    p->rc = st->ops->command_update(st, cmd);
    p->requeued = p->rc == 0;
}

static void requeue_drop(struct fota_devchan_job *j)
{
    fota_store_command_cleanup(&((struct requeue_job *)j)->cmd);
    free(j);
}

static void requeue_done(struct fota_devchan_job *j, struct fota_dconn *unused)
{
    struct requeue_job *p = (struct requeue_job *)j;
    struct fota_devchan *ch = j->ch;
    struct fota_command *cmd = &p->cmd;
    (void)unused;
    if (p->keep)
        FOTA_INFO("command not requeued conn=%llu dev=%lld cmd=%lld reason=\"%s\"",
                  (unsigned long long)p->conn_id, (long long)cmd->device_id, (long long)cmd->id,
                  p->keep);
    else if (p->rc < 0)
        FOTA_ERROR("command requeue failed conn=%llu dev=%lld cmd=%lld error=%s",
                   (unsigned long long)p->conn_id, (long long)cmd->device_id, (long long)cmd->id,
                   fota_errname(p->rc));
    if (!p->requeued) {
        requeue_drop(j);
        return;
    }
    FOTA_INFO("command requeued conn=%llu dev=%lld cmd=%lld action=%s nonce=%lld",
              (unsigned long long)p->conn_id, (long long)cmd->device_id, (long long)cmd->id,
              cmd->action, (long long)cmd->nonce);
    fota_devchan_wait_wake(ch, cmd->device_id, cmd->nonce, FOTA_CMD_QUEUED, NULL);
    /* A newer connection of the device (a reconnect replaced this one) gets
     * it on its next delivery pass; otherwise the next identify does. */
    struct fota_dconn *now = fota_devchan_conn_find(ch, cmd->device_id);
    if (now && now->id != p->conn_id && now->online && p->again)
        p->again(ch, cmd->device_id);
    requeue_drop(j);
}

void fota_devchan_requeue_on_close(struct fota_dconn *c,
                                   void (*again)(struct fota_devchan *ch, int64_t device_id))
{
    if (c->device_id <= 0)
        return;
    struct fota_devchan *ch = c->ch;
    struct fota_devchan_rq **pp = rq_slot(ch, c->device_id), *e = *pp;
    if (!e || e->conn_id != c->id)
        return;
    *pp = e->next;
    struct requeue_job *p = fota_devchan_job_new(ch, sizeof *p);
    p->j.run = requeue_run;
    p->j.done = requeue_done;
    p->j.drop = requeue_drop;
    p->again = again;
    p->conn_id = c->id;
    p->cmd_id = e->cmd_id;
    p->delivered = e->delivered;
    free(e);
    if (fota_devchan_job_submit(ch, NULL, c->device_id, &p->j) < 0) {
        FOTA_ERROR("command requeue failed conn=%llu dev=%lld cmd=%lld error=%s",
                   (unsigned long long)c->id, (long long)c->device_id, (long long)p->cmd_id,
                   fota_errname(FOTA_EBUSY));
        requeue_drop(&p->j);
    }
}

void fota_devchan_requeue_free(struct fota_devchan *ch)
{
    for (size_t b = 0; b < FOTA_DEVCHAN_RQ_BUCKETS; b++)
        while (ch->rq[b]) {
            struct fota_devchan_rq *e = ch->rq[b];
            ch->rq[b] = e->next;
            free(e);
        }
}
