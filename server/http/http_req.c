/* http_req.c - the request (struct fota_req, http.h), fota_req_*: query
 * and header access, key authentication (401/403 replies), JSON bodies
 * (400/413), numeric ids from route captures (404), the copies a request
 * run off its loop reads, deferral and release, and server-sent-event
 * streams on its connection. */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "http_int.h"
#include "log.h"
#include "xmalloc.h"

const char *fota_req_query(const struct fota_req *r, const char *name)
{
    return evhttp_find_header(&((struct fota_req *)r)->query, name);
}

const char *fota_req_header(const struct fota_req *r, const char *name)
{
    if (r->detached)
        return evhttp_find_header(&((struct fota_req *)r)->in_hdrs, name);
    return evhttp_find_header(evhttp_request_get_input_headers(r->ev), name);
}

void fota_http__req_detach(struct fota_req *r)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(r->ev);
    struct evbuffer *body = evhttp_request_get_input_buffer(r->ev);

    TAILQ_INIT(&r->in_hdrs);
    for (struct evkeyval *kv = TAILQ_FIRST(in); kv; kv = TAILQ_NEXT(kv, next))
        evhttp_add_header(&r->in_hdrs, kv->key, kv->value);
    r->body_len = body ? evbuffer_get_length(body) : 0;
    if (r->body_len && r->body_len <= FOTA_HTTP_SMALL_BODY) {
        r->body = fota_xmalloc(r->body_len);
        evbuffer_copyout(body, r->body, r->body_len);
    }
    r->detached = 1;
    __atomic_add_fetch(&r->srv->http->detached, 1, __ATOMIC_RELAXED);
}

const char *fota_req_key(struct fota_req *r, const char **k, size_t *len)
{
    const char *hdr = fota_req_header(r, "Authorization");

    *k = NULL;
    *len = 0;
    if (!hdr)
        return "missing Authorization: token KEY";
    if (fota_key_from_header(hdr, k, len) != 0 && fota_http_head_auth_other(hdr, strlen(hdr)))
        return "the Authorization scheme is token: Authorization: token KEY";
    return *k ? NULL : "invalid key";
}

int fota_req_auth(struct fota_req *r, struct fota_key *key)
{
    const char *k = NULL;
    size_t len = 0;
    const char *why;

    if (r->inner) {   /* the asking instance authenticated its client */
        *key = r->key_pre_val;
        return 0;
    }
    why = fota_req_key(r, &k, &len);
    if (!why && (r->key_pre ? r->key_pre_rc : fota_server_key_lookup(r->srv, k, len, key)))
        why = "invalid key";
    else if (!why && r->key_pre)
        *key = r->key_pre_val;
    if (why) {
        fota_http__refused(r->srv->http, 401);
        fota_reply_error(r, 401, "%s", why);
        return FOTA_EAUTH;
    }
    r->dev_id = key->device_id;
    return 0;
}

int fota_req_admin(struct fota_req *r, struct fota_key *key)
{
    if (fota_req_auth(r, key))
        return FOTA_EAUTH;
    if (key->kind != FOTA_KEY_ADMIN) {
        fota_reply_error(r, 403, "this needs the admin key");
        return FOTA_EPERM;
    }
    return 0;
}

json_t *fota_req_json_body(struct fota_req *r)
{
    struct evbuffer *in = r->detached ? NULL : evhttp_request_get_input_buffer(r->ev);
    size_t len = in ? evbuffer_get_length(in) : r->body_len;
    json_error_t je;
    json_t *j;

    if (len == 0) {
        fota_reply_error(r, 400, "a JSON object body is required");
        return NULL;
    }
    if (len > FOTA_HTTP_SMALL_BODY) {
        fota_reply_error(r, 413, "JSON body larger than 64 KiB");
        return NULL;
    }
    const char *p = in ? (const char *)evbuffer_pullup(in, -1) : r->body;
    j = json_loadb(p, len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        fota_reply_error(r, 400, "malformed JSON at line %d column %d: %s", je.line, je.column,
                         je.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        fota_reply_error(r, 400, "the body must be a JSON object");
        return NULL;
    }
    return j;
}

int64_t fota_req_cap_id(struct fota_req *r, int i)
{
    const char *s = i < r->ncaps ? r->caps[i] : "";
    int64_t v = 0;
    if (!*s || strlen(s) > 18) {
        fota_reply_error(r, 404, "no such id \"%s\"", s);
        return -1;
    }
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') {
            fota_reply_error(r, 404, "no such id \"%s\"", s);
            return -1;
        }
        v = v * 10 + (*p - '0');
    }
    if (v <= 0) {
        fota_reply_error(r, 404, "no such id \"%s\"", s);
        return -1;
    }
    return v;
}

/* ------------------------------------------------------------ life time */

_Thread_local struct fota_req *fota_http__job_req;
_Thread_local int fota_http__job_deferred;

void fota_req_defer(struct fota_req *r)
{
    r->deferred = 1;
    if (r == fota_http__job_req)
        fota_http__job_deferred = 1;
}

void fota_req_release(struct fota_req *r)
{
    if (!r)
        return;
    if (r->body_reserved)
        fota_http__body_release(r->srv ? r->srv->http : NULL, r->body_reserved);
    if (r->detached) {
        evhttp_clear_headers(&r->in_hdrs);
        free(r->body);
        __atomic_sub_fetch(&r->srv->http->detached, 1, __ATOMIC_RELAXED);
    }
    if (r->nout_hdrs)
        evhttp_clear_headers(&r->out_hdrs);
    evhttp_clear_headers(&r->query);
    free(r->path_buf);
    free(r);
}

/* ---------------------------------------------------------------- streams */

/* Counts a stream's unsent bytes: what enters its output buffer minus what
 * the kernel took. */
static void stream_out_cb(struct evbuffer *out, const struct evbuffer_cb_info *info, void *arg)
{
    struct conn *c = arg;
    (void)out;
    int64_t delta = (int64_t)info->n_added - (int64_t)info->n_deleted;
    c->backlog = (size_t)((int64_t)c->backlog + delta);
    __atomic_add_fetch(&c->h->hh->stream_bytes, delta, __ATOMIC_RELAXED);
}

static void stream_count(struct conn *c)
{
    struct http_loop *h = c->h;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    c->backlog = evbuffer_get_length(out);
    __atomic_add_fetch(&h->hh->stream_bytes, (int64_t)c->backlog, __ATOMIC_RELAXED);
    __atomic_add_fetch(&h->hh->nstreams, 1, __ATOMIC_RELAXED);
    c->stream_cb = evbuffer_add_cb(out, stream_out_cb, c);
    c->sprev = NULL;
    c->snext = h->streams;
    if (c->snext)
        c->snext->sprev = c;
    h->streams = c;
}

void fota_http__stream_forget(struct conn *c)
{
    struct http_loop *h = c->h;
    if (!c->stream_cb)
        return;
    evbuffer_remove_cb_entry(bufferevent_get_output(c->bev), c->stream_cb);
    c->stream_cb = NULL;
    __atomic_sub_fetch(&h->hh->stream_bytes, (int64_t)c->backlog, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&h->hh->nstreams, 1, __ATOMIC_RELAXED);
    c->backlog = 0;
    if (c->sprev)
        c->sprev->snext = c->snext;
    else
        h->streams = c->snext;
    if (c->snext)
        c->snext->sprev = c->sprev;
    c->sprev = c->snext = NULL;
}

/* Cuts a stream off: its connection closes at once and its unsent bytes are
 * freed (ending it politely would keep them until the reader reads them, or
 * until the write timeout). conn_closed runs its closed callback. */
static void stream_cut(struct conn *c, const char *why, unsigned long long limit)
{
    struct fota_req *r = c->stream;
    FOTA_WARN("http stream cut off: too slow req=%" PRIu64 " conn=%" PRIu64 " backlog=%zu "
              "reason=%s limit=%llu all_streams=%lld", r ? r->id : 0, c->id, c->backlog, why,
              limit, (long long)__atomic_load_n(&c->h->hh->stream_bytes, __ATOMIC_RELAXED));
    evhttp_connection_free(c->evcon);
}

/* While the unsent bytes of all streams exceed stream_memory, cuts this
 * loop's stream furthest behind, if it is behind the average of all (the
 * worse ones of other loops go on their next send), or whatever its place
 * once the excess passes a quarter (another loop may be slow to send) when
 * it holds 64 KiB or more. 1 when `self` was cut. */
static int streams_over_budget(struct http_loop *h, struct conn *self)
{
    struct fota_http *hh = h->hh;
    uint64_t cap = __atomic_load_n(&hh->stream_memory, __ATOMIC_RELAXED);
    int cut_self = 0;
    for (;;) {
        int64_t total = __atomic_load_n(&hh->stream_bytes, __ATOMIC_RELAXED);
        int64_t n = __atomic_load_n(&hh->nstreams, __ATOMIC_RELAXED);
        if (total <= (int64_t)cap || n <= 0)
            return cut_self;
        struct conn *worst = NULL;
        for (struct conn *c = h->streams; c; c = c->snext)
            if (!worst || c->backlog > worst->backlog)
                worst = c;
        int behind = worst && (int64_t)worst->backlog * n >= total;
        int far_over = worst && total > (int64_t)(cap + cap / 4) && worst->backlog >= 65536;
        if (!worst || worst->backlog == 0 || (!behind && !far_over))
            return cut_self;
        cut_self |= worst == self;
        stream_cut(worst, "stream_memory", (unsigned long long)cap);
    }
}

/* sse: an event stream (its content type, no caching); else a body stream
 * whose headers the handler set, closed after its end. */
static int stream_begin(struct fota_req *r, fota_stream_closed_cb closed, void *ud, int sse)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(r->ev);
    struct http_loop *hl = r->hloop;
    struct conn *c = evcon && hl && !r->parked && !r->detached ? fota_http__conn_track(hl, evcon)
                                                               : NULL;
    struct evkeyvalq *oh = evhttp_request_get_output_headers(r->ev);

    if (!c || c->stream || http_draining(r->srv->http) || hl->draining) {
        fota_reply_error(r, 503, "cannot stream now");
        return FOTA_EBUSY;
    }
    if (sse) {
        evhttp_add_header(oh, "Content-Type", "text/event-stream");
        evhttp_add_header(oh, "Cache-Control", "no-cache");
    } else {
        evhttp_remove_header(oh, "Connection");
        evhttp_add_header(oh, "Connection", "close");
    }
    r->replied = 1;
    c->stream = r;
    c->closed = closed;
    c->closed_ud = ud;
    fota_http__log_reply(r, 200, 0);
    evhttp_send_reply_start(r->ev, 200, "OK");
    const char *te = evhttp_find_header(oh, "Transfer-Encoding");
    c->stream_framing = r->head ? -1 : te && strcmp(te, "chunked") == 0;
    if (sse)   /* body streams pace themselves (fota_req_stream_send_buf) */
        stream_count(c);
    return 0;
}

int fota_req_stream_begin(struct fota_req *r, fota_stream_closed_cb closed, void *ud)
{
    return stream_begin(r, closed, ud, 1);
}

int fota_req_stream_begin_body(struct fota_req *r, fota_stream_closed_cb closed, void *ud)
{
    return stream_begin(r, closed, ud, 0);
}

struct evbuffer *fota_req_stream_buffer(struct fota_req *r)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(r->ev);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    struct evbuffer *b = evbuffer_new();
    /* Only a plain socket takes sendfile; TLS reads the file through a mapping. */
    if (b && bev && !bufferevent_openssl_get_ssl(bev))
        evbuffer_set_flags(b, EVBUFFER_FLAG_DRAINS_TO_FD);
    return b;
}

void fota_req_stream_send_buf(struct fota_req *r, struct evbuffer *buf,
                              void (*sent)(struct evhttp_connection *evcon, void *ud), void *ud)
{
    evhttp_send_reply_chunk_with_cb(r->ev, buf, sent, ud);
}

int fota_req_stream_send(struct fota_req *r, const char *data, size_t len)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(r->ev);
    struct conn *c = evcon && r->hloop ? fota_http__conn_track(r->hloop, evcon) : NULL;
    if (!c || c->stream != r || !len)
        return 0;
    /* A reader that does not keep up is cut off rather than buffered forever. */
    if (c->backlog > FOTA_STREAM_BACKLOG_MAX) {
        stream_cut(c, "backlog", FOTA_STREAM_BACKLOG_MAX);
        return FOTA_ECLOSED;
    }
    /* The chunk goes straight into the connection's output (what
     * evhttp_send_reply_chunk writes, without a buffer of its own per event,
     * whose chain would hold twice the bytes): events fill its chains. The
     * bufferevent writes it (evhttp_send_reply_start enabled writing). */
    if (c->stream_framing >= 0) {
        struct evbuffer *out = bufferevent_get_output(c->bev);
        if (c->stream_framing)
            evbuffer_add_printf(out, "%zx\r\n", len);
        evbuffer_add(out, data, len);
        if (c->stream_framing)
            evbuffer_add(out, "\r\n", 2);
    }
    return streams_over_budget(c->h, c) ? FOTA_ECLOSED : 0;
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
        fota_http__stream_forget(c);
        c->stream = NULL;
    }
    evhttp_send_reply_end(r->ev);
    fota_req_release(r);
    if (cb)
        cb(ud);
}
