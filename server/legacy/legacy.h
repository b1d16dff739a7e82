/* legacy.h - the raw-TCP DFU listener of seed 000 (default port 5555).
 *
 * A device connects and sends one byte, the section it wants (1 = user1, 2 = user2); the
 * listener answers a 4-byte little-endian length, then the image, paced so that a stock
 * client (which copies each receive callback into a 1280-byte stack buffer) never overflows.
 * Request bytes 0x81/0x82 (extension) get the same answer unpaced, with sendfile.
 * Runs on a caller-owned libevent base; no threads, no sleeps. See docs/legacy.md. */
#ifndef FOTA_LEGACY_H
#define FOTA_LEGACY_H

#include <stddef.h>
#include <stdint.h>

#include "fota_err.h"

struct event_base;
struct fota_legacy;

/* Largest write a stock client survives (its OTA_PACKET_SIZE). */
#define FOTA_LEGACY_CHUNK_MAX 1280u
#define FOTA_LEGACY_DEFAULT_PORT 5555
#define FOTA_LEGACY_DEFAULT_CHUNK 1280u
#define FOTA_LEGACY_DEFAULT_INTERVAL_MS 20u
#define FOTA_LEGACY_DEFAULT_TIMEOUT_MS 30000u
#define FOTA_LEGACY_DEFAULT_MAX_CLIENTS 64u
#define FOTA_LEGACY_DEFAULT_MAX_QUEUE 256u
/* How long a connection may stay silent before its request byte (at most
 * timeout_ms). Until that byte it holds no slot; when as many connections as
 * there are slots (max_clients + max_queue, FOTA_LEGACY_SILENT_MIN at least)
 * are silent, the oldest one is closed for a new one. */
#define FOTA_LEGACY_REQUEST_TIMEOUT_MS 5000u
#define FOTA_LEGACY_SILENT_MIN 64u
/* Connections that end before a valid request byte (connect and close, a
 * silent one timed out or shed, a bad byte) are "empty": with
 * empty_rate > 0, each address may have FOTA_LEGACY_EMPTY_BURST of them at
 * once and empty_rate a second after that logged and recorded one by one;
 * the rest are quiet (record.quiet, one summary line a second), so a
 * connect/close flood cannot fill the log and the transfers table.
 * FOTA_LEGACY_EMPTY_ADDRS addresses are followed at once (a table by hash:
 * an address pushed out starts with a fresh burst). */
#define FOTA_LEGACY_EMPTY_BURST 10u
#define FOTA_LEGACY_EMPTY_ADDRS 256u
/* Largest image the listener will announce (16 MiB, the biggest ESP8266 flash). */
#define FOTA_LEGACY_IMAGE_MAX (16u * 1024u * 1024u)
/* Request byte flag: stream the answer unpaced (extension clients only). */
#define FOTA_LEGACY_REQ_STREAM 0x80u

struct fota_legacy_conf {
    unsigned chunk;       /* paced write size, 1..FOTA_LEGACY_CHUNK_MAX */
    unsigned interval_ms; /* gap between an acknowledged write and the next one, 0..60000 */
    unsigned timeout_ms;  /* stall limit and the longest request wait, 1..3600000 */
    unsigned max_clients; /* concurrent transfers, 1..100000 */
    unsigned max_queue;   /* requests waiting for a transfer slot, 0..100000; beyond: refused */
    unsigned empty_rate;  /* empty connections of one address logged and recorded a second,
                           * after FOTA_LEGACY_EMPTY_BURST, 0..1000; 0 = all of them */
};

/* Fills *conf with the defaults above. */
void fota_legacy_conf_init(struct fota_legacy_conf *conf);
/* 0 if every field is within range, else FOTA_ECONFIG (and, if err/err_len, the reason). */
int fota_legacy_conf_check(const struct fota_legacy_conf *conf, char *err, size_t err_len);

/* Where images come from. open() is called once per valid request, on the loop thread.
 * section is 1 or 2. On success it returns 0 with *fd open for reading (the listener owns it
 * from then on and closes it, also on error paths), *size the number of bytes to serve from
 * offset 0 (at most FOTA_LEGACY_IMAGE_MAX and at most the file's size), and label a short
 * NUL-terminated description for logs and records (e.g. "fw v1.2 user1.bin"; may be left empty).
 * It returns FOTA_ENOENT when there is no image for that section (the client is disconnected
 * with result "no_image"), another negative FOTA_E* on failure (result "error"), or
 * FOTA_EAGAIN when it cannot tell yet (it asked its store): the connection waits first in
 * the queue, no queued connection starts, and open() is asked again once the source calls
 * fota_legacy_source_ready(), which it must do. */
struct fota_legacy_source {
    int (*open)(void *ud, int section, int *fd, uint64_t *size, char *label, size_t label_len);
    void *ud;
};

/* One finished connection (whatever its outcome). Pointers are valid during the call only.
 * result: "ok" (every image byte written and acknowledged by the peer's TCP), "client_closed",
 * "stalled" (no progress within timeout_ms), "timeout" (no request byte within
 * FOTA_LEGACY_REQUEST_TIMEOUT_MS or timeout_ms), "shed" (no request byte yet, closed for a
 * newer connection while max_clients + max_queue connections were silent), "bad_request",
 * "no_image", "busy" (a request while max_clients transfers run and max_queue wait), "error"
 * (source or socket failure), "shutdown" (listener freed mid-transfer). */
struct fota_legacy_record {
    uint64_t conn_id;
    const char *peer;       /* "1.2.3.4:5678" or "[::1]:5678" */
    int section;            /* 1 or 2; 0 when no valid request was read */
    const char *mode;       /* "paced", "stream", or "-" when no valid request was read */
    const char *result;
    uint64_t size;          /* announced image length, 0 if none */
    uint64_t bytes_sent;    /* image bytes written to the socket (not counting the length) */
    uint64_t duration_ms;   /* from accept to end */
    const char *label;      /* from the source, "" if none */
    int quiet;              /* an empty connection over its address's empty_rate: counted,
                             * neither logged nor to be stored */
};
typedef void (*fota_legacy_record_cb)(void *ud, const struct fota_legacy_record *rec);

/* Creates a listener on base. conf NULL = defaults; conf and *src are copied. log may be NULL.
 * Returns NULL if conf is out of range (see fota_legacy_conf_check) or src->open is NULL. The listener relies on SIGPIPE being ignored by the process. */
struct fota_legacy *fota_legacy_new(struct event_base *base, const struct fota_legacy_conf *conf,
                                    const struct fota_legacy_source *src, fota_log_cb log,
                                    void *log_ud);
/* Replaces the settings (config reload). Running transfers use the new chunk and interval from
 * their next write and the new timeout from their next wait; a larger max_clients starts
 * queued transfers at once, a smaller one lets running transfers finish. Returns 0 or
 * FOTA_ECONFIG (nothing changed). */
int fota_legacy_set_conf(struct fota_legacy *lg, const struct fota_legacy_conf *conf);
/* The source can answer again (after its open() returned FOTA_EAGAIN): queued transfers
 * start. Loop thread. NULL is a no-op. */
void fota_legacy_source_ready(struct fota_legacy *lg);
/* Sets (or clears, with NULL) the callback told about every finished connection. */
void fota_legacy_set_record_cb(struct fota_legacy *lg, fota_legacy_record_cb cb, void *ud);
/* Starts listening on addr (numeric IPv4 or IPv6 literal, brackets allowed; NULL or "" = 0.0.0.0;
 * "::" is dual-stack) and port (0 = ephemeral). *bound_port (may be NULL) receives the actual port. May be called
 * up to 8 times for several addresses. Errors: FOTA_EINVAL (bad address or port), FOTA_EIO
 * (bind/listen failed: errno is kept), FOTA_ERANGE (too many listeners). */
int fota_legacy_listen(struct fota_legacy *lg, const char *addr, int port, int *bound_port);
/* Adopts fd, a socket already bound and listening (e.g. from fota_server_bind); the listener
 * owns it from then on, also on failure. Errors: FOTA_EINVAL (fd < 0), FOTA_ERANGE (too many
 * listeners), FOTA_ENOMEM. */
int fota_legacy_listen_fd(struct fota_legacy *lg, int fd);
/* Closes every listening socket (drain): transfers in progress and queued continue. */
void fota_legacy_stop_listening(struct fota_legacy *lg);
/* Current counts, for status pages (served_ok: since fota_legacy_new). Any pointer may be
 * NULL. Safe to call from any thread while lg exists (the counters are atomic). */
void fota_legacy_stats(const struct fota_legacy *lg, unsigned *active, unsigned *queued,
                       uint64_t *served_ok);
/* Closes the listeners and every connection (open transfers are recorded as "shutdown").
 * NULL is a no-op. Must run on the loop thread, before the base is freed. */
void fota_legacy_free(struct fota_legacy *lg);

/* Pure helpers (exposed for tests). Decodes a request byte: 0 with *section (1/2) and
 * *stream (0/1) set, FOTA_EPROTO for any other byte. */
int fota_legacy_request_parse(uint8_t byte, int *section, int *stream);
/* Writes len as 4 little-endian bytes, whatever the host byte order. */
void fota_legacy_len_encode(uint32_t len, uint8_t out[4]);

/* `fotad legacy -fw1 user1.bin -fw2 user2.bin [--port N] [--bind ADDR] [--interval-ms N]
 * [--chunk N] [--timeout SECONDS] [--max-clients N]`: the seed's dfu_ota_server as a drop-in.
 * argv[0] is the subcommand name. Returns the process exit status (0 after SIGINT/SIGTERM,
 * 2 on a bad command line, as fotad's own, 1 on images that cannot be served). Prints to stdout and stderr; installs signal handling. */
int fota_legacy_dropin_main(int argc, char **argv);

#endif
