/* store_module.c - the store module (fota_store_module, store_module.h):
 * what keeps fotad's data dir fit to run for years. Retention of the two
 * log tables (messages, transfers) by age, count and, for messages, per
 * device, pruned on a timer one batch per loop turn; and the disk reserve
 * (reserve.h, DATA/reserve) that admin deletes fall back on when the disk is
 * full, with the margin uploads must leave free. Main loop only. */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>

#include "clock.h"
#include "log.h"
#include "reserve.h"
#include "server.h"
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

/* One log table's round: a call per loop turn until the store says it is
 * over (store.h, message_prune). */
struct round {
    const char *table;
    int (*prune)(struct fota_store *s, struct fota_retention *r, size_t *deleted, int *more);
    struct fota_retention r;
    int active;
    uint64_t rows, batches;           /* deleted, calls */
};

struct store_mod {
    struct fota_server *srv;
    const struct store_mod_conf *conf;   /* live: SIGHUP changes it in place */
    struct fota_reserve *reserve;
    struct event *prune_ev, *refill_ev;
    struct round round[2];            /* messages, transfers */
    int64_t started_ms;
};

static int64_t cutoff(unsigned days)
{
    return days ? fota_clock_wall_s() - (int64_t)days * 86400 : 0;
}

static void round_begin(struct store_mod *m)
{
    const struct store_mod_conf *c = m->conf;
    struct round *msg = &m->round[0], *xfer = &m->round[1];

    *msg = (struct round){ .table = "messages", .prune = m->srv->store->ops->message_prune,
                           .r = { .older_than = cutoff(c->msg_days), .keep_rows = c->msg_rows,
                                  .keep_per_device = c->msg_per_device },
                           .active = 1 };
    *xfer = (struct round){ .table = "transfers", .prune = m->srv->store->ops->transfer_prune,
                            .r = { .older_than = cutoff(c->xfer_days), .keep_rows = c->xfer_rows },
                            .active = 1 };
    m->started_ms = fota_clock_mono_ms();
}

/* One call of the table's round; 1 while the round goes on. */
static int round_step(struct store_mod *m, struct round *rd)
{
    size_t n = 0;
    int rc, more = 0;

    if (!rd->active)
        return 0;
    rc = rd->prune(m->srv->store, &rd->r, &n, &more);
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
                  (long long)(fota_clock_mono_ms() - m->started_ms));
    rd->active = 0;
    return 0;
}

static void arm(struct event *ev, unsigned seconds)
{
    struct timeval tv = { (time_t)seconds, 0 };

    event_add(ev, &tv);
}

static void prune_tick(evutil_socket_t fd, short what, void *arg)
{
    struct store_mod *m = arg;
    int more;

    (void)fd;
    (void)what;
    if (!m->round[0].active && !m->round[1].active)
        round_begin(m);
    /* one batch of each table, then back to the loop: the store's lock is
     * held for one batch at a time */
    more = round_step(m, &m->round[0]);
    more |= round_step(m, &m->round[1]);
    arm(m->prune_ev, more ? 0 : m->conf->interval);
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
    m->prune_ev = event_new(srv->base, -1, 0, prune_tick, m);
    m->refill_ev = event_new(srv->base, -1, EV_PERSIST, refill_tick, m);
    if (!m->prune_ev || !m->refill_ev) {
        FOTA_ERROR("mod=store cannot create its timers");
        mod_stop(srv, m);
        return FOTA_ENOMEM;
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
