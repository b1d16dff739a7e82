/* fotadev_agent.c - the device behaviour on top of the HAL: keeps the
 * :8000 channel (D1-D7), runs the download of the profile in use (stock
 * NONOS HEAD/erase/GET, stock RTOS double GET, resumable FOTA GET, or the
 * seed's port-5555 client) into the inactive slot, and reboots on
 * sys_reboot only once the upgrade flag is FINISH, as libmain does. */
#include <string.h>

#include "fotadev.h"
#include "fota_str.h"

enum { PH_IDLE = 0, PH_HEAD, PH_FIRST_GET, PH_GET, PH_LEGACY };

#define RECON_MS 1000u          /* stock: recon_cb retries after 1 s */
#define SEED_RETRIES 5
#define SEED_ERASE_SECTORS (0x80 - 0x0c)
#define DL_RETRIES 8

static void logf_(struct fotadev_agent *a, int level, const char *msg)
{
    if (a->hal->log)
        a->hal->log(a->hal->ud, level, msg);
}

static void notify(struct fotadev_agent *a, int ev, int err, const char *what)
{
    if (a->hal->event)
        a->hal->event(a->hal->ud, ev, err, what);
}

int fotadev_agent_init(struct fotadev_agent *a, const struct fotadev_hal *hal,
                       const struct fotadev_agent_cfg *cfg)
{
    struct fotadev_chan_cfg cc;
    int rc;

    if (!hal || !cfg || !cfg->host || strlen(cfg->host) >= sizeof(a->host))
        return FOTA_EINVAL;
    memset(a, 0, sizeof(*a));
    a->hal = hal;
    a->profile = cfg->profile;
    fota_str_copy(a->host, sizeof(a->host), cfg->host);
    a->chan_port = cfg->chan_port;
    a->http_port = cfg->http_port;
    a->legacy_port = cfg->legacy_port;
    a->legacy_stream_ext = cfg->legacy_stream_ext;
    /* upgrade watchdogs (§3.5 #7): IoT_Demo 120 s, IOT_PLATFORM 1200 s */
    a->check_ms = cfg->check_ms ? cfg->check_ms
                : cfg->profile == FOTADEV_PROFILE_RTOS ? 1200000u
                : cfg->profile == FOTADEV_PROFILE_FOTA ? 600000u : 120000u;
    a->backoff = cfg->backoff;
    if (a->backoff.base_ms == 0) {
        a->backoff.base_ms = 1000;
        a->backoff.max_ms = 60000;
        a->backoff.jitter_pct = 50;
    }
    if ((rc = fotadev_layout_get(cfg->map, &a->lay)) < 0)
        return rc;
    memset(&cc, 0, sizeof(cc));
    cc.dialect = cfg->profile == FOTADEV_PROFILE_FOTA ? FOTADEV_DIALECT_JSON : FOTADEV_DIALECT_NONOS;
    cc.devkey = cfg->devkey;
    cc.token = cfg->token;
    memcpy(cc.bssid, cfg->bssid, 6);
    cc.version = cfg->version;
    cc.activated = cfg->activated;
    if ((rc = fotadev_chan_init(&a->chan, &cc)) < 0)
        return rc;
    a->running_slot = hal->running_slot(hal->ud);
    return 0;
}

/* ---- channel ---- */

static void chan_flush(struct fotadev_agent *a)
{
    size_t n;
    const char *p = fotadev_chan_tx(&a->chan, &n);
    if (n && a->conn_up[FOTADEV_CONN_CHAN])
        a->hal->tcp_send(a->hal->ud, FOTADEV_CONN_CHAN, p, n);
}

static void chan_connect(struct fotadev_agent *a)
{
    if (a->hal->tcp_connect(a->hal->ud, FOTADEV_CONN_CHAN, a->host, a->chan_port) < 0)
        fotadev_agent_on_connect(a, FOTADEV_CONN_CHAN, FOTA_EIO);
}

static void chan_retry(struct fotadev_agent *a)
{
    uint32_t ms = RECON_MS;
    if (a->profile == FOTADEV_PROFILE_FOTA)
        ms = fotadev_backoff_delay(&a->backoff, a->chan_attempts, a->hal->random(a->hal->ud));
    a->chan_attempts++;
    a->hal->timer(a->hal->ud, FOTADEV_TIMER_RECONNECT, ms);
}

/* IoT_Demo's esp_param: devkey[40], token[40], activeflag, pad[3]. */
static void save_activation(struct fotadev_agent *a)
{
    uint8_t p[84];
    if (!a->hal->sysparam_save || a->lay.privparam_sec == 0)
        return;
    memset(p, 0, sizeof(p));
    memcpy(p, a->chan.devkey, FOTADEV_KEY_LEN);
    memcpy(p + 40, a->chan.token, FOTADEV_KEY_LEN);
    p[80] = 1;
    if (a->hal->sysparam_save(a->hal->ud, (uint16_t)(a->lay.privparam_sec + 1), p, sizeof(p)) < 0)
        logf_(a, FOTA_LOG_WARN, "could not save the activation flag");
}

/* ---- download ---- */

static void dl_close(struct fotadev_agent *a)
{
    if (a->conn_up[FOTADEV_CONN_DL]) {
        a->conn_up[FOTADEV_CONN_DL] = 0;
        a->hal->tcp_close(a->hal->ud, FOTADEV_CONN_DL);
    }
}

static void dl_fail(struct fotadev_agent *a, int err, const char *why)
{
    int seed = a->profile == FOTADEV_PROFILE_SEED_DFU;
    if (a->dl_phase == PH_IDLE)
        return;
    a->dl_phase = PH_IDLE;
    a->upgrade_flag = FOTADEV_UPGRADE_IDLE;
    a->last_error = err;
    a->fail_reason = why;
    dl_close(a);
    a->hal->timer(a->hal->ud, FOTADEV_TIMER_WATCHDOG, 0);
    a->hal->timer(a->hal->ud, FOTADEV_TIMER_DL_RETRY, 0);
    logf_(a, FOTA_LOG_WARN, why);
    notify(a, FOTADEV_EV_UPGRADE_FAILED, err, why);
    if (seed) {                    /* firmware_upgrading_fail(): system_restart() */
        notify(a, FOTADEV_EV_RESTART, err, why);
        a->hal->restart(a->hal->ud);
        return;
    }
    if (fotadev_chan_report(&a->chan, 0) > 0)
        chan_flush(a);
}

static void dl_done(struct fotadev_agent *a)
{
    int rc = fotadev_ota_end(&a->ota, NULL);
    if (rc < 0) {
        dl_fail(a, rc, rc == FOTA_ECRC ? "image CRC mismatch" : "image check failed");
        return;
    }
    a->dl_phase = PH_IDLE;
    a->upgrade_flag = FOTADEV_UPGRADE_FINISH;
    dl_close(a);
    a->hal->timer(a->hal->ud, FOTADEV_TIMER_WATCHDOG, 0);
    notify(a, FOTADEV_EV_UPGRADE_DONE, 0, "image written and verified");
    if (a->profile == FOTADEV_PROFILE_SEED_DFU) {   /* disconnect cb: reboot into it */
        notify(a, FOTADEV_EV_REBOOT, 0, "seed: reboot for new firmware");
        a->hal->upgrade_reboot(a->hal->ud);
        return;
    }
    if (fotadev_chan_report(&a->chan, 1) > 0)
        chan_flush(a);
}

static void dl_connect(struct fotadev_agent *a)
{
    uint16_t port = a->dl_phase == PH_LEGACY ? a->legacy_port : a->http_port;
    a->header_done = 0;
    fotadev_http_resp_init(&a->resp);
    if (a->hal->tcp_connect(a->hal->ud, FOTADEV_CONN_DL, a->host, port) < 0)
        fotadev_agent_on_connect(a, FOTADEV_CONN_DL, FOTA_EIO);
}

static int dl_begin(struct fotadev_agent *a)
{
    int rc;
    if (a->upgrade_flag == FOTADEV_UPGRADE_START || a->dl_phase != PH_IDLE)
        return FOTA_EBUSY;       /* system_upgrade_start refuses a second start */
    a->target_slot = a->running_slot ^ 1;
    if ((rc = fotadev_ota_begin(&a->ota, &a->hal->flash, &a->lay, a->target_slot)) < 0)
        return rc;
    a->upgrade_flag = FOTADEV_UPGRADE_START;
    a->received = 0;
    a->sumlength = 0;
    a->dl_attempts = 0;
    notify(a, FOTADEV_EV_UPGRADE_START, 0, a->chan.upgrade_version);
    if (a->profile != FOTADEV_PROFILE_SEED_DFU)   /* dfu_ota.c arms no watchdog */
        a->hal->timer(a->hal->ud, FOTADEV_TIMER_WATCHDOG, a->check_ms);
    switch (a->profile) {
    case FOTADEV_PROFILE_NONOS: a->dl_phase = PH_HEAD; break;
    case FOTADEV_PROFILE_RTOS: a->dl_phase = PH_FIRST_GET; break;
    case FOTADEV_PROFILE_FOTA: a->dl_phase = PH_GET; break;
    case FOTADEV_PROFILE_SEED_DFU: {
        uint32_t n = SEED_ERASE_SECTORS * FOTADEV_SECTOR;
        a->dl_phase = PH_LEGACY;
        fotadev_legacy_init(&a->leg, a->legacy_stream_ext, !a->legacy_stream_ext);
        /* the seed erases 116 sectors before connecting (clamped to the slot) */
        if ((rc = fotadev_ota_erase(&a->ota, n < a->lay.slot_size ? n : a->lay.slot_size)) < 0)
            return rc;
        break;
    }
    }
    dl_connect(a);
    return 0;
}

static void dl_send_request(struct fotadev_agent *a)
{
    struct fotadev_http_req r;
    int n;

    if (a->dl_phase == PH_LEGACY) {
        uint8_t b = fotadev_legacy_hello(&a->leg, a->target_slot);
        a->hal->tcp_send(a->hal->ud, FOTADEV_CONN_DL, &b, 1);
        return;
    }
    memset(&r, 0, sizeof(r));
    r.style = a->profile == FOTADEV_PROFILE_RTOS ? FOTADEV_HTTP_RTOS
              : a->profile == FOTADEV_PROFILE_FOTA ? FOTADEV_HTTP_FOTA : FOTADEV_HTTP_NONOS;
    r.head = a->dl_phase == PH_HEAD;
    r.version = a->chan.upgrade_version;
    r.slot = a->target_slot;
    r.host = a->host;
    r.port = a->http_port;
    r.devkey = a->chan.devkey;
    r.range_from = a->profile == FOTADEV_PROFILE_FOTA ? fotadev_ota_offset(&a->ota) : 0;
    n = fotadev_http_request(a->req, sizeof(a->req), &r);
    if (n < 0) {
        dl_fail(a, n, "download request does not fit");
        return;
    }
    a->hal->tcp_send(a->hal->ud, FOTADEV_CONN_DL, a->req, (size_t)n);
}

/* Image bytes of the GET body (or the legacy stream). */
static void dl_body(struct fotadev_agent *a, const uint8_t *p, size_t n)
{
    int rc;
    if (n > a->sumlength - a->received) {
        if (a->profile != FOTADEV_PROFILE_RTOS) {
            dl_fail(a, FOTA_EPROTO, "more bytes than Content-Length");
            return;
        }
        n = a->sumlength - a->received;        /* RTOS trims the tail */
    }
    a->bytes_in += (uint32_t)n;
    if (n && (rc = fotadev_ota_update(&a->ota, p, n)) < 0) {
        dl_fail(a, rc, rc == FOTA_EMAGIC ? "error bin file"
                       : rc == FOTA_ESLOT ? "please check the bin file" : "image refused");
        return;
    }
    a->received += (uint32_t)n;
    if (a->received == a->sumlength)
        dl_done(a);
}

static void dl_header(struct fotadev_agent *a)
{
    uint32_t off = fotadev_ota_offset(&a->ota);
    struct fotadev_http_resp *h = &a->resp;

    if (a->dl_phase == PH_HEAD || a->dl_phase == PH_FIRST_GET) {
        if (h->content_length == 0 || h->content_length > a->lay.slot_size) {
            dl_fail(a, FOTA_ETOOBIG, "bad Content-Length");
            return;
        }
        a->sumlength = h->content_length;
        dl_close(a);
        if (fotadev_ota_erase(&a->ota, a->sumlength) < 0) {
            dl_fail(a, FOTA_EIO, "erase failed");
            return;
        }
        a->dl_phase = PH_GET;              /* reconnect and GET (again) */
        dl_connect(a);
        return;
    }
    if (a->profile == FOTADEV_PROFILE_FOTA) {
        if (h->status == 206 && h->range_start == off && off > 0) {
            notify(a, FOTADEV_EV_RESUME, 0, "resuming with Range");
        } else if (h->status == 200) {
            if (off > 0) {                 /* server ignored Range: start over */
                fotadev_ota_begin(&a->ota, &a->hal->flash, &a->lay, a->target_slot);
                a->received = 0;
            }
        } else {
            dl_fail(a, FOTA_EPROTO, "unexpected HTTP status");
            return;
        }
        a->sumlength = h->total;
    } else {
        /* stock reads only Content-Length (never the status code) */
        a->sumlength = h->content_length;
    }
    if (a->sumlength == 0 || a->sumlength > a->lay.slot_size)
        dl_fail(a, FOTA_ETOOBIG, "bad Content-Length");
}

/* Bounded strstr over one received segment (segments are not strings):
 * memchr finds each candidate first byte (the libc's fast scan). */
static const uint8_t *seg_find(const uint8_t *p, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    const uint8_t *end, *c;
    if (n == 0 || n > len)
        return n == 0 ? p : NULL;
    end = p + (len - n) + 1;               /* candidates start before end */
    for (c = p; c < end; c++) {
        c = memchr(c, (unsigned char)needle[0], (size_t)(end - c));
        if (!c)
            return NULL;
        if (memcmp(c, needle, n) == 0)
            return c;
    }
    return NULL;
}

/* libupgrade's "Content-Length: " ... "\r\n" -> atoi. 0 on any failure. */
static uint32_t seg_content_length(const uint8_t *p, size_t len)
{
    const uint8_t *c = seg_find(p, len, "Content-Length: "), *e;
    uint32_t v = 0;
    if (!c || !(e = seg_find(c + 16, len - (size_t)(c + 16 - p), "\r\n")))
        return 0;
    for (c += 16; c < e && *c >= '0' && *c <= '9'; c++)
        v = v * 10u + (uint32_t)(*c - '0');
    return v;
}

/* NONOS >= 2.0 libupgrade's upgrade_recv_sum: one segment of the HEAD
 * answer (§3.3). Substring rules, not an HTTP parser. */
static void nonos_head_segment(struct fotadev_agent *a, const uint8_t *p, size_t len)
{
    if (seg_find(p, len, "\r\n\r\n") != NULL && seg_find(p, len, "Content-Length") != NULL) {
        uint32_t sum = seg_content_length(p, len);
        if (sum == 0 || sum > a->lay.slot_size) {
            dl_fail(a, FOTA_ETOOBIG, "Content-Length: failed or too big");
            return;
        }
        a->sumlength = sum;
        dl_close(a);
        if (fotadev_ota_erase(&a->ota, sum) < 0) {
            dl_fail(a, FOTA_EIO, "erase failed");
            return;
        }
        a->dl_phase = PH_GET;              /* erase_sectors_cb: reconnect, GET */
        dl_connect(a);
    } else if (!seg_find(p, len, "200 OK\r\n")) {
        /* "server do not support HEAD method now send GET message": the
         * GET goes out on this connection and its answer is read as a
         * HEAD answer (erase, reconnect, GET again) */
        struct fotadev_http_req r;
        int n;
        memset(&r, 0, sizeof(r));
        r.style = FOTADEV_HTTP_NONOS;
        r.version = a->chan.upgrade_version;
        r.slot = a->target_slot;
        r.host = a->host;
        r.port = a->http_port;
        r.devkey = a->chan.devkey;
        n = fotadev_http_request(a->req, sizeof(a->req), &r);
        if (n > 0)
            a->hal->tcp_send(a->hal->ud, FOTADEV_CONN_DL, a->req, (size_t)n);
    }                                      /* else: "http head in process." */
}

/* NONOS >= 2.0 libupgrade's upgrade_download: one segment of the GET
 * answer (§3.3). The header tests run only where they decide something
 * (the first GET segment): a body segment costs one substring scan. */
static void nonos_get_segment(struct fotadev_agent *a, const uint8_t *p, size_t len)
{
    const uint8_t *hdr_end;

    if (a->received == 0 && !a->header_done && (hdr_end = seg_find(p, len, "\r\n\r\n")) != NULL &&
        seg_find(p, len, "Content-Length") != NULL) {
        uint32_t sum = seg_content_length(p, len);
        size_t hl = (size_t)(hdr_end + 4 - p);
        if (sum == 0 || sum > a->lay.slot_size) {
            dl_fail(a, FOTA_ETOOBIG, "Content-Length: failed or too big");
            return;
        }
        a->sumlength = sum;
        a->header_done = 1;                /* "upgrade file download start." */
        p += hl;
        len -= hl;
    } else if (seg_find(p, len, "200 OK\r\n")) {
        return;                            /* "http head in process..": dropped, even mid-image */
    } else if (!a->header_done) {
        /* stock counts and writes these bytes as image data without ever
         * learning sumlength: only the watchdog ends it */
        a->received += (uint32_t)len;
        return;
    }
    if (a->received > a->sumlength)        /* overshot: never equal, watchdog */
        return;
    if (len > a->sumlength - a->received) {
        /* totallength overshoots: never equal to sumlength, the watchdog fails it */
        a->received = a->sumlength + 1;
        return;
    }
    if (a->received == a->sumlength && a->sumlength)
        return;
    if (len < 4 && a->received + len == a->sumlength) {
        /* the CRC is read from the last 4 bytes of the final segment */
        dl_fail(a, FOTA_ECRC, "final segment shorter than the CRC");
        return;
    }
    dl_body(a, p, len);
}

static void dl_data(struct fotadev_agent *a, const uint8_t *p, size_t len)
{
    int rc;

    if (a->profile == FOTADEV_PROFILE_NONOS) {
        if (a->dl_phase == PH_HEAD)
            nonos_head_segment(a, p, len);
        else
            nonos_get_segment(a, p, len);
        return;
    }

    if (a->dl_phase == PH_LEGACY) {
        const uint8_t *body;
        size_t blen;
        /* the seed's server writes the length on its own: on a host socket
         * it can arrive coalesced with data, which a device would receive
         * as two segments */
        if (a->leg.state == FOTADEV_LEG_WAIT_LEN && a->leg.seed_strict && len > 4) {
            dl_data(a, p, 4);
            if (a->dl_phase == PH_LEGACY)
                dl_data(a, p + 4, len - 4);
            return;
        }
        rc = fotadev_legacy_feed(&a->leg, p, len, &body, &blen);
        if (rc < 0) {
            dl_fail(a, rc, rc == FOTA_ETOOBIG ? "seed receive buffer overflow (1280 bytes)"
                                              : "received length error");
            return;
        }
        if (a->leg.state == FOTADEV_LEG_DATA || a->leg.state == FOTADEV_LEG_DONE)
            a->sumlength = a->leg.length;
        if (a->sumlength > a->lay.slot_size) {
            dl_fail(a, FOTA_ETOOBIG, "image larger than the slot");
            return;
        }
        dl_body(a, body, blen);
        return;
    }
    if (!a->header_done) {
        rc = fotadev_http_resp_feed(&a->resp, (const char *)p, len);
        if (rc == FOTA_EAGAIN)
            return;
        if (rc < 0) {
            dl_fail(a, rc, "bad HTTP response header");
            return;
        }
        a->header_done = 1;
        dl_header(a);
        if (a->dl_phase != PH_GET || !a->header_done || !a->conn_up[FOTADEV_CONN_DL])
            return;
        p += rc;
        len -= (size_t)rc;
    }
    if (len)
        dl_body(a, p, len);
}

static void dl_closed(struct fotadev_agent *a)
{
    a->conn_up[FOTADEV_CONN_DL] = 0;
    if (a->dl_phase == PH_IDLE)
        return;
    if (a->profile == FOTADEV_PROFILE_FOTA && a->dl_phase == PH_GET && a->dl_attempts < DL_RETRIES) {
        uint32_t ms = fotadev_backoff_delay(&a->backoff, a->dl_attempts++, a->hal->random(a->hal->ud));
        a->hal->timer(a->hal->ud, FOTADEV_TIMER_DL_RETRY, ms);
        return;
    }
    dl_fail(a, FOTA_ECLOSED, a->dl_phase == PH_LEGACY ? "ota server disconnected"
                                                      : "download connection closed early");
}

/* ---- entry points ---- */

void fotadev_agent_start(struct fotadev_agent *a)
{
    if (a->profile == FOTADEV_PROFILE_SEED_DFU) {
        int rc = dl_begin(a);
        if (rc < 0)
            dl_fail(a, rc, "could not start the upgrade");
        return;
    }
    chan_connect(a);
}

void fotadev_agent_on_connect(struct fotadev_agent *a, int conn, int err)
{
    if (conn == FOTADEV_CONN_CHAN) {
        if (err < 0) {
            chan_retry(a);
            return;
        }
        a->conn_up[conn] = 1;
        a->chan_attempts = 0;
        notify(a, FOTADEV_EV_CONNECTED, 0, "channel connected");
        fotadev_chan_connected(&a->chan, a->hal->random(a->hal->ud));
        chan_flush(a);
        a->hal->timer(a->hal->ud, FOTADEV_TIMER_BEACON, FOTADEV_BEACON_MS);
        return;
    }
    if (conn != FOTADEV_CONN_DL || a->dl_phase == PH_IDLE)
        return;
    if (err < 0) {
        if (a->dl_phase == PH_LEGACY && a->dl_attempts < SEED_RETRIES) {
            a->dl_attempts++;              /* seed: retry after 1 s, 5 times */
            a->hal->timer(a->hal->ud, FOTADEV_TIMER_DL_RETRY, RECON_MS);
            return;
        }
        if (a->profile == FOTADEV_PROFILE_FOTA && a->dl_attempts < DL_RETRIES) {
            a->hal->timer(a->hal->ud, FOTADEV_TIMER_DL_RETRY,
                          fotadev_backoff_delay(&a->backoff, a->dl_attempts++, a->hal->random(a->hal->ud)));
            return;
        }
        dl_fail(a, err, "download connection failed");
        return;
    }
    a->conn_up[conn] = 1;
    dl_send_request(a);
}

void fotadev_agent_on_data(struct fotadev_agent *a, int conn, const void *data, size_t len)
{
    int act;

    if (conn == FOTADEV_CONN_DL) {
        if (a->dl_phase != PH_IDLE)
            dl_data(a, data, len);
        return;
    }
    act = fotadev_chan_feed(&a->chan, data, len);
    chan_flush(a);
    switch (act) {
    case FOTADEV_ACT_ACTIVATED:
        save_activation(a);
        notify(a, FOTADEV_EV_ACTIVATED, 0, "activated");
        break;
    case FOTADEV_ACT_ACTIVATE_FAILED:
        notify(a, FOTADEV_EV_ACTIVATE_FAILED, FOTA_EAUTH,
               a->chan.refusal[0] ? a->chan.refusal : "activation refused");
        break;
    case FOTADEV_ACT_REFUSED:
        notify(a, FOTADEV_EV_REFUSED, FOTA_EAUTH, a->chan.refusal[0] ? a->chan.refusal : "refused");
        break;
    case FOTADEV_ACT_UPGRADE: {
        int rc = dl_begin(a);
        if (rc < 0 && rc != FOTA_EBUSY)
            dl_fail(a, rc, "could not start the upgrade");
        break;
    }
    case FOTADEV_ACT_REBOOT:
        a->hal->timer(a->hal->ud, FOTADEV_TIMER_REBOOT, 1000);
        break;
    default:
        if (act < 0)
            logf_(a, FOTA_LOG_WARN, act == FOTA_ETOOBIG ? "push too large" : "bad push ignored");
        break;
    }
    /* every receive re-arms the 50 s beacon */
    a->hal->timer(a->hal->ud, FOTADEV_TIMER_BEACON, FOTADEV_BEACON_MS);
}

void fotadev_agent_on_close(struct fotadev_agent *a, int conn)
{
    if (conn == FOTADEV_CONN_DL) {
        dl_closed(a);
        return;
    }
    a->conn_up[FOTADEV_CONN_CHAN] = 0;
    a->hal->timer(a->hal->ud, FOTADEV_TIMER_BEACON, 0);
    chan_retry(a);
}

void fotadev_agent_on_timer(struct fotadev_agent *a, int id)
{
    switch (id) {
    case FOTADEV_TIMER_BEACON:
        if (!a->conn_up[FOTADEV_CONN_CHAN])
            return;
        if (fotadev_chan_beacon(&a->chan) == FOTADEV_ACT_DISCONNECT) {
            a->conn_up[FOTADEV_CONN_CHAN] = 0;
            a->hal->tcp_close(a->hal->ud, FOTADEV_CONN_CHAN);
            chan_retry(a);
            return;
        }
        chan_flush(a);
        a->hal->timer(a->hal->ud, FOTADEV_TIMER_BEACON, FOTADEV_BEACON_MS);
        break;
    case FOTADEV_TIMER_RECONNECT:
        chan_connect(a);
        break;
    case FOTADEV_TIMER_REBOOT:
        /* system_upgrade_reboot() is a no-op unless the flag is FINISH */
        if (a->upgrade_flag == FOTADEV_UPGRADE_FINISH) {
            notify(a, FOTADEV_EV_REBOOT, 0, "reboot to use the new slot");
            a->hal->upgrade_reboot(a->hal->ud);
        }
        break;
    case FOTADEV_TIMER_WATCHDOG:
        if (a->upgrade_flag != FOTADEV_UPGRADE_FINISH)
            dl_fail(a, FOTA_ETIMEDOUT, "upgrade timed out");
        break;
    case FOTADEV_TIMER_DL_RETRY:
        if (a->dl_phase != PH_IDLE && !a->conn_up[FOTADEV_CONN_DL])
            dl_connect(a);
        break;
    default:
        break;
    }
}

uint32_t fotadev_agent_dl_due(const struct fotadev_agent *a)
{
    if (a->dl_phase != PH_GET || !a->header_done || !a->conn_up[FOTADEV_CONN_DL] ||
        a->received >= a->sumlength)
        return 0;
    return a->sumlength - a->received;
}
