/* store_cases_batch.c - conformance cases: the batched command writes
 * (command_create_many, command_update_batch): all rows or none, nonces,
 * states and results. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "store_fixture.h"

static void test_create_many(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t p = mk_product(s, "fleet");
    int64_t dev[3] = { mk_device(s, p, "a", 1), mk_device(s, p, "b", 1), mk_device(s, p, "c", 0) };
    int64_t nonces[3] = { 0, 1234, 0 }, ids[3] = { 0 };
    struct fota_command t, got, *list = NULL;
    size_t n = 0;

    memset(&t, 0, sizeof t);
    assert_int_equal(s->ops->command_create_many(s, &t, dev, nonces, ids, 3), FOTA_EINVAL);
    snprintf(t.action, sizeof t.action, "sys_upgrade");
    t.params = json_of("{\"version\": \"v2\"}");
    assert_int_equal(s->ops->command_create_many(s, &t, dev, nonces, ids, 0), 0);
    assert_int_equal(s->ops->command_create_many(s, &t, dev, nonces, ids, 3), 0);
    assert_true(ids[0] > 0 && ids[1] > ids[0] && ids[2] > ids[1]);
    assert_int_equal(nonces[1], 1234);
    assert_true(nonces[0] > 0 && nonces[0] <= 0x7FFFFFFF && nonces[2] > 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(s->ops->command_get(s, ids[i], &got), 0);
        assert_int_equal(got.device_id, dev[i]);
        assert_int_equal(got.nonce, nonces[i]);
        assert_int_equal(got.state, FOTA_CMD_QUEUED);
        assert_string_equal(got.action, "sys_upgrade");
        assert_json_text(got.params, "{\"version\": \"v2\"}");
        assert_null(got.result);
        fota_store_command_cleanup(&got);
    }
    assert_int_equal(s->ops->command_list_device(s, dev[1], FOTA_CMD_QUEUED, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_json_text(list[0].params, "{\"version\": \"v2\"}");
    fota_store_command_list_free(list, n);

    /* one unknown device: nothing is written */
    int64_t bad[2] = { dev[0], 999999 }, bn[2] = { 0, 0 }, bi[2] = { 0, 0 };
    assert_int_equal(s->ops->command_create_many(s, &t, bad, bn, bi, 2), FOTA_ENOENT);
    assert_int_equal(s->ops->command_list_device(s, dev[0], 0, &list, &n), 0);
    assert_int_equal(n, 1);
    fota_store_command_list_free(list, n);
    fota_store_command_cleanup(&t);
}

static void test_update_batch(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t p = mk_product(s, "fleet");
    int64_t dev[2] = { mk_device(s, p, "a", 1), mk_device(s, p, "b", 1) };
    int64_t nonces[2] = { 0, 0 }, ids[2] = { 0, 0 };
    struct fota_command t, got;

    memset(&t, 0, sizeof t);
    snprintf(t.action, sizeof t.action, "sys_upgrade");
    t.result = json_object();
    assert_int_equal(s->ops->command_create_many(s, &t, dev, nonces, ids, 2), 0);
    json_t *ok = json_of("{\"status\": 200}");
    struct fota_command_set rows[3] = {
        { ids[0], FOTA_CMD_ACKED, 0, ok },
        { ids[1], FOTA_CMD_DELIVERED, 1700000000, NULL },
        { 999999, FOTA_CMD_DONE, 0, NULL },          /* skipped */
    };
    assert_int_equal(s->ops->command_update_batch(s, rows, 0), 0);
    assert_int_equal(s->ops->command_update_batch(s, rows, 3), 0);
    assert_int_equal(s->ops->command_get(s, ids[0], &got), 0);
    assert_int_equal(got.state, FOTA_CMD_ACKED);
    assert_json_text(got.result, "{\"status\": 200}");
    assert_true(got.updated > 1700000000);
    fota_store_command_cleanup(&got);
    assert_int_equal(s->ops->command_get(s, ids[1], &got), 0);
    assert_int_equal(got.state, FOTA_CMD_DELIVERED);
    assert_json_text(got.result, "{}");                 /* NULL left it */
    assert_int_equal(got.updated, 1700000000);
    fota_store_command_cleanup(&got);
    fota_store_command_cleanup(&t);
    json_decref(ok);
    assert_int_equal(store_log_errors, 0);
}

static void test_many_rows(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t p = mk_product(s, "fleet");
    enum { N = 300 };
    int64_t dev[N], nonces[N], ids[N];
    struct fota_command_set rows[N];
    struct fota_command t, got;

    for (int i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof name, "d%d", i);
        dev[i] = mk_device(s, p, name, 1);
        nonces[i] = 0;
    }
    memset(&t, 0, sizeof t);
    snprintf(t.action, sizeof t.action, "sys_upgrade");
    assert_int_equal(s->ops->command_create_many(s, &t, dev, nonces, ids, N), 0);
    /* rows share results in runs (as a rollout's do): each row gets its own */
    json_t *res[2] = { json_of("{\"status\": 200}"), json_of("{\"action\": \"done\"}") };
    for (int i = 0; i < N; i++)
        rows[i] = (struct fota_command_set){ ids[i], FOTA_CMD_DONE, 0,
                                             i % 3 == 2 ? NULL : res[(i / 100) % 2] };
    assert_int_equal(s->ops->command_update_batch(s, rows, N), 0);
    assert_int_equal(s->ops->command_get(s, ids[N - 1], &got), 0);
    assert_int_equal(got.state, FOTA_CMD_DONE);
    assert_int_equal(got.device_id, dev[N - 1]);
    assert_null(got.result);
    fota_store_command_cleanup(&got);
    for (int i = 0; i < N; i += 49) {
        assert_int_equal(s->ops->command_get(s, ids[i], &got), 0);
        assert_json_text(got.result, i % 3 == 2 ? ""
                                     : (i / 100) % 2 ? "{\"action\": \"done\"}"
                                                     : "{\"status\": 200}");
        fota_store_command_cleanup(&got);
    }
    json_decref(res[0]);
    json_decref(res[1]);
}

const struct CMUnitTest store_cases_batch[] = {
    cmocka_unit_test(test_create_many),
    cmocka_unit_test(test_update_batch),
    cmocka_unit_test(test_many_rows),
};
const size_t store_cases_batch_n = sizeof store_cases_batch / sizeof store_cases_batch[0];
