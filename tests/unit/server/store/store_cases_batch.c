/* store_cases_batch.c - conformance cases: the batched command writes
 * (command_create_many, command_update_batch): all rows or none, nonces,
 * states and results; a batch of upgrades replacing each device's queued
 * upgrades in the same transaction; two store handles on one database
 * replacing one device's upgrade at once; the device channel's
 * command_queued_devices and command_reply. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "fota_str.h"
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

/* The state command id has in the store. */
static void assert_cmd_state(struct fota_store *s, int64_t id, int state)
{
    struct fota_command got;
    memset(&got, 0, sizeof got);
    assert_int_equal(s->ops->command_get(s, id, &got), 0);
    assert_int_equal(got.state, state);
    fota_store_command_cleanup(&got);
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

    /* an ended command is never opened again by a batch (a rollout's write
     * made before an Arduino check-in failed the upgrade); it may end
     * otherwise (a health check failing a done upgrade), and an open one
     * moves on */
    struct fota_command_set failed = { ids[0], FOTA_CMD_FAILED, 0, NULL };
    assert_int_equal(s->ops->command_update_batch(s, &failed, 1), 0);
    struct fota_command_set late[2] = {
        { ids[0], FOTA_CMD_ACKED, 0, ok },            /* skipped: failed stays */
        { ids[1], FOTA_CMD_ACKED, 0, NULL },
    };
    assert_int_equal(s->ops->command_update_batch(s, late, 2), 0);
    assert_cmd_state(s, ids[0], FOTA_CMD_FAILED);
    assert_cmd_state(s, ids[1], FOTA_CMD_ACKED);
    struct fota_command_set ends[2] = {
        { ids[0], FOTA_CMD_CANCELLED, 0, NULL },
        { ids[1], FOTA_CMD_DONE, 0, NULL },
    };
    assert_int_equal(s->ops->command_update_batch(s, ends, 2), 0);
    ends[0] = (struct fota_command_set){ ids[1], FOTA_CMD_FAILED, 0, NULL };
    ends[1] = (struct fota_command_set){ ids[0], FOTA_CMD_QUEUED, 0, NULL };   /* skipped */
    assert_int_equal(s->ops->command_update_batch(s, ends, 2), 0);
    assert_cmd_state(s, ids[0], FOTA_CMD_CANCELLED);
    assert_cmd_state(s, ids[1], FOTA_CMD_FAILED);
    /* command_update (one row, its writer's own read) still writes any state */
    memset(&got, 0, sizeof got);
    assert_int_equal(s->ops->command_get(s, ids[0], &got), 0);
    got.state = FOTA_CMD_QUEUED;
    assert_int_equal(s->ops->command_update(s, &got), 0);
    fota_store_command_cleanup(&got);
    assert_int_equal(s->ops->command_get(s, ids[0], &got), 0);
    assert_int_equal(got.state, FOTA_CMD_QUEUED);
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

/* The command row of a queued command of dev with action (params v1). */
static int64_t queued(struct fota_store *s, int64_t dev, const char *action)
{
    struct fota_command c;
    memset(&c, 0, sizeof c);
    c.device_id = dev;
    fota_str_copy(c.action, sizeof c.action, action);
    c.params = json_of("{\"version\": \"v1\"}");
    assert_int_equal(s->ops->command_create(s, &c), 0);
    fota_store_command_cleanup(&c);
    return c.id;
}

static void assert_command(struct fota_store *s, int64_t id, int st, const char *result)
{
    struct fota_command got;
    assert_int_equal(s->ops->command_get(s, id, &got), 0);
    assert_int_equal(got.state, st);
    if (result)
        assert_json_text(got.result, result);
    else
        assert_null(got.result);
    fota_store_command_cleanup(&got);
}

static void test_create_many_replaces(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t p = mk_product(s, "fleet");
    int64_t dev[3] = { mk_device(s, p, "a", 1), mk_device(s, p, "b", 1), mk_device(s, p, "c", 1) };
    int64_t a1 = queued(s, dev[0], "sys_upgrade"), a2 = queued(s, dev[0], "sys_upgrade");
    int64_t areboot = queued(s, dev[0], "sys_reboot"), c1 = queued(s, dev[2], "sys_upgrade");
    int64_t nonces[2] = { 0, 0 }, ids[2] = { 0, 0 }, sel[2] = { dev[0], dev[1] };
    struct fota_command t, sent;
    char want[128];

    /* a delivered upgrade is past replacing */
    memset(&sent, 0, sizeof sent);
    sent.device_id = dev[1];
    snprintf(sent.action, sizeof sent.action, "sys_upgrade");
    sent.state = FOTA_CMD_DELIVERED;
    assert_int_equal(s->ops->command_create(s, &sent), 0);

    memset(&t, 0, sizeof t);
    snprintf(t.action, sizeof t.action, "sys_upgrade");
    t.params = json_of("{\"version\": \"v3\"}");
    t.state = FOTA_CMD_DELIVERED;  /* any state the batch is written in replaces */
    assert_int_equal(s->ops->command_create_many(s, &t, sel, nonces, ids, 2), 0);
    snprintf(want, sizeof want,
             "{\"cancelled\": \"replaced by command %lld\", \"replaced_by\": %lld}",
             (long long)ids[0], (long long)ids[0]);
    assert_command(s, a1, FOTA_CMD_CANCELLED, want);
    assert_command(s, a2, FOTA_CMD_CANCELLED, want);
    /* another action, another device, a delivered row and the new rows stay */
    assert_command(s, areboot, FOTA_CMD_QUEUED, NULL);
    assert_command(s, c1, FOTA_CMD_QUEUED, NULL);
    assert_command(s, sent.id, FOTA_CMD_DELIVERED, NULL);
    assert_command(s, ids[0], FOTA_CMD_DELIVERED, NULL);
    assert_command(s, ids[1], FOTA_CMD_DELIVERED, NULL);

    /* a queued batch replaces the queued one before it, never itself */
    t.state = 0;
    nonces[0] = nonces[1] = 0;
    int64_t first[2] = { 0, 0 };
    assert_int_equal(s->ops->command_create_many(s, &t, sel, nonces, first, 2), 0);
    nonces[0] = nonces[1] = 0;
    assert_int_equal(s->ops->command_create_many(s, &t, sel, nonces, ids, 2), 0);
    for (int i = 0; i < 2; i++) {
        snprintf(want, sizeof want,
                 "{\"cancelled\": \"replaced by command %lld\", \"replaced_by\": %lld}",
                 (long long)ids[i], (long long)ids[i]);
        assert_command(s, first[i], FOTA_CMD_CANCELLED, want);
        assert_command(s, ids[i], FOTA_CMD_QUEUED, NULL);
    }

    /* only upgrades replace: a batch of reboots leaves the queued reboot */
    fota_store_command_cleanup(&t);
    memset(&t, 0, sizeof t);
    snprintf(t.action, sizeof t.action, "sys_reboot");
    nonces[0] = nonces[1] = 0;
    assert_int_equal(s->ops->command_create_many(s, &t, sel, nonces, first, 2), 0);
    assert_command(s, areboot, FOTA_CMD_QUEUED, NULL);

    /* an unknown device: nothing written, nothing replaced */
    int64_t bad[2] = { dev[2], 999999 }, bn[2] = { 0, 0 }, bi[2] = { 0, 0 };
    snprintf(t.action, sizeof t.action, "sys_upgrade");
    assert_int_equal(s->ops->command_create_many(s, &t, bad, bn, bi, 2), FOTA_ENOENT);
    assert_command(s, c1, FOTA_CMD_QUEUED, NULL);
    /* a reopen keeps it all */
    store_fixture_reopen(store_fx(state));
    s = store_of(state);
    struct fota_command got;
    assert_int_equal(s->ops->command_get(s, a1, &got), 0);
    assert_int_equal(got.state, FOTA_CMD_CANCELLED);
    assert_non_null(json_object_get(got.result, "replaced_by"));
    fota_store_command_cleanup(&got);
}

/* Two handles on one database (two fotad on one PostgreSQL) replacing one
 * device's queued upgrade at the same time, one by command_create_replacing
 * only, the other also by upgrade batches: the replacements take turns, so
 * every new upgrade replaces the one before it and one stays queued. */
enum { RACE_ROUNDS = 40 };

struct replacer {
    struct fota_store *s;
    int64_t dev, other;
    int batches;                  /* every other round an upgrade batch */
    pthread_barrier_t *start;
    int failures;
};

static void *replace_run(void *arg)
{
    struct replacer *w = arg;

    pthread_barrier_wait(w->start);
    for (int i = 0; i < RACE_ROUNDS; i++) {
        struct fota_command c;
        int rc;

        memset(&c, 0, sizeof c);
        snprintf(c.action, sizeof c.action, "sys_upgrade");
        if (w->batches && i % 2) {
            int64_t devs[2] = { w->other, w->dev }, nonces[2] = { 0, 0 }, ids[2];
            rc = w->s->ops->command_create_many(w->s, &c, devs, nonces, ids, 2);
        } else {
            c.device_id = w->dev;
            rc = w->s->ops->command_create_replacing(w->s, &c, NULL, 0, NULL);
        }
        if (rc != 0)
            w->failures++;
    }
    return NULL;
}

static void test_replacing_race(void **state)
{
    struct store_fixture *fx = store_fx(state);
    struct fota_store *s = fx->s, *s2 = NULL;
    int64_t p = mk_product(s, "fleet");
    int64_t dev = mk_device(s, p, "a", 1), other = mk_device(s, p, "b", 1);
    struct fota_command *list = NULL;
    pthread_barrier_t start;
    struct replacer w[2];
    pthread_t t[2];
    int64_t by_ids[2 * RACE_ROUNDS];
    size_t n = 0, queued_n = 0, nby = 0;

    assert_int_equal(fx->backend->open(fx, &s2), 0);
    assert_int_equal(pthread_barrier_init(&start, NULL, 2), 0);
    w[0] = (struct replacer){ .s = s, .dev = dev, .other = other, .start = &start };
    w[1] = (struct replacer){ .s = s2, .dev = dev, .other = other, .batches = 1, .start = &start };
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, replace_run, &w[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);
    fota_store_close(s2);
    assert_int_equal(w[0].failures, 0);
    assert_int_equal(w[1].failures, 0);

    /* every upgrade of dev but the newest was replaced by a newer one, each
     * by its own: two that were queued at once would share a replacer */
    assert_int_equal(s->ops->command_list_device(s, dev, 0, &list, &n), 0);
    assert_int_equal(n, 2 * RACE_ROUNDS);
    for (size_t i = 0; i < n; i++) {
        if (list[i].state == FOTA_CMD_QUEUED) {
            queued_n++;
            assert_int_equal(i, n - 1);
            continue;
        }
        assert_int_equal(list[i].state, FOTA_CMD_CANCELLED);
        json_t *by = json_object_get(list[i].result, "replaced_by");
        assert_true(json_is_integer(by));
        assert_true(json_integer_value(by) > list[i].id);
        by_ids[nby++] = json_integer_value(by);
    }
    assert_int_equal(queued_n, 1);
    for (size_t i = 0; i < nby; i++)
        for (size_t j = i + 1; j < nby; j++)
            assert_true(by_ids[i] != by_ids[j]);
    fota_store_command_list_free(list, n);
    assert_int_equal(store_log_errors, 0);
}

/* command_queued_devices: which of many devices have a queued command, in
 * one call; unknown ids and devices with only other states say 0. */
static void test_queued_devices(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t p = mk_product(s, "fleet");
    int64_t dev[4] = { mk_device(s, p, "a", 1), mk_device(s, p, "b", 1), mk_device(s, p, "c", 1),
                       mk_device(s, p, "d", 1) };
    struct fota_command c;
    uint8_t q[6];

    memset(&c, 0, sizeof c);
    c.device_id = dev[0];
    snprintf(c.action, sizeof c.action, "sys_reboot");
    assert_int_equal(s->ops->command_create(s, &c), 0);
    fota_store_command_cleanup(&c);
    memset(&c, 0, sizeof c);
    c.device_id = dev[2];
    snprintf(c.action, sizeof c.action, "get_switches");
    assert_int_equal(s->ops->command_create(s, &c), 0);
    c.state = FOTA_CMD_DELIVERED;
    assert_int_equal(s->ops->command_update(s, &c), 0);   /* not queued any more */
    fota_store_command_cleanup(&c);
    memset(&c, 0, sizeof c);
    c.device_id = dev[3];
    snprintf(c.action, sizeof c.action, "sys_reboot");
    assert_int_equal(s->ops->command_create(s, &c), 0);
    assert_int_equal(s->ops->command_create(s, &c), 0);   /* two queued: still 1 */
    fota_store_command_cleanup(&c);

    int64_t ids[6] = { dev[3], dev[1], 987654, dev[0], dev[2], dev[3] };
    memset(q, 7, sizeof q);
    assert_int_equal(s->ops->command_queued_devices(s, ids, 6, q), 0);
    assert_int_equal(q[0], 1);
    assert_int_equal(q[1], 0);
    assert_int_equal(q[2], 0);
    assert_int_equal(q[3], 1);
    assert_int_equal(q[4], 0);
    assert_int_equal(q[5], 1);
    assert_int_equal(s->ops->command_queued_devices(s, ids, 0, q), 0);

    /* a batch as large as the channel's (2,048 devices), most unknown */
    int64_t *many = calloc(2048, sizeof *many);
    uint8_t *mq = calloc(2048, 1);
    assert_non_null(many);
    assert_non_null(mq);
    for (int i = 0; i < 2048; i++)
        many[i] = i == 1000 ? dev[0] : 1000000 + i;
    assert_int_equal(s->ops->command_queued_devices(s, many, 2048, mq), 0);
    for (int i = 0; i < 2048; i++)
        assert_int_equal(mq[i], i == 1000);
    free(many);
    free(mq);
    assert_int_equal(store_log_errors, 0);
}

/* command_reply: the newest command with the nonce moves on in one call
 * (ACKED for sys_upgrade, DONE otherwise, FAILED for a status but 200) with
 * the reply as its result; a command past its push or done refuses. */
static void test_command_reply(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t p = mk_product(s, "fleet");
    int64_t a = mk_device(s, p, "a", 1), b = mk_device(s, p, "b", 1);
    struct fota_command c, out;
    json_t *reply = json_of("{\"switches\": [1, 0]}");

    memset(&c, 0, sizeof c);
    c.device_id = a;
    c.nonce = 777;
    snprintf(c.action, sizeof c.action, "get_switches");
    assert_int_equal(s->ops->command_create(s, &c), 0);
    int64_t first = c.id;
    /* still queued: not open for a reply */
    assert_int_equal(s->ops->command_reply(s, a, 777, 200, reply, &out), FOTA_EBUSY);
    assert_int_equal(out.id, first);
    assert_int_equal(out.state, FOTA_CMD_QUEUED);
    fota_store_command_cleanup(&out);
    c.state = FOTA_CMD_DELIVERED;
    assert_int_equal(s->ops->command_update(s, &c), 0);
    fota_store_command_cleanup(&c);

    /* unknown nonce, another device's nonce, an unknown device */
    assert_int_equal(s->ops->command_reply(s, a, 778, 200, reply, &out), FOTA_ENOENT);
    assert_int_equal(s->ops->command_reply(s, b, 777, 200, reply, NULL), FOTA_ENOENT);
    assert_int_equal(s->ops->command_reply(s, 987654, 777, 200, reply, NULL), FOTA_ENOENT);

    uint64_t devgen = fota_store_device_generation(s, a);
    assert_int_equal(s->ops->command_reply(s, a, 777, 200, reply, &out), 0);
    assert_int_equal(out.id, first);
    assert_int_equal(out.state, FOTA_CMD_DONE);
    assert_json_text(out.result, "{\"switches\": [1, 0]}");
    assert_true(out.updated > 0);
    fota_store_command_cleanup(&out);
    assert_true(fota_store_device_generation(s, a) != devgen);   /* its commands moved */
    /* done: a second reply changes nothing */
    assert_int_equal(s->ops->command_reply(s, a, 777, 500, NULL, &out), FOTA_EBUSY);
    assert_int_equal(out.state, FOTA_CMD_DONE);
    fota_store_command_cleanup(&out);

    /* the newest command with the nonce: a sys_upgrade, ACKED; then FAILED */
    memset(&c, 0, sizeof c);
    c.device_id = a;
    c.nonce = 777;
    c.state = FOTA_CMD_DELIVERED;
    snprintf(c.action, sizeof c.action, "sys_upgrade");
    assert_int_equal(s->ops->command_create(s, &c), 0);
    assert_int_equal(s->ops->command_reply(s, a, 777, 200, NULL, &out), 0);
    assert_int_equal(out.id, c.id);
    assert_int_equal(out.state, FOTA_CMD_ACKED);
    assert_null(out.result);
    fota_store_command_cleanup(&out);
    assert_int_equal(s->ops->command_reply(s, a, 777, 404, reply, NULL), 0);   /* ACKED is open */
    assert_int_equal(s->ops->command_get(s, c.id, &out), 0);
    assert_int_equal(out.state, FOTA_CMD_FAILED);
    assert_json_text(out.result, "{\"switches\": [1, 0]}");
    fota_store_command_cleanup(&out);
    fota_store_command_cleanup(&c);
    json_decref(reply);
    assert_int_equal(store_log_errors, 0);
}

const struct CMUnitTest store_cases_batch[] = {
    cmocka_unit_test(test_create_many),
    cmocka_unit_test(test_update_batch),
    cmocka_unit_test(test_many_rows),
    cmocka_unit_test(test_create_many_replaces),
    cmocka_unit_test(test_replacing_race),
    cmocka_unit_test(test_queued_devices),
    cmocka_unit_test(test_command_reply),
};
const size_t store_cases_batch_n = sizeof store_cases_batch / sizeof store_cases_batch[0];
