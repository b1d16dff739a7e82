/* pg_test_server.h - a PostgreSQL server of a C test's own (tests/pg/pg_server.sh):
 * initdb and start in a new directory under /tmp (a server dropped to nobody
 * reaches it), a unix socket there, stop and remove at the end. */
#ifndef FOTA_PG_TEST_SERVER_H
#define FOTA_PG_TEST_SERVER_H

#include <stddef.h>
#include <sys/types.h>
#include <libpq-fe.h>

struct pg_test_server {
    char dir[64];                 /* the socket's directory; the cluster is dir/data */
};

/* Makes the directory and starts the server: 0, or -1 (printed to stderr).
 * Should the test end without pg_test_server_stop (a crash, a timeout), a
 * watchdog stops the server and removes the directory. */
int pg_test_server_start(struct pg_test_server *ts);
/* The same for a server whose watchdog follows process owner. */
int pg_test_server_start_owned(struct pg_test_server *ts, pid_t owner);
/* pg_ctl restart (fast): every connection is dropped. 0 or -1. */
int pg_test_server_restart(const struct pg_test_server *ts);
/* Stops the server and removes its directory: 0 or -1. */
int pg_test_server_stop(struct pg_test_server *ts);
/* "host=DIR user=fota dbname=NAME" into out. */
void pg_test_server_dsn(const struct pg_test_server *ts, const char *dbname, char *out, size_t n);
/* A connection to database dbname (asserting nothing): the caller PQfinish()es it. */
PGconn *pg_test_server_connect(const struct pg_test_server *ts, const char *dbname);
/* Runs sql (no parameters) on conn: 0, or -1 with PostgreSQL's message printed. */
int pg_test_server_sql(PGconn *conn, const char *sql);
/* The processes whose working directory is dir/data (every process of a
 * PostgreSQL server sits there): 0 once the server has stopped. */
int pg_test_server_processes(const char *dir);

#endif
