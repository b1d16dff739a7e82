/* fotasim_fleet.c - one fota-sim run: the libevent loop shared by every
 * virtual device, the TLS context and slow-link bucket they share, the
 * progress line on a terminal, and the end of the run. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <openssl/ssl.h>

#include "fotasim_dev.h"
#include "fotasim_fleet.h"

double fotasim_fleet_elapsed(const struct fotasim *s)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - s->t0.tv_sec) + (double)(now.tv_nsec - s->t0.tv_nsec) / 1e9;
}

double fotasim_fleet_cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0.0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

void fotasim_fleet_counts(const struct fotasim *s, struct fotasim_counts *c)
{
    int i;
    memset(c, 0, sizeof(*c));
    for (i = 0; i < s->ndevs; i++) {
        const struct fotasim_dev *d = &s->devs[i];
        c->bytes += d->dl_bytes;
        if (d->state == DEV_DONE)
            c->done++;
        else if (d->state == DEV_FAILED || d->state == DEV_DEAD)
            c->failed++;
        else
            c->running++;
    }
}

static void check_now(struct fotasim *s)
{
    struct fotasim_counts c;
    fotasim_fleet_counts(s, &c);
    if (c.running == 0 && !s->finished && (!s->o.hold_s || s->hold_over)) {
        /* --ack-only: the D4 written just now still has to leave the socket;
         * tasmota: the INFO1 that made the last device done, queued by
         * libmosquitto inside its callback */
        struct timeval flush = { 0, 200000 };
        s->finished = 1;
        event_base_loopexit(s->base, s->o.ack_only || s->o.profile == FOTASIM_PROFILE_TASMOTA
                                     ? &flush : NULL);
    }
}

static void check_cb(evutil_socket_t fd, short what, void *arg)
{
    check_now(arg);
}

/* Counting is O(devices): calls within 10 ms are coalesced into one count
 * (a fleet of 19,000 would otherwise count once per device event). */
void fotasim_fleet_check_done(struct fotasim *s)
{
    struct timeval tv = { 0, 10000 };
    if (!evtimer_pending(s->check_ev, NULL))
        evtimer_add(s->check_ev, &tv);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct fotasim *s = arg;
    struct fotasim_counts c;
    fotasim_fleet_counts(s, &c);
    fprintf(stderr, "\r%6.1fs  devices %d  activated %u  running %u  done %u  failed %u  %.1f MB   ",
            fotasim_fleet_elapsed(s), s->o.devices, s->activated, c.running, c.done, c.failed,
            (double)c.bytes / 1e6);
}

static void hold_cb(evutil_socket_t fd, short what, void *arg)
{
    struct fotasim *s = arg;
    s->hold_over = 1;
    fotasim_fleet_check_done(s);
}

/* --timeout, or SIGTERM: the run ends where it stands and its summary is
 * printed (a benchmark that holds a fleet stops it this way and reads how
 * many channels dropped while it was held). */
static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct fotasim *s = arg;
    s->finished = 1;
    event_base_loopexit(s->base, NULL);
}

/* Two sockets per device (channel + download) and a few for the API. */
static void raise_fd_limit(int devices)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max &&
        rl.rlim_cur < (rlim_t)devices * 2 + 64) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int shared_links(struct fotasim *s)
{
    if (s->o.tls) {
        /* IoT_Demo enables no CA check; small devices offer TLS 1.2 */
        s->ssl_ctx = SSL_CTX_new(TLS_client_method());
        if (!s->ssl_ctx)
            return FOTA_ENOMEM;
        SSL_CTX_set_verify(s->ssl_ctx, SSL_VERIFY_NONE, NULL);
        SSL_CTX_set_max_proto_version(s->ssl_ctx, TLS1_2_VERSION);
    }
    if (s->o.fault.slow_bps > 0) {
        /* libevent's token bucket, refilled every 100 ms: rates are per tick */
        struct timeval tick = { 0, 100000 };
        size_t per_tick = (size_t)(s->o.fault.slow_bps / 10 > 0 ? s->o.fault.slow_bps / 10 : 1);
        s->slow_cfg = ev_token_bucket_cfg_new(per_tick, per_tick, EV_RATE_LIMIT_MAX,
                                              EV_RATE_LIMIT_MAX, &tick);
        if (!s->slow_cfg)
            return FOTA_ENOMEM;
    }
    return 0;
}

int fotasim_fleet_init(struct fotasim *s)
{
    struct timeval tv = { 0, 250000 };

    s->cpu_at_push = -1.0;
    clock_gettime(CLOCK_MONOTONIC, &s->t0);
    raise_fd_limit(s->o.devices);
    if (!(s->base = event_base_new()) || !(s->check_ev = evtimer_new(s->base, check_cb, s)) ||
        !(s->timeout = evtimer_new(s->base, timeout_cb, s)) ||
        !(s->term = evsignal_new(s->base, SIGTERM, timeout_cb, s)) || event_add(s->term, NULL) < 0)
        return FOTA_ENOMEM;
    if (shared_links(s) < 0)
        return FOTA_ENOMEM;
    s->tty = isatty(2);
    if (s->tty) {
        if (!(s->tick = event_new(s->base, -1, EV_PERSIST, tick_cb, s)))
            return FOTA_ENOMEM;
        event_add(s->tick, &tv);
    }
    if (s->o.hold_s) {
        if (!(s->hold = evtimer_new(s->base, hold_cb, s)))
            return FOTA_ENOMEM;
        tv.tv_sec = (time_t)s->o.hold_s;
        tv.tv_usec = 0;
        evtimer_add(s->hold, &tv);
    }
    tv.tv_sec = (time_t)s->o.timeout_s;
    tv.tv_usec = 0;
    evtimer_add(s->timeout, &tv);
    return 0;
}

void fotasim_fleet_run(struct fotasim *s)
{
    check_now(s);
    if (!s->finished)
        event_base_dispatch(s->base);
    if (s->tty)
        fprintf(stderr, "\n");
}

void fotasim_fleet_cleanup(struct fotasim *s)
{
    fotasim_pool_cleanup(&s->pool);      /* after the flashes that point into it */
    if (s->tick)
        event_free(s->tick);
    if (s->check_ev)
        event_free(s->check_ev);
    if (s->boot_ev)
        event_free(s->boot_ev);
    if (s->hold)
        event_free(s->hold);
    if (s->timeout)
        event_free(s->timeout);
    if (s->term)
        event_free(s->term);
    if (s->slow_cfg)
        ev_token_bucket_cfg_free(s->slow_cfg);   /* after the devices' bufferevents */
    if (s->ssl_ctx)
        SSL_CTX_free(s->ssl_ctx);
    if (s->base)
        event_base_free(s->base);
}
