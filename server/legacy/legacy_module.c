/* legacy_module.c - fotad's legacy module: the port-5555 listener wired to the daemon.
 * Images come from the current release of the product named by `legacy_product` (user1.bin
 * for section 1, user2.bin for section 2, opened from the blob store for sendfile); every
 * finished transfer is stored with the store's transfer_add (GET /v1/legacy/transfers/,
 * legacy_api.c, also when the port is off). Its settings are its own rows (legacy_*);
 * they follow SIGHUP reloads; drain closes the listening socket, in-flight transfers go on.
 * The loop asks the store nothing: the product and its current release are a cache filled by
 * a store job (valid while the catalog generation and legacy_product stay as they were; a
 * miss makes the listener wait, legacy.h's FOTA_EAGAIN), and the transfer records are store
 * jobs on the lane `legacy`, in their order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "legacy.h"
#include "legacy_api.h"
#include "legacy_metrics.h"
#include "fota_str.h"
#include "blob.h"
#include "log.h"
#include "server.h"
#include "store_exec.h"
#include "xmalloc.h"

/* The module's settings (its rows below). */
struct legacy_mod_conf {
    int port;
    char product[64];
    unsigned chunk, interval_ms, timeout_ms, max_clients, empty_rate;
};

#define ROW(f) FOTA_CONF_FIELD(struct legacy_mod_conf, f)
static const struct fota_conf_opt legacy_rows[] = {
    { "legacy_port", FOTA_CONF_T_PORT, ROW(port), "5555", 0, 65535, 0,
      "Raw-TCP DFU listener of the private DFU server (1 request byte, length, image)." },
    { "legacy_product", FOTA_CONF_T_STR, ROW(product), "", 0, 0, FOTA_CONF_RELOAD,
      "Product (name or id) whose current release the legacy port serves; \"\" = the only product." },
    { "legacy_chunk", FOTA_CONF_T_UINT, ROW(chunk), "1280", 1, 1280, FOTA_CONF_RELOAD,
      "Legacy port: bytes per paced write (a stock client overflows above 1280)." },
    { "legacy_interval_ms", FOTA_CONF_T_UINT, ROW(interval_ms), "20", 0, 60000,
      FOTA_CONF_RELOAD, "Legacy port: pause after each acknowledged write, ms." },
    { "legacy_timeout_ms", FOTA_CONF_T_UINT, ROW(timeout_ms), "30000", 1, 3600000,
      FOTA_CONF_RELOAD, "Legacy port: stall limit, ms; the request byte is awaited 5 s at most (this, if shorter)." },
    { "legacy_max_clients", FOTA_CONF_T_UINT, ROW(max_clients), "64", 1, 100000,
      FOTA_CONF_RELOAD, "Legacy port: concurrent transfers." },
    { "legacy_empty_rate", FOTA_CONF_T_UINT, ROW(empty_rate), "1", 0, 1000, FOTA_CONF_RELOAD,
      "Legacy port: connections from one address that end without a request (connect and "
      "close, timeout, bad byte) logged and stored as transfers each second, after a burst "
      "of 10; the others are counted (metrics, one line a second). 0 = every one." },
    { NULL, 0, 0, 0, NULL, 0, 0, 0, NULL }
};

/* What the port serves, as the store had it at catalog generation gen for legacy_product
 * want: rc 0 with the product and its current release, else FOTA_ENOENT (no such product,
 * no current release: logged) or the store's error. */
struct source {
    uint64_t gen;
    char want[64];
    int rc;
    struct fota_product prod;
    struct fota_rom rom;
};

/* A lookup in flight: the job fills src, the continuation installs it. */
struct lookup {
    struct legacy_mod *m;             /* touched in the continuation only; NULL: stopped */
    struct source *src;
};

struct legacy_mod {
    struct fota_server *srv;
    const struct legacy_mod_conf *conf;
    struct fota_legacy *lg;
    struct fota_legacy_metrics metrics;
    struct fota_store_lane *lane;     /* `legacy`: transfer records in order */
    struct source *src;               /* the last lookup's, NULL before the first */
    int src_fresh;                    /* src came after the open that asked: serve it once */
    struct lookup *lookup;            /* in flight, or NULL */
};

static void conf_from_module(const struct legacy_mod_conf *c, struct fota_legacy_conf *out)
{
    fota_legacy_conf_init(out);
    out->chunk = c->chunk;
    out->interval_ms = c->interval_ms;
    out->timeout_ms = c->timeout_ms;
    out->max_clients = c->max_clients;
    out->empty_rate = c->empty_rate;
}

/* The product legacy_product (want) names (name, else numeric id); "" = the only product.
 * Store job. */
static int product_resolve(struct fota_store *st, const char *want, struct fota_product *p)
{
    struct fota_product *all = NULL;
    size_t n = 0;
    int rc;

    if (want[0]) {
        rc = st->ops->product_find(st, want, p);
        if (rc == FOTA_ENOENT && strspn(want, "0123456789") == strlen(want))
            rc = st->ops->product_head(st, strtoll(want, NULL, 10), p);
        char wq[2 * FOTA_NAME_MAX + 4];
        if (rc != 0)
            FOTA_WARN("mod=legacy no such product legacy_product=%s error=%s",
                      fota_log_quote(want, wq, sizeof(wq)), fota_errname(rc));
        return rc;
    }
    rc = st->ops->product_heads(st, &all, &n);
    if (rc != 0)
        return rc;
    if (n == 1) {
        *p = all[0];
    } else if (n == 0) {
        FOTA_WARN("mod=legacy no product exists yet: nothing to serve");
        rc = FOTA_ENOENT;
    } else {
        FOTA_WARN("mod=legacy legacy_product is not set and there are %zu products: set it to "
                  "the product whose current release the legacy port serves", n);
        rc = FOTA_ENOENT;
    }
    free(all);
    return rc;
}

/* The lookup's store job: the generation first, so a change while it reads makes the next
 * open ask again. */
static void lookup_job(struct fota_store *st, void *arg)
{
    struct source *src = ((struct lookup *)arg)->src;
    char nq[2 * FOTA_NAME_MAX + 4];

    src->gen = fota_store_generation(st);
    src->rc = product_resolve(st, src->want, &src->prod);
    if (src->rc != 0)
        return;
    src->rc = st->ops->rom_current(st, src->prod.id, &src->rom);
    if (src->rc == FOTA_ENOENT)
        FOTA_WARN("mod=legacy product has no current release product=%s",
                  fota_log_quote(src->prod.name, nq, sizeof(nq)));
    /* Files another instance received are copied here before the port
     * serves them (blob_share.h); one that cannot be had fails its open. */
    for (size_t i = 0; src->rc == 0 && i < src->rom.nfiles; i++) {
        struct fota_blob_store *bs = ((struct lookup *)arg)->m->srv->blobs;
        int rc = fota_blob_shared(bs) ? fota_blob_fill(bs, src->rom.files[i].sha256) : 0;
        if (rc)
            FOTA_WARN("mod=legacy release file not copied from the shared store sha256=%s "
                      "error=%s", src->rom.files[i].sha256, fota_errname(rc));
    }
}

/* Main loop: the source is known; the waiting transfers ask again. */
static void lookup_done(void *arg, int cancelled)
{
    struct lookup *l = arg;
    struct legacy_mod *m = l->m;

    if (cancelled || !m) {
        if (m)
            m->lookup = NULL;
        free(l->src);
        free(l);
        return;
    }
    free(m->src);
    m->src = l->src;
    m->src_fresh = 1;
    m->lookup = NULL;
    free(l);
    fota_legacy_source_ready(m->lg);
}

/* m->src when it holds what the port serves now, else NULL (and a lookup asked for). */
static struct source *source_get(struct legacy_mod *m, int *rc)
{
    struct fota_server *srv = m->srv;
    struct source *src = m->src;

    *rc = 0;
    if (src && strcmp(src->want, m->conf->product) == 0 &&
        (m->src_fresh || src->gen == fota_store_generation(srv->store))) {
        m->src_fresh = 0;
        return src;
    }
    if (m->lookup) {
        *rc = FOTA_EAGAIN;
        return NULL;
    }
    struct lookup *l = fota_xcalloc(1, sizeof(*l));
    l->m = m;
    l->src = fota_xcalloc(1, sizeof(*l->src));
    fota_str_copy(l->src->want, sizeof(l->src->want), m->conf->product);
    *rc = fota_store_submit(srv->exec, NULL, srv->loops[0], lookup_job, lookup_done, l);
    if (*rc != 0) {
        free(l->src);
        free(l);
        return NULL;
    }
    m->lookup = l;
    *rc = FOTA_EAGAIN;
    return NULL;
}

static int mod_open(void *ud, int section, int *fd, uint64_t *size, char *label, size_t label_len)
{
    struct legacy_mod *m = ud;
    struct fota_server *srv = m->srv;
    const struct source *src;
    const struct fota_rom *rom;
    const struct fota_rom_file *f = NULL;
    char want[16], nq[2 * FOTA_NAME_MAX + 4];
    int64_t sz = 0;
    int rc;

    if (!(src = source_get(m, &rc)))
        return rc;
    if (src->rc != 0)
        return src->rc;
    rom = &src->rom;
    snprintf(want, sizeof(want), "user%d.bin", section);
    for (size_t i = 0; i < rom->nfiles && !f; i++)
        if (strcmp(rom->files[i].name, want) == 0)
            f = &rom->files[i];
    for (size_t i = 0; i < rom->nfiles && !f; i++)
        if (rom->files[i].slot == section)
            f = &rom->files[i];
    if (!f) {
        FOTA_WARN("mod=legacy current release has no %s product=%s version=%s", want,
                  fota_log_quote(src->prod.name, nq, sizeof(nq)), rom->version);
        return FOTA_ENOENT;
    }
    rc = fota_blob_open(srv->blobs, f->sha256, fd, &sz);
    if (rc != 0) {
        FOTA_ERROR("mod=legacy cannot open blob sha256=%s error=%s", f->sha256,
                   fota_errname(rc));
        return rc;
    }
    *size = (uint64_t)sz;
    snprintf(label, label_len, "%s %s %s", src->prod.name, rom->version, f->name);
    return 0;
}

/* A transfer record on its way to the store. */
struct record {
    struct fota_transfer t;
    uint64_t conn_id;
};

static void record_job(struct fota_store *st, void *arg)
{
    struct record *rec = arg;
    int rc = st->ops->transfer_add(st, &rec->t);

    if (rc != 0 && rc != FOTA_ENOSPC)   /* a full disk: the store says so once a second */
        FOTA_WARN("mod=legacy cannot store transfer conn=%llu error=%s",
                  (unsigned long long)rec->conn_id, fota_errname(rc));
    free(rec);
}

static void mod_record(void *ud, const struct fota_legacy_record *r)
{
    struct legacy_mod *m = ud;
    struct record *rec;
    struct fota_transfer *t;

    fota_legacy_metrics_record(&m->metrics, r);
    if (r->quiet)
        return;   /* a flood of empty connections: counted, not stored */
    rec = fota_xcalloc(1, sizeof(*rec));
    rec->conn_id = r->conn_id;
    t = &rec->t;
    fota_str_copy(t->peer, sizeof(t->peer), r->peer);
    t->section = r->section;
    t->bytes = (int64_t)r->bytes_sent;
    fota_str_copy(t->result, sizeof(t->result), r->result);
    t->duration_ms = (int64_t)r->duration_ms;
    fota_str_copy(t->mode, sizeof(t->mode), r->mode);
    /* refused: the lane is full (the executor says so); the record is dropped */
    if (fota_store_submit(m->srv->exec, m->lane, NULL, record_job, NULL, rec) != 0)
        free(rec);
}

static void mod_stop(struct fota_server *srv, void *state)
{
    struct legacy_mod *m = state;

    if (!m)
        return;
    fota_legacy_free(m->lg);   /* records its open transfers */
    if (m->lookup)             /* its continuation frees it */
        m->lookup->m = NULL;
    free(m->src);
    free(m);
}

static int mod_start(struct fota_server *srv, void **state)
{
    struct fota_legacy_conf conf;
    struct fota_legacy_source src;
    struct legacy_mod *m;
    char why[128];
    int fd, bound = 0, rc;

    const struct legacy_mod_conf *mc = fota_server_module_conf(srv, &fota_legacy_module);
    *state = NULL;
    if (mc->port == FOTA_PORT_OFF) {
        /* no listener, but the transfers recorded before stay listable */
        if (fota_legacy_api_routes(srv, NULL) != 0)
            FOTA_WARN("mod=legacy cannot add the /v1/legacy/transfers/ route");
        return 0;
    }
    conf_from_module(mc, &conf);
    if (fota_legacy_conf_check(&conf, why, sizeof(why)) != 0) {
        FOTA_ERROR("mod=legacy bad settings error=\"%s\"", why);
        return FOTA_ECONFIG;
    }
    m = fota_xcalloc(1, sizeof(*m));
    m->srv = srv;
    m->conf = mc;
    m->lane = fota_store_lane_new(srv->exec, "legacy");
    src.open = mod_open;
    src.ud = m;
    m->lg = fota_legacy_new(srv->base, &conf, &src, fota_log_lib_cb, (void *)"legacy");
    if (!m->lg) {
        FOTA_ERROR("mod=legacy cannot create the listener");
        free(m);
        return FOTA_ENOMEM;
    }
    fota_legacy_set_record_cb(m->lg, mod_record, m);
    m->metrics.lg = m->lg;
    rc = fota_legacy_metrics_register(srv, &m->metrics);
    if (rc != 0) {
        FOTA_ERROR("mod=legacy cannot register its metrics error=%s", fota_errname(rc));
        mod_stop(srv, m);
        return rc;
    }
    fd = fota_server_bind(srv, "legacy", mc->port, &bound);
    if (fd < 0) {
        mod_stop(srv, m);
        return fd;
    }
    rc = fota_legacy_listen_fd(m->lg, fd);
    if (rc != 0) {
        FOTA_ERROR("mod=legacy cannot listen error=%s", fota_errname(rc));
        mod_stop(srv, m);
        return rc;
    }
    /* The route outlives nothing it points to: modules stop after the last request. */
    if (fota_legacy_api_routes(srv, m->lg) != 0)
        FOTA_WARN("mod=legacy cannot add the /v1/legacy/transfers/ route");
    *state = m;
    return 0;
}

static void mod_reload(struct fota_server *srv, void *state)
{
    struct legacy_mod *m = state;
    struct fota_legacy_conf conf;
    char why[128];

    if (!m)
        return;
    (void)srv;
    conf_from_module(m->conf, &conf);
    if (fota_legacy_conf_check(&conf, why, sizeof(why)) != 0 ||
        fota_legacy_set_conf(m->lg, &conf) != 0)
        FOTA_WARN("mod=legacy reload ignored error=\"%s\"", why);
}

static void mod_drain(struct fota_server *srv, void *state)
{
    struct legacy_mod *m = state;

    if (m)
        fota_legacy_stop_listening(m->lg);
}

const struct fota_module fota_legacy_module = {
    .name = "legacy",
    .conf_opts = legacy_rows,
    .conf_size = sizeof(struct legacy_mod_conf),
    .start = mod_start,
    .reload = mod_reload,
    .drain = mod_drain,
    .stop = mod_stop,
};
