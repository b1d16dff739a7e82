/* rom_ledger.c - completed downloads waiting for the store's ledger, merged
 * per (device, file), one batch per loop: written once a second
 * (FOTA_ROM_LEDGER_FLUSH_MS) in one go, when the batch is full, or at once
 * when the API is about to read the counts (hub topic DOWNLOADS_SYNC), so
 * what the API shows is exact while the serving loops write the store about
 * once a second instead of once per download. The loop never waits for the
 * store: its flush is a store job (download_add_batch) on the loop's
 * ordered lane, which takes the rows when it runs. A sync off the loops (an
 * API job about to read) writes what is left itself, after any batch a job
 * is writing at that moment (ledger_write_mu), so the read that follows sees
 * every download completed before it. A crash loses at most that second of
 * counts (statistics, not state). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "log.h"
#include "loop.h"
#include "rom_int.h"
#include "store_exec.h"
#include "xmalloc.h"

/* A batch on its way to the store: the job's own copy of the rows. */
struct ledger_job {
    struct fota_rom_loop *rl;   /* a full batch's loop (ledger_write_full) */
    size_t n;
    struct fota_download_row rows[];
};

static void ledger_job_run(struct fota_store *st, void *arg)
{
    struct ledger_job *j = arg;
    int rc = st->ops->download_add_batch(st, j->rows, j->n);
    if (rc < 0 && rc != FOTA_ENOSPC)   /* a full disk: the store says so once a second */
        FOTA_WARN("downloads not counted rows=%zu error=%s", j->n, fota_errname(rc));
    free(j);
}

/* Under rl->ledger_mu: the rows leave as a copy (the batch is empty after). */
static struct ledger_job *ledger_take(struct fota_rom_loop *rl)
{
    struct ledger_job *j;
    if (rl->nledger == 0)
        return NULL;
    j = fota_xmalloc(sizeof(*j) + rl->nledger * sizeof(j->rows[0]));
    j->n = rl->nledger;
    for (size_t i = 0; i < rl->nledger; i++) {
        const struct fota_rom_ledger_row *w = &rl->ledger[i];
        j->rows[i] = (struct fota_download_row){ w->device_id, w->file_id, w->bytes,
                                                 w->completions };
    }
    rl->nledger = 0;
    return j;
}

/* Takes and writes what the batch holds, under ledger_write_mu: a sync
 * that comes later waits for a write in progress. */
static void ledger_write_now(struct fota_rom_loop *rl, struct fota_store *st)
{
    pthread_mutex_lock(&rl->ledger_write_mu);
    pthread_mutex_lock(&rl->ledger_mu);
    struct ledger_job *j = ledger_take(rl);
    pthread_mutex_unlock(&rl->ledger_mu);
    if (j)
        ledger_job_run(st, j);
    pthread_mutex_unlock(&rl->ledger_write_mu);
}

static void ledger_lane_run(struct fota_store *st, void *arg)
{
    ledger_write_now(arg, st);
}

/* A batch taken out because it was full: written on the loop's lane (or at
 * once off the loops), under ledger_write_mu too. */
static void ledger_full_run(struct fota_store *st, void *arg)
{
    struct ledger_job *j = arg;
    struct fota_rom_loop *rl = j->rl;
    pthread_mutex_lock(&rl->ledger_write_mu);
    ledger_job_run(st, j);
    pthread_mutex_unlock(&rl->ledger_write_mu);
}

static void ledger_write_full(struct fota_rom_loop *rl, struct ledger_job *j)
{
    struct fota_server *srv = rl->ctx->srv;
    size_t n;

    if (!j)
        return;
    j->rl = rl;
    if (!srv->exec || !fota_loop_current()) {
        ledger_full_run(srv->store, j);
        return;
    }
    n = j->n;
    if (fota_store_submit(srv->exec, rl->ledger_lane, NULL, ledger_full_run, NULL, j) < 0) {
        FOTA_WARN("downloads not counted rows=%zu error=%s", n, fota_errname(FOTA_EBUSY));
        free(j);
    }
}

/* The batch goes to the store: from a loop as a job on the loop's lane
 * (which takes the rows when it runs), from elsewhere (a store job syncing
 * before it reads the counts) or without an executor at once. */
static void ledger_flush(evutil_socket_t fd, short what, void *arg)
{
    struct fota_rom_loop *rl = arg;
    struct fota_server *srv = rl->ctx->srv;
    (void)fd;
    (void)what;
    if (!srv->exec || !fota_loop_current()) {
        ledger_write_now(rl, srv->store);
        return;
    }
    if (fota_store_submit(srv->exec, rl->ledger_lane, NULL, ledger_lane_run, NULL, rl) < 0) {
        pthread_mutex_lock(&rl->ledger_mu);   /* the lane is full: the store is gone a while */
        struct ledger_job *j = ledger_take(rl);
        pthread_mutex_unlock(&rl->ledger_mu);
        if (j)
            FOTA_WARN("downloads not counted rows=%zu error=%s", j->n, fota_errname(FOTA_EBUSY));
        free(j);
    }
}

int fota_rom_ledger_init(struct fota_rom_loop *rl)
{
    char name[32];
    pthread_mutex_init(&rl->ledger_mu, NULL);
    pthread_mutex_init(&rl->ledger_write_mu, NULL);
    if (rl->ctx->srv->exec) {
        snprintf(name, sizeof name, "ledger[%d]", fota_loop_index(rl->loop));
        rl->ledger_lane = fota_store_lane_new(rl->ctx->srv->exec, name);
    }
    rl->ledger_ev = event_new(fota_loop_base(rl->loop), -1, 0, ledger_flush, rl);
    return rl->ledger_ev ? 0 : FOTA_ENOMEM;
}

void fota_rom_ledger_add(struct fota_rom_loop *rl, int64_t device_id, int64_t file_id,
                         int64_t bytes)
{
    struct ledger_job *full = NULL;
    pthread_mutex_lock(&rl->ledger_mu);
    for (size_t i = 0; i < rl->nledger; i++) {
        struct fota_rom_ledger_row *w = &rl->ledger[i];
        if (w->device_id == device_id && w->file_id == file_id) {
            w->bytes += bytes;
            w->completions++;
            pthread_mutex_unlock(&rl->ledger_mu);
            return;
        }
    }
    if (rl->nledger == FOTA_ROM_LEDGER_MAX)
        full = ledger_take(rl);
    rl->ledger[rl->nledger++] = (struct fota_rom_ledger_row){ device_id, file_id, bytes, 1 };
    int arm = rl->nledger == 1 && !evtimer_pending(rl->ledger_ev, NULL);
    pthread_mutex_unlock(&rl->ledger_mu);
    ledger_write_full(rl, full);
    if (arm) {
        static const struct timeval later = { FOTA_ROM_LEDGER_FLUSH_MS / 1000,
                                              (FOTA_ROM_LEDGER_FLUSH_MS % 1000) * 1000 };
        event_add(rl->ledger_ev, &later);
    }
}

void fota_rom_ledger_sync(struct fota_rom_ctx *ctx)
{
    for (int i = 0; i < ctx->nloops; i++)
        ledger_flush(-1, 0, ctx->loops[i]);
}

void fota_rom_ledger_cleanup(struct fota_rom_loop *rl)
{
    if (!rl->ledger_ev)
        return;
    ledger_write_now(rl, rl->ctx->srv->store);   /* after the loops: at once */
    event_free(rl->ledger_ev);
    rl->ledger_ev = NULL;
    pthread_mutex_destroy(&rl->ledger_write_mu);
    pthread_mutex_destroy(&rl->ledger_mu);
}
