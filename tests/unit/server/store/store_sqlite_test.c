/* store_sqlite_test.c - what only the SQLite store promises, checked in the
 * database file itself: migrations apply once and are numbered without gaps,
 * WAL is on, a failed release insert leaves no rows, a bad path fails
 * cleanly. The semantics every backend shares are the conformance suite's
 * (store_conformance_test.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
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
        cmocka_unit_test(test_sqlite_open_fails),
    };
    int fails;

    if (store_backend_sqlite.suite_begin() != 0)
        return 1;
    fails = cmocka_run_group_tests_name("store.sqlite_only", tests, NULL, NULL);
    store_backend_sqlite.suite_end();
    return fails ? 1 : 0;
}
