/* devchan_push.c - a stored command written to a device connection: its
 * params (a JSON object, decoded here and nowhere else on the way out) become
 * the push line of espressif-protocol §2.5 with the device's owner key and
 * the command's nonce; the row moves to DELIVERED (DONE for sys_reboot, which
 * stock devices never answer, FAILED when it cannot be encoded). */
#include "devchan_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "clock.h"
#include "log.h"

int64_t fota_devchan_nonce(void)
{
    uint32_t r = 0;
    if (RAND_bytes((unsigned char *)&r, sizeof r) != 1)
        r = (uint32_t)rand();
    return fota_devproto_nonce(r);
}

/* Encodes cmd. Its params are a JSON object: either the extra RPC query
 * parameters ({"version": "v1.1"}), or a forwarded request with "path"
 * (and "method", "get", "body") for datastream and other paths. */
static int encode(struct fota_devchan *ch, const struct fota_command *cmd, char *buf, size_t cap)
{
    struct fota_server *srv = ch->srv;
    char auth[FOTA_KEY_BUF] = "";
    struct fota_device d;
    if (srv->store->ops->device_get(srv->store, cmd->device_id, &d) == 0)
        fota_server_device_key(srv, "owner", &d, auth);
    json_error_t jerr;
    json_t *params = cmd->params[0] ? json_loads(cmd->params, 0, &jerr) : json_object();
    if (!json_is_object(params)) {
        json_decref(params);
        return FOTA_EINVAL;
    }
    int rc;
    const char *path = json_string_value(json_object_get(params, "path"));
    if (path) {
        const char *method = json_string_value(json_object_get(params, "method"));
        char *get = NULL, *body = NULL;
        json_t *g = json_object_get(params, "get"), *b = json_object_get(params, "body");
        if (json_is_object(g))
            get = json_dumps(g, JSON_SORT_KEYS);
        if (json_is_object(b))
            body = json_dumps(b, JSON_SORT_KEYS);
        rc = fota_devproto_push(buf, cap, method ? method : "GET", path, get, body, auth, cmd->nonce);
        free(get);
        free(body);
    } else {
        json_object_set_new(params, "action", json_string(cmd->action));
        char *g = json_dumps(params, JSON_SORT_KEYS);
        rc = fota_devproto_push(buf, cap, "GET", "/v1/device/rpc/", g, NULL, auth, cmd->nonce);
        free(g);
    }
    json_decref(params);
    return rc;
}

int fota_devchan_push_no_reply(const struct fota_command *cmd)
{
    return strcmp(cmd->action, "sys_reboot") == 0; /* stock devices never answer it */
}

void fota_devchan_push_store(struct fota_devchan *ch, struct fota_command *cmd)
{
    cmd->updated = fota_clock_wall_s();
    int rc = ch->srv->store->ops->command_update(ch->srv->store, cmd);
    if (rc < 0)
        FOTA_ERROR("command update failed cmd=%lld dev=%lld error=%s", (long long)cmd->id,
                   (long long)cmd->device_id, fota_errname(rc));
}

int fota_devchan_push(struct fota_dconn *c, struct fota_command *cmd)
{
    char buf[FOTA_DEVPROTO_PUSH_MAX];
    if (cmd->nonce <= 0 || cmd->nonce > 0x7FFFFFFF)
        cmd->nonce = fota_devchan_nonce();
    int n = encode(c->ch, cmd, buf, sizeof buf);
    if (n < 0) {
        FOTA_WARN("command not encodable cmd=%lld dev=%lld action=%s error=%s", (long long)cmd->id,
                  (long long)cmd->device_id, cmd->action, fota_errname(n));
        cmd->state = FOTA_CMD_FAILED;
        snprintf(cmd->result, sizeof cmd->result, "{\"error\": \"%s\"}", fota_errname(n));
        fota_devchan_push_store(c->ch, cmd);
        return n;
    }
    fota_devchan_conn_send(c, buf, n);
    cmd->state = fota_devchan_push_no_reply(cmd) ? FOTA_CMD_DONE : FOTA_CMD_DELIVERED;
    fota_devchan_push_store(c->ch, cmd);
    FOTA_INFO("command delivered conn=%llu dev=%lld cmd=%lld action=%s nonce=%lld bytes=%d",
              (unsigned long long)c->id, (long long)cmd->device_id, (long long)cmd->id, cmd->action,
              (long long)cmd->nonce, n);
    return 0;
}
