/* mqtt_module.c - the mqtt module (mqtt.h): its setting public_url, one
 * fleet (client and devices) per arduino product whose settings name a
 * broker, kept in step with those settings (checked once a second when the
 * store's catalog changed, and at once after a change through the route),
 * the hub subscriptions and GET|PUT /v1/products/ID/mqtt. Main loop; the
 * settings are read by store jobs (lane `mqtt`) and applied in their
 * continuations, and the route runs on a store thread (FOTA_ROUTE_STORE),
 * reaching the fleets through the main loop. */
#include "mqtt_int.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "arduino.h"
#include "fota_str.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "store_exec.h"
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

/* The products with a broker, as the store had them at generation gen. */
struct follow_set {
    uint64_t gen;
    struct fota_arduino_product *ps;
    size_t n;
    int rc;
    struct fota_mqtt *m;             /* follow's continuation */
};

static void follow_set_free(struct follow_set *fs)
{
    free(fs->ps);
    free(fs);
}

/* Reads the set: a store job, or a store thread (the route). The
 * generation first, so a change while it reads is followed again. */
static void follow_load(struct fota_store *st, void *arg)
{
    struct follow_set *fs = arg;
    struct fota_product *ps = NULL;
    size_t np = 0;

    fs->gen = fota_store_generation(st);
    if ((fs->rc = st->ops->product_heads(st, &ps, &np)) != 0)
        return;
    fs->ps = fota_xcalloc(np ? np : 1, sizeof *fs->ps);
    for (size_t i = 0; i < np; i++)
        if (st->ops->arduino_product_get(st, ps[i].id, &fs->ps[fs->n]) == 0 &&
            fs->ps[fs->n].mqtt_url[0])
            fs->n++;
    free(ps);
}

/* The fleets follow the set: a new broker starts one, a changed one
 * restarts it, a removed one (or product) ends it. A set older than the
 * one applied is ignored. Main loop. */
static void follow_apply(struct fota_mqtt *m, const struct follow_set *fs)
{
    int *kept;

    if (fs->rc != 0 || fs->gen < m->gen)
        return; /* the next change tries again */
    m->gen = fs->gen;
    kept = fota_xcalloc(fs->n ? fs->n : 1, sizeof *kept);
    for (struct fota_mqtt_fleet **pp = &m->fleets; *pp;) {
        struct fota_mqtt_fleet *f = *pp;
        int keep = 0;
        for (size_t i = 0; i < fs->n && !keep; i++) {
            const struct fota_arduino_product *ap = &fs->ps[i];
            if (ap->product_id != f->product_id)
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
    for (size_t i = 0; i < fs->n; i++) {
        if (kept[i])
            continue;
        struct fota_mqtt_fleet *f = fota_mqtt_fleet_start(m, &fs->ps[i]);
        if (f) {
            f->next = m->fleets;
            m->fleets = f;
        }
    }
    free(kept);
}

static void follow_done(void *arg, int cancelled)
{
    struct follow_set *fs = arg;

    if (!cancelled) {
        fs->m->following = 0;
        follow_apply(fs->m, fs);
    }
    follow_set_free(fs);
}

/* Reads the settings again (a job), unless a read is in flight. */
static void follow(struct fota_mqtt *m)
{
    struct follow_set *fs;

    if (m->following)
        return;
    fs = fota_xcalloc(1, sizeof(*fs));
    fs->m = m;
    if (fota_store_submit(m->srv->exec, m->lane, m->srv->loops[0], follow_load, follow_done,
                          fs) != 0) {
        follow_set_free(fs);   /* the lane is full: the next tick tries again */
        return;
    }
    m->following = 1;
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

/* The route's main-loop part: the settings it wrote, applied (PUT), and
 * the fleet's state added to the settings' JSON. */
struct route_main {
    struct fota_mqtt *m;
    const struct follow_set *fs;     /* NULL: nothing to apply (GET) */
    int64_t pid;
    json_t *j;
};

static void route_on_main(void *arg)
{
    struct route_main *rm = arg;
    struct fota_mqtt *m = rm->m;
    struct fota_mqtt_fleet *f;

    if (rm->fs)
        follow_apply(m, rm->fs);
    if (!json_is_object(rm->j))
        return;
    f = fleet_of(m, rm->pid);
    if (f) {
        json_t *s = fota_mqtt_fleet_json(f);
        json_object_update(rm->j, s);
        json_decref(s);
    }
    json_object_set_new(rm->j, "public_url", m->conf->public_url[0]
                                                 ? json_string(m->conf->public_url)
                                                 : json_null());
}

/* GET|PUT /v1/products/ID/mqtt: the product's broker settings (the password
 * never shown), its connection and the devices seen on it; PUT takes
 * {"url", "username", "password"} (null: no broker). Admin. A store route:
 * the fleets are the main loop's. */
static void route_mqtt(struct fota_req *r)
{
    struct fota_mqtt *m = r->ud;
    struct fota_store *st = r->srv->store;
    struct fota_arduino_product *p = fota_xmalloc(sizeof(*p));
    struct follow_set *fs = NULL;
    struct route_main rm = { m, NULL, 0, NULL };
    json_t *body = NULL;
    char reason[200];
    int rc;

    if (fota_arduino_admin_product(r, p))
        goto out;
    rm.pid = p->product_id;
    if (r->method == FOTA_M_PUT) {
        if (!(body = fota_req_json_body(r)))
            goto out;
        if ((rc = fota_mqtt_settings_apply(body, p, reason, sizeof reason)) != 0) {
            fota_reply_error(r, rc, "%s", reason);
            goto out;
        }
        if ((rc = st->ops->arduino_product_put(st, p)) != 0) {
            fota_reply_status(r, rc, "product %lld", (long long)rm.pid);
            goto out;
        }
        char uq[160];
        FOTA_INFO("mqtt settings product=%lld broker=%s user=%s", (long long)rm.pid,
                  p->mqtt_url[0] ? p->mqtt_url : "-",
                  fota_log_quote(p->mqtt_username[0] ? p->mqtt_username : "-", uq, sizeof uq));
        fs = fota_xcalloc(1, sizeof(*fs));
        follow_load(st, fs);   /* what the fleets follow from now on */
        rm.fs = fs;
    }
    rm.j = fota_mqtt_settings_json(p);
    if (fota_loop_call(r->srv->loops[0], route_on_main, &rm) != 0) {
        json_decref(rm.j);
        fota_reply_error(r, 503, "fotad is shutting down");
        goto out;
    }
    fota_reply_json(r, 200, json_pack("{s:I, s:o}", "product_id", (json_int_t)rm.pid, "mqtt", rm.j));
out:
    if (fs)
        follow_set_free(fs);
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
    m->lane = fota_store_lane_new(srv->exec, "mqtt");
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
        rc = fota_http_route_flags(srv, FOTA_M_GET | FOTA_M_PUT, "/v1/products/*/mqtt",
                                   route_mqtt, m, FOTA_ROUTE_STORE);
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
