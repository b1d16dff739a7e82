/* accept_guard.c - listeners that pause with a back-off when accept() runs
 * out of descriptors, and the descriptor reserve (accept_guard.h). */
#include "accept_guard.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "clock.h"
#include "fota_str.h"
#include "log.h"
#include "xmalloc.h"

struct fota_accept_guard {
    struct event_base *base;
    struct evconnlistener *lst[FOTA_ACCEPT_GUARD_MAX];
    evconnlistener_cb cb[FOTA_ACCEPT_GUARD_MAX];  /* the owner's, per listener */
    void *cb_ud[FOTA_ACCEPT_GUARD_MAX];
    int nlst;
    struct event *retry;
    fota_accept_short_cb on_short;
    void *ud;
    char proto[24];
    unsigned backoff_ms;               /* the next pause's length */
    unsigned reserve;
    uint64_t limit;
    uint64_t failures, pauses;
    int paused;
    int closed;                        /* fota_accept_guard_close: never enabled again */
    uint64_t unlogged;                 /* failures since the last WARN */
    int64_t logged_ms;                 /* that WARN's time (fota_clock_mono_ms), 0: none */
    int last_err;
};

static int want_of_descriptors(int e)
{
    return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

static void retry_cb(evutil_socket_t fd, short what, void *ud)
{
    struct fota_accept_guard *g = ud;
    (void)fd;
    (void)what;
    g->paused = 0;
    for (int i = 0; i < g->nlst && !g->closed; i++)
        evconnlistener_enable(g->lst[i]);
}

/* At most one line a second, with what happened since the last one. */
static void log_failure(struct fota_accept_guard *g)
{
    int64_t now = fota_clock_mono_ms();
    if (g->logged_ms && now - g->logged_ms < 1000)
        return;
    FOTA_WARN("accept paused proto=%s error=\"%s\" failures=%llu retry_ms=%u reserve=%u",
              g->proto, strerror(g->last_err), (unsigned long long)g->unlogged, g->backoff_ms,
              g->reserve);
    g->logged_ms = now;
    g->unlogged = 0;
}

/* A connection: passed to the owner's callback of its listener. */
static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *ud)
{
    struct fota_accept_guard *g = ud;
    g->backoff_ms = FOTA_ACCEPT_BACKOFF_MIN_MS;
    for (int i = 0; i < g->nlst; i++)
        if (g->lst[i] == l) {
            g->cb[i](l, fd, sa, len, g->cb_ud[i]);
            return;
        }
    evutil_closesocket(fd);
}

static void guard_failure(struct fota_accept_guard *g, int e)
{
    g->last_err = e;
    g->unlogged++;
    if (!want_of_descriptors(e)) {
        log_failure(g); /* another error: logged (at most once a second), no pause */
        return;
    }
    g->failures++;
    if (g->on_short)
        g->on_short(g->ud);
    for (int i = 0; i < g->nlst; i++)
        evconnlistener_disable(g->lst[i]);
    g->paused = 1;
    g->pauses++;
    log_failure(g);
    struct timeval tv = { (time_t)(g->backoff_ms / 1000), (suseconds_t)(g->backoff_ms % 1000) * 1000 };
    evtimer_add(g->retry, &tv);
    g->backoff_ms = g->backoff_ms * 2 > FOTA_ACCEPT_BACKOFF_MAX_MS ? FOTA_ACCEPT_BACKOFF_MAX_MS
                                                                   : g->backoff_ms * 2;
}

static void error_cb(struct evconnlistener *l, void *ud)
{
    (void)l;
    guard_failure(ud, EVUTIL_SOCKET_ERROR());
}

/* Adopted listeners of this thread's loop: their callbacks' argument is
 * their owner's, so their errors find the guard here. */
#define ADOPTED_MAX 16
static _Thread_local struct {
    struct evconnlistener *l;
    struct fota_accept_guard *g;
} adopted[ADOPTED_MAX];
static _Thread_local int nadopted;

static void adopted_error_cb(struct evconnlistener *l, void *ud)
{
    int e = EVUTIL_SOCKET_ERROR();
    (void)ud;
    for (int i = 0; i < nadopted; i++)
        if (adopted[i].l == l) {
            guard_failure(adopted[i].g, e);
            return;
        }
}

struct fota_accept_guard *fota_accept_guard_new(struct event_base *base, const char *proto,
                                                fota_accept_short_cb on_short, void *ud)
{
    struct fota_accept_guard *g = fota_xcalloc(1, sizeof *g);
    g->base = base;
    g->on_short = on_short;
    g->ud = ud;
    fota_str_copy(g->proto, sizeof g->proto, proto ? proto : "?");
    g->backoff_ms = FOTA_ACCEPT_BACKOFF_MIN_MS;
    g->retry = evtimer_new(base, retry_cb, g);
    struct rlimit rl;
    g->limit = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                   ? (uint64_t)rl.rlim_cur
                   : UINT64_C(1) << 20;
    uint64_t r = g->limit / 16;
    g->reserve = (unsigned)(r < 16 ? 16 : r > 256 ? 256 : r);
    return g;
}

void fota_accept_guard_free(struct fota_accept_guard *g)
{
    if (!g)
        return;
    for (int i = 0; i < nadopted;)   /* this thread's entries (the others' die with it) */
        if (adopted[i].g == g)
            adopted[i] = adopted[--nadopted];
        else
            i++;
    event_free(g->retry);
    free(g);
}

void fota_accept_guard_close(struct fota_accept_guard *g)
{
    if (!g)
        return;
    g->closed = 1;
    evtimer_del(g->retry);
    for (int i = 0; i < g->nlst; i++)
        evconnlistener_disable(g->lst[i]);
}

int fota_accept_guard_watch(struct fota_accept_guard *g, struct evconnlistener *l,
                            evconnlistener_cb cb, void *ud)
{
    if (g->nlst == FOTA_ACCEPT_GUARD_MAX)
        return FOTA_ETOOBIG;
    g->lst[g->nlst] = l;
    g->cb[g->nlst] = cb;
    g->cb_ud[g->nlst] = ud;
    g->nlst++;
    /* The listener's user data becomes g (libevent passes one pointer to
     * both callbacks); accept_cb hands each connection on to cb(ud). */
    evconnlistener_set_cb(l, accept_cb, g);
    evconnlistener_set_error_cb(l, error_cb);
    return 0;
}

int fota_accept_guard_adopt(struct fota_accept_guard *g, struct evconnlistener *l)
{
    if (g->nlst == FOTA_ACCEPT_GUARD_MAX || nadopted == ADOPTED_MAX)
        return FOTA_ETOOBIG;
    g->lst[g->nlst] = l;
    g->cb[g->nlst] = NULL;
    g->cb_ud[g->nlst] = NULL;
    g->nlst++;
    adopted[nadopted].l = l;
    adopted[nadopted].g = g;
    nadopted++;
    evconnlistener_set_error_cb(l, adopted_error_cb);
    return 0;
}

void fota_accept_guard_accepted(struct fota_accept_guard *g)
{
    g->backoff_ms = FOTA_ACCEPT_BACKOFF_MIN_MS;
}

int fota_accept_guard_short(const struct fota_accept_guard *g, int fd)
{
    return fd >= 0 && (uint64_t)fd + g->reserve >= g->limit;
}

void fota_accept_guard_stats(const struct fota_accept_guard *g, struct fota_accept_guard_stats *out)
{
    out->failures = g->failures;
    out->pauses = g->pauses;
    out->paused = g->paused;
    out->reserve = g->reserve;
    out->limit = g->limit;
}
