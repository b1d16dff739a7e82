/* rom_ledger.c - completed downloads waiting for the store's ledger, merged
 * per (device, file), one batch per loop: written once a second
 * (FOTA_ROM_LEDGER_FLUSH_MS) in one go, when the batch is full, or at once
 * when the API is about to read the counts (hub topic DOWNLOADS_SYNC), so
 * what the API shows is exact while the serving loops write the store about
 * once a second instead of once per download. A crash loses at most that
 * second of counts (statistics, not state). */
#include <event2/event.h>

#include "log.h"
#include "loop.h"
#include "rom_int.h"

/* Under rl->ledger_mu. */
static void ledger_write(struct fota_rom_loop *rl)
{
    struct fota_store *st = rl->ctx->srv->store;
    for (size_t i = 0; i < rl->nledger; i++) {
        struct fota_rom_ledger_row *w = &rl->ledger[i];
        int rc = st->ops->download_add(st, w->device_id, w->file_id, w->bytes, w->completions);
        if (rc < 0 && rc != FOTA_ENOSPC)   /* a full disk: the store says so once a second */
            FOTA_WARN("download not counted dev=%lld file=%lld downloads=%d error=%s",
                      (long long)w->device_id, (long long)w->file_id, w->completions,
                      fota_errname(rc));
    }
    rl->nledger = 0;
}

static void ledger_flush(evutil_socket_t fd, short what, void *arg)
{
    struct fota_rom_loop *rl = arg;
    (void)fd;
    (void)what;
    pthread_mutex_lock(&rl->ledger_mu);
    ledger_write(rl);
    pthread_mutex_unlock(&rl->ledger_mu);
}

int fota_rom_ledger_init(struct fota_rom_loop *rl)
{
    pthread_mutex_init(&rl->ledger_mu, NULL);
    rl->ledger_ev = event_new(fota_loop_base(rl->loop), -1, 0, ledger_flush, rl);
    return rl->ledger_ev ? 0 : FOTA_ENOMEM;
}

void fota_rom_ledger_add(struct fota_rom_loop *rl, int64_t device_id, int64_t file_id,
                         int64_t bytes)
{
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
        ledger_write(rl);
    rl->ledger[rl->nledger++] = (struct fota_rom_ledger_row){ device_id, file_id, bytes, 1 };
    int arm = rl->nledger == 1 && !evtimer_pending(rl->ledger_ev, NULL);
    pthread_mutex_unlock(&rl->ledger_mu);
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
    ledger_write(rl);
    event_free(rl->ledger_ev);
    rl->ledger_ev = NULL;
    pthread_mutex_destroy(&rl->ledger_mu);
}
