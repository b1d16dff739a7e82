/* rollout_plan_test.c - server/rollout/rollout_plan.c: which stage each
 * member joins (percent stages cumulative and rounded up, counts, device
 * lists first, the left-over stage, the same plan for the same seed, a
 * spread over the id range) and the maintenance window's arithmetic (a
 * window within a day, one across midnight, the next opening or closing). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rollout_plan.h"
#include "store.h"

#define N 1000

struct plan {
    int64_t ids[N];
    uint8_t stage_of[N];
    int64_t totals[FOTA_ROLLOUT_STAGES_MAX + 1];
    struct fota_rollout_plan_slot scratch[N];
    size_t n, nstages;
};

static size_t run(struct plan *p, const struct fota_rollout_stage_spec *specs, size_t nspecs,
                  size_t n, uint64_t seed)
{
    p->n = n;
    for (size_t i = 0; i < n; i++)
        p->ids[i] = (int64_t)(i * 3 + 1);   /* ascending, with gaps */
    p->nstages = fota_rollout_plan_stages(specs, nspecs, p->ids, n, seed, p->stage_of, p->totals,
                                          p->scratch);
    int64_t sum = 0;
    for (size_t k = 0; k < p->nstages; k++)
        sum += p->totals[k];
    assert_int_equal(sum, (int64_t)n);   /* every member in exactly one stage */
    for (size_t i = 0; i < n; i++)
        assert_true(p->stage_of[i] < p->nstages);
    return p->nstages;
}

static struct fota_rollout_stage_spec pct(int64_t v)
{
    return (struct fota_rollout_stage_spec){ FOTA_STAGE_PERCENT, v, NULL, 0 };
}

static struct fota_rollout_stage_spec cnt(int64_t v)
{
    return (struct fota_rollout_stage_spec){ FOTA_STAGE_COUNT, v, NULL, 0 };
}

static void test_no_stages(void **state)
{
    struct plan *p = calloc(1, sizeof *p);
    (void)state;
    assert_int_equal(run(p, NULL, 0, 50, 7), 1);
    assert_int_equal(p->totals[0], 50);
    assert_int_equal(run(p, NULL, 0, 0, 7), 1);
    assert_int_equal(p->totals[0], 0);
    free(p);
}

static void test_percent(void **state)
{
    struct plan *p = calloc(1, sizeof *p);
    struct fota_rollout_stage_spec s[3] = { pct(1), pct(10), pct(100) };
    (void)state;
    assert_int_equal(run(p, s, 3, N, 7), 3);   /* 100 %: nothing left over */
    assert_int_equal(p->totals[0], 10);
    assert_int_equal(p->totals[1], 90);
    assert_int_equal(p->totals[2], 900);
    assert_int_equal(run(p, s, 2, N, 7), 3);   /* 1 %, 10 %, then the rest */
    assert_int_equal(p->totals[2], 900);
    assert_int_equal(run(p, s, 2, 5, 7), 3);   /* rounded up: 1 % of 5 is one device */
    assert_int_equal(p->totals[0], 1);
    assert_int_equal(p->totals[1], 0);         /* 10 % of 5 is 1: reached already */
    assert_int_equal(p->totals[2], 4);
    free(p);
}

static void test_counts_and_devices(void **state)
{
    struct plan *p = calloc(1, sizeof *p);
    const int64_t listed[] = { 4, 22, 9999 };  /* members 1 and 7; 9999 is none */
    const int64_t again[] = { 22, 25 };        /* 22 is taken by the first list */
    struct fota_rollout_stage_spec s[4] = {
        { FOTA_STAGE_DEVICES, 3, listed, 3 }, pct(50), { FOTA_STAGE_DEVICES, 2, again, 2 },
        cnt(1) };
    (void)state;
    assert_int_equal(run(p, s, 4, 10, 7), 5);
    assert_int_equal(p->totals[0], 2);
    assert_int_equal(p->stage_of[1], 0);
    assert_int_equal(p->stage_of[7], 0);
    assert_int_equal(p->totals[1], 3);         /* 50 % of 10 with the 2 before it */
    assert_int_equal(p->totals[2], 1);
    assert_int_equal(p->stage_of[8], 2);       /* id 25 */
    assert_int_equal(p->totals[3], 1);
    assert_int_equal(p->totals[4], 3);
    struct fota_rollout_stage_spec c[2] = { cnt(5), cnt(20) };
    assert_int_equal(run(p, c, 2, 100, 7), 3);
    assert_int_equal(p->totals[0], 5);
    assert_int_equal(p->totals[1], 20);
    assert_int_equal(p->totals[2], 75);
    assert_int_equal(run(p, c, 2, 3, 7), 2);   /* fewer members than asked */
    assert_int_equal(p->totals[0], 3);
    assert_int_equal(p->totals[1], 0);
    free(p);
}

static void test_same_seed_same_plan(void **state)
{
    struct plan *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    struct fota_rollout_stage_spec s[1] = { pct(10) };
    (void)state;
    run(a, s, 1, N, 42);
    run(b, s, 1, N, 42);
    assert_memory_equal(a->stage_of, b->stage_of, N);
    run(b, s, 1, N, 43);
    assert_true(memcmp(a->stage_of, b->stage_of, N) != 0);
    /* the first stage is spread over the ids, not the lowest ones */
    size_t high = 0;
    for (size_t i = N / 2; i < N; i++)
        high += a->stage_of[i] == 0;
    assert_true(high > 10 && high < 90);
    assert_int_equal(fota_rollout_plan_seed(1, "v2"), fota_rollout_plan_seed(1, "v2"));
    assert_true(fota_rollout_plan_seed(1, "v2") != fota_rollout_plan_seed(1, "v3"));
    assert_true(fota_rollout_plan_seed(1, "v2") >= 0 && fota_rollout_plan_seed(1, "v2") <= 0x7FFFFFFF);
    free(a);
    free(b);
}

#define AT(h, m) ((int64_t)1700006400 + (h) * 3600 + (m) * 60) /* 1700006400: a UTC midnight */

static void test_hours(void **state)
{
    (void)state;
    assert_int_equal(AT(0, 0) % 86400, 0);
    /* 09:00-17:00 */
    assert_false(fota_rollout_hours_open(540, 1020, AT(8, 59)));
    assert_true(fota_rollout_hours_open(540, 1020, AT(9, 0)));
    assert_true(fota_rollout_hours_open(540, 1020, AT(16, 59)));
    assert_false(fota_rollout_hours_open(540, 1020, AT(17, 0)));
    assert_int_equal(fota_rollout_hours_next(540, 1020, AT(8, 0)), AT(9, 0));
    assert_int_equal(fota_rollout_hours_next(540, 1020, AT(9, 0)), AT(17, 0));
    assert_int_equal(fota_rollout_hours_next(540, 1020, AT(18, 0)), AT(24 + 9, 0));
    /* 22:00-04:00, across midnight */
    assert_true(fota_rollout_hours_open(1320, 240, AT(23, 30)));
    assert_true(fota_rollout_hours_open(1320, 240, AT(0, 0)));
    assert_true(fota_rollout_hours_open(1320, 240, AT(3, 59)));
    assert_false(fota_rollout_hours_open(1320, 240, AT(4, 0)));
    assert_false(fota_rollout_hours_open(1320, 240, AT(21, 59)));
    assert_int_equal(fota_rollout_hours_next(1320, 240, AT(23, 0)), AT(24 + 4, 0));
    assert_int_equal(fota_rollout_hours_next(1320, 240, AT(1, 0)), AT(4, 0));
    assert_int_equal(fota_rollout_hours_next(1320, 240, AT(12, 0)), AT(22, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_stages),
        cmocka_unit_test(test_percent),
        cmocka_unit_test(test_counts_and_devices),
        cmocka_unit_test(test_same_seed_same_plan),
        cmocka_unit_test(test_hours),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
