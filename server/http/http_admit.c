/* http_admit.c - HTTP connections when descriptors or one address's share
 * run short: each loop's listeners are under an accept guard (accept_guard.h:
 * a failed accept pauses them with a back-off and sheds this loop's newest
 * anonymous connections, those read without a valid key that have not
 * completed a request yet);
 * each new connection is admitted at its first read (or, silent, by the
 * 100 ms sweep of fresh connections):
 * one over http_max_per_addr from its address is refused, and one whose
 * descriptor lies in the reserve, or that arrives while anonymous
 * connections hold half the descriptors left after it, is on probation: its
 * head must come within a second and carry a valid key (the REST API, a
 * device's download), else it is answered 503 and closed. Refusals are
 * logged at most once a second per reason, with a count. */
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "accept_guard.h"
#include "clock.h"
#include "http_int.h"
#include "log.h"
#include "xmalloc.h"

#define SHED_PER_SHORTAGE 16       /* anonymous connections closed per failed accept */
#define SHED_MIN_AGE_MS 100        /* a connection that sent nothing: spared this long */

/* ------------------------------------------------------ per-address counts */

/* Counts of open connections by address, kept while the loop holds more
 * connections than its share of http_max_per_addr (below that no address
 * can pass it). Open addressing, linear probing, backward-shift deletion. */
struct addr_slot {
    uint64_t key;                  /* 0: empty */
    uint32_t count;
};

static uint64_t addr_key(const char *addr)
{
    uint64_t h = 1469598103934665603ull;   /* FNV-1a */
    for (const char *p = addr; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h | 1;
}

static size_t slot_of(const struct http_admit *a, uint64_t key)
{
    size_t i = (size_t)(key * 0x9E3779B97F4A7C15ull) & (a->cap - 1);   /* home_of */
    while (a->slot[i].key && a->slot[i].key != key)
        i = (i + 1) & (a->cap - 1);
    return i;
}

static void table_grow(struct http_admit *a)
{
    struct addr_slot *old = a->slot;
    size_t ocap = a->cap;
    a->cap = ocap ? ocap * 2 : 256;
    a->slot = fota_xcalloc(a->cap, sizeof(*a->slot));
    for (size_t i = 0; i < ocap; i++)
        if (old[i].key)
            a->slot[slot_of(a, old[i].key)] = old[i];
    free(old);
}

static uint32_t table_inc(struct http_admit *a, uint64_t key)
{
    if (2 * (a->used + 1) > a->cap)
        table_grow(a);
    size_t i = slot_of(a, key);
    if (!a->slot[i].key) {
        a->slot[i].key = key;
        a->used++;
    }
    return ++a->slot[i].count;
}

static size_t home_of(const struct http_admit *a, uint64_t key)
{
    return (size_t)(key * 0x9E3779B97F4A7C15ull) & (a->cap - 1);
}

static void table_dec(struct http_admit *a, uint64_t key)
{
    if (!a->cap)
        return;
    size_t i = slot_of(a, key);
    if (!a->slot[i].key || --a->slot[i].count > 0)
        return;
    /* Backward shift: an entry after the hole whose home does not lie
     * cyclically in (hole, its slot] moves into the hole. */
    size_t j = i;
    for (;;) {
        j = (j + 1) & (a->cap - 1);
        if (!a->slot[j].key)
            break;
        size_t k = home_of(a, a->slot[j].key);
        int stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (stays)
            continue;
        a->slot[i] = a->slot[j];
        i = j;
    }
    a->slot[i].key = 0;
    a->slot[i].count = 0;
    a->used--;
}

/* The share of one loop: connections of one address spread over the loops
 * (SO_REUSEPORT hashes each connection to one). */
static unsigned share_of(const struct http_loop *h)
{
    unsigned max = __atomic_load_n(&h->hh->max_per_addr, __ATOMIC_RELAXED);
    unsigned n = (unsigned)(h->hh->nloops > 0 ? h->hh->nloops : 1);
    return (max + n - 1) / n;
}

static const char *conn_peer(struct conn *c, uint16_t *port)
{
    struct evhttp_connection *evcon = c->tracked ? c->evcon : fota_http__conn_evcon(c);
    char *addr = NULL;
    *port = 0;
    if (!evcon)
        return NULL;
    evhttp_connection_get_peer(evcon, &addr, port);
    return addr;
}

/* Counts c's address; its count after. 0 when c has none. */
static uint32_t count_addr(struct http_loop *h, struct conn *c)
{
    uint16_t port;
    const char *addr = conn_peer(c, &port);
    if (!addr)
        return 0;
    c->addr_key = addr_key(addr);
    c->addr_epoch = h->admit.epoch;
    return table_inc(&h->admit, c->addr_key);
}

/* Tracking starts once the loop holds more than its share (the connections
 * already open are counted then) and stops below half of it. */
static int tracking(struct http_loop *h)
{
    struct http_admit *a = &h->admit;
    uint64_t open = a->nfresh + h->conns_open;
    unsigned share = share_of(h);
    if (a->tracking && open < share / 2) {
        free(a->slot);
        a->slot = NULL;
        a->cap = a->used = 0;
        a->tracking = 0;
        a->epoch++;
    } else if (!a->tracking && open > share) {
        a->tracking = 1;
        a->epoch++;
        for (struct conn *c = h->fresh; c; c = c->fnext)
            if (c->admitted)
                count_addr(h, c);
        for (unsigned b = 0; b < CONN_BUCKETS; b++)
            for (struct conn *c = h->buckets[b]; c; c = c->next)
                count_addr(h, c);
    }
    return a->tracking;
}

/* ----------------------------------------------------------- refusal logs */

/* Counts a refusal; 1 when its line is due (at most one a second per
 * reason), with *count the refusals it stands for. */
static int note(struct http_loop *h, int reason, unsigned long long *count)
{
    struct http_admit_log *l = &h->admit.log[reason];
    int64_t now = fota_clock_mono_ms();
    l->held++;
    fota_http__refused_as(h->hh, reason);
    if (l->last_ms && now - l->last_ms < 1000)
        return 0;
    *count = (unsigned long long)l->held;
    l->last_ms = now;
    l->held = 0;
    return 1;
}

/* --------------------------------------------------------------- admission */

/* Closes a fresh connection now (evhttp lets go of it, we drop ours). */
static void shed(struct http_loop *h, struct conn *c)
{
    struct evhttp_connection *evcon = fota_http__conn_evcon(c);
    if (evcon)
        evhttp_connection_free(evcon);
    fota_http__fresh_unlink(h, c);
}

/* Admits c. 1 when it is over its address's share: the caller closes it
 * (or, from its own read callback, refuses its request). */
static int admit_one(struct http_loop *h, struct conn *c)
{
    struct fota_http *hh = h->hh;
    int track = tracking(h);   /* counts the connections admitted before c */
    c->admitted = 1;
    if (track) {
        uint32_t n = count_addr(h, c);
        unsigned share = share_of(h);
        if (n > share) {
            uint16_t port;
            const char *peer = conn_peer(c, &port);
            unsigned long long count;
            if (note(h, HTTP_REFUSED_PER_ADDR, &count))
                FOTA_WARN("http connection refused peer=%s:%u reason=\"too many connections "
                          "from this address\" http_max_per_addr=%u loop_share=%u refused=%llu",
                          peer ? peer : "-", port,
                          __atomic_load_n(&hh->max_per_addr, __ATOMIC_RELAXED), share, count);
            return 1;
        }
    }
    int64_t anon = __atomic_add_fetch(&hh->anonymous, 1, __ATOMIC_RELAXED);
    c->anonymous = 1;
    if (anon > h->admit.anon_bound ||
        fota_accept_guard_short(h->guard, bufferevent_getfd(c->bev)))
        fota_http__gate_probation(c);
    return 0;
}

int fota_http__admit_first_read(struct conn *c)
{
    return admit_one(c->h, c);
}

void fota_http__admit_silent(struct http_loop *h)
{
    struct conn *c = h->fresh;
    while (c) {
        struct conn *next = c->fnext;
        if (!c->admitted && fota_http__conn_evcon(c) && admit_one(h, c))
            shed(h, c);   /* silent: closed at once */
        c = next;
    }
}

/* 1 when c, a fresh connection, may be shed: no key of its head was found
 * valid, and it has been read (its head has not ended, or its body comes
 * without a checked key) or has sent nothing for SHED_MIN_AGE_MS (a TLS
 * handshake, a silent connection). One not read yet is spared: accepted in
 * the same pass as the accept that failed (when the last descriptor goes, the
 * next accept() fails at once, whether a connection waits or not), it may
 * carry the REST API's request or a device's, which its head will show. */
static int sheddable(struct conn *c, int64_t young)
{
    return !c->g.key_ok && (c->heard || c->g.t0_ms <= young) && fota_http__conn_evcon(c);
}

/* accept() ran out of descriptors: up to SHED_PER_SHORTAGE anonymous
 * connections go, the newest first (the fresh list is newest first). */
static void on_short(void *ud)
{
    struct http_loop *h = ud;
    unsigned n = 0;
    int64_t young = fota_clock_mono_ms() - SHED_MIN_AGE_MS;
    struct conn *c = h->fresh;
    while (c && n < SHED_PER_SHORTAGE) {
        struct conn *next = c->fnext;
        if (sheddable(c, young)) {
            uint16_t port;
            const char *peer = conn_peer(c, &port);
            unsigned long long count;
            if (note(h, HTTP_REFUSED_DESCRIPTORS, &count))
                FOTA_WARN("http connection shed peer=%s:%u reason=\"out of descriptors, "
                          "newest anonymous first\" nofile=%llu shed=%llu loop=%d",
                          peer ? peer : "-", port, (unsigned long long)h->admit.limit, count,
                          fota_loop_index(h->loop));
            shed(h, c);
            n++;
        }
        c = next;
    }
}

void fota_http__admit_new(struct conn *c)
{
    struct http_loop *h = c->h;
    h->admit.nfresh++;
    if (h->guard)
        fota_accept_guard_accepted(h->guard);
}

void fota_http__admit_fresh_gone(struct conn *c)
{
    struct http_loop *h = c->h;
    h->admit.nfresh--;
    if (c->anonymous) {
        c->anonymous = 0;
        __atomic_sub_fetch(&h->hh->anonymous, 1, __ATOMIC_RELAXED);
    }
}

void fota_http__admit_closed(struct conn *c)
{
    struct http_loop *h = c->h;
    if (h->admit.tracking && c->addr_key && c->addr_epoch == h->admit.epoch)
        table_dec(&h->admit, c->addr_key);
    c->addr_key = 0;
}

void fota_http__admit_refused_key(struct conn *c)
{
    struct http_loop *h = c->h;
    uint16_t port;
    const char *peer = conn_peer(c, &port);
    unsigned long long count;
    if (note(h, HTTP_REFUSED_DESCRIPTORS, &count))
        FOTA_WARN("http request refused peer=%s:%u reason=\"short of descriptors: only "
                  "requests with a key\" nofile=%llu refused=%llu loop=%d", peer ? peer : "-",
                  port, (unsigned long long)h->admit.limit, count, fota_loop_index(h->loop));
}

int fota_http__admit_init(struct http_loop *h)
{
    const char *proto = fota_loop_index(h->loop) ? "http-worker" : "http";
    h->guard = fota_accept_guard_new(fota_loop_base(h->loop), proto, on_short, h);
    struct fota_accept_guard_stats gs;
    fota_accept_guard_stats(h->guard, &gs);
    h->admit.limit = gs.limit;
    h->admit.anon_bound = (int64_t)(gs.limit - gs.reserve) / 2;
    for (int i = 0; i < h->nbound; i++) {
        struct evconnlistener *l = evhttp_bound_socket_get_listener(h->bound[i]);
        if (l && fota_accept_guard_adopt(h->guard, l) != 0)
            return FOTA_ETOOBIG;
    }
    return 0;
}

void fota_http__admit_close(struct http_loop *h)
{
    fota_accept_guard_close(h->guard);
}

void fota_http__admit_free(struct http_loop *h)
{
    fota_accept_guard_free(h->guard);
    h->guard = NULL;
    free(h->admit.slot);
    h->admit.slot = NULL;
}
