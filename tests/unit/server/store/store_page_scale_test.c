/* store_page_scale_test.c - device_page at fleet size, on every backend of
 * store_fixture.c: 100,000 devices of a nonos product and 100,000 of an
 * arduino product (written straight into the database in one transaction:
 * through the ops they would take one fsync each). Checks that a walk
 * through every page of an order gives every device once, in order, and
 * that the filters count what they select; prints what a page, a total and
 * each filter cost (CPU time of this process, median of 5: SQLite's work,
 * PostgreSQL's client side only; and its wall time) and what the last
 * check-in's index adds to a presence batch. Nothing here asserts a speed:
 * the figures are for docs/store.md, from a plain build's binary at full
 * size. FOTA_PAGE_SCALE_DEVICES (a power of ten, 1,000 to 1,000,000) sets
 * the devices a product: the sanitizer trees run 10,000, the same checks in
 * a tenth of the time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sqlite3.h>
#include "store_fixture.h"

/* Devices a product (FOTA_PAGE_SCALE_DEVICES, default 100,000). */
static int fleet = 100000;
#define NOW    1700100000
#define RUNS   5

/* The SQL of one backend's database, outside the store. */
struct raw {
    sqlite3 *db;                       /* SQLite */
    PGconn *pg;                        /* PostgreSQL */
};

static void raw_open(const struct store_fixture *fx, struct raw *r)
{
    memset(r, 0, sizeof *r);
    if (strcmp(fx->backend->name, "sqlite") == 0) {
        assert_int_equal(sqlite3_open(fx->where, &r->db), SQLITE_OK);
    } else {
        r->pg = pg_test_server_connect(&store_pg_server, fx->db);
        assert_int_equal(PQstatus(r->pg), CONNECTION_OK);
    }
}

static void raw_close(struct raw *r)
{
    if (r->db)
        sqlite3_close(r->db);
    if (r->pg)
        PQfinish(r->pg);
    memset(r, 0, sizeof *r);
}

static void exec_sql(struct raw *r, const char *sql)
{
    char *err = NULL;
    if (r->pg) {
        assert_int_equal(pg_test_server_sql(r->pg, sql), 0);
        return;
    }
    if (sqlite3_exec(r->db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "%s: %s\n", sql, err ? err : "?");
        sqlite3_free(err);
        fail();
    }
}

/* Product 1 (nonos) and product 2 (arduino, checkin_interval 600 s), each
 * with fleet devices: names in a scrambled order, versions 60/30/10 %,
 * check-ins over a day (arduino: the same, and every tenth known over
 * MQTT), half online; tags: site:a on half, canary on 1 %, rare on 10.
 * The same rows in both dialects (SQLite's printf, PostgreSQL's lpad and
 * to_hex). */
static void fill(const struct store_fixture *fx)
{
    struct raw r;
    char sql[2048];
    raw_open(fx, &r);
    exec_sql(&r, "BEGIN");
    exec_sql(&r, "INSERT INTO products (id, name, created) VALUES (1, 'nonos', 1), (2, 'ard', 1)");
    exec_sql(&r, "INSERT INTO arduino_products (product_id, checkin_interval) VALUES (2, 600)");
    for (int p = 1; p <= 2; p++) {
        if (r.pg)
            snprintf(sql, sizeof sql,
                     "INSERT INTO devices (id, product_id, name, bssid, rom_version,"
                     " last_active, online, created)"
                     " SELECT i + %d, %d, 'device-' || lpad(((i * 7919) %% %d)::text, 6, '0'),"
                     " '18:fe:%02x:' || lpad(to_hex((i >> 16) & 255), 2, '0') || ':'"
                     " || lpad(to_hex((i >> 8) & 255), 2, '0') || ':' || lpad(to_hex(i & 255), 2, '0'),"
                     " CASE WHEN i %% 10 = 0 THEN 'v1.1' WHEN i %% 3 = 0 THEN 'v1.0' ELSE 'v1.2' END,"
                     " %d - (i * 31337) %% 86400, i %% 2, 1600000000 + i / 10"
                     " FROM generate_series(1::bigint, %d) AS c(i)",
                     (p - 1) * fleet, p, fleet, p, NOW, fleet);
        else
            snprintf(sql, sizeof sql,
                     "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < %d)"
                     " INSERT INTO devices (id, product_id, name, bssid, rom_version, last_active,"
                     " online, created)"
                     " SELECT i + %d, %d, printf('device-%%06d', (i * 7919) %% %d),"
                     " printf('18:fe:%02x:%%02x:%%02x:%%02x', (i >> 16) & 255, (i >> 8) & 255, i & 255),"
                     " CASE WHEN i %% 10 = 0 THEN 'v1.1' WHEN i %% 3 = 0 THEN 'v1.0' ELSE 'v1.2' END,"
                     " %d - (i * 31337) %% 86400, i %% 2, 1600000000 + i / 10 FROM c",
                     fleet, (p - 1) * fleet, p, fleet, p, NOW);
        exec_sql(&r, sql);
    }
    snprintf(sql, sizeof sql,
             "INSERT INTO arduino_devices (device_id, product_id, sta_mac, chip_id, last_checkin,"
             " mqtt_topic, mqtt_lwt)"
             " SELECT id, 2, UPPER(bssid), id * 13, last_active,"
             " CASE WHEN id %% 10 = 0 THEN 't' ELSE '' END,"
             " CASE WHEN id %% 20 = 0 THEN 'Online' ELSE '' END FROM devices WHERE product_id = 2");
    exec_sql(&r, sql);
    exec_sql(&r, "INSERT INTO device_tags (device_id, tag) SELECT id, 'site:a' FROM devices"
                 " WHERE id % 2 = 0");
    exec_sql(&r, "INSERT INTO device_tags (device_id, tag) SELECT id, 'canary' FROM devices"
                 " WHERE id % 100 = 7");
    snprintf(sql, sizeof sql, "INSERT INTO device_tags (device_id, tag) SELECT id, 'rare'"
             " FROM devices WHERE product_id = 1 AND id %% %d = 77", fleet / 10);
    exec_sql(&r, sql);
    exec_sql(&r, "COMMIT");
    /* PostgreSQL: the visibility map too, so that counts may read indexes only */
    exec_sql(&r, r.pg ? "VACUUM ANALYZE" : "ANALYZE");
    raw_close(&r);
}

static double cpu_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static double wall_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Runs q RUNS times; prints the median CPU and wall ms; returns the rows
 * of the last run's page and the total. */
static size_t measure(struct fota_store *s, const char *what, const struct fota_device_query *q,
                      int with_total, int64_t *total)
{
    double cpu[RUNS], wall[RUNS];
    size_t n = 0;
    for (int r = 0; r < RUNS; r++) {
        struct fota_device *rows = NULL;
        double c0 = cpu_ms(), w0 = wall_ms();
        assert_int_equal(s->ops->device_page(s, q, NOW, &rows, &n, with_total ? total : NULL), 0);
        cpu[r] = cpu_ms() - c0;
        wall[r] = wall_ms() - w0;
        free(rows);
    }
    qsort(cpu, RUNS, sizeof cpu[0], cmp_double);
    qsort(wall, RUNS, sizeof wall[0], cmp_double);
    printf("  %-58s %4zu rows %7.2f ms cpu %7.2f ms wall", what, n, cpu[RUNS / 2],
           wall[RUNS / 2]);
    if (with_total)
        printf("  total %lld", (long long)*total);
    printf("\n");
    return n;
}

static struct fota_device_query page(int64_t pid, int sort, int desc)
{
    struct fota_device_query q;
    memset(&q, 0, sizeof q);
    q.sel.product_id = pid;
    q.sel.online = -1;
    q.sort = sort;
    q.desc = desc;
    q.limit = 50;
    return q;
}

/* Every page of product 1 by name, 1000 rows at a time: each device once,
 * in (name, id) order. */
static void walk_all(struct fota_store *s)
{
    struct fota_device_query q = page(1, FOTA_DEVICE_SORT_NAME, 0);
    char *seen = calloc((size_t)fleet + 1, 1);
    char last[FOTA_NAME_MAX] = "";
    int64_t last_id = 0;
    size_t total = 0, pages = 0;
    double c0 = cpu_ms(), w0 = wall_ms();
    assert_non_null(seen);
    q.limit = 1000;
    for (;;) {
        struct fota_device *rows = NULL;
        size_t n = 0;
        assert_int_equal(s->ops->device_page(s, &q, NOW, &rows, &n, NULL), 0);
        for (size_t i = 0; i < n; i++) {
            int c = strcmp(rows[i].name, last);
            assert_true(c > 0 || (c == 0 && rows[i].id > last_id));
            assert_true(rows[i].id >= 1 && rows[i].id <= fleet);
            assert_int_equal(seen[rows[i].id], 0);
            seen[rows[i].id] = 1;
            memcpy(last, rows[i].name, sizeof last);
            last_id = rows[i].id;
        }
        total += n;
        pages++;
        if (n)
            fota_device_key_of(&rows[n - 1], q.sort, &q.after);
        free(rows);
        if (n < q.limit)
            break;
        assert_true(pages <= (size_t)fleet / 1000 + 1);
    }
    assert_int_equal(total, fleet);
    printf("  %-58s %4zu pages %6.1f ms cpu %7.1f ms wall\n",
           "walk: every page of 1000 by name (product 1)", pages, cpu_ms() - c0, wall_ms() - w0);
    free(seen);
}

/* A presence batch of 10,000 rows (the channel writes one a second). */
static void presence(struct fota_store *s, const char *what)
{
    static struct fota_presence rows[10000];
    double cpu[RUNS], wall[RUNS];
    for (int r = 0; r < RUNS; r++) {
        for (int i = 0; i < 10000; i++)
            rows[i] = (struct fota_presence){ 1 + (i * 9 + r) % fleet, NOW + r + 1, 1 };
        double c0 = cpu_ms(), w0 = wall_ms();
        assert_int_equal(s->ops->device_presence_batch(s, rows, 10000), 0);
        cpu[r] = cpu_ms() - c0;
        wall[r] = wall_ms() - w0;
    }
    qsort(cpu, RUNS, sizeof cpu[0], cmp_double);
    qsort(wall, RUNS, sizeof wall[0], cmp_double);
    printf("  %-58s %7.2f ms cpu %7.2f ms wall\n", what, cpu[RUNS / 2], wall[RUNS / 2]);
}

/* The name prefix of the last tenth of the names: "device-09" of 100,000
 * (device-090000 to device-099999), "device-009" of 10,000. */
static void name_prefix(char *out, size_t size)
{
    int digits = 0;

    for (int n = fleet / 10; n > 1; n /= 10)
        digits++;
    snprintf(out, size, "device-%06d", fleet - fleet / 10);
    out[strlen(out) - (size_t)digits] = '\0';
}

static void test_page_scale(void **state)
{
    struct store_fixture *fx = store_fx(state);
    struct fota_store *s;
    int64_t total = 0;
    char tenth[16], one[32], chip[16], what[128];
    double t0 = wall_ms();

    fota_store_close(fx->s);
    fx->s = NULL;
    fill(fx);
    assert_int_equal(fx->backend->open(fx, &fx->s), 0);
    s = fx->s;
    printf("%s: device_page with %d devices in each of two products (filled in %.0f ms)\n",
           fx->backend->name, fleet, wall_ms() - t0);

    static const struct {
        int sort, desc;
        const char *what;
    } orders[] = {
        { FOTA_DEVICE_SORT_ID, 0, "first page of 50 by id" },
        { FOTA_DEVICE_SORT_NAME, 0, "first page of 50 by name" },
        { FOTA_DEVICE_SORT_VERSION, 1, "first page of 50 by version, descending" },
        { FOTA_DEVICE_SORT_LAST_ACTIVE, 1, "first page of 50 by last check-in, descending" },
        { FOTA_DEVICE_SORT_CREATED, 1, "first page of 50 by created, descending" },
    };
    for (size_t i = 0; i < sizeof orders / sizeof orders[0]; i++) {
        struct fota_device_query q = page(1, orders[i].sort, orders[i].desc);
        assert_int_equal(measure(s, orders[i].what, &q, 0, NULL), 50);
    }
    struct fota_device_query q = page(1, FOTA_DEVICE_SORT_NAME, 0);
    measure(s, "first page of 50 by name, with the total", &q, 1, &total);
    assert_int_equal(total, fleet);
    q.after.id = fleet / 2 + 1;
    snprintf(q.after.text, sizeof q.after.text, "device-%06d", fleet / 2);
    assert_int_equal(measure(s, "a page of 50 by name from a cursor in the middle", &q, 0, NULL),
                     50);

    q = page(1, FOTA_DEVICE_SORT_NAME, 0);
    q.sel.versions[0] = "v1.1";
    q.sel.nversions = 1;
    measure(s, "version=v1.1 (10 %), by name, with the total", &q, 1, &total);
    assert_int_equal(total, fleet / 10);
    q = page(1, FOTA_DEVICE_SORT_NAME, 0);
    q.sel.tags[0] = "canary";
    q.sel.ntags = 1;
    measure(s, "tag=canary (1 %), by name, with the total", &q, 1, &total);
    assert_int_equal(total, fleet / 100);
    q.sel.tags[0] = "rare";
    measure(s, "tag=rare (10 devices), by name, with the total", &q, 1, &total);
    assert_int_equal(total, 10);
    q.sel.tags[0] = "site:a";
    q.sel.tags[1] = "canary";
    q.sel.ntags = 2;
    measure(s, "tag=site:a&tag=canary (0.5 %), by name, with the total", &q, 1, &total);
    q = page(1, FOTA_DEVICE_SORT_NAME, 0);
    q.sel.online = 1;
    measure(s, "online=true (50 %), by name, with the total", &q, 1, &total);
    assert_int_equal(total, fleet / 2);
    q = page(1, FOTA_DEVICE_SORT_LAST_ACTIVE, 1);
    q.sel.checkin_after = NOW - 864;
    measure(s, "checkin_after=now-864s (1 %), by last check-in, total", &q, 1, &total);
    q = page(1, FOTA_DEVICE_SORT_NAME, 0);
    q.sel.checkin_before = NOW - 86400 + 864;
    measure(s, "checkin_before=now-1d+864s (1 %), by name, total", &q, 1, &total);
    q = page(1, FOTA_DEVICE_SORT_NAME, 0);
    name_prefix(tenth, sizeof tenth);
    q.sel.q = tenth;
    snprintf(what, sizeof what, "q=%s (10 %%, names), by name, with the total", tenth);
    measure(s, what, &q, 1, &total);
    assert_int_equal(total, fleet / 10);
    snprintf(one, sizeof one, "evice-%06d", fleet - 1);
    q.sel.q = one;
    snprintf(what, sizeof what, "q=%s (1 device, names), by name, with the total", one);
    measure(s, what, &q, 1, &total);
    assert_int_equal(total, 1);
    q.sel.q = "12:34:5";
    measure(s, "q=12:34:5 (a MAC fragment), by name, with the total", &q, 1, &total);

    q = page(2, FOTA_DEVICE_SORT_NAME, 0);
    measure(s, "arduino product: first page of 50 by name, with the total", &q, 1, &total);
    q.sel.online = 1;
    measure(s, "arduino product: online=true, by name, with the total", &q, 1, &total);
    q.sel.online = -1;
    snprintf(chip, sizeof chip, "%d", (fleet + 1) * 13);
    q.sel.q = chip;
    snprintf(what, sizeof what, "arduino product: q=%s (a chip id), with the total", chip);
    measure(s, what, &q, 1, &total);

    q = page(0, FOTA_DEVICE_SORT_ID, 0);
    measure(s, "every product: first page of 50 by id, with the total", &q, 1, &total);
    assert_int_equal(total, 2 * fleet);
    q = page(0, FOTA_DEVICE_SORT_NAME, 0);
    measure(s, "every product: first page of 50 by name", &q, 0, NULL);

    walk_all(s);

    presence(s, "presence batch of 10,000 rows (with the index)");
    fota_store_close(fx->s);
    fx->s = NULL;
    struct raw r;
    raw_open(fx, &r);
    exec_sql(&r, "DROP INDEX devices_product_active");
    raw_close(&r);
    assert_int_equal(fx->backend->open(fx, &fx->s), 0);
    presence(fx->s, "presence batch of 10,000 rows (without last_active's index)");
    fflush(stdout);
}

/* FOTA_PAGE_SCALE_DEVICES: a power of ten from 1,000 (the filters' shares
 * are tenths and hundredths of it, the names a permutation of 0..fleet-1). */
static int fleet_size(void)
{
    const char *v = getenv("FOTA_PAGE_SCALE_DEVICES");
    char *end;
    long n;

    if (!v || !*v)
        return 100000;
    n = strtol(v, &end, 10);
    for (long p = 1000; *end == '\0' && p <= 1000000; p *= 10)
        if (n == p)
            return (int)n;
    fprintf(stderr, "FOTA_PAGE_SCALE_DEVICES=%s: want a power of ten from 1000 to 1000000\n", v);
    return -1;
}

int main(void)
{
    int fails = 0;

    fleet = fleet_size();
    if (fleet < 0)
        return 1;

    for (size_t i = 0; i < store_nbackends; i++) {
        const struct store_backend *be = store_backends[i];
        static struct store_fixture fx;
        char group[64];
        memset(&fx, 0, sizeof fx);
        fx.backend = be;
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_prestate_setup_teardown(test_page_scale, store_fixture_setup,
                                                     store_fixture_teardown, &fx),
        };
        if (be->suite_begin() != 0)
            return 1;
        snprintf(group, sizeof group, "store.page_scale.%s", be->name);
        fails += cmocka_run_group_tests_name(group, tests, NULL, NULL);
        be->suite_end();
    }
    return fails ? 1 : 0;
}
