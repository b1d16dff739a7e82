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

#include "fota_str.h"
#include "http.h"
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

static const char *reason_of(long status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 413: return "Payload Too Large";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 507: return "Insufficient Storage";
    default: return "Error";
    }
}

/* len bytes from offset off into dst, whatever the buffer's freeze state:
 * bufferevents keep their output's front frozen after their first write,
 * which fails evbuffer_copyout. */
static int peek_copy(struct evbuffer *out, size_t off, char *dst, size_t len)
{
    struct evbuffer_ptr at;
    struct evbuffer_iovec v[8];
    size_t got = 0;
    if (evbuffer_ptr_set(out, &at, off, EVBUFFER_PTR_SET) != 0)
        return -1;
    int n = evbuffer_peek(out, (ev_ssize_t)len, &at, v, 8);
    for (int i = 0; i < n && i < 8 && got < len; i++) {
        size_t k = v[i].iov_len < len - got ? v[i].iov_len : len - got;
        memcpy(dst + got, v[i].iov_base, k);
        got += k;
    }
    return got == len ? 0 : -1;
}

/* Replaces the buffer's contents (len bytes: `keep` bytes written before
 * the page, then the page) with those bytes and the new reply. The front
 * is unfrozen for the moment: nothing of it has been sent yet. */
static void replace(struct evbuffer *out, size_t len, const char *keep, size_t keep_len,
                    struct evbuffer *reply)
{
    char c;
    int frozen = len > 0 && evbuffer_copyout(out, &c, 1) < 0;
    if (frozen)
        evbuffer_unfreeze(out, 1);
    evbuffer_drain(out, len);
    evbuffer_add(out, keep, keep_len);
    evbuffer_add_buffer(out, reply);   /* re-enters out_cb: no longer a page */
    if (frozen)
        evbuffer_freeze(out, 1);
}

/* The JSON reply for libevent's page (status line `page`, headers up to
 * `end`), keeping its other headers. NULL if the page is not one. */
static struct evbuffer *rewrite(const char *page, const char *end,
                                const struct fota_http_errpage_hint *hint)
{
    const char *eol = strstr(page, "\r\n");
    const char *sp = strchr(page, ' ');
    char msg[200];
    if (!eol || eol > end || !sp || sp > eol)
        return NULL;
    long status = strtol(sp + 1, NULL, 10);   /* three digits, then the reason */
    if (status < 400 || status > 599)
        return NULL;
    unsigned retry_after = 0;
    if ((status == 413 || status == 400) && hint->status > 0) {
        status = hint->status;
        retry_after = hint->retry_after;
        fota_str_copy(msg, sizeof(msg), hint->message ? hint->message : "request refused");
    } else if (status == 413 && hint->upload) {
        snprintf(msg, sizeof(msg), "request body larger than max_upload (%llu bytes)",
                 (unsigned long long)hint->body_limit);
    } else if (status == 413) {
        snprintf(msg, sizeof(msg), "request body larger than %llu bytes (a larger one is an "
                 "upload: POST or PUT with the admin key)", (unsigned long long)hint->body_limit);
    } else if (status == 400) {
        snprintf(msg, sizeof(msg), "malformed request: bad request line, headers over "
                 "16384 bytes or an invalid Content-Length");
    } else if (status == 501) {
        snprintf(msg, sizeof(msg), "method not implemented");
    } else {
        snprintf(msg, sizeof(msg), "request refused by the HTTP layer");
    }
    char body[320];
    int blen = snprintf(body, sizeof(body), "{\"status\": %ld, \"message\": \"%s\"}\n",
                        status, msg);
    if (blen < 0 || (size_t)blen >= sizeof(body))
        return NULL;
    struct evbuffer *nb = evbuffer_new();
    if (!nb)
        return NULL;
    evbuffer_add_printf(nb, "HTTP/1.%c %ld %s\r\n", page[7] == '0' ? '0' : '1', status,
                        reason_of(status));
    for (const char *p = eol + 2; p < end + 2;) {
        const char *e = strstr(p, "\r\n");
        if (!e)
            break;
        if (strncasecmp(p, "Content-Type:", 13) != 0 &&
            strncasecmp(p, "Content-Length:", 15) != 0)
            evbuffer_add(nb, p, (size_t)(e - p) + 2);
        p = e + 2;
    }
    if (retry_after)
        evbuffer_add_printf(nb, "Retry-After: %u\r\n", retry_after);
    evbuffer_add_printf(nb, "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                        blen, body);
    return nb;
}

/* The last "HTTP/1." in buf[0..len): the page's status line (a 100
 * Continue not yet sent may stand before it). */
static const char *last_status_line(const char *buf, size_t len)
{
    const char *found = NULL;
    for (const char *p = buf; (p = strstr(p, "HTTP/1.")) != NULL && (size_t)(p - buf) < len;
         p += 7)
        found = p;
    return found;
}

static void out_cb(struct evbuffer *out, const struct evbuffer_cb_info *info, void *arg)
{
    struct fota_http_errpage_hint *hint = arg;
    struct fota_http_errpages *ep = cur_ep;
    char tail[sizeof(PAGE_TAIL) - 1];
    size_t len = evbuffer_get_length(out);

    if (!info->n_added || len < 64 || len > PAGE_MAX || !ep)
        return;
    /* Cheap checks first: every reply passes through here. An error status
     * line starts the buffer (or follows a 100 Continue not yet sent). */
    struct evbuffer_iovec first;
    if (evbuffer_peek(out, 13, NULL, &first, 1) < 1 || first.iov_len < 13)
        return;
    const char *h = first.iov_base;
    if (memcmp(h, "HTTP/1.", 7) != 0 || (h[9] != '4' && h[9] != '5' && h[9] != '1'))
        return;
    if (peek_copy(out, len - sizeof(tail), tail, sizeof(tail)) != 0 ||
        memcmp(tail, PAGE_TAIL, sizeof(tail)) != 0)
        return;
    char page[PAGE_MAX + 1];
    if (peek_copy(out, 0, page, len) != 0)
        return;
    page[len] = '\0';
    const char *start = last_status_line(page, len);
    const char *hend = start ? strstr(start, "\r\n\r\n") : NULL;
    const char *type = start ? strstr(start, PAGE_TYPE) : NULL;
    if (!hend || !type || type > hend || strstr(hend, "<HTML><HEAD>") != hend + 4 ||
        (start[9] != '4' && start[9] != '5'))
        return;
    struct evbuffer *nb = rewrite(start, hend, hint);
    if (!nb)
        return;
    replace(out, len, page, (size_t)(start - page), nb);
    evbuffer_free(nb);
    hint->status = -1;   /* evhttp closes the connection after its page */
    linger_start(ep, hint->bev);
}

void fota_http_errpage_watch(struct fota_http_errpages *ep, struct fota_http_errpage_hint *hint)
{
    if (!hint->bev)
        return;
    cur_ep = ep;
    hint->entry = evbuffer_add_cb(bufferevent_get_output(hint->bev), out_cb, hint);
}

void fota_http_errpage_unwatch(struct fota_http_errpage_hint *hint)
{
    /* Disabled, not removed: the buffer frees its entries with itself. */
    if (hint->entry)
        evbuffer_cb_clear_flags(bufferevent_get_output(hint->bev), hint->entry,
                                EVBUFFER_CB_ENABLED);
    hint->entry = NULL;
}

void fota_http_errpages_free(struct fota_http_errpages *ep)
{
    while (ep->lingering)
        linger_end(ep->lingering);
}
