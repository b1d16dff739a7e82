/* dlprogress.c - per-device download progress: a hash table of records
 * (chained, one per device that downloaded since start, never freed before
 * exit so a late callback of a finished connection never touches freed
 * memory) behind one mutex. */
#include "dlprogress.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DL_BUCKETS 1024

struct fota_dl {
    int64_t device_id;
    uint64_t seq;              /* of the download the record describes */
    struct fota_dl_info info;
    struct fota_dl *next;
};

static pthread_mutex_t dl_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fota_dl *dl_buckets[DL_BUCKETS];
static uint64_t dl_seq;

static unsigned dl_bucket(int64_t id)
{
    return (unsigned)(((uint64_t)id * 0x9E3779B97F4A7C15ull) >> 54) % DL_BUCKETS;
}

static struct fota_dl *dl_find(int64_t id)
{
    for (struct fota_dl *d = dl_buckets[dl_bucket(id)]; d; d = d->next)
        if (d->device_id == id)
            return d;
    return NULL;
}

struct fota_dl *fota_dl_begin(int64_t device_id, const char *file, const char *version,
                              int64_t offset, int64_t total, int64_t size, uint64_t *seq)
{
    if (device_id <= 0)
        return NULL;
    pthread_mutex_lock(&dl_lock);
    struct fota_dl *d = dl_find(device_id);
    if (!d && (d = calloc(1, sizeof(*d))) != NULL) {
        unsigned b = dl_bucket(device_id);
        d->device_id = device_id;
        d->next = dl_buckets[b];
        dl_buckets[b] = d;
    }
    if (d) {
        d->seq = *seq = ++dl_seq;
        memset(&d->info, 0, sizeof(d->info));
        snprintf(d->info.file, sizeof(d->info.file), "%s", file);
        snprintf(d->info.version, sizeof(d->info.version), "%s", version);
        d->info.offset = offset;
        d->info.total = total;
        d->info.size = size;
        d->info.started = d->info.updated = (int64_t)time(NULL);
        d->info.state = total > 0 ? FOTA_DL_DOWNLOADING : FOTA_DL_COMPLETE;
    }
    pthread_mutex_unlock(&dl_lock);
    return d;
}

void fota_dl_sent(struct fota_dl *d, uint64_t seq, int64_t n)
{
    if (!d || n <= 0)
        return;
    pthread_mutex_lock(&dl_lock);
    if (d->seq == seq) {
        d->info.bytes += n;
        if (d->info.bytes > d->info.total)
            d->info.bytes = d->info.total;
        if (d->info.bytes == d->info.total)
            d->info.state = FOTA_DL_COMPLETE;
        d->info.updated = (int64_t)time(NULL);
    }
    pthread_mutex_unlock(&dl_lock);
}

void fota_dl_end(struct fota_dl *d, uint64_t seq)
{
    if (!d)
        return;
    pthread_mutex_lock(&dl_lock);
    if (d->seq == seq && d->info.state == FOTA_DL_DOWNLOADING) {
        d->info.state = FOTA_DL_ABORTED;
        d->info.updated = (int64_t)time(NULL);
    }
    pthread_mutex_unlock(&dl_lock);
}

int fota_dl_get(int64_t device_id, struct fota_dl_info *out)
{
    int rc = FOTA_ENOENT;
    pthread_mutex_lock(&dl_lock);
    struct fota_dl *d = dl_find(device_id);
    if (d) {
        *out = d->info;
        rc = 0;
    }
    pthread_mutex_unlock(&dl_lock);
    return rc;
}

const char *fota_dl_state_name(enum fota_dl_state s)
{
    switch (s) {
    case FOTA_DL_DOWNLOADING: return "downloading";
    case FOTA_DL_COMPLETE: return "complete";
    case FOTA_DL_ABORTED: return "aborted";
    }
    return "unknown";
}
