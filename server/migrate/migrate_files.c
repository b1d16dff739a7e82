/* migrate_files.c - the data dirs of `fotad migrate`: the source's locked
 * against a running fotad, and the target's, where the PostgreSQL instance
 * finds what is not in its database: secret.key (owner and master keys
 * derive from it, so it must be the source's bytes), owner.key (the admin
 * key, whose hash the database holds) and the release files in the blob
 * store's layout (DIR/blobs/sha256/xx/<hash>), each written to a temp file,
 * hashed as written, fsynced and renamed into place. Root migrating into a
 * dir of the service user gives the user what it makes, as fotad restore
 * does. */
#include "migrate_int.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fota_str.h"
#include "hex.h"
#include "xmalloc.h"

#define COPY_BUF (256u << 10)

/* flock of DIR/fotad.lock, as fotad takes it; the holder's pid in err. */
static int lock_file(int fd, const char *dir, char *err, size_t errlen)
{
    char pid[32] = "";
    if (flock(fd, LOCK_EX | LOCK_NB) == 0)
        return 0;
    ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
    pid[n > 0 ? n : 0] = '\0';
    pid[strcspn(pid, "\n")] = '\0';
    return fota_str_err(err, errlen, FOTA_EBUSY, "a fotad (pid %s) is running on %s: stop it first",
                  pid[0] ? pid : "?", dir);
}

int fota_migrate_source_lock(const char *dir, int *lock_fd, char *err, size_t errlen)
{
    char path[FOTA_MIGRATE_PATH_MAX + 16];

    *lock_fd = -1;
    snprintf(path, sizeof(path), "%s/fotad.lock", dir);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 0;   /* no fotad has run there */
    if (fd < 0)
        return fota_str_err(err, errlen, FOTA_EIO, "cannot open %s (%s)", path, strerror(errno));
    int rc = lock_file(fd, dir, err, errlen);
    if (rc) {
        close(fd);
        return rc;
    }
    *lock_fd = fd;
    return 0;
}

/* Reads a small file whole: its length, -1 when missing, -2 on error. */
static ssize_t read_small(const char *path, uint8_t *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? -1 : -2;
    ssize_t n = read(fd, buf, cap);
    close(fd);
    return n < 0 ? -2 : n;
}

/* A key file of the target: absent (fine), the same bytes (fine), else
 * refused. */
static int same_or_absent(const struct fota_migrate_target *t, const char *name,
                          const uint8_t *want, size_t want_len, char *err, size_t errlen)
{
    char path[FOTA_MIGRATE_PATH_MAX + 32];
    uint8_t have[512];

    snprintf(path, sizeof(path), "%s/%s", t->dir, name);
    ssize_t n = read_small(path, have, sizeof(have));
    if (n == -1)
        return 0;
    if (n == -2)
        return fota_str_err(err, errlen, FOTA_EIO, "cannot read %s (%s)", path, strerror(errno));
    if (want && (size_t)n == want_len && memcmp(have, want, want_len) == 0)
        return 0;
    return fota_str_err(err, errlen, FOTA_EEXIST,
                  "%s differs from the source's: the target instance needs the source's %s "
                  "(%s); move it away or choose another data dir",
                  path, name,
                  strcmp(name, "secret.key") == 0 ? "every owner and master key derives from it"
                                                  : "the admin key");
}

int fota_migrate_target_open(struct fota_migrate_target *t, const char *dir,
                             const char *source_dir, const uint8_t *secret, size_t secret_len,
                             const uint8_t *owner, size_t owner_len, char *err, size_t errlen)
{
    char path[FOTA_MIGRATE_PATH_MAX + 16];
    struct stat st, src;
    int rc;

    memset(t, 0, sizeof(*t));
    t->lock_fd = -1;
    if (fota_str_copy(t->dir, sizeof(t->dir), dir) >= sizeof(t->dir) - 100)
        return fota_str_err(err, errlen, FOTA_EINVAL, "the target data dir's path is too long");
    if (stat(dir, &st) != 0) {
        if (errno != ENOENT)
            return fota_str_err(err, errlen, FOTA_EIO, "cannot use %s (%s)", dir, strerror(errno));
        if (mkdir(dir, 0700) != 0)
            return fota_str_err(err, errlen, FOTA_EIO, "cannot make %s (%s)", dir, strerror(errno));
        t->made_dir = 1;
    } else if (!S_ISDIR(st.st_mode)) {
        return fota_str_err(err, errlen, FOTA_EINVAL, "%s is not a directory", dir);
    } else {
        t->same = stat(source_dir, &src) == 0 && src.st_dev == st.st_dev &&
                  src.st_ino == st.st_ino;
        if (geteuid() == 0 && (st.st_uid != 0 || st.st_gid != 0)) {
            t->chown_to = 1;   /* the service user's dir: its files stay the user's */
            t->uid = st.st_uid;
            t->gid = st.st_gid;
        }
    }
    if (t->same)
        return 0;   /* locked as the source; its keys and blobs are the source's */
    snprintf(path, sizeof(path), "%s/fotad.lock", dir);
    t->lock_fd = open(path, O_RDWR | O_CLOEXEC);
    if (t->lock_fd < 0 && errno == ENOENT) {
        t->lock_fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        t->made_lock = t->lock_fd >= 0;
    }
    if (t->lock_fd < 0)
        return fota_str_err(err, errlen, FOTA_EIO, "cannot open %s (%s)", path, strerror(errno));
    if ((rc = lock_file(t->lock_fd, dir, err, errlen)) != 0)
        return rc;
    if (t->chown_to && t->made_lock && fchown(t->lock_fd, t->uid, t->gid) != 0)
        return fota_str_err(err, errlen, FOTA_EIO, "cannot give %s to uid %u (%s)", path,
                      (unsigned)t->uid, strerror(errno));
    if ((rc = same_or_absent(t, "secret.key", secret, secret_len, err, errlen)) != 0 ||
        (rc = same_or_absent(t, "owner.key", owner, owner_len, err, errlen)) != 0)
        return rc;
    return 0;
}

static int give(const struct fota_migrate_target *t, const char *path, char *err, size_t errlen)
{
    if (t->chown_to && lchown(path, t->uid, t->gid) != 0)
        return fota_str_err(err, errlen, FOTA_EIO, "cannot give %s to uid %u (%s)", path,
                      (unsigned)t->uid, strerror(errno));
    return 0;
}

static int make_dir(const struct fota_migrate_target *t, const char *path, char *err,
                    size_t errlen)
{
    if (mkdir(path, 0700) == 0)
        return give(t, path, err, errlen);
    if (errno == EEXIST)
        return 0;
    return fota_str_err(err, errlen, FOTA_EIO, "cannot make %s (%s)", path, strerror(errno));
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = -1;
    if (fd >= 0) {
        rc = fsync(fd);
        close(fd);
    }
    return rc;
}

/* A temp file beside path (0600, the target's owner), filled by the
 * caller, then fsynced and renamed to path. */
static int tmp_open(const struct fota_migrate_target *t, const char *path, char *tmp,
                    size_t cap, char *err, size_t errlen)
{
    snprintf(tmp, cap, "%s.migrate-XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return fota_str_err(err, errlen, FOTA_EIO, "cannot write %s (%s)", path, strerror(errno));
    if (fchmod(fd, 0600) != 0 || (t->chown_to && fchown(fd, t->uid, t->gid) != 0)) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return fota_str_err(err, errlen, FOTA_EIO, "cannot set the owner and mode of %s (%s)", tmp,
                      strerror(e));
    }
    return fd;
}

static int tmp_finish(int fd, const char *tmp, const char *path, char *err, size_t errlen)
{
    char dir[FOTA_MIGRATE_PATH_MAX + 100];
    int ok = fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    fota_str_copy_dir(dir, sizeof(dir), path);
    if (!ok || rename(tmp, path) != 0 || fsync_dir(dir) != 0) {
        int e = errno;
        unlink(tmp);
        return fota_str_err(err, errlen, FOTA_EIO, "cannot write %s (%s)", path, strerror(e));
    }
    return 0;
}

static int write_key(struct fota_migrate_target *t, const char *name, const uint8_t *data,
                     size_t len, int *written, char *err, size_t errlen)
{
    char path[FOTA_MIGRATE_PATH_MAX + 32], tmp[FOTA_MIGRATE_PATH_MAX + 64];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", t->dir, name);
    if (lstat(path, &st) == 0)
        return 0;   /* the same bytes: checked by _open under the lock */
    int fd = tmp_open(t, path, tmp, sizeof(tmp), err, errlen);
    if (fd < 0)
        return fd;
    if (write(fd, data, len) != (ssize_t)len) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return fota_str_err(err, errlen, FOTA_EIO, "cannot write %s (%s)", path, strerror(e));
    }
    int rc = tmp_finish(fd, tmp, path, err, errlen);
    *written = rc == 0;
    return rc;
}

/* SHA-256 of a file as it is read, written to out_fd (-1: only hashed). */
static int hash_copy(const char *src, int out_fd, uint8_t *buf, char hex[65], uint64_t *size)
{
    EVP_MD_CTX *h = EVP_MD_CTX_new();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    int fd = open(src, O_RDONLY | O_CLOEXEC), rc = -1;
    ssize_t n;

    *size = 0;
    if (fd < 0 || !h || EVP_DigestInit_ex(h, EVP_sha256(), NULL) != 1)
        goto out;
    while ((n = read(fd, buf, COPY_BUF)) > 0) {
        EVP_DigestUpdate(h, buf, (size_t)n);
        if (out_fd >= 0 && write(out_fd, buf, (size_t)n) != n)
            goto out;
        *size += (uint64_t)n;
    }
    if (n == 0 && EVP_DigestFinal_ex(h, md, &mdlen) == 1) {
        fota_hex_encode(md, mdlen, hex);
        rc = 0;
    }
out:
    if (fd >= 0)
        close(fd);
    EVP_MD_CTX_free(h);
    return rc;
}

static int copy_blob(struct fota_migrate_target *t, const char *hash, const char *src,
                     uint8_t *buf, char *err, size_t errlen)
{
    char path[FOTA_MIGRATE_PATH_MAX + 120], tmp[FOTA_MIGRATE_PATH_MAX + 160], hex[65];
    uint64_t size;
    int rc;

    snprintf(path, sizeof(path), "%s/blobs/sha256/%.2s", t->dir, hash);
    if ((rc = make_dir(t, path, err, errlen)) != 0)
        return rc;
    snprintf(path, sizeof(path), "%s/blobs/sha256/%.2s/%s", t->dir, hash, hash);
    if (hash_copy(path, -1, buf, hex, &size) == 0 && strcmp(hex, hash) == 0) {
        t->blobs_present++;
        return 0;
    }
    int fd = tmp_open(t, path, tmp, sizeof(tmp), err, errlen);
    if (fd < 0)
        return fd;
    if (hash_copy(src, fd, buf, hex, &size) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return fota_str_err(err, errlen, FOTA_EIO, "cannot copy %s to %s (%s)", src, path,
                      strerror(e));
    }
    if (strcmp(hex, hash) != 0) {
        close(fd);
        unlink(tmp);
        return fota_str_err(err, errlen, FOTA_ECHECKSUM, "release file %s changed while it was copied "
                                                   "(its bytes hash to %.16s...)",
                      src, hex);
    }
    if ((rc = tmp_finish(fd, tmp, path, err, errlen)) != 0)
        return rc;
    t->blobs_copied++;
    t->bytes_copied += size;
    return 0;
}

int fota_migrate_target_fill(struct fota_migrate_target *t, const uint8_t *secret,
                             size_t secret_len, const uint8_t *owner, size_t owner_len,
                             char *const *hashes, char *const *src_paths, size_t n, char *err,
                             size_t errlen)
{
    char path[FOTA_MIGRATE_PATH_MAX + 32];
    uint8_t *buf;
    int rc;

    if (t->same)
        return 0;
    if ((rc = write_key(t, "secret.key", secret, secret_len, &t->secret_written, err, errlen)) !=
            0 ||
        (owner && (rc = write_key(t, "owner.key", owner, owner_len, &t->owner_written, err,
                                  errlen)) != 0))
        return rc;
    snprintf(path, sizeof(path), "%s/blobs", t->dir);
    if ((rc = make_dir(t, path, err, errlen)) != 0)
        return rc;
    snprintf(path, sizeof(path), "%s/blobs/sha256", t->dir);
    if ((rc = make_dir(t, path, err, errlen)) != 0)
        return rc;
    buf = fota_xmalloc(COPY_BUF);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = copy_blob(t, hashes[i], src_paths[i], buf, err, errlen);
    free(buf);
    return rc;
}

void fota_migrate_target_close(struct fota_migrate_target *t)
{
    char path[FOTA_MIGRATE_PATH_MAX + 16];

    if (t->made_lock) {
        snprintf(path, sizeof(path), "%s/fotad.lock", t->dir);
        unlink(path);
    }
    if (t->lock_fd >= 0)
        close(t->lock_fd);
    t->lock_fd = -1;
    if (t->made_dir)
        rmdir(t->dir);   /* only when nothing was written into it */
}
