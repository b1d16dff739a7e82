/* legacy_metrics.c - the legacy module's metrics (legacy_metrics.h):
 * counted from the listener's record of each finished connection (main
 * loop); the running and queued transfers are read at scrape time from the
 * listener's atomic counts (fota_legacy_stats). */
#include "legacy_metrics.h"

#include <string.h>

#include "server.h"

static const char *const result_names[FOTA_LG_RESULTS] = {
    "ok", "client_closed", "stalled", "timeout", "bad_request", "no_image", "busy", "shed",
    "error", "shutdown",
};
static const char *const result_labels[FOTA_LG_RESULTS] = {
    "result=\"ok\"",          "result=\"client_closed\"", "result=\"stalled\"",
    "result=\"timeout\"",     "result=\"bad_request\"",   "result=\"no_image\"",
    "result=\"busy\"",        "result=\"shed\"",          "result=\"error\"",
    "result=\"shutdown\"",
};
static const char *const refused_labels[FOTA_LG_REFUSED_N] = {
    "listener=\"legacy\",reason=\"busy\"",
    "listener=\"legacy\",reason=\"timeout\"",
    "listener=\"legacy\",reason=\"shed\"",
};
static const char *const bytes_labels[] = { "endpoint=\"legacy\"" };

static const struct fota_metric_desc results_desc = {
    "fota_legacy_transfers_total",
    "Connections to the legacy port that ended, by result (docs/legacy.md).",
    FOTA_METRIC_COUNTER, FOTA_LG_RESULTS, result_labels
};
static const struct fota_metric_desc refused_desc =
    FOTA_METRIC_REFUSED(FOTA_LG_REFUSED_N, refused_labels);
static const struct fota_metric_desc bytes_desc = FOTA_METRIC_DOWNLOAD_BYTES(1, bytes_labels);
static const struct fota_metric_desc flight_desc = FOTA_METRIC_DOWNLOADS_IN_FLIGHT(0, NULL);
static const struct fota_metric_desc queued_desc = {
    "fota_legacy_queued", "Connections to the legacy port waiting for a transfer slot.",
    FOTA_METRIC_GAUGE, 0, NULL
};

static void flight_collect(void *ud, struct fota_metric_out *o)
{
    const struct fota_legacy_metrics *m = ud;
    unsigned active = 0;
    fota_legacy_stats(m->lg, &active, NULL, NULL);
    fota_metric_put(o, "endpoint=\"legacy\"", active);
}

static void queued_collect(void *ud, struct fota_metric_out *o)
{
    const struct fota_legacy_metrics *m = ud;
    unsigned queued = 0;
    fota_legacy_stats(m->lg, NULL, &queued, NULL);
    fota_metric_put(o, NULL, queued);
}

int fota_legacy_metrics_register(struct fota_server *srv, struct fota_legacy_metrics *m)
{
    int rc = fota_metric_register(srv, &results_desc, m->results);
    if (rc == 0)
        rc = fota_metric_register(srv, &refused_desc, m->refused);
    if (rc == 0)
        rc = fota_metric_register(srv, &bytes_desc, &m->bytes);
    if (rc == 0)
        rc = fota_metric_register_fn(srv, &flight_desc, flight_collect, m);
    return rc < 0 ? rc : fota_metric_register_fn(srv, &queued_desc, queued_collect, m);
}

void fota_legacy_metrics_record(struct fota_legacy_metrics *m, const struct fota_legacy_record *r)
{
    int i = 0;
    while (i < FOTA_LG_RESULTS && strcmp(r->result, result_names[i]) != 0)
        i++;
    fota_metric_inc(&m->results[i < FOTA_LG_RESULTS ? i : FOTA_LG_ERROR]);
    if (i == FOTA_LG_BUSY)
        fota_metric_inc(&m->refused[FOTA_LG_REFUSED_BUSY]);
    else if (i == FOTA_LG_TIMEOUT)
        fota_metric_inc(&m->refused[FOTA_LG_REFUSED_TIMEOUT]);
    else if (i == FOTA_LG_SHED)
        fota_metric_inc(&m->refused[FOTA_LG_REFUSED_SHED]);
    fota_metric_add(&m->bytes, r->bytes_sent);
}
