/* server.h - the fotad server context and the hook points of its modules.
 *
 * One struct fota_server per process, created by main.c. It owns the event
 * base (main loop thread), the store, the blob directory, the server secret,
 * the HTTP server (REST API, ROM download) and the message bus. Modules
 * (device channel, legacy listener, ...) plug in with a struct fota_module
 * listed in main.c; they get the server in start() and use:
 *   - srv->conf            the configuration (struct fota_config, config.h)
 *   - srv->base            the main event base (run by main.c)
 *   - srv->store           the metadata store (store.h)
 *   - srv->blobs           the firmware blob store (blob.h, content-addressed)
 *   - fota_server_bind()   listening sockets with the standard `listening` log line
 *   - fota_server_key_lookup(), fota_server_device_key()   keys and roles
 *   - fota_http_route()    (http.h) add or override an HTTP route
 *   - fota_hub_subscribe(), fota_hub_publish()  (hub.h) calls between modules
 *   - fota_server_publish_message()  store a message and fan it out live
 * Threads (docs/architecture.md): srv->base is the main loop (device channel,
 * legacy listener, timers, module state). HTTP is also served by worker loops
 * (srv->loops[1..], config `workers`) on SO_REUSEPORT sockets; routes run on
 * the main loop unless registered FOTA_ROUTE_ANY_LOOP (http.h). Everything
 * runs on the main loop's thread unless noted (the publish function is
 * callable from any thread; subscriptions belong to the caller's loop). */
#ifndef FOTA_SERVER_H
#define FOTA_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "hub.h"
#include "keys.h"
#include "blob.h"
#include "store.h"

struct event_base;
struct event;
struct evhttp_request;
struct fota_http;
struct fota_server;
struct fota_req;
typedef struct ssl_ctx_st SSL_CTX;

/* A module of the daemon. main.c calls start() after the store is open and
 * the HTTP routes exist (return 0, or a negative FOTA_E* to abort start-up
 * with the module's own ERROR line already logged); reload() on SIGHUP after
 * srv->conf was updated; drain() when SIGTERM/SIGINT arrives (stop accepting;
 * in-flight work may continue until stop()); stop() once the loop has ended,
 * to free everything. Any callback may be NULL. `state` is the module's own
 * pointer, set by start(). */
struct fota_module {
    const char *name;
    int  (*start)(struct fota_server *srv, void **state);
    void (*reload)(struct fota_server *srv, void *state);
    void (*drain)(struct fota_server *srv, void *state);
    void (*stop)(struct fota_server *srv, void *state);
};

/* Modules known to main.c; each is linked in when its library target exists
 * (CMake defines FOTA_HAVE_<NAME>_MODULE). The device helper defines
 * fota_device_module in server/device/. */
extern const struct fota_module fota_device_module;
extern const struct fota_module fota_legacy_module;

/* ROM download hook: handles GET/HEAD /v1/device/rom/?action=download_rom
 * (r is the request; the hook must reply, see http.h). Installed by the
 * device module; without one, fotad answers 501. */
typedef void (*fota_rom_download_fn)(void *ud, struct fota_req *r);

/* Live message subscriber (message bus). Called on the loop thread for each
 * published message matching the subscription's product/device filter. */
typedef void (*fota_message_cb)(void *ud, const struct fota_message *m);

struct fota_loop;             /* loop.h */
#define FOTA_LOOPS_MAX 64

struct fota_server_sub;       /* an active subscription */
struct fota_server_bus;       /* private */
struct fota_api_uploads;      /* private (server/http/api_roms.c) */

struct fota_server {
    struct fota_config conf;          /* live; reloadable fields change on SIGHUP */
    struct event_base *base;
    struct fota_store *store;
    struct fota_blob_store *blobs;            /* DATA/blobs (blob.h) */
    uint8_t secret[FOTA_SECRET_LEN];          /* DATA/secret.key: derives device keys */
    SSL_CTX *ssl_ctx;                 /* NULL unless tls_cert/tls_key are set; shared */
    struct fota_http *http;           /* REST API (http.h) */
    int draining;                     /* 1 after SIGTERM/SIGINT */
    int lock_fd;                      /* DATA/fotad.lock, flock'ed while running */
    int64_t started;                  /* Unix seconds */

    fota_rom_download_fn rom_download;
    void *rom_download_ud;
    struct fota_hub hub;              /* cross-module topics (hub.h) */

    struct fota_loop *loops[FOTA_LOOPS_MAX];  /* [0] main (srv->base), then HTTP workers */
    int nloops;                       /* 1 + worker threads */
    int workers_running;

    struct fota_server_bus *bus;
    struct fota_api_uploads *uploads;  /* release uploads in progress (api_roms.c) */
    const char *const *argv;          /* for SIGHUP re-reading of the file + flags */
    int argc;
};

/* Creates the server: data dir (mode 0700) locked with DATA/fotad.lock
 * (a second fotad on the same dir fails with FOTA_EBUSY), secret, store (SQLite at
 * DATA/fota.db), blob dir, admin key (DATA/owner.key on first start), TLS
 * context, HTTP listeners. conf is copied. Logs every step. 0 or a negative
 * FOTA_E* (logged). */
int fota_server_init(struct fota_server *srv, struct event_base *base,
                     const struct fota_config *conf);
/* Creates the shared TLS context from tls_cert/tls_key (*out NULL when they
 * are unset). Logs an ERROR and returns FOTA_ECONFIG if they do not load. */
int fota_server_tls_ctx_new(const struct fota_config *c, SSL_CTX **out);

/* Frees what init created (NULL-safe fields). Call after the loop ended. */
void fota_server_cleanup(struct fota_server *srv);

/* Starts the worker loops' threads (after the modules added their routes):
 * each serves HTTP on its own SO_REUSEPORT sockets. 0 or FOTA_ENOMEM (logged). */
int fota_server_start_workers(struct fota_server *srv);
/* After the main loop's dispatch returned: runs the jobs still queued for
 * the main loop, refuses new ones, stops and joins the workers. */
void fota_server_stop_workers(struct fota_server *srv);

/* fota_server_bind with SO_REUSEPORT (reuse != 0) so several loops' sockets
 * share the port; quiet != 0 logs the `listening` line at DEBUG. */
int fota_server_bind_opt(struct fota_server *srv, const char *proto, int port, int *bound_port,
                         int reuse, int quiet);

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

/* A device's derived key ("master" or "owner"), see keys.h. */
void fota_server_device_key(const struct fota_server *srv, const char *kind,
                            const struct fota_device *d, char out[FOTA_KEY_BUF]);

/* Creates a device's master and owner key rows (hashes) for d->key_generation. */
int fota_server_device_keys_create(struct fota_server *srv, const struct fota_device *d);

void fota_server_set_rom_download(struct fota_server *srv, fota_rom_download_fn fn, void *ud);

/* Stores m (message_add: sets m->id, m->created) and queues it for live
 * subscribers. Callable from ANY thread; subscribers run later on the loop
 * thread. 0 or the store's error. */
int fota_server_publish_message(struct fota_server *srv, struct fota_message *m);

/* Subscribes to live messages (product_id/device_id 0 = any) on the calling
 * thread's loop (main or worker): cb runs on that loop. NULL on out-of-memory
 * or when called off any loop. */
struct fota_server_sub *fota_server_subscribe(struct fota_server *srv, int64_t product_id,
                                              int64_t device_id, fota_message_cb cb, void *ud);
/* Ends a subscription (NULL-safe), on its loop's thread or after that loop
 * stopped. Safe inside the callback. */
void fota_server_unsubscribe(struct fota_server *srv, struct fota_server_sub *sub);

/* Message bus set-up (server.c calls these; exposed for unit tests). */
int fota_server_bus_init(struct fota_server *srv);
void fota_server_bus_cleanup(struct fota_server *srv);

/* Current Unix time, seconds. */
int64_t fota_server_now(void);

#endif
