/* store_sqlite_test.c - what only the SQLite store promises, checked in the
 * database file itself: migrations apply once and are numbered without gaps,
 * WAL is on, a failed release insert leaves no rows, the nonce lookup's plan,
 * a full database (FOTA_ENOSPC, logged once a second), the per-device
 * retention's index slices, a bad path fails cleanly. The semantics every
 * backend shares are the conformance suite's (store_conformance_test.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include "clock.h"
#include "store/store_sqlite_int.h"
#include "store_fixture.h"

static int64_t count_rows(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;

    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* PRAGMA integrity_check on the file says "ok". */
static void assert_integrity(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;

    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_sqlite_migrations(void **state)
{
    struct store_fixture *c = store_fx(state);
    int64_t n1, n2, v;

    n1 = count_rows(c->where, "SELECT COUNT(*) FROM schema_migrations");
    assert_true(n1 >= 1);
    v = count_rows(c->where, "SELECT MAX(version) FROM schema_migrations");
    assert_int_equal(v, n1);   /* numbered 1..N, none skipped */
    store_fixture_reopen(c);   /* second open: nothing re-applied */
    store_fixture_reopen(c);
    n2 = count_rows(c->where, "SELECT COUNT(*) FROM schema_migrations");
    assert_int_equal(n1, n2);
    assert_int_equal(count_rows(c->where, "PRAGMA user_version"), n1);
    assert_int_equal(store_log_errors, 0);
}

static void test_sqlite_wal(void **state)
{
    struct store_fixture *c = store_fx(state);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;

    mk_product(c->s, "w");
    assert_int_equal(sqlite3_open_v2(c->where, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_sqlite_atomic_rom(void **state)
{
    struct store_fixture *c = store_fx(state);
    struct fota_store *s = c->s;
    int64_t pid = mk_product(s, "p");
    struct fota_rom r;

    /* the release row and file 1 insert fine, file 2 violates (rom, name) */
    fill_rom(&r, pid, "v1");
    snprintf(r.files[1].name, sizeof r.files[1].name, "user1.bin");
    assert_int_equal(s->ops->rom_create(s, &r), FOTA_EEXIST);
    assert_int_equal(count_rows(c->where, "SELECT COUNT(*) FROM roms"), 0);
    assert_int_equal(count_rows(c->where, "SELECT COUNT(*) FROM rom_files"), 0);

    /* a failed set_current leaves the old current in place */
    mk_rom(s, pid, "v1");
    assert_int_equal(s->ops->rom_set_current(s, pid, "v1"), 0);
    assert_int_equal(s->ops->rom_set_current(s, pid, "nope"), FOTA_ENOENT);
    assert_int_equal(count_rows(c->where, "SELECT COUNT(*) FROM roms WHERE is_current <> 0"), 1);
    assert_int_equal(count_rows(c->where, "SELECT COUNT(*) FROM rom_files"), 2);
}

/* A reply's lookup by nonce is one probe of the (device_id, nonce) index,
 * newest first from the index itself (no scan of the device's commands, no
 * sort). */
static void test_sqlite_nonce_index(void **state)
{
    struct store_fixture *c = store_fx(state);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char plan[512] = "";
    size_t used = 0;

    assert_int_equal(sqlite3_open_v2(c->where, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "EXPLAIN QUERY PLAN SELECT * FROM commands"
                                        " WHERE device_id = 1 AND nonce = 2 ORDER BY id DESC LIMIT 1",
                                        -1, &st, NULL),
                     SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW && used < sizeof plan - 1) {
        int k = snprintf(plan + used, sizeof plan - used, "%s;", (const char *)sqlite3_column_text(st, 3));
        used += k > 0 ? (size_t)k : 0;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    if (!strstr(plan, "USING COVERING INDEX commands_device_nonce") &&
        !strstr(plan, "USING INDEX commands_device_nonce"))
        fail_msg("plan does not use the nonce index: %s", plan);
    if (strstr(plan, "TEMP B-TREE"))
        fail_msg("plan sorts: %s", plan);
}

/* ---- a full disk ---------------------------------------------------------
 * Played by the database's page limit (PRAGMA max_page_count on the store's
 * own connection): SQLite then fails a write that needs a new page with
 * SQLITE_FULL, as it does when the file system refuses one. */

static struct {
    int lines;                 /* "no space left on device" lines */
    unsigned long suppressed;  /* the sum of their suppressed=N */
    int other_errors;          /* any other line at ERROR */
} full_log;

static void full_log_cb(void *ud, int level, const char *msg)
{
    const char *k = strstr(msg, "suppressed=");

    (void)ud;
    if (strstr(msg, "no space left on device") && k) {
        full_log.lines++;
        full_log.suppressed += strtoul(k + strlen("suppressed="), NULL, 10);
    } else if (level >= FOTA_LOG_ERROR) {
        full_log.other_errors++;
    }
}

static void db_exec(struct fota_store *s, const char *sql)
{
    sqlite3 *db = fota_store_sqlite_cast(s)->db;   /* the store's own connection */

    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
}

static int add_big_msg(struct fota_store *s, int64_t pid)
{
    struct fota_message m = { .product_id = pid };

    snprintf(m.action, sizeof m.action, "fill");
    memset(m.body, 'x', sizeof m.body - 1);
    return s->ops->message_add(s, &m);
}

/* Writes fail with FOTA_ENOSPC (not EIO), reads go on, the line says so at
 * most once a second with the count held back, and once there is room
 * again writes succeed on an intact database. */
static void test_sqlite_full(void **state)
{
    struct store_fixture *c = store_fx(state);
    struct fota_message_filter f = { .limit = 2 };
    struct fota_message *list = NULL;
    struct fota_product p = { 0 };
    struct fota_store *s;
    char err[256], sql[64];
    int64_t pid, pages;
    unsigned long failures = 0;
    size_t n = 0, stored = 0;
    int rc = 0;

    fota_store_close(c->s);
    memset(&full_log, 0, sizeof full_log);
    assert_int_equal(fota_store_sqlite_open(c->where, full_log_cb, NULL, &c->s, err, sizeof err), 0);
    s = c->s;
    pid = mk_product(s, "full");
    pages = count_rows(c->where, "PRAGMA page_count");
    assert_true(pages > 0);
    snprintf(sql, sizeof sql, "PRAGMA max_page_count = %lld", (long long)pages + 4);
    db_exec(s, sql);

    for (int i = 0; i < 100 && rc == 0; i++)
        if ((rc = add_big_msg(s, pid)) == 0)
            stored++;
    assert_int_equal(rc, FOTA_ENOSPC);
    assert_true(stored >= 2);
    failures++;
    for (int i = 0; i < 20; i++, failures++)
        assert_int_equal(add_big_msg(s, pid), FOTA_ENOSPC);
    /* a durable write fails the same way (once the pages' free room is used) */
    memset(p.description, 'd', sizeof p.description - 1);
    rc = 0;
    for (int i = 0; i < 100 && rc == 0; i++) {
        snprintf(p.name, sizeof p.name, "another-%d", i);
        rc = s->ops->product_create(s, &p);
    }
    assert_int_equal(rc, FOTA_ENOSPC);
    failures++;
    /* reads are served */
    assert_int_equal(s->ops->message_list(s, &f, &list, &n), 0);
    assert_int_equal(n, 2);
    free(list);
    /* every failure is either a line or counted in the next one's suppressed= */
    assert_true(full_log.lines >= 1);
    fota_clock_advance_ms(1001);
    assert_int_equal(add_big_msg(s, pid), FOTA_ENOSPC);
    failures++;
    assert_true(full_log.lines >= 2);
    assert_int_equal((unsigned long)full_log.lines + full_log.suppressed, failures);
    assert_int_equal(full_log.other_errors, 0);

    db_exec(s, "PRAGMA max_page_count = 1073741823");   /* room again */
    assert_int_equal(add_big_msg(s, pid), 0);
    assert_int_equal(s->ops->product_create(s, &p), 0);   /* the name that failed */
    fota_store_close(c->s);
    c->s = NULL;
    assert_integrity(c->where);
}

static int64_t dev_rows(const char *path, int64_t dev)
{
    char sql[96];

    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM messages WHERE device_id = %lld", (long long)dev);
    return count_rows(path, sql);
}

/* The per-device cap reads the (device_id, id) index a slice at a time
 * (20,000 entries a call): devices larger than a slice and devices cut by a
 * slice's end keep exactly their newest rows, the product-wide messages and
 * a device under the cap are untouched, and the round takes about one call
 * per batch deleted plus one per slice read. */
static void test_sqlite_prune_slices(void **state)
{
    static const int64_t rows[][2] = { { 1, 19990 }, { 2, 30 }, { 3, 25000 }, { 0, 4980 }, { 4, 5 } };
    struct store_fixture *c = store_fx(state);
    struct fota_store *s = c->s;
    struct fota_retention r = { .keep_per_device = 10 };
    int64_t newest3, tenth3;
    size_t n, total = 0, calls = 0;
    char sql[320];
    int more = 1;

    db_exec(s, "BEGIN");
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        snprintf(sql, sizeof sql,
                 "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < %lld)"
                 " INSERT INTO messages (product_id, device_id, action, body, created)"
                 " SELECT 1, %lld, 'datapoint', '{}', 1700000000 FROM c",
                 (long long)rows[i][1], (long long)rows[i][0]);
        db_exec(s, sql);
    }
    db_exec(s, "COMMIT");
    newest3 = count_rows(c->where, "SELECT MAX(id) FROM messages WHERE device_id = 3");
    while (more) {
        assert_int_equal(s->ops->message_prune(s, &r, &n, &more), 0);
        assert_true(n <= FOTA_PRUNE_BATCH);
        total += n;
        assert_true(++calls < 1000);
    }
    assert_int_equal(total, (19990 - 10) + (30 - 10) + (25000 - 10));
    /* full batches, the slices that end without a whole device, the last */
    assert_true(calls <= total / FOTA_PRUNE_BATCH + 50005 / 20000 + 2);
    assert_int_equal(dev_rows(c->where, 1), 10);
    assert_int_equal(dev_rows(c->where, 2), 10);
    assert_int_equal(dev_rows(c->where, 3), 10);
    assert_int_equal(dev_rows(c->where, 0), 4980);
    assert_int_equal(dev_rows(c->where, 4), 5);
    tenth3 = count_rows(c->where, "SELECT MIN(id) FROM messages WHERE device_id = 3");
    assert_int_equal(newest3 - tenth3, 9);   /* ids 1..N per device: the newest ten stay */
    assert_int_equal(store_log_errors, 0);
}

static void test_sqlite_open_fails(void **state)
{
    struct fota_store *s = (struct fota_store *)0x1;
    char err[256] = "";
    char path[300];

    (void)state;
    snprintf(path, sizeof path, "%s/no/such/dir/x.db", store_sqlite_dir);
    assert_true(fota_store_sqlite_open(path, store_test_log, NULL, &s, err, sizeof err) < 0);
    assert_null(s);
    assert_true(err[0] != '\0');
}

static struct store_fixture fx = { .backend = &store_backend_sqlite };

#define SQL_T(f) cmocka_unit_test_prestate_setup_teardown(f, store_fixture_setup, store_fixture_teardown, &fx),

int main(void)
{
    const struct CMUnitTest tests[] = {
        SQL_T(test_sqlite_migrations)
        SQL_T(test_sqlite_wal)
        SQL_T(test_sqlite_atomic_rom)
        SQL_T(test_sqlite_nonce_index)
        SQL_T(test_sqlite_full)
        SQL_T(test_sqlite_prune_slices)
        cmocka_unit_test(test_sqlite_open_fails),
    };
    int fails;

    if (store_backend_sqlite.suite_begin() != 0)
        return 1;
    fails = cmocka_run_group_tests_name("store.sqlite_only", tests, NULL, NULL);
    store_backend_sqlite.suite_end();
    return fails ? 1 : 0;
}
