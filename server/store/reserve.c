/* reserve.c - the disk reserve's ballast file (reserve.h): allocated with
 * posix_fallocate, given back with ftruncate, refilled when the disk has
 * room again. One descriptor stays open for the process's life. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include "fota_str.h"
#include "logf.h"
#include "reserve.h"
#include "xmalloc.h"

struct fota_reserve {
    pthread_mutex_t mu;               /* serialises release and refill */
    int fd;                           /* -1 without a ballast (size 0) */
    uint64_t size;                    /* what it is meant to hold */
    uint64_t held;                    /* what it holds (atomic reads) */
    fota_log_cb log;
    void *log_ud;
    char path[PATH_MAX];
};

static void reserve_logf(const struct fota_reserve *r, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void reserve_logf(const struct fota_reserve *r, int level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fota_vlogf(r->log, r->log_ud, level, fmt, ap);
    va_end(ap);
}

static uint64_t available(int fd)
{
    struct statvfs fs;

    return fstatvfs(fd, &fs) == 0 ? (uint64_t)fs.f_bavail * fs.f_frsize : 0;
}

/* Allocates the whole ballast, under r->mu. 0, or the posix_fallocate error:
 * the file is then cut back to the keep bytes it held before (what a failed
 * call allocated in part would only hide how full the disk is). */
static int fill(struct fota_reserve *r, uint64_t keep)
{
    int e = posix_fallocate(r->fd, 0, (off_t)r->size);

    if (e == 0) {
        __atomic_store_n(&r->held, r->size, __ATOMIC_RELAXED);
        return 0;
    }
    if (ftruncate(r->fd, (off_t)keep) != 0) {
        reserve_logf(r, FOTA_LOG_WARN, "cannot cut back the disk reserve path=%s error=\"%s\"",
                     r->path, strerror(errno));
        keep = 0;
    }
    __atomic_store_n(&r->held, keep, __ATOMIC_RELAXED);
    return e;
}

int fota_reserve_open(const char *path, uint64_t size, fota_log_cb log, void *log_ud,
                      struct fota_reserve **out)
{
    struct fota_reserve *r;
    struct stat st;
    uint64_t held;
    int e;

    *out = NULL;
    r = fota_xcalloc(1, sizeof *r);
    r->fd = -1;
    r->size = size;
    r->log = log;
    r->log_ud = log_ud;
    pthread_mutex_init(&r->mu, NULL);
    if (fota_str_copy(r->path, sizeof r->path, path) >= sizeof r->path) {
        errno = ENAMETOOLONG;
        goto fail;
    }
    if (size == 0) {
        if (unlink(path) == 0)
            reserve_logf(r, FOTA_LOG_INFO, "disk reserve removed path=%s", path);
        *out = r;
        return 0;
    }
    r->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (r->fd < 0 || fstat(r->fd, &st) != 0)
        goto fail;
    if ((uint64_t)st.st_size > size && ftruncate(r->fd, (off_t)size) != 0)
        goto fail;
    /* what the file holds already stays held if the rest does not fit (a
     * larger disk_reserve than at the last start, on a full disk) */
    held = (uint64_t)st.st_blocks * 512 >= (uint64_t)st.st_size ? (uint64_t)st.st_size : 0;
    e = fill(r, held < size ? held : size);
    if (e)
        reserve_logf(r, FOTA_LOG_WARN,
                     "disk reserve short, made whole when the disk has room path=%s bytes=%llu "
                     "held=%llu available=%llu error=\"%s\"", path, (unsigned long long)size,
                     (unsigned long long)fota_reserve_held(r),
                     (unsigned long long)available(r->fd), strerror(e));
    *out = r;
    return 0;
fail:
    reserve_logf(r, FOTA_LOG_ERROR, "cannot make the disk reserve path=%s error=\"%s\"", path,
                 strerror(errno));
    fota_reserve_close(r);
    return FOTA_EIO;
}

void fota_reserve_close(struct fota_reserve *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

int fota_reserve_release(struct fota_reserve *r, const char *why)
{
    uint64_t held;
    int done = 0;

    if (!r || r->fd < 0)
        return 0;
    pthread_mutex_lock(&r->mu);
    held = __atomic_load_n(&r->held, __ATOMIC_RELAXED);
    if (held > 0) {
        if (ftruncate(r->fd, 0) == 0) {
            __atomic_store_n(&r->held, 0, __ATOMIC_RELAXED);
            done = 1;
            reserve_logf(r, FOTA_LOG_WARN,
                         "disk full: disk reserve given back for op=%s bytes=%llu "
                         "(it comes back when the disk has twice that free)", why,
                         (unsigned long long)held);
        } else {
            reserve_logf(r, FOTA_LOG_ERROR, "cannot give back the disk reserve path=%s "
                         "error=\"%s\"", r->path, strerror(errno));
        }
    }
    pthread_mutex_unlock(&r->mu);
    return done;
}

int fota_reserve_refill(struct fota_reserve *r)
{
    uint64_t avail;
    int done = 0;

    if (!r || r->fd < 0 || fota_reserve_held(r) >= r->size)
        return 0;
    pthread_mutex_lock(&r->mu);
    avail = available(r->fd);
    if (__atomic_load_n(&r->held, __ATOMIC_RELAXED) < r->size && avail / 2 >= r->size &&
        fill(r, __atomic_load_n(&r->held, __ATOMIC_RELAXED)) == 0) {
        done = 1;
        reserve_logf(r, FOTA_LOG_INFO, "disk reserve restored path=%s bytes=%llu available=%llu",
                     r->path, (unsigned long long)r->size, (unsigned long long)avail);
    }
    pthread_mutex_unlock(&r->mu);
    return done;
}

uint64_t fota_reserve_held(const struct fota_reserve *r)
{
    return r ? __atomic_load_n(&r->held, __ATOMIC_RELAXED) : 0;
}

uint64_t fota_reserve_size(const struct fota_reserve *r)
{
    return r ? r->size : 0;
}
