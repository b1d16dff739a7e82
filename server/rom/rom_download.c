/* rom_download.c - GET/HEAD /v1/device/rom/?action=download_rom for stock
 * firmware.
 *
 * The header goes out in one write (evhttp_send_reply_start with our own
 * Content-Length), the body is added as a file segment to the connection's
 * bufferevent; on plain sockets both are written (writev, then sendfile(2),
 * corked together) in the handler's own loop pass, and libevent sends
 * whatever the socket did not take. Every reply says Connection: close, so a
 * trailing NUL or an aborted duplicate GET (RTOS clients) never produces
 * bytes after the body. Runs on every HTTP loop (FOTA_ROUTE_ANY_LOOP): what
 * a download looks up is cached in its loop's part of the module state
 * (struct fota_rom_loop), touched only by that loop. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "blob.h"
#include "devcache.h"
#include "relcache.h"
#include "devproto.h"
#include "fota_str.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "rom_int.h"
#include "keys.h"
#include "store_exec.h"
#include "xmalloc.h"

/* The request finished sending: the download joins the loop's ledger. */
static void rom_complete_cb(struct evhttp_request *req, void *ud)
{
    struct fota_rom_loop *rl = ud;
    for (unsigned i = 0; i < FOTA_ROM_PENDING; i++) {
        struct fota_rom_pending *p = &rl->pending[i];
        if (p->req != req)
            continue;
        p->req = NULL;
        fota_rom_ledger_add(rl, p->device_id, p->file_id, p->bytes);
        return;
    }
}

static void rom_pending_add(struct fota_rom_loop *rl, const void *req, int64_t device_id,
                            int64_t file_id, int64_t bytes)
{
    for (unsigned i = 0; i < FOTA_ROM_PENDING; i++)
        if (rl->pending[i].req == req)
            rl->pending[i].req = NULL; /* a stale entry of a reused request */
    struct fota_rom_pending *p = &rl->pending[rl->pending_next++ % FOTA_ROM_PENDING];
    *p = (struct fota_rom_pending){ req, device_id, file_id, bytes };
}

/* Finds the release: exact version, else the cleaned one (padding/junk cut),
 * else the unique release that the (15-byte truncated) version prefixes.
 * The shared release cache first (relcache.h): a release read since the
 * last catalog change needs no store, on any loop. */
static int find_rom(struct fota_relcache *rel, struct fota_store *st, int64_t product_id,
                    const char *raw, struct fota_rom *out)
{
    int got = fota_relcache_get(rel, st, product_id, raw, out);
    if (got != FOTA_ENOENT)
        return got;   /* found, or the store cannot say now */
    char clean[FOTA_VERSION_MAX];
    size_t n = fota_devproto_version_clean(clean, sizeof clean, raw, strlen(raw));
    if (n == 0)
        return FOTA_ENOENT;
    if (strcmp(clean, raw) != 0 && fota_relcache_get(rel, st, product_id, clean, out) == 0)
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

/* The loop's caches (struct fota_rom_loop) of what a download looks up
 * (key -> product/device, and release + file name -> file) are valid while
 * the store's generation is unchanged: any write to keys, devices or
 * releases (a key rotation, a new release, a deletion) invalidates every
 * entry at once, so a revoked key stops at the next request, as without the
 * cache. Backends that do not count generations (memory store: 0) are not
 * cached.
 *
 * Its blob cache keeps open descriptors: a blob is named by its SHA-256 and
 * never changes, so its descriptor is reused across downloads (no open,
 * fstat and close per request); the store lookup before it still decides
 * whether the file may be served. An entry is reopened at the first use
 * after the store's generation moved, and the first download after a write
 * closes every entry no body reads (so a deleted blob's space is not held);
 * an entry is never replaced or closed while in use. */

/* After a store write: close what no body reads (a deleted release's blob
 * must not keep its disk space through a cached descriptor). */
static void blob_sweep(struct fota_rom_loop *rl, uint64_t gen)
{
    rl->blob_swept = gen;
    for (unsigned i = 0; i < FOTA_ROM_BLOB_SLOTS; i++) {
        struct fota_rom_blob *b = &rl->blobs[i];
        if (b->fd > 0 && b->refs == 0 && b->gen != gen) {
            close(b->fd);
            b->fd = 0;
        }
    }
}

static void blob_release(void *entry)
{
    struct fota_rom_blob *b = entry;
    b->refs--;
}

void fota_rom_blobs_close(struct fota_rom_loop *rl)
{
    for (unsigned i = 0; i < FOTA_ROM_BLOB_SLOTS; i++) {
        struct fota_rom_blob *b = &rl->blobs[i];
        if (b->fd > 0)
            close(b->fd);
        b->fd = 0;
    }
}

/* fd and size of the blob; *cached is the entry to release when the body is
 * done, or NULL when fd is the caller's own. */
static int blob_get(struct fota_rom_loop *rl, const char *sha, uint64_t gen, int *fd,
                    int64_t *size, struct fota_rom_blob **cached)
{
    struct fota_rom_blob *b =
        &rl->blobs[fota_str_hash(FOTA_STR_HASH_SEED, sha) % FOTA_ROM_BLOB_SLOTS];
    *cached = NULL;
    if (gen != rl->blob_swept)
        blob_sweep(rl, gen);
    if (b->fd > 0 && strcmp(b->sha256, sha) == 0 && (b->gen == gen || b->refs > 0)) {
        *fd = b->fd;
        *size = b->size;
        b->refs++;
        *cached = b;
        return 0;
    }
    int rc = fota_blob_open(rl->ctx->srv->blobs, sha, fd, size);
    if (rc < 0 || !gen || b->refs > 0 || strlen(sha) >= sizeof b->sha256)
        return rc;   /* uncached: the caller owns fd */
    if (b->fd > 0)
        close(b->fd);
    *b = (struct fota_rom_blob){ .gen = gen, .fd = *fd, .size = *size, .refs = 1 };
    memcpy(b->sha256, sha, strlen(sha) + 1);
    *cached = b;
    return 0;
}

/* The body does not need fd after all. */
static void rom_fd_drop(int fd, struct fota_rom_blob *blob)
{
    if (blob)
        blob_release(blob);
    else
        close(fd);
}

static unsigned cache_slot(const char *a, const char *b, int64_t n)
{
    unsigned h = fota_str_hash(FOTA_STR_HASH_SEED ^ (uint32_t)n, a);
    return fota_str_hash(h, b) % FOTA_ROM_CACHE_SLOTS;
}

static unsigned auth_slot(const char *key)
{
    return fota_str_hash(FOTA_STR_HASH_SEED, key) % FOTA_ROM_AUTH_SLOTS;
}

/* Resolves the caller's key to the product it may download from (a store
 * job: replies 401/403 itself). */
static int rom_auth_store(struct fota_store *st, struct fota_req *r, int64_t *product_id,
                          int64_t *device_id)
{
    struct fota_key k;
    if (fota_req_auth(r, &k) < 0)
        return FOTA_EAUTH; /* replied 401 */
    *device_id = 0;
    *product_id = 0;
    if (k.kind == FOTA_KEY_MASTER || k.kind == FOTA_KEY_OWNER) {
        /* The shared device cache first: a device read since the last
         * catalog change needs no store (its product is all a download
         * needs of it), which keeps downloads going while the store is out
         * of reach. */
        int64_t pid = 0;
        int rc = fota_devcache_product(r->srv->devcache, st, k.device_id, &pid);
        if (rc == FOTA_ENOENT) {
            fota_reply_error(r, 403, "key without a device");
            return FOTA_EPERM;
        }
        if (rc < 0) {
            fota_reply_status(r, rc, "device %lld", (long long)k.device_id);
            return rc;
        }
        *device_id = k.device_id;
        *product_id = pid;
    } else if (k.kind == FOTA_KEY_PRODUCT) {
        *product_id = k.product_id;
    } else if (k.kind != FOTA_KEY_ADMIN) {
        fota_reply_error(r, 403, "this key cannot download firmware");
        return FOTA_EPERM;
    }
    return 0;
}

/* The caller's key as the Authorization header gives it into key (""
 * when there is none the cache can hold). */
static void rom_key(struct fota_req *r, char key[FOTA_KEY_BUF])
{
    const char *hdr = fota_req_header(r, "Authorization"), *k = NULL;
    size_t len = 0;
    key[0] = '\0';
    if (hdr && fota_key_from_header(hdr, &k, &len) == 0 && len < FOTA_KEY_BUF) {
        memcpy(key, k, len);
        key[len] = '\0';
    }
}

/* The loop's entry for key: 1 with the product and device it resolves to. */
static int rom_auth_cached(struct fota_rom_loop *rl, uint64_t gen, const char *key,
                           int64_t *product_id, int64_t *device_id)
{
    const struct fota_rom_auth_entry *e = &rl->auth[auth_slot(key)];
    if (!gen || !key[0] || e->gen != gen || strcmp(e->key, key) != 0)
        return 0;
    *product_id = e->product_id;
    *device_id = e->device_id;
    return 1;
}

/* The key's product and device from the shared caches alone (the key
 * cache, and a device row read under the catalog generation): a device's
 * HEAD filled them with its store job, and its GET, a connection of its
 * own, lands on either loop. 1 when they answered (the loop's entry for key
 * filled), else 0: the store job decides, and answers any refusal. */
static int rom_auth_shared(struct fota_rom_loop *rl, uint64_t gen, const char *key,
                           int64_t *product_id, int64_t *device_id)
{
    struct fota_server *srv = rl->ctx->srv;
    struct fota_key k;
    int64_t pid = 0, did = 0;
    if (!gen || !key[0] || fota_server_key_cached(srv, key, strlen(key), &k, 0) != 0)
        return 0;
    if (k.kind == FOTA_KEY_MASTER || k.kind == FOTA_KEY_OWNER) {
        if (fota_devcache_product_peek(srv->devcache, srv->store, k.device_id, &pid) != 0)
            return 0;
        did = k.device_id;
    } else if (k.kind == FOTA_KEY_PRODUCT) {
        pid = k.product_id;
    } else {
        return 0;
    }
    struct fota_rom_auth_entry *e = &rl->auth[auth_slot(key)];
    fota_str_copy(e->key, sizeof e->key, key);
    e->product_id = *product_id = pid;
    e->device_id = *device_id = did;
    e->gen = gen;
    return 1;
}

/* The release and file a download asks for, as the loop's cache holds them
 * for this generation, or NULL. */
static struct fota_rom_file_entry *rom_file_cached(struct fota_rom_loop *rl, uint64_t gen,
                                                   int64_t product_id, const char *version,
                                                   const char *filename)
{
    struct fota_rom_file_entry *fe;
    if (!gen || strlen(version) >= FOTA_VERSION_MAX || strlen(filename) >= FOTA_NAME_MAX)
        return NULL;
    fe = &rl->files[cache_slot(version, filename, product_id)];
    if (fe->gen == gen && fe->product_id == product_id && strcmp(fe->version, version) == 0 &&
        strcmp(fe->name, filename) == 0)
        return fe;
    return NULL;
}

/* The release and file a download asks for, from the store (a store job):
 * the file's index in rom, or -1 after replying 404. */
static int rom_resolve_store(struct fota_store *st, struct fota_req *r, int64_t product_id,
                             const char *version, const char *filename, struct fota_rom *rom)
{
    int rc = FOTA_ENOENT;
    char vq[96];
    if (product_id > 0) {
        rc = find_rom(r->srv->relcache, st, product_id, version, rom);
    } else { /* admin: the first product that has this release */
        struct fota_product *ps = NULL;
        size_t np = 0;
        if (st->ops->product_heads(st, &ps, &np) == 0)
            for (size_t i = 0; i < np && rc < 0; i++)
                rc = find_rom(r->srv->relcache, st, ps[i].id, version, rom);
        free(ps);
    }
    if (rc == FOTA_ENOENT) {
        fota_reply_error(r, 404, "no release %s for this key",
                         fota_log_quote(version, vq, sizeof vq));
        return -1;
    }
    if (rc < 0) {
        fota_reply_status(r, rc, "release %s", fota_log_quote(version, vq, sizeof vq));
        return -1;
    }
    for (size_t i = 0; i < rom->nfiles; i++)
        if (strcmp(rom->files[i].name, filename) == 0)
            return (int)i;
    fota_reply_error(r, 404, "release %s has no file %s", rom->version,
                     fota_log_quote(filename, vq, sizeof vq));
    return -1;
}

/* The reply's headers for [from, to] of a file of size bytes. */
static void rom_headers(struct evkeyvalq *oh, const struct fota_rom_file *file, int ranged,
                        int64_t from, int64_t to, int64_t size)
{
    char hv[160];
    evhttp_remove_header(oh, "Content-Length");
    evhttp_add_header(oh, "Content-Type", "application/octet-stream");
    snprintf(hv, sizeof hv, "%" PRId64, to - from + 1);
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
}

/* Sends the header and, for a GET with a body, the file segment (fd is
 * consumed or dropped either way). */
static void rom_send(struct fota_rom_loop *rl, struct fota_req *r, int code, int fd,
                     struct fota_rom_blob *blob, int64_t from, int64_t len, int64_t size,
                     int64_t device_id, const struct fota_rom_file *file, const char *version)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(r->ev);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    struct bufferevent *now = NULL;
    int body = !r->head && len > 0 && bev;
    if (body) {
        rom_pending_add(rl, r->ev, device_id, file->id, len);
        evhttp_request_set_on_complete_cb(r->ev, rom_complete_cb, rl);
        /* Header and body leave in full segments (nginx's tcp_nopush): the
         * connection closes after the body, which flushes the cork. */
        int one = 1;
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_CORK, &one, sizeof one);
    }
    evhttp_send_reply_start(r->ev, code, code == 206 ? "Partial Content" : "OK");
    if (body) {
        /* libevent writes 16 KiB per loop pass by default: let sendfile move
         * the whole image in as few calls as the socket buffer allows. */
        bufferevent_set_max_single_write(bev, 1 << 20);
        /* The evbuffer owns fd from here (closed when the segment is sent);
         * rom_body.c also feeds the device's progress record. */
        if (fota_rom_body_add(rl, bev, fd, from, len, size, device_id, file->name, version,
                              blob ? blob_release : NULL, blob) == 0) {
            fd = -1;
            now = bev;
        }
    }
    if (fd >= 0)
        rom_fd_drop(fd, blob);
    evhttp_send_reply_end(r->ev);
    if (now)
        fota_http_send_now(now);
}

/* Serves file of release (rom_product_id, rom_version) to the caller
 * (device_id 0: not a device), on the request's loop. */
static void rom_serve(struct fota_rom_loop *rl, struct fota_req *r, uint64_t gen,
                      int64_t device_id, const struct fota_rom_file *file,
                      int64_t rom_product_id, const char *rom_version)
{
    struct evkeyvalq *oh = evhttp_request_get_output_headers(r->ev);
    int64_t size = 0;
    struct fota_rom_blob *blob = NULL;
    int fd = -1;
    int rc = blob_get(rl, file->sha256, gen, &fd, &size, &blob);
    if (rc < 0) {
        fota_reply_error(r, rc == FOTA_ENOENT ? 404 : 500, "file %s is missing (%s)", file->name,
                         fota_errname(rc));
        return;
    }
    int64_t from = 0, to = size - 1;
    int ranged = fota_rom_range(fota_req_header(r, "Range"), size, &from, &to);
    if (ranged < 0) {
        char hv[64];
        rom_fd_drop(fd, blob);
        snprintf(hv, sizeof hv, "bytes */%" PRId64, size);
        evhttp_add_header(oh, "Content-Range", hv);
        fota_reply_error(r, 416, "range not satisfiable");
        return;
    }
    int64_t len = ranged ? to - from + 1 : size;
    int code = ranged ? 206 : 200;
    rom_headers(oh, file, ranged, from, to, size);
    r->replied = 1;
    FOTA_INFO("rom download req=%" PRIu64 " method=%s dev=%lld product=%lld version=%s file=%s "
              "status=%d bytes=%" PRId64 " peer=%s loop=%d", r->id, r->head ? "HEAD" : "GET",
              (long long)device_id, (long long)rom_product_id, rom_version, file->name, code, len,
              r->peer ? r->peer : "-", fota_loop_index(r->loop));
    rom_send(rl, r, code, fd, blob, from, len, size, device_id, file, rom_version);
}

/* A download the loop's caches could not answer: the key and the release
 * looked up by a store job, the reply made on the loop. */
struct rom_miss {
    struct fota_rom_loop *rl;
    struct fota_req *r;
    uint64_t gen;                 /* read before the lookups */
    int authed;                   /* the key came from the loop's cache */
    char key[FOTA_KEY_BUF];       /* "": not cacheable */
    int64_t product_id, device_id;
    const char *version, *filename;   /* r's query */
    int file;                     /* index in rom, -1: replied */
    struct fota_rom rom;
};

/* A store job: the file made present in DATA/blobs when another instance
 * received it (blob_share.h); replies 503 (Retry-After) and returns -1 when
 * it cannot be had now. Without shared blobs: nothing to do. */
static int rom_fill(struct fota_server *srv, struct fota_req *r, const struct fota_rom_file *f)
{
    if (!fota_blob_shared(srv->blobs))
        return 0;
    int rc = fota_blob_fill(srv->blobs, f->sha256);
    if (rc == 0)
        return 0;
    fota_reply_header(r, "Retry-After", "10");
    fota_reply_error(r, 503, "file %s is not available here yet (%s)", f->name, fota_errname(rc));
    return -1;
}

static void rom_miss_job(struct fota_store *st, void *arg)
{
    struct rom_miss *m = arg;
    m->file = -1;
    if (!m->authed && rom_auth_store(st, m->r, &m->product_id, &m->device_id) < 0)
        return;
    m->file = rom_resolve_store(st, m->r, m->product_id, m->version, m->filename, &m->rom);
    if (m->file >= 0 && rom_fill(m->rl->ctx->srv, m->r, &m->rom.files[m->file]) < 0)
        m->file = -1;
}

/* On the request's loop: the caches take what the job found, then the reply. */
static void rom_miss_finish(struct rom_miss *m)
{
    struct fota_req *r = m->r;
    struct fota_rom_loop *rl = m->rl;

    if (!m->authed && m->file >= 0 && m->gen && m->key[0]) {
        struct fota_rom_auth_entry *e = &rl->auth[auth_slot(m->key)];
        fota_str_copy(e->key, sizeof e->key, m->key);
        e->product_id = m->product_id;
        e->device_id = m->device_id;
        e->gen = m->gen;
    }
    if (m->file >= 0) {
        const struct fota_rom_file *file = &m->rom.files[m->file];
        if (m->gen && strlen(m->version) < FOTA_VERSION_MAX &&
            strlen(m->filename) < FOTA_NAME_MAX) {
            struct fota_rom_file_entry *fe =
                &rl->files[cache_slot(m->version, m->filename, m->product_id)];
            fe->product_id = m->product_id;
            fota_str_copy(fe->version, sizeof fe->version, m->version);
            fota_str_copy(fe->name, sizeof fe->name, m->filename);
            fota_str_copy(fe->rom_version, sizeof fe->rom_version, m->rom.version);
            fe->rom_product_id = m->rom.product_id;
            fe->file = *file;
            fe->gen = m->gen;
        }
        r->dev_id = m->device_id;
        rom_serve(rl, r, m->gen, m->device_id, file, m->rom.product_id, m->rom.version);
    }
    if (!r->replied)
        fota_reply_error(r, 500, "internal error: no reply");
}

static void rom_miss_done(void *arg, int cancelled)
{
    struct rom_miss *m = arg;
    if (!cancelled)   /* else the loop stopped: no reply, r's connection goes with it */
        rom_miss_finish(m);
    fota_req_release(m->r);
    free(m);
}

/* ---- a stock device's HEAD, answered from the head alone ---------------- */

/* The value of the query's key (as sent, NUL-terminated into out), or -1
 * when the query is one evhttp decodes or refuses (an argument without
 * '=', '%' or '+' anywhere: decoding is evhttp's), names key twice, or the
 * value does not fit. 0: found, 1: not there. */
static int quick_arg(const char *q, size_t len, const char *key, char *out, size_t cap)
{
    size_t klen = strlen(key);
    int found = 0;
    const char *end = q + len;
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q)), *e = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(e - q));
        if (!eq || eq == q || memchr(q, '%', (size_t)(e - q)) || memchr(q, '+', (size_t)(e - q)))
            return -1;
        if ((size_t)(eq - q) == klen && memcmp(q, key, klen) == 0) {
            size_t vlen = (size_t)(e - eq - 1);
            if (found++ || vlen >= cap)
                return -1;
            memcpy(out, eq + 1, vlen);
            out[vlen] = '\0';
        }
        q = amp ? amp + 1 : end;
    }
    return found ? 0 : 1;
}

/* The Authorization value of the head's lines as evhttp reads it (leading
 * spaces and trailing white space cut) into out: 0, or -1 when the head
 * folds a line, names Authorization twice or not at all, asks a Range, or
 * the value does not fit. */
static int quick_auth(const char *lines, size_t len, char *out, size_t cap)
{
    static const char auth[] = "Authorization", range[] = "Range";
    const char *p = lines, *end = lines + len;
    int found = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *e = nl ? nl : end;
        const char *next = nl ? nl + 1 : end;
        if (e > p && e[-1] == '\r')
            e--;
        if (e == p)
            break;   /* the empty line */
        if (*p == ' ' || *p == '\t')
            return -1;
        const char *colon = memchr(p, ':', (size_t)(e - p));
        if (!colon)
            return -1;
        size_t nlen = (size_t)(colon - p);
        if (nlen == sizeof range - 1 && strncasecmp(p, range, nlen) == 0)
            return -1;
        if (nlen == sizeof auth - 1 && strncasecmp(p, auth, nlen) == 0) {
            const char *v = colon + 1;
            while (v < e && *v == ' ')
                v++;
            while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            if (found++ || (size_t)(e - v) >= cap)
                return -1;
            memcpy(out, v, (size_t)(e - v));
            out[e - v] = '\0';
        }
        p = next;
    }
    return found ? 0 : -1;
}

/* The size of blob sha when the loop holds it open for gen (no sweep due). */
static int blob_size_cached(const struct fota_rom_loop *rl, const char *sha, uint64_t gen,
                            int64_t *size)
{
    const struct fota_rom_blob *b =
        &rl->blobs[fota_str_hash(FOTA_STR_HASH_SEED, sha) % FOTA_ROM_BLOB_SLOTS];
    if (!gen || gen != rl->blob_swept || b->fd <= 0 || b->gen != gen ||
        strcmp(b->sha256, sha) != 0)
        return 0;
    *size = b->size;
    return 1;
}

static int printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

size_t fota_rom_quick_head(void *ud, struct fota_http_quick_req *q, char *reply, size_t cap)
{
    struct fota_rom_ctx *ctx = ud;
    char action[16], version[FOTA_VERSION_MAX], filename[FOTA_NAME_MAX], hdr[FOTA_KEY_BUF + 16];
    char key[FOTA_KEY_BUF];
    const char *k = NULL;
    size_t klen = 0;
    int64_t product_id = 0, device_id = 0, size = 0;
    if (q->loop < 0 || q->loop >= ctx->nloops || !q->query ||
        quick_arg(q->query, q->query_len, "action", action, sizeof action) != 0 ||
        strcmp(action, "download_rom") != 0 ||
        quick_arg(q->query, q->query_len, "version", version, sizeof version) != 0 ||
        quick_arg(q->query, q->query_len, "filename", filename, sizeof filename) != 0 ||
        quick_auth(q->lines, q->len, hdr, sizeof hdr) != 0 ||
        fota_key_from_header(hdr, &k, &klen) != 0 || klen >= sizeof key)
        return 0;
    memcpy(key, k, klen);
    key[klen] = '\0';
    struct fota_rom_loop *rl = ctx->loops[q->loop];
    uint64_t gen = fota_store_generation(ctx->srv->store);
    if (!rom_auth_cached(rl, gen, key, &product_id, &device_id) &&
        !rom_auth_shared(rl, gen, key, &product_id, &device_id))
        return 0;
    const struct fota_rom_file_entry *fe = rom_file_cached(rl, gen, product_id, version, filename);
    if (!fe || !blob_size_cached(rl, fe->file.sha256, gen, &size) || !printable(fe->file.name) ||
        !printable(fe->file.sha256))
        return 0;
    /* The bytes evhttp sends for rom_serve's answer to an HTTP/1.0 HEAD. */
    int n = snprintf(reply, cap, "HTTP/1.0 200 OK\r\nConnection: close\r\n"
                     "Content-Type: application/octet-stream\r\nContent-Length: %" PRId64 "\r\n"
                     "Content-Disposition: attachment;filename=%s\r\nETag: \"%s\"\r\n"
                     "Accept-Ranges: bytes\r\n\r\n", size, fe->file.name, fe->file.sha256);
    if (n <= 0 || (size_t)n >= cap)
        return 0;
    q->dev_id = device_id;
    q->log_what = "rom download";
    snprintf(q->log, sizeof q->log, "method=HEAD dev=%lld product=%lld version=%s file=%s "
             "status=200 bytes=%" PRId64, (long long)device_id, (long long)fe->rom_product_id,
             fe->rom_version, fe->file.name, size);
    return (size_t)n;
}

void fota_rom_download(struct fota_req *r)
{
    struct fota_rom_ctx *ctx = r->ud;
    struct fota_rom_loop *rl = ctx->loops[fota_loop_index(r->loop)];
    const char *version = fota_req_query(r, "version");
    const char *filename = fota_req_query(r, "filename");
    int64_t product_id = 0, device_id = 0;
    struct evkeyvalq *oh = evhttp_request_get_output_headers(r->ev);
    char key[FOTA_KEY_BUF];
    /* Every reply on this route closes the connection, errors included: a
     * trailing NUL (RTOS clients) must never be parsed as a next request.
     * evhttp adds "Connection: keep-alive" for a keep-alive HTTP/1.0 request
     * unless the request's own header is gone. */
    evhttp_remove_header(evhttp_request_get_input_headers(r->ev), "Connection");
    evhttp_remove_header(oh, "Connection");
    evhttp_add_header(oh, "Connection", "close");
    if (!version || !filename) {
        fota_reply_error(r, 400, "need action=download_rom, version= and filename=");
        return;
    }
    uint64_t gen = fota_store_generation(ctx->srv->store);
    rom_key(r, key);
    int authed = rom_auth_cached(rl, gen, key, &product_id, &device_id) ||
                 rom_auth_shared(rl, gen, key, &product_id, &device_id);
    if (authed)
        r->dev_id = device_id;
    const struct fota_rom_file_entry *fe =
        authed ? rom_file_cached(rl, gen, product_id, version, filename) : NULL;
    if (fe) {
        rom_serve(rl, r, gen, device_id, &fe->file, fe->rom_product_id, fe->rom_version);
        return;
    }
    /* A miss: the store answers on a store thread (inline for SQLite) and
     * the reply follows on this loop. */
    struct rom_miss *m = fota_xmalloc(sizeof(*m));
    m->rl = rl;
    m->r = r;
    m->gen = gen;
    m->authed = authed;
    memcpy(m->key, key, sizeof m->key);
    m->product_id = product_id;
    m->device_id = device_id;
    m->version = version;
    m->filename = filename;
    m->file = -1;
    if (!ctx->srv->exec) {
        rom_miss_job(ctx->srv->store, m);
        rom_miss_finish(m);
        free(m);
        return;
    }
    fota_req_defer(r);
    if (fota_store_submit(ctx->srv->exec, NULL, r->loop, rom_miss_job, rom_miss_done, m) != 0) {
        free(m);
        r->deferred = 0;
        fota_reply_error(r, 503, "store busy: too many requests wait for the store");
    }
}
