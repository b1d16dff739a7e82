/* fota_sim_api.c - fota-sim's REST client (libevent evhttp + jansson):
 * registers the virtual devices with the admin key and plays the phone
 * app's part of §1: sys_upgrade RPC when a device is on an older version,
 * sys_reboot RPC once it reported device_upgrade_success. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "fota_sim.h"

struct fotasim_api_call {
    struct fotasim *s;
    struct fotasim_dev *d;
    int kind;                     /* 0 register, 1 rpc */
    struct fotasim_api_call *next, **pprev;  /* s->api_calls */
};

static void call_unlink(struct fotasim_api_call *c)
{
    *c->pprev = c->next;
    if (c->next)
        c->next->pprev = c->pprev;
}

int fotasim_api_init(struct fotasim *s)
{
    int i;
    for (i = 0; i < FOTASIM_API_CONNS; i++) {
        s->api[i] = evhttp_connection_base_new(s->base, NULL, s->o.server, (uint16_t)s->o.http_port);
        if (!s->api[i])
            return FOTA_ENOMEM;
        evhttp_connection_set_timeout(s->api[i], 30);
    }
    return 0;
}

void fotasim_api_cleanup(struct fotasim *s)
{
    int i;
    for (i = 0; i < FOTASIM_API_CONNS; i++)
        if (s->api[i])
            evhttp_connection_free(s->api[i]);   /* drops queued requests, no callback */
    while (s->api_calls) {
        struct fotasim_api_call *c = s->api_calls;
        call_unlink(c);
        free(c);
    }
}

static void api_fail(struct fotasim *s, const char *what, int code, const char *body)
{
    s->api_errors++;
    if (!s->api_error[0])
        snprintf(s->api_error, sizeof(s->api_error), "%s: HTTP %d %.80s", what, code,
                 body ? body : "");
}

static void done_cb(struct evhttp_request *req, void *arg)
{
    struct fotasim_api_call *c = arg;
    struct fotasim *s = c->s;
    struct fotasim_dev *d = c->d;
    char body[1024] = "";
    int code = req ? evhttp_request_get_response_code(req) : 0;

    if (req) {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t n = evbuffer_get_length(in);
        if (n >= sizeof(body))
            n = sizeof(body) - 1;
        evbuffer_copyout(in, body, n);
        body[n] = '\0';
    }
    s->api_pending--;
    if (c->kind == 0) {
        json_t *j = code == 200 ? json_loads(body, 0, NULL) : NULL;
        const char *key = j ? json_string_value(json_object_get(j, "master_device_key")) : NULL;
        json_t *dev = j ? json_object_get(j, "device") : NULL;
        if (key && strlen(key) == FOTADEV_KEY_LEN) {
            memcpy(d->devkey, key, FOTADEV_KEY_LEN + 1);
            d->api_id = (long long)json_integer_value(json_object_get(dev, "id"));
            s->registered++;
            fotasim_dev_rekey(d);
            fotasim_dev_boot(d);
        } else {
            api_fail(s, "device registration", code, body);
            d->state = DEV_FAILED;
            d->reason = "registration failed";
            fotasim_check_done(s);
        }
        json_decref(j);
    } else if (code != 200 && code != 202) {
        /* 504: the device did not answer in time; the device's own timers
         * and the next connection retry */
        api_fail(s, "rpc", code, body);
    }
    call_unlink(c);
    free(c);
}

static struct evhttp_connection *next_conn(struct fotasim *s)
{
    return s->api[s->api_next++ % FOTASIM_API_CONNS];
}

static int send_req(struct fotasim *s, struct fotasim_dev *d, int kind, enum evhttp_cmd_type m,
                    const char *uri, const char *key, const char *json)
{
    struct fotasim_api_call *c = calloc(1, sizeof(*c));
    struct evhttp_request *req;
    struct evkeyvalq *h;
    char auth[64], host[80];

    if (!c)
        return FOTA_ENOMEM;
    c->s = s;
    c->d = d;
    c->kind = kind;
    req = evhttp_request_new(done_cb, c);
    if (!req) {
        free(c);
        return FOTA_ENOMEM;
    }
    h = evhttp_request_get_output_headers(req);
    snprintf(auth, sizeof(auth), "token %s", key);
    snprintf(host, sizeof(host), "%s:%d", s->o.server, s->o.http_port);
    evhttp_add_header(h, "Host", host);
    evhttp_add_header(h, "Authorization", auth);
    if (json) {
        evhttp_add_header(h, "Content-Type", "application/json");
        evbuffer_add(evhttp_request_get_output_buffer(req), json, strlen(json));
    }
    if (evhttp_make_request(next_conn(s), req, m, uri) != 0) {
        free(c);                      /* evhttp frees req on failure */
        return FOTA_EIO;
    }
    s->api_pending++;
    c->next = s->api_calls;             /* answered or freed at cleanup */
    if (c->next)
        c->next->pprev = &c->next;
    c->pprev = &s->api_calls;
    s->api_calls = c;
    return 0;
}

int fotasim_api_register_all(struct fotasim *s)
{
    char uri[160], body[160];
    int i, rc;

    if (!s->o.product) {
        fprintf(stderr, "fota-sim: --key needs --product ID to register devices\n");
        return FOTA_EINVAL;
    }
    snprintf(uri, sizeof(uri), "/v1/products/%s/devices/", s->o.product);
    for (i = 0; i < s->o.devices; i++) {
        const uint8_t *m = s->devs[i].bssid;
        snprintf(body, sizeof(body),
                 "{\"name\": \"sim-%u-%d\", \"bssid\": \"%02x:%02x:%02x:%02x:%02x:%02x\"}",
                 (unsigned)s->o.seed, i, m[0], m[1], m[2], m[3], m[4], m[5]);
        if ((rc = send_req(s, &s->devs[i], 0, EVHTTP_REQ_POST, uri, s->o.admin_key, body)) < 0)
            return rc;
    }
    return 0;
}

void fotasim_api_rpc(struct fotasim_dev *d, const char *action)
{
    struct fotasim *s = d->sim;
    char uri[200];
    /* the app waits for the device's reply 30 s (fotad's default) scaled
     * like the device timers, at least 5 s: a device that loses power
     * before replying must not hold the shared API connection for 30 s */
    double t = 30.0 / s->o.time_scale;
    unsigned wait_s = t < 5.0 ? 5u : t > 30.0 ? 30u : (unsigned)t;

    if (!s->o.admin_key)
        return;                       /* no API: the server pushes on its own */
    if (strcmp(action, "sys_upgrade") == 0)
        snprintf(uri, sizeof(uri),
                 "/v1/device/rpc/?deliver_to_device=true&action=sys_upgrade&version=%s&timeout=%u",
                 s->o.upgrade_to_enc, wait_s);
    else
        snprintf(uri, sizeof(uri), "/v1/device/rpc/?deliver_to_device=true&action=%s&timeout=%u",
                 action, wait_s);
    if (send_req(s, d, 1, EVHTTP_REQ_GET, uri, d->devkey, NULL) < 0)
        api_fail(s, "rpc", 0, "cannot send");
}
