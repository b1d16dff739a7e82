/* devchan_handle_reply.c - D4/D5, {"status": N, "nonce": N, ...}: a device's
 * answer to a push, published on the hub (DEVICE_REPLY) first: a rollout's
 * push is taken by the rollout (counted and written in its batch);
 * any other command is found by its nonce, its row moves on (ACKED for
 * sys_upgrade, which ends at its D7 report; DONE otherwise; FAILED for a
 * status other than 200) with the reply as its result (command_reply, a
 * store job; the connection reads on after it), and an RPC waiting for it
 * gets the same decoded reply. */
#include "devchan_int.h"

#include <stdlib.h>

#include <jansson.h>

#include "hub.h"
#include "log.h"

/* The reply's store part: the command moved on in one transaction
 * (command_reply), a job on the device's lane. */
struct reply_job {
    struct fota_devchan_job j;
    int64_t device_id, nonce;
    int status;
    json_t *reply;                     /* the job's own: a copy */
    int rc;
    struct fota_command cmd;
};

static void reply_run(struct fota_store *st, struct fota_devchan_job *j)
{
    struct reply_job *p = (struct reply_job *)j;
    p->rc = st->ops->command_reply(st, p->device_id, p->nonce, p->status, p->reply, &p->cmd);
    if (p->rc < 0 && p->rc != FOTA_ENOENT && p->rc != FOTA_EBUSY)
        FOTA_ERROR("command update failed dev=%lld nonce=%lld error=%s", (long long)p->device_id,
                   (long long)p->nonce, fota_errname(p->rc));
}

static void reply_drop(struct fota_devchan_job *j)
{
    struct reply_job *p = (struct reply_job *)j;
    json_decref(p->reply);
    fota_store_command_cleanup(&p->cmd);
    free(p);
}

static void reply_done(struct fota_devchan_job *j, struct fota_dconn *c)
{
    struct reply_job *p = (struct reply_job *)j;
    int found = p->rc == 0;
    FOTA_INFO("command reply conn=%llu dev=%lld nonce=%lld status=%d cmd=%lld",
              (unsigned long long)j->conn_id, (long long)p->device_id, (long long)p->nonce,
              p->status, found ? (long long)p->cmd.id : -1LL);
    (void)c;
    fota_devchan_wait_wake(j->ch, p->device_id, p->nonce, found ? p->cmd.state : FOTA_CMD_DONE,
                           p->reply);
    reply_drop(j);
}

void fota_devchan_handle_reply(struct fota_dconn *c, const struct fota_devproto_frame *f)
{
    struct fota_devchan *ch = c->ch;
    json_t *reply = fota_devproto_reply_value(f);
    struct fota_hub_reply ev = { c->device_id, f->nonce, f->status, reply };
    if (fota_hub_publish(ch->srv, FOTA_HUB_DEVICE_REPLY, &ev)) {
        json_decref(reply);
        return; /* a rollout's push: counted and written in its batch */
    }
    struct reply_job *p = fota_devchan_job_new(ch, sizeof *p);
    p->j.run = reply_run;
    p->j.done = reply_done;
    p->j.drop = reply_drop;
    p->device_id = c->device_id;
    p->nonce = f->nonce;
    p->status = f->status;
    p->reply = reply;   /* decoded for this job alone: the loop keeps no reference */
    if (fota_devchan_job_submit(ch, c, c->device_id, &p->j) < 0) {
        reply_drop(&p->j);
        fota_devchan_conn_refuse(c, 503, "store busy", "reply while the store is busy");
    }
}
