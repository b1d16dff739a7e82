/* http_conn.c - connection accounting for fotad's HTTP loops: bufferevents
 * handed to evhttp are "fresh" until they carry a request, then tracked until
 * closed (hash tables by pointer), so draining on SIGTERM knows what is open
 * and an event stream learns that its connection went away. */
#include "http_int.h"

#include <stdlib.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>

#include "xmalloc.h"

static void fresh_done(struct http_loop *h, struct bufferevent *bev);

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
    free(c);
}

struct conn *fota_http__conn_track(struct http_loop *h, struct evhttp_connection *evcon)
{
    unsigned b = bucket_of(evcon);
    for (struct conn *c = h->buckets[b]; c; c = c->next)
        if (c->evcon == evcon)
            return c;
    struct conn *c = fota_xcalloc(1, sizeof(*c));
    fresh_done(h, evhttp_connection_get_bufferevent(evcon));
    h->conns_created++;
    c->evcon = evcon;
    c->id = __atomic_add_fetch(&h->hh->next_conn, 1, __ATOMIC_RELAXED);
    c->h = h;
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

void fota_http__fresh_unlink(struct http_loop *h, struct fresh *f)
{
    for (struct fresh **pp = &h->fresh_hash[bucket_of(f->bev)]; *pp; pp = &(*pp)->hnext)
        if (*pp == f) {
            *pp = f->hnext;
            break;
        }
    if (f->prev)
        f->prev->next = f->next;
    else
        h->fresh = f->next;
    if (f->next)
        f->next->prev = f->prev;
    bufferevent_decref(f->bev);
    free(f);
    loop_busy_update(h);
}

/* Drops connections evhttp closed before they carried a request (bad
 * request lines, 413, timeouts, probes). Runs every 100 ms while any exist. */
void fota_http__fresh_sweep(evutil_socket_t fd, short what, void *arg)
{
    struct http_loop *h = arg;
    struct fresh *f = h->fresh;
    (void)fd;
    (void)what;
    while (f) {
        struct fresh *next = f->next;
        bufferevent_data_cb rd = NULL, wr = NULL;
        bufferevent_event_cb ev = NULL;
        bufferevent_getcb(f->bev, &rd, &wr, &ev, NULL);
        if (!rd && !wr && !ev) {
            fota_http__fresh_unlink(h, f);
            h->conns_created--;
        }
        f = next;
    }
    if (h->fresh) {
        static const struct timeval tv = { 0, 100000 };
        event_add(h->sweep, &tv);
    }
}

static struct bufferevent *fresh_add(struct http_loop *h, struct bufferevent *bev)
{
    struct fresh *f;
    if (!bev)
        return NULL;
    fota_http_errpage_watch(&h->errpages, bev);
    f = fota_xcalloc(1, sizeof(*f));
    bufferevent_incref(bev);
    f->bev = bev;
    f->next = h->fresh;
    if (f->next)
        f->next->prev = f;
    h->fresh = f;
    unsigned b = bucket_of(bev);
    f->hnext = h->fresh_hash[b];
    h->fresh_hash[b] = f;
    h->conns_created++;
    loop_busy_update(h);
    if (h->sweep && !event_pending(h->sweep, EV_TIMEOUT, NULL)) {
        static const struct timeval tv = { 0, 100000 };
        event_add(h->sweep, &tv);
    }
    return bev;
}

/* The connection carried a request: closecb accounting takes over. */
static void fresh_done(struct http_loop *h, struct bufferevent *bev)
{
    for (struct fresh *f = h->fresh_hash[bucket_of(bev)]; f; f = f->hnext)
        if (f->bev == bev) {
            fota_http__fresh_unlink(h, f);
            h->conns_created--;
            return;
        }
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
