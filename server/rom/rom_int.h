/* rom_int.h - what the rom module's files share: the module's state (one
 * part per loop, the progress table) and the functions between them.
 * Private to server/rom. */
#ifndef FOTA_ROM_INT_H
#define FOTA_ROM_INT_H

#include <pthread.h>
#include <stdint.h>

#include "rom.h"
#include "server.h"

struct fota_http_quick_req;
#include "store.h"

struct bufferevent;
struct event;
struct fota_loop;
struct fota_req;
struct fota_store_lane;

/* ---- progress table (rom_progress.c): one record per device that
 * downloaded since start, behind one mutex (written by every loop, read by
 * the API on the main loop). */
#define FOTA_ROM_PROGRESS_BUCKETS 1024
struct fota_rom_dl;                       /* one device's record */
struct fota_rom_progress_tab {
    pthread_mutex_t lock;
    struct fota_rom_dl *buckets[FOTA_ROM_PROGRESS_BUCKETS];
    uint64_t seq;
};
void fota_rom_progress_init(struct fota_rom_progress_tab *t);
void fota_rom_progress_cleanup(struct fota_rom_progress_tab *t);
/* Starts a record for device_id (> 0), replacing the device's previous one;
 * *seq names this download (a later call for an older one is ignored). */
struct fota_rom_dl *fota_rom_progress_begin(struct fota_rom_progress_tab *t, int64_t device_id,
                                            const char *file, const char *version,
                                            int64_t offset, int64_t total, int64_t size,
                                            uint64_t *seq);
/* n more body bytes sent (COMPLETE at total). NULL dl: no-op. */
void fota_rom_progress_sent(struct fota_rom_progress_tab *t, struct fota_rom_dl *dl,
                            uint64_t seq, int64_t n);
/* The body is gone (sent or dropped): ABORTED unless COMPLETE. NULL dl: no-op. */
void fota_rom_progress_end(struct fota_rom_progress_tab *t, struct fota_rom_dl *dl,
                           uint64_t seq);

/* ---- per-loop caches (rom_download.c) */
#define FOTA_ROM_CACHE_SLOTS 64
/* Keys: a wave's devices each download with a key of their own, a HEAD and
 * then a GET, and a window's worth of them (256 by default) are between
 * the two at once: with fewer slots than that their entries push each
 * other out before the GET. 1024 slots of 88 bytes per loop. */
#define FOTA_ROM_AUTH_SLOTS 1024
struct fota_rom_auth_entry {
    uint64_t gen;
    char key[FOTA_KEY_BUF];
    int64_t product_id, device_id;
};
struct fota_rom_file_entry {
    uint64_t gen;
    int64_t product_id;                 /* the caller's product (0: admin, any) */
    char version[FOTA_VERSION_MAX];     /* as asked */
    char name[FOTA_NAME_MAX];
    char rom_version[FOTA_VERSION_MAX];
    int64_t rom_product_id;
    struct fota_rom_file file;
};
#define FOTA_ROM_BLOB_SLOTS 16
struct fota_rom_blob {
    uint64_t gen;
    char sha256[FOTA_HASH_HEX];
    int fd;             /* 0: empty (fd 0 is never a blob) */
    int64_t size;
    unsigned refs;      /* bodies in flight reading fd */
};

/* ---- ledger (rom_ledger.c): completed downloads merged per (device,
 * file), written once a second, when full, or on DOWNLOADS_SYNC. */
#define FOTA_ROM_LEDGER_MAX 256
#define FOTA_ROM_LEDGER_FLUSH_MS 1000
struct fota_rom_ledger_row {
    int64_t device_id, file_id, bytes;
    int completions;
};

/* A download being written, found again by its request on completion: a
 * ring, so an aborted download's slot is simply reused later. */
#define FOTA_ROM_PENDING 256
struct fota_rom_pending {
    const void *req;
    int64_t device_id, file_id, bytes;
};

struct fota_rom_body;                     /* rom_body.c */
struct fota_rom_ctx;

/* One loop's part of the module. Touched only on that loop's thread (and at
 * start and stop, when the workers are not running), except the ledger rows,
 * which the DOWNLOADS_SYNC subscriber and the lane's jobs take from any
 * thread: ledger_mu (the rows), ledger_write_mu (a batch being written). */
struct fota_rom_loop {
    struct fota_rom_ctx *ctx;
    struct fota_loop *loop;
    struct fota_rom_pending pending[FOTA_ROM_PENDING];
    unsigned pending_next;
    struct fota_rom_auth_entry auth[FOTA_ROM_AUTH_SLOTS];
    struct fota_rom_file_entry files[FOTA_ROM_CACHE_SLOTS];
    struct fota_rom_blob blobs[FOTA_ROM_BLOB_SLOTS];
    uint64_t blob_swept;                  /* the generation of the last sweep */
    struct fota_rom_body *bodies;         /* bodies in flight on this loop */
    /* This loop's part of the download metrics (rom_metrics.c), written by
     * this loop only (fota_metric_add_local), summed at scrape time. */
    struct fota_metric m_flight, m_bytes, m_complete, m_aborted;
    struct event *ledger_ev;              /* the flush timer, on the loop's base */
    struct fota_store_lane *ledger_lane;  /* the batches' store jobs, in order */
    pthread_mutex_t ledger_mu;
    pthread_mutex_t ledger_write_mu;      /* held while a batch is written (rom_ledger.c) */
    size_t nledger;
    struct fota_rom_ledger_row ledger[FOTA_ROM_LEDGER_MAX];
};

/* The module's state. */
struct fota_rom_ctx {
    struct fota_server *srv;
    struct fota_rom_loop *loops[FOTA_LOOPS_MAX];
    int nloops;
    struct fota_rom_progress_tab progress;
};

/* rom_download.c */
/* The route handler of GET/HEAD /v1/device/rom/ with action=download_rom
 * (r->ud is the ctx). Always replies exactly once. Keys: master or owner key
 * of a device of the release's product, product key of that product, or
 * admin. */
void fota_rom_download(struct fota_req *r);
/* The quick answer (http.h, fota_http_quick_head) to a stock device's
 * HEAD of action=download_rom whose key, release and file the loop's
 * caches hold for the store's generation: the header rom_serve sends. 0
 * (nothing changed but the loop's key entry, as a download fills it) for
 * anything else: the route answers it. */
size_t fota_rom_quick_head(void *ud, struct fota_http_quick_req *q, char *reply, size_t cap);
/* Module stop: closes every cached descriptor. */
void fota_rom_blobs_close(struct fota_rom_loop *rl);

/* rom_metrics.c: registers the download metrics (module start). */
int fota_rom_metrics_register(struct fota_rom_ctx *ctx);

/* rom_list.c: GET /v1/device/rom/ without action=download_rom. */
void fota_rom_list(struct fota_req *r);

/* rom_ledger.c */
int fota_rom_ledger_init(struct fota_rom_loop *rl);
void fota_rom_ledger_add(struct fota_rom_loop *rl, int64_t device_id, int64_t file_id,
                         int64_t bytes);
/* Writes every loop's batched rows now. Any thread. */
void fota_rom_ledger_sync(struct fota_rom_ctx *ctx);
/* Module stop: writes the rows and frees the timer. */
void fota_rom_ledger_cleanup(struct fota_rom_loop *rl);

/* rom_body.c */
/* Called once the body no longer needs a borrowed descriptor. */
typedef void (*fota_rom_body_done)(void *arg);
/* Adds bytes [from, from+len) of fd to bev's output (sendfile, as
 * evbuffer_add_file) and counts body bytes as they leave the buffer (the
 * loop's download metrics and, for a device (device_id > 0), its progress
 * record): "complete" once all were written to the socket, "aborted" if the
 * connection goes first.
 * Call on rl's loop, which owns bev, after the header is queued.
 * done == NULL: returns 0 when fd is consumed (the output owns it and
 * closes it once sent or dropped). done != NULL: fd is only borrowed (a
 * cached descriptor): it is never closed here, and done(done_arg) runs once
 * the output is finished with it. -1: nothing was added, fd is the caller's
 * and done is not called. */
int fota_rom_body_add(struct fota_rom_loop *rl, struct bufferevent *bev, int fd, int64_t from,
                      int64_t len, int64_t size, int64_t device_id, const char *file,
                      const char *version, fota_rom_body_done done, void *done_arg);
/* Module stop (workers joined, connections still open): every body in
 * flight forgets the module (its progress, its borrowed descriptor) and
 * frees itself when its connection goes. */
void fota_rom_body_detach_all(struct fota_rom_loop *rl);

#endif
