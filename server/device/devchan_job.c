/* devchan_job.c - the device channel's store work off the main loop: a job
 * runs its store calls through the executor (store_exec.h: a store thread,
 * or inline for SQLite with the continuation deferred) on one of the
 * channel's lanes, so a device's frames and pushes reach the store in
 * order, and its continuation comes back to the main loop. A frame's job
 * pauses its connection's reading until then (FOTA_DCONN_PAUSE_STORE); the
 * continuation finds the connection again by id. A server without an
 * executor (unit tests) runs the job inline and the continuation from the
 * loop's next turn. */
#include "devchan_int.h"

#include <stdio.h>
#include <stdlib.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "log.h"
#include "store_exec.h"
#include "xmalloc.h"

void *fota_devchan_job_new(struct fota_devchan *ch, size_t size)
{
    struct fota_devchan_job *j = fota_xcalloc(1, size);
    j->ch = ch;
    j->srv = ch->srv;
    return j;
}

void fota_devchan_job_lanes(struct fota_devchan *ch)
{
    char name[32];
    if (!ch->srv->exec)
        return;
    for (int i = 0; i < FOTA_DEVCHAN_LANES; i++) {
        snprintf(name, sizeof name, "devchan%d", i);
        ch->lane[i] = fota_store_lane_new(ch->srv->exec, name);
    }
    ch->pres_lane = fota_store_lane_new(ch->srv->exec, "presence");
}

static void drop(struct fota_devchan_job *j)
{
    if (j->drop)
        j->drop(j);
    else
        free(j);
}

static void run(struct fota_store *s, void *arg)
{
    struct fota_devchan_job *j = arg;
    j->run(s ? s : j->srv->store, j);
    if (!j->done)
        drop(j);   /* no continuation: the job was the last to hold it */
}

/* Runs j's continuation on the main loop: the connection it paused resumes
 * after it (unless it closed, or closes now). */
static void finish(struct fota_devchan_job *j)
{
    struct fota_devchan *ch = j->ch;
    uint64_t id = j->conn_id;
    struct fota_dconn *c = id ? fota_devchan_conn_by_id(ch, id) : NULL;
    j->done(j, c);   /* frees j */
    if (id && (c = fota_devchan_conn_by_id(ch, id)) != NULL && ch->resume)
        ch->resume(c, FOTA_DCONN_PAUSE_STORE);
}

static void done(void *arg, int cancelled)
{
    struct fota_devchan_job *j = arg;
    if (cancelled)
        drop(j);   /* the loop is stopping: free only */
    else
        finish(j);
}

static void once_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    finish(arg);
}

int fota_devchan_job_submit(struct fota_devchan *ch, struct fota_dconn *c, int64_t key,
                            struct fota_devchan_job *j)
{
    return fota_devchan_job_submit_on(ch, ch->lane[(uint64_t)key % FOTA_DEVCHAN_LANES], c, j);
}

int fota_devchan_job_submit_on(struct fota_devchan *ch, struct fota_store_lane *lane,
                               struct fota_dconn *c, struct fota_devchan_job *j)
{
    struct fota_server *srv = ch->srv;
    j->conn_id = c ? c->id : 0;
    if (c) {
        c->paused |= FOTA_DCONN_PAUSE_STORE;
        bufferevent_disable(c->bev, EV_READ);
    }
    if (!srv->exec) {
        run(srv->store, j);
        if (!j->done)
            return 0;
        static const struct timeval now = { 0, 0 };
        if (event_base_once(srv->base, -1, EV_TIMEOUT, once_cb, j, &now) == 0)
            return 0;
        finish(j);   /* no event: at once (out of memory in libevent) */
        return 0;
    }
    int rc = fota_store_submit(srv->exec, lane, j->done ? srv->loops[0] : NULL, run,
                               j->done ? done : NULL, j);
    if (rc < 0 && c) {
        c->paused &= (uint8_t)~FOTA_DCONN_PAUSE_STORE;
        j->conn_id = 0;
        if (!c->paused && !c->closing)
            bufferevent_enable(c->bev, EV_READ);
    }
    return rc;
}
