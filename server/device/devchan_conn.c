/* devchan_conn.c - the device channel's connections: the table of online
 * devices by id, per-address counts, the anonymous ones and their hello
 * deadline, writes (one send() when nothing is pending), refusals that close
 * once flushed, the device's key check, going online, and the presence rows
 * written in batches. The layer every other
 * channel file stands on; it calls none of them (a closing connection is
 * reported through ch->closed). */
#include "devchan_int.h"

#include <stdlib.h>

#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include "accept_guard.h"
#include "clock.h"
#include "fota_str.h"
#include "hub.h"
#include "keycache.h"
#include "log.h"
#include "xmalloc.h"

static unsigned dev_bucket(int64_t id)
{
    return (unsigned)((uint64_t)id * 0x9E3779B97F4A7C15ull >> (64 - FOTA_DEVCHAN_DEV_BITS));
}

static unsigned addr_bucket(const char *a)
{
    return fota_str_hash(FOTA_STR_HASH_SEED, a) % FOTA_DEVCHAN_BUCKETS;
}

/* "ip:port" of c for logs, built on demand: a connection keeps no copy (memory per device). */
const char *fota_devchan_conn_peer(const struct fota_dconn *c, char *buf, size_t n)
{
    const char *a = c->addrc ? c->addrc->addr : "?";
    snprintf(buf, n, strchr(a, ':') ? "[%s]:%u" : "%s:%u", a, (unsigned)c->port);
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

static void anon_arm(struct fota_devchan *ch);

/* The anonymous list itself (accept order, the oldest first); the count
 * and the listeners' pause are anon_unlink's and anon_append's. */
static void anon_detach(struct fota_dconn *c)
{
    struct fota_devchan *ch = c->ch;
    if (c->aprev)
        c->aprev->anext = c->anext;
    else
        ch->anon_head = c->anext;
    if (c->anext)
        c->anext->aprev = c->aprev;
    else
        ch->anon_tail = c->aprev;
    c->aprev = c->anext = NULL;
}

static void anon_attach(struct fota_dconn *c)
{
    struct fota_devchan *ch = c->ch;
    c->aprev = ch->anon_tail;
    c->anext = NULL;
    if (ch->anon_tail)
        ch->anon_tail->anext = c;
    else
        ch->anon_head = c;
    ch->anon_tail = c;
}

static void anon_unlink(struct fota_dconn *c)
{
    struct fota_devchan *ch = c->ch;
    if (!c->anon)
        return;
    anon_detach(c);
    c->anon = 0;
    ch->nanon--;
    if (ch->anon_paused)
        fota_devchan_anon_left(ch);
}

static void anon_append(struct fota_dconn *c)
{
    struct fota_devchan *ch = c->ch;
    anon_attach(c);
    c->anon = 1;
    ch->nanon++;
    if (ch->anon_head == c && !evtimer_pending(ch->hello_ev, NULL))
        anon_arm(ch);
}

/* The timer for the oldest anonymous connection's deadline (none: off). */
static void anon_arm(struct fota_devchan *ch)
{
    if (!ch->anon_head)
        return;
    int64_t wait = ch->anon_head->born_ms + ch->hello_ms - fota_clock_mono_ms();
    if (wait < 0)
        wait = 0;
    struct timeval tv = { (time_t)(wait / 1000), (suseconds_t)(wait % 1000) * 1000 };
    evtimer_add(ch->hello_ev, &tv);
}

/* 1 when bytes from c's peer wait for fotad: in its input buffer, or not
 * read yet (fota_devchan_conn_unread). */
static int has_input(struct fota_dconn *c)
{
    return evbuffer_get_length(bufferevent_get_input(c->bev)) > 0 || fota_devchan_conn_unread(c);
}

/* c's hello deadline counts again from now: it moves to the list's end. */
static void deadline_again(struct fota_dconn *c, int64_t now)
{
    anon_detach(c);
    c->born_ms = now;
    anon_attach(c);
}

void fota_devchan_conn_expire(struct fota_devchan *ch)
{
    int64_t now = fota_clock_mono_ms();
    char pb[80];
    /* Bounded per pass: a flood's expiry does not stall the loop. */
    for (int i = 0; i < 4096 && ch->anon_head; i++) {
        struct fota_dconn *c = ch->anon_head;
        if (c->born_ms + ch->hello_ms > now)
            break;
        if (c->paused & FOTA_DCONN_PAUSE_STORE) {
            /* Its D1/D2/D8 arrived and waits on the store: the delay is
             * fotad's, and closing it would only bring the device back with
             * the same question. Its deadline counts again from now; it still
             * counts against device_max_anonymous. */
            deadline_again(c, now);
            continue;
        }
        if (!c->hello_late && has_input(c)) {
            /* Its peer sent, and the bytes wait for this loop, which came
             * late (a busy machine: the timer fires seconds after the
             * deadline, and a device's hello sits unread meanwhile). Once:
             * a peer that trickles bytes still meets the next deadline. */
            c->hello_late = 1;
            deadline_again(c, now);
            continue;
        }
        FOTA_INFO("device connection timed out conn=%llu dev=%lld peer=%s state=%s waited_ms=%lld",
                  (unsigned long long)c->id, (long long)c->device_id,
                  fota_devchan_conn_peer(c, pb, sizeof pb),
                  c->tls && !c->handshaken ? "handshake" : "no-hello",
                  (long long)(now - c->born_ms));
        fota_metric_inc(&ch->m_refused[FOTA_DC_REFUSED_HELLO_TIMEOUT]);
        fota_devchan_conn_free(c);
    }
    anon_arm(ch);
}

static struct fota_addr_count *addr_get(struct fota_devchan *ch, const char *addr, int create)
{
    unsigned b = addr_bucket(addr);
    for (struct fota_addr_count *a = ch->by_addr[b]; a; a = a->next)
        if (strcmp(a->addr, addr) == 0)
            return a;
    if (!create)
        return NULL;
    struct fota_addr_count *a = fota_xcalloc(1, sizeof *a);
    fota_str_copy(a->addr, sizeof a->addr, addr);
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

unsigned fota_devchan_conn_count(struct fota_devchan *ch, const char *addr)
{
    struct fota_addr_count *a = addr_get(ch, addr, 0);
    return a ? a->n : 0;
}

/* 1 when a line about r is due (none in the last second); counts it. */
static int refusal_due(struct fota_devchan_refusals *r, int64_t now)
{
    r->unlogged++;
    return !r->logged_ms || now - r->logged_ms >= 1000;
}

void fota_devchan_conn_refused(struct fota_devchan *ch, enum fota_devchan_refusal why,
                               const char *addr, uint16_t port, unsigned limit)
{
    static const char *const reasons[FOTA_DC_REFUSED_N] = {
        [FOTA_DC_REFUSED_DRAINING] = "draining",
        [FOTA_DC_REFUSED_PER_ADDR] = "too many connections from this address",
        [FOTA_DC_REFUSED_RESERVE] = "descriptors short",
        [FOTA_DC_REFUSED_ANONYMOUS] = "too many connections not identified",
    };
    /* The limit met, named by the setting (or the quantity) an operator can change. */
    static const char *const limits[FOTA_DC_REFUSED_N] = {
        [FOTA_DC_REFUSED_DRAINING] = "connections",
        [FOTA_DC_REFUSED_PER_ADDR] = "device_max_per_addr",
        [FOTA_DC_REFUSED_RESERVE] = "descriptors",
        [FOTA_DC_REFUSED_ANONYMOUS] = "device_max_anonymous",
    };
    struct fota_devchan_refusals *r = &ch->refused[why];
    uint64_t id = ++ch->next_id; /* conn= of the refused one, as if it had been kept */
    int64_t now = fota_clock_mono_ms();
    fota_metric_inc(&ch->m_refused[why]);
    if (!refusal_due(r, now))
        return;
    FOTA_WARN("device connection refused conn=%llu dev=0 peer=%s%s%s:%u reason=\"%s\" %s=%u "
              "refused=%llu",
              (unsigned long long)id, strchr(addr, ':') ? "[" : "", addr,
              strchr(addr, ':') ? "]" : "", port, reasons[why] ? reasons[why] : "other",
              limits[why] ? limits[why] : "limit", limit,
              (unsigned long long)r->unlogged);
    r->logged_ms = now;
    r->unlogged = 0;
}

size_t fota_devchan_conn_shed(struct fota_devchan *ch, size_t n, const char *reason)
{
    size_t k = 0;
    int64_t now = fota_clock_mono_ms();
    while (k < n && ch->anon_tail) {
        struct fota_dconn *c = ch->anon_tail;
        int due = refusal_due(&ch->shed, now);
        fota_metric_inc(&ch->m_refused[FOTA_DC_REFUSED_SHED]);
        if (due) {
            char pb[80];
            FOTA_WARN("device connection shed conn=%llu dev=0 peer=%s reason=\"%s\" "
                      "age_ms=%lld shed=%llu anonymous=%zu",
                      (unsigned long long)c->id, fota_devchan_conn_peer(c, pb, sizeof pb), reason,
                      (long long)(now - c->born_ms), (unsigned long long)ch->shed.unlogged,
                      ch->nanon);
            ch->shed.logged_ms = now;
            ch->shed.unlogged = 0;
        }
        fota_devchan_conn_free(c);
        k++;
    }
    return k;
}

struct fota_dconn *fota_devchan_conn_new(struct fota_devchan *ch, int fd, const char *addr,
                                         uint16_t port, int tls)
{
    struct bufferevent *bev = NULL;
    if (tls) {
        SSL *ssl = SSL_new(ch->srv->ssl_ctx);
        if (ssl) /* idle devices keep no 16 KB record buffers */
            SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
        bev = ssl ? bufferevent_openssl_socket_new(ch->srv->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                   BEV_OPT_CLOSE_ON_FREE)
                  : NULL;
        if (!bev && ssl)
            SSL_free(ssl);
    } else {
        bev = bufferevent_socket_new(ch->srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    if (!bev) {
        evutil_closesocket(fd);
        return NULL;
    }
    struct fota_dconn *c = fota_xcalloc(1, sizeof *c);
    c->addrc = addr_get(ch, addr, 1);
    c->addrc->n++;
    c->bev = bev;
    c->ch = ch;
    c->tls = tls;
    c->fd = fd;
    c->port = port;
    c->id = ++ch->next_id;
    unsigned ib = dev_bucket((int64_t)c->id);
    c->inext = ch->by_id[ib];
    ch->by_id[ib] = c;
    c->born_ms = fota_clock_mono_ms();
    c->next = ch->conns;
    if (ch->conns)
        ch->conns->prev = c;
    ch->conns = c;
    ch->nconns++;
    fota_metric_set(&ch->m_conns, (int64_t)ch->nconns);
    anon_append(c);
    return c;
}

static void presence_set(struct fota_dconn *c, int online);

/* A retiring connection is gone: its successor reads on (from the loop's
 * next turn, not inside this free), unless something else still holds it. */
static void successor_resume(struct fota_dconn *old)
{
    struct fota_dconn *s = fota_devchan_conn_by_id(old->ch, old->successor);
    if (s && (s->paused & FOTA_DCONN_PAUSE_PREV) &&
        fota_devchan_conn_unpause(s, FOTA_DCONN_PAUSE_PREV))
        bufferevent_trigger(s->bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
}

int fota_devchan_conn_unpause(struct fota_dconn *c, unsigned why)
{
    c->paused = (uint8_t)(c->paused & ~why);
    if (c->paused || c->closing)
        return 0;
    if (!c->eof)   /* after its EOF only the buffered lines are left */
        bufferevent_enable(c->bev, EV_READ);
    return 1;
}

void fota_devchan_conn_free(struct fota_dconn *c)
{
    struct fota_devchan *ch = c->ch;
    if (ch->closed)
        ch->closed(c);
    if (c->retiring)
        successor_resume(c);
    if (c->online) {
        fota_devchan_rate_offline(c);
        presence_set(c, 0); /* O(1) through its batch slot: a mass disconnect stays linear */
        FOTA_INFO("device offline conn=%llu dev=%lld", (unsigned long long)c->id,
                  (long long)c->device_id);
        struct fota_hub_presence ev = { c->device_id, c->product_id, c->id, NULL };
        fota_hub_publish(ch->srv, FOTA_HUB_DEVICE_OFFLINE, &ev);
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        ch->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    ch->nconns--;
    fota_metric_set(&ch->m_conns, (int64_t)ch->nconns);
    anon_unlink(c); /* the timer, if it was c's, finds the next one when it fires */
    dev_unhash(c);
    for (struct fota_dconn **pp = &ch->by_id[dev_bucket((int64_t)c->id)]; *pp; pp = &(*pp)->inext)
        if (*pp == c) {
            *pp = c->inext;
            break;
        }
    addr_put(ch, c->addrc);
    if (c->deliver_ev)
        event_free(c->deliver_ev);
    if (c->resume_ev)
        event_free(c->resume_ev);
    bufferevent_free(c->bev);
    free(c);
}

void fota_devchan_conn_send(struct fota_dconn *c, const char *buf, int len)
{
    if (len <= 0 || c->closing)
        return;
    /* Plain connection with nothing pending: one send(), no output chain
     * allocated and freed per reply (pings are the hot path; transient
     * chains fragment the heap of a 19,000-device storm). What the socket
     * does not take, and any error, goes through the bufferevent.
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

static void closing_flushed_cb(struct bufferevent *bev, void *ud)
{
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        fota_devchan_conn_free(ud);
}

static void closing_event_cb(struct bufferevent *bev, short what, void *ud)
{
    (void)bev;
    (void)what;
    fota_devchan_conn_free(ud);
}

void fota_devchan_conn_close_with(struct fota_dconn *c, const char *line, int n, int status,
                                  const char *log_reason)
{
    char pb[80];
    FOTA_WARN("device refused conn=%llu dev=%lld peer=%s status=%d reason=\"%s\"",
              (unsigned long long)c->id, (long long)c->device_id,
              fota_devchan_conn_peer(c, pb, sizeof pb), status, log_reason);
    fota_devchan_metrics_refused(c->ch, status);
    fota_devchan_conn_send(c, line, n);
    c->closing = 1;
    bufferevent_disable(c->bev, EV_READ);
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    struct timeval tv = { 5, 0 };
    bufferevent_set_timeouts(c->bev, NULL, &tv);
    bufferevent_setcb(c->bev, NULL, closing_flushed_cb, closing_event_cb, c);
    /* Freed from the (deferred) write callback, never inside the caller. */
    bufferevent_trigger(c->bev, EV_WRITE, BEV_TRIG_DEFER_CALLBACKS);
}

void fota_devchan_conn_refuse(struct fota_dconn *c, int status, const char *why,
                              const char *log_reason)
{
    char line[160];
    int n = fota_devproto_reply_refusal(line, sizeof line, status, why);
    fota_devchan_conn_close_with(c, line, n, status, log_reason);
}

struct fota_dconn *fota_devchan_conn_find(struct fota_devchan *ch, int64_t device_id)
{
    for (struct fota_dconn *c = ch->by_dev[dev_bucket(device_id)]; c; c = c->hnext)
        if (c->online && c->device_id == device_id)
            return c;
    return NULL;
}

int fota_devchan_conn_unread(struct fota_dconn *c)
{
    int n = 0;
    if (ioctl(c->fd, FIONREAD, &n) == 0 && n > 0)
        return 1;
    SSL *ssl = c->tls ? bufferevent_openssl_get_ssl(c->bev) : NULL;
    return ssl && SSL_pending(ssl) > 0;
}

struct fota_dconn *fota_devchan_conn_by_id(struct fota_devchan *ch, uint64_t id)
{
    for (struct fota_dconn *c = ch->by_id[dev_bucket((int64_t)id)]; c; c = c->inext)
        if (c->id == id)
            return c;
    return NULL;
}

int fota_devchan_online(struct fota_devchan *ch, int64_t device_id)
{
    return ch && fota_devchan_conn_find(ch, device_id) != NULL;
}

int fota_devchan_send(struct fota_devchan *ch, int64_t device_id, const char *line, int len)
{
    struct fota_dconn *c = fota_devchan_conn_find(ch, device_id);
    if (!c || c->closing)
        return FOTA_ENOENT;
    if (c->reporting)
        fota_devchan_hold(c, line, len);   /* after the reply to its report */
    else
        fota_devchan_conn_send(c, line, len);
    return 0;
}

/* A device connection takes a device's master key only. */
static int master_key(const struct fota_key *k)
{
    return k->kind == FOTA_KEY_MASTER && k->device_id > 0 ? 0 : FOTA_EAUTH;
}

int fota_devchan_conn_auth(struct fota_dconn *c, const struct fota_devproto_frame *f,
                           struct fota_key *k)
{
    struct fota_server *srv = c->ch->srv;
    char lower[FOTA_KEY_BUF], hash[FOTA_HASH_HEX];
    size_t len = strlen(f->key);
    if (!f->key[0] || !fota_key_valid(f->key, len))
        return FOTA_EAUTH;
    for (size_t i = 0; i < len; i++)   /* as fota_server_key_lookup hashes it */
        lower[i] = (char)(f->key[i] >= 'A' && f->key[i] <= 'F' ? f->key[i] + 32 : f->key[i]);
    lower[len] = '\0';
    fota_key_hash(lower, len, hash);
    if (!srv->keycache)
        return FOTA_EAGAIN;
    int rc = fota_keycache_get(srv->keycache, fota_store_generation(srv->store), hash, k);
    if (rc == FOTA_EAGAIN)
        return rc;
    if (rc != 0 || !fota_key_equal(k->hash, hash, 64))
        return FOTA_EAUTH;
    return master_key(k);
}

int fota_devchan_key_check(struct fota_server *srv, const char *key, struct fota_key *k)
{
    if (!key[0] || fota_server_key_lookup(srv, key, strlen(key), k) < 0)
        return FOTA_EAUTH;
    return master_key(k);
}

int fota_devchan_conn_same_key(const struct fota_dconn *c, const struct fota_devproto_frame *f)
{
    if (!f->key[0])
        return 1;
    char h[65];
    fota_key_hash(f->key, strlen(f->key), h);
    return fota_key_equal(h, c->key_hash, 64);
}

/* The presence batch: rows written by a timer in one transaction, a job
 * on the presence lane (their order kept) with a copy of the rows. */
struct presence_job {
    struct fota_devchan_job j;
    struct fota_presence *rows;
    size_t n;
};

static void presence_run(struct fota_store *st, struct fota_devchan_job *j)
{
    struct presence_job *p = (struct presence_job *)j;
    int rc = st->ops->device_presence_batch(st, p->rows, p->n);
    if (rc < 0 && rc != FOTA_ENOSPC)   /* a full disk: the store says so once a second */
        FOTA_ERROR("presence batch failed rows=%zu error=%s", p->n, fota_errname(rc));
}

static void presence_drop(struct fota_devchan_job *j)
{
    free(((struct presence_job *)j)->rows);
    free(j);
}

void fota_devchan_presence_flush(struct fota_devchan *ch)
{
    if (ch->npres == 0)
        return;
    struct presence_job *p = fota_devchan_job_new(ch, sizeof *p);
    p->j.run = presence_run;
    p->j.drop = presence_drop;
    p->rows = fota_xreallocarray(NULL, ch->npres, sizeof *p->rows);
    memcpy(p->rows, ch->pres, ch->npres * sizeof *p->rows);
    p->n = ch->npres;
    if (fota_devchan_job_submit_on(ch, ch->pres_lane, NULL, &p->j) < 0) {
        presence_drop(&p->j);   /* the lane is full: these rows go with the next batch */
        return;
    }
    ch->npres = 0;
    ch->pres_gen++;
}

static void presence_add(struct fota_devchan *ch, int64_t device_id, int online)
{
    int64_t now = fota_clock_wall_s();
    /* Connections find their own row through their slot (presence_set); here
     * only the newest rows are checked (a reconnect). A device may appear
     * twice in a batch: the rows are written in order, the last one wins. */
    for (size_t i = ch->npres > 8 ? ch->npres - 8 : 0; i < ch->npres; i++) {
        if (ch->pres[i].device_id == device_id) {
            ch->pres[i].online = online;
            ch->pres[i].last_active = now;
            return;
        }
    }
    if (ch->npres == ch->cappres && ch->cappres >= 65536)
        fota_devchan_presence_flush(ch);
    if (ch->npres == ch->cappres) {   /* (a flush the store's lane refused keeps its rows) */
        ch->cappres = ch->cappres ? ch->cappres * 2 : 64;
        ch->pres = fota_xreallocarray(ch->pres, ch->cappres, sizeof *ch->pres);
    }
    ch->pres[ch->npres++] = (struct fota_presence){ device_id, now, online };
}

/* A check-in of an online connection: its row in the current batch is
 * found in O(1) through the slot it remembers (pings are the hot path);
 * otherwise the general path adds (or finds) the row. While the device
 * stays online its last_active is written at most every PRESENCE_REFRESH_S
 * (the stock ping comes every 50 s, so each of those is written; a device
 * that checks in more often costs one row per refresh, not one a second):
 * on PostgreSQL each row is an update of the device's row and of the index
 * its list sorts last_active by. Going online or offline is written at once. */
#define PRESENCE_REFRESH_S 30

static void presence_set(struct fota_dconn *c, int online)
{
    struct fota_devchan *ch = c->ch;
    int64_t now = fota_clock_wall_s();
    if (online && c->pres_at && now >= c->pres_at && now - c->pres_at < PRESENCE_REFRESH_S)
        return;
    if (online)
        c->pres_at = (uint32_t)now;
    if (c->pres_gen == ch->pres_gen && c->pres_slot < ch->npres &&
        ch->pres[c->pres_slot].device_id == c->device_id) {
        ch->pres[c->pres_slot].online = online;
        ch->pres[c->pres_slot].last_active = now;
        return;
    }
    size_t before = ch->npres;
    uint32_t gen = ch->pres_gen;
    presence_add(ch, c->device_id, online);
    if (ch->pres_gen == gen && ch->npres == before + 1) {
        c->pres_gen = gen;
        c->pres_slot = (uint32_t)before;
    }
}

void fota_devchan_presence_all(struct fota_devchan *ch)
{
    size_t n = 0;
    for (struct fota_dconn *c = ch->conns; c; c = c->next)
        if (c->online && c->device_id > 0) {
            c->pres_at = 0;
            presence_set(c, 1);
            n++;
        }
    FOTA_INFO("device presence written again devices=%zu", n);
}

void fota_devchan_conn_touch(struct fota_dconn *c)
{
    presence_set(c, 1);
}

int fota_devchan_conn_switch_refused(struct fota_dconn *c, const struct fota_key *k)
{
    if (!FOTA_DCONN_IDENTIFIED(c) || k->device_id == c->device_id)
        return 0;
    char why[96];
    snprintf(why, sizeof why, "identify as device %lld on an identified connection",
             (long long)k->device_id);
    fota_devchan_conn_refuse(c, 409, "connection already identified with another key", why);
    return 1;
}

/* 1 if old still holds frames of its device: reading paused (a store job,
 * its rate, its unread replies, an older connection's frames), lines in its
 * input buffer, or bytes in its socket (a device that sent its D7 report
 * and rebooted at once: IoT_Demo's upgrade end). */
static int holds_frames(struct fota_dconn *old)
{
    return old->paused || has_input(old);
}

/* old, replaced by c, closes at once or retires: it handles the frames it
 * holds (within FOTA_DEVCHAN_RETIRE_MS of each read for bytes that make no
 * frame), c's reading paused until old is gone. */
static void replace(struct fota_dconn *old, struct fota_dconn *c)
{
    int retire = !old->closing && holds_frames(old);
    FOTA_INFO("device reconnected, old connection %s conn=%llu dev=%lld old=%llu",
              retire ? "retiring" : "dropped", (unsigned long long)c->id,
              (long long)old->device_id, (unsigned long long)old->id);
    old->online = 0; /* its close must not mark the device offline */
    dev_unhash(old);
    if (!retire) {
        fota_devchan_conn_free(old);
        return;
    }
    old->retiring = 1;
    old->successor = c->id;
    c->paused |= FOTA_DCONN_PAUSE_PREV;
    bufferevent_disable(c->bev, EV_READ);
    if (c->ch->wind_down)
        c->ch->wind_down(old);
}

int fota_devchan_conn_online(struct fota_dconn *c, const struct fota_key *k, const char *version)
{
    struct fota_devchan *ch = c->ch;
    if (c->retiring)   /* the device's newer connection is its connection now */
        return 0;
    struct fota_dconn *old = fota_devchan_conn_find(ch, k->device_id);
    int inherited = 0;
    if (old && old != c) {
        c->tat_us = old->tat_us; /* the device's message rate goes on from there */
        c->held = old->held;
        c->warn_s = old->warn_s;
        inherited = 1;
        replace(old, c);
    }
    int was_online = c->online;
    anon_unlink(c);
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
    struct timeval tv = { (time_t)ch->conf->ping_timeout, 0 };
    const struct timeval *ct = event_base_init_common_timeout(ch->srv->base, &tv);
    bufferevent_set_timeouts(c->bev, ct ? ct : &tv, NULL);
    presence_set(c, 1);
    if (was_online)
        return 0;
    fota_devchan_rate_online(c, inherited);
    char pb[80];
    FOTA_INFO("device online conn=%llu dev=%lld peer=%s tls=%d", (unsigned long long)c->id,
              (long long)c->device_id, fota_devchan_conn_peer(c, pb, sizeof pb), c->tls);
    struct fota_hub_presence ev = { c->device_id, c->product_id, c->id, version };
    fota_hub_publish(ch->srv, FOTA_HUB_DEVICE_ONLINE, &ev);
    return 1;
}

/* After a crash the store may still say "online" for devices nobody is
 * connected to: this instance owns every device connection, so reset them.
 * Several instances on one database reset only what no live instance holds,
 * at their registration (cluster.h). */
void fota_devchan_presence_reset(struct fota_devchan *ch)
{
    struct fota_store *st = ch->srv->store;
    struct fota_product *ps = NULL;
    size_t np = 0, stale = 0;
    if (st->instance_id)
        return;
    if (st->ops->product_heads(st, &ps, &np) < 0)
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

/* Connections not identified yet that the channel keeps: device_max_anonymous,
 * and at most three quarters of the descriptors left after the reserve. The
 * last quarter stays for the downloads and REST calls of devices already
 * identified; a connection that identifies keeps its descriptor. Three
 * quarters, not less: a fleet that reconnects at once to an instance sized
 * for it (16,667 devices under a 20,000-descriptor limit) then waits in this
 * bound and the listen backlog (4,096), not in SYN retries. */
unsigned fota_devchan_anon_limit(struct fota_devchan *ch)
{
    struct fota_accept_guard_stats gs;
    fota_accept_guard_stats(ch->guard, &gs);
    uint64_t share = gs.limit > gs.reserve ? (gs.limit - gs.reserve) / 4 * 3 : 1;
    if (share == 0)
        share = 1;
    return (unsigned)(ch->conf->max_anonymous < share ? ch->conf->max_anonymous : share);
}

static void listeners_enable(struct fota_devchan *ch, int on)
{
    for (int i = 0; i < 2; i++)
        if (ch->lst[i])
            (on ? evconnlistener_enable : evconnlistener_disable)(ch->lst[i]);
}

/* The anonymous connections reached their bound: the listeners stop
 * accepting until a quarter of them have identified or closed. New
 * connections wait in the kernel's backlog meanwhile, so a reconnect storm
 * of real devices (all of a fleet after a restart) is served a moment later
 * instead of being turned away, and a flood of silent connections holds no
 * more of fotad than the bound (each closes at its hello deadline). */
void fota_devchan_anon_pause(struct fota_devchan *ch, unsigned limit)
{
    int64_t now = fota_clock_mono_ms();
    ch->anon_paused = 1;
    listeners_enable(ch, 0);
    if (!refusal_due(&ch->anon_full, now))
        return;
    FOTA_WARN("device accept paused reason=\"too many connections not identified\" "
              "device_max_anonymous=%u anonymous=%zu pauses=%llu", limit, ch->nanon,
              (unsigned long long)ch->anon_full.unlogged);
    ch->anon_full.logged_ms = now;
    ch->anon_full.unlogged = 0;
}

void fota_devchan_anon_left(struct fota_devchan *ch)
{
    struct fota_accept_guard_stats gs;
    unsigned limit = fota_devchan_anon_limit(ch);
    if (ch->nanon > limit - limit / 4 || ch->srv->draining)
        return;
    ch->anon_paused = 0;
    fota_accept_guard_stats(ch->guard, &gs);
    if (!gs.paused)   /* else the guard enables them after its back-off */
        listeners_enable(ch, 1);
}
