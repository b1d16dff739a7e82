/* metrics_module.c - the metrics module (last in main.c's table): its
 * settings, GET /metrics on the HTTP port behind the admin key (any loop),
 * the keyless listener of metrics_bind (the usual Prometheus set-up, on a
 * loopback or management address), and the metrics it owns itself: the
 * build, the process (the names every Prometheus client library uses), the
 * store's census and latencies. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "addr.h"
#include "heap.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "store_exec.h"
#include "xmalloc.h"

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct metrics_state {
    struct fota_server *srv;
    struct fota_metrics_census census;
    struct evhttp *listener;           /* metrics_bind's, on the last loop; NULL without */
};

/* "ADDR:PORT" (IPv6 in brackets) into addr and port. 0 or FOTA_EINVAL. */
static int bind_parse(const char *text, char *addr, size_t cap, int *port)
{
    const char *colon = strrchr(text, ':');
    const char *a = text, *a_end = colon;
    if (!colon || colon[1] == '\0')
        return FOTA_EINVAL;
    if (text[0] == '[') {
        a = text + 1;
        a_end = strchr(text, ']');
        if (!a_end || a_end + 1 != colon)
            return FOTA_EINVAL;
    } else if (strchr(text, ':') != colon) {
        return FOTA_EINVAL;   /* an IPv6 address needs its brackets */
    }
    char *end = NULL;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p < 0 || p > 65535 || (size_t)(a_end - a) >= cap || a_end == a)
        return FOTA_EINVAL;
    memcpy(addr, a, (size_t)(a_end - a));
    addr[a_end - a] = '\0';
    struct sockaddr_storage ss;
    socklen_t sl;
    if (fota_addr_parse(addr, (int)p, &ss, &sl, NULL, 0) != 0)
        return FOTA_EINVAL;
    *port = (int)p;
    return 0;
}

static int metrics_conf_check(const void *base, char *err, size_t errlen)
{
    const struct fota_metrics_conf *c = base;
    char addr[80];
    int port;
    if (c->bind[0] && bind_parse(c->bind, addr, sizeof addr, &port) != 0) {
        snprintf(err, errlen, "metrics_bind: \"%s\" is not ADDR:PORT with a numeric address "
                              "(127.0.0.1:9100, [::1]:9100)", c->bind);
        return FOTA_ECONFIG;
    }
    return 0;
}

/* ---- the metrics this module owns */

static const struct fota_metric_desc build_desc = {
    "fota_build_info", "The running fotad (value 1, its version as a label).",
    FOTA_METRIC_GAUGE, 0, NULL
};
static const struct fota_metric_desc cpu_desc = {
    "process_cpu_seconds_total", "User and system CPU time fotad has used.",
    FOTA_METRIC_COUNTER, 0, NULL
};
static const struct fota_metric_desc rss_desc = {
    "process_resident_memory_bytes", "Resident memory size.", FOTA_METRIC_GAUGE, 0, NULL
};
static const struct fota_metric_desc heap_desc = {
    "fota_heap_bytes", "Bytes fotad holds on its heap (allocated, not yet freed).",
    FOTA_METRIC_GAUGE, 0, NULL
};
static const struct fota_metric_desc vsz_desc = {
    "process_virtual_memory_bytes", "Virtual memory size.", FOTA_METRIC_GAUGE, 0, NULL
};
static const struct fota_metric_desc fds_desc = {
    "process_open_fds", "Open file descriptors.", FOTA_METRIC_GAUGE, 0, NULL
};
static const struct fota_metric_desc max_fds_desc = {
    "process_max_fds", "The limit of open file descriptors (RLIMIT_NOFILE).",
    FOTA_METRIC_GAUGE, 0, NULL
};
static const struct fota_metric_desc start_desc = {
    "process_start_time_seconds", "When fotad started, Unix time.", FOTA_METRIC_GAUGE, 0, NULL
};

static void build_collect(void *ud, struct fota_metric_out *o)
{
    static const char *const names[] = { "version" };
    static const char *const values[] = { FOTA_VERSION_STRING };
    (void)ud;
    fota_metric_put_kv(o, 1, 1, names, values);
}

/* Entries of /proc/self/fd, its own descriptor left out. */
static int64_t open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int64_t n = 0;
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1;
}

static void process_collect(void *ud, struct fota_metric_out *o)
{
    struct fota_server *srv = ud;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    fota_metric_put_ns(o, NULL, ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
                                    ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000);
    long long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "re");
    if (f) {
        if (fscanf(f, "%lld %lld", &pages, &resident) != 2)
            pages = resident = 0;
        fclose(f);
    }
    int64_t page = sysconf(_SC_PAGESIZE);
    fota_metric_begin(o, &rss_desc);
    fota_metric_put(o, NULL, resident * page);
    fota_metric_begin(o, &heap_desc);
    fota_metric_put(o, NULL, fota_heap_in_use());
    fota_metric_begin(o, &vsz_desc);
    fota_metric_put(o, NULL, pages * page);
    fota_metric_begin(o, &fds_desc);
    fota_metric_put(o, NULL, open_fds());
    struct rlimit rl;
    fota_metric_begin(o, &max_fds_desc);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        fota_metric_put(o, NULL, rl.rlim_cur == RLIM_INFINITY ? -1 : (int64_t)rl.rlim_cur);
    fota_metric_begin(o, &start_desc);
    fota_metric_put(o, NULL, srv->started);
}

/* ---- serving */

static struct evbuffer *render(const struct metrics_state *m)
{
    struct evbuffer *b = evbuffer_new();
    if (b)
        fota_metric_render(&m->srv->metrics, b);
    return b;
}

/* GET /metrics on the HTTP port: the admin key (a store job: the census
 * queries; the rest is atomics). */
static void route_metrics(struct fota_req *r)
{
    struct fota_key k;
    if (fota_req_admin(r, &k) < 0)
        return;
    struct evbuffer *b = render(r->ud);
    r->quiet = 1;   /* a scrape every few seconds: its access line at DEBUG */
    fota_reply_raw(r, 200, CONTENT_TYPE, b);
    evbuffer_free(b);
}

/* A scrape of the keyless listener: rendered by a store job (the census
 * queries are store ops, which must not wait on a loop), answered on the
 * listener's loop. */
struct scrape {
    const struct metrics_state *m;
    struct evhttp_request *req;
    struct evbuffer *body;
};

static void scrape_render(struct fota_store *s, void *arg)
{
    struct scrape *sc = arg;
    (void)s;
    sc->body = render(sc->m);
}

/* On the listener's loop. A client gone meanwhile: evhttp let go of its
 * connection, and sending the reply frees the request. Cancelled (the loop
 * is stopping): evhttp_free frees the request with its connection. */
static void scrape_done(void *arg, int cancelled)
{
    struct scrape *sc = arg;
    if (!cancelled) {
        struct evkeyvalq *oh = evhttp_request_get_output_headers(sc->req);
        if (sc->body) {
            evhttp_add_header(oh, "Content-Type", CONTENT_TYPE);
            evhttp_send_reply(sc->req, 200, "OK", sc->body);
        } else {
            evhttp_send_error(sc->req, 500, "cannot render the metrics");
        }
    }
    if (sc->body)
        evbuffer_free(sc->body);
    free(sc);
}

/* Every request on the keyless listener: /metrics, or 404 (HEAD: evhttp
 * sends the headers only). */
static void listener_request(struct evhttp_request *req, void *ud)
{
    const struct metrics_state *m = ud;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    if (path && strcmp(path, "/metrics") == 0) {
        struct scrape *sc = fota_xcalloc(1, sizeof *sc);
        sc->m = m;
        sc->req = req;
        struct fota_loop *loop = m->srv->loops[m->srv->nloops - 1];
        int rc = fota_store_submit(m->srv->exec, NULL, loop, scrape_render, scrape_done, sc);
        if (rc == 0)
            return;
        free(sc);
        evhttp_add_header(oh, "Retry-After", "1");
        evhttp_send_error(req, 503, "store busy");
        return;
    }
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "fotad serves /metrics here\n");
    evhttp_add_header(oh, "Content-Type", "text/plain; charset=utf-8");
    evhttp_send_reply(req, 404, "Not Found", b);
    evbuffer_free(b);
}

/* metrics_bind's listener, on the last loop (a worker when there is one:
 * the census queries of a scrape never hold up the device channel). */
static int listener_start(struct metrics_state *m, const char *bind)
{
    char addr[80];
    int port, bound = 0;
    if (bind_parse(bind, addr, sizeof addr, &port) != 0)
        return FOTA_ECONFIG;   /* the check refused it already */
    int fd = fota_server_bind_addr(m->srv, "metrics", addr, port, &bound);
    if (fd < 0)
        return fd;
    struct event_base *base = fota_loop_base(m->srv->loops[m->srv->nloops - 1]);
    m->listener = evhttp_new(base);
    evhttp_set_allowed_methods(m->listener, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_timeout(m->listener, 30);
    evhttp_set_max_headers_size(m->listener, 8192);
    evhttp_set_max_body_size(m->listener, 0);
    evhttp_set_gencb(m->listener, listener_request, m);
    if (!evhttp_accept_socket_with_handle(m->listener, fd)) {
        FOTA_ERROR("cannot listen proto=metrics error=\"evhttp_accept_socket failed\"");
        close(fd);
        return FOTA_EIO;
    }
    return 0;
}

static void metrics_stop(struct fota_server *srv, void *state)
{
    struct metrics_state *m = state;
    (void)srv;
    if (!m)
        return;
    if (m->listener)
        evhttp_free(m->listener);
    free(m);
}

static int metrics_start(struct fota_server *srv, void **state)
{
    const struct fota_metrics_conf *c = fota_server_module_conf(srv, &fota_metrics_module);
    struct metrics_state *m = fota_xcalloc(1, sizeof *m);
    m->srv = srv;
    m->census.srv = srv;
    m->census.versions_max = c->versions_max;
    *state = m;
    int rc = fota_metric_register_fn(srv, &build_desc, build_collect, NULL);
    if (rc == 0)
        rc = fota_metric_register_fn(srv, &cpu_desc, process_collect, srv);
    if (rc == 0)
        rc = fota_metrics_census_register(srv, &m->census);
    if (rc < 0)
        FOTA_ERROR("metrics: cannot register error=%s", fota_errname(rc));
    if (rc == 0 && srv->http)
        rc = fota_http_route_flags(srv, FOTA_M_GET, "/metrics", route_metrics, m,
                                   FOTA_ROUTE_STORE);
    if (rc == 0 && c->bind[0])
        rc = listener_start(m, c->bind);
    if (rc < 0) {
        metrics_stop(srv, m);
        *state = NULL;
    }
    return rc;
}

#define ROW(f) FOTA_CONF_FIELD(struct fota_metrics_conf, f)
static const struct fota_conf_opt metrics_rows[] = {
    { "metrics_bind", FOTA_CONF_T_STR, ROW(bind), "", 0, 0, 0,
      "GET /metrics without a key on a listener of its own, ADDR:PORT (127.0.0.1:9100; "
      "[::1]:9100); empty: only on the HTTP port, with the admin key." },
    { "metrics_versions", FOTA_CONF_T_UINT, ROW(versions_max), "10", 1, 1000, 0,
      "Versions per product shown by fota_devices_version (the most common ones); the "
      "others are summed as \"(other)\"." },
    { NULL, 0, 0, 0, NULL, 0, 0, 0, NULL }
};

const struct fota_module fota_metrics_module = {
    .name = "metrics",
    .conf_opts = metrics_rows,
    .conf_size = sizeof(struct fota_metrics_conf),
    .conf_check = metrics_conf_check,
    .start = metrics_start,
    .stop = metrics_stop,
};
