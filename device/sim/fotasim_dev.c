/* fotasim_dev.c - one virtual ESP8266 in fota-sim: its flash and boot
 * loader (fotasim.h), the libfotadev HAL implemented with libevent
 * bufferevents and timers, power loss, restarts and fault injection. What
 * happens to the device goes to the fleet's on_event callback. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>

#include "fota_str.h"
#include "fotasim_dev.h"

static uint32_t dev_random(void *ud)
{
    struct fotasim_dev *d = ud;
    uint32_t x = d->rnd;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return d->rnd = x;
}

static void vlog(void *ud, int level, const char *msg)
{
    struct fotasim_dev *d = ud;
    if (getenv("FOTASIM_DEBUG"))
        fprintf(stderr, "%.3f dev%d: %s\n", fotasim_fleet_elapsed(d->sim), d->idx, msg);
}

/* ---- power and restarts ---- */

static void drop_conn(struct fotasim_dev *d, int c);

static void teardown(struct fotasim_dev *d)
{
    int i;
    for (i = 0; i < FOTADEV_CONN_MAX; i++)
        drop_conn(d, i);
    for (i = 0; i < FOTADEV_TIMER_MAX; i++)
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

static void request_reboot(struct fotasim_dev *d, int kind, uint32_t delay_ms)
{
    struct timeval tv;
    if (d->halted)
        return;
    if (!d->flash.powered) {       /* whatever the agent asked for, power is gone */
        kind = 3;
        d->power_cuts++;
    }
    d->halted = 1;
    d->pending = kind;
    tv = scaled(d, delay_ms);
    evtimer_add(d->reboot_ev, &tv);
}

/* After every call into the agent: did the flash lose power under it? */
static void check_power(struct fotasim_dev *d)
{
    if (!d->flash.powered && !d->halted)
        request_reboot(d, 3, 100);
}

static void reboot_cb(evutil_socket_t fd, short what, void *arg)
{
    struct fotasim_dev *d = arg;
    int kind = d->pending;

    teardown(d);
    d->pending = 0;
    d->halted = 0;
    if (kind == 2 && (fotasim_boot_flip(&d->flash, &d->lay) < 0 || !d->flash.powered))
        d->power_cuts++;                        /* cut during the flip (its last write may
                                                 * have landed whole: still a cut) */
    if (!d->flash.powered || kind == 3)
        fotasim_flash_power_on(&d->flash);
    fotasim_dev_boot(d);
}

static void hal_upgrade_reboot(void *ud)
{
    request_reboot(ud, 2, 10);
}

static void hal_restart(void *ud)
{
    request_reboot(ud, 1, 10);
}

/* ---- flash / sysparam ---- */

static int hal_sp_load(void *ud, uint16_t sec, uint32_t off, void *buf, uint32_t len)
{
    struct fotasim_dev *d = ud;
    struct fotadev_flash_ops o = fotasim_flash_ops(&d->flash);
    return fotadev_sysparam_load(&o, sec, off, buf, len);
}

static int hal_sp_save(void *ud, uint16_t sec, const void *buf, uint32_t len)
{
    struct fotasim_dev *d = ud;
    struct fotadev_flash_ops o = fotasim_flash_ops(&d->flash);
    return fotadev_sysparam_save(&o, sec, buf, len);
}

static int hal_running_slot(void *ud)
{
    struct fotasim_dev *d = ud;
    return fotasim_boot_running_slot(&d->flash, &d->lay);
}

static uint32_t hal_now(void *ud)
{
    struct fotasim_dev *d = ud;
    struct timeval tv;
    event_base_gettimeofday_cached(d->sim->base, &tv);
    return (uint32_t)((uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u);
}

/* ---- timers ---- */

static void timer_fire(struct fotasim_dev *d, int id)
{
    if (d->halted)
        return;
    fotadev_agent_on_timer(&d->agent, id);
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
static void (*const timer_cbs[FOTADEV_TIMER_MAX])(evutil_socket_t, short, void *) = {
    timer_cb_0, timer_cb_1, timer_cb_2, timer_cb_3, timer_cb_4};

static void hal_timer(void *ud, int id, uint32_t ms)
{
    struct fotasim_dev *d = ud;
    struct timeval tv;
    if (id < 0 || id >= FOTADEV_TIMER_MAX)
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
    for (i = 0; i < FOTADEV_CONN_MAX; i++)
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
 * the agent. buf may be modified (corrupt@N). */
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
    if (c == FOTADEV_CONN_DL) {
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
                fotadev_agent_on_data(&d->agent, c, buf, keep);
            if (!d->halted && d->conn[c].bev) {  /* the network drops the download */
                drop_conn(d, c);
                fotadev_agent_on_close(&d->agent, c);
            }
            check_power(d);
            return;
        }
    }
    if (c == FOTADEV_CONN_CHAN) {
        /* the server writes one message per segment (TCP_NODELAY); a host
         * socket may merge them, a device would get one callback each */
        size_t off = 0;
        while (off < n && !d->halted && d->conn[c].bev) {
            const uint8_t *nl = memchr(buf + off, '\n', n - off);
            size_t k = nl ? (size_t)(nl - (buf + off)) + 1 : n - off;
            fotadev_agent_on_data(&d->agent, c, buf + off, k);
            off += k;
        }
        if (!d->halted && d->conn[c].bev && d->sim->on_event)
            d->sim->on_event(d->sim->on_event_ud, d, FOTASIM_EV_CHAN_RX, NULL);
        check_power(d);
        return;
    }
    fotadev_agent_on_data(&d->agent, c, buf, n);
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
    size_t max = c == FOTADEV_CONN_DL ? d->sim->o.segment : FOTASIM_MSS;

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
    if (was_up && c == FOTADEV_CONN_CHAN)
        d->sim->chan_drops++;              /* the server (or the network) closed it */
    if (was_up)
        fotadev_agent_on_close(&d->agent, c);
    else
        fotadev_agent_on_connect(&d->agent, c, FOTA_EIO);
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
    struct bufferevent *bev = d->conn[FOTADEV_CONN_DL].bev;
    const int c = FOTADEV_CONN_DL;
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
        uint32_t due = fotadev_agent_dl_due(&d->agent);
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
    while (c == FOTADEV_CONN_DL && d->conn[c].bev == bev && !d->halted &&
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
        fotadev_agent_on_connect(&d->agent, c, 0);
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

static int hal_connect(void *ud, int c, const char *host, uint16_t port)
{
    struct fotasim_dev *d = ud;
    struct sockaddr_storage ss;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    socklen_t sl;
    struct bufferevent *bev;

    if (c < 0 || c >= FOTADEV_CONN_MAX || d->halted)
        return FOTA_EINVAL;
    drop_conn(d, c);
    if (c == FOTADEV_CONN_DL && d->sim->o.ack_only)
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
    if (c == FOTADEV_CONN_CHAN && d->sim->ssl_ctx) {
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
    bufferevent_setwatermark(bev, EV_READ, 0, c == FOTADEV_CONN_DL ? FOTASIM_DL_BUFFER : FOTASIM_MSS);
    if (c == FOTADEV_CONN_DL && d->faulty && d->sim->slow_cfg)
        bufferevent_set_rate_limit(bev, d->sim->slow_cfg);   /* a slow link (timers, no sleeps) */
    else if (c == FOTADEV_CONN_DL)
        d->conn[c].direct = 1;                 /* dl_read_cb reads it once connected */
    bufferevent_enable(bev, d->conn[c].direct ? EV_WRITE : EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(bev, (struct sockaddr *)&ss, (int)sl) < 0) {
        drop_conn(d, c);
        return FOTA_EIO;
    }
    return 0;
}

static int hal_send(void *ud, int c, const void *buf, size_t len)
{
    struct fotasim_dev *d = ud;
    if (c < 0 || c >= FOTADEV_CONN_MAX || !d->conn[c].bev || d->halted || !d->flash.powered)
        return FOTA_ECLOSED;
    return bufferevent_write(d->conn[c].bev, buf, len) == 0 ? 0 : FOTA_EIO;
}

static void hal_close(void *ud, int c)
{
    struct fotasim_dev *d = ud;
    if (c >= 0 && c < FOTADEV_CONN_MAX)
        drop_conn(d, c);
}

static void set_reason(struct fotasim_dev *d, const char *why)
{
    fota_str_copy(d->reason, sizeof(d->reason), why);
}

/* The device's own bookkeeping of an agent event; the fleet's on_event
 * (the app) sees every event afterwards. */
static void hal_event(void *ud, int ev, int err, const char *what)
{
    struct fotasim_dev *d = ud;
    struct fotasim *s = d->sim;
    char why[sizeof(d->reason)];

    if (getenv("FOTASIM_DEBUG"))
        fprintf(stderr, "%.3f dev%d: event %d (%s)\n", fotasim_fleet_elapsed(s), d->idx, ev,
                what ? what : "");
    switch (ev) {
    case FOTADEV_EV_CONNECTED:
        if (d->activated && !s->o.upgrade_to && d->state == DEV_RUNNING)
            d->state = DEV_DONE;               /* check-in run: identified */
        break;
    case FOTADEV_EV_UPGRADE_DONE: {
        /* every device holds the same image now: keep one copy */
        uint32_t first = d->lay.slot_addr[d->agent.target_slot] / FOTADEV_SECTOR;
        (void)fotasim_pool_adopt(&s->pool, &d->flash, first, d->lay.slot_size / FOTADEV_SECTOR);
        break;
    }
    case FOTADEV_EV_ACTIVATED:
        d->activated = 1;
        if (!d->ever_activated)
            s->activated++;
        d->ever_activated = 1;
        if (!s->o.upgrade_to && d->state == DEV_RUNNING)
            d->state = DEV_DONE;
        break;
    case FOTADEV_EV_UPGRADE_START:
        if (d->t_start <= 0)
            d->t_start = (float)fotasim_fleet_elapsed(s);
        if (s->cpu_at_push < 0)
            s->cpu_at_push = fotasim_fleet_cpu_seconds();
        if (s->o.ack_only && d->state == DEV_RUNNING)
            d->state = DEV_DONE;               /* acknowledged: all this run wants */
        break;
    case FOTADEV_EV_ACTIVATE_FAILED:
    case FOTADEV_EV_REFUSED:
        /* the server will not take this key: a stock device would retry
         * forever; the simulator stops it with the server's reason */
        snprintf(why, sizeof(why), "the server refused the device key: %s (%d)",
                 what && what[0] ? what : "no reason given", d->agent.chan.refused_status);
        if (s->on_event)
            s->on_event(s->on_event_ud, d, ev, what);
        fotasim_dev_finish(d, DEV_FAILED, why);
        return;
    case FOTADEV_EV_UPGRADE_FAILED:
        set_reason(d, what);
        break;
    default:
        break;
    }
    if (s->on_event)
        s->on_event(s->on_event_ud, d, ev, what);
    fotasim_fleet_check_done(s);
}

/* ---- lifecycle ---- */

static void rand_hex(struct fotasim_dev *d, char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < n; i++)
        out[i] = hex[dev_random(d) & 15u];
    out[n] = '\0';
}

/* factory: master_device_key in esp_param (copy at priv+1), not activated */
static int write_esp_param(struct fotasim_dev *d)
{
    struct fotadev_flash_ops ops = fotasim_flash_ops(&d->flash);
    uint8_t esp_param[84];
    int rc = 0;
    memset(esp_param, 0, sizeof(esp_param));
    memcpy(esp_param, d->devkey, FOTADEV_KEY_LEN);
    memcpy(esp_param + 40, d->token, FOTADEV_KEY_LEN);
    if (d->lay.privparam_sec)
        rc = fotadev_sysparam_save(&ops, (uint16_t)(d->lay.privparam_sec + 1), esp_param,
                                   sizeof(esp_param));
    d->flash.ops = 0;
    return rc;
}

/* A master_device_key.bin sector, flashed as `esptool write_flash` does
 * (fotad's X-Fota-Flash-Address): the second copy of the protected
 * esp_param area (priv + 2), with an erased flag sector (priv + 3), which
 * system_param_load then reads. Key and token come from it. */
static int write_key_sector(struct fotasim_dev *d, const uint8_t *sec)
{
    uint8_t *ff;
    int rc;

    if (!d->lay.privparam_sec)
        return FOTA_EINVAL;                    /* no IoT_Demo parameter area in this map */
    if (!(ff = malloc(FOTADEV_SECTOR)))
        return FOTA_ENOMEM;
    memset(ff, 0xFF, FOTADEV_SECTOR);
    rc = fotasim_flash_program(&d->flash, (uint32_t)(d->lay.privparam_sec + 2) * FOTADEV_SECTOR, sec,
                               FOTADEV_SECTOR);
    if (rc == 0)
        rc = fotasim_flash_program(&d->flash, (uint32_t)(d->lay.privparam_sec + 3) * FOTADEV_SECTOR,
                                   ff, FOTADEV_SECTOR);
    free(ff);
    fota_str_copy_n(d->devkey, sizeof(d->devkey), (const char *)sec, FOTADEV_KEY_LEN);
    fota_str_copy_n(d->token, sizeof(d->token), (const char *)sec + 40, FOTADEV_KEY_LEN);
    return rc;
}

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

void fotasim_dev_rekey(struct fotasim_dev *d, const char *devkey)
{
    fota_str_copy(d->devkey, sizeof(d->devkey), devkey);
    (void)write_esp_param(d);
}

/* Flash: the factory image (shared sectors), or the device's flash from
 * --flash-dir; the keys: a key sector, a given key or a made-up one. */
static int dev_flash_setup(struct fotasim_dev *d, const char *devkey, const uint8_t *keysector)
{
    struct fotasim *s = d->sim;
    int rc;

    if ((rc = fotasim_flash_init(&d->flash, d->lay.flash_size, d->rnd)) < 0)
        return rc;
    d->flash.pool = &s->pool;          /* the loader's version memo */
    if ((rc = fotasim_flash_program_shared(&d->flash, d->lay.slot_addr[0], s->factory,
                                           (uint32_t)((s->factory_len + 4095) & ~(size_t)4095))) < 0)
        return rc;
    if (s->o.flash_dir) {
        char path[512];
        snprintf(path, sizeof(path), "%s/dev%05d.bin", s->o.flash_dir, d->idx);
        rc = fotasim_flash_load(&d->flash, path);
        if (rc == 0)
            d->loaded = 1;             /* a device from an earlier run */
        else if (rc != FOTA_ENOENT)
            return rc;
    }
    rand_hex(d, d->token, FOTADEV_KEY_LEN);
    if (keysector && !d->loaded)
        return write_key_sector(d, keysector);
    if (keysector)
        fota_str_copy_n(d->devkey, sizeof(d->devkey), (const char *)keysector, FOTADEV_KEY_LEN);
    else if (devkey)
        fota_str_copy(d->devkey, sizeof(d->devkey), devkey);
    else
        rand_hex(d, d->devkey, FOTADEV_KEY_LEN);
    return d->loaded ? 0 : write_esp_param(d);
}

static void dev_hal_setup(struct fotasim_dev *d)
{
    d->hal.ud = d;
    d->hal.flash = fotasim_flash_ops(&d->flash);
    d->hal.sysparam_load = hal_sp_load;
    d->hal.sysparam_save = hal_sp_save;
    d->hal.running_slot = hal_running_slot;
    d->hal.upgrade_reboot = hal_upgrade_reboot;
    d->hal.restart = hal_restart;
    d->hal.now_ms = hal_now;
    d->hal.timer = hal_timer;
    d->hal.tcp_connect = hal_connect;
    d->hal.tcp_send = hal_send;
    d->hal.tcp_close = hal_close;
    d->hal.random = dev_random;
    d->hal.event = hal_event;
    d->hal.log = vlog;
}

int fotasim_dev_init(struct fotasim *s, struct fotasim_dev *d, int idx, const char *devkey,
                     const uint8_t *keysector)
{
    const struct fotasim_fault *f = &s->o.fault;
    int i, rc;

    memset(d, 0, sizeof(*d));
    d->sim = s;
    d->idx = idx;
    d->rnd = (s->o.seed * 2654435761u) ^ ((uint32_t)idx * 40503u + 1u);
    if (!d->rnd)
        d->rnd = 1;
    if ((rc = fotadev_layout_get((unsigned)s->o.map, &d->lay)) < 0 ||
        (rc = dev_flash_setup(d, devkey, keysector)) < 0)
        return rc;
    d->bssid[0] = 0x18;
    d->bssid[1] = 0xfe;
    d->bssid[2] = 0x34;
    d->bssid[3] = (uint8_t)s->o.seed;
    d->bssid[4] = (uint8_t)(idx >> 8);
    d->bssid[5] = (uint8_t)idx;
    d->faulty = s->o.have_fault && (unsigned)(idx * 100) / (unsigned)s->o.devices < f->pct;
    d->flash_at = fault_pick(s, idx, 1, f->flash_at, f->flash_hi);
    d->rx_at = fault_pick(s, idx, 2, f->rx_at, f->rx_hi);
    d->drop_at = fault_pick(s, idx, 3, f->drop_at, f->drop_hi);
    d->corrupt_at = fault_pick(s, idx, 4, f->corrupt_at, f->corrupt_hi);
    dev_hal_setup(d);
    for (i = 0; i < FOTADEV_TIMER_MAX; i++)
        if (!(d->timers[i] = evtimer_new(s->base, timer_cbs[i], d)))
            return FOTA_ENOMEM;
    if (!(d->reboot_ev = evtimer_new(s->base, reboot_cb, d)))
        return FOTA_ENOMEM;
    return 0;
}

void fotasim_dev_cleanup(struct fotasim_dev *d)
{
    int i;
    teardown(d);
    if (d->sim && d->sim->o.flash_dir && d->flash.sec) {
        char path[512];
        snprintf(path, sizeof(path), "%s/dev%05d.bin", d->sim->o.flash_dir, d->idx);
        if (fotasim_flash_save(&d->flash, path) < 0)
            fprintf(stderr, "fota-sim: cannot save %s\n", path);
    }
    for (i = 0; i < FOTADEV_TIMER_MAX; i++)
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
        set_reason(d, reason);
    if (st == DEV_FAILED || st == DEV_DEAD) {
        d->halted = 1;                 /* switched off: no timer, connection or reboot */
        teardown(d);
        if (d->reboot_ev)
            evtimer_del(d->reboot_ev);
    }
    fotasim_fleet_check_done(d->sim);
}

/* The loader's part of a boot: which image starts (logged for
 * --json-devices). Returns 1 when an image runs, 0 when the device stops
 * (power lost while the loader saved: it reboots; nothing bootable). */
static int dev_load(struct fotasim_dev *d)
{
    struct fotasim *s = d->sim;
    struct fotasim_boot b;

    d->boots++;
    if (fotasim_boot_run(&d->flash, &d->lay, s->o.loader, &b) < 0 || !d->flash.powered) {
        request_reboot(d, 3, 100);          /* cut while the loader saved */
        return 0;
    }
    if (d->boot_logged < FOTASIM_BOOT_LOG_MAX) {
        uint32_t what = !b.ok ? FOTASIM_BOOT_NONE
                        : strcmp(b.version, s->o.initial_version) == 0 ? FOTASIM_BOOT_INITIAL
                        : s->o.upgrade_to && strcmp(b.version, s->o.upgrade_to) == 0
                            ? FOTASIM_BOOT_TARGET : FOTASIM_BOOT_OTHER;
        d->boot_log |= what << (2 * d->boot_logged++);
    }
    if (!b.ok) {
        fotasim_dev_finish(d, DEV_DEAD, "no bootable image");
        return 0;
    }
    fota_str_copy(d->version, sizeof(d->version), b.version);
    return 1;
}

/* The running image's start: IoT_Demo reads esp_param and runs the agent. */
static void dev_start_agent(struct fotasim_dev *d)
{
    struct fotasim *s = d->sim;
    struct fotadev_agent_cfg cfg;
    uint8_t esp_param[84];

    d->activated = 0;
    d->rpc_upgrade_sent = 0;
    d->rpc_on_rx = 0;
    if (d->lay.privparam_sec && hal_sp_load(d, (uint16_t)(d->lay.privparam_sec + 1), 0, esp_param,
                                            sizeof(esp_param)) == 0)
        d->activated = esp_param[80] == 1;
    if (d->faulty && !(d->fault_fired & FOTASIM_FIRED_FLASH) && d->flash_at >= 0) {
        d->fault_fired |= FOTASIM_FIRED_FLASH;
        d->flash.cut_at = d->flash.ops + d->flash_at;
    }
    memset(&cfg, 0, sizeof(cfg));
    cfg.profile = (enum fotadev_profile)s->o.profile;
    cfg.host = s->o.server;
    cfg.chan_port = (uint16_t)s->o.device_port;
    cfg.http_port = (uint16_t)s->o.http_port;
    cfg.legacy_port = (uint16_t)s->o.legacy_port;
    cfg.devkey = d->devkey;
    cfg.token = d->token;
    memcpy(cfg.bssid, d->bssid, 6);
    cfg.version = d->version;
    cfg.activated = d->activated;
    cfg.map = (unsigned)s->o.map;
    cfg.legacy_stream_ext = s->o.stream_ext;
    if (strlen(d->version) > FOTADEV_VERSION_LEN || fotadev_agent_init(&d->agent, &d->hal, &cfg) < 0) {
        fotasim_dev_finish(d, DEV_FAILED, "image version does not fit the 15-byte field");
        return;
    }
    fotadev_agent_start(&d->agent);
    check_power(d);
}

void fotasim_dev_boot(struct fotasim_dev *d)
{
    struct fotasim *s = d->sim;

    if (d->halted || !dev_load(d))
        return;
    if (s->o.upgrade_to && strcmp(d->version, s->o.upgrade_to) == 0) {
        if (d->t_done <= 0)
            d->t_done = (float)fotasim_fleet_elapsed(s);
        fotasim_dev_finish(d, DEV_DONE, NULL);
        /* with --hold the device lives on (connects, identifies, pings) */
        if (!s->o.hold_s || s->o.profile == FOTADEV_PROFILE_SEED_DFU)
            return;
    } else {
        d->state = DEV_RUNNING;
    }
    if (s->o.profile == FOTADEV_PROFILE_SEED_DFU) {
        if (!s->o.upgrade_to) {
            fotasim_dev_finish(d, DEV_DONE, NULL);
            return;
        }
        if (d->attempts >= s->o.max_attempts) {
            fotasim_dev_finish(d, DEV_FAILED, d->reason[0] ? NULL : "too many attempts");
            return;
        }
        d->attempts++;
    }
    dev_start_agent(d);
}
