/* rpc_int.h - what rpc.c (the REST side of device commands) and rpc_route.c
 * (commands for a device connected to another instance) share. Main loop
 * only. */
#ifndef FOTA_RPC_INT_H
#define FOTA_RPC_INT_H

#include <stdint.h>

#include "metric.h"
#include "rpc.h"
#include "store.h"

struct event;
struct fota_devchan_wait;
struct fota_req;
struct json_t;
struct rpc_remote;

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
    struct event *route_ev;            /* routed to the other instances: runs out when none
                                          took the command (rpc_route.c); NULL once one did */
    int no_queue;                      /* queue=false: nobody taking it is 409, not 202 */
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

struct fota_rpc {
    struct fota_server *srv;
    struct fota_devchan *ch;
    struct rpc_pending *pending;       /* requests waiting for their device */
    struct rpc_remote *remote;         /* commands of other instances delivered here */
    struct fota_metric results[RPC_RESULTS];
    struct fota_metric_hist latency;
};

/* rpc.c: answers p (a fota_devchan_done_cb: state and the device's reply)
 * and frees it. */
void fota_rpc_done(void *ud, int state, const struct json_t *result);
/* rpc.c: no instance took p's command in time: 202, it stays queued (409
 * and cancelled with queue=false); frees p. */
void fota_rpc_unclaimed(struct rpc_pending *p);

/* rpc_route.c: listens on fota_cmd and fota_cmdack (nothing alone). 0 or
 * FOTA_E* from fota_cluster_listen. */
int fota_rpc_route_start(struct fota_rpc *rpc);
/* 1 when the store says the device is online, which for one not connected
 * here means connected to another instance; 0 alone. A store job's. */
int fota_rpc_online_elsewhere(struct fota_store *st, int64_t device_id);
/* For cmd (stored, queued) of a device not connected here: rings the other
 * instances and makes p wait for the device's reply (p->wait, timeout_s)
 * and for an instance to take the command (p->route_ev, cmd_route_ms).
 * 0, or non-zero alone or when the doorbell cannot be rung (p untouched). */
int fota_rpc_route(struct fota_rpc *rpc, struct rpc_pending *p, const struct fota_command *cmd,
                   unsigned timeout_s);
/* Drops p's route timer (NULL-safe on p->route_ev). */
void fota_rpc_route_end(struct rpc_pending *p);
/* Frees what is left of the commands delivered for other instances (their
 * waits are gone with the device channel's). */
void fota_rpc_route_free(struct fota_rpc *rpc);

#endif
