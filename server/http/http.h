/* http.h - fotad's HTTP server (libevent evhttp), the http module: listeners
 * on http_port and (with a certificate) https_port, one route table, JSON
 * replies in the Espressif style ("status" in every body), key
 * authentication. Every other module adds its own routes in its start().
 *
 * Handlers run on the loop thread with a struct fota_req and must reply
 * exactly once (fota_reply_* or fota_req_stream_*), before returning unless
 * they took over the request: a stream, or a deferred reply sent later with
 * evhttp_send_reply(r->ev, ...) directly, in which case the handler sets
 * r->replied = 1 before returning (the struct fota_req is freed on return;
 * keep only r->ev). Modules add routes with fota_http_route(); a pattern has
 * one owner per method (registering it twice fails), and where two patterns
 * match one path the most recently added wins. Paths are matched after
 * percent-decoding; HEAD is routed as GET with r->head = 1.
 *
 * Loops: every loop (srv->loops, config `workers`) runs its own evhttp on an
 * SO_REUSEPORT socket of http_port/https_port. A route has one of three
 * placements:
 *   - FOTA_ROUTE_ANY_LOOP: runs on the loop that accepted the connection (its
 *     handler must be thread-safe: store, blobs, keys and logging are);
 *   - FOTA_ROUTE_STORE: runs as a store job (store_exec.h): on a store thread
 *     when the store has them (PostgreSQL), else on the loop that accepted
 *     the connection. The same rules as ANY_LOOP, and more: the handler never
 *     touches r->ev (it reads headers and the body through fota_req_header
 *     and fota_req_json_body, which read copies made at dispatch, and sets
 *     output headers with fota_reply_header), reaches the hub through
 *     fota_hub_publish_any and module state through fota_loop_call(main);
 *     no streams. Its reply is sent on the request's loop.
 *   - neither: runs on the main loop while the worker waits, so module state
 *     stays single-threaded.
 * A deferred reply (fota_req_defer) made later on the main loop or another
 * thread travels back to the request's own loop by itself. */
#ifndef FOTA_HTTP_H
#define FOTA_HTTP_H

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "server.h"

/* Bodies up to this size (JSON) any request may send; a larger one is an
 * upload, which needs the admin key on its headers (checked before the body
 * is read) and room in upload_memory. */
#define FOTA_HTTP_SMALL_BODY 65536u

#define FOTA_ROUTE_MAX_CAPS 4
#define FOTA_ROUTE_CAP_LEN  96

/* Method bits for routes (evhttp's EVHTTP_REQ_* values). */
#define FOTA_M_GET    EVHTTP_REQ_GET
#define FOTA_M_POST   EVHTTP_REQ_POST
#define FOTA_M_PUT    EVHTTP_REQ_PUT
#define FOTA_M_DELETE EVHTTP_REQ_DELETE
#define FOTA_M_HEAD   EVHTTP_REQ_HEAD

/* The reply of a request run for another instance (fota_http_inner):
 * status and body (NUL-terminated, borrowed for the call). */
typedef void (*fota_req_inner_cb)(void *ud, int status, const char *body, size_t len);

struct fota_req {
    struct evhttp_request *ev;        /* the libevent request */
    struct fota_server *srv;
    int method;                       /* EVHTTP_REQ_*; POST ?method=PUT|DELETE is tunnelled */
    int head;                         /* 1 for HEAD: the body is dropped, headers kept */
    const char *path;                 /* decoded path, borrowed from ev */
    char caps[FOTA_ROUTE_MAX_CAPS][FOTA_ROUTE_CAP_LEN]; /* '*' segments of the route */
    int ncaps;
    struct evkeyvalq query;           /* decoded query string */
    void *ud;                         /* the route's ud */
    int replied;
    const char *peer;                 /* "1.2.3.4:5678", for logs */
    char peer_buf[80];
    char *path_buf;                   /* owned decoded path */
    int deferred;                     /* fota_req_defer() was called */
    uint64_t id;                      /* request number, for logs (req=) */
    uint64_t conn_id;                 /* connection number, for logs (conn=) */
    int64_t dev_id;                   /* device of the authenticated key, 0 if none (dev=) */
    struct fota_loop *loop;           /* the loop that owns ev */
    void *hloop;                      /* private (http.c) */
    int parked;                       /* private: its loop waits while the main loop runs it */
    int quiet;                        /* 1: the reply is logged at DEBUG (the handler logs it) */
    uint64_t body_reserved;           /* private: upload_memory its body holds */
    int detached;                     /* private: a FOTA_ROUTE_STORE request; reads the copies */
    struct evkeyvalq in_hdrs;         /* private: its input headers, copied (detached) */
    char *body;                       /* private: its body, copied (detached, NULL if none or
                                       * larger than FOTA_HTTP_SMALL_BODY) */
    size_t body_len;                  /* private: the body's length (copied or not) */
    struct evkeyvalq out_hdrs;        /* private: fota_reply_header's, sent with the reply */
    int nout_hdrs;
    int key_pre;                      /* private: its key was looked up before the handler */
    int key_pre_rc;                   /* private: that lookup's result */
    struct fota_key key_pre_val;      /* private: and the key, when found */
    fota_req_inner_cb inner;          /* a request run for another instance
                                       * (fota_http_inner): its reply goes here; NULL
                                       * for a client's */
    void *inner_ud;
};

/* Route flags (placements, see above): the handler is thread-safe and runs
 * on any loop; the handler runs as a store job. */
#define FOTA_ROUTE_ANY_LOOP 0x1
#define FOTA_ROUTE_STORE    0x2

typedef void (*fota_http_handler)(struct fota_req *r);

/* The http module's settings (its rows in http_module.c). */
struct fota_http_conf {
    int      http_port;         /* 0 = ephemeral, FOTA_PORT_OFF = disabled */
    int      https_port;        /* only used when tls_cert and tls_key are set */
    uint64_t max_upload;        /* largest request body, bytes */
    uint64_t upload_memory;     /* upload bodies held at once, bytes */
    uint64_t stream_memory;     /* unsent event-stream bytes of all streams, bytes */
    unsigned max_per_addr;      /* connections from one address (all loops) */
    unsigned http_timeout;      /* s: idle/read timeout of a connection */
    unsigned workers;           /* HTTP event loops, 0 = one per core */
};
/* The live settings (SIGHUP updates the reloadable ones; worker loops read
 * their own copies). Main loop. */
const struct fota_http_conf *fota_http_conf(const struct fota_server *srv);

/* Creates the HTTP server (no routes, no listeners yet); sets srv->http. */
struct fota_http *fota_http_new(struct fota_server *srv);
/* Binds http_port (and https_port if srv->ssl_ctx) on conf.bind; logs the
 * `listening` lines. 0 or a negative FOTA_E* (logged). */
int fota_http_listen(struct fota_http *h);
/* SIGTERM: stop accepting, close live streams, mark replies Connection: close,
 * shorten idle timeouts. */
void fota_http_drain(struct fota_http *h);
/* 1 while requests or connections seen by the server are still open. */
int fota_http_busy(const struct fota_http *h);
/* Applies reloadable settings (max_upload, upload_memory, stream_memory,
 * http_timeout). */
void fota_http_reload(struct fota_http *h);
/* Closes every connection and frees the server; srv->http becomes NULL. */
void fota_http_free(struct fota_http *h);

/* Adds a route. pattern is a path with '*' for one segment, e.g.
 * "/v1/products/STAR/roms/" with STAR = '*'; a trailing '/' is optional.
 * methods is a mask of FOTA_M_*. 0, FOTA_EINVAL, or FOTA_EEXIST when the
 * same pattern already has a handler for one of the methods. */
int fota_http_route(struct fota_server *srv, int methods, const char *pattern,
                    fota_http_handler fn, void *ud);
/* Same with FOTA_ROUTE_* flags. Routes are added before the workers start. */
int fota_http_route_flags(struct fota_server *srv, int methods, const char *pattern,
                          fota_http_handler fn, void *ud, int flags);
/* A quick answer: the reply to a request decided from its head alone, in
 * the gate (http_gate.c), before evhttp parses the request: no struct
 * fota_req, no header list, one write, then the connection closes. For a
 * fleet's polling that is already answered from caches (an Arduino device
 * that runs its target: 304). fn gets the loop's index, the captures of
 * pattern (as fota_http_route) in the path as sent, and the header lines
 * after the request line up to and including the empty line; it returns
 * 304 to answer "304 Not Modified" with an empty body (the bytes evhttp
 * sends for it), with *dev_id the device for the access log, or 0 to let
 * the request take its normal way, in which case it must have changed
 * nothing. Only for "GET PATH HTTP/1.0" on a plain connection's first
 * request, no body, no query other than ignored text after '?', no '%' in
 * the path, nothing buffered after the head, and not while draining;
 * everything else, and any request fn declines, goes to the route. At most
 * FOTA_HTTP_QUICK_MAX; added before the workers start. fn runs on the loop
 * that read the head, like a FOTA_ROUTE_ANY_LOOP handler. */
#define FOTA_HTTP_QUICK_MAX 4
typedef int (*fota_http_quick_fn)(void *ud, int loop, char caps[][FOTA_ROUTE_CAP_LEN], int ncaps,
                                  const char *lines, size_t len, int64_t *dev_id);
int fota_http_quick(struct fota_server *srv, const char *pattern, fota_http_quick_fn fn,
                    void *ud);
/* A quick answer to a HEAD whose headers the route's caches decide (a stock
 * device's HEAD before its download): fn gets the request in q and writes
 * the whole answer (status line to the empty line, the bytes evhttp would
 * send) into reply, returning its length, with q->dev_id and the log line's
 * parts set; or returns 0 to let the request take its normal way, having
 * changed nothing. Only for "HEAD PATH?QUERY HTTP/1.0", under the same
 * conditions as fota_http_quick; the query and the header lines are as
 * sent (nothing decoded). The answer is logged at INFO as
 * "WHAT req=ID LOG peer=PEER loop=N". Counted and limited with
 * fota_http_quick's. */
struct fota_http_quick_req {
    int loop;                          /* the loop's index */
    const char *query;                 /* after '?' (not decoded), NULL: none */
    size_t query_len;
    const char *lines;                 /* the header lines, up to the empty line */
    size_t len;
    int64_t dev_id;                    /* fn: the device, for the log */
    const char *log_what;              /* fn: the log line's message */
    char log[256];                     /* fn: its key=value pairs */
};
typedef size_t (*fota_http_quick_head_fn)(void *ud, struct fota_http_quick_req *q, char *reply,
                                          size_t cap);
int fota_http_quick_head(struct fota_server *srv, const char *pattern, fota_http_quick_head_fn fn,
                         void *ud);
/* Worker thread start-up (server.c): serves the sockets bound for loop. */
void fota_http_loop_start(struct fota_http *h, struct fota_loop *loop);

/* Replies: every JSON body gets "status": code. json is stolen (may be NULL
 * for {"status": code}). Content-Type application/json, Content-Length set,
 * no "\/" escapes, keys sorted. */
void fota_reply_json(struct fota_req *r, int code, json_t *json);
/* {"status": code, "message": "..."}; code 4xx/5xx. Logged at INFO (4xx) or
 * ERROR (5xx) with req= and the path. */
void fota_reply_error(struct fota_req *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Raw reply: any content type, body may be NULL; the buffer's contents are
 * moved out (sendfile-backed evbuffers stay sendfile-backed). */
void fota_reply_raw(struct fota_req *r, int code, const char *content_type,
                    struct evbuffer *body);
/* An output header for the reply to come (before fota_reply_*), on any
 * thread: at most FOTA_REPLY_HEADERS_MAX per request (name and value are
 * copied). The reply adds them on the request's loop. 0, or FOTA_ETOOBIG
 * beyond the limit (the header is dropped). */
#define FOTA_REPLY_HEADERS_MAX 4
int fota_reply_header(struct fota_req *r, const char *name, const char *value);
/* The error reply for a failed operation on `what` (printf format), through
 * the one mapping of FOTA_E* codes to statuses: ENOENT "no WHAT" (404),
 * EEXIST "WHAT already exists" (409), EBUSY "WHAT is busy" (503), EINVAL
 * "invalid WHAT" (400), EAUTH 401, EPERM 403, ETOOBIG 413, ENOSPC "WHAT: no
 * space left on device" (507, the store's disk is full), anything else
 * "store error NAME" (500, logged at ERROR). */
void fota_reply_status(struct fota_req *r, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* json_pack() for reply bodies, checked: a value jansson refuses (text that
 * is not UTF-8, a NULL string) logs an ERROR naming the format and gives
 * JSON null instead of NULL, so a view never silently loses a field's
 * neighbours. New reference. */
json_t *fota_http_json_pack(const char *fmt, ...);

/* Query parameter (decoded) or NULL. */
const char *fota_req_query(const struct fota_req *r, const char *name);
/* Request header or NULL (a FOTA_ROUTE_STORE request's: from its copy). */
const char *fota_req_header(const struct fota_req *r, const char *name);

/* The key of the request's `Authorization: token KEY` header (*k into the
 * header, *len), or why there is none: the 401 message. */
const char *fota_req_key(struct fota_req *r, const char **k, size_t *len);
/* Authenticates the request's Authorization header. 0 with *key filled, or
 * replies 401 and returns FOTA_EAUTH. */
int fota_req_auth(struct fota_req *r, struct fota_key *key);
/* Same, and requires an admin key (403 otherwise). */
int fota_req_admin(struct fota_req *r, struct fota_key *key);

/* Parses the body (a FOTA_ROUTE_STORE request's: its copy) as a JSON
 * object. Replies 400 (413 over FOTA_HTTP_SMALL_BODY) and returns NULL on
 * error. The caller owns the result. */
json_t *fota_req_json_body(struct fota_req *r);

/* Parses a decimal id from a path capture; replies 404 and returns -1 on a
 * malformed id. */
int64_t fota_req_cap_id(struct fota_req *r, int i);

/* Deferred reply: the handler returns without replying and keeps r; it
 * replies later with fota_reply_*() (from any thread; the reply is sent on
 * r's loop) and then calls fota_req_release(r). If the client goes away
 * meanwhile, replying is still safe (libevent frees the orphaned request). */
void fota_req_defer(struct fota_req *r);
/* Frees r (not the libevent request). NULL-safe. */
void fota_req_release(struct fota_req *r);

/* Runs a request received by another fotad instance that this one must
 * answer (a rollout create or control asked of the instance driving the
 * rollouts, docs/scale-out.md "Where to ask"): method and path as a
 * client's, body (copied; NULL none), authenticated as key (fota_req_auth
 * gives it: the asking instance checked the client's). The route runs
 * where a received request's would (a FOTA_ROUTE_STORE handler as a store
 * job), and its reply goes to done(ud, status, body) once, on the thread
 * that replies, instead of to a connection; reply headers are dropped.
 * Main loop. 0, or FOTA_ENOENT when no route takes method and path, or
 * FOTA_EBUSY when the store executor takes no more (done is not called
 * then). */
int fota_http_inner(struct fota_server *srv, int method, const char *path, const char *body,
                    const struct fota_key *key, fota_req_inner_cb done, void *ud);

/* Server-sent events (routes with FOTA_ROUTE_ANY_LOOP only; every call on
 * r's own loop): starts a text/event-stream reply (chunked). The
 * request stays open until fota_req_stream_end() or the peer closes;
 * closed(ud) is called once in either case (after which r is invalid). */
typedef void (*fota_stream_closed_cb)(void *ud);
int fota_req_stream_begin(struct fota_req *r, fota_stream_closed_cb closed, void *ud);
/* Sends bytes as one chunk: 0. A reader that does not keep up is cut off
 * (its connection closed, its unsent bytes freed, closed() run): when more
 * than FOTA_STREAM_BACKLOG_MAX bytes of its stream are unsent, or when the
 * unsent bytes of all streams exceed stream_memory (the streams furthest
 * behind go first). When r's own stream is cut the result is FOTA_ECLOSED:
 * r is invalid then and must not be used again. */
#define FOTA_STREAM_BACKLOG_MAX (4u << 20)
int fota_req_stream_send(struct fota_req *r, const char *data, size_t len);
/* Ends the stream (calls closed). */
void fota_req_stream_end(struct fota_req *r);

/* A body stream, for a long reply of known length sent in pieces (same
 * rules as event streams): the handler sets Content-Type, Content-Length
 * and its other headers on r->ev's output headers first; the reply gets
 * `Connection: close`, so a stream ended short of its length closes the
 * connection and the client sees a short body. 0, or FOTA_EBUSY after
 * replying 503 (r stays the caller's). Not for HEAD (nothing is sent). */
int fota_req_stream_begin_body(struct fota_req *r, fota_stream_closed_cb closed, void *ud);
/* A new buffer for the next piece of a body stream (the caller frees it):
 * on a plain connection a file segment added to it stays a sendfile
 * segment (no byte of the file enters user space); on TLS it is mapped.
 * NULL when out of memory. */
struct evbuffer *fota_req_stream_buffer(struct fota_req *r);
/* Moves buf's contents onto a body stream and calls sent(evcon, ud) on r's
 * loop once the connection has written everything queued; not if it closes
 * first (closed() runs then). Send the next piece from sent(): that bounds
 * what is queued. */
void fota_req_stream_send_buf(struct fota_req *r, struct evbuffer *buf,
                              void (*sent)(struct evhttp_connection *evcon, void *ud), void *ud);

struct bufferevent;
/* Writes a reply's queued header and body now, in this loop pass, instead
 * of waiting for the next pass's EPOLLOUT: the header (held by TCP_CORK if
 * the caller set it), then sendfile. What the socket does not take stays
 * queued and libevent sends it as before (its write callback then ends the
 * request); an error is left for libevent's next write to see. Call it after
 * evhttp_send_reply_end, so evhttp waits for the write callback: when
 * everything is written here it is triggered deferred (libevent's own write
 * would find nothing and not call it), which ends the request after the
 * handler has returned (the connection must outlive the handler). Plain
 * sockets only: with TLS (or any filter) it does nothing and libevent
 * writes. The output buffer's start is frozen for users of a socket
 * bufferevent; libevent's write unfreezes it around its write too. */
void fota_http_send_now(struct bufferevent *bev);

#endif
