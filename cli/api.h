/* api.h - fotactl's client of the fotad REST API over libcurl: one easy
 * handle reused for every request of a run (keep-alive), JSON in and out
 * (jansson), multipart uploads with an optional progress bar, binary
 * downloads, and the server-sent-events message feed. Never prints except
 * the progress bar (stderr, only when asked). */
#ifndef FOTA_CLI_API_H
#define FOTA_CLI_API_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "reply.h"
#include "sse.h"

#define FOTA_CLI_BODY_MAX (64u << 20)   /* largest reply fotactl accepts */

struct fota_cli_api;

/* Opens a client for server (base URL, "http://host:port"; a bare host:port
 * gets http://) with key (may be "" for anonymous calls) and cacert (PEM CA
 * file for https, NULL or "" for the system store; borrowed for the
 * client's life). Returns NULL only when out of memory or libcurl cannot
 * start. */
struct fota_cli_api *fota_cli_api_new(const char *server, const char *key, const char *cacert);
void fota_cli_api_free(struct fota_cli_api *api);   /* NULL-safe */

/* The base URL in use ("http://127.0.0.1:8080", no trailing slash). */
const char *fota_cli_api_server(const struct fota_cli_api *api);

/* One request. method "GET"/"POST"/...; path starts with "/" (query string
 * allowed); body (borrowed, may be NULL) is sent as application/json.
 * Returns 0 when a reply arrived (any status: look at r->status), or
 * FOTA_ECLOSED/FOTA_ETIMEDOUT/FOTA_EIO/FOTA_ETOOBIG with r->transport set.
 * r is initialised here; always call fota_cli_reply_cleanup. */
int fota_cli_api_call(struct fota_cli_api *api, const char *method, const char *path,
                      json_t *body, struct fota_cli_reply *r);

/* One part of a multipart/form-data POST: a field (value) or a file (data,
 * len, filename). Borrowed. */
struct fota_cli_part {
    const char *name;
    const char *value;         /* text field when data is NULL */
    const uint8_t *data;
    size_t len;
    const char *filename;
};

/* POSTs parts as multipart/form-data to path. progress != 0 draws a bar on
 * stderr while uploading. Same result contract as fota_cli_api_call. */
int fota_cli_api_upload(struct fota_cli_api *api, const char *path,
                        const struct fota_cli_part *parts, size_t n, int progress,
                        struct fota_cli_reply *r);

/* GETs path as text/event-stream and calls cb per event (sse.h) until the
 * server closes (r->stream_ended = 1), cb returns 1, or an error. Returns 0
 * (closed or stopped by cb), a transport error as fota_cli_api_call, or
 * FOTA_ETOOBIG for an event beyond FOTA_CLI_SSE_MAX (r->transport set). A
 * reply that is not an event stream (an error status, or a server without
 * streaming) is returned in r like fota_cli_api_call, with no events. */
int fota_cli_api_stream(struct fota_cli_api *api, const char *path,
                        fota_cli_sse_cb cb, void *ud, struct fota_cli_reply *r);

/* Receives a download's body (fota_cli_api_download): 0 goes on, anything
 * else stops the transfer and becomes the call's result. */
typedef int (*fota_cli_sink)(void *ud, const uint8_t *data, size_t len);

/* GETs path and hands a 2xx reply's body to sink as it arrives (nothing is
 * kept in memory); a reply of another status is returned in r like
 * fota_cli_api_call. A reply cut short of its Content-Length is a transport
 * error (FOTA_ECLOSED). The server may take up to `patience` seconds before
 * its first byte. progress != 0 draws a bar on stderr. Returns 0, the
 * sink's value, or a transport error as fota_cli_api_call. */
int fota_cli_api_download(struct fota_cli_api *api, const char *path, fota_cli_sink sink,
                          void *ud, long patience, int progress, struct fota_cli_reply *r);

/* Limits the next streams to seconds in total (0 = no limit, the default);
 * a stream cut by it returns FOTA_ETIMEDOUT. */
void fota_cli_api_set_timeout(struct fota_cli_api *api, long seconds);

/* A header of the last reply (the last one of that name), or NULL. Valid
 * until the next request on api. */
const char *fota_cli_api_header(struct fota_cli_api *api, const char *name);

/* Seconds on the monotonic clock: for deadlines and transfer rates, never
 * the wall clock (which may jump). */
double fota_cli_api_clock(void);

/* Percent-encodes s into out (for query values and path segments). Returns 0
 * or FOTA_ETOOBIG. */
int fota_cli_api_urlencode(const char *s, char *out, size_t cap);

#endif
