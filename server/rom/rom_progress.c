/* rom_progress.c - each device's current or last firmware download (rom.h):
 * a hash table of records (chained, one per device that downloaded since
 * start) behind one mutex, owned by the rom module's state. Records live
 * until the module stops; bodies still in flight then forget theirs first
 * (fota_rom_body_detach_all). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "fota_str.h"
#include "rom_int.h"
#include "xmalloc.h"

struct fota_rom_dl {
    int64_t device_id;
    uint64_t seq;              /* of the download the record describes */
    struct fota_rom_progress info;
    struct fota_rom_dl *next;
};

static unsigned bucket_of(int64_t id)
{
    return (unsigned)(((uint64_t)id * 0x9E3779B97F4A7C15ull) >> 54) % FOTA_ROM_PROGRESS_BUCKETS;
}

static struct fota_rom_dl *find(struct fota_rom_progress_tab *t, int64_t id)
{
    for (struct fota_rom_dl *d = t->buckets[bucket_of(id)]; d; d = d->next)
        if (d->device_id == id)
            return d;
    return NULL;
}

void fota_rom_progress_init(struct fota_rom_progress_tab *t)
{
    memset(t, 0, sizeof(*t));
    pthread_mutex_init(&t->lock, NULL);
}

void fota_rom_progress_cleanup(struct fota_rom_progress_tab *t)
{
    for (unsigned b = 0; b < FOTA_ROM_PROGRESS_BUCKETS; b++)
        while (t->buckets[b]) {
            struct fota_rom_dl *d = t->buckets[b];
            t->buckets[b] = d->next;
            free(d);
        }
    pthread_mutex_destroy(&t->lock);
}

struct fota_rom_dl *fota_rom_progress_begin(struct fota_rom_progress_tab *t, int64_t device_id,
                                            const char *file, const char *version,
                                            int64_t offset, int64_t total, int64_t size,
                                            uint64_t *seq)
{
    if (device_id <= 0)
        return NULL;
    int64_t now = fota_clock_wall_s();
    pthread_mutex_lock(&t->lock);
    struct fota_rom_dl *d = find(t, device_id);
    if (!d) {
        unsigned b = bucket_of(device_id);
        d = fota_xcalloc(1, sizeof(*d));
        d->device_id = device_id;
        d->next = t->buckets[b];
        t->buckets[b] = d;
    }
    d->seq = *seq = ++t->seq;
    memset(&d->info, 0, sizeof(d->info));
    fota_str_copy(d->info.file, sizeof(d->info.file), file);
    fota_str_copy(d->info.version, sizeof(d->info.version), version);
    d->info.offset = offset;
    d->info.total = total;
    d->info.size = size;
    d->info.started = d->info.updated = now;
    d->info.state = total > 0 ? FOTA_ROM_DL_DOWNLOADING : FOTA_ROM_DL_COMPLETE;
    pthread_mutex_unlock(&t->lock);
    return d;
}

void fota_rom_progress_sent(struct fota_rom_progress_tab *t, struct fota_rom_dl *d, uint64_t seq,
                            int64_t n)
{
    if (!d || n <= 0)
        return;
    int64_t now = fota_clock_wall_s();
    pthread_mutex_lock(&t->lock);
    if (d->seq == seq) {
        d->info.bytes += n;
        if (d->info.bytes > d->info.total)
            d->info.bytes = d->info.total;
        if (d->info.bytes == d->info.total)
            d->info.state = FOTA_ROM_DL_COMPLETE;
        d->info.updated = now;
    }
    pthread_mutex_unlock(&t->lock);
}

void fota_rom_progress_end(struct fota_rom_progress_tab *t, struct fota_rom_dl *d, uint64_t seq)
{
    if (!d)
        return;
    int64_t now = fota_clock_wall_s();
    pthread_mutex_lock(&t->lock);
    if (d->seq == seq && d->info.state == FOTA_ROM_DL_DOWNLOADING) {
        d->info.state = FOTA_ROM_DL_ABORTED;
        d->info.updated = now;
    }
    pthread_mutex_unlock(&t->lock);
}

int fota_rom_progress_get(const struct fota_server *srv, int64_t device_id,
                          struct fota_rom_progress *out)
{
    struct fota_rom_ctx *ctx = fota_server_module_state(srv, &fota_rom_module);
    int rc = FOTA_ENOENT;
    if (!ctx)
        return rc;
    pthread_mutex_lock(&ctx->progress.lock);
    struct fota_rom_dl *d = find(&ctx->progress, device_id);
    if (d) {
        *out = d->info;
        rc = 0;
    }
    pthread_mutex_unlock(&ctx->progress.lock);
    return rc;
}

const char *fota_rom_progress_state_name(enum fota_rom_dl_state s)
{
    switch (s) {
    case FOTA_ROM_DL_DOWNLOADING: return "downloading";
    case FOTA_ROM_DL_COMPLETE: return "complete";
    case FOTA_ROM_DL_ABORTED: return "aborted";
    }
    return "unknown";
}
