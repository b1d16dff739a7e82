/* http_quick.c - quick answers (http.h, fota_http_quick and
 * fota_http_quick_head): a request whose reply its route can decide from
 * the head alone is answered by the gate (http_gate.c) as soon as the head
 * is complete, before evhttp parses it. A fleet polling while current costs
 * evhttp's request, its header list and reply building otherwise: about
 * fifty allocations and a third of fotad's CPU per check-in, for a reply of
 * 67 bytes; a stock device's HEAD before its download as much again.
 *
 * Only a plain connection's first request, "GET PATH HTTP/1.0" (what
 * ESPhttpUpdate and Tasmota send, §2.1 of the Arduino reference) or
 * "HEAD PATH?QUERY HTTP/1.0" (a NONOS device's, espressif-protocol §3.3)
 * with no body and nothing buffered after its head, qualifies; the reply is
 * the bytes evhttp sends for the same answer, written with the header and
 * the FIN in one segment as arduino_serve.c's 304 is. The connection's
 * input is then drained (evhttp finds no request) and it is closed from the
 * loop's quick event, after the callbacks of this read have returned: the
 * same close as a shed connection's (http_admit.c). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>

#include "http_int.h"
#include "log.h"
#include "xmalloc.h"

#define QUICK_PATH_MAX 512

static const char reply_304[] = "HTTP/1.0 304 Not Modified\r\nConnection: close\r\n"
                                "Content-Length: 0\r\n\r\n";

/* A route of the quick table: a GET answer (fn) or a HEAD answer (head_fn). */
static int quick_add(struct fota_server *srv, const char *pattern, fota_http_quick_fn fn,
                     fota_http_quick_head_fn head_fn, void *ud)
{
    struct fota_http *hh = srv->http;
    if (!hh || (!fn && !head_fn) || !pattern || pattern[0] != '/')
        return FOTA_EINVAL;
    if (hh->nquick >= FOTA_HTTP_QUICK_MAX)
        return FOTA_ENOSPC;
    struct http_quick *q = &hh->quick[hh->nquick++];
    q->pattern = fota_xstrdup(pattern);
    q->fn = fn;
    q->head_fn = head_fn;
    q->ud = ud;
    return 0;
}

int fota_http_quick(struct fota_server *srv, const char *pattern, fota_http_quick_fn fn,
                    void *ud)
{
    return fn ? quick_add(srv, pattern, fn, NULL, ud) : FOTA_EINVAL;
}

int fota_http_quick_head(struct fota_server *srv, const char *pattern, fota_http_quick_head_fn fn,
                         void *ud)
{
    return fn ? quick_add(srv, pattern, NULL, fn, ud) : FOTA_EINVAL;
}

void fota_http__quick_line(struct conn *c, const char *line, size_t len)
{
    static const char get[] = "GET /", head[] = "HEAD /", ver[] = " HTTP/1.0";
    int http10 = len > sizeof get + sizeof ver &&
                 memcmp(line + len - (sizeof ver - 1), ver, sizeof ver - 1) == 0;
    c->g.quick = 0;
    if (c->h->hh->nquick == 0 || c->tracked || !http10)
        return;
    if (memcmp(line, get, sizeof get - 1) == 0)
        c->g.quick = QUICK_GET;
    else if (len > sizeof head + sizeof ver && memcmp(line, head, sizeof head - 1) == 0)
        c->g.quick = QUICK_HEAD;
}

/* The path of "METHOD PATH HTTP/1.0" into out, and its query (after '?',
 * NULL: none): 0, or -1 for a path quick answers leave to evhttp
 * (percent-encoded, a fragment, bytes outside printable ASCII, too long). */
static int request_path(const char *line, size_t len, size_t mlen, char out[QUICK_PATH_MAX],
                        const char **query, size_t *qlen)
{
    const char *p = line + mlen + 1, *end = line + len - 9;   /* "METHOD " ... " HTTP/1.0" */
    size_t n = 0;
    *query = NULL;
    *qlen = 0;
    for (; p < end && *p != '?'; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch <= 0x20 || ch >= 0x7f || ch == '%' || ch == '#' || n + 1 >= QUICK_PATH_MAX)
            return -1;
        out[n++] = (char)ch;
    }
    out[n] = '\0';
    if (p < end) {
        *query = p + 1;
        *qlen = (size_t)(end - p - 1);
    }
    return n > 0 ? 0 : -1;
}

/* 1 when a query holds only printable ASCII and no fragment. */
static int query_plain(const char *q, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)q[i] <= 0x20 || (unsigned char)q[i] >= 0x7f || q[i] == '#')
            return 0;
    return 1;
}

static void quick_log(struct conn *c, struct evhttp_connection *evcon, const char *path,
                      uint64_t id, int64_t dev_id)
{
    char qp[256], peer[80], dev[64] = "";
    if (FOTA_LOG_DEBUG < FOTA_LOG_THRESHOLD())
        return;
    fota_http__peer_text(evcon, peer, sizeof peer);
    if (dev_id > 0)
        snprintf(dev, sizeof dev, " dev=%lld", (long long)dev_id);
    if (c->h->loop && fota_loop_index(c->h->loop) > 0)
        snprintf(dev + strlen(dev), sizeof dev - strlen(dev), " loop=%d",
                 fota_loop_index(c->h->loop));
    fota_log_write(FOTA_LOG_DEBUG, "http req=%" PRIu64 " method=GET path=%s status=304 bytes=0 "
                   "peer=%s conn=%" PRIu64 " quick=1%s", id, fota_log_quote(path, qp, sizeof qp),
                   peer, c->id, dev);
}

static void quick_head_log(struct conn *c, struct evhttp_connection *evcon,
                           const struct fota_http_quick_req *q, uint64_t id)
{
    char peer[80];
    if (FOTA_LOG_INFO < FOTA_LOG_THRESHOLD())
        return;
    fota_http__peer_text(evcon, peer, sizeof peer);
    fota_log_write(FOTA_LOG_INFO, "%s req=%" PRIu64 " %s peer=%s loop=%d", q->log_what, id, q->log,
                   peer, c->h->loop ? fota_loop_index(c->h->loop) : 0);
}

/* The routes' quick answer to c's request into ans (its length in *alen):
 * 304 for a GET, 200 for a HEAD, or 0: none (path: the request's). */
static int quick_answer(struct conn *c, const char *head, size_t len, char path[QUICK_PATH_MAX],
                        struct fota_http_quick_req *q, char *ans, size_t cap, size_t *alen)
{
    struct fota_http *hh = c->h->hh;
    int is_head = c->g.quick == QUICK_HEAD;
    char caps[FOTA_ROUTE_MAX_CAPS][FOTA_ROUTE_CAP_LEN];
    int ncaps = 0, status = 0;
    const char *nl = memchr(head, '\n', len);
    if (!nl)
        return 0;
    size_t ll = (size_t)(nl - head);
    if (ll > 0 && head[ll - 1] == '\r')
        ll--;
    if (ll < 14 || request_path(head, ll, is_head ? 4 : 3, path, &q->query, &q->query_len) != 0 ||
        (is_head && q->query && !query_plain(q->query, q->query_len)))
        return 0;
    q->loop = c->h->loop ? fota_loop_index(c->h->loop) : 0;
    q->lines = nl + 1;
    q->len = len - (size_t)(q->lines - head);
    for (int i = 0; i < hh->nquick && !status; i++) {
        struct http_quick *qk = &hh->quick[i];
        if (!(is_head ? qk->head_fn != NULL : qk->fn != NULL) ||
            !fota_http_route_match(qk->pattern, path, caps, &ncaps))
            continue;
        if (!is_head) {
            status = qk->fn(qk->ud, q->loop, caps, ncaps, q->lines, q->len, &q->dev_id);
            continue;
        }
        size_t n = qk->head_fn(qk->ud, q, ans, cap);
        if (n > 0 && n < cap) {
            *alen = n;
            status = 200;
        }
    }
    if (!is_head && status == 304) {
        memcpy(ans, reply_304, sizeof reply_304 - 1);
        *alen = sizeof reply_304 - 1;
    }
    return (is_head && status == 200) || (!is_head && status == 304) ? status : 0;
}

int fota_http__quick_try(struct conn *c, struct evhttp_connection *evcon)
{
    struct gate *g = &c->g;
    struct http_loop *h = c->h;
    struct fota_http *hh = h->hh;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t len = evbuffer_get_length(in), alen = 0;
    struct fota_http_quick_req q = { .dev_id = 0 };
    char ans[1024], path[QUICK_PATH_MAX];

    if (!g->quick || c->tracked || h->draining || !h->quick_ev || len != g->pos ||
        g->head.err || fota_http_head_has_body(&g->head) || bufferevent_openssl_get_ssl(c->bev) ||
        bufferevent_get_underlying(c->bev))
        return 0;
    const char *head = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
    if (!head || !quick_answer(c, head, len, path, &q, ans, sizeof ans, &alen))
        return 0;

    /* The answer: header and FIN in one segment (MSG_MORE holds the bytes
     * until evhttp_connection_free's shutdown sends them with the FIN). */
    int fd = bufferevent_getfd(c->bev);
    ssize_t n = send(fd, ans, alen, MSG_MORE | MSG_NOSIGNAL);
    if (n != (ssize_t)alen)
        FOTA_DEBUG("http quick answer not written conn=%" PRIu64 " wrote=%zd error=%s", c->id, n,
                   n < 0 ? strerror(errno) : "short");
    c->id = __atomic_add_fetch(&hh->next_conn, 1, __ATOMIC_RELAXED);
    uint64_t id = __atomic_add_fetch(&hh->next_req, 1, __ATOMIC_RELAXED);
    fota_metric_inc(&hh->m_quick);
    if (g->quick == QUICK_HEAD)
        quick_head_log(c, evcon, &q, id);
    else
        quick_log(c, evcon, path, id, q.dev_id);

    /* evhttp finds no request and reads no more; nothing but the quick
     * event closes it now (fota_http__conn_evcon answers NULL: no shed, no
     * sweep takes it). */
    g->reading_head = 0;
    g->hint.status = -1;
    evbuffer_drain(in, len);
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    c->evcon = evcon;
    c->qnext = h->quick;
    h->quick = c;
    event_active(h->quick_ev, EV_TIMEOUT, 0);
    return 1;
}

static void quick_close(evutil_socket_t fd, short what, void *arg)
{
    struct http_loop *h = arg;
    (void)fd;
    (void)what;
    while (h->quick) {
        struct conn *c = h->quick;
        struct evhttp_connection *evcon = c->evcon;
        h->quick = c->qnext;
        c->qnext = NULL;
        c->evcon = NULL;
        evhttp_connection_free(evcon);   /* shutdown(SHUT_WR): the segment goes */
        fota_http__fresh_unlink(h, c);   /* our reference: the descriptor closes */
    }
}

int fota_http__quick_init(struct http_loop *h, struct event_base *base)
{
    if (!h->quick_ev)
        h->quick_ev = event_new(base, -1, 0, quick_close, h);
    return h->quick_ev ? 0 : FOTA_ENOMEM;
}

void fota_http__quick_free(struct http_loop *h)
{
    h->quick = NULL;   /* still fresh: their evhttp and fresh entries go with the loop */
    if (h->quick_ev)
        event_free(h->quick_ev);
    h->quick_ev = NULL;
}
