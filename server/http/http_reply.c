/* http_reply.c - replies of the HTTP server (http.h): JSON bodies with
 * "status", error replies and the one mapping of FOTA_E* codes to HTTP
 * statuses, the access log line, and replies made on another thread than
 * the request's own loop (carried there by a posted job). The file's
 * functions are fota_reply_*. */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "fota_str.h"
#include "http_int.h"
#include "log.h"
#include "loop.h"
#include "xmalloc.h"

void fota_http__log_reply(struct fota_req *r, int code, size_t len)
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
                   r->id, r->head ? "HEAD"
                   : r->method == EVHTTP_REQ_GET ? "GET" : r->method == EVHTTP_REQ_POST ? "POST"
                   : r->method == EVHTTP_REQ_PUT ? "PUT" : r->method == EVHTTP_REQ_DELETE ? "DELETE"
                   : "OTHER",
                   fota_log_quote(r->path ? r->path : "?", qp, sizeof(qp)), code, len,
                   r->peer ? r->peer : "-", r->conn_id, dev);
}

int fota_reply_header(struct fota_req *r, const char *name, const char *value)
{
    if (r->nout_hdrs >= FOTA_REPLY_HEADERS_MAX)
        return FOTA_ETOOBIG;
    if (r->nout_hdrs++ == 0)
        TAILQ_INIT(&r->out_hdrs);
    evhttp_add_header(&r->out_hdrs, name, value);
    return 0;
}

/* Sends a reply on the request's own loop thread, with the headers of
 * fota_reply_header (extra, NULL for none). */
static void send_reply(struct evhttp_request *ev, int code, const char *content_type,
                       struct evbuffer *body, int head, int draining,
                       const struct evkeyvalq *extra)
{
    struct evkeyvalq *oh = evhttp_request_get_output_headers(ev);
    char cl[32];
    size_t len = body ? evbuffer_get_length(body) : 0;

    for (const struct evkeyval *kv = extra ? TAILQ_FIRST(extra) : NULL; kv;
         kv = TAILQ_NEXT(kv, next))
        evhttp_add_header(oh, kv->key, kv->value);
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
 * loop for a request of a worker loop, a store thread's), carried to the
 * request's loop. */
struct far_reply {
    struct evhttp_request *ev;
    int code, head;
    const char *content_type;      /* static strings only */
    char ct_buf[96];
    struct evbuffer *body;
    struct fota_http *h;
    struct evkeyvalq hdrs;         /* fota_reply_header's */
};

/* The reply cannot be sent: its loop has stopped. A request whose client
 * went away (libevent keeps it for the reply, without a connection) is
 * freed here, as sending would have; any other goes with its connection
 * when the HTTP server is freed. The loop's thread has ended (or no longer
 * runs its events), so nothing else touches ev. */
static void far_reply_drop(struct far_reply *f)
{
    if (!evhttp_request_get_connection(f->ev))
        evhttp_request_free(f->ev);
}

static void far_reply_free(struct far_reply *f)
{
    if (f->body)
        evbuffer_free(f->body);
    evhttp_clear_headers(&f->hdrs);
    free(f);
}

static void far_reply_job(void *arg, int cancelled)
{
    struct far_reply *f = arg;
    if (!cancelled)
        send_reply(f->ev, f->code, f->content_type ? f->ct_buf : NULL, f->body, f->head,
                   http_draining(f->h), &f->hdrs);
    else
        far_reply_drop(f);
    far_reply_free(f);
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
    fota_http__log_reply(r, code, len);
    if (r->inner) {   /* for another instance (fota_http_inner): no connection */
        char *text = fota_xmalloc(len + 1);
        if (len)
            evbuffer_remove(body, text, len);
        text[len] = '\0';
        r->inner(r->inner_ud, code, text, len);
        free(text);
        return;
    }
    if (req_on_own_loop(r)) {
        send_reply(r->ev, code, content_type, body, r->head, http_draining(r->srv->http),
                   r->nout_hdrs ? &r->out_hdrs : NULL);
        return;
    }
    struct far_reply *f = fota_xcalloc(1, sizeof(*f));
    TAILQ_INIT(&f->hdrs);
    for (const struct evkeyval *kv = r->nout_hdrs ? TAILQ_FIRST(&r->out_hdrs) : NULL; kv;
         kv = TAILQ_NEXT(kv, next))
        evhttp_add_header(&f->hdrs, kv->key, kv->value);
    f->ev = r->ev;
    f->code = code;
    f->head = r->head;
    f->h = r->srv->http;
    if (content_type) {
        fota_str_copy(f->ct_buf, sizeof(f->ct_buf), content_type);
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
        far_reply_drop(f);
        far_reply_free(f);
    }
}

json_t *fota_http_json_pack(const char *fmt, ...)
{
    json_error_t je;
    va_list ap;
    va_start(ap, fmt);
    json_t *j = json_vpack_ex(&je, 0, fmt, ap);
    va_end(ap);
    if (j)
        return j;
    FOTA_ERROR("json pack failed format=\"%s\" error=\"%s\"", fmt, je.text);
    return json_null();
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

static int status_for(int err)
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
    case FOTA_ENOSPC: return 507;
    case FOTA_EUNAVAIL: return 503;
    case FOTA_ENOTSUP: return 501;
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
    int code = status_for(err);
    switch (err) {
    case FOTA_ENOENT: fota_reply_error(r, code, "no %s", what); return;
    case FOTA_EEXIST: fota_reply_error(r, code, "%s already exists", what); return;
    case FOTA_EBUSY: fota_reply_error(r, code, "%s is busy", what); return;
    case FOTA_EINVAL: fota_reply_error(r, code, "invalid %s", what); return;
    case FOTA_ENOSPC: fota_reply_error(r, code, "%s: no space left on device", what); return;
    case FOTA_EUNAVAIL:
        fota_reply_error(r, code, "%s: store unavailable: no writable PostgreSQL primary", what);
        return;
    case FOTA_ENOTSUP: fota_reply_error(r, code, "%s: not supported by this store", what); return;
    default: fota_reply_error(r, code, "store error %s", fota_errname(err)); return;
    }
}


void fota_http_send_now(struct bufferevent *bev)
{
    struct evbuffer *out = bufferevent_get_output(bev);
    evutil_socket_t sfd = bufferevent_getfd(bev);

    if (sfd < 0 || bufferevent_openssl_get_ssl(bev) || bufferevent_get_underlying(bev))
        return;
    evbuffer_unfreeze(out, 1);
    for (int i = 0; i < 4 && evbuffer_get_length(out) > 0; i++)
        if (evbuffer_write(out, sfd) <= 0)
            break;
    evbuffer_freeze(out, 1);
    if (evbuffer_get_length(out) == 0)
        bufferevent_trigger(bev, EV_WRITE, BEV_TRIG_DEFER_CALLBACKS);
}
