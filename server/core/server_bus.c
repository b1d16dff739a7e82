/* server_bus.c - the live message bus (server.h): one queue and subscriber
 * list per loop. A publish stores the message, copies it to every loop that
 * has subscribers and wakes it; each loop fans out to its own subscribers,
 * so a live feed is only touched on its loop. On a loop the store insert
 * and the fan-out are a store job on the lane `messages` (store_exec.h), in
 * publish order; elsewhere (a store thread, start-up, tests) they run in
 * the caller. Shared (several fotad on one PostgreSQL), every message, ours
 * and the other instances', is fanned out in id order from a cursor: the
 * last id fanned out, moved on by reading the store after it. */
#include <event2/event.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fota_str.h"
#include "log.h"
#include "loop.h"
#include "server.h"
#include "store_exec.h"
#include "xmalloc.h"

struct fota_server_sub {
    int64_t product_id, device_id;
    fota_message_cb cb;
    void *ud;
    int dead;
    int loop;                        /* index of the loop it belongs to */
    struct fota_server_sub *next;
};

struct pending {
    struct fota_message m;
    struct pending *next;
};

struct bus_loop {
    struct fota_server *srv;
    pthread_mutex_t lock;
    struct pending *head, *tail;     /* published, not yet fanned out */
    struct event *notify;
    struct fota_server_sub *subs;    /* loop thread only */
    int nsubs;                       /* atomic: publishers skip loops without subscribers */
    int dispatching;
};

/* Messages read from the store per query of a catch-up. */
#define CATCH_UP_BATCH 200

struct fota_server_bus {
    int n;
    struct fota_store_lane *lane;    /* `messages`: inserts in publish order */
    int shared;                      /* atomic: fan out from the cursor (fota_server_bus_share) */
    int ringing;                     /* atomic: a catch-up job is queued */
    pthread_mutex_t cursor_lock;     /* the cursor, and the fan-out in its order */
    int64_t fanned;                  /* the last id fanned out (atomic reads without the lock) */
    struct bus_loop loop[FOTA_LOOPS_MAX];
};

static void bus_sweep(struct bus_loop *b)
{
    for (struct fota_server_sub **pp = &b->subs; *pp;) {
        if ((*pp)->dead) {
            struct fota_server_sub *d = *pp;
            *pp = d->next;
            free(d);
        } else {
            pp = &(*pp)->next;
        }
    }
}

static void bus_notify(evutil_socket_t fd, short what, void *arg)
{
    struct bus_loop *b = arg;
    struct pending *list;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&b->lock);
    list = b->head;
    b->head = b->tail = NULL;
    pthread_mutex_unlock(&b->lock);
    b->dispatching = 1;
    while (list) {
        struct pending *p = list;
        list = p->next;
        for (struct fota_server_sub *s = b->subs; s; s = s->next) {
            if (s->dead)
                continue;
            if (s->product_id && s->product_id != p->m.product_id)
                continue;
            if (s->device_id && s->device_id != p->m.device_id)
                continue;
            s->cb(s->ud, &p->m);
        }
        free(p);
    }
    b->dispatching = 0;
    bus_sweep(b);
}

int fota_server_bus_init(struct fota_server *srv)
{
    if (!srv->bus)
        srv->bus = fota_xcalloc(1, sizeof(*srv->bus));
    struct fota_server_bus *b = srv->bus;
    int n = srv->nloops > 0 ? srv->nloops : 1;
    if (b->n == 0)
        pthread_mutex_init(&b->cursor_lock, NULL);
    if (!b->lane && srv->exec)
        b->lane = fota_store_lane_new(srv->exec, "messages");
    for (int i = b->n; i < n; i++) {
        struct bus_loop *bl = &b->loop[i];
        struct event_base *base = srv->loops[i] ? fota_loop_base(srv->loops[i]) : srv->base;
        bl->srv = srv;
        pthread_mutex_init(&bl->lock, NULL);
        bl->notify = event_new(base, -1, 0, bus_notify, bl);
        if (!bl->notify) {
            pthread_mutex_destroy(&bl->lock);
            return FOTA_ENOMEM;
        }
        b->n = i + 1;
    }
    return 0;
}

void fota_server_bus_cleanup(struct fota_server *srv)
{
    struct fota_server_bus *b = srv->bus;
    if (!b)
        return;
    for (int i = 0; i < b->n; i++) {
        struct bus_loop *bl = &b->loop[i];
        if (bl->notify)
            event_free(bl->notify);
        while (bl->head) {
            struct pending *n = bl->head->next;
            free(bl->head);
            bl->head = n;
        }
        while (bl->subs) {
            struct fota_server_sub *n = bl->subs->next;
            free(bl->subs);
            bl->subs = n;
        }
        pthread_mutex_destroy(&bl->lock);
    }
    if (b->n > 0)
        pthread_mutex_destroy(&b->cursor_lock);
    free(b);
    srv->bus = NULL;
}

/* Queues m on every loop with subscribers. Any thread. */
static void fan_out(struct fota_server_bus *bus, const struct fota_message *m)
{
    for (int i = 0; i < bus->n; i++) {
        struct bus_loop *bl = &bus->loop[i];
        if (__atomic_load_n(&bl->nsubs, __ATOMIC_ACQUIRE) == 0)
            continue;
        struct pending *p = fota_xmalloc(sizeof(*p));
        p->m = *m;
        p->next = NULL;
        pthread_mutex_lock(&bl->lock);
        if (bl->tail)
            bl->tail->next = p;
        else
            bl->head = p;
        bl->tail = p;
        pthread_mutex_unlock(&bl->lock);
        event_active(bl->notify, EV_READ, 0);
    }
}

/* Fans out what the store holds after the cursor, in id order, in bounded
 * batches. A message id is drawn under a lock held to its commit
 * (store_pg_fleet.c), so a row read here has no lower id still to commit:
 * the cursor passes no message it has not seen. cursor_lock held. 0 or the
 * store's error (the next doorbell or publish reads on from the cursor). */
static int catch_up(struct fota_server_bus *bus, struct fota_store *st)
{
    for (;;) {
        /* after_id -1: every id, oldest first (0 would list the newest). */
        struct fota_message_filter f = { .after_id = bus->fanned > 0 ? bus->fanned : -1,
                                         .limit = CATCH_UP_BATCH };
        struct fota_message *list = NULL;
        size_t n = 0;
        int rc = st->ops->message_list(st, &f, &list, &n);

        if (rc)
            return rc;
        for (size_t i = 0; i < n; i++) {
            fan_out(bus, &list[i]);
            __atomic_store_n(&bus->fanned, list[i].id, __ATOMIC_RELEASE);
        }
        free(list);
        if (n < CATCH_UP_BATCH)
            return 0;
    }
}

/* Shared: m, just stored, goes out after every lower id; the next id is
 * fanned out at once, anything else reads the store from the cursor (the
 * other instances' messages and ids that were drawn and rolled back). */
static void fan_out_shared(struct fota_server_bus *bus, struct fota_store *st,
                           const struct fota_message *m)
{
    pthread_mutex_lock(&bus->cursor_lock);
    int rc = 0;
    if (m->id == bus->fanned + 1) {
        fan_out(bus, m);
        __atomic_store_n(&bus->fanned, m->id, __ATOMIC_RELEASE);
    } else if (m->id > bus->fanned) {
        rc = catch_up(bus, st);
    }
    pthread_mutex_unlock(&bus->cursor_lock);
    if (rc)
        FOTA_WARN("messages not fanned out after=%lld error=%s", (long long)m->id,
                  fota_errname(rc));
}

/* Stores m and queues it on every loop with subscribers. Any thread. */
static int publish_now(struct fota_server *srv, struct fota_store *st, struct fota_message *m)
{
    int r = st->ops->message_add(st, m);
    if (r)
        return r;
    fota_server_bus_stored(srv, st, m);
    return 0;
}

struct fota_store_lane *fota_server_bus_lane(struct fota_server *srv)
{
    return srv->bus ? srv->bus->lane : NULL;
}

void fota_server_bus_stored(struct fota_server *srv, struct fota_store *st,
                            const struct fota_message *m)
{
    if (!srv->bus)
        return;
    if (__atomic_load_n(&srv->bus->shared, __ATOMIC_ACQUIRE))
        fan_out_shared(srv->bus, st, m);
    else
        fan_out(srv->bus, m);
}

struct publish_job {
    struct fota_server *srv;
    struct fota_message m;
};

static void publish_job(struct fota_store *st, void *arg)
{
    struct publish_job *j = arg;
    int rc = publish_now(j->srv, st, &j->m);
    if (rc < 0 && rc != FOTA_ENOSPC)   /* a full disk: the store says so once a second */
        FOTA_WARN("message not stored product=%lld dev=%lld action=%s error=%s",
                  (long long)j->m.product_id, (long long)j->m.device_id, j->m.action,
                  fota_errname(rc));
    free(j);
}

int fota_server_publish_message(struct fota_server *srv, struct fota_message *m)
{
    if (!fota_loop_current() || !srv->exec || !srv->bus || !srv->bus->lane)
        return publish_now(srv, srv->store, m);
    struct publish_job *j = fota_xmalloc(sizeof(*j));
    j->srv = srv;
    j->m = *m;
    int rc = fota_store_submit(srv->exec, srv->bus->lane, NULL, publish_job, NULL, j);
    if (rc)
        free(j);
    return rc;
}

int fota_server_publish_json(struct fota_server *srv, int64_t product_id, int64_t device_id,
                             const char *action, json_t *body)
{
    struct fota_message m = { 0 };
    char *t = body ? json_dumps(body, JSON_SORT_KEYS) : NULL;
    int rc;

    m.product_id = product_id;
    m.device_id = device_id;
    fota_str_copy(m.action, sizeof m.action, action);
    fota_str_copy(m.body, sizeof m.body, t ? t : "{}");
    free(t);
    json_decref(body);
    rc = fota_server_publish_message(srv, &m);
    if (rc)
        FOTA_WARN("message not stored product=%lld dev=%lld action=%s error=%s",
                  (long long)product_id, (long long)device_id, action, fota_errname(rc));
    return rc;
}

void fota_server_bus_share(struct fota_server *srv, int64_t last_id)
{
    struct fota_server_bus *b = srv->bus;

    if (!b)
        return;
    pthread_mutex_lock(&b->cursor_lock);
    if (last_id > b->fanned)
        __atomic_store_n(&b->fanned, last_id, __ATOMIC_RELEASE);
    __atomic_store_n(&b->shared, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&b->cursor_lock);
}

static void ring_job(struct fota_store *st, void *arg)
{
    struct fota_server_bus *b = arg;

    /* Cleared first: a doorbell from now on queues another job. */
    __atomic_store_n(&b->ringing, 0, __ATOMIC_RELEASE);
    pthread_mutex_lock(&b->cursor_lock);
    int64_t from = b->fanned;
    int rc = catch_up(b, st);
    pthread_mutex_unlock(&b->cursor_lock);
    if (rc)
        FOTA_WARN("messages of other instances not fanned out after=%lld error=%s",
                  (long long)from, fota_errname(rc));
}

void fota_server_bus_ring(struct fota_server *srv, const char *payload, void *ud)
{
    struct fota_server_bus *b = srv->bus;

    (void)ud;
    if (!b || !srv->exec || !__atomic_load_n(&b->shared, __ATOMIC_ACQUIRE))
        return;
    /* Our own inserts ring too: an id fanned out already needs no read. */
    if (payload && strtoll(payload, NULL, 10) > 0 &&
        strtoll(payload, NULL, 10) <= __atomic_load_n(&b->fanned, __ATOMIC_ACQUIRE))
        return;
    if (__atomic_exchange_n(&b->ringing, 1, __ATOMIC_ACQ_REL))
        return;   /* the job queued reads this one too */
    int rc = fota_store_submit(srv->exec, b->lane, NULL, ring_job, NULL, b);
    if (rc != 0) {
        __atomic_store_n(&b->ringing, 0, __ATOMIC_RELEASE);
        FOTA_WARN("messages of other instances wait for the next doorbell error=%s",
                  fota_errname(rc));
    }
}

struct fota_server_sub *fota_server_subscribe(struct fota_server *srv, int64_t product_id,
                                              int64_t device_id, fota_message_cb cb, void *ud)
{
    struct fota_loop *l = fota_loop_current();
    int i = l ? fota_loop_index(l) : 0;
    if (!srv->bus || i >= srv->bus->n)
        return NULL;
    struct bus_loop *bl = &srv->bus->loop[i];
    struct fota_server_sub *s = fota_xcalloc(1, sizeof(*s));
    s->product_id = product_id;
    s->device_id = device_id;
    s->cb = cb;
    s->ud = ud;
    s->loop = i;
    s->next = bl->subs;
    bl->subs = s;
    __atomic_add_fetch(&bl->nsubs, 1, __ATOMIC_RELEASE);
    return s;
}

void fota_server_unsubscribe(struct fota_server *srv, struct fota_server_sub *sub)
{
    if (!sub || !srv->bus)
        return;
    struct bus_loop *bl = &srv->bus->loop[sub->loop];
    if (!sub->dead)
        __atomic_sub_fetch(&bl->nsubs, 1, __ATOMIC_RELEASE);
    sub->dead = 1;
    if (bl->dispatching)
        return;
    bus_sweep(bl);
}

