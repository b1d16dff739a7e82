/* backup_write.c - a snapshot written out as the archive with write(2):
 * `fotad backup FILE` (a temp file beside FILE) and `fotad backup -`
 * (standard output, a pipe). The REST route streams the same bytes
 * (backup_module.c). */
#include "backup_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xmalloc.h"

#define COPY_BUF (1u << 20)

struct out {
    int fd;
    uint64_t done, total;
    fota_backup_progress_cb progress;
    void *ud;
    char *err;
    size_t errlen;
};

static int put(struct out *o, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(o->fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            snprintf(o->err, o->errlen, "cannot write the archive (%s)",
                     w < 0 ? strerror(errno) : "no progress");
            return FOTA_EIO;
        }
        c += w;
        n -= (size_t)w;
        o->done += (uint64_t)w;
    }
    if (o->progress)
        o->progress(o->ud, "archive", o->done, o->total);
    return 0;
}

/* A member's bytes from its file: exactly size of them (a file that
 * changed under the snapshot is an error, never a short member). */
static int put_file(struct out *o, const struct fota_backup_item *it, uint8_t *buf)
{
    int fd = open(it->path, O_RDONLY | O_CLOEXEC), rc = 0;
    uint64_t left = it->size;

    if (fd < 0) {
        snprintf(o->err, o->errlen, "cannot open %s (%s)", it->path, strerror(errno));
        return FOTA_EIO;
    }
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    while (left > 0 && rc == 0) {
        ssize_t n = read(fd, buf, left < COPY_BUF ? (size_t)left : COPY_BUF);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(o->err, o->errlen, "%s became shorter during the backup (%s)", it->name,
                     n < 0 ? strerror(errno) : "end of file");
            rc = FOTA_EIO;
            break;
        }
        rc = put(o, buf, (size_t)n);
        left -= (uint64_t)n;
    }
    close(fd);
    return rc;
}

int fota_backup_snap_write(const struct fota_backup_snap *s, int fd,
                           fota_backup_progress_cb progress, void *ud, char *err, size_t errlen)
{
    static const uint8_t zeros[FOTA_TAR_END_BYTES];
    struct out o = { fd, 0, s->archive_bytes, progress, ud, err, errlen };
    uint8_t hdr[FOTA_TAR_BLOCK];
    uint8_t *buf = fota_xmalloc(COPY_BUF);
    int rc = 0;

    for (size_t i = 0; i < s->nitems && rc == 0; i++) {
        const struct fota_backup_item *it = &s->items[i];
        fota_backup_snap_header(s, i, hdr);
        rc = put(&o, hdr, sizeof(hdr));
        if (rc == 0)
            rc = it->data ? put(&o, it->data, (size_t)it->size) : put_file(&o, it, buf);
        if (rc == 0)
            rc = put(&o, zeros, fota_tar_pad(it->size));
    }
    if (rc == 0)
        rc = put(&o, zeros, FOTA_TAR_END_BYTES);
    free(buf);
    return rc;
}
