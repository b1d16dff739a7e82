/* store_sqlite_test.c - what only the SQLite store promises: data survives a
 * reopen and a SIGKILL, migrations apply once, WAL is on, a failed release
 * insert leaves no rows, a bad path fails cleanly. */
#include "store_test_util.h"

/* ---- SQLite only ------------------------------------------------------- */

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

static void test_sqlite_reopen(void **state)
{
    struct ctx *c = *state;
    struct fota_store *s = c->s;
    int64_t pid = mk_product(s, "keep"), dev = mk_device(s, pid, "d", 1);
    struct fota_product p;
    struct fota_device d;
    struct fota_rom r;
    struct fota_key k, g;

    mk_rom(s, pid, "v3");
    assert_int_equal(s->ops->rom_set_current(s, pid, "v3"), 0);
    memset(&k, 0, sizeof k);
    fake_hash(k.hash, 3);
    k.kind = FOTA_KEY_MASTER;
    k.product_id = pid;
    k.device_id = dev;
    assert_int_equal(s->ops->key_create(s, &k), 0);
    add_msg(s, pid, dev, "hello");
    fota_store_close(s);

    c->s = s = open_sqlite(c->path);
    assert_int_equal(s->ops->product_get(s, pid, &p), 0);
    assert_string_equal(p.name, "keep");
    assert_string_equal(p.current_version, "v3");
    assert_int_equal(p.devices_total, 1);
    assert_int_equal(s->ops->device_get(s, dev, &d), 0);
    assert_string_equal(d.name, "d");
    assert_int_equal(s->ops->rom_get(s, pid, "v3", &r), 0);
    assert_int_equal(r.nfiles, 2);
    assert_int_equal(s->ops->key_lookup(s, k.hash, &g), 0);
    assert_int_equal(g.device_id, dev);
    /* new ids do not reuse old ones */
    assert_true(mk_product(s, "next") > pid);
}

static void test_sqlite_migrations(void **state)
{
    struct ctx *c = *state;
    int64_t n1, n2, v;

    n1 = count_rows(c->path, "SELECT COUNT(*) FROM schema_migrations");
    assert_true(n1 >= 1);
    v = count_rows(c->path, "SELECT MAX(version) FROM schema_migrations");
    assert_int_equal(v, n1);   /* numbered 1..N, none skipped */
    fota_store_close(c->s);
    c->s = open_sqlite(c->path);   /* second open: nothing re-applied */
    fota_store_close(c->s);
    c->s = open_sqlite(c->path);
    n2 = count_rows(c->path, "SELECT COUNT(*) FROM schema_migrations");
    assert_int_equal(n1, n2);
    assert_int_equal(count_rows(c->path, "PRAGMA user_version"), n1);
    assert_int_equal(log_errors, 0);
}

static void test_sqlite_wal(void **state)
{
    struct ctx *c = *state;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;

    mk_product(c->s, "w");
    assert_int_equal(sqlite3_open_v2(c->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_sqlite_atomic_rom(void **state)
{
    struct ctx *c = *state;
    struct fota_store *s = c->s;
    int64_t pid = mk_product(s, "p");
    struct fota_rom r;

    /* the release row and file 1 insert fine, file 2 violates (rom, name) */
    fill_rom(&r, pid, "v1");
    snprintf(r.files[1].name, sizeof r.files[1].name, "user1.bin");
    assert_int_equal(s->ops->rom_create(s, &r), FOTA_EEXIST);
    assert_int_equal(count_rows(c->path, "SELECT COUNT(*) FROM roms"), 0);
    assert_int_equal(count_rows(c->path, "SELECT COUNT(*) FROM rom_files"), 0);

    /* a failed set_current leaves the old current in place */
    mk_rom(s, pid, "v1");
    assert_int_equal(s->ops->rom_set_current(s, pid, "v1"), 0);
    assert_int_equal(s->ops->rom_set_current(s, pid, "nope"), FOTA_ENOENT);
    assert_int_equal(count_rows(c->path, "SELECT COUNT(*) FROM roms WHERE is_current <> 0"), 1);
    assert_int_equal(count_rows(c->path, "SELECT COUNT(*) FROM rom_files"), 2);
}

/* fotad killed (SIGKILL) right after its calls returned: WAL commits made
 * with synchronous=NORMAL and FULL both survive a crash of the process. */
static void test_sqlite_crash(void **state)
{
    struct ctx *c = *state;
    struct fota_product p;
    struct fota_rom r;
    struct fota_message_filter f;
    struct fota_message *list = NULL;
    size_t n = 0;
    int status = 0;
    pid_t pid;

    fota_store_close(c->s);
    c->s = NULL;
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct fota_store *s = NULL;
        char err[256];
        int64_t prod;
        if (fota_store_sqlite_open(c->path, NULL, NULL, &s, err, sizeof err) != 0)
            _exit(2);
        prod = mk_product(s, "crashy");
        mk_rom(s, prod, "v1");
        if (s->ops->rom_set_current(s, prod, "v1") != 0)
            _exit(3);
        add_msg(s, prod, 0, "before-crash");
        raise(SIGKILL);   /* no close, no checkpoint */
        _exit(4);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    c->s = open_sqlite(c->path);
    assert_int_equal(c->s->ops->product_find(c->s, "crashy", &p), 0);
    assert_string_equal(p.current_version, "v1");
    assert_int_equal(c->s->ops->rom_get(c->s, p.id, "v1", &r), 0);
    assert_int_equal(r.nfiles, 2);
    memset(&f, 0, sizeof f);
    assert_int_equal(c->s->ops->message_list(c->s, &f, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].action, "before-crash");
    free(list);
}

static void test_sqlite_open_fails(void **state)
{
    struct fota_store *s = (struct fota_store *)0x1;
    char err[256] = "";
    char path[300];

    (void)state;
    snprintf(path, sizeof path, "%s/no/such/dir/x.db", tmpdir);
    assert_true(fota_store_sqlite_open(path, test_log, NULL, &s, err, sizeof err) < 0);
    assert_null(s);
    assert_true(err[0] != '\0');
}


/* The generation moves with the catalog (what rom.c caches: keys, devices,
 * releases) and stays put under fleet traffic, so a busy fleet keeps the
 * download caches warm. */
static void test_sqlite_generation(void **state)
{
    struct fota_store *s = ((struct ctx *)*state)->s;
    int64_t pid = mk_product(s, "gen"), dev = mk_device(s, pid, "d", 1);
    struct fota_device d;
    struct fota_command c;
    struct fota_message m;
    struct fota_transfer t;
    struct fota_command_set set;
    struct fota_presence pr = { dev, 1700000000, 1 };
    int64_t ids[1], nonces[1] = { 0 }, devs[1] = { dev };
    uint64_t g = fota_store_generation(s);

    assert_true(g > 0);
    assert_int_equal(s->ops->device_get(s, dev, &d), 0);
    snprintf(d.rom_version, sizeof d.rom_version, "v9");
    snprintf(d.name, sizeof d.name, "renamed");
    assert_int_equal(s->ops->device_update(s, &d, FOTA_DEV_F_REPORTED | FOTA_DEV_F_NAME), 0);
    assert_int_equal(s->ops->device_presence_batch(s, &pr, 1), 0);
    memset(&c, 0, sizeof c);
    c.device_id = dev;
    snprintf(c.action, sizeof c.action, "sys_upgrade");
    assert_int_equal(s->ops->command_create(s, &c), 0);
    c.state = FOTA_CMD_DONE;
    assert_int_equal(s->ops->command_update(s, &c), 0);
    assert_int_equal(s->ops->command_create_many(s, &c, devs, nonces, ids, 1), 0);
    memset(&set, 0, sizeof set);
    set.id = ids[0];
    set.state = FOTA_CMD_ACKED;
    assert_int_equal(s->ops->command_update_batch(s, &set, 1), 0);
    memset(&m, 0, sizeof m);
    m.device_id = dev;
    snprintf(m.action, sizeof m.action, "device_upgrade_success");
    assert_int_equal(s->ops->message_add(s, &m), 0);
    memset(&t, 0, sizeof t);
    t.section = 1;
    snprintf(t.result, sizeof t.result, "ok");
    assert_int_equal(s->ops->transfer_add(s, &t), 0);
    assert_true(fota_store_generation(s) == g);   /* fleet traffic: unchanged */

    d.key_generation++;
    assert_int_equal(s->ops->device_update(s, &d, FOTA_DEV_F_KEYGEN), 0);
    assert_true(fota_store_generation(s) > g);
    g = fota_store_generation(s);
    mk_rom(s, pid, "v10");
    assert_true(fota_store_generation(s) > g);
    g = fota_store_generation(s);
    mk_device(s, pid, "e", 0);
    assert_true(fota_store_generation(s) > g);
}

static struct ctx sql_ctx = { NULL, "" };

#define SQL_T(f) cmocka_unit_test_prestate_setup_teardown(f, open_store, close_store, &sql_ctx),

int main(void)
{
    const struct CMUnitTest tests[] = {
        SQL_T(test_sqlite_reopen)
        SQL_T(test_sqlite_migrations)
        SQL_T(test_sqlite_wal)
        SQL_T(test_sqlite_atomic_rom)
        SQL_T(test_sqlite_crash)
        SQL_T(test_sqlite_generation)
        cmocka_unit_test(test_sqlite_open_fails),
    };
    int fails;

    if (make_tmpdir() != 0)
        return 1;
    fails = cmocka_run_group_tests_name("store.sqlite_only", tests, NULL, NULL);
    rmdir(tmpdir);
    return fails ? 1 : 0;
}
