/* pg_harness_test.c - the tests' own PostgreSQL server (tests/pg/pg_server.sh,
 * through pg_test_server.c): it starts in a new directory, answers SELECT 1
 * on its unix socket there (and listens on no TCP port), restarts, and
 * leaves no process and no directory behind when stopped, nor when its test
 * dies without stopping it. As root it runs as nobody (initdb refuses root):
 * this test runs as CI does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include "fota_str.h"
#include "pg_test_server.h"

/* One value of a query, as text, into out. */
static void value(PGconn *conn, const char *sql, char *out, size_t n)
{
    PGresult *r = PQexec(conn, sql);

    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 1);
    fota_str_copy(out, n, PQgetvalue(r, 0, 0));
    PQclear(r);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void test_start_query_stop(void **state)
{
    struct pg_test_server ts;
    char dir[64], v[128];
    PGconn *conn;
    double end;
    (void)state;

    assert_int_equal(pg_test_server_start(&ts), 0);
    fota_str_copy(dir, sizeof dir, ts.dir);
    assert_true(pg_test_server_processes(dir) > 0);

    conn = pg_test_server_connect(&ts, "postgres");
    assert_int_equal(PQstatus(conn), CONNECTION_OK);
    assert_string_equal(PQhost(conn), dir);   /* the unix socket in the test's dir */
    value(conn, "SELECT 1", v, sizeof v);
    assert_string_equal(v, "1");
    value(conn, "SHOW listen_addresses", v, sizeof v);
    assert_string_equal(v, "");
    value(conn, "SELECT current_user", v, sizeof v);
    assert_string_equal(v, "fota");
    value(conn, "SHOW server_encoding", v, sizeof v);
    assert_string_equal(v, "UTF8");
    value(conn, "SHOW max_connections", v, sizeof v);
    assert_string_equal(v, "200");

    /* A restart drops the connection; a new one is served. */
    assert_int_equal(pg_test_server_restart(&ts), 0);
    PQclear(PQexec(conn, "SELECT 1"));
    assert_int_not_equal(PQstatus(conn), CONNECTION_OK);
    PQfinish(conn);
    conn = pg_test_server_connect(&ts, "postgres");
    assert_int_equal(PQstatus(conn), CONNECTION_OK);
    value(conn, "SELECT 2", v, sizeof v);
    assert_string_equal(v, "2");
    PQfinish(conn);

    assert_int_equal(pg_test_server_stop(&ts), 0);
    /* The postmaster's children leave as it does: poll, with a deadline. */
    end = now_s() + 10;
    while (pg_test_server_processes(dir) != 0 && now_s() < end)
        usleep(10000);
    assert_int_equal(pg_test_server_processes(dir), 0);
    assert_int_not_equal(access(dir, F_OK), 0);
}

/* A server whose test died without stopping it (a crash, a ctest timeout)
 * is stopped, and its directory removed, by the watchdog of pg_server.sh. */
static void test_orphan_stopped(void **state)
{
    struct pg_test_server ts;
    char dir[64];
    pid_t owner;
    double end;
    (void)state;

    owner = fork();
    assert_true(owner >= 0);
    if (owner == 0) {
        pause();   /* the stand-in for a test process, until killed */
        _exit(0);
    }
    assert_int_equal(pg_test_server_start_owned(&ts, owner), 0);
    fota_str_copy(dir, sizeof dir, ts.dir);
    assert_true(pg_test_server_processes(dir) > 0);
    kill(owner, SIGKILL);
    assert_int_equal(waitpid(owner, NULL, 0), owner);
    end = now_s() + 20;
    while ((pg_test_server_processes(dir) != 0 || access(dir, F_OK) == 0) && now_s() < end)
        usleep(20000);
    assert_int_equal(pg_test_server_processes(dir), 0);
    assert_int_not_equal(access(dir, F_OK), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_query_stop),
        cmocka_unit_test(test_orphan_stopped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
