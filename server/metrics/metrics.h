/* metrics.h - the metrics module: GET /metrics in the Prometheus text
 * format (metric.h's registry, the store's census and latencies, the
 * process), on the HTTP port behind the admin key and, with metrics_bind
 * set, on a listener of its own without a key. Last in main.c's table: it
 * starts when every other module has registered its metrics, and stops
 * first. docs/metrics.md lists every metric. */
#ifndef FOTA_METRICS_H
#define FOTA_METRICS_H

#include <stddef.h>

#include "server.h"

extern const struct fota_module fota_metrics_module;

/* The module's settings (its rows in metrics_module.c). */
struct fota_metrics_conf {
    char     bind[80];                 /* "ADDR:PORT" of the keyless listener, "" none */
    unsigned versions_max;             /* fota_devices_version series per product */
};

/* Times every op of s (metrics_store.c): s->ops moves to a shim that counts
 * each call's duration and failures (registered with srv) and calls the
 * backend's op; s's close takes the shim away and frees it. 0, or the
 * registry's error (the shim is installed all the same). Main thread,
 * before any other thread uses s. */
int fota_metrics_store_wrap(struct fota_server *srv, struct fota_store *s);
/* Tests: how many ops of a wrapped s are not timed (0 when the shim knows
 * every op of struct fota_store_ops). */
size_t fota_metrics_store_untimed(const struct fota_store *s);

/* The census collectors (metrics_census.c): devices, devices online,
 * devices per version (versions_max per product, the rest as "(other)"),
 * releases and the current release per product, rollouts by state; one
 * store query each per scrape. c (the caller's, set before) must live until
 * the module stops. */
struct fota_metrics_census {
    struct fota_server *srv;
    unsigned versions_max;
};
int fota_metrics_census_register(struct fota_server *srv, struct fota_metrics_census *c);

#endif
