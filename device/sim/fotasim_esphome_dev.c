/* fotasim_esphome_dev.c - ESPHome on a fota-sim device (§9): the update
 * component polls its manifest (--url) every --checkin-interval, compares
 * the version as a string, and performs the update the way a fleet's YAML
 * automation would (update.perform once one is available): the manifest's
 * md5 and its ota.path joined to the manifest URL, then the flash of §9.2
 * (HTTP/1.1 keep-alive, Update.begin(Content-Length), the MD5 of the bytes
 * received compared in lower case, Update.end) and App.safe_reboot(). With
 * --md5-url or --md5 the device runs the ota.http_request.flash action on
 * --url instead. */
#include <stdio.h>
#include <string.h>

#include "fota_str.h"
#include "fotasim_ardsk.h"
#include "fotasim_dev.h"
#include "fotasim_esphome.h"

enum { ES_MANIFEST = 1, ES_MD5, ES_FLASH };

/* ---- the device ---- */

static struct fotasim_esph *es_of(struct fotasim_dev *d)
{
    return &d->u.ard.p.esph;
}

static void poll_later(struct fotasim_dev *d)
{
    fotasim_dev_timer(d, FOTASIM_ARD_TIMER_SK1, d->sim->o.checkin_s * 1000u);
}

static void failed(struct fotasim_dev *d, const char *what, int code)
{
    char why[96];
    snprintf(why, sizeof(why), "esphome: %s (0x%02X)", what, (unsigned)code);
    d->u.ard.failures++;
    fotasim_ardsk_settle(d, 0, why);
    if (!d->halted)
        poll_later(d);
}

static void es_start(struct fotasim_dev *d)
{
    memset(es_of(d), 0, sizeof(*es_of(d)));
    if ((d->sim->o.md5_url || d->sim->o.md5) && d->u.ard.on_target) {
        fotasim_ardsk_settle(d, 1, NULL);        /* the flash action ran: nothing to poll */
        return;
    }
    fotasim_dev_timer(d, FOTASIM_ARD_TIMER_SK1, 1000u + fotasim_dev_random(d) % 1000u);
}

static void es_timer(struct fotasim_dev *d, int id)
{
    const struct fotasim_opts *o = &d->sim->o;
    struct fotasim_esph *e = es_of(d);
    char url[FOTASIM_URL_MAX];

    if (id != FOTASIM_ARD_TIMER_SK1)
        return;
    if (fotasim_ardsk_url_or_fail(d, "--url", o->url, url, sizeof(url)) < 0)
        return;
    e->polls++;
    if (o->md5_url) {                            /* the flash action with md5_url */
        char mu[FOTASIM_URL_MAX];
        fota_str_copy(e->fw_url, sizeof(e->fw_url), url);
        if (fotasim_ardsk_url_or_fail(d, "--md5-url", o->md5_url, mu, sizeof(mu)) < 0)
            return;
        e->phase = ES_MD5;
        fotasim_ard_get(d, mu);
    } else if (o->md5) {                         /* the flash action with md5 */
        e->phase = ES_FLASH;
        fotasim_ard_flash(d, url, o->md5);
    } else {
        e->phase = ES_MANIFEST;
        fotasim_ard_get(d, url);
    }
}

/* The manifest: string-equal version -> nothing; else perform. */
static void on_manifest(struct fotasim_dev *d, const struct fotasim_ard_result *r)
{
    struct fotasim_esph *e = es_of(d);
    struct fotasim_manifest m;
    char url[FOTASIM_URL_MAX], base[FOTASIM_URL_MAX];
    const char *why;

    if (r->result < 200 || r->result >= 300 || r->content_length < 0) {
        failed(d, "manifest request failed", r->result < 0 ? 0x12 : (unsigned)r->result & 0xFF);
        return;
    }
    if (fotasim_esphome_manifest((const char *)r->body, r->body_len, &m, &why) < 0) {
        failed(d, why, 0);
        return;
    }
    fota_str_copy(e->manifest_version, sizeof(e->manifest_version), m.version);
    if (!m.version[0] || strcmp(m.version, d->version) == 0) {
        fotasim_ardsk_settle(d, 1, NULL);        /* no update */
        if (!d->halted)
            poll_later(d);
        return;
    }
    fotasim_ardsk_url(d, d->sim->o.url, base, sizeof(base));
    if (fotasim_esphome_join(base, m.path, url, sizeof(url)) < 0) {
        failed(d, "ota.path does not fit", 0x11);
        return;
    }
    fota_str_copy(e->fw_url, sizeof(e->fw_url), url);
    fota_str_copy(e->md5, sizeof(e->md5), m.md5);
    e->phase = ES_FLASH;
    if (d->t_start <= 0)
        d->t_start = (float)fotasim_fleet_elapsed(d->sim);
    fotasim_ard_flash(d, url, m.md5);
}

/* md5_url: 2xx, a Content-Length that is not 0 and not below 32; the first
 * 32 bytes are the MD5 (-1, absent, passes as (size_t)-1). */
static void on_md5(struct fotasim_dev *d, const struct fotasim_ard_result *r)
{
    struct fotasim_esph *e = es_of(d);
    if (r->result < 200 || r->result >= 300 || r->content_length == 0 ||
        (r->content_length > 0 && r->content_length < 32) || r->body_len < 32) {
        failed(d, "MD5 invalid", 0x10);
        return;
    }
    fota_str_copy_n(e->md5, sizeof(e->md5), (const char *)r->body, 32);
    e->phase = ES_FLASH;
    fotasim_ard_flash(d, e->fw_url, e->md5);
}

static void es_result(struct fotasim_dev *d, const struct fotasim_ard_result *r)
{
    struct fotasim_esph *e = es_of(d);

    if (r->op == FOTASIM_ARD_OP_GET && e->phase == ES_MANIFEST) {
        on_manifest(d, r);
    } else if (r->op == FOTASIM_ARD_OP_GET && e->phase == ES_MD5) {
        on_md5(d, r);
    } else if (r->op == FOTASIM_ARD_OP_FLASH) {
        if (r->result == 0) {
            d->u.ard.failures = 0;
            fotasim_ard_restart(d, 10);          /* App.safe_reboot() */
            return;
        }
        failed(d, r->result == 0x8B ? "MD5 mismatch" : r->result == 0x88 ? "not enough space"
                  : r->result == 0x12 ? "connection error" : r->result == 0x84 ? "update end failed"
                  : r->result == 0x83 ? "write error" : "update failed", r->result);
    }
}

const struct fotasim_sketch fotasim_esphome_dev_sketch = {
    "esphome", es_start, es_timer, es_result, NULL,
};
