/* devchan.h - the device channel: long-lived JSON-line connections from
 * stock ESP8266 firmware on device_port (plain) and device_tls_port (TLS),
 * presence, command delivery (pushes) and the D4/D7 replies that finish them.
 *
 * It is the daemon module `fota_device_module` (server.h); it registers its
 * own RPC routes (rpc.c) and hears of deletions through the hub (hub.h).
 * Everything runs on the server's loop thread; its store calls run as store
 * jobs (store_exec.h), never on the loop. */
#ifndef FOTA_DEVCHAN_H
#define FOTA_DEVCHAN_H

#include <stdint.h>
#include "server.h"

struct fota_devchan;
struct fota_devchan_wait;

#define FOTA_DEVCHAN_HELLO_TIMEOUT  10   /* s after its accept: a new connection must have
                                            activated/identified by then, TLS handshake
                                            included (or http_timeout when that is shorter) */
#define FOTA_DEVCHAN_MAX_PER_ADDR   256  /* default of conf.device_max_per_addr */
#define FOTA_DEVCHAN_PRESENCE_MS    1000 /* presence rows are written in batches this often */
#define FOTA_DEVCHAN_KICK_MS        300  /* queued commands go out this long after identify */
#define FOTA_DEVCHAN_SHED_BATCH     16   /* anonymous connections closed per failed accept */
#define FOTA_DEVCHAN_OUT_MAX        65536 /* bytes of replies a connection may leave unread
                                             before fotad stops reading its requests */
#define FOTA_DEVCHAN_RETIRE_MS      1000 /* a replaced connection whose socket still holds
                                            bytes waits this long for them to make a frame */

struct json_t;

/* Called once when a delivered command finishes: state is FOTA_CMD_ACKED /
 * FOTA_CMD_DONE / FOTA_CMD_FAILED with the device's reply in result (decoded,
 * borrowed for the call), or FOTA_CMD_TIMEOUT, FOTA_CMD_QUEUED (requeued),
 * FOTA_DEVCHAN_GONE with result NULL. The wait is freed after the call. */
typedef void (*fota_devchan_done_cb)(void *ud, int state, const struct json_t *result);
/* done_cb state when the device was deleted while its reply was awaited
 * (the command row is gone with it); not a stored state. */
#define FOTA_DEVCHAN_GONE (-1)

/* Delivers cmd if its device is connected, else leaves it queued (the push
 * carries the owner key of the device's key_generation, which the caller
 * read off the loop: fota_devcache_key_generation); when it
 * was delivered and expects a reply, waits up to timeout_s for the device's
 * reply with the same nonce and then calls cb (never from inside this call). Returns the state reached
 * now: FOTA_CMD_QUEUED (device offline; cb never called), FOTA_CMD_DELIVERED
 * (waiting; *wait is the handle for cancel), FOTA_CMD_DONE (sys_reboot: done
 * when written; cb never called) or a negative FOTA_E*. */
int fota_devchan_deliver(struct fota_devchan *ch, struct fota_command *cmd, int key_generation,
                         unsigned timeout_s, fota_devchan_done_cb cb, void *ud,
                         struct fota_devchan_wait **wait);
/* Drops a pending wait without calling cb (the HTTP client went away). */
void fota_devchan_cancel(struct fota_devchan *ch, struct fota_devchan_wait *wait);

/* A fresh command nonce: positive, 31-bit (the device's parse_nonce limit). */
int64_t fota_devchan_nonce(void);

/* 1 if the device has a live, identified connection on this instance. */
int fota_devchan_online(struct fota_devchan *ch, int64_t device_id);
/* Every identified device's queued commands are checked again (batched,
 * as after an identify): doorbells for them may have been missed. The
 * number of devices. Main loop. */
size_t fota_devchan_kick_all(struct fota_devchan *ch);

/* Find and send: writes line (len bytes, one complete push ending in '\n')
 * to the device's live connection. 0, or FOTA_ENOENT when it is not
 * connected here (nothing written). */
int fota_devchan_send(struct fota_devchan *ch, int64_t device_id, const char *line, int len);

#endif
