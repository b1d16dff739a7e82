/* http.c - evhttp set-up (one evhttp per loop, SO_REUSEPORT sockets), the
 * route table, dispatch (method tunnelling, HEAD, trailing slashes, main-loop
 * routes called from worker loops), JSON replies (sent on the request's own
 * loop), key auth, server-sent-event streams and the graceful drain on SIGTERM
 * (connection accounting itself: http_conn.c). */
#include "http.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <inttypes.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/queue.h>
#include <unistd.h>

#include "http_errpage.h"
#include "http_int.h"
#include "http_web.h"
#include "log.h"
#include "loop.h"
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
    struct fota_http *h = srv->http;
    struct route *rt;

    if (!h || !pattern || pattern[0] != '/' || !fn)
        return FOTA_EINVAL;
    for (rt = h->routes; rt; rt = rt->next)
        if ((rt->methods & methods) && strcmp(rt->pattern, pattern) == 0)
            return FOTA_EEXIST;   /* one owner per route and method */
    rt = fota_xcalloc(1, sizeof(*rt));
    rt->pattern = fota_xstrdup(pattern);
    rt->methods = methods;
    rt->flags = flags;
    rt->fn = fn;
    rt->ud = ud;
    rt->next = h->routes;
    h->routes = rt;
    return 0;
}

/* Matches path against pattern ('*' = one non-empty segment, trailing '/'
 * optional on both). Captures go to r->caps. */
static int route_match(const char *pat, const char *path, struct fota_req *r)
{
    int ncaps = 0;
    const char *p = pat, *s = path;

    for (;;) {
        /* Both at a segment start (after '/'). */
        while (*p == '/')
            p++;
        while (*s == '/')
            s++;
        if (*p == '\0' || *s == '\0')
            break;
        const char *pe = strchr(p, '/'), *se = strchr(s, '/');
        size_t pl = pe ? (size_t)(pe - p) : strlen(p);
        size_t sl = se ? (size_t)(se - s) : strlen(s);
        if (pl == 1 && *p == '*') {
            if (ncaps >= FOTA_ROUTE_MAX_CAPS || sl >= FOTA_ROUTE_CAP_LEN)
                return 0;
            memcpy(r->caps[ncaps], s, sl);
            r->caps[ncaps][sl] = '\0';
            ncaps++;
        } else if (pl != sl || memcmp(p, s, pl) != 0) {
            return 0;
        }
        p += pl;
        s += sl;
    }
    if (*p != '\0' || *s != '\0')
        return 0;
    /* Reject "//" inside a path? Tolerated: clients that double slashes still match. */
    r->ncaps = ncaps;
    return 1;
}

/* ---------------------------------------------------------------- replies */

static void log_reply(struct fota_req *r, int code, size_t len)
{
    int lvl = r->quiet ? FOTA_LOG_DEBUG : code >= 500 ? FOTA_LOG_ERROR : FOTA_LOG_INFO;
    if (lvl < FOTA_LOG_THRESHOLD())
        return;
    char qp[256];
    char dev[64] = "";
    if (r->dev_id > 0)
        snprintf(dev, sizeof(dev), " dev=%lld", (long long)r->dev_id);
    if (r->loop && fota_loop_index(r->loop) > 0)
        snprintf(dev + strlen(dev), sizeof(dev) - strlen(dev), " loop=%d",
                 fota_loop_index(r->loop));
    fota_log_write(lvl, "http req=%" PRIu64 " method=%s path=%s status=%d bytes=%zu peer=%s "
                   "conn=%" PRIu64 "%s",
                   r->id, evhttp_request_get_command(r->ev) == EVHTTP_REQ_HEAD ? "HEAD"
                   : r->method == EVHTTP_REQ_GET ? "GET" : r->method == EVHTTP_REQ_POST ? "POST"
                   : r->method == EVHTTP_REQ_PUT ? "PUT" : r->method == EVHTTP_REQ_DELETE ? "DELETE"
                   : "OTHER",
                   fota_log_quote(r->path ? r->path : "?", qp, sizeof(qp)), code, len,
                   r->peer ? r->peer : "-", r->conn_id, dev);
}

/* Sends a reply on the request's own loop thread. */
static void send_reply(struct evhttp_request *ev, int code, const char *content_type,
                       struct evbuffer *body, int head, int draining)
{
    struct evkeyvalq *oh = evhttp_request_get_output_headers(ev);
    char cl[32];
    size_t len = body ? evbuffer_get_length(body) : 0;

    if (content_type && !evhttp_find_header(oh, "Content-Type"))
        evhttp_add_header(oh, "Content-Type", content_type);
    /* evhttp omits Content-Length on HTTP/1.0 close replies and would send a
     * HEAD body: set the length ourselves and drop the body for HEAD. */
    evhttp_remove_header(oh, "Content-Length");
    snprintf(cl, sizeof(cl), "%zu", len);
    evhttp_add_header(oh, "Content-Length", cl);
    if (draining)
        evhttp_add_header(oh, "Connection", "close");
    if (head || !body) {
        evhttp_send_reply(ev, code, NULL, NULL);
    } else {
        evhttp_send_reply(ev, code, NULL, body);
    }
}

/* A reply made on another thread (a deferred reply finished on the main
 * loop for a request of a worker loop), carried to the request's loop. */
struct far_reply {
    struct evhttp_request *ev;
    int code, head;
    const char *content_type;      /* static strings only */
    char ct_buf[96];
    struct evbuffer *body;
    struct fota_http *h;
};

static void far_reply_job(void *arg, int cancelled)
{
    struct far_reply *f = arg;
    if (!cancelled)
        send_reply(f->ev, f->code, f->content_type ? f->ct_buf : NULL, f->body, f->head,
                   http_draining(f->h));
    if (f->body)
        evbuffer_free(f->body);
    free(f);
}

/* 1 if r may be touched from this thread: its own loop, or a main-loop route
 * running while its worker waits (fota_loop_call). */
static int req_on_own_loop(const struct fota_req *r)
{
    return r->parked || !r->loop || fota_loop_current() == r->loop;
}

void fota_reply_raw(struct fota_req *r, int code, const char *content_type, struct evbuffer *body)
{
    size_t len = body ? evbuffer_get_length(body) : 0;

    if (r->replied)
        return;
    r->replied = 1;
    log_reply(r, code, len);
    if (req_on_own_loop(r)) {
        send_reply(r->ev, code, content_type, body, r->head, http_draining(r->srv->http));
        return;
    }
    struct far_reply *f = fota_xcalloc(1, sizeof(*f));
    f->ev = r->ev;
    f->code = code;
    f->head = r->head;
    f->h = r->srv->http;
    if (content_type) {
        snprintf(f->ct_buf, sizeof(f->ct_buf), "%s", content_type);
        f->content_type = f->ct_buf;
    }
    if (body && len) {
        f->body = evbuffer_new();
        if (f->body)
            evbuffer_add_buffer(f->body, body);
    } else if (body) {
        f->body = evbuffer_new();
    }
    if (fota_loop_post(r->loop, far_reply_job, f) != 0) {
        if (f->body)
            evbuffer_free(f->body);
        free(f);
    }
}

void fota_reply_json(struct fota_req *r, int code, json_t *json)
{
    struct evbuffer *b;
    char *text;

    if (!json)
        json = json_object();
    json_object_set_new(json, "status", json_integer(code));
    text = json_dumps(json, JSON_SORT_KEYS);
    json_decref(json);
    b = evbuffer_new();
    if (!text || !b) {
        free(text);
        if (b)
            evbuffer_free(b);
        fota_reply_raw(r, 500, "application/json", NULL);
        return;
    }
    evbuffer_add(b, text, strlen(text));
    evbuffer_add(b, "\n", 1);
    free(text);
    fota_reply_raw(r, code, "application/json", b);
    evbuffer_free(b);
}

void fota_reply_error(struct fota_req *r, int code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (code >= 400 && FOTA_LOG_THRESHOLD() <= FOTA_LOG_INFO) {
        char q[600];
        FOTA_LOG(code >= 500 ? FOTA_LOG_ERROR : FOTA_LOG_INFO, "http refused req=%" PRIu64
                 " status=%d message=%s conn=%" PRIu64, r->id, code,
                 fota_log_quote(msg, q, sizeof(q)), r->conn_id);
    }
    json_t *j = json_object();
    json_object_set_new(j, "message", json_string(msg));
    fota_reply_json(r, code, j);
}

int fota_http_status_for(int err)
{
    switch (err) {
    case 0: return 200;
    case FOTA_ENOENT: return 404;
    case FOTA_EEXIST: return 409;
    case FOTA_EINVAL: return 400;
    case FOTA_EAUTH: return 401;
    case FOTA_EPERM: return 403;
    case FOTA_ETOOBIG: return 413;
    case FOTA_EBUSY: return 503;
    default: return 500;
    }
}

void fota_reply_status(struct fota_req *r, int err, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    int code = fota_http_status_for(err);
    switch (err) {
    case FOTA_ENOENT: fota_reply_error(r, code, "no %s", what); return;
    case FOTA_EEXIST: fota_reply_error(r, code, "%s already exists", what); return;
    case FOTA_EBUSY: fota_reply_error(r, code, "%s is busy", what); return;
    case FOTA_EINVAL: fota_reply_error(r, code, "invalid %s", what); return;
    default: fota_reply_error(r, code, "store error %s", fota_errname(err)); return;
    }
}

/* ---------------------------------------------------------------- streams */

int fota_req_stream_begin(struct fota_req *r, fota_stream_closed_cb closed, void *ud)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(r->ev);
    struct http_loop *hl = r->hloop;
    struct conn *c = evcon && hl && !r->parked ? fota_http__conn_track(hl, evcon) : NULL;
    struct evkeyvalq *oh = evhttp_request_get_output_headers(r->ev);

    if (!c || c->stream || http_draining(r->srv->http) || hl->draining) {
        fota_reply_error(r, 503, "cannot stream now");
        return FOTA_EBUSY;
    }
    evhttp_add_header(oh, "Content-Type", "text/event-stream");
    evhttp_add_header(oh, "Cache-Control", "no-cache");
    r->replied = 1;
    c->stream = r;
    c->closed = closed;
    c->closed_ud = ud;
    log_reply(r, 200, 0);
    evhttp_send_reply_start(r->ev, 200, "OK");
    return 0;
}

int fota_req_stream_send(struct fota_req *r, const char *data, size_t len)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(r->ev);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    /* A reader that does not keep up is cut off rather than buffered forever. */
    if (bev && evbuffer_get_length(bufferevent_get_output(bev)) > FOTA_STREAM_BACKLOG_MAX) {
        FOTA_WARN("http stream too slow, closing req=%" PRIu64 " conn=%" PRIu64 " backlog=%zu",
                  r->id, r->conn_id, evbuffer_get_length(bufferevent_get_output(bev)));
        fota_req_stream_end(r);
        return FOTA_ECLOSED;
    }
    struct evbuffer *b = evbuffer_new();
    if (!b)
        return FOTA_ENOMEM;
    evbuffer_add(b, data, len);
    evhttp_send_reply_chunk(r->ev, b);
    evbuffer_free(b);
    return 0;
}

void fota_req_stream_end(struct fota_req *r)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(r->ev);
    struct conn *c = evcon && r->hloop ? fota_http__conn_track(r->hloop, evcon) : NULL;
    fota_stream_closed_cb cb = NULL;
    void *ud = NULL;

    if (c && c->stream == r) {
        cb = c->closed;
        ud = c->closed_ud;
        c->stream = NULL;
    }
    evhttp_send_reply_end(r->ev);
    fota_req_release(r);
    if (cb)
        cb(ud);
}

/* --------------------------------------------------------------- dispatch */

/* A main-loop route called from a worker loop: runs on the main thread while
 * the worker waits in fota_loop_call, so r->ev may be used directly. The
 * outcome is copied out before returning: once deferred, r belongs to the
 * handler (which may release it on the main loop at any time after). */
struct route_call {
    struct route *rt;
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
    if (!r->deferred) {
        if (!r->replied)
            fota_reply_error(r, 500, "internal error: no reply");
        r->parked = 0;
        return;
    }
    /* From here on replies from the main loop travel to the worker. */
    r->parked = 0;
}

static void dispatch(struct evhttp_request *ev, void *arg)
{
    struct http_loop *hl = arg;
    struct fota_http *h = hl->hh;
    struct fota_req *r;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ev);
    struct evhttp_connection *evcon = evhttp_request_get_connection(ev);
    char *decoded = NULL;
    int allowed = 0, matched = 0;

    r = fota_xcalloc(1, sizeof(*r));
    snprintf(r->peer_buf, sizeof(r->peer_buf), "-");
    if (evcon) {
        char *addr = NULL;
        ev_uint16_t port = 0;
        evhttp_connection_get_peer(evcon, &addr, &port);
        if (addr)
            snprintf(r->peer_buf, sizeof(r->peer_buf), strchr(addr, ':') ? "[%s]:%u" : "%s:%u",
                     addr, port);
    }
    TAILQ_INIT(&r->query);
    if (evcon) {
        struct conn *c = fota_http__conn_track(hl, evcon);
        r->conn_id = c ? c->id : 0;
    }
    r->ev = ev;
    r->srv = h->srv;
    r->loop = hl->loop;
    r->hloop = hl;
    r->id = __atomic_add_fetch(&h->next_req, 1, __ATOMIC_RELAXED);
    r->peer = r->peer_buf;
    r->method = (int)evhttp_request_get_command(ev);
    if (r->method == EVHTTP_REQ_HEAD) {
        r->head = 1;
        r->method = EVHTTP_REQ_GET;
    }
    const char *rawpath = uri ? evhttp_uri_get_path(uri) : NULL;
    decoded = evhttp_uridecode(rawpath && *rawpath ? rawpath : "/", 0, NULL);
    r->path_buf = decoded;
    r->path = decoded ? decoded : "/";
    const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
    if (q && evhttp_parse_query_str(q, &r->query) != 0) {
        fota_reply_error(r, 400, "malformed query string");
        goto out;
    }
    if (r->method == EVHTTP_REQ_POST) {
        const char *m = fota_req_query(r, "method");
        if (m && strcasecmp(m, "PUT") == 0)
            r->method = EVHTTP_REQ_PUT;
        else if (m && strcasecmp(m, "DELETE") == 0)
            r->method = EVHTTP_REQ_DELETE;
    }
    for (struct route *rt = h->routes; rt; rt = rt->next) {
        if (!route_match(rt->pattern, r->path, r))
            continue;
        matched = 1;
        allowed |= rt->methods;
        if (!(rt->methods & r->method))
            continue;
        r->ud = rt->ud;
        if (!(rt->flags & FOTA_ROUTE_ANY_LOOP) && h->srv->loops[0] &&
            hl->loop != h->srv->loops[0]) {
            struct route_call rc = { rt, r, 0 };
            if (fota_loop_call(h->srv->loops[0], route_call_main, &rc) != 0) {
                fota_reply_error(r, 503, "fotad is shutting down");
                goto out;
            }
            if (rc.deferred)
                return;   /* the handler owns r now (fota_req_release) */
            goto out;
        }
        rt->fn(r);
        if (r->deferred)
            return;   /* the handler owns r now (fota_req_release) */
        if (!r->replied)
            fota_reply_error(r, 500, "internal error: no reply");
        goto out;
    }
    if (matched) {
        char allow[64];
        snprintf(allow, sizeof(allow), "%s%s%s%s", (allowed & EVHTTP_REQ_GET) ? "GET, HEAD, " : "",
                 (allowed & EVHTTP_REQ_POST) ? "POST, " : "", (allowed & EVHTTP_REQ_PUT) ? "PUT, " : "",
                 (allowed & EVHTTP_REQ_DELETE) ? "DELETE, " : "");
        size_t al = strlen(allow);
        if (al >= 2)
            allow[al - 2] = '\0';
        evhttp_add_header(evhttp_request_get_output_headers(ev), "Allow", allow);
        fota_reply_error(r, 405, "method not allowed here");
    } else if (strncmp(r->path, "/v1/", 4) != 0 && strcmp(r->path, "/v1") != 0) {
        r->replied = 1;
        fota_http_web_serve(ev);
    } else {
        fota_reply_error(r, 404, "no such endpoint %s", r->path);
    }
out:
    /* A started stream keeps r (freed on close); everything else ends here. */
    if (evcon) {
        struct conn *c = fota_http__conn_track(hl, evcon);
        if (c && c->stream == r)
            return;
    }
    fota_req_release(r);
}

void fota_req_defer(struct fota_req *r)
{
    r->deferred = 1;
}

void fota_req_release(struct fota_req *r)
{
    if (!r)
        return;
    evhttp_clear_headers(&r->query);
    free(r->path_buf);
    free(r);
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
        evhttp_set_max_body_size(es[i], (ev_ssize_t)hl->max_upload);
        evhttp_set_max_headers_size(es[i], 16384);
        evhttp_set_timeout(es[i], (int)hl->http_timeout);
    }
}

static void loop_free(struct http_loop *hl)
{
    if (!hl)
        return;
    /* evhttp_free closes every connection; streams' closed callbacks run. */
    if (hl->tls)
        evhttp_free(hl->tls);
    if (hl->plain)
        evhttp_free(hl->plain);
    fota_http_errpages_free(&hl->errpages);
    while (hl->fresh)
        fota_http__fresh_unlink(hl, hl->fresh);
    if (hl->sweep)
        event_free(hl->sweep);
    for (unsigned b = 0; b < CONN_BUCKETS; b++) {
        struct conn *c = hl->buckets[b];
        while (c) {
            struct conn *next = c->next;
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
    hl->errpages.max_upload = &hl->max_upload;
    return hl;
}

struct fota_http *fota_http_new(struct fota_server *srv)
{
    struct fota_http *h = fota_xcalloc(1, sizeof(*h));
    h->srv = srv;
    srv->http = h;
    int n = srv->nloops > 0 ? srv->nloops : 1;
    for (int i = 0; i < n; i++) {
        h->loops[i] = loop_new(h, srv->loops[i]);
        h->nloops = i + 1;
    }
    struct http_loop *m = h->loops[0];
    m->plain = make_evhttp(m, 0);
    m->sweep = evtimer_new(srv->base, fota_http__fresh_sweep, m);
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
    loop_reload(hl);
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
            if (k == 0)
                h->loops[i]->fd_plain = fd;
            else
                h->loops[i]->fd_tls = fd;
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
    return 0;
}

void fota_http_free(struct fota_http *h)
{
    if (!h)
        return;
    h->srv->http = NULL;
    for (int i = h->nloops; i-- > 0;)
        loop_free(h->loops[i]);
    while (h->routes) {
        struct route *n = h->routes->next;
        free(h->routes->pattern);
        free(h->routes);
        h->routes = n;
    }
    free(h);
}
