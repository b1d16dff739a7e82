/* devchan_int.h - private state shared by devchan.c (connections, framing,
 * presence) and devchan_cmd.c (pushes, replies, the upgrade lifecycle). */
#ifndef FOTA_DEVCHAN_INT_H
#define FOTA_DEVCHAN_INT_H

#include <stdint.h>
#include "devchan.h"
#include "devproto.h"

struct bufferevent;
struct evconnlistener;
struct event;

struct fota_addr_count;

/* One device connection. Kept small: the socket buffers live in the bufferevent. */
struct fota_dconn {
    struct fota_devchan *ch;
    struct bufferevent *bev;
    struct fota_dconn *prev, *next;
    struct fota_dconn *hnext;          /* device-id hash chain (while hashed) */
    struct fota_addr_count *addrc;     /* this peer address's connection count */
    struct event *deliver_ev;          /* queued-command delivery, allocated on demand */
    uint64_t id;                       /* conn= in logs */
    int64_t device_id;                 /* 0 until activate/identify */
    int64_t product_id;
    int online;                        /* identified: pushes may go here */
    int closing;                       /* a refusal is flushing; no more input */
    int tls;
    int hashed;
    uint32_t pres_gen, pres_slot;      /* its row in the presence batch, if gen is current */
    char key_hash[65];                 /* the master key this connection proved */
    uint8_t queued;                    /* output went through the bufferevent: check it before send() */
    uint16_t port;                     /* peer port; the address is addrc->addr (logs: peer_of) */
    int fd;                            /* the socket (plain connections write it directly) */
};

struct fota_devchan_wait {
    struct fota_devchan *ch;
    struct fota_devchan_wait *prev, *next;
    struct event *timer;
    int64_t device_id, nonce, cmd_id;
    fota_devchan_done_cb cb;
    void *ud;
};

struct rpc_pending;

/* A device whose queued commands are due at due_ms (kick list, in time order). */
struct fota_kick {
    int64_t device_id;
    int64_t due_ms;
};
struct fota_rom_ledger;

/* Connections per peer address (the flood limit), and online devices by id. */
#define FOTA_DEVCHAN_BUCKETS 4096
/* Online devices by id: 16,384 chains (128 KB), about one connection per
 * chain at 19,000 devices, so a push's lookup is one or two hops. */
#define FOTA_DEVCHAN_DEV_BITS 14
#define FOTA_DEVCHAN_DEV_BUCKETS (1u << FOTA_DEVCHAN_DEV_BITS)
struct fota_addr_count {
    struct fota_addr_count *next;
    unsigned n;
    char addr[48];
};

struct fota_devchan {
    struct fota_server *srv;
    struct evconnlistener *lst[2];     /* [0] plain, [1] TLS */
    int port[2];
    struct fota_dconn *conns;
    size_t nconns;
    struct fota_dconn *by_dev[FOTA_DEVCHAN_DEV_BUCKETS];
    struct fota_addr_count *by_addr[FOTA_DEVCHAN_BUCKETS];
    uint64_t next_id;
    struct fota_presence *pres;        /* presence rows waiting for the batch write */
    size_t npres, cappres;
    uint32_t pres_gen;                 /* bumped at each batch write */
    struct event *pres_ev;
    struct fota_devchan_wait *waits;
    struct rpc_pending *rpc_pending;   /* HTTP requests waiting for a device (rpc.c) */
    struct fota_fanout *fanout;        /* bulk upgrades (rpc_fanout.c), NULL without HTTP */
    struct fota_kick *kick;            /* devices just online: queued commands to check */
    size_t nkick, capkick;
    struct event *kick_ev;             /* checks them FOTA_DEVCHAN_KICK_MS after the first */
    struct fota_rom_ledger *ledgers[FOTA_LOOPS_MAX]; /* batched download ledger, per loop (rom.c) */
};

/* devchan.c */
void fota_dconn_send(struct fota_dconn *c, const char *buf, int len);
/* Writes line (if n > 0), logs at WARN and closes once it is flushed. */
void fota_dconn_close_with(struct fota_dconn *c, const char *line, int n, int status,
                           const char *log_reason);
/* Writes a refusal line, logs why and closes once it is flushed. */
void fota_dconn_refuse(struct fota_dconn *c, int status, const char *why, const char *log_reason);
struct fota_dconn *fota_devchan_find(struct fota_devchan *ch, int64_t device_id);
void fota_devchan_presence(struct fota_devchan *ch, int64_t device_id, int online);

/* devchan_cmd.c */
/* Encodes and writes cmd to c; updates its state in the store. 0 or FOTA_E*. */
int fota_devchan_push_cmd(struct fota_dconn *c, struct fota_command *cmd);
/* A D4/D5 reply with a nonce arrived on c. line is NUL-terminated. */
void fota_devchan_on_reply(struct fota_dconn *c, const struct fota_devproto_frame *f, const char *line);
/* A D7 report. */
void fota_devchan_on_message(struct fota_dconn *c, const struct fota_devproto_frame *f);
/* Delivers c's next queued command after delay_ms (its own timer, while
 * more than one is queued). */
void fota_devchan_kick_queue(struct fota_dconn *c, int delay_ms);
/* The device just identified: its queued commands are checked a moment
 * later, from one channel-wide list and timer (no per-connection timer, so
 * a reconnect storm leaves no per-device allocations behind). */
void fota_devchan_kick_later(struct fota_devchan *ch, int64_t device_id);
/* Frees the list (module stop). */
void fota_devchan_kick_free(struct fota_devchan *ch);
/* Frees every wait (module stop) without callbacks. */
void fota_devchan_waits_free(struct fota_devchan *ch);

#endif
