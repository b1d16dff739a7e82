/* http_int.h - what http.c (routes, dispatch, replies, loops) and
 * http_conn.c (connection accounting) share: the per-loop HTTP server and its
 * connection tables. Private to server/http. */
#ifndef FOTA_HTTP_INT_H
#define FOTA_HTTP_INT_H

#include <stdint.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "http.h"
#include "http_errpage.h"
#include "http_route.h"
#include "loop.h"

#define CONN_BITS 10
#define CONN_BUCKETS (1u << CONN_BITS)
#define MAX_LISTENERS 4

/* One HTTP connection that has carried a request. */
struct conn {
    struct evhttp_connection *evcon;
    uint64_t id;                   /* conn= in logs */
    struct http_loop *h;
    struct fota_req *stream;       /* open event stream on it, if any */
    fota_stream_closed_cb closed;
    void *closed_ud;
    struct conn *next;
};

/* A bufferevent handed to evhttp that has not carried a request yet. We hold
 * a reference so the pointer stays valid; evhttp freeing it shows as NULL
 * callbacks, found by a sweep, which then drops our reference (closing the fd). */
struct fresh {
    struct bufferevent *bev;
    struct fresh *prev, *next;
    struct fresh *hnext;           /* same bucket of http_loop.fresh_hash */
};

/* One loop's HTTP server: touched only on that loop's thread (after
 * fota_http_loop_start), except `busy`, read by the main loop. */
struct http_loop {
    struct fota_http *hh;
    struct fota_loop *loop;
    struct fresh *fresh;           /* untracked connections */
    struct fresh *fresh_hash[CONN_BUCKETS]; /* the same, by bufferevent */
    struct event *sweep;
    struct evhttp *plain, *tls;
    struct evhttp_bound_socket *bound[MAX_LISTENERS];
    struct evhttp *bound_on[MAX_LISTENERS];
    int nbound;
    int fd_plain, fd_tls;          /* bound by fota_http_listen, not yet accepted on */
    struct conn *buckets[CONN_BUCKETS];
    uint64_t conns_created;        /* bufferevents handed to evhttp */
    uint64_t conns_tracked;        /* of those, seen with a request */
    uint64_t conns_open;           /* tracked and not yet closed */
    int busy;                      /* atomic: conns_open > 0 || fresh != NULL */
    int draining;
    int nbound_pending;            /* draining: listeners kept until their backlog is taken */
    uint64_t max_upload;           /* copies of the reloadable settings */
    unsigned http_timeout;
    int drain_tries;
    struct fota_http_errpages errpages;   /* JSON for libevent's own error replies */
};

struct fota_http {
    struct fota_server *srv;
    struct fota_http_routes routes;  /* fixed once the workers run */
    struct http_loop *loops[FOTA_LOOPS_MAX];
    int nloops;
    uint64_t next_req;             /* atomic */
    uint64_t next_conn;            /* atomic */
    int draining;                  /* atomic */
};

static inline void loop_busy_update(struct http_loop *h)
{
    __atomic_store_n(&h->busy, h->conns_open > 0 || h->fresh != NULL || h->nbound_pending,
                     __ATOMIC_RELEASE);
}

static inline int http_draining(const struct fota_http *h)
{
    return __atomic_load_n(&h->draining, __ATOMIC_ACQUIRE);
}

/* The access log line of a reply (http_reply.c). */
void fota_http__log_reply(struct fota_req *r, int code, size_t len);

/* Connection accounting (http_conn.c). A connection is "fresh" from the
 * moment evhttp gets its bufferevent until it carries a request; then it is
 * tracked until evhttp closes it, so a graceful SIGTERM knows what is open. */

/* The tracked connection of evcon, created (and its fresh entry dropped) on
 * its first request. */
struct conn *fota_http__conn_track(struct http_loop *h, struct evhttp_connection *evcon);
/* Forgets one fresh connection (drops our bufferevent reference). */
void fota_http__fresh_unlink(struct http_loop *h, struct fresh *f);
/* Timer: drops fresh connections evhttp has closed. */
void fota_http__fresh_sweep(evutil_socket_t fd, short what, void *arg);
/* evhttp's bufferevent factories for plain and TLS listeners. */
struct bufferevent *fota_http__plain_bevcb(struct event_base *base, void *arg);
struct bufferevent *fota_http__tls_bevcb(struct event_base *base, void *arg);

#endif
