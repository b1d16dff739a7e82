/* http_int.h - what http.c (routes, dispatch, replies, loops),
 * http_conn.c (connection accounting) and http_gate.c (request heads before
 * their bodies) share: the per-loop HTTP server and its connection tables.
 * Private to server/http. */
#ifndef FOTA_HTTP_INT_H
#define FOTA_HTTP_INT_H

#include <stdint.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "http.h"
#include "http_errpage.h"
#include "http_head.h"
#include "http_route.h"
#include "loop.h"

struct fota_accept_guard;

#define CONN_BITS 10
#define CONN_BUCKETS (1u << CONN_BITS)
#define MAX_LISTENERS 4

enum { QUICK_GET = 1, QUICK_HEAD = 2 };

/* The gate of one connection (http_gate.c): it reads each request's head
 * from the input buffer as it arrives, before evhttp parses it, and decides
 * before the body is read: framing errors are refused (400), an upload
 * (a body over FOTA_HTTP_SMALL_BODY) needs the admin key and room in
 * upload_memory, and the head must be complete by an absolute deadline. A
 * refused request gets a body limit of 0 on its connection, so evhttp reads
 * none of its body; the status and message replace evhttp's 413 (errpage)
 * or answer at dispatch. */
struct gate {
    struct fota_http_head head;
    int reading_head;              /* 1 until the head's empty line was seen */
    size_t pos;                    /* input bytes already split into head lines */
    size_t head_bytes;             /* the head's bytes so far */
    int64_t t0_ms;                 /* the head's first byte (the accept, for the first) */
    int timeout_cut;               /* the read timeout counts down to the head's deadline */
    int probation;                 /* short of descriptors: 1 s for a head with a valid key */
    int key_ok;                    /* its key checked, valid (probation, upload): not shed */
    int quick;                     /* its request line may get a quick answer (http_quick.c):
                                    * QUICK_GET or QUICK_HEAD, 0: none */
    uint64_t reserved;             /* bytes of upload_memory held for this body */
    struct gate_lookup *lookup;    /* its upload key's store lookup, while it runs */
    struct fota_http_errpage_hint hint;   /* bev, body limit, refusal status and message */
    char why[160];                 /* a refusal's message, when not static */
};

/* Why the HTTP server refused a request: fota_refused_total{listener="http"}. */
enum {
    HTTP_REFUSED_UNAUTHORIZED,     /* 401: no key, a malformed or unknown key */
    HTTP_REFUSED_BAD_REQUEST,      /* 400 from the gate: ambiguous framing, %00 */
    HTTP_REFUSED_UPLOAD_FORBIDDEN, /* 403 from the gate: an upload without the admin key */
    HTTP_REFUSED_UPLOAD_MEMORY,    /* 503 from the gate: upload_memory is full */
    HTTP_REFUSED_PER_ADDR,         /* closed at accept: http_max_per_addr */
    HTTP_REFUSED_DESCRIPTORS,      /* short of descriptors: shed, or 503 without a key */
    HTTP_REFUSED_N
};

/* Admission of one loop's connections (http_admit.c). */
struct http_admit_log {
    int64_t last_ms;               /* the reason's last line (fota_clock_mono_ms) */
    uint64_t held;                 /* refusals since */
};
struct addr_slot;
struct http_admit {
    uint64_t nfresh;               /* connections that have not carried a request */
    int64_t anon_bound;            /* anonymous connections beyond it are on probation */
    int tracking;                  /* per-address counts kept (the loop is over its share) */
    uint32_t epoch;                /* changes when tracking starts or stops */
    struct addr_slot *slot;        /* per-address counts while tracking */
    size_t cap, used;
    uint64_t limit;                /* RLIMIT_NOFILE, for the logs */
    struct http_admit_log log[HTTP_REFUSED_N];
};

/* One bufferevent handed to evhttp, from its creation to its close, with
 * its gate. Until it carries a request it is "fresh": in its loop's fresh
 * list and hash (by bufferevent), holding a bufferevent reference (evhttp
 * freeing it shows as NULL callbacks, found by a sweep, which then drops our
 * reference, closing the fd). From its first request on it is tracked: in
 * the loop's buckets by evhttp connection until evhttp closes it, so a
 * graceful SIGTERM knows what is open and an event stream learns that its
 * connection went away. One allocation for its whole life. */
struct conn {
    struct bufferevent *bev;
    struct http_loop *h;
    struct evbuffer_cb_entry *in_cb;   /* the gate's input watch */
    struct gate g;
    int tracked;
    int admitted;                  /* seen by the admission after its accept */
    int heard;                     /* bytes were read from it */
    int anonymous;                 /* counted in fota_http.anonymous */
    uint64_t addr_key;             /* its address in the per-address counts, 0: not */
    uint32_t addr_epoch;
    struct conn *fprev, *fnext;    /* fresh list */
    struct conn *fhnext;           /* same bucket of http_loop.fresh_hash */
    struct evhttp_connection *evcon;   /* tracked: */
    uint64_t id;                   /* conn= in logs */
    struct fota_req *stream;       /* open event stream on it, if any */
    fota_stream_closed_cb closed;
    void *closed_ud;
    struct evbuffer_cb_entry *stream_cb;   /* counts its unsent bytes (backlog) */
    size_t backlog;                /* of the stream: output not yet taken by the kernel */
    int stream_framing;            /* 1 chunked, 0 raw (HTTP/1.0), -1 no body (HEAD) */
    struct conn *sprev, *snext;    /* http_loop.streams */
    struct conn *next;             /* same bucket of http_loop.buckets */
    struct conn *qnext;            /* http_loop.quick: answered, closing */
};

/* One loop's HTTP server: touched only on that loop's thread (after
 * fota_http_loop_start), except `busy`, read by the main loop. */
struct http_loop {
    struct fota_http *hh;
    struct fota_loop *loop;
    struct conn *fresh;            /* untracked connections */
    struct conn *fresh_hash[CONN_BUCKETS]; /* the same, by bufferevent */
    struct event *sweep;
    struct evhttp *plain, *tls;
    struct evhttp_bound_socket *bound[MAX_LISTENERS];
    struct evhttp *bound_on[MAX_LISTENERS];
    int nbound;
    int fd_plain, fd_tls;          /* bound by fota_http_listen, not yet accepted on */
    struct conn *buckets[CONN_BUCKETS];
    struct conn *streams;          /* connections carrying an event stream */
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
    struct fota_accept_guard *guard;      /* its listeners when descriptors run short */
    struct http_admit admit;
    struct http_admit_log handshake_log;  /* handshakes closed at their deadline */
    struct conn *quick;            /* quickly answered connections, closed after this pass */
    struct event *quick_ev;        /* made active to close them */
};


struct fota_http {
    struct fota_server *srv;
    struct fota_http_routes routes;  /* fixed once the workers run */
    struct http_loop *loops[FOTA_LOOPS_MAX];
    int nloops;
    uint64_t next_req;             /* atomic: also fota_http_requests_total */
    uint64_t next_conn;            /* atomic */
    int draining;                  /* atomic */
    uint64_t upload_memory;        /* atomic: the setting (SIGHUP changes it) */
    uint64_t stream_memory;        /* atomic: the setting (SIGHUP changes it) */
    int64_t stream_bytes;          /* atomic: unsent stream bytes of every loop */
    int64_t nstreams;              /* atomic: open streams of every loop */
    uint64_t body_reserved;        /* atomic: upload bytes held by every loop */
    unsigned max_per_addr;         /* atomic: the setting http_max_per_addr */
    int64_t anonymous;             /* atomic: admitted connections of every loop that have
                                    * not carried a request */
    int64_t detached;              /* atomic: FOTA_ROUTE_STORE requests not released yet */
    struct event *trim;            /* main loop: gives freed memory back */
    struct http_quick {            /* fota_http_quick: fixed once the workers run */
        char *pattern;
        fota_http_quick_fn fn;         /* GET: 304, or NULL */
        fota_http_quick_head_fn head_fn;   /* HEAD, or NULL */
        void *ud;
    } quick[FOTA_HTTP_QUICK_MAX];
    int nquick;
    struct fota_metric m_quick;    /* requests answered quickly */
    struct fota_metric m_refused[HTTP_REFUSED_N];
};

/* The http module's metrics (http_module.c), at its start; a refusal with
 * status counted by its reason (any thread). */
int fota_http__metrics_register(struct fota_http *h);
void fota_http__refused(struct fota_http *h, int status);
void fota_http__refused_as(struct fota_http *h, int reason);

static inline void loop_busy_update(struct http_loop *h)
{
    __atomic_store_n(&h->busy, h->conns_open > 0 || h->fresh != NULL || h->nbound_pending,
                     __ATOMIC_RELEASE);
}

static inline int http_draining(const struct fota_http *h)
{
    return __atomic_load_n(&h->draining, __ATOMIC_ACQUIRE);
}

/* Quick answers (http_quick.c). The request line of c's head (len bytes,
 * whole): marks it as one that may get a quick answer. */
void fota_http__quick_line(struct conn *c, const char *line, size_t len);
/* c's head is complete and accepted: 1 when it was answered quickly (the
 * connection closes after this loop pass), 0 when evhttp goes on. */
int fota_http__quick_try(struct conn *c, struct evhttp_connection *evcon);
/* The loop's event that closes answered connections: made (0 or
 * FOTA_ENOMEM) and freed with the loop. */
int fota_http__quick_init(struct http_loop *h, struct event_base *base);
void fota_http__quick_free(struct http_loop *h);

/* A FOTA_ROUTE_STORE request, on its loop before its handler runs as a
 * store job (http_req.c): copies its input headers and its body (up to
 * FOTA_HTTP_SMALL_BODY) into r, which fota_req_header and
 * fota_req_json_body read from then on; r counts in fota_http.detached
 * until it is released. */
void fota_http__req_detach(struct fota_req *r);
/* The request a store job runs on this thread (http.c store_job) and
 * whether its handler deferred it (fota_req_defer): read after the handler
 * returns, when r may belong to the thread that replies to it by then. */
extern _Thread_local struct fota_req *fota_http__job_req;
extern _Thread_local int fota_http__job_deferred;
/* Test builds (FOTA_TEST_HOOKS): the routes of http_test.c. 0 or an error. */
int fota_http__test_routes(struct fota_server *srv);

/* "ADDR:PORT" ("[ADDR]:PORT" for IPv6) of evcon's peer into buf, "-" when
 * unknown (http.c). */
void fota_http__peer_text(struct evhttp_connection *evcon, char *buf, size_t n);

/* The access log line of a reply (http_reply.c). */
void fota_http__log_reply(struct fota_req *r, int code, size_t len);

/* Connection accounting (http_conn.c, struct conn). */

/* The tracked connection of evcon: on its first request its fresh entry
 * becomes tracked. */
struct conn *fota_http__conn_track(struct http_loop *h, struct evhttp_connection *evcon);
/* Forgets and frees one fresh connection (drops our bufferevent reference). */
void fota_http__fresh_unlink(struct http_loop *h, struct conn *c);
/* Timer: drops fresh connections evhttp has closed. */
void fota_http__fresh_sweep(evutil_socket_t fd, short what, void *arg);
/* evhttp's bufferevent factories for plain and TLS listeners. */
struct bufferevent *fota_http__plain_bevcb(struct event_base *base, void *arg);
struct bufferevent *fota_http__tls_bevcb(struct event_base *base, void *arg);

/* Event streams (http_req.c): a stream's connection closes (conn_closed)
 * or its stream ends: its backlog stops counting. */
void fota_http__stream_forget(struct conn *c);

/* Admission (http_admit.c): the loop's guard and admission event, after its
 * listeners are bound (0 or a FOTA_E*); closing its listeners (drain);
 * freeing. A new fresh connection; one that stops being fresh; one closed. */
int fota_http__admit_init(struct http_loop *h);
void fota_http__admit_close(struct http_loop *h);
void fota_http__admit_free(struct http_loop *h);
void fota_http__admit_new(struct conn *c);
/* Admits c at its first read, from its input callback: 1 when it is over its
 * address's share (the gate refuses its request then). */
int fota_http__admit_first_read(struct conn *c);
/* Admits the fresh connections that have not sent a byte (the sweep), and
 * closes those over their address's share. */
void fota_http__admit_silent(struct http_loop *h);
void fota_http__admit_fresh_gone(struct conn *c);
void fota_http__admit_closed(struct conn *c);
/* A request on probation came without a valid key (counted, logged). */
void fota_http__admit_refused_key(struct conn *c);

/* The evhttp connection of c while evhttp owns its bufferevent, else NULL. */
struct evhttp_connection *fota_http__conn_evcon(const struct conn *c);
/* A TLS connection still in its handshake past its first head's deadline
 * (http_timeout from the accept; a second on probation): the milliseconds
 * since the accept, else 0. Each byte of a handshake restarts the read
 * timeout libevent keeps, so the sweep of fresh connections closes these. */
int64_t fota_http__gate_handshake_late(const struct conn *c, int64_t now);
/* c is on probation: its head within a second, with a valid key. */
void fota_http__gate_probation(struct conn *c);

/* The gate (http_gate.c). Starts watching a new connection's input and
 * output (the first head's deadline counts from now). */
void fota_http__gate_init(struct conn *c);
/* Stops watching (the bufferevent still exists) and gives back a
 * reservation no request took. */
void fota_http__gate_cleanup(struct conn *c);
/* At dispatch: the request's reservation moves to r; the refusal decided on
 * its head, if any, is returned (its status, 0 for none; its message into
 * why, *retry_after); then the gate starts on the next request (bytes
 * already buffered included). */
int fota_http__gate_next(struct conn *c, struct evhttp_connection *evcon, struct fota_req *r,
                         char *why, size_t why_cap, unsigned *retry_after);
/* Gives back n bytes of upload_memory (any thread); once none is held,
 * freed memory goes back to the system a second later (malloc_trim). */
void fota_http__body_release(struct fota_http *h, uint64_t n);
/* Creates that timer (main loop). 0 or FOTA_ENOMEM. */
int fota_http__trim_init(struct fota_http *h);

#endif
