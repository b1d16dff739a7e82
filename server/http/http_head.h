/* http_head.h - what fotad reads in a request's head before libevent reads
 * its body: the method, the body's framing (Content-Length,
 * Transfer-Encoding) and the Authorization header, one line at a time.
 * Framing that two HTTP parsers could read differently (two lengths, a
 * signed or spaced length, a transfer coding other than chunked, folded
 * lines, space before a colon, a NUL byte, a body on a method libevent reads
 * none for) is an error here, so a proxy in front and fotad never disagree
 * on where a request ends. Pure: lines in, facts out (http_gate.c feeds it). */
#ifndef FOTA_HTTP_HEAD_H
#define FOTA_HTTP_HEAD_H

#include <stddef.h>
#include <stdint.h>

#define FOTA_HEAD_AUTH_MAX 96          /* Authorization bytes kept ("token " + 40 + slack) */

enum fota_head_method {
    FOTA_HEAD_M_OTHER = 0,             /* GET, HEAD, DELETE, OPTIONS...: no body is read */
    FOTA_HEAD_M_POST,
    FOTA_HEAD_M_PUT,
};

enum fota_head_err {
    FOTA_HEAD_OK = 0,
    FOTA_HEAD_E_CL_VALUE,              /* Content-Length not `Content-Length: DIGITS` */
    FOTA_HEAD_E_CL_TWICE,              /* two different Content-Length values */
    FOTA_HEAD_E_TE,                    /* a Transfer-Encoding other than one `chunked` */
    FOTA_HEAD_E_CL_TE,                 /* Content-Length and Transfer-Encoding together */
    FOTA_HEAD_E_FOLD,                  /* a folded (continuation) header line */
    FOTA_HEAD_E_NAME,                  /* a framing or key header with no colon, or
                                        * space before it */
    FOTA_HEAD_E_BODY,                  /* a body on a method that has none */
    FOTA_HEAD_E_NUL,                   /* a NUL byte in a header line */
};

struct fota_http_head {
    int method;                        /* enum fota_head_method */
    int err;                           /* enum fota_head_err: the first error seen */
    int has_cl;                        /* a Content-Length header */
    uint64_t cl;
    int chunked;                       /* Transfer-Encoding: chunked */
    int auth_len;                      /* -1: no Authorization; else its value's length
                                        * (auth holds at most FOTA_HEAD_AUTH_MAX of it) */
    char auth[FOTA_HEAD_AUTH_MAX + 1];
    unsigned lines;                    /* lines fed, the request line included */
};

/* Empties h for the next request. */
void fota_http_head_init(struct fota_http_head *h);

/* Feeds one line without its line end (libevent's: LF or CRLF), the request
 * line first. `line` holds the first `len` bytes; `cut` is 1 when the line
 * was longer than that (a cut value counts as malformed, a cut key as
 * invalid). Returns 1 for the empty line that ends the head (the checks that
 * need the whole head are done then), else 0. */
int fota_http_head_line(struct fota_http_head *h, const char *line, size_t len, int cut);

/* 1 when the request announces a body (a length above 0, or chunked). */
int fota_http_head_has_body(const struct fota_http_head *h);

/* 1 when an Authorization value names a scheme other than token
 * ("Bearer KEY", "Basic ..."), so the refusal can say which one fotad takes. */
int fota_http_head_auth_other(const char *v, size_t len);

/* The reason for h->err, for a 400 reply ("" for FOTA_HEAD_OK). */
const char *fota_http_head_errstr(int err);

#endif
