/* store_conformance_test.c - the store conformance suite: every case of
 * store_cases_*.c, each on a fresh empty store, on every backend of
 * store_backends[] (store_fixture.c), one cmocka group per backend
 * (store.sqlite, ...). The semantics are those of store.h. */
#include <stdio.h>
#include <stdlib.h>
#include "store_fixture.h"

static const struct {
    const struct CMUnitTest *cases;
    const size_t *n;
} case_tables[] = {
    { store_cases_catalog, &store_cases_catalog_n },
    { store_cases_fleet, &store_cases_fleet_n },
    { store_cases_batch, &store_cases_batch_n },
    { store_cases_delete, &store_cases_delete_n },
    { store_cases_durable, &store_cases_durable_n },
    { store_cases_arduino, &store_cases_arduino_n },
    { store_cases_rollout, &store_cases_rollout_n },
    { store_cases_retention, &store_cases_retention_n },
    { store_cases_census, &store_cases_census_n },
    { store_cases_devpage, &store_cases_devpage_n },
    { store_cases_tags, &store_cases_tags_n },
    { store_cases_overview, &store_cases_overview_n },
};
#define N_TABLES (sizeof case_tables / sizeof case_tables[0])

/* Runs every case on one backend; returns the number of failures. */
static int run_backend(const struct store_backend *be)
{
    struct store_fixture fx = { .backend = be };
    struct CMUnitTest *tests;
    size_t total = 0, k = 0;
    char group[64];
    int fails;

    for (size_t i = 0; i < N_TABLES; i++)
        total += *case_tables[i].n;
    tests = calloc(total, sizeof *tests);
    if (!tests)
        return 1;
    for (size_t i = 0; i < N_TABLES; i++) {
        for (size_t j = 0; j < *case_tables[i].n; j++) {
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

    for (size_t b = 0; b < store_nbackends; b++)
        fails += run_backend(store_backends[b]);
    return fails ? 1 : 0;
}
