/* rollout_ask.c - rollout creates and controls on an instance that does not
 * drive the rollouts (several fotad on one PostgreSQL, docs/scale-out.md
 * "Where to ask"). The instance that took the request checks it as the
 * driver would (the same code, up to where the engine's state decides),
 * writes it into rollout_asks (store.h: fota_store_pg_ask_*) and waits; the
 * holder of lease rollouts takes it on the ring "ask:ID" of channel
 * fota_rollout_ask, runs it through its own route (fota_http_inner) and
 * writes the reply, ringing "ans:ID:ASKER"; the asker answers its client
 * with that status and body, so the client gets what the driver would have
 * said. Nobody taking it within ASK_TAKE_MS means no instance drives the
 * rollouts now (the driver died and its lease has not moved yet): 503 with
 * Retry-After. Main loop, but fota_rollout_elsewhere (any thread). */
#include "rollout_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "clock.h"
#include "cluster.h"
#include "http.h"
#include "log.h"
#include "xmalloc.h"

#define ASK_CHANNEL  "fota_rollout_ask"
#define ASK_TAKE_MS  1000    /* a live driver takes a request within a few ms */
#define ASK_REPLY_MS 30000   /* a taken request's reply, by then at the latest */
#define ASK_RETRY_S  "3"     /* the lease moves after instance_timeout (default 3 s) */

/* A request of this instance waiting for the driver's reply. */
struct fota_rollout_ask {
    struct fota_rollouts *ro;
    struct fota_rollout_ask *prev, *next;   /* ro->asks, once written */
    struct fota_req *r;                      /* deferred */
    char *path, *body;
    int64_t id;                              /* its row */
    int64_t t0_ms;
    struct event *timer;
    int rc;                                  /* the last job's */
    int jobs;                                /* a job is out (it owns the ask) */
    int rang;                                /* "ans" came while a job was out */
    int force;                               /* the reply's deadline passed */
    struct fota_store_ask_end end;
};

static void ask_free(struct fota_rollout_ask *a)
{
    if (a->timer)
        event_free(a->timer);
    free(a->path);
    free(a->body);
    free(a->end.reply);
    free(a);
}

static void ask_unlink(struct fota_rollout_ask *a)
{
    if (a->prev)
        a->prev->next = a->next;
    else if (a->ro->asks == a)
        a->ro->asks = a->next;
    if (a->next)
        a->next->prev = a->prev;
    a->prev = a->next = NULL;
}

/* 503 with Retry-After: no instance drives the rollouts now. */
static void reply_no_driver(struct fota_req *r, const char *why)
{
    fota_reply_header(r, "Retry-After", ASK_RETRY_S);
    fota_reply_error(r, 503, "no fotad instance drives the rollouts now (%s; lease rollouts, "
                     "docs/scale-out.md): retry in a few seconds", why);
}

/* Answers a's client and frees a (unlinked). */
static void ask_reply(struct fota_rollout_ask *a)
{
    struct fota_req *r = a->r;
    double ms = (double)(fota_clock_mono_ms() - a->t0_ms);

    if (a->end.status > 0) {
        struct evbuffer *b = evbuffer_new();
        if (b)
            evbuffer_add(b, a->end.reply, strlen(a->end.reply));
        FOTA_INFO("rollout request answered by the driver ask=%" PRId64 " driver=%" PRId64
                  " path=%s status=%d ms=%.0f", a->id, a->end.taker, a->path, a->end.status, ms);
        fota_reply_raw(r, a->end.status, "application/json", b);
        if (b)
            evbuffer_free(b);
    } else if (a->end.taker > 0) {
        FOTA_WARN("rollout request not answered by the driver ask=%" PRId64 " driver=%" PRId64
                  " path=%s ms=%.0f", a->id, a->end.taker, a->path, ms);
        fota_reply_error(r, 504, "the fotad instance driving the rollouts took the request and "
                         "did not answer within %d s: GET /v1/rollouts/ shows what it did",
                         ASK_REPLY_MS / 1000);
    } else {
        FOTA_WARN("rollout request not taken ask=%" PRId64 " path=%s ms=%.0f", a->id, a->path,
                  ms);
        reply_no_driver(r, a->rc == FOTA_ENOENT || a->rc == 0 ? "nobody took the request"
                                                              : fota_errname(a->rc));
    }
    fota_req_release(r);
    ask_unlink(a);
    ask_free(a);
}

/* ---- the asker ------------------------------------------------------------ */

static void end_submit(struct fota_rollout_ask *a);

static void timer_cb(evutil_socket_t fd, short what, void *ud)
{
    struct fota_rollout_ask *a = ud;

    (void)fd;
    (void)what;
    if (fota_clock_mono_ms() - a->t0_ms >= ASK_REPLY_MS)
        a->force = 1;
    if (!a->jobs)
        end_submit(a);
}

static void arm(struct fota_rollout_ask *a, int64_t at_ms)
{
    int64_t ms = at_ms - fota_clock_mono_ms();
    struct timeval tv = { 0, 0 };

    if (ms > 0) {
        tv.tv_sec = (time_t)(ms / 1000);
        tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
    }
    evtimer_add(a->timer, &tv);
}

static void end_job(struct fota_store *st, void *arg)
{
    struct fota_rollout_ask *a = arg;

    free(a->end.reply);
    a->rc = fota_store_pg_ask_end(st, a->id, a->force, &a->end);
}

static void end_done(void *arg, int cancelled)
{
    struct fota_rollout_ask *a = arg;

    a->jobs = 0;
    if (cancelled) {
        fota_reply_error(a->r, 503, "fotad is shutting down");
        fota_req_release(a->r);
        ask_unlink(a);
        ask_free(a);
        return;
    }
    if (a->rc == FOTA_EAGAIN) {   /* taken, no reply yet */
        if (a->rang) {
            a->rang = 0;
            end_submit(a);
        } else {
            arm(a, a->t0_ms + ASK_REPLY_MS);
        }
        return;
    }
    if (a->rc < 0 && a->rc != FOTA_ENOENT && !a->force) {   /* the store: again later */
        arm(a, fota_clock_mono_ms() + 100);
        return;
    }
    ask_reply(a);
}

/* Reads how a's request stands: ended (not taken, or answered; with force,
 * in any case) or taken without a reply yet. */
static void end_submit(struct fota_rollout_ask *a)
{
    struct fota_server *srv = a->ro->srv;

    a->jobs = 1;
    a->rang = 0;
    if (fota_store_submit(srv->exec, NULL, srv->loops[0], end_job, end_done, a) != 0) {
        a->jobs = 0;
        arm(a, fota_clock_mono_ms() + 100);   /* the store is busy: again shortly */
    }
}

static void add_job(struct fota_store *st, void *arg)
{
    struct fota_rollout_ask *a = arg;

    a->rc = fota_store_pg_ask_add(st, a->path, a->body, &a->id);
}

static void add_done(void *arg, int cancelled)
{
    struct fota_rollout_ask *a = arg;
    struct fota_rollouts *ro = a->ro;

    a->jobs = 0;
    if (cancelled || a->rc < 0) {
        if (cancelled)
            fota_reply_error(a->r, 503, "fotad is shutting down");
        else
            reply_no_driver(a->r, a->rc == FOTA_ENOENT ? "no instance holds lease rollouts"
                                                       : fota_errname(a->rc));
        fota_req_release(a->r);
        ask_free(a);
        return;
    }
    a->next = ro->asks;
    if (ro->asks)
        ro->asks->prev = a;
    ro->asks = a;
    a->timer = evtimer_new(ro->srv->base, timer_cb, a);
    arm(a, a->t0_ms + ASK_TAKE_MS);
}

void fota_rollout_elsewhere(struct fota_rollouts *ro, struct fota_req *r, const char *path,
                            json_t *body)
{
    struct fota_server *srv = ro->srv;

    if (r->inner) {   /* asked of this instance as the driver, which it no longer is */
        reply_no_driver(r, "the lease moved");
        return;
    }
    struct fota_rollout_ask *a = fota_xcalloc(1, sizeof *a);
    a->ro = ro;
    a->r = r;
    a->path = fota_xstrdup(path);
    a->body = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (!a->body)
        a->body = fota_xstrdup("");
    a->t0_ms = fota_clock_mono_ms();
    a->jobs = 1;
    fota_req_defer(r);
    if (srv->exec && fota_store_submit(srv->exec, NULL, srv->loops[0], add_job, add_done, a) == 0)
        return;
    fota_reply_error(r, 503, "store busy: too many requests wait for the store");
    fota_req_release(r);
    ask_free(a);
}

/* ---- the driver ------------------------------------------------------------- */

/* A request taken here: its row, then its reply. */
struct serve {
    struct fota_rollouts *ro;
    int64_t id;
    int rc;
    char *path, *body;
    int status;
    char *reply;
};

static void serve_free(struct serve *s)
{
    free(s->path);
    free(s->body);
    free(s->reply);
    free(s);
}

static void answer_job(struct fota_store *st, void *arg)
{
    struct serve *s = arg;
    int rc = fota_store_pg_ask_answer(st, s->id, s->status, s->reply);

    if (rc < 0)
        FOTA_WARN("rollout request answer not written ask=%" PRId64 " status=%d error=%s",
                  s->id, s->status, fota_errname(rc));
    serve_free(s);
}

static void answer(struct serve *s)
{
    struct fota_server *srv = s->ro->srv;

    if (fota_store_submit(srv->exec, NULL, NULL, answer_job, NULL, s) != 0) {
        FOTA_WARN("rollout request answer dropped ask=%" PRId64 " reason=\"store busy\"", s->id);
        serve_free(s);
    }
}

/* The route's reply (fota_http_inner; any thread). */
static void served(void *ud, int status, const char *body, size_t len)
{
    struct serve *s = ud;

    (void)len;
    s->status = status;
    s->reply = fota_xstrdup(body);
    answer(s);
}

static void take_job(struct fota_store *st, void *arg)
{
    struct serve *s = arg;

    s->rc = fota_store_pg_ask_take(st, s->id, &s->path, &s->body);
}

static void take_done(void *arg, int cancelled)
{
    struct serve *s = arg;
    struct fota_key admin = { .kind = FOTA_KEY_ADMIN };

    if (cancelled || s->rc < 0) {   /* gone (its asker gave up) or another took it */
        serve_free(s);
        return;
    }
    FOTA_INFO("rollout request taken ask=%" PRId64 " path=%s", s->id, s->path);
    int rc = strncmp(s->path, "/v1/rollouts/", 13) != 0
                 ? FOTA_ENOENT
                 : fota_http_inner(s->ro->srv, EVHTTP_REQ_POST, s->path,
                                   s->body[0] ? s->body : NULL, &admin, served, s);
    if (rc == 0)
        return;   /* s is served()'s */
    s->status = rc == FOTA_EBUSY ? 503 : 404;
    s->reply = fota_xstrdup(rc == FOTA_EBUSY
                                ? "{\"message\": \"store busy: too many requests wait for the "
                                  "store\", \"status\": 503}"
                                : "{\"message\": \"no such rollout route\", \"status\": 404}");
    answer(s);
}

/* The ask ("ask:ID", to the driver) or its answer ("ans:ID:ASKER", to the
 * asker). payload NULL (the listener reconnected): a ring missed meanwhile
 * ends by the asker's deadline. */
static void on_ring(struct fota_server *srv, const char *payload, void *ud)
{
    struct fota_rollouts *ro = ud;
    char *end;

    if (!payload)
        return;
    if (strncmp(payload, "ask:", 4) == 0) {
        int64_t id = strtoll(payload + 4, &end, 10);
        if (ro->epoch == 0 || *end || id <= 0)
            return;
        struct serve *s = fota_xcalloc(1, sizeof *s);
        s->ro = ro;
        s->id = id;
        if (fota_store_submit(srv->exec, NULL, srv->loops[0], take_job, take_done, s) != 0)
            free(s);   /* its asker answers 503 when nobody took it */
        return;
    }
    if (strncmp(payload, "ans:", 4) != 0)
        return;
    int64_t id = strtoll(payload + 4, &end, 10);
    if (*end != ':' || strtoll(end + 1, NULL, 10) != fota_cluster_instance_id(srv))
        return;
    for (struct fota_rollout_ask *a = ro->asks; a; a = a->next) {
        if (a->id != id)
            continue;
        if (a->jobs)
            a->rang = 1;
        else
            end_submit(a);
        return;
    }
}

int fota_rollout_ask_start(struct fota_rollouts *ro)
{
    if (!ro->clustered || !ro->srv->exec)
        return 0;
    return fota_cluster_listen(ro->srv, ASK_CHANNEL, on_ring, ro);
}

void fota_rollout_ask_stop(struct fota_rollouts *ro)
{
    while (ro->asks) {
        struct fota_rollout_ask *a = ro->asks;
        fota_reply_error(a->r, 503, "fotad is shutting down");
        fota_req_release(a->r);
        ask_unlink(a);
        ask_free(a);
    }
}
