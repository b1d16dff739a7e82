/* rollout_remote.c - a rollout's members whose device another instance
 * holds (docs/scale-out.md, several fotad on one PostgreSQL). The driver
 * names them on channel fota_push ("ROLLOUT:EPOCH:DEV.NONCE.KEYGEN,..."),
 * every instance remembers them (device -> rollout, nonce: the remote
 * members table) and pushes those whose device it holds with the engine's
 * template-and-patch code (the rollout's row read once, by a store job);
 * what their devices do then (the push made, the D4 reply, the D7 report,
 * an identify) goes to rollout_events in batches, in order, each batch
 * notifying fota_rollout_ev. The driver deletes the events in id order and
 * applies them as the hub's subscribers apply its own devices' (rollout.c),
 * and once a second looks for queued members whose device a live instance
 * holds. Main loop only. */
#include "rollout_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "clock.h"
#include "cluster.h"
#include "devchan.h"
#include "fota_str.h"
#include "hub.h"
#include "log.h"
#include "xmalloc.h"

#define PUSH_CHANNEL  "fota_push"
#define EV_CHANNEL    "fota_rollout_ev"
#define ITEM_MAX      64                     /* one "DEV.NONCE.KEYGEN," */
#define TABLE_MIN     1024
#define TABLE_MAX     (1u << 19)             /* slots: 393,216 remote members remembered at
                                                most (3/4 of them) */
#define FULL_MS       1000                   /* a full table is swept at most this often */
#define LATE_MAX_S    30                     /* a push untaken after this much more at most */
#define PUSHED_HOLD_MS 200                   /* a push's event waits this long at most for
                                                its reply to take its place (one row, one
                                                state change at the driver, not two) */
#define CACHE_MAX     FOTA_ROLLOUT_RUNNING_MAX
#define EVENTS_MAX    100000                 /* events waiting for the store at most */
#define LOOK_MS       1000                   /* the driver's look for events and queued
                                                members held elsewhere, at least this often */
#define HEALTH_KEEP_S 60                     /* a member is remembered this long past its
                                                health time (its boots go to the driver) */

/* A remote member: named by the driver, this instance pushes it if it holds
 * the device and writes its device's events. */
struct entry {
    int64_t device_id;                       /* 0: a free slot */
    int64_t rollout_id;
    int64_t until_ms;                        /* forgotten then (monotonic) */
    int64_t asked_ms;                        /* the driver: when it asked (wall ms), for the
                                                latency it logs */
    int32_t nonce, keygen;
    uint32_t last_ev;                        /* 1 + the index in the batch being gathered of
                                                its device's last event (0 none): a reply
                                                takes the place of its push's event there */
};

/* A rollout another instance drives, as its pushes need it: its row
 * (version, reboot, timeout, health time) and template, no members. */
struct cached {
    struct fota_rollout *r;
    int state;                               /* 0 its read runs, 1 read, -1 unknown */
    int64_t used_ms;
    struct fota_rollout_member *wait;        /* named while its read ran */
    size_t nwait, capwait;
};

struct fota_rollout_remote {
    struct fota_rollouts *ro;
    struct fota_store_lane *lane;            /* the event batches, in order; the driver's takes */
    struct event *flush, *soon;
    int64_t instance_id;
    int64_t epoch_seen;                      /* the newest driver's epoch heard */
    /* the driver's pushes to send: one rollout's at a time */
    char out[FOTA_CLUSTER_PAYLOAD_MAX];
    size_t outlen, nout;
    int64_t out_rollout;
    /* remote members */
    struct entry *tab;
    size_t cap, used;
    int64_t swept_ms;                        /* the last sweep of a full table */
    struct cached cache[CACHE_MAX];
    /* events to write */
    struct fota_rollout_event *ev;
    size_t nev, capev;
    int writing;
    int64_t flushed_ms;                      /* when the last batch went to the store */
    /* reboots due (their rollout has reboot): device, rollout */
    struct entry *reboots;
    size_t nreboot, capreboot;
    /* the driver */
    int taking, take_again, looking;
    int64_t took_ms, looked_ms;
};

/* ---- remote members table: open addressing, linear probing ------------- */

static size_t slot_of(const struct fota_rollout_remote *x, int64_t device_id)
{
    uint64_t h = (uint64_t)device_id * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 32) & (x->cap - 1);
}

static struct entry *table_find(struct fota_rollout_remote *x, int64_t device_id)
{
    if (!x->cap)
        return NULL;
    for (size_t i = slot_of(x, device_id);; i = (i + 1) & (x->cap - 1)) {
        if (x->tab[i].device_id == device_id)
            return &x->tab[i];
        if (x->tab[i].device_id == 0)
            return NULL;
    }
}

/* Removes e, moving the entries after it back (no tombstones). */
static void table_del(struct fota_rollout_remote *x, struct entry *e)
{
    size_t i = (size_t)(e - x->tab), j = i;
    for (;;) {
        j = (j + 1) & (x->cap - 1);
        if (x->tab[j].device_id == 0)
            break;
        size_t k = slot_of(x, x->tab[j].device_id);
        if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) {
            x->tab[i] = x->tab[j];
            i = j;
        }
    }
    x->tab[i].device_id = 0;
    x->used--;
}

/* The table again with cap slots, without the entries past their time. */
static void table_rehash(struct fota_rollout_remote *x, size_t cap, int64_t now)
{
    struct entry *old = x->tab;
    size_t oldcap = x->cap;
    x->tab = fota_xcalloc(cap, sizeof *x->tab);
    x->cap = cap;
    x->used = 0;
    for (size_t i = 0; i < oldcap; i++) {
        if (old[i].device_id == 0 || old[i].until_ms <= now)
            continue;
        size_t j = slot_of(x, old[i].device_id);
        while (x->tab[j].device_id != 0)
            j = (j + 1) & (x->cap - 1);
        x->tab[j] = old[i];
        x->used++;
    }
    free(old);
}

/* The entry of device_id, made if needed; NULL when the table is full. */
static struct entry *table_put(struct fota_rollout_remote *x, int64_t device_id)
{
    struct entry *e = table_find(x, device_id);
    if (e)
        return e;
    if ((x->used + 1) * 4 > x->cap * 3) {
        int64_t now = fota_clock_mono_ms();
        if (x->cap && now - x->swept_ms >= FULL_MS) {
            /* first the forgotten ones, once a second at most: a sweep per
             * member named to a full table would cost O(TABLE_MAX) each */
            x->swept_ms = now;
            table_rehash(x, x->cap, now);
        }
        if ((x->used + 1) * 4 > x->cap * 3 && x->cap < TABLE_MAX)
            table_rehash(x, x->cap ? x->cap * 2 : TABLE_MIN, now);
        if ((x->used + 1) * 4 > x->cap * 3)
            return NULL;
    }
    size_t i = slot_of(x, device_id);
    while (x->tab[i].device_id != 0)
        i = (i + 1) & (x->cap - 1);
    e = &x->tab[i];
    memset(e, 0, sizeof *e);
    e->device_id = device_id;
    x->used++;
    return e;
}

/* The live entry of device_id, or NULL (one past its time goes). */
static struct entry *member_of(struct fota_rollout_remote *x, int64_t device_id)
{
    struct entry *e = table_find(x, device_id);
    if (e && e->until_ms <= fota_clock_mono_ms()) {
        table_del(x, e);
        e = NULL;
    }
    return e;
}

/* ---- events to the driver ------------------------------------------------ */

struct ev_write {
    struct fota_rollout_remote *x;
    struct fota_rollout_event *ev;
    size_t n;
    int rc;
};

static void ev_write_job(struct fota_store *st, void *arg)
{
    struct ev_write *w = arg;
    w->rc = st->ops->rollout_events_add ? st->ops->rollout_events_add(st, w->ev, w->n)
                                        : FOTA_ENOTSUP;
}

static void ev_write_free(struct ev_write *w)
{
    free(w->ev);
    free(w);
}

/* The last batch, at the module's stop: no continuation. */
static void ev_write_last(struct fota_store *st, void *arg)
{
    ev_write_job(st, arg);
    ev_write_free(arg);
}

/* The next batch goes FOTA_ROLLOUT_EVENTS_MS after the last one began, or
 * at once when that is past: a lone event (a report that frees a window
 * slot) reaches the driver without waiting, a burst's events still go at
 * most one statement (one notifying commit) per period. */
static void flush_soon(struct fota_rollout_remote *x)
{
    int64_t wait = x->flushed_ms + FOTA_ROLLOUT_EVENTS_MS - fota_clock_mono_ms();
    struct timeval tv = { 0, wait > 0 ? (long)wait * 1000 : 0 };
    event_add(x->flush, &tv);
}

static void ev_write_done(void *arg, int cancelled)
{
    struct ev_write *w = arg;
    struct fota_rollout_remote *x = w->x;
    if (cancelled) {
        ev_write_free(w);
        return;
    }
    x->writing = 0;
    if (w->rc < 0) {
        /* kept for the next batch, ahead of the newer ones, while room is left */
        size_t keep = w->n + x->nev <= EVENTS_MAX ? w->n : 0;
        FOTA_WARN("rollout events not written events=%zu kept=%zu error=%s", w->n, keep,
                  fota_errname(w->rc));
        if (keep) {
            if (x->nev + keep > x->capev) {
                x->capev = x->nev + keep;
                x->ev = fota_xreallocarray(x->ev, x->capev, sizeof *x->ev);
            }
            memmove(x->ev + keep, x->ev, x->nev * sizeof *x->ev);
            memcpy(x->ev, w->ev, keep * sizeof *x->ev);
            x->nev += keep;
        }
    }
    ev_write_free(w);
    if (x->nev > 0)
        flush_soon(x);
}

/* Moves into w the events of the batch that go now; a push's event younger
 * than PUSHED_HOLD_MS and still its device's last stays (its reply, on
 * the way, takes its place: ev_add). */
static void batch_split(struct fota_rollout_remote *x, struct ev_write *w)
{
    int64_t now = fota_clock_wall_ms();
    size_t keep = 0;
    w->ev = fota_xreallocarray(NULL, x->nev, sizeof *w->ev);
    w->n = 0;
    for (size_t i = 0; i < x->nev; i++) {
        struct fota_rollout_event *v = &x->ev[i];
        struct entry *e = v->kind == FOTA_REV_PUSHED && now - v->at < PUSHED_HOLD_MS
                              ? table_find(x, v->device_id) : NULL;
        if (e && e->last_ev == i + 1) {
            x->ev[keep] = *v;   /* keep <= i: read already */
            e->last_ev = (uint32_t)++keep;
        } else {
            w->ev[w->n++] = *v;
        }
    }
    x->nev = keep;
}

/* The batch to the store: one job at a time on the lane, so the rows are
 * committed (and numbered) in the order the events happened here. */
static void flush_cb(evutil_socket_t fd, short what, void *ud)
{
    struct fota_rollout_remote *x = ud;
    struct fota_server *srv = x->ro->srv;
    (void)fd;
    (void)what;
    if (x->writing || x->nev == 0)
        return;
    struct ev_write *w = fota_xcalloc(1, sizeof *w);
    w->x = x;
    batch_split(x, w);
    if (w->n == 0) {   /* only pushes waiting for their replies: looked at again soon */
        struct timeval tv = { 0, FOTA_ROLLOUT_EVENTS_MS * 1000 };
        ev_write_free(w);
        event_add(x->flush, &tv);
        return;
    }
    x->writing = 1;
    x->flushed_ms = fota_clock_mono_ms();
    int rc = fota_store_submit(srv->exec, x->lane, srv->loops[0], ev_write_job, ev_write_done, w);
    if (rc < 0) {
        w->rc = rc;
        ev_write_done(w, 0);
    }
}

/* The event of e's push still in the batch being gathered, as its device's
 * last event there, or NULL. */
static struct fota_rollout_event *pushed_pending(struct fota_rollout_remote *x,
                                                 const struct entry *e)
{
    if (e->last_ev == 0 || e->last_ev > x->nev)
        return NULL;
    struct fota_rollout_event *v = &x->ev[e->last_ev - 1];
    if (v->device_id != e->device_id || v->kind != FOTA_REV_PUSHED || v->nonce != e->nonce ||
        v->rollout_id != e->rollout_id)
        return NULL;
    return v;
}

/* Appends an event of e's member to the batch. A reply or report whose
 * push's event is still in the batch (as its device's last) takes that
 * event's place: the driver counts the member as pushed by it, so the
 * usual push-and-ack of a burst is one row, not two. */
static void ev_add(struct fota_rollout_remote *x, struct entry *e, int kind, int status,
                   const char *version)
{
    struct fota_rollout_event *v =
        kind == FOTA_REV_REPLY || kind == FOTA_REV_REPORT ? pushed_pending(x, e) : NULL;
    if (v) {
        v->kind = kind;
        v->status = status;
        fota_str_copy(v->version, sizeof v->version, version ? version : "");
        v->at = fota_clock_wall_ms();
        return;
    }
    if (x->nev >= EVENTS_MAX) {
        FOTA_WARN("rollout event dropped rollout=%lld dev=%lld kind=%d reason=\"%d waiting for "
                  "the store\"", (long long)e->rollout_id, (long long)e->device_id, kind,
                  EVENTS_MAX);
        return;
    }
    if (x->nev == x->capev) {
        x->capev = x->capev ? x->capev * 2 : 64;
        x->ev = fota_xreallocarray(x->ev, x->capev, sizeof *x->ev);
    }
    v = &x->ev[x->nev++];
    e->last_ev = (uint32_t)x->nev;
    memset(v, 0, sizeof *v);
    v->rollout_id = e->rollout_id;
    v->device_id = e->device_id;
    v->nonce = e->nonce;
    v->kind = kind;
    v->status = status;
    fota_str_copy(v->version, sizeof v->version, version ? version : "");
    v->instance_id = x->instance_id;
    v->at = fota_clock_wall_ms();
    if (!x->writing && !event_pending(x->flush, EV_TIMEOUT, NULL))
        flush_soon(x);
}

/* ---- pushes asked by the driver --------------------------------------------- */

static struct cached *cache_find(struct fota_rollout_remote *x, int64_t rollout_id)
{
    for (size_t i = 0; i < CACHE_MAX; i++)
        if (x->cache[i].r && x->cache[i].r->row.id == rollout_id)
            return &x->cache[i];
    return NULL;
}

static void cache_drop(struct cached *c)
{
    fota_rollout_free(c->r);
    free(c->wait);
    memset(c, 0, sizeof *c);
}

/* Pushes m if its device is connected here; the push made is an event. */
static void push_held(struct fota_rollout_remote *x, struct cached *c,
                      const struct fota_rollout_member *m)
{
    if (!fota_devchan_online(x->ro->ch, m->device_id))
        return;
    int rc = fota_rollout_push_one(c->r, m, "sys_upgrade");
    struct entry *e = member_of(x, m->device_id);
    if (rc < 0 || !e) {
        if (rc < 0)
            FOTA_WARN("rollout push failed rollout=%lld dev=%lld error=%s",
                      (long long)c->r->row.id, (long long)m->device_id, fota_errname(rc));
        return;
    }
    FOTA_DEBUG("rollout pushed for the driver rollout=%lld dev=%lld nonce=%d",
               (long long)c->r->row.id, (long long)m->device_id, (int)m->nonce);
    ev_add(x, e, FOTA_REV_PUSHED, 0, NULL);
}

struct load {
    struct fota_rollout_remote *x;
    int64_t id;
    struct fota_rollout_row row;
    int rc;
};

static void load_job(struct fota_store *st, void *arg)
{
    struct load *l = arg;
    l->rc = st->ops->rollout_get(st, l->id, &l->row);
}

static void load_done(void *arg, int cancelled)
{
    struct load *l = arg;
    struct cached *c = cancelled ? NULL : cache_find(l->x, l->id);
    if (c && l->rc == 0) {
        c->r->row = l->row;
        fota_rollout_make_template(c->r);
        c->state = 1;
        for (size_t i = 0; i < c->nwait; i++)
            push_held(l->x, c, &c->wait[i]);
    } else if (c) {
        FOTA_WARN("rollout pushes not made rollout=%lld devices=%zu error=%s",
                  (long long)l->id, c->nwait, fota_errname(l->rc));
        c->state = -1;
    }
    if (c) {
        free(c->wait);
        c->wait = NULL;
        c->nwait = c->capwait = 0;
    }
    free(l);
}

/* rollout_id's cache slot, its read started when new (the least recently
 * used slot not being read makes room). */
static struct cached *cache_get(struct fota_rollout_remote *x, int64_t rollout_id)
{
    int64_t now = fota_clock_mono_ms();
    struct cached *c = cache_find(x, rollout_id), *lru = NULL;
    if (c) {
        c->used_ms = now;
        return c;
    }
    for (size_t i = 0; i < CACHE_MAX && !c; i++) {
        struct cached *k = &x->cache[i];
        if (!k->r)
            c = k;
        else if (k->state != 0 && (!lru || k->used_ms < lru->used_ms))
            lru = k;
    }
    if (!c && !lru)
        return NULL;
    if (!c) {
        cache_drop(lru);
        c = lru;
    }
    c->r = fota_rollout_new(x->ro);
    c->r->row.id = rollout_id;
    c->used_ms = now;
    struct load *l = fota_xcalloc(1, sizeof *l);
    l->x = x;
    l->id = rollout_id;
    struct fota_server *srv = x->ro->srv;
    int rc = fota_store_submit(srv->exec, NULL, srv->loops[0], load_job, load_done, l);
    if (rc < 0) {
        l->rc = rc;
        load_done(l, 0);
    }
    return c;
}

/* The integer at *p followed by sep ('\0': by ',' or the end), into *v,
 * *p moved past the separator. 0, or -1 (nothing, out of range, another
 * byte after it). */
static int take_ll(const char **p, char sep, long long *v)
{
    char *end;
    errno = 0;
    *v = strtoll(*p, &end, 10);
    if (end == *p || errno)
        return -1;
    if (sep ? *end != sep : (*end != ',' && *end != '\0'))
        return -1;
    *p = *end ? end + 1 : end;
    return 0;
}

/* fota_push: "ROLLOUT:EPOCH:DEV.NONCE.KEYGEN,...". NULL (the listener's
 * connection was made again): nothing to rescan, a push asked meanwhile and
 * not made is asked again after FOTA_ROLLOUT_TAKE_S. */
static void on_push(struct fota_server *srv, const char *payload, void *ud)
{
    struct fota_rollout_remote *x = ud;
    long long rid, epoch;
    const char *p = payload;
    (void)srv;
    if (!p || take_ll(&p, ':', &rid) != 0 || take_ll(&p, ':', &epoch) != 0)
        return;
    if (epoch < x->epoch_seen)
        return;   /* a driver that lost the lease since */
    x->epoch_seen = epoch;
    struct cached *c = cache_get(x, rid);
    if (!c) {
        FOTA_WARN("rollout pushes not made rollout=%lld reason=\"%d rollouts read already\"",
                  rid, CACHE_MAX);
        return;
    }
    int64_t keep_s = c->state == 1 ? c->r->row.timeout_s : FOTA_ROLLOUT_TIMEOUT_DEFAULT;
    int64_t until = fota_clock_mono_ms() + (keep_s + HEALTH_KEEP_S) * 1000;
    while (*p) {
        long long dev, nonce, keygen;
        if (take_ll(&p, '.', &dev) != 0 || take_ll(&p, '.', &nonce) != 0 ||
            take_ll(&p, '\0', &keygen) != 0)
            break;
        struct entry *e = table_put(x, dev);
        if (!e) {
            FOTA_WARN("rollout member not remembered rollout=%lld dev=%lld reason=\"%u remote "
                      "members\"", rid, dev, TABLE_MAX / 4 * 3);
            continue;
        }
        if (e->rollout_id != rid || e->nonce != (int32_t)nonce)
            e->asked_ms = 0;
        e->rollout_id = rid;
        e->nonce = (int32_t)nonce;
        e->keygen = (int32_t)keygen;
        e->until_ms = until;
        struct fota_rollout_member m = { .device_id = dev, .nonce = (int32_t)nonce,
                                         .keygen = (int32_t)keygen };
        if (c->state == 1) {
            push_held(x, c, &m);
        } else if (c->state == 0) {
            if (c->nwait == c->capwait) {
                c->capwait = c->capwait ? c->capwait * 2 : 64;
                c->wait = fota_xreallocarray(c->wait, c->capwait, sizeof *c->wait);
            }
            c->wait[c->nwait++] = m;
        }
    }
}

void fota_rollout_remote_send(struct fota_rollouts *ro)
{
    struct fota_rollout_remote *x = ro->remote;
    if (!x || x->nout == 0)
        return;
    int rc = fota_cluster_notify(ro->srv, PUSH_CHANNEL, x->out);
    if (rc < 0)   /* not taken in time: queued again, asked again (rollout_push.c) */
        FOTA_WARN("rollout pushes not asked rollout=%lld devices=%zu error=%s",
                  (long long)x->out_rollout, x->nout, fota_errname(rc));
    else
        FOTA_DEBUG("rollout pushes asked rollout=%lld devices=%zu bytes=%zu",
                   (long long)x->out_rollout, x->nout, x->outlen);
    x->nout = x->outlen = 0;
    x->out_rollout = 0;
}

void fota_rollout_remote_push(struct fota_rollout *r, const struct fota_rollout_member *m)
{
    struct fota_rollout_remote *x = r->ro->remote;
    char item[ITEM_MAX];
    if (!x)
        return;
    int n = snprintf(item, sizeof item, "%" PRId64 ".%d.%d", m->device_id, (int)m->nonce,
                     (int)m->keygen);
    if (x->nout > 0 && (x->out_rollout != r->row.id ||
                        x->outlen + (size_t)n + 2 >= sizeof x->out - 1))
        fota_rollout_remote_send(r->ro);
    if (x->nout == 0) {
        x->outlen = (size_t)snprintf(x->out, sizeof x->out, "%lld:%lld:", (long long)r->row.id,
                                     (long long)r->ro->epoch);
        x->out_rollout = r->row.id;
    }
    x->outlen += (size_t)snprintf(x->out + x->outlen, sizeof x->out - x->outlen, "%s%s",
                                  x->nout ? "," : "", item);
    x->nout++;
    struct entry *e = table_put(x, m->device_id);
    if (e) {   /* the time asked, for the latency of its events */
        e->rollout_id = r->row.id;
        e->nonce = m->nonce;
        e->keygen = m->keygen;
        e->asked_ms = fota_clock_wall_ms();
        e->until_ms = fota_clock_mono_ms() + (r->row.timeout_s + HEALTH_KEEP_S) * 1000;
    }
}

/* ---- the hub's events of this instance's devices ---------------------------- */

int64_t fota_rollout_remote_reply(struct fota_rollouts *ro, const struct fota_hub_reply *ev)
{
    struct fota_rollout_remote *x = ro->remote;
    struct entry *e = ev->nonce ? member_of(x, ev->device_id) : NULL;
    if (!e || e->nonce != (int32_t)ev->nonce)
        return 0;
    ev_add(x, e, FOTA_REV_REPLY, ev->status, NULL);
    return e->rollout_id;
}

static void soon_cb(evutil_socket_t fd, short what, void *ud)
{
    struct fota_rollout_remote *x = ud;
    (void)fd;
    (void)what;
    for (size_t i = 0; i < x->nreboot; i++) {
        struct cached *c = cache_find(x, x->reboots[i].rollout_id);
        struct fota_rollout_member m = { .device_id = x->reboots[i].device_id,
                                         .keygen = x->reboots[i].keygen };
        if (c && c->state == 1)
            fota_rollout_push_one(c->r, &m, "sys_reboot"); /* ENOENT: gone, no reboot */
    }
    x->nreboot = 0;
}

int64_t fota_rollout_remote_report(struct fota_rollouts *ro, const struct fota_hub_report *ev)
{
    struct fota_rollout_remote *x = ro->remote;
    struct entry *e = member_of(x, ev->device_id);
    if (!e)
        return 0;
    struct cached *c = cache_find(x, e->rollout_id);
    const char *v = ev->version ? ev->version : "";
    const struct fota_rollout_row *row = c && c->state == 1 ? &c->r->row : NULL;
    if (row && ev->ok && v[0] && ev->full && strncmp(row->version, v, strlen(v)) == 0)
        fota_str_copy(ev->full, ev->full_cap, row->version);
    ev_add(x, e, FOTA_REV_REPORT, ev->ok, v);
    int64_t id = e->rollout_id;
    if (row && ev->ok && row->reboot) {   /* after the D7 reply: next loop turn */
        if (x->nreboot == x->capreboot) {
            x->capreboot = x->capreboot ? x->capreboot * 2 : 16;
            x->reboots = fota_xreallocarray(x->reboots, x->capreboot, sizeof *x->reboots);
        }
        x->reboots[x->nreboot++] = *e;
        event_active(x->soon, EV_TIMEOUT, 0);
    }
    if (row && ev->ok && row->health_s > 0)   /* its boots still count: kept */
        e->until_ms = fota_clock_mono_ms() + (row->health_s + HEALTH_KEEP_S) * 1000;
    else
        table_del(x, e);
    return id;
}

void fota_rollout_remote_online(struct fota_rollouts *ro, const struct fota_hub_presence *ev)
{
    struct fota_rollout_remote *x = ro->remote;
    if (ro->epoch != 0)
        return;   /* the driver: its engine saw it */
    struct entry *e = member_of(x, ev->device_id);
    if (e)
        ev_add(x, e, FOTA_REV_ONLINE, 0, ev->version);
}

/* ---- the driver: events applied, queued members found ----------------------- */

struct take {
    struct fota_rollouts *ro;
    int64_t epoch;
    struct fota_rollout_event *ev;
    size_t n;
    int rc;
};

static void take_job(struct fota_store *st, void *arg)
{
    struct take *t = arg;
    t->rc = st->ops->rollout_events_take ? st->ops->rollout_events_take(st, &t->ev, &t->n)
                                         : FOTA_ENOTSUP;
}

static void apply(struct fota_rollouts *ro, const struct fota_rollout_event *e, json_t *empty)
{
    struct fota_rollout_remote *x = ro->remote;
    struct fota_rollout *r = fota_rollout_find(ro, e->rollout_id);
    if (!r)
        return;   /* ended and dropped, or not this driver's */
    if (e->kind == FOTA_REV_PUSHED || e->kind == FOTA_REV_REPLY || e->kind == FOTA_REV_REPORT) {
        /* a reply or report stands for its push's event too (ev_add) */
        struct fota_rollout_member *m = fota_rollout_member_at(r, e->device_id);
        if (m && m->nonce == (int32_t)e->nonce)
            fota_rollout_taken(r, m);
    }
    if (e->kind == FOTA_REV_REPLY) {
        struct fota_hub_reply ev = { e->device_id, e->nonce, e->status, empty };
        struct entry *w = table_find(x, e->device_id);
        if (w && w->asked_ms && w->nonce == (int32_t)e->nonce)
            FOTA_INFO("rollout reply from another instance rollout=%lld dev=%lld status=%d "
                      "instance=%lld push_to_reply_ms=%lld push_to_here_ms=%lld",
                      (long long)e->rollout_id, (long long)e->device_id, e->status,
                      (long long)e->instance_id, (long long)(e->at - w->asked_ms),
                      (long long)(fota_clock_wall_ms() - w->asked_ms));
        fota_rollout_feed_reply(ro, &ev);
    } else if (e->kind == FOTA_REV_REPORT) {
        char full[FOTA_VERSION_MAX];
        fota_str_copy(full, sizeof full, e->version);
        struct fota_hub_report ev = { e->device_id, e->status, e->version, "", full,
                                      sizeof full };
        fota_rollout_feed_report(ro, &ev);
    } else if (e->kind == FOTA_REV_ONLINE) {
        struct fota_hub_presence ev = { e->device_id, r->row.product_id, 0,
                                        e->version[0] ? e->version : NULL };
        fota_rollout_feed_online(ro, &ev);
    }
}

static void take(struct fota_rollouts *ro);

/* How late the events just taken came (their instances' wall clock against
 * this one's, at most LATE_MAX_S): while the store is slow a push made
 * elsewhere reaches the driver late, and counting it untaken after
 * FOTA_ROLLOUT_TAKE_S would ask it again and again, each time more work
 * for the store that is slow already. An empty take lets it fall by half. */
static void events_late(struct fota_rollouts *ro, const struct fota_rollout_event *ev, size_t n)
{
    int64_t now = fota_clock_wall_ms(), late = 0;
    for (size_t i = 0; i < n; i++)
        if (now - ev[i].at > late)
            late = now - ev[i].at;
    late = late / 1000 < LATE_MAX_S ? late / 1000 : LATE_MAX_S;
    ro->events_late_s = late > ro->events_late_s ? late : ro->events_late_s / 2;
}

static void take_done(void *arg, int cancelled)
{
    struct take *t = arg;
    struct fota_rollouts *ro = t->ro;
    if (!cancelled) {
        struct fota_rollout_remote *x = ro->remote;
        x->taking = 0;
        if (t->rc < 0 && t->rc != FOTA_EPERM)
            FOTA_WARN("rollout events not read error=%s", fota_errname(t->rc));
        size_t rows = 0;   /* the stored rows consumed: their events share an id */
        for (size_t i = 0; t->rc == 0 && i < t->n; i++)
            rows += i == 0 || t->ev[i].id != t->ev[i - 1].id;
        /* More waiting: the next take reads them while this loop applies
         * these (its answer comes back here after this one, in order). */
        if (x->take_again || rows >= FOTA_ROLLOUT_EVENTS_TAKE)
            take(ro);
        if (t->rc == 0 && t->epoch == ro->epoch) {
            json_t *empty = json_object();
            for (size_t i = 0; i < t->n; i++)
                apply(ro, &t->ev[i], empty);
            events_late(ro, t->ev, t->n);
            json_decref(empty);
            fota_rollout_remote_send(ro);
            fota_rollout_act_soon(ro);
        }
    }
    free(t->ev);
    free(t);
}

/* Deletes and applies the events written (one job at a time; a doorbell
 * meanwhile takes again after it). Not while a takeover's resume runs: the
 * rollouts they name are not installed yet. On the events' lane, not the
 * rollout lane: a push burst's answers are not held up behind the engine's
 * writes of its member and command rows (a second or more for 20,000
 * members on a loaded store); what they change is written by a later
 * flush, as before (a successor finds the member as that flush left it,
 * and pushes it again if it was not done). */
static void take(struct fota_rollouts *ro)
{
    struct fota_rollout_remote *x = ro->remote;
    if (x->taking) {
        x->take_again = 1;
        return;
    }
    if (ro->epoch == 0 || ro->resuming)
        return;
    struct take *t = fota_xcalloc(1, sizeof *t);
    t->ro = ro;
    t->epoch = ro->epoch;
    x->taking = 1;
    x->take_again = 0;
    x->took_ms = fota_clock_mono_ms();
    if (fota_rollout_submit_on(ro, x->lane ? x->lane : ro->lane, "events", take_job, take_done,
                               t) < 0) {
        x->taking = 0;
        free(t);
    }
}

static void on_events(struct fota_server *srv, const char *payload, void *ud)
{
    (void)srv;
    (void)payload;   /* NULL after a reconnect: the rows are there all the same */
    take(ud);
}

struct look {
    struct fota_rollouts *ro;
    int64_t epoch, me;
    int64_t *ids;
    size_t nids;
    struct fota_rollout_member_row *rows;
    size_t n;
    int rc;
};

static void look_job(struct fota_store *st, void *arg)
{
    struct look *l = arg;
    l->rc = st->ops->rollout_queued_held
                ? st->ops->rollout_queued_held(st, l->ids, l->nids, l->me, &l->rows, &l->n)
                : FOTA_ENOTSUP;
}

static void look_done(void *arg, int cancelled)
{
    struct look *l = arg;
    struct fota_rollouts *ro = l->ro;
    if (!cancelled) {
        ro->remote->looking = 0;
        if (l->rc < 0)
            FOTA_WARN("rollout queued members not looked up error=%s", fota_errname(l->rc));
        int64_t now = fota_clock_mono_ms();
        size_t woke = 0;
        for (size_t i = 0; l->rc == 0 && l->epoch == ro->epoch && i < l->n; i++) {
            struct fota_rollout *r = fota_rollout_find(ro, l->rows[i].rollout_id);
            struct fota_rollout_member *m =
                r ? fota_rollout_member_at(r, l->rows[i].device_id) : NULL;
            if (!m || m->state != FOTA_RM_QUEUED || !fota_rollout_live(r->row.state))
                continue;
            r->row.n.queued--;
            r->row.n.waiting++;
            fota_rollout_set_state(r, m, FOTA_RM_WAITING);
            fota_rollout_ready_add(r, m, now);
            woke++;
        }
        if (woke) {
            FOTA_DEBUG("rollout queued members held elsewhere members=%zu", woke);
            fota_rollout_act_soon(ro);
        }
    }
    free(l->ids);
    free(l->rows);
    free(l);
}

/* Queued members whose device another instance holds wait for the window
 * (their device identified there before the rollout or its takeover, or
 * after their push was not taken). */
static void look(struct fota_rollouts *ro)
{
    struct fota_rollout_remote *x = ro->remote;
    size_t n = 0;
    for (struct fota_rollout *r = ro->list; r; r = r->next)
        n += !r->pull && r->row.n.queued > 0 && fota_rollout_live(r->row.state);
    x->looked_ms = fota_clock_mono_ms();
    if (n == 0 || x->looking || ro->resuming)
        return;
    struct look *l = fota_xcalloc(1, sizeof *l);
    l->ro = ro;
    l->epoch = ro->epoch;
    l->me = x->instance_id;
    l->ids = fota_xreallocarray(NULL, n, sizeof *l->ids);
    for (struct fota_rollout *r = ro->list; r; r = r->next)
        if (!r->pull && r->row.n.queued > 0 && fota_rollout_live(r->row.state))
            l->ids[l->nids++] = r->row.id;
    x->looking = 1;
    if (fota_rollout_submit(ro, "queued", look_job, look_done, l) < 0) {
        x->looking = 0;
        free(l->ids);
        free(l);
    }
}

void fota_rollout_remote_tick(struct fota_rollouts *ro)
{
    struct fota_rollout_remote *x = ro->remote;
    if (!x)
        return;
    fota_rollout_remote_send(ro);
    if (ro->epoch == 0)
        return;
    int64_t now = fota_clock_mono_ms();
    if (now - x->took_ms >= LOOK_MS)
        take(ro);   /* a doorbell may have been lost */
    if (now - x->looked_ms >= LOOK_MS)
        look(ro);
}

/* ---- module ------------------------------------------------------------------ */

int fota_rollout_remote_start(struct fota_rollouts *ro)
{
    struct fota_server *srv = ro->srv;
    if (!ro->clustered || !srv->exec)
        return 0;
    struct fota_rollout_remote *x = fota_xcalloc(1, sizeof *x);
    x->ro = ro;
    x->instance_id = fota_cluster_instance_id(srv);
    x->lane = fota_store_lane_new(srv->exec, "rollout_events");
    x->flush = event_new(srv->base, -1, 0, flush_cb, x);
    x->soon = event_new(srv->base, -1, 0, soon_cb, x);
    ro->remote = x;
    if (!x->flush || !x->soon || fota_cluster_listen(srv, PUSH_CHANNEL, on_push, x) < 0 ||
        fota_cluster_listen(srv, EV_CHANNEL, on_events, ro) < 0) {
        FOTA_ERROR("cannot listen for the rollouts of other instances");
        fota_rollout_remote_stop(ro);
        return -1;
    }
    return 0;
}

/* The events not written yet are written by a last job (the executor's
 * drain waits for it); the members remembered are forgotten. */
void fota_rollout_remote_stop(struct fota_rollouts *ro)
{
    struct fota_rollout_remote *x = ro->remote;
    if (!x)
        return;
    if (x->nev > 0) {
        struct ev_write *w = fota_xcalloc(1, sizeof *w);
        w->ev = x->ev;
        w->n = x->nev;
        x->ev = NULL;
        if (fota_store_submit(ro->srv->exec, x->lane, NULL, ev_write_last, NULL, w) < 0)
            ev_write_free(w);
    }
    if (x->flush)
        event_free(x->flush);
    if (x->soon)
        event_free(x->soon);
    for (size_t i = 0; i < CACHE_MAX; i++)
        cache_drop(&x->cache[i]);
    free(x->tab);
    free(x->ev);
    free(x->reboots);
    free(x);
    ro->remote = NULL;
}
