/* metric_test.c - the metrics registry (server/core/metric.c): counters and
 * gauges render with HELP and TYPE, parts of one name share them, a name,
 * type or registry size that is wrong is refused, histograms are cumulative
 * with an exact sum and count, collectors escape label values and start
 * families of their own, and counters bumped from several threads at once
 * lose nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "fota_err.h"
#include "metric.h"
#include "server.h"

static struct fota_server srv;

/* The rendering as a NUL-terminated string (the caller frees it). */
static char *render(void)
{
    struct evbuffer *b = evbuffer_new();
    fota_metric_render(&srv.metrics, b);
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);
    evbuffer_remove(b, s, n);
    s[n] = '\0';
    evbuffer_free(b);
    return s;
}

static int setup(void **state)
{
    (void)state;
    memset(&srv, 0, sizeof srv);
    return 0;
}

static const char *const reason_labels[] = { "listener=\"a\",reason=\"x\"",
                                             "listener=\"a\",reason=\"y\"" };
static const struct fota_metric_desc refused_a = {
    "t_refused_total", "Refused.", FOTA_METRIC_COUNTER, 2, reason_labels
};
static const char *const reason_b[] = { "listener=\"b\",reason=\"z\"" };
static const struct fota_metric_desc refused_b = {
    "t_refused_total", "Refused.", FOTA_METRIC_COUNTER, 1, reason_b
};
static const struct fota_metric_desc conns = {
    "t_connections", "Open connections.", FOTA_METRIC_GAUGE, 1, NULL
};

static void test_counters_and_gauges(void **state)
{
    struct fota_metric a[2] = { 0 }, b[1] = { 0 }, g[1] = { 0 };
    (void)state;
    assert_int_equal(fota_metric_register(&srv, &refused_a, a), 0);
    assert_int_equal(fota_metric_register(&srv, &conns, g), 0);
    assert_int_equal(fota_metric_register(&srv, &refused_b, b), 0);
    fota_metric_inc(&a[0]);
    fota_metric_add(&a[1], 41);
    fota_metric_inc(&a[1]);
    fota_metric_add_local(&b[0], 7);
    fota_metric_inc(&g[0]);
    fota_metric_dec(&g[0]);
    fota_metric_dec(&g[0]);
    char *s = render();
    assert_string_equal(s,
                        "# HELP t_refused_total Refused.\n"
                        "# TYPE t_refused_total counter\n"
                        "t_refused_total{listener=\"a\",reason=\"x\"} 1\n"
                        "t_refused_total{listener=\"a\",reason=\"y\"} 42\n"
                        "t_refused_total{listener=\"b\",reason=\"z\"} 7\n"
                        "# HELP t_connections Open connections.\n"
                        "# TYPE t_connections gauge\n"
                        "t_connections -1\n");
    free(s);
    fota_metric_set(&g[0], 12);
    assert_int_equal(fota_metric_get(&g[0]), 12);
}

static void test_refused_registrations(void **state)
{
    struct fota_metric v[2] = { 0 };
    struct fota_metric_hist h[1];
    (void)state;
    static const struct fota_metric_desc bad_name = { "9lives", "x", FOTA_METRIC_COUNTER, 1,
                                                      NULL };
    static const struct fota_metric_desc dash = { "a-b", "x", FOTA_METRIC_COUNTER, 1, NULL };
    static const struct fota_metric_desc two_unlabelled = { "two", "x", FOTA_METRIC_GAUGE, 2,
                                                            NULL };
    static const struct fota_metric_desc as_gauge = { "t_refused_total", "x", FOTA_METRIC_GAUGE,
                                                      1, NULL };
    static const struct fota_metric_desc hist = { "t_seconds", "x", FOTA_METRIC_HISTOGRAM, 1,
                                                  NULL };
    assert_int_equal(fota_metric_register(&srv, &bad_name, v), FOTA_EINVAL);
    assert_int_equal(fota_metric_register(&srv, &dash, v), FOTA_EINVAL);
    assert_int_equal(fota_metric_register(&srv, &two_unlabelled, v), FOTA_EINVAL);
    assert_int_equal(fota_metric_register(&srv, &refused_a, NULL), FOTA_EINVAL);
    assert_int_equal(fota_metric_register(&srv, &hist, v), FOTA_EINVAL);    /* not a value */
    assert_int_equal(fota_metric_register_hist(&srv, &conns, h), FOTA_EINVAL);
    assert_int_equal(fota_metric_register(&srv, &refused_a, v), 0);
    /* one name, one type */
    assert_int_equal(fota_metric_register(&srv, &as_gauge, v), FOTA_EINVAL);
    for (unsigned i = srv.metrics.n; i < FOTA_METRIC_PARTS_MAX; i++)
        assert_int_equal(fota_metric_register(&srv, &conns, v), 0);
    assert_int_equal(fota_metric_register(&srv, &conns, v), FOTA_ETOOBIG);
}

static const char *const op_labels[] = { "op=\"get\"", "op=\"put\"" };
static const struct fota_metric_desc op_hist = {
    "t_op_seconds", "Op time.", FOTA_METRIC_HISTOGRAM, 2, op_labels
};
static const struct fota_metric_desc rpc_hist = {
    "t_rpc_seconds", "RPC time.", FOTA_METRIC_HISTOGRAM, 1, NULL
};

static void test_histogram(void **state)
{
    struct fota_metric_hist h[2], r[1];
    (void)state;
    memset(h, 0, sizeof h);
    memset(r, 0, sizeof r);
    assert_int_equal(fota_metric_register_hist(&srv, &op_hist, h), 0);
    assert_int_equal(fota_metric_register_hist(&srv, &rpc_hist, r), 0);
    fota_metric_observe(&h[0], 50000);        /* 50 us: first bucket */
    fota_metric_observe(&h[0], 100000);       /* exactly a bound: that bucket (le) */
    fota_metric_observe(&h[0], 3000000);      /* 3 ms: le 0.005 */
    fota_metric_observe(&h[0], 60000000000);  /* 60 s: +Inf */
    fota_metric_observe(&h[0], -5);           /* a clock step back: 0 */
    char *s = render();
    /* h[1] (op="put") has no observation: left out; r (no labels) is shown */
    assert_null(strstr(s, "op=\"put\""));
    assert_non_null(strstr(s, "# TYPE t_op_seconds histogram\n"
                              "t_op_seconds_bucket{op=\"get\",le=\"0.0001\"} 3\n"
                              "t_op_seconds_bucket{op=\"get\",le=\"0.00025\"} 3\n"));
    assert_non_null(strstr(s, "t_op_seconds_bucket{op=\"get\",le=\"0.0025\"} 3\n"
                              "t_op_seconds_bucket{op=\"get\",le=\"0.005\"} 4\n"));
    assert_non_null(strstr(s, "t_op_seconds_bucket{op=\"get\",le=\"30\"} 4\n"
                              "t_op_seconds_bucket{op=\"get\",le=\"+Inf\"} 5\n"
                              "t_op_seconds_sum{op=\"get\"} 60.003150000\n"
                              "t_op_seconds_count{op=\"get\"} 5\n"));
    assert_non_null(strstr(s, "t_rpc_seconds_bucket{le=\"+Inf\"} 0\n"
                              "t_rpc_seconds_sum 0.000000000\n"
                              "t_rpc_seconds_count 0\n"));
    free(s);
}

static const struct fota_metric_desc fam_a = {
    "t_devices", "Devices.", FOTA_METRIC_GAUGE, 0, NULL
};
static const struct fota_metric_desc fam_b = {
    "t_uptime_seconds", "Up.", FOTA_METRIC_GAUGE, 0, NULL
};

static void collect(void *ud, struct fota_metric_out *o)
{
    static const char *const names[] = { "product", "version" };
    const char *v1[] = { "plain", "1.0" };
    const char *v2[] = { "q\"uo\\te\nline", "\x1b[31mred\xff\xc3\xa9" };
    assert_ptr_equal(ud, &srv);
    fota_metric_put_kv(o, 3, 2, names, v1);
    fota_metric_put_kv(o, -2, 2, names, v2);
    fota_metric_put_kv(o, 9, 0, NULL, NULL);
    fota_metric_begin(o, &fam_b);
    fota_metric_put_ns(o, NULL, 1500000001);
    fota_metric_put_ns(o, "x=\"neg\"", -1500000000);
}

static void test_collector(void **state)
{
    (void)state;
    assert_int_equal(fota_metric_register_fn(&srv, &fam_a, collect, &srv), 0);
    assert_int_equal(fota_metric_register_fn(&srv, &op_hist, collect, &srv), FOTA_EINVAL);
    char *s = render();
    assert_string_equal(s, "# HELP t_devices Devices.\n"
                           "# TYPE t_devices gauge\n"
                           "t_devices{product=\"plain\",version=\"1.0\"} 3\n"
                           "t_devices{product=\"q\\\"uo\\\\te\\nline\",version=\"?[31mred?\xc3\xa9\"} -2\n"
                           "t_devices 9\n"
                           "# HELP t_uptime_seconds Up.\n"
                           "# TYPE t_uptime_seconds gauge\n"
                           "t_uptime_seconds 1.500000001\n"
                           "t_uptime_seconds{x=\"neg\"} -1.500000000\n");
    free(s);
}

#define THREADS 4
#define ADDS    200000

static struct fota_metric shared;
static struct fota_metric_hist shared_hist;

static void *adder(void *arg)
{
    (void)arg;
    for (int i = 0; i < ADDS; i++) {
        fota_metric_inc(&shared);
        fota_metric_observe(&shared_hist, 1000);
    }
    return NULL;
}

static void test_threads(void **state)
{
    pthread_t t[THREADS];
    (void)state;
    memset(&shared, 0, sizeof shared);
    memset(&shared_hist, 0, sizeof shared_hist);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, adder, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(fota_metric_get(&shared), THREADS * ADDS);
    assert_int_equal(shared_hist.n[0], THREADS * ADDS);
    assert_int_equal(shared_hist.sum_ns, 1000ull * THREADS * ADDS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_counters_and_gauges, setup),
        cmocka_unit_test_setup(test_refused_registrations, setup),
        cmocka_unit_test_setup(test_histogram, setup),
        cmocka_unit_test_setup(test_collector, setup),
        cmocka_unit_test_setup(test_threads, setup),
    };
    return cmocka_run_group_tests_name("metric", tests, NULL, NULL);
}
