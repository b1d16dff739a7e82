/* http_errpage.h - JSON bodies for the error replies libevent 2.1 writes by
 * itself (malformed request 400, body over the limit 413, unknown method 501),
 * which it formats as HTML and offers no hook for, and a bounded lingering
 * close after them so a client still sending its body reads the reply. */
#ifndef FOTA_HTTP_ERRPAGE_H
#define FOTA_HTTP_ERRPAGE_H

#include <stdint.h>

struct bufferevent;
struct fota_http_linger;

/* One loop's state; owned by that loop's HTTP server, touched only on its
 * thread. `max_upload` points at the loop's copy of the setting. */
struct fota_http_errpages {
    const uint64_t *max_upload;
    struct fota_http_linger *lingering;   /* connections being drained */
};

/* Watches bev's output (call once, right after creating it, before evhttp
 * writes anything): a libevent-made error page is rewritten in place into
 * {"status": N, "message": "..."} with Content-Type application/json, and
 * once evhttp has let go of the connection the rest of the client's request
 * is read and discarded (at most 2 s idle, 64 MiB) before the socket closes.
 * Takes no ownership; a reference is held on bev only while it lingers. */
void fota_http_errpage_watch(struct fota_http_errpages *ep, struct bufferevent *bev);

/* Closes every lingering connection (loop shutdown). */
void fota_http_errpages_free(struct fota_http_errpages *ep);

#endif
