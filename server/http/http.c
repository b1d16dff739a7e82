/* http.c - the HTTP server's life: evhttp set-up (one evhttp per loop,
 * SO_REUSEPORT sockets), route registration, dispatch (the request, its
 * route, main-loop routes called from worker loops, store routes handed to
 * the store executor), reloads and the
 * graceful drain on SIGTERM. The route table: http_route.c; replies:
 * http_reply.c; requests and streams: http_req.c; connection accounting:
 * http_conn.c. */
#include "http.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/queue.h>
#include <unistd.h>

#include "fota_str.h"
#include "http_errpage.h"
#include "http_int.h"
#include "http_web.h"
#include "log.h"
#include "loop.h"
#include "store_exec.h"
#include "xmalloc.h"

/* ----------------------------------------------------------------- routes */

int fota_http_route(struct fota_server *srv, int methods, const char *pattern,
                    fota_http_handler fn, void *ud)
{
    return fota_http_route_flags(srv, methods, pattern, fn, ud, 0);
}

int fota_http_route_flags(struct fota_server *srv, int methods, const char *pattern,
                          fota_http_handler fn, void *ud, int flags)
{
    if (!srv->http)
        return FOTA_EINVAL;
    return fota_http_routes_add(&srv->http->routes, methods, pattern, fn, ud, flags);
}

/* --------------------------------------------------------------- dispatch */

/* A main-loop route called from a worker loop: runs on the main thread while
 * the worker waits in fota_loop_call, so r->ev may be used directly. The
 * outcome is copied out before returning: once deferred, r belongs to the
 * handler (which may release it on the main loop at any time after). */
struct route_call {
    const struct fota_http_route_entry *rt;
    struct fota_req *r;
    int deferred;
};

static void route_call_main(void *arg)
{
    struct route_call *rc = arg;
    struct fota_req *r = rc->r;
    r->parked = 1;
    rc->rt->fn(r);
    rc->deferred = r->deferred;
    if (!r->deferred && !r->replied)
        fota_reply_error(r, 500, "internal error: no reply");
    /* From here on replies from the main loop travel to the worker. */
    r->parked = 0;
}

/* A refusal decided on the request's head (http_gate.c): the reply closes
 * the connection, whose unread body would otherwise be taken for the next
 * request. A 503 sheds load: the gate and the admission log those once a
 * second with a count, so the reply's own lines go to DEBUG. */
static void reply_refused(struct fota_req *r, int status, const char *why, unsigned retry_after)
{
    struct evkeyvalq *oh = evhttp_request_get_output_headers(r->ev);
    evhttp_add_header(oh, "Connection", "close");
    if (retry_after) {
        char ra[16];
        snprintf(ra, sizeof(ra), "%u", retry_after);
        evhttp_add_header(oh, "Retry-After", ra);
    }
    if (status < 500) {
        fota_reply_error(r, status, "%s", why);
        return;
    }
    r->quiet = 1;
    json_t *j = json_object();
    json_object_set_new(j, "message", json_string(why));
    fota_reply_json(r, status, j);
}

void fota_http__peer_text(struct evhttp_connection *evcon, char *buf, size_t n)
{
    char *addr = NULL;
    ev_uint16_t port = 0;
    if (evcon)
        evhttp_connection_get_peer(evcon, &addr, &port);
    if (addr)
        snprintf(buf, n, strchr(addr, ':') ? "[%s]:%u" : "%s:%u", addr, port);
    else
        snprintf(buf, n, "-");
}

/* The request as handlers see it: peer, ids, method, decoded path, query.
 * NULL after replying to a request refused on its head, a path or query
 * with %00 or a malformed query (r is released then). */
static struct fota_req *req_new(struct http_loop *hl, struct evhttp_request *ev)
{
    struct fota_http *h = hl->hh;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ev);
    struct evhttp_connection *evcon = evhttp_request_get_connection(ev);
    struct fota_req *r = fota_xcalloc(1, sizeof(*r));
    int refused = 0;
    unsigned retry_after = 0;
    char why[160];

    fota_http__peer_text(evcon, r->peer_buf, sizeof(r->peer_buf));
    if (evcon) {
        struct conn *c = fota_http__conn_track(hl, evcon);
        r->conn_id = c->id;
        refused = fota_http__gate_next(c, evcon, r, why, sizeof(why), &retry_after);
    }
    TAILQ_INIT(&r->query);
    r->ev = ev;
    r->srv = h->srv;
    r->loop = hl->loop;
    r->hloop = hl;
    r->id = __atomic_add_fetch(&h->next_req, 1, __ATOMIC_RELAXED);
    r->peer = r->peer_buf;
    const char *raw_path = uri ? evhttp_uri_get_path(uri) : NULL;
    r->path_buf = fota_http_route_path(raw_path);
    r->path = r->path_buf;
    const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
    int bad_query = q && evhttp_parse_query_str(q, &r->query) != 0;
    int ev_method = (int)evhttp_request_get_command(ev);
    /* Only a POST may tunnel another method: no query lookup for the others. */
    r->method = fota_http_route_method(ev_method, ev_method == EVHTTP_REQ_POST ?
                                       fota_req_query(r, "method") : NULL, &r->head);
    if (refused) {
        reply_refused(r, refused, why, retry_after);
        fota_req_release(r);
        return NULL;
    }
    if (fota_http_route_has_nul(raw_path) || fota_http_route_has_nul(q)) {
        fota_reply_error(r, 400, "%%00 (a NUL byte) in the path or query");
        fota_req_release(r);
        return NULL;
    }
    if (bad_query) {
        fota_reply_error(r, 400, "malformed query string");
        fota_req_release(r);
        return NULL;
    }
    return r;
}

/* No route for the path and method: 405 with Allow, the console for paths
 * outside /v1/, else 404. */
static void reply_unrouted(struct fota_req *r, int allowed)
{
    if (allowed) {
        char allow[64];
        snprintf(allow, sizeof(allow), "%s%s%s%s", (allowed & EVHTTP_REQ_GET) ? "GET, HEAD, " : "",
                 (allowed & EVHTTP_REQ_POST) ? "POST, " : "", (allowed & EVHTTP_REQ_PUT) ? "PUT, " : "",
                 (allowed & EVHTTP_REQ_DELETE) ? "DELETE, " : "");
        size_t al = strlen(allow);
        if (al >= 2)
            allow[al - 2] = '\0';
        evhttp_add_header(evhttp_request_get_output_headers(r->ev), "Allow", allow);
        fota_reply_error(r, 405, "method not allowed here");
    } else if (strncmp(r->path, "/v1/", 4) != 0 && strcmp(r->path, "/v1") != 0) {
        r->replied = 1;
        fota_http_web_serve(r->ev);
    } else {
        fota_reply_error(r, 404, "no such endpoint %s", r->path);
    }
}

/* A FOTA_ROUTE_STORE handler as a store job: on a store thread (its
 * replies travel to r's loop, http_reply.c) or inline on r's loop. */
struct store_call {
    fota_http_handler fn;
    struct fota_req *r;
};

static void store_job(struct fota_store *s, void *arg)
{
    struct store_call *sc = arg;
    struct fota_req *r = sc->r;
    (void)s;
    r->deferred = 0;
    fota_http__job_req = r;
    fota_http__job_deferred = 0;
    sc->fn(r);
    int deferred = fota_http__job_deferred;
    fota_http__job_req = NULL;
    if (!deferred) {   /* else r is another thread's already: not touched */
        if (!r->replied)
            fota_reply_error(r, 500, "internal error: no reply");
        fota_req_release(r);
    }
    free(sc);
}

/* Hands r to the store executor: 1 (r is the job's), or 0 after a 503 when
 * the executor takes no more. Without an executor the handler runs here. */
static int route_store(struct fota_server *srv, const struct fota_http_route_entry *rt,
                       struct fota_req *r)
{
    struct store_call *sc = fota_xmalloc(sizeof(*sc));
    *sc = (struct store_call){ rt->fn, r };
    fota_http__req_detach(r);
    r->deferred = 1;
    if (!srv->exec) {
        store_job(NULL, sc);
        return 1;
    }
    if (fota_store_submit(srv->exec, NULL, NULL, store_job, NULL, sc) == 0)
        return 1;
    free(sc);
    r->deferred = 0;
    fota_reply_error(r, 503, "store busy: too many requests wait for the store");
    return 0;
}

int fota_http_inner(struct fota_server *srv, int method, const char *path, const char *body,
                    const struct fota_key *key, fota_req_inner_cb done, void *ud)
{
    struct fota_http *h = srv->http;
    struct fota_req *r = fota_xcalloc(1, sizeof(*r));
    int allowed = 0;

    TAILQ_INIT(&r->query);
    TAILQ_INIT(&r->in_hdrs);
    r->srv = srv;
    r->method = method;
    r->id = __atomic_add_fetch(&h->next_req, 1, __ATOMIC_RELAXED);
    fota_str_copy(r->peer_buf, sizeof(r->peer_buf), "instance");
    r->peer = r->peer_buf;
    r->path_buf = fota_xstrdup(path);
    r->path = r->path_buf;
    r->body_len = body ? strlen(body) : 0;
    r->body = r->body_len ? fota_xstrdup(body) : NULL;
    r->detached = 1;   /* reads its copies, as a store route's request */
    __atomic_add_fetch(&h->detached, 1, __ATOMIC_RELAXED);
    r->key_pre = 1;
    r->key_pre_val = *key;
    r->inner = done;
    r->inner_ud = ud;
    const struct fota_http_route_entry *rt =
        fota_http_routes_find(&h->routes, r->path, r->method, r->caps, &r->ncaps, &allowed);
    if (!rt) {
        fota_req_release(r);
        return FOTA_ENOENT;
    }
    r->ud = rt->ud;
    if (rt->flags & FOTA_ROUTE_STORE) {
        struct store_call *sc = fota_xmalloc(sizeof(*sc));
        *sc = (struct store_call){ rt->fn, r };
        r->deferred = 1;
        if (!srv->exec) {
            store_job(NULL, sc);
            return 0;
        }
        if (fota_store_submit(srv->exec, NULL, NULL, store_job, NULL, sc) == 0)
            return 0;
        free(sc);
        fota_req_release(r);
        return FOTA_EBUSY;
    }
    rt->fn(r);
    if (r->deferred)
        return 0;
    if (!r->replied)
        fota_reply_error(r, 500, "internal error: no reply");
    fota_req_release(r);
    return 0;
}

/* Runs the route's handler: here for FOTA_ROUTE_ANY_LOOP routes and on the
 * main loop, as a store job for FOTA_ROUTE_STORE routes, else on the main
 * loop while this worker waits. 1 when the handler deferred the reply (it
 * owns r now). */
static int route_run(struct http_loop *hl, const struct fota_http_route_entry *rt,
                     struct fota_req *r)
{
    struct fota_loop *main_loop = hl->hh->srv->loops[0];
    r->ud = rt->ud;
    if (rt->flags & FOTA_ROUTE_STORE)
        return route_store(hl->hh->srv, rt, r);
    if (!(rt->flags & FOTA_ROUTE_ANY_LOOP) && main_loop && hl->loop != main_loop) {
        struct route_call rc = { rt, r, 0 };
        if (fota_loop_call(main_loop, route_call_main, &rc) != 0) {
            fota_reply_error(r, 503, "fotad is shutting down");
            return 0;
        }
        return rc.deferred;
    }
    rt->fn(r);
    if (r->deferred)
        return 1;
    if (!r->replied)
        fota_reply_error(r, 500, "internal error: no reply");
    return 0;
}

/* After the handler: a started stream keeps r (freed on close); everything
 * else ends here. */
static void dispatch_end(struct http_loop *hl, struct fota_req *r)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(r->ev);
    if (evcon && fota_http__conn_track(hl, evcon)->stream == r)
        return;
    fota_req_release(r);
}

/* A route that runs on a loop, whose request's key the caches do not hold
 * (a key not seen since the last catalog change): the key is looked up in a
 * store job first, the handler runs in its continuation on r's loop and
 * finds it in r (fota_req_auth), so no loop waits for the store. */
struct key_first {
    struct http_loop *hl;
    const struct fota_http_route_entry *rt;
    struct fota_req *r;
    const char *k;     /* in r's Authorization header */
    size_t klen;
};

static void key_first_job(struct fota_store *s, void *arg)
{
    struct key_first *kf = arg;
    struct fota_req *r = kf->r;
    (void)s;
    r->key_pre_rc = fota_server_key_lookup(r->srv, kf->k, kf->klen, &r->key_pre_val);
    r->key_pre = 1;
}

static void key_first_done(void *arg, int cancelled)
{
    struct key_first *kf = arg;
    struct fota_req *r = kf->r;
    if (cancelled) {   /* the loop stopped: no reply, r's connection goes with it */
        fota_req_release(r);
    } else {
        r->deferred = 0;
        if (!route_run(kf->hl, kf->rt, r))
            dispatch_end(kf->hl, r);
    }
    free(kf);
}

/* 1 when r waits for its key's lookup (key_first), 2 when it was refused
 * (the executor takes no more), else 0: run the route. */
static int key_first(struct http_loop *hl, const struct fota_http_route_entry *rt,
                     struct fota_req *r)
{
    struct fota_server *srv = hl->hh->srv;
    const char *k = NULL;
    size_t klen = 0;
    struct fota_key key;

    if ((rt->flags & FOTA_ROUTE_STORE) || !srv->exec || !fota_store_exec_threaded(srv->exec))
        return 0;   /* a store job already, or a store a loop may call */
    if (fota_req_key(r, &k, &klen))
        return 0;   /* no key: the handler's fota_req_auth answers 401 */
    int rc = fota_server_key_cached(srv, k, klen, &key, 0);
    if (rc != FOTA_EAGAIN) {
        /* The handler's fota_req_auth takes this answer: a catalog write on another
         * thread can move the store's generation before the handler runs, and a
         * lookup of its own would then miss the caches and read the store here. */
        r->key_pre = 1;
        r->key_pre_rc = rc;
        if (rc == 0)
            r->key_pre_val = key;
        return 0;
    }
    struct key_first *kf = fota_xmalloc(sizeof(*kf));
    *kf = (struct key_first){ hl, rt, r, k, klen };
    fota_req_defer(r);
    if (fota_store_submit(srv->exec, NULL, r->loop, key_first_job, key_first_done, kf) == 0)
        return 1;
    free(kf);
    r->deferred = 0;
    fota_reply_error(r, 503, "store busy: too many requests wait for the store");
    return 2;
}

static void dispatch(struct evhttp_request *ev, void *arg)
{
    struct http_loop *hl = arg;
    struct fota_req *r = req_new(hl, ev);
    int allowed;
    if (!r)
        return;
    const struct fota_http_route_entry *rt =
        fota_http_routes_find(&hl->hh->routes, r->path, r->method, r->caps, &r->ncaps, &allowed);
    int waits = 0;
    if (!rt)
        reply_unrouted(r, allowed);
    else if ((waits = key_first(hl, rt, r)) == 1 || (!waits && route_run(hl, rt, r)))
        return;   /* deferred: the handler releases r (fota_req_release) */
    dispatch_end(hl, r);
}

/* ------------------------------------------------------------ life cycle */

static struct evhttp *make_evhttp(struct http_loop *hl, int tls)
{
    struct evhttp *e = evhttp_new(fota_loop_base(hl->loop));
    if (!e)
        return NULL;
    evhttp_set_allowed_methods(e, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                  EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS);
    evhttp_set_bevcb(e, tls ? fota_http__tls_bevcb : fota_http__plain_bevcb, hl);
    evhttp_set_gencb(e, dispatch, hl);
    evhttp_set_default_content_type(e, "application/json");
    /* No EVHTTP_SERVER_LINGERING_CLOSE: it answers an oversized body only
     * after reading all of it (never, for a huge declared length). The 413
     * goes out at once and http_errpage.c drains the rest, bounded. */
    return e;
}

/* Applies hl's copy of the reloadable settings (workers never read srv->conf,
 * which SIGHUP rewrites on the main thread). */
static void loop_reload(struct http_loop *hl)
{
    struct evhttp *es[2] = { hl->plain, hl->tls };
    for (int i = 0; i < 2; i++) {
        if (!es[i])
            continue;
        /* Bodies beyond the small ones are uploads: the gate raises the
         * limit to max_upload for each one it lets in (http_gate.c). */
        evhttp_set_max_body_size(es[i], (ev_ssize_t)FOTA_HTTP_SMALL_BODY);
        evhttp_set_max_headers_size(es[i], 16384);
        evhttp_set_timeout(es[i], (int)hl->http_timeout);
    }
}

static void loop_free(struct http_loop *hl)
{
    if (!hl)
        return;
    fota_http__quick_free(hl);
    /* evhttp_free closes every connection; streams' closed callbacks run. */
    if (hl->tls)
        evhttp_free(hl->tls);
    if (hl->plain)
        evhttp_free(hl->plain);
    fota_http_errpages_free(&hl->errpages);
    while (hl->fresh)
        fota_http__fresh_unlink(hl, hl->fresh);
    fota_http__admit_free(hl);
    if (hl->sweep)
        event_free(hl->sweep);
    for (unsigned b = 0; b < CONN_BUCKETS; b++) {
        struct conn *c = hl->buckets[b];
        while (c) {
            struct conn *next = c->next;
            /* Its bufferevent is gone with evhttp: only the memory. */
            fota_http__body_release(hl->hh, c->g.reserved);
            free(c);
            c = next;
        }
    }
    if (hl->fd_plain >= 0)
        close(hl->fd_plain);
    if (hl->fd_tls >= 0)
        close(hl->fd_tls);
    free(hl);
}

static struct http_loop *loop_new(struct fota_http *h, struct fota_loop *loop)
{
    const struct fota_http_conf *c = fota_http_conf(h->srv);
    struct http_loop *hl = fota_xcalloc(1, sizeof(*hl));
    hl->hh = h;
    hl->loop = loop;
    hl->fd_plain = hl->fd_tls = -1;
    hl->max_upload = c->max_upload;
    hl->http_timeout = c->http_timeout;
    return hl;
}

struct fota_http *fota_http_new(struct fota_server *srv)
{
    struct fota_http *h = fota_xcalloc(1, sizeof(*h));
    h->srv = srv;
    srv->http = h;
    h->upload_memory = fota_http_conf(srv)->upload_memory;
    h->stream_memory = fota_http_conf(srv)->stream_memory;
    h->max_per_addr = fota_http_conf(srv)->max_per_addr;
    fota_http__trim_init(h);
    int n = srv->nloops > 0 ? srv->nloops : 1;
    for (int i = 0; i < n; i++) {
        h->loops[i] = loop_new(h, srv->loops[i]);
        h->nloops = i + 1;
    }
    struct http_loop *m = h->loops[0];
    m->plain = make_evhttp(m, 0);
    m->sweep = evtimer_new(srv->base, fota_http__fresh_sweep, m);
    fota_http__quick_init(m, srv->base);
    loop_reload(m);
    return h;
}

struct reload_vals {
    struct http_loop *hl;
    uint64_t max_upload;
    unsigned http_timeout;
};

static void reload_job(void *arg, int cancelled)
{
    struct reload_vals *v = arg;
    if (!cancelled) {
        v->hl->max_upload = v->max_upload;
        v->hl->http_timeout = v->http_timeout;
        loop_reload(v->hl);
    }
    free(v);
}

void fota_http_reload(struct fota_http *h)
{
    const struct fota_http_conf *c = fota_http_conf(h->srv);
    __atomic_store_n(&h->upload_memory, c->upload_memory, __ATOMIC_RELAXED);
    __atomic_store_n(&h->stream_memory, c->stream_memory, __ATOMIC_RELAXED);
    __atomic_store_n(&h->max_per_addr, c->max_per_addr, __ATOMIC_RELAXED);
    for (int i = 0; i < h->nloops; i++) {
        struct http_loop *hl = h->loops[i];
        if (i > 0 && h->srv->workers_running >= i) {
            struct reload_vals *v = fota_xmalloc(sizeof(*v));
            *v = (struct reload_vals){ hl, c->max_upload, c->http_timeout };
            if (fota_loop_post(hl->loop, reload_job, v) != 0)
                free(v);
            continue;
        }
        hl->max_upload = c->max_upload;
        hl->http_timeout = c->http_timeout;
        loop_reload(hl);
    }
}

static int accept_on(struct http_loop *hl, struct evhttp *e, int *fdp, const char *proto)
{
    struct evhttp_bound_socket *bs = evhttp_accept_socket_with_handle(e, *fdp);
    if (!bs) {
        FOTA_ERROR("cannot accept proto=%s loop=%d", proto, fota_loop_index(hl->loop));
        return FOTA_EIO;
    }
    *fdp = -1;   /* evhttp owns it */
    if (hl->nbound < MAX_LISTENERS) {
        hl->bound_on[hl->nbound] = e;
        hl->bound[hl->nbound++] = bs;
    }
    return 0;
}

/* On the loop's own thread: its evhttp servers on the sockets bound for it. */
static int loop_accept(struct http_loop *hl)
{
    int r = 0;
    if (hl->fd_plain >= 0) {
        if (!hl->plain && !(hl->plain = make_evhttp(hl, 0)))
            return FOTA_ENOMEM;
        r = accept_on(hl, hl->plain, &hl->fd_plain, "http");
    }
    if (r == 0 && hl->fd_tls >= 0) {
        if (!hl->tls && !(hl->tls = make_evhttp(hl, 1)))
            return FOTA_ENOMEM;
        r = accept_on(hl, hl->tls, &hl->fd_tls, "https");
    }
    if (!hl->sweep)
        hl->sweep = evtimer_new(fota_loop_base(hl->loop), fota_http__fresh_sweep, hl);
    if (r == 0)
        r = fota_http__quick_init(hl, fota_loop_base(hl->loop));
    loop_reload(hl);
    if (r == 0 && !hl->guard)
        r = fota_http__admit_init(hl);
    return hl->sweep ? r : FOTA_ENOMEM;
}

void fota_http_loop_start(struct fota_http *h, struct fota_loop *loop)
{
    int i = fota_loop_index(loop);
    if (!h || i <= 0 || i >= h->nloops)
        return;
    if (loop_accept(h->loops[i]) != 0)
        FOTA_ERROR("http worker loop=%d cannot serve", i);
}

int fota_http_listen(struct fota_http *h)
{
    const struct fota_http_conf *c = fota_http_conf(h->srv);
    int reuse = h->nloops > 1;
    int tls = h->srv->ssl_ctx && c->https_port != FOTA_PORT_OFF;

    for (int k = 0; k < 2; k++) {
        int port = k == 0 ? c->http_port : c->https_port;
        const char *proto = k == 0 ? "http" : "https";
        if (k == 0 ? c->http_port == FOTA_PORT_OFF : !tls)
            continue;
        if (reuse) {
            /* SO_REUSEPORT would let our sockets join another process's
             * group on this port (same user) and silently split its traffic
             * with it: a plain bind first fails if anyone holds the port. */
            int bound = port;
            int probe = fota_server_bind_opt(h->srv, proto, port, &bound, 0, 1);
            if (probe < 0)
                return probe;
            close(probe);
            port = bound;
        }
        for (int i = 0; i < h->nloops; i++) {
            int bound = port;
            int fd = fota_server_bind_opt(h->srv, proto, port, &bound, reuse, i > 0);
            if (fd < 0)
                return fd;
            port = bound;   /* the other loops share the (ephemeral) port */
            /* HTTP clients speak first: the kernel completes the accept only
             * once the request's first bytes are in (nginx's "deferred"), so
             * the loop reads at once instead of waiting one more pass, and
             * idle connects never reach fotad. */
            int defer = 5;
            setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, sizeof defer);
            if (k == 0) {
                h->loops[i]->fd_plain = fd;
                h->srv->http_port = bound;   /* the cluster's default instance name */
            } else {
                h->loops[i]->fd_tls = fd;
            }
        }
    }
    return loop_accept(h->loops[0]);
}

static void loop_drain(struct http_loop *h);

static void drain_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    loop_drain(arg);
}

/* 1 while a listener still has connections waiting in its backlog: they
 * connected before SIGTERM, so they are accepted (and served) first. */
static int backlog_waiting(struct http_loop *h)
{
    for (int i = 0; i < h->nbound; i++) {
        struct pollfd p = { .fd = evhttp_bound_socket_get_fd(h->bound[i]), .events = POLLIN };
        if (poll(&p, 1, 0) == 1 && (p.revents & POLLIN))
            return 1;
    }
    return 0;
}

static void loop_drain(struct http_loop *h)
{
    if (h->draining && !h->nbound_pending)
        return;
    h->draining = 1;
    if (h->nbound && backlog_waiting(h) && h->drain_tries++ < 50) {
        static const struct timeval tv = { 0, 2000 };
        h->nbound_pending = 1;
        loop_busy_update(h);
        if (event_base_once(fota_loop_base(h->loop), -1, EV_TIMEOUT, drain_retry, h, &tv) == 0)
            return;
    }
    h->nbound_pending = 0;
    fota_http__admit_close(h);   /* no back-off enables the listeners again */
    for (int i = 0; i < h->nbound; i++)
        evhttp_del_accept_socket(h->bound_on[i], h->bound[i]);
    h->nbound = 0;
    for (unsigned b = 0; b < CONN_BUCKETS; b++) {
        struct conn *c = h->buckets[b];
        while (c) {
            struct conn *next = c->next;
            /* Idle keep-alive connections (and ended streams) close within
             * a second; one still receiving a request keeps going. */
            evhttp_connection_set_timeout(c->evcon, 1);
            if (c->stream)
                fota_req_stream_end(c->stream);
            c = next;
        }
    }
    loop_busy_update(h);
}

static void drain_job(void *arg, int cancelled)
{
    if (!cancelled)
        loop_drain(arg);
}

void fota_http_drain(struct fota_http *h)
{
    if (http_draining(h))
        return;
    __atomic_store_n(&h->draining, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < h->nloops; i++) {
        struct http_loop *hl = h->loops[i];
        if (i > 0 && fota_loop_current() != hl->loop) {
            if (fota_loop_post(hl->loop, drain_job, hl) == 0)
                continue;
        }
        loop_drain(hl);
    }
}

int fota_http_busy(const struct fota_http *h)
{
    if (!h)
        return 0;
    for (int i = 0; i < h->nloops; i++)
        if (__atomic_load_n(&h->loops[i]->busy, __ATOMIC_ACQUIRE))
            return 1;
    return __atomic_load_n(&h->detached, __ATOMIC_RELAXED) > 0;
}

void fota_http_free(struct fota_http *h)
{
    if (!h)
        return;
    h->srv->http = NULL;
    for (int i = h->nloops; i-- > 0;)
        loop_free(h->loops[i]);
    if (h->trim)
        event_free(h->trim);
    fota_http_routes_free(&h->routes);
    for (int i = 0; i < h->nquick; i++)
        free(h->quick[i].pattern);
    free(h);
}
