/* fotasim_ardhttp.c - the Arduino core's HTTPClient as ESPhttpUpdate and
 * ESPHome use it (§2, §3, §9.1): URL split, request bytes per core line,
 * the response header read line by line with the client's own rules
 * (status from index 9, names compared without trimming, values trimmed,
 * repeated collected headers joined with ','). Pure. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fota_str.h"
#include "fotasim_ardhttp.h"

/* base64::encode(auth, false): standard alphabet, padded, no newlines. */
static int base64(const char *in, size_t n, char *out, size_t cap)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i, o = 0;
    if ((n + 2) / 3 * 4 + 1 > cap)
        return -1;
    for (i = 0; i + 2 < n; i += 3) {
        unsigned v = (unsigned)(uint8_t)in[i] << 16 | (unsigned)(uint8_t)in[i + 1] << 8 |
                     (uint8_t)in[i + 2];
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = b64[(v >> 6) & 63];
        out[o++] = b64[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)(uint8_t)in[i] << 16 | (i + 1 < n ? (unsigned)(uint8_t)in[i + 1] << 8 : 0);
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return 0;
}

/* String::toInt: atol's leading white space, sign and digits. */
static long to_int(const char *s)
{
    return strtol(s, NULL, 10);
}

int fotasim_url_parse(const char *url, struct fotasim_url *u)
{
    const char *colon = strchr(url, ':'), *host, *slash, *at, *pc;
    size_t hl;
    char hostpart[sizeof(u->host) + sizeof(u->auth) + 8];

    memset(u, 0, sizeof(*u));
    if (!colon)
        return -1;
    if ((size_t)(colon - url) == 4 && strncmp(url, "http", 4) == 0)
        u->port = 80;
    else if ((size_t)(colon - url) == 5 && strncmp(url, "https", 5) == 0)
        u->port = 443, u->https = 1;
    else
        return -1;
    if (strlen(colon) < 3)
        return -1;
    host = colon + 3;                          /* url.remove(0, index + 3) */
    slash = strchr(host, '/');
    hl = slash ? (size_t)(slash - host) : strlen(host);
    if (hl == 0 || hl >= sizeof(hostpart) ||
        fota_str_copy(u->path, sizeof(u->path), slash ? slash : "/") >= sizeof(u->path))
        return -1;
    memcpy(hostpart, host, hl);
    hostpart[hl] = '\0';
    host = hostpart;
    if ((at = strchr(host, '@')) != NULL) {
        if (base64(host, (size_t)(at - host), u->auth, sizeof(u->auth)) < 0)
            return -1;
        host = at + 1;
    }
    if ((pc = strchr(host, ':')) != NULL) {
        u->port = (uint16_t)to_int(pc + 1);
        hl = (size_t)(pc - host);
    } else {
        hl = strlen(host);
    }
    if (hl == 0 || hl >= sizeof(u->host))
        return -1;
    fota_str_copy_n(u->host, sizeof(u->host), host, hl);
    return 0;
}

/* "Host: h[:port]" as sendHeader writes it: the port only when it is
 * neither 80 nor 443. */
static int host_line(char *buf, size_t cap, const struct fotasim_url *u)
{
    if (u->port != 80 && u->port != 443)
        return snprintf(buf, cap, "Host: %s:%u\r\n", u->host, (unsigned)u->port);
    return snprintf(buf, cap, "Host: %s\r\n", u->host);
}

struct out {
    char *buf;
    size_t cap, len;
    int bad;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (o->bad)
        return;
    va_start(ap, fmt);
    n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->len)
        o->bad = 1;
    else
        o->len += (size_t)n;
}

static void put_host(struct out *o, const struct fotasim_url *u)
{
    char h[sizeof(u->host) + 16];
    host_line(h, sizeof(h), u);
    put(o, "%s", h);
}

int fotasim_ardreq_build(char *buf, size_t cap, const struct fotasim_ardreq *r)
{
    struct out o = {buf, cap, 0, 0};
    const struct fotasim_url *u = r->url;
    int new_order = r->core >= FOTASIM_CORE_27;   /* Authorization before Connection */

    /* useHTTP10(true): HTTP/1.0, reuse off (Connection: close), no Accept-Encoding */
    put(&o, "GET %s HTTP/1.0\r\n", u->path[0] ? u->path : "/");
    put_host(&o, u);
    put(&o, "User-Agent: ESP8266-http-Update\r\n");
    if (new_order && u->auth[0])
        put(&o, "Authorization: Basic %s\r\n", u->auth);
    put(&o, "Connection: close\r\n");
    if (!new_order && u->auth[0])
        put(&o, "Authorization: Basic %s\r\n", u->auth);
    put(&o, "x-ESP8266-Chip-ID: %u\r\n", (unsigned)r->chip_id);
    put(&o, "x-ESP8266-STA-MAC: %s\r\n", r->sta_mac);
    put(&o, "x-ESP8266-AP-MAC: %s\r\n", r->ap_mac);
    put(&o, "x-ESP8266-free-space: %u\r\n", (unsigned)r->free_space);
    put(&o, "x-ESP8266-sketch-size: %u\r\n", (unsigned)r->sketch_size);
    put(&o, "x-ESP8266-sketch-md5: %s\r\n", r->sketch_md5);
    put(&o, "x-ESP8266-chip-size: %u\r\n", (unsigned)r->chip_size);
    put(&o, "x-ESP8266-sdk-version: %s\r\n", r->sdk_version);
    put(&o, "x-ESP8266-mode: %s\r\n", r->mode ? r->mode : "sketch");
    if (r->version && r->version[0])
        put(&o, "x-ESP8266-version: %s\r\n", r->version);
    if (r->core >= FOTASIM_CORE_26)             /* sendRequest adds it on every GET */
        put(&o, "Content-Length: 0\r\n");
    put(&o, "\r\n");
    return o.bad ? -1 : (int)o.len;
}

int fotasim_esphome_req_build(char *buf, size_t cap, const struct fotasim_url *u,
                              const char *user_agent)
{
    struct out o = {buf, cap, 0, 0};

    /* setReuse(true): HTTP/1.1, keep-alive, Accept-Encoding (core 3.1.2) */
    put(&o, "GET %s HTTP/1.1\r\n", u->path[0] ? u->path : "/");
    put_host(&o, u);
    put(&o, "User-Agent: %s\r\n", user_agent ? user_agent : "ESPHome/2024.11.0 (https://esphome.io)");
    put(&o, "Accept-Encoding: identity;q=1,chunked;q=0.1,*;q=0\r\n");
    if (u->auth[0])
        put(&o, "Authorization: Basic %s\r\n", u->auth);
    put(&o, "Connection: keep-alive\r\n");
    put(&o, "Content-Length: 0\r\n\r\n");
    return o.bad ? -1 : (int)o.len;
}

void fotasim_ardresp_init(struct fotasim_ardresp *r)
{
    memset(r, 0, sizeof(*r));
    r->content_length = -1;
    r->can_reuse = 1;
}

/* String::trim: white space off both ends, in place. */
static char *trim(char *s)
{
    char *e;
    while (*s && isspace((unsigned char)*s))
        s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

/* One header line (without its '\n'). Returns 1 when it ends the header. */
static int header_line(struct fotasim_ardresp *r, char *line)
{
    char *sep, *value;
    char copy[FOTASIM_ARDRESP_LINE_MAX + 1];

    if (strncmp(line, "HTTP/1.", 7) == 0) {
        /* substring(9, indexOf(' ', 9)).toInt() */
        r->status = strlen(line) > 9 ? (int)to_int(line + 9) : 0;
        r->can_reuse = r->can_reuse && line[7] != '0' && r->status > 0 && r->status < 500;
    } else if ((sep = strchr(line, ':')) != NULL && sep > line) {
        size_t nl = (size_t)(sep - line);       /* the name is not trimmed */
        fota_str_copy(copy, sizeof(copy), sep + 1);
        value = trim(copy);
        if (nl == 14 && strncasecmp(line, "Content-Length", 14) == 0)
            r->content_length = to_int(value);
        else if (nl == 17 && strncasecmp(line, "Transfer-Encoding", 17) == 0)
            fota_str_copy(r->transfer_encoding, sizeof(r->transfer_encoding), value);
        else if (nl == 10 && strncasecmp(line, "Connection", 10) == 0) {
            if (strstr(value, "close") && !strstr(value, "keep-alive"))
                r->can_reuse = 0;
        } else if (nl == 8 && strncasecmp(line, "Location", 8) == 0)
            fota_str_copy(r->location, sizeof(r->location), value);
        else if (nl == 5 && strncasecmp(line, "x-MD5", 5) == 0) {
            size_t have = strlen(r->x_md5);
            r->have_x_md5 = 1;
            if (have)
                snprintf(r->x_md5 + have, sizeof(r->x_md5) - have, ",%s", value);
            else
                fota_str_copy(r->x_md5, sizeof(r->x_md5), value);
        }
    }
    fota_str_copy(copy, sizeof(copy), line);
    return trim(copy)[0] == '\0';
}

int fotasim_ardresp_feed(struct fotasim_ardresp *r, const uint8_t *data, size_t len)
{
    size_t i;
    for (i = 0; i < len && !r->done; i++) {
        if (data[i] != '\n') {
            if (r->line_len < FOTASIM_ARDRESP_LINE_MAX)
                r->line[r->line_len++] = data[i] ? (char)data[i] : ' ';
            continue;
        }
        r->line[r->line_len] = '\0';
        r->line_len = 0;
        if (header_line(r, r->line)) {
            r->done = 1;
            r->chunked = strcasecmp(r->transfer_encoding, "chunked") == 0;
            return (int)(i + 1);
        }
    }
    return r->done ? (int)i : -1;
}

int fotasim_ardresp_verdict(const struct fotasim_ardresp *r)
{
    if (r->transfer_encoding[0] && strcasecmp(r->transfer_encoding, "chunked") != 0)
        return FOTASIM_HTTPC_ENCODING;
    if (r->status <= 0)
        return FOTASIM_HTTPC_NO_HTTP_SERVER;
    return 0;
}

const char *fotasim_httpc_error_string(int code)
{
    switch (code) {
    case -1: return "connection failed";
    case -2: return "send header failed";
    case -3: return "send payload failed";
    case -4: return "not connected";
    case -5: return "connection lost";
    case -6: return "no stream";
    case -7: return "no HTTP server";
    case -8: return "not enough ram";
    case -9: return "Transfer-Encoding not supported";
    case -10: return "Stream write error";
    case -11: return "read Timeout";
    default: return "";
    }
}
