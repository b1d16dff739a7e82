/* fotasim_api.h - fota-sim's REST client (libevent evhttp): a few
 * keep-alive connections to the server's HTTP port, requests with a key,
 * answers to a callback. It knows nothing of devices or of what the
 * requests mean (fotasim_app.c does). */
#ifndef FOTASIM_API_H
#define FOTASIM_API_H

#include <event2/event.h>

#define FOTASIM_API_CONNS 4

struct evhttp_connection;
struct fotasim_api_call;

/* The answer: status (0 when the request failed without one) and the first
 * bytes of the body (NUL-terminated, valid during the call). */
typedef void (*fotasim_api_cb)(void *ud, int status, const char *body);

struct fotasim_api {
    struct evhttp_connection *conn[FOTASIM_API_CONNS];
    char host[80];                /* Host: header */
    unsigned next, pending;
    struct fotasim_api_call *calls; /* in flight: freed at cleanup if unanswered */
};

/* Connections to server:port (numeric address). Returns 0 or FOTA_ENOMEM;
 * call fotasim_api_cleanup either way. */
int fotasim_api_init(struct fotasim_api *api, struct event_base *base, const char *server, int port);
/* Drops every connection and unanswered request (their callbacks are not
 * called). */
void fotasim_api_cleanup(struct fotasim_api *api);
/* Sends method ("GET", "POST") uri with `Authorization: token KEY` and an
 * optional JSON body; cb(ud, ...) gets the answer. Returns 0 or FOTA_E*. */
int fotasim_api_request(struct fotasim_api *api, const char *method, const char *uri,
                        const char *key, const char *json, fotasim_api_cb cb, void *ud);

#endif
