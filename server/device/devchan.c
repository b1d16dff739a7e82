/* devchan.c - the device channel module: listeners on device_port and
 * device_tls_port, per-address limits, line framing on each connection's
 * bufferevent, and the dispatch of each decoded frame to its handler
 * (devchan_handle_*.c). Pings, timers and unknown paths are answered here.
 * The protocol bytes come from devproto; connections from devchan_conn.c. */
#include "devchan_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "accept_guard.h"
#include "clock.h"
#include "cluster.h"
#include "devchan_gone.h"
#include "hub.h"
#include "http.h"
#include "log.h"
#include "rpc.h"
#include "xmalloc.h"

/* Frames after the handshake: the connection must be online and keep its key. */
static void dispatch_online(struct fota_dconn *c, const struct fota_devproto_frame *f)
{
    char out[160];
    if (!FOTA_DCONN_IDENTIFIED(c)) {
        fota_devchan_conn_refuse(c, 401, "identify first", "frame before activation or identify");
        return;
    }
    if (!fota_devchan_conn_same_key(c, f)) {
        fota_devchan_conn_refuse(c, 403, "unknown key", "key differs from the identified one");
        return;
    }
    /* A check-in moves the device's last_active (written by the presence
     * batch); a reply to a push is the server's own exchange, on a
     * connection the ping timeout keeps alive: a push to the whole fleet
     * would otherwise rewrite every device's row (and its indexes) once
     * more. */
    if (f->kind != FOTA_DP_REPLY)
        fota_devchan_conn_touch(c);
    switch (f->kind) {
    case FOTA_DP_PING:
        fota_devchan_conn_send(c, out, fota_devproto_reply_ping(out, sizeof out));
        break;
    case FOTA_DP_TIMERS:
        fota_devchan_conn_send(c, out,
                               fota_devproto_reply_timers(out, sizeof out, fota_clock_wall_s()));
        break;
    case FOTA_DP_MESSAGE:
        fota_devchan_handle_message(c, f);
        break;
    case FOTA_DP_REPLY:
        fota_devchan_handle_reply(c, f);
        break;
    default:
        FOTA_INFO("device frame ignored conn=%llu dev=%lld reason=\"unknown path\"",
                  (unsigned long long)c->id, (long long)c->device_id);
        fota_devchan_conn_send(c, out,
                               fota_devproto_reply_refusal(out, sizeof out, 404, "unknown path"));
        break;
    }
}

static void on_line(struct fota_dconn *c, const char *line, size_t len)
{
    struct fota_devproto_frame f;
    if (!fota_devproto_d4_parse(line, len, &f)) /* acknowledgements: no JSON parse */
        fota_devproto_classify(line, len, &f);
    switch (f.kind) {
    case FOTA_DP_INVALID:
        fota_devchan_conn_refuse(c, 400, "invalid json", "invalid JSON line");
        break;
    case FOTA_DP_ACTIVATE:
        fota_devchan_handle_activate(c, &f);
        break;
    case FOTA_DP_IDENTIFY:
        fota_devchan_handle_identify(c, &f);
        break;
    case FOTA_DP_DATAPOINT:
        fota_devchan_handle_datapoint(c, &f);
        break;
    default:
        dispatch_online(c, &f);
        break;
    }
    fota_devproto_frame_cleanup(&f);
}

static void read_cb(struct bufferevent *bev, void *ud);
static void event_cb(struct bufferevent *bev, short what, void *ud);

/* One reason to pause c's reading is gone; with none left it reads again,
 * starting with the lines already in its input buffer. */
static void resume(struct fota_dconn *c, unsigned why)
{
    if (fota_devchan_conn_unpause(c, why))
        read_cb(c->bev, c);
}

static void resume_cb(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    resume(ud, FOTA_DCONN_PAUSE_RATE);
}

/* c's next message is over its device's rate: nothing more is read from
 * it for wait_ms (its input stays buffered, TCP holds the rest back). */
static void pause_for_rate(struct fota_dconn *c, int64_t wait_ms)
{
    if (!c->resume_ev)
        c->resume_ev = evtimer_new(c->ch->srv->base, resume_cb, c);
    bufferevent_disable(c->bev, EV_READ);
    fota_metric_inc(&c->ch->m_paused[0]);
    c->paused |= FOTA_DCONN_PAUSE_RATE;
    struct timeval tv = { (time_t)(wait_ms / 1000), (suseconds_t)(wait_ms % 1000) * 1000 };
    evtimer_add(c->resume_ev, &tv);
}

/* ping_timeout as a libevent common timeout (one queue for every connection). */
static const struct timeval *ping_tv(struct fota_devchan *ch, struct timeval *tv)
{
    tv->tv_sec = (time_t)ch->conf->ping_timeout;
    tv->tv_usec = 0;
    const struct timeval *ct = event_base_init_common_timeout(ch->srv->base, tv);
    return ct ? ct : tv;
}

/* The replies of a paused connection drained to half the limit. */
static void out_drained_cb(struct bufferevent *bev, void *ud)
{
    struct fota_dconn *c = ud;
    struct timeval tv;
    bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
    bufferevent_setcb(bev, read_cb, NULL, event_cb, c);
    bufferevent_set_timeouts(bev, c->online ? ping_tv(c->ch, &tv) : NULL, NULL);
    resume(c, FOTA_DCONN_PAUSE_OUT);
}

/* c does not read its replies: more than FOTA_DEVCHAN_OUT_MAX bytes wait.
 * Its requests are not read either until they drain (memory per connection
 * stays bounded; the device's own TCP window holds it back). If nothing of
 * them is read for ping_timeout, the connection closes. */
static void pause_for_output(struct fota_dconn *c)
{
    char pb[80];
    struct timeval tv;
    FOTA_INFO("device replies unread, reading paused conn=%llu dev=%lld peer=%s bytes=%zu",
              (unsigned long long)c->id, (long long)c->device_id,
              fota_devchan_conn_peer(c, pb, sizeof pb),
              evbuffer_get_length(bufferevent_get_output(c->bev)));
    bufferevent_disable(c->bev, EV_READ);
    fota_metric_inc(&c->ch->m_paused[1]);
    c->paused |= FOTA_DCONN_PAUSE_OUT;
    bufferevent_setwatermark(c->bev, EV_WRITE, FOTA_DEVCHAN_OUT_MAX / 2, 0);
    bufferevent_setcb(c->bev, read_cb, out_drained_cb, event_cb, c);
    const struct timeval *pt = ping_tv(c->ch, &tv);
    bufferevent_set_timeouts(c->bev, c->online ? pt : NULL, pt);
}

/* c holds no complete line: a connection winding down (its peer closed, or
 * retiring with nothing more in its socket) is freed. 1 if it was. */
static int ended(struct fota_dconn *c)
{
    if (!c->eof && !(c->retiring && !fota_devchan_conn_unread(c)))
        return 0;
    size_t left = evbuffer_get_length(bufferevent_get_input(c->bev));
    if (left)
        FOTA_DEBUG("device connection closed with a partial line conn=%llu dev=%lld bytes=%zu",
                   (unsigned long long)c->id, (long long)c->device_id, left);
    fota_devchan_conn_free(c);
    return 1;
}

static void read_cb(struct bufferevent *bev, void *ud)
{
    struct fota_dconn *c = ud;
    struct evbuffer *in = bufferevent_get_input(bev);
    char line[FOTA_DEVPROTO_LINE_MAX + 1];
    if (c->paused)
        return;
    /* Bounded: at most 64 lines per wake-up, the rest on the next read event. */
    for (int i = 0; i < 64 && !c->closing; i++) {
        size_t avail = evbuffer_get_length(in);
        if (avail == 0) {
            ended(c);
            return;
        }
        size_t m = avail < FOTA_DEVPROTO_LINE_MAX + 1 ? avail : FOTA_DEVPROTO_LINE_MAX + 1;
        const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)m);
        size_t ll = 0, used = 0;
        int rc = fota_devproto_line(p, m, &ll, &used);
        if (rc == 0) {
            ended(c);
            return;
        }
        if (rc < 0) {
            fota_devchan_conn_refuse(c, 413, "line too long", "line over 2048 bytes");
            return;
        }
        if (ll == 0) {
            evbuffer_drain(in, used);
            continue;
        }
        if (c->queued && !c->eof && !c->retiring &&
            evbuffer_get_length(bufferevent_get_output(bev)) > FOTA_DEVCHAN_OUT_MAX) {
            pause_for_output(c);
            return;
        }
        int64_t wait_ms = c->online ? fota_devchan_rate_take(c) : 0;
        if (wait_ms > 0) {
            pause_for_rate(c, wait_ms);
            return;
        }
        memcpy(line, p, ll);
        line[ll] = '\0';
        evbuffer_drain(in, used);
        on_line(c, line, ll); /* never frees c: refusals close from a deferred callback */
        if (c->paused)        /* its store job's continuation reads on */
            return;
    }
    if (!c->closing && evbuffer_get_length(in) > 0)
        bufferevent_trigger(bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
}

/* ch->wind_down: no rate or unread replies hold c's remaining lines back
 * (its replies go nowhere, or to a device that replaced it); its read_cb
 * runs from the loop's next turn unless a store job still holds it. */
static void wind_down(struct fota_dconn *c)
{
    /* Retiring, bytes in its socket that make no frame within this are given
     * up; after an EOF nothing more is read (its lines are in its buffer). */
    struct timeval tv = { FOTA_DEVCHAN_RETIRE_MS / 1000, (FOTA_DEVCHAN_RETIRE_MS % 1000) * 1000 };
    if (c->paused & FOTA_DCONN_PAUSE_RATE)
        evtimer_del(c->resume_ev);
    if (c->paused & FOTA_DCONN_PAUSE_OUT) {
        bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
        bufferevent_setcb(c->bev, read_cb, NULL, event_cb, c);
    }
    bufferevent_set_timeouts(c->bev, c->retiring && !c->eof ? &tv : NULL, NULL);
    if (fota_devchan_conn_unpause(c, FOTA_DCONN_PAUSE_RATE | FOTA_DCONN_PAUSE_OUT))
        bufferevent_trigger(c->bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
}

static void event_cb(struct bufferevent *bev, short what, void *ud)
{
    struct fota_dconn *c = ud;
    char pb[80];
    (void)bev;
    if (what & BEV_EVENT_CONNECTED) { /* TLS handshake done */
        c->handshaken = 1;
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) { /* online: no ping, or its replies unread, for ping_timeout;
                                       retiring: bytes that made no frame in time */
        FOTA_INFO("device connection timed out conn=%llu dev=%lld peer=%s state=%s",
                  (unsigned long long)c->id, (long long)c->device_id,
                  fota_devchan_conn_peer(c, pb, sizeof pb),
                  c->retiring ? "retiring" : what & BEV_EVENT_WRITING ? "unread" : "silent");
        fota_devchan_conn_free(c);
        return;
    }
    if (what & BEV_EVENT_ERROR)
        FOTA_DEBUG("device connection error conn=%llu dev=%lld tls_error=%lu", (unsigned long long)c->id,
                   (long long)c->device_id, c->tls ? bufferevent_get_openssl_error(c->bev) : 0UL);
    /* EOF or an error: the lines it sent before are handled first (a
     * device's D7 report and its reboot; TLS reports the close before the
     * last records' lines reach the input); read_cb frees it once none is
     * left. */
    if (!c->eof) {
        c->eof = 1;
        bufferevent_disable(bev, EV_READ);
        wind_down(c);
    }
}

/* Why a connection just accepted on fd from addr is turned away at once
 * (enum fota_devchan_refusal, with the limit it met in *limit), or -1. */
static int refusal(struct fota_devchan *ch, int fd, const char *addr, unsigned *limit)
{
    struct fota_accept_guard_stats gs;
    unsigned per_addr = ch->conf->max_per_addr ? ch->conf->max_per_addr
                                               : FOTA_DEVCHAN_MAX_PER_ADDR;
    if (ch->srv->draining)
        return FOTA_DC_REFUSED_DRAINING;
    if (fota_devchan_conn_count(ch, addr) >= (*limit = per_addr))
        return FOTA_DC_REFUSED_PER_ADDR;
    if (fota_accept_guard_short(ch->guard, fd)) { /* the newest anonymous one goes: this */
        fota_accept_guard_stats(ch->guard, &gs);
        *limit = (unsigned)(gs.limit - gs.reserve);
        return FOTA_DC_REFUSED_RESERVE;
    }
    if (ch->nanon >= (*limit = fota_devchan_anon_limit(ch)))
        return FOTA_DC_REFUSED_ANONYMOUS;
    return -1;
}

/* accept() failed for want of descriptors: the newest anonymous connections
 * give theirs back (the rest of fotad needs them), the listeners pause. */
static void descriptors_short(void *ud)
{
    fota_devchan_conn_shed(ud, FOTA_DEVCHAN_SHED_BATCH, "out of descriptors");
}

/* The address text and port of a peer. */
static uint16_t peer_addr(const struct sockaddr *sa, char *addr, size_t alen)
{
    addr[0] = '\0';
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const void *)sa;
        inet_ntop(AF_INET, &s->sin_addr, addr, (socklen_t)alen);
        return ntohs(s->sin_port);
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const void *)sa;
        inet_ntop(AF_INET6, &s->sin6_addr, addr, (socklen_t)alen);
        return ntohs(s->sin6_port);
    }
    return 0;
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *ud)
{
    struct fota_devchan *ch = ud;
    (void)salen;
    int tls = l == ch->lst[1];
    char addr[48];
    uint16_t port = peer_addr(sa, addr, sizeof addr);
    unsigned limit = 0;
    int why = refusal(ch, fd, addr, &limit);
    if (why >= 0) {
        fota_devchan_conn_refused(ch, (enum fota_devchan_refusal)why, addr, port, limit);
        evutil_closesocket(fd);
        if (why == FOTA_DC_REFUSED_ANONYMOUS) /* the guard's back-off enabled them */
            fota_devchan_anon_pause(ch, limit);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* Until it identifies, a connection has at most as long as an HTTP
     * request may take, counted from now: an absolute deadline (the
     * channel's anonymous list), not an idle timeout that each byte resets. */
    unsigned ht = fota_http_conf(ch->srv)->http_timeout;
    ch->hello_ms = 1000u * (ht < FOTA_DEVCHAN_HELLO_TIMEOUT ? ht : FOTA_DEVCHAN_HELLO_TIMEOUT);
    struct fota_dconn *c = fota_devchan_conn_new(ch, fd, addr, port, tls);
    if (!c)
        return;
    bufferevent_setcb(c->bev, read_cb, NULL, event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (ch->nanon >= (limit = fota_devchan_anon_limit(ch)))
        fota_devchan_anon_pause(ch, limit);
    char pb[80];
    FOTA_DEBUG("device connected conn=%llu dev=0 peer=%s tls=%d", (unsigned long long)c->id,
               fota_devchan_conn_peer(c, pb, sizeof pb), tls);
}

static int listen_on(struct fota_devchan *ch, int tls, int port)
{
    int bound = 0;
    int fd = fota_server_bind(ch->srv, tls ? "device-tls" : "device", port, &bound);
    if (fd < 0)
        return fd;
    ch->lst[tls] = evconnlistener_new(ch->srv->base, accept_cb, ch,
                                      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
    if (!ch->lst[tls]) {
        evutil_closesocket(fd);
        FOTA_ERROR("cannot listen proto=%s error=\"evconnlistener_new failed\"",
                   tls ? "device-tls" : "device");
        return FOTA_EIO;
    }
    return fota_accept_guard_watch(ch->guard, ch->lst[tls], accept_cb, ch);
}

/* A connection is being freed: an unanswered sys_upgrade goes back to the queue. */
static void conn_closed(struct fota_dconn *c)
{
    fota_devchan_requeue_on_close(c, fota_devchan_kick_later);
}

static void hello_timer_cb(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    fota_devchan_conn_expire(ud);
}

static void presence_timer_cb(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    struct fota_devchan *ch = ud;
    if (fota_cluster_presence_lost(ch->srv))
        fota_devchan_presence_all(ch);
    fota_devchan_presence_flush(ch);
    fota_devchan_rate_sweep(ch);
}

static void module_stop(struct fota_server *srv, void *state)
{
    struct fota_devchan *ch = state;
    if (!ch)
        return;
    for (int i = 0; i < 2; i++)
        if (ch->lst[i])
            evconnlistener_free(ch->lst[i]);
    fota_accept_guard_free(ch->guard); /* after its listeners */
    fota_devchan_reports_flush(ch);   /* before the connections go: they are paused */
    while (ch->conns)
        fota_devchan_conn_free(ch->conns);
    fota_devchan_presence_flush(ch);
    fota_devchan_reports_free(ch);
    fota_devchan_waits_free(ch);
    fota_devchan_kick_free(ch);
    fota_devchan_requeue_free(ch);
    fota_devchan_rate_free(ch);
    fota_rpc_free(ch->rpc);
    if (ch->pres_ev)
        event_free(ch->pres_ev);
    if (ch->hello_ev)
        event_free(ch->hello_ev);
    free(ch->pres);
    fota_devchan_gone_hooks(ch, 0);
    if (srv->devchan == ch)
        srv->devchan = NULL;
    free(ch);
}

static void module_drain(struct fota_server *srv, void *state)
{
    struct fota_devchan *ch = state;
    (void)srv;
    fota_accept_guard_close(ch->guard); /* no retry enables them again */
    fota_rpc_drain(ch->rpc);
    fota_devchan_presence_flush(ch);
    fota_devchan_reports_flush(ch);
}

static int module_start(struct fota_server *srv, void **state)
{
    struct fota_devchan *ch = fota_xcalloc(1, sizeof *ch);
    ch->srv = srv;
    ch->conf = fota_server_module_conf(srv, &fota_device_module);
    ch->closed = conn_closed;
    ch->resume = resume;
    ch->wind_down = wind_down;
    ch->hello_ms = 1000u * FOTA_DEVCHAN_HELLO_TIMEOUT;
    int rc = fota_devchan_metrics_register(ch);
    if (rc < 0) {
        free(ch);
        return rc;
    }
    ch->hello_ev = evtimer_new(srv->base, hello_timer_cb, ch);
    fota_devchan_job_lanes(ch);
    ch->guard = fota_accept_guard_new(srv->base, "device", descriptors_short, ch);
    fota_devchan_presence_reset(ch);
    signal(SIGPIPE, SIG_IGN); /* a device that vanishes mid-write must not kill fotad */
    if (ch->conf->port != FOTA_PORT_OFF)
        rc = listen_on(ch, 0, ch->conf->port);
    if (rc == 0 && srv->ssl_ctx && ch->conf->tls_port != FOTA_PORT_OFF)
        rc = listen_on(ch, 1, ch->conf->tls_port);
    if (rc < 0) {
        module_stop(srv, ch);
        return rc;
    }
    ch->pres_ev = event_new(srv->base, -1, EV_PERSIST, presence_timer_cb, ch);
    struct timeval tv = { FOTA_DEVCHAN_PRESENCE_MS / 1000, (FOTA_DEVCHAN_PRESENCE_MS % 1000) * 1000 };
    event_add(ch->pres_ev, &tv);
    fota_devchan_gone_hooks(ch, 1);
    if (srv->http && !(ch->rpc = fota_rpc_new(srv, ch))) {
        FOTA_ERROR("cannot add the device RPC routes");
        module_stop(srv, ch);
        return FOTA_ENOMEM;
    }
    srv->devchan = ch;   /* the rollout module pushes through it (fota_devchan_send) */
    *state = ch;
    return 0;
}

#define ROW(f) FOTA_CONF_FIELD(struct fota_devchan_conf, f)
static const struct fota_conf_opt devchan_rows[] = {
    { "device_port", FOTA_CONF_T_PORT, ROW(port), "8000", 0, 65535, 0,
      "Device channel (one JSON object per line, plain TCP)." },
    { "device_tls_port", FOTA_CONF_T_PORT, ROW(tls_port), "8443", 0, 65535, FOTA_CONF_TLS,
      "Device channel over TLS; used only when tls_cert and tls_key are set." },
    { "ping_timeout", FOTA_CONF_T_UINT, ROW(ping_timeout), "120", 5, 86400, FOTA_CONF_RELOAD,
      "Seconds without a ping before a device counts as offline and is disconnected." },
    { "device_max_per_addr", FOTA_CONF_T_UINT, ROW(max_per_addr), "256", 1, 1000000,
      FOTA_CONF_RELOAD, "Device channel: concurrent connections from one IP address (more are refused and logged)." },
    { "device_msg_rate", FOTA_CONF_T_UINT, ROW(msg_rate), "10", 0, 1000000, FOTA_CONF_RELOAD,
      "Device channel: messages per second one device may send (its bursts: device_msg_burst); "
      "beyond it fotad reads its connection no faster (nothing is dropped) and logs "
      "\"device throttled\" at most once a second. 0 = no limit." },
    { "device_msg_burst", FOTA_CONF_T_UINT, ROW(msg_burst), "50", 1, 1000000, FOTA_CONF_RELOAD,
      "Device channel: messages one device may send at once before device_msg_rate applies." },
    { "device_max_anonymous", FOTA_CONF_T_UINT, ROW(max_anonymous), "16384", 1, 1000000,
      FOTA_CONF_RELOAD,
      "Device channel: connections not identified yet (and at most three quarters of the "
      "descriptors left after fotad's reserve); at the bound the device listeners stop "
      "accepting until a quarter of them identified or closed (new connections wait in the "
      "kernel's backlog), logged." },
    { "cmd_route_ms", FOTA_CONF_T_UINT, ROW(cmd_route_ms), "150", 10, 10000, FOTA_CONF_RELOAD,
      "Several fotad on one PostgreSQL: milliseconds an RPC for a device not connected here "
      "waits for the instance that holds it to take the command; past it the command stays "
      "queued (202), as for an offline device." },
    { NULL, 0, 0, 0, NULL, 0, 0, 0, NULL }
};

const struct fota_module fota_device_module = {
    .name = "device",
    .conf_opts = devchan_rows,
    .conf_size = sizeof(struct fota_devchan_conf),
    .start = module_start,
    .reload = NULL,
    .drain = module_drain,
    .stop = module_stop,
};
