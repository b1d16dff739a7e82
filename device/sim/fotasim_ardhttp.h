/* fotasim_ardhttp.h - the ESP8266 Arduino core's HTTP client as its OTA
 * clients use it, sans-IO (shared/reference/arduino-ota.md, cited as §n):
 * the URL split of HTTPClient::beginInternal, the request bytes of
 * ESPhttpUpdate (§2.1, §2.2: per core line) and of ESPHome (§9.1), and the
 * response-header reading of HTTPClient::handleHeaderResponse (§3). Pure:
 * bytes in, structures and bytes out. */
#ifndef FOTASIM_ARDHTTP_H
#define FOTASIM_ARDHTTP_H

#include <stddef.h>
#include <stdint.h>

/* Core lines: 25 = 2.5.x, 26 = 2.6.x, 27 = 2.7.x (and Tasmota's fork), 30 =
 * 3.0.x, 31 = 3.1.x. */
enum { FOTASIM_CORE_25 = 25, FOTASIM_CORE_26 = 26, FOTASIM_CORE_27 = 27, FOTASIM_CORE_30 = 30,
       FOTASIM_CORE_31 = 31 };

/* HTTPClient error codes (§3). */
enum {
    FOTASIM_HTTPC_CONNECTION_FAILED = -1, FOTASIM_HTTPC_SEND_HEADER_FAILED = -2,
    FOTASIM_HTTPC_CONNECTION_LOST = -5, FOTASIM_HTTPC_NO_HTTP_SERVER = -7,
    FOTASIM_HTTPC_ENCODING = -9, FOTASIM_HTTPC_READ_TIMEOUT = -11
};

#define FOTASIM_URL_MAX 256

/* A URL as HTTPClient::beginInternal splits it. */
struct fotasim_url {
    char host[96];              /* as written in the URL (no port) */
    uint16_t port;              /* 80 (http), 443 (https) or the one given */
    int https;
    char path[FOTASIM_URL_MAX]; /* everything after host[:port], query included; "/" if empty */
    char auth[128];             /* base64(user:pass) from user:pass@, "" none */
};

/* Splits url. Returns 0, or -1 for a scheme other than http/https, a
 * missing host or a part that does not fit. */
int fotasim_url_parse(const char *url, struct fotasim_url *u);

/* What ESPhttpUpdate sends (§2.1): the device's facts and the call's
 * arguments. */
struct fotasim_ardreq {
    int core;                   /* FOTASIM_CORE_* */
    const struct fotasim_url *url;
    uint32_t chip_id;
    char sta_mac[18], ap_mac[18];   /* "DE:BA:7A:B1:E0:42" */
    uint32_t free_space, sketch_size, chip_size;
    char sketch_md5[33];        /* lower-case hex */
    const char *sdk_version;
    const char *mode;           /* "sketch" (or "spiffs") */
    const char *version;        /* the update() argument; "" or NULL: no header */
};

/* Writes ESPhttpUpdate's request into buf. Returns its length or -1 when it
 * does not fit. */
int fotasim_ardreq_build(char *buf, size_t cap, const struct fotasim_ardreq *r);

/* ESPHome's GET (§9.1): HTTP/1.1 keep-alive through HTTPClient with reuse;
 * user_agent NULL: ESPHome's default for its version 2024.11.0. */
int fotasim_esphome_req_build(char *buf, size_t cap, const struct fotasim_url *u,
                              const char *user_agent);

/* handleHeaderResponse (§3): fed bytes as they arrive, reads lines up to LF. */
#define FOTASIM_ARDRESP_LINE_MAX 1024   /* longer lines are cut (the client reads them whole) */
#define FOTASIM_ARDRESP_MD5_MAX 160

struct fotasim_ardresp {
    int status;                 /* the status line's code, 0 until one came */
    long content_length;        /* -1 when absent (the last header wins) */
    char transfer_encoding[32]; /* the last one, trimmed */
    char location[FOTASIM_URL_MAX];
    char x_md5[FOTASIM_ARDRESP_MD5_MAX]; /* x-MD5 lines joined with ',' */
    int have_x_md5;
    int done;                   /* the empty line was read */
    int chunked;                /* Transfer-Encoding: chunked */
    int can_reuse;              /* keep-alive possible: HTTP/1.1, status 1..499, no
                                 * "Connection: close" (HTTPClient's _canReuse) */
    size_t line_len;
    char line[FOTASIM_ARDRESP_LINE_MAX + 1];
};

void fotasim_ardresp_init(struct fotasim_ardresp *r);
/* Feeds bytes. Returns how many of them belonged to the header once it
 * ended (the rest is body; r->done), or -1 while more is needed (all were
 * consumed). After the end, fotasim_ardresp_verdict says what the client
 * makes of it. */
int fotasim_ardresp_feed(struct fotasim_ardresp *r, const uint8_t *data, size_t len);
/* The client's result for a complete header: 0 (use r->status), or
 * FOTASIM_HTTPC_ENCODING (a Transfer-Encoding other than chunked),
 * FOTASIM_HTTPC_NO_HTTP_SERVER (no status). */
int fotasim_ardresp_verdict(const struct fotasim_ardresp *r);

/* "HTTP error: " + the client's string for -1..-11 (§3), "" otherwise. */
const char *fotasim_httpc_error_string(int code);

#endif
