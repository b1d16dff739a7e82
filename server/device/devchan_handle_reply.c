/* devchan_handle_reply.c - D4/D5, {"status": N, "nonce": N, ...}: a device's
 * answer to a push, published on the hub (DEVICE_REPLY) first: a rollout's
 * push is taken by the rollout (counted and written in its batch);
 * any other command is found by its nonce, its row moves on (ACKED for
 * sys_upgrade, which ends at its D7 report; DONE otherwise; FAILED for a
 * status other than 200) with the reply as its result, and an RPC waiting
 * for it gets the same decoded reply. */
#include "devchan_int.h"

#include <string.h>

#include <jansson.h>

#include "hub.h"
#include "log.h"

/* The state a reply moves an open command to. */
static int reply_state(const struct fota_command *cmd, int status)
{
    if (status != 200)
        return FOTA_CMD_FAILED;
    return strcmp(cmd->action, "sys_upgrade") == 0 ? FOTA_CMD_ACKED : FOTA_CMD_DONE;
}

void fota_devchan_handle_reply(struct fota_dconn *c, const struct fota_devproto_frame *f)
{
    struct fota_devchan *ch = c->ch;
    struct fota_store *st = ch->srv->store;
    json_t *reply = fota_devproto_reply_value(f);
    struct fota_hub_reply ev = { c->device_id, f->nonce, f->status, reply };
    if (fota_hub_publish(ch->srv, FOTA_HUB_DEVICE_REPLY, &ev)) {
        json_decref(reply);
        return; /* a rollout's push: counted and written in its batch */
    }
    struct fota_command cmd = { 0 };
    int found = st->ops->command_find_nonce(st, c->device_id, f->nonce, &cmd) == 0 &&
                (cmd.state == FOTA_CMD_DELIVERED || cmd.state == FOTA_CMD_ACKED ||
                 cmd.state == FOTA_CMD_TIMEOUT);
    int state = FOTA_CMD_DONE;
    if (found) {
        state = reply_state(&cmd, f->status);
        cmd.state = state;
        json_decref(cmd.result);
        cmd.result = json_incref(reply);
        fota_devchan_push_store(ch, &cmd);
    }
    FOTA_INFO("command reply conn=%llu dev=%lld nonce=%lld status=%d cmd=%lld",
              (unsigned long long)c->id, (long long)c->device_id, (long long)f->nonce, f->status,
              found ? (long long)cmd.id : -1LL);
    fota_store_command_cleanup(&cmd);
    fota_devchan_wait_wake(ch, c->device_id, f->nonce, state, reply);
    json_decref(reply);
}
