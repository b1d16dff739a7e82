/* fotasim_app.c - the phone app's part of the stock protocol (§1) over
 * fotasim_api: registration, and the sys_upgrade / sys_reboot RPCs a user
 * would send as devices come online and report. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <jansson.h>

#include "fota_str.h"
#include "fotasim_app.h"
#include "fotasim_dev.h"

static void fail(struct fotasim_app *a, const char *what, int code, const char *body)
{
    a->errors++;
    if (!a->first_error[0])
        snprintf(a->first_error, sizeof(a->first_error), "%s: HTTP %d %.80s", what, code,
                 body ? body : "");
}

/* ud is the device; the app is its fleet's on_event_ud. */
static void registered_cb(void *ud, int code, const char *body)
{
    struct fotasim_dev *d = ud;
    struct fotasim_app *a = d->sim->on_event_ud;
    json_t *j = code == 200 ? json_loads(body, 0, NULL) : NULL;
    const char *key = j ? json_string_value(json_object_get(j, "master_device_key")) : NULL;
    json_t *dev = j ? json_object_get(j, "device") : NULL;

    if (key && strlen(key) == FOTADEV_KEY_LEN) {
        d->api_id = (long long)json_integer_value(json_object_get(dev, "id"));
        a->registered++;
        fotasim_esp_rekey(d, key);
        fotasim_dev_boot(d);
    } else {
        char why[96];
        fail(a, "device registration", code, body);
        snprintf(why, sizeof(why), "registration failed: HTTP %d %.60s", code, body);
        fotasim_dev_finish(d, DEV_FAILED, why);
    }
    json_decref(j);
}

int fotasim_app_register_all(struct fotasim_app *a)
{
    struct fotasim *s = a->s;
    char uri[160], body[160];
    int i, rc;

    snprintf(uri, sizeof(uri), "/v1/products/%s/devices/", s->o.product);
    for (i = 0; i < s->ndevs; i++) {
        const uint8_t *m = s->devs[i].u.esp.bssid;
        snprintf(body, sizeof(body),
                 "{\"name\": \"sim-%u-%d\", \"bssid\": \"%02x:%02x:%02x:%02x:%02x:%02x\"}",
                 s->o.seed, i, m[0], m[1], m[2], m[3], m[4], m[5]);
        if ((rc = fotasim_api_request(&a->api, "POST", uri, s->o.admin_key, body, registered_cb,
                                      &s->devs[i])) < 0)
            return rc;
    }
    return 0;
}

static void rpc_cb(void *ud, int code, const char *body)
{
    /* 504: the device did not answer in time; its own timers and the next
     * connection retry */
    if (code != 200 && code != 202)
        fail(ud, "rpc", code, body);
}

static void rpc(struct fotasim_app *a, struct fotasim_dev *d, const char *action)
{
    struct fotasim *s = a->s;
    char uri[200];
    /* the app waits for the device's reply 30 s (fotad's default) scaled
     * like the device timers, at least 5 s: a device that loses power
     * before replying must not hold the shared API connection for 30 s */
    double t = 30.0 / s->o.time_scale;
    unsigned wait_s = t < 5.0 ? 5u : t > 30.0 ? 30u : (unsigned)t;

    if (strcmp(action, "sys_upgrade") == 0)
        snprintf(uri, sizeof(uri),
                 "/v1/device/rpc/?deliver_to_device=true&action=sys_upgrade&version=%s&timeout=%u",
                 a->upgrade_to_enc, wait_s);
    else
        snprintf(uri, sizeof(uri), "/v1/device/rpc/?deliver_to_device=true&action=%s&timeout=%u",
                 action, wait_s);
    if (fotasim_api_request(&a->api, "GET", uri, d->u.esp.devkey, NULL, rpc_cb, a) < 0)
        fail(a, "rpc", 0, "cannot send");
}

/* What the user does as the device's events show in the app. */
static void on_event(void *ud, struct fotasim_dev *d, int ev, const char *what)
{
    struct fotasim_app *a = ud;
    struct fotasim *s = a->s;
    int pushes = a->have_api && s->o.upgrade_to && !s->o.await_push;

    switch (ev) {
    case FOTADEV_EV_CONNECTED:
        if (pushes && !d->u.esp.rpc_upgrade_sent && d->state == DEV_RUNNING)
            d->u.esp.rpc_on_rx = 1;                  /* asked once the server answered */
        break;
    case FOTASIM_EV_CHAN_RX:
        if (d->u.esp.rpc_on_rx && d->state == DEV_RUNNING) {
            /* the server answered the identify/activate: it has this
             * connection now (an RPC sent on TCP connect could still reach
             * the previous one, dead after a power cut, and time out) */
            d->u.esp.rpc_on_rx = 0;
            d->u.esp.rpc_upgrade_sent = 1;
            d->u.esp.rpc_upgrades++;
            rpc(a, d, "sys_upgrade");
        }
        break;
    case FOTADEV_EV_UPGRADE_DONE:
        if (pushes && s->o.profile != FOTADEV_PROFILE_SEED_DFU)
            rpc(a, d, "sys_reboot");          /* the app sees D7 and reboots it */
        break;
    case FOTADEV_EV_UPGRADE_FAILED:
        if (pushes && s->o.profile != FOTADEV_PROFILE_SEED_DFU &&
            d->u.esp.rpc_upgrades < s->o.max_attempts && d->flash.powered) {
            d->u.esp.rpc_upgrades++;                 /* the app tries again */
            rpc(a, d, "sys_upgrade");
        }
        break;
    default:
        break;
    }
}

int fotasim_app_init(struct fotasim_app *a, struct fotasim *s)
{
    memset(a, 0, sizeof(*a));
    a->s = s;
    s->on_event = on_event;
    s->on_event_ud = a;
    if (!s->o.admin_key)
        return 0;
    a->have_api = 1;
    if (s->o.upgrade_to && !(a->upgrade_to_enc = evhttp_uriencode(s->o.upgrade_to, -1, 0)))
        return FOTA_ENOMEM;
    return fotasim_api_init(&a->api, s->base, s->o.server, s->o.http_port);
}

void fotasim_app_cleanup(struct fotasim_app *a)
{
    if (a->have_api)
        fotasim_api_cleanup(&a->api);
    free(a->upgrade_to_enc);
    a->upgrade_to_enc = NULL;
}
