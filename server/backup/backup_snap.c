/* backup_snap.c - a consistent snapshot of a data dir for the backup
 * archive: the database copied with SQLite's online backup API in steps,
 * inside one read transaction of a connection of our own (WAL: fotad's
 * writers go on, and every step reads the same moment, so no step ever
 * restarts); the blobs that moment names, hard-linked into the snapshot's
 * directory and each hashed against its name; the server secret and the
 * admin key file; the manifest. */
#include "backup_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "fota_str.h"
#include "hex.h"
#include "xmalloc.h"

#define PAGES_PER_STEP 1024        /* 4 MiB of 4 KiB pages per backup step */
#define LINK_TRIES 3           /* snapshots retried when a blob vanished meanwhile */
#define HASH_BUF (256u << 10)

/* A blob the snapshot's database names. */
struct ref {
    char hash[65];
    int64_t size;
    char where[200];               /* "user1.bin of release v1.1 of product plug" */
};

struct take {
    const char *data_dir;
    const int *cancel;
    fota_backup_progress_cb progress;
    void *ud;
    char *err;
    size_t errlen;
    struct fota_backup_snap *s;
    struct ref *refs;
    size_t nrefs;
};

static int seterr(struct take *t, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int seterr(struct take *t, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->err, t->errlen, fmt, ap);
    va_end(ap);
    return code;
}

static int cancelled(const struct take *t)
{
    return t->cancel && __atomic_load_n(t->cancel, __ATOMIC_ACQUIRE);
}

void fota_backup_human(uint64_t n, char *out, size_t cap)
{
    if (n >= (10ull << 30))
        snprintf(out, cap, "%.1f GiB", (double)n / (double)(1ull << 30));
    else if (n >= (10ull << 20))
        snprintf(out, cap, "%.1f MiB", (double)n / (double)(1ull << 20));
    else if (n >= (10ull << 10))
        snprintf(out, cap, "%.1f KiB", (double)n / 1024.0);
    else
        snprintf(out, cap, "%llu B", (unsigned long long)n);
}

/* ------------------------------------------------------- the directory */

void fota_backup_remove_tree(const char *dir)
{
    char path[FOTA_BACKUP_PATH_MAX + 100];
    DIR *d = opendir(dir);
    struct dirent *e;
    struct stat st;

    if (d) {
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
                fota_backup_remove_tree(path);
            else
                unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* Removes DATA/backup.tmp-* left by a backup that died: one whose lock
 * nobody holds. */
static void remove_stale(const char *data_dir)
{
    char path[FOTA_BACKUP_PATH_MAX], lock[FOTA_BACKUP_PATH_MAX + 8];
    DIR *d = opendir(data_dir);
    struct dirent *e;

    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "backup.tmp-", 11) != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", data_dir, e->d_name);
        snprintf(lock, sizeof(lock), "%s/lock", path);
        int fd = open(lock, O_RDWR | O_CLOEXEC);
        if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0) {
            close(fd);     /* another backup's */
            continue;
        }
        fota_backup_remove_tree(path);
        if (fd >= 0)
            close(fd);
    }
    closedir(d);
}

static int make_dir(struct take *t)
{
    struct fota_backup_snap *s = t->s;
    char path[FOTA_BACKUP_PATH_MAX + 8];

    if ((size_t)snprintf(s->tmp, sizeof(s->tmp), "%s/backup.tmp-XXXXXX", t->data_dir) >=
        sizeof(s->tmp) - 80)
        return seterr(t, FOTA_EINVAL, "the data dir's path is too long");
    if (!mkdtemp(s->tmp)) {
        int e = errno;
        s->tmp[0] = '\0';
        return seterr(t, FOTA_EIO, "cannot make a snapshot directory in %s (%s)%s", t->data_dir,
                      strerror(e), e == EACCES ? ": run as the data dir's owner or root" : "");
    }
    snprintf(path, sizeof(path), "%s/lock", s->tmp);
    s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lock_fd < 0 || flock(s->lock_fd, LOCK_EX) != 0)
        return seterr(t, FOTA_EIO, "cannot lock %s (%s)", path, strerror(errno));
    snprintf(path, sizeof(path), "%s/b", s->tmp);
    if (mkdir(path, 0700) != 0)
        return seterr(t, FOTA_EIO, "cannot make %s (%s)", path, strerror(errno));
    return 0;
}

/* ------------------------------------------------------------ the keys */

/* Reads a small file whole. 0, FOTA_ENOENT, FOTA_ETOOBIG, FOTA_EIO. */
static int read_small(const char *path, uint8_t *buf, size_t cap, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? FOTA_ENOENT : FOTA_EIO;
    ssize_t n = read(fd, buf, cap);
    uint8_t extra;
    int more = n >= 0 && (size_t)n == cap && read(fd, &extra, 1) == 1;
    close(fd);
    if (n < 0)
        return FOTA_EIO;
    if (more)
        return FOTA_ETOOBIG;
    *len = (size_t)n;
    return 0;
}

static int read_keys(struct take *t)
{
    struct fota_backup_snap *s = t->s;
    char path[FOTA_BACKUP_PATH_MAX];
    size_t n = 0;

    snprintf(path, sizeof(path), "%s/secret.key", t->data_dir);
    int rc = read_small(path, s->secret, sizeof(s->secret), &n);
    if (rc == FOTA_ENOENT)
        return seterr(t, rc, "%s is missing: is %s a fotad data dir?", path, t->data_dir);
    if (rc == FOTA_EIO)
        return seterr(t, rc, "cannot read %s (%s)", path, strerror(errno));
    if (rc || n != sizeof(s->secret))
        return seterr(t, FOTA_EINVAL, "%s is not a server secret (%d bytes)", path,
                      (int)sizeof(s->secret));
    snprintf(path, sizeof(path), "%s/owner.key", t->data_dir);
    rc = read_small(path, s->owner, sizeof(s->owner), &s->owner_len);
    if (rc == FOTA_ENOENT) {
        s->owner_len = 0;   /* fotad makes a new admin key at its next start */
        return 0;
    }
    if (rc == 0 && s->owner_len < 40)
        rc = FOTA_EINVAL;
    if (rc)
        return seterr(t, rc, "cannot read %s as an admin key file (%s)", path,
                      rc == FOTA_EIO ? strerror(errno) : "not a key");
    return 0;
}

/* ------------------------------------------------------- the database */

static int sql_fail(struct take *t, sqlite3 *db, const char *what)
{
    return seterr(t, FOTA_EIO, "database %s: %s", what, db ? sqlite3_errmsg(db) : "no memory");
}

static int exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

/* The first column of the first row of sql as an integer; -1 on error. */
static int64_t query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int table_exists(sqlite3 *db, const char *name)
{
    sqlite3_stmt *st = NULL;
    int yes = 0;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        yes = sqlite3_step(st) == SQLITE_ROW;
    }
    sqlite3_finalize(st);
    return yes;
}

static int read_counts(struct take *t, sqlite3 *db)
{
    struct fota_backup_manifest *m = &t->s->info;
    char sql[96];

    m->ncounts = 0;
    for (size_t i = 0; i < fota_backup_count_ntables; i++) {
        const struct fota_backup_count_table *c = &fota_backup_count_tables[i];

        if (!table_exists(db, c->table))
            continue;
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", c->table);
        int64_t n = query_int(db, sql);
        if (n < 0)
            return sql_fail(t, db, "count");
        fota_str_copy(m->counts[m->ncounts].name, sizeof(m->counts[0].name), c->name);
        m->counts[m->ncounts++].n = n;
    }
    m->schema_version = (int)query_int(db, "PRAGMA user_version");
    return 0;
}

/* Every blob the release files name, with one file that names it. */
static int read_refs(struct take *t, sqlite3 *db)
{
    static const char sql[] =
        "SELECT f.sha256, MIN(f.size), MAX(f.size), f.name, r.version, p.name"
        " FROM rom_files f JOIN roms r ON r.id = f.rom_id JOIN products p ON p.id = r.product_id"
        " GROUP BY f.sha256 ORDER BY f.sha256";
    sqlite3_stmt *st = NULL;
    size_t cap = 0;
    int rc;

    free(t->refs);
    t->refs = NULL;
    t->nrefs = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return sql_fail(t, db, "blob list");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (t->nrefs == cap) {
            cap = cap ? cap * 2 : 64;
            t->refs = fota_xreallocarray(t->refs, cap, sizeof(*t->refs));
        }
        struct ref *r = &t->refs[t->nrefs++];
        const char *h = (const char *)sqlite3_column_text(st, 0);
        fota_str_copy(r->hash, sizeof(r->hash), h ? h : "");
        r->size = sqlite3_column_int64(st, 2);
        snprintf(r->where, sizeof(r->where), "%.60s of release %.40s of product %.60s",
                 (const char *)sqlite3_column_text(st, 3), (const char *)sqlite3_column_text(st, 4),
                 (const char *)sqlite3_column_text(st, 5));
        char name[FOTA_BACKUP_NAME_MAX];
        snprintf(name, sizeof(name), "blobs/sha256/%.2s/%.70s", r->hash, r->hash);
        if (fota_backup_name_kind(name, NULL) != FOTA_BACKUP_BLOB) {
            sqlite3_finalize(st);
            return seterr(t, FOTA_EINVAL, "the database names a blob \"%.70s\" (%s) that is not "
                                          "a SHA-256",
                          r->hash, r->where);
        }
        if (sqlite3_column_int64(st, 1) != r->size) {
            sqlite3_finalize(st);
            return seterr(t, FOTA_EINVAL, "the database gives blob %s two sizes (%s)", r->hash,
                          r->where);
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : sql_fail(t, db, "blob list");
}

static void blob_src(const struct take *t, const char *hash, char *out, size_t cap)
{
    snprintf(out, cap, "%s/blobs/sha256/%.2s/%s", t->data_dir, hash, hash);
}

static void blob_link(const struct take *t, const char *hash, char *out, size_t cap)
{
    snprintf(out, cap, "%s/b/%s", t->s->tmp, hash);
}

/* Hard-links every named blob into the snapshot (same file system: the
 * snapshot lives in the data dir). FOTA_ENOENT when one is gone: a release
 * deleted after the snapshot's moment, or a damaged data dir. Where links
 * are refused (another file system, protected_hardlinks), the blob is read
 * from its place. */
static int link_blobs(struct take *t, size_t *missing)
{
    char from[FOTA_BACKUP_PATH_MAX + 100], to[FOTA_BACKUP_PATH_MAX + 100];

    for (size_t i = 0; i < t->nrefs; i++) {
        blob_src(t, t->refs[i].hash, from, sizeof(from));
        blob_link(t, t->refs[i].hash, to, sizeof(to));
        if (link(from, to) == 0 || errno == EEXIST)
            continue;
        if (errno == ENOENT) {
            *missing = i;
            return FOTA_ENOENT;
        }
        if (errno != EXDEV && errno != EPERM && errno != EMLINK)
            return seterr(t, FOTA_EIO, "cannot link %s into the snapshot (%s)", from,
                          strerror(errno));
        if (access(from, R_OK) != 0)
            return seterr(t, FOTA_EIO, "cannot read %s (%s)", from, strerror(errno));
        if (symlink(from, to) != 0)
            return seterr(t, FOTA_EIO, "cannot reference %s from the snapshot (%s)", from,
                          strerror(errno));
    }
    return 0;
}

static void unlink_blobs(struct take *t)
{
    char to[FOTA_BACKUP_PATH_MAX + 100];
    for (size_t i = 0; i < t->nrefs; i++) {
        blob_link(t, t->refs[i].hash, to, sizeof(to));
        unlink(to);
    }
}

/* The copy, in steps, while src holds its read transaction. */
static int copy_db(struct take *t, sqlite3 *src)
{
    char path[FOTA_BACKUP_PATH_MAX + 16];
    sqlite3 *dst = NULL;
    sqlite3_backup *b;
    int rc = 0, step;
    int64_t busy_until = 0;

    snprintf(path, sizeof(path), "%s/fota.db", t->s->tmp);
    unlink(path);
    if (sqlite3_open_v2(path, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        rc = sql_fail(t, dst, "snapshot file");
        goto out;
    }
    b = sqlite3_backup_init(dst, "main", src, "main");
    if (!b) {
        rc = sql_fail(t, dst, "backup");
        goto out;
    }
    for (;;) {
        step = sqlite3_backup_step(b, PAGES_PER_STEP);
        if (t->progress) {
            int total = sqlite3_backup_pagecount(b);
            t->progress(t->ud, "database", (uint64_t)(total - sqlite3_backup_remaining(b)),
                        (uint64_t)total);
        }
        if (step == SQLITE_DONE || cancelled(t))
            break;
        if (step == SQLITE_OK) {
            busy_until = 0;
            continue;
        }
        if (step != SQLITE_BUSY && step != SQLITE_LOCKED)
            break;
        /* Only the destination could be locked, and nobody else opens it:
         * retried briefly all the same, as SQLite's busy handler would. */
        int64_t now = fota_clock_mono_ms();
        if (!busy_until)
            busy_until = now + 5000;
        if (now >= busy_until)
            break;
        sqlite3_sleep(10);
    }
    sqlite3_backup_finish(b);
    if (cancelled(t))
        rc = seterr(t, FOTA_ECLOSED, "cancelled");
    else if (step != SQLITE_DONE)
        rc = seterr(t, FOTA_EIO, "database copy: %s", sqlite3_errstr(step));
    else if (sqlite3_errcode(dst) != SQLITE_OK)
        rc = sql_fail(t, dst, "copy");
out:
    sqlite3_close(dst);
    return rc;
}

/* One attempt: the moment (read transaction), its counts and blobs, the
 * links, the copy. FOTA_ENOENT (err set) when a named blob is gone. */
static int take_db(struct take *t)
{
    char path[FOTA_BACKUP_PATH_MAX];
    sqlite3 *src = NULL;
    size_t missing = 0;
    int rc;

    snprintf(path, sizeof(path), "%s/fota.db", t->data_dir);
    if (access(path, R_OK) != 0)
        return seterr(t, FOTA_ENOENT, "cannot read %s (%s): is %s a fotad data dir?", path,
                      strerror(errno), t->data_dir);
    if (sqlite3_open_v2(path, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        rc = sql_fail(t, src, "open");
        goto out;
    }
    sqlite3_busy_timeout(src, 5000);
    /* The read transaction starts at the first read and fixes the moment
     * every query and backup step below sees. */
    if (exec(src, "BEGIN") != 0 || query_int(src, "SELECT count(*) FROM sqlite_schema") < 0) {
        rc = sql_fail(t, src, "read transaction");
        goto out;
    }
    if (!table_exists(src, "rom_files")) {
        rc = seterr(t, FOTA_EINVAL, "%s is not a fotad database", path);
        goto out;
    }
    if ((rc = read_counts(t, src)) != 0 || (rc = read_refs(t, src)) != 0)
        goto out;
    rc = link_blobs(t, &missing);
    if (rc == FOTA_ENOENT) {
        char from[FOTA_BACKUP_PATH_MAX + 100];
        blob_src(t, t->refs[missing].hash, from, sizeof(from));
        seterr(t, rc, "blob %s (%s) is missing from the data dir", from, t->refs[missing].where);
        unlink_blobs(t);
    }
    if (rc == 0)
        rc = copy_db(t, src);
out:
    if (src) {
        exec(src, "COMMIT");
        sqlite3_close(src);
    }
    return rc;
}

/* ----------------------------------------------------------- verifying */

/* SHA-256 and size of a file. 0 or FOTA_EIO (errno set). */
static int hash_file(const char *path, uint8_t *buf, char hex[65], uint64_t *size)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = FOTA_EIO;
    ssize_t n;

    *size = 0;
    if (fd < 0 || !ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
        goto out;
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    while ((n = read(fd, buf, HASH_BUF)) > 0) {
        EVP_DigestUpdate(ctx, buf, (size_t)n);
        *size += (uint64_t)n;
    }
    if (n == 0 && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1) {
        fota_hex_encode(md, mdlen, hex);
        rc = 0;
    }
out:
    if (fd >= 0)
        close(fd);
    EVP_MD_CTX_free(ctx);
    return rc;
}

static int verify_blobs(struct take *t, uint8_t *buf)
{
    char path[FOTA_BACKUP_PATH_MAX + 100], hex[65];
    uint64_t size;

    for (size_t i = 0; i < t->nrefs; i++) {
        const struct ref *r = &t->refs[i];
        if (cancelled(t))
            return seterr(t, FOTA_ECLOSED, "cancelled");
        blob_link(t, r->hash, path, sizeof(path));
        if (hash_file(path, buf, hex, &size) != 0) {
            blob_src(t, r->hash, path, sizeof(path));
            return seterr(t, FOTA_EIO, "cannot read blob %s (%s): %s", path, r->where,
                          strerror(errno));
        }
        if (strcmp(hex, r->hash) != 0 || (int64_t)size != r->size) {
            char why[96];
            if ((int64_t)size != r->size)
                snprintf(why, sizeof(why), "%llu bytes, the release names %lld",
                         (unsigned long long)size, (long long)r->size);
            else
                snprintf(why, sizeof(why), "its bytes hash to %.16s..., not to its name", hex);
            blob_src(t, r->hash, path, sizeof(path));
            return seterr(t, FOTA_ECHECKSUM, "blob %s (%s) is damaged: %s; delete that release or "
                                             "upload it again, then back up",
                          path, r->where, why);
        }
        t->s->blob_bytes += size;
        if (t->progress)
            t->progress(t->ud, "blobs", i + 1, t->nrefs);
    }
    return 0;
}

/* ----------------------------------------------------------- the plan */

static struct fota_backup_item *add_item(struct fota_backup_snap *s, const char *name, int kind,
                                         uint64_t size, const char *sha256)
{
    struct fota_backup_item *it = &s->items[s->nitems++];
    fota_str_copy(it->name, sizeof(it->name), name);
    it->kind = kind;
    it->size = size;
    fota_str_copy(it->sha256, sizeof(it->sha256), sha256);
    return it;
}

static void hash_mem(const void *p, size_t n, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
    fota_hex_encode(md, len, hex);
}

static char *manifest_text(const struct fota_backup_snap *s, const char *source, size_t *len)
{
    json_t *counts = json_object(), *members = json_array();
    for (size_t i = 0; i < s->info.ncounts; i++)
        json_object_set_new(counts, s->info.counts[i].name, json_integer(s->info.counts[i].n));
    for (size_t i = 1; i < s->nitems; i++)
        json_array_append_new(members, json_pack("{s:s, s:I, s:s}", "name", s->items[i].name,
                                                 "size", (json_int_t)s->items[i].size, "sha256",
                                                 s->items[i].sha256));
    json_t *j = json_pack("{s:s, s:i, s:s, s:i, s:I, s:s, s:o, s:o}", "format",
                          FOTA_BACKUP_FORMAT, "format_version", FOTA_BACKUP_FORMAT_VERSION,
                          "fotad_version", FOTA_VERSION_STRING, "schema_version",
                          s->info.schema_version, "created", (json_int_t)s->info.created,
                          "source", source, "counts", counts, "members", members);
    char *text = j ? json_dumps(j, JSON_INDENT(1)) : NULL;
    json_decref(j);
    if (!text)
        return NULL;
    size_t n = strlen(text);
    char *out = fota_xmalloc(n + 2);
    memcpy(out, text, n);
    out[n++] = '\n';
    out[n] = '\0';
    free(text);
    *len = n;
    return out;
}

static int build_plan(struct take *t, uint8_t *buf, const char *source)
{
    struct fota_backup_snap *s = t->s;
    char hex[65], path[FOTA_BACKUP_PATH_MAX + 100];
    uint64_t size;

    s->items = fota_xcalloc(t->nrefs + 4, sizeof(*s->items));
    add_item(s, FOTA_BACKUP_MANIFEST, 0, 0, "");
    hash_mem(s->secret, sizeof(s->secret), hex);
    add_item(s, "secret.key", FOTA_BACKUP_SECRET, sizeof(s->secret), hex)->data = s->secret;
    if (s->owner_len) {
        hash_mem(s->owner, s->owner_len, hex);
        add_item(s, "owner.key", FOTA_BACKUP_OWNER, s->owner_len, hex)->data = s->owner;
    }
    snprintf(path, sizeof(path), "%s/fota.db", s->tmp);
    if (hash_file(path, buf, hex, &size) != 0)
        return seterr(t, FOTA_EIO, "cannot read the database's copy %s (%s)", path,
                      strerror(errno));
    s->db_bytes = size;
    add_item(s, "fota.db", FOTA_BACKUP_DB, size, hex)->path = fota_xstrdup(path);
    for (size_t i = 0; i < t->nrefs; i++) {
        char name[FOTA_BACKUP_NAME_MAX];
        snprintf(name, sizeof(name), "blobs/sha256/%.2s/%s", t->refs[i].hash, t->refs[i].hash);
        blob_link(t, t->refs[i].hash, path, sizeof(path));
        add_item(s, name, FOTA_BACKUP_BLOB, (uint64_t)t->refs[i].size, t->refs[i].hash)->path =
            fota_xstrdup(path);
    }
    s->nblobs = t->nrefs;
    s->manifest = manifest_text(s, source, &s->manifest_len);
    if (!s->manifest)
        return seterr(t, FOTA_EINVAL, "cannot encode the manifest (source \"%.60s\")", source);
    s->items[0].data = (const uint8_t *)s->manifest;
    s->items[0].size = s->manifest_len;
    hash_mem(s->manifest, s->manifest_len, s->items[0].sha256);
    s->archive_bytes = FOTA_TAR_END_BYTES;
    for (size_t i = 0; i < s->nitems; i++)
        s->archive_bytes += fota_tar_member_bytes(s->items[i].size);
    return 0;
}

/* -------------------------------------------------------------- entry */

int fota_backup_snap_take(const char *data_dir, const char *source, const int *cancel,
                          fota_backup_progress_cb progress, void *ud,
                          struct fota_backup_snap **out, char *err, size_t errlen)
{
    struct take t = { .data_dir = data_dir, .cancel = cancel, .progress = progress, .ud = ud, .err = err, .errlen = errlen };
    uint8_t *buf = NULL;
    int rc, tries = 0;
    int64_t t0;

    *out = NULL;
    err[0] = '\0';
    t.s = fota_xcalloc(1, sizeof(*t.s));
    t.s->lock_fd = -1;
    t.s->info.created = fota_clock_wall_s();
    remove_stale(data_dir);
    if ((rc = make_dir(&t)) != 0 || (rc = read_keys(&t)) != 0)
        goto out;
    t0 = fota_clock_mono_ms();
    do
        rc = take_db(&t);
    while (rc == FOTA_ENOENT && ++tries < LINK_TRIES && !cancelled(&t));
    if (rc)
        goto out;
    t.s->ms_db = fota_clock_mono_ms() - t0;
    t0 = fota_clock_mono_ms();
    buf = fota_xmalloc(HASH_BUF);
    if ((rc = verify_blobs(&t, buf)) != 0 || (rc = build_plan(&t, buf, source)) != 0)
        goto out;
    t.s->ms_verify = fota_clock_mono_ms() - t0;
out:
    free(buf);
    free(t.refs);
    if (rc) {
        fota_backup_snap_free(t.s);
        return rc;
    }
    *out = t.s;
    return 0;
}

void fota_backup_snap_free(struct fota_backup_snap *s)
{
    if (!s)
        return;
    if (s->tmp[0])
        fota_backup_remove_tree(s->tmp);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    for (size_t i = 0; i < s->nitems; i++)
        free(s->items[i].path);
    free(s->items);
    free(s->manifest);
    memset(s->secret, 0, sizeof(s->secret));
    free(s);
}

void fota_backup_snap_header(const struct fota_backup_snap *s, size_t i,
                             uint8_t hdr[FOTA_TAR_BLOCK])
{
    /* Names are ours (at most 80 bytes), created is >= 0: cannot fail. */
    fota_tar_header_make(hdr, s->items[i].name, s->items[i].size, 0600, s->info.created);
}
