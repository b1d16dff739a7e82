/* server.c - start-up of the server context (loops, data dir, secret, store,
 * blobs, admin key, TLS), listening sockets, key resolution, and the
 * modules' settings and states. The message bus: server_bus.c. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "clock.h"
#include "cluster.h"
#include "devcache.h"
#include "keycache.h"
#include "log.h"
#include "loop.h"
#include "recovery.h"
#include "relcache.h"
#include "store_exec.h"
#include "tls_policy.h"

/* ------------------------------------------------------------- listening */

int fota_server_bind(struct fota_server *srv, const char *proto, int port, int *bound_port)
{
    return fota_server_bind_opt(srv, proto, port, bound_port, 0, 0);
}

static int bind_at(const char *proto, const char *addr, int port, int *bound_port, int reuse,
                   int quiet);

int fota_server_bind_opt(struct fota_server *srv, const char *proto, int port, int *bound_port,
                         int reuse, int quiet)
{
    return bind_at(proto, srv->conf.bind, port, bound_port, reuse, quiet);
}

int fota_server_bind_addr(struct fota_server *srv, const char *proto, const char *addr, int port,
                          int *bound_port)
{
    (void)srv;
    return bind_at(proto, addr, port, bound_port, 0, 0);
}

static int bind_at(const char *proto, const char *addr, int port, int *bound_port, int reuse,
                   int quiet)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    char host[64];
    int fd = -1, one = 1, zero = 0;

    if (fota_addr_parse(addr, port, &ss, &sl, host, sizeof(host)) != 0) {
        FOTA_ERROR("cannot listen proto=%s bind=%s error=\"not a numeric IPv4 or IPv6 address\"",
                   proto, addr);
        return FOTA_EINVAL;
    }
    int v6 = ss.ss_family == AF_INET6;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuse && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
        goto fail;
    if (v6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    /* The longest backlog the kernel allows (net.core.somaxconn caps SOMAXCONN;
     * 4,096 on Debian 12): a fleet reconnecting at once waits there while a
     * listener is paused, instead of having its SYNs dropped. */
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, SOMAXCONN) != 0)
        goto fail;
    sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        goto fail;
    int p = v6 ? ntohs(s6->sin6_port) : ntohs(s4->sin_port);
    if (bound_port)
        *bound_port = p;
    FOTA_LOG(quiet ? FOTA_LOG_DEBUG : FOTA_LOG_INFO, "listening proto=%s addr=%s%s%s:%d", proto,
             v6 ? "[" : "", host, v6 ? "]" : "", p);
    return fd;
fail: {
        int e = errno;
        FOTA_ERROR("cannot listen proto=%s addr=%s%s%s:%d error=\"%s\"%s", proto, v6 ? "[" : "",
                   host, v6 ? "]" : "", port, strerror(e),
                   e == EADDRINUSE ? " hint=\"another process uses this port; pick another or off\""
                   : e == EACCES ? " hint=\"ports below 1024 need root or CAP_NET_BIND_SERVICE\"" : "");
        if (fd >= 0)
            close(fd);
        return FOTA_EIO;
    }
}

/* ------------------------------------------------------------------ keys */

/* key's SHA-256 as the store keeps it (lower-case hex of the lower-cased
 * key), or FOTA_EAUTH for a malformed key. */
static int key_hash_of(const char *key, size_t len, char hash[FOTA_HASH_HEX])
{
    char lower[FOTA_KEY_BUF];

    if (!fota_key_valid(key, len))
        return FOTA_EAUTH;
    for (size_t i = 0; i < len; i++)
        lower[i] = (char)(key[i] >= 'A' && key[i] <= 'F' ? key[i] + 32 : key[i]);
    lower[len] = '\0';
    fota_key_hash(lower, len, hash);
    return 0;
}

int fota_server_key_lookup(struct fota_server *srv, const char *key, size_t len,
                           struct fota_key *out)
{
    char hash[FOTA_HASH_HEX];

    if (key_hash_of(key, len, hash) != 0)
        return FOTA_EAUTH;
    if (fota_keycache_lookup(srv->keycache, srv->store, hash, out) != 0)
        return FOTA_EAUTH;
    /* The row was found by hash; compare again in constant time anyway. */
    if (!fota_key_equal(out->hash, hash, 64))
        return FOTA_EAUTH;
    return 0;
}

int fota_server_key_cached(struct fota_server *srv, const char *key, size_t len,
                           struct fota_key *out, int admins)
{
    char hash[FOTA_HASH_HEX];

    if (key_hash_of(key, len, hash) != 0)
        return FOTA_EAUTH;
    if (!srv->keycache)
        return FOTA_EAGAIN;
    int rc = fota_keycache_get(srv->keycache, fota_store_generation(srv->store), hash, out);
    if (rc == 0 && fota_key_equal(out->hash, hash, 64))
        return 0;
    if (rc == FOTA_EAGAIN)
        return admins && fota_keycache_admin_seen(srv->keycache, hash, out) ? 0 : FOTA_EAGAIN;
    return FOTA_EAUTH;
}

void fota_server_device_key(const struct fota_server *srv, const char *kind,
                            const struct fota_device *d, char out[FOTA_KEY_BUF])
{
    fota_key_derive(srv->secret, kind, d->id, d->key_generation, out);
}

void fota_server_device_key_rows(void *ud, const struct fota_device *d,
                                 struct fota_key keys[FOTA_DEVICE_KEYS])
{
    static const struct { const char *name; int kind; } kinds[FOTA_DEVICE_KEYS] = {
        { "master", FOTA_KEY_MASTER }, { "owner", FOTA_KEY_OWNER } };
    const struct fota_server *srv = ud;
    for (int i = 0; i < FOTA_DEVICE_KEYS; i++) {
        char key[FOTA_KEY_BUF];
        memset(&keys[i], 0, sizeof(keys[i]));
        fota_server_device_key(srv, kinds[i].name, d, key);
        fota_key_hash(key, FOTA_KEY_LEN, keys[i].hash);
        keys[i].kind = kinds[i].kind;
        keys[i].product_id = d->product_id;
        keys[i].device_id = d->id;
        keys[i].created = fota_clock_wall_s();
    }
}

int fota_server_device_keys_create(struct fota_server *srv, const struct fota_device *d)
{
    struct fota_key k[FOTA_DEVICE_KEYS];
    fota_server_device_key_rows(srv, d, k);
    for (int i = 0; i < FOTA_DEVICE_KEYS; i++) {
        int r = srv->store->ops->key_create(srv->store, &k[i]);
        if (r)
            return r;
    }
    return 0;
}

const void *fota_server_module_conf(const struct fota_server *srv, const struct fota_module *m)
{
    for (size_t i = 0; i < srv->nmodules; i++)
        if (srv->modules[i].mod == m)
            return srv->modules[i].conf;
    return NULL;
}

void *fota_server_module_state(const struct fota_server *srv, const struct fota_module *m)
{
    for (size_t i = 0; i < srv->nmodules; i++)
        if (srv->modules[i].mod == m)
            return srv->modules[i].state;
    return NULL;
}

/* ---------------------------------------------------------------- loops */

int fota_server_add_loops(struct fota_server *srv, int n)
{
    if (n > FOTA_LOOPS_MAX)
        n = FOTA_LOOPS_MAX;
    for (int i = srv->nloops; i < n; i++) {
        srv->loops[i] = fota_loop_new(i);
        if (!srv->loops[i]) {
            FOTA_ERROR("cannot create worker loop=%d", i);
            return FOTA_ENOMEM;
        }
        srv->nloops = i + 1;
    }
    return srv->bus ? fota_server_bus_init(srv) : 0;
}

/* On each worker's own thread, before it dispatches. */
static void worker_init(struct fota_loop *l, void *arg)
{
    struct fota_server *srv = arg;
    for (size_t i = 0; i < srv->nmodules; i++) {
        struct fota_module_slot *m = &srv->modules[i];
        if (m->started && m->mod->loop_start)
            m->mod->loop_start(srv, m->state, l);
    }
}

int fota_server_start_workers(struct fota_server *srv)
{
    /* The listeners are open and the loops about to serve: from here a
     * store op that waits for a round trip (PostgreSQL) on a loop is
     * logged (the loop guard, store.h). Start-up before this may block. */
    fota_store_set_loop_guard(srv->store, fota_loop_current_index);
    for (int i = 1; i < srv->nloops; i++) {
        if (fota_loop_start(srv->loops[i], worker_init, srv) != 0) {
            FOTA_ERROR("cannot start worker thread loop=%d", i);
            return FOTA_ENOMEM;
        }
        srv->workers_running = i;
    }
    if (srv->nloops > 1)
        FOTA_INFO("http workers loops=%d", srv->nloops);
    return 0;
}

void fota_server_stop_workers(struct fota_server *srv)
{
    /* Workers may be waiting for a handler on the main loop: run those
     * (and refuse new ones) before joining them. */
    if (!srv->loops[0])
        return;
    fota_loop_close(srv->loops[0]);
    for (int i = 1; i <= srv->workers_running; i++)
        fota_loop_stop(srv->loops[i]);
    srv->workers_running = 0;
    /* No loop serves any more: the modules' stops may block. */
    if (srv->store)
        fota_store_set_loop_guard(srv->store, NULL);
    /* Store jobs run REST handlers, which call into the modules: they end
     * before the modules stop (a main-loop call of theirs finds the loop
     * closed and returns at once). */
    fota_store_exec_drain(srv->exec);
}

/* -------------------------------------------------------------- start-up */

static int mkdir_p(const char *path, mode_t mode)
{
    char buf[FOTA_CONF_PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, mode) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, mode) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

static int setup_admin_key(struct fota_server *srv)
{
    char path[FOTA_CONF_PATH_MAX + 32], key[FOTA_KEY_BUF];
    struct fota_key k;
    int r, admin_keys;

    /* Several fotad on one PostgreSQL: one secret.key (cluster.h), and the
     * first instance's admin key, copied (docs/scale-out.md). */
    if ((r = fota_cluster_check(srv, &admin_keys)) != 0)
        return r;
    snprintf(path, sizeof(path), "%s/owner.key", srv->conf.data_dir);
    r = fota_key_read_file(path, key);
    if (r == FOTA_ENOENT && admin_keys > 0) {
        FOTA_INFO("no admin key in the data dir path=%s hint=\"the database has one: copy "
                  "DATA/owner.key from the first instance to use it here\"",
                  path);
        return 0;
    }
    if (r == FOTA_ENOENT) {
        r = fota_key_generate(key);
        if (r == 0)
            r = fota_key_write_file(path, key);
        if (r) {
            FOTA_ERROR("cannot write admin key path=%s error=\"%s\"", path, strerror(errno));
            return r;
        }
        FOTA_INFO("admin key written path=%s", path);
    } else if (r) {
        FOTA_ERROR("cannot read admin key path=%s error=\"%s\"", path,
                   r == FOTA_EINVAL ? "not 40 hex characters" : strerror(errno));
        return r;
    }
    memset(&k, 0, sizeof(k));
    fota_key_hash(key, FOTA_KEY_LEN, k.hash);
    if (srv->store->ops->key_lookup(srv->store, k.hash, &k) == 0) {
        if (k.kind != FOTA_KEY_ADMIN) {
            FOTA_ERROR("admin key file holds a device key path=%s", path);
            return FOTA_ECONFIG;
        }
        FOTA_INFO("admin key path=%s", path);
        fota_keycache_admin_note(srv->keycache, &k);
        return 0;
    }
    k.kind = FOTA_KEY_ADMIN;
    k.created = fota_clock_wall_s();
    r = srv->store->ops->key_create(srv->store, &k);
    if (r) {
        FOTA_ERROR("cannot store admin key error=%s", fota_errname(r));
        return r;
    }
    fota_keycache_admin_note(srv->keycache, &k);
    return 0;
}

int fota_server_tls_ctx_new(const struct fota_config *c, SSL_CTX **out)
{
    *out = NULL;
    if (!c->tls_cert[0])
        return 0;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return FOTA_ENOMEM;
    if (fota_tls_policy_apply(ctx) != 0) {   /* versions, ciphers (tls_policy.h) */
        SSL_CTX_free(ctx);
        return FOTA_ECONFIG;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, c->tls_cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, c->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        char e[256];
        ERR_error_string_n(ERR_get_error(), e, sizeof(e));
        FOTA_ERROR("cannot load TLS certificate cert=%s key=%s error=\"%s\"", c->tls_cert,
                   c->tls_key, e);
        SSL_CTX_free(ctx);
        return FOTA_ECONFIG;
    }
    *out = ctx;
    return 0;
}

static int setup_tls(struct fota_server *srv)
{
    int r = fota_server_tls_ctx_new(&srv->conf, &srv->ssl_ctx);
    if (r == 0 && srv->ssl_ctx)
        FOTA_INFO("tls loaded cert=%s", srv->conf.tls_cert);
    return r;
}

/* The data dir (mode 0700), locked with DATA/fotad.lock holding our pid:
 * one daemon per data dir (blobs, keys and the SQLite file assume it). */
static int setup_data_dir(struct fota_server *srv)
{
    const char *dir = srv->conf.data_dir;
    char path[FOTA_CONF_PATH_MAX + 32];
    if (mkdir_p(dir, 0700) != 0) {
        FOTA_ERROR("cannot create data dir path=%s error=\"%s\"", dir, strerror(errno));
        return FOTA_EIO;
    }
    snprintf(path, sizeof(path), "%s/fotad.lock", dir);
    srv->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (srv->lock_fd < 0) {
        FOTA_ERROR("cannot open lock file path=%s error=\"%s\"", path, strerror(errno));
        return FOTA_EIO;
    }
    if (flock(srv->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        char other[32] = "";
        ssize_t n = pread(srv->lock_fd, other, sizeof(other) - 1, 0);
        other[n > 0 ? n : 0] = '\0';
        other[strcspn(other, "\n")] = '\0';
        FOTA_ERROR("data dir in use by another fotad path=%s pid=%s", dir, other[0] ? other : "?");
        close(srv->lock_fd);
        srv->lock_fd = -1;
        return FOTA_EBUSY;
    }
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(srv->lock_fd, 0) != 0 || pwrite(srv->lock_fd, pid, (size_t)n, 0) != n)
        FOTA_WARN("cannot write pid to lock file path=%s", path);
    return 0;
}

/* DATA/secret.key (made at first start), the store (DATA/fota.db, or the
 * PostgreSQL database of store = postgresql:DSN) and DATA/blobs, and
 * the sweep of a crashed upload's orphan blobs. */
static int setup_storage(struct fota_server *srv)
{
    const char *dir = srv->conf.data_dir;
    char path[FOTA_CONF_PATH_MAX + 32], err[256] = "";
    int created;
    snprintf(path, sizeof(path), "%s/secret.key", dir);
    int r = fota_key_secret_load(path, srv->secret, &created);
    if (r) {
        FOTA_ERROR("cannot load server secret path=%s error=%s", path, fota_errname(r));
        return r;
    }
    if (created)
        FOTA_INFO("server secret created path=%s", path);
    if (strncmp(srv->conf.store, FOTA_CONF_STORE_PG, strlen(FOTA_CONF_STORE_PG)) == 0) {
        /* The DSN may hold a password: it is not logged. */
        r = fota_store_pg_open(srv->conf.store + strlen(FOTA_CONF_STORE_PG), fota_log_lib_cb,
                               (void *)"store", &srv->store, err, sizeof(err));
        if (r) {
            FOTA_ERROR("cannot open store backend=postgresql error=\"%s\"", err);
            return r;
        }
        FOTA_INFO("store open backend=%s", srv->store->ops->name);
    } else {
        snprintf(path, sizeof(path), "%s/fota.db", dir);
        r = fota_store_sqlite_open(path, fota_log_lib_cb, (void *)"store", &srv->store, err,
                                   sizeof(err));
        if (r) {
            FOTA_ERROR("cannot open store path=%s error=\"%s\"", path, err);
            return r;
        }
        FOTA_INFO("store open backend=%s path=%s", srv->store->ops->name, path);
    }
    fota_recovery_store_threads(srv->store);   /* test builds only (recovery.h) */
    r = fota_store_exec_new(srv->store, srv->conf.store_threads, &srv->exec);
    if (r) {
        FOTA_ERROR("cannot start store threads threads=%u error=%s", srv->conf.store_threads,
                   fota_errname(r));
        return r;
    }
    if (fota_store_exec_threaded(srv->exec))
        FOTA_INFO("store threads started threads=%u", srv->conf.store_threads);
    snprintf(path, sizeof(path), "%s/blobs", dir);
    r = fota_blob_store_open(path, fota_log_lib_cb, (void *)"blob", &srv->blobs);
    if (r) {
        FOTA_ERROR("cannot open blob store path=%s error=%s", path, fota_errname(r));
        return r;
    }
    fota_recovery_sweep_blobs(srv, NULL);   /* orphans of a crashed upload (recovery.h) */
    return 0;
}

int fota_server_init(struct fota_server *srv, struct event_base *base,
                     const struct fota_config *conf)
{
    int r;
    memset(srv, 0, sizeof(*srv));
    srv->lock_fd = -1;
    srv->conf = *conf;
    srv->base = base;
    srv->started = fota_clock_wall_s();
    srv->loops[0] = fota_loop_adopt(base, 0);
    if (!srv->loops[0])
        return FOTA_ENOMEM;
    srv->nloops = 1;
    srv->keycache = fota_keycache_new(FOTA_KEYCACHE_KEYS);
    if ((r = setup_data_dir(srv)) != 0 || (r = setup_storage(srv)) != 0 ||
        (r = setup_admin_key(srv)) != 0 || (r = setup_tls(srv)) != 0)
        return r;
    srv->devcache = fota_devcache_new(FOTA_DEVCACHE_DEVICES);
    srv->relcache = fota_relcache_new(FOTA_RELCACHE_RELEASES);
    return fota_server_bus_init(srv);
}

void fota_server_cleanup(struct fota_server *srv)
{
    fota_server_stop_workers(srv);
    /* The loops take no more jobs: the store's queued work runs to its end,
     * its continuations cancelled, before the loops and the store go. */
    fota_store_exec_free(srv->exec);
    srv->exec = NULL;
    fota_server_bus_cleanup(srv);
    for (int i = srv->nloops; i-- > 0;) {
        fota_loop_free(srv->loops[i]);
        srv->loops[i] = NULL;
    }
    srv->nloops = 0;
    fota_blob_store_close(srv->blobs);
    srv->blobs = NULL;
    fota_keycache_free(srv->keycache);
    fota_devcache_free(srv->devcache);
    fota_relcache_free(srv->relcache);
    srv->keycache = NULL;
    srv->devcache = NULL;
    srv->relcache = NULL;
    fota_store_close(srv->store);
    srv->store = NULL;
    if (srv->ssl_ctx)
        SSL_CTX_free(srv->ssl_ctx);
    srv->ssl_ctx = NULL;
    memset(srv->secret, 0, sizeof(srv->secret));
    if (srv->lock_fd >= 0) {
        close(srv->lock_fd);   /* releases the flock */
        srv->lock_fd = -1;
    }
}
