/* devchan_rate_test.c - the device channel's message rate (devchan_rate.h):
 * a burst passes at once, then one message per 1/rate s; a waiting message
 * is told how long; no limit at rate 0; a device idle long enough is back
 * to a full burst. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "devchan_rate.h"

static void test_burst_then_rate(void **st)
{
    (void)st;
    int64_t tat = 0, now = 5000000;       /* a device never seen: its whole burst */
    for (int i = 0; i < 5; i++)
        assert_int_equal(fota_devchan_rate_gcra(&tat, now, 10, 5), 0);
    /* the sixth at the same moment waits one interval (100 ms at 10/s) */
    assert_int_equal(fota_devchan_rate_gcra(&tat, now, 10, 5), 100000);
    assert_int_equal(fota_devchan_rate_gcra(&tat, now + 40000, 10, 5), 60000);
    assert_int_equal(fota_devchan_rate_gcra(&tat, now + 100000, 10, 5), 0);
    assert_int_equal(fota_devchan_rate_gcra(&tat, now + 100000, 10, 5), 100000);
    /* steady: one message every 100 ms passes, for ever */
    int64_t t = now + 200000;
    for (int i = 0; i < 1000; i++, t += 100000)
        assert_int_equal(fota_devchan_rate_gcra(&tat, t, 10, 5), 0);
    assert_false(fota_devchan_rate_idle(tat, t - 100000));
    /* silent for burst intervals: a full burst again */
    t += 5 * 100000;
    assert_true(fota_devchan_rate_idle(tat, t));
    for (int i = 0; i < 5; i++)
        assert_int_equal(fota_devchan_rate_gcra(&tat, t, 10, 5), 0);
    assert_true(fota_devchan_rate_gcra(&tat, t, 10, 5) > 0);
}

static void test_counts_over_time(void **st)
{
    (void)st;
    /* A client sending as fast as it can for 10 s gets burst + rate * 10 messages through. */
    int64_t tat = 0, t0 = 1000000, t = t0;
    unsigned passed = 0;
    while (t < t0 + 10000000) {
        int64_t w = fota_devchan_rate_gcra(&tat, t, 20, 50);
        if (w == 0)
            passed++;
        else
            t += w;
    }
    assert_true(passed >= 50 + 20 * 10 - 1 && passed <= 50 + 20 * 10 + 1);
}

static void test_no_limit_and_edges(void **st)
{
    (void)st;
    int64_t tat = 0;
    for (int i = 0; i < 100000; i++)
        assert_int_equal(fota_devchan_rate_gcra(&tat, 1, 0, 1), 0);
    assert_int_equal(tat, 0);                 /* rate 0 keeps no state */
    tat = 0;
    assert_int_equal(fota_devchan_rate_gcra(&tat, 1000, 1, 1), 0);
    assert_int_equal(fota_devchan_rate_gcra(&tat, 1000, 1, 1), 1000000);
    tat = 0;
    assert_int_equal(fota_devchan_rate_gcra(&tat, 1000, 1000000, 1), 0);
    assert_int_equal(fota_devchan_rate_gcra(&tat, 1000, 1000000, 1), 1);
    tat = 0;                                  /* above a million a second: no wait */
    for (int i = 0; i < 10; i++)
        assert_int_equal(fota_devchan_rate_gcra(&tat, 1000, 2000000, 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_rate),
        cmocka_unit_test(test_counts_over_time),
        cmocka_unit_test(test_no_limit_and_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
