/* rpc_route.c - an RPC for a device connected to another instance (several
 * fotad on one PostgreSQL, docs/scale-out.md). The instance that took the
 * request stored the command; it rings fota_cmd "CMD:DEVICE:FROM:TIMEOUT"
 * and waits. Every instance hears the ring; the one holding the device reads
 * the row, pushes it, and answers on fota_cmdack "CMD:STATE:FROM": first
 * DELIVERED (it took the command), then the state the device's reply, a
 * requeue or the device's deletion left. The requester reads the result
 * from the row and answers as for a device of its own. No instance taking
 * the command within cmd_route_ms means none holds the device: it stays
 * queued for its next identify. */
#include "rpc_int.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>
#include <jansson.h>

#include "cluster.h"
#include "devcache.h"
#include "devchan_int.h"
#include "log.h"
#include "store_exec.h"
#include "xmalloc.h"

#define CMD_CHANNEL "fota_cmd"
#define ACK_CHANNEL "fota_cmdack"

/* A command of another instance delivered here, until its wait ends. */
struct rpc_remote {
    struct fota_rpc *rpc;
    struct rpc_remote *prev, *next;
    int64_t cmd_id, device_id;
    int64_t from;                      /* the requester's instance id */
};

static void ack(struct fota_rpc *rpc, int64_t cmd_id, int state, int64_t to)
{
    char payload[80];
    int rc;

    snprintf(payload, sizeof payload, "%" PRId64 ":%d:%" PRId64, cmd_id, state, to);
    rc = fota_cluster_notify(rpc->srv, ACK_CHANNEL, payload);
    if (rc < 0)
        FOTA_WARN("command answer not sent cmd=%" PRId64 " to=%" PRId64 " error=%s", cmd_id, to,
                  fota_errname(rc));
}

static void remote_unlink(struct rpc_remote *rm)
{
    if (rm->prev)
        rm->prev->next = rm->next;
    else
        rm->rpc->remote = rm->next;
    if (rm->next)
        rm->next->prev = rm->prev;
}

/* The wait of a command delivered for another instance ended: tell it. Its
 * own deadline answers a timeout there. */
static void remote_done(void *ud, int state, const json_t *result)
{
    struct rpc_remote *rm = ud;

    (void)result;   /* in the row, which the requester reads */
    remote_unlink(rm);
    if (state != FOTA_CMD_TIMEOUT)
        ack(rm->rpc, rm->cmd_id, state, rm->from);
    free(rm);
}

/* A ring of fota_cmd or fota_cmdack, with the row it reads in a store job
 * (and, for a delivery, the device's key generation: its push's owner key). */
struct ring {
    struct fota_rpc *rpc;
    long long id, device_id, peer;     /* command, device, the other instance */
    int state;                         /* fota_cmdack's */
    unsigned timeout_s;                /* fota_cmd's */
    int rc, key_generation;
    struct fota_command cmd;
};

static void ring_run(struct fota_store *st, void *arg)
{
    struct ring *g = arg;

    g->rc = st->ops->command_get(st, g->id, &g->cmd);
    if (g->rc == 0 && g->device_id &&
        fota_devcache_key_generation(g->rpc->srv->devcache, st, g->device_id,
                                     &g->key_generation) < 0)
        g->key_generation = -1;
}

static void ring_free(struct ring *g)
{
    fota_store_command_cleanup(&g->cmd);
    free(g);
}

/* Runs ring_run as a store job, then done on the main loop. */
static void ring_submit(struct ring *g, fota_store_done_fn done)
{
    struct fota_server *srv = g->rpc->srv;

    if (!srv->exec) {   /* a server made by hand (tests): inline */
        ring_run(srv->store, g);
        done(g, 0);
        return;
    }
    if (fota_store_submit(srv->exec, NULL, srv->loops[0], ring_run, done, g) < 0) {
        FOTA_WARN("command ring dropped cmd=%lld reason=\"store busy\"", g->id);
        ring_free(g);
    }
}

/* The row of a command another instance rang for: pushed when this
 * instance holds the device and the command is still queued. */
static void cmd_read(void *arg, int cancelled)
{
    struct ring *g = arg;
    struct fota_rpc *rpc = g->rpc;
    struct fota_devchan_wait *w = NULL;
    int rc;

    if (cancelled || g->rc < 0 || g->cmd.device_id != g->device_id ||
        g->cmd.state != FOTA_CMD_QUEUED || !fota_devchan_online(rpc->ch, g->device_id)) {
        if (!cancelled)
            FOTA_DEBUG("command ring ignored dev=%lld cmd=%lld from=%lld state=%d error=%s",
                       g->device_id, g->id, g->peer, g->rc < 0 ? 0 : g->cmd.state,
                       g->rc < 0 ? fota_errname(g->rc) : "none");
        ring_free(g);
        return;
    }
    struct rpc_remote *rm = fota_xcalloc(1, sizeof *rm);
    rm->rpc = rpc;
    rm->cmd_id = g->id;
    rm->device_id = g->device_id;
    rm->from = g->peer;
    rc = fota_devchan_deliver(rpc->ch, &g->cmd, g->key_generation, g->timeout_s, remote_done, rm,
                              &w);
    FOTA_INFO("command taken for another instance dev=%lld cmd=%lld from=%lld state=%d",
              g->device_id, g->id, g->peer, rc);
    if (rc == FOTA_CMD_DELIVERED && w) {
        rm->next = rpc->remote;
        if (rpc->remote)
            rpc->remote->prev = rm;
        rpc->remote = rm;
        ack(rpc, g->id, FOTA_CMD_DELIVERED, g->peer);
    } else {
        free(rm);
        /* sys_reboot (no answer awaited), or a push that could not be encoded. */
        if (g->cmd.state == FOTA_CMD_DONE || g->cmd.state == FOTA_CMD_FAILED)
            ack(rpc, g->id, g->cmd.state, g->peer);
    }
    ring_free(g);
}

/* The n colon-separated integers of a payload into v. 0, or -1 for
 * anything else (a field out of range, missing or followed by junk). */
static int payload_ints(const char *p, long long *v, int n)
{
    for (int i = 0; i < n; i++) {
        char *end;
        errno = 0;
        v[i] = strtoll(p, &end, 10);
        if (end == p || errno || *end != (i + 1 < n ? ':' : '\0'))
            return -1;
        p = end + 1;
    }
    return 0;
}

/* fota_cmd: another instance stored a command. payload NULL (the listener
 * reconnected): a ring missed meanwhile left its command queued, so every
 * device connected here has its queued commands checked again. */
static void on_cmd(struct fota_server *srv, const char *payload, void *ud)
{
    struct fota_rpc *rpc = ud;
    long long v[4];   /* command, device, the instance it came from, timeout s */

    if (!payload) {
        size_t n = fota_devchan_kick_all(rpc->ch);
        FOTA_INFO("cluster rescan of queued commands devices=%zu", n);
        return;
    }
    if (payload_ints(payload, v, 4) != 0 || v[3] < 0 || v[3] > UINT_MAX ||
        v[2] == fota_cluster_instance_id(srv) || !fota_devchan_online(rpc->ch, v[1]))
        return;
    long long id = v[0], dev = v[1], from = v[2];
    unsigned timeout = (unsigned)v[3];
    struct ring *g = fota_xcalloc(1, sizeof *g);
    g->rpc = rpc;
    g->id = id;
    g->device_id = dev;
    g->peer = from;
    g->timeout_s = timeout;
    ring_submit(g, cmd_read);
}

static struct rpc_pending *pending_of(struct fota_rpc *rpc, int64_t cmd_id)
{
    for (struct rpc_pending *p = rpc->pending; p; p = p->next)
        if (p->cmd.id == cmd_id)
            return p;
    return NULL;
}

/* The row of one of our commands whose wait ended on another instance: the
 * device's reply (or the reason there is none) is in it. */
static void ack_read(void *arg, int cancelled)
{
    struct ring *g = arg;
    struct rpc_pending *p = cancelled ? NULL : pending_of(g->rpc, g->id);

    if (p) {
        if (g->rc < 0)
            FOTA_WARN("command answer without its row dev=%lld cmd=%lld error=%s",
                      (long long)p->cmd.device_id, g->id, fota_errname(g->rc));
        fota_devchan_wait_wake(g->rpc->ch, p->cmd.device_id, p->cmd.nonce, g->state,
                               g->rc == 0 ? g->cmd.result : NULL);
    }
    ring_free(g);
}

/* fota_cmdack: the instance holding the device took one of our commands,
 * or its wait ended there. */
static void on_ack(struct fota_server *srv, const char *payload, void *ud)
{
    struct fota_rpc *rpc = ud;
    struct rpc_pending *p;
    long long v[3];   /* command, its state, the instance it is for */

    if (!payload || payload_ints(payload, v, 3) != 0 || v[1] < INT_MIN || v[1] > INT_MAX ||
        v[2] != fota_cluster_instance_id(srv) || !(p = pending_of(rpc, v[0])))
        return;
    long long id = v[0];
    int state = (int)v[1];
    if (state == FOTA_CMD_DELIVERED) {
        fota_rpc_route_end(p);   /* taken: the wait for the reply goes on */
        return;
    }
    struct ring *g = fota_xcalloc(1, sizeof *g);
    g->rpc = rpc;
    g->id = id;
    g->state = state;
    ring_submit(g, ack_read);
}

int fota_rpc_route_start(struct fota_rpc *rpc)
{
    int rc = fota_cluster_listen(rpc->srv, CMD_CHANNEL, on_cmd, rpc);

    return rc ? rc : fota_cluster_listen(rpc->srv, ACK_CHANNEL, on_ack, rpc);
}

int fota_rpc_online_elsewhere(struct fota_store *st, int64_t device_id)
{
    struct fota_device d;

    if (!st->instance_id)
        return 0;
    return st->ops->device_get(st, device_id, &d) == 0 && d.online;
}

static void route_cb(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    fota_rpc_unclaimed(ud);
}

int fota_rpc_route(struct fota_rpc *rpc, struct rpc_pending *p, const struct fota_command *cmd,
                   unsigned timeout_s)
{
    int64_t me = fota_cluster_instance_id(rpc->srv);
    unsigned ms = rpc->ch->conf->cmd_route_ms;
    char payload[96];
    int rc;

    if (!me)
        return FOTA_ENOENT;
    snprintf(payload, sizeof payload, "%" PRId64 ":%" PRId64 ":%" PRId64 ":%u", cmd->id,
             cmd->device_id, me, timeout_s);
    if ((rc = fota_cluster_notify(rpc->srv, CMD_CHANNEL, payload)) != 0) {
        FOTA_WARN("command not routed dev=%" PRId64 " cmd=%" PRId64 " error=%s", cmd->device_id,
                  cmd->id, fota_errname(rc));
        return rc;
    }
    p->wait = fota_devchan_wait_add(rpc->ch, cmd->device_id, cmd->nonce, cmd->id, timeout_s,
                                    fota_rpc_done, p);
    p->route_ev = evtimer_new(rpc->srv->base, route_cb, p);
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
    evtimer_add(p->route_ev, &tv);
    FOTA_INFO("command routed dev=%" PRId64 " cmd=%" PRId64 " wait_ms=%u", cmd->device_id,
              cmd->id, ms);
    return 0;
}

void fota_rpc_route_end(struct rpc_pending *p)
{
    if (p->route_ev)
        event_free(p->route_ev);
    p->route_ev = NULL;
}

void fota_rpc_route_free(struct fota_rpc *rpc)
{
    while (rpc->remote) {
        struct rpc_remote *rm = rpc->remote;
        rpc->remote = rm->next;
        free(rm);
    }
}
