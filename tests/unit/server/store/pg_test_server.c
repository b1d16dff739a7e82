/* pg_test_server.c - a PostgreSQL server of a C test's own (pg_test_server.h),
 * through tests/pg/pg_server.sh, the one place that knows initdb and pg_ctl. */
#include <dirent.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "pg_test_server.h"

static int script(const char *cmd, const char *dir, const char *arg)
{
    char line[512];
    int rc;

    snprintf(line, sizeof line, "'%s' %s '%s' %s", FOTA_PG_SERVER_SH, cmd, dir, arg);
    rc = system(line);
    if (rc != 0) {
        fprintf(stderr, "%s: status %d\n", line, rc);
        return -1;
    }
    return 0;
}

int pg_test_server_start(struct pg_test_server *ts)
{
    return pg_test_server_start_owned(ts, getpid());
}

int pg_test_server_start_owned(struct pg_test_server *ts, pid_t owner)
{
    char pid[24];

    snprintf(ts->dir, sizeof ts->dir, "/tmp/fota-pg-XXXXXX");
    if (!mkdtemp(ts->dir)) {
        perror("mkdtemp");
        ts->dir[0] = '\0';
        return -1;
    }
    snprintf(pid, sizeof pid, "%ld", (long)owner);
    if (script("start", ts->dir, pid) != 0) {
        pg_test_server_stop(ts);
        return -1;
    }
    return 0;
}

int pg_test_server_restart(const struct pg_test_server *ts)
{
    return script("restart", ts->dir, "");
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 ? 0 : -1;
}

int pg_test_server_stop(struct pg_test_server *ts)
{
    int rc = 0;

    if (!ts->dir[0])
        return 0;
    rc = script("stop", ts->dir, "");
    if (nftw(ts->dir, remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0) {
        perror("removing the PostgreSQL test dir");
        rc = -1;
    }
    ts->dir[0] = '\0';
    return rc;
}

void pg_test_server_dsn(const struct pg_test_server *ts, const char *dbname, char *out, size_t n)
{
    snprintf(out, n, "host=%s user=fota dbname=%s", ts->dir, dbname);
}

PGconn *pg_test_server_connect(const struct pg_test_server *ts, const char *dbname)
{
    char dsn[200];

    pg_test_server_dsn(ts, dbname, dsn, sizeof dsn);
    return PQconnectdb(dsn);
}

int pg_test_server_sql(PGconn *conn, const char *sql)
{
    PGresult *r = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(r);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;

    if (!ok)
        fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    return ok ? 0 : -1;
}

int pg_test_server_processes(const char *dir)
{
    char want[PATH_MAX], link[sizeof "/proc//cwd" + NAME_MAX], got[PATH_MAX];
    struct dirent *e;
    int n = 0;
    DIR *d;

    snprintf(want, sizeof want, "%s/data", dir);
    d = opendir("/proc");
    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL) {
        ssize_t len;
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(link, sizeof link, "/proc/%s/cwd", e->d_name);
        len = readlink(link, got, sizeof got - 1);
        if (len <= 0)
            continue;   /* gone, a zombie, or not ours to read */
        got[len] = '\0';
        if (strcmp(got, want) == 0)
            n++;
    }
    closedir(d);
    return n;
}
