/* accept_guard.h - fotad's listeners when descriptors run short.
 *
 * A level-triggered listener whose accept() fails for want of descriptors
 * (EMFILE, ENFILE, ENOBUFS, ENOMEM) is woken again at once and fails again:
 * libevent logs "Error from accept() call" millions of times at full CPU. A
 * guard watches one part's listeners instead: on such a failure it asks its
 * owner to give descriptors back (on_short), pauses the listeners, and
 * enables them again after a back-off (FOTA_ACCEPT_BACKOFF_MIN_MS doubling
 * to FOTA_ACCEPT_BACKOFF_MAX_MS, back to the minimum after an accept that
 * succeeds), logging at most one WARN a second with the failures counted.
 * HTTP and legacy listeners can take one the same way; a listener whose
 * accept callback is someone else's (evhttp's) is adopted instead: the
 * guard takes only its errors, and the owner reports each connection.
 *
 * It also keeps a reserve: fota_accept_guard_short() tells whether a socket
 * just accepted lies within the last descriptors of the open-file limit,
 * which the owner should then not keep, so that the REST API and the files
 * fotad opens still find descriptors while a flood holds every other one.
 *
 * One guard per part of fotad and loop; the loop's thread only. */
#ifndef FOTA_ACCEPT_GUARD_H
#define FOTA_ACCEPT_GUARD_H

#include <stdint.h>

#include <event2/listener.h>

struct event_base;
struct fota_accept_guard;

#define FOTA_ACCEPT_BACKOFF_MIN_MS 50
#define FOTA_ACCEPT_BACKOFF_MAX_MS 1000
#define FOTA_ACCEPT_GUARD_MAX      4    /* listeners per guard */

/* Called when an accept failed for want of descriptors, before the
 * listeners pause: the owner may close connections it can spare. */
typedef void (*fota_accept_short_cb)(void *ud);

struct fota_accept_guard_stats {
    uint64_t failures;           /* accept() calls that failed for want of descriptors */
    uint64_t pauses;             /* times the listeners were paused */
    int paused;                  /* paused now */
    unsigned reserve;            /* descriptors kept: see fota_accept_guard_short */
    uint64_t limit;              /* the open-file limit it was computed from */
};

/* A guard for the listeners of one part (proto names it in logs, e.g.
 * "device"); on_short may be NULL. The reserve is a sixteenth of the soft
 * RLIMIT_NOFILE, at least 16 and at most 256 descriptors (the REST API
 * needs one per request, the store and blob cache a few). */
struct fota_accept_guard *fota_accept_guard_new(struct event_base *base, const char *proto,
                                                fota_accept_short_cb on_short, void *ud);
/* Frees g (NULL-safe). Free its listeners first: their callbacks lead to g. */
void fota_accept_guard_free(struct fota_accept_guard *g);
/* Disables g's listeners for good (a drain): a pending retry does not
 * enable them again. */
void fota_accept_guard_close(struct fota_accept_guard *g);
/* Puts l under g: its connections go to cb(l, fd, addr, len, ud) as
 * before (each one resets the back-off), its accept errors to g. 0, or
 * FOTA_ETOOBIG beyond FOTA_ACCEPT_GUARD_MAX listeners. */
int fota_accept_guard_watch(struct fota_accept_guard *g, struct evconnlistener *l,
                            evconnlistener_cb cb, void *ud);
/* Puts l, whose accept callback and its argument stay its owner's (an
 * evhttp listener's), under g for its errors only: a failure for want of
 * descriptors pauses it as a watched one. The owner calls
 * fota_accept_guard_accepted for each connection it gets. On the loop's
 * thread (the errors find g through a registry of that thread). 0, or
 * FOTA_ETOOBIG beyond FOTA_ACCEPT_GUARD_MAX listeners. */
int fota_accept_guard_adopt(struct fota_accept_guard *g, struct evconnlistener *l);
/* A connection was accepted on an adopted listener (resets the back-off). */
void fota_accept_guard_accepted(struct fota_accept_guard *g);
/* 1 when fd, a socket just accepted, lies within the reserve (fd >= limit
 * - reserve). Linux hands out the lowest free number, so then at least fd
 * descriptors are open and fewer than the reserve are left. */
int fota_accept_guard_short(const struct fota_accept_guard *g, int fd);
void fota_accept_guard_stats(const struct fota_accept_guard *g, struct fota_accept_guard_stats *out);

#endif
