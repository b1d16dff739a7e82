/* devchan_push.c - a stored command written to a device connection: its
 * params (a JSON object, decoded when the row left the store) become the
 * push line of espressif-protocol §2.5 with the device's owner key and the
 * command's nonce; the row moves to DELIVERED (DONE for sys_reboot, which
 * stock devices never answer, FAILED when it cannot be encoded), written
 * by a store job on the device's lane. */
#include "devchan_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "clock.h"
#include "log.h"

/* Nonces come from a per-thread pool of CSPRNG output drawn 1 KiB at a
 * time: RAND_bytes costs about as much for 4 bytes as for 1,024 (its
 * locks, the fork check), and a wave draws one per reboot. */
#define NONCE_POOL 256

int64_t fota_devchan_nonce(void)
{
    static _Thread_local uint32_t pool[NONCE_POOL];
    static _Thread_local unsigned left;
    if (left == 0) {
        if (RAND_bytes((unsigned char *)pool, sizeof pool) != 1)
            return fota_devproto_nonce((uint32_t)rand());
        left = NONCE_POOL;
    }
    uint32_t r = pool[--left];
    pool[left] = 0;   /* a drawn nonce does not stay in memory */
    return fota_devproto_nonce(r);
}

/* Encodes cmd. Its params are a JSON object: either the extra RPC query
 * parameters ({"version": "v1.1"}), or a forwarded request with "path"
 * (and "method", "get", "body") for datastream and other paths. */
static int encode(struct fota_devchan *ch, const struct fota_command *cmd, int key_generation,
                  char *buf, size_t cap)
{
    char auth[FOTA_KEY_BUF] = "";
    struct fota_device d = { .id = cmd->device_id, .key_generation = key_generation };
    if (key_generation >= 0)
        fota_server_device_key(ch->srv, "owner", &d, auth);
    const json_t *params = cmd->params;
    if (params && !json_is_object(params))
        return FOTA_EINVAL;
    const char *path = json_string_value(json_object_get(params, "path"));
    if (path) {
        const char *method = json_string_value(json_object_get(params, "method"));
        const json_t *g = json_object_get(params, "get"), *b = json_object_get(params, "body");
        return fota_devproto_push(buf, cap, method ? method : "GET", path,
                                  json_is_object(g) ? g : NULL, json_is_object(b) ? b : NULL,
                                  auth, cmd->nonce);
    }
    /* The RPC's get object: its params and the action (the row keeps its params). */
    json_t *get = params ? json_copy((json_t *)params) : json_object();
    json_object_set_new(get, "action", json_string(cmd->action));
    int rc = fota_devproto_push(buf, cap, "GET", "/v1/device/rpc/", get, NULL, auth, cmd->nonce);
    json_decref(get);
    return rc;
}

int fota_devchan_push_no_reply(const struct fota_command *cmd)
{
    return strcmp(cmd->action, "sys_reboot") == 0; /* stock devices never answer it */
}

void fota_devchan_push_store_now(struct fota_server *srv, struct fota_command *cmd)
{
    cmd->updated = fota_clock_wall_s();
    int rc = srv->store->ops->command_update(srv->store, cmd);
    if (rc < 0)
        FOTA_ERROR("command update failed cmd=%lld dev=%lld error=%s", (long long)cmd->id,
                   (long long)cmd->device_id, fota_errname(rc));
}

/* A command's new state written by a job on its device's lane: after the
 * push, before any later job of the device (its D4, a requeue) reads it. */
struct store_job {
    struct fota_devchan_job j;
    struct fota_command cmd;           /* its own result: a deep copy */
};

static void store_run(struct fota_store *st, struct fota_devchan_job *j)
{
    struct fota_command *cmd = &((struct store_job *)j)->cmd;
    int rc = st->ops->command_update(st, cmd);   /* updated: the push's time */
    if (rc < 0)
        FOTA_ERROR("command update failed cmd=%lld dev=%lld error=%s", (long long)cmd->id,
                   (long long)cmd->device_id, fota_errname(rc));
}

static void store_drop(struct fota_devchan_job *j)
{
    json_decref(((struct store_job *)j)->cmd.result);
    free(j);
}

void fota_devchan_push_store(struct fota_devchan *ch, struct fota_command *cmd)
{
    cmd->updated = fota_clock_wall_s();
    struct store_job *p = fota_devchan_job_new(ch, sizeof *p);
    p->j.run = store_run;
    p->j.drop = store_drop;
    p->cmd.id = cmd->id;
    p->cmd.device_id = cmd->device_id;
    p->cmd.state = cmd->state;
    p->cmd.updated = cmd->updated;
    p->cmd.result = cmd->result ? json_deep_copy(cmd->result) : NULL;
    if (fota_devchan_job_submit(ch, NULL, cmd->device_id, &p->j) < 0) {
        FOTA_ERROR("command update failed cmd=%lld dev=%lld error=%s", (long long)cmd->id,
                   (long long)cmd->device_id, fota_errname(FOTA_EBUSY));
        store_drop(&p->j);
    }
}

int fota_devchan_push(struct fota_dconn *c, struct fota_command *cmd, int key_generation)
{
    char buf[FOTA_DEVPROTO_PUSH_MAX];
    if (cmd->nonce <= 0 || cmd->nonce > 0x7FFFFFFF)
        cmd->nonce = fota_devchan_nonce();
    int n = encode(c->ch, cmd, key_generation, buf, sizeof buf);
    if (n < 0) {
        FOTA_WARN("command not encodable conn=%llu dev=%lld cmd=%lld action=%s error=%s",
                  (unsigned long long)c->id, (long long)cmd->device_id, (long long)cmd->id,
                  cmd->action, fota_errname(n));
        cmd->state = FOTA_CMD_FAILED;
        json_decref(cmd->result);
        cmd->result = json_pack("{s:s}", "error", fota_errname(n));
        fota_devchan_push_store(c->ch, cmd);
        return n;
    }
    fota_devchan_conn_send(c, buf, n);
    c->push_seq++;
    cmd->state = fota_devchan_push_no_reply(cmd) ? FOTA_CMD_DONE : FOTA_CMD_DELIVERED;
    fota_devchan_push_store(c->ch, cmd);
    FOTA_INFO("command delivered conn=%llu dev=%lld cmd=%lld action=%s nonce=%lld bytes=%d",
              (unsigned long long)c->id, (long long)cmd->device_id, (long long)cmd->id, cmd->action,
              (long long)cmd->nonce, n);
    return 0;
}
