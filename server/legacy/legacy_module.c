/* legacy_module.c - fotad's legacy module: the port-5555 listener wired to the daemon.
 * Images come from the current release of the product named by `legacy_product` (user1.bin
 * for section 1, user2.bin for section 2, opened from the blob store for sendfile); every
 * finished transfer is stored with the store's transfer_add (GET /v1/legacy/transfers/,
 * legacy_api.c, also when the port is off). Its settings are its own rows (legacy_*);
 * they follow SIGHUP reloads; drain closes the listening socket, in-flight transfers go on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "legacy.h"
#include "legacy_api.h"
#include "legacy_metrics.h"
#include "fota_str.h"
#include "log.h"
#include "server.h"
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

struct legacy_mod {
    struct fota_server *srv;
    const struct legacy_mod_conf *conf;
    struct fota_legacy *lg;
    struct fota_legacy_metrics metrics;
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

/* The product legacy_product names (name, else numeric id); "" = the only product. */
static int product_resolve(struct legacy_mod *m, struct fota_product *p)
{
    struct fota_store *st = m->srv->store;
    const char *want = m->conf->product;
    struct fota_product *all = NULL;
    size_t n = 0;
    int rc;

    if (want[0]) {
        rc = st->ops->product_find(st, want, p);
        if (rc == FOTA_ENOENT && strspn(want, "0123456789") == strlen(want))
            rc = st->ops->product_get(st, strtoll(want, NULL, 10), p);
        char wq[2 * FOTA_NAME_MAX + 4];
        if (rc != 0)
            FOTA_WARN("mod=legacy no such product legacy_product=%s error=%s",
                      fota_log_quote(want, wq, sizeof(wq)), fota_errname(rc));
        return rc;
    }
    rc = st->ops->product_list(st, &all, &n);
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

static int mod_open(void *ud, int section, int *fd, uint64_t *size, char *label, size_t label_len)
{
    struct legacy_mod *m = ud;
    struct fota_server *srv = m->srv;
    struct fota_product prod;
    struct fota_rom *rom;
    const struct fota_rom_file *f = NULL;
    char want[16], nq[2 * FOTA_NAME_MAX + 4];
    int64_t sz = 0;
    int rc;

    rc = product_resolve(m, &prod);
    if (rc != 0)
        return rc == FOTA_ENOENT ? FOTA_ENOENT : rc;
    rom = fota_xcalloc(1, sizeof(*rom));
    rc = srv->store->ops->rom_current(srv->store, prod.id, rom);
    if (rc != 0) {
        if (rc == FOTA_ENOENT)
            FOTA_WARN("mod=legacy product has no current release product=%s",
                      fota_log_quote(prod.name, nq, sizeof(nq)));
        goto out;
    }
    snprintf(want, sizeof(want), "user%d.bin", section);
    for (size_t i = 0; i < rom->nfiles && !f; i++)
        if (strcmp(rom->files[i].name, want) == 0)
            f = &rom->files[i];
    for (size_t i = 0; i < rom->nfiles && !f; i++)
        if (rom->files[i].slot == section)
            f = &rom->files[i];
    if (!f) {
        FOTA_WARN("mod=legacy current release has no %s product=%s version=%s", want,
                  fota_log_quote(prod.name, nq, sizeof(nq)), rom->version);
        rc = FOTA_ENOENT;
        goto out;
    }
    rc = fota_blob_open(srv->blobs, f->sha256, fd, &sz);
    if (rc != 0) {
        FOTA_ERROR("mod=legacy cannot open blob sha256=%s error=%s", f->sha256,
                   fota_errname(rc));
        goto out;
    }
    *size = (uint64_t)sz;
    snprintf(label, label_len, "%s %s %s", prod.name, rom->version, f->name);
out:
    free(rom);
    return rc;
}

static void mod_record(void *ud, const struct fota_legacy_record *r)
{
    struct legacy_mod *m = ud;
    struct fota_store *st = m->srv->store;
    struct fota_transfer t;
    int rc;

    fota_legacy_metrics_record(&m->metrics, r);
    if (r->quiet)
        return;   /* a flood of empty connections: counted, not stored */
    memset(&t, 0, sizeof(t));
    fota_str_copy(t.peer, sizeof(t.peer), r->peer);
    t.section = r->section;
    t.bytes = (int64_t)r->bytes_sent;
    fota_str_copy(t.result, sizeof(t.result), r->result);
    t.duration_ms = (int64_t)r->duration_ms;
    fota_str_copy(t.mode, sizeof(t.mode), r->mode);
    rc = st->ops->transfer_add(st, &t);
    if (rc != 0 && rc != FOTA_ENOSPC)   /* a full disk: the store says so once a second */
        FOTA_WARN("mod=legacy cannot store transfer conn=%llu error=%s",
                  (unsigned long long)r->conn_id, fota_errname(rc));
}

static void mod_stop(struct fota_server *srv, void *state)
{
    struct legacy_mod *m = state;

    if (!m)
        return;
    fota_legacy_free(m->lg);
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
