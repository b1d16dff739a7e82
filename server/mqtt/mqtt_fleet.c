/* mqtt_fleet.c - one arduino product's devices on its broker: discovery
 * (a topic seen on tele/TOPIC/LWT or INFO1 is asked Status 5; its MAC makes
 * it the same device as its HTTP check-ins, registered like one when new),
 * presence (its LWT, on the hub as DEVICE_ONLINE / DEVICE_OFFLINE), the
 * version it reports after a boot (INFO1, or Status 2 when fotad asks
 * because an upgrade is open) and the end of its upgrade loop (UPGRADE),
 * both judged by the arduino module, and the trigger of a rollout's offer:
 * OtaUrl, then Upgrade 1. Main loop; what needs the store (the known devices,
 * a MAC's device, the judgements, the MQTT fields written) runs as jobs on
 * the module's lane `mqtt` (store_exec.h), in the order the messages came,
 * and their continuations find the fleet again by its serial and the device
 * by its topic (either may have gone meanwhile). */
#include "mqtt_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "arduino.h"
#include "arduino_pull.h"
#include "clock.h"
#include "fota_str.h"
#include "hub.h"
#include "keys.h"
#include "log.h"
#include "store_exec.h"
#include "xmalloc.h"

/* A topic whose MAC is unknown is asked Status 5 again after 3 s, doubling
 * to a minute: an answer can be lost (Tasmota publishes its LWT before it
 * subscribes to its commands, so a question sent at once may go nowhere). */
#define ASK_FIRST_MS 3000
#define ASK_MAX_MS   60000

/* ---- the device table (sorted by topic) */

static size_t dev_slot(const struct fota_mqtt_fleet *f, const char *topic, int *found)
{
    size_t lo = 0, hi = f->ndevs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->devs[mid].topic, topic);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

static struct fota_mqtt_dev *dev_get(struct fota_mqtt_fleet *f, const char *topic)
{
    int found;
    size_t i = dev_slot(f, topic, &found);

    if (found)
        return &f->devs[i];
    if (f->ndevs == f->capdevs) {
        f->capdevs = f->capdevs ? f->capdevs * 2 : 64;
        f->devs = fota_xreallocarray(f->devs, f->capdevs, sizeof *f->devs);
    }
    memmove(&f->devs[i + 1], &f->devs[i], (f->ndevs - i) * sizeof *f->devs);
    f->ndevs++;
    memset(&f->devs[i], 0, sizeof f->devs[i]);
    fota_str_copy(f->devs[i].topic, sizeof f->devs[i].topic, topic);
    return &f->devs[i];
}

struct fota_mqtt_dev *fota_mqtt_fleet_dev_by_id(struct fota_mqtt_fleet *f, int64_t device_id)
{
    for (size_t i = 0; i < f->ndevs; i++)
        if (f->devs[i].device_id == device_id)
            return &f->devs[i];
    return NULL;
}

/* ---- store jobs */

enum job_kind {
    J_STORE_DEV,   /* arduino_device_mqtt of a device's fields */
    J_DEVICE,      /* the device of a MAC (Status 5) */
    J_VERSION,     /* the version a device reports, judged */
    J_OPEN,        /* is an upgrade open for the device? */
    J_FAILED,      /* its upgrade loop failed */
    J_KNOWN,       /* the fleet's known devices, at its start */
};

struct fleet_job {
    enum job_kind kind;
    struct fota_mqtt *m;
    struct fota_server *srv;
    uint64_t fleet;                  /* the fleet's serial */
    int64_t product_id, device_id;
    char topic[FOTA_MQTT_TOPIC_MAX];
    char text[200];                  /* MAC, version or failure text */
    struct fota_arduino_device *a;   /* J_STORE_DEV */
    struct fota_arduino_device *ds;  /* J_KNOWN */
    size_t nd;
    int rc;                          /* the store's, or the judgement */
};

static struct fota_mqtt_fleet *fleet_find(struct fota_mqtt *m, uint64_t serial)
{
    struct fota_mqtt_fleet *f = m->fleets;
    while (f && f->serial != serial)
        f = f->next;
    return f;
}

/* The job's device in its fleet, when both are still there (and, with
 * device_id, still that device). */
static struct fota_mqtt_dev *job_dev(const struct fleet_job *j, struct fota_mqtt_fleet **fp)
{
    struct fota_mqtt_fleet *f = fleet_find(j->m, j->fleet);
    int found = 0;
    size_t i;

    *fp = f;
    if (!f)
        return NULL;
    i = dev_slot(f, j->topic, &found);
    return found ? &f->devs[i] : NULL;
}

static void job_run(struct fota_store *st, void *arg)
{
    struct fleet_job *j = arg;

    switch (j->kind) {
    case J_STORE_DEV:
        j->rc = st->ops->arduino_device_mqtt(st, j->a);
        break;
    case J_DEVICE:
        j->rc = fota_arduino_mqtt_device(j->srv, j->product_id, j->text, &j->device_id);
        break;
    case J_VERSION:
        j->rc = fota_arduino_mqtt_version(j->srv, j->device_id, j->text);
        break;
    case J_OPEN:
        j->rc = fota_arduino_upgrade_open(j->srv, j->device_id);
        break;
    case J_FAILED:
        j->rc = fota_arduino_mqtt_failed(j->srv, j->device_id, j->text);
        break;
    case J_KNOWN:
        j->rc = st->ops->arduino_device_list(st, j->product_id, &j->ds, &j->nd);
        break;
    }
}

static void job_free(struct fleet_job *j)
{
    free(j->a);
    free(j->ds);
    free(j);
}

static void job_done(void *arg, int cancelled);

/* Queues a job of kind for device d of f (NULL: the fleet's own). */
static void job_submit(struct fota_mqtt_fleet *f, enum job_kind kind,
                       const struct fota_mqtt_dev *d, const char *text)
{
    struct fota_mqtt *m = f->m;
    struct fleet_job *j = fota_xcalloc(1, sizeof(*j));

    j->kind = kind;
    j->m = m;
    j->srv = m->srv;
    j->fleet = f->serial;
    j->product_id = f->product_id;
    if (d) {
        j->device_id = d->device_id;
        fota_str_copy(j->topic, sizeof j->topic, d->topic);
    }
    if (text)
        fota_str_copy(j->text, sizeof j->text, text);
    if (kind == J_STORE_DEV) {
        j->a = fota_xcalloc(1, sizeof(*j->a));
        j->a->device_id = d->device_id;
        fota_str_copy(j->a->mqtt_topic, sizeof j->a->mqtt_topic, d->topic);
        fota_str_copy(j->a->mqtt_lwt, sizeof j->a->mqtt_lwt, d->lwt);
        fota_str_copy(j->a->mqtt_version, sizeof j->a->mqtt_version, d->version);
        j->a->mqtt_seen = d->seen;
    }
    /* refused: the lane is full (the executor says so); the message is lost */
    if (fota_store_submit(m->srv->exec, m->lane, m->srv->loops[0], job_run, job_done, j) != 0)
        job_free(j);
}

/* ---- what fotad records and tells */

/* The device's MQTT fields, written; a device deleted meanwhile is
 * discovered again at its next message (the continuation). */
static void store_dev(struct fota_mqtt_fleet *f, struct fota_mqtt_dev *d)
{
    if (d->device_id)
        job_submit(f, J_STORE_DEV, d, NULL);
}

static void presence(struct fota_mqtt_fleet *f, const struct fota_mqtt_dev *d, int online)
{
    struct fota_hub_presence ev = {.device_id = d->device_id, .product_id = f->product_id};
    if (d->device_id)
        fota_hub_publish(f->m->srv, online ? FOTA_HUB_DEVICE_ONLINE : FOTA_HUB_DEVICE_OFFLINE, &ev);
}

static int command(struct fota_mqtt_fleet *f, const char *topic, const char *cmd,
                   const char *payload)
{
    char t[FOTA_MQTT_TOPIC_MAX + 32];
    snprintf(t, sizeof t, "cmnd/%s/%s", topic, cmd);
    return fota_mqtt_client_publish(f->client, t, payload);
}

/* Status 5 to a topic whose MAC is not known, unless asked recently. */
static void ask_mac(struct fota_mqtt_fleet *f, struct fota_mqtt_dev *d)
{
    int64_t now = fota_clock_mono_ms(), gap = ASK_FIRST_MS;
    for (int i = 0; i < d->asks && gap < ASK_MAX_MS; i++)
        gap *= 2;
    if (d->asked_ms && now - d->asked_ms < (gap < ASK_MAX_MS ? gap : ASK_MAX_MS))
        return;
    if (command(f, d->topic, "Status", "5") != 0)
        return;
    d->asked_ms = now;
    d->asks++;
    FOTA_DEBUG("mqtt asks product=%lld topic=%s cmnd=\"Status 5\" times=%d",
               (long long)f->product_id, d->topic, d->asks);
}

void fota_mqtt_fleet_tick(struct fota_mqtt_fleet *f)
{
    if (!f->up)
        return;
    for (size_t i = 0; i < f->ndevs; i++)
        if (!f->devs[i].device_id && strcmp(f->devs[i].lwt, "Online") == 0)
            ask_mac(f, &f->devs[i]);
}

/* The version the device reports: judged against its open upgrade (a job;
 * a success counts in the continuation). */
static void judge(struct fota_mqtt_fleet *f, struct fota_mqtt_dev *d)
{
    if (!d->device_id || !d->version[0])
        return;
    job_submit(f, J_VERSION, d, d->version);
}

/* An upgrade is open and fotad may have missed the INFO1 that ends it (it was
 * stopped, or learnt who the device is only now): what does it run? (A job;
 * the continuation asks.) */
static void ask_version(struct fota_mqtt_fleet *f, struct fota_mqtt_dev *d)
{
    job_submit(f, J_OPEN, d, NULL);
}

/* ---- messages */

static void on_lwt(struct fota_mqtt_fleet *f, struct fota_mqtt_dev *d, const char *payload)
{
    int changed = strcmp(d->lwt, payload) != 0;
    int online = strcmp(payload, "Online") == 0;

    fota_str_copy(d->lwt, sizeof d->lwt, payload);
    if (!d->device_id) {
        if (online && changed) { /* back: ask at once */
            d->asks = 0;
            d->asked_ms = 0;
        }
        if (online)
            ask_mac(f, d);
        return;
    }
    store_dev(f, d);
    if (changed)
        presence(f, d, online);
    if (online && changed)
        ask_version(f, d);
}

static void on_version(struct fota_mqtt_fleet *f, struct fota_mqtt_dev *d, const char *payload,
                       size_t len, int boot)
{
    char v[64];

    if (fota_mqtt_tasmota_version(payload, len, v, sizeof v) != 0)
        return;
    fota_str_copy(d->version, sizeof d->version, v);
    if (boot && strcmp(d->lwt, "Online") != 0) { /* INFO1 follows its connect */
        fota_str_copy(d->lwt, sizeof d->lwt, "Online");
        presence(f, d, 1);
    }
    if (!d->device_id) {
        d->version_waits = 1;
        ask_mac(f, d);
        return;
    }
    store_dev(f, d);
    judge(f, d);
}

static void on_status5(struct fota_mqtt_fleet *f, struct fota_mqtt_dev *d, const char *payload,
                       size_t len)
{
    char mac[FOTA_ARDUINO_MAC_MAX];

    if (fota_mqtt_tasmota_mac(payload, len, mac) != 0)
        return;
    job_submit(f, J_DEVICE, d, mac);   /* found: device_found */
}

/* The device of the topic's MAC is id (J_DEVICE's continuation). */
static void device_found(struct fota_mqtt_fleet *f, struct fota_mqtt_dev *d, int64_t id,
                         const char *mac)
{
    for (size_t i = 0; i < f->ndevs; i++)   /* the device renamed its topic */
        if (f->devs[i].device_id == id && &f->devs[i] != d)
            f->devs[i].device_id = 0;
    if (d->device_id != id)
        FOTA_INFO("mqtt device found product=%lld topic=%s dev=%lld mac=%s lwt=%s",
                  (long long)f->product_id, d->topic, (long long)id, mac,
                  d->lwt[0] ? d->lwt : "-");
    d->device_id = id;
    d->asks = 0;
    d->asked_ms = 0;
    store_dev(f, d);
    if (strcmp(d->lwt, "Online") == 0)
        presence(f, d, 1);
    if (d->version_waits) {
        d->version_waits = 0;
        judge(f, d);
    } else if (strcmp(d->lwt, "Online") == 0) {
        ask_version(f, d);
    }
}

static void on_upgrade(struct fota_mqtt_fleet *f, struct fota_mqtt_dev *d, const char *payload,
                       size_t len)
{
    char text[200];
    int r = fota_mqtt_tasmota_upgrade(payload, len, text, sizeof text);

    if (r != 0 || !d->device_id)
        return; /* "Successful. Restarting": its INFO1 after the restart tells */
    job_submit(f, J_FAILED, d, text);
}

static void on_message(struct fota_mqtt_fleet *f, const struct fota_mqtt_event *ev)
{
    char topic[FOTA_MQTT_TOPIC_MAX];
    int kind = fota_mqtt_msg_kind(ev->topic, topic, sizeof topic);
    struct fota_mqtt_dev *d;

    if (kind == FOTA_MQTT_M_OTHER || !topic[0])
        return;
    d = dev_get(f, topic);
    d->seen = fota_clock_wall_s();
    switch (kind) {
    case FOTA_MQTT_M_LWT:
        if (ev->len < sizeof d->lwt)
            on_lwt(f, d, ev->payload);
        break;
    case FOTA_MQTT_M_INFO1:
        on_version(f, d, ev->payload, ev->len, 1);
        break;
    case FOTA_MQTT_M_STATUS2:
        on_version(f, d, ev->payload, ev->len, 0);
        break;
    case FOTA_MQTT_M_STATUS5:
        on_status5(f, d, ev->payload, ev->len);
        break;
    case FOTA_MQTT_M_UPGRADE:
        on_upgrade(f, d, ev->payload, ev->len);
        break;
    }
}

static void on_event(void *owner, const struct fota_mqtt_event *ev)
{
    struct fota_mqtt_fleet *f = owner;

    if (ev->kind == FOTA_MQTT_E_MESSAGE) {
        on_message(f, ev);
    } else if (ev->kind == FOTA_MQTT_E_UP) {
        f->up = 1;
        f->error[0] = '\0';
        f->since = fota_clock_wall_s();
        FOTA_INFO("mqtt connected product=%lld broker=%s devices=%zu", (long long)f->product_id,
                  f->url, f->ndevs);
    } else if (f->up || strcmp(f->error, ev->text) != 0) {
        if (f->up)
            f->since = fota_clock_wall_s();
        f->up = 0;
        fota_str_copy(f->error, sizeof f->error, ev->text);
        /* presence is unknown until the broker hands the retained LWTs again */
        for (size_t i = 0; i < f->ndevs; i++)
            f->devs[i].lwt[0] = '\0';
        FOTA_WARN("mqtt broker unreachable product=%lld broker=%s error=\"%s\"",
                  (long long)f->product_id, f->url, ev->text);
    }
}

/* ---- the jobs' continuations */

static int client_start(struct fota_mqtt_fleet *f)
{
    struct fota_mqtt *m = f->m;
    struct fota_mqtt_url u;
    char reason[160], client_id[48], uq[160];
    unsigned char rnd[4] = {0};

    if (fota_mqtt_url_parse(f->url, &u, reason, sizeof reason) != 0)
        return FOTA_EINVAL;   /* fota_mqtt_fleet_start parsed it */
    RAND_bytes(rnd, sizeof rnd);
    snprintf(client_id, sizeof client_id, "fotad-p%lld-%02x%02x%02x%02x",
             (long long)f->product_id, rnd[0], rnd[1], rnd[2], rnd[3]);
    struct fota_mqtt_client_cfg cfg = {.host = u.host, .port = u.port, .tls = u.tls,
                                       .username = f->username, .password = f->password,
                                       .client_id = client_id,
                                       .subs = fota_mqtt_subscriptions,
                                       .nsubs = FOTA_MQTT_NSUBS};
    f->client = fota_mqtt_client_start(m->srv, &m->clients, &cfg, on_event, f);
    if (!f->client)
        return FOTA_EIO;
    FOTA_INFO("mqtt broker product=%lld broker=%s user=%s devices_known=%zu",
              (long long)f->product_id, f->url,
              fota_log_quote(f->username[0] ? f->username : "-", uq, sizeof uq), f->ndevs);
    return 0;
}

/* What fotad learnt before (the topics and their devices; presence comes
 * again with the broker's retained LWTs) is in: the client starts. A fleet
 * whose client cannot start goes (logged), to be started again at the next
 * change of the catalog. */
static void fleet_known(struct fota_mqtt_fleet *f, struct fleet_job *j)
{
    struct fota_mqtt *m = f->m;

    if (j->rc == 0) {
        for (size_t i = 0; i < j->nd; i++) {
            const struct fota_arduino_device *a = &j->ds[i];
            if (!a->mqtt_topic[0])
                continue;
            struct fota_mqtt_dev *d = dev_get(f, a->mqtt_topic);
            d->device_id = a->device_id;
            fota_str_copy(d->version, sizeof d->version, a->mqtt_version);
            d->seen = a->mqtt_seen;
        }
    } else {
        FOTA_WARN("mqtt known devices not loaded product=%lld error=%s",
                  (long long)f->product_id, fota_errname(j->rc));
    }
    if (client_start(f) == 0)
        return;
    for (struct fota_mqtt_fleet **pp = &m->fleets; *pp; pp = &(*pp)->next)
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    fota_mqtt_fleet_stop(f);
}

static void job_done(void *arg, int cancelled)
{
    struct fleet_job *j = arg;
    struct fota_mqtt_fleet *f;
    struct fota_mqtt_dev *d;

    if (cancelled) {
        job_free(j);
        return;
    }
    d = job_dev(j, &f);
    switch (j->kind) {
    case J_STORE_DEV:   /* deleted meanwhile: discovered again at its next message */
        if (j->rc == FOTA_ENOENT && d && d->device_id == j->device_id)
            d->device_id = 0;
        break;
    case J_DEVICE:
        if (j->rc == 0 && d)
            device_found(f, d, j->device_id, j->text);
        break;
    case J_VERSION:
        if (f && j->rc == FOTA_ARDUINO_OUT_SUCCESS)
            f->confirmed++;
        break;
    case J_OPEN:
        if (j->rc && d && d->device_id == j->device_id && f->client)
            command(f, d->topic, "Status", "2");
        break;
    case J_FAILED:
        if (f && j->rc)
            f->failed++;
        break;
    case J_KNOWN:
        if (f)
            fleet_known(f, j);
        break;
    }
    job_free(j);
}

/* ---- the hub */

int64_t fota_mqtt_on_offer(void *ud, const void *event)
{
    struct fota_mqtt *m = ud;
    const struct fota_hub_offer *ev = event;
    struct fota_mqtt_fleet *f;
    struct fota_mqtt_dev *d = NULL;
    char key[FOTA_KEY_BUF], url[512];

    for (f = m->fleets; f && f->product_id != ev->product_id; f = f->next)
        ;
    if (f)
        d = fota_mqtt_fleet_dev_by_id(f, ev->device_id);
    if (!d)
        return 0; /* not known over MQTT: it takes its offer at its next check-in */
    if (!f->up || strcmp(d->lwt, "Online") != 0)
        return FOTA_HUB_OFFER_UNREACHABLE;
    if (!m->conf->public_url[0]) {
        if (!m->warned_public_url++)
            FOTA_WARN("mqtt cannot trigger upgrades: public_url is not set (the base URL "
                      "devices reach fotad at, e.g. http://192.168.1.10:8080)");
        return FOTA_HUB_OFFER_UNREACHABLE;
    }
    fota_key_derive(m->srv->secret, "product", ev->product_id, 0, key);
    if (fota_mqtt_tasmota_ota_url(m->conf->public_url, key, url, sizeof url) != 0 ||
        command(f, d->topic, "OtaUrl", url) != 0 || command(f, d->topic, "Upgrade", "1") != 0)
        return FOTA_HUB_OFFER_UNREACHABLE;
    f->triggered++;
    FOTA_INFO("mqtt upgrade triggered product=%lld dev=%lld topic=%s version=%s",
              (long long)f->product_id, (long long)d->device_id, d->topic, ev->version);
    return FOTA_HUB_OFFER_TRIGGERED;
}

int64_t fota_mqtt_on_deleted(void *ud, const void *event)
{
    struct fota_mqtt *m = ud;
    const struct fota_hub_device_deleted *ev = event;

    for (struct fota_mqtt_fleet *f = m->fleets; f; f = f->next) {
        struct fota_mqtt_dev *d = fota_mqtt_fleet_dev_by_id(f, ev->device_id);
        if (d)
            d->device_id = 0;
    }
    return 0;
}

/* ---- life */

struct fota_mqtt_fleet *fota_mqtt_fleet_start(struct fota_mqtt *m,
                                              const struct fota_arduino_product *p)
{
    struct fota_mqtt_fleet *f;
    struct fota_mqtt_url u;
    char reason[160];

    if (fota_mqtt_url_parse(p->mqtt_url, &u, reason, sizeof reason) != 0) {
        FOTA_WARN("mqtt broker not used product=%lld error=\"%s\"", (long long)p->product_id,
                  reason);
        return NULL;
    }
    f = fota_xcalloc(1, sizeof(*f));
    f->m = m;
    f->serial = ++m->fleet_serial;
    f->product_id = p->product_id;
    f->since = fota_clock_wall_s();
    fota_str_copy(f->url, sizeof f->url, p->mqtt_url);
    fota_str_copy(f->username, sizeof f->username, p->mqtt_username);
    fota_str_copy(f->password, sizeof f->password, p->mqtt_password);
    job_submit(f, J_KNOWN, NULL, NULL);   /* its client starts in fleet_known */
    return f;
}

void fota_mqtt_fleet_stop(struct fota_mqtt_fleet *f)
{
    if (!f)
        return;
    fota_mqtt_client_release(f->client);
    free(f->devs);
    free(f);
}

json_t *fota_mqtt_fleet_json(const struct fota_mqtt_fleet *f)
{
    json_t *devs = json_array();
    for (size_t i = 0; i < f->ndevs; i++) {
        const struct fota_mqtt_dev *d = &f->devs[i];
        json_array_append_new(devs, json_pack(
            "{s:s, s:o, s:o, s:o, s:I}", "topic", d->topic, "device_id",
            d->device_id ? json_integer((json_int_t)d->device_id) : json_null(), "lwt",
            d->lwt[0] ? json_string(d->lwt) : json_null(), "version",
            d->version[0] ? json_string(d->version) : json_null(), "seen", (json_int_t)d->seen));
    }
    return json_pack("{s:b, s:o, s:I, s:I, s:I, s:I, s:o}", "connected", f->up, "error",
                     f->up || !f->error[0] ? json_null() : json_string(f->error), "since",
                     (json_int_t)f->since, "triggered", (json_int_t)f->triggered, "confirmed",
                     (json_int_t)f->confirmed, "failed", (json_int_t)f->failed, "devices", devs);
}
