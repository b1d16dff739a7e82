/* mqtt_module.c - the mqtt module (mqtt.h): its setting public_url, one
 * fleet (client and devices) per arduino product whose settings name a
 * broker, kept in step with those settings (checked once a second when the
 * store's catalog changed, and at once after a change through the route),
 * the hub subscriptions and GET|PUT /v1/products/ID/mqtt. Main loop. */
#include "mqtt_int.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "arduino.h"
#include "fota_str.h"
#include "http.h"
#include "log.h"
#include "xmalloc.h"

#define FOLLOW_MS 1000

#define ROW(f) FOTA_CONF_FIELD(struct fota_mqtt_conf, f)
static const struct fota_conf_opt mqtt_rows[] = {
    { "public_url", FOTA_CONF_T_STR, ROW(public_url), "", 0, 0, FOTA_CONF_RELOAD,
      "Base URL devices reach fotad's HTTP port at (http://HOST:PORT), for the OtaUrl fotad "
      "gives Tasmota devices over MQTT; empty: no MQTT triggers." },
    { NULL, 0, 0, 0, NULL, 0, 0, 0, NULL },
};

static int mqtt_conf_check(const void *conf, char *err, size_t errlen)
{
    const struct fota_mqtt_conf *c = conf;
    const char *u = c->public_url;
    const char *host = strncmp(u, "http://", 7) == 0 ? u + 7 : strncmp(u, "https://", 8) == 0 ? u + 8
                                                                                           : NULL;
    if (!u[0])
        return 0;
    if (!host || !host[0] || host[0] == '/' || strchr(u, ' ') || strchr(u, '?') ||
        strchr(u, '#')) {
        fota_str_copy(err, errlen, "public_url: http://HOST[:PORT][/PATH] or https://..., "
                                   "the base URL devices reach fotad at");
        return FOTA_ECONFIG;
    }
    return 0;
}

/* The fleets follow the products' settings: a new broker starts one, a
 * changed one restarts it, a removed one (or product) ends it. */
static void follow(struct fota_mqtt *m)
{
    struct fota_store *st = m->srv->store;
    struct fota_product *ps = NULL;
    struct fota_arduino_product *ap = fota_xmalloc(sizeof(*ap));
    size_t np = 0;
    int *kept;

    m->gen = fota_store_generation(st);
    if (st->ops->product_list(st, &ps, &np) != 0) {
        free(ap);
        return; /* the next change tries again */
    }
    kept = fota_xcalloc(np ? np : 1, sizeof *kept);
    for (struct fota_mqtt_fleet **pp = &m->fleets; *pp;) {
        struct fota_mqtt_fleet *f = *pp;
        int keep = 0;
        for (size_t i = 0; i < np && !keep; i++) {
            if (ps[i].id != f->product_id || st->ops->arduino_product_get(st, ps[i].id, ap) != 0)
                continue;
            keep = strcmp(ap->mqtt_url, f->url) == 0 && strcmp(ap->mqtt_username, f->username) == 0 &&
                   strcmp(ap->mqtt_password, f->password) == 0;
            kept[i] = keep;
        }
        if (keep) {
            pp = &f->next;
            continue;
        }
        FOTA_INFO("mqtt broker left product=%lld broker=%s", (long long)f->product_id, f->url);
        *pp = f->next;
        fota_mqtt_fleet_stop(f);
    }
    for (size_t i = 0; i < np; i++) {
        if (kept[i] || st->ops->arduino_product_get(st, ps[i].id, ap) != 0 || !ap->mqtt_url[0])
            continue;
        struct fota_mqtt_fleet *f = fota_mqtt_fleet_start(m, ap);
        if (f) {
            f->next = m->fleets;
            m->fleets = f;
        }
    }
    free(kept);
    free(ps);
    free(ap);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct fota_mqtt *m = arg;
    (void)fd;
    (void)what;
    if (fota_store_generation(m->srv->store) != m->gen)
        follow(m);
    for (struct fota_mqtt_fleet *f = m->fleets; f; f = f->next)
        fota_mqtt_fleet_tick(f);
}

static struct fota_mqtt_fleet *fleet_of(struct fota_mqtt *m, int64_t product_id)
{
    struct fota_mqtt_fleet *f = m->fleets;
    while (f && f->product_id != product_id)
        f = f->next;
    return f;
}

/* GET|PUT /v1/products/ID/mqtt: the product's broker settings (the password
 * never shown), its connection and the devices seen on it; PUT takes
 * {"url", "username", "password"} (null: no broker). Admin. */
static void route_mqtt(struct fota_req *r)
{
    struct fota_mqtt *m = r->ud;
    struct fota_store *st = r->srv->store;
    struct fota_arduino_product *p = fota_xmalloc(sizeof(*p));
    struct fota_mqtt_fleet *f;
    json_t *body = NULL, *j;
    char reason[200];
    int64_t pid;
    int rc;

    if (fota_arduino_admin_product(r, p))
        goto out;
    pid = p->product_id;
    if (r->method == FOTA_M_PUT) {
        if (!(body = fota_req_json_body(r)))
            goto out;
        if ((rc = fota_mqtt_settings_apply(body, p, reason, sizeof reason)) != 0) {
            fota_reply_error(r, rc, "%s", reason);
            goto out;
        }
        if ((rc = st->ops->arduino_product_put(st, p)) != 0) {
            fota_reply_status(r, rc, "product %lld", (long long)pid);
            goto out;
        }
        char uq[160];
        FOTA_INFO("mqtt settings product=%lld broker=%s user=%s", (long long)pid,
                  p->mqtt_url[0] ? p->mqtt_url : "-",
                  fota_log_quote(p->mqtt_username[0] ? p->mqtt_username : "-", uq, sizeof uq));
        follow(m);
    }
    j = fota_mqtt_settings_json(p);
    if (json_is_object(j)) {
        f = fleet_of(m, pid);
        if (f) {
            json_t *s = fota_mqtt_fleet_json(f);
            json_object_update(j, s);
            json_decref(s);
        }
        json_object_set_new(j, "public_url", m->conf->public_url[0]
                                                 ? json_string(m->conf->public_url)
                                                 : json_null());
    }
    fota_reply_json(r, 200, json_pack("{s:I, s:o}", "product_id", (json_int_t)pid, "mqtt", j));
out:
    json_decref(body);
    free(p);
}

static const struct {
    enum fota_hub_topic topic;
    fota_hub_cb cb;
} subs[] = {
    { FOTA_HUB_DEVICE_OFFER, fota_mqtt_on_offer },
    { FOTA_HUB_DEVICE_DELETED, fota_mqtt_on_deleted },
};

static void mqtt_stop(struct fota_server *srv, void *state)
{
    struct fota_mqtt *m = state;
    if (!m)
        return;
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        fota_hub_unsubscribe(srv, subs[i].topic, subs[i].cb, m);
    if (m->tick)
        event_free(m->tick);
    while (m->fleets) {
        struct fota_mqtt_fleet *f = m->fleets;
        m->fleets = f->next;
        fota_mqtt_fleet_stop(f);
    }
    fota_mqtt_clients_shutdown(&m->clients);
    fota_mqtt_lib_cleanup();
    free(m);
}

static int mqtt_start(struct fota_server *srv, void **state)
{
    struct fota_mqtt *m = fota_xcalloc(1, sizeof(*m));
    static const struct timeval every = { FOLLOW_MS / 1000, (FOLLOW_MS % 1000) * 1000 };
    int rc;

    m->srv = srv;
    m->conf = fota_server_module_conf(srv, &fota_mqtt_module);
    if (fota_mqtt_lib_init() != 0) {
        FOTA_ERROR("mod=mqtt cannot initialise libmosquitto");
        free(m);
        return FOTA_EIO;
    }
    m->tick = event_new(srv->base, -1, EV_PERSIST, tick_cb, m);
    rc = m->tick && event_add(m->tick, &every) == 0 ? 0 : FOTA_ENOMEM;
    for (size_t i = 0; rc == 0 && i < sizeof subs / sizeof subs[0]; i++)
        rc = fota_hub_subscribe(srv, subs[i].topic, subs[i].cb, m);
    if (rc == 0 && srv->http)
        rc = fota_http_route(srv, FOTA_M_GET | FOTA_M_PUT, "/v1/products/*/mqtt", route_mqtt, m);
    if (rc != 0) {
        FOTA_ERROR("mod=mqtt cannot start error=%s", fota_errname(rc));
        mqtt_stop(srv, m);
        return rc;
    }
    follow(m);
    *state = m;
    return 0;
}

const struct fota_module fota_mqtt_module = {
    .name = "mqtt",
    .conf_opts = mqtt_rows,
    .conf_size = sizeof(struct fota_mqtt_conf),
    .conf_check = mqtt_conf_check,
    .start = mqtt_start,
    .stop = mqtt_stop,
};
