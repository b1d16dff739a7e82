/* rom.c - GET/HEAD /v1/device/rom/?action=download_rom for stock firmware.
 *
 * The header goes out in one write (evhttp_send_reply_start with our own
 * Content-Length), the body is added as a file segment to the connection's
 * bufferevent; on plain sockets both are written (writev, then sendfile(2),
 * corked together) in the handler's own loop pass, and libevent sends
 * whatever the socket did not take. Every reply says
 * Connection: close, so a trailing NUL or an aborted duplicate GET (RTOS
 * clients) never produces bytes after the body. Runs on every HTTP loop
 * (FOTA_ROUTE_ANY_LOOP): per-download state is per thread. */
#include "rom.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>

#include "devchan_int.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "rom_progress.h"

int fota_rom_range(const char *hdr, int64_t size, int64_t *from, int64_t *to)
{
    if (!hdr)
        return 0;
    while (*hdr == ' ')
        hdr++;
    if (strncmp(hdr, "bytes=", 6) != 0 || strchr(hdr, ','))
        return 0;
    const char *p = hdr + 6;
    char *end;
    if (*p == '-') {
        long long n = strtoll(p + 1, &end, 10);
        if (end == p + 1 || *end || n <= 0)
            return -1;
        *from = n >= size ? 0 : size - n;
        *to = size - 1;
        return size > 0 ? 1 : -1;
    }
    if (*p < '0' || *p > '9')
        return 0;
    long long a = strtoll(p, &end, 10);
    if (*end != '-')
        return 0;
    const char *q = end + 1;
    long long b = size - 1;
    if (*q) {
        b = strtoll(q, &end, 10);
        if (end == q || *end)
            return 0;
        if (b >= size)
            b = size - 1;
    }
    if (a >= size || a > b)
        return -1;
    *from = a;
    *to = b;
    return 1;
}

/* A ROM download being written; found again by its request on completion.
 * A ring per loop thread (a request completes on the loop that took it): an
 * aborted download's slot is simply reused later (no leak). */
#define FOTA_ROM_PENDING 256
struct fota_rom_pending {
    const void *req;
    int64_t device_id, file_id, bytes;
};
static _Thread_local struct fota_rom_pending rom_pending[FOTA_ROM_PENDING];
static _Thread_local unsigned rom_next;

/* Completed downloads waiting for the ledger write, merged per (device,
 * file), one batch per loop: written once a second (LEDGER_FLUSH_MS) in one
 * transaction, when the batch is full, or at once when the API is about to
 * read the counts (fota_rom_ledgers_sync, from any thread), so what the API
 * shows is exact while the serving loops write the store about once a second
 * instead of once per pass. A crash loses at most that second of counts. */
#define LEDGER_MAX 256
#define LEDGER_FLUSH_MS 1000
struct ledger_row {
    int64_t device_id, file_id, bytes;
    int completions;
};
struct fota_rom_ledger {
    struct fota_devchan *ch;
    struct event *ev;           /* the flush timer, on the loop's base */
    pthread_mutex_t mu;         /* rows: the loop adds, any thread may flush */
    size_t n;
    struct ledger_row rows[LEDGER_MAX];
};
/* Guards ch->ledgers[] slots being filled (by their loop) against a sync. */
static pthread_mutex_t ledgers_lock = PTHREAD_MUTEX_INITIALIZER;

static void ledger_write(struct fota_rom_ledger *l)
{
    struct fota_store *st = l->ch->srv->store;
    for (size_t i = 0; i < l->n; i++) {
        struct ledger_row *w = &l->rows[i];
        int rc = st->ops->download_add(st, w->device_id, w->file_id, w->bytes, w->completions);
        if (rc < 0)
            FOTA_WARN("download not counted dev=%lld file=%lld downloads=%d error=%s",
                      (long long)w->device_id, (long long)w->file_id, w->completions,
                      fota_errname(rc));
    }
    l->n = 0;
}

static void ledger_flush(evutil_socket_t fd, short what, void *arg)
{
    struct fota_rom_ledger *l = arg;
    (void)fd;
    (void)what;
    pthread_mutex_lock(&l->mu);
    ledger_write(l);
    pthread_mutex_unlock(&l->mu);
}

static struct fota_rom_ledger *ledger_of(struct fota_devchan *ch, struct fota_loop *loop)
{
    int li = loop ? fota_loop_index(loop) : -1;
    if (li < 0 || li >= FOTA_LOOPS_MAX)
        return NULL;
    if (ch->ledgers[li])   /* only this loop's thread fills its slot */
        return ch->ledgers[li];
    struct fota_rom_ledger *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->ch = ch;
    pthread_mutex_init(&l->mu, NULL);
    if (!(l->ev = event_new(fota_loop_base(loop), -1, 0, ledger_flush, l))) {
        pthread_mutex_destroy(&l->mu);
        free(l);
        return NULL;
    }
    pthread_mutex_lock(&ledgers_lock);
    ch->ledgers[li] = l;
    pthread_mutex_unlock(&ledgers_lock);
    return l;
}

static void ledger_add(struct fota_devchan *ch, int64_t device_id, int64_t file_id, int64_t bytes)
{
    struct fota_rom_ledger *l = ledger_of(ch, fota_loop_current());
    if (!l) {   /* no loop (or no memory): write it now */
        struct fota_store *st = ch->srv->store;
        if (st->ops->download_add(st, device_id, file_id, bytes, 1) < 0)
            FOTA_WARN("download not counted dev=%lld file=%lld", (long long)device_id,
                      (long long)file_id);
        return;
    }
    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; i < l->n; i++) {
        struct ledger_row *w = &l->rows[i];
        if (w->device_id == device_id && w->file_id == file_id) {
            w->bytes += bytes;
            w->completions++;
            pthread_mutex_unlock(&l->mu);
            return;
        }
    }
    if (l->n == LEDGER_MAX)
        ledger_write(l);
    l->rows[l->n++] = (struct ledger_row){ device_id, file_id, bytes, 1 };
    int arm = l->n == 1 && !evtimer_pending(l->ev, NULL);
    pthread_mutex_unlock(&l->mu);
    if (arm) {
        static const struct timeval later = { LEDGER_FLUSH_MS / 1000, (LEDGER_FLUSH_MS % 1000) * 1000 };
        event_add(l->ev, &later);
    }
}

int64_t fota_rom_ledgers_sync(void *ud, const void *event)
{
    struct fota_devchan *ch = ud;
    (void)event;
    pthread_mutex_lock(&ledgers_lock);
    for (int i = 0; i < FOTA_LOOPS_MAX; i++)
        if (ch->ledgers[i])
            ledger_flush(-1, 0, ch->ledgers[i]);
    pthread_mutex_unlock(&ledgers_lock);
    return 0;
}

void fota_rom_ledgers_free(struct fota_devchan *ch)
{
    for (int i = 0; i < FOTA_LOOPS_MAX; i++) {
        struct fota_rom_ledger *l = ch->ledgers[i];
        if (!l)
            continue;
        ledger_write(l);
        event_free(l->ev);
        pthread_mutex_destroy(&l->mu);
        free(l);
        ch->ledgers[i] = NULL;
    }
}

static void rom_complete_cb(struct evhttp_request *req, void *ud)
{
    struct fota_devchan *ch = ud;
    for (unsigned i = 0; i < FOTA_ROM_PENDING; i++) {
        struct fota_rom_pending *p = &rom_pending[i];
        if (p->req != req)
            continue;
        p->req = NULL;
        ledger_add(ch, p->device_id, p->file_id, p->bytes);
        return;
    }
}

static void rom_pending_add(const void *req, int64_t device_id, int64_t file_id, int64_t bytes)
{
    for (unsigned i = 0; i < FOTA_ROM_PENDING; i++)
        if (rom_pending[i].req == req)
            rom_pending[i].req = NULL; /* a stale entry of a reused request */
    struct fota_rom_pending *p = &rom_pending[rom_next++ % FOTA_ROM_PENDING];
    *p = (struct fota_rom_pending){ req, device_id, file_id, bytes };
}

/* Finds the release: exact version, else the cleaned one (padding/junk cut),
 * else the unique release that the (15-byte truncated) version prefixes. */
static int find_rom(struct fota_store *st, int64_t product_id, const char *raw, struct fota_rom *out)
{
    if (st->ops->rom_get(st, product_id, raw, out) == 0)
        return 0;
    char clean[FOTA_VERSION_MAX];
    size_t n = fota_devproto_version_clean(clean, sizeof clean, raw, strlen(raw));
    if (n == 0)
        return FOTA_ENOENT;
    if (st->ops->rom_get(st, product_id, clean, out) == 0)
        return 0;
    struct fota_rom *list = NULL;
    size_t cnt = 0, hits = 0;
    int rc = st->ops->rom_list(st, product_id, &list, &cnt);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < cnt; i++) {
        if (strncmp(list[i].version, clean, n) == 0 && n >= FOTA_DEVPROTO_VCOPY) {
            if (hits++ == 0)
                *out = list[i];
        }
    }
    free(list);
    return hits == 1 ? 0 : FOTA_ENOENT;
}

/* Per-loop cache of what a download looks up (key -> product/device, and
 * release + file name -> file), valid while the store's generation is
 * unchanged: any write to keys, devices or releases (a key rotation, a new
 * release, a deletion) invalidates every entry at once, so a revoked key
 * stops at the next request, as without the cache. Backends that do not
 * count generations (memory store: 0) are not cached. */
#define ROM_CACHE_SLOTS 64
struct auth_entry {
    uint64_t gen;
    char key[FOTA_KEY_BUF];
    int64_t product_id, device_id;
};
struct file_entry {
    uint64_t gen;
    int64_t product_id;                 /* the caller's product (0: admin, any) */
    char version[FOTA_VERSION_MAX];     /* as asked */
    char name[FOTA_NAME_MAX];
    char rom_version[FOTA_VERSION_MAX];
    int64_t rom_product_id;
    struct fota_rom_file file;
};
static _Thread_local struct auth_entry auth_cache[ROM_CACHE_SLOTS];
static _Thread_local struct file_entry file_cache[ROM_CACHE_SLOTS];

/* Per-loop cache of open blob files. A blob is named by its SHA-256 and
 * never changes, so its descriptor is reused across downloads (no open, fstat
 * and close per request); the store lookup before it still decides whether
 * the file may be served. An entry is reopened at the first use after the
 * store's generation moved, and the first download after a write closes every
 * entry no body reads (so a deleted blob's space is not held); an entry is
 * never replaced or closed while in use. */
#define BLOB_SLOTS 16
struct blob_entry {
    uint64_t gen;
    char sha256[FOTA_HASH_HEX];
    int fd;             /* 0: empty (fd 0 is never a blob) */
    int64_t size;
    unsigned refs;      /* bodies in flight reading fd */
};
static _Thread_local struct blob_entry blob_cache[BLOB_SLOTS];
static _Thread_local uint64_t blob_swept;   /* the generation of the last sweep */

/* After a store write: close what no body reads (a deleted release's blob
 * must not keep its disk space through a cached descriptor). */
static void blob_sweep(uint64_t gen)
{
    blob_swept = gen;
    for (unsigned i = 0; i < BLOB_SLOTS; i++) {
        struct blob_entry *b = &blob_cache[i];
        if (b->fd > 0 && b->refs == 0 && b->gen != gen) {
            close(b->fd);
            b->fd = 0;
        }
    }
}

static void blob_release(void *arg)
{
    struct blob_entry *b = arg;
    b->refs--;
}

/* fd and size of the blob; *cached is the entry to release when the body is
 * done, or NULL when fd is the caller's own. */
static int blob_get(struct fota_server *srv, const char *sha, uint64_t gen, int *fd,
                    int64_t *size, struct blob_entry **cached)
{
    unsigned h = 2166136261u;
    for (const char *c = sha; *c; c++)
        h = (h ^ (uint8_t)*c) * 16777619u;
    struct blob_entry *b = &blob_cache[h % BLOB_SLOTS];
    *cached = NULL;
    if (gen != blob_swept)
        blob_sweep(gen);
    if (b->fd > 0 && strcmp(b->sha256, sha) == 0 && (b->gen == gen || b->refs > 0)) {
        *fd = b->fd;
        *size = b->size;
        b->refs++;
        *cached = b;
        return 0;
    }
    int rc = fota_blob_open(srv->blobs, sha, fd, size);
    if (rc < 0 || !gen || b->refs > 0 || strlen(sha) >= sizeof b->sha256)
        return rc;   /* uncached: the caller owns fd */
    if (b->fd > 0)
        close(b->fd);
    *b = (struct blob_entry){ .gen = gen, .fd = *fd, .size = *size, .refs = 1 };
    memcpy(b->sha256, sha, strlen(sha) + 1);
    *cached = b;
    return 0;
}

/* The body does not need fd after all. */
static void rom_fd_drop(int fd, struct blob_entry *blob)
{
    if (blob)
        blob_release(blob);
    else
        close(fd);
}

static unsigned cache_slot(const char *a, const char *b, int64_t n)
{
    uint32_t h = 2166136261u ^ (uint32_t)n;
    for (; a && *a; a++)
        h = (h ^ (uint8_t)*a) * 16777619u;
    for (; b && *b; b++)
        h = (h ^ (uint8_t)*b) * 16777619u;
    return h % ROM_CACHE_SLOTS;
}

/* Resolves the caller's key to the product it may download from. */
static int rom_auth_store(struct fota_req *r, int64_t *product_id, int64_t *device_id);

static int rom_auth(struct fota_req *r, uint64_t gen, int64_t *product_id, int64_t *device_id)
{
    const char *hdr = fota_req_header(r, "Authorization"), *k = NULL;
    size_t len = 0;
    struct auth_entry *e = NULL;
    if (gen && hdr && fota_key_from_header(hdr, &k, &len) == 0 && len < FOTA_KEY_BUF) {
        char key[FOTA_KEY_BUF];
        memcpy(key, k, len);
        key[len] = '\0';
        e = &auth_cache[cache_slot(key, NULL, 0)];
        if (e->gen == gen && strcmp(e->key, key) == 0) {
            *product_id = e->product_id;
            *device_id = e->device_id;
            r->dev_id = e->device_id;
            return 0;
        }
        e->gen = 0;
        memcpy(e->key, key, len + 1);
    }
    int rc = rom_auth_store(r, product_id, device_id);
    if (rc == 0 && e) {
        e->product_id = *product_id;
        e->device_id = *device_id;
        e->gen = gen;   /* read before the lookups: a write meanwhile invalidates it */
    }
    return rc;
}

static int rom_auth_store(struct fota_req *r, int64_t *product_id, int64_t *device_id)
{
    struct fota_key k;
    if (fota_req_auth(r, &k) < 0)
        return FOTA_EAUTH; /* replied 401 */
    *device_id = 0;
    *product_id = 0;
    if (k.kind == FOTA_KEY_MASTER || k.kind == FOTA_KEY_OWNER) {
        struct fota_device d;
        if (r->srv->store->ops->device_get(r->srv->store, k.device_id, &d) < 0) {
            fota_reply_error(r, 403, "key without a device");
            return FOTA_EPERM;
        }
        *device_id = d.id;
        *product_id = d.product_id;
    } else if (k.kind == FOTA_KEY_PRODUCT) {
        *product_id = k.product_id;
    } else if (k.kind != FOTA_KEY_ADMIN) {
        fota_reply_error(r, 403, "this key cannot download firmware");
        return FOTA_EPERM;
    }
    return 0;
}

/* Writes the queued header and body now, in this loop pass, instead of
 * waiting for the next pass's EPOLLOUT: the header (held by TCP_CORK), then
 * sendfile. What the socket does not take stays queued and libevent sends it
 * as before (its write callback then ends the request); an error is left for
 * libevent's next write to see. Called after evhttp_send_reply_end, so evhttp
 * waits for the write callback: when everything is written here it is
 * triggered deferred (libevent's own write would find nothing and not call
 * it), which ends the request after the handler has returned (the connection
 * must outlive the handler). The output buffer's start is frozen for users of
 * a socket bufferevent; libevent's write unfreezes it around its write too. */
static void rom_send_now(struct bufferevent *bev)
{
    struct evbuffer *out = bufferevent_get_output(bev);
    evutil_socket_t sfd = bufferevent_getfd(bev);
    /* Plain sockets only: TLS (and any filter) must go through libevent. */
    if (sfd < 0 || bufferevent_openssl_get_ssl(bev) || bufferevent_get_underlying(bev))
        return;
    evbuffer_unfreeze(out, 1);
    for (int i = 0; i < 4 && evbuffer_get_length(out) > 0; i++)
        if (evbuffer_write(out, sfd) <= 0)
            break;
    evbuffer_freeze(out, 1);
    if (evbuffer_get_length(out) == 0)
        bufferevent_trigger(bev, EV_WRITE, BEV_TRIG_DEFER_CALLBACKS);
}

void fota_rom_download(void *ud, struct fota_req *r)
{
    struct fota_devchan *ch = ud;
    struct fota_server *srv = r->srv;
    struct fota_store *st = srv->store;
    const char *action = fota_req_query(r, "action");
    const char *version = fota_req_query(r, "version");
    const char *filename = fota_req_query(r, "filename");
    int64_t product_id, device_id;
    int fd = -1;
    struct evkeyvalq *oh = evhttp_request_get_output_headers(r->ev);
    /* Every reply on this route closes the connection, errors included: a
     * trailing NUL (RTOS clients) must never be parsed as a next request.
     * evhttp adds "Connection: keep-alive" for a keep-alive HTTP/1.0 request
     * unless the request's own header is gone. */
    evhttp_remove_header(evhttp_request_get_input_headers(r->ev), "Connection");
    evhttp_remove_header(oh, "Connection");
    evhttp_add_header(oh, "Connection", "close");
    if (!action || strcmp(action, "download_rom") != 0 || !version || !filename) {
        fota_reply_error(r, 400, "need action=download_rom, version= and filename=");
        return;
    }
    uint64_t gen = fota_store_generation(st);
    if (rom_auth(r, gen, &product_id, &device_id) < 0)
        return;
    static _Thread_local struct fota_rom rom; /* 10 KB: not on the stack; one per loop */
    static _Thread_local struct fota_rom_file hit_file;
    const struct fota_rom_file *file = NULL;
    struct file_entry *fe = NULL;
    int rc = FOTA_ENOENT;
    if (gen && strlen(version) < FOTA_VERSION_MAX && strlen(filename) < FOTA_NAME_MAX) {
        fe = &file_cache[cache_slot(version, filename, product_id)];
        if (fe->gen == gen && fe->product_id == product_id && strcmp(fe->version, version) == 0 &&
            strcmp(fe->name, filename) == 0) {
            hit_file = fe->file;
            file = &hit_file;
            rom.product_id = fe->rom_product_id;
            snprintf(rom.version, sizeof rom.version, "%s", fe->rom_version);
            goto have_file;
        }
    }
    if (product_id > 0) {
        rc = find_rom(st, product_id, version, &rom);
    } else { /* admin: the first product that has this release */
        struct fota_product *ps = NULL;
        size_t np = 0;
        if (st->ops->product_list(st, &ps, &np) == 0)
            for (size_t i = 0; i < np && rc < 0; i++)
                rc = find_rom(st, ps[i].id, version, &rom);
        free(ps);
    }
    char vq[96];
    if (rc < 0) {
        fota_reply_error(r, 404, "no release %s for this key",
                         fota_log_quote(version, vq, sizeof vq));
        return;
    }
    for (size_t i = 0; i < rom.nfiles; i++)
        if (strcmp(rom.files[i].name, filename) == 0)
            file = &rom.files[i];
    if (!file) {
        fota_reply_error(r, 404, "release %s has no file %s", rom.version,
                         fota_log_quote(filename, vq, sizeof vq));
        return;
    }
    if (fe) {
        fe->product_id = product_id;
        snprintf(fe->version, sizeof fe->version, "%s", version);
        snprintf(fe->name, sizeof fe->name, "%s", filename);
        snprintf(fe->rom_version, sizeof fe->rom_version, "%s", rom.version);
        fe->rom_product_id = rom.product_id;
        fe->file = *file;
        fe->gen = gen;
    }
have_file:;
    int64_t size = 0;
    struct blob_entry *blob = NULL;
    rc = blob_get(srv, file->sha256, gen, &fd, &size, &blob);
    if (rc < 0) {
        fota_reply_error(r, rc == FOTA_ENOENT ? 404 : 500, "file %s is missing (%s)", file->name,
                         fota_errname(rc));
        return;
    }
    int64_t from = 0, to = size - 1;
    int ranged = fota_rom_range(fota_req_header(r, "Range"), size, &from, &to);
    char hv[160];
    if (ranged < 0) {
        rom_fd_drop(fd, blob);
        snprintf(hv, sizeof hv, "bytes */%" PRId64, size);
        evhttp_add_header(oh, "Content-Range", hv);
        fota_reply_error(r, 416, "range not satisfiable");
        return;
    }
    int64_t len = ranged ? to - from + 1 : size;
    int code = ranged ? 206 : 200;
    evhttp_remove_header(oh, "Content-Length");
    evhttp_add_header(oh, "Content-Type", "application/octet-stream");
    snprintf(hv, sizeof hv, "%" PRId64, len);
    evhttp_add_header(oh, "Content-Length", hv);
    snprintf(hv, sizeof hv, "attachment;filename=%s", file->name);
    evhttp_add_header(oh, "Content-Disposition", hv);
    snprintf(hv, sizeof hv, "\"%s\"", file->sha256);
    evhttp_add_header(oh, "ETag", hv);
    evhttp_add_header(oh, "Accept-Ranges", "bytes");
    if (ranged) {
        snprintf(hv, sizeof hv, "bytes %" PRId64 "-%" PRId64 "/%" PRId64, from, to, size);
        evhttp_add_header(oh, "Content-Range", hv);
    }
    r->replied = 1;
    FOTA_INFO("rom download req=%" PRIu64 " method=%s dev=%lld product=%lld version=%s file=%s "
              "status=%d bytes=%" PRId64 " peer=%s loop=%d", r->id, r->head ? "HEAD" : "GET",
              (long long)device_id, (long long)rom.product_id, rom.version, file->name, code, len,
              r->peer ? r->peer : "-", r->loop ? fota_loop_index(r->loop) : 0);
    struct evhttp_connection *evcon = evhttp_request_get_connection(r->ev);
    struct bufferevent *now = NULL;
    if (!r->head && len > 0 && evcon) {
        rom_pending_add(r->ev, device_id, file->id, len);
        evhttp_request_set_on_complete_cb(r->ev, rom_complete_cb, ch);
    }
    if (!r->head && len > 0 && evcon) {
        /* Header and body leave in full segments (nginx's tcp_nopush): the
         * connection closes after the body, which flushes the cork. */
        int one = 1;
        setsockopt(bufferevent_getfd(evhttp_connection_get_bufferevent(evcon)), IPPROTO_TCP,
                   TCP_CORK, &one, sizeof one);
    }
    evhttp_send_reply_start(r->ev, code, code == 206 ? "Partial Content" : "OK");
    if (!r->head && len > 0 && evcon) {
        struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
        /* libevent writes 16 KiB per loop pass by default: let sendfile move
         * the whole image in as few calls as the socket buffer allows. */
        bufferevent_set_max_single_write(bev, 1 << 20);
        /* The evbuffer owns fd from here (closed when the segment is sent);
         * rom_progress.c also feeds the device's download record. */
        if (fota_rom_add_body(bev, fd, from, len, size, device_id, file->name, rom.version,
                              blob ? blob_release : NULL, blob) == 0) {
            fd = -1;
            now = bev;
        }
    }
    if (fd >= 0)
        rom_fd_drop(fd, blob);
    evhttp_send_reply_end(r->ev);
    if (now)
        rom_send_now(now);
}
