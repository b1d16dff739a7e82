/* http_req.c - the request (struct fota_req, http.h), fota_req_*: query
 * and header access, key authentication (401/403 replies), JSON bodies
 * (400/413), numeric ids from route captures (404), deferral and release,
 * and server-sent-event streams on its connection. */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "http_int.h"
#include "log.h"

const char *fota_req_query(const struct fota_req *r, const char *name)
{
    return evhttp_find_header(&((struct fota_req *)r)->query, name);
}

const char *fota_req_header(const struct fota_req *r, const char *name)
{
    return evhttp_find_header(evhttp_request_get_input_headers(r->ev), name);
}

int fota_req_auth(struct fota_req *r, struct fota_key *key)
{
    const char *hdr = fota_req_header(r, "Authorization"), *k = NULL;
    size_t len = 0;
    const char *why = NULL;

    if (!hdr)
        why = "missing Authorization: token KEY";
    else if (fota_key_from_header(hdr, &k, &len) != 0 &&
             fota_http_head_auth_other(hdr, strlen(hdr)))
        why = "the Authorization scheme is token: Authorization: token KEY";
    else if (!k || fota_server_key_lookup(r->srv, k, len, key))
        why = "invalid key";
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
    struct evbuffer *in = evhttp_request_get_input_buffer(r->ev);
    size_t len = evbuffer_get_length(in);
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
    const char *p = (const char *)evbuffer_pullup(in, -1);
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

void fota_req_defer(struct fota_req *r)
{
    r->deferred = 1;
}

void fota_req_release(struct fota_req *r)
{
    if (!r)
        return;
    if (r->body_reserved)
        fota_http__body_release(r->srv ? r->srv->http : NULL, r->body_reserved);
    evhttp_clear_headers(&r->query);
    free(r->path_buf);
    free(r);
}

/* ---------------------------------------------------------------- streams */

/* sse: an event stream (its content type, no caching); else a body stream
 * whose headers the handler set, closed after its end. */
static int stream_begin(struct fota_req *r, fota_stream_closed_cb closed, void *ud, int sse)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(r->ev);
    struct http_loop *hl = r->hloop;
    struct conn *c = evcon && hl && !r->parked ? fota_http__conn_track(hl, evcon) : NULL;
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

