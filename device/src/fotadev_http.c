/* fotadev_http.c - the ROM download client, sans-IO: builds the request
 * text of §3.1 (stock NONOS / RTOS styles, or HTTP/1.1 with Range for
 * resuming) and parses the response header (status, Content-Length,
 * Content-Range). Bytes in, structure out; no I/O. */
#include <stdio.h>
#include <string.h>

#include "fotadev.h"

#define NONOS_HEADERS                                                                           \
    "Cache-Control: no-cache\r\n"                                                               \
    "User-Agent: Mozilla/5.0 (Windows NT 5.1) AppleWebKit/537.36 (KHTML, like Gecko) "          \
    "Chrome/30.0.1599.101 Safari/537.36 \r\n"                                                   \
    "Accept: */*\r\n"                                                                           \
    "Authorization: token %s\r\n"                                                               \
    "Accept-Encoding: gzip,deflate,sdch\r\n"                                                    \
    "Accept-Language: zh-CN,zh;q=0.8\r\n\r\n"

int fotadev_http_request(char *buf, size_t cap, const struct fotadev_http_req *r)
{
    const char *file = r->slot == FOTADEV_SLOT_USER2 ? "user2.bin" : "user1.bin";
    const char *method = r->head ? "HEAD" : "GET";
    int n;

    if (!r->version || !r->devkey || !r->host || cap < 2)
        return FOTA_EINVAL;
    switch (r->style) {
    case FOTADEV_HTTP_NONOS:
        /* libupgrade turns the GET into HEAD and keep-alive into close */
        n = snprintf(buf, cap,
                     "%s /v1/device/rom/?action=download_rom&version=%s&filename=%s HTTP/1.0\r\n"
                     "Host: %s:%u\r\nConnection: %s\r\n" NONOS_HEADERS,
                     method, r->version, file, r->host, (unsigned)r->port,
                     r->head ? "close" : "keep-alive", r->devkey);
        break;
    case FOTADEV_HTTP_RTOS:
        /* IOT_PLATFORM names the domain, not the IP, in Host (§2.8) */
        n = snprintf(buf, cap,
                     "%s /v1/device/rom/?action=download_rom&version=%s&filename=%s HTTP/1.0\r\n"
                     "Host: iot.espressif.cn:%u\r\nConnection: close\r\n" NONOS_HEADERS,
                     method, r->version, file, (unsigned)r->port, r->devkey);
        break;
    case FOTADEV_HTTP_FOTA:
        n = snprintf(buf, cap,
                     "%s /v1/device/rom/?action=download_rom&version=%s&filename=%s HTTP/1.1\r\n"
                     "Host: %s:%u\r\nConnection: close\r\nAuthorization: token %s\r\n",
                     method, r->version, file, r->host, (unsigned)r->port, r->devkey);
        if (n > 0 && (size_t)n < cap && r->range_from > 0)
            n += snprintf(buf + n, cap - (size_t)n, "Range: bytes=%lu-\r\n",
                          (unsigned long)r->range_from);
        if (n > 0 && (size_t)n < cap)
            n += snprintf(buf + n, cap - (size_t)n, "\r\n");
        break;
    default:
        return FOTA_EINVAL;
    }
    if (n < 0 || (size_t)n >= cap)
        return FOTA_ETOOBIG;
    /* RTOS clients write(strlen + 1): the NUL goes on the wire */
    return r->style == FOTADEV_HTTP_RTOS ? n + 1 : n;
}

void fotadev_http_resp_init(struct fotadev_http_resp *r)
{
    memset(r, 0, sizeof(*r));
}

/* Parses a decimal number at p (up to end); returns chars used or -1. */
static int parse_u32(const char *p, const char *end, uint32_t *out)
{
    uint64_t v = 0;
    int n = 0;
    while (p + n < end && p[n] >= '0' && p[n] <= '9') {
        v = v * 10 + (uint64_t)(p[n] - '0');
        if (v > 0xFFFFFFFFu)
            return -1;
        n++;
    }
    if (n == 0)
        return -1;
    *out = (uint32_t)v;
    return n;
}

static int name_is(const char *line, size_t len, const char *name)
{
    size_t i, n = strlen(name);
    if (len <= n || line[n] != ':')
        return 0;
    for (i = 0; i < n; i++) {
        char a = line[i], b = name[i];
        if (a >= 'A' && a <= 'Z')
            a = (char)(a + 32);
        if (a != b)
            return 0;
    }
    return 1;
}

static int parse_header(struct fotadev_http_resp *r)
{
    const char *p = r->hdr, *end = r->hdr + r->hdr_len, *eol;
    uint32_t st;
    int n;

    if (r->hdr_len < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ')
        return FOTA_EPROTO;
    if (parse_u32(p + 9, end, &st) != 3)
        return FOTA_EPROTO;
    r->status = (int)st;
    for (p = strstr(p, "\r\n") + 2; p < end; p = eol + 2) {
        const char *v;
        size_t llen;
        eol = strstr(p, "\r\n");
        if (!eol || eol == p)
            break;
        llen = (size_t)(eol - p);
        v = memchr(p, ':', llen);
        if (!v)
            return FOTA_EPROTO;
        for (v++; v < eol && (*v == ' ' || *v == '\t'); v++)
            ;
        if (name_is(p, llen, "content-length")) {
            if (parse_u32(v, eol, &r->content_length) != eol - v)
                return FOTA_EPROTO;
            r->have_length = 1;
        } else if (name_is(p, llen, "content-range") && eol - v > 6 && memcmp(v, "bytes ", 6) == 0) {
            uint32_t a, b;
            const char *q = v + 6;
            if ((n = parse_u32(q, eol, &a)) < 0 || q[n] != '-')
                return FOTA_EPROTO;
            q += n + 1;
            if ((n = parse_u32(q, eol, &b)) < 0 || q[n] != '/' || b < a)
                return FOTA_EPROTO;
            q += n + 1;
            if (parse_u32(q, eol, &r->total) != eol - q)
                r->total = 0;
            r->range_start = a;
        }
    }
    if (!r->have_length)
        return FOTA_EPROTO;      /* stock clients cannot download without it */
    if (r->status == 200)
        r->total = r->content_length;
    else if (r->status == 206 && r->total == 0)
        return FOTA_EPROTO;
    return 0;
}

int fotadev_http_resp_feed(struct fotadev_http_resp *r, const char *data, size_t len)
{
    size_t old = r->hdr_len, take, i, start;
    int rc;

    take = len;
    if (take > FOTADEV_HTTP_HDRMAX - old)
        take = FOTADEV_HTTP_HDRMAX - old;
    memcpy(r->hdr + old, data, take);
    r->hdr_len = old + take;
    r->hdr[r->hdr_len] = '\0';
    start = old >= 3 ? old - 3 : 0;
    for (i = start; i + 4 <= r->hdr_len; i++) {
        if (memcmp(r->hdr + i, "\r\n\r\n", 4) == 0) {
            size_t used = i + 4 - old;
            r->hdr_len = i + 4;
            r->hdr[r->hdr_len] = '\0';
            if (memchr(r->hdr, '\0', r->hdr_len))
                return FOTA_EPROTO;
            rc = parse_header(r);
            return rc < 0 ? rc : (int)used;
        }
    }
    if (r->hdr_len >= FOTADEV_HTTP_HDRMAX)
        return FOTA_ETOOBIG;
    return FOTA_EAGAIN;
}
