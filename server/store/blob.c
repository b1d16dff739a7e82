/* blob.c - content-addressed firmware files: temp file, fsync, rename, fsync dir.
 *
 * Layout: DIR/sha256/xx/<64 hex> and DIR/tmp/upload-XXXXXX (same filesystem, so
 * rename() is atomic). Nothing here is cached: the filesystem is the index. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include "blob.h"
#include "hex.h"
#include "logf.h"
#include "xmalloc.h"

struct fota_blob_store {
    char dir[PATH_MAX - 128];   /* room for "/sha256/xx/<hash>" */
    fota_log_cb log;
    void *log_ud;
    uint64_t reserve;           /* bytes a put leaves free (atomic: set while serving) */
    struct fota_blob_remote remote;   /* put NULL: none */
};

struct fota_blob_writer {
    struct fota_blob_store *bs;
    int fd;
    int64_t size;
    EVP_MD_CTX *md;
    char tmp[PATH_MAX];
};

static void blob_logf(const struct fota_blob_store *bs, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void blob_logf(const struct fota_blob_store *bs, int level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fota_vlogf(bs->log, bs->log_ud, level, fmt, ap);
    va_end(ap);
}

/* FOTA_ENOSPC for a file system without room (the disk, or a quota), else
 * FOTA_EIO. */
static int errno_err(int e)
{
    return e == ENOSPC || e == EDQUOT ? FOTA_ENOSPC : FOTA_EIO;
}

int fota_blob_hash_valid(const char *s)
{
    size_t i;

    if (!s)
        return 0;
    for (i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return s[64] == '\0';
}

int fota_blob_hash(const void *data, size_t len, char hash_hex_out[FOTA_HASH_HEX])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return FOTA_EIO;
    fota_hex_encode(md, mdlen, hash_hex_out);
    return 0;
}

/* mkdir that accepts an existing directory; returns 1 if created, 0 if it
 * existed, FOTA_EIO on failure. */
static int mkdir_one(const char *path)
{
    struct stat st;

    if (mkdir(path, 0700) == 0)
        return 1;
    if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    return FOTA_EIO;
}

/* mkdir -p */
static int mkdir_p(const char *path)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);

    if (len == 0 || len >= sizeof buf)
        return FOTA_EINVAL;
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i < len; i++) {
        if (buf[i] != '/')
            continue;
        buf[i] = '\0';
        if (mkdir_one(buf) < 0)
            return FOTA_EIO;
        buf[i] = '/';
    }
    return mkdir_one(buf) < 0 ? FOTA_EIO : 0;
}

static int fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;

    if (fd < 0)
        return FOTA_EIO;
    if (fsync(fd) != 0)
        rc = FOTA_EIO;
    close(fd);
    return rc;
}

/* Deletes every entry of DIR/tmp; returns how many, or FOTA_EIO. */
static int clean_tmp(struct fota_blob_store *bs)
{
    char path[PATH_MAX];
    struct dirent *e;
    DIR *d;
    int n = 0, fails = 0;

    snprintf(path, sizeof path, "%s/tmp", bs->dir);
    d = opendir(path);
    if (!d)
        return FOTA_EIO;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0)
            n++;
        else
            fails++;
    }
    closedir(d);
    if (fails)
        blob_logf(bs, FOTA_LOG_WARN, "could not remove temp entries count=%d dir=%s/tmp",
                  fails, bs->dir);
    return n;
}

int fota_blob_store_open(const char *dir, fota_log_cb log, void *log_ud,
                         struct fota_blob_store **out)
{
    struct fota_blob_store *bs;
    char path[PATH_MAX];
    int n;

    *out = NULL;
    if (!dir || !dir[0] || strlen(dir) >= sizeof bs->dir)
        return FOTA_EINVAL;
    bs = fota_xcalloc(1, sizeof *bs);
    memcpy(bs->dir, dir, strlen(dir) + 1);
    bs->log = log;
    bs->log_ud = log_ud;
    if (mkdir_p(bs->dir) != 0)
        goto fail;
    snprintf(path, sizeof path, "%s/sha256", bs->dir);
    if (mkdir_one(path) < 0)
        goto fail;
    snprintf(path, sizeof path, "%s/tmp", bs->dir);
    if (mkdir_one(path) < 0)
        goto fail;
    n = clean_tmp(bs);
    if (n < 0)
        goto fail;
    if (n > 0)
        blob_logf(bs, FOTA_LOG_WARN,
                  "removed leftover temp files of interrupted uploads count=%d dir=%s",
                  n, bs->dir);
    *out = bs;
    return 0;
fail:
    blob_logf(bs, FOTA_LOG_ERROR, "cannot prepare dir=%s error=\"%s\"", bs->dir,
              strerror(errno));
    free(bs);
    return FOTA_EIO;
}

void fota_blob_store_close(struct fota_blob_store *bs)
{
    free(bs);
}

int fota_blob_path(const struct fota_blob_store *bs, const char *hash_hex, char *buf, size_t buflen)
{
    int n;

    if (!fota_blob_hash_valid(hash_hex))
        return FOTA_EINVAL;
    n = snprintf(buf, buflen, "%s/sha256/%.2s/%s", bs->dir, hash_hex, hash_hex);
    return (n < 0 || (size_t)n >= buflen) ? FOTA_ERANGE : 0;
}

int fota_blob_exists(const struct fota_blob_store *bs, const char *hash_hex)
{
    char path[PATH_MAX];
    struct stat st;
    int rc = fota_blob_path(bs, hash_hex, path, sizeof path);

    if (rc < 0)
        return rc;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int fota_blob_open(struct fota_blob_store *bs, const char *hash_hex, int *fd, int64_t *size)
{
    char path[PATH_MAX];
    struct stat st;
    int rc = fota_blob_path(bs, hash_hex, path, sizeof path);
    int f;

    *fd = -1;
    if (rc < 0)
        return rc;
    f = open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0)
        return errno == ENOENT ? FOTA_ENOENT : FOTA_EIO;
    if (fstat(f, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(f);
        return FOTA_EIO;
    }
    *fd = f;
    if (size)
        *size = (int64_t)st.st_size;
    return 0;
}

int fota_blob_remove(struct fota_blob_store *bs, const char *hash_hex)
{
    char path[PATH_MAX];
    int rc = fota_blob_path(bs, hash_hex, path, sizeof path);

    if (rc < 0)
        return rc;
    if (unlink(path) != 0)
        return errno == ENOENT ? FOTA_ENOENT : FOTA_EIO;
    return 0;
}

static int hash_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

int fota_blob_sweep(struct fota_blob_store *bs, const char (*keep)[FOTA_HASH_HEX], size_t n,
                    const struct timespec *before, unsigned *removed, unsigned *young)
{
    char path[PATH_MAX];
    int rc = 0;

    *removed = *young = 0;
    for (unsigned fan = 0; fan < 256; fan++) {
        snprintf(path, sizeof path, "%s/sha256/%02x", bs->dir, fan);
        DIR *d = opendir(path);
        if (!d) {
            if (errno != ENOENT)
                rc = FOTA_EIO;
            continue;
        }
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            struct stat st;
            char fx[3];
            snprintf(fx, sizeof fx, "%02x", fan);
            if (!fota_blob_hash_valid(e->d_name) || memcmp(e->d_name, fx, 2) != 0)
                continue;
            if (n && bsearch(e->d_name, keep, n, sizeof *keep, hash_cmp))
                continue;
            if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
                continue;
            if (st.st_mtim.tv_sec > before->tv_sec ||
                (st.st_mtim.tv_sec == before->tv_sec && st.st_mtim.tv_nsec >= before->tv_nsec)) {
                (*young)++;
                continue;
            }
            if (unlinkat(dirfd(d), e->d_name, 0) != 0) {
                blob_logf(bs, FOTA_LOG_WARN, "cannot delete orphan blob sha256=%s error=\"%s\"",
                          e->d_name, strerror(errno));
                rc = FOTA_EIO;
                continue;
            }
            blob_logf(bs, FOTA_LOG_INFO, "orphan blob deleted sha256=%s size=%lld", e->d_name,
                      (long long)st.st_size);
            (*removed)++;
        }
        closedir(d);
    }
    return rc;
}

/* ---- writing ----------------------------------------------------------- */

int fota_blob_write_begin(struct fota_blob_store *bs, struct fota_blob_writer **out)
{
    struct fota_blob_writer *w;
    int rc = FOTA_EIO;

    *out = NULL;
    w = fota_xcalloc(1, sizeof *w);
    w->bs = bs;
    w->fd = -1;
    w->md = EVP_MD_CTX_new();
    if (!w->md || EVP_DigestInit_ex(w->md, EVP_sha256(), NULL) != 1)
        goto fail;
    /* A random name and open(O_EXCL) rather than mkostemp(): the same, but
     * through open(), which ThreadSanitizer sees (mkostemp's descriptor
     * would look like the last socket with that number to it). */
    for (int tries = 0; w->fd < 0 && tries < 16; tries++) {
        unsigned char r[8];
        if (RAND_bytes(r, sizeof r) != 1)
            break;
        snprintf(w->tmp, sizeof w->tmp, "%s/tmp/upload-%02x%02x%02x%02x%02x%02x%02x%02x", bs->dir,
                 r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
        w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (w->fd < 0 && errno != EEXIST)
            break;
    }
    if (w->fd < 0) {
        rc = errno_err(errno);
        blob_logf(bs, FOTA_LOG_ERROR, "cannot create temp file dir=%s/tmp error=\"%s\"",
                  bs->dir, strerror(errno));
        goto fail;
    }
    *out = w;
    return 0;
fail:
    EVP_MD_CTX_free(w->md);
    free(w);
    return rc;
}

int fota_blob_write_update(struct fota_blob_writer *w, const void *data, size_t len)
{
    const unsigned char *p = data;

    if (EVP_DigestUpdate(w->md, data, len) != 1)
        return FOTA_EIO;
    while (len > 0) {
        ssize_t k = write(w->fd, p, len);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            blob_logf(w->bs, FOTA_LOG_ERROR, "write failed file=%s error=\"%s\"", w->tmp,
                      strerror(e));
            return errno_err(e);
        }
        p += k;
        len -= (size_t)k;
        w->size += k;
    }
    return 0;
}

void fota_blob_write_abort(struct fota_blob_writer *w)
{
    if (!w)
        return;
    if (w->fd >= 0) {
        close(w->fd);
        unlink(w->tmp);
    }
    EVP_MD_CTX_free(w->md);
    free(w);
}

/* fota_blob_write_end, which with expect non-NULL keeps the blob only if
 * its bytes hash to expect (FOTA_EIO, logged, otherwise). */
static int write_finish(struct fota_blob_writer *w, const char *expect,
                        char hash_hex_out[FOTA_HASH_HEX], int64_t *size_out)
{
    struct fota_blob_store *bs = w->bs;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char hex[FOTA_HASH_HEX], dir[PATH_MAX], path[PATH_MAX];
    int created, rc = FOTA_EIO;

    if (EVP_DigestFinal_ex(w->md, md, &mdlen) != 1 || mdlen != 32)
        goto out;
    fota_hex_encode(md, mdlen, hex);
    if (expect && strcmp(hex, expect) != 0) {
        blob_logf(bs, FOTA_LOG_ERROR, "blob corrupt in the shared store sha256=%s got=%s "
                  "bytes=%lld", expect, hex, (long long)w->size);
        goto out;
    }
    snprintf(dir, sizeof dir, "%s/sha256/%.2s", bs->dir, hex);
    if (fota_blob_path(bs, hex, path, sizeof path) != 0)
        goto out;
    if (fota_blob_exists(bs, hex) == 1) {   /* same bytes already durable: keep them */
        rc = 0;
        goto out;
    }
    /* Data before name: the file's bytes reach the disk before the rename
     * makes them visible under their hash. */
    if (fsync(w->fd) != 0)
        goto out_errno;
    created = mkdir_one(dir);
    if (created < 0)
        goto out_errno;
    if (rename(w->tmp, path) != 0)
        goto out_errno;
    close(w->fd);
    w->fd = -1;
    /* The rename itself is durable once the directory is synced; a new
     * fan-out directory also needs its parent synced. */
    if (fsync_dir(dir) != 0)
        goto out_errno;
    if (created) {
        snprintf(dir, sizeof dir, "%s/sha256", bs->dir);
        if (fsync_dir(dir) != 0)
            goto out_errno;
    }
    rc = 0;
    goto out;
out_errno:
    rc = errno_err(errno);
    blob_logf(bs, FOTA_LOG_ERROR, "cannot store blob=%s error=\"%s\"", hex, strerror(errno));
out:
    if (rc == 0) {
        memcpy(hash_hex_out, hex, FOTA_HASH_HEX);
        if (size_out)
            *size_out = w->size;
    }
    fota_blob_write_abort(w);   /* closes and removes the temp file if still there */
    return rc;
}

int fota_blob_write_end(struct fota_blob_writer *w, char hash_hex_out[FOTA_HASH_HEX],
                        int64_t *size_out)
{
    return write_finish(w, NULL, hash_hex_out, size_out);
}

/* The blob here, then in the remote (if any): a release names it only
 * once both hold it. */
static int put_remote(struct fota_blob_store *bs, const char *hex, const void *data, size_t len)
{
    if (!bs->remote.put)
        return 0;
    int rc = bs->remote.put(bs->remote.ud, hex, data, len);
    if (rc)
        blob_logf(bs, FOTA_LOG_WARN, "blob not stored in the shared store sha256=%s error=%s",
                  hex, fota_errname(rc));
    return rc;
}

int fota_blob_put(struct fota_blob_store *bs, const void *data, size_t len,
                  char hash_hex_out[FOTA_HASH_HEX])
{
    struct fota_blob_writer *w;
    char hex[FOTA_HASH_HEX];
    int rc;

    rc = fota_blob_hash(data, len, hex);
    if (rc < 0)
        return rc;
    if (fota_blob_exists(bs, hex) == 1) {
        memcpy(hash_hex_out, hex, FOTA_HASH_HEX);
        return put_remote(bs, hex, data, len);
    }
    rc = fota_blob_room(bs, len);
    if (rc < 0)
        return rc;
    rc = fota_blob_write_begin(bs, &w);
    if (rc < 0)
        return rc;
    rc = fota_blob_write_update(w, data, len);
    if (rc < 0) {
        fota_blob_write_abort(w);
        return rc;
    }
    rc = fota_blob_write_end(w, hash_hex_out, NULL);
    return rc ? rc : put_remote(bs, hex, data, len);
}

/* ---- the shared store ---------------------------------------------------- */

void fota_blob_store_set_remote(struct fota_blob_store *bs, const struct fota_blob_remote *r)
{
    bs->remote = *r;
}

int fota_blob_shared(const struct fota_blob_store *bs)
{
    return bs->remote.fetch != NULL;
}

struct fill {
    struct fota_blob_writer *w;
    int64_t size;    /* what the remote recorded: checked against the room once */
    int checked;
};

static int fill_sink(void *ud, const void *data, size_t len)
{
    struct fill *f = ud;
    if (!f->checked) {
        f->checked = 1;
        int rc = fota_blob_room(f->w->bs, (uint64_t)(f->size > 0 ? f->size : 0));
        if (rc)
            return rc;
    }
    return fota_blob_write_update(f->w, data, len);
}

int fota_blob_fill(struct fota_blob_store *bs, const char *hash_hex)
{
    struct fill f = { 0 };
    char hex[FOTA_HASH_HEX];
    int rc = fota_blob_exists(bs, hash_hex);

    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (!bs->remote.fetch)
        return FOTA_ENOENT;
    if ((rc = fota_blob_write_begin(bs, &f.w)) != 0)
        return rc;
    rc = bs->remote.fetch(bs->remote.ud, hash_hex, fill_sink, &f, &f.size);
    if (rc == 0 && !f.checked && (rc = fota_blob_room(bs, 0)) == 0)
        f.checked = 1;   /* an empty blob: no piece came */
    if (rc) {
        fota_blob_write_abort(f.w);
        return rc;
    }
    rc = write_finish(f.w, hash_hex, hex, NULL);
    if (rc == 0)
        blob_logf(bs, FOTA_LOG_INFO, "blob copied from the shared store sha256=%s bytes=%lld",
                  hash_hex, (long long)f.size);
    return rc;
}

void fota_blob_store_set_reserve(struct fota_blob_store *bs, uint64_t reserve)
{
    __atomic_store_n(&bs->reserve, reserve, __ATOMIC_RELAXED);
}

int fota_blob_room(const struct fota_blob_store *bs, uint64_t bytes)
{
    uint64_t reserve = __atomic_load_n(&bs->reserve, __ATOMIC_RELAXED), avail;
    struct statvfs fs;

    if (statvfs(bs->dir, &fs) != 0)
        return 0;   /* unknown: the write itself will tell */
    avail = (uint64_t)fs.f_bavail * fs.f_frsize;
    if (bytes <= avail && avail - bytes >= reserve)
        return 0;
    blob_logf(bs, FOTA_LOG_WARN,
              "no room for a blob bytes=%llu available=%llu disk_reserve=%llu",
              (unsigned long long)bytes, (unsigned long long)avail,
              (unsigned long long)reserve);
    return FOTA_ENOSPC;
}
