/* http_errpage.h - JSON bodies for the error replies libevent 2.1 writes by
 * itself (malformed request 400, body over the limit 413, unknown method 501),
 * which it formats as HTML and offers no hook for, and a bounded lingering
 * close after them so a client still sending its body reads the reply. The
 * connection's owner may say why a body was refused (its gate lowered the
 * limit to 0 for a request it refuses): that status and message replace
 * libevent's 413 (or 400). */
#ifndef FOTA_HTTP_ERRPAGE_H
#define FOTA_HTTP_ERRPAGE_H

#include <stdint.h>

struct bufferevent;
struct evbuffer_cb_entry;
struct fota_http_linger;

/* One loop's state; owned by that loop's HTTP server, touched only on its
 * thread. */
struct fota_http_errpages {
    struct fota_http_linger *lingering;   /* connections being drained */
};

/* One watched connection, in its owner's storage. */
struct fota_http_errpage_hint {
    struct bufferevent *bev;
    struct evbuffer_cb_entry *entry;      /* the watch (private) */
    uint64_t body_limit;                  /* the body limit in force: the 413's message */
    int upload;                           /* 1: that limit is max_upload */
    int status;                           /* 0, or the status replacing a 413 or 400; -1 once
                                           * a page was rewritten (the connection closes) */
    const char *message;                  /* with status: the reply's message */
    unsigned retry_after;                 /* with status: seconds for Retry-After, 0 none */
};

/* Watches hint->bev's output (call once, right after creating it, before
 * evhttp writes anything): a libevent-made error page is rewritten in place
 * into {"status": N, "message": "..."} with Content-Type application/json
 * (a 413 into hint's status and message when it has one), and once evhttp
 * has let go of the connection the rest of the client's request is read and
 * discarded (at most 2 s idle, 64 MiB) before the socket closes. hint stays
 * the caller's and must live until fota_http_errpage_unwatch; a reference
 * is held on the bufferevent only while it lingers. */
void fota_http_errpage_watch(struct fota_http_errpages *ep, struct fota_http_errpage_hint *hint);
/* Ends the watch (the bufferevent must still exist). */
void fota_http_errpage_unwatch(struct fota_http_errpage_hint *hint);

/* Closes every lingering connection (loop shutdown). */
void fota_http_errpages_free(struct fota_http_errpages *ep);

#endif
