/* backup_restore.c - `fotad restore`: a backup archive back into a data
 * dir. The data dir is locked as fotad locks it (DATA/fotad.lock), so no
 * fotad runs on it meanwhile; the archive is unpacked into DATA/.restore-*
 * while the reader checks every member against the manifest; the database
 * is checked (integrity, counts, every blob it names present, opened as
 * fotad opens it); everything is fsynced; only then are the files moved
 * into place. Any failure before that removes what the restore made. */
#include "backup_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "fota_str.h"
#include "store.h"
#include "xmalloc.h"

#define READ_BUF (1u << 20)

/* The files fotad keeps in a data dir: what --force moves aside. */
static const char *const fotad_files[] = {
    "fota.db",
    "fota.db-wal",
    "fota.db-shm",
    "blobs",
    "secret.key",
    "owner.key",
};
#define NFOTAD_FILES (sizeof(fotad_files) / sizeof(fotad_files[0]))

struct restore {
    const char *dir;
    char stage[FOTA_BACKUP_PATH_MAX];
    int lock_fd, made_dir, made_lock;
    int out_fd;                       /* the member being written */
    char cur[FOTA_BACKUP_PATH_MAX + 100];
    int chown_to;                     /* root restoring into another user's dir */
    uid_t uid;
    gid_t gid;
    char *err;
    size_t errlen;
};

static int seterr(struct restore *x, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int seterr(struct restore *x, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->err, x->errlen, fmt, ap);
    va_end(ap);
    return code;
}

static int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = -1;
    if (fd >= 0) {
        rc = fsync(fd);
        close(fd);
    }
    return rc;
}

/* ------------------------------------------------------- the data dir */

/* Entries that do not make a data dir "not empty": the lock, the disk
 * reserve (fotad makes both, and either may stay from a fotad that failed
 * to start), lost+found, a restore's leftovers. */
static int ignorable(const char *name)
{
    return strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strcmp(name, "fotad.lock") == 0 ||
           strcmp(name, "reserve") == 0 || strcmp(name, "lost+found") == 0 ||
           strncmp(name, ".restore-", 9) == 0;
}

/* Lists what the data dir holds besides the lock (stale .restore-* dirs
 * of a restore that died are removed: we hold the lock). */
static int dir_contents(struct restore *x, char *list, size_t cap, int *nonempty)
{
    char path[FOTA_BACKUP_PATH_MAX + 100];
    DIR *d = opendir(x->dir);
    struct dirent *e;
    size_t used = 0;

    *nonempty = 0;
    list[0] = '\0';
    if (!d)
        return seterr(x, FOTA_EIO, "cannot read %s (%s)", x->dir, strerror(errno));
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, ".restore-", 9) == 0) {
            snprintf(path, sizeof(path), "%s/%s", x->dir, e->d_name);
            fota_backup_remove_tree(path);
        }
        if (ignorable(e->d_name))
            continue;
        if (*nonempty < 4 && used < cap) {
            int n = snprintf(list + used, cap - used, "%s%s", used ? ", " : "", e->d_name);
            used += n > 0 ? (size_t)n : 0;
        } else if (*nonempty == 4 && used + 6 < cap) {
            used += (size_t)snprintf(list + used, cap - used, ", ...");
        }
        (*nonempty)++;
    }
    closedir(d);
    return 0;
}

/* The data dir exists (made if not) and is locked; not a running fotad's. */
static int lock_dir(struct restore *x)
{
    char path[FOTA_BACKUP_PATH_MAX + 32];
    struct stat st;

    if (stat(x->dir, &st) != 0) {
        if (errno != ENOENT)
            return seterr(x, FOTA_EIO, "cannot use %s (%s)", x->dir, strerror(errno));
        if (mkdir(x->dir, 0700) != 0)
            return seterr(x, FOTA_EIO, "cannot make %s (%s)", x->dir, strerror(errno));
        x->made_dir = 1;
    } else if (!S_ISDIR(st.st_mode)) {
        return seterr(x, FOTA_EINVAL, "%s is not a directory", x->dir);
    } else if (geteuid() == 0 && (st.st_uid != 0 || st.st_gid != 0)) {
        x->chown_to = 1;   /* the service user's dir: its files stay the service user's */
        x->uid = st.st_uid;
        x->gid = st.st_gid;
    }
    snprintf(path, sizeof(path), "%s/fotad.lock", x->dir);
    x->lock_fd = open(path, O_RDWR | O_CLOEXEC);
    if (x->lock_fd < 0 && errno == ENOENT) {
        x->lock_fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        x->made_lock = x->lock_fd >= 0;
    }
    if (x->lock_fd < 0)
        return seterr(x, FOTA_EIO, "cannot open %s (%s)", path, strerror(errno));
    if (flock(x->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t n = pread(x->lock_fd, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        return seterr(x, FOTA_EBUSY, "a fotad (pid %s) is running on %s: stop it first",
                      pid[0] ? pid : "?", x->dir);
    }
    if (x->chown_to && x->made_lock && fchown(x->lock_fd, x->uid, x->gid) != 0)
        return seterr(x, FOTA_EIO, "cannot give %s to uid %u (%s)", path, (unsigned)x->uid,
                      strerror(errno));
    return 0;
}

static int make_stage(struct restore *x)
{
    char path[FOTA_BACKUP_PATH_MAX + 32];

    if ((size_t)snprintf(x->stage, sizeof(x->stage), "%s/.restore-XXXXXX", x->dir) >=
        sizeof(x->stage) - 100)
        return seterr(x, FOTA_EINVAL, "the data dir's path is too long");
    if (!mkdtemp(x->stage)) {
        x->stage[0] = '\0';
        return seterr(x, FOTA_EIO, "cannot make a directory in %s (%s)", x->dir, strerror(errno));
    }
    snprintf(path, sizeof(path), "%s/blobs", x->stage);
    if (mkdir(path, 0700) != 0)
        return seterr(x, FOTA_EIO, "cannot make %s (%s)", path, strerror(errno));
    snprintf(path, sizeof(path), "%s/blobs/sha256", x->stage);
    if (mkdir(path, 0700) != 0)
        return seterr(x, FOTA_EIO, "cannot make %s (%s)", path, strerror(errno));
    return 0;
}

/* What the restore made, undone; the data dir is as it was. */
static void undo(struct restore *x)
{
    char path[FOTA_BACKUP_PATH_MAX + 32];

    if (x->out_fd >= 0)
        close(x->out_fd);
    x->out_fd = -1;
    if (x->stage[0])
        fota_backup_remove_tree(x->stage);
    if (x->made_lock) {
        snprintf(path, sizeof(path), "%s/fotad.lock", x->dir);
        unlink(path);
    }
    if (x->lock_fd >= 0)
        close(x->lock_fd);
    x->lock_fd = -1;
    if (x->made_dir)
        rmdir(x->dir);
}

/* ------------------------------------------------------- the members */

static int on_member(void *ud, int ev, const struct fota_backup_member *m, const uint8_t *p,
                     size_t n)
{
    struct restore *x = ud;
    char dir[FOTA_BACKUP_PATH_MAX + 100];

    switch (ev) {
    case FOTA_BACKUP_EV_BEGIN:
        snprintf(x->cur, sizeof(x->cur), "%s/%s", x->stage, m->name);
        if (m->kind == FOTA_BACKUP_BLOB) {
            snprintf(dir, sizeof(dir), "%s/blobs/sha256/%.2s", x->stage, m->sha256);
            if (mkdir(dir, 0700) != 0 && errno != EEXIST)
                return seterr(x, FOTA_EIO, "cannot make %s (%s)", dir, strerror(errno));
        }
        x->out_fd = open(x->cur, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (x->out_fd < 0)
            return seterr(x, FOTA_EIO, "cannot write %s (%s)", x->cur, strerror(errno));
        return 0;
    case FOTA_BACKUP_EV_DATA:
        while (n > 0) {
            ssize_t w = write(x->out_fd, p, n);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return seterr(x, FOTA_EIO, "cannot write %s (%s)", x->cur,
                              w < 0 ? strerror(errno) : "no progress");
            p += w;
            n -= (size_t)w;
        }
        return 0;
    case FOTA_BACKUP_EV_END:
        if (fsync(x->out_fd) != 0 || close(x->out_fd) != 0) {
            x->out_fd = -1;
            return seterr(x, FOTA_EIO, "cannot write %s (%s)", x->cur, strerror(errno));
        }
        x->out_fd = -1;
        return 0;
    default:
        return 0;
    }
}

static int unpack(struct restore *x, int fd, uint64_t size_hint, fota_backup_progress_cb progress,
                  void *ud, struct fota_backup_reader *rd)
{
    uint8_t *buf = fota_xmalloc(READ_BUF);
    uint64_t done = 0;
    int rc = 0;

    for (;;) {
        ssize_t n = read(fd, buf, READ_BUF);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = seterr(x, FOTA_EIO, "cannot read the backup (%s)", strerror(errno));
            break;
        }
        if (n == 0) {
            rc = fota_backup_reader_finish(rd);
            break;
        }
        done += (uint64_t)n;
        rc = fota_backup_reader_feed(rd, buf, (size_t)n);
        if (rc)
            break;
        if (progress) {
            const struct fota_backup_manifest *m = fota_backup_reader_manifest(rd);
            progress(ud, "restore", done, size_hint ? size_hint : m ? m->archive_bytes
                                                                    : 0);
        }
    }
    free(buf);
    /* The reader's reason, unless the callback wrote its own. */
    if (rc && strcmp(fota_backup_reader_error(rd), "stopped") != 0 &&
        fota_backup_reader_error(rd)[0])
        seterr(x, rc, "%s", fota_backup_reader_error(rd));
    return rc;
}

/* --------------------------------------------------- the database check */

static int cmp_hash(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int check_counts(struct restore *x, sqlite3 *db, const struct fota_backup_manifest *m)
{
    char sql[96];

    for (size_t i = 0; i < fota_backup_count_ntables; i++) {
        const struct fota_backup_count_table *c = &fota_backup_count_tables[i];
        int64_t want = fota_backup_manifest_count(m, c->name), have = -1;
        sqlite3_stmt *st = NULL;
        if (want < 0)
            continue;
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", c->table);
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            have = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        if (have != want)
            return seterr(x, FOTA_EPROTO, "the database has %lld %s, the manifest says %lld",
                          (long long)have, c->name, (long long)want);
    }
    return 0;
}

/* Every blob a release file names is in the archive. */
static int check_refs(struct restore *x, sqlite3 *db, const struct fota_backup_manifest *m)
{
    const char **have = fota_xcalloc(m->nmembers + 1, sizeof(*have));
    size_t n = 0;
    sqlite3_stmt *st = NULL;
    int rc = 0, s;

    for (size_t i = 0; i < m->nmembers; i++)
        if (m->members[i].kind == FOTA_BACKUP_BLOB)
            have[n++] = m->members[i].sha256;
    qsort(have, n, sizeof(*have), cmp_hash);
    if (sqlite3_prepare_v2(db, "SELECT DISTINCT sha256 FROM rom_files", -1, &st, NULL) !=
        SQLITE_OK) {
        rc = seterr(x, FOTA_EPROTO, "the database has no release files table (%s)",
                    sqlite3_errmsg(db));
        goto out;
    }
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *h = (const char *)sqlite3_column_text(st, 0);
        if (!h || !bsearch(&h, have, n, sizeof(*have), cmp_hash)) {
            rc = seterr(x, FOTA_EPROTO, "the database names blob %.70s, which the backup does "
                                        "not hold",
                        h ? h : "(null)");
            goto out;
        }
    }
    if (s != SQLITE_DONE)
        rc = seterr(x, FOTA_EIO, "database: %s", sqlite3_errmsg(db));
out:
    sqlite3_finalize(st);
    free(have);
    return rc;
}

static int check_db(struct restore *x, const struct fota_backup_manifest *m)
{
    char path[FOTA_BACKUP_PATH_MAX + 16], err[256];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    struct fota_store *store = NULL;
    int rc = 0;

    snprintf(path, sizeof(path), "%s/fota.db", x->stage);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        rc = seterr(x, FOTA_EPROTO, "fota.db does not open (%s)", sqlite3_errmsg(db));
        goto out;
    }
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check(1)", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW ||
        strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0) {
        rc = seterr(x, FOTA_EPROTO, "fota.db fails SQLite's integrity check (%s)",
                    st && sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0)
                                                     : sqlite3_errmsg(db));
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW || sqlite3_column_int(st, 0) != m->schema_version) {
        rc = seterr(x, FOTA_EPROTO, "fota.db's schema version is not the manifest's (%d)",
                    m->schema_version);
        goto out;
    }
    if ((rc = check_counts(x, db, m)) != 0 || (rc = check_refs(x, db, m)) != 0)
        goto out;
    sqlite3_finalize(st);
    st = NULL;
    sqlite3_close(db);
    db = NULL;
    /* Opened as fotad will open it: a schema newer than this fotad's is
     * refused now, an older one is migrated now. */
    if (fota_store_sqlite_open(path, NULL, NULL, &store, err, sizeof(err)) != 0)
        rc = seterr(x, FOTA_EPROTO, "fota.db: %s", err);
    fota_store_close(store);
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

static int check_owner_key(struct restore *x)
{
    char path[FOTA_BACKUP_PATH_MAX + 16], buf[FOTA_BACKUP_OWNER_MAX];
    int fd;
    ssize_t n;

    snprintf(path, sizeof(path), "%s/owner.key", x->stage);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;   /* none in the archive: fotad makes a new admin key */
    n = read(fd, buf, sizeof(buf));
    close(fd);
    for (ssize_t i = 0; i < 40; i++)
        if (n < 40 || !((buf[i] >= '0' && buf[i] <= '9') || (buf[i] >= 'a' && buf[i] <= 'f') ||
                        (buf[i] >= 'A' && buf[i] <= 'F')))
            return seterr(x, FOTA_EPROTO, "owner.key does not hold an admin key");
    return 0;
}

/* ------------------------------------------------------ into place */

/* fsync of every directory of the stage (files were synced as written),
 * and their owner when root restores into the service user's dir. */
static int settle(struct restore *x, const char *dir)
{
    char path[FOTA_BACKUP_PATH_MAX + 100];
    DIR *d = opendir(dir);
    struct dirent *e;
    struct stat st;
    int rc = 0;

    if (!d)
        return seterr(x, FOTA_EIO, "cannot read %s (%s)", dir, strerror(errno));
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (lstat(path, &st) != 0)
            rc = seterr(x, FOTA_EIO, "cannot stat %s (%s)", path, strerror(errno));
        else if (x->chown_to && lchown(path, x->uid, x->gid) != 0)
            rc = seterr(x, FOTA_EIO, "cannot give %s to uid %u (%s)", path, (unsigned)x->uid,
                        strerror(errno));
        else if (S_ISDIR(st.st_mode))
            rc = settle(x, path);
    }
    closedir(d);
    if (rc == 0 && fsync_path(dir) != 0)
        rc = seterr(x, FOTA_EIO, "cannot fsync %s (%s)", dir, strerror(errno));
    return rc;
}

/* --force: fotad's files move to DATA/replaced-<UTC time>/. */
static int move_aside(struct restore *x)
{
    char aside[FOTA_BACKUP_PATH_MAX + 64], from[FOTA_BACKUP_PATH_MAX + 32];
    char to[FOTA_BACKUP_PATH_MAX + 100], stamp[32];
    time_t now = (time_t)fota_clock_wall_s();
    struct tm tm;
    int made = 0;

    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    snprintf(aside, sizeof(aside), "%s/replaced-%s", x->dir, stamp);
    for (size_t i = 0; i < NFOTAD_FILES; i++) {
        snprintf(from, sizeof(from), "%s/%s", x->dir, fotad_files[i]);
        if (access(from, F_OK) != 0)
            continue;
        if (!made && mkdir(aside, 0700) != 0)
            return seterr(x, FOTA_EIO, "cannot make %s (%s)", aside, strerror(errno));
        made = 1;
        snprintf(to, sizeof(to), "%s/%s", aside, fotad_files[i]);
        if (rename(from, to) != 0)
            return seterr(x, FOTA_EIO, "cannot move %s aside (%s); %s holds what was moved",
                          from, strerror(errno), aside);
    }
    if (made && (fsync_path(aside) != 0 || fsync_path(x->dir) != 0))
        return seterr(x, FOTA_EIO, "cannot fsync %s (%s)", x->dir, strerror(errno));
    return 0;
}

/* The stage's files into the data dir, the database last. */
static int install(struct restore *x)
{
    static const char *const order[] = {
        "blobs",
        "secret.key",
        "owner.key",
        "fota.db-wal",
        "fota.db-shm",
        "fota.db",
    };
    char from[FOTA_BACKUP_PATH_MAX + 32], to[FOTA_BACKUP_PATH_MAX + 32];

    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        snprintf(from, sizeof(from), "%s/%s", x->stage, order[i]);
        snprintf(to, sizeof(to), "%s/%s", x->dir, order[i]);
        if (access(from, F_OK) != 0)
            continue;
        if (rename(from, to) != 0)
            return seterr(x, FOTA_EIO, "cannot move %s into %s (%s): %s now holds part of the "
                                       "backup; restore again with --force",
                          order[i], x->dir,
                          strerror(errno), x->dir);
    }
    if (fsync_path(x->dir) != 0)
        return seterr(x, FOTA_EIO, "cannot fsync %s (%s)", x->dir, strerror(errno));
    rmdir(x->stage);
    x->stage[0] = '\0';
    return 0;
}

int fota_backup_restore(int fd, uint64_t size_hint, const char *data_dir, int force,
                        fota_backup_progress_cb progress, void *ud,
                        struct fota_backup_manifest *summary, char *err, size_t errlen)
{
    struct restore x = { .dir = data_dir, .lock_fd = -1, .out_fd = -1, .err = err, .errlen = errlen };
    struct fota_backup_reader rd;
    char list[200];
    int rc, nonempty;

    err[0] = '\0';
    memset(summary, 0, sizeof(*summary));
    fota_backup_reader_init(&rd, on_member, &x);
    if ((rc = lock_dir(&x)) != 0 || (rc = dir_contents(&x, list, sizeof(list), &nonempty)) != 0)
        goto fail;
    if (nonempty && !force) {
        rc = seterr(&x, FOTA_EEXIST, "%s is not empty (%s): restore into a new directory, or "
                                     "give --force to move fotad's files there aside (into %s/replaced-TIME/)",
                    data_dir, list, data_dir);
        goto fail;
    }
    if ((rc = make_stage(&x)) != 0 || (rc = unpack(&x, fd, size_hint, progress, ud, &rd)) != 0 ||
        (rc = check_db(&x, &rd.man)) != 0 || (rc = check_owner_key(&x)) != 0 ||
        (rc = settle(&x, x.stage)) != 0 || (force && (rc = move_aside(&x)) != 0))
        goto fail;
    *summary = rd.man;
    summary->members = NULL;
    rc = install(&x);
    if (rc)
        goto out;   /* files already moved stay: the message says what to do */
    if (x.chown_to && fchown(x.lock_fd, x.uid, x.gid) != 0)
        rc = seterr(&x, FOTA_EIO, "cannot give %s/fotad.lock to uid %u (%s)", data_dir,
                    (unsigned)x.uid, strerror(errno));
    goto out;
fail:
    undo(&x);
    {
        size_t n = strlen(err);
        if (n + 40 < errlen && rc != FOTA_EBUSY)
            snprintf(err + n, errlen - n, " (nothing was written to %s)", data_dir);
    }
out:
    if (x.lock_fd >= 0)
        close(x.lock_fd);
    fota_backup_reader_cleanup(&rd);
    return rc;
}
