/* devchan.c - the device channel's connections: listeners on device_port and
 * device_tls_port, line framing on bufferevents, the activate/identify
 * handshake, pings, timeouts, per-address limits and batched presence.
 * The protocol bytes come from devproto.c; commands from devchan_cmd.c. */
#include "devchan_int.h"
#include "devchan_d4.h"
#include "devchan_gone.h"
#include "devchan_requeue.h"

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
#include <openssl/ssl.h>
#include <jansson.h>

#include "log.h"
#include "rom.h"
#include "rpc.h"
#include "rpc_fanout.h"

static unsigned dev_bucket(int64_t id)
{
    return (unsigned)((uint64_t)id * 0x9E3779B97F4A7C15ull >> (64 - FOTA_DEVCHAN_DEV_BITS));
}

static unsigned addr_bucket(const char *a)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *a; a++)
        h = (h ^ (unsigned char)*a) * 16777619u;
    return h % FOTA_DEVCHAN_BUCKETS;
}

/* "ip:port" of c for logs, built on demand: a connection keeps no copy (memory per device). */
static const char *peer_of(const struct fota_dconn *c, char *buf, size_t n)
{
    const char *a = c->addrc ? c->addrc->addr : "?";
    if (strchr(a, ':'))
        snprintf(buf, n, "[%s]:%u", a, (unsigned)c->port);
    else
        snprintf(buf, n, "%s:%u", a, (unsigned)c->port);
    return buf;
}

static void dev_unhash(struct fota_dconn *c)
{
    if (!c->hashed)
        return;
    for (struct fota_dconn **pp = &c->ch->by_dev[dev_bucket(c->device_id)]; *pp; pp = &(*pp)->hnext)
        if (*pp == c) {
            *pp = c->hnext;
            break;
        }
    c->hashed = 0;
}

/* Finds or adds the address's counter. NULL on out-of-memory. */
static struct fota_addr_count *addr_get(struct fota_devchan *ch, const char *addr, int create)
{
    unsigned b = addr_bucket(addr);
    for (struct fota_addr_count *a = ch->by_addr[b]; a; a = a->next)
        if (strcmp(a->addr, addr) == 0)
            return a;
    if (!create)
        return NULL;
    struct fota_addr_count *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    snprintf(a->addr, sizeof a->addr, "%s", addr);
    a->next = ch->by_addr[b];
    ch->by_addr[b] = a;
    return a;
}

static void addr_put(struct fota_devchan *ch, struct fota_addr_count *a)
{
    if (!a || --a->n > 0)
        return;
    for (struct fota_addr_count **pp = &ch->by_addr[addr_bucket(a->addr)]; *pp; pp = &(*pp)->next)
        if (*pp == a) {
            *pp = a->next;
            break;
        }
    free(a);
}

static void presence_set(struct fota_dconn *c, int online);

static void conn_free(struct fota_dconn *c)
{
    struct fota_devchan *ch = c->ch;
    fota_devchan_requeue_on_close(c);   /* an unanswered sys_upgrade goes back to the queue */
    if (c->online) {
        presence_set(c, 0); /* O(1) through its batch slot: a mass disconnect stays linear */
        FOTA_INFO("device offline conn=%llu dev=%lld", (unsigned long long)c->id,
                  (long long)c->device_id);
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        ch->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    ch->nconns--;
    dev_unhash(c);
    addr_put(ch, c->addrc);
    if (c->deliver_ev)
        event_free(c->deliver_ev);
    bufferevent_free(c->bev);
    free(c);
}

void fota_dconn_send(struct fota_dconn *c, const char *buf, int len)
{
    if (len <= 0 || c->closing)
        return;
    /* Plain connection with nothing pending: one send(), no output chain
     * allocated and freed per reply (pings are the hot path; transient
     * chains fragment the heap of a 19,000-device storm). What the socket
     * does not take, and any error, goes through the bufferevent as before.
     * Whether anything can be pending is kept in c (queued), so a fan-out's
     * push touches neither the bufferevent nor its output buffer. */
    if (!c->tls && (!c->queued || evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)) {
        c->queued = 0;
        ssize_t n = send(c->fd, buf, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n == len)
            return;
        if (n > 0) {
            buf += n;
            len -= (int)n;
        }
    }
    c->queued = 1;
    bufferevent_write(c->bev, buf, (size_t)len);
}

static void event_cb(struct bufferevent *bev, short what, void *ud);

static void flushed_cb(struct bufferevent *bev, void *ud)
{
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        conn_free(ud);
}

void fota_dconn_close_with(struct fota_dconn *c, const char *line, int n, int status,
                           const char *log_reason)
{
    char pb[80];
    FOTA_WARN("device refused conn=%llu dev=%lld peer=%s status=%d reason=\"%s\"",
              (unsigned long long)c->id, (long long)c->device_id, peer_of(c, pb, sizeof pb), status,
              log_reason);
    fota_dconn_send(c, line, n);
    c->closing = 1;
    bufferevent_disable(c->bev, EV_READ);
    struct timeval tv = { 5, 0 };
    bufferevent_set_timeouts(c->bev, NULL, &tv);
    bufferevent_setcb(c->bev, NULL, flushed_cb, event_cb, c);
    /* Freed from the (deferred) write callback, never inside the caller. */
    bufferevent_trigger(c->bev, EV_WRITE, BEV_TRIG_DEFER_CALLBACKS);
}

void fota_dconn_refuse(struct fota_dconn *c, int status, const char *why, const char *log_reason)
{
    char line[160];
    int n = fota_devproto_reply_refusal(line, sizeof line, status, why);
    fota_dconn_close_with(c, line, n, status, log_reason);
}

struct fota_dconn *fota_devchan_find(struct fota_devchan *ch, int64_t device_id)
{
    for (struct fota_dconn *c = ch->by_dev[dev_bucket(device_id)]; c; c = c->hnext)
        if (c->online && c->device_id == device_id)
            return c;
    return NULL;
}

int fota_devchan_online(struct fota_devchan *ch, int64_t device_id)
{
    return ch && fota_devchan_find(ch, device_id) != NULL;
}

int fota_devchan_port(const struct fota_devchan *ch, int tls)
{
    return ch->port[tls ? 1 : 0];
}

static void presence_flush(struct fota_devchan *ch)
{
    if (ch->npres == 0)
        return;
    int rc = ch->srv->store->ops->device_presence_batch(ch->srv->store, ch->pres, ch->npres);
    if (rc < 0)
        FOTA_ERROR("presence batch failed rows=%zu error=%s", ch->npres, fota_errname(rc));
    ch->npres = 0;
    ch->pres_gen++;
}

static void presence_timer_cb(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    presence_flush(ud);
}

void fota_devchan_presence(struct fota_devchan *ch, int64_t device_id, int online)
{
    if (device_id <= 0)
        return;
    /* Connections find their own row through their slot (presence_set); here
     * only the newest rows are checked (a reconnect). A device may appear
     * twice in a batch: the rows are written in order, the last one wins. */
    for (size_t i = ch->npres > 8 ? ch->npres - 8 : 0; i < ch->npres; i++) {
        if (ch->pres[i].device_id == device_id) {
            ch->pres[i].online = online;
            ch->pres[i].last_active = fota_server_now();
            return;
        }
    }
    if (ch->npres == ch->cappres) {
        size_t cap = ch->cappres ? ch->cappres * 2 : 64;
        if (cap > 65536) {
            presence_flush(ch);
            cap = ch->cappres;
        } else {
            struct fota_presence *p = realloc(ch->pres, cap * sizeof *p);
            if (!p) {
                presence_flush(ch);
                cap = ch->cappres;
            } else {
                ch->pres = p;
                ch->cappres = cap;
            }
        }
        if (ch->npres == ch->cappres)
            return; /* out of memory and nothing to flush: the next ping retries */
    }
    ch->pres[ch->npres++] = (struct fota_presence){ device_id, fota_server_now(), online };
}

/* A check-in of an online connection: its row in the current batch is
 * found in O(1) through the slot it remembers (pings are the hot path);
 * otherwise the general path adds (or finds) the row. */
static void presence_set(struct fota_dconn *c, int online)
{
    struct fota_devchan *ch = c->ch;
    if (c->pres_gen == ch->pres_gen && c->pres_slot < ch->npres &&
        ch->pres[c->pres_slot].device_id == c->device_id) {
        ch->pres[c->pres_slot].online = online;
        ch->pres[c->pres_slot].last_active = fota_server_now();
        return;
    }
    size_t before = ch->npres;
    uint32_t gen = ch->pres_gen;
    fota_devchan_presence(ch, c->device_id, online);
    if (ch->pres_gen == gen && ch->npres == before + 1) {
        c->pres_gen = gen;
        c->pres_slot = (uint32_t)before;
    }
}

static void presence_touch(struct fota_dconn *c)
{
    presence_set(c, 1);
}

/* Resolves the frame's key to this device's master key. 0 or FOTA_EAUTH. */
static int auth_master(struct fota_dconn *c, const struct fota_devproto_frame *f,
                       struct fota_key *k)
{
    if (!f->key[0])
        return FOTA_EAUTH;
    if (fota_server_key_lookup(c->ch->srv, f->key, strlen(f->key), k) < 0)
        return FOTA_EAUTH;
    if (k->kind != FOTA_KEY_MASTER || k->device_id <= 0)
        return FOTA_EAUTH;
    return 0;
}

static void go_online(struct fota_dconn *c, const struct fota_key *k)
{
    struct fota_devchan *ch = c->ch;
    struct fota_dconn *old = fota_devchan_find(ch, k->device_id);
    if (old && old != c) {
        FOTA_INFO("device reconnected, old connection dropped conn=%llu dev=%lld old=%llu",
                  (unsigned long long)c->id, (long long)k->device_id, (unsigned long long)old->id);
        old->online = 0; /* its close must not mark the device offline */
        conn_free(old);
    }
    int was_online = c->online;
    dev_unhash(c);
    c->device_id = k->device_id;
    c->product_id = k->product_id;
    memcpy(c->key_hash, k->hash, sizeof c->key_hash);
    c->online = 1;
    unsigned b = dev_bucket(c->device_id);
    c->hnext = ch->by_dev[b];
    ch->by_dev[b] = c;
    c->hashed = 1;
    /* A libevent "common timeout": every device has the same one, so re-arming
     * it on each read (a D4, a ping) appends to one queue instead of moving
     * the connection in a heap of 19,000 timers. */
    struct timeval tv = { (time_t)ch->srv->conf.ping_timeout, 0 };
    const struct timeval *ct = event_base_init_common_timeout(ch->srv->base, &tv);
    bufferevent_set_timeouts(c->bev, ct ? ct : &tv, NULL);
    presence_set(c, 1);
    if (!was_online) {
        char pb[80];
        FOTA_INFO("device online conn=%llu dev=%lld peer=%s tls=%d", (unsigned long long)c->id,
                  (long long)c->device_id, peer_of(c, pb, sizeof pb), c->tls);
        fota_devchan_kick_later(ch, c->device_id);
    }
}

static void on_activate(struct fota_dconn *c, const struct fota_devproto_frame *f)
{
    struct fota_server *srv = c->ch->srv;
    struct fota_key k;
    char out[256];
    if (auth_master(c, f, &k) < 0) {
        int n = fota_devproto_reply_activate_refused(out, sizeof out, f->nonce);
        fota_dconn_close_with(c, out, n, 403, "activation with an unknown key");
        return;
    }
    struct fota_device d;
    if (srv->store->ops->device_get(srv->store, k.device_id, &d) < 0) {
        fota_dconn_refuse(c, 403, "unknown key", "key without its row");
        return;
    }
    unsigned fields = FOTA_DEV_F_ACTIVATION;
    if (!d.activated) {
        d.activated = 1;
        d.activated_at = fota_server_now();
    }
    if (f->bssid[0]) {
        snprintf(d.bssid, sizeof d.bssid, "%s", f->bssid);
        fields |= FOTA_DEV_F_BSSID;
    }
    if (f->rom_version[0]) {
        snprintf(d.rom_version, sizeof d.rom_version, "%s", f->rom_version);
        fields |= FOTA_DEV_F_ROM_VERSION;
    }
    int rc = srv->store->ops->device_update(srv->store, &d, fields);
    if (rc < 0)
        FOTA_ERROR("activation not stored conn=%llu dev=%lld error=%s", (unsigned long long)c->id,
                   (long long)d.id, fota_errname(rc));
    char vq[80];
    FOTA_INFO("device activated conn=%llu dev=%lld bssid=%s rom_version=%s", (unsigned long long)c->id,
              (long long)d.id, d.bssid[0] ? d.bssid : "-",
              fota_log_quote(d.rom_version, vq, sizeof vq));
    int n = fota_devproto_reply_activate(out, sizeof out, f->has_nonce ? f->nonce : 0, d.id,
                                         d.rom_version);
    fota_dconn_send(c, out, n);
    go_online(c, &k);
}

static void on_identify(struct fota_dconn *c, const struct fota_devproto_frame *f)
{
    struct fota_key k;
    if (auth_master(c, f, &k) < 0) {
        fota_dconn_refuse(c, 403, "unknown key", "identify with an unknown key");
        return;
    }
    char out[256];
    int n = fota_devproto_reply_identify(out, sizeof out, f->has_nonce, f->nonce, k.device_id, NULL);
    fota_dconn_send(c, out, n);
    go_online(c, &k);
}

/* Frames after the handshake must carry this connection's key (when they carry one). */
static int same_key(struct fota_dconn *c, const struct fota_devproto_frame *f)
{
    if (!f->key[0])
        return 1;
    char h[65];
    fota_key_hash(f->key, strlen(f->key), h);
    return fota_key_equal(h, c->key_hash, 64);
}

static void on_datapoint(struct fota_dconn *c, const struct fota_devproto_frame *f, const char *line)
{
    struct fota_server *srv = c->ch->srv;
    if (!c->online) {
        /* Sensors send D8 straight after connecting, with their key (§2.7). */
        struct fota_key k;
        if (auth_master(c, f, &k) < 0) {
            fota_dconn_refuse(c, 403, "unknown key", "datapoint with an unknown key");
            return;
        }
        go_online(c, &k);
    }
    struct fota_message m = { 0 };
    m.product_id = c->product_id;
    m.device_id = c->device_id;
    snprintf(m.action, sizeof m.action, "datapoint:%.37s", f->stream);
    /* Only the body: the frame also carries the device's master key. */
    json_error_t jerr;
    json_t *root = json_loads(line, 0, &jerr);
    json_t *body = json_object_get(root, "body");
    char *text = json_is_object(body) ? json_dumps(body, JSON_SORT_KEYS) : NULL;
    snprintf(m.body, sizeof m.body, "%s", text && strlen(text) < sizeof m.body ? text : "{}");
    free(text);
    json_decref(root);
    if (fota_server_publish_message(srv, &m) < 0)
        FOTA_WARN("datapoint not stored conn=%llu dev=%lld", (unsigned long long)c->id,
                  (long long)c->device_id);
    char out[96];
    fota_dconn_send(c, out, fota_devproto_reply_datapoint(out, sizeof out, f->has_nonce, f->nonce));
}

static void on_line(struct fota_dconn *c, const char *line, size_t len)
{
    struct fota_devproto_frame f;
    char out[160];
    if (!fota_devchan_d4_parse(line, len, &f)) /* acknowledgements: no JSON parse */
        fota_devproto_classify(line, len, &f);
    if (f.kind == FOTA_DP_INVALID) {
        fota_dconn_refuse(c, 400, "invalid json", "invalid JSON line");
        return;
    }
    if (f.kind == FOTA_DP_ACTIVATE) {
        on_activate(c, &f);
        return;
    }
    if (f.kind == FOTA_DP_IDENTIFY) {
        on_identify(c, &f);
        return;
    }
    if (f.kind == FOTA_DP_DATAPOINT) {
        if (c->online && !same_key(c, &f))
            fota_dconn_refuse(c, 403, "unknown key", "key differs from the identified one");
        else
            on_datapoint(c, &f, line);
        return;
    }
    if (!c->online) {
        fota_dconn_refuse(c, 401, "identify first", "frame before activation or identify");
        return;
    }
    if (!same_key(c, &f)) {
        fota_dconn_refuse(c, 403, "unknown key", "key differs from the identified one");
        return;
    }
    presence_touch(c);
    switch (f.kind) {
    case FOTA_DP_PING:
        fota_dconn_send(c, out, fota_devproto_reply_ping(out, sizeof out));
        break;
    case FOTA_DP_TIMERS:
        fota_dconn_send(c, out, fota_devproto_reply_timers(out, sizeof out, fota_server_now()));
        break;
    case FOTA_DP_MESSAGE:
        fota_devchan_on_message(c, &f);
        fota_dconn_send(c, out, fota_devproto_reply_message(out, sizeof out));
        break;
    case FOTA_DP_REPLY:
        fota_devchan_on_reply(c, &f, line);
        break;
    default:
        FOTA_INFO("device frame ignored conn=%llu dev=%lld reason=\"unknown path\"",
                  (unsigned long long)c->id, (long long)c->device_id);
        fota_dconn_send(c, out, fota_devproto_reply_refusal(out, sizeof out, 404, "unknown path"));
        break;
    }
}

static void read_cb(struct bufferevent *bev, void *ud)
{
    struct fota_dconn *c = ud;
    struct evbuffer *in = bufferevent_get_input(bev);
    char line[FOTA_DEVPROTO_LINE_MAX + 1];
    /* Bounded: at most 64 lines per wake-up, the rest on the next read event. */
    for (int i = 0; i < 64 && !c->closing; i++) {
        size_t avail = evbuffer_get_length(in);
        if (avail == 0)
            return;
        size_t m = avail < FOTA_DEVPROTO_LINE_MAX + 1 ? avail : FOTA_DEVPROTO_LINE_MAX + 1;
        const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)m);
        size_t ll = 0, used = 0;
        int rc = fota_devproto_line(p, m, &ll, &used);
        if (rc == 0)
            return;
        if (rc < 0) {
            fota_dconn_refuse(c, 413, "line too long", "line over 2048 bytes");
            return;
        }
        memcpy(line, p, ll);
        line[ll] = '\0';
        evbuffer_drain(in, used);
        if (ll == 0)
            continue;
        on_line(c, line, ll); /* never frees c: refusals close from a deferred callback */
    }
    if (!c->closing && evbuffer_get_length(in) > 0)
        bufferevent_trigger(bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
}

static void event_cb(struct bufferevent *bev, short what, void *ud)
{
    struct fota_dconn *c = ud;
    char pb[80];
    (void)bev;
    if (what & BEV_EVENT_CONNECTED) /* TLS handshake done */
        return;
    if (what & BEV_EVENT_TIMEOUT)
        FOTA_INFO("device connection timed out conn=%llu dev=%lld peer=%s state=%s",
                  (unsigned long long)c->id, (long long)c->device_id, peer_of(c, pb, sizeof pb),
                  c->online ? "silent" : "no-hello");
    else if (what & BEV_EVENT_ERROR)
        FOTA_DEBUG("device connection error conn=%llu dev=%lld tls_error=%lu", (unsigned long long)c->id,
                   (long long)c->device_id, c->tls ? bufferevent_get_openssl_error(c->bev) : 0UL);
    conn_free(c);
}

static void peer_text(const struct sockaddr *sa, char *addr, size_t alen, char *peer, size_t plen)
{
    int port = 0;
    addr[0] = '\0';
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const void *)sa;
        inet_ntop(AF_INET, &s->sin_addr, addr, (socklen_t)alen);
        port = ntohs(s->sin_port);
        snprintf(peer, plen, "%s:%d", addr, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const void *)sa;
        inet_ntop(AF_INET6, &s->sin6_addr, addr, (socklen_t)alen);
        port = ntohs(s->sin6_port);
        snprintf(peer, plen, "[%s]:%d", addr, port);
    } else {
        snprintf(peer, plen, "?");
    }
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *ud)
{
    struct fota_devchan *ch = ud;
    (void)salen;
    int tls = l == ch->lst[1];
    char addr[48], peer[64];
    peer_text(sa, addr, sizeof addr, peer, sizeof peer);
    unsigned limit = ch->srv->conf.device_max_per_addr ? ch->srv->conf.device_max_per_addr
                                                        : FOTA_DEVCHAN_MAX_PER_ADDR;
    struct fota_addr_count *ac = addr_get(ch, addr, 0);
    if (ch->srv->draining || (ac && ac->n >= limit)) {
        FOTA_WARN("device connection refused peer=%s reason=\"%s\" limit=%u", peer,
                  ch->srv->draining ? "draining" : "too many connections from this address",
                  limit);
        evutil_closesocket(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct fota_dconn *c = calloc(1, sizeof *c);
    ac = c ? addr_get(ch, addr, 1) : NULL;
    if (!ac) {
        free(c);
        evutil_closesocket(fd);
        return;
    }
    ac->n++;
    c->addrc = ac;
    if (tls) {
        SSL *ssl = SSL_new(ch->srv->ssl_ctx);
        if (ssl) /* idle devices keep no 16 KB record buffers */
            SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
        c->bev = ssl ? bufferevent_openssl_socket_new(ch->srv->base, fd, ssl,
                                                      BUFFEREVENT_SSL_ACCEPTING,
                                                      BEV_OPT_CLOSE_ON_FREE)
                     : NULL;
        if (!c->bev && ssl)
            SSL_free(ssl);
    } else {
        c->bev = bufferevent_socket_new(ch->srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    if (!c->bev) {
        addr_put(ch, ac);
        free(c);
        evutil_closesocket(fd);
        return;
    }
    c->ch = ch;
    c->tls = tls;
    c->fd = fd;
    c->id = ++ch->next_id;
    c->port = sa->sa_family == AF_INET6 ? ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port)
              : sa->sa_family == AF_INET   ? ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port)
                                           : 0;
    c->next = ch->conns;
    if (ch->conns)
        ch->conns->prev = c;
    ch->conns = c;
    ch->nconns++;
    /* A connection that says nothing gets as long as an HTTP request may take. */
    unsigned ht = ch->srv->conf.http_timeout ? ch->srv->conf.http_timeout : FOTA_DEVCHAN_HELLO_TIMEOUT;
    struct timeval hello = { (time_t)(ht < FOTA_DEVCHAN_HELLO_TIMEOUT ? ht : FOTA_DEVCHAN_HELLO_TIMEOUT), 0 };
    bufferevent_set_timeouts(c->bev, &hello, NULL);
    bufferevent_setcb(c->bev, read_cb, NULL, event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    FOTA_DEBUG("device connected conn=%llu peer=%s tls=%d", (unsigned long long)c->id, peer, tls);
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
    ch->port[tls] = bound;
    return 0;
}

static void module_stop(struct fota_server *srv, void *state)
{
    struct fota_devchan *ch = state;
    if (!ch)
        return;
    for (int i = 0; i < 2; i++)
        if (ch->lst[i])
            evconnlistener_free(ch->lst[i]);
    while (ch->conns)
        conn_free(ch->conns);
    presence_flush(ch);
    fota_devchan_waits_free(ch);
    fota_devchan_kick_free(ch);
    fota_rpc_free_all(ch);
    fota_rom_ledgers_free(ch);
    fota_fanout_free(ch->fanout);
    if (ch->pres_ev)
        event_free(ch->pres_ev);
    free(ch->pres);
    if (srv->rom_download_ud == ch)
        fota_server_set_rom_download(srv, NULL, NULL);
    fota_hub_unsubscribe(srv, FOTA_HUB_DOWNLOADS_SYNC, fota_rom_ledgers_sync, ch);
    fota_devchan_gone_hooks(ch, 0);
    free(ch);
}

static void module_drain(struct fota_server *srv, void *state)
{
    struct fota_devchan *ch = state;
    (void)srv;
    for (int i = 0; i < 2; i++)
        if (ch->lst[i])
            evconnlistener_disable(ch->lst[i]);
    fota_rpc_cancel_all(ch);
    presence_flush(ch);
}

/* After a crash the store may still say "online" for devices nobody is
 * connected to: this instance owns every device connection, so reset them. */
static void presence_reset(struct fota_devchan *ch)
{
    struct fota_store *st = ch->srv->store;
    struct fota_product *ps = NULL;
    size_t np = 0, stale = 0;
    if (st->ops->product_list(st, &ps, &np) < 0)
        return;
    for (size_t i = 0; i < np; i++) {
        struct fota_device *ds = NULL;
        size_t nd = 0;
        if (st->ops->device_list(st, ps[i].id, &ds, &nd) < 0)
            continue;
        for (size_t j = 0; j < nd; j++) {
            if (!ds[j].online)
                continue;
            struct fota_presence row = { ds[j].id, ds[j].last_active, 0 };
            if (st->ops->device_presence_batch(st, &row, 1) == 0)
                stale++;
        }
        free(ds);
    }
    free(ps);
    if (stale)
        FOTA_INFO("device presence reset devices=%zu reason=\"online in the store, not connected\"",
                  stale);
}

static int module_start(struct fota_server *srv, void **state)
{
    struct fota_devchan *ch = calloc(1, sizeof *ch);
    if (!ch)
        return FOTA_ENOMEM;
    ch->srv = srv;
    presence_reset(ch);
    signal(SIGPIPE, SIG_IGN); /* a device that vanishes mid-write must not kill fotad */
    int rc = 0;
    if (srv->conf.device_port != FOTA_PORT_OFF)
        rc = listen_on(ch, 0, srv->conf.device_port);
    if (rc == 0 && srv->ssl_ctx && srv->conf.device_tls_port != FOTA_PORT_OFF)
        rc = listen_on(ch, 1, srv->conf.device_tls_port);
    ch->pres_ev = event_new(srv->base, -1, EV_PERSIST, presence_timer_cb, ch);
    if (rc == 0 && !ch->pres_ev)
        rc = FOTA_ENOMEM;
    if (rc < 0) {
        module_stop(srv, ch);
        return rc;
    }
    struct timeval tv = { FOTA_DEVCHAN_PRESENCE_MS / 1000, (FOTA_DEVCHAN_PRESENCE_MS % 1000) * 1000 };
    event_add(ch->pres_ev, &tv);
    fota_server_set_rom_download(srv, fota_rom_download, ch);
    fota_hub_subscribe(srv, FOTA_HUB_DOWNLOADS_SYNC, fota_rom_ledgers_sync, ch);
    fota_devchan_gone_hooks(ch, 1);
    if (srv->http && (fota_rpc_routes(ch) < 0 || !(ch->fanout = fota_fanout_new(ch)))) {
        FOTA_ERROR("cannot add the device RPC routes");
        module_stop(srv, ch);
        return FOTA_ENOMEM;
    }
    *state = ch;
    return 0;
}

const struct fota_module fota_device_module = {
    .name = "device",
    .start = module_start,
    .reload = NULL,
    .drain = module_drain,
    .stop = module_stop,
};
