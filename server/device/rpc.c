/* rpc.c - the REST side of device commands, installed by the device module
 * over the daemon's routes: GET /v1/device/rpc/?deliver_to_device=true&action=A
 * (sys_upgrade, sys_reboot, others) and GET|POST /v1/datastreams/NAME/datapoint/
 * ?deliver_to_device=true. The command is stored, pushed to the device's
 * connection and the HTTP reply waits for the device's reply with the same
 * nonce (504 on timeout); an offline device gets it when it next connects
 * (202), or 409 with queue=false. A sys_upgrade replaces the device's
 * queued one, and the admin's to the version the device runs is 409
 * unless force=true (a device of an arduino product excepted: there the
 * upgrade holds the device on its version). The handler reads the request
 * on the main loop; the key, the device, the release and the command row
 * are a store job's (store_exec.h), the delivery its continuation's. A
 * device connected to another instance sharing the PostgreSQL database gets
 * the command through that instance (rpc_route.c). */
#include "rpc_int.h"

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
#include "http_head.h"
#include "recovery.h"
#include "log.h"
#include "relcache.h"
#include "store_exec.h"
#include "xmalloc.h"

#define RPC_TIMEOUT_DEFAULT 30
#define RPC_TIMEOUT_MAX     300

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

/* Sets cmd's result to a new reference to v (NULL: none). */
static void set_result(struct fota_command *cmd, const json_t *v)
{
    json_decref(cmd->result);
    cmd->result = v ? json_incref((json_t *)v) : NULL;
}

static void pending_unlink(struct rpc_pending *p)
{
    for (struct rpc_pending **pp = &p->rpc->pending; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    fota_rpc_route_end(p);
}

static void pending_reply(struct rpc_pending *p, int code, json_t *j)
{
    json_object_set_new(j, "command", fota_api_json_command(&p->cmd));
    FOTA_INFO("rpc reply dev=%lld cmd=%lld action=%s status=%d", (long long)p->cmd.device_id,
              (long long)p->cmd.id, p->cmd.action, code);
    p->r->quiet = 1;   /* logged above */
    fota_reply_json(p->r, code, j);
    fota_req_release(p->r);
    fota_store_command_cleanup(&p->cmd);
    free(p);
}

void fota_rpc_done(void *ud, int state, const json_t *result)
{
    struct rpc_pending *p = ud;
    pending_unlink(p);
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
    pending_reply(p, code, j);
}

/* queue=false and no instance took the command: it is cancelled unless it
 * moved on meanwhile (command_cancel, a store job). */
static void unclaimed_run(struct fota_store *st, void *arg)
{
    struct rpc_pending *p = arg;
    struct fota_command now = { 0 };

    if (st->ops->command_cancel(st, p->cmd.device_id, p->cmd.id, NULL, &now) == 0)
        p->cmd.state = now.state;
    fota_store_command_cleanup(&now);
}

static void unclaimed_done(void *arg, int cancelled)
{
    struct rpc_pending *p = arg;
    json_t *j;
    int code = 202;

    if (cancelled) {
        fota_req_release(p->r);
        fota_store_command_cleanup(&p->cmd);
        free(p);
        return;
    }
    j = json_object();
    json_object_set_new(j, "nonce", json_integer(p->cmd.nonce));
    if (p->cmd.state == FOTA_CMD_CANCELLED) {
        code = 409;
        json_object_set_new(j, "message", json_string("no instance holds the device "
                                                      "(queue=false): the command is cancelled"));
    } else {
        fota_metric_inc(&p->rpc->results[RPC_QUEUED]);
        json_object_set_new(j, "message", json_string("no instance holds the device: the "
                                                      "command is queued and delivered when it "
                                                      "next connects"));
    }
    pending_reply(p, code, j);
}

void fota_rpc_unclaimed(struct rpc_pending *p)
{
    struct fota_server *srv = p->rpc->srv;

    fota_devchan_cancel(p->rpc->ch, p->wait);
    p->wait = NULL;
    pending_unlink(p);
    if (p->no_queue && srv->exec &&
        fota_store_submit(srv->exec, NULL, srv->loops[0], unclaimed_run, unclaimed_done, p) == 0)
        return;
    unclaimed_done(p, 0);
}

void fota_rpc_drain(struct fota_rpc *rpc)
{
    while (rpc && rpc->pending) {
        struct rpc_pending *p = rpc->pending;
        fota_devchan_cancel(rpc->ch, p->wait);
        fota_rpc_done(p, FOTA_CMD_CANCELLED, NULL);
    }
}

void fota_rpc_free(struct fota_rpc *rpc)
{
    if (!rpc)
        return;
    while (rpc->pending) {
        struct rpc_pending *p = rpc->pending;
        rpc->pending = p->next;
        fota_rpc_route_end(p);
        fota_req_release(p->r);
        fota_store_command_cleanup(&p->cmd);
        free(p);
    }
    fota_rpc_route_free(rpc);
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

/* One RPC: what the handler read from the request on the main loop, then
 * the store's part (the key, the device, the release checks, the command
 * row) as a store job, then its delivery back on the main loop. The job
 * reads nothing of the request but this copy. */
struct rpc_call {
    struct fota_rpc *rpc;
    struct fota_server *srv;
    struct fota_req *r;
    char key[FOTA_KEY_BUF];            /* the Authorization key ("" with key_bad) */
    int key_bad;
    char device_param[32];             /* device_id= as given ("" none) */
    int has_device_param;
    char version[FOTA_VERSION_MAX];    /* sys_upgrade's version= */
    int has_version, version_long, force, may_queue;
    int online_elsewhere;              /* queue=false: connected to another instance */
    const char *timeout;               /* timeout= (NULL none), a copy */
    char timeout_buf[16];
    int upgrade;                       /* action sys_upgrade */
    int too_big;                       /* params over FOTA_JSON_MAX: code 400 or 413 */
    /* The job's answers. */
    int code;                          /* an error reply, 0 none */
    char msg[192];
    int admin;
    int created;                       /* cmd is stored */
    int key_generation;                /* the device's (its owner key in the push) */
    unsigned timeout_s;
    int64_t replaced[8];
    size_t nrep;
    struct fota_command cmd;           /* params owned */
};

static void call_free(struct rpc_call *c)
{
    fota_store_command_cleanup(&c->cmd);
    free(c);
}

/* An error the job or the main loop found: the reply, and the request ends. */
static void call_fail(struct rpc_call *c)
{
    fota_reply_error(c->r, c->code, "%s", c->msg);
    fota_req_release(c->r);
    call_free(c);
}

#define FAIL(c, status, ...)                                      \
    do {                                                          \
        (c)->code = (status);                                     \
        snprintf((c)->msg, sizeof (c)->msg, __VA_ARGS__);         \
    } while (0)

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

/* The target device: an owner/master key's own device, or device_id= for
 * admin. 0, or the error in c. */
static int resolve_device(struct rpc_call *c, struct fota_store *st, struct fota_device *d)
{
    struct fota_key k;
    if (c->key_bad || fota_server_key_lookup(c->srv, c->key, strlen(c->key), &k) != 0) {
        FAIL(c, 401, "invalid key");
        return -1;
    }
    c->admin = k.kind == FOTA_KEY_ADMIN;
    int64_t id = 0;
    if (k.kind == FOTA_KEY_OWNER || k.kind == FOTA_KEY_MASTER) {
        id = k.device_id;
        if (c->has_device_param && strtoll(c->device_param, NULL, 10) != id) {
            FAIL(c, 403, "this key belongs to another device");
            return -1;
        }
    } else if (k.kind == FOTA_KEY_ADMIN) {
        char *end = NULL;
        id = c->has_device_param ? strtoll(c->device_param, &end, 10) : 0;
        if (!c->has_device_param || !c->device_param[0] || *end || id <= 0) {
            FAIL(c, 400, "an admin key needs device_id=");
            return -1;
        }
    } else {
        FAIL(c, 403, "this key cannot send commands to devices");
        return -1;
    }
    if (fota_devcache_get(c->srv->devcache, st, id, d) < 0) {
        FAIL(c, 404, "no device %lld", (long long)id);
        return -1;
    }
    return 0;
}

/* The command row (create, or create replacing the device's queued
 * upgrade) and the device's key generation for its push. */
static void create_run(struct fota_store *st, void *arg)
{
    struct rpc_call *c = arg;
    struct fota_command *cmd = &c->cmd;
    cmd->state = FOTA_CMD_QUEUED;
    cmd->nonce = fota_devchan_nonce();
    /* A new upgrade replaces the device's queued one (the store cancels it
     * in the same transaction): a device never runs two stale upgrades. */
    int rc = c->upgrade ? st->ops->command_create_replacing(st, cmd, c->replaced, 8, &c->nrep)
                        : st->ops->command_create(st, cmd);
    if (rc < 0) {
        FAIL(c, 500, "cannot store the command: %s", fota_errname(rc));
        return;
    }
    c->created = 1;
    fota_recovery_hold_point("rpc_created");   /* test builds only (recovery.h) */
    if (fota_devcache_key_generation(c->srv->devcache, st, cmd->device_id, &c->key_generation) < 0)
        c->key_generation = -1;
}

static void resolve_run(struct fota_store *st, void *arg)
{
    struct rpc_call *c = arg;
    struct fota_device d;
    if (resolve_device(c, st, &d) < 0)
        return;
    c->cmd.device_id = d.id;
    if (c->upgrade) {
        struct fota_rom rom;
        /* Only a published release (its version passed the upload's checks) is pushed. */
        if (!c->has_version || !c->version[0] || c->version_long) {
            FAIL(c, 400, "sys_upgrade needs version=");
            return;
        }
        if (fota_relcache_get(c->srv->relcache, st, d.product_id, c->version, &rom) < 0) {
            FAIL(c, 404, "product %lld has no release %s", (long long)d.product_id, c->version);
            return;
        }
        /* rom_version is what the device last said (activation, or the D7
         * of a download it has yet to boot; a power cut in the flip leaves
         * it on the old one): the operator's guard, not the phone app's,
         * whose retry after a failed flip the seed's API lets through. */
        if (c->admin && strcmp(d.rom_version, c->version) == 0 && !c->force &&
            !pull_product(st, d.product_id)) {
            FAIL(c, 409, "device %lld already runs %s (force=true sends the upgrade all the same)",
                 (long long)d.id, c->version);
            return;
        }
    }
    if (c->too_big) {
        FAIL(c, c->too_big, c->too_big == 413 ? "datapoint too large" : "parameters too long");
        return;
    }
    c->timeout_s = RPC_TIMEOUT_DEFAULT;
    if (c->timeout) {
        long v = strtol(c->timeout, NULL, 10);
        if (v < 1 || v > RPC_TIMEOUT_MAX) {
            FAIL(c, 400, "timeout must be 1..%d seconds", RPC_TIMEOUT_MAX);
            return;
        }
        c->timeout_s = (unsigned)v;
    }
    if (c->may_queue)   /* queue=false: the device must be online first (the main loop's) */
        create_run(st, c);
    else
        c->online_elsewhere = fota_rpc_online_elsewhere(st, d.id);
}

static void cancel_call(void *arg, int cancelled);

/* On the main loop, with the command stored: delivers it and replies now
 * (202/200 for sys_reboot) or when the device answers. */
static void deliver(struct rpc_call *c)
{
    struct fota_rpc *rpc = c->rpc;
    struct fota_req *r = c->r;
    struct fota_command *cmd = &c->cmd;
    for (size_t i = 0; i < c->nrep && i < 8; i++)
        FOTA_INFO("command replaced dev=%lld cmd=%lld by=%lld", (long long)cmd->device_id,
                  (long long)c->replaced[i], (long long)cmd->id);
    struct rpc_pending *p = fota_xcalloc(1, sizeof *p);
    struct fota_devchan_wait *w = NULL;
    p->pushed_ns = fota_clock_mono_ns();
    int rc = fota_devchan_deliver(rpc->ch, cmd, c->key_generation, c->timeout_s, fota_rpc_done, p,
                                  &w);
    /* Not connected here: perhaps to another instance, which delivers it. */
    if (rc == FOTA_CMD_QUEUED && fota_rpc_route(rpc, p, cmd, c->timeout_s) == 0) {
        rc = FOTA_CMD_DELIVERED;
        w = p->wait;
        p->no_queue = !c->may_queue;
    }
    if (rc == FOTA_CMD_DELIVERED && w) {
        p->rpc = rpc;
        p->r = r;
        p->wait = w;
        p->cmd = *cmd; /* the command's params and result move to the pending request */
        cmd->params = cmd->result = NULL;
        p->timeout_s = c->timeout_s;
        p->next = rpc->pending;
        rpc->pending = p;
        call_free(c);   /* r is p's now: fota_rpc_done or fota_rpc_unclaimed answers */
        return;
    }
    free(p);
    if (rc < 0) {
        FAIL(c, 500, "command not delivered: %s", fota_errname(rc));
        call_fail(c);
        return;
    }
    json_t *j = json_object();
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
    fota_req_release(r);
    call_free(c);
}

static void created_done(void *arg, int cancelled)
{
    struct rpc_call *c = arg;
    if (cancelled) {
        cancel_call(c, 1);
        return;
    }
    if (c->code)
        call_fail(c);
    else
        deliver(c);
}

static void resolved_done(void *arg, int cancelled)
{
    struct rpc_call *c = arg;
    if (cancelled) {
        cancel_call(c, 1);
        return;
    }
    if (c->code) {
        call_fail(c);
        return;
    }
    c->r->dev_id = c->cmd.device_id;
    if (c->created) {
        deliver(c);
        return;
    }
    /* queue=false: stored only for a device online now. */
    if (!fota_devchan_online(c->rpc->ch, c->cmd.device_id) && !c->online_elsewhere) {
        FAIL(c, 409, "device %lld is offline (queue=false)", (long long)c->cmd.device_id);
        call_fail(c);
        return;
    }
    if (!c->srv->exec) {   /* a server made by hand (tests): inline */
        create_run(c->srv->store, c);
        created_done(c, 0);
        return;
    }
    if (fota_store_submit(c->srv->exec, NULL, c->srv->loops[0], create_run, created_done, c) < 0) {
        FAIL(c, 503, "store busy: too many requests wait for the store");
        call_fail(c);
    }
}

/* fotad stops before the call's continuation: the request is let go (as
 * fota_rpc_free lets its pending ones go). Any thread. */
static void cancel_call(void *arg, int cancelled)
{
    struct rpc_call *c = arg;
    (void)cancelled;
    fota_req_release(c->r);
    call_free(c);
}

/* Hands c to the store (r deferred: the continuation answers). */
static void call_start(struct rpc_call *c)
{
    struct fota_req *r = c->r;
    fota_req_defer(r);
    if (!c->srv->exec) {   /* a server made by hand (tests): inline */
        resolve_run(c->srv->store, c);
        resolved_done(c, 0);
        return;
    }
    if (fota_store_submit(c->srv->exec, NULL, c->srv->loops[0], resolve_run, resolved_done, c) < 0) {
        FAIL(c, 503, "store busy: too many requests wait for the store");
        call_fail(c);
    }
}

/* A new call for r with what it reads of the request here (the
 * Authorization key, device_id=, queue=, timeout=); NULL after a 401 reply. */
static struct rpc_call *call_new(struct fota_req *r, struct fota_rpc *rpc)
{
    const char *k = NULL;
    size_t len = 0;
    const char *why = fota_req_key(r, &k, &len);
    if (why) {
        fota_reply_error(r, 401, "%s", why);
        return NULL;
    }
    struct rpc_call *c = fota_xcalloc(1, sizeof *c);
    c->rpc = rpc;
    c->srv = r->srv;
    c->r = r;
    c->key_bad = len >= sizeof c->key;
    if (!c->key_bad) {
        memcpy(c->key, k, len);
        c->key[len] = '\0';
    }
    const char *s = fota_req_query(r, "device_id");
    if (s) {
        c->has_device_param = 1;
        if (strlen(s) >= sizeof c->device_param)
            fota_str_copy(c->device_param, sizeof c->device_param, "x");   /* not a number */
        else
            fota_str_copy(c->device_param, sizeof c->device_param, s);
    }
    const char *q = fota_req_query(r, "queue");
    c->may_queue = !(q && (strcmp(q, "false") == 0 || strcmp(q, "0") == 0));
    const char *t = fota_req_query(r, "timeout");
    if (t) {
        fota_str_copy(c->timeout_buf, sizeof c->timeout_buf, strlen(t) < 15 ? t : "0");
        c->timeout = c->timeout_buf;
    }
    return c;
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

static void rpc_handler(struct fota_req *r)
{
    struct fota_rpc *rpc = r->ud;
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
    struct rpc_call *c = call_new(r, rpc);
    if (!c)
        return;
    json_t *params = json_object();
    for (struct evkeyval *kv = r->query.tqh_first; kv; kv = kv->next.tqe_next)
        if (!is_control_param(kv->key))
            json_object_set_new(params, kv->key, json_string(kv->value));
    const char *version = fota_req_query(r, "version");
    c->upgrade = strcmp(action, "sys_upgrade") == 0;
    if (version) {
        c->has_version = 1;
        c->version_long = strlen(version) >= FOTA_VERSION_MAX;
        fota_str_copy(c->version, sizeof c->version, version);
    }
    const char *force = fota_req_query(r, "force");
    c->force = force && (strcmp(force, "true") == 0 || strcmp(force, "1") == 0);
    if (params_size(params) >= FOTA_JSON_MAX)
        c->too_big = 400;
    fota_str_copy(c->cmd.action, sizeof c->cmd.action, action);
    c->cmd.params = params;
    call_start(c);
}

static void datastream_handler(struct fota_req *r)
{
    struct fota_rpc *rpc = r->ud;
    const char *dtd = fota_req_query(r, "deliver_to_device");
    if (!dtd || strcmp(dtd, "true") != 0) {
        fota_reply_error(r, 400, "only deliver_to_device=true is supported");
        return;
    }
    struct rpc_call *c = call_new(r, rpc);
    if (!c)
        return;
    json_t *params = json_object();
    char path[FOTA_ROUTE_CAP_LEN + 40];
    snprintf(path, sizeof path, "/v1/datastreams/%s/datapoint/", r->caps[0]);
    json_object_set_new(params, "path", json_string(path));
    json_object_set_new(params, "method", json_string(r->method == FOTA_M_POST ? "POST" : "GET"));
    if (r->method == FOTA_M_POST) {
        json_t *body = fota_req_json_body(r);
        if (!body) {   /* answered (400) */
            json_decref(params);
            call_free(c);
            return;
        }
        json_object_set_new(params, "body", body);
    }
    if (params_size(params) >= FOTA_JSON_MAX)
        c->too_big = 413;
    fota_str_copy(c->cmd.action, sizeof c->cmd.action, "datastream");
    c->cmd.params = params;
    call_start(c);
}

struct fota_rpc *fota_rpc_new(struct fota_server *srv, struct fota_devchan *ch)
{
    struct fota_rpc *rpc = fota_xcalloc(1, sizeof *rpc);
    rpc->srv = srv;
    rpc->ch = ch;
    if (fota_metric_register(srv, &results_desc, rpc->results) < 0 ||
        fota_metric_register_hist(srv, &latency_desc, &rpc->latency) < 0 ||
        fota_http_route(srv, FOTA_M_GET | FOTA_M_POST, "/v1/device/rpc/", rpc_handler, rpc) < 0 ||
        fota_http_route(srv, FOTA_M_GET | FOTA_M_POST, "/v1/datastreams/*/datapoint/",
                        datastream_handler, rpc) < 0 ||
        fota_rpc_route_start(rpc) < 0) {
        free(rpc);
        return NULL;
    }
    return rpc;
}
