/* http_errpage.c - rewrites libevent's own HTML error replies (400 for a bad
 * request line, headers or Content-Length; 413 for a body over the limit;
 * 501 for an unknown method) into the API's JSON error shape as they enter a
 * connection's output buffer, then drains what the client still sends for a
 * bounded time so it can read the reply (libevent 2.1 has no error-page hook,
 * and its own lingering close waits for the whole declared body). */
#include "http_errpage.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xmalloc.h"

#define PAGE_MAX 4096                       /* libevent's pages are ~300 bytes */
#define PAGE_TAIL "</BODY></HTML>\n"        /* how evhttp_send_error ends its page */
#define PAGE_TYPE "\r\nContent-Type: text/html"   /* evhttp_send_page_ */
#define LINGER_IDLE_S 2
#define LINGER_MAX_BYTES (64u << 20)
#define HANDOVER_TRIES 500                  /* x 10 ms: evhttp still writing */

struct fota_http_linger {
    struct fota_http_errpages *ep;
    struct bufferevent *bev;                /* one reference held */
    struct event *timer;
    unsigned tries;
    size_t drained;
    struct fota_http_linger *prev, *next;
};

/* Per thread: the error pages of the loop this thread serves (one evhttp
 * loop per thread). */
static _Thread_local struct fota_http_errpages *cur_ep;

static void linger_end(struct fota_http_linger *l)
{
    if (l->prev)
        l->prev->next = l->next;
    else
        l->ep->lingering = l->next;
    if (l->next)
        l->next->prev = l->prev;
    if (l->timer)
        event_free(l->timer);
    bufferevent_setcb(l->bev, NULL, NULL, NULL, NULL);
    bufferevent_decref(l->bev);   /* the last reference: closes the socket */
    free(l);
}

static void linger_read(struct bufferevent *bev, void *arg)
{
    struct fota_http_linger *l = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n = evbuffer_get_length(in);
    evbuffer_drain(in, n);
    l->drained += n;
    if (l->drained > LINGER_MAX_BYTES)
        linger_end(l);
}

static void linger_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;   /* EOF, error or the idle timeout: done either way */
    linger_end(arg);
}

/* Polls until evhttp has freed its connection (its callbacks are gone),
 * then takes the socket over and reads the rest of the request away. */
static void linger_handover(evutil_socket_t fd, short what, void *arg)
{
    struct fota_http_linger *l = arg;
    bufferevent_data_cb rd = NULL, wr = NULL;
    bufferevent_event_cb ev = NULL;
    (void)fd;
    (void)what;
    bufferevent_getcb(l->bev, &rd, &wr, &ev, NULL);
    if (rd || wr || ev) {
        static const struct timeval tick = { 0, 10000 };
        if (++l->tries > HANDOVER_TRIES) {   /* evhttp keeps it: its timeout closes it */
            linger_end(l);
            return;
        }
        event_add(l->timer, &tick);
        return;
    }
    static const struct timeval idle = { LINGER_IDLE_S, 0 };
    bufferevent_setcb(l->bev, linger_read, NULL, linger_event, l);
    bufferevent_set_timeouts(l->bev, &idle, NULL);
    bufferevent_enable(l->bev, EV_READ);
    linger_read(l->bev, l);
}

static void linger_start(struct fota_http_errpages *ep, struct bufferevent *bev)
{
    struct fota_http_linger *l = fota_xcalloc(1, sizeof(*l));
    l->timer = evtimer_new(bufferevent_get_base(bev), linger_handover, l);
    if (!l->timer) {
        free(l);
        return;
    }
    l->ep = ep;
    l->bev = bev;
    bufferevent_incref(bev);
    l->next = ep->lingering;
    if (l->next)
        l->next->prev = l;
    ep->lingering = l;
    static const struct timeval now = { 0, 0 };
    event_add(l->timer, &now);
}

/* Builds the JSON reply for status line `line` (e.g. "HTTP/1.1 413 Payload
 * Too Large") keeping the other headers of `head`. Returns 0 when done. */
static int rewrite(struct evbuffer *out, const char *page, size_t len, uint64_t max_upload)
{
    const char *eol = strstr(page, "\r\n");
    const char *end = strstr(page, "\r\n\r\n");
    const char *sp = memchr(page, ' ', len);
    char msg[160];
    if (!eol || !end || (size_t)(end - page) >= len || strncmp(page, "HTTP/", 5) != 0 || !sp ||
        sp > eol)
        return -1;
    long status = strtol(sp + 1, NULL, 10);   /* three digits, then the reason */
    if (status < 400 || status > 599)
        return -1;
    switch (status) {
    case 413:
        snprintf(msg, sizeof(msg), "request body larger than max_upload (%llu bytes)",
                 (unsigned long long)max_upload);
        break;
    case 400:
        snprintf(msg, sizeof(msg), "malformed request: bad request line, headers over "
                 "16384 bytes or an invalid Content-Length");
        break;
    case 501:
        snprintf(msg, sizeof(msg), "method not implemented");
        break;
    default:
        snprintf(msg, sizeof(msg), "request refused by the HTTP layer");
        break;
    }
    char body[256];
    int blen = snprintf(body, sizeof(body), "{\"status\": %ld, \"message\": \"%s\"}\n",
                        status, msg);
    struct evbuffer *nb = evbuffer_new();
    if (!nb)
        return -1;
    evbuffer_add(nb, page, (size_t)(eol - page) + 2);
    for (const char *p = eol + 2; p < end + 2;) {
        const char *e = strstr(p, "\r\n");
        if (!e)
            break;
        if (strncasecmp(p, "Content-Type:", 13) != 0 &&
            strncasecmp(p, "Content-Length:", 15) != 0)
            evbuffer_add(nb, p, (size_t)(e - p) + 2);
        p = e + 2;
    }
    evbuffer_add_printf(nb, "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                        blen, body);
    evbuffer_drain(out, len);
    evbuffer_add_buffer(out, nb);   /* re-enters out_cb: no longer a page */
    evbuffer_free(nb);
    return 0;
}

static void out_cb(struct evbuffer *out, const struct evbuffer_cb_info *info, void *arg)
{
    struct bufferevent *bev = arg;
    struct fota_http_errpages *ep = cur_ep;
    char head[13], tail[sizeof(PAGE_TAIL) - 1];
    size_t len = evbuffer_get_length(out);

    if (!info->n_added || len < 64 || len > PAGE_MAX || !ep)
        return;
    /* Cheap checks first: every reply passes through here. */
    if (evbuffer_copyout(out, head, sizeof(head)) != (ev_ssize_t)sizeof(head) ||
        memcmp(head, "HTTP/1.", 7) != 0 || (head[9] != '4' && head[9] != '5'))
        return;
    struct evbuffer_ptr at;
    if (evbuffer_ptr_set(out, &at, len - sizeof(tail), EVBUFFER_PTR_SET) != 0 ||
        evbuffer_copyout_from(out, &at, tail, sizeof(tail)) != (ev_ssize_t)sizeof(tail) ||
        memcmp(tail, PAGE_TAIL, sizeof(tail)) != 0)
        return;
    char page[PAGE_MAX + 1];
    if (evbuffer_copyout(out, page, len) != (ev_ssize_t)len)
        return;
    page[len] = '\0';
    const char *hend = strstr(page, "\r\n\r\n");
    const char *type = strstr(page, PAGE_TYPE);
    if (!hend || !type || type > hend || strstr(hend, "<HTML><HEAD>") != hend + 4)
        return;
    if (rewrite(out, page, len, ep->max_upload ? *ep->max_upload : 0) == 0)
        linger_start(ep, bev);
}

void fota_http_errpage_watch(struct fota_http_errpages *ep, struct bufferevent *bev)
{
    if (!bev)
        return;
    cur_ep = ep;
    evbuffer_add_cb(bufferevent_get_output(bev), out_cb, bev);
}

void fota_http_errpages_free(struct fota_http_errpages *ep)
{
    while (ep->lingering)
        linger_end(ep->lingering);
}
