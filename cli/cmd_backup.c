/* cmd_backup.c - `fotactl backup FILE`: the server's online backup
 * (GET /v1/backup, admin key) streamed into FILE. The archive is checked
 * as it arrives with fotad's own reader (server/backup/backup_format.h:
 * every member's size and SHA-256 against the manifest, the order, the
 * end), written to a temp file of mode 0600 beside FILE, fsynced and renamed
 * into place only when whole and verified; `-` writes it to standard output
 * (checked all the same; the exit status says whether it was whole). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backup_format.h"
#include "cmd.h"
#include "fota_str.h"
#include "out.h"

#define PATIENCE_S 1800   /* the server hashes every blob before its first byte */

struct sink {
    int fd;
    struct fota_backup_reader rd;
    uint64_t bytes;
    int werr;             /* errno of a failed write */
};

static int on_data(void *ud, const uint8_t *p, size_t n)
{
    struct sink *s = ud;
    if (fota_backup_reader_feed(&s->rd, p, n) != 0)
        return 1;
    s->bytes += n;
    while (n > 0) {
        ssize_t w = write(s->fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            s->werr = w < 0 ? errno : EIO;
            return 2;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int fsync_dir_of(const char *file)
{
    char dir[1024];
    int fd, rc = -1;

    fota_str_copy_dir(dir, sizeof(dir), file);
    fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        rc = fsync(fd);
        close(fd);
    }
    return rc;
}

static void human(uint64_t n, char *out, size_t cap)
{
    if (n >= (10ull << 20))
        snprintf(out, cap, "%.1f MiB", (double)n / (1024.0 * 1024.0));
    else if (n >= (10ull << 10))
        snprintf(out, cap, "%.1f KiB", (double)n / 1024.0);
    else
        snprintf(out, cap, "%" PRIu64 " B", n);
}

/* The result: a line, or with --json the manifest's facts. */
static int report(const struct fota_cli_ctx *c, const char *file, const struct sink *s)
{
    const struct fota_backup_manifest *m = fota_backup_reader_manifest(&s->rd);
    char size[32], when[32], counts[400] = "";
    size_t used = 0;
    time_t t = (time_t)m->created;
    struct tm tm;
    FILE *out = strcmp(file, "-") == 0 ? stderr : stdout;

    if (c->json) {
        json_t *cj = json_object();
        for (size_t i = 0; i < m->ncounts; i++)
            json_object_set_new(cj, m->counts[i].name, json_integer(m->counts[i].n));
        json_t *j = json_pack("{s:s, s:I, s:i, s:s, s:i, s:I, s:s, s:o, s:I, s:b}", "file", file,
                              "bytes", (json_int_t)s->bytes, "format_version",
                              m->format_version, "fotad_version", m->fotad_version,
                              "schema_version", m->schema_version, "created",
                              (json_int_t)m->created, "source", m->source, "counts", cj,
                              "members", (json_int_t)m->nmembers + 1, "verified", 1);
        if (!j)
            return fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "out of memory");
        fota_cli_out_json(out, j);
        json_decref(j);
        return 0;
    }
    for (size_t i = 0; i < m->ncounts && used < sizeof(counts); i++) {
        int n = snprintf(counts + used, sizeof(counts) - used, "%s%s %lld", i ? ", " : "",
                         m->counts[i].name, (long long)m->counts[i].n);
        used += n > 0 ? (size_t)n : 0;
    }
    human(s->bytes, size, sizeof(size));
    gmtime_r(&t, &tm);
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
    fprintf(out, "wrote %s (%s, %zu members, verified): %s; taken %s by fotad %s, schema %d\n",
            strcmp(file, "-") == 0 ? "standard output" : file, size, m->nmembers + 1, counts,
            when, m->fotad_version, m->schema_version);
    return 0;
}

int fota_cli_cmd_backup(struct fota_cli_ctx *c)
{
    const char *file = c->args.pos[0];
    int to_stdout = strcmp(file, "-") == 0, st, rc;
    char tmp[1100] = "";
    struct fota_cli_reply r;
    struct sink s;

    memset(&s, 0, sizeof(s));
    s.fd = STDOUT_FILENO;
    if (to_stdout && isatty(STDOUT_FILENO))
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "standard output is a terminal: redirect "
                                                      "it, or name a file");
    if (!to_stdout) {
        if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", file) >= sizeof(tmp))
            return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "the file name is too long");
        s.fd = mkstemp(tmp);
        if (s.fd < 0)
            return fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "cannot write %s (%s)", file,
                                     strerror(errno));
        fchmod(s.fd, 0600);   /* the archive is as secret as the server's data dir */
    }
    fota_backup_reader_init(&s.rd, NULL, NULL);
    int progress = isatty(STDERR_FILENO) && !fota_cli_ctx_opt(c, "no-progress");
    if (progress)
        fprintf(stderr, "the server takes its snapshot (database, then every firmware file "
                        "hashed)...\n");
    rc = fota_cli_api_download(c->api, "/v1/backup", on_data, &s, PATIENCE_S, progress, &r);
    if (rc == 1)
        st = fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "the backup arrived damaged: %s",
                               fota_backup_reader_error(&s.rd));
    else if (rc == 2)
        st = fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "cannot write %s (%s)",
                               to_stdout ? "standard output" : file, strerror(s.werr));
    else if ((st = fota_cli_ctx_check(c, rc, &r, NULL)) != 0)
        ;   /* reported: refused, no such endpoint, no reply */
    else if (fota_backup_reader_finish(&s.rd) != 0)
        st = fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "the backup arrived incomplete: %s",
                               fota_backup_reader_error(&s.rd));
    else if (!to_stdout && (fsync(s.fd) != 0 || close(s.fd) != 0)) {
        s.fd = -1;
        st = fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "cannot write %s (%s)", file, strerror(errno));
    } else if (!to_stdout && (s.fd = -1, rename(tmp, file) != 0 || fsync_dir_of(file) != 0)) {
        st = fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "cannot put %s in place (%s)", file,
                               strerror(errno));
    }
    fota_cli_reply_cleanup(&r);
    if (!to_stdout && s.fd >= 0)
        close(s.fd);
    if (st != 0) {
        if (tmp[0])
            unlink(tmp);
    } else {
        st = report(c, file, &s);
    }
    fota_backup_reader_cleanup(&s.rd);
    return st;
}
