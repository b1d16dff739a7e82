/* legacy_metrics.h - the legacy module's metrics (docs/metrics.md): every
 * finished connection by result, the bytes it sent, the refusals among them
 * (busy, timeout, shed) and the transfers running and queued. */
#ifndef FOTA_LEGACY_METRICS_H
#define FOTA_LEGACY_METRICS_H

#include "legacy.h"
#include "metric.h"

struct fota_server;

/* The results of struct fota_legacy_record, in legacy.h's order. */
enum {
    FOTA_LG_OK, FOTA_LG_CLIENT_CLOSED, FOTA_LG_STALLED, FOTA_LG_TIMEOUT, FOTA_LG_BAD_REQUEST,
    FOTA_LG_NO_IMAGE, FOTA_LG_BUSY, FOTA_LG_SHED, FOTA_LG_ERROR, FOTA_LG_SHUTDOWN,
    FOTA_LG_RESULTS
};
enum { FOTA_LG_REFUSED_BUSY, FOTA_LG_REFUSED_TIMEOUT, FOTA_LG_REFUSED_SHED, FOTA_LG_REFUSED_N };

/* Lives in the module's state. */
struct fota_legacy_metrics {
    const struct fota_legacy *lg;      /* for the running and queued counts */
    struct fota_metric results[FOTA_LG_RESULTS];
    struct fota_metric refused[FOTA_LG_REFUSED_N];
    struct fota_metric bytes;
};

/* Registers m (m->lg set) with srv: module start. 0 or the registry's error. */
int fota_legacy_metrics_register(struct fota_server *srv, struct fota_legacy_metrics *m);
/* Counts one finished connection (the listener's record callback). */
void fota_legacy_metrics_record(struct fota_legacy_metrics *m, const struct fota_legacy_record *r);

#endif
