/* http_route_fuzz.c - libFuzzer target for what fotad does with a request
 * before its handler runs. The input is a request head as a client sends it
 * (request line, header lines, empty line). It goes through the head gate's
 * parser (http_head.c) line by line, whole and cut the way the gate cuts a
 * line that lies across buffer chains, and through libevent's own header
 * parser (the one evhttp runs); the target, percent-decoding, query, method
 * tunnel and route lookup follow (http_route.c) over fotad's route table,
 * plus one pattern taken from an `X-Route:` header. Then the headers
 * handlers read: Authorization (keys.c), Range (rom_range.c), Content-Type
 * (multipart.c). Checks, each an abort:
 *  - framing: whenever the gate lets a head through, evhttp reads the same
 *    body framing (chunked, the Content-Length value) and the same key, so a
 *    proxy in front, the gate and evhttp never disagree on a request's end;
 *  - a cut line never lets through what the whole line refuses;
 *  - no path the gate lets through decodes to a string with a NUL inside;
 *  - the matcher agrees with a reference matcher (segments split by strtok)
 *    on every pattern, captures included, and the lookup returns the newest
 *    route with the method, or the union of the methods of the patterns
 *    that matched;
 *  - a satisfiable Range lies inside the file. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "fota_err.h"
#include "http_head.h"
#include "http_route.h"
#include "keys.h"
#include "multipart.h"
#include "rom.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* libevent's header parser (http-internal.h; exported by libevent_extra
 * 2.1): what evhttp runs on each request's header lines. 1 = all read. */
int evhttp_parse_headers_(struct evhttp_request *req, struct evbuffer *buf);

#define LINE_KEEP 256          /* http_gate.c: bytes kept of a line across chains */
#define HEAD_MAX 16384         /* evhttp_set_max_headers_size in http.c */
#define REF_SEGS (HEAD_MAX / 2 + 1)   /* segments a head's path can have */

/* The methods fotad's evhttp takes (make_evhttp in http.c); it answers the
 * others itself. */
#define ALLOWED (EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | \
                 EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS)

/* A broken check: its line, then abort (libFuzzer saves the input). */
static void fail_at(int line)
{
    fprintf(stderr, "http_route_fuzz.c:%d: check failed\n", line);
    abort();
}
#define never() fail_at(__LINE__)

/* fotad's routes (each module's start()): pattern and methods. */
static const struct {
    const char *pattern;
    int methods;
} table[] = {
    { "/v1/ping/", FOTA_M_GET | FOTA_M_POST },
    { "/v1/device/", FOTA_M_GET },
    { "/v1/device/", FOTA_M_PUT },
    { "/v1/device/rom/", FOTA_M_GET },
    { "/v1/device/rpc/", FOTA_M_GET | FOTA_M_POST },
    { "/v1/datastreams/*/datapoint/", FOTA_M_GET | FOTA_M_POST },
    { "/v1/products/", FOTA_M_POST },
    { "/v1/products/", FOTA_M_GET },
    { "/v1/products/*/", FOTA_M_GET },
    { "/v1/products/*/", FOTA_M_DELETE },
    { "/v1/products/*/devices/", FOTA_M_POST },
    { "/v1/products/*/devices/", FOTA_M_GET },
    { "/v1/products/*/roms/", FOTA_M_POST },
    { "/v1/products/*/roms/", FOTA_M_GET },
    { "/v1/products/*/roms/*/current", FOTA_M_POST | FOTA_M_PUT },
    { "/v1/products/*/roms/*/", FOTA_M_GET },
    { "/v1/products/*/roms/*/", FOTA_M_DELETE },
    { "/v1/products/*/roms/*/files/*", FOTA_M_GET },
    { "/v1/products/*/arduino", FOTA_M_GET | FOTA_M_PUT },
    { "/v1/products/*/mqtt", FOTA_M_GET | FOTA_M_PUT },
    { "/v1/devices/*/", FOTA_M_GET },
    { "/v1/devices/*/", FOTA_M_DELETE },
    { "/v1/devices/*/master_device_key.bin", FOTA_M_GET },
    { "/v1/devices/*/commands/", FOTA_M_GET },
    { "/v1/devices/*/rotate_keys", FOTA_M_POST },
    { "/v1/messages/", FOTA_M_GET },
    { "/v1/rollouts/", FOTA_M_POST },
    { "/v1/rollouts/", FOTA_M_GET },
    { "/v1/rollouts/*/", FOTA_M_GET },
    { "/v1/rollouts/*/cancel", FOTA_M_POST },
    { "/v1/rollouts/*/devices/", FOTA_M_GET },
    { "/v1/legacy/transfers/", FOTA_M_GET },
    { "/v1/arduino/*/*", FOTA_M_GET },
    { "/v1/arduino/*/d/*/*", FOTA_M_GET },
    { "/v1/backup", FOTA_M_GET },
    { "/metrics", FOTA_M_GET },
};
#define NTABLE (sizeof(table) / sizeof(table[0]))

static void handler(struct fota_req *r)
{
    (void)r;
}

static struct fota_http_routes routes;

static void routes_init(void)
{
    if (routes.head)
        return;
    for (size_t i = 0; i < NTABLE; i++)
        if (fota_http_routes_add(&routes, table[i].methods, table[i].pattern, handler, NULL, 0))
            never();
}

/* ------------------------------------------------------ reference matcher */

/* The non-empty '/'-separated segments of s (a copy in buf): their count, or
 * -1 beyond max. */
static int segments(const char *s, char *buf, size_t cap, char **seg, int max)
{
    char *save = NULL;
    int n = 0;
    size_t len = strlen(s);
    if (len >= cap)
        return -1;
    memcpy(buf, s, len + 1);
    for (char *t = strtok_r(buf, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
        if (n == max)
            return -1;
        seg[n++] = t;
    }
    return n;
}

/* The matcher's contract (http_route.h), written another way: as many
 * segments on both sides, '*' takes one of fewer than FOTA_ROUTE_CAP_LEN
 * bytes (at most FOTA_ROUTE_MAX_CAPS), the rest equal. */
static int ref_match(const char *pat, const char *path, char caps[][FOTA_ROUTE_CAP_LEN],
                     int *ncaps)
{
    static char pbuf[HEAD_MAX + 1], sbuf[HEAD_MAX + 1];
    static char *ps[REF_SEGS], *ss[REF_SEGS];
    int np = segments(pat, pbuf, sizeof pbuf, ps, REF_SEGS);
    int ns = segments(path, sbuf, sizeof sbuf, ss, REF_SEGS);
    int n = 0;

    if (np < 0 || ns < 0 || np != ns)
        return 0;
    for (int i = 0; i < np; i++) {
        if (strcmp(ps[i], "*") == 0) {
            size_t l = strlen(ss[i]);
            if (n == FOTA_ROUTE_MAX_CAPS || l >= FOTA_ROUTE_CAP_LEN)
                return 0;
            memcpy(caps[n++], ss[i], l + 1);
        } else if (strcmp(ps[i], ss[i]) != 0) {
            return 0;
        }
    }
    *ncaps = n;
    return 1;
}

static void check_routes(const struct fota_http_routes *t, const char *path, int method)
{
    char caps[FOTA_ROUTE_MAX_CAPS][FOTA_ROUTE_CAP_LEN], rcaps[FOTA_ROUTE_MAX_CAPS][FOTA_ROUTE_CAP_LEN];
    int ncaps = -1, rn = -1, allowed = -1, want_allowed = 0;
    const struct fota_http_route_entry *want = NULL;

    for (const struct fota_http_route_entry *rt = t->head; rt; rt = rt->next) {
        int m = fota_http_route_match(rt->pattern, path, caps, &ncaps);
        int rm = ref_match(rt->pattern, path, rcaps, &rn);
        if (m != rm)
            never();
        if (!m)
            continue;
        if (ncaps != rn)
            never();
        for (int i = 0; i < ncaps; i++)
            if (strcmp(caps[i], rcaps[i]) != 0)
                never();
        if (!want && (rt->methods & method))
            want = rt;
        if (!want)
            want_allowed |= rt->methods;
    }
    const struct fota_http_route_entry *got =
        fota_http_routes_find(t, path, method, caps, &ncaps, &allowed);
    if (got != want || (!got && allowed != want_allowed))
        never();
}

/* ----------------------------------------------------------- request line */

/* evhttp_parse_request_line's split (libevent 2.1): three tokens separated
 * by single spaces, a method it knows, HTTP/1.x. 0, or -1 (evhttp's 400). */
static int request_line(char *line, int *method, char **uri)
{
    static const struct {
        const char *name;
        int type;
    } methods[] = {
        { "GET", EVHTTP_REQ_GET },         { "POST", EVHTTP_REQ_POST },
        { "HEAD", EVHTTP_REQ_HEAD },       { "PUT", EVHTTP_REQ_PUT },
        { "DELETE", EVHTTP_REQ_DELETE },   { "OPTIONS", EVHTTP_REQ_OPTIONS },
        { "TRACE", EVHTTP_REQ_TRACE },     { "CONNECT", EVHTTP_REQ_CONNECT },
        { "PATCH", EVHTTP_REQ_PATCH },
    };
    char *rest = line, *m = strsep(&rest, " ");
    if (!rest)
        return -1;
    *uri = strsep(&rest, " ");
    if (!rest)
        return -1;
    char *version = strsep(&rest, " ");
    if (rest || strncmp(version, "HTTP/1.", 7) != 0 || version[7] < '0' || version[7] > '9')
        return -1;
    *method = 0;
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strcmp(m, methods[i].name) == 0)
            *method = methods[i].type;
    return 0;
}

/* ---------------------------------------------------------------- headers */

/* The gate's view of a head fed whole and cut (the first LINE_KEEP bytes
 * of each line, as http_gate.c copies a line across chains): the cut view
 * may refuse more, never less (but for a NUL it does not see), and what it
 * lets through reads the same. */
static void check_cut(const struct fota_http_head *whole, const struct fota_http_head *cut,
                      int nul_beyond)
{
    if (cut->err)
        return;
    if (nul_beyond && whole->err == FOTA_HEAD_E_NUL)
        return;   /* a NUL past the kept bytes: evhttp cuts that value there, no more */
    if (whole->err || whole->method != cut->method || whole->has_cl != cut->has_cl ||
        whole->cl != cut->cl || whole->chunked != cut->chunked)
        never();
    if (cut->auth_len != whole->auth_len && cut->auth_len != FOTA_HEAD_AUTH_MAX + 1)
        never();
}

/* done: the head's empty line was fed (the checks of the whole head ran). */
static void check_head(const struct fota_http_head *h, int done)
{
    if (h->auth_len < -1 || h->auth_len > FOTA_HEAD_AUTH_MAX + 1)
        never();
    if (h->auth_len >= 0 && !memchr(h->auth, '\0', sizeof h->auth))
        never();
    if (done && h->err == 0 && h->method == FOTA_HEAD_M_OTHER && fota_http_head_has_body(h))
        never();
    if (done && h->err == 0 && h->has_cl && h->chunked)
        never();
    const char *why = fota_http_head_errstr(h->err);
    if (!why || (h->err != 0) != (why[0] != '\0'))
        never();
}

/* The key a value names (keys.c), checked to lie inside it. */
static int key_of(const char *v, const char **k, size_t *kl)
{
    if (fota_key_from_header(v, k, kl) != 0)
        return 0;
    if (*k < v || *kl == 0 || *k + *kl > v + strlen(v))
        never();
    return 1;
}

/* Where the gate let the head through, evhttp reads the same framing and
 * the same key (h: the gate's view; hs: evhttp's header list). */
static void check_framing(const struct fota_http_head *h, struct evkeyvalq *hs, int method)
{
    const char *te = evhttp_find_header(hs, "Transfer-Encoding");
    const char *cl = evhttp_find_header(hs, "Content-Length");
    const char *auth = evhttp_find_header(hs, "Authorization");

    if (h->err)
        return;
    /* evhttp_get_body: chunked when the first Transfer-Encoding is
     * "chunked" (any case), else by the first Content-Length. */
    int ev_chunked = te && evutil_ascii_strcasecmp(te, "chunked") == 0;
    if (ev_chunked != h->chunked || (te && !ev_chunked))
        never();
    if (!cl != !h->has_cl)
        never();
    if (cl) {
        char *end;
        long long n = strtoll(cl, &end, 10);   /* evhttp_get_body_length */
        int ev_ok = *cl != '\0' && *end == '\0' && n >= 0;
        if (ev_ok && (uint64_t)n != h->cl && !(n == INT64_MAX && h->cl >= (uint64_t)INT64_MAX))
            never();
    }
    /* A body is read only for POST and PUT (evhttp_method_may_have_body,
     * PATCH aside: fotad does not allow it). */
    if (fota_http_head_has_body(h) && method != EVHTTP_REQ_POST && method != EVHTTP_REQ_PUT)
        never();
    if ((h->auth_len >= 0) != (auth != NULL))
        never();
    if (auth && h->auth_len <= FOTA_HEAD_AUTH_MAX) {
        const char *k1, *k2;
        size_t l1, l2;
        int g = key_of(h->auth, &k1, &l1), e = key_of(auth, &k2, &l2);
        if (g && e && (l1 != l2 || memcmp(k1, k2, l1) != 0))
            never();
        (void)fota_http_head_auth_other(h->auth, (size_t)h->auth_len);
    }
}

/* Range, Content-Type and an extra route pattern from the header list. */
static void check_values(struct evkeyvalq *hs)
{
    static const int64_t sizes[] = { 0, 1, 2, 1000, 1 << 20, INT64_MAX };
    const char *range = evhttp_find_header(hs, "Range");
    const char *ct = evhttp_find_header(hs, "Content-Type");

    if (range) {
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            int64_t from = -7, to = -7;
            int r = fota_rom_range(range, sizes[i], &from, &to);
            if (r < -1 || r > 1 || (r == 1 && (from < 0 || from > to || to >= sizes[i])))
                never();
        }
    }
    if (ct) {
        char b[FOTA_MP_BOUNDARY_MAX + 1];
        b[0] = 'x';
        if (fota_multipart_boundary(ct, b, sizeof b) == 0 &&
            (!memchr(b, '\0', sizeof b) || b[0] == '\0'))
            never();
    }
}

/* ------------------------------------------------------------------ route */

/* The request target as dispatch reads it (http.c req_new), then the
 * route lookup with the extra pattern (if any) as the newest route. */
static void check_target(const char *uri_text, int ev_method, const char *extra)
{
    struct evhttp_uri *uri = evhttp_uri_parse_with_flags(uri_text, EVHTTP_URI_NONCONFORMANT);
    struct evkeyvalq query;
    int head = 0;

    if (!uri)
        return;   /* evhttp's 400 */
    TAILQ_INIT(&query);
    const char *raw = evhttp_uri_get_path(uri), *q = evhttp_uri_get_query(uri);
    char *path = fota_http_route_path(raw);
    int bad_query = q && evhttp_parse_query_str(q, &query) != 0;
    int method = fota_http_route_method(
        ev_method, ev_method == EVHTTP_REQ_POST ? evhttp_find_header(&query, "method") : NULL,
        &head);
    if (head != (ev_method == EVHTTP_REQ_HEAD) || (head && method != EVHTTP_REQ_GET))
        never();
    if (!path)
        goto out;
    if (!fota_http_route_has_nul(raw)) {
        /* What is let through decodes without a NUL inside. */
        size_t n = 0;
        char *again = evhttp_uridecode(raw && *raw ? raw : "/", 0, &n);
        if (!again || n != strlen(path) || strcmp(again, path) != 0)
            never();
        free(again);
    }
    if (fota_http_route_has_nul(raw) || fota_http_route_has_nul(q) || bad_query)
        goto out;   /* refused with 400 */

    struct fota_http_routes t = { routes.head };
    int added = 0;
    if (extra) {
        int rc = fota_http_routes_add(&t, FOTA_M_GET | FOTA_M_POST, extra, handler, NULL, 0);
        int clash = 0;
        for (size_t i = 0; i < NTABLE; i++)
            if ((table[i].methods & (FOTA_M_GET | FOTA_M_POST)) &&
                strcmp(table[i].pattern, extra) == 0)
                clash = 1;
        if (rc != (extra[0] != '/' ? FOTA_EINVAL : clash ? FOTA_EEXIST : 0))
            never();
        added = rc == 0;
    }
    check_routes(&t, path, method);
    if (added) {
        free(t.head->pattern);
        free(t.head);
    }
out:
    free(path);
    evhttp_clear_headers(&query);
    evhttp_uri_free(uri);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size, *at = p, *nl;
    struct fota_http_head whole, cut;
    size_t first_len = 0, head_len = 0;
    int done = 0, nul_beyond = 0;

    routes_init();
    fota_http_head_init(&whole);
    fota_http_head_init(&cut);
    /* The gate: lines end at LF, a CR before it is dropped. */
    while (!done && (nl = memchr(at, '\n', (size_t)(end - at))) != NULL) {
        size_t ll = (size_t)(nl - at);
        if (ll > 0 && at[ll - 1] == '\r')
            ll--;
        if (at == p)
            first_len = (size_t)(nl - at) + 1;
        size_t kept = ll < LINE_KEEP ? ll : LINE_KEEP;
        if (ll > kept && memchr(at + kept, '\0', ll - kept))
            nul_beyond = 1;
        int w = fota_http_head_line(&whole, at, ll, 0);
        int c = fota_http_head_line(&cut, at, kept, ll > kept);
        if (w != c)
            never();
        done = w;
        at = nl + 1;
    }
    check_head(&whole, done);
    check_head(&cut, done);
    check_cut(&whole, &cut, nul_beyond);
    head_len = (size_t)(at - p);
    if (!done || head_len > HEAD_MAX)
        return 0;   /* evhttp waits for more, or refuses the head */

    /* evhttp: the request line, then its own parse of the header lines. */
    char *line = malloc(first_len + 1);
    size_t ll = first_len - 1;
    memcpy(line, p, ll);
    if (ll > 0 && line[ll - 1] == '\r')
        ll--;
    line[ll] = '\0';
    int ev_method = 0;
    char *uri_text = NULL;
    struct evhttp_request *req = evhttp_request_new(NULL, NULL);
    struct evbuffer *buf = evbuffer_new();
    if (!req || !buf)
        never();
    evbuffer_add(buf, p + first_len, head_len - first_len);
    if (request_line(line, &ev_method, &uri_text) == 0 && ev_method &&
        evhttp_parse_headers_(req, buf) == 1) {
        struct evkeyvalq *hs = evhttp_request_get_input_headers(req);
        check_framing(&whole, hs, ev_method);
        check_values(hs);
        if (ev_method & ALLOWED)
            check_target(uri_text, ev_method, evhttp_find_header(hs, "X-Route"));
    }
    evbuffer_free(buf);
    evhttp_request_free(req);
    free(line);
    return 0;
}
