/* api.c - the libcurl side of fotactl: one easy handle per run (reset but not
 * closed between requests, so the connection is kept alive), replies
 * collected into a bounded buffer and parsed with jansson, transport
 * failures turned into one sentence that names the server it tried. */
#include "api.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "fota_err.h"
#include "fota_str.h"

#ifndef FOTA_VERSION
#define FOTA_VERSION "dev"
#endif

struct buf {
    char *p;
    size_t len, cap;
    int over;          /* a write beyond the limit was refused */
};

struct fota_cli_api {
    CURL *curl;
    char server[FOTA_CLI_URL_MAX + 8];   /* base URL without trailing '/' ("http://" added) */
    char origin[FOTA_CLI_URL_MAX + 8];   /* scheme://host:port, for messages */
    long port;                           /* the port in origin; 0 when the URL has none */
    char auth[FOTA_CLI_KEY_MAX + 32];
    const char *cacert;              /* borrowed; NULL = system store */
    long stream_timeout;             /* seconds, 0 = none */
    char errbuf[CURL_ERROR_SIZE];
    struct buf body;
    /* progress bar */
    double last_draw;
    int bar_drawn, bar_full;
};

static int buf_add(struct buf *b, const void *data, size_t n, size_t limit)
{
    size_t want;
    char *np;

    if (b->len + n + 1 > limit) {
        b->over = 1;
        return FOTA_ETOOBIG;
    }
    if (b->len + n + 1 > b->cap) {
        want = b->cap ? b->cap : 4096;
        while (want < b->len + n + 1)
            want *= 2;
        np = realloc(b->p, want);
        if (!np)
            return FOTA_ENOMEM;
        b->p = np;
        b->cap = want;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static void buf_free(struct buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* Splits the configured server into the base URL and the origin shown in
 * error messages ("http://127.0.0.1:8080", port filled in). */
static void set_server(struct fota_cli_api *api, const char *server)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    size_t n;

    if (strstr(server, "://"))
        fota_str_copy(api->server, sizeof(api->server), server);
    else
        snprintf(api->server, sizeof(api->server), "http://%s", server);
    n = strlen(api->server);
    while (n > 0 && api->server[n - 1] == '/')
        api->server[--n] = '\0';
    fota_str_copy(api->origin, sizeof(api->origin), api->server);
    if (!u)
        return;
    if (curl_url_set(u, CURLUPART_URL, api->server, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK)
    {
        snprintf(api->origin, sizeof(api->origin), "%s://%s:%s", scheme, host, port);
        api->port = strtol(port, NULL, 10);
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
}

struct fota_cli_api *fota_cli_api_new(const char *server, const char *key, const char *cacert)
{
    /* libcurl's process-wide setup, once per process (fotactl is
     * single-threaded; the clients it opens share it). */
    static int global_done;
    struct fota_cli_api *api;

    if (!global_done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return NULL;
        global_done = 1;
    }
    api = calloc(1, sizeof(*api));
    if (!api)
        return NULL;
    api->curl = curl_easy_init();
    if (!api->curl) {
        free(api);
        return NULL;
    }
    set_server(api, server);
    if (key && key[0])
        snprintf(api->auth, sizeof(api->auth), "Authorization: token %s", key);
    api->cacert = cacert && cacert[0] ? cacert : NULL;
    return api;
}

void fota_cli_api_free(struct fota_cli_api *api)
{
    if (!api)
        return;
    curl_easy_cleanup(api->curl);
    buf_free(&api->body);
    free(api);
}

const char *fota_cli_api_server(const struct fota_cli_api *api)
{
    return api->server;
}

void fota_cli_api_set_timeout(struct fota_cli_api *api, long seconds)
{
    api->stream_timeout = seconds > 0 ? seconds : 0;
}

const char *fota_cli_api_header(struct fota_cli_api *api, const char *name)
{
    struct curl_header *h = NULL;

    if (curl_easy_header(api->curl, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK || !h)
        return NULL;
    return h->value;
}

int fota_cli_api_urlencode(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';

        if (o + (plain ? 1 : 3) >= cap)
            return FOTA_ETOOBIG;
        if (plain) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (o >= cap)
        return FOTA_ETOOBIG;
    out[o] = '\0';
    return 0;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct fota_cli_api *api = ud;
    size_t n = size * nmemb;

    if (buf_add(&api->body, ptr, n, FOTA_CLI_BODY_MAX) < 0)
        return 0;   /* CURLE_WRITE_ERROR */
    return n;
}

/* "Connection refused" -> "connection refused" (strerror is capitalised). */
static void lower_first(char *s)
{
    if (s[0] >= 'A' && s[0] <= 'Z' && !(s[1] >= 'A' && s[1] <= 'Z'))
        s[0] = (char)(s[0] - 'A' + 'a');
}

/* The sentence for a failed transfer into r->transport; returns its code.
 * hint (may be NULL) says the URL's port is fotad's device port. */
static int transport_sentence(struct fota_cli_api *api, CURLcode rc, const char *hint,
                              struct fota_cli_reply *r)
{
    const size_t cap = sizeof(r->transport);
    const char *detail = api->errbuf[0] ? api->errbuf : curl_easy_strerror(rc);
    long os_errno = 0;
    char why[160];

    switch (rc) {
    case CURLE_COULDNT_CONNECT:
        curl_easy_getinfo(api->curl, CURLINFO_OS_ERRNO, &os_errno);
        fota_str_copy(why, sizeof(why), os_errno ? strerror((int)os_errno) : "no route");
        lower_first(why);
        snprintf(r->transport, cap, "cannot connect to %.300s (%.300s)", api->origin, why);
        return FOTA_ECLOSED;
    case CURLE_COULDNT_RESOLVE_HOST:
        snprintf(r->transport, cap, "cannot resolve the host of %.300s", api->origin);
        return FOTA_ECLOSED;
    case CURLE_OPERATION_TIMEDOUT:
        snprintf(r->transport, cap, "%.300s did not answer in time", api->origin);
        return FOTA_ETIMEDOUT;
    case CURLE_UNSUPPORTED_PROTOCOL:
        /* Something answered, but not in HTTP (curl refuses HTTP/0.9): most
         * often fotad's device channel, given instead of its HTTP port. */
        if (strstr(api->errbuf, "HTTP/0.9")) {
            if (hint)
                snprintf(r->transport, cap, "%.300s does not answer in HTTP: %s", api->origin,
                         hint);
            else
                snprintf(r->transport, cap, "%.300s does not answer in HTTP (%ld may be fotad's "
                         "device port): the REST API is on the HTTP port, 80 by default",
                         api->origin, api->port);
            return FOTA_EIO;
        }
        /* fall through */
    case CURLE_URL_MALFORMAT:
        snprintf(r->transport, cap, "%.300s is not a usable server URL", api->server);
        return FOTA_EIO;
    case CURLE_WRITE_ERROR:
        if (api->body.over) {
            snprintf(r->transport, cap, "the reply of %.300s is too large", api->origin);
            return FOTA_ETOOBIG;
        }
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CONNECT_ERROR:
        snprintf(r->transport, cap, "TLS with %.300s failed (%.300s)%s", api->origin, detail,
                 api->cacert ? "" : "; for a private CA pass --cacert FILE");
        return FOTA_ECLOSED;
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
        snprintf(r->transport, cap, "%.300s closed the connection (%.300s)", api->origin, detail);
        return FOTA_ECLOSED;
    default:
        break;
    }
    snprintf(r->transport, cap, "request to %.300s failed (%.300s)", api->origin, detail);
    return FOTA_EIO;
}

/* Fills r->transport for a failed transfer. A URL on fotad's device port
 * (the usual wrong port) says so, whatever went wrong. */
static int transport_error(struct fota_cli_api *api, CURLcode rc, struct fota_cli_reply *r)
{
    const char *hint = fota_cli_config_port_hint(api->port);
    int code = transport_sentence(api, rc, hint, r);
    size_t n = strlen(r->transport);

    if (hint && !strstr(r->transport, hint))
        snprintf(r->transport + n, sizeof(r->transport) - n, ": %s", hint);
    return code;
}

/* Clears r and sets the options every request shares; the handle is reset
 * first so nothing leaks from the previous request, while curl keeps its
 * live connection. A path too long is reported in r. */
static int prepare(struct fota_cli_api *api, const char *path, struct curl_slist **hdrs,
                   const char *accept, struct fota_cli_reply *r)
{
    char url[FOTA_CLI_URL_MAX + 2048];
    char acc[128];
    int n;

    memset(r, 0, sizeof(*r));
    curl_easy_reset(api->curl);
    buf_free(&api->body);
    api->errbuf[0] = '\0';
    n = snprintf(url, sizeof(url), "%s%s", api->server, path);
    if (n < 0 || (size_t)n >= sizeof(url)) {
        snprintf(r->transport, sizeof(r->transport), "the request path is too long");
        return FOTA_ETOOBIG;
    }
    curl_easy_setopt(api->curl, CURLOPT_URL, url);
    curl_easy_setopt(api->curl, CURLOPT_ERRORBUFFER, api->errbuf);
    /* NOSIGNAL stays 0: fotactl is single-threaded, and so libcurl keeps
     * SIGPIPE ignored while it runs (TLS writes to a closed peer). */
    curl_easy_setopt(api->curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(api->curl, CURLOPT_USERAGENT, "fotactl/" FOTA_VERSION);
    curl_easy_setopt(api->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(api->curl, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(api->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(api->curl, CURLOPT_WRITEDATA, api);
    if (api->cacert)
        curl_easy_setopt(api->curl, CURLOPT_CAINFO, api->cacert);
    snprintf(acc, sizeof(acc), "Accept: %s", accept);
    *hdrs = curl_slist_append(*hdrs, acc);
    if (api->auth[0])
        *hdrs = curl_slist_append(*hdrs, api->auth);
    *hdrs = curl_slist_append(*hdrs, "Expect:");   /* no 100-continue round trip */
    return 0;
}

/* Moves the collected body into r (an empty one is "") and parses it as
 * JSON when it is. */
static int take_body(struct fota_cli_api *api, struct fota_cli_reply *r)
{
    json_error_t jerr;

    r->body = api->body.p ? api->body.p : calloc(1, 1);
    r->len = api->body.len;
    memset(&api->body, 0, sizeof(api->body));
    if (!r->body)
        return FOTA_ENOMEM;
    if (r->len > 0)
        r->json = json_loadb(r->body, r->len, JSON_DECODE_ANY, &jerr);
    return 0;
}

/* Runs the prepared request and fills r. */
static int perform(struct fota_cli_api *api, struct curl_slist *hdrs, struct fota_cli_reply *r)
{
    CURLcode rc;

    /* A stalled server must not hang a CI job forever. */
    curl_easy_setopt(api->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(api->curl, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(api->curl, CURLOPT_HTTPHEADER, hdrs);
    rc = curl_easy_perform(api->curl);
    if (rc != CURLE_OK)
        return transport_error(api, rc, r);
    curl_easy_getinfo(api->curl, CURLINFO_RESPONSE_CODE, &r->status);
    return take_body(api, r);
}

int fota_cli_api_call(struct fota_cli_api *api, const char *method, const char *path,
                      json_t *body, struct fota_cli_reply *r)
{
    struct curl_slist *hdrs = NULL;
    char *text = NULL;
    int rc;

    rc = prepare(api, path, &hdrs, "application/json", r);
    if (rc < 0)
        goto out;
    if (body) {
        text = json_dumps(body, JSON_COMPACT);
        if (!text) {
            rc = FOTA_ENOMEM;
            goto out;
        }
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(api->curl, CURLOPT_POSTFIELDS, text);
        curl_easy_setopt(api->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(text));
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(api->curl, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(api->curl, CURLOPT_POSTFIELDSIZE, 0L);
    }
    if (strcmp(method, "GET") == 0 && !body)
        curl_easy_setopt(api->curl, CURLOPT_HTTPGET, 1L);
    else if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(api->curl, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "POST") != 0)
        curl_easy_setopt(api->curl, CURLOPT_CUSTOMREQUEST, method);
    rc = perform(api, hdrs, r);
out:
    curl_slist_free_all(hdrs);
    free(text);
    return rc;
}

double fota_cli_api_clock(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void human(char *out, size_t cap, curl_off_t n)
{
    if (n >= 10 * 1024 * 1024)
        snprintf(out, cap, "%.1f MiB", (double)n / (1024.0 * 1024.0));
    else if (n >= 10 * 1024)
        snprintf(out, cap, "%ld KiB", (long)(n / 1024));
    else
        snprintf(out, cap, "%ld B", (long)n);
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct fota_cli_api *api = ud;
    char bar[41], a[32], b[32];
    double t = fota_cli_api_clock();
    int fill, i;

    const char *verb = "uploading";
    if (ultotal <= 0) {   /* a download's bar */
        verb = "downloading";
        ultotal = dltotal;
        ulnow = dlnow;
    }
    if (ultotal <= 0)
        return 0;
    /* Redraw at most ten times a second, and the full bar once. */
    if (ulnow < ultotal ? t - api->last_draw < 0.1 : api->bar_full)
        return 0;
    api->last_draw = t;
    api->bar_full = ulnow >= ultotal;
    fill = (int)(ulnow * 40 / ultotal);
    for (i = 0; i < 40; i++)
        bar[i] = i < fill ? '#' : ' ';
    bar[40] = '\0';
    human(a, sizeof(a), ulnow);
    human(b, sizeof(b), ultotal);
    fprintf(stderr, "\r%s [%s] %3d%% %s / %s ", verb, bar, (int)(ulnow * 100 / ultotal), a, b);
    api->bar_drawn = 1;
    return 0;
}

/* Draws the transfer's bar on standard error from its first progress on. */
static void progress_begin(struct fota_cli_api *api)
{
    api->last_draw = 0;
    api->bar_drawn = 0;
    api->bar_full = 0;
    curl_easy_setopt(api->curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(api->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(api->curl, CURLOPT_XFERINFODATA, api);
}

/* Ends the bar's line, if one was drawn. */
static void progress_end(struct fota_cli_api *api)
{
    if (api->bar_drawn)
        fputc('\n', stderr);
}

int fota_cli_api_upload(struct fota_cli_api *api, const char *path,
                        const struct fota_cli_part *parts, size_t n, int progress,
                        struct fota_cli_reply *r)
{
    struct curl_slist *hdrs = NULL;
    curl_mime *mime = NULL;
    curl_mimepart *part;
    size_t i;
    int rc;

    rc = prepare(api, path, &hdrs, "application/json", r);
    if (rc < 0)
        goto out;
    mime = curl_mime_init(api->curl);
    if (!mime) {
        rc = FOTA_ENOMEM;
        goto out;
    }
    for (i = 0; i < n; i++) {
        part = curl_mime_addpart(mime);
        if (!part) {
            rc = FOTA_ENOMEM;
            goto out;
        }
        curl_mime_name(part, parts[i].name);
        if (parts[i].data) {
            curl_mime_data(part, (const char *)parts[i].data, parts[i].len);
            curl_mime_filename(part, parts[i].filename);
            curl_mime_type(part, "application/octet-stream");
        } else {
            curl_mime_data(part, parts[i].value, CURL_ZERO_TERMINATED);
        }
    }
    curl_easy_setopt(api->curl, CURLOPT_MIMEPOST, mime);
    if (progress)
        progress_begin(api);
    rc = perform(api, hdrs, r);
    if (progress)
        progress_end(api);
out:
    curl_slist_free_all(hdrs);
    curl_mime_free(mime);
    return rc;
}

/* ------------------------------------------------------------ downloads */

struct download {
    fota_cli_sink sink;
    void *ud;
    int ok;            /* 1 a 2xx body, 0 another reply, -1 not decided */
    int rc;            /* the sink's value when it stopped the transfer */
    struct fota_cli_api *api;
};

static size_t on_download(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct download *dl = ud;
    size_t n = size * nmemb;
    long code = 0;

    if (dl->ok < 0) {
        curl_easy_getinfo(dl->api->curl, CURLINFO_RESPONSE_CODE, &code);
        dl->ok = code >= 200 && code < 300;
    }
    if (!dl->ok)
        return on_body(ptr, size, nmemb, dl->api);
    dl->rc = dl->sink(dl->ud, (const uint8_t *)ptr, n);
    return dl->rc == 0 ? n : 0;
}

int fota_cli_api_download(struct fota_cli_api *api, const char *path, fota_cli_sink sink,
                          void *ud, long patience, int progress, struct fota_cli_reply *r)
{
    struct curl_slist *hdrs = NULL;
    struct download dl = { sink, ud, -1, 0, api };
    CURLcode crc;
    int rc;

    rc = prepare(api, path, &hdrs, "*/*", r);
    if (rc < 0)
        goto out;
    curl_easy_setopt(api->curl, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(api->curl, CURLOPT_WRITEFUNCTION, on_download);
    curl_easy_setopt(api->curl, CURLOPT_WRITEDATA, &dl);
    /* Stalled for `patience` seconds (the server's work before its first
     * byte included) is a timeout. */
    curl_easy_setopt(api->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(api->curl, CURLOPT_LOW_SPEED_TIME, patience > 0 ? patience : 60L);
    curl_easy_setopt(api->curl, CURLOPT_HTTPHEADER, hdrs);
    if (progress)
        progress_begin(api);
    crc = curl_easy_perform(api->curl);
    if (progress)
        progress_end(api);
    curl_easy_getinfo(api->curl, CURLINFO_RESPONSE_CODE, &r->status);
    if (crc == CURLE_WRITE_ERROR && dl.rc != 0) {
        rc = dl.rc;   /* the sink stopped it */
        goto out;
    }
    if (crc != CURLE_OK) {
        rc = transport_error(api, crc, r);
        goto out;
    }
    rc = take_body(api, r);
out:
    curl_slist_free_all(hdrs);
    return rc;
}

/* ------------------------------------------------------ server-sent events */

struct stream {
    struct fota_cli_sse sse;
    int is_sse;        /* 1 event stream, 0 plain body, -1 not decided */
    int rc;            /* the parser's result when it stopped the transfer */
    struct fota_cli_api *api;
};

static size_t on_stream(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct stream *st = ud;
    size_t n = size * nmemb;
    long code = 0;
    char *ct = NULL;

    if (st->is_sse < 0) {
        curl_easy_getinfo(st->api->curl, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_getinfo(st->api->curl, CURLINFO_CONTENT_TYPE, &ct);
        st->is_sse = code >= 200 && code < 300 && ct &&
                     strncmp(ct, "text/event-stream", 17) == 0;
    }
    if (!st->is_sse)
        return on_body(ptr, size, nmemb, st->api);
    st->rc = fota_cli_sse_feed(&st->sse, ptr, n);
    return st->rc == 0 ? n : 0;   /* 0 aborts: stopped by the callback, or an error */
}

int fota_cli_api_stream(struct fota_cli_api *api, const char *path,
                        fota_cli_sse_cb cb, void *ud, struct fota_cli_reply *r)
{
    struct curl_slist *hdrs = NULL;
    struct stream st;
    CURLcode crc;
    int rc;

    memset(&st, 0, sizeof(st));
    fota_cli_sse_init(&st.sse, cb, ud);
    st.is_sse = -1;
    st.api = api;
    rc = prepare(api, path, &hdrs, "text/event-stream", r);
    if (rc < 0)
        goto out;
    hdrs = curl_slist_append(hdrs, "Cache-Control: no-cache");
    curl_easy_setopt(api->curl, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(api->curl, CURLOPT_WRITEFUNCTION, on_stream);
    curl_easy_setopt(api->curl, CURLOPT_WRITEDATA, &st);
    if (api->stream_timeout)
        curl_easy_setopt(api->curl, CURLOPT_TIMEOUT, api->stream_timeout);
    curl_easy_setopt(api->curl, CURLOPT_HTTPHEADER, hdrs);
    crc = curl_easy_perform(api->curl);
    curl_easy_getinfo(api->curl, CURLINFO_RESPONSE_CODE, &r->status);
    if (crc == CURLE_WRITE_ERROR && st.rc == 1) {
        rc = 0;   /* the callback had what it wanted */
        goto out;
    }
    if (crc == CURLE_WRITE_ERROR && st.rc < 0) {
        snprintf(r->transport, sizeof(r->transport), "the event stream of %.300s is not usable "
                 "(%s)", api->origin, st.rc == FOTA_ETOOBIG ? "an event is too large"
                                                            : fota_strerror(st.rc));
        rc = st.rc;
        goto out;
    }
    if (crc != CURLE_OK) {
        rc = transport_error(api, crc, r);
        goto out;
    }
    rc = 0;
    r->stream_ended = st.is_sse == 1;
    if (st.is_sse != 1)   /* an error reply, or a server that does not stream */
        rc = take_body(api, r);
out:
    curl_slist_free_all(hdrs);
    fota_cli_sse_cleanup(&st.sse);
    return rc;
}
