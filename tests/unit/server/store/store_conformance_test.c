/* store_conformance_test.c - the store conformance suite: every case of
 * store_cases_*.c, each on a fresh empty store, on every backend of
 * store_backends[] (store_fixture.c), one cmocka group per backend
 * (store.sqlite, store.postgresql), each running the case tables its row
 * names. The semantics are those of store.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store_fixture.h"

#define TABLE(name) { #name, store_cases_##name, &store_cases_##name##_n }

static const struct {
    const char *name;                 /* store_cases_<name>.c */
    const struct CMUnitTest *cases;
    const size_t *n;
} case_tables[] = {
    TABLE(catalog), TABLE(fleet), TABLE(batch), TABLE(delete), TABLE(durable),
    TABLE(arduino), TABLE(rollout), TABLE(retention), TABLE(census), TABLE(devpage),
    TABLE(tags), TABLE(overview),
};
#define N_TABLES (sizeof case_tables / sizeof case_tables[0])

static int runs(const struct store_backend *be, size_t i, size_t j)
{
    return store_backend_runs(be, case_tables[i].name, case_tables[i].cases[j].name);
}

/* Runs every case the backend's row names on it; returns the number of
 * failures. */
static int run_backend(const struct store_backend *be)
{
    struct store_fixture fx = { .backend = be };
    struct CMUnitTest *tests;
    size_t total = 0, k = 0;
    char group[64];
    int fails;

    for (size_t i = 0; i < N_TABLES; i++)
        for (size_t j = 0; j < *case_tables[i].n; j++)
            total += runs(be, i, j) ? 1 : 0;
    tests = calloc(total + 1, sizeof *tests);
    if (!tests)
        return 1;
    for (size_t i = 0; i < N_TABLES; i++) {
        for (size_t j = 0; j < *case_tables[i].n; j++) {
            if (!runs(be, i, j))
                continue;
            tests[k] = case_tables[i].cases[j];
            tests[k].setup_func = store_fixture_setup;
            tests[k].teardown_func = store_fixture_teardown;
            tests[k].initial_state = &fx;
            k++;
        }
    }
    snprintf(group, sizeof group, "store.%s", be->name);
    if (be->suite_begin() != 0) {
        fprintf(stderr, "%s: cannot prepare the backend\n", group);
        free(tests);
        return 1;
    }
    fails = _cmocka_run_group_tests(group, tests, total, NULL, NULL);
    be->suite_end();
    free(tests);
    return fails;
}

int main(void)
{
    int fails = 0;

    /* A fresh PostgreSQL store per case without migrating one per case. */
    store_pg_migrated_template = 1;

    for (size_t b = 0; b < store_nbackends; b++)
        fails += run_backend(store_backends[b]);
    return fails ? 1 : 0;
}
