/* metrics_census.c - the gauges that come from the store, computed at each
 * scrape and kept nowhere: devices, devices online and devices per version
 * by product and platform, releases and the current release per product
 * (one device_census query), rollouts by state (one rollout_census query).
 *
 * Cardinality: products are what an admin created; versions are what
 * devices report, so each product shows its versions_max most common ones
 * and sums the rest as version="(other)" (a device that never reported one
 * is "(none)"). */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"

#define V_OTHER "(other)"
#define V_NONE  "(none)"

static const struct fota_metric_desc devices_desc = {
    "fota_devices", "Devices registered, by product and platform.", FOTA_METRIC_GAUGE, 0, NULL
};
static const struct fota_metric_desc online_desc = {
    "fota_devices_online",
    "Devices online, by product and platform: connected to the device channel (nonos) or checked "
    "in within the product's checkin_interval (arduino).",
    FOTA_METRIC_GAUGE, 0, NULL
};
static const struct fota_metric_desc version_desc = {
    "fota_devices_version",
    "Devices by the version they run, per product: its most common versions (metrics_versions), "
    "the rest summed as \"(other)\"; \"(none)\" for devices that never reported one.",
    FOTA_METRIC_GAUGE, 0, NULL
};
static const struct fota_metric_desc releases_desc = {
    "fota_releases", "Releases uploaded, by product and platform.", FOTA_METRIC_GAUGE, 0, NULL
};
static const struct fota_metric_desc current_desc = {
    "fota_release_current_info",
    "The current release of each product that has one (value 1, the version as a label).",
    FOTA_METRIC_GAUGE, 0, NULL
};
static const struct fota_metric_desc rollouts_desc = {
    "fota_rollouts", "Rollouts in the store, by state.", FOTA_METRIC_GAUGE, 0, NULL
};

static const char *platform(const struct fota_census_row *r)
{
    return r->arduino ? "arduino" : "nonos";
}

/* rows[from, to) are one product's, most devices first. */
static void product_versions(struct fota_metric_out *o, const struct fota_census_row *rows,
                             size_t from, size_t to, unsigned max)
{
    static const char *const names[] = { "product", "platform", "version" };
    int64_t other = 0, none = 0;
    unsigned shown = 0;
    for (size_t i = from; i < to; i++) {
        const struct fota_census_row *r = &rows[i];
        if (r->devices == 0)
            continue;
        if (r->version[0] == '\0') {
            none += r->devices;
        } else if (shown < max && strcmp(r->version, V_OTHER) != 0 &&
                   strcmp(r->version, V_NONE) != 0) {
            const char *v[] = { r->product, platform(r), r->version };
            fota_metric_put_kv(o, r->devices, 3, names, v);
            shown++;
        } else {
            other += r->devices;
        }
    }
    const char *v[] = { rows[from].product, platform(&rows[from]), V_NONE };
    if (none) /* "(none)" is one series whatever the cap: it is not a version */
        fota_metric_put_kv(o, none, 3, names, v);
    v[2] = V_OTHER;
    if (other)
        fota_metric_put_kv(o, other, 3, names, v);
}

/* Runs first among the families it writes: fota_devices is its part's own
 * name, the others follow with fota_metric_begin. */
static void census_collect(void *ud, struct fota_metric_out *o)
{
    static const char *const names[] = { "product", "platform", "version" };
    const struct fota_metrics_census *c = ud;
    struct fota_store *st = c->srv->store;
    struct fota_census_row *rows = NULL;
    size_t n = 0;
    int rc = st->ops->device_census(st, fota_clock_wall_s(), &rows, &n);
    if (rc < 0) {
        FOTA_WARN("metrics: device census failed error=%s", fota_errname(rc));
        n = 0;
    }
    /* per product: sums over its version rows */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            fota_metric_begin(o, &online_desc);
        for (size_t i = 0; i < n;) {
            size_t j = i;
            int64_t sum = 0;
            for (; j < n && rows[j].product_id == rows[i].product_id; j++)
                sum += pass == 0 ? rows[j].devices : rows[j].online;
            const char *v[] = { rows[i].product, platform(&rows[i]) };
            fota_metric_put_kv(o, sum, 2, names, v);
            i = j;
        }
    }
    fota_metric_begin(o, &version_desc);
    for (size_t i = 0, j; i < n; i = j) {
        for (j = i; j < n && rows[j].product_id == rows[i].product_id; j++)
            ;
        product_versions(o, rows, i, j, c->versions_max);
    }
    fota_metric_begin(o, &releases_desc);
    for (size_t i = 0; i < n; i++)
        if (i == 0 || rows[i].product_id != rows[i - 1].product_id) {
            const char *v[] = { rows[i].product, platform(&rows[i]) };
            fota_metric_put_kv(o, rows[i].releases, 2, names, v);
        }
    fota_metric_begin(o, &current_desc);
    for (size_t i = 0; i < n; i++)
        if ((i == 0 || rows[i].product_id != rows[i - 1].product_id) && rows[i].current[0]) {
            const char *v[] = { rows[i].product, platform(&rows[i]), rows[i].current };
            fota_metric_put_kv(o, 1, 3, names, v);
        }
    free(rows);
}

static void rollouts_collect(void *ud, struct fota_metric_out *o)
{
    static const char *const states[] = {
        [FOTA_ROLLOUT_RUNNING] = "state=\"running\"",
        [FOTA_ROLLOUT_CANCELLING] = "state=\"cancelling\"",
        [FOTA_ROLLOUT_CANCELLED] = "state=\"cancelled\"",
        [FOTA_ROLLOUT_FINISHED] = "state=\"finished\"",
        [FOTA_ROLLOUT_INTERRUPTED] = "state=\"interrupted\"",
        [FOTA_ROLLOUT_PAUSED] = "state=\"paused\"",
        [FOTA_ROLLOUT_APPROVAL] = "state=\"awaiting_approval\"",
    };
    enum { NSTATES = sizeof states / sizeof states[0] };
    const struct fota_metrics_census *c = ud;
    struct fota_store *st = c->srv->store;
    int64_t counts[NSTATES];
    int rc = st->ops->rollout_census(st, counts, NSTATES);
    if (rc < 0) {
        FOTA_WARN("metrics: rollout census failed error=%s", fota_errname(rc));
        return;
    }
    for (size_t i = 1; i < NSTATES; i++)
        fota_metric_put(o, states[i], counts[i]);
}

int fota_metrics_census_register(struct fota_server *srv, struct fota_metrics_census *c)
{
    int rc = fota_metric_register_fn(srv, &devices_desc, census_collect, c);
    return rc < 0 ? rc : fota_metric_register_fn(srv, &rollouts_desc, rollouts_collect, c);
}
