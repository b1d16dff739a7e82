/* store_pg_test.c - what only the PostgreSQL store has: its schema
 * migrations (numbered and recorded, applied once also when two opens race
 * on a new database, a newer schema refused), the mapping of SQLSTATEs to
 * FOTA_E*, a connection per thread (the executor's store threads too), the
 * generation triggers and their notifications (payloads, chunks, which
 * writes send them, an op applying its own), the loop guard (an op on an
 * event loop's thread logs ERROR, on a store thread nothing), and
 * reconnecting after the server restarted (an op then succeeds or answers
 * FOTA_EUNAVAIL, never worse), and release files kept in the database
 * (blob_put, blob_fetch), the lease fence of the rollout engine's
 * writes (fota_store_fence), and the rollout events of several instances
 * (batches as rows of arrays).
 * The server is the run's own (tests/pg/pg_server.sh, store_fixture.c). */
#include <event2/thread.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "fota_str.h"
#include "loop.h"
#include "store/blob.h"
#include "store/store_exec.h"
#include "store/store_pg_int.h"
#include "store_fixture.h"

static struct store_fixture fx = { .backend = &store_backend_postgresql };

/* Log lines that say a migration was applied, over every store of a test. */
static int applied;
static pthread_mutex_t applied_lock = PTHREAD_MUTEX_INITIALIZER;

static void count_log(void *ud, int level, const char *msg)
{
    store_test_log(ud, level, msg);
    if (strstr(msg, "applied schema migration")) {
        pthread_mutex_lock(&applied_lock);
        applied++;
        pthread_mutex_unlock(&applied_lock);
    }
}

static int open_counted(struct fota_store **out, char *err, size_t errlen)
{
    return fota_store_pg_open(fx.where, count_log, NULL, out, err, errlen);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A connection of the test's own to the test's database. */
static PGconn *admin(void)
{
    PGconn *c = PQconnectdb(fx.where);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    return c;
}

/* One integer a query returns. */
static long long query_int(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    long long v;

    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 1);
    v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

/* The database's recorded versions are 1..N, each once, in order. */
static void assert_versions(PGconn *c, int n)
{
    assert_int_equal(query_int(c, "SELECT COUNT(*) FROM schema_migrations"), n);
    assert_int_equal(query_int(c, "SELECT COUNT(DISTINCT version) FROM schema_migrations"), n);
    assert_int_equal(query_int(c, "SELECT MIN(version) FROM schema_migrations"), 1);
    assert_int_equal(query_int(c, "SELECT MAX(version) FROM schema_migrations"), n);
    assert_int_equal(query_int(c, "SELECT COUNT(*) FROM schema_migrations WHERE applied <= 0"), 0);
}

static int setup(void **state)
{
    applied = 0;
    *state = &fx;
    return store_fixture_setup(state);
}

/* Migrations 1..N are applied in order on a new database, each recorded;
 * the schema has the tables of every migration (the last one's too). */
static void test_migrations_numbered(void **state)
{
    int n = fota_store_pg_schema_version();
    PGconn *c = admin();

    assert_true(n >= 10);
    assert_versions(c, n);
    /* Tables of the first and the last migrations, with their PostgreSQL types. */
    assert_int_equal(query_int(c, "SELECT COUNT(*) FROM information_schema.columns"
                                  " WHERE table_name = 'devices' AND column_name = 'product_id'"
                                  " AND data_type = 'bigint'"),
                     1);
    assert_int_equal(query_int(c, "SELECT COUNT(*) FROM information_schema.columns"
                                  " WHERE table_name = 'rollouts' AND column_name = 'ms_acked'"
                                  " AND data_type = 'double precision'"),
                     1);
    assert_int_equal(query_int(c, "SELECT COUNT(*) FROM information_schema.columns"
                                  " WHERE table_name = 'products' AND column_name = 'name'"
                                  " AND collation_name = 'C'"),
                     1);
    assert_int_equal(query_int(c, "SELECT COUNT(*) FROM information_schema.tables"
                                  " WHERE table_name = 'rollout_samples'"),
                     1);
    assert_int_equal(query_int(c, "SELECT COUNT(*) FROM pg_indexes"
                                  " WHERE indexname = 'devices_product_id'"),
                     1);
    /* 16's: rollout_events holds arrays of events. */
    assert_int_equal(query_int(c, "SELECT COUNT(*) FROM information_schema.columns"
                                  " WHERE table_name = 'rollout_events'"
                                  " AND column_name = 'device_id' AND data_type = 'ARRAY'"),
                     1);
    /* 12's (release files), 13's (several instances) and 15's (rollout requests). */
    assert_int_equal(query_int(c, "SELECT COUNT(*) FROM information_schema.tables"
                                  " WHERE table_name IN ('blobs', 'blob_chunks', 'cluster',"
                                  " 'instances', 'device_conn', 'leases', 'rollout_asks')"),
                     7);
    PQfinish(c);
    assert_int_equal(store_log_errors, 0);
    (void)state;
}

/* Opening the database again applies nothing. */
static void test_reopen_applies_nothing(void **state)
{
    struct fota_store *s = NULL;
    char err[256] = "";
    PGconn *c;

    fota_store_close(fx.s);
    fx.s = NULL;
    applied = 0;
    assert_int_equal(open_counted(&s, err, sizeof err), 0);
    assert_int_equal(applied, 0);
    fx.s = s;
    c = admin();
    assert_versions(c, fota_store_pg_schema_version());
    PQfinish(c);
    (void)state;
}

/* A database whose schema is newer than this fotad's is refused, and left
 * as it is. */
static void test_newer_schema_refused(void **state)
{
    int n = fota_store_pg_schema_version();
    struct fota_store *s = NULL;
    char err[256] = "", sql[128];
    PGconn *c = admin();

    snprintf(sql, sizeof sql, "INSERT INTO schema_migrations VALUES (%d, 1)", n + 1);
    assert_int_equal(pg_test_server_sql(c, sql), 0);
    fota_store_close(fx.s);
    fx.s = NULL;
    assert_int_equal(open_counted(&s, err, sizeof err), FOTA_EIO);
    assert_null(s);
    assert_non_null(strstr(err, "newer than this fotad knows"));
    assert_int_equal(query_int(c, "SELECT MAX(version) FROM schema_migrations"), n + 1);
    PQfinish(c);
    store_log_errors = 0;   /* the refusal is logged at ERROR, as it should be */
    (void)state;
}

/* Two opens racing on one new database: each migration is applied once. */
struct racer {
    struct fota_store *s;
    char err[256];
    int rc;
};

static pthread_barrier_t race_start;

static void *racer_run(void *arg)
{
    struct racer *r = arg;

    pthread_barrier_wait(&race_start);
    r->rc = open_counted(&r->s, r->err, sizeof r->err);
    return NULL;
}

static void test_concurrent_open(void **state)
{
    struct racer r[2];
    pthread_t t[2];
    PGconn *c;

    /* A new database nobody opened yet (the fixture's own is left alone). */
    fota_store_close(fx.s);
    fx.s = NULL;
    fx.backend->drop(&fx);
    fx.backend->create(&fx);
    applied = 0;
    memset(r, 0, sizeof r);
    assert_int_equal(pthread_barrier_init(&race_start, NULL, 2), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, racer_run, &r[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&race_start);
    for (int i = 0; i < 2; i++) {
        if (r[i].rc != 0)
            fprintf(stderr, "open %d: %s\n", i, r[i].err);
        assert_int_equal(r[i].rc, 0);
    }
    assert_int_equal(applied, fota_store_pg_schema_version());
    c = admin();
    assert_versions(c, fota_store_pg_schema_version());
    PQfinish(c);
    fota_store_close(r[1].s);
    fx.s = r[0].s;
    assert_int_equal(store_log_errors, 0);
    (void)state;
}

/* SQLSTATEs: a unique violation is EEXIST, a missing referenced row
 * ENOENT, neither logged as an error; a syntax error is EIO, logged. Rows
 * an op changes move the catalog generation, a read does not. */
static void test_sqlstate_mapping(void **state)
{
    struct fota_store *s = store_of(state);
    struct pg_params p;
    struct pg_conn *c;
    uint64_t gen;
    int64_t id = 0;

    gen = fota_store_generation(s);
    assert_int_equal(fota_store_pg_enter(s, "test", &c), 0);
    memset(&p, 0, sizeof p);
    fota_store_pg_param_text(&p, "one", 64);
    fota_store_pg_param_int(&p, 1700000000);
    assert_int_equal(fota_store_pg_exec_tx(c, -1,
                                           "INSERT INTO products (name, created)"
                                           " VALUES ($1, $2) RETURNING id",
                                           &p, 1, "test", &id),
                     0);
    assert_true(id > 0);
    assert_int_equal(fota_store_pg_exec_tx(c, -1,
                                           "INSERT INTO products (name, created)"
                                           " VALUES ($1, $2) RETURNING id",
                                           &p, 1, "test", NULL),
                     FOTA_EEXIST);
    memset(&p, 0, sizeof p);
    fota_store_pg_param_int(&p, id + 1000);
    fota_store_pg_param_int(&p, 1700000000);
    assert_int_equal(fota_store_pg_exec(c, -1,
                                        "INSERT INTO roms (product_id, version, created)"
                                        " VALUES ($1, 'v1', $2)",
                                        &p, "test", NULL),
                     FOTA_ENOENT);
    assert_int_equal(fota_store_pg_leave(c, 0), 0);
    assert_int_equal(store_log_errors, 0);
    assert_true(fota_store_generation(s) > gen);

    gen = fota_store_generation(s);
    assert_int_equal(fota_store_pg_enter(s, "test", &c), 0);
    assert_int_equal(fota_store_pg_exec(c, -1, "SELECT COUNT(*) FROM products", NULL, "test",
                                        &id),
                     0);
    assert_int_equal(id, 1);
    assert_int_equal(fota_store_pg_exec(c, -1, "SELEKT 1", NULL, "test", NULL), FOTA_EIO);
    assert_int_equal(fota_store_pg_leave(c, 0), 0);
    assert_int_equal(fota_store_generation(s), gen);
    assert_int_equal(store_log_errors, 1);
    store_log_errors = 0;

    /* Text that is not UTF-8 (22021) is EINVAL; a serialization failure
     * runs the transaction again and ends as EBUSY; a statement timeout is
     * EBUSY. None is logged as an error. */
    assert_int_equal(fota_store_pg_enter(s, "test", &c), 0);
    memset(&p, 0, sizeof p);
    fota_store_pg_param_text(&p, "bad\xff\xfe", 64);
    fota_store_pg_param_int(&p, 1700000000);
    assert_int_equal(fota_store_pg_exec(c, -1,
                                        "INSERT INTO products (name, created) VALUES ($1, $2)",
                                        &p, "test", NULL),
                     FOTA_EINVAL);
    assert_int_equal(fota_store_pg_exec_tx(c, -1,
                                           "DO $$ BEGIN RAISE EXCEPTION 'again'"
                                           " USING ERRCODE = '40001'; END $$",
                                           NULL, 1, "test", NULL),
                     FOTA_EAGAIN);
    assert_int_equal(fota_store_pg_leave(c, FOTA_EAGAIN), FOTA_EBUSY);
    assert_int_equal(fota_store_pg_enter(s, "test", &c), 0);
    assert_int_equal(fota_store_pg_begin(c, 0), 0);
    assert_int_equal(fota_store_pg_exec(c, -1, "SET LOCAL statement_timeout = 10", NULL, "test",
                                        NULL),
                     0);
    assert_int_equal(fota_store_pg_exec(c, -1, "SELECT pg_sleep(5)", NULL, "test", NULL),
                     FOTA_EBUSY);
    fota_store_pg_rollback(c);
    assert_int_equal(fota_store_pg_exec(c, -1, "SELECT 1", NULL, "test", &id), 0);
    assert_int_equal(id, 1);
    assert_int_equal(fota_store_pg_leave(c, 0), 0);
    assert_int_equal(store_log_errors, 0);
}

/* Every op of the table is there, and close is too. */
static void test_every_op_present(void **state)
{
    struct fota_store *s = store_of(state);
    const struct fota_store_ops *ops = s->ops;
    size_t nptr = (sizeof *ops - offsetof(struct fota_store_ops, close)) / sizeof(void (*)(void));
    const unsigned char *base = (const unsigned char *)&ops->close;

    assert_int_equal((sizeof *ops - offsetof(struct fota_store_ops, close)) %
                         sizeof(void (*)(void)),
                     0);
    for (size_t i = 0; i < nptr; i++) {
        void (*fn)(void);
        memcpy(&fn, base + i * sizeof fn, sizeof fn);
        assert_non_null(fn);
    }
}

/* Threads each get a connection of their own, given back to the spare
 * pool as they end; the store keeps no more than it needs. */
static struct fota_store *shared;

static void *worker(void *arg)
{
    int *failures = arg;

    for (int i = 0; i < 20; i++) {
        struct pg_conn *c;
        int64_t v = 0;
        if (fota_store_pg_enter(shared, "test", &c) != 0) {
            (*failures)++;
            continue;
        }
        if (fota_store_pg_leave(c, fota_store_pg_schema_recorded(c, &v)) != 0 ||
            v != fota_store_pg_schema_version())
            (*failures)++;
    }
    return NULL;
}

static void test_connection_per_thread(void **state)
{
    struct pg_store *q = fota_store_pg_cast(store_of(state));
    int failures[4] = { 0 };
    pthread_t t[4];

    shared = store_of(state);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, worker, &failures[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(failures[i], 0);
    }
    /* The test's own thread holds one; the workers' went back, at most
     * FOTA_PG_SPARE_MAX of them kept. */
    pthread_mutex_lock(&q->lock);
    assert_true(q->nconn <= 1 + 4);
    assert_true(q->nspare >= 1 && q->nspare <= FOTA_PG_SPARE_MAX);
    assert_int_equal(q->nconn, q->nspare + 1);
    pthread_mutex_unlock(&q->lock);
    fota_store_pg_thread_done(store_of(state));
    pthread_mutex_lock(&q->lock);
    assert_true(q->nspare <= FOTA_PG_SPARE_MAX);
    assert_int_equal(q->nconn, q->nspare);
    pthread_mutex_unlock(&q->lock);
}

/* Reports of n devices for report_batch: each device's new version and
 * slot, and its upgrade message. */
static void report_rows(struct fota_report_row *rows, size_t n, int64_t pid, const int64_t *devs)
{
    memset(rows, 0, n * sizeof *rows);
    for (size_t i = 0; i < n; i++) {
        rows[i].m.product_id = pid;
        rows[i].m.device_id = devs[i];
        snprintf(rows[i].m.action, sizeof rows[i].m.action, "device_upgrade_success");
        snprintf(rows[i].m.body, sizeof rows[i].m.body, "{\"i\": %zu, \"q\": \"a\\\"}{,\"}", i);
        rows[i].fields = FOTA_DEV_F_ROM_VERSION | FOTA_DEV_F_SLOT;
        snprintf(rows[i].rom_version, sizeof rows[i].rom_version, "v2.%zu", i);
        rows[i].running_slot = 1 + (int)(i % 2);
    }
}

/* A batch of reports costs the same statements whatever its size: it holds
 * the message lock and its product's minute row to its commit, with the
 * replies of its devices waiting for it, so its time may not grow with a
 * round trip per row. A device named twice takes each field from its last
 * row that reports it; ids follow the rows; quotes and braces in a body
 * survive the array form. */
#define REPORTS 300
static void test_report_batch_statements(void **state)
{
    struct fota_store *s = store_of(state);
    struct pg_store *q = fota_store_pg_cast(s);
    static struct fota_report_row rows[REPORTS];
    int64_t pid = mk_product(s, "reports"), devs[REPORTS];
    char name[16];

    for (size_t i = 0; i < REPORTS; i++) {
        snprintf(name, sizeof name, "d%zu", i);
        devs[i] = mk_device(s, pid, name, 1);
    }
    report_rows(rows, 1, pid, devs);
    assert_int_equal(s->ops->report_batch(s, rows, 1), 0);   /* the statements prepared */
    struct pg_conn *c = pthread_getspecific(q->key);
    assert_non_null(c);
    uint64_t before = c->statements;
    assert_int_equal(s->ops->report_batch(s, rows, 1), 0);
    uint64_t one = c->statements - before;

    report_rows(rows, REPORTS, pid, devs);
    devs[REPORTS - 1] = devs[0];             /* the first device again, its version only */
    rows[REPORTS - 1].m.device_id = devs[0];
    rows[REPORTS - 1].fields = FOTA_DEV_F_ROM_VERSION;
    before = c->statements;
    assert_int_equal(s->ops->report_batch(s, rows, REPORTS), 0);
    assert_true(c->statements - before <= one + 1);   /* + the minute's prune, once a minute */
    for (size_t i = 1; i < REPORTS; i++)
        assert_true(rows[i].m.id > rows[i - 1].m.id);

    struct fota_device d;
    assert_int_equal(s->ops->device_get(s, devs[0], &d), 0);
    assert_string_equal(d.rom_version, "v2.299");
    assert_int_equal(d.running_slot, 1);
    assert_int_equal(s->ops->device_get(s, devs[7], &d), 0);
    assert_string_equal(d.rom_version, "v2.7");
    assert_int_equal(d.running_slot, 2);
    struct fota_message_filter f = { .device_id = devs[7] };
    struct fota_message *list = NULL;
    size_t n = 0;
    assert_int_equal(s->ops->message_list(s, &f, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].id, rows[7].m.id);
    assert_string_equal(list[0].body, rows[7].m.body);
    free(list);
}

/* The executor (store_exec.h) runs a PostgreSQL store's jobs on store
 * threads of its own, each with its connection, given back at the end. */
struct create_job {
    char name[16];
    int rc;
};

static void create_run(struct fota_store *s, void *arg)
{
    struct create_job *j = arg;
    struct fota_product p = { 0 };

    fota_str_copy(p.name, sizeof p.name, j->name);
    j->rc = s->ops->product_create(s, &p);
}

static void test_executor_threads(void **state)
{
    struct fota_store *s = store_of(state);
    struct pg_store *q = fota_store_pg_cast(s);
    struct create_job jobs[12];
    struct fota_product *list = NULL;
    struct fota_store_exec *x = NULL;
    size_t n = 0;

    assert_int_equal(s->threaded, 1);
    assert_int_equal(fota_store_exec_new(s, 3, &x), 0);
    assert_int_equal(fota_store_exec_threaded(x), 1);
    for (int i = 0; i < 12; i++) {
        snprintf(jobs[i].name, sizeof jobs[i].name, "p%d", i);
        jobs[i].rc = 1;
        assert_int_equal(fota_store_submit(x, NULL, NULL, create_run, NULL, &jobs[i]), 0);
    }
    fota_store_exec_drain(x);
    fota_store_exec_free(x);
    for (int i = 0; i < 12; i++)
        assert_int_equal(jobs[i].rc, 0);
    assert_int_equal(s->ops->product_list(s, &list, &n), 0);
    assert_int_equal(n, 12);
    free(list);
    /* The test's thread and the three store threads at most; theirs went back. */
    pthread_mutex_lock(&q->lock);
    assert_true(q->nconn <= 4);
    assert_int_equal(q->nconn, q->nspare + 1);
    pthread_mutex_unlock(&q->lock);
    assert_int_equal(store_log_errors, 0);
}

/* ---- the loop guard (store.h fota_store_set_loop_guard) ----------------- */

/* The guard's lines a store logged, and the last one; other lines go to
 * store_test_log (an ERROR among them fails the test). */
static int guard_lines, guard_not_error;
static char guard_last[256];
static pthread_mutex_t guard_lock = PTHREAD_MUTEX_INITIALIZER;

static void guard_log(void *ud, int level, const char *msg)
{
    if (!strstr(msg, "store op called on an event loop")) {
        store_test_log(ud, level, msg);
        return;
    }
    pthread_mutex_lock(&guard_lock);   /* a loop's thread: no cmocka assert here */
    guard_lines++;
    guard_not_error += level != FOTA_LOG_ERROR;
    fota_str_copy(guard_last, sizeof guard_last, msg);
    pthread_mutex_unlock(&guard_lock);
}

static int guard_count(char *last, size_t n)
{
    int k;

    pthread_mutex_lock(&guard_lock);
    k = guard_lines;
    if (last)
        fota_str_copy(last, n, guard_last);
    pthread_mutex_unlock(&guard_lock);
    return k;
}

struct guard_call {
    struct fota_store *s;
    const char *op;   /* "product_list" or "product_get" */
    int64_t id;
    int rc;
};

static void guard_op(struct guard_call *g)
{
    struct fota_product *list = NULL, p;
    size_t n = 0;

    if (strcmp(g->op, "product_list") == 0) {
        g->rc = g->s->ops->product_list(g->s, &list, &n);
        if (g->rc == 0 && n != 1)
            g->rc = -1000;   /* ran, but not as asked */
        free(list);
    } else {
        g->rc = g->s->ops->product_get(g->s, g->id, &p);
    }
}

static void guard_on_loop(void *arg)
{
    guard_op(arg);
}

static void guard_on_store(struct fota_store *s, void *arg)
{
    (void)s;
    guard_op(arg);
}

/* Armed, an op on a loop thread logs ERROR "store op called on an event
 * loop op=X loop=N" and still runs; the same op on a store thread of the
 * executor, on a thread that runs no loop, or with the guard disarmed
 * logs nothing. */
static void test_loop_guard(void **state)
{
    struct fota_store *s = store_of(state);
    struct fota_store_exec *x = NULL;
    struct fota_loop *l;
    struct guard_call g = { .s = s, .op = "product_list", .rc = 1 };
    char last[256];

    guard_lines = guard_not_error = 0;
    guard_last[0] = '\0';
    s->log = guard_log;
    g.id = mk_product(s, "guarded");
    l = fota_loop_new(3);
    assert_non_null(l);
    assert_int_equal(fota_loop_start(l, NULL, NULL), 0);

    /* Disarmed: a loop thread runs ops unseen (start-up). */
    assert_int_equal(fota_loop_call(l, guard_on_loop, &g), 0);
    assert_int_equal(g.rc, 0);
    assert_int_equal(guard_count(NULL, 0), 0);

    fota_store_set_loop_guard(s, fota_loop_current_index);
    /* The test's own thread runs no loop. */
    g.rc = 1;
    guard_op(&g);
    assert_int_equal(g.rc, 0);
    assert_int_equal(guard_count(NULL, 0), 0);

    /* A store thread of the executor runs no loop. */
    assert_int_equal(fota_store_exec_new(s, 2, &x), 0);
    assert_int_equal(fota_store_exec_threaded(x), 1);
    g.rc = 1;
    assert_int_equal(fota_store_submit(x, NULL, NULL, guard_on_store, NULL, &g), 0);
    fota_store_exec_drain(x);
    fota_store_exec_free(x);
    assert_int_equal(g.rc, 0);
    assert_int_equal(guard_count(NULL, 0), 0);

    /* On the loop: one line naming the op and the loop, and the op's answer. */
    g.rc = 1;
    assert_int_equal(fota_loop_call(l, guard_on_loop, &g), 0);
    assert_int_equal(g.rc, 0);
    assert_int_equal(guard_count(last, sizeof last), 1);
    assert_non_null(strstr(last, "store op called on an event loop op=product_list loop=3 "));
    /* Another op has a line of its own, also within the same second. */
    g.op = "product_get";
    g.rc = 1;
    assert_int_equal(fota_loop_call(l, guard_on_loop, &g), 0);
    assert_int_equal(g.rc, 0);
    assert_int_equal(guard_count(last, sizeof last), 2);
    assert_non_null(strstr(last, "op=product_get loop=3 "));

    /* Disarmed again (fotad's shutdown): nothing more. */
    fota_store_set_loop_guard(s, NULL);
    g.rc = 1;
    assert_int_equal(fota_loop_call(l, guard_on_loop, &g), 0);
    assert_int_equal(g.rc, 0);
    assert_int_equal(guard_count(NULL, 0), 2);

    fota_loop_stop(l);
    fota_loop_free(l);
    s->log = store_test_log;
    assert_int_equal(guard_not_error, 0);
    assert_int_equal(store_log_errors, 0);
}

/* ---- generations through fota_gen (migration 11) ------------------------ */

/* What one statement on c (listening on fota_gen) notified: the payloads
 * concatenated with '|' into out (each checked to be at most 7,900 bytes),
 * and their number. */
static int notified(PGconn *c, const char *sql, char *out, size_t outlen)
{
    PGresult *r = PQexec(c, sql);
    PGnotify *n;
    int count = 0;
    size_t len = 0;

    assert_true(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK);
    PQclear(r);
    out[0] = '\0';
    while ((n = PQnotifies(c)) != NULL) {
        assert_string_equal(n->relname, "fota_gen");
        assert_true(strlen(n->extra) <= 7900);
        assert_true(len + strlen(n->extra) + 2 < outlen);
        len += (size_t)snprintf(out + len, outlen - len, "%s%s", count ? "|" : "", n->extra);
        count++;
        PQfreemem(n);
    }
    return count;
}

/* The ids of "d:ID,...|d:ID,..." payloads, each id once, counted; 0 when a
 * payload is not of kind `kind`. */
static int ids_in(const char *payloads, char kind, long long lo, long long hi)
{
    static unsigned char seen[1000];
    const char *p = payloads;
    int n = 0;

    memset(seen, 0, sizeof seen);
    while (*p) {
        if (p[0] != kind || p[1] != ':')
            return 0;
        p += 2;
        for (;;) {
            char *end;
            long long id = strtoll(p, &end, 10);
            assert_true(end > p);
            assert_true(id >= lo && id < hi && hi - lo <= (long long)sizeof seen);
            assert_int_equal(seen[id - lo], 0);
            seen[id - lo] = 1;
            n++;
            p = end;
            if (*p != ',')
                break;
            p++;
        }
        if (*p == '|')
            p++;
    }
    return n;
}

/* The triggers send what store_sqlite.c's TEMP triggers touch: commands
 * written (insert, update, delete), devices' rows written through a listed
 * column (presence is not), arduino rows inserted or written through a
 * listed column, whether or not the value changed; a statement's ids in
 * payloads of at most 7,900 bytes, "d*" past 500 devices. */
static void test_generation_triggers(void **state)
{
    int64_t pid = mk_product(store_of(state), "gen");
    const long long base = 1000000000000000000LL;   /* 19-digit ids: several payloads */
    char *buf = malloc(1 << 16), sql[512];
    PGconn *c = admin();
    long long first;

    assert_non_null(buf);
    PQclear(PQexec(c, "LISTEN fota_gen"));
    snprintf(sql, sizeof sql,
             "INSERT INTO devices (id, product_id, created) SELECT %lld + g, %lld, 1"
             " FROM generate_series(0, 599) g",
             base, (long long)pid);
    assert_int_equal(notified(c, sql, buf, 1 << 16), 0);   /* a device's creation: none */
    first = base;

    /* presence: none; a listed column, even unchanged: that device */
    assert_int_equal(notified(c, "UPDATE devices SET last_active = 5, online = 1", buf, 1 << 16),
                     0);
    snprintf(sql, sizeof sql, "UPDATE devices SET name = name WHERE id = %lld", first);
    assert_int_equal(notified(c, sql, buf, 1 << 16), 1);
    snprintf(sql, sizeof sql, "d:%lld", first);
    assert_string_equal(buf, sql);
    assert_int_equal(notified(c, "UPDATE devices SET name = 'x' WHERE id = 0", buf, 1 << 16), 0);

    /* 480 commands: every device once, in payloads of at most 7,900 bytes */
    snprintf(sql, sizeof sql,
             "INSERT INTO commands (device_id, nonce, action, state, created, updated)"
             " SELECT %lld + g, g, 'sys_reboot', 1, 1, 1 FROM generate_series(0, 479) g",
             base);
    assert_true(notified(c, sql, buf, 1 << 16) >= 2);
    assert_int_equal(ids_in(buf, 'd', base, base + 600), 480);
    assert_int_equal(notified(c, "UPDATE commands SET state = 2 WHERE nonce < 10", buf, 1 << 16),
                     1);
    assert_int_equal(ids_in(buf, 'd', base, base + 600), 10);
    assert_int_equal(notified(c, "DELETE FROM commands WHERE nonce >= 470", buf, 1 << 16), 1);
    assert_int_equal(ids_in(buf, 'd', base, base + 600), 10);
    /* more than 500 devices in one statement: every slot */
    assert_int_equal(notified(c,
                              "INSERT INTO commands (device_id, nonce, action, state, created,"
                              " updated) SELECT id, 1, 'sys_reboot', 1, 1, 1 FROM devices",
                              buf, 1 << 16),
                     1);
    assert_string_equal(buf, "d*");

    /* arduino rows: inserted, then upserted through listed columns or not */
    snprintf(sql, sizeof sql,
             "INSERT INTO arduino_devices (device_id, product_id) VALUES (%lld, %lld)", first,
             (long long)pid);
    assert_int_equal(notified(c, sql, buf, 1 << 16), 1);
    snprintf(sql, sizeof sql, "a:%lld", first);
    assert_string_equal(buf, sql);
    snprintf(sql, sizeof sql,
             "INSERT INTO arduino_devices (device_id, product_id, mqtt_seen) VALUES (%lld, %lld, 0)"
             " ON CONFLICT (device_id) DO UPDATE SET mqtt_seen = excluded.mqtt_seen",
             first, (long long)pid);
    assert_int_equal(notified(c, sql, buf, 1 << 16), 1);
    assert_int_equal(ids_in(buf, 'a', base, base + 600), 1);
    snprintf(sql, sizeof sql,
             "INSERT INTO arduino_devices (device_id, product_id, last_checkin)"
             " VALUES (%lld, %lld, 9) ON CONFLICT (device_id) DO UPDATE SET"
             " last_checkin = excluded.last_checkin",
             first, (long long)pid);
    assert_int_equal(notified(c, sql, buf, 1 << 16), 0);
    /* a rolled-back write sends nothing */
    assert_int_equal(notified(c, "BEGIN; UPDATE commands SET state = 3; ROLLBACK", buf, 1 << 16),
                     0);
    PQfinish(c);
    free(buf);
}

/* An op applies its own notifications before it returns, to the slots of
 * the devices it wrote; payloads move what they name and nothing else. */
static void test_generation_apply(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t pid = mk_product(s, "gen"), a = mk_device(s, pid, "a", 1), b = mk_device(s, pid, "b", 1);
    struct fota_presence pr = { a, 1700000000, 1 };
    struct fota_device d;
    uint64_t ga, gb, g7, g8;

    assert_true((uint64_t)a % FOTA_STORE_DEVICE_SLOTS != (uint64_t)b % FOTA_STORE_DEVICE_SLOTS);
    assert_int_equal(s->ops->device_get(s, a, &d), 0);
    ga = fota_store_device_generation(s, a);
    gb = fota_store_device_generation(s, b);
    assert_int_equal(s->ops->device_update(s, &d, FOTA_DEV_F_NAME), 0);
    assert_true(fota_store_device_generation(s, a) > ga);
    assert_true(fota_store_device_generation(s, b) == gb);
    ga = fota_store_device_generation(s, a);
    assert_int_equal(s->ops->device_presence_batch(s, &pr, 1), 0);
    assert_true(fota_store_device_generation(s, a) == ga);

    g7 = fota_store_device_generation(s, 7);
    g8 = fota_store_device_generation(s, 8);
    fota_store_pg_gen_apply(s, "d:7,4103");
    assert_int_equal(fota_store_device_generation(s, 7), g7 + 2);   /* 4103 shares 7's slot */
    assert_int_equal(fota_store_device_generation(s, 8), g8);
    ga = fota_store_arduino_generation(s, 8);
    fota_store_pg_gen_apply(s, "a:8");
    assert_int_equal(fota_store_arduino_generation(s, 8), ga + 1);
    assert_int_equal(fota_store_device_generation(s, 8), g8);
    fota_store_pg_gen_apply(s, "d*");
    assert_int_equal(fota_store_device_generation(s, 8), g8 + 1);
    assert_int_equal(fota_store_arduino_generation(s, 8), ga + 1);
    g8 = fota_store_device_generation(s, 8);
    fota_store_pg_gen_apply(s, "x:8");
    fota_store_pg_gen_apply(s, "d:");
    fota_store_pg_gen_apply(s, "d:zz");
    assert_int_equal(fota_store_device_generation(s, 8), g8);
    ga = fota_store_generation(s);
    fota_store_pg_gen_apply(s, "*");
    assert_true(fota_store_generation(s) > ga);
    assert_int_equal(fota_store_device_generation(s, 8), g8 + 1);
}

/* The server restarts under an open store: the next op reconnects and
 * prepares its statements again, or answers FOTA_EUNAVAIL while it cannot;
 * within the back-off (at most a second) one succeeds. */
static void test_reconnect_after_restart(void **state)
{
    struct fota_store *s = store_of(state);
    int n = fota_store_pg_schema_version(), rc, tries = 0;
    struct pg_conn *c;
    int64_t v = 0;
    double end;

    assert_int_equal(fota_store_pg_enter(s, "test", &c), 0);
    assert_int_equal(fota_store_pg_leave(c, fota_store_pg_schema_recorded(c, &v)), 0);
    assert_int_equal(v, n);

    assert_int_equal(pg_test_server_restart(&store_pg_server), 0);
    end = now_s() + 10;
    do {
        v = 0;
        rc = fota_store_pg_enter(s, "test", &c);
        if (rc == 0)
            rc = fota_store_pg_leave(c, fota_store_pg_schema_recorded(c, &v));
        assert_true(rc == 0 || rc == FOTA_EUNAVAIL);
        tries++;
        if (rc != 0)
            usleep(20000);
    } while (rc != 0 && now_s() < end);
    assert_int_equal(rc, 0);
    assert_int_equal(v, n);
    assert_int_equal(store_log_errors, 0);
    fprintf(stderr, "reconnected after %d tries\n", tries);

    /* A connection the server drops while the store holds it idle. */
    {
        PGconn *a = admin();
        assert_int_equal(pg_test_server_sql(a, "SELECT pg_terminate_backend(pid, 5000)"
                                               " FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
                                               " AND datname = current_database()"),
                         0);
        PQfinish(a);
    }
    rc = fota_store_pg_enter(s, "test", &c);
    if (rc == 0)
        rc = fota_store_pg_leave(c, fota_store_pg_schema_recorded(c, &v));
    assert_int_equal(rc, 0);
    assert_int_equal(v, n);
}


/* ---- release files in the database (migration 12) ------------------------ */

struct collected {
    unsigned char *buf;
    size_t len, cap, calls;
    int stop_at;   /* sink call (1-based) that answers FOTA_EIO; 0: none */
};

static int collect_sink(void *ud, const void *data, size_t len)
{
    struct collected *c = ud;
    c->calls++;
    if (c->stop_at && (int)c->calls == c->stop_at)
        return FOTA_EIO;
    assert_true(len <= FOTA_BLOB_CHUNK);
    assert_true(c->len + len <= c->cap);
    memcpy(c->buf + c->len, data, len);
    c->len += len;
    return 0;
}

/* blob_put keeps a blob as pieces of FOTA_BLOB_CHUNK bytes, once (a second
 * put of the same bytes writes nothing); blob_fetch hands them back in
 * order with the size; an unknown blob is ENOENT, a piece gone EIO, a sink
 * that stops ends the fetch with its error; an empty blob has no piece. */
static void test_blobs(void **state)
{
    struct fota_store *s = store_of(state);
    size_t len = 2 * FOTA_BLOB_CHUNK + 12345;
    unsigned char *data = malloc(len);
    char h[FOTA_HASH_HEX], e[FOTA_HASH_HEX];
    struct collected c = { .cap = len };
    int64_t size = -1;
    PGconn *a = admin();

    assert_non_null(data);
    c.buf = malloc(len);
    assert_non_null(c.buf);
    for (size_t i = 0; i < len; i++)
        data[i] = (unsigned char)((i * 2654435761u) >> 13);
    assert_int_equal(fota_blob_hash(data, len, h), 0);
    assert_int_equal(s->ops->blob_put(s, h, data, len), 0);
    assert_int_equal(s->ops->blob_put(s, h, data, len), 0);
    assert_int_equal(query_int(a, "SELECT COUNT(*) FROM blobs"), 1);
    assert_int_equal(query_int(a, "SELECT COUNT(*) FROM blob_chunks"), 3);
    assert_int_equal(query_int(a, "SELECT SUM(length(data)) FROM blob_chunks"), (long long)len);
    assert_int_equal(query_int(a, "SELECT MAX(length(data)) FROM blob_chunks"), FOTA_BLOB_CHUNK);

    assert_int_equal(s->ops->blob_fetch(s, h, collect_sink, &c, &size), 0);
    assert_int_equal(size, (int64_t)len);
    assert_int_equal(c.calls, 3);
    assert_int_equal(c.len, len);
    assert_memory_equal(c.buf, data, len);

    c.len = c.calls = 0;
    c.stop_at = 2;
    assert_int_equal(s->ops->blob_fetch(s, h, collect_sink, &c, NULL), FOTA_EIO);
    assert_int_equal(c.calls, 2);
    c.stop_at = 0;

    memcpy(e, h, sizeof e);
    e[0] = e[0] == '0' ? '1' : '0';
    assert_int_equal(s->ops->blob_fetch(s, e, collect_sink, &c, NULL), FOTA_ENOENT);

    assert_int_equal(fota_blob_hash("", 0, e), 0);
    assert_int_equal(s->ops->blob_put(s, e, "", 0), 0);
    c.len = c.calls = 0;
    size = -1;
    assert_int_equal(s->ops->blob_fetch(s, e, collect_sink, &c, &size), 0);
    assert_int_equal(size, 0);
    assert_int_equal(c.calls, 0);

    assert_int_equal(store_log_errors, 0);
    assert_int_equal(pg_test_server_sql(a, "DELETE FROM blob_chunks WHERE idx = 1"), 0);
    c.len = c.calls = 0;
    assert_int_equal(s->ops->blob_fetch(s, h, collect_sink, &c, NULL), FOTA_EIO);
    assert_int_equal(c.calls, 1);
    assert_int_equal(store_log_errors, 1);   /* "blob piece missing in the database" */
    store_log_errors = 0;
    PQfinish(a);
    free(c.buf);
    free(data);
}

/* fota_store_fence: a write of a thread fenced by lease rollouts runs
 * while this instance holds the lease at that epoch and it has not
 * expired, and answers FOTA_EPERM (writing nothing) otherwise; no fence, or
 * a store without an instance id, writes as usual. */
static void test_lease_fence(void **state)
{
    struct fota_command_set row = { 424242, FOTA_CMD_DONE, 1, NULL };
    struct fota_store *s = fx.s;
    PGconn *a = admin();
    PGresult *r;

    (void)state;
    r = PQexec(a, "INSERT INTO leases (name, holder, epoch, expires)"
                  " VALUES ('rollouts', 7, 3, clock_timestamp() + interval '30 s')");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    s->instance_id = 7;
    fota_store_fence(3);
    assert_int_equal(s->ops->command_update_batch(s, &row, 1), 0);
    fota_store_fence(2);   /* an older epoch: the lease was lost and taken again since */
    assert_int_equal(s->ops->command_update_batch(s, &row, 1), FOTA_EPERM);
    fota_store_fence(3);
    PQclear(PQexec(a, "UPDATE leases SET holder = 8"));   /* another instance's */
    assert_int_equal(s->ops->command_update_batch(s, &row, 1), FOTA_EPERM);
    PQclear(PQexec(a, "UPDATE leases SET holder = 7,"
                      " expires = clock_timestamp() - interval '1 s'"));   /* expired */
    assert_int_equal(s->ops->command_update_batch(s, &row, 1), FOTA_EPERM);
    fota_store_fence(0);
    assert_int_equal(s->ops->command_update_batch(s, &row, 1), 0);
    fota_store_fence(3);
    s->instance_id = 0;   /* alone: no lease to check */
    assert_int_equal(s->ops->command_update_batch(s, &row, 1), 0);
    fota_store_fence(0);
    assert_int_equal(store_log_errors, 0);
    PQfinish(a);
}

/* fota_store_pg_ask_*: a request is written only while some instance holds
 * lease rollouts unexpired; taken once; answered by its taker only; ended
 * by its asker when not taken (503 there) or answered, and only with force
 * while taken without a reply. A store of one fotad has none of it. */
static void test_rollout_asks(void **state)
{
    struct fota_store *s = fx.s;
    struct fota_store_ask_end e;
    char *path = NULL, *body = NULL;
    int64_t id = 0, id2 = 0;
    PGconn *a = admin();

    (void)state;
    assert_int_equal(fota_store_pg_ask_add(s, "/v1/rollouts/", "{}", &id), FOTA_ENOTSUP);
    s->instance_id = 7;
    assert_int_equal(fota_store_pg_ask_add(s, "/v1/rollouts/", "{}", &id), FOTA_ENOENT);
    PQclear(PQexec(a, "INSERT INTO leases (name, holder, epoch, expires)"
                      " VALUES ('rollouts', 8, 1, clock_timestamp() + interval '30 s')"));
    assert_int_equal(fota_store_pg_ask_add(s, "/v1/rollouts/", "{\"version\": \"v2\"}", &id), 0);
    assert_int_equal(fota_store_pg_ask_add(s, "/v1/rollouts/3/pause", "", &id2), 0);
    assert_true(id > 0 && id2 > id);
    /* not taken: it stays while the asker waits, and ends without a taker */
    assert_int_equal(fota_store_pg_ask_answer(s, id2, 200, "{}"), FOTA_ENOENT);
    assert_int_equal(fota_store_pg_ask_end(s, id2, 0, &e), 0);
    assert_int_equal(e.taker, 0);
    assert_int_equal(e.status, 0);
    free(e.reply);
    assert_int_equal(fota_store_pg_ask_take(s, id2, &path, &body), FOTA_ENOENT);
    /* the driver (instance 8) takes it, once */
    s->instance_id = 8;
    assert_int_equal(fota_store_pg_ask_take(s, id, &path, &body), 0);
    assert_string_equal(path, "/v1/rollouts/");
    assert_string_equal(body, "{\"version\": \"v2\"}");
    free(path);
    free(body);
    assert_int_equal(fota_store_pg_ask_take(s, id, &path, &body), FOTA_ENOENT);
    s->instance_id = 7;
    assert_int_equal(fota_store_pg_ask_end(s, id, 0, &e), FOTA_EAGAIN);   /* taken, no reply */
    assert_int_equal(fota_store_pg_ask_answer(s, id, 202, "{}"), FOTA_ENOENT);   /* not its taker */
    s->instance_id = 8;
    assert_int_equal(fota_store_pg_ask_answer(s, id, 202, "{\"status\": 202}"), 0);
    s->instance_id = 7;
    assert_int_equal(fota_store_pg_ask_end(s, id, 0, &e), 0);
    assert_int_equal(e.taker, 8);
    assert_int_equal(e.status, 202);
    assert_string_equal(e.reply, "{\"status\": 202}");
    free(e.reply);
    assert_int_equal(fota_store_pg_ask_end(s, id, 1, &e), FOTA_ENOENT);
    /* taken and never answered: only force ends it */
    assert_int_equal(fota_store_pg_ask_add(s, "/v1/rollouts/3/cancel", "", &id), 0);
    PQclear(PQexec(a, "UPDATE rollout_asks SET taker = 8"));
    assert_int_equal(fota_store_pg_ask_end(s, id, 1, &e), 0);
    assert_int_equal(e.taker, 8);
    assert_int_equal(e.status, 0);
    free(e.reply);
    assert_int_equal(query_int(a, "SELECT count(*) FROM rollout_asks"), 0);
    s->instance_id = 0;
    assert_int_equal(store_log_errors, 0);
    PQfinish(a);
}

/* rollout_events_add / _take: a batch is stored as rows of at most
 * FOTA_ROLLOUT_EVENTS_ROW events, each instance's apart, with one
 * notification per call (its payload the rows written); a take deletes
 * the oldest FOTA_ROLLOUT_EVENTS_TAKE rows at most and returns their
 * events in the order written, each with its row's id; a row that does not
 * read as arrays of one length is skipped. */
static void test_rollout_events(void **state)
{
    enum { N = 2 * FOTA_ROLLOUT_EVENTS_ROW + 3 };
    struct fota_rollout_event *ev = calloc(N + FOTA_ROLLOUT_EVENTS_TAKE, sizeof *ev), *out = NULL;
    struct fota_store *s = fx.s;
    PGconn *a = admin();
    PGnotify *note;
    size_t n = 0;

    (void)state;
    assert_non_null(ev);
    PQclear(PQexec(a, "LISTEN fota_rollout_ev"));
    for (int i = 0; i < N + FOTA_ROLLOUT_EVENTS_TAKE; i++) {
        ev[i] = (struct fota_rollout_event){ .rollout_id = 3, .device_id = i + 1,
                                             .nonce = 1000 + i, .kind = 1 + i % 5,
                                             .status = i % 2 ? 200 : 0,
                                             .instance_id = i < N - 1 ? 5 : 6, .at = 77 + i };
        if (i % 7 == 0)   /* a quote and a backslash: the text array's escapes */
            snprintf(ev[i].version, sizeof ev[i].version, "v1.\"%d\\", i);
        else if (i % 7 == 1)   /* a space, a comma and braces: quoted in the text form */
            snprintf(ev[i].version, sizeof ev[i].version, "v 1,{%d}", i);
        else if (i % 7 == 2)   /* the word NULL is a version like any other */
            snprintf(ev[i].version, sizeof ev[i].version, "NULL");
    }
    assert_int_equal(s->ops->rollout_events_add(s, ev, N), 0);
    /* instance 5's N - 1 events in three rows, instance 6's one in a fourth */
    assert_int_equal(query_int(a, "SELECT count(*) FROM rollout_events"), 4);
    assert_int_equal(query_int(a, "SELECT max(cardinality(device_id)) FROM rollout_events"),
                     FOTA_ROLLOUT_EVENTS_ROW);
    assert_int_equal(PQconsumeInput(a), 1);
    note = PQnotifies(a);
    assert_non_null(note);
    assert_string_equal(note->extra, "4");
    PQfreemem(note);
    assert_int_equal(s->ops->rollout_events_take(s, &out, &n), 0);
    assert_int_equal(n, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(out[i].rollout_id, 3);
        assert_int_equal(out[i].device_id, i + 1);
        assert_int_equal(out[i].nonce, 1000 + i);
        assert_int_equal(out[i].kind, ev[i].kind);
        assert_int_equal(out[i].status, ev[i].status);
        assert_string_equal(out[i].version, ev[i].version);
        assert_int_equal(out[i].instance_id, ev[i].instance_id);
        assert_int_equal(out[i].at, 77 + i);
        assert_true(i == 0 || out[i].id >= out[i - 1].id);
        assert_true(i == 0 || (out[i].id != out[i - 1].id) == (i % FOTA_ROLLOUT_EVENTS_ROW == 0 ||
                                                               i == N - 1));
    }
    free(out);
    assert_int_equal(s->ops->rollout_events_take(s, &out, &n), 0);
    assert_int_equal(n, 0);
    free(out);
    /* more rows than one take consumes: the oldest first, the rest next */
    for (int i = 0; i < FOTA_ROLLOUT_EVENTS_TAKE + 4; i++)
        assert_int_equal(s->ops->rollout_events_add(s, &ev[i], 1), 0);
    assert_int_equal(s->ops->rollout_events_take(s, &out, &n), 0);
    assert_int_equal(n, FOTA_ROLLOUT_EVENTS_TAKE);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(out[i].device_id, (int64_t)i + 1);
    free(out);
    assert_int_equal(s->ops->rollout_events_take(s, &out, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(out[0].device_id, FOTA_ROLLOUT_EVENTS_TAKE + 1);
    free(out);
    assert_int_equal(query_int(a, "SELECT count(*) FROM rollout_events"), 0);
    /* a row whose arrays differ in length (written by hand) is skipped, the
     * rows around it read */
    assert_int_equal(s->ops->rollout_events_add(s, &ev[0], 1), 0);
    PQclear(PQexec(a, "INSERT INTO rollout_events (instance_id, rollout_id, device_id, nonce,"
                      " kind, status, version, at) VALUES (5, '{3,3}', '{9}', '{1}', '{1}',"
                      " '{0}', '{\"\"}', '{1}')"));
    assert_int_equal(s->ops->rollout_events_add(s, &ev[1], 1), 0);
    assert_int_equal(s->ops->rollout_events_take(s, &out, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(out[0].device_id, 1);
    assert_int_equal(out[1].device_id, 2);
    free(out);
    assert_int_equal(query_int(a, "SELECT count(*) FROM rollout_events"), 0);
    free(ev);
    assert_int_equal(store_log_errors, 0);
    PQfinish(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrations_numbered, setup, store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_reopen_applies_nothing, setup, store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_open, setup, store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_sqlstate_mapping, setup, store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_every_op_present, setup, store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_connection_per_thread, setup,
                                        store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_executor_threads, setup, store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_report_batch_statements, setup,
                                        store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_loop_guard, setup, store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_generation_triggers, setup, store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_generation_apply, setup, store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_after_restart, setup,
                                        store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_blobs, setup, store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_lease_fence, setup, store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_rollout_asks, setup, store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_rollout_events, setup, store_fixture_teardown),
    };
    int fails;

    evthread_use_pthreads();   /* before any loop's base (test_loop_guard) */
    if (store_backend_postgresql.suite_begin() != 0)
        return 1;
    fails = cmocka_run_group_tests_name("store_pg", tests, NULL, NULL);
    store_backend_postgresql.suite_end();
    return fails;
}
