/* http_gate.c - what fotad decides on a request's head before evhttp reads
 * its body (http_int.h, struct gate): the head's lines are split from the
 * connection's input buffer as they arrive (an evbuffer callback runs before
 * evhttp's read callback, so every line is seen before evhttp consumes it),
 * fed to the head parser (http_head.c), and at the head's end the body limit
 * of the connection is set: the small-body default, max_upload for an upload
 * with the admin key, room in upload_memory and room on the disk
 * (fota_blob_room), or 0 for a refused request. A key the caches do not
 * hold is looked up there, or, with store threads (PostgreSQL), by a store
 * job while the connection waits with its input frozen (struct gate_lookup),
 * so the loop never waits for a round trip.
 * The head must arrive within http_timeout of its first byte (the accept,
 * for a connection's first request), however slowly it trickles; so must a
 * TLS handshake, whose bytes the gate never sees (the sweep of fresh
 * connections asks fota_http__gate_handshake_late). */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "fota_str.h"
#include "heap.h"
#include "http_int.h"
#include "keys.h"
#include "log.h"
#include "store_exec.h"
#include "xmalloc.h"

#define HEAD_MAX 16384           /* evhttp's header limit (loop_reload): beyond, it refuses */
#define LINE_KEEP 256            /* bytes of a line the parser needs */
#define UPLOAD_RETRY_S 5         /* Retry-After when upload_memory is full */
#define DESCRIPTORS_RETRY_S 5    /* Retry-After for a keyless request on probation */
#define PROBATION_MS 1000        /* a head on probation: this long, from the accept */
#define TRIM_DELAY_S 1

/* n bytes at p into dst (evbuffer_peek: whatever the buffer's freeze state). */
static int copy_at(struct evbuffer *in, struct evbuffer_ptr *p, char *dst, size_t n)
{
    struct evbuffer_iovec v[4];
    size_t got = 0;
    int nv = evbuffer_peek(in, (ev_ssize_t)n, p, v, 4);
    for (int i = 0; i < nv && i < 4 && got < n; i++) {
        size_t k = v[i].iov_len < n - got ? v[i].iov_len : n - got;
        memcpy(dst + got, v[i].iov_base, k);
        got += k;
    }
    return got == n ? 0 : -1;
}

struct evhttp_connection *fota_http__conn_evcon(const struct conn *c)
{
    bufferevent_data_cb rd = NULL, wr = NULL;
    bufferevent_event_cb ev = NULL;
    void *arg = NULL;
    if (c->g.hint.status < 0)
        return NULL;   /* an error page went out: evhttp is letting go */
    bufferevent_getcb(c->bev, &rd, &wr, &ev, &arg);
    struct evhttp_connection *evcon = arg;
    if (!ev || !evcon || evhttp_connection_get_bufferevent(evcon) != c->bev)
        return NULL;
    return evcon;
}

/* The read and write timeouts evhttp keeps on the connection. */
static struct timeval normal_timeout(const struct http_loop *h)
{
    struct timeval tv = { h->draining ? 1 : (time_t)h->http_timeout, 0 };
    return tv;
}

static void set_limit(struct gate *g, struct evhttp_connection *evcon, uint64_t limit, int upload)
{
    g->hint.upload = upload;
    if (g->hint.body_limit == limit)
        return;
    g->hint.body_limit = limit;
    evhttp_connection_set_max_body_size(evcon, (ev_ssize_t)limit);
}

/* The request is refused with status: evhttp reads none of its body (its
 * 413 becomes this reply), or dispatch answers a body-less one. Counted
 * by its status, unless counted already (counted = 1). */
static void refuse(struct conn *c, struct evhttp_connection *evcon, int status, unsigned retry,
                   int counted, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void refuse(struct conn *c, struct evhttp_connection *evcon, int status, unsigned retry,
                   int counted, const char *fmt, ...)
{
    struct gate *g = &c->g;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->why, sizeof(g->why), fmt, ap);
    va_end(ap);
    if (!counted)
        fota_http__refused(c->h->hh, status);
    g->hint.status = status;
    g->hint.message = g->why;
    g->hint.retry_after = retry;
    set_limit(g, evcon, 0, 0);
}

/* n bytes of upload_memory for one body: always granted when no other
 * upload holds any, so one upload of max_upload fits whatever the budget. */
static int budget_take(struct fota_http *hh, uint64_t n)
{
    uint64_t cur = __atomic_load_n(&hh->body_reserved, __ATOMIC_RELAXED);
    uint64_t cap = __atomic_load_n(&hh->upload_memory, __ATOMIC_RELAXED);
    do {
        if (cur > 0 && cur + n > cap)
            return -1;
    } while (!__atomic_compare_exchange_n(&hh->body_reserved, &cur, cur + n, 0, __ATOMIC_ACQ_REL,
                                          __ATOMIC_RELAXED));
    return 0;
}

static void trim_cb(evutil_socket_t fd, short what, void *arg)
{
    struct fota_http *hh = arg;
    (void)fd;
    (void)what;
    if (__atomic_load_n(&hh->body_reserved, __ATOMIC_ACQUIRE) == 0 && fota_heap_give_back())
        FOTA_DEBUG("http upload memory given back to the system");
}

void fota_http__body_release(struct fota_http *hh, uint64_t n)
{
    if (!hh || !n)
        return;
    if (__atomic_sub_fetch(&hh->body_reserved, n, __ATOMIC_ACQ_REL) != 0 || !hh->trim)
        return;
    /* The last body is freed once its reply is written: give the pages back
     * a moment later (event_add is thread-safe: the bases use pthreads). */
    static const struct timeval later = { TRIM_DELAY_S, 0 };
    evtimer_add(hh->trim, &later);
}

int fota_http__trim_init(struct fota_http *hh)
{
    hh->trim = evtimer_new(hh->srv->base, trim_cb, hh);
    return hh->trim ? 0 : FOTA_ENOMEM;
}

/* An upload whose key is decided: room in upload_memory and on the disk. */
static void decide_upload_key(struct conn *c, struct evhttp_connection *evcon, int rc,
                              const struct fota_key *key)
{
    struct gate *g = &c->g;
    struct fota_http_head *hd = &g->head;
    struct fota_server *srv = c->h->hh->srv;
    uint64_t max_upload = c->h->max_upload;

    if (rc != 0) {
        refuse(c, evcon, 401, 0, 0, "invalid key");
        return;
    }
    if (key->kind != FOTA_KEY_ADMIN) {
        refuse(c, evcon, 403, 0, 0, "a body over %u bytes is an upload: it needs the admin key",
               FOTA_HTTP_SMALL_BODY);
        return;
    }
    if (!hd->chunked && hd->cl > max_upload) {
        set_limit(g, evcon, max_upload, 1);   /* evhttp's 413 names max_upload */
        return;
    }
    if (!hd->chunked && fota_blob_room(srv->blobs, hd->cl) != 0) {   /* blob.h: leave disk_reserve */
        refuse(c, evcon, 507, 0, 0, "no space left on device for an upload of %llu bytes",
               (unsigned long long)hd->cl);
        return;
    }
    uint64_t n = hd->chunked ? max_upload : hd->cl;
    if (budget_take(c->h->hh, n) != 0) {
        refuse(c, evcon, 503, UPLOAD_RETRY_S, 0, "uploads in flight fill upload_memory (%llu "
               "bytes): retry later", (unsigned long long)__atomic_load_n(
                   &c->h->hh->upload_memory, __ATOMIC_RELAXED));
        return;
    }
    g->reserved = n;
    g->key_ok = 1;
    set_limit(g, evcon, max_upload, 1);
}

/* A head on probation (fotad short of descriptors) is served only with a
 * known key: 1 when refused (rc: its key's lookup). */
static int probation_refused(struct conn *c, struct evhttp_connection *evcon, int rc)
{
    if (rc == 0) {
        c->g.key_ok = 1;
        return 0;
    }
    fota_http__admit_refused_key(c);
    refuse(c, evcon, 503, DESCRIPTORS_RETRY_S, 1,
           "fotad is short of descriptors: only requests with a key are served now");
    return 1;
}

static void decide_upload(struct conn *c, struct evhttp_connection *evcon);

/* A head on probation whose key a store job looked up: served as any other
 * from here (no quick answer: that runs inside the head's read only). */
static void decide_probation_key(struct conn *c, struct evhttp_connection *evcon, int rc)
{
    struct fota_http_head *hd = &c->g.head;
    if (probation_refused(c, evcon, rc))
        return;
    c->g.probation = 0;
    c->g.quick = 0;
    if (hd->chunked || hd->cl > FOTA_HTTP_SMALL_BODY)
        decide_upload(c, evcon);
}

/* An upload head's key that the caches do not hold, looked up by a store job
 * while its connection waits (on PostgreSQL a round trip on the loop would
 * stall every connection of it): the input's start is frozen, so evhttp
 * parses nothing of the request, and reading stops, so nothing more piles
 * up; the continuation decides, then lets evhttp go on. Two owners: the job
 * and the connection (which detaches it when it closes first). */
struct gate_lookup {
    int refs;
    int probation;               /* the key of a head on probation, not an upload's */
    struct conn *c;              /* NULL once the connection closed; loop thread only */
    struct fota_server *srv;
    char k[FOTA_HEAD_AUTH_MAX + 1];
    size_t klen;
    int rc;
    struct fota_key key;
};

/* Bytes evhttp may hold unparsed while the lookup runs: the head and one
 * read's worth of body behind it. */
#define LOOKUP_HEAD_MAX (4 * HEAD_MAX)

static void lookup_unref(struct gate_lookup *l)
{
    if (__atomic_sub_fetch(&l->refs, 1, __ATOMIC_ACQ_REL) == 0)
        free(l);
}

static void lookup_run(struct fota_store *s, void *arg)
{
    struct gate_lookup *l = arg;
    (void)s;
    l->rc = fota_server_key_lookup(l->srv, l->k, l->klen, &l->key);
}

static void lookup_done(void *arg, int cancelled)
{
    struct gate_lookup *l = arg;
    struct conn *c = cancelled ? NULL : l->c;

    if (c) {
        c->g.lookup = NULL;
        lookup_unref(l);   /* the connection's share */
        evbuffer_unfreeze(bufferevent_get_input(c->bev), 1);
        struct evhttp_connection *evcon = fota_http__conn_evcon(c);
        if (evcon) {
            evhttp_connection_set_max_headers_size(evcon, HEAD_MAX);
            if (l->probation)
                decide_probation_key(c, evcon, l->rc);
            else
                decide_upload_key(c, evcon, l->rc, &l->key);
        }
        if (c->g.lookup) {   /* on probation, then an upload: its key's own lookup */
            lookup_unref(l);
            return;
        }
        bufferevent_enable(c->bev, EV_READ);
        /* What arrived before the freeze is parsed now: evhttp may answer
         * or close here, so c is not touched after. */
        bufferevent_trigger(c->bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS);
    }
    lookup_unref(l);   /* the job's share */
}

/* 0: the lookup runs and decides later; else decide now (no executor with
 * threads, or the executor refused the job). */
static int lookup_begin(struct conn *c, struct evhttp_connection *evcon, const char *k,
                        size_t klen, int probation)
{
    struct fota_server *srv = c->h->hh->srv;
    if (!srv->exec || !fota_store_exec_threaded(srv->exec) || klen > FOTA_HEAD_AUTH_MAX)
        return -1;
    struct gate_lookup *l = fota_xcalloc(1, sizeof *l);
    l->refs = 2;
    l->probation = probation;
    l->c = c;
    l->srv = srv;
    memcpy(l->k, k, klen);
    l->klen = klen;
    if (fota_store_submit(srv->exec, NULL, c->h->loop, lookup_run, lookup_done, l) != 0) {
        free(l);
        return -1;
    }
    c->g.lookup = l;
    evhttp_connection_set_max_headers_size(evcon, LOOKUP_HEAD_MAX);
    evbuffer_freeze(bufferevent_get_input(c->bev), 1);
    bufferevent_disable(c->bev, EV_READ);
    return 0;
}

/* An upload: the admin key on its headers, then room in upload_memory. */
static void decide_upload(struct conn *c, struct evhttp_connection *evcon)
{
    struct gate *g = &c->g;
    struct fota_http_head *hd = &g->head;
    struct fota_server *srv = c->h->hh->srv;
    const char *k = NULL;
    size_t klen = 0;
    struct fota_key key;

    if (hd->auth_len < 0) {
        refuse(c, evcon, 401, 0, 0, "missing Authorization: token KEY (a body over %u bytes is an "
               "upload: it needs the admin key)", FOTA_HTTP_SMALL_BODY);
        return;
    }
    if (hd->auth_len > FOTA_HEAD_AUTH_MAX || fota_key_from_header(hd->auth, &k, &klen) != 0) {
        if (hd->auth_len <= FOTA_HEAD_AUTH_MAX && fota_http_head_auth_other(hd->auth, (size_t)hd->auth_len))
            refuse(c, evcon, 401, 0, 0, "the Authorization scheme is token: Authorization: token KEY");
        else
            refuse(c, evcon, 401, 0, 0, "invalid key");
        return;
    }
    int rc = fota_server_key_cached(srv, k, klen, &key, 1);
    if (rc == FOTA_EAGAIN && lookup_begin(c, evcon, k, klen, 0) == 0)
        return;
    if (rc == FOTA_EAGAIN)
        rc = fota_server_key_lookup(srv, k, klen, &key);
    decide_upload_key(c, evcon, rc, &key);
}

/* The head is complete: the body limit for its request. */
static void decide(struct conn *c, struct evhttp_connection *evcon)
{
    struct gate *g = &c->g;
    struct fota_http_head *hd = &g->head;

    if (g->hint.status > 0)
        return;   /* refused before its head ended (admission) */
    if (hd->err) {
        refuse(c, evcon, 400, 0, 0, "%s", fota_http_head_errstr(hd->err));
        return;
    }
    if (g->probation) {
        struct fota_server *srv = c->h->hh->srv;
        const char *k = NULL;
        size_t klen = 0;
        struct fota_key key;
        int rc = FOTA_EAUTH;
        if (hd->auth_len >= 0 && hd->auth_len <= FOTA_HEAD_AUTH_MAX &&
            fota_key_from_header(hd->auth, &k, &klen) == 0) {
            rc = fota_server_key_cached(srv, k, klen, &key, 1);
            if (rc == FOTA_EAGAIN && lookup_begin(c, evcon, k, klen, 1) == 0)
                return;
            if (rc == FOTA_EAGAIN)
                rc = fota_server_key_lookup(srv, k, klen, &key);
        }
        if (probation_refused(c, evcon, rc))
            return;
    }
    g->probation = 0;   /* the API, or a device: from here on as any other */
    if (g->quick && fota_http__quick_try(c, evcon))
        return;
    if (hd->chunked || hd->cl > FOTA_HTTP_SMALL_BODY)
        decide_upload(c, evcon);
}

/* One complete line of the head (len bytes; cut when only the first ones
 * are given). 0 while the head goes on. */
static int head_line(struct conn *c, const char *line, size_t len, int cut, size_t eol)
{
    struct gate *g = &c->g;
    g->head_bytes += len + eol;
    if (g->head.lines == 0 && !cut)
        fota_http__quick_line(c, line, len);
    if (fota_http_head_line(&g->head, line, len, cut)) {
        g->reading_head = 0;
        struct evhttp_connection *evcon = fota_http__conn_evcon(c);
        if (evcon)
            decide(c, evcon);
        return 1;
    }
    if (g->head_bytes > 2 * HEAD_MAX)
        g->reading_head = 0;   /* evhttp refuses a head this long */
    return 0;
}

/* Splits the head's complete lines off the input buffer (from g->pos):
 * in place where they lie in one chain (a request read at once), else
 * line by line with a copy of what the parser needs. */
static void scan(struct conn *c, struct evbuffer *in)
{
    struct gate *g = &c->g;
    size_t len = evbuffer_get_length(in);

    while (g->reading_head && g->pos < len) {
        struct evbuffer_ptr p, e;
        struct evbuffer_iovec v;
        if (evbuffer_ptr_set(in, &p, g->pos, EVBUFFER_PTR_SET) != 0)
            return;
        if (evbuffer_peek(in, -1, &p, &v, 1) >= 1 && v.iov_len > 0) {
            const char *b = v.iov_base, *at = b, *end = b + v.iov_len, *nl;
            while (g->reading_head && (nl = memchr(at, '\n', (size_t)(end - at))) != NULL) {
                size_t ll = (size_t)(nl - at), eol = 1;
                if (ll > 0 && at[ll - 1] == '\r') {
                    ll--;
                    eol = 2;
                }
                g->pos += ll + eol;
                head_line(c, at, ll, 0, eol);
                at = nl + 1;
            }
            if (at != b || !g->reading_head)
                continue;   /* progress: the rest may lie in the next chain */
        }
        /* A line across chains. */
        size_t eol = 0;
        e = evbuffer_search_eol(in, &p, &eol, EVBUFFER_EOL_CRLF);
        if (e.pos < 0) {
            if (len - g->pos > HEAD_MAX)
                g->reading_head = 0;   /* evhttp refuses a line this long */
            return;
        }
        size_t ll = (size_t)e.pos - g->pos;
        char line[LINE_KEEP];
        size_t n = ll < sizeof(line) ? ll : sizeof(line);
        if (n && copy_at(in, &p, line, n) != 0)
            return;
        g->pos = (size_t)e.pos + eol;
        head_line(c, line, n, ll > n, eol);
    }
}

/* Keeps the head's deadline absolute: evhttp's read timeout restarts at
 * every read, so while the head is incomplete it is set to what is left. */
static void deadline(struct conn *c)
{
    struct gate *g = &c->g;
    struct timeval normal = normal_timeout(c->h);
    if (!g->reading_head) {
        if (g->timeout_cut) {
            g->timeout_cut = 0;
            bufferevent_set_timeouts(c->bev, &normal, &normal);
        }
        return;
    }
    int64_t span = g->probation ? PROBATION_MS : (int64_t)normal.tv_sec * 1000;
    int64_t left = g->t0_ms + span - fota_clock_mono_ms();
    if (left < 1)
        left = 1;
    struct timeval tv = { (time_t)(left / 1000), (suseconds_t)((left % 1000) * 1000) };
    g->timeout_cut = 1;
    bufferevent_set_timeouts(c->bev, &tv, &normal);
}

static void gate_in_cb(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
    struct conn *c = arg;
    struct gate *g = &c->g;

    if (info->n_deleted)
        g->pos = g->pos > info->n_deleted ? g->pos - info->n_deleted : 0;
    if (!info->n_added || !g->reading_head)
        return;
    c->heard = 1;
    if (!g->t0_ms)
        g->t0_ms = fota_clock_mono_ms();   /* a keep-alive request's first byte */
    if (!c->admitted && fota_http__admit_first_read(c)) {
        struct evhttp_connection *evcon = fota_http__conn_evcon(c);
        if (evcon)
            refuse(c, evcon, 503, DESCRIPTORS_RETRY_S, 1, "too many connections from this "
                   "address (http_max_per_addr)");
        fota_http__gate_probation(c);   /* what is left of its head: a second */
    }
    scan(c, in);
    if (g->reading_head || g->timeout_cut)
        deadline(c);
    /* The head is whole: evhttp's drains of it, line by line, need no look
     * (the next request's gate_next starts over from the buffer's start). */
    if (!g->reading_head && c->in_cb)
        evbuffer_cb_clear_flags(in, c->in_cb, EVBUFFER_CB_ENABLED);
}

int64_t fota_http__gate_handshake_late(const struct conn *c, int64_t now)
{
    const struct gate *g = &c->g;
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    if (!ssl || !g->reading_head || !g->t0_ms || SSL_is_init_finished(ssl))
        return 0;
    int64_t span = g->probation ? PROBATION_MS : (int64_t)normal_timeout(c->h).tv_sec * 1000;
    int64_t waited = now - g->t0_ms;
    return waited >= span ? (waited > 0 ? waited : 1) : 0;
}

void fota_http__gate_probation(struct conn *c)
{
    c->g.probation = 1;
    if (c->g.reading_head)
        deadline(c);
}

void fota_http__gate_init(struct conn *c)
{
    struct gate *g = &c->g;
    fota_http_head_init(&g->head);
    g->reading_head = 1;
    g->t0_ms = fota_clock_mono_ms();
    g->hint.bev = c->bev;
    g->hint.body_limit = FOTA_HTTP_SMALL_BODY;
    fota_http_errpage_watch(&c->h->errpages, &g->hint);
    c->in_cb = evbuffer_add_cb(bufferevent_get_input(c->bev), gate_in_cb, c);
}

void fota_http__gate_cleanup(struct conn *c)
{
    if (c->g.lookup) {   /* its job ends without the connection */
        c->g.lookup->c = NULL;
        lookup_unref(c->g.lookup);
        c->g.lookup = NULL;
    }
    /* Disabled, not removed: the buffer frees its entries with itself. */
    if (c->in_cb)
        evbuffer_cb_clear_flags(bufferevent_get_input(c->bev), c->in_cb, EVBUFFER_CB_ENABLED);
    c->in_cb = NULL;
    fota_http_errpage_unwatch(&c->g.hint);
    fota_http__body_release(c->h->hh, c->g.reserved);
    c->g.reserved = 0;
}

int fota_http__gate_next(struct conn *c, struct evhttp_connection *evcon, struct fota_req *r,
                         char *why, size_t why_cap, unsigned *retry_after)
{
    struct gate *g = &c->g;
    int status = g->hint.status > 0 ? g->hint.status : 0;

    r->body_reserved = g->reserved;
    g->reserved = 0;
    *retry_after = g->hint.retry_after;
    fota_str_copy(why, why_cap, status ? g->why : "");
    /* The next request: its bytes already buffered (pipelined) are read now,
     * evhttp will parse them without another read. */
    fota_http_head_init(&g->head);
    g->reading_head = 1;
    g->pos = 0;
    g->head_bytes = 0;
    g->t0_ms = 0;
    g->key_ok = 0;
    g->quick = 0;
    g->hint.status = 0;
    g->hint.message = NULL;
    g->hint.retry_after = 0;
    set_limit(g, evcon, FOTA_HTTP_SMALL_BODY, 0);
    struct evbuffer *in = bufferevent_get_input(c->bev);
    if (c->in_cb)
        evbuffer_cb_set_flags(in, c->in_cb, EVBUFFER_CB_ENABLED);
    if (evbuffer_get_length(in) > 0) {
        g->t0_ms = fota_clock_mono_ms();
        scan(c, in);
        if (g->reading_head || g->timeout_cut)
            deadline(c);
    }
    return status;
}
