/* fotasim_mqtt.c - libmosquitto on the fleet's libevent loop: the socket's
 * read event calls mosquitto_loop_read, a write event runs while the
 * library wants to write, and one timer per client does the keep-alive
 * work (mosquitto_loop_misc) and reconnects 10 s after a loss. The
 * connect itself is mosquitto_connect: brokers in fota-sim's runs are on
 * loopback, where it returns at once. */
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>

#include "fota_err.h"
#include "fota_str.h"
#include "fotasim_mqtt.h"

#define RETRY_S 10                  /* Tasmota's MQTT_RETRY_SECS */

struct fotasim_mqtt {
    struct event_base *base;
    struct mosquitto *mosq;
    struct fotasim_mqtt_cfg cfg;
    char host[64];
    struct event *rd, *wr, *tick;
    int fd;
    int up;                         /* CONNACK received */
    int retry_in;                   /* seconds to the next connect attempt, 0 none */
};

int fotasim_mqtt_lib_init(void)
{
    return mosquitto_lib_init() == MOSQ_ERR_SUCCESS ? 0 : FOTA_EIO;
}

void fotasim_mqtt_lib_cleanup(void)
{
    mosquitto_lib_cleanup();
}

static void drop_events(struct fotasim_mqtt *m)
{
    if (m->rd)
        event_free(m->rd);
    if (m->wr)
        event_free(m->wr);
    m->rd = m->wr = NULL;
    m->fd = -1;
}

/* After every call into the library: write while it has bytes queued. */
static void want_write(struct fotasim_mqtt *m)
{
    if (m->wr && mosquitto_want_write(m->mosq))
        event_add(m->wr, NULL);
}

static void lost(struct fotasim_mqtt *m)
{
    drop_events(m);
    m->up = 0;
    m->retry_in = RETRY_S;
}

static void rd_cb(evutil_socket_t fd, short what, void *arg)
{
    struct fotasim_mqtt *m = arg;
    if (mosquitto_loop_read(m->mosq, 16) != MOSQ_ERR_SUCCESS) {
        lost(m);
        return;
    }
    want_write(m);
}

static void wr_cb(evutil_socket_t fd, short what, void *arg)
{
    struct fotasim_mqtt *m = arg;
    if (mosquitto_loop_write(m->mosq, 16) != MOSQ_ERR_SUCCESS) {
        lost(m);
        return;
    }
    want_write(m);
}

/* A connect (or reconnect) and the events on its socket. */
static void attach(struct fotasim_mqtt *m, int first)
{
    int rc = first ? mosquitto_connect(m->mosq, m->host, m->cfg.port, m->cfg.keepalive)
                   : mosquitto_reconnect(m->mosq);
    m->retry_in = 0;
    if (rc != MOSQ_ERR_SUCCESS || (m->fd = mosquitto_socket(m->mosq)) < 0) {
        lost(m);
        return;
    }
    m->rd = event_new(m->base, m->fd, EV_READ | EV_PERSIST, rd_cb, m);
    m->wr = event_new(m->base, m->fd, EV_WRITE, wr_cb, m);
    if (!m->rd || !m->wr || event_add(m->rd, NULL) < 0) {
        lost(m);
        return;
    }
    want_write(m);                    /* the CONNECT packet */
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct fotasim_mqtt *m = arg;
    if (m->retry_in > 0) {
        if (--m->retry_in == 0)
            attach(m, 0);
        return;
    }
    if (m->rd && mosquitto_loop_misc(m->mosq) != MOSQ_ERR_SUCCESS)
        lost(m);
    else
        want_write(m);
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc)
{
    struct fotasim_mqtt *m = obj;
    if (rc != 0)
        return;                       /* refused: the disconnect callback follows */
    m->up = 1;
    if (m->cfg.on_connect)
        m->cfg.on_connect(m->cfg.ud);
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg)
{
    struct fotasim_mqtt *m = obj;
    char payload[512];
    size_t n = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;

    fota_str_copy_n(payload, sizeof(payload), msg->payload, n);
    if (m->cfg.on_message)
        m->cfg.on_message(m->cfg.ud, msg->topic, payload, n < sizeof(payload) ? n : sizeof(payload) - 1);
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc)
{
    struct fotasim_mqtt *m = obj;
    m->up = 0;
}

struct fotasim_mqtt *fotasim_mqtt_new(struct event_base *base, const struct fotasim_mqtt_cfg *cfg)
{
    struct fotasim_mqtt *m = calloc(1, sizeof(*m));
    struct timeval one = {1, 0};

    if (!m)
        return NULL;
    m->base = base;
    m->cfg = *cfg;
    m->fd = -1;
    fota_str_copy(m->host, sizeof(m->host), cfg->host);
    m->mosq = mosquitto_new(cfg->client_id, true, m);
    m->tick = event_new(base, -1, EV_PERSIST, tick_cb, m);
    if (!m->mosq || !m->tick) {
        fotasim_mqtt_free(m);
        return NULL;
    }
    mosquitto_connect_callback_set(m->mosq, on_connect);
    mosquitto_message_callback_set(m->mosq, on_message);
    mosquitto_disconnect_callback_set(m->mosq, on_disconnect);
    if (cfg->will_topic)
        mosquitto_will_set(m->mosq, cfg->will_topic, (int)strlen(cfg->will_payload),
                           cfg->will_payload, 0, true);
    event_add(m->tick, &one);
    attach(m, 1);
    return m;
}

void fotasim_mqtt_free(struct fotasim_mqtt *m)
{
    if (!m)
        return;
    drop_events(m);
    if (m->tick)
        event_free(m->tick);
    if (m->mosq)
        mosquitto_destroy(m->mosq);   /* closes the socket, no DISCONNECT: the will goes out */
    free(m);
}

int fotasim_mqtt_subscribe(struct fotasim_mqtt *m, const char *topic)
{
    int rc = mosquitto_subscribe(m->mosq, NULL, topic, 0);
    want_write(m);
    return rc == MOSQ_ERR_SUCCESS ? 0 : FOTA_EIO;
}

int fotasim_mqtt_publish(struct fotasim_mqtt *m, const char *topic, const char *payload, int retain)
{
    int rc = mosquitto_publish(m->mosq, NULL, topic, (int)strlen(payload), payload, 0, retain != 0);
    want_write(m);
    return rc == MOSQ_ERR_SUCCESS ? 0 : FOTA_EIO;
}
