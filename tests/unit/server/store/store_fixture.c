/* store_fixture.c - the store backends under test, the per-test store and
 * the row builders shared by the store tests (store_fixture.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include "fota_str.h"
#include "store_fixture.h"

int store_log_errors;

void store_test_log(void *ud, int level, const char *msg)
{
    (void)ud;
    if (level >= FOTA_LOG_ERROR)
        store_log_errors++;
    if (getenv("STORE_TEST_VERBOSE"))
        fprintf(stderr, "log %d: %s\n", level, msg);
}

/* ---- SQLite: one database file per test in a directory per run ---------- */

char store_sqlite_dir[64];
static int sqlite_counter;

static int sqlite_begin(void)
{
    snprintf(store_sqlite_dir, sizeof store_sqlite_dir, "/tmp/fota-store-test-XXXXXX");
    if (!mkdtemp(store_sqlite_dir)) {
        perror("mkdtemp");
        return -1;
    }
    return 0;
}

static void sqlite_end(void)
{
    if (rmdir(store_sqlite_dir) != 0)
        perror("rmdir store test dir");
}

static void sqlite_create(struct store_fixture *fx)
{
    snprintf(fx->where, sizeof fx->where, "%s/t%d.db", store_sqlite_dir, ++sqlite_counter);
}

static int sqlite_open(const struct store_fixture *fx, struct fota_store **out)
{
    char err[256] = "";
    int rc = fota_store_sqlite_open(fx->where, store_test_log, NULL, out, err, sizeof err);

    if (rc != 0)
        fprintf(stderr, "sqlite open %s: %s\n", fx->where, err);
    return rc;
}

static void sqlite_drop(const struct store_fixture *fx)
{
    static const char *const suffix[] = { "", "-wal", "-shm" };
    char p[300];

    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        snprintf(p, sizeof p, "%s%s", fx->where, suffix[i]);
        unlink(p);
    }
}

const struct store_backend store_backend_sqlite = {
    .name = "sqlite",
    .suite_begin = sqlite_begin,
    .suite_end = sqlite_end,
    .create = sqlite_create,
    .open = sqlite_open,
    .drop = sqlite_drop,
};

/* ---- PostgreSQL: one database per test on a server per run -------------- */

struct pg_test_server store_pg_server;
int store_pg_migrated_template;
static PGconn *pg_admin;          /* to database postgres: creates and drops the tests' */
static int pg_counter;

/* sql on the admin connection, made again once if the server dropped it
 * (a test that restarts the server). */
static int pg_admin_sql(const char *sql)
{
    if (pg_test_server_sql(pg_admin, sql) == 0)
        return 0;
    if (PQstatus(pg_admin) == CONNECTION_OK)
        return -1;
    PQreset(pg_admin);
    return pg_test_server_sql(pg_admin, sql);
}

/* The database t_template, created and migrated by the store once: the
 * template of each test's database when store_pg_migrated_template is set. */
static int pg_template_make(void)
{
    char dsn[256], err[256] = "";
    struct fota_store *s = NULL;

    if (pg_admin_sql("CREATE DATABASE t_template TEMPLATE template0") != 0)
        return -1;
    pg_test_server_dsn(&store_pg_server, "t_template", dsn, sizeof dsn);
    if (fota_store_pg_open(dsn, store_test_log, NULL, &s, err, sizeof err) != 0) {
        fprintf(stderr, "postgresql open %s: %s\n", dsn, err);
        return -1;
    }
    fota_store_close(s);
    return 0;
}

static int pg_begin(void)
{
    if (pg_test_server_start(&store_pg_server) != 0)
        return -1;
    pg_admin = pg_test_server_connect(&store_pg_server, "postgres");
    if (PQstatus(pg_admin) != CONNECTION_OK) {
        fprintf(stderr, "postgresql test server: %s", PQerrorMessage(pg_admin));
        PQfinish(pg_admin);
        pg_admin = NULL;
        pg_test_server_stop(&store_pg_server);
        return -1;
    }
    if (store_pg_migrated_template && pg_template_make() != 0) {
        fprintf(stderr, "postgresql test server: cannot make the migrated template\n");
        PQfinish(pg_admin);
        pg_admin = NULL;
        pg_test_server_stop(&store_pg_server);
        return -1;
    }
    return 0;
}

static void pg_end(void)
{
    PQfinish(pg_admin);
    pg_admin = NULL;
    if (pg_test_server_stop(&store_pg_server) != 0)
        fprintf(stderr, "postgresql test server: stop failed\n");
}

static void pg_create(struct store_fixture *fx)
{
    char sql[96];

    snprintf(fx->db, sizeof fx->db, "t_%d", ++pg_counter);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s TEMPLATE %s", fx->db,
             store_pg_migrated_template ? "t_template" : "template0");
    assert_int_equal(pg_admin_sql(sql), 0);
    pg_test_server_dsn(&store_pg_server, fx->db, fx->where, sizeof fx->where);
}

static int pg_open(const struct store_fixture *fx, struct fota_store **out)
{
    char err[256] = "";
    int rc = fota_store_pg_open(fx->where, store_test_log, NULL, out, err, sizeof err);

    if (rc != 0)
        fprintf(stderr, "postgresql open %s: %s\n", fx->where, err);
    return rc;
}

static void pg_drop(const struct store_fixture *fx)
{
    char sql[96];

    snprintf(sql, sizeof sql, "DROP DATABASE %s WITH (FORCE)", fx->db);
    assert_int_equal(pg_admin_sql(sql), 0);
}

const struct store_backend store_backend_postgresql = {
    .name = "postgresql",
    .suite_begin = pg_begin,
    .suite_end = pg_end,
    .create = pg_create,
    .open = pg_open,
    .drop = pg_drop,
};

/* Every backend the conformance suite runs on. */
const struct store_backend *const store_backends[] = {
    &store_backend_sqlite,
    &store_backend_postgresql,
};
const size_t store_nbackends = sizeof store_backends / sizeof store_backends[0];

int store_backend_runs(const struct store_backend *be, const char *table, const char *name)
{
    size_t tl = strlen(table);

    if (!be->tables)
        return 1;
    for (const char *const *t = be->tables; *t; t++)
        if (strcmp(*t, table) == 0 ||
            (strncmp(*t, table, tl) == 0 && (*t)[tl] == '/' && strcmp(*t + tl + 1, name) == 0))
            return 1;
    return 0;
}

/* ---- per test ----------------------------------------------------------- */

static void fixture_open(struct store_fixture *fx)
{
    fx->s = NULL;
    assert_int_equal(fx->backend->open(fx, &fx->s), 0);
    assert_non_null(fx->s);
    assert_string_equal(fx->s->ops->name, fx->backend->name);
}

int store_fixture_setup(void **state)
{
    struct store_fixture *fx = *state;

    store_log_errors = 0;
    fx->backend->create(fx);
    fixture_open(fx);
    return 0;
}

int store_fixture_teardown(void **state)
{
    struct store_fixture *fx = *state;

    fota_store_close(fx->s);
    fx->s = NULL;
    fx->backend->drop(fx);
    return 0;
}

void store_fixture_reopen(struct store_fixture *fx)
{
    fota_store_close(fx->s);
    fixture_open(fx);
}

/* ---- row builders ------------------------------------------------------- */

int64_t mk_product(struct fota_store *s, const char *name)
{
    struct fota_product p;

    memset(&p, 0, sizeof p);
    fota_str_copy(p.name, sizeof p.name, name);
    snprintf(p.serial, sizeof p.serial, "serial-%s", name);
    snprintf(p.description, sizeof p.description, "product %s", name);
    p.flash_map = 4;
    assert_int_equal(s->ops->product_create(s, &p), 0);
    assert_true(p.id > 0);
    return p.id;
}

void fake_hash(char out[FOTA_HASH_HEX], int seed)
{
    for (int i = 0; i < 64; i++)
        out[i] = "0123456789abcdef"[(seed * 7 + i) & 15];
    out[64] = '\0';
}

void fill_rom(struct fota_rom *r, int64_t product_id, const char *version)
{
    memset(r, 0, sizeof *r);
    r->product_id = product_id;
    fota_str_copy(r->version, sizeof r->version, version);
    snprintf(r->codename, sizeof r->codename, "code-%s", version);
    snprintf(r->changelog, sizeof r->changelog, "changes in %s\nline two", version);
    r->nfiles = 2;
    snprintf(r->files[0].name, sizeof r->files[0].name, "user1.bin");
    fake_hash(r->files[0].sha256, 1);
    r->files[0].size = 300000;
    r->files[0].slot = 1;
    snprintf(r->files[1].name, sizeof r->files[1].name, "user2.bin");
    fake_hash(r->files[1].sha256, 2);
    r->files[1].size = 300004;
    r->files[1].slot = 2;
}

int64_t mk_rom(struct fota_store *s, int64_t product_id, const char *version)
{
    struct fota_rom r;

    fill_rom(&r, product_id, version);
    assert_int_equal(s->ops->rom_create(s, &r), 0);
    assert_true(r.id > 0);
    return r.id;
}

int64_t mk_device(struct fota_store *s, int64_t product_id, const char *name, int activated)
{
    struct fota_device d;

    memset(&d, 0, sizeof d);
    d.product_id = product_id;
    fota_str_copy(d.name, sizeof d.name, name);
    snprintf(d.bssid, sizeof d.bssid, "18:fe:34:00:00:01");
    d.activated = activated;
    d.activated_at = activated ? 1700000000 : 0;
    snprintf(d.rom_version, sizeof d.rom_version, "v1.0");
    assert_int_equal(s->ops->device_create(s, &d), 0);
    assert_true(d.id > 0);
    return d.id;
}

void mk_key(struct fota_store *s, int kind, int64_t product, int64_t device, int seed)
{
    struct fota_key k;

    memset(&k, 0, sizeof k);
    fake_hash(k.hash, seed);
    k.kind = kind;
    k.product_id = product;
    k.device_id = device;
    assert_int_equal(s->ops->key_create(s, &k), 0);
}

int64_t mk_command(struct fota_store *s, int64_t device)
{
    struct fota_command c;

    memset(&c, 0, sizeof c);
    c.device_id = device;
    snprintf(c.action, sizeof c.action, "sys_reboot");
    assert_int_equal(s->ops->command_create(s, &c), 0);
    return c.id;
}

void assert_json_text(const struct json_t *v, const char *want)
{
    char *t = v ? json_dumps(v, JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
    assert_string_equal(t ? t : "", want);
    free(t);
}

struct json_t *json_of(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);
    assert_non_null(v);
    return v;
}

int64_t add_msg(struct fota_store *s, int64_t product, int64_t device, const char *action)
{
    struct fota_message m;

    memset(&m, 0, sizeof m);
    m.product_id = product;
    m.device_id = device;
    fota_str_copy(m.action, sizeof m.action, action);
    snprintf(m.body, sizeof m.body, "{\"a\": \"%s\"}", action);
    assert_int_equal(s->ops->message_add(s, &m), 0);
    assert_true(m.id > 0 && m.created > 1600000000);
    return m.id;
}
