/* http_module.c - the http module (first in main.c's table): its settings
 * (ports, body limit, timeout, worker loops), the worker loops it asks core
 * for, and the life cycle of the HTTP server (http.c) around the other
 * modules, which add their routes in their own start(). */
#include <unistd.h>

#include "http_int.h"
#include "log.h"

#define ROW(f) FOTA_CONF_FIELD(struct fota_http_conf, f)
static const struct fota_conf_opt http_rows[] = {
    { "http_port", FOTA_CONF_T_PORT, ROW(http_port), "80", 0, 65535, 0,
      "REST API, ROM download and web console. 0 = ephemeral, off = disabled." },
    { "https_port", FOTA_CONF_T_PORT, ROW(https_port), "443", 0, 65535, FOTA_CONF_TLS,
      "Same as http_port over TLS; used only when tls_cert and tls_key are set." },
    { "max_upload", FOTA_CONF_T_SIZE, ROW(max_upload), "16M", 1024, 1ull << 30, FOTA_CONF_RELOAD,
      "Largest request body (ROM upload), bytes; K/M/G suffixes are binary (KiB, MiB, GiB). A body over 64 KiB is an upload: the admin key must be on its headers, checked before the body is read." },
    { "upload_memory", FOTA_CONF_T_SIZE, ROW(upload_memory), "64M", 1024, 1ull << 36,
      FOTA_CONF_RELOAD,
      "Upload bodies (over 64 KiB) fotad holds in memory at once, bytes; an upload that would exceed it is answered 503 with Retry-After before its body is read (one upload is always let in)." },
    { "stream_memory", FOTA_CONF_T_SIZE, ROW(stream_memory), "64M", 1024, 1ull << 36,
      FOTA_CONF_RELOAD,
      "Unsent bytes of all message streams (GET /v1/messages/?follow=true) together, bytes; beyond it the readers furthest behind are cut off (one stream is cut beyond 4 MiB anyway)." },
    { "http_max_per_addr", FOTA_CONF_T_UINT, ROW(max_per_addr), "4096", 1, 1000000,
      FOTA_CONF_RELOAD,
      "HTTP and HTTPS: concurrent connections from one IP address, shared out over the loops (each takes its part); more are closed and logged. A fleet behind one NAT address downloads through it." },
    { "http_timeout", FOTA_CONF_T_UINT, ROW(http_timeout), "60", 1, 3600, FOTA_CONF_RELOAD,
      "Seconds an HTTP connection may stay idle or take to send a request." },
    { "workers", FOTA_CONF_T_UINT, ROW(workers), "0", 0, 64, 0,
      "HTTP event loops (threads) sharing http_port with SO_REUSEPORT; 0 = one per CPU core, 1 = only the main loop." },
    { NULL, 0, 0, 0, NULL, 0, 0, 0, NULL }
};

const struct fota_http_conf *fota_http_conf(const struct fota_server *srv)
{
    return fota_server_module_conf(srv, &fota_http_module);
}

static const char *const refused_labels[HTTP_REFUSED_N] = {
    [HTTP_REFUSED_UNAUTHORIZED] = "listener=\"http\",reason=\"unauthorized\"",
    [HTTP_REFUSED_BAD_REQUEST] = "listener=\"http\",reason=\"bad_request\"",
    [HTTP_REFUSED_UPLOAD_FORBIDDEN] = "listener=\"http\",reason=\"upload_forbidden\"",
    [HTTP_REFUSED_UPLOAD_MEMORY] = "listener=\"http\",reason=\"upload_memory\"",
    [HTTP_REFUSED_PER_ADDR] = "listener=\"http\",reason=\"per_address\"",
    [HTTP_REFUSED_DESCRIPTORS] = "listener=\"http\",reason=\"descriptors\"",
};
static const struct fota_metric_desc refused_desc =
    FOTA_METRIC_REFUSED(HTTP_REFUSED_N, refused_labels);
static const struct fota_metric_desc requests_desc = {
    "fota_http_requests_total", "HTTP requests received (every loop, HTTP and HTTPS).",
    FOTA_METRIC_COUNTER, 0, NULL
};

static const struct fota_metric_desc quick_desc = {
    "fota_http_quick_answers_total", "HTTP requests answered from their head alone, before "
    "evhttp parsed them (a current Arduino device's check-in: 304; a stock device's HEAD "
    "before its download).",
    FOTA_METRIC_COUNTER, 1, NULL
};

static void requests_collect(void *ud, struct fota_metric_out *o)
{
    const struct fota_http *h = ud;
    fota_metric_put(o, NULL, (int64_t)__atomic_load_n(&h->next_req, __ATOMIC_RELAXED));
}

void fota_http__refused(struct fota_http *h, int status)
{
    int r = status == 401 ? HTTP_REFUSED_UNAUTHORIZED
          : status == 403 ? HTTP_REFUSED_UPLOAD_FORBIDDEN
          : status == 503 ? HTTP_REFUSED_UPLOAD_MEMORY
          : HTTP_REFUSED_BAD_REQUEST;
    fota_metric_inc(&h->m_refused[r]);
}

void fota_http__refused_as(struct fota_http *h, int reason)
{
    if (reason >= 0 && reason < HTTP_REFUSED_N)
        fota_metric_inc(&h->m_refused[reason]);
}

int fota_http__metrics_register(struct fota_http *h)
{
    int rc = fota_metric_register_fn(h->srv, &requests_desc, requests_collect, h);
    if (rc >= 0)
        rc = fota_metric_register(h->srv, &quick_desc, &h->m_quick);
    return rc < 0 ? rc : fota_metric_register(h->srv, &refused_desc, h->m_refused);
}

static int http_start(struct fota_server *srv, void **state)
{
    const struct fota_http_conf *c = fota_http_conf(srv);
    long want = c->workers ? (long)c->workers : sysconf(_SC_NPROCESSORS_ONLN);
    if (want < 1)
        want = 1;
    if (c->http_port == FOTA_PORT_OFF && !srv->ssl_ctx)
        want = 1;   /* the workers only serve HTTP */
    int rc = fota_server_add_loops(srv, (int)want);
    if (rc != 0)
        return rc;
    struct fota_http *h = fota_http_new(srv);
    rc = fota_http__metrics_register(h);
    if (rc == 0)
        rc = fota_http__test_routes(srv);   /* test builds only (http_test.c) */
    if (rc == 0)
        rc = fota_http_listen(h);
    if (rc != 0) {
        fota_http_free(h);
        return rc;
    }
    *state = h;
    return 0;
}

static void http_loop_start(struct fota_server *srv, void *state, struct fota_loop *loop)
{
    (void)srv;
    fota_http_loop_start(state, loop);
}

static void http_reload(struct fota_server *srv, void *state)
{
    (void)srv;
    fota_http_reload(state);
}

static void http_drain(struct fota_server *srv, void *state)
{
    (void)srv;
    fota_http_drain(state);
}

static int http_busy(struct fota_server *srv, void *state)
{
    (void)srv;
    return fota_http_busy(state);
}

static void http_stop(struct fota_server *srv, void *state)
{
    (void)srv;
    fota_http_free(state);
}

const struct fota_module fota_http_module = {
    .name = "http",
    .conf_opts = http_rows,
    .conf_size = sizeof(struct fota_http_conf),
    .start = http_start,
    .loop_start = http_loop_start,
    .reload = http_reload,
    .drain = http_drain,
    .busy = http_busy,
    .stop = http_stop,
};
