/* mqtt_client.c - a libmosquitto client on its own thread (mqtt_client.h).
 *
 * Why a thread and not the main loop's libevent: libmosquitto resolves the
 * broker's name with a blocking getaddrinfo inside its connect calls, and
 * its reconnects and TLS set-up are written for a loop of its own; none of
 * that may ever stall an event loop that serves thousands of devices. The
 * thread runs mosquitto_connect_async (DNS here; TCP and TLS complete inside
 * mosquitto_loop) and mosquitto_loop with a 500 ms bound, so a stop is seen
 * within half a second; waits between attempts are a condition variable.
 * Everything the thread learns goes to the main loop as a posted job, in
 * order; module state is touched by the main loop only. */
#include "mqtt_client.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>

#include "clock.h"
#include "fota_err.h"
#include "fota_str.h"
#include "log.h"
#include "loop.h"
#include "server.h"
#include "xmalloc.h"

#define KEEPALIVE_S   30
#define LOOP_MS       500
#define RETRY_MAX_S   30
#define PAYLOAD_MAX   4096   /* Tasmota's answers fotad reads are a few hundred bytes */
#define TOPIC_MAX     256

struct fota_mqtt_client {
    struct fota_server *srv;
    struct fota_mqtt_clients *all;
    struct fota_mqtt_client *next;   /* in all (main loop) */
    struct mosquitto *mosq;
    pthread_t thread;
    int joined;
    atomic_int stop;
    atomic_int up;
    int refused;                     /* client thread: the broker refused this attempt */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    fota_mqtt_client_cb cb;          /* main loop; NULL once released */
    void *owner;
    char host[256];
    int port;
    char **subs;
    size_t nsubs;
};

enum { J_UP = FOTA_MQTT_E_UP, J_DOWN = FOTA_MQTT_E_DOWN, J_MESSAGE = FOTA_MQTT_E_MESSAGE, J_EXIT };

struct job {
    struct fota_mqtt_client *c;
    int kind;
    size_t len;
    char text[160];
    char topic[TOPIC_MAX];
    char payload[];                  /* len bytes and a NUL */
};

int fota_mqtt_lib_init(void)
{
    return mosquitto_lib_init() == MOSQ_ERR_SUCCESS ? 0 : FOTA_EIO;
}

void fota_mqtt_lib_cleanup(void)
{
    mosquitto_lib_cleanup();
}

static void client_destroy(struct fota_mqtt_client *c)
{
    if (c->mosq)
        mosquitto_destroy(c->mosq);
    for (size_t i = 0; i < c->nsubs; i++)
        free(c->subs[i]);
    free(c->subs);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* Unlinks c from its list, joins its thread (which has ended or is about
 * to) and frees it. Main loop. */
static void client_free(struct fota_mqtt_client *c)
{
    for (struct fota_mqtt_client **pp = &c->all->head; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    if (!c->joined)
        pthread_join(c->thread, NULL);
    client_destroy(c);
}

static void job_run(void *arg, int cancelled)
{
    struct job *j = arg;
    struct fota_mqtt_client *c = j->c;

    if (j->kind == J_EXIT) {
        if (!cancelled)
            client_free(c); /* its last job: every earlier one ran */
    } else if (!cancelled && c->cb) {
        struct fota_mqtt_event ev = {.kind = j->kind, .text = j->text, .topic = j->topic,
                                     .payload = j->payload, .len = j->len};
        c->cb(c->owner, &ev);
    }
    free(j);
}

/* Hands an event to the main loop (client thread). Refused once the main
 * loop closed: fota_mqtt_clients_shutdown frees the client then. */
static void post(struct fota_mqtt_client *c, int kind, const char *text, const char *topic,
                 const void *payload, size_t len)
{
    struct job *j = fota_xcalloc(1, sizeof(*j) + len + 1);
    j->c = c;
    j->kind = kind;
    j->len = len;
    if (text)
        fota_str_copy(j->text, sizeof j->text, text);
    if (topic)
        fota_str_copy(j->topic, sizeof j->topic, topic);
    if (len)
        memcpy(j->payload, payload, len);
    if (fota_loop_post(c->srv->loops[0], job_run, j) != 0)
        free(j);
}

/* ---- libmosquitto's callbacks (client thread) */

static void on_connect(struct mosquitto *mosq, void *obj, int rc)
{
    struct fota_mqtt_client *c = obj;
    char why[160];

    if (rc != 0) { /* refused: the broker closes the connection */
        c->refused = 1;
        fota_str_copy(why, sizeof why, "the broker refused the connection: ");
        fota_str_copy(why + strlen(why), sizeof why - strlen(why), mosquitto_connack_string(rc));
        post(c, J_DOWN, why, NULL, NULL, 0);
        return;
    }
    rc = mosquitto_subscribe_multiple(mosq, NULL, (int)c->nsubs, c->subs, 0, 0, NULL);
    if (rc != MOSQ_ERR_SUCCESS) {
        post(c, J_DOWN, mosquitto_strerror(rc), NULL, NULL, 0);
        return;
    }
    atomic_store(&c->up, 1);
    post(c, J_UP, NULL, NULL, NULL, 0);
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc)
{
    struct fota_mqtt_client *c = obj;
    (void)mosq;
    (void)rc;
    atomic_store(&c->up, 0);
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *m)
{
    struct fota_mqtt_client *c = obj;
    (void)mosq;
    if (!m->topic || strlen(m->topic) >= TOPIC_MAX || m->payloadlen < 0 ||
        m->payloadlen > PAYLOAD_MAX)
        return; /* not one of the answers fotad reads */
    post(c, J_MESSAGE, NULL, m->topic, m->payload, (size_t)m->payloadlen);
}

/* ---- the thread */

/* Waits s seconds or until stopped. */
static void wait_s(struct fota_mqtt_client *c, unsigned s)
{
    int64_t ms = fota_clock_mono_ms() + (int64_t)s * 1000;   /* the condvar's clock */
    struct timespec until = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
    pthread_mutex_lock(&c->mu);
    while (!atomic_load(&c->stop) &&
           pthread_cond_timedwait(&c->cv, &c->mu, &until) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&c->mu);
}

static void why_of(int rc, char *out, size_t cap)
{
    if (rc == MOSQ_ERR_ERRNO)
        fota_str_copy(out, cap, strerror(errno));
    else
        fota_str_copy(out, cap, mosquitto_strerror(rc));
}

static void *client_main(void *arg)
{
    struct fota_mqtt_client *c = arg;
    unsigned delay = 1;
    char why[160];

    while (!atomic_load(&c->stop)) {
        c->refused = 0;
        int rc = mosquitto_connect_async(c->mosq, c->host, c->port, KEEPALIVE_S);
        while (rc == MOSQ_ERR_SUCCESS && !atomic_load(&c->stop))
            rc = mosquitto_loop(c->mosq, LOOP_MS, 1);
        if (atomic_load(&c->stop))
            break;
        if (atomic_exchange(&c->up, 0))
            delay = 1; /* it was up: try again soon */
        if (!c->refused) { /* a refusal said why already */
            why_of(rc, why, sizeof why);
            post(c, J_DOWN, why, NULL, NULL, 0);
        }
        wait_s(c, delay);
        delay = delay * 2 > RETRY_MAX_S ? RETRY_MAX_S : delay * 2;
    }
    /* a clean DISCONNECT when connected: no will, no error on the broker */
    if (atomic_load(&c->up) && mosquitto_disconnect(c->mosq) == MOSQ_ERR_SUCCESS)
        for (int i = 0; i < 4 && mosquitto_loop(c->mosq, 50, 1) == MOSQ_ERR_SUCCESS; i++)
            ;
    atomic_store(&c->up, 0);
    post(c, J_EXIT, NULL, NULL, NULL, 0);
    return NULL;
}

struct fota_mqtt_client *fota_mqtt_client_start(struct fota_server *srv,
                                                struct fota_mqtt_clients *all,
                                                const struct fota_mqtt_client_cfg *cfg,
                                                fota_mqtt_client_cb cb, void *owner)
{
    struct fota_mqtt_client *c = fota_xcalloc(1, sizeof(*c));
    pthread_condattr_t ca;
    int rc;

    c->srv = srv;
    c->all = all;
    c->cb = cb;
    c->owner = owner;
    c->port = cfg->port;
    fota_str_copy(c->host, sizeof c->host, cfg->host);
    c->subs = fota_xcalloc(cfg->nsubs ? cfg->nsubs : 1, sizeof *c->subs);
    for (size_t i = 0; i < cfg->nsubs; i++)
        c->subs[i] = fota_xstrdup(cfg->subs[i]);
    c->nsubs = cfg->nsubs;
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    c->mosq = mosquitto_new(cfg->client_id, true, c);
    if (!c->mosq) {
        FOTA_ERROR("mod=mqtt cannot make an MQTT client error=\"%s\"", strerror(errno));
        goto fail;
    }
    mosquitto_threaded_set(c->mosq, true);
    mosquitto_connect_callback_set(c->mosq, on_connect);
    mosquitto_disconnect_callback_set(c->mosq, on_disconnect);
    mosquitto_message_callback_set(c->mosq, on_message);
    rc = MOSQ_ERR_SUCCESS;
    if (cfg->username && cfg->username[0])
        rc = mosquitto_username_pw_set(c->mosq, cfg->username,
                                       cfg->password && cfg->password[0] ? cfg->password : NULL);
    if (rc == MOSQ_ERR_SUCCESS && cfg->tls)
        rc = mosquitto_int_option(c->mosq, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
    if (rc != MOSQ_ERR_SUCCESS) {
        FOTA_ERROR("mod=mqtt cannot set up the MQTT client error=\"%s\"", mosquitto_strerror(rc));
        goto fail;
    }
    if (pthread_create(&c->thread, NULL, client_main, c) != 0) {
        FOTA_ERROR("mod=mqtt cannot start the MQTT client's thread");
        goto fail;
    }
    c->next = all->head;
    all->head = c;
    return c;
fail:
    client_destroy(c);
    return NULL;
}

int fota_mqtt_client_publish(struct fota_mqtt_client *c, const char *topic, const char *payload)
{
    if (!atomic_load(&c->up))
        return FOTA_ENOENT;
    int rc = mosquitto_publish(c->mosq, NULL, topic, (int)strlen(payload), payload, 0, false);
    if (rc == MOSQ_ERR_NO_CONN)
        return FOTA_ENOENT;
    return rc == MOSQ_ERR_SUCCESS ? 0 : FOTA_EIO;
}

static void client_stop(struct fota_mqtt_client *c)
{
    pthread_mutex_lock(&c->mu);
    atomic_store(&c->stop, 1);
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

void fota_mqtt_client_release(struct fota_mqtt_client *c)
{
    if (!c)
        return;
    c->cb = NULL;
    c->owner = NULL;
    client_stop(c);
}

void fota_mqtt_clients_shutdown(struct fota_mqtt_clients *all)
{
    for (struct fota_mqtt_client *c = all->head; c; c = c->next) {
        c->cb = NULL;
        client_stop(c);
    }
    while (all->head) {
        struct fota_mqtt_client *c = all->head;
        pthread_join(c->thread, NULL);
        c->joined = 1;
        client_free(c);
    }
}
