/* store_fixture.h - what the store tests share: the table of store backends
 * the conformance suite runs on, a fresh store per test, row builders, and
 * the case tables of the suite (store_cases_*.c).
 *
 * A backend joins the suite with one row in store_backends[]
 * (store_fixture.c): how to prepare a run, make an empty database, open it
 * (again, as fotad does at start) and remove it. Every case then runs on it
 * unchanged; a case that fails on one backend and not another is a bug in
 * that backend or in store.h's wording. */
#ifndef FOTA_STORE_FIXTURE_H
#define FOTA_STORE_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "store/store.h"
#include "pg_test_server.h"

struct store_fixture;

struct store_backend {
    const char *name;     /* ops->name of its stores; the cmocka group is store.<name> */
    /* Once per run, before the first and after the last test (a temporary
     * directory; a database server started for the run). begin: 0 or -1,
     * and a failed begin fails the run: a missing prerequisite is never a
     * skip. */
    int (*suite_begin)(void);
    void (*suite_end)(void);
    /* Names a new, empty database in fx->where (nothing opened yet). */
    void (*create)(struct store_fixture *fx);
    /* Opens the database fx->where names, creating its schema when new, as
     * fotad does at start: 0 or FOTA_E*, *out NULL on failure. Also called
     * in a forked child (the crash case). */
    int (*open)(const struct store_fixture *fx, struct fota_store **out);
    /* Removes the database fx->where names (closed by then). */
    void (*drop)(const struct store_fixture *fx);
    /* What the suites run on it, NULL terminated: case tables by name
     * ("catalog": every case of store_cases_catalog.c; "exec":
     * store_exec_test.c's) or single cases ("catalog/test_roms"); NULL:
     * everything. A backend being built runs the cases whose ops it has. */
    const char *const *tables;
};

struct store_fixture {
    const struct store_backend *backend;
    struct fota_store *s;          /* open during a test */
    char where[256];               /* SQLite: the database file; PostgreSQL: the DSN */
    char db[32];                   /* PostgreSQL: the database's name */
};

/* Whether be's row names case `name` of table `table` (store_backend.tables:
 * the table's name, or "table/name"). */
int store_backend_runs(const struct store_backend *be, const char *table, const char *name);

extern const struct store_backend *const store_backends[];
extern const size_t store_nbackends;

/* The SQLite backend's row, for store_sqlite_test.c. */
extern const struct store_backend store_backend_sqlite;
/* The run's temporary directory of the SQLite backend (after suite_begin). */
extern char store_sqlite_dir[64];

/* The PostgreSQL backend's row, for store_pg_test.c, and its server (the
 * run's: started by suite_begin). */
extern const struct store_backend store_backend_postgresql;
extern struct pg_test_server store_pg_server;
/* Set before suite_begin: each test's database is a copy of one the store
 * migrated once at suite_begin (create names a fresh store whose schema is
 * already there; its open migrates nothing). The conformance suite's cases
 * want an empty store, not the migrations, which store_pg_test.c checks on
 * databases made from template0 (the default). */
extern int store_pg_migrated_template;

/* cmocka setup/teardown: *state is the struct store_fixture; setup makes a
 * new database and opens it, teardown closes and removes it. */
int store_fixture_setup(void **state);
int store_fixture_teardown(void **state);
/* Closes fx->s and opens the same database again (a restart). */
void store_fixture_reopen(struct store_fixture *fx);

static inline struct store_fixture *store_fx(void **state)
{
    return *state;
}

static inline struct fota_store *store_of(void **state)
{
    return store_fx(state)->s;
}

/* Log callback of every test store; counts lines at ERROR since setup. */
void store_test_log(void *ud, int level, const char *msg);
extern int store_log_errors;

/* ---- row builders (each asserts success) ------------------------------- */

int64_t mk_product(struct fota_store *s, const char *name);
/* A 64-hex-digit string derived from seed (distinct seeds, distinct hashes). */
void fake_hash(char out[FOTA_HASH_HEX], int seed);
/* A release of two files (user1.bin, user2.bin; hashes of seeds 1 and 2). */
void fill_rom(struct fota_rom *r, int64_t product_id, const char *version);
int64_t mk_rom(struct fota_store *s, int64_t product_id, const char *version);
int64_t mk_device(struct fota_store *s, int64_t product_id, const char *name, int activated);
void mk_key(struct fota_store *s, int kind, int64_t product, int64_t device, int seed);
int64_t mk_command(struct fota_store *s, int64_t device);
/* Asserts that a command row's params or result (NULL: "") reads as want
 * when encoded as the store encodes it (sorted keys, json.dumps separators). */
void assert_json_text(const struct json_t *v, const char *want);
/* A JSON value from text (asserts it parses); the caller owns it. */
struct json_t *json_of(const char *text);
int64_t add_msg(struct fota_store *s, int64_t product, int64_t device, const char *action);

/* ---- the conformance cases, one table per file ------------------------- */

extern const struct CMUnitTest store_cases_catalog[];
extern const size_t store_cases_catalog_n;
extern const struct CMUnitTest store_cases_fleet[];
extern const size_t store_cases_fleet_n;
extern const struct CMUnitTest store_cases_batch[];
extern const size_t store_cases_batch_n;
extern const struct CMUnitTest store_cases_delete[];
extern const size_t store_cases_delete_n;
extern const struct CMUnitTest store_cases_durable[];
extern const size_t store_cases_durable_n;
extern const struct CMUnitTest store_cases_arduino[];
extern const size_t store_cases_arduino_n;
extern const struct CMUnitTest store_cases_rollout[];
extern const size_t store_cases_rollout_n;
extern const struct CMUnitTest store_cases_retention[];
extern const size_t store_cases_retention_n;
extern const struct CMUnitTest store_cases_census[];
extern const size_t store_cases_census_n;
extern const struct CMUnitTest store_cases_devpage[];
extern const size_t store_cases_devpage_n;
extern const struct CMUnitTest store_cases_tags[];
extern const size_t store_cases_tags_n;
extern const struct CMUnitTest store_cases_overview[];
extern const size_t store_cases_overview_n;

#endif
