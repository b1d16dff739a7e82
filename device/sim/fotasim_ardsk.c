/* fotasim_ardsk.c - the plain Arduino sketch of fota-sim's arduino
 * profile: ESPhttpUpdate.update(client, --url, version) shortly after boot
 * and then every --checkin-interval; an update restarts the device at once
 * (rebootOnUpdate, the default), eboot copies the image, and the sketch
 * reports the new MD5 at its next check-in. */
#include <stdio.h>
#include <string.h>

#include "fota_str.h"
#include "fotasim_ardsk.h"
#include "fotasim_dev.h"

int fotasim_ardsk_url(const struct fotasim_dev *d, const char *tmpl, char *out, size_t cap)
{
    const struct fotasim_ard *a = &d->u.ard;
    size_t o = 0;
    char v[16];

    while (*tmpl && o < cap) {
        const char *put = NULL;
        size_t skip = 1;
        if (strncmp(tmpl, "{index}", 7) == 0) {
            snprintf(v, sizeof(v), "%d", d->idx);
            put = v, skip = 7;
        } else if (strncmp(tmpl, "{mac}", 5) == 0) {
            snprintf(v, sizeof(v), "%02x%02x%02x%02x%02x%02x", a->mac[0], a->mac[1], a->mac[2],
                     a->mac[3], a->mac[4], a->mac[5]);
            put = v, skip = 5;
        }
        if (put)
            o += fota_str_copy(out + o, cap - o, put);
        else
            out[o++] = *tmpl;
        tmpl += skip;
    }
    if (o >= cap)
        return -1;
    out[o] = '\0';
    return 0;
}

int fotasim_ardsk_url_or_fail(struct fotasim_dev *d, const char *option, const char *tmpl,
                              char *out, size_t cap)
{
    char why[64];

    if (fotasim_ardsk_url(d, tmpl, out, cap) == 0)
        return 0;
    snprintf(why, sizeof(why), "%s does not fit", option);
    fotasim_dev_finish(d, DEV_FAILED, why);
    return -1;
}

void fotasim_ardsk_settle(struct fotasim_dev *d, int ok, const char *reason)
{
    struct fotasim *s = d->sim;
    if (d->state != DEV_RUNNING)
        return;
    if (ok && (!s->o.upgrade_to || d->u.ard.on_target)) {
        fotasim_dev_finish(d, DEV_DONE, NULL);   /* checked in (on the target) */
        return;
    }
    if (ok)
        return;
    if (!s->o.upgrade_to)
        fotasim_dev_finish(d, DEV_FAILED, reason);
    else if (d->u.ard.failures >= s->o.max_attempts)
        fotasim_dev_finish(d, DEV_FAILED, reason);
    else
        fotasim_dev_set_reason(d, reason);
}

/* The sketch's first call comes after the network is up (1 s), spread over
 * up to another second so a fleet does not arrive in one instant. */
static void ck_start(struct fotasim_dev *d)
{
    fotasim_dev_timer(d, FOTASIM_ARD_TIMER_SK1, 1000u + fotasim_dev_random(d) % 1000u);
}

static void ck_timer(struct fotasim_dev *d, int id)
{
    const struct fotasim_opts *o = &d->sim->o;
    char url[FOTASIM_URL_MAX];
    if (id != FOTASIM_ARD_TIMER_SK1)
        return;
    if (fotasim_ardsk_url_or_fail(d, "--url", o->url, url, sizeof(url)) < 0)
        return;
    fotasim_ard_update(d, url, o->sketch_version ? o->sketch_version : d->version);
}

static void ck_result(struct fotasim_dev *d, const struct fotasim_ard_result *r)
{
    const struct fotasim_opts *o = &d->sim->o;
    char why[sizeof(d->reason)];

    if (r->op != FOTASIM_ARD_OP_UPDATE)
        return;
    if (r->result == FOTASIM_UPDATE_OK) {
        fotasim_ard_restart(d, 10);             /* rebootOnUpdate: ESP.restart() */
        return;
    }
    snprintf(why, sizeof(why), "update failed: %d %s", r->err, r->errstr ? r->errstr : "");
    fotasim_ardsk_settle(d, r->result == FOTASIM_UPDATE_NO_UPDATES, why);
    if (!d->halted)
        fotasim_dev_timer(d, FOTASIM_ARD_TIMER_SK1, o->checkin_s * 1000u);
}

const struct fotasim_sketch fotasim_ardsk_checkin = {
    "arduino", ck_start, ck_timer, ck_result, NULL,
};
