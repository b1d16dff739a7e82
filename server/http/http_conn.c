/* http_conn.c - connection accounting for fotad's HTTP loops (struct conn,
 * http_int.h): bufferevents handed to evhttp are "fresh" until they carry a
 * request, then tracked until closed (hash tables by pointer), so draining
 * on SIGTERM knows what is open and an event stream learns that its
 * connection went away. Each carries its gate (http_gate.c) from creation
 * to close. */
#include "http_int.h"

#include <stdlib.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>

#include "clock.h"
#include "log.h"
#include "xmalloc.h"

static void conn_free(struct conn *c)
{
    fota_http__gate_cleanup(c);
    fota_http__admit_closed(c);
    free(c);
}

/* Fibonacci hashing of the pointer: malloc's fixed strides spread evenly. */
static unsigned bucket_of(const void *p)
{
    uint64_t v = (uint64_t)(uintptr_t)p >> 4;
    return (unsigned)((v * 0x9E3779B97F4A7C15ull) >> (64 - CONN_BITS));
}

static void conn_closed(struct evhttp_connection *evcon, void *arg)
{
    struct conn *c = arg, **pp;
    struct http_loop *h = c->h;

    for (pp = &h->buckets[bucket_of(evcon)]; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    h->conns_open--;
    loop_busy_update(h);
    if (c->stream) {
        struct fota_req *r = c->stream;
        fota_stream_closed_cb cb = c->closed;
        void *ud = c->closed_ud;
        fota_http__stream_forget(c);
        c->stream = NULL;
        /* A failed connection detaches an unfinished request and leaves it
         * to us (libevent frees it in send_reply_end when it has no
         * connection); one still attached is freed with the connection. */
        if (evhttp_request_get_connection(r->ev) == NULL)
            evhttp_send_reply_end(r->ev);
        fota_req_release(r);
        if (cb)
            cb(ud);
    }
    conn_free(c);   /* the bufferevent still exists: evhttp frees it after this */
}

/* Out of the fresh list and hash; drops our bufferevent reference. */
static void fresh_remove(struct http_loop *h, struct conn *c)
{
    for (struct conn **pp = &h->fresh_hash[bucket_of(c->bev)]; *pp; pp = &(*pp)->fhnext)
        if (*pp == c) {
            *pp = c->fhnext;
            break;
        }
    if (c->fprev)
        c->fprev->fnext = c->fnext;
    else
        h->fresh = c->fnext;
    if (c->fnext)
        c->fnext->fprev = c->fprev;
    c->fprev = c->fnext = c->fhnext = NULL;
    fota_http__admit_fresh_gone(c);
    bufferevent_decref(c->bev);
    loop_busy_update(h);
}

/* The fresh connection of bev, NULL if none. */
static struct conn *fresh_find(struct http_loop *h, struct bufferevent *bev)
{
    for (struct conn *c = h->fresh_hash[bucket_of(bev)]; c; c = c->fhnext)
        if (c->bev == bev)
            return c;
    return NULL;
}

struct conn *fota_http__conn_track(struct http_loop *h, struct evhttp_connection *evcon)
{
    unsigned b = bucket_of(evcon);
    for (struct conn *c = h->buckets[b]; c; c = c->next)
        if (c->evcon == evcon)
            return c;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    struct conn *c = fresh_find(h, bev);
    if (c) {
        fresh_remove(h, c);   /* evhttp holds the bufferevent; closecb from now on */
    } else {                  /* not made by our bufferevent factory: no gate */
        c = fota_xcalloc(1, sizeof(*c));
        c->bev = bev;
        c->h = h;
        h->conns_created++;
    }
    c->tracked = 1;
    c->evcon = evcon;
    c->id = __atomic_add_fetch(&h->hh->next_conn, 1, __ATOMIC_RELAXED);
    c->next = h->buckets[b];
    h->buckets[b] = c;
    h->conns_tracked++;
    h->conns_open++;
    loop_busy_update(h);
    evhttp_connection_set_closecb(evcon, conn_closed, c);
    if (h->draining)
        evhttp_connection_set_timeout(evcon, 1);
    return c;
}

void fota_http__fresh_unlink(struct http_loop *h, struct conn *c)
{
    struct bufferevent *bev = c->bev;
    bufferevent_incref(bev);   /* the gate lets go of it first */
    fresh_remove(h, c);
    conn_free(c);
    bufferevent_decref(bev);
}

/* Closes a TLS connection whose handshake outlived its deadline: one line a
 * second at most, with the count. */
static void handshake_timed_out(struct http_loop *h, struct conn *c, int64_t waited, int64_t now)
{
    struct evhttp_connection *evcon = fota_http__conn_evcon(c);
    struct http_admit_log *l = &h->handshake_log;
    if (!evcon)
        return;   /* evhttp is letting go of it already */
    l->held++;
    if (!l->last_ms || now - l->last_ms >= 1000) {
        char *addr = NULL;
        uint16_t port = 0;
        evhttp_connection_get_peer(evcon, &addr, &port);
        FOTA_INFO("http handshake timed out peer=%s:%u waited_ms=%lld http_timeout=%u "
                  "timed_out=%llu loop=%d", addr ? addr : "-", port, (long long)waited,
                  h->http_timeout, (unsigned long long)l->held, fota_loop_index(h->loop));
        l->last_ms = now;
        l->held = 0;
    }
    evhttp_connection_free(evcon);
    fota_http__fresh_unlink(h, c);
}

/* Drops connections evhttp closed before they carried a request (bad
 * request lines, 413, timeouts, probes), and closes TLS handshakes past
 * their deadline. Runs every 100 ms while any exist. */
void fota_http__fresh_sweep(evutil_socket_t fd, short what, void *arg)
{
    struct http_loop *h = arg;
    (void)fd;
    (void)what;
    fota_http__admit_silent(h);
    int64_t now = fota_clock_mono_ms(), waited;
    struct conn *c = h->fresh;
    while (c) {
        struct conn *next = c->fnext;
        bufferevent_data_cb rd = NULL, wr = NULL;
        bufferevent_event_cb ev = NULL;
        bufferevent_getcb(c->bev, &rd, &wr, &ev, NULL);
        if (!rd && !wr && !ev) {
            fota_http__fresh_unlink(h, c);
            h->conns_created--;
        } else if ((waited = fota_http__gate_handshake_late(c, now)) > 0) {
            handshake_timed_out(h, c, waited, now);
        }
        c = next;
    }
    if (h->fresh) {
        static const struct timeval tv = { 0, 100000 };
        event_add(h->sweep, &tv);
    }
}

static struct bufferevent *fresh_add(struct http_loop *h, struct bufferevent *bev)
{
    if (!bev)
        return NULL;
    struct conn *c = fota_xcalloc(1, sizeof(*c));
    bufferevent_incref(bev);
    c->bev = bev;
    c->h = h;
    fota_http__gate_init(c);
    c->fnext = h->fresh;
    if (c->fnext)
        c->fnext->fprev = c;
    h->fresh = c;
    unsigned b = bucket_of(bev);
    c->fhnext = h->fresh_hash[b];
    h->fresh_hash[b] = c;
    h->conns_created++;
    fota_http__admit_new(c);
    loop_busy_update(h);
    if (h->sweep && !event_pending(h->sweep, EV_TIMEOUT, NULL)) {
        static const struct timeval tv = { 0, 100000 };
        event_add(h->sweep, &tv);
    }
    return bev;
}

struct bufferevent *fota_http__plain_bevcb(struct event_base *base, void *arg)
{
    struct http_loop *h = arg;
    return fresh_add(h, bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE));
}

struct bufferevent *fota_http__tls_bevcb(struct event_base *base, void *arg)
{
    struct http_loop *h = arg;
    SSL *ssl = SSL_new(h->hh->srv->ssl_ctx);
    if (!ssl)
        return NULL;
    return fresh_add(h, bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                       BEV_OPT_CLOSE_ON_FREE));
}
