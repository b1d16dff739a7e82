/* arduino_serve.c - GET/HEAD /v1/arduino/PRODUCT_KEY/[d/DEVICE_NAME/]FILE,
 * the URL a sketch's ESPhttpUpdate, Tasmota's OtaUrl and ESPHome are given.
 *
 * Every answer that serves something is 200 with Content-Length (never
 * chunked, never a redirect, no Content-Encoding: ESPhttpUpdate refuses
 * anything else, §3, §4), images carry x-MD5 = 32 lower-case hex of the body
 * bytes, and the connection closes after the body (§10.2). A device that
 * runs its target gets 304; one that will refuse the image (too big, wrong
 * flash) gets the real Content-Length and only the first bytes, which is
 * what starts Tasmota's -minimal step (§10.3). Bodies go out by sendfile
 * from the blob store. Runs on every loop (FOTA_ROUTE_ANY_LOOP): a check-in
 * the loop's caches answer (a device polling while current) is answered
 * there; any other runs its store work (arduino_track.c) in a store job and
 * is answered on its loop in the job's continuation. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "arduino_img.h"
#include "arduino_int.h"
#include "clock.h"
#include "fota_str.h"
#include "http.h"
#include "blob.h"
#include "log.h"
#include "loop.h"
#include "store_exec.h"
#include "xmalloc.h"

/* The request finished sending: the download is recorded. */
static void complete_cb(struct evhttp_request *req, void *ud)
{
    struct fota_arduino_loop *al = ud;
    for (unsigned i = 0; i < FOTA_ARDUINO_PENDING; i++) {
        struct fota_arduino_pending *p = &al->pending[i];
        if (p->req != req)
            continue;
        p->req = NULL;
        fota_arduino_served(al->ctx, p);
        return;
    }
}

static void pending_add(struct fota_arduino_loop *al, const void *req,
                        const struct fota_arduino_pending *src)
{
    for (unsigned i = 0; i < FOTA_ARDUINO_PENDING; i++)
        if (al->pending[i].req == req)
            al->pending[i].req = NULL; /* a stale entry of a reused request */
    struct fota_arduino_pending *p = &al->pending[al->pending_next++ % FOTA_ARDUINO_PENDING];
    *p = *src;
    p->req = req;
}

static void pending_drop(struct fota_arduino_loop *al, const void *req)
{
    for (unsigned i = 0; i < FOTA_ARDUINO_PENDING; i++)
        if (al->pending[i].req == req)
            al->pending[i].req = NULL;
}

static int md5_hex_ok(const char *s)
{
    if (strlen(s) != 32)
        return 0;
    for (const char *c = s; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return 0;
    return 1;
}

/* ---- blob descriptors (struct fota_arduino_blob_fd) */

static void blob_drop(struct fota_arduino_blob_fd *b)
{
    if (b->fd >= 0)
        close(b->fd);
    free(b);
}

/* After a catalog write: close what no body reads. */
static void blob_sweep(struct fota_arduino_loop *al, uint64_t gen)
{
    al->blob_swept = gen;
    for (unsigned i = 0; i < FOTA_ARDUINO_BLOB_SLOTS; i++) {
        struct fota_arduino_blob_fd *b = al->blobs[i];
        if (b && b->refs == 0 && b->gen != gen) {
            blob_drop(b);
            al->blobs[i] = NULL;
        }
    }
}

void fota_arduino_blobs_close(struct fota_arduino_loop *al)
{
    for (unsigned i = 0; i < FOTA_ARDUINO_BLOB_SLOTS; i++) {
        struct fota_arduino_blob_fd *b = al->blobs[i];
        if (b && b->refs == 0)
            blob_drop(b);
        else if (b)
            b->orphan = 1;
        al->blobs[i] = NULL;
    }
}

/* A body that read the entry is gone (sent or dropped with its connection). */
static void blob_release(const struct evbuffer_file_segment *seg, int flags, void *arg)
{
    struct fota_arduino_blob_fd *b = arg;
    (void)seg;
    (void)flags;
    if (--b->refs == 0 && b->orphan)
        blob_drop(b);
}

/* The loop's entry of file f, opened if needed; NULL when the blob is
 * missing or not the size the release says. */
static struct fota_arduino_blob_fd *blob_get(struct fota_arduino_loop *al, uint64_t gen,
                                             const struct fota_arduino_rel_file *f)
{
    unsigned slot = fota_str_hash(FOTA_STR_HASH_SEED, f->sha256) % FOTA_ARDUINO_BLOB_SLOTS;
    struct fota_arduino_blob_fd *b;
    int fd = -1;
    int64_t size = 0;

    if (gen != al->blob_swept)
        blob_sweep(al, gen);
    b = al->blobs[slot];
    if (b && b->gen == gen && strcmp(b->sha256, f->sha256) == 0)
        return b;
    if (fota_blob_open(al->ctx->srv->blobs, f->sha256, &fd, &size) < 0 || size != f->size) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    if (b && b->refs > 0)
        b->orphan = 1; /* its bodies free it; the slot takes the new one */
    else if (b)
        blob_drop(b);
    b = fota_xcalloc(1, sizeof *b);
    b->gen = gen;
    b->fd = fd;
    b->size = size;
    fota_str_copy(b->sha256, sizeof b->sha256, f->sha256);
    al->blobs[slot] = b;
    return b;
}

/* Adds the whole blob to out as a sendfile segment that holds a reference
 * to its entry. 0, or -1 (nothing added). */
static int blob_add(struct evbuffer *out, struct fota_arduino_blob_fd *b)
{
    struct evbuffer_file_segment *seg =
        evbuffer_file_segment_new(b->fd, 0, b->size, EVBUF_FS_DISABLE_LOCKING);
    int rc;

    if (!seg)
        return -1;
    b->refs++;
    evbuffer_file_segment_add_cleanup_cb(seg, blob_release, b);
    rc = evbuffer_add_file_segment(out, seg, 0, b->size);
    evbuffer_file_segment_free(seg); /* the buffer's reference keeps it */
    return rc;
}

/* 304 in one segment with the FIN: the header waits behind TCP_CORK, is
 * written in this loop pass, and evhttp's shutdown after it sends both at
 * once (the device, and the loopback of a benchmark, handle one packet
 * less per check-in). */
static void send_304(struct fota_req *r)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(r->ev);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    int one = 1;

    if (bev && bufferevent_getfd(bev) >= 0 && !bufferevent_openssl_get_ssl(bev) &&
        !bufferevent_get_underlying(bev))
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_CORK, &one, sizeof one);
    else
        bev = NULL;
    fota_reply_raw(r, 304, NULL, NULL);
    if (bev)
        fota_http_send_now(bev);
}

/* 200 with the stored file: Content-Length of the whole file, the body
 * (sendfile from the loop's open descriptor: the file segment goes straight
 * into the connection's output, whose socket it drains to; an evbuffer of
 * its own would map the file and copy it with writev), or only its first
 * a->send bytes when the device refuses it. */
static void send_image(struct fota_arduino_loop *al, struct fota_req *r,
                       struct fota_arduino_visit *v, const struct fota_arduino_answer *a)
{
    const struct fota_arduino_rel_file *f = &v->rel.f[a->file];
    struct evkeyvalq *oh = evhttp_request_get_output_headers(r->ev);
    struct evhttp_connection *evcon = evhttp_request_get_connection(r->ev);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    struct fota_arduino_blob_fd *b = blob_get(al, v->gen, f);
    struct evbuffer *head = NULL;
    size_t sent = 0;
    int whole = 0;
    char hv[32];

    if (!b && fota_blob_shared(al->ctx->srv->blobs)) {
        /* received by another instance, not copied here yet (blob_share.h) */
        evhttp_add_header(oh, "Retry-After", "10");
        fota_reply_error(r, 503, "file %s of release %s is not available here yet",
                         fota_arduino_kind_name((enum fota_arduino_kind)a->file), v->rel.version);
        return;
    }
    if (!b) {
        fota_reply_error(r, 500, "file %s of release %s is missing or damaged in the blob store",
                         fota_arduino_kind_name((enum fota_arduino_kind)a->file), v->rel.version);
        return;
    }
    evhttp_add_header(oh, "Content-Type", "application/octet-stream");
    snprintf(hv, sizeof hv, "%" PRId64, b->size);
    evhttp_add_header(oh, "Content-Length", hv);
    if (md5_hex_ok(f->facts.md5))
        evhttp_add_header(oh, "x-MD5", f->facts.md5);
    if (!r->head && a->send > 0 && a->send < b->size) {
        uint8_t buf[FOTA_ARDUINO_HEAD_LEN];
        ssize_t got = pread(b->fd, buf, (size_t)a->send, 0);
        head = evbuffer_new();
        if (got > 0)
            evbuffer_add(head, buf, (size_t)got);
        sent = evbuffer_get_length(head);
    } else if (!r->head && a->send > 0 && bev) {
        struct fota_arduino_pending p = {0};
        int one = 1;
        whole = 1;
        sent = (size_t)b->size;
        p.product_id = v->product.id;
        p.device_id = v->device.id;
        p.file_id = f->file_id;
        p.rom_id = v->rel.rom_id;
        p.bytes = b->size;
        p.cmd_id = v->cmd_id;
        fota_str_copy(p.version, sizeof p.version, v->rel.version);
        fota_str_copy(p.md5_before, sizeof p.md5_before, v->h.sketch_md5);
        pending_add(al, r->ev, &p);
        evhttp_request_set_on_complete_cb(r->ev, complete_cb, al);
        /* header and body in full segments; the close after the body flushes the cork */
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_CORK, &one, sizeof one);
    }
    r->replied = 1;
    FOTA_INFO("arduino download req=%" PRIu64 " method=%s dev=%lld product=%lld version=%s "
              "file=%s status=200 size=%" PRId64 " sent=%zu verdict=%d peer=%s loop=%d",
              r->id, r->head ? "HEAD" : "GET", (long long)v->device.id, (long long)v->product.id,
              v->rel.version, fota_arduino_kind_name((enum fota_arduino_kind)a->file), b->size,
              sent, a->verdict, r->peer ? r->peer : "-", fota_loop_index(r->loop));
    evhttp_send_reply_start(r->ev, 200, "OK");
    if (head) {
        evhttp_send_reply_chunk(r->ev, head);
        evbuffer_free(head);
    } else if (whole) {
        /* libevent writes 16 KiB per loop pass by default: let sendfile move
         * the image in as few calls as the socket buffer allows */
        bufferevent_set_max_single_write(bev, 1 << 20);
        if (blob_add(bufferevent_get_output(bev), b) != 0) {
            /* the connection closes short (the device sees error 6): no download */
            pending_drop(al, r->ev);
            evhttp_request_set_on_complete_cb(r->ev, NULL, NULL);
            whole = 0;
        }
    }
    evhttp_send_reply_end(r->ev);
    if (whole)
        fota_http_send_now(bev);
}

/* firmware.md5 (32 lower-case hex, ESPHome's md5_url) and manifest.json:
 * both describe what firmware.bin serves now. */
static void send_meta(struct fota_req *r, struct fota_arduino_visit *v, int kind)
{
    struct evbuffer *b;
    int pick;

    if (!v->have_rel) {
        fota_reply_error(r, 404, "the product has no release");
        return;
    }
    pick = fota_arduino_pick(&v->rel, FOTA_ARDUINO_K_BIN, v->ap.gzip, NULL);
    if (pick < 0) {
        fota_reply_error(r, 404, "release %s has no firmware.bin", v->rel.version);
        return;
    }
    b = evbuffer_new();
    if (kind == FOTA_ARDUINO_K_MD5) {
        evbuffer_add(b, v->rel.f[pick].facts.md5, strlen(v->rel.f[pick].facts.md5));
        fota_reply_raw(r, 200, "text/plain", b);
    } else {
        json_t *m = fota_arduino_manifest(v->product.name, v->rel.version,
                                          v->rel.f[pick].facts.md5, v->changelog);
        char *t = m ? json_dumps(m, JSON_SORT_KEYS) : NULL;
        json_decref(m);
        if (!t) {
            evbuffer_free(b);
            fota_reply_error(r, 500, "cannot build the manifest");
            return;
        }
        evbuffer_add(b, t, strlen(t));
        free(t);
        fota_reply_raw(r, 200, "application/json", b);
    }
    evbuffer_free(b);
}

/* The loop's cache entry for key (NULL for a key of another length), and
 * 1 when it holds the key's product for this visit (v->product and v->ap
 * set), else 0. */
static int product_cached(struct fota_arduino_visit *v, const char *key,
                          struct fota_arduino_key_entry **slot)
{
    struct fota_arduino_key_entry *e;

    *slot = NULL;
    if (strlen(key) != FOTA_KEY_LEN)
        return 0;
    e = *slot = &v->al->keys[fota_str_hash(FOTA_STR_HASH_SEED, key) % FOTA_ARDUINO_KEY_SLOTS];
    if (!v->gen || e->gen != v->gen || strcmp(e->key, key) != 0)
        return 0;
    v->product = e->product;
    v->ap = e->ap;
    return 1;
}

/* v, cleared for a new check-in on al's loop. */
static struct fota_arduino_visit *visit_begin(struct fota_arduino_visit *v,
                                              struct fota_arduino_ctx *ctx,
                                              struct fota_arduino_loop *al, const char *name)
{
    memset(v, 0, FOTA_ARDUINO_VISIT_CLEAR);
    v->rel.version[0] = '\0';
    v->changelog[0] = '\0';
    v->ctx = ctx;
    v->al = al;
    v->gen = fota_store_generation(ctx->srv->store);
    v->now = fota_clock_wall_s();
    v->name = name;
    return v;
}

int fota_arduino_quick(void *ud, int loop, char caps[][FOTA_ROUTE_CAP_LEN], int ncaps,
                       const char *lines, size_t len, int64_t *dev_id)
{
    struct fota_arduino_ctx *ctx = ud;
    struct fota_arduino_key_entry *slot;
    struct fota_arduino_visit *v;
    int kind = fota_arduino_kind_of(caps[ncaps - 1]);

    if (loop < 0 || loop >= ctx->nloops || kind < 0 || kind == FOTA_ARDUINO_K_MD5 ||
        kind == FOTA_ARDUINO_K_MANIFEST)
        return 0;
    v = visit_begin(ctx->loops[loop]->visit, ctx, ctx->loops[loop], ncaps == 3 ? caps[1] : NULL);
    if (!product_cached(v, caps[0], &slot))
        return 0;
    fota_arduino_hdrs_init(&v->h);
    if (fota_arduino_hdrs_parse_block(&v->h, lines, len) != (int)len ||
        !fota_arduino_quick_current(v, kind))
        return 0;
    *dev_id = v->device.id;
    return 304;
}

/* The reply to a visit worked out (on r's loop): the meta file, the
 * image, 304, or the answer's error. */
static void visit_reply(struct fota_arduino_loop *al, struct fota_req *r,
                        struct fota_arduino_visit *v, int kind)
{
    r->dev_id = v->device.id;
    if (kind == FOTA_ARDUINO_K_MD5 || kind == FOTA_ARDUINO_K_MANIFEST) {
        send_meta(r, v, kind);
        return;
    }
    switch (v->ans.status) {
    case 200:
        send_image(al, r, v, &v->ans);
        break;
    case 304:
        r->quiet = 1; /* a fleet's polling: logged at DEBUG */
        send_304(r);
        break;
    default:
        fota_reply_error(r, v->ans.status, "%s", v->ans.why);
        break;
    }
}

/* A check-in the loop's caches could not answer: the product (unless
 * cached), the device, its judgement and report, its target and any
 * refusal worked out by a store job (arduino_track.c's synchronous code),
 * the caches filled and the reply made on the request's loop. */
struct visit_job {
    struct fota_req *r;
    struct fota_arduino_loop *al;
    struct fota_arduino_visit *v;
    struct fota_arduino_offloop off;
    int kind, head;
    int have_product;             /* the key's product came from the loop's cache */
    int resolved;                 /* the job looked it up: the loop's cache takes it */
    int identified;               /* the device is known (r->dev_id) */
    int done;                     /* the visit ran through: v answers */
    char key[FOTA_KEY_BUF];
    /* A visit that ends early: fota_reply_error(status, msg), or with
     * status 0 fota_reply_status(rc, msg); retry: Retry-After (s) */
    int status, rc, retry;
    char msg[256];
};

static void job_fail(struct visit_job *j, int status, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void job_fail(struct visit_job *j, int status, int rc, const char *fmt, ...)
{
    va_list ap;
    j->status = status;
    j->rc = rc;
    va_start(ap, fmt);
    vsnprintf(j->msg, sizeof j->msg, fmt, ap);
    va_end(ap);
}

/* The product of the URL's key: 403 for a key that is not a product key,
 * 404 for a product that is not arduino. 0 or -1 (j says the reply). */
static int resolve_product(struct visit_job *j)
{
    struct fota_arduino_visit *v = j->v;
    struct fota_server *srv = v->ctx->srv;
    struct fota_key k;
    int rc;

    if (fota_server_key_lookup(srv, j->key, strlen(j->key), &k) != 0 ||
        k.kind != FOTA_KEY_PRODUCT) {
        job_fail(j, 403, 0, "not a product key");
        return -1;
    }
    rc = srv->store->ops->product_head(srv->store, k.product_id, &v->product);
    if (rc == 0)
        rc = srv->store->ops->arduino_product_get(srv->store, k.product_id, &v->ap);
    if (rc == FOTA_ENOENT) {
        job_fail(j, 404, 0, "product %lld is not an arduino product", (long long)k.product_id);
        return -1;
    }
    if (rc) {
        job_fail(j, 0, rc, "product %lld", (long long)k.product_id);
        return -1;
    }
    j->resolved = 1;
    return 0;
}

/* A store job (on the loop without an executor); touches no loop state. */
static void visit_job_run(struct fota_store *st, void *arg)
{
    struct visit_job *j = arg;
    struct fota_arduino_visit *v = j->v;
    struct fota_server *srv = v->ctx->srv;
    int rc;

    (void)st;
    if (!j->have_product && resolve_product(j))
        return;
    rc = fota_arduino_identify(v);
    if (rc == FOTA_EINVAL) {
        job_fail(j, 400, 0, "a device name is 1-63 printable ASCII characters");
        return;
    }
    if (rc) {
        job_fail(j, 0, rc, "device");
        return;
    }
    j->identified = 1;
    rc = fota_arduino_target(v);
    if (rc && rc != FOTA_ENOENT) {
        job_fail(j, 0, rc, "release");
        return;
    }
    j->done = 1;
    if (j->kind == FOTA_ARDUINO_K_MD5 || j->kind == FOTA_ARDUINO_K_MANIFEST)
        return;
    fota_arduino_visit_decide(v, j->kind);
    if (v->ans.status != 200)
        return;
    /* shared blobs: a file another instance received is copied here first */
    if (fota_blob_shared(srv->blobs)) {
        const struct fota_arduino_rel_file *f = &v->rel.f[v->ans.file];
        rc = fota_blob_fill(srv->blobs, f->sha256);
        if (rc != 0) {
            j->retry = 10;
            FOTA_WARN("arduino file not here yet sha256=%s error=%s", f->sha256,
                      fota_errname(rc));
            job_fail(j, 503, 0, "file %s of release %s is not available here yet",
                     fota_arduino_kind_name((enum fota_arduino_kind)v->ans.file),
                     v->rel.version);
            return;
        }
    }
    if (v->ans.verdict != FOTA_ARDUINO_ACCEPT && !j->head)
        fota_arduino_refused(v, v->ans.file, v->rel.f[v->ans.file].size, v->ans.verdict);
}

/* On the request's loop: the caches take what the job found, then the reply. */
static void visit_job_finish(struct visit_job *j)
{
    struct fota_req *r = j->r;
    struct fota_arduino_loop *al = j->al;
    struct fota_arduino_visit *v = j->v;
    char ra[16];

    v->al = al;
    fota_arduino_offloop_end(v);
    if (j->resolved && strlen(j->key) == FOTA_KEY_LEN) {
        struct fota_arduino_key_entry *e =
            &al->keys[fota_str_hash(FOTA_STR_HASH_SEED, j->key) % FOTA_ARDUINO_KEY_SLOTS];
        fota_str_copy(e->key, sizeof e->key, j->key);
        e->product = v->product;
        e->ap = v->ap;
        e->gen = v->gen; /* read before the lookups: a write meanwhile invalidates it */
    }
    if (j->identified)
        r->dev_id = v->device.id;
    if (j->done && v->device.id)
        fota_arduino_cache_put(v, v->devkey);
    if (j->retry) { /* as send_image's */
        snprintf(ra, sizeof ra, "%d", j->retry);
        evhttp_add_header(evhttp_request_get_output_headers(r->ev), "Retry-After", ra);
    }
    if (j->status)
        fota_reply_error(r, j->status, "%s", j->msg);
    else if (j->rc)
        fota_reply_status(r, j->rc, "%s", j->msg);
    else if (j->done)
        visit_reply(al, r, v, j->kind);
    if (!r->replied)
        fota_reply_error(r, 500, "internal error: no reply");
}

static void visit_job_free(struct visit_job *j)
{
    fota_arduino_offloop_end(j->v); /* when the loop stopped first */
    free(j->v);
    free(j);
}

static void visit_job_done(void *arg, int cancelled)
{
    struct visit_job *j = arg;
    if (!cancelled) /* else the loop stopped: no reply, r's connection goes with it */
        visit_job_finish(j);
    fota_req_release(j->r);
    visit_job_free(j);
}

/* Hands the visit v0 began (its headers read, the product if cached) to a
 * store job; the reply follows on r's loop. */
static void visit_submit(struct fota_req *r, struct fota_arduino_loop *al,
                         const struct fota_arduino_visit *v0, int have_product, int kind)
{
    struct fota_arduino_ctx *ctx = al->ctx;
    struct visit_job *j = fota_xcalloc(1, sizeof(*j));
    struct fota_arduino_visit *v = fota_xmalloc(sizeof(*v));

    visit_begin(v, ctx, al, v0->name);
    v->gen = v0->gen;
    v->now = v0->now;
    v->h = v0->h;
    if (have_product) {
        v->product = v0->product;
        v->ap = v0->ap;
    }
    j->r = r;
    j->al = al;
    j->v = v;
    j->kind = kind;
    j->head = r->head;
    j->have_product = have_product;
    fota_str_copy(j->key, sizeof j->key, r->caps[0]);
    fota_arduino_offloop_begin(v, &j->off, have_product);
    if (!ctx->srv->exec) {
        visit_job_run(ctx->srv->store, j);
        visit_job_finish(j);
        visit_job_free(j);
        return;
    }
    fota_req_defer(r);
    if (fota_store_submit(ctx->srv->exec, NULL, r->loop, visit_job_run, visit_job_done, j) != 0) {
        visit_job_free(j);
        r->deferred = 0;
        fota_reply_error(r, 503, "store busy: too many requests wait for the store");
    }
}

void fota_arduino_serve(struct fota_req *r)
{
    struct fota_arduino_ctx *ctx = r->ud;
    struct fota_arduino_loop *al = ctx->loops[fota_loop_index(r->loop)];
    struct evkeyvalq *oh = evhttp_request_get_output_headers(r->ev);
    struct fota_arduino_key_entry *slot;
    struct fota_arduino_visit *v;
    const char *file = r->caps[r->ncaps - 1];
    int kind = fota_arduino_kind_of(file), have_product;

    /* Every answer closes the connection (ESPhttpUpdate asks for it; ESPHome
     * reads exactly Content-Length bytes and reconnects). evhttp would add
     * keep-alive for a keep-alive request unless its header is gone. */
    evhttp_remove_header(evhttp_request_get_input_headers(r->ev), "Connection");
    evhttp_remove_header(oh, "Connection");
    evhttp_add_header(oh, "Connection", "close");
    if (kind < 0) {
        fota_reply_error(r, 404, "no such file: firmware.bin, firmware.bin.gz, "
                                 "firmware-minimal.bin, firmware-minimal.bin.gz, firmware.md5, "
                                 "manifest.json");
        return;
    }
    /* the loop's own visit, for an answer from its caches */
    v = visit_begin(al->visit, ctx, al, r->ncaps == 3 ? r->caps[1] : NULL);
    have_product = product_cached(v, r->caps[0], &slot);
    fota_arduino_hdrs_init(&v->h);
    for (struct evkeyval *kv = evhttp_request_get_input_headers(r->ev)->tqh_first; kv;
         kv = kv->next.tqe_next)
        fota_arduino_hdrs_feed(&v->h, kv->key, strlen(kv->key), kv->value, strlen(kv->value));
    /* A 200 whose file is not here yet (shared blobs) is the job's: it copies it. */
    if (have_product && fota_arduino_visit_cached(v, kind, r->head) &&
        !(kind != FOTA_ARDUINO_K_MD5 && kind != FOTA_ARDUINO_K_MANIFEST &&
          v->ans.status == 200 && fota_blob_shared(ctx->srv->blobs) &&
          !blob_get(al, v->gen, &v->rel.f[v->ans.file]))) {
        visit_reply(al, r, v, kind);
        return;
    }
    visit_submit(r, al, v, have_product, kind);
}
