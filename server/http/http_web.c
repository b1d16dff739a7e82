/* http_web.c - the console's static files, straight from the table that
 * web/embed.cmake compiled into the binary. No file system access, no
 * copies: the reply buffer references the static bytes. */
#include <stdio.h>
#include <string.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include "fota_web.h"
#include "http_web.h"

#define CSP "default-src 'self'; img-src 'self' data:; connect-src 'self'; " \
            "style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

static void reply_text(struct evhttp_request *req, int code, const char *reason, const char *text)
{
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    struct evbuffer *b = evbuffer_new();

    evhttp_add_header(oh, "Content-Type", "text/plain; charset=utf-8");
    if (b && evhttp_request_get_command(req) != EVHTTP_REQ_HEAD)
        evbuffer_add(b, text, strlen(text));
    evhttp_send_reply(req, code, reason, b);
    if (b)
        evbuffer_free(b);
}

/* True when an If-None-Match header lists etag (or is "*"). */
static int etag_matches(const char *inm, const char *etag)
{
    size_t n = strlen(etag);
    const char *p;

    if (!inm)
        return 0;
    if (strcmp(inm, "*") == 0)
        return 1;
    for (p = strstr(inm, etag); p; p = strstr(p + 1, etag)) {
        char after = p[n];
        if (after == '\0' || after == ',' || after == ' ')
            return 1;
    }
    return 0;
}

void fota_http_web_serve(struct evhttp_request *req)
{
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    const struct fota_web_asset *a;
    struct evbuffer *b;
    char len[32];

    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_add_header(oh, "Allow", "GET, HEAD");
        reply_text(req, 405, "Method Not Allowed", "method not allowed\n");
        return;
    }
    a = fota_web_asset_find(path && *path ? path : "/");
    if (!a) {
        reply_text(req, 404, "Not Found", "not found\n");
        return;
    }
    evhttp_add_header(oh, "ETag", a->etag);
    evhttp_add_header(oh, "Cache-Control", fota_web_cache_control(a));
    evhttp_add_header(oh, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(oh, "Referrer-Policy", "no-referrer");
    evhttp_add_header(oh, "Content-Security-Policy", CSP);
    if (etag_matches(evhttp_find_header(evhttp_request_get_input_headers(req), "If-None-Match"), a->etag)) {
        evhttp_send_reply(req, 304, "Not Modified", NULL);
        return;
    }
    evhttp_add_header(oh, "Content-Type", a->content_type);
    if (cmd == EVHTTP_REQ_HEAD) {
        /* evhttp sends no body for HEAD and adds no length: say it ourselves. */
        snprintf(len, sizeof(len), "%zu", a->len);
        evhttp_add_header(oh, "Content-Length", len);
        evhttp_send_reply(req, 200, "OK", NULL);
        return;
    }
    b = evbuffer_new();
    evbuffer_add_reference(b, a->data, a->len, NULL, NULL);
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}
