/* devchan_metrics.c - the device channel's metrics (docs/metrics.md): the
 * connections open, the pauses of reading (rate limit, unread replies) and
 * the connections refused or closed by the channel, by reason (fota_refused_total{listener="device"}, which the HTTP server
 * and the legacy listener share). Bumped on the main loop, read by the
 * scrape on any loop. */
#include "devchan_int.h"

static const char *const refused_labels[FOTA_DC_REFUSED_N] = {
    [FOTA_DC_REFUSED_PER_ADDR] = "listener=\"device\",reason=\"per_addr\"",
    [FOTA_DC_REFUSED_DRAINING] = "listener=\"device\",reason=\"draining\"",
    [FOTA_DC_REFUSED_RESERVE] = "listener=\"device\",reason=\"reserve\"",
    [FOTA_DC_REFUSED_ANONYMOUS] = "listener=\"device\",reason=\"anonymous\"",
    [FOTA_DC_REFUSED_SHED] = "listener=\"device\",reason=\"shed\"",
    [FOTA_DC_REFUSED_HELLO_TIMEOUT] = "listener=\"device\",reason=\"hello_timeout\"",
    [FOTA_DC_REFUSED_BAD_FRAME] = "listener=\"device\",reason=\"bad_frame\"",
    [FOTA_DC_REFUSED_TOO_LONG] = "listener=\"device\",reason=\"too_long\"",
    [FOTA_DC_REFUSED_NOT_IDENTIFIED] = "listener=\"device\",reason=\"not_identified\"",
    [FOTA_DC_REFUSED_UNKNOWN_KEY] = "listener=\"device\",reason=\"unknown_key\"",
    [FOTA_DC_REFUSED_CONFLICT] = "listener=\"device\",reason=\"conflict\"",
    [FOTA_DC_REFUSED_OTHER] = "listener=\"device\",reason=\"other\"",
};

static const struct fota_metric_desc refused_desc =
    FOTA_METRIC_REFUSED(FOTA_DC_REFUSED_N, refused_labels);
static const struct fota_metric_desc conns_desc = {
    "fota_device_connections",
    "Device channel connections open (plain and TLS, identified or not).",
    FOTA_METRIC_GAUGE, 1, NULL
};

static const char *const paused_labels[] = { "reason=\"rate\"", "reason=\"unread\"" };
static const struct fota_metric_desc paused_desc = {
    "fota_device_paused_total",
    "Times the device channel stopped reading a connection: its device over device_msg_rate "
    "(rate), or its replies unread (unread).",
    FOTA_METRIC_COUNTER, 2, paused_labels
};

int fota_devchan_metrics_register(struct fota_devchan *ch)
{
    int rc = fota_metric_register(ch->srv, &conns_desc, &ch->m_conns);
    if (rc == 0)
        rc = fota_metric_register(ch->srv, &paused_desc, ch->m_paused);
    return rc < 0 ? rc : fota_metric_register(ch->srv, &refused_desc, ch->m_refused);
}

void fota_devchan_metrics_refused(struct fota_devchan *ch, int status)
{
    int r = status == 400 ? FOTA_DC_REFUSED_BAD_FRAME
          : status == 413 ? FOTA_DC_REFUSED_TOO_LONG
          : status == 401 ? FOTA_DC_REFUSED_NOT_IDENTIFIED
          : status == 403 ? FOTA_DC_REFUSED_UNKNOWN_KEY
          : status == 409 ? FOTA_DC_REFUSED_CONFLICT
          : FOTA_DC_REFUSED_OTHER;
    fota_metric_inc(&ch->m_refused[r]);
}
