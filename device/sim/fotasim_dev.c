/* fotasim_dev.c - the hardware of a virtual ESP8266 in fota-sim: flash
 * with power loss, restarts, timers and TCP connections (libevent
 * bufferevents on the fleet's loop), and the --faults plan on received
 * bytes. The firmware runs through struct fotasim_fw (fotasim_esp.c,
 * fotasim_ard.c); after each call into it the power is checked. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>

#include "fota_str.h"
#include "fotasim_dev.h"

uint32_t fotasim_dev_random(struct fotasim_dev *d)
{
    uint32_t x = d->rnd;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return d->rnd = x;
}

void fotasim_dev_log(const struct fotasim_dev *d, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    if (!getenv("FOTASIM_DEBUG"))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "%.3f dev%d: %s\n", fotasim_fleet_elapsed(d->sim), d->idx, msg);
}

void fotasim_dev_set_reason(struct fotasim_dev *d, const char *reason)
{
    fota_str_copy(d->reason, sizeof(d->reason), reason);
}

/* ---- power and restarts ---- */

static void drop_conn(struct fotasim_dev *d, int c);

static void teardown(struct fotasim_dev *d)
{
    int i;
    for (i = 0; i < FOTASIM_CONN_MAX; i++)
        drop_conn(d, i);
    for (i = 0; i < FOTASIM_TIMER_MAX; i++)
        if (d->timers[i])
            evtimer_del(d->timers[i]);
}

static struct timeval scaled(const struct fotasim_dev *d, uint32_t ms)
{
    struct timeval tv;
    double s = (double)ms / 1000.0 / d->sim->o.time_scale;
    tv.tv_sec = (long)s;
    tv.tv_usec = (long)((s - (double)tv.tv_sec) * 1e6);
    return tv;
}

void fotasim_dev_reboot(struct fotasim_dev *d, int kind, uint32_t delay_ms)
{
    struct timeval tv;
    if (d->halted)
        return;
    if (!d->flash.powered) {       /* whatever the firmware asked for, power is gone */
        kind = FOTASIM_POWER_LOSS;
        d->power_cuts++;
    }
    d->halted = 1;
    d->pending = kind;
    tv = scaled(d, delay_ms);
    evtimer_add(d->reboot_ev, &tv);
}

/* After every call into the firmware: did the flash lose power under it? */
static void check_power(struct fotasim_dev *d)
{
    if (!d->flash.powered && !d->halted)
        fotasim_dev_reboot(d, FOTASIM_POWER_LOSS, 100);
}

void fotasim_dev_check_power(struct fotasim_dev *d)
{
    check_power(d);
}

static void reboot_cb(evutil_socket_t fd, short what, void *arg)
{
    struct fotasim_dev *d = arg;
    int kind = d->pending;

    teardown(d);
    d->pending = 0;
    d->halted = 0;
    d->boot_kind = kind;
    if (kind == FOTASIM_RESTART_FLIP && d->fw->flip && (d->fw->flip(d) < 0 || !d->flash.powered))
        d->power_cuts++;                        /* cut during the flip (its last write may
                                                 * have landed whole: still a cut) */
    if (!d->flash.powered || kind == FOTASIM_POWER_LOSS)
        fotasim_flash_power_on(&d->flash);
    fotasim_dev_boot(d);
}

uint32_t fotasim_dev_now_ms(const struct fotasim_dev *d)
{
    struct timeval tv;
    event_base_gettimeofday_cached(d->sim->base, &tv);
    return (uint32_t)((uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u);
}

/* ---- timers ---- */

static void timer_fire(struct fotasim_dev *d, int id)
{
    if (d->halted)
        return;
    d->fw->on_timer(d, id);
    check_power(d);
}

#define TIMER_CB(n)                                                               \
    static void timer_cb_##n(evutil_socket_t fd, short what, void *arg)           \
    {                                                                             \
        timer_fire(arg, n);                                                       \
    }
TIMER_CB(0)
TIMER_CB(1)
TIMER_CB(2)
TIMER_CB(3)
TIMER_CB(4)
static void (*const timer_cbs[FOTASIM_TIMER_MAX])(evutil_socket_t, short, void *) = {
    timer_cb_0, timer_cb_1, timer_cb_2, timer_cb_3, timer_cb_4};

void fotasim_dev_timer(struct fotasim_dev *d, int id, uint32_t ms)
{
    struct timeval tv;
    if (id < 0 || id >= FOTASIM_TIMER_MAX)
        return;
    evtimer_del(d->timers[id]);
    if (ms == 0 || d->halted)
        return;
    tv = scaled(d, ms);
    evtimer_add(d->timers[id], &tv);
}

/* ---- TCP ---- */

static int conn_index(struct fotasim_dev *d, struct bufferevent *bev)
{
    int i;
    for (i = 0; i < FOTASIM_CONN_MAX; i++)
        if (d->conn[i].bev == bev)
            return i;
    return -1;
}

static void drop_conn(struct fotasim_dev *d, int c)
{
    if (d->conn[c].rd)
        event_free(d->conn[c].rd);        /* before the socket bev closes */
    if (d->conn[c].bev)
        bufferevent_free(d->conn[c].bev);
    d->conn[c].rd = NULL;
    d->conn[c].bev = NULL;
    d->conn[c].direct = 0;
    d->conn[c].up = 0;
}

/* Hands the device one segment (at most --segment bytes on a download,
 * FOTASIM_MSS on the channel) that arrived on connection c: faults, then
 * the firmware. buf may be modified (corrupt@N). */
static void deliver(struct fotasim_dev *d, int c, uint8_t *buf, size_t n)
{
    if (c < 0 || d->halted || n == 0)
        return;
    if (d->faulty && !(d->fault_fired & FOTASIM_FIRED_RX) && d->rx_at >= 0 &&
        d->rx_bytes + n > (uint64_t)d->rx_at) {
        d->fault_fired |= FOTASIM_FIRED_RX;     /* power lost while receiving */
        d->flash.powered = 0;
        check_power(d);
        return;
    }
    d->rx_bytes += n;
    if (c == FOTASIM_CONN_DL) {
        d->dl_bytes += n;
        if (d->faulty && !(d->fault_fired & FOTASIM_FIRED_CORRUPT) && d->corrupt_at >= 0 &&
            d->dl_bytes > (uint64_t)d->corrupt_at) {
            d->fault_fired |= FOTASIM_FIRED_CORRUPT;   /* a bad byte the TCP checksum missed */
            buf[n - (size_t)(d->dl_bytes - (uint64_t)d->corrupt_at)] ^= 0xFF;
        }
        if (d->faulty && !(d->fault_fired & FOTASIM_FIRED_DROP) && d->drop_at >= 0 &&
            d->dl_bytes > (uint64_t)d->drop_at) {
            size_t keep = n - (size_t)(d->dl_bytes - (uint64_t)d->drop_at);
            d->fault_fired |= FOTASIM_FIRED_DROP;
            if (keep)
                d->fw->on_data(d, c, buf, keep);
            if (!d->halted && d->conn[c].bev) {  /* the network drops the download */
                drop_conn(d, c);
                d->fw->on_close(d, c);
            }
            check_power(d);
            return;
        }
    }
    if (c == FOTASIM_CONN_CHAN) {
        /* the server writes one message per segment (TCP_NODELAY); a host
         * socket may merge them, a device would get one callback each */
        size_t off = 0;
        while (off < n && !d->halted && d->conn[c].bev) {
            const uint8_t *nl = memchr(buf + off, '\n', n - off);
            size_t k = nl ? (size_t)(nl - (buf + off)) + 1 : n - off;
            d->fw->on_data(d, c, buf + off, k);
            off += k;
        }
        check_power(d);
        return;
    }
    d->fw->on_data(d, c, buf, n);
    check_power(d);
}

/* Hands the device at most one segment of what the bufferevent holds
 * (--segment bytes on a download, FOTASIM_MSS on the channel). */
static void read_piece(struct bufferevent *bev, void *arg)
{
    static uint8_t buf[FOTASIM_SEGMENT_MAX];   /* one loop: deliveries do not nest */
    struct fotasim_dev *d = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n = evbuffer_get_length(in);
    int c = conn_index(d, bev);
    size_t max = c == FOTASIM_CONN_DL ? d->sim->o.segment : FOTASIM_MSS;

    if (n > max)
        n = max;
    n = (size_t)evbuffer_remove(in, buf, n);
    deliver(d, c, buf, n);
}

/* The connection ended (EOF or error) with nothing left to deliver. */
static void conn_ended(struct fotasim_dev *d, int c)
{
    int was_up = d->conn[c].up;
    drop_conn(d, c);
    if (was_up && c == FOTASIM_CONN_CHAN)
        d->sim->chan_drops++;              /* the server (or the network) closed it */
    if (was_up)
        d->fw->on_close(d, c);
    else
        d->fw->on_connect(d, c, FOTA_EIO);
}

/* A download that is not rate-limited is read straight from its socket
 * (the bufferevent only connects and writes): one recv() of up to
 * FOTASIM_DL_BUFFER bytes per wake-up into one buffer, no FIONREAD and no
 * evbuffer copy, then handed to the device one --segment piece (1,460
 * bytes: one TCP segment) per callback as lwIP would, faults at the same
 * byte positions. While the
 * device still expects k image bytes, SO_RCVLOWAT = min(k, FOTASIM_DL_LOWAT)
 * so a wake-up finds a full buffer instead of the few KB that arrived since
 * the last one (never more than is due: the tail is not held back). */
static void dl_read_cb(evutil_socket_t fd, short what, void *arg)
{
    static uint8_t buf[FOTASIM_DL_BUFFER];   /* one loop, callbacks do not nest */
    struct fotasim_dev *d = arg;
    struct bufferevent *bev = d->conn[FOTASIM_CONN_DL].bev;
    const int c = FOTASIM_CONN_DL;
    ssize_t n;
    size_t off, k;

    (void)what;
    n = recv(fd, buf, sizeof(buf), 0);     /* halted: read and dropped, as read_piece does */
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0 && d->halted) {
        event_del(d->conn[c].rd);          /* the reboot's teardown closes it */
        return;
    }
    if (n <= 0) {
        conn_ended(d, c);
        check_power(d);
        return;
    }
    for (off = 0; off < (size_t)n && d->conn[c].bev == bev && !d->halted; off += k) {
        k = (size_t)n - off < d->sim->o.segment ? (size_t)n - off : d->sim->o.segment;
        deliver(d, c, buf + off, k);
    }
    if (d->conn[c].bev == bev && !d->halted) {
        uint32_t due = d->fw->dl_due ? d->fw->dl_due(d) : 0;
        int lowat = due == 0 ? 1 : due < FOTASIM_DL_LOWAT ? (int)due : FOTASIM_DL_LOWAT;
        if (lowat != d->dl_lowat) {
            d->dl_lowat = lowat;
            setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof(lowat));
        }
    }
}

/* Downloads through the bufferevent (rate-limited links) are read up to
 * FOTASIM_DL_BUFFER at a time and still reach the device one segment per
 * callback. */
static void read_cb(struct bufferevent *bev, void *arg)
{
    struct fotasim_dev *d = arg;
    int c = conn_index(d, bev);
    do
        read_piece(bev, arg);
    while (c == FOTASIM_CONN_DL && d->conn[c].bev == bev && !d->halted &&
           evbuffer_get_length(bufferevent_get_input(bev)) > 0);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct fotasim_dev *d = arg;
    int c = conn_index(d, bev), one = 1;

    if (c < 0 || d->halted)
        return;
    if (what & BEV_EVENT_CONNECTED) {
        evutil_socket_t fd = bufferevent_getfd(bev);
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (d->conn[c].direct) {
            d->conn[c].rd = event_new(d->sim->base, fd, EV_READ | EV_PERSIST, dl_read_cb, d);
            if (!d->conn[c].rd || event_add(d->conn[c].rd, NULL) < 0) {
                conn_ended(d, c);
                check_power(d);
                return;
            }
            d->dl_lowat = 1;
        }
        d->conn[c].up = 1;
        d->fw->on_connect(d, c, 0);
    } else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        int was_up = d->conn[c].up;
        /* deliver what is still buffered, one segment at a time */
        while (was_up && d->conn[c].bev == bev && !d->halted &&
               evbuffer_get_length(bufferevent_get_input(bev)) > 0)
            read_cb(bev, d);
        if (d->conn[c].bev != bev || d->halted)
            return;
        conn_ended(d, c);
    }
    check_power(d);
}

/* --source-addrs N: a socket bound to 127.0.0.(2 + idx % N) with the port
 * left to connect() (IP_BIND_ADDRESS_NO_PORT), so a fleet is not limited
 * to one address's ephemeral ports. -1 (libevent makes the socket) otherwise. */
static evutil_socket_t source_socket(struct fotasim_dev *d, int family)
{
    struct sockaddr_in a;
    evutil_socket_t fd;
    int one = 1;
    if (!d->sim->o.source_addrs || family != AF_INET)
        return -1;
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(0x7F000002u + (uint32_t)d->idx % d->sim->o.source_addrs);
#ifdef IP_BIND_ADDRESS_NO_PORT
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
#endif
    if (evutil_make_socket_nonblocking(fd) < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        evutil_closesocket(fd);
        return -1;
    }
    return fd;
}

int fotasim_dev_connect(struct fotasim_dev *d, int c, const char *host, uint16_t port)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    socklen_t sl;
    struct bufferevent *bev;

    if (c < 0 || c >= FOTASIM_CONN_MAX || d->halted)
        return FOTA_EINVAL;
    drop_conn(d, c);
    if (c == FOTASIM_CONN_DL && d->sim->o.ack_only)
        return 0;                              /* the download never connects */
    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        sl = sizeof(*s4);
    } else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        sl = sizeof(*s6);
    } else {
        return FOTA_EINVAL;
    }
    if (c == FOTASIM_CONN_CHAN && d->sim->ssl_ctx) {
        SSL *ssl = SSL_new(d->sim->ssl_ctx);
        if (!ssl)
            return FOTA_ENOMEM;
        bev = bufferevent_openssl_socket_new(d->sim->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                             BEV_OPT_CLOSE_ON_FREE);
        if (!bev)
            SSL_free(ssl);
    } else {
        bev = bufferevent_socket_new(d->sim->base, source_socket(d, ss.ss_family),
                                     BEV_OPT_CLOSE_ON_FREE);
    }
    if (!bev)
        return FOTA_ENOMEM;
    d->conn[c].bev = bev;
    d->conn[c].up = 0;
    bufferevent_setcb(bev, read_cb, NULL, event_cb, d);
    bufferevent_setwatermark(bev, EV_READ, 0, c == FOTASIM_CONN_DL ? FOTASIM_DL_BUFFER : FOTASIM_MSS);
    if (c == FOTASIM_CONN_DL && d->faulty && d->sim->slow_cfg)
        bufferevent_set_rate_limit(bev, d->sim->slow_cfg);   /* a slow link (timers, no sleeps) */
    else if (c == FOTASIM_CONN_DL)
        d->conn[c].direct = 1;                 /* dl_read_cb reads it once connected */
    bufferevent_enable(bev, d->conn[c].direct ? EV_WRITE : EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(bev, (struct sockaddr *)&ss, (int)sl) < 0) {
        drop_conn(d, c);
        return FOTA_EIO;
    }
    return 0;
}

int fotasim_dev_send(struct fotasim_dev *d, int c, const void *buf, size_t len)
{
    if (c < 0 || c >= FOTASIM_CONN_MAX || !d->conn[c].bev || d->halted || !d->flash.powered)
        return FOTA_ECLOSED;
    return bufferevent_write(d->conn[c].bev, buf, len) == 0 ? 0 : FOTA_EIO;
}

void fotasim_dev_close(struct fotasim_dev *d, int c)
{
    if (c >= 0 && c < FOTASIM_CONN_MAX)
        drop_conn(d, c);
}

/* ---- lifecycle ---- */

/* A fault position for device idx: lo itself, or with a range (hi > lo)
 * a draw from [lo, hi] that depends only on --seed, idx and the kind. */
static long fault_pick(const struct fotasim *s, int idx, uint32_t kind, long lo, long hi)
{
    uint64_t x;
    if (lo < 0 || hi <= lo)
        return lo;
    x = ((uint64_t)s->o.seed << 32 | (uint32_t)idx) * 0x9E3779B97F4A7C15ull + kind;
    x ^= x >> 30;                              /* splitmix64 finaliser */
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 31;
    return lo + (long)(x % (uint64_t)(hi - lo + 1));
}

int fotasim_dev_init(struct fotasim *s, struct fotasim_dev *d, int idx,
                     const struct fotasim_fw *fw, uint32_t flash_size)
{
    const struct fotasim_fault *f = &s->o.fault;
    int i, rc;

    memset(d, 0, sizeof(*d));
    d->sim = s;
    d->idx = idx;
    d->fw = fw;
    d->rnd = (s->o.seed * 2654435761u) ^ ((uint32_t)idx * 40503u + 1u);
    if (!d->rnd)
        d->rnd = 1;
    if ((rc = fotasim_flash_init(&d->flash, flash_size, d->rnd)) < 0)
        return rc;
    d->flash.pool = &s->pool;          /* the loader's version memo */
    d->faulty = s->o.have_fault && (unsigned)(idx * 100) / (unsigned)s->o.devices < f->pct;
    d->flash_at = fault_pick(s, idx, 1, f->flash_at, f->flash_hi);
    d->rx_at = fault_pick(s, idx, 2, f->rx_at, f->rx_hi);
    d->drop_at = fault_pick(s, idx, 3, f->drop_at, f->drop_hi);
    d->corrupt_at = fault_pick(s, idx, 4, f->corrupt_at, f->corrupt_hi);
    for (i = 0; i < FOTASIM_TIMER_MAX; i++)
        if (!(d->timers[i] = evtimer_new(s->base, timer_cbs[i], d)))
            return FOTA_ENOMEM;
    if (!(d->reboot_ev = evtimer_new(s->base, reboot_cb, d)))
        return FOTA_ENOMEM;
    return 0;
}

static void flash_path(const struct fotasim_dev *d, char *path, size_t cap)
{
    snprintf(path, cap, "%s/dev%05d.bin", d->sim->o.flash_dir, d->idx);
}

int fotasim_dev_load_flash(struct fotasim_dev *d)
{
    char path[512];
    int rc;
    if (!d->sim->o.flash_dir)
        return 0;
    flash_path(d, path, sizeof(path));
    rc = fotasim_flash_load(&d->flash, path);
    if (rc == 0)
        d->loaded = 1;                 /* a device from an earlier run */
    return rc == FOTA_ENOENT ? 0 : rc;
}

void fotasim_dev_cleanup(struct fotasim_dev *d)
{
    int i;
    if (d->fw && d->fw->cleanup && d->sim)
        d->fw->cleanup(d);
    teardown(d);
    if (d->sim && d->sim->o.flash_dir && d->flash.sec) {
        char path[512];
        flash_path(d, path, sizeof(path));
        if (fotasim_flash_save(&d->flash, path) < 0)
            fprintf(stderr, "fota-sim: cannot save %s\n", path);
    }
    for (i = 0; i < FOTASIM_TIMER_MAX; i++)
        if (d->timers[i])
            event_free(d->timers[i]);
    if (d->reboot_ev)
        event_free(d->reboot_ev);
    fotasim_flash_cleanup(&d->flash);
}

void fotasim_dev_finish(struct fotasim_dev *d, enum fotasim_state st, const char *reason)
{
    d->state = st;
    if (reason)
        fotasim_dev_set_reason(d, reason);
    if (st == DEV_FAILED || st == DEV_DEAD) {
        d->halted = 1;                 /* switched off: no timer, connection or reboot */
        teardown(d);
        if (d->reboot_ev)
            evtimer_del(d->reboot_ev);
    }
    fotasim_fleet_check_done(d->sim);
}

void fotasim_dev_log_boot(struct fotasim_dev *d, unsigned what)
{
    if (d->boot_logged < FOTASIM_BOOT_LOG_MAX)
        d->boot_log |= (uint32_t)what << (2 * d->boot_logged++);
}

void fotasim_dev_boot(struct fotasim_dev *d)
{
    if (d->halted)
        return;
    d->boots++;
    d->fw->boot(d);
    check_power(d);
}
