/* main.c - fotad: the table of modules, the configuration built from core's
 * and the modules' rows, the server context, the event loop, and the
 * signals: SIGTERM/SIGINT (graceful drain), SIGHUP (reload), SIGPIPE
 * (ignored). No protocol logic lives here. */
#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arduino.h"
#include "backup.h"
#include "clock.h"
#include "cluster.h"
#include "config.h"
#include "legacy.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "migrate.h"
#include "mqtt.h"
#include "privdrop.h"
#include "recovery.h"
#include "server.h"
#include "store_exec.h"
#include "store_module.h"
#include "xmalloc.h"

/* Start order: the store's upkeep (retention, disk reserve) first, HTTP
 * next (the others add routes to it), the cluster (several fotad on one
 * PostgreSQL: registered before any device connects), the REST API and the
 * ROM download,
 * then the device channel, the rollouts (they push through the channel),
 * the legacy listener, the Arduino-core endpoints and their MQTT side
 * (Tasmota), the backup route, and the metrics last (every other module
 * registered its metrics by then). They stop in reverse order. */
static const struct fota_module *const modules[] = {
    &fota_store_module,
    &fota_http_module,
    &fota_cluster_module,
    &fota_api_module,
    &fota_rom_module,
    &fota_device_module,
    &fota_rollout_module,
    &fota_legacy_module,
    &fota_arduino_module,
    &fota_mqtt_module,
    &fota_backup_module,
    &fota_metrics_module,
};
#define NMODULES (sizeof(modules) / sizeof(modules[0]))

struct daemon {
    struct fota_server srv;
    struct fota_config conf;                  /* parsed; fota_server_init copies it */
    struct fota_module_slot slot[NMODULES];
    struct fota_conf_set set;                 /* core's part, then each module's */
    struct fota_privdrop priv;                /* the user option: begun before the data dir */
    struct event *sig_term, *sig_int, *sig_hup, *drain_timer;
    int64_t drain_start_ms;
    int argc;
    char **argv;
};

/* A set over conf and one settings struct per module with rows (confs[i]
 * for modules[i], allocated here when NULL). */
static void conf_set_build(struct fota_conf_set *set, struct fota_config *conf, void **confs)
{
    memset(set, 0, sizeof(*set));
    fota_config_add_part(set, "core", fota_config_opts, conf, fota_config_check_core);
    for (size_t i = 0; i < NMODULES; i++) {
        const struct fota_module *m = modules[i];
        if (!m->conf_opts)
            continue;
        if (!confs[i])
            confs[i] = fota_xcalloc(1, m->conf_size);
        fota_config_add_part(set, m->name, m->conf_opts, confs[i], m->conf_check);
    }
}

static int modules_busy(struct daemon *d)
{
    for (size_t i = 0; i < NMODULES; i++) {
        struct fota_module_slot *s = &d->slot[i];
        if (s->started && s->mod->busy && s->mod->busy(&d->srv, s->state))
            return 1;
    }
    return 0;
}

static void drain_tick(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;
    (void)fd;
    (void)what;
    int64_t waited_ms = fota_clock_mono_ms() - d->drain_start_ms;
    if (!modules_busy(d)) {
        event_base_loopexit(d->srv.base, NULL);
    } else if (waited_ms >= (int64_t)d->srv.conf.shutdown_grace * 1000) {
        FOTA_WARN("shutdown grace over, closing open connections grace_s=%u",
                  d->srv.conf.shutdown_grace);
        event_base_loopexit(d->srv.base, NULL);
    }
}

static void on_term(evutil_socket_t sig, short what, void *arg)
{
    struct daemon *d = arg;
    static const struct timeval tick = { 0, 50000 };
    (void)what;
    if (d->srv.draining) {
        FOTA_WARN("second signal, exiting now signal=%d", (int)sig);
        event_base_loopbreak(d->srv.base);
        return;
    }
    FOTA_INFO("shutting down signal=%s grace_s=%u", sig == SIGINT ? "SIGINT" : "SIGTERM",
              d->srv.conf.shutdown_grace);
    d->srv.draining = 1;
    for (size_t i = 0; i < NMODULES; i++)
        if (d->slot[i].started && modules[i]->drain)
            modules[i]->drain(&d->srv, d->slot[i].state);
    d->drain_start_ms = fota_clock_mono_ms();
    d->drain_timer = event_new(d->srv.base, -1, EV_PERSIST, drain_tick, d);
    event_add(d->drain_timer, &tick);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    struct daemon *d = arg;
    struct fota_config fresh;
    struct fota_conf_set set;
    struct fota_cmdline cl;
    void *confs[NMODULES] = { 0 };
    char err[512], changed[512];
    (void)sig;
    (void)what;
    conf_set_build(&set, &fresh, confs);
    if (fota_config_from_args(&set, &cl, d->argc, d->argv, err, sizeof(err)) != 0) {
        FOTA_ERROR("reload failed, keeping the old configuration error=\"%s\"", err);
    } else {
        fota_config_apply_reloadable(&d->set, &set, changed, sizeof(changed));
        fota_log_set_level(d->srv.conf.log_level);
        for (size_t i = 0; i < NMODULES; i++)
            if (d->slot[i].started && modules[i]->reload)
                modules[i]->reload(&d->srv, d->slot[i].state);
        FOTA_INFO("configuration reloaded changed=%s", changed[0] ? changed : "none");
    }
    for (size_t i = 0; i < NMODULES; i++)
        free(confs[i]);
}

/* "http=80 device=8000 ... " from the port rows of the set that will listen:
 * not those set to off, nor the TLS ones without a certificate. */
static void ports_line(const struct fota_conf_set *set, int tls, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < set->n; i++)
        for (const struct fota_conf_opt *o = set->part[i].opts; o->name; o++) {
            if (o->type != FOTA_CONF_T_PORT || used >= cap || ((o->flags & FOTA_CONF_TLS) && !tls))
                continue;
            int port = *(const int *)(const void *)((const char *)set->part[i].base + o->offset);
            if (port == FOTA_PORT_OFF)
                continue;
            size_t nl = strlen(o->name);
            if (nl > 5 && strcmp(o->name + nl - 5, "_port") == 0)
                nl -= 5;
            char p[16];
            int n = snprintf(out + used, cap - used, " %.*s=%s", (int)nl, o->name,
                             fota_config_port_str(port, p, sizeof(p)));
            if (n > 0)
                used += (size_t)n;
        }
}

static int modules_start(struct daemon *d)
{
    d->srv.modules = d->slot;
    d->srv.nmodules = NMODULES;
    for (size_t i = 0; i < NMODULES; i++) {
        if (modules[i]->start && modules[i]->start(&d->srv, &d->slot[i].state) != 0) {
            FOTA_ERROR("module failed to start module=%s", modules[i]->name);
            return -1;
        }
        d->slot[i].started = 1;
    }
    return 0;
}

/* A module's stop may hand the store its last work (the device channel's
 * requeue of a command as its connections close, its last reports), which
 * runs on a store thread and may call into a module started before it (the
 * requeue reads the rom module's download progress): that work ends before
 * the next module stops, as the REST handlers' jobs end before the first
 * (fota_server_stop_workers). */
static void modules_stop(struct daemon *d)
{
    for (size_t i = NMODULES; i-- > 0;) {
        if (d->slot[i].started && modules[i]->stop)
            modules[i]->stop(&d->srv, d->slot[i].state);
        fota_store_exec_drain(d->srv.exec);
        d->slot[i].started = 0;
        d->slot[i].state = NULL;
    }
}

static int signals_install(struct daemon *d, struct event_base *base)
{
    d->sig_term = evsignal_new(base, SIGTERM, on_term, d);
    d->sig_int = evsignal_new(base, SIGINT, on_term, d);
    d->sig_hup = evsignal_new(base, SIGHUP, on_hup, d);
    if (evsignal_add(d->sig_term, NULL) || evsignal_add(d->sig_int, NULL) ||
        evsignal_add(d->sig_hup, NULL)) {
        FOTA_ERROR("cannot install signal handlers");
        return -1;
    }
    return 0;
}

static void signals_free(struct daemon *d)
{
    struct event *evs[] = { d->drain_timer, d->sig_term, d->sig_int, d->sig_hup };
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        if (evs[i])
            event_free(evs[i]);
}

static int run(struct daemon *d, const char *config_file)
{
    struct event_base *base;
    int rc = 1;
    char ports[256];

    evthread_use_pthreads();
    base = fota_loop_base_new();
    if (!base) {
        FOTA_ERROR("cannot create event base");
        return 1;
    }
    ports_line(&d->set, d->conf.tls_cert[0] && d->conf.tls_key[0], ports, sizeof(ports));
    FOTA_INFO("fotad starting version=%s data=%s bind=%s%s", FOTA_VERSION_STRING,
              d->conf.data_dir, d->conf.bind, ports);
    FOTA_DEBUG("configuration file=%s log_level=%s shutdown_grace=%u",
               config_file ? config_file : "-", fota_log_level_name(d->conf.log_level),
               d->conf.shutdown_grace);
    if (fota_server_init(&d->srv, base, &d->conf) != 0)
        goto out;
    /* The store's ops timed for GET /metrics (metrics.h): its op table is
     * swapped here, before any module submits a store job that reads it. */
    if (fota_metrics_store_wrap(&d->srv, d->srv.store) < 0) {
        FOTA_ERROR("metrics: cannot register the store's op timings");
        goto out;
    }
    d->set.part[0].base = &d->srv.conf;   /* the live copy SIGHUP updates */
    if (modules_start(d) != 0 || fota_privdrop_end(&d->priv) != 0 ||
        fota_server_start_workers(&d->srv) != 0 ||
        signals_install(d, base) != 0)
        goto stop;
    FOTA_INFO("fotad ready");
    fota_recovery_alloc_arm();   /* test builds only (recovery.h) */
    if (event_base_dispatch(base) < 0) {
        FOTA_ERROR("event loop failed");
        goto stop;
    }
    rc = 0;
stop:
    /* Handlers of worker loops call into the modules: stop them first. */
    fota_server_stop_workers(&d->srv);
    modules_stop(d);
out:
    signals_free(d);
    fota_server_cleanup(&d->srv);
    event_base_free(base);
    if (rc == 0)
        FOTA_INFO("fotad stopped");
    return rc;
}

/* -t: the settings parsed; the TLS files must load and the user exist too. */
static int test_config(const struct daemon *d, const char *config_file)
{
    SSL_CTX *ctx = NULL;
    if (fota_privdrop_check_user(d->conf.user) != 0) {
        fprintf(stderr, "fotad: user: unknown user \"%s\"\n", d->conf.user);
        return 2;
    }
    if (fota_server_tls_ctx_new(&d->conf, &ctx) != 0) {
        fprintf(stderr, "fotad: TLS certificate or key does not load\n");
        return 2;
    }
    if (ctx)
        SSL_CTX_free(ctx);
    printf("fotad: configuration %s is valid\n", config_file ? config_file
                                                              : "(defaults and flags)");
    return 0;
}

int main(int argc, char **argv)
{
    static struct daemon d;   /* the one daemon: too large for the stack, lives until exit */
    struct fota_cmdline cl;
    void *confs[NMODULES] = { 0 };
    char err[512];

    fota_xmalloc_install();
    if (argc > 1 && strcmp(argv[1], "legacy") == 0)
        return fota_legacy_dropin_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "migrate") == 0)
        return fota_migrate_cmd_main(argc - 1, argv + 1);
    signal(SIGPIPE, SIG_IGN);
    conf_set_build(&d.set, &d.conf, confs);
    for (size_t i = 0; i < NMODULES; i++)
        d.slot[i] = (struct fota_module_slot){ .mod = modules[i], .conf = confs[i] };
    if (argc > 1 && (strcmp(argv[1], "backup") == 0 || strcmp(argv[1], "restore") == 0))
        return fota_backup_cmd_main(argc - 1, argv + 1, &d.set, &d.conf);
    if (fota_config_from_args(&d.set, &cl, argc, argv, err, sizeof(err)) != 0) {
        fprintf(stderr, "fotad: %s\n", err);
        return 2;
    }
    if (cl.help) {
        fota_config_usage(stdout, "fotad", &d.set);
        return 0;
    }
    if (cl.version) {
        printf("fotad %s\n", FOTA_VERSION_STRING);
        return 0;
    }
    if (cl.config_doc) {
        fota_config_doc(stdout, &d.set);
        return 0;
    }
    if (cl.test_only)
        return test_config(&d, cl.config_file);
    fota_log_set_level(d.conf.log_level);
    int r = fota_privdrop_begin(&d.priv, d.conf.user, d.conf.data_dir);
    if (r != 0)
        return r == FOTA_ECONFIG ? 2 : 1;
    d.argc = argc;
    d.argv = argv;
    return run(&d, cl.config_file);
}
