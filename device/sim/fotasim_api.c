/* fotasim_api.c - fota-sim's REST client: evhttp requests spread over a
 * few keep-alive connections, each answer handed to its callback with the
 * status and the start of the body. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "fota_err.h"
#include "fotasim_api.h"

struct fotasim_api_call {
    struct fotasim_api *api;
    fotasim_api_cb cb;
    void *ud;
    struct fotasim_api_call *next, **pprev;  /* api->calls */
};

static void call_unlink(struct fotasim_api_call *c)
{
    *c->pprev = c->next;
    if (c->next)
        c->next->pprev = c->pprev;
}

int fotasim_api_init(struct fotasim_api *api, struct event_base *base, const char *server, int port)
{
    int i;
    memset(api, 0, sizeof(*api));
    snprintf(api->host, sizeof(api->host), "%s:%d", server, port);
    for (i = 0; i < FOTASIM_API_CONNS; i++) {
        api->conn[i] = evhttp_connection_base_new(base, NULL, server, (uint16_t)port);
        if (!api->conn[i])
            return FOTA_ENOMEM;
        evhttp_connection_set_timeout(api->conn[i], 30);
    }
    return 0;
}

void fotasim_api_cleanup(struct fotasim_api *api)
{
    int i;
    for (i = 0; i < FOTASIM_API_CONNS; i++)
        if (api->conn[i])
            evhttp_connection_free(api->conn[i]);   /* drops queued requests, no callback */
    while (api->calls) {
        struct fotasim_api_call *c = api->calls;
        call_unlink(c);
        free(c);
    }
    memset(api->conn, 0, sizeof(api->conn));
}

static void done_cb(struct evhttp_request *req, void *arg)
{
    struct fotasim_api_call *c = arg;
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
    c->api->pending--;
    call_unlink(c);
    c->cb(c->ud, code, body);
    free(c);
}

int fotasim_api_request(struct fotasim_api *api, const char *method, const char *uri,
                        const char *key, const char *json, fotasim_api_cb cb, void *ud)
{
    struct fotasim_api_call *c = calloc(1, sizeof(*c));
    struct evhttp_request *req;
    struct evkeyvalq *h;
    char auth[64];

    if (!c)
        return FOTA_ENOMEM;
    c->api = api;
    c->cb = cb;
    c->ud = ud;
    if (!(req = evhttp_request_new(done_cb, c))) {
        free(c);
        return FOTA_ENOMEM;
    }
    h = evhttp_request_get_output_headers(req);
    snprintf(auth, sizeof(auth), "token %s", key);
    evhttp_add_header(h, "Host", api->host);
    evhttp_add_header(h, "Authorization", auth);
    if (json) {
        evhttp_add_header(h, "Content-Type", "application/json");
        evbuffer_add(evhttp_request_get_output_buffer(req), json, strlen(json));
    }
    if (evhttp_make_request(api->conn[api->next++ % FOTASIM_API_CONNS], req,
                            strcmp(method, "POST") == 0 ? EVHTTP_REQ_POST : EVHTTP_REQ_GET, uri) != 0) {
        free(c);                      /* evhttp frees req on failure */
        return FOTA_EIO;
    }
    api->pending++;
    c->next = api->calls;             /* answered or freed at cleanup */
    if (c->next)
        c->next->pprev = &c->next;
    c->pprev = &api->calls;
    api->calls = c;
    return 0;
}
