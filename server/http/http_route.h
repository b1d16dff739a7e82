/* http_route.h - the route table of the HTTP server: patterns whose '*'
 * segments capture one path segment each, matched against the
 * percent-decoded path; one owner per pattern and method. Pure (no I/O, no
 * request), so the unit tests drive it directly; http.c dispatches with it. */
#ifndef FOTA_HTTP_ROUTE_H
#define FOTA_HTTP_ROUTE_H

#include "http.h"

struct fota_http_route_entry {
    int methods;                  /* FOTA_M_* */
    int flags;                    /* FOTA_ROUTE_* */
    char *pattern;
    fota_http_handler fn;
    void *ud;
    struct fota_http_route_entry *next;   /* newest first */
};

struct fota_http_routes {
    struct fota_http_route_entry *head;
};

/* Adds a route (pattern copied). 0, FOTA_EINVAL (pattern not starting with
 * '/', or no handler), FOTA_EEXIST (the same pattern already has a handler
 * for one of methods). */
int fota_http_routes_add(struct fota_http_routes *t, int methods, const char *pattern,
                         fota_http_handler fn, void *ud, int flags);
/* The route for path and method (newest first where several patterns
 * match), with its captures in caps[0..*ncaps). NULL when none: *allowed is
 * then the union of the methods of the patterns that matched the path (0:
 * no pattern matched, a 404; else a 405 with those methods). */
const struct fota_http_route_entry *fota_http_routes_find(const struct fota_http_routes *t,
                                                          const char *path, int method,
                                                          char caps[][FOTA_ROUTE_CAP_LEN],
                                                          int *ncaps, int *allowed);
void fota_http_routes_free(struct fota_http_routes *t);

/* 1 if path matches pattern ('*' = one non-empty segment of fewer than
 * FOTA_ROUTE_CAP_LEN bytes, at most FOTA_ROUTE_MAX_CAPS of them; a trailing
 * '/' is optional on both; repeated '/' count as one), with the captures in
 * caps[0..*ncaps); else 0. */
int fota_http_route_match(const char *pattern, const char *path,
                          char caps[][FOTA_ROUTE_CAP_LEN], int *ncaps);

/* The method a route sees: HEAD is GET (*head = 1), a POST with
 * ?method=PUT or ?method=DELETE (tunnel, case-insensitive) is that method. */
int fota_http_route_method(int ev_method, const char *tunnel, int *head);

/* 1 if raw (a path or query as sent, before decoding) holds "%00", whose
 * decoded text would hold a NUL byte where C strings end ("f.bin%00.txt"
 * would name f.bin): such a request is refused. 0 for NULL. */
int fota_http_route_has_nul(const char *raw);

/* The percent-decoded path of a request ("/" for an empty one; '+' stays);
 * free() it. */
char *fota_http_route_path(const char *raw);

#endif
