/* http_head.c - the request head facts fotad decides on before the body
 * (http_head.h): method, framing and Authorization, line by line. */
#include "http_head.h"

#include <string.h>
#include <strings.h>

void fota_http_head_init(struct fota_http_head *h)
{
    memset(h, 0, sizeof(*h));
    h->auth_len = -1;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* The method token of the request line: POST and PUT are the methods
 * libevent reads a body for (PATCH is not allowed by fotad). */
static void request_line(struct fota_http_head *h, const char *line, size_t len)
{
    if (len > 5 && memcmp(line, "POST ", 5) == 0)
        h->method = FOTA_HEAD_M_POST;
    else if (len > 4 && memcmp(line, "PUT ", 4) == 0)
        h->method = FOTA_HEAD_M_PUT;
    else
        h->method = FOTA_HEAD_M_OTHER;
}

static void fail(struct fota_http_head *h, int err)
{
    if (!h->err)
        h->err = err;
}

/* `Content-Length: DIGITS`: at most one space after the colon, no sign, no
 * list, trailing blanks allowed; a repeat must give the same value. A value
 * beyond 64 bits counts as the largest (a body too large, not a bad head). */
static void content_length(struct fota_http_head *h, const char *v, size_t n, int cut)
{
    uint64_t val = 0;
    size_t i = 0;

    if (cut || n == 0)
        goto bad;
    if (v[0] == ' ')
        i = 1;
    while (n > i && is_ows(v[n - 1]))
        n--;
    if (i == n)
        goto bad;
    for (; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            goto bad;
        unsigned d = (unsigned)(v[i] - '0');
        val = val > (UINT64_MAX - d) / 10 ? UINT64_MAX : val * 10 + d;
    }
    if (h->has_cl && h->cl != val) {
        fail(h, FOTA_HEAD_E_CL_TWICE);
        return;
    }
    h->has_cl = 1;
    h->cl = val;
    return;
bad:
    fail(h, FOTA_HEAD_E_CL_VALUE);
}

/* A value as evhttp stores it: spaces (not tabs) dropped before it, spaces
 * and tabs after it. "Transfer-Encoding:<TAB>chunked" is chunked to a proxy
 * and not to evhttp, so it must not read as chunked here either. */
static void value_trim(const char **v, size_t *n)
{
    while (*n > 0 && **v == ' ') {
        (*v)++;
        (*n)--;
    }
    while (*n > 0 && is_ows((*v)[*n - 1]))
        (*n)--;
}

/* Only `chunked`, once: libevent knows no other coding and would read the
 * body by Content-Length (or not at all) where a proxy would decode it. */
static void transfer_encoding(struct fota_http_head *h, const char *v, size_t n, int cut)
{
    value_trim(&v, &n);
    if (cut || h->chunked || n != 7 || strncasecmp(v, "chunked", 7) != 0) {
        fail(h, FOTA_HEAD_E_TE);
        return;
    }
    h->chunked = 1;
}

static void authorization(struct fota_http_head *h, const char *v, size_t n, int cut)
{
    value_trim(&v, &n);
    if (h->auth_len >= 0) {   /* twice: neither is trusted */
        h->auth_len = FOTA_HEAD_AUTH_MAX + 1;
        return;
    }
    size_t keep = n < FOTA_HEAD_AUTH_MAX ? n : FOTA_HEAD_AUTH_MAX;
    memcpy(h->auth, v, keep);
    h->auth[keep] = '\0';
    h->auth_len = cut || n > FOTA_HEAD_AUTH_MAX ? FOTA_HEAD_AUTH_MAX + 1 : (int)n;
}

static int name_is(const char *name, size_t n, const char *want)
{
    return strlen(want) == n && strncasecmp(name, want, n) == 0;
}

/* The checks that need every line: a body only where libevent reads one,
 * and one framing. */
static void head_end(struct fota_http_head *h)
{
    if (h->has_cl && h->chunked)
        fail(h, FOTA_HEAD_E_CL_TE);
    if (h->method == FOTA_HEAD_M_OTHER && fota_http_head_has_body(h))
        fail(h, FOTA_HEAD_E_BODY);
}

int fota_http_head_line(struct fota_http_head *h, const char *line, size_t len, int cut)
{
    if (h->lines++ == 0) {
        request_line(h, line, len);
        return 0;
    }
    if (len == 0 && !cut) {
        head_end(h);
        return 1;
    }
    /* evhttp ends the head at a line that starts with a NUL (an empty C
     * string) and cuts values at one; a proxy reads on. */
    if (memchr(line, '\0', len)) {
        fail(h, FOTA_HEAD_E_NUL);
        return 0;
    }
    if (is_ows(line[0])) {
        fail(h, FOTA_HEAD_E_FOLD);
        return 0;
    }
    /* Most lines are none of the three: their first byte says so. Space
     * before the colon matters for the framing names (evhttp would not see
     * "Content-Length : 5" where a lenient proxy does); evhttp refuses a
     * line without a colon itself. */
    int first = line[0] | 0x20;
    if (first != 'c' && first != 't' && first != 'a')
        return 0;
    const char *colon = memchr(line, ':', len);
    if (!colon || colon == line || is_ows(colon[-1])) {
        fail(h, FOTA_HEAD_E_NAME);
        return 0;
    }
    size_t nn = (size_t)(colon - line);
    const char *v = colon + 1;
    size_t vn = len - nn - 1;
    if (first == 'c' && name_is(line, nn, "Content-Length"))
        content_length(h, v, vn, cut);
    else if (first == 't' && name_is(line, nn, "Transfer-Encoding"))
        transfer_encoding(h, v, vn, cut);
    else if (first == 'a' && name_is(line, nn, "Authorization"))
        authorization(h, v, vn, cut);
    return 0;
}

int fota_http_head_auth_other(const char *v, size_t len)
{
    size_t i = 0;
    while (i < len && v[i] != ' ')
        i++;
    return i > 0 && i < len && !(i == 5 && strncasecmp(v, "token", 5) == 0);
}

int fota_http_head_has_body(const struct fota_http_head *h)
{
    return h->chunked || (h->has_cl && h->cl > 0);
}

const char *fota_http_head_errstr(int err)
{
    switch (err) {
    case FOTA_HEAD_OK: return "";
    case FOTA_HEAD_E_CL_VALUE: return "Content-Length must be decimal digits "
                                      "(Content-Length: N, no sign, no list)";
    case FOTA_HEAD_E_CL_TWICE: return "two different Content-Length headers";
    case FOTA_HEAD_E_TE: return "Transfer-Encoding must be chunked, given once";
    case FOTA_HEAD_E_CL_TE: return "Content-Length and Transfer-Encoding together";
    case FOTA_HEAD_E_FOLD: return "folded header line (obsolete line folding)";
    case FOTA_HEAD_E_NAME: return "malformed header line (no colon, or space before it)";
    case FOTA_HEAD_E_BODY: return "a body on a request method that carries none";
    case FOTA_HEAD_E_NUL: return "a NUL byte in a header line";
    default: return "malformed request head";
    }
}
