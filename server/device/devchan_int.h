/* devchan_int.h - the device channel's private state and the functions its
 * files share. The files form layers, each calling only the ones below it:
 *   devchan.c            the module: listeners, reads, dispatch by message
 *   devchan_handle_*.c   one handler per message (activate, identify,
 *                        datapoint, message D7, reply D4/D5)
 *   devchan_cmd.c        command delivery: now (deliver) or on connect (queue)
 *   devchan_requeue.c    an unanswered sys_upgrade back to the queue on close
 *   devchan_push.c       a stored command encoded and written to a connection
 *   devchan_wait.c       replies awaited by nonce (the RPC API's waits)
 *   devchan_rate.c       the message rate per device (devchan_rate.h)
 *   devchan_job.c        store work off the loop: a job on a store thread, its
 *                        continuation back on the loop (connection paused meanwhile)
 *   devchan_conn.c       connections: table by device, send, close, presence
 * Main loop thread only, but for the jobs' run functions (store threads). */
#ifndef FOTA_DEVCHAN_INT_H
#define FOTA_DEVCHAN_INT_H

#include <stdint.h>
#include "devchan.h"
#include "devproto.h"
#include "metric.h"

struct bufferevent;
struct evconnlistener;
struct event;
struct fota_accept_guard;
struct fota_addr_count;
struct fota_devchan_held;
struct fota_devchan_rate_ent;
struct fota_devchan_report;
struct fota_store_lane;

/* One device connection. Kept small: the socket buffers live in the bufferevent. */
struct fota_dconn {
    struct fota_devchan *ch;
    struct bufferevent *bev;
    struct fota_dconn *prev, *next;
    struct fota_dconn *hnext;          /* device-id hash chain (while hashed) */
    struct fota_dconn *inext;          /* connection-id hash chain (while it lives) */
    struct fota_dconn *aprev, *anext;  /* the anonymous list, oldest first (until online) */
    int64_t born_ms;                   /* accepted at (fota_clock_mono_ms): the hello deadline;
                                          moved on while its hello waits on the store */
    struct fota_addr_count *addrc;     /* this peer address's connection count */
    struct event *deliver_ev;          /* queued-command delivery, allocated on demand */
    struct event *resume_ev;           /* reading paused by the rate, allocated on demand */
    int64_t tat_us;                    /* the device's message rate state (devchan_rate.h) */
    uint32_t held, warn_s;             /* throttled messages since the last WARN, its second */
    uint64_t id;                       /* conn= in logs */
    uint64_t successor;                /* retiring: the device's newer connection (its id) */
    int64_t device_id;                 /* 0 until activate/identify */
    int64_t product_id;
    int online;                        /* identified: pushes may go here */
    int closing;                       /* a refusal is flushing; no more input */
    int tls;
    int hashed;
    uint8_t anon : 1;                  /* in the anonymous list: not identified yet */
    uint8_t hello_late : 1;            /* its deadline found bytes fotad had not read yet:
                                          counted once more (fota_devchan_conn_expire) */
    uint8_t handshaken;                /* TLS: the handshake completed */
    uint8_t paused;                    /* FOTA_DCONN_PAUSE_*: why reading is paused */
    uint8_t delivering;                /* a queued-command read of it is in flight */
    uint8_t reporting;                 /* its report waits in a batch: pushes wait for its reply */
    uint8_t retiring;                  /* replaced by successor: handles the frames it holds,
                                          then closes (fota_devchan_conn_online) */
    uint8_t eof;                       /* its peer closed (or an error): handles the frames
                                          it holds, then closes */
    uint8_t push_seq;                  /* counts its pushes: a queued-command read that saw
                                          one happen meanwhile reads again (devchan_cmd.c) */
    uint32_t pres_gen, pres_slot;      /* its row in the presence batch, if gen is current */
    uint32_t pres_at;                  /* wall second of its last online row queued, 0 none */
    char key_hash[65];                 /* the master key this connection proved */
    uint8_t queued;                    /* output went through the bufferevent: check it before send() */
    uint16_t port;                     /* peer port; the address is addrc->addr (logs: peer_of) */
    int fd;                            /* the socket (plain connections write it directly) */
    uint32_t queued_cmd;               /* low bits of the command id the queued path pushed
                                          last: its creator's own delivery skips the push */
};

/* Why a connection's reading is paused (both may hold at once). */
#define FOTA_DCONN_PAUSE_RATE 0x1u     /* its device's message rate: resume_ev resumes */
#define FOTA_DCONN_PAUSE_OUT  0x2u     /* its replies pile up unread: their drain resumes */
#define FOTA_DCONN_PAUSE_STORE 0x4u    /* a frame's store job runs: its continuation resumes */
#define FOTA_DCONN_PAUSE_PREV  0x8u    /* the device's older connection still handles the frames
                                          it holds (sent before this one's): its end resumes */

/* A reply awaited by (device, nonce): the RPC API's waits (devchan_wait.c). */
struct fota_devchan_wait {
    struct fota_devchan *ch;
    struct fota_devchan_wait *prev, *next;
    struct event *timer;
    int64_t device_id, nonce, cmd_id;
    fota_devchan_done_cb cb;
    void *ud;
};

/* A device whose queued commands are due at due_ms (kick list, in time order). */
struct fota_kick {
    int64_t device_id;
    int64_t due_ms;                    /* fota_clock_mono_ms() */
};

/* Connections per peer address (the flood limit), and online devices by id. */
#define FOTA_DEVCHAN_BUCKETS 4096
/* Online devices by id: 16,384 chains (128 KB), about one connection per
 * chain at 19,000 devices, so a push's lookup is one or two hops. */
#define FOTA_DEVCHAN_DEV_BITS 14
#define FOTA_DEVCHAN_DEV_BUCKETS (1u << FOTA_DEVCHAN_DEV_BITS)
#define FOTA_DEVCHAN_RQ_BUCKETS 256
#define FOTA_DEVCHAN_RATE_BUCKETS 1024
/* Store lanes of the channel: a device's frames and pushes apply in order on
 * lane device_id % FOTA_DEVCHAN_LANES (connection id before identify). */
#define FOTA_DEVCHAN_LANES 4
/* Devices whose queued commands one store job checks (command_queued_devices). */
#define FOTA_DEVCHAN_KICK_BATCH 2048

struct fota_addr_count {
    struct fota_addr_count *next;
    unsigned n;
    char addr[48];
};

struct fota_devchan_rq;   /* devchan_requeue.c */

/* Why the channel refused or closed a connection (devchan_metrics.c):
 * fota_refused_total{listener="device",reason=...}. */
enum fota_devchan_refusal {
    FOTA_DC_REFUSED_PER_ADDR,          /* device_max_per_addr reached */
    FOTA_DC_REFUSED_DRAINING,          /* accepted while shutting down */
    FOTA_DC_REFUSED_RESERVE,           /* its descriptor in the reserve (accept_guard.h) */
    FOTA_DC_REFUSED_ANONYMOUS,         /* device_max_anonymous not identified yet */
    FOTA_DC_REFUSED_SHED,              /* anonymous, closed when accept() ran out of descriptors */
    FOTA_DC_REFUSED_HELLO_TIMEOUT,     /* no activate/identify in time */
    FOTA_DC_REFUSED_BAD_FRAME,         /* 400: not a JSON line */
    FOTA_DC_REFUSED_TOO_LONG,          /* 413: a line over the limit */
    FOTA_DC_REFUSED_NOT_IDENTIFIED,    /* 401: a frame before activate/identify */
    FOTA_DC_REFUSED_UNKNOWN_KEY,       /* 403: an unknown key, another key, a deleted device */
    FOTA_DC_REFUSED_CONFLICT,          /* 409: identified again as another device */
    FOTA_DC_REFUSED_OTHER,
    FOTA_DC_REFUSED_N
};

/* The WARN line of a reason a new connection is turned away at once (at most
 * one a second, with the count since). */
struct fota_devchan_refusals {
    uint64_t unlogged;                 /* since its last WARN */
    int64_t logged_ms;                 /* that WARN's time (fota_clock_mono_ms), 0: none */
};

/* The device module's settings (its rows in devchan.c). */
struct fota_devchan_conf {
    int port;                          /* device_port */
    int tls_port;                      /* device_tls_port (needs tls_cert/tls_key) */
    unsigned ping_timeout;             /* s: offline after this long without a ping */
    unsigned max_per_addr;             /* connections per peer address */
    unsigned msg_rate;                 /* messages per second per device (0: no limit) */
    unsigned msg_burst;                /* ... of which this many may come at once */
    unsigned max_anonymous;            /* connections not identified yet (at most half the
                                          descriptors left after the reserve) */
    unsigned cmd_route_ms;             /* several instances: how long an RPC waits for the
                                          one holding its device (rpc_route.c) */
};

struct fota_devchan {
    struct fota_server *srv;
    const struct fota_devchan_conf *conf;  /* live: SIGHUP updates the reloadable rows */
    struct evconnlistener *lst[2];     /* [0] plain, [1] TLS */
    struct fota_dconn *conns;
    size_t nconns;
    /* Connections not identified yet, oldest first: each must activate or
     * identify within hello_ms of its accept (TLS handshake included), an
     * absolute deadline that bytes do not move; one timer for all. */
    struct fota_dconn *anon_head, *anon_tail;
    size_t nanon;
    unsigned hello_ms;                 /* min(FOTA_DEVCHAN_HELLO_TIMEOUT, http_timeout), ms */
    struct event *hello_ev;
    struct fota_dconn *by_dev[FOTA_DEVCHAN_DEV_BUCKETS];
    struct fota_dconn *by_id[FOTA_DEVCHAN_DEV_BUCKETS];   /* every connection, by c->id */
    struct fota_store_lane *lane[FOTA_DEVCHAN_LANES];     /* NULL without an executor */
    struct fota_store_lane *pres_lane;                    /* the presence batches */
    /* Reading of c may go on: why no longer holds (set by devchan.c). */
    void (*resume)(struct fota_dconn *c, unsigned why);
    /* c gets no input worth waiting for any more (its peer closed, or a
     * newer connection of its device replaced it): the frames it holds are
     * handled, no longer held back by its rate or its unread replies, and
     * it closes once none is left (set by devchan.c). */
    void (*wind_down)(struct fota_dconn *c);
    struct fota_addr_count *by_addr[FOTA_DEVCHAN_BUCKETS];
    uint64_t next_id;
    struct fota_presence *pres;        /* presence rows waiting for the batch write */
    size_t npres, cappres;
    uint32_t pres_gen;                 /* bumped at each batch write */
    struct event *pres_ev;
    struct fota_devchan_wait *waits;
    void (*closed)(struct fota_dconn *c); /* a connection is being freed (set by devchan.c) */
    size_t nkicking;                   /* kick jobs in flight (command_queued_devices) */
    struct fota_devchan_rq *rq[FOTA_DEVCHAN_RQ_BUCKETS]; /* pushed upgrades awaiting D4 */
    struct fota_rpc *rpc;              /* the REST side of commands (rpc.c), NULL without HTTP */
    struct fota_kick *kick;            /* devices just online: queued commands to check */
    size_t nkick, capkick;
    struct event *kick_ev;             /* checks them FOTA_DEVCHAN_KICK_MS after the first */
    struct fota_devchan_rate_ent *rate[FOTA_DEVCHAN_RATE_BUCKETS]; /* devices gone while
                                                                       throttled */
    size_t nrate;
    struct fota_metric m_conns;        /* fota_device_connections (nconns) */
    struct fota_metric m_refused[FOTA_DC_REFUSED_N];
    struct fota_metric m_paused[2];    /* reading paused: [0] over the rate, [1] replies unread */
    struct fota_accept_guard *guard;   /* the listeners when descriptors run short */
    struct fota_devchan_refusals refused[FOTA_DC_REFUSED_N]; /* those refused at the accept */
    struct fota_devchan_refusals shed; /* anonymous connections closed to free descriptors */
    struct fota_devchan_refusals anon_full; /* the listeners paused at the anonymous bound */
    int anon_paused;                   /* paused until nanon falls to 3/4 of the bound */
    /* Reports written in batches (devchan_handle_message.c): those waiting
     * for the next batch, the timer that flushes them, whether a batch is
     * being written, and pushes to their connections held until the D7
     * reply went out. */
    struct fota_devchan_report **rb;
    size_t nrb, caprb;
    struct event *rb_ev;
    int rb_busy;
    struct fota_devchan_held *held;
    size_t nheld, capheld;
};

/* Reports in batches (devchan_handle_message.c): what is still waiting is
 * written (module stop) or freed. */
void fota_devchan_reports_flush(struct fota_devchan *ch);
void fota_devchan_reports_free(struct fota_devchan *ch);
/* A push to a connection whose report waits for its batch: held and sent
 * after the report's reply. */
void fota_devchan_hold(struct fota_dconn *c, const char *buf, int len);

/* devchan_metrics.c: registers the channel's metrics (module start). */
int fota_devchan_metrics_register(struct fota_devchan *ch);
/* Counts a refusal sent with status (the reason its status stands for). */
void fota_devchan_metrics_refused(struct fota_devchan *ch, int status);

/* devchan_job.c: store work of the channel. A job's run() calls the store
 * on a store thread (or inline, SQLite: store_exec.h) and touches only the
 * job; its done() runs afterwards on the main loop and frees the job. A job
 * for a connection's frame pauses the connection's reading
 * (FOTA_DCONN_PAUSE_STORE) until done() ran, so its later frames and
 * their replies keep their order; done() gets the connection found again by
 * its id (NULL when it closed meanwhile), never a pointer kept across. */
struct fota_devchan_job {
    struct fota_devchan *ch;
    struct fota_server *srv;
    uint64_t conn_id;                  /* the paused connection, 0: none */
    void (*run)(struct fota_store *s, struct fota_devchan_job *j);
    void (*done)(struct fota_devchan_job *j, struct fota_dconn *c);   /* NULL: none */
    void (*drop)(struct fota_devchan_job *j);  /* frees j without done (NULL: free) */
};
/* Runs j on lane key % FOTA_DEVCHAN_LANES (pause: c's reading waits for it;
 * c NULL: no connection). 0, or FOTA_EBUSY when the lane is full (j is the
 * caller's then; nothing paused). Without done, j is freed after run. */
int fota_devchan_job_submit(struct fota_devchan *ch, struct fota_dconn *c, int64_t key,
                            struct fota_devchan_job *j);
/* The same on a lane of the caller's choosing (NULL: no order). */
int fota_devchan_job_submit_on(struct fota_devchan *ch, struct fota_store_lane *lane,
                               struct fota_dconn *c, struct fota_devchan_job *j);
/* A job's allocation: size bytes (j first), zeroed, ch and srv set. */
void *fota_devchan_job_new(struct fota_devchan *ch, size_t size);
/* The channel's lanes (module start) when the server has an executor. */
void fota_devchan_job_lanes(struct fota_devchan *ch);

/* devchan_conn.c: the connection table. */
/* Adds a connection for fd (accepted; TLS when tls) to the channel. NULL if
 * the bufferevent cannot be made (fd closed). */
struct fota_dconn *fota_devchan_conn_new(struct fota_devchan *ch, int fd, const char *addr,
                                         uint16_t port, int tls);
/* Connections from addr (the per-address limit). */
unsigned fota_devchan_conn_count(struct fota_devchan *ch, const char *addr);
/* A new connection from addr:port was turned away (why): counted, and
 * logged at WARN at most once a second per reason with the count since. */
void fota_devchan_conn_refused(struct fota_devchan *ch, enum fota_devchan_refusal why,
                               const char *addr, uint16_t port, unsigned limit);
/* Closes up to n anonymous connections, newest first (the oldest are about
 * to identify or to meet their deadline, and a TLS handshake under way is
 * not thrown away for a newcomer). Returns how many. */
size_t fota_devchan_conn_shed(struct fota_devchan *ch, size_t n, const char *reason);
/* The bound on connections not identified yet: device_max_anonymous, and
 * at most half the descriptors left after the reserve. */
unsigned fota_devchan_anon_limit(struct fota_devchan *ch);
/* The listeners stop accepting: nanon reached limit. */
void fota_devchan_anon_pause(struct fota_devchan *ch, unsigned limit);
/* An anonymous connection identified or closed (the listeners resume when
 * they were paused at the bound and enough room is back). */
void fota_devchan_anon_left(struct fota_devchan *ch);
/* Frees c (ch->closed is told first); an online device goes offline. */
void fota_devchan_conn_free(struct fota_dconn *c);
/* Closes the anonymous connections whose hello deadline has passed
 * (bounded per call) and re-arms ch->hello_ev for the next one. */
void fota_devchan_conn_expire(struct fota_devchan *ch);
void fota_devchan_conn_send(struct fota_dconn *c, const char *buf, int len);
/* Writes line (if n > 0), logs at WARN and closes once it is flushed. */
void fota_devchan_conn_close_with(struct fota_dconn *c, const char *line, int n, int status,
                                  const char *log_reason);
/* Writes a refusal line, logs why and closes once it is flushed. */
void fota_devchan_conn_refuse(struct fota_dconn *c, int status, const char *why,
                              const char *log_reason);
/* The device's live, identified connection, or NULL. */
struct fota_dconn *fota_devchan_conn_find(struct fota_devchan *ch, int64_t device_id);
/* "ip:port" of c for logs, into buf. */
const char *fota_devchan_conn_peer(const struct fota_dconn *c, char *buf, size_t n);
/* 1 if c's peer sent bytes fotad has not read yet (its socket's buffer, a
 * TLS record decrypted but not taken). */
int fota_devchan_conn_unread(struct fota_dconn *c);
/* One reason to pause c's reading is gone (why: FOTA_DCONN_PAUSE_* bits
 * cleared): 1 when none is left and c reads on (reading enabled unless its
 * peer closed, when its buffered lines are what is left); the caller runs
 * its read callback, at once or from the loop's next turn. */
int fota_devchan_conn_unpause(struct fota_dconn *c, unsigned why);
/* 1 if c speaks for a device: online, or retiring. */
#define FOTA_DCONN_IDENTIFIED(c) ((c)->online || (c)->retiring)
/* The live connection with this id (any state), or NULL. */
struct fota_dconn *fota_devchan_conn_by_id(struct fota_devchan *ch, uint64_t id);
/* Resolves the frame's key to a device master key from the key cache alone:
 * 0, FOTA_EAUTH (no such key, or not a device's master key), or FOTA_EAGAIN
 * when the store must be asked (fota_devchan_key_check in a job). */
int fota_devchan_conn_auth(struct fota_dconn *c, const struct fota_devproto_frame *f,
                           struct fota_key *k);
/* The same from the store (through the key cache): 0 or FOTA_EAUTH. Any
 * thread (a job's run). */
int fota_devchan_key_check(struct fota_server *srv, const char *key, struct fota_key *k);
/* 1 if the frame carries no key or this connection's key. */
int fota_devchan_conn_same_key(const struct fota_dconn *c, const struct fota_devproto_frame *f);
/* 1 if c is already another device's than k's: refused (409, "connection
 * already identified with another key") and closing. A connection stays
 * the device's it first proved: switching would leave that device marked
 * online with no connection to reach it. */
int fota_devchan_conn_switch_refused(struct fota_dconn *c, const struct fota_key *k);
/* Marks c as device k's connection. An older one of the device is closed,
 * or, when it still holds frames (reading paused, lines in its buffer, bytes
 * in its socket), retires: it handles them first, c's reading paused
 * (FOTA_DCONN_PAUSE_PREV) until it is gone, so the device's frames keep
 * their order. A retiring c stays as it is. Returns 1 if c was not online
 * before (the caller delivers its queue). */
int fota_devchan_conn_online(struct fota_dconn *c, const struct fota_key *k, const char *version);
/* A check-in of an online connection (presence row, O(1)). */
void fota_devchan_conn_touch(struct fota_dconn *c);
/* Presence batch: writes the pending rows / frees them (module stop). */
void fota_devchan_presence_flush(struct fota_devchan *ch);
/* Every online connection's device queued online again (in the next batch),
 * whatever its last row: after another instance counted this one dead. */
void fota_devchan_presence_all(struct fota_devchan *ch);
void fota_devchan_presence_reset(struct fota_devchan *ch);

/* devchan_wait.c: replies awaited by (device, nonce). */
struct fota_devchan_wait *fota_devchan_wait_add(struct fota_devchan *ch, int64_t device_id,
                                                int64_t nonce, int64_t cmd_id, unsigned timeout_s,
                                                fota_devchan_done_cb cb, void *ud);
/* Calls and frees the wait for (device, nonce), if any: 1 if there was one.
 * result is borrowed for the call. */
int fota_devchan_wait_wake(struct fota_devchan *ch, int64_t device_id, int64_t nonce, int state,
                           const struct json_t *result);
/* Calls and frees every wait of the device (deleted) with state. */
void fota_devchan_wait_wake_device(struct fota_devchan *ch, int64_t device_id, int state);
/* Frees every wait (module stop) without callbacks. */
void fota_devchan_waits_free(struct fota_devchan *ch);

/* devchan_push.c: cmd encoded (from its decoded params, with the owner key
 * of the device's key_generation, read by the caller's job: -1 for none) and
 * written to c; its row updated (DELIVERED, or DONE for sys_reboot; FAILED,
 * with an error result, if not encodable). 0 or FOTA_E*. */
int fota_devchan_push(struct fota_dconn *c, struct fota_command *cmd, int key_generation);
/* 1 for commands the device never answers (sys_reboot). */
int fota_devchan_push_no_reply(const struct fota_command *cmd);
/* Writes cmd's state, result and update time: a job on the device's lane,
 * whose result is only logged (main loop). */
void fota_devchan_push_store(struct fota_devchan *ch, struct fota_command *cmd);
/* The same, inline: from a job's run (a store thread). */
void fota_devchan_push_store_now(struct fota_server *srv, struct fota_command *cmd);

/* devchan_requeue.c (docs/protocol.md, "Commands whose connection drops"). */
/* cmd was just written to c: remembers an unacknowledged sys_upgrade for
 * c's close. Other commands are ignored. */
void fota_devchan_requeue_note(struct fota_dconn *c, const struct fota_command *cmd);
/* c is closing: if the sys_upgrade noted on it is still DELIVERED (no D4),
 * the device has not started a download since, and it was not requeued
 * before, the command goes back to QUEUED (a store job) and a waiting RPC
 * is answered (202); then again(ch, device) when a newer connection of the
 * device should get it on its next delivery pass. */
void fota_devchan_requeue_on_close(struct fota_dconn *c,
                                   void (*again)(struct fota_devchan *ch, int64_t device_id));
void fota_devchan_requeue_free(struct fota_devchan *ch);

/* devchan_rate.c: the message rate per device. */
/* c just came online: the device's rate state goes on from the one kept
 * since its last connection, or (inherited) from the connection c replaced,
 * already copied into c. The identify is counted. */
void fota_devchan_rate_online(struct fota_dconn *c, int inherited);
/* c (online) is closing: its state is kept while not back to a full burst. */
void fota_devchan_rate_offline(struct fota_dconn *c);
/* A message of c: 0 when it may be handled now (counted), else the ms until
 * it may (a WARN at most once a second per device says so). */
int64_t fota_devchan_rate_take(struct fota_dconn *c);
/* Drops kept states back to a full burst (the presence timer, once a second). */
void fota_devchan_rate_sweep(struct fota_devchan *ch);
void fota_devchan_rate_free(struct fota_devchan *ch);

/* devchan_cmd.c: queued delivery. */
/* The device just came online: its queued commands are checked a moment
 * later, from one channel-wide list and timer (no per-connection timer, so
 * a reconnect storm leaves no per-device allocations behind). */
void fota_devchan_kick_later(struct fota_devchan *ch, int64_t device_id);
/* Frees the list (module stop). */
void fota_devchan_kick_free(struct fota_devchan *ch);

/* devchan_handle_*.c: one handler per message. */
void fota_devchan_handle_activate(struct fota_dconn *c, const struct fota_devproto_frame *f);
void fota_devchan_handle_identify(struct fota_dconn *c, const struct fota_devproto_frame *f);
void fota_devchan_handle_datapoint(struct fota_dconn *c, const struct fota_devproto_frame *f);
void fota_devchan_handle_message(struct fota_dconn *c, const struct fota_devproto_frame *f);
/* The reply, decoded (fota_devproto_reply_value), becomes the command's result. */
void fota_devchan_handle_reply(struct fota_dconn *c, const struct fota_devproto_frame *f);

#endif
