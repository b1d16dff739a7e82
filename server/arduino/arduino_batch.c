/* arduino_batch.c - what check-ins write, batched for all loops (arduino_int.h):
 * completed downloads (each one's ledger row and, for a device, the upgrade
 * now in flight: arduino_device_served) and reports (a device's x-ESP8266-*
 * facts and check-in time: arduino_device_report), each batch written in one
 * transaction instead of one or two per request. One batch for all loops
 * keeps a device's rows in the order its check-ins came, whichever loops
 * took them. A check-in reads a device's tracking through the downloads'
 * batch and writes its waiting report first, so it sees its last download
 * and check-in. The writes are store calls: asked for on a loop (its
 * timer, a full batch, the hub's DOWNLOADS_SYNC) they run as store jobs on
 * the module's lane, in order. A crash loses the rows not written yet (at most
 * FOTA_ARDUINO_SERVED_MS of downloads, a second of reports): download
 * counts, check-in times, and a tracking that makes the device download
 * again. */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "arduino_int.h"
#include "clock.h"
#include "fota_str.h"
#include "log.h"
#include "loop.h"
#include "store_exec.h"
#include "xmalloc.h"

static unsigned hash_of(int64_t key, unsigned size)
{
    return (unsigned)(((uint64_t)key * 0x9E3779B97F4A7C15ull) >> 40) % size;
}

/* ---- completed downloads */

/* A row's key: its device, or for an anonymous download its file (negated). */
static int64_t served_key(const struct fota_arduino_download *r)
{
    return r->device_id > 0 ? r->device_id : -r->file_id;
}

/* The index slot of key in rs: its row's, or the empty one it would take.
 * The table never fills (twice the rows). */
static uint16_t *served_slot(struct fota_arduino_served_rows *rs, int64_t key)
{
    unsigned h = hash_of(key, FOTA_ARDUINO_SERVED_HASH);
    while (rs->index[h] && served_key(&rs->rows[rs->index[h] - 1]) != key)
        h = (h + 1) % FOTA_ARDUINO_SERVED_HASH;
    return &rs->index[h];
}

/* Writes the rows added so far: under write_mu, fill becomes out (under
 * mu), out is written without mu and then emptied (under mu). force 0:
 * only when the oldest row is FOTA_ARDUINO_SERVED_MS old; device_id > 0:
 * only when a row of that device waits. */
static void served_write(struct fota_arduino_ctx *ctx, int force, int64_t device_id)
{
    struct fota_arduino_served_batch *b = &ctx->served;
    struct fota_store *st = ctx->srv->store;
    struct fota_arduino_served_rows *rs;
    int rc, go;

    pthread_mutex_lock(&b->write_mu);
    pthread_mutex_lock(&b->mu);
    rs = b->fill;
    go = rs->n > 0 && (device_id > 0 ? *served_slot(rs, device_id) != 0
                                     : force || fota_clock_mono_ms() - b->since_ms >=
                                                    FOTA_ARDUINO_SERVED_MS);
    if (go) {
        b->fill = b->out;
        b->out = rs;
        /* nout before n: who sees n emptied sees the rows being written */
        __atomic_store_n(&b->nout, rs->n, __ATOMIC_RELAXED);
        __atomic_store_n(&b->n, 0, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&b->mu);
    if (go) {
        rc = st->ops->arduino_device_served(st, rs->rows, rs->n);
        if (rc < 0 && rc != FOTA_ENOSPC) /* a full disk: the store says so once a second */
            FOTA_WARN("arduino downloads not stored rows=%zu error=%s", rs->n, fota_errname(rc));
        pthread_mutex_lock(&b->mu);
        memset(rs->index, 0, sizeof rs->index);
        rs->n = 0;
        /* after the store moved the devices' generations */
        __atomic_store_n(&b->nout, 0, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&b->mu);
    }
    pthread_mutex_unlock(&b->write_mu);
}

/* Adds row to the batch, writing what waits first when it must (another
 * file of the device, or full) if may_write. 1 when added (or counted as
 * lost), 0 when a write was needed and not allowed. */
static int served_add(struct fota_arduino_ctx *ctx, const struct fota_arduino_download *row,
                      int may_write)
{
    struct fota_arduino_served_batch *b = &ctx->served;
    int64_t key = served_key(row);
    uint16_t *slot;

    for (int tries = 0;; tries++) {
        struct fota_arduino_served_rows *rs;
        pthread_mutex_lock(&b->mu);
        rs = b->fill;
        slot = served_slot(rs, key);
        if (*slot && rs->rows[*slot - 1].file_id == row->file_id) {
            struct fota_arduino_download *w = &rs->rows[*slot - 1];
            int64_t bytes = w->bytes + row->bytes;
            int completed = w->completed + row->completed;
            *w = *row; /* the latest tracking holds */
            w->bytes = bytes;
            w->completed = completed;
            break;
        }
        /* another file of the device (the ledger keeps them apart), or full:
         * what waits is written first (twice at most: other loops may fill
         * it again meanwhile) */
        if (!*slot && rs->n < FOTA_ARDUINO_SERVED_MAX) {
            if (rs->n == 0)
                b->since_ms = fota_clock_mono_ms();
            rs->rows[rs->n] = *row;
            *slot = (uint16_t)(rs->n + 1);
            rs->n++;
            __atomic_store_n(&b->n, rs->n, __ATOMIC_RELEASE);
            break;
        }
        pthread_mutex_unlock(&b->mu);
        if (!may_write)
            return 0;
        if (tries == 2) {
            FOTA_WARN("arduino download not counted dev=%lld file=%lld", (long long)row->device_id,
                      (long long)row->file_id);
            return 1;
        }
        served_write(ctx, 1, 0);
    }
    pthread_mutex_unlock(&b->mu);
    return 1;
}

/* A row that must wait for a write, on its way to a store job. */
struct served_add_job {
    struct fota_arduino_ctx *ctx;
    struct fota_arduino_download row;
};

static void served_add_run(struct fota_store *st, void *arg)
{
    struct served_add_job *j = arg;
    (void)st;
    served_add(j->ctx, &j->row, 1);
    free(j);
}

static int batch_on_loop(const struct fota_arduino_ctx *ctx);

void fota_arduino_served_add(struct fota_arduino_ctx *ctx, const struct fota_arduino_download *row)
{
    struct served_add_job *j;
    int rc;

    if (!batch_on_loop(ctx)) {
        served_add(ctx, row, 1);
        return;
    }
    /* on a loop: added at once (the device's next check-in sees it) unless
     * the batch must be written first, which a store job does */
    if (served_add(ctx, row, 0))
        return;
    j = fota_xmalloc(sizeof(*j));
    j->ctx = ctx;
    j->row = *row;
    rc = fota_store_submit(ctx->srv->exec, ctx->lane, NULL, served_add_run, NULL, j);
    if (rc != 0) {
        FOTA_WARN("arduino download not counted dev=%lld file=%lld error=%s",
                  (long long)row->device_id, (long long)row->file_id, fota_errname(rc));
        free(j);
    }
}

void fota_arduino_served_lock(struct fota_arduino_ctx *ctx)
{
    pthread_mutex_lock(&ctx->served.mu);
}

void fota_arduino_served_unlock(struct fota_arduino_ctx *ctx)
{
    pthread_mutex_unlock(&ctx->served.mu);
}

void fota_arduino_served_overlay(struct fota_arduino_ctx *ctx, struct fota_arduino_device *a)
{
    struct fota_arduino_served_batch *b = &ctx->served;
    /* the rows added last first, then those being written */
    struct fota_arduino_served_rows *sets[2] = { b->fill, b->out };

    if (a->device_id <= 0)
        return;
    for (int i = 0; i < 2; i++) {
        uint16_t *slot;
        const struct fota_arduino_download *w;
        if (sets[i]->n == 0 || !*(slot = served_slot(sets[i], a->device_id)))
            continue;
        w = &sets[i]->rows[*slot - 1];
        fota_str_copy(a->target, sizeof a->target, w->target);
        a->target_rom_id = w->target_rom_id;
        a->served_at = w->served_at;
        fota_str_copy(a->served_md5, sizeof a->served_md5, w->served_md5);
        return;
    }
}

void fota_arduino_served_overlay_locked(struct fota_arduino_ctx *ctx, struct fota_arduino_device *a)
{
    /* nothing waits (a download joining now comes after this check-in) */
    if (__atomic_load_n(&ctx->served.n, __ATOMIC_ACQUIRE) == 0 &&
        __atomic_load_n(&ctx->served.nout, __ATOMIC_ACQUIRE) == 0)
        return;
    pthread_mutex_lock(&ctx->served.mu);
    fota_arduino_served_overlay(ctx, a);
    pthread_mutex_unlock(&ctx->served.mu);
}

void fota_arduino_served_flush(struct fota_arduino_ctx *ctx)
{
    if (ctx && __atomic_load_n(&ctx->served.n, __ATOMIC_RELAXED) > 0)
        served_write(ctx, 1, 0);
}

void fota_arduino_served_sync(struct fota_arduino_ctx *ctx, int64_t device_id)
{
    /* write_mu first: a write of the device's row in progress ends before */
    if (ctx && device_id > 0)
        served_write(ctx, 1, device_id);
}

/* ---- reports */

/* The index slot of device_id: its row's, or the empty one it would take.
 * Under b->mu; the table never fills (twice the rows). */
static uint16_t *slot_of(struct fota_arduino_report_batch *b, int64_t device_id)
{
    unsigned h = hash_of(device_id, FOTA_ARDUINO_BATCH_HASH);
    while (b->index[h] && b->rows[b->index[h] - 1].device_id != device_id)
        h = (h + 1) % FOTA_ARDUINO_BATCH_HASH;
    return &b->index[h];
}

/* Under b->mu. */
static void report_write(struct fota_arduino_ctx *ctx)
{
    struct fota_arduino_report_batch *b = &ctx->reports;
    struct fota_store *st = ctx->srv->store;
    size_t n = __atomic_load_n(&b->n, __ATOMIC_RELAXED);

    if (n == 0)
        return;
    if (st->ops->arduino_device_report(st, b->rows, n) != 0)
        FOTA_WARN("arduino check-ins not stored rows=%zu", n);
    memset(b->index, 0, sizeof b->index);
    __atomic_store_n(&b->n, 0, __ATOMIC_RELAXED);
}

/* 1 when a report row says nothing the stored one does not: the same
 * x-ESP8266-* facts, and a check-in time less than quiet_s later (at least
 * the same second). */
static int report_same(const struct fota_arduino_device *a, const struct fota_arduino_device *b,
                       int64_t quiet_s)
{
    int64_t later = a->last_checkin - b->last_checkin;
    return (later == 0 || (later > 0 && later < quiet_s)) && a->chip_id == b->chip_id &&
           a->free_space == b->free_space && a->sketch_size == b->sketch_size &&
           a->chip_size == b->chip_size && strcmp(a->sta_mac, b->sta_mac) == 0 &&
           strcmp(a->ap_mac, b->ap_mac) == 0 && strcmp(a->sketch_md5, b->sketch_md5) == 0 &&
           strcmp(a->sdk_version, b->sdk_version) == 0 && strcmp(a->version, b->version) == 0 &&
           strcmp(a->mode, b->mode) == 0;
}

static void report_flush(struct fota_arduino_ctx *ctx)
{
    if (__atomic_load_n(&ctx->reports.n, __ATOMIC_RELAXED) == 0)
        return;
    pthread_mutex_lock(&ctx->reports.mu);
    report_write(ctx);
    pthread_mutex_unlock(&ctx->reports.mu);
}

/* ---- writes asked for on a loop: store jobs on the module's lane */

static void report_flush_job(struct fota_store *st, void *arg)
{
    (void)st;
    report_flush(arg);
}

static void served_flush_job(struct fota_store *st, void *arg)
{
    (void)st;
    fota_arduino_served_flush(arg);
}

/* Both batches, the downloads' when due. */
static void batch_due_job(struct fota_store *st, void *arg)
{
    struct fota_arduino_ctx *ctx = arg;
    (void)st;
    if (__atomic_load_n(&ctx->served.n, __ATOMIC_RELAXED) > 0)
        served_write(ctx, 0, 0);
    report_flush(ctx);
}

/* Runs job(ctx): on a loop as a store job on ctx->lane (the loop never
 * waits for the store; jobs run in order), elsewhere or without an
 * executor at once. A full lane drops it: the next timer tick asks again. */
static void batch_run(struct fota_arduino_ctx *ctx, fota_store_job_fn job)
{
    struct fota_server *srv = ctx->srv;

    if (!srv->exec || !ctx->lane || !fota_loop_current())
        job(srv->store, ctx);
    else
        (void)fota_store_submit(srv->exec, ctx->lane, NULL, job, NULL, ctx);
}

/* 1 when the caller must not write the store itself (a loop with an executor). */
static int batch_on_loop(const struct fota_arduino_ctx *ctx)
{
    return ctx->srv->exec && ctx->lane && fota_loop_current();
}

int fota_arduino_report_add(struct fota_arduino_ctx *ctx, const struct fota_arduino_device *row,
                            const struct fota_arduino_device *stored, int64_t quiet_s)
{
    struct fota_arduino_report_batch *b = &ctx->reports;
    int on_loop = batch_on_loop(ctx), queued = 0, kick = 0;
    uint16_t *slot;
    size_t n;

    for (int tries = 0; tries < 2 && !queued; tries++) {
        pthread_mutex_lock(&b->mu);
        slot = slot_of(b, row->device_id);
        /* Its row is stored already (and none waits in the batch to overwrite it). */
        if (!*slot && stored && report_same(row, stored, quiet_s)) {
            pthread_mutex_unlock(&b->mu);
            return 0;
        }
        n = __atomic_load_n(&b->n, __ATOMIC_RELAXED);
        if (*slot) {
            b->rows[*slot - 1] = *row;
            queued = 1;
        } else if (n < FOTA_ARDUINO_BATCH_MAX) {
            b->rows[n] = *row;
            *slot = (uint16_t)(n + 1);
            __atomic_store_n(&b->n, n + 1, __ATOMIC_RELAXED);
            queued = 1;
            /* half full on a loop: its write starts before it fills */
            kick = on_loop && n + 1 == FOTA_ARDUINO_BATCH_MAX / 2;
        } else if (!on_loop) {
            report_write(ctx);
            slot = slot_of(b, row->device_id);
            b->rows[0] = *row;
            *slot = 1;
            __atomic_store_n(&b->n, 1, __ATOMIC_RELAXED);
            queued = 1;
        } else {
            kick = 1; /* full: a job writes it (inline for SQLite: then there is room) */
        }
        pthread_mutex_unlock(&b->mu);
        if (kick && tries == 0)
            batch_run(ctx, report_flush_job);
        kick = 0;
    }
    return queued;
}

int fota_arduino_report_sync_device(struct fota_arduino_ctx *ctx, int64_t device_id)
{
    struct fota_arduino_report_batch *b;
    int found;

    if (!ctx || device_id <= 0 || __atomic_load_n(&ctx->reports.n, __ATOMIC_RELAXED) == 0)
        return 0;
    b = &ctx->reports;
    pthread_mutex_lock(&b->mu);
    found = *slot_of(b, device_id) != 0;
    if (found)
        report_write(ctx);
    pthread_mutex_unlock(&b->mu);
    return found;
}

/* ---- both */

void fota_arduino_report_sync(struct fota_arduino_ctx *ctx)
{
    if (!ctx)
        return;
    fota_arduino_served_flush(ctx);
    report_flush(ctx);
}

void fota_arduino_batch_sync(struct fota_arduino_ctx *ctx, int64_t device_id)
{
    fota_arduino_served_sync(ctx, device_id);
    fota_arduino_report_sync_device(ctx, device_id);
}

void fota_arduino_served_flush_any(struct fota_arduino_ctx *ctx)
{
    if (ctx && __atomic_load_n(&ctx->served.n, __ATOMIC_RELAXED) > 0)
        batch_run(ctx, served_flush_job);
}

static void flush_tick(evutil_socket_t fd, short what, void *arg)
{
    struct fota_arduino_loop *al = arg;
    (void)fd;
    (void)what;
    if (__atomic_load_n(&al->ctx->served.n, __ATOMIC_RELAXED) > 0 ||
        __atomic_load_n(&al->ctx->reports.n, __ATOMIC_RELAXED) > 0)
        batch_run(al->ctx, batch_due_job);
}

int fota_arduino_batch_timer(struct fota_arduino_loop *al, struct event_base *base)
{
    static const struct timeval every = {FOTA_ARDUINO_BATCH_MS / 1000,
                                         (FOTA_ARDUINO_BATCH_MS % 1000) * 1000};
    al->flush_ev = event_new(base, -1, EV_PERSIST, flush_tick, al);
    if (!al->flush_ev || event_add(al->flush_ev, &every) != 0)
        return FOTA_ENOMEM;
    return 0;
}

void fota_arduino_batch_init(struct fota_arduino_ctx *ctx)
{
    pthread_mutex_init(&ctx->served.mu, NULL);
    pthread_mutex_init(&ctx->served.write_mu, NULL);
    ctx->served.fill = fota_xcalloc(1, sizeof *ctx->served.fill);
    ctx->served.out = fota_xcalloc(1, sizeof *ctx->served.out);
    pthread_mutex_init(&ctx->reports.mu, NULL);
}

void fota_arduino_batch_destroy(struct fota_arduino_ctx *ctx)
{
    fota_arduino_report_sync(ctx);
    pthread_mutex_destroy(&ctx->served.mu);
    pthread_mutex_destroy(&ctx->served.write_mu);
    free(ctx->served.fill);
    free(ctx->served.out);
    pthread_mutex_destroy(&ctx->reports.mu);
}
