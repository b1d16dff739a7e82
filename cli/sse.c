/* sse.c - the text/event-stream parser behind `fotactl messages --follow`,
 * following the WHATWG event-stream rules fotactl needs (fields, comments,
 * CR/LF/CRLF line ends, blank-line dispatch), with bounded buffers. */
#include "sse.h"

#include <stdlib.h>
#include <string.h>

#include "fota_err.h"
#include "fota_str.h"

void fota_cli_sse_init(struct fota_cli_sse *s, fota_cli_sse_cb cb, void *ud)
{
    memset(s, 0, sizeof(*s));
    s->cb = cb;
    s->ud = ud;
}

void fota_cli_sse_cleanup(struct fota_cli_sse *s)
{
    free(s->line);
    free(s->data);
    s->line = s->data = NULL;
    s->line_len = s->line_cap = s->data_len = s->data_cap = 0;
}

/* Appends n bytes to a NUL-terminated buffer of at most FOTA_CLI_SSE_MAX. */
static int append(char **p, size_t *len, size_t *cap, const char *src, size_t n)
{
    size_t want;
    char *np;

    if (*len + n + 1 > FOTA_CLI_SSE_MAX)
        return FOTA_ETOOBIG;
    if (*len + n + 1 > *cap) {
        want = *cap ? *cap : 256;
        while (want < *len + n + 1)
            want *= 2;
        if (want > FOTA_CLI_SSE_MAX)
            want = FOTA_CLI_SSE_MAX;
        np = realloc(*p, want);
        if (!np)
            return FOTA_ENOMEM;
        *p = np;
        *cap = want;
    }
    if (n)
        memcpy(*p + *len, src, n);
    *len += n;
    (*p)[*len] = '\0';
    return 0;
}

static int dispatch(struct fota_cli_sse *s)
{
    int stop = 0;

    if (s->has_data) {
        if (s->data_len > 0 && s->data[s->data_len - 1] == '\n')
            s->data[--s->data_len] = '\0';   /* the last data line's separator */
        stop = s->cb(s->ud, s->event, s->id, s->data ? s->data : "");
    }
    s->data_len = 0;
    if (s->data)
        s->data[0] = '\0';
    s->has_data = 0;
    s->event[0] = '\0';   /* the id persists, as the spec's last event id does */
    return stop ? 1 : 0;
}

/* One complete line (without its end). */
static int line(struct fota_cli_sse *s, const char *l, size_t len)
{
    const char *colon, *val;
    size_t flen, vlen;
    int rc;

    if (len == 0)
        return dispatch(s);
    if (l[0] == ':')
        return 0;
    colon = memchr(l, ':', len);
    flen = colon ? (size_t)(colon - l) : len;
    val = colon ? colon + 1 : l + len;
    vlen = len - (size_t)(val - l);
    if (vlen > 0 && val[0] == ' ') {
        val++;
        vlen--;
    }
    if (flen == 4 && memcmp(l, "data", 4) == 0) {
        rc = append(&s->data, &s->data_len, &s->data_cap, val, vlen);
        if (rc == 0)
            rc = append(&s->data, &s->data_len, &s->data_cap, "\n", 1);
        s->has_data = 1;
        return rc;
    }
    if (flen == 5 && memcmp(l, "event", 5) == 0)
        fota_str_copy_n(s->event, sizeof(s->event), val, vlen);   /* longer: cut */
    else if (flen == 2 && memcmp(l, "id", 2) == 0 && !memchr(val, '\0', vlen))
        fota_str_copy_n(s->id, sizeof(s->id), val, vlen);
    return 0;
}

int fota_cli_sse_feed(struct fota_cli_sse *s, const char *buf, size_t len)
{
    size_t i, start = 0;
    int rc;

    if (s->err)
        return s->err;
    for (i = 0; i < len; i++) {
        char c = buf[i];

        if (s->skip_lf) {
            s->skip_lf = 0;
            if (c == '\n') {
                start = i + 1;
                continue;
            }
        }
        if (c != '\n' && c != '\r')
            continue;
        rc = append(&s->line, &s->line_len, &s->line_cap, buf + start, i - start);
        if (rc == 0)
            rc = line(s, s->line ? s->line : "", s->line_len);
        s->line_len = 0;
        start = i + 1;
        s->skip_lf = c == '\r';
        if (rc != 0) {
            s->err = rc;
            return rc;
        }
    }
    rc = append(&s->line, &s->line_len, &s->line_cap, buf + start, len - start);
    if (rc != 0)
        s->err = rc;
    return rc;
}
