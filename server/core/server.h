/* server.h - the fotad server context and the module interface.
 *
 * One struct fota_server per process, created by main.c. It owns the event
 * loops, the store, the blob directory, the server secret, the TLS context,
 * the message bus and the module hub. Everything else is a module (HTTP, the
 * REST API, the ROM download, the device channel, the legacy listener, ...)
 * listed in main.c's table as a struct fota_module. Modules get the server
 * in start() and use:
 *   - srv->conf            core's settings (struct fota_config, config.h);
 *                          their own through fota_server_module_conf()
 *   - srv->base            the main event base (run by main.c)
 *   - srv->store           the metadata store (store.h)
 *   - srv->blobs           the firmware blob store (blob.h, content-addressed)
 *   - srv->exec            the store executor (store_exec.h): store work off the loops
 *   - fota_server_bind()   listening sockets with the standard `listening` log line
 *   - fota_server_key_lookup(), fota_server_device_key()   keys and roles
 *   - fota_http_route()    (http.h, the http module) add an HTTP route
 *   - fota_hub_subscribe(), fota_hub_publish()  (hub.h) calls between modules
 *   - fota_metric_register()  (metric.h) the module's counters for GET /metrics
 *   - fota_server_publish_message()  store a message and fan it out live
 * Threads (docs/architecture.md): srv->base is the main loop (device channel,
 * legacy listener, timers, module state). The http module adds worker loops
 * (srv->loops[1..], its setting `workers`); routes run on the main loop
 * unless registered FOTA_ROUTE_ANY_LOOP (http.h). Everything runs on the
 * main loop's thread unless noted (the publish function is callable from any
 * thread; subscriptions belong to the caller's loop). core/ calls no module
 * code except through struct fota_module and the hub. */
#ifndef FOTA_SERVER_H
#define FOTA_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "hub.h"
#include "keys.h"
#include "metric.h"
#include "blob.h"
#include "store.h"

struct event_base;
struct event;
struct fota_http;
struct fota_server;
typedef struct ssl_ctx_st SSL_CTX;

struct fota_loop;             /* loop.h */
struct fota_store_exec;       /* store_exec.h */
struct fota_keycache;         /* keycache.h */
struct fota_devcache;         /* devcache.h */
struct fota_relcache;         /* relcache.h */

/* A module of the daemon, listed in main.c's table in start order; each
 * owns its routes, its settings and its state. main.c calls start() after
 * the server context exists and every earlier module started (return 0, or
 * a negative FOTA_E* to abort start-up with the module's own ERROR line
 * logged); loop_start() on each worker loop's own thread before that loop
 * serves; reload() on SIGHUP after the settings were updated; drain() when
 * SIGTERM/SIGINT arrives (stop accepting; in-flight work may continue);
 * busy() while draining, until it returns 0 for every module or
 * shutdown_grace is over; stop() in reverse order once the loops have
 * ended, to free everything. Any callback may be NULL. `state` is the
 * module's own pointer, set by start().
 *
 * Settings: conf_opts is the module's table of rows (config.h), whose
 * offsets point into a struct of conf_size bytes that the daemon allocates
 * and fills (defaults, file, flags) before start(); conf_check, if set,
 * applies its cross-row rules. The module reads it with
 * fota_server_module_conf(); reloadable rows change in place on SIGHUP. */
struct fota_module {
    const char *name;
    const struct fota_conf_opt *conf_opts;
    size_t conf_size;
    int  (*conf_check)(const void *conf, char *err, size_t errlen);
    int  (*start)(struct fota_server *srv, void **state);
    void (*loop_start)(struct fota_server *srv, void *state, struct fota_loop *loop);
    void (*reload)(struct fota_server *srv, void *state);
    void (*drain)(struct fota_server *srv, void *state);
    int  (*busy)(struct fota_server *srv, void *state);
    void (*stop)(struct fota_server *srv, void *state);
};

/* One module of the running daemon (main.c fills the slots). */
struct fota_module_slot {
    const struct fota_module *mod;
    void *conf;                       /* its settings struct, NULL without rows */
    void *state;                      /* what its start() set */
    int started;
};

/* The modules of main.c's table, in start order. */
extern const struct fota_module fota_http_module;
extern const struct fota_module fota_api_module;
extern const struct fota_module fota_rom_module;
extern const struct fota_module fota_device_module;
extern const struct fota_module fota_rollout_module;
extern const struct fota_module fota_legacy_module;

/* Live message subscriber (message bus). Called on the loop thread for each
 * published message matching the subscription's product/device filter. */
typedef void (*fota_message_cb)(void *ud, const struct fota_message *m);

#define FOTA_LOOPS_MAX 64

struct fota_server_sub;       /* an active subscription */
struct fota_server_bus;       /* private */
struct fota_store_lane;       /* store_exec.h */
struct fota_devchan;          /* server/device/devchan.h */

struct fota_server {
    struct fota_config conf;          /* live; reloadable fields change on SIGHUP */
    struct event_base *base;
    struct fota_store *store;
    struct fota_blob_store *blobs;            /* DATA/blobs (blob.h) */
    struct fota_store_exec *exec;             /* runs srv->store's jobs (store_exec.h) */
    /* Shared caches of store rows, NULL in a server made by hand (tests):
     * API keys (keycache.h, fota_server_key_lookup), devices (devcache.h),
     * releases (relcache.h). */
    struct fota_keycache *keycache;
    struct fota_devcache *devcache;
    struct fota_relcache *relcache;
    uint8_t secret[FOTA_SECRET_LEN];          /* DATA/secret.key: derives device keys */
    SSL_CTX *ssl_ctx;                 /* NULL unless tls_cert/tls_key are set; shared */
    struct fota_http *http;           /* set by the http module's start() (http.h) */
    int draining;                     /* 1 after SIGTERM/SIGINT */
    int lock_fd;                      /* DATA/fotad.lock, flock'ed while running */
    int64_t started;                  /* Unix seconds */
    int http_port;                    /* the HTTP port listened on (http module), 0: none */

    struct fota_hub hub;              /* cross-module topics (hub.h) */
    struct fota_metrics metrics;      /* what GET /metrics renders (metric.h) */
    struct fota_devchan *devchan;     /* the device channel (devchan.h), NULL without it */

    struct fota_loop *loops[FOTA_LOOPS_MAX];  /* [0] main (srv->base), then HTTP workers */
    int nloops;                       /* 1 + worker threads */
    int workers_running;
    struct fota_module_slot *modules; /* main.c's table (set before the first start()) */
    size_t nmodules;

    struct fota_server_bus *bus;
};

/* Creates the server: main loop, data dir (mode 0700) locked with
 * DATA/fotad.lock (a second fotad on the same dir fails with FOTA_EBUSY),
 * secret, store (SQLite at DATA/fota.db), blob dir, admin key
 * (DATA/owner.key on first start), TLS context, message bus. conf is copied.
 * Logs every step. 0 or a negative FOTA_E* (logged). */
int fota_server_init(struct fota_server *srv, struct event_base *base,
                     const struct fota_config *conf);
/* Creates the shared TLS context from tls_cert/tls_key (*out NULL when they
 * are unset). Logs an ERROR and returns FOTA_ECONFIG if they do not load. */
int fota_server_tls_ctx_new(const struct fota_config *c, SSL_CTX **out);

/* The settings struct of module m (NULL if m has no rows or is not in the
 * table), and its state (NULL before its start()). */
const void *fota_server_module_conf(const struct fota_server *srv, const struct fota_module *m);
void *fota_server_module_state(const struct fota_server *srv, const struct fota_module *m);

/* Frees what init created (NULL-safe fields). Call after the loop ended. */
void fota_server_cleanup(struct fota_server *srv);

/* Adds worker loops (not running yet) until srv has n loops in all, capped
 * at FOTA_LOOPS_MAX, each with its share of the message bus. Called by the
 * http module's start(). 0 or FOTA_ENOMEM (logged). */
int fota_server_add_loops(struct fota_server *srv, int n);
/* Starts the worker loops' threads (after every module started): each runs
 * the modules' loop_start() on itself, then dispatches. Arms the store's
 * loop guard first (store.h). 0 or FOTA_ENOMEM (logged). */
int fota_server_start_workers(struct fota_server *srv);
/* After the main loop's dispatch returned: runs the jobs still queued for
 * the main loop, refuses new ones, stops and joins the workers, disarms
 * the loop guard and drains the store executor. */
void fota_server_stop_workers(struct fota_server *srv);

/* fota_server_bind with SO_REUSEPORT (reuse != 0) so several loops' sockets
 * share the port; quiet != 0 logs the `listening` line at DEBUG. */
int fota_server_bind_opt(struct fota_server *srv, const char *proto, int port, int *bound_port,
                         int reuse, int quiet);

/* fota_server_bind on addr (a numeric address, as the bind setting) instead
 * of conf.bind: a listener with its own address setting (metrics_bind). */
int fota_server_bind_addr(struct fota_server *srv, const char *proto, const char *addr, int port,
                          int *bound_port);

/* Creates a listening TCP socket on conf.bind:port (port 0 = ephemeral;
 * SO_REUSEADDR; IPv6 "::" is dual-stack), non-blocking, close-on-exec, and
 * logs `listening proto=PROTO addr=IP:PORT`. *bound_port gets the actual
 * port. Returns the fd, or a negative FOTA_E* after logging an ERROR such as
 * `cannot listen proto=device addr=0.0.0.0:8000 error="Address already in use"`. */
int fota_server_bind(struct fota_server *srv, const char *proto, int port, int *bound_port);

/* Resolves an API key (40 hex characters) to its role. 0 with *out filled,
 * FOTA_EAUTH if the key is malformed or unknown. */
int fota_server_key_lookup(struct fota_server *srv, const char *key, size_t len,
                           struct fota_key *out);
/* The same from the caches alone, for a loop that must not wait for the
 * store: 0 with *out filled, FOTA_EAUTH for a malformed key or one known not
 * to exist, FOTA_EAGAIN when only the store can tell (fota_server_key_lookup
 * in a store job then). admins 1: an admin key a lookup of this process
 * found counts as known until a lookup says otherwise (keycache.h; for a
 * decision that the request's own authentication confirms later). */
int fota_server_key_cached(struct fota_server *srv, const char *key, size_t len,
                           struct fota_key *out, int admins);

/* A device's derived key ("master" or "owner"), see keys.h. */
void fota_server_device_key(const struct fota_server *srv, const char *kind,
                            const struct fota_device *d, char out[FOTA_KEY_BUF]);

/* Creates a device's master and owner key rows (hashes) for d->key_generation. */
int fota_server_device_keys_create(struct fota_server *srv, const struct fota_device *d);

/* The master and owner key rows of d (its id set) for device_create_many
 * (a fota_store_device_keys_fn; ud is the const struct fota_server). */
void fota_server_device_key_rows(void *ud, const struct fota_device *d,
                                 struct fota_key keys[FOTA_DEVICE_KEYS]);

/* Stores m (message_add) and queues it for live subscribers, which run
 * later on their loop threads. Any thread. Off a loop (a store thread,
 * start-up) it stores m in the caller: m->id and m->created set, 0 or the
 * store's error. On a loop it hands a copy of m to a store job (messages
 * keep their publish order; a store error is logged there, at WARN): 0, or
 * FOTA_EBUSY when the store takes no more jobs; m->id stays as it was. */
int fota_server_publish_message(struct fota_server *srv, struct fota_message *m);
/* The same for a message made here: action, and body, a JSON value (stolen,
 * NULL for {}) stored as its text with sorted keys. A message that is not
 * stored is logged (WARN) with its product, device and action. Any thread.
 * 0 or the store's error. */
int fota_server_publish_json(struct fota_server *srv, int64_t product_id, int64_t device_id,
                             const char *action, struct json_t *body);

/* Subscribes to live messages (product_id/device_id 0 = any) on the calling
 * thread's loop (main or worker): cb runs on that loop. NULL on out-of-memory
 * or when called off any loop. */
struct fota_server_sub *fota_server_subscribe(struct fota_server *srv, int64_t product_id,
                                              int64_t device_id, fota_message_cb cb, void *ud);
/* Ends a subscription (NULL-safe), on its loop's thread or after that loop
 * stopped. Safe inside the callback. */
void fota_server_unsubscribe(struct fota_server *srv, struct fota_server_sub *sub);

/* The lane `messages` (NULL without an executor or bus): a store job that
 * writes messages itself (report_batch) runs there, so that messages are
 * stored and fanned out in one order; a read of the stored messages
 * submitted on it runs after every publish submitted before it, so a
 * listing holds every message whose publisher has answered, as the inline
 * store (SQLite) does. Any thread. */
struct fota_store_lane *fota_server_bus_lane(struct fota_server *srv);
/* Fans out m, which a job on that lane (or, without one, the caller) has
 * just stored, as fota_server_publish_message does after its insert. */
void fota_server_bus_stored(struct fota_server *srv, struct fota_store *st,
                            const struct fota_message *m);

/* Several fotad on one PostgreSQL (cluster.c, before the loops serve):
 * from now on every message, this instance's and the others', reaches the
 * subscribers in id order, read from the store after the last id fanned out
 * (last_id to begin with: the newest one stored). Any thread. */
void fota_server_bus_share(struct fota_server *srv, int64_t last_id);
/* The doorbell fota_msg (a fota_cluster_cb): payload the id another
 * instance stored, NULL after notifications may have been missed. A store
 * job on the lane `messages` fans out what is stored after the last id
 * fanned out; doorbells that come while one is queued ride on it. Main loop;
 * nothing before fota_server_bus_share. */
void fota_server_bus_ring(struct fota_server *srv, const char *payload, void *ud);

/* Message bus set-up (server_bus.c): init gives every loop without one its
 * queue (again after fota_server_add_loops); exposed for unit tests. */
int fota_server_bus_init(struct fota_server *srv);
void fota_server_bus_cleanup(struct fota_server *srv);

#endif
