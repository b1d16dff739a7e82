/* metrics_store_test.c - the store's timing shim (server/metrics/
 * metrics_store.c) on a real SQLite store: every op of struct
 * fota_store_ops is timed (an op added to store.h and not to the shim fails
 * here), calls reach the backend with their results, each call lands in its
 * op's histogram, failures (and only they) are counted, the catalog
 * generation is the backend's, and close takes the shim away (ASan: nothing
 * leaks). A fake backend's I/O error is counted as a failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "metrics.h"
#include "server.h"

static char *render(struct fota_server *srv)
{
    struct evbuffer *b = evbuffer_new();
    fota_metric_render(&srv->metrics, b);
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);
    evbuffer_remove(b, s, n);
    s[n] = '\0';
    evbuffer_free(b);
    return s;
}

static void test_shim(void **state)
{
    static struct fota_server srv;
    char dir[] = "/tmp/fota-metrics-test-XXXXXX", path[96], err[256];
    struct fota_store *s = NULL;
    (void)state;
    memset(&srv, 0, sizeof srv);
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/fota.db", dir);
    assert_int_equal(fota_store_sqlite_open(path, NULL, NULL, &s, err, sizeof err), 0);
    const struct fota_store_ops *backend = s->ops;

    assert_int_equal(fota_metrics_store_wrap(&srv, s), 0);
    assert_ptr_not_equal(s->ops, backend);
    assert_string_equal(s->ops->name, "sqlite");
    /* An op of struct fota_store_ops missing from STORE_OPS (metrics_store.c) fails here. */
    assert_int_equal(fota_metrics_store_untimed(s), 0);

    uint64_t gen = fota_store_generation(s);
    struct fota_product p, out;
    memset(&p, 0, sizeof p);
    snprintf(p.name, sizeof p.name, "p1");
    assert_int_equal(s->ops->product_create(s, &p), 0);
    assert_true(p.id > 0);
    assert_true(fota_store_generation(s) > gen);   /* the backend's counter, through the shim */
    assert_int_equal(s->ops->product_get(s, p.id, &out), 0);
    assert_string_equal(out.name, "p1");
    assert_int_equal(s->ops->product_get(s, p.id + 1, &out), FOTA_ENOENT);
    assert_int_equal(s->ops->product_create(s, &p), FOTA_EEXIST);

    char *m = render(&srv);
    assert_non_null(strstr(m, "# TYPE fota_store_op_duration_seconds histogram\n"));
    assert_non_null(strstr(m, "fota_store_op_duration_seconds_count{op=\"product_get\"} 2\n"));
    assert_non_null(strstr(m, "fota_store_op_duration_seconds_count{op=\"product_create\"} 2\n"));
    assert_null(strstr(m, "op=\"device_get\""));   /* never called: not shown */
    assert_non_null(strstr(m, "fota_store_errors_total 0\n"));   /* ENOENT, EEXIST: answers */
    free(m);

    s->ops->close(s);
    unlink(path);
    snprintf(path, sizeof path, "%s/fota.db-wal", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/fota.db-shm", dir);
    unlink(path);
    assert_int_equal(rmdir(dir), 0);
}

/* A backend of two ops: product_get fails as a broken disk would. */
static int fake_closed;

static void fake_close(struct fota_store *s)
{
    (void)s;
    fake_closed++;
}

static int fake_product_get(struct fota_store *s, int64_t id, struct fota_product *out)
{
    (void)s;
    (void)out;
    return id == 1 ? FOTA_EIO : FOTA_ENOENT;
}

static void test_failures(void **state)
{
    static struct fota_server srv;
    static const struct fota_store_ops fake_ops = {
        .name = "fake", .close = fake_close, .product_get = fake_product_get
    };
    struct fota_store fake = { .ops = &fake_ops };
    struct fota_product out;
    (void)state;
    memset(&srv, 0, sizeof srv);
    assert_int_equal(fota_metrics_store_wrap(&srv, &fake), 0);
    assert_null(fake.ops->device_get);   /* what the backend lacks stays missing */
    assert_int_equal(fake.ops->product_get(&fake, 1, &out), FOTA_EIO);
    assert_int_equal(fake.ops->product_get(&fake, 2, &out), FOTA_ENOENT);
    assert_int_equal(fake.ops->product_get(&fake, 1, &out), FOTA_EIO);
    char *m = render(&srv);
    assert_non_null(strstr(m, "fota_store_errors_total 2\n"));
    assert_non_null(strstr(m, "fota_store_op_duration_seconds_count{op=\"product_get\"} 3\n"));
    free(m);
    fake.ops->close(&fake);
    assert_int_equal(fake_closed, 1);
    assert_ptr_equal(fake.ops, &fake_ops);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shim),
        cmocka_unit_test(test_failures),
    };
    return cmocka_run_group_tests_name("metrics_store", tests, NULL, NULL);
}
