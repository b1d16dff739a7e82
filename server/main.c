/* main.c - fotad: parse the configuration, open the server context, start the
 * modules, run the event loop, and handle SIGTERM/SIGINT (graceful drain),
 * SIGHUP (reload) and SIGPIPE (ignored). No protocol logic lives here. */
#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "server.h"
#ifdef FOTA_HAVE_LEGACY
#include "legacy.h"
#endif

static const struct fota_module *const modules[] = {
#ifdef FOTA_HAVE_DEVICE_MODULE
    &fota_device_module,
#endif
#ifdef FOTA_HAVE_LEGACY_MODULE
    &fota_legacy_module,
#endif
    NULL
};
#define NMODULES (sizeof(modules) / sizeof(modules[0]) - 1)

struct daemon {
    struct fota_server srv;
    void *state[NMODULES + 1];
    int started[NMODULES + 1];
    struct event *sig_term, *sig_int, *sig_hup, *drain_timer;
    struct timeval drain_start;
    int argc;
    char **argv;
};

static void drain_tick(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;
    struct timeval now;
    (void)fd;
    (void)what;
    event_base_gettimeofday_cached(d->srv.base, &now);
    long waited_ms = (now.tv_sec - d->drain_start.tv_sec) * 1000 +
                     (now.tv_usec - d->drain_start.tv_usec) / 1000;
    if (!fota_http_busy(d->srv.http)) {
        event_base_loopexit(d->srv.base, NULL);
    } else if (waited_ms >= (long)d->srv.conf.shutdown_grace * 1000) {
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
    fota_http_drain(d->srv.http);
    for (size_t i = 0; i < NMODULES; i++)
        if (d->started[i] && modules[i]->drain)
            modules[i]->drain(&d->srv, d->state[i]);
    event_base_gettimeofday_cached(d->srv.base, &d->drain_start);
    d->drain_timer = event_new(d->srv.base, -1, EV_PERSIST, drain_tick, d);
    if (d->drain_timer)
        event_add(d->drain_timer, &tick);
    else
        event_base_loopexit(d->srv.base, NULL);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    struct daemon *d = arg;
    struct fota_config fresh;
    struct fota_cmdline cl;
    char err[512], changed[512];
    (void)sig;
    (void)what;
    if (fota_config_from_args(&fresh, &cl, d->argc, d->argv, err, sizeof(err)) != 0) {
        FOTA_ERROR("reload failed, keeping the old configuration error=\"%s\"", err);
        return;
    }
    fota_config_apply_reloadable(&d->srv.conf, &fresh, changed, sizeof(changed));
    fota_log_set_level(d->srv.conf.log_level);
    fota_http_reload(d->srv.http);
    for (size_t i = 0; i < NMODULES; i++)
        if (d->started[i] && modules[i]->reload)
            modules[i]->reload(&d->srv, d->state[i]);
    FOTA_INFO("configuration reloaded changed=%s", changed[0] ? changed : "none");
}

static int run(struct daemon *d, const struct fota_config *conf)
{
    struct event_base *base;
    int rc = 1;
    char ps[5][16];

    evthread_use_pthreads();
    base = fota_loop_base_new();
    if (!base) {
        FOTA_ERROR("cannot create event base");
        return 1;
    }
    FOTA_INFO("fotad starting version=%s data=%s bind=%s http=%s https=%s device=%s "
              "device_tls=%s legacy=%s", FOTA_VERSION_STRING, conf->data_dir, conf->bind,
              fota_config_port_str(conf->http_port, ps[0], 16),
              fota_config_port_str(conf->https_port, ps[1], 16),
              fota_config_port_str(conf->device_port, ps[2], 16),
              fota_config_port_str(conf->device_tls_port, ps[3], 16),
              fota_config_port_str(conf->legacy_port, ps[4], 16));
    FOTA_DEBUG("configuration file=%s log_level=%s max_upload=%llu shutdown_grace=%u "
               "http_timeout=%u ping_timeout=%u", conf->config_file[0] ? conf->config_file : "-",
               fota_log_level_name(conf->log_level), (unsigned long long)conf->max_upload,
               conf->shutdown_grace, conf->http_timeout, conf->ping_timeout);
    if (fota_server_init(&d->srv, base, conf) != 0)
        goto out;
    for (size_t i = 0; i < NMODULES; i++) {
        if (modules[i]->start && modules[i]->start(&d->srv, &d->state[i]) != 0) {
            FOTA_ERROR("module failed to start module=%s", modules[i]->name);
            goto stop;
        }
        d->started[i] = 1;
    }
#ifndef FOTA_HAVE_DEVICE_MODULE
    if (conf->device_port != FOTA_PORT_OFF)
        FOTA_WARN("device channel not built in, device_port ignored");
#endif
#ifndef FOTA_HAVE_LEGACY_MODULE
    if (conf->legacy_port != FOTA_PORT_OFF)
        FOTA_WARN("legacy listener not wired into the daemon yet, legacy_port ignored");
#endif
    if (fota_server_start_workers(&d->srv) != 0)
        goto stop;
    d->sig_term = evsignal_new(base, SIGTERM, on_term, d);
    d->sig_int = evsignal_new(base, SIGINT, on_term, d);
    d->sig_hup = evsignal_new(base, SIGHUP, on_hup, d);
    if (!d->sig_term || !d->sig_int || !d->sig_hup || evsignal_add(d->sig_term, NULL) ||
        evsignal_add(d->sig_int, NULL) || evsignal_add(d->sig_hup, NULL)) {
        FOTA_ERROR("cannot install signal handlers");
        goto stop;
    }
    FOTA_INFO("fotad ready");
    if (event_base_dispatch(base) < 0) {
        FOTA_ERROR("event loop failed");
        goto stop;
    }
    rc = 0;
stop:
    /* Handlers of worker loops call into the modules: stop them first. */
    fota_server_stop_workers(&d->srv);
    for (size_t i = NMODULES; i-- > 0;)
        if (d->started[i] && modules[i]->stop)
            modules[i]->stop(&d->srv, d->state[i]);
out:
    if (d->drain_timer)
        event_free(d->drain_timer);
    if (d->sig_term)
        event_free(d->sig_term);
    if (d->sig_int)
        event_free(d->sig_int);
    if (d->sig_hup)
        event_free(d->sig_hup);
    fota_server_cleanup(&d->srv);
    event_base_free(base);
    if (rc == 0)
        FOTA_INFO("fotad stopped");
    return rc;
}

int main(int argc, char **argv)
{
    static struct daemon d;
    struct fota_config conf;
    struct fota_cmdline cl;
    char err[512];

    if (argc > 1 && strcmp(argv[1], "legacy") == 0) {
#ifdef FOTA_HAVE_LEGACY
        return fota_legacy_dropin_main(argc - 1, argv + 1);
#else
        fprintf(stderr, "fotad: the legacy listener is not built in\n");
        return 1;
#endif
    }
    signal(SIGPIPE, SIG_IGN);
    if (fota_config_from_args(&conf, &cl, argc, argv, err, sizeof(err)) != 0) {
        fprintf(stderr, "fotad: %s\n", err);
        return 2;
    }
    if (cl.help) {
        fota_config_usage(stdout, "fotad");
        return 0;
    }
    if (cl.version) {
        printf("fotad %s\n", FOTA_VERSION_STRING);
        return 0;
    }
    if (cl.config_doc) {
        fota_config_doc(stdout);
        return 0;
    }
    if (cl.test_only) {
        SSL_CTX *ctx = NULL;
        if (fota_server_tls_ctx_new(&conf, &ctx) != 0) {
            fprintf(stderr, "fotad: TLS certificate or key does not load\n");
            return 2;
        }
        if (ctx)
            SSL_CTX_free(ctx);
        printf("fotad: configuration %s is valid\n", conf.config_file[0] ? conf.config_file
                                                                        : "(defaults and flags)");
        return 0;
    }
    fota_log_set_level(conf.log_level);
    d.argc = argc;
    d.argv = argv;
    return run(&d, &conf);
}
