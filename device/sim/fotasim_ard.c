/* fotasim_ard.c - the ESP8266 Arduino core on a fota-sim device: boot
 * (eboot's copy from RTC memory's command, the ROM and eboot checks, the
 * sketch's size, MD5 and version), and the core's HTTP engine on the
 * device's download connection: ESPhttpUpdate.update() (request bytes per
 * core line, the response header, the decision, 4 peeked bytes, the
 * updater, the core's timeouts) and ESPHome's GETs (keep-alive, a body
 * into memory, or into the updater with MD5). The sketch decides what to
 * call and when (struct fotasim_sketch). */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/evp.h>

#include "arduino_img.h"
#include "fota_str.h"
#include "fotasim_dev.h"
#include "hex.h"

enum { PH_IDLE = 0, PH_CONNECTING, PH_HEADER, PH_PEEK, PH_BODY };

#define CONNECT_MS 8000u            /* ESP8266HTTPUpdate's client timeout (§2.3) */
#define ESPHOME_TIMEOUT_MS 4500u    /* http_request's default timeout (§9.1) */
#define ESPHOME_CHUNK 256u          /* ota_http_request reads 256 bytes at a time */

static struct fotasim_ard *ard_of(struct fotasim_dev *d)
{
    return &d->u.ard;
}

static int esphome_op(int op)
{
    return op == FOTASIM_ARD_OP_GET || op == FOTASIM_ARD_OP_FLASH;
}

/* The timeout of one wait: connect and header 8 s (ESPHome 4.5 s); the
 * updater's stall 60 s from core 3.0, about 16 s before (§2.3). */
static uint32_t wait_ms(const struct fotasim_ard *a)
{
    if (esphome_op(a->op))
        return ESPHOME_TIMEOUT_MS;
    if (a->phase == PH_BODY)
        return a->env.core >= FOTASIM_CORE_30 ? 60000u : 16100u;
    return CONNECT_MS;
}

/* The wait is scaled like every device timer, but never below one real
 * second: a loaded host (a thousand devices, a sanitizer) must not turn
 * into timeouts the device would not see. */
static void arm(struct fotasim_dev *d)
{
    double floor_ms = 1000.0 * d->sim->o.time_scale, ms = wait_ms(ard_of(d));
    fotasim_dev_timer(d, FOTASIM_ARD_TIMER_HTTP, (uint32_t)(ms < floor_ms ? floor_ms : ms));
}

/* ---- ending an operation ---- */

static void md5_free(struct fotasim_ard *a)
{
    if (a->md5)
        EVP_MD_CTX_free(a->md5);
    a->md5 = NULL;
}

/* Ends the operation with r (the connection closes unless it may be kept
 * for ESPHome's next GET) and tells the sketch. */
static void finish_op(struct fotasim_dev *d, struct fotasim_ard_result *r)
{
    struct fotasim_ard *a = ard_of(d);

    fotasim_dev_timer(d, FOTASIM_ARD_TIMER_HTTP, 0);
    if (!(a->keep && esphome_op(a->op) && d->conn[FOTASIM_CONN_DL].up))
        fotasim_dev_close(d, FOTASIM_CONN_DL);
    md5_free(a);
    r->op = a->op;
    a->op = FOTASIM_ARD_OP_NONE;
    a->phase = PH_IDLE;
    if (r->op == FOTASIM_ARD_OP_UPDATE) {
        a->checkins++;
        a->last_result = r->result;
        a->failures = r->result == FOTASIM_UPDATE_FAILED ? a->failures + 1 : 0;
    }
    fotasim_dev_log(d, "op %d done: result %d err %d %s", r->op, r->result, r->err,
                    r->errstr ? r->errstr : "");
    if (a->sketch->on_result)
        a->sketch->on_result(d, r);
}

/* ESPhttpUpdate's FAILED with error err (getLastError / String). */
static void update_failed(struct fotasim_dev *d, int err)
{
    struct fotasim_ard *a = ard_of(d);
    struct fotasim_ard_result r;

    a->last_error = err;
    fotasim_ardupd_error_string(a->env.core, err, &a->upd, a->last_errstr, sizeof(a->last_errstr));
    memset(&r, 0, sizeof(r));
    r.result = FOTASIM_UPDATE_FAILED;
    r.err = err;
    r.errstr = a->last_errstr;
    finish_op(d, &r);
}

static void update_done(struct fotasim_dev *d, int result)
{
    struct fotasim_ard *a = ard_of(d);
    struct fotasim_ard_result r;

    memset(&r, 0, sizeof(r));
    r.result = result;
    r.err = a->last_error;               /* NO_UPDATES and OK leave it as it was */
    r.errstr = a->last_errstr;
    finish_op(d, &r);
}

/* ESPHome's result: 0 or its OTA error code (or, for a GET, the status). */
static void esphome_done(struct fotasim_dev *d, int result)
{
    struct fotasim_ard *a = ard_of(d);
    struct fotasim_ard_result r;

    memset(&r, 0, sizeof(r));
    r.result = result;
    r.body = a->body;
    r.body_len = a->body_len;
    r.content_length = a->resp.content_length;
    finish_op(d, &r);
}

/* ---- starting one ---- */

static int resolve(const char *host, char *out, size_t cap)
{
    struct addrinfo hints, *ai = NULL;
    int rc = -1;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, NULL, &hints, &ai) == 0 &&
        getnameinfo(ai->ai_addr, ai->ai_addrlen, out, (socklen_t)cap, NULL, 0, NI_NUMERICHOST) == 0)
        rc = 0;
    if (ai)
        freeaddrinfo(ai);
    return rc;
}

static void send_request(struct fotasim_dev *d)
{
    struct fotasim_ard *a = ard_of(d);
    int n;

    if (a->op == FOTASIM_ARD_OP_UPDATE) {
        struct fotasim_ardreq q;
        memset(&q, 0, sizeof(q));
        q.core = a->env.core;
        q.url = &a->url;
        q.chip_id = a->chip_id;
        fota_str_copy(q.sta_mac, sizeof(q.sta_mac), a->sta_mac);
        fota_str_copy(q.ap_mac, sizeof(q.ap_mac), a->ap_mac);
        q.free_space = fotasim_ardenv_free_space(&a->env);
        q.sketch_size = a->sk.size;
        fota_str_copy(q.sketch_md5, sizeof(q.sketch_md5), a->sk.md5);
        q.chip_size = a->env.chip_size;
        q.sdk_version = d->sim->o.sdk_version ? d->sim->o.sdk_version
                        : a->env.core >= FOTASIM_CORE_27 ? "2.2.2-dev(38a443e)" : "2.2.1(cfd48f3)";
        q.mode = "sketch";
        q.version = a->version_arg;
        n = fotasim_ardreq_build(a->req, sizeof(a->req), &q);
    } else {
        n = fotasim_esphome_req_build(a->req, sizeof(a->req), &a->url, NULL);
    }
    fotasim_ardresp_init(&a->resp);
    a->phase = PH_HEADER;
    arm(d);
    if (n < 0 || fotasim_dev_send(d, FOTASIM_CONN_DL, a->req, (size_t)n) < 0) {
        if (a->op == FOTASIM_ARD_OP_UPDATE)
            update_failed(d, FOTASIM_HTTPC_SEND_HEADER_FAILED);
        else
            esphome_done(d, a->op == FOTASIM_ARD_OP_GET ? FOTASIM_HTTPC_SEND_HEADER_FAILED : 0x12);
    }
}

static void start_op(struct fotasim_dev *d, int op, const char *url)
{
    struct fotasim_ard *a = ard_of(d);
    struct fotasim_url u;
    int same;

    if (a->op != FOTASIM_ARD_OP_NONE)
        return;                          /* one request at a time, as the core's loop() */
    a->op = op;
    a->npeek = 0;
    a->got = 0;
    a->body_len = 0;
    if (fotasim_url_parse(url, &u) < 0 || u.https) {
        /* HTTPClient::begin fails: update() gives -1 "connection failed" */
        if (op == FOTASIM_ARD_OP_UPDATE)
            update_failed(d, FOTASIM_HTTPC_CONNECTION_FAILED);
        else
            esphome_done(d, op == FOTASIM_ARD_OP_GET ? FOTASIM_HTTPC_CONNECTION_FAILED : 0x11);
        return;
    }
    same = a->keep && d->conn[FOTASIM_CONN_DL].up && strcmp(u.host, a->url.host) == 0 &&
           u.port == a->url.port;
    a->url = u;
    a->keep = esphome_op(op);            /* setReuse(true) for ESPHome, false for ESPhttpUpdate */
    if (same) {
        send_request(d);
        return;
    }
    fotasim_dev_close(d, FOTASIM_CONN_DL);
    if (resolve(u.host, a->host_ip, sizeof(a->host_ip)) < 0 ||
        fotasim_dev_connect(d, FOTASIM_CONN_DL, a->host_ip, u.port) < 0) {
        if (op == FOTASIM_ARD_OP_UPDATE)
            update_failed(d, FOTASIM_HTTPC_CONNECTION_FAILED);
        else
            esphome_done(d, op == FOTASIM_ARD_OP_GET ? FOTASIM_HTTPC_CONNECTION_FAILED : 0x12);
        return;
    }
    a->phase = PH_CONNECTING;
    arm(d);
}

void fotasim_ard_update(struct fotasim_dev *d, const char *url, const char *version)
{
    fota_str_copy(ard_of(d)->version_arg, sizeof(ard_of(d)->version_arg), version);
    start_op(d, FOTASIM_ARD_OP_UPDATE, url);
}

void fotasim_ard_get(struct fotasim_dev *d, const char *url)
{
    start_op(d, FOTASIM_ARD_OP_GET, url);
}

void fotasim_ard_flash(struct fotasim_dev *d, const char *url, const char *md5)
{
    fota_str_copy(ard_of(d)->want_md5, sizeof(ard_of(d)->want_md5), md5);
    start_op(d, FOTASIM_ARD_OP_FLASH, url);
}

/* ---- ESPhttpUpdate's body ---- */

/* runUpdate after the 4 peeked bytes: begin, setMD5, writeStream's check,
 * then the peeked bytes are the first ones written. */
static int run_update(struct fotasim_dev *d)
{
    struct fotasim_ard *a = ard_of(d);
    struct fotadev_flash_ops f = fotasim_flash_ops(&d->flash);
    int rc = fotasim_upd_begin(&a->upd, &a->env, &f, (uint32_t)a->len);

    if (rc != 0) {
        update_failed(d, rc < 0 ? a->upd.error : rc);    /* still running: error 0, "" */
        return -1;
    }
    if (a->resp.x_md5[0] && fotasim_upd_set_md5(&a->upd, a->resp.x_md5) < 0) {
        update_failed(d, FOTASIM_UE_SERVER_FAULTY_MD5);  /* the updater stays running */
        return -1;
    }
    if (fotasim_upd_check_first(&a->upd, a->peek[0]) != 0) {
        update_failed(d, FOTASIM_UPD_MAGIC_BYTE);
        return -1;
    }
    a->phase = PH_BODY;
    arm(d);
    return 0;
}

static void update_end(struct fotasim_dev *d)
{
    struct fotasim_ard *a = ard_of(d);
    struct fotasim_ebcmd cmd;
    int rc = fotasim_upd_end(&a->upd, &cmd);

    if (rc != 0) {
        update_failed(d, rc);
        return;
    }
    a->rtc_cmd = cmd;                    /* eboot_command_write: RTC memory */
    if (d->t_start <= 0)
        d->t_start = (float)fotasim_fleet_elapsed(d->sim);
    update_done(d, FOTASIM_UPDATE_OK);
}

static void update_body(struct fotasim_dev *d, const uint8_t *p, size_t n)
{
    struct fotasim_ard *a = ard_of(d);

    if (a->phase == PH_PEEK) {
        while (n > 0 && a->npeek < 4) {
            a->peek[a->npeek++] = *p++;
            n--;
        }
        if (a->npeek < 4)
            return;
        {
            int e = fotasim_ardupd_check4(a->peek, &a->env);
            if (e != 0) {
                update_failed(d, e);
                return;
            }
        }
        if (run_update(d) < 0 || fotasim_upd_write(&a->upd, a->peek, 4) < 0) {
            if (a->op != FOTASIM_ARD_OP_NONE)
                update_failed(d, a->upd.error);
            return;
        }
    }
    if (n > 0 && fotasim_upd_write(&a->upd, p, n) < 0) {
        update_failed(d, a->upd.error);
        return;
    }
    arm(d);                              /* progress: the stall timer starts again */
    if (fotasim_upd_remaining(&a->upd) == 0)
        update_end(d);                   /* bytes past Content-Length are ignored */
}

static void update_header_done(struct fotasim_dev *d)
{
    struct fotasim_ard *a = ard_of(d);
    int v = fotasim_ardresp_verdict(&a->resp), err, res;

    res = fotasim_ardupd_decide(&a->resp, v ? v : a->resp.status, &a->env, &err, &a->len);
    if (res == FOTASIM_UPDATE_FAILED)
        update_failed(d, err);
    else if (res == FOTASIM_UPDATE_NO_UPDATES)
        update_done(d, FOTASIM_UPDATE_NO_UPDATES);
    else
        a->phase = PH_PEEK;              /* 200 that fits: peek 4 bytes (wait up to 8 s) */
}

/* ---- ESPHome's bodies ---- */

static void esphome_header_done(struct fotasim_dev *d)
{
    struct fotasim_ard *a = ard_of(d);
    int v = fotasim_ardresp_verdict(&a->resp);
    struct fotadev_flash_ops f = fotasim_flash_ops(&d->flash);

    if (v < 0 || a->resp.status < 200 || a->resp.status >= 300) {
        esphome_done(d, a->op == FOTASIM_ARD_OP_GET ? (v < 0 ? v : a->resp.status) : 0x12);
        return;
    }
    /* getSize(): -1 when absent, taken as (size_t)-1 */
    a->len = a->resp.content_length < 0 ? 0xFFFFFFFFl : a->resp.content_length;
    a->keep = a->keep && a->resp.content_length >= 0 && a->resp.can_reuse;
    a->phase = PH_BODY;
    if (a->op == FOTASIM_ARD_OP_FLASH) {
        int rc = fotasim_upd_begin(&a->upd, &a->env, &f, (uint32_t)a->len);
        if (rc != 0) {
            int e = rc < 0 ? a->upd.error : rc;
            esphome_done(d, e == FOTASIM_UPD_SPACE ? 0x88 : e == FOTASIM_UPD_FLASH_CONFIG ? 0x86
                            : e == FOTASIM_UPD_NEW_FLASH_CONFIG ? 0x87 : 0xFF);
            return;
        }
        if (!(a->md5 = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(a->md5, EVP_md5(), NULL)) {
            esphome_done(d, 0xFF);
            return;
        }
    }
    if (a->len == 0 && a->op == FOTASIM_ARD_OP_GET)
        esphome_done(d, a->resp.status);
}

static void esphome_flash_end(struct fotasim_dev *d)
{
    struct fotasim_ard *a = ard_of(d);
    struct fotasim_ebcmd cmd;
    uint8_t dg[16];
    char got[33];

    EVP_DigestFinal_ex(a->md5, dg, NULL);
    fota_hex_encode(dg, sizeof(dg), got);
    if (strncmp(got, a->want_md5, 32) != 0) {      /* lower-case digest, strncmp */
        fotasim_upd_reset(&a->upd);
        esphome_done(d, 0x8B);
        return;
    }
    fotasim_upd_set_md5(&a->upd, a->want_md5);
    if (fotasim_upd_end(&a->upd, &cmd) != 0) {
        esphome_done(d, 0x84);
        return;
    }
    a->rtc_cmd = cmd;
    esphome_done(d, 0);
}

static void esphome_body(struct fotasim_dev *d, const uint8_t *p, size_t n)
{
    struct fotasim_ard *a = ard_of(d);
    size_t k = (unsigned long)(a->len - a->got) < n ? (size_t)(a->len - a->got) : n;

    if (a->op == FOTASIM_ARD_OP_GET) {
        size_t room = sizeof(a->body) - a->body_len;
        memcpy(a->body + a->body_len, p, k < room ? k : room);
        a->body_len += k < room ? k : room;
        a->got += (long)k;
        if (a->got >= a->len || a->body_len == sizeof(a->body))
            esphome_done(d, a->resp.status);
        else
            arm(d);
        return;
    }
    if (fotasim_upd_write(&a->upd, p, k) < 0) {
        esphome_done(d, 0x83);
        return;
    }
    EVP_DigestUpdate(a->md5, p, k);
    a->got += (long)k;
    arm(d);
    if (a->got >= a->len)
        esphome_flash_end(d);
}

/* ---- the connection ---- */

static void on_data(struct fotasim_dev *d, int c, const uint8_t *p, size_t n)
{
    struct fotasim_ard *a = ard_of(d);

    if (c != FOTASIM_CONN_DL || a->op == FOTASIM_ARD_OP_NONE)
        return;
    if (a->phase == PH_HEADER) {
        int used = fotasim_ardresp_feed(&a->resp, p, n);
        if (used < 0) {
            arm(d);                      /* 8 s (4.5 s) after the last byte */
            return;
        }
        p += used;
        n -= (size_t)used;
        if (a->op == FOTASIM_ARD_OP_UPDATE)
            update_header_done(d);
        else
            esphome_header_done(d);
        if (a->op == FOTASIM_ARD_OP_NONE)
            return;
    }
    if (n == 0)
        return;
    if (a->op == FOTASIM_ARD_OP_UPDATE)
        update_body(d, p, n);
    else if (a->phase == PH_BODY)
        esphome_body(d, p, n);
}

static void on_connect(struct fotasim_dev *d, int c, int err)
{
    struct fotasim_ard *a = ard_of(d);
    if (c != FOTASIM_CONN_DL || a->phase != PH_CONNECTING)
        return;
    if (err < 0) {
        if (a->op == FOTASIM_ARD_OP_UPDATE)
            update_failed(d, FOTASIM_HTTPC_CONNECTION_FAILED);
        else
            esphome_done(d, a->op == FOTASIM_ARD_OP_GET ? FOTASIM_HTTPC_CONNECTION_FAILED : 0x12);
        return;
    }
    send_request(d);
}

/* The server closed. Before the header's end: -5. In ESPhttpUpdate's body
 * the client does not take the close as the end: the peek or the stall
 * timer ends it (§2.3). ESPHome's read fails: a connection error. */
static void on_close(struct fotasim_dev *d, int c)
{
    struct fotasim_ard *a = ard_of(d);

    if (c != FOTASIM_CONN_DL || a->op == FOTASIM_ARD_OP_NONE)
        return;
    if (a->phase == PH_HEADER || a->phase == PH_CONNECTING) {
        if (a->op == FOTASIM_ARD_OP_UPDATE)
            update_failed(d, FOTASIM_HTTPC_CONNECTION_LOST);
        else
            esphome_done(d, a->op == FOTASIM_ARD_OP_GET ? FOTASIM_HTTPC_CONNECTION_LOST : 0x12);
    } else if (a->phase == PH_PEEK) {
        update_failed(d, FOTASIM_UE_BIN_VERIFY_HEADER_FAILED);  /* fewer than 4 bytes */
    } else if (a->op == FOTASIM_ARD_OP_FLASH) {
        fotasim_upd_reset(&a->upd);
        esphome_done(d, 0x12);
    } else if (a->op == FOTASIM_ARD_OP_GET) {
        esphome_done(d, a->resp.status);
    }
}

static void http_timeout(struct fotasim_dev *d)
{
    struct fotasim_ard *a = ard_of(d);

    switch (a->phase) {
    case PH_CONNECTING:
        if (a->op == FOTASIM_ARD_OP_UPDATE)
            update_failed(d, FOTASIM_HTTPC_CONNECTION_FAILED);
        else
            esphome_done(d, a->op == FOTASIM_ARD_OP_GET ? FOTASIM_HTTPC_CONNECTION_FAILED : 0x12);
        break;
    case PH_HEADER:
        if (a->op == FOTASIM_ARD_OP_UPDATE)
            update_failed(d, FOTASIM_HTTPC_READ_TIMEOUT);
        else
            esphome_done(d, a->op == FOTASIM_ARD_OP_GET ? FOTASIM_HTTPC_READ_TIMEOUT : 0x12);
        break;
    case PH_PEEK:
        update_failed(d, FOTASIM_UE_BIN_VERIFY_HEADER_FAILED);
        break;
    case PH_BODY:
        if (a->op == FOTASIM_ARD_OP_UPDATE) {
            fotasim_upd_fail(&a->upd, FOTASIM_UPD_STREAM);      /* no progress */
            update_failed(d, FOTASIM_UPD_STREAM);
        } else if (a->op == FOTASIM_ARD_OP_FLASH) {
            fotasim_upd_reset(&a->upd);
            esphome_done(d, 0x12);
        } else {
            esphome_done(d, a->resp.status);
        }
        break;
    default:
        break;
    }
}

static void on_timer(struct fotasim_dev *d, int id)
{
    struct fotasim_ard *a = ard_of(d);
    if (id == FOTASIM_ARD_TIMER_HTTP)
        http_timeout(d);
    else if (a->sketch->on_timer)
        a->sketch->on_timer(d, id);
}

static uint32_t dl_due(const struct fotasim_dev *d)
{
    const struct fotasim_ard *a = &d->u.ard;
    if (a->phase != PH_BODY)
        return 0;
    if (a->op == FOTASIM_ARD_OP_UPDATE)
        return fotasim_upd_remaining(&a->upd);
    return a->len > a->got && a->len - a->got < 0x7FFFFFFF ? (uint32_t)(a->len - a->got) : 0;
}

/* ---- boot ---- */

void fotasim_ard_restart(struct fotasim_dev *d, uint32_t delay_ms)
{
    fotasim_dev_reboot(d, FOTASIM_RESTART, delay_ms);
}

int fotasim_ard_on_target(const struct fotasim_dev *d)
{
    const char *want = d->sim->o.upgrade_to, *v = d->version;
    size_t n;
    if (!want)
        return 0;
    if (strcmp(v, want) == 0)
        return 1;
    /* Tasmota: "14.4.1" matches "14.4.1(release-tasmota)", not a minimal build */
    n = strlen(want);
    return strncmp(v, want, n) == 0 && v[n] == '(' && !strstr(v + n, "minimal");
}

static void stop_sketch(struct fotasim_dev *d)
{
    struct fotasim_ard *a = ard_of(d);
    fotasim_upd_reset(&a->upd);
    md5_free(a);
    a->op = FOTASIM_ARD_OP_NONE;
    a->phase = PH_IDLE;
    if (a->sketch->stop)
        a->sketch->stop(d);
}

static void fw_boot(struct fotasim_dev *d)
{
    struct fotasim_ard *a = ard_of(d);
    struct fotadev_flash_ops f = fotasim_flash_ops(&d->flash);
    struct fotasim *s = d->sim;
    int rc = 0;

    stop_sketch(d);
    if (d->boot_kind == FOTASIM_POWER_LOSS || d->boot_kind == 0) {
        memset(&a->rtc_cmd, 0, sizeof(a->rtc_cmd));     /* RTC memory lost with the power */
        a->rtc_ota_loader = 0;
    }
    if (a->rtc_cmd.valid) {
        struct fotasim_ebcmd cmd = a->rtc_cmd;
        memset(&a->rtc_cmd, 0, sizeof(a->rtc_cmd));     /* eboot clears it before copying */
        rc = fotasim_eboot_copy(&f, &cmd);
        if (rc == FOTA_EIO || !d->flash.powered) {
            fotasim_dev_reboot(d, FOTASIM_POWER_LOSS, 100);
            return;
        }
        (void)fotasim_pool_adopt(&s->pool, &d->flash, 0, d->flash.nsec);
    }
    if (fotasim_eboot_sketch(&f, d->flash.size, &a->sk) < 0) {
        fotasim_dev_log_boot(d, FOTASIM_BOOT_NONE);
        fotasim_dev_finish(d, DEV_DEAD, "no bootable image");
        return;
    }
    fota_str_copy(d->version, sizeof(d->version), a->sk.version);
    fotasim_dev_log_boot(d, strcmp(d->version, s->o.initial_version) == 0 ? FOTASIM_BOOT_INITIAL
                            : fotasim_ard_on_target(d) ? FOTASIM_BOOT_TARGET : FOTASIM_BOOT_OTHER);
    a->env.sketch_size = a->sk.size;
    a->env.flash_mode = a->sk.flash_mode;
    a->env.size_code = a->sk.size_code;
    a->last_error = 0;                   /* a fresh boot: getLastError() is 0 */
    a->last_errstr[0] = '\0';
    memset(&a->upd, 0, sizeof(a->upd));
    /* on the target the device is done once its sketch has reached the
     * server with it (a check-in, INFO1, a manifest poll): the server's
     * confirmation comes from that contact */
    a->on_target = fotasim_ard_on_target(d);
    if (a->on_target && d->t_done <= 0)
        d->t_done = (float)fotasim_fleet_elapsed(s);
    if (d->state != DEV_DONE)
        d->state = DEV_RUNNING;
    if (d->faulty && !(d->fault_fired & FOTASIM_FIRED_FLASH) && d->flash_at >= 0) {
        d->fault_fired |= FOTASIM_FIRED_FLASH;
        d->flash.cut_at = d->flash.ops + d->flash_at;
    }
    a->sketch->start(d);
}

static void fw_cleanup(struct fotasim_dev *d)
{
    stop_sketch(d);
}

const struct fotasim_fw fotasim_ard_fw = {
    fw_boot, NULL, on_connect, on_data, on_close, on_timer, dl_due, fw_cleanup,
};

/* ---- set-up ---- */

static uint32_t chip_bytes(int code)
{
    return fota_arduino_flash_size((unsigned)code);
}

int fotasim_ard_init(struct fotasim *s, struct fotasim_dev *d, int idx,
                     const struct fotasim_sketch *sketch)
{
    struct fotasim_ard *a;
    uint32_t chip = chip_bytes(s->o.chip_size), fsize = (uint32_t)((s->factory_len + 4095) & ~(size_t)4095);
    int rc;

    if ((rc = fotasim_dev_init(s, d, idx, &fotasim_ard_fw, chip)) < 0)
        return rc;
    a = ard_of(d);
    a->sketch = sketch;
    /* Espressif's OUI; AP = STA with the locally administered bit; the chip
     * id is the MAC's low 24 bits (system_get_chip_id) */
    a->mac[0] = 0x5C;
    a->mac[1] = 0xCF;
    a->mac[2] = 0x7F;
    a->mac[3] = (uint8_t)(s->o.seed + (unsigned)(idx >> 16));
    a->mac[4] = (uint8_t)(idx >> 8);
    a->mac[5] = (uint8_t)idx;
    snprintf(a->sta_mac, sizeof(a->sta_mac), "%02X:%02X:%02X:%02X:%02X:%02X", a->mac[0], a->mac[1],
             a->mac[2], a->mac[3], a->mac[4], a->mac[5]);
    snprintf(a->ap_mac, sizeof(a->ap_mac), "%02X:%02X:%02X:%02X:%02X:%02X", a->mac[0] | 0x02,
             a->mac[1], a->mac[2], a->mac[3], a->mac[4], a->mac[5]);
    a->chip_id = (uint32_t)a->mac[3] << 16 | (uint32_t)a->mac[4] << 8 | a->mac[5];
    a->env.core = s->o.core;
    a->env.chip_size = chip;
    a->env.sketch_area = fsize + s->o.free_space;
    a->env.pubkey = s->pubkey;
    if (a->env.sketch_area > chip)
        return FOTA_ERANGE;
    if ((rc = fotasim_flash_program_shared(&d->flash, 0, s->factory, fsize)) < 0)
        return rc;
    return fotasim_dev_load_flash(d);
}
