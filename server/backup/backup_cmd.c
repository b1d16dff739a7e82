/* backup_cmd.c - `fotad backup [-c FILE] [--data DIR] FILE|-` and
 * `fotad restore [-c FILE] [--data DIR] [--force] FILE|-`: the command
 * lines, the data dir from fotad's own configuration (the file given with
 * -c, then --data), a progress line on a terminal, the atomic write of the
 * archive (a temp file beside FILE, fsync, rename, fsync of the directory)
 * and the summary. */
#include "backup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backup_int.h"
#include "clock.h"
#include "fota_str.h"

struct cmd {
    const char *name;           /* "backup" / "restore" */
    const char *config, *data, *file;
    int force, progress, help;
};

struct bar {
    int on;
    int64_t last_ms;
    int drawn;
};

static void usage(FILE *f, const char *name)
{
    if (strcmp(name, "backup") == 0)
        fprintf(f, "usage: fotad backup [-c FILE] [--data DIR] [--no-progress] ARCHIVE|-\n"
                   "Writes a consistent backup of fotad's data dir (database, firmware, server\n"
                   "secret, admin key) to ARCHIVE (- for standard output), also while fotad\n"
                   "runs on it. The archive is as secret as the data dir. See docs/backup.md.\n");
    else
        fprintf(f, "usage: fotad restore [-c FILE] [--data DIR] [--force] [--no-progress] "
                   "ARCHIVE|-\n"
                   "Restores a backup into the data dir, which must be new or empty (--force: "
                   "fotad's\nfiles there are moved into DIR/replaced-TIME/). No fotad may run on "
                   "it. Every\nmember is verified before anything is written. See "
                   "docs/backup.md.\n");
}

static int parse(struct cmd *c, int argc, char **argv)
{
    c->name = argv[0];
    c->progress = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **val = NULL;
        if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0)
            val = &c->config;
        else if (strcmp(a, "--data") == 0)
            val = &c->data;
        else if (strncmp(a, "--config=", 9) == 0)
            c->config = a + 9;
        else if (strncmp(a, "--data=", 7) == 0)
            c->data = a + 7;
        else if (strcmp(a, "--force") == 0 && strcmp(c->name, "restore") == 0)
            c->force = 1;
        else if (strcmp(a, "--no-progress") == 0)
            c->progress = 0;
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
            c->help = 1;
        else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "fotad %s: unknown option %s\n", c->name, a);
            return -1;
        } else if (c->file) {
            fprintf(stderr, "fotad %s: one archive at a time (%s and %s)\n", c->name, c->file, a);
            return -1;
        } else {
            c->file = a;
        }
        if (val) {
            if (i + 1 >= argc) {
                fprintf(stderr, "fotad %s: %s needs a value\n", c->name, a);
                return -1;
            }
            *val = argv[++i];
        }
    }
    if (!c->help && !c->file) {
        fprintf(stderr, "fotad %s: which archive? (- for standard %s)\n", c->name,
                strcmp(c->name, "backup") == 0 ? "output" : "input");
        return -1;
    }
    return 0;
}

/* The data dir: fotad's default, its config file, --data (as fotad). */
static int data_dir(const struct cmd *c, const struct fota_conf_set *set,
                    const struct fota_config *conf)
{
    char err[512];
    fota_config_defaults(set);
    if (c->config && fota_config_load_file(set, c->config, err, sizeof(err)) != 0) {
        fprintf(stderr, "fotad %s: %s\n", c->name, err);
        return -1;
    }
    if (c->data && fota_config_set(set, "data", c->data, err, sizeof(err)) != 0) {
        fprintf(stderr, "fotad %s: %s\n", c->name, err);
        return -1;
    }
    if (!conf->data_dir[0]) {
        fprintf(stderr, "fotad %s: no data dir\n", c->name);
        return -1;
    }
    return 0;
}

static void progress(void *ud, const char *what, uint64_t done, uint64_t total)
{
    struct bar *b = ud;
    int64_t now = fota_clock_mono_ms();
    char a[32], t[32];

    if (!b->on || (now - b->last_ms < 100 && done < total))
        return;
    b->last_ms = now;
    if (strcmp(what, "database") == 0 || strcmp(what, "blobs") == 0) {
        fprintf(stderr, "\r%-8s %3d%% (%llu of %llu %s)   ", what,
                total ? (int)(done * 100 / total) : 100, (unsigned long long)done,
                (unsigned long long)total, what[0] == 'd' ? "pages" : "checked");
    } else {
        fota_backup_human(done, a, sizeof(a));
        fota_backup_human(total, t, sizeof(t));
        fprintf(stderr, "\r%-8s %3d%% (%s of %s)          ", what,
                total ? (int)(done * 100 / total) : 0, a, t);
    }
    b->drawn = 1;
}

static void bar_end(struct bar *b)
{
    if (b->drawn)
        fprintf(stderr, "\r%60s\r", "");
    b->drawn = 0;
}

static void counts_line(const struct fota_backup_manifest *m, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < m->ncounts && used < cap; i++) {
        int n = snprintf(out + used, cap - used, "%s%s %lld", i ? ", " : "", m->counts[i].name,
                         (long long)m->counts[i].n);
        used += n > 0 ? (size_t)n : 0;
    }
}

static int fsync_dir_of(const char *file)
{
    char dir[FOTA_BACKUP_PATH_MAX];
    fota_str_copy_dir(dir, sizeof(dir), file);
    int fd = open(dir, O_RDONLY | O_CLOEXEC), rc = -1;
    if (fd >= 0) {
        rc = fsync(fd);
        close(fd);
    }
    return rc;
}

static int run_backup(const struct cmd *c, const char *data)
{
    struct fota_backup_snap *snap = NULL;
    struct bar bar = { .on = c->progress && isatty(2) };
    char err[640], tmp[FOTA_BACKUP_PATH_MAX + 16] = "", size[32], counts[400];
    int to_stdout = strcmp(c->file, "-") == 0, fd = 1, rc;
    int64_t t0 = fota_clock_mono_ms();

    if (to_stdout && isatty(1)) {
        fprintf(stderr, "fotad backup: standard output is a terminal; redirect it or name a "
                        "file\n");
        return 2;
    }
    if (!to_stdout) {
        if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", c->file) >= sizeof(tmp)) {
            fprintf(stderr, "fotad backup: %s: name too long\n", c->file);
            return 2;
        }
        fd = mkstemp(tmp);
        if (fd < 0) {
            fprintf(stderr, "fotad backup: cannot write %s (%s)\n", c->file, strerror(errno));
            return 1;
        }
        fchmod(fd, 0600);   /* as secret as the data dir */
    }
    rc = fota_backup_snap_take(data, "fotad backup", NULL, progress, &bar, &snap, err,
                               sizeof(err));
    if (rc == 0)
        rc = fota_backup_snap_write(snap, fd, progress, &bar, err, sizeof(err));
    if (rc == 0 && !to_stdout && (fsync(fd) != 0 || close(fd) != 0)) {
        fd = -1;
        rc = FOTA_EIO;
        snprintf(err, sizeof(err), "cannot write %s (%s)", c->file, strerror(errno));
    } else if (!to_stdout && rc == 0) {
        fd = -1;
    }
    if (rc == 0 && !to_stdout && (rename(tmp, c->file) != 0 || fsync_dir_of(c->file) != 0)) {
        rc = FOTA_EIO;
        snprintf(err, sizeof(err), "cannot put %s in place (%s)", c->file, strerror(errno));
    }
    bar_end(&bar);
    if (!to_stdout && fd >= 0)
        close(fd);
    if (rc) {
        if (tmp[0])
            unlink(tmp);
        fprintf(stderr, "fotad backup: %s\n", err);
        fota_backup_snap_free(snap);
        return 1;
    }
    fota_backup_human(snap->archive_bytes, size, sizeof(size));
    counts_line(&snap->info, counts, sizeof(counts));
    fprintf(to_stdout ? stderr : stdout,
            "fotad backup: wrote %s (%s) from %s in %.2f s: %s; %zu blobs, database schema %d\n",
            to_stdout ? "standard output" : c->file, size, data,
            (double)(fota_clock_mono_ms() - t0) / 1000.0, counts, snap->nblobs,
            snap->info.schema_version);
    fota_backup_snap_free(snap);
    return 0;
}

static int run_restore(const struct cmd *c, const char *data)
{
    struct fota_backup_manifest m;
    struct bar bar = { .on = c->progress && isatty(2) };
    char err[640], counts[400], when[32];
    int from_stdin = strcmp(c->file, "-") == 0, fd = 0, rc;
    uint64_t size = 0;
    struct stat st;
    int64_t t0 = fota_clock_mono_ms();

    if (from_stdin && isatty(0)) {
        fprintf(stderr, "fotad restore: standard input is a terminal; redirect it or name a "
                        "file\n");
        return 2;
    }
    if (!from_stdin) {
        fd = open(c->file, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            fprintf(stderr, "fotad restore: cannot read %s (%s)\n", c->file, strerror(errno));
            return 1;
        }
    }
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
        size = (uint64_t)st.st_size;
    rc = fota_backup_restore(fd, size, data, c->force, progress, &bar, &m, err, sizeof(err));
    bar_end(&bar);
    if (!from_stdin)
        close(fd);
    if (rc) {
        fprintf(stderr, "fotad restore: %s\n", err);
        return 1;
    }
    time_t t = (time_t)m.created;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
    counts_line(&m, counts, sizeof(counts));
    printf("fotad restore: restored %s into %s in %.2f s: %s (backup taken %s by fotad %s, "
           "schema %d)\n",
           from_stdin ? "standard input" : c->file, data,
           (double)(fota_clock_mono_ms() - t0) / 1000.0, counts, when, m.fotad_version,
           m.schema_version);
    return 0;
}

int fota_backup_cmd_main(int argc, char **argv, const struct fota_conf_set *set,
                         const struct fota_config *conf)
{
    struct cmd c;

    memset(&c, 0, sizeof(c));
    if (parse(&c, argc, argv) != 0) {
        usage(stderr, argv[0]);
        return 2;
    }
    if (c.help) {
        usage(stdout, argv[0]);
        return 0;
    }
    if (data_dir(&c, set, conf) != 0)
        return 2;
    return strcmp(c.name, "backup") == 0 ? run_backup(&c, conf->data_dir)
                                         : run_restore(&c, conf->data_dir);
}
