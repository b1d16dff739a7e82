/* rpc.c - the REST side of device commands, installed by the device module
 * over the daemon's routes: GET /v1/device/rpc/?deliver_to_device=true&action=A
 * (sys_upgrade, sys_reboot, others) and GET|POST /v1/datastreams/NAME/datapoint/
 * ?deliver_to_device=true. The command is stored, pushed to the device's
 * connection and the HTTP reply waits for the device's reply with the same
 * nonce (504 on timeout); an offline device gets it when it next connects
 * (202), or 409 with queue=false. A sys_upgrade replaces the device's
 * queued one, and the admin's to the version the device runs is 409
 * unless force=true (a device of an arduino product excepted: there the
 * upgrade holds the device on its version). */
#include "rpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "clock.h"
#include "devcache.h"
#include "devchan.h"
#include "fota_str.h"
#include "api.h"
#include "log.h"
#include "relcache.h"
#include "xmalloc.h"

#define RPC_TIMEOUT_DEFAULT 30
#define RPC_TIMEOUT_MAX     300

/* A request waiting for the device: a deferred fota_req (fota_req_defer),
 * answered from the main loop when the device replies; http.c carries the
 * reply to the loop that owns the connection (a worker loop, often). */
struct rpc_pending {
    struct fota_rpc *rpc;
    struct fota_req *r;
    struct fota_devchan_wait *wait;
    struct fota_command cmd;
    struct rpc_pending *next;
    unsigned timeout_s;
    int64_t pushed_ns;                 /* fota_clock_mono_ns() of the push */
};

/* How an RPC ended: fota_rpcs_total{result=...}. */
enum {
    RPC_OK,             /* the device answered (200) */
    RPC_DEVICE_ERROR,   /* the device answered with an error (502) */
    RPC_TIMEOUT,        /* no answer in time (504) */
    RPC_REQUEUED,       /* the connection closed first; queued again (202) */
    RPC_QUEUED,         /* the device was offline; queued (202) */
    RPC_DELIVERED,      /* written, no answer awaited (200) */
    RPC_GONE,           /* the device was deleted meanwhile (410) */
    RPC_CANCELLED,      /* fotad shut down first (503) */
    RPC_RESULTS
};
static const char *const result_labels[RPC_RESULTS] = {
    "result=\"ok\"",      "result=\"device_error\"", "result=\"timeout\"",
    "result=\"requeued\"", "result=\"queued\"",      "result=\"delivered\"",
    "result=\"gone\"",    "result=\"cancelled\"",
};
static const struct fota_metric_desc results_desc = {
    "fota_rpcs_total", "Commands sent to devices through the RPC API, by how they ended.",
    FOTA_METRIC_COUNTER, RPC_RESULTS, result_labels
};
static const struct fota_metric_desc latency_desc = {
    "fota_rpc_duration_seconds",
    "Time from an RPC's push to the device's answer, for the RPCs a device answered.",
    FOTA_METRIC_HISTOGRAM, 1, NULL
};

struct fota_rpc {
    struct fota_devchan *ch;
    struct rpc_pending *pending;       /* requests waiting for their device */
    struct fota_metric results[RPC_RESULTS];
    struct fota_metric_hist latency;
};

/* Sets cmd's result to a new reference to v (NULL: none). */
static void set_result(struct fota_command *cmd, const json_t *v)
{
    json_decref(cmd->result);
    cmd->result = v ? json_incref((json_t *)v) : NULL;
}

static void pending_done(void *ud, int state, const json_t *result)
{
    struct rpc_pending *p = ud;
    for (struct rpc_pending **pp = &p->rpc->pending; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    json_t *j = json_object();
    int code = 200, end = RPC_OK;
    p->cmd.state = state;
    if (state == FOTA_CMD_ACKED || state == FOTA_CMD_DONE) {
        if (json_is_object(result)) /* the device's reply, merged in */
            json_object_update(j, (json_t *)result);
        set_result(&p->cmd, result);
        fota_metric_observe(&p->rpc->latency, fota_clock_mono_ns() - p->pushed_ns);
    } else if (state == FOTA_CMD_TIMEOUT) {
        code = 504;
        end = RPC_TIMEOUT;
        json_object_set_new(j, "message", json_sprintf("the device did not answer within %u s; "
                                                       "the command stays delivered", p->timeout_s));
    } else if (state == FOTA_CMD_QUEUED) {
        code = 202;   /* devchan_requeue.c: the connection dropped before the reply */
        end = RPC_REQUEUED;
        json_object_set_new(j, "message", json_string("the connection closed before the device "
                                                      "answered: the command is queued again and "
                                                      "delivered when it next connects"));
    } else if (state == FOTA_DEVCHAN_GONE) {
        code = 410;
        end = RPC_GONE;
        p->cmd.state = FOTA_CMD_CANCELLED;
        json_object_set_new(j, "message", json_sprintf("device %lld was deleted while the command "
                                                       "waited for its reply",
                                                       (long long)p->cmd.device_id));
    } else if (state == FOTA_CMD_CANCELLED) {
        code = 503;
        end = RPC_CANCELLED;
        json_object_set_new(j, "message", json_string("fotad is shutting down"));
    } else {
        code = 502;
        end = RPC_DEVICE_ERROR;
        fota_metric_observe(&p->rpc->latency, fota_clock_mono_ns() - p->pushed_ns);
        json_object_set_new(j, "message", json_string("the device answered with an error"));
        set_result(&p->cmd, result);
    }
    fota_metric_inc(&p->rpc->results[end]);
    json_object_set_new(j, "command", fota_api_json_command(&p->cmd));
    FOTA_INFO("rpc reply dev=%lld cmd=%lld action=%s status=%d", (long long)p->cmd.device_id,
              (long long)p->cmd.id, p->cmd.action, code);
    p->r->quiet = 1;   /* logged above */
    fota_reply_json(p->r, code, j);
    fota_req_release(p->r);
    fota_store_command_cleanup(&p->cmd);
    free(p);
}

void fota_rpc_drain(struct fota_rpc *rpc)
{
    while (rpc && rpc->pending) {
        struct rpc_pending *p = rpc->pending;
        fota_devchan_cancel(rpc->ch, p->wait);
        pending_done(p, FOTA_CMD_CANCELLED, NULL);
    }
}

void fota_rpc_free(struct fota_rpc *rpc)
{
    if (!rpc)
        return;
    while (rpc->pending) {
        struct rpc_pending *p = rpc->pending;
        rpc->pending = p->next;
        fota_req_release(p->r);
        fota_store_command_cleanup(&p->cmd);
        free(p);
    }
    free(rpc);
}

/* The stored size of a command's params (its column's text, without NUL). */
static size_t params_size(const json_t *params)
{
    return json_dumpb(params, NULL, 0, JSON_SORT_KEYS);
}

/* Action names: lower-case letters, digits and '_' (sys_upgrade, get_switches...). */
static int action_ok(const char *a)
{
    size_t n = strlen(a);
    if (n == 0 || n >= sizeof ((struct fota_command *)0)->action)
        return 0;
    for (; *a; a++)
        if (!((*a >= 'a' && *a <= 'z') || (*a >= '0' && *a <= '9') || *a == '_'))
            return 0;
    return 1;
}

/* Resolves the target device: an owner/master key's own device, or device_id= for admin. */
static int rpc_device(struct fota_req *r, struct fota_device *d, int *admin)
{
    struct fota_key k;
    if (fota_req_auth(r, &k) < 0)
        return -1;
    if (admin)
        *admin = k.kind == FOTA_KEY_ADMIN;
    int64_t id = 0;
    if (k.kind == FOTA_KEY_OWNER || k.kind == FOTA_KEY_MASTER) {
        id = k.device_id;
        const char *s = fota_req_query(r, "device_id");
        if (s && strtoll(s, NULL, 10) != id) {
            fota_reply_error(r, 403, "this key belongs to another device");
            return -1;
        }
    } else if (k.kind == FOTA_KEY_ADMIN) {
        const char *s = fota_req_query(r, "device_id");
        char *end = NULL;
        id = s ? strtoll(s, &end, 10) : 0;
        if (!s || !*s || *end || id <= 0) {
            fota_reply_error(r, 400, "an admin key needs device_id=");
            return -1;
        }
    } else {
        fota_reply_error(r, 403, "this key cannot send commands to devices");
        return -1;
    }
    if (fota_devcache_get(r->srv->devcache, r->srv->store, id, d) < 0) {
        fota_reply_error(r, 404, "no device %lld", (long long)id);
        return -1;
    }
    return 0;
}

static int is_control_param(const char *k)
{
    static const char *const skip[] = { "deliver_to_device", "action", "device_id", "queue",
                                        "timeout", "method", "force", NULL };
    for (int i = 0; skip[i]; i++)
        if (strcmp(k, skip[i]) == 0)
            return 1;
    return 0;
}

/* Stores cmd and delivers it; replies now (202/409/200 for sys_reboot) or
 * later. Takes cmd's params and result (cmd is cleaned up on return). */
static void run_command(struct fota_req *r, struct fota_rpc *rpc, struct fota_command *cmd)
{
    struct fota_devchan *ch = rpc->ch;
    struct fota_store *st = r->srv->store;
    const char *q = fota_req_query(r, "queue");
    int may_queue = !(q && (strcmp(q, "false") == 0 || strcmp(q, "0") == 0));
    if (!may_queue && !fota_devchan_online(ch, cmd->device_id)) {
        fota_reply_error(r, 409, "device %lld is offline (queue=false)", (long long)cmd->device_id);
        goto out;
    }
    const char *t = fota_req_query(r, "timeout");
    unsigned timeout = RPC_TIMEOUT_DEFAULT;
    if (t) {
        long v = strtol(t, NULL, 10);
        if (v < 1 || v > RPC_TIMEOUT_MAX) {
            fota_reply_error(r, 400, "timeout must be 1..%d seconds", RPC_TIMEOUT_MAX);
            goto out;
        }
        timeout = (unsigned)v;
    }
    cmd->state = FOTA_CMD_QUEUED;
    cmd->nonce = fota_devchan_nonce();
    /* A new upgrade replaces the device's queued one (the store cancels it
     * in the same transaction): a device never runs two stale upgrades. */
    int64_t replaced[8];
    size_t nrep = 0;
    int rc = strcmp(cmd->action, "sys_upgrade") == 0
                 ? st->ops->command_create_replacing(st, cmd, replaced, 8, &nrep)
                 : st->ops->command_create(st, cmd);
    if (rc < 0) {
        fota_reply_error(r, 500, "cannot store the command: %s", fota_errname(rc));
        goto out;
    }
    for (size_t i = 0; i < nrep && i < 8; i++)
        FOTA_INFO("command replaced dev=%lld cmd=%lld by=%lld", (long long)cmd->device_id,
                  (long long)replaced[i], (long long)cmd->id);
    struct rpc_pending *p = fota_xcalloc(1, sizeof *p);
    struct fota_devchan_wait *w = NULL;
    p->pushed_ns = fota_clock_mono_ns();
    int keygen = -1;
    if (fota_devcache_key_generation(r->srv->devcache, st, cmd->device_id, &keygen) < 0)
        keygen = -1;
    rc = fota_devchan_deliver(ch, cmd, keygen, timeout, pending_done, p, &w);
    if (rc == FOTA_CMD_DELIVERED && w) {
        p->rpc = rpc;
        p->r = r;
        p->wait = w;
        p->cmd = *cmd; /* the command's params and result move to the pending request */
        cmd->params = cmd->result = NULL;
        p->timeout_s = timeout;
        p->next = rpc->pending;
        rpc->pending = p;
        fota_req_defer(r); /* answered by pending_done */
        goto out;
    }
    free(p);
    json_t *j = json_object();
    if (rc < 0) {
        fota_reply_error(r, 500, "command not delivered: %s", fota_errname(rc));
        json_decref(j);
        goto out;
    }
    json_object_set_new(j, "command", fota_api_json_command(cmd));
    json_object_set_new(j, "nonce", json_integer(cmd->nonce));
    fota_metric_inc(&rpc->results[rc == FOTA_CMD_QUEUED ? RPC_QUEUED : RPC_DELIVERED]);
    if (rc == FOTA_CMD_QUEUED) {
        json_object_set_new(j, "message", json_string("device offline: the command is queued and "
                                                      "delivered when it next connects"));
        fota_reply_json(r, 202, j);
    } else {
        json_object_set_new(j, "message", json_string("delivered"));
        fota_reply_json(r, 200, j);
    }
out:
    fota_store_command_cleanup(cmd);
}

/* 1 when the product's devices poll (an arduino product): an explicit
 * upgrade of one of them holds it on the version, which means something
 * on the version it runs too. */
static int pull_product(struct fota_store *st, int64_t product_id)
{
    struct fota_arduino_product *p = fota_xmalloc(sizeof *p);
    int pull = st->ops->arduino_product_get(st, product_id, p) == 0;
    free(p);
    return pull;
}

static void rpc_handler(struct fota_req *r)
{
    struct fota_rpc *rpc = r->ud;
    struct fota_device d;
    int admin = 0;
    const char *action = fota_req_query(r, "action");
    const char *dtd = fota_req_query(r, "deliver_to_device");
    if (dtd && strcmp(dtd, "true") != 0) {
        fota_reply_error(r, 400, "only deliver_to_device=true is supported");
        return;
    }
    if (!action || !action_ok(action)) {
        fota_reply_error(r, 400, "action= is required (sys_upgrade, sys_reboot, ...)");
        return;
    }
    if (rpc_device(r, &d, &admin) < 0)
        return;
    json_t *params = json_object();
    for (struct evkeyval *kv = r->query.tqh_first; kv; kv = kv->next.tqe_next)
        if (!is_control_param(kv->key))
            json_object_set_new(params, kv->key, json_string(kv->value));
    const char *version = fota_req_query(r, "version"); /* lives as long as r */
    if (strcmp(action, "sys_upgrade") == 0) {
        struct fota_rom rom;
        /* Only a published release (its version passed the upload's checks) is pushed. */
        if (!version || !*version || strlen(version) >= FOTA_VERSION_MAX) {
            json_decref(params);
            fota_reply_error(r, 400, "sys_upgrade needs version=");
            return;
        }
        if (fota_relcache_get(r->srv->relcache, r->srv->store, d.product_id, version, &rom) < 0) {
            json_decref(params);
            fota_reply_error(r, 404, "product %lld has no release %s", (long long)d.product_id,
                             version);
            return;
        }
        /* rom_version is what the device last said (activation, or the D7
         * of a download it has yet to boot; a power cut in the flip leaves
         * it on the old one): the operator's guard, not the phone app's,
         * whose retry after a failed flip the seed's API lets through. */
        const char *force = fota_req_query(r, "force");
        if (admin && strcmp(d.rom_version, version) == 0 &&
            !(force && (strcmp(force, "true") == 0 || strcmp(force, "1") == 0)) &&
            !pull_product(r->srv->store, d.product_id)) {
            json_decref(params);
            fota_reply_error(r, 409, "device %lld already runs %s (force=true sends the "
                                     "upgrade all the same)", (long long)d.id, version);
            return;
        }
    }
    if (params_size(params) >= FOTA_JSON_MAX) {
        json_decref(params);
        fota_reply_error(r, 400, "parameters too long");
        return;
    }
    struct fota_command cmd = { 0 };
    cmd.device_id = d.id;
    fota_str_copy(cmd.action, sizeof cmd.action, action);
    cmd.params = params;
    run_command(r, rpc, &cmd);
}

static void datastream_handler(struct fota_req *r)
{
    struct fota_rpc *rpc = r->ud;
    struct fota_device d;
    const char *dtd = fota_req_query(r, "deliver_to_device");
    if (!dtd || strcmp(dtd, "true") != 0) {
        fota_reply_error(r, 400, "only deliver_to_device=true is supported");
        return;
    }
    if (rpc_device(r, &d, NULL) < 0)
        return;
    json_t *params = json_object();
    char path[FOTA_ROUTE_CAP_LEN + 40];
    snprintf(path, sizeof path, "/v1/datastreams/%s/datapoint/", r->caps[0]);
    json_object_set_new(params, "path", json_string(path));
    json_object_set_new(params, "method", json_string(r->method == FOTA_M_POST ? "POST" : "GET"));
    if (r->method == FOTA_M_POST) {
        json_t *body = fota_req_json_body(r);
        if (!body) {
            json_decref(params);
            return;
        }
        json_object_set_new(params, "body", body);
    }
    if (params_size(params) >= FOTA_JSON_MAX) {
        json_decref(params);
        fota_reply_error(r, 413, "datapoint too large");
        return;
    }
    struct fota_command cmd = { 0 };
    cmd.device_id = d.id;
    fota_str_copy(cmd.action, sizeof cmd.action, "datastream");
    cmd.params = params;
    run_command(r, rpc, &cmd);
}

struct fota_rpc *fota_rpc_new(struct fota_server *srv, struct fota_devchan *ch)
{
    struct fota_rpc *rpc = fota_xcalloc(1, sizeof *rpc);
    rpc->ch = ch;
    if (fota_metric_register(srv, &results_desc, rpc->results) < 0 ||
        fota_metric_register_hist(srv, &latency_desc, &rpc->latency) < 0 ||
        fota_http_route(srv, FOTA_M_GET | FOTA_M_POST, "/v1/device/rpc/", rpc_handler, rpc) < 0 ||
        fota_http_route(srv, FOTA_M_GET | FOTA_M_POST, "/v1/datastreams/*/datapoint/",
                        datastream_handler, rpc) < 0) {
        free(rpc);
        return NULL;
    }
    return rpc;
}
