/* rom_ledger.c - completed downloads waiting for the store's ledger, merged
 * per (device, file), one batch per loop: written once a second
 * (FOTA_ROM_LEDGER_FLUSH_MS) in one go, when the batch is full, or at once
 * when the API is about to read the counts (hub topic DOWNLOADS_SYNC), so
 * what the API shows is exact while the serving loops write the store about
 * once a second instead of once per download. A batch leaves the loop as a
 * copy, written by a store job (download_add_batch) on the loop's ordered
 * lane: the loop never waits for the store. A crash loses at most that
 * second of counts (statistics, not state). */
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

/* Writes a taken batch: from a loop on the loop's lane (its batches in
 * order); here on a thread that is no loop (a store job syncing before it
 * reads the counts) or when no executor runs. Without the lock. */
static void ledger_write(struct fota_rom_loop *rl, struct ledger_job *j)
{
    struct fota_server *srv = rl->ctx->srv;
    size_t n;
    int rc;

    if (!j)
        return;
    if (!srv->exec || !fota_loop_current()) {
        ledger_job_run(srv->store, j);
        return;
    }
    n = j->n;
    rc = fota_store_submit(srv->exec, rl->ledger_lane, NULL, ledger_job_run, NULL, j);
    if (rc < 0) {   /* the lane is full: the store is gone for a while */
        FOTA_WARN("downloads not counted rows=%zu error=%s", n, fota_errname(rc));
        free(j);
    }
}

static void ledger_flush(evutil_socket_t fd, short what, void *arg)
{
    struct fota_rom_loop *rl = arg;
    (void)fd;
    (void)what;
    pthread_mutex_lock(&rl->ledger_mu);
    struct ledger_job *j = ledger_take(rl);
    pthread_mutex_unlock(&rl->ledger_mu);
    ledger_write(rl, j);
}

int fota_rom_ledger_init(struct fota_rom_loop *rl)
{
    char name[32];
    pthread_mutex_init(&rl->ledger_mu, NULL);
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
    ledger_write(rl, full);
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
    ledger_write(rl, ledger_take(rl));   /* the executor drains it before the store closes */
    event_free(rl->ledger_ev);
    rl->ledger_ev = NULL;
    pthread_mutex_destroy(&rl->ledger_mu);
}
