/* store_module.c - the store module (fota_store_module, store_module.h):
 * what keeps fotad's data dir fit to run for years. Retention of the two
 * log tables (messages, transfers) by age, count and, for messages, per
 * device, pruned by a round on a timer; and the disk reserve (reserve.h,
 * DATA/reserve) that admin deletes fall back on when the disk is full, with
 * the margin uploads must leave free. Main loop; the round's store calls run
 * as jobs on the executor's lane `retention` (store_exec.h). */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>

#include "clock.h"
#include "log.h"
#include "blob_share.h"
#include "reserve.h"
#include "server.h"
#include "store_exec.h"
#include "store_module.h"
#include "xmalloc.h"

struct store_mod_conf {
    unsigned msg_days, msg_rows, msg_per_device;
    unsigned xfer_days, xfer_rows;
    unsigned interval;                /* s between retention rounds */
    uint64_t disk_reserve;            /* bytes of DATA/reserve */
};

#define STR_(x) #x
#define STR(x) STR_(x)
#define ROW(f) FOTA_CONF_FIELD(struct store_mod_conf, f)
static const struct fota_conf_opt store_rows[] = {
    { "message_retention_days", FOTA_CONF_T_UINT, ROW(msg_days), "90", 0, 36500, FOTA_CONF_RELOAD,
      "Messages older than this many days are deleted; 0 = kept whatever their age." },
    { "message_retention_rows", FOTA_CONF_T_UINT, ROW(msg_rows), "500000", 0, 1000000000,
      FOTA_CONF_RELOAD,
      "At most this many messages are kept, the newest (a message takes up to about 2 KiB); "
      "0 = no limit." },
    { "message_retention_per_device", FOTA_CONF_T_UINT, ROW(msg_per_device), "10000", 0,
      1000000000, FOTA_CONF_RELOAD,
      "At most this many messages of one device are kept, the newest, so one chatty device "
      "cannot push the others' out; 0 = no limit." },
    { "transfer_retention_days", FOTA_CONF_T_UINT, ROW(xfer_days), "30", 0, 36500,
      FOTA_CONF_RELOAD,
      "Legacy-port transfer records older than this many days are deleted; 0 = kept." },
    { "transfer_retention_rows", FOTA_CONF_T_UINT, ROW(xfer_rows), "100000", 0, 1000000000,
      FOTA_CONF_RELOAD, "At most this many legacy-port transfer records are kept; 0 = no limit." },
    { "retention_interval", FOTA_CONF_T_UINT, ROW(interval), "60", 1, 86400, FOTA_CONF_RELOAD,
      "Seconds between two retention rounds (each deletes what is over the limits, "
      STR(FOTA_PRUNE_BATCH) " rows per store transaction)." },
    { "disk_reserve", FOTA_CONF_T_SIZE, ROW(disk_reserve), "8M", 0, 1024ull * 1024 * 1024, 0,
      "Room kept in DATA/reserve for deletes on a full disk, and left free by every upload; "
      "0 = none." },
    { NULL, 0, 0, 0, NULL, 0, 0, 0, NULL }
};

/* One log table's round: bounded calls until the store says it is over
 * (store.h, message_prune). */
struct round {
    const char *table;
    int (*prune)(struct fota_store *s, struct fota_retention *r, size_t *deleted, int *more);
    struct fota_retention r;
    int active;
    uint64_t rows, batches;           /* deleted, calls */
};

/* A round in flight: the job's own (a copy of the settings it runs with).
 * With store threads the job runs every call of the round back to back;
 * inline (SQLite, on the main loop) one call of each table per job, the
 * continuation submitting the next, so the loop runs between batches. */
struct round_job {
    struct store_mod *m;              /* touched in the continuation only */
    int threaded;
    struct round round[2];            /* messages, transfers */
    int64_t started_ms;
    int more;                         /* the round goes on */
};

struct store_mod {
    struct fota_server *srv;
    const struct store_mod_conf *conf;   /* live: SIGHUP changes it in place */
    struct fota_reserve *reserve;
    struct event *prune_ev, *refill_ev;
    struct fota_store_lane *lane;     /* `retention` */
    struct round_job *job;            /* the round in flight, NULL between rounds */
    struct fota_blob_share *share;    /* release files shared through the store, or NULL */
};

static int64_t cutoff(unsigned days)
{
    return days ? fota_clock_wall_s() - (int64_t)days * 86400 : 0;
}

static void round_begin(struct store_mod *m, struct round_job *j)
{
    const struct store_mod_conf *c = m->conf;
    struct round *msg = &j->round[0], *xfer = &j->round[1];

    *msg = (struct round){ .table = "messages", .prune = m->srv->store->ops->message_prune,
                           .r = { .older_than = cutoff(c->msg_days), .keep_rows = c->msg_rows,
                                  .keep_per_device = c->msg_per_device },
                           .active = 1 };
    *xfer = (struct round){ .table = "transfers", .prune = m->srv->store->ops->transfer_prune,
                            .r = { .older_than = cutoff(c->xfer_days), .keep_rows = c->xfer_rows },
                            .active = 1 };
    j->started_ms = fota_clock_mono_ms();
}

/* One call of the table's round; 1 while the round goes on. Store thread
 * or inline. */
static int round_step(struct fota_store *st, struct round_job *j, struct round *rd)
{
    size_t n = 0;
    int rc, more = 0;

    if (!rd->active)
        return 0;
    rc = rd->prune(st, &rd->r, &n, &more);
    rd->rows += n;
    rd->batches++;
    if (rc == 0 && more)
        return 1;
    if (rc)   /* ENOSPC is logged by the store, once a second */
        FOTA_WARN("mod=store retention stopped until the next round table=%s error=%s",
                  rd->table, fota_errname(rc));
    if (rd->rows)
        FOTA_INFO("mod=store retention deleted table=%s rows=%llu calls=%llu ms=%lld",
                  rd->table, (unsigned long long)rd->rows, (unsigned long long)rd->batches,
                  (long long)(fota_clock_mono_ms() - j->started_ms));
    rd->active = 0;
    return 0;
}

/* One batch of each table (the store's lock is held for one batch at a
 * time), and with store threads the next ones at once. */
static void round_job(struct fota_store *st, void *arg)
{
    struct round_job *j = arg;

    do {
        j->more = round_step(st, j, &j->round[0]);
        j->more |= round_step(st, j, &j->round[1]);
    } while (j->more && j->threaded);
}

static void arm(struct event *ev, unsigned seconds)
{
    struct timeval tv = { (time_t)seconds, 0 };

    event_add(ev, &tv);
}

static void round_done(void *arg, int cancelled);

/* Hands the round to the lane; 0, or the executor's refusal. Main loop. */
static int round_submit(struct store_mod *m, struct round_job *j)
{
    int rc = fota_store_submit(m->srv->exec, m->lane, m->srv->loops[0], round_job, round_done, j);
    if (rc == 0)
        m->job = j;
    return rc;
}

/* The job's continuation, main loop: the round's next job, or the next
 * round after the interval. */
static void round_done(void *arg, int cancelled)
{
    struct round_job *j = arg;
    struct store_mod *m = j->m;

    if (cancelled || !m) {   /* cancelled: fotad stops, after the loops (drained) */
        if (m)
            m->job = NULL;
        free(j);
        return;
    }
    m->job = NULL;
    if (j->more && round_submit(m, j) == 0)
        return;
    free(j);
    arm(m->prune_ev, m->conf->interval);
}

static void prune_tick(evutil_socket_t fd, short what, void *arg)
{
    struct store_mod *m = arg;
    struct round_job *j;

    (void)fd;
    (void)what;
    if (m->job)
        return;
    j = fota_xcalloc(1, sizeof *j);
    j->m = m;
    j->threaded = fota_store_exec_threaded(m->srv->exec);
    round_begin(m, j);
    if (round_submit(m, j) != 0) {   /* the lane is full: the next interval */
        free(j);
        arm(m->prune_ev, m->conf->interval);
    }
}

static void refill_tick(evutil_socket_t fd, short what, void *arg)
{
    struct store_mod *m = arg;

    (void)fd;
    (void)what;
    fota_reserve_refill(m->reserve);
}

static void mod_stop(struct fota_server *srv, void *state)
{
    struct store_mod *m = state;

    if (!m)
        return;
    if (m->job)   /* its continuation frees it */
        m->job->m = NULL;
    fota_blob_share_stop(m->share);
    if (srv->store)
        fota_store_set_reserve(srv->store, NULL);
    if (srv->blobs)
        fota_blob_store_set_reserve(srv->blobs, 0);
    if (m->prune_ev)
        event_free(m->prune_ev);
    if (m->refill_ev)
        event_free(m->refill_ev);
    fota_reserve_close(m->reserve);
    free(m);
}

static int mod_start(struct fota_server *srv, void **state)
{
    static const struct timeval second = { 1, 0 };
    struct store_mod *m;
    char path[FOTA_CONF_PATH_MAX + 16];
    int rc;

    *state = NULL;
    m = fota_xcalloc(1, sizeof *m);
    m->srv = srv;
    m->conf = fota_server_module_conf(srv, &fota_store_module);
    snprintf(path, sizeof path, "%s/reserve", srv->conf.data_dir);
    rc = fota_reserve_open(path, m->conf->disk_reserve, fota_log_lib_cb, (void *)"store",
                           &m->reserve);
    if (rc) {
        mod_stop(srv, m);
        return rc;
    }
    fota_store_set_reserve(srv->store, m->reserve);
    fota_blob_store_set_reserve(srv->blobs, m->conf->disk_reserve);
    m->lane = fota_store_lane_new(srv->exec, "retention");
    m->prune_ev = event_new(srv->base, -1, 0, prune_tick, m);
    m->refill_ev = event_new(srv->base, -1, EV_PERSIST, refill_tick, m);
    if (!m->lane || !m->prune_ev || !m->refill_ev) {
        FOTA_ERROR("mod=store cannot create its timers");
        mod_stop(srv, m);
        return FOTA_ENOMEM;
    }
    rc = fota_blob_share_start(srv, &m->share);   /* with other instances (PostgreSQL) */
    if (rc) {
        mod_stop(srv, m);
        return rc;
    }
    arm(m->prune_ev, 0);   /* a first round at start */
    if (m->conf->disk_reserve)
        event_add(m->refill_ev, &second);
    FOTA_INFO("mod=store retention messages_days=%u messages_rows=%u messages_per_device=%u "
              "transfers_days=%u transfers_rows=%u interval_s=%u disk_reserve=%llu held=%llu",
              m->conf->msg_days, m->conf->msg_rows, m->conf->msg_per_device, m->conf->xfer_days,
              m->conf->xfer_rows, m->conf->interval, (unsigned long long)m->conf->disk_reserve,
              (unsigned long long)fota_reserve_held(m->reserve));
    *state = m;
    return 0;
}

const struct fota_module fota_store_module = {
    .name = "store",
    .conf_opts = store_rows,
    .conf_size = sizeof(struct store_mod_conf),
    .start = mod_start,
    .stop = mod_stop,
};
