/* legacy.c - the seed-000 raw-TCP DFU listener on libevent.
 *
 * One struct conn per TCP connection, driven by bufferevent callbacks and one evtimer each.
 * Paced mode is stop-and-wait: a write of at most `chunk` bytes, then wait until the kernel
 * says the peer acknowledged it (SIOCOUTQ == 0), then `interval_ms`, then the next write.
 * Stream mode hands the whole file to sendfile. See docs/legacy.md for the reasons. */
#include "legacy.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <linux/sockios.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "addr.h"
#include "clock.h"
#include "fota_str.h"
#include "logf.h"
#include "xmalloc.h"

#define LEGACY_LISTENERS_MAX 8
#define ACK_POLL_MIN_MS 1
#define ACK_POLL_MAX_MS 16
#define ACCEPT_RETRY_MS 100

enum conn_state {
    ST_REQUEST,   /* waiting for the request byte (read timeout armed); holds no slot */
    ST_QUEUED,    /* valid request, waiting for a transfer slot */
    ST_LENGTH,    /* paced: the 4-byte length is being written */
    ST_ACKWAIT,   /* paced: polling until the last write is acknowledged */
    ST_GAP,       /* paced: acknowledged, waiting interval_ms */
    ST_CHUNK,     /* paced: one chunk is being written */
    ST_STREAM,    /* stream: length + whole image being written */
    ST_FINAL,     /* everything written, polling until acknowledged */
};

struct conn {
    TAILQ_ENTRY(conn) link;  /* lg->conns */
    TAILQ_ENTRY(conn) qlink; /* lg->waiting while ST_REQUEST, lg->queue while ST_QUEUED */
    struct fota_legacy *lg;
    struct bufferevent *bev;
    struct event *timer;
    struct evbuffer_file_segment *seg;
    uint64_t id;
    uint64_t t_start_ms;
    uint64_t t_wait_ms;      /* when the current acknowledgement wait began */
    unsigned poll_ms;        /* current ack poll period (grows to ACK_POLL_MAX_MS) */
    enum conn_state state;
    int section;
    int stream;
    int active;              /* counted in lg->active */
    uint64_t size;
    uint64_t off;            /* image bytes handed to the output buffer */
    char peer[80];
    char label[96];
};

TAILQ_HEAD(conn_list, conn);

/* One address's empty connections (GCRA: the instant its budget is back). */
struct empty_slot {
    uint64_t key;            /* hash of the address, 0: free */
    uint64_t tat_ms;         /* theoretical arrival time of the next one */
};

struct fota_legacy {
    struct event_base *base;
    struct fota_legacy_conf conf;
    struct fota_legacy_source src;
    fota_log_cb log;
    void *log_ud;
    fota_legacy_record_cb rec_cb;
    void *rec_ud;
    struct evconnlistener *lis[LEGACY_LISTENERS_MAX];
    struct event *accept_retry;
    int nlis;
    struct conn_list conns;
    struct conn_list waiting;  /* no request byte yet, oldest first: shed first */
    struct conn_list queue;
    unsigned nconns;
    unsigned nwaiting;
    /* written on the loop thread only; atomic so fota_legacy_stats may run elsewhere */
    _Atomic unsigned active;
    _Atomic unsigned queued;
    uint64_t next_id;
    _Atomic uint64_t served_ok;
    int pumping;
    int closing;
    int source_wait;         /* open() said FOTA_EAGAIN: nothing starts until source_ready */
    struct empty_slot empty[FOTA_LEGACY_EMPTY_ADDRS];
    uint64_t quiet_held;     /* quiet connections since the last summary line */
    uint64_t quiet_logged_ms;
};

static void conn_finish(struct conn *c, const char *result, const char *detail);
static void conn_start(struct conn *c);

static uint64_t now_ms(void)
{
    return (uint64_t)fota_clock_mono_ms();
}

static struct timeval ms_tv(unsigned ms)
{
    struct timeval tv = { .tv_sec = ms / 1000u, .tv_usec = (ms % 1000u) * 1000 };
    return tv;
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void lg_log(struct fota_legacy *lg, int level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fota_vlogf(lg->log, lg->log_ud, level, fmt, ap);
    va_end(ap);
}

void fota_legacy_conf_init(struct fota_legacy_conf *conf)
{
    conf->chunk = FOTA_LEGACY_DEFAULT_CHUNK;
    conf->interval_ms = FOTA_LEGACY_DEFAULT_INTERVAL_MS;
    conf->timeout_ms = FOTA_LEGACY_DEFAULT_TIMEOUT_MS;
    conf->max_clients = FOTA_LEGACY_DEFAULT_MAX_CLIENTS;
    conf->max_queue = FOTA_LEGACY_DEFAULT_MAX_QUEUE;
    conf->empty_rate = 0;   /* every connection logged, as the private DFU server's log */
}

int fota_legacy_conf_check(const struct fota_legacy_conf *conf, char *err, size_t err_len)
{
    const char *why = NULL;

    if (conf->chunk < 1 || conf->chunk > FOTA_LEGACY_CHUNK_MAX)
        why = "chunk must be 1..1280 (stock clients hold 1280 bytes per receive)";
    else if (conf->interval_ms > 60000)
        why = "interval_ms must be 0..60000";
    else if (conf->timeout_ms < 1 || conf->timeout_ms > 3600000)
        why = "timeout_ms must be 1..3600000";
    else if (conf->max_clients < 1 || conf->max_clients > 100000)
        why = "max_clients must be 1..100000";
    else if (conf->max_queue > 100000)
        why = "max_queue must be 0..100000";
    else if (conf->empty_rate > 1000)
        why = "empty_rate must be 0..1000";
    if (!why)
        return 0;
    if (err && err_len)
        fota_str_copy(err, err_len, why);
    return FOTA_ECONFIG;
}

int fota_legacy_request_parse(uint8_t byte, int *section, int *stream)
{
    int s = byte & 0x7f;

    if (s != 1 && s != 2)
        return FOTA_EPROTO;
    *section = s;
    *stream = (byte & FOTA_LEGACY_REQ_STREAM) ? 1 : 0;
    return 0;
}

void fota_legacy_len_encode(uint32_t len, uint8_t out[4])
{
    out[0] = (uint8_t)(len & 0xff);
    out[1] = (uint8_t)((len >> 8) & 0xff);
    out[2] = (uint8_t)((len >> 16) & 0xff);
    out[3] = (uint8_t)((len >> 24) & 0xff);
}

/* Bytes the kernel still holds for this socket: unsent plus sent-but-unacknowledged.
 * -1 when the connection is gone (reset, or no longer established): after a reset the
 * queue is purged, so a zero count alone would look like success. */
static int sock_outq(evutil_socket_t fd, int *pending)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    int n = 0, err = 0;
    socklen_t elen = sizeof(err);

    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err != 0)
        return -1;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
        (ti.tcpi_state != TCP_ESTABLISHED && ti.tcpi_state != TCP_CLOSE_WAIT))
        return -1;
    if (ioctl(fd, SIOCOUTQ, &n) != 0)
        return -1;
    *pending = n;
    return 0;
}

static void peer_format(const struct sockaddr *sa, socklen_t len, char *out, size_t out_len)
{
    char host[64], serv[8]; /* numeric only: an IPv6 literal with scope fits */

    if (getnameinfo(sa, len, host, sizeof(host), serv, sizeof(serv),
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        snprintf(out, out_len, "?");
        return;
    }
    if (sa->sa_family == AF_INET6)
        snprintf(out, out_len, "[%s]:%s", host, serv);
    else
        snprintf(out, out_len, "%s:%s", host, serv);
}

/* Copies src into a log-safe label: printable ASCII, no quotes or backslashes. */
static void label_clean(char *s)
{
    for (; *s; s++)
        if (*s < 0x20 || *s > 0x7e || *s == '"' || *s == '\\')
            *s = '_';
}

static void conn_free(struct conn *c)
{
    struct fota_legacy *lg = c->lg;

    TAILQ_REMOVE(&lg->conns, c, link);
    lg->nconns--;
    if (c->state == ST_REQUEST) {
        TAILQ_REMOVE(&lg->waiting, c, qlink);
        lg->nwaiting--;
    }
    if (c->state == ST_QUEUED) {
        TAILQ_REMOVE(&lg->queue, c, qlink);
        lg->queued--;
    }
    if (c->active)
        lg->active--;
    if (c->timer)
        event_free(c->timer);
    if (c->bev)
        bufferevent_free(c->bev); /* closes the socket, drops output chains */
    if (c->seg)
        evbuffer_file_segment_free(c->seg); /* closes the image fd once unreferenced */
    free(c);
}

/* Starts queued transfers while slots are free. Guarded: conn_start may finish a conn,
 * which calls back here. */
static void pump(struct fota_legacy *lg)
{
    struct conn *c;

    if (lg->pumping || lg->closing)
        return;
    lg->pumping = 1;
    while (!lg->source_wait && lg->active < lg->conf.max_clients &&
           (c = TAILQ_FIRST(&lg->queue)) != NULL) {
        TAILQ_REMOVE(&lg->queue, c, qlink);
        lg->queued--;
        c->state = ST_LENGTH;   /* out of the queue (conn_start may end it at once) */
        conn_start(c);
    }
    lg->pumping = 0;
}

void fota_legacy_source_ready(struct fota_legacy *lg)
{
    if (!lg)
        return;
    lg->source_wait = 0;
    pump(lg);
}

static uint64_t conn_bytes_sent(const struct conn *c)
{
    uint64_t pending = 0;

    if (c->bev && (c->state == ST_CHUNK || c->state == ST_STREAM)) {
        size_t out = evbuffer_get_length(bufferevent_get_output(c->bev));
        /* stream mode: the output also holds the 4 length bytes until they go out */
        pending = out > c->off ? c->off : out;
    }
    return c->off - pending;
}

/* 1 when an empty connection from peer ("ADDR:PORT", "[ADDR]:PORT") is over
 * its address's budget: FOTA_LEGACY_EMPTY_BURST at once, empty_rate a second. */
static int empty_over(struct fota_legacy *lg, const char *peer)
{
    const char *colon = strrchr(peer, ':');
    size_t n = colon ? (size_t)(colon - peer) : strlen(peer);
    uint64_t key = 1469598103934665603ull;   /* FNV-1a of the address */
    for (size_t i = 0; i < n; i++)
        key = (key ^ (unsigned char)peer[i]) * 1099511628211ull;
    key |= 1;
    struct empty_slot *e = &lg->empty[((key * 0x9E3779B97F4A7C15ull) >> 32) % FOTA_LEGACY_EMPTY_ADDRS];
    uint64_t now = now_ms(), step = 1000u / lg->conf.empty_rate;
    if (e->key != key) {
        e->key = key;
        e->tat_ms = now;
    }
    if (e->tat_ms < now)
        e->tat_ms = now;
    if (e->tat_ms - now >= FOTA_LEGACY_EMPTY_BURST * step)
        return 1;
    e->tat_ms += step;
    return 0;
}

/* One line a second for the quiet connections, with their count. */
static void quiet_note(struct fota_legacy *lg, const struct conn *c, const char *result)
{
    uint64_t now = now_ms();
    lg->quiet_held++;
    if (lg->quiet_logged_ms && now - lg->quiet_logged_ms < 1000)
        return;
    lg_log(lg, FOTA_LOG_WARN,
           "conn=%" PRIu64 " peer=%s event=quiet result=%s quiet=%" PRIu64 " reason=\"connections "
           "without a request over legacy_empty_rate=%u a second from one address\"",
           c->id, c->peer, result, lg->quiet_held, lg->conf.empty_rate);
    lg->quiet_logged_ms = now;
    lg->quiet_held = 0;
}

static void conn_finish(struct conn *c, const char *result, const char *detail)
{
    struct fota_legacy *lg = c->lg;
    struct fota_legacy_record rec;
    int ok = strcmp(result, "ok") == 0;
    int level = ok ? FOTA_LOG_INFO : strcmp(result, "error") == 0 ? FOTA_LOG_ERROR : FOTA_LOG_WARN;
    const char *mode = c->section ? (c->stream ? "stream" : "paced") : "-";

    memset(&rec, 0, sizeof(rec));
    rec.conn_id = c->id;
    rec.peer = c->peer;
    rec.section = c->section;
    rec.mode = mode;
    rec.result = result;
    rec.size = c->size;
    rec.bytes_sent = conn_bytes_sent(c);
    rec.duration_ms = now_ms() - c->t_start_ms;
    rec.label = c->label;
    rec.quiet = c->state == ST_REQUEST && lg->conf.empty_rate && empty_over(lg, c->peer);
    if (rec.quiet)
        quiet_note(lg, c, result);
    else
        lg_log(lg, level,
               "conn=%" PRIu64 " peer=%s event=end section=%d mode=%s result=%s bytes=%" PRIu64
               " size=%" PRIu64 " ms=%" PRIu64 "%s%s image=\"%s\"",
               c->id, c->peer, c->section, mode, result, rec.bytes_sent, c->size,
               rec.duration_ms, detail ? " " : "", detail ? detail : "", c->label);
    if (ok)
        lg->served_ok++;
    if (lg->rec_cb)
        lg->rec_cb(lg->rec_ud, &rec);
    conn_free(c);
    pump(lg);
}

static void timer_arm(struct conn *c, unsigned ms)
{
    struct timeval tv = ms_tv(ms);
    evtimer_add(c->timer, &tv);
}

/* Starts an acknowledgement wait: the next timer tick polls SIOCOUTQ. */
static void ackwait_begin(struct conn *c, enum conn_state st)
{
    c->state = st;
    c->t_wait_ms = now_ms();
    c->poll_ms = ACK_POLL_MIN_MS;
    timer_arm(c, 0);
}

static void chunk_send(struct conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    uint64_t left = c->size - c->off;
    size_t n = left < c->lg->conf.chunk ? (size_t)left : c->lg->conf.chunk;

    if (evbuffer_add_file_segment(out, c->seg, (ev_off_t)c->off, (ev_off_t)n) != 0) {
        conn_finish(c, "error", "why=evbuffer_add_file_segment");
        return;
    }
    c->off += n;
    c->state = ST_CHUNK;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    int pending = 0;

    if (c->state == ST_GAP) {
        chunk_send(c);
        return;
    }
    if (c->state != ST_ACKWAIT && c->state != ST_FINAL)
        return;
    if (sock_outq(bufferevent_getfd(c->bev), &pending) != 0) {
        conn_finish(c, "client_closed", "why=peer_gone");
        return;
    }
    if (pending > 0) {
        if (now_ms() - c->t_wait_ms >= c->lg->conf.timeout_ms) {
            conn_finish(c, "stalled", "why=unacknowledged");
            return;
        }
        timer_arm(c, c->poll_ms);
        if (c->poll_ms < ACK_POLL_MAX_MS)
            c->poll_ms *= 2;
        return;
    }
    if (c->state == ST_FINAL) {
        conn_finish(c, "ok", NULL);
        return;
    }
    c->state = ST_GAP;
    timer_arm(c, c->lg->conf.interval_ms);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;

    switch (c->state) {
    case ST_LENGTH:
    case ST_CHUNK:
        /* written to the kernel: wait for the peer's ACK, then the gap, then the next write */
        ackwait_begin(c, c->off == c->size ? ST_FINAL : ST_ACKWAIT);
        break;
    case ST_STREAM:
        ackwait_begin(c, ST_FINAL);
        break;
    default:
        break;
    }
}

/* Opens the image and queues the first bytes. The conn counts as active from here on. */
static void conn_start(struct conn *c)
{
    struct fota_legacy *lg = c->lg;
    struct timeval wtv = ms_tv(lg->conf.timeout_ms);
    struct stat st;
    uint8_t len4[4];
    uint64_t size = 0;
    int fd = -1, rc;

    c->active = 1;
    lg->active++;
    c->label[0] = '\0';
    rc = lg->src.open(lg->src.ud, c->section, &fd, &size, c->label, sizeof(c->label));
    if (rc == FOTA_EAGAIN) {
        /* the source looks it up: first in line again, until it is ready */
        if (fd >= 0)
            close(fd);
        c->active = 0;
        lg->active--;
        c->state = ST_QUEUED;
        TAILQ_INSERT_HEAD(&lg->queue, c, qlink);
        lg->queued++;
        lg->source_wait = 1;
        return;
    }
    c->label[sizeof(c->label) - 1] = '\0';
    label_clean(c->label);
    if (rc != 0) {
        char why[64];
        snprintf(why, sizeof(why), "why=%s", fota_errname(rc));
        if (fd >= 0)
            close(fd);
        conn_finish(c, rc == FOTA_ENOENT ? "no_image" : "error", why);
        return;
    }
    if (fd < 0 || fstat(fd, &st) != 0 || size > FOTA_LEGACY_IMAGE_MAX ||
        (S_ISREG(st.st_mode) && (uint64_t)st.st_size < size)) {
        if (fd >= 0)
            close(fd);
        conn_finish(c, "error", "why=bad_source_image");
        return;
    }
    c->size = size;
    if (size > 0) {
        c->seg = evbuffer_file_segment_new(fd, 0, (ev_off_t)size, EVBUF_FS_CLOSE_ON_FREE);
        if (!c->seg) {
            close(fd);
            conn_finish(c, "error", "why=file_segment");
            return;
        }
    } else {
        close(fd);
    }
    lg_log(lg, FOTA_LOG_INFO,
           "conn=%" PRIu64 " peer=%s event=start section=%d mode=%s size=%" PRIu64 " image=\"%s\"",
           c->id, c->peer, c->section, c->stream ? "stream" : "paced", size, c->label);
    fota_legacy_len_encode((uint32_t)size, len4);
    bufferevent_set_timeouts(c->bev, NULL, &wtv);
    if (bufferevent_write(c->bev, len4, sizeof(len4)) != 0) {
        conn_finish(c, "error", "why=bufferevent_write");
        return;
    }
    if (c->stream && size > 0) {
        if (evbuffer_add_file_segment(bufferevent_get_output(c->bev), c->seg, 0,
                                      (ev_off_t)size) != 0) {
            conn_finish(c, "error", "why=evbuffer_add_file_segment");
            return;
        }
        c->off = size;
        c->state = ST_STREAM;
    } else {
        c->state = c->stream ? ST_STREAM : ST_LENGTH;
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    uint8_t byte;

    if (c->state != ST_REQUEST) {
        evbuffer_drain(in, evbuffer_get_length(in)); /* nothing more is expected: discard */
        return;
    }
    if (evbuffer_remove(in, &byte, 1) != 1)
        return;
    evbuffer_drain(in, evbuffer_get_length(in));
    if (fota_legacy_request_parse(byte, &c->section, &c->stream) != 0) {
        char why[32];
        snprintf(why, sizeof(why), "byte=0x%02x", byte);
        c->section = 0;
        conn_finish(c, "bad_request", why);
        return;
    }
    /* From here on it holds a slot: running or queued, at most
     * max_clients + max_queue of them. */
    if (c->lg->active + c->lg->queued >= c->lg->conf.max_clients + c->lg->conf.max_queue) {
        char why[96];
        snprintf(why, sizeof(why), "active=%u queued=%u max_clients=%u max_queue=%u",
                 (unsigned)c->lg->active, (unsigned)c->lg->queued, c->lg->conf.max_clients,
                 c->lg->conf.max_queue);
        conn_finish(c, "busy", why);
        return;
    }
    bufferevent_set_timeouts(bev, NULL, NULL);
    TAILQ_REMOVE(&c->lg->waiting, c, qlink);
    c->lg->nwaiting--;
    c->state = ST_QUEUED;
    TAILQ_INSERT_TAIL(&c->lg->queue, c, qlink);
    c->lg->queued++;
    if (c->lg->active >= c->lg->conf.max_clients)
        lg_log(c->lg, FOTA_LOG_INFO,
               "conn=%" PRIu64 " peer=%s event=queued section=%d active=%u queued=%u", c->id,
               c->peer, c->section, c->lg->active, c->lg->queued);
    pump(c->lg);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;
    char why[64];

    if (what & BEV_EVENT_TIMEOUT) {
        conn_finish(c, c->state == ST_REQUEST ? "timeout" : "stalled",
                    (what & BEV_EVENT_READING) ? "why=no_request" : "why=write_timeout");
        return;
    }
    if (what & BEV_EVENT_EOF) {
        int pending = 1;
        if (c->state == ST_REQUEST) {
            conn_finish(c, "client_closed", "why=eof_before_request");
            return;
        }
        /* a stock client hangs up after its CRC check: that is success if it got everything */
        if (c->state == ST_FINAL && sock_outq(bufferevent_getfd(bev), &pending) == 0 &&
            pending == 0) {
            conn_finish(c, "ok", NULL);
            return;
        }
        /* otherwise maybe only a half-close (nc, scripts): keep sending; a peer that is
         * really gone resets the next segment, which ends the transfer as client_closed */
        return;
    }
    if (what & BEV_EVENT_ERROR) {
        int e = EVUTIL_SOCKET_ERROR();
        snprintf(why, sizeof(why), "why=%s", evutil_socket_error_to_string(e));
        for (char *p = why; *p; p++)
            if (*p == ' ')
                *p = '_';
        conn_finish(c, e == EPIPE || e == ECONNRESET ? "client_closed" : "error", why);
    }
}

/* The request byte's wait: short, since a client sends it as soon as it is
 * connected; never longer than timeout_ms. */
static unsigned request_timeout_ms(const struct fota_legacy *lg)
{
    return lg->conf.timeout_ms < FOTA_LEGACY_REQUEST_TIMEOUT_MS ? lg->conf.timeout_ms
                                                                : FOTA_LEGACY_REQUEST_TIMEOUT_MS;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    struct fota_legacy *lg = arg;
    struct conn *c;
    struct timeval rtv = ms_tv(request_timeout_ms(lg));
    char peer[80];
    int one = 1;
    uint64_t id = ++lg->next_id;

    peer_format(sa, (socklen_t)salen, peer, sizeof(peer));
    /* Connections still silent are as many as the slots at most (64 at
     * least): the one silent longest makes room for the new one. */
    unsigned silent_max = lg->conf.max_clients + lg->conf.max_queue;
    if (silent_max < FOTA_LEGACY_SILENT_MIN)
        silent_max = FOTA_LEGACY_SILENT_MIN;
    if (lg->nwaiting >= silent_max) {
        struct conn *old = TAILQ_FIRST(&lg->waiting);
        char why[64];
        snprintf(why, sizeof(why), "why=no_request ms=%" PRIu64, now_ms() - old->t_start_ms);
        conn_finish(old, "shed", why);
    }
    c = fota_xcalloc(1, sizeof(*c));
    c->lg = lg;
    c->id = id;
    c->t_start_ms = now_ms();
    c->state = ST_REQUEST;
    memcpy(c->peer, peer, sizeof(c->peer));
    TAILQ_INSERT_TAIL(&lg->conns, c, link);
    lg->nconns++;
    TAILQ_INSERT_TAIL(&lg->waiting, c, qlink);
    lg->nwaiting++;
    /* every write leaves at once as its own segment: no Nagle merging of small writes */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->bev = bufferevent_socket_new(lg->base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->timer = evtimer_new(lg->base, on_timer, c);
    if (!c->bev || !c->timer) {
        if (!c->bev)
            evutil_closesocket(fd);
        conn_finish(c, "error", "why=no_memory");
        return;
    }
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_set_timeouts(c->bev, &rtv, NULL);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    lg_log(lg, FOTA_LOG_DEBUG, "conn=%" PRIu64 " peer=%s event=connect", id, peer);
}

static void on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
    struct fota_legacy *lg = arg;

    for (int i = 0; i < lg->nlis; i++)
        evconnlistener_enable(lg->lis[i]);
}

/* accept() failing (EMFILE...) would spin a level-triggered listener: pause all of them. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
    struct fota_legacy *lg = arg;
    struct timeval tv = ms_tv(ACCEPT_RETRY_MS);
    int e = EVUTIL_SOCKET_ERROR();

    lg_log(lg, FOTA_LOG_WARN, "event=accept_error err=\"%s\" retry_ms=%d",
           evutil_socket_error_to_string(e), ACCEPT_RETRY_MS);
    for (int i = 0; i < lg->nlis; i++)
        evconnlistener_disable(lg->lis[i]);
    evtimer_add(lg->accept_retry, &tv);
}

struct fota_legacy *fota_legacy_new(struct event_base *base, const struct fota_legacy_conf *conf,
                                    const struct fota_legacy_source *src, fota_log_cb log,
                                    void *log_ud)
{
    struct fota_legacy *lg;

    if (!base || !src || !src->open)
        return NULL;
    lg = fota_xcalloc(1, sizeof(*lg));
    if (conf)
        lg->conf = *conf;
    else
        fota_legacy_conf_init(&lg->conf);
    if (fota_legacy_conf_check(&lg->conf, NULL, 0) != 0) {
        free(lg);
        return NULL;
    }
    lg->base = base;
    lg->src = *src;
    lg->log = log;
    lg->log_ud = log_ud;
    TAILQ_INIT(&lg->conns);
    TAILQ_INIT(&lg->waiting);
    TAILQ_INIT(&lg->queue);
    lg->accept_retry = evtimer_new(base, on_accept_retry, lg);
    if (!lg->accept_retry) {
        free(lg);
        return NULL;
    }
    return lg;
}

int fota_legacy_set_conf(struct fota_legacy *lg, const struct fota_legacy_conf *conf)
{
    if (fota_legacy_conf_check(conf, NULL, 0) != 0)
        return FOTA_ECONFIG;
    lg->conf = *conf;
    pump(lg);
    return 0;
}

void fota_legacy_set_record_cb(struct fota_legacy *lg, fota_legacy_record_cb cb, void *ud)
{
    lg->rec_cb = cb;
    lg->rec_ud = ud;
}

int fota_legacy_listen(struct fota_legacy *lg, const char *addr, int port, int *bound_port)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE;
    struct evconnlistener *l;

    if (port < 0 || port > 65535)
        return FOTA_EINVAL;
    if (lg->nlis >= LEGACY_LISTENERS_MAX)
        return FOTA_ERANGE;
    if (fota_addr_parse(addr && *addr ? addr : "0.0.0.0", port, &ss, &sslen, NULL, 0) != 0)
        return FOTA_EINVAL;
    /* "::" stays dual-stack (IPv4 devices reach it too), as fotad's other listeners */
    l = evconnlistener_new_bind(lg->base, on_accept, lg, flags, 511, (struct sockaddr *)&ss,
                                (int)sslen);
    if (!l)
        return FOTA_EIO;
    evconnlistener_set_error_cb(l, on_accept_error);
    lg->lis[lg->nlis++] = l;
    if (bound_port) {
        *bound_port = port;
        sslen = sizeof(ss);
        if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&ss, &sslen) == 0)
            *bound_port = ss.ss_family == AF_INET6
                              ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                              : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    return 0;
}

int fota_legacy_listen_fd(struct fota_legacy *lg, int fd)
{
    struct evconnlistener *l;
    unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC;

    if (fd < 0)
        return FOTA_EINVAL;
    if (lg->nlis >= LEGACY_LISTENERS_MAX) {
        evutil_closesocket(fd);
        return FOTA_ERANGE;
    }
    evutil_make_socket_nonblocking(fd);
    l = evconnlistener_new(lg->base, on_accept, lg, flags, 0 /* already listening */, fd);
    if (!l) {
        evutil_closesocket(fd);
        return FOTA_ENOMEM;
    }
    evconnlistener_set_error_cb(l, on_accept_error);
    lg->lis[lg->nlis++] = l;
    return 0;
}

void fota_legacy_stop_listening(struct fota_legacy *lg)
{
    for (int i = 0; i < lg->nlis; i++)
        evconnlistener_free(lg->lis[i]);
    lg->nlis = 0;
    evtimer_del(lg->accept_retry);
}

void fota_legacy_stats(const struct fota_legacy *lg, unsigned *active, unsigned *queued,
                       uint64_t *served_ok)
{
    if (active)
        *active = lg->active;
    if (queued)
        *queued = lg->queued;
    if (served_ok)
        *served_ok = lg->served_ok;
}

void fota_legacy_free(struct fota_legacy *lg)
{
    struct conn *c;

    if (!lg)
        return;
    lg->closing = 1;
    fota_legacy_stop_listening(lg);
    while ((c = TAILQ_FIRST(&lg->conns)) != NULL)
        conn_finish(c, "shutdown", NULL);
    event_free(lg->accept_retry);
    free(lg);
}
