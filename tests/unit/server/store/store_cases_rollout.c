/* store_cases_rollout.c - conformance cases: rollouts and their members
 * (create, one-transaction saves of thousands of members, inserted and then
 * updated in place, read back in device id order with paging, counters and
 * marks, lists newest first by product and state). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fota_str.h"
#include "store_fixture.h"

#define N_MEMBERS 5000

static struct fota_rollout_row row_for(int64_t product_id, const char *version)
{
    struct fota_rollout_row r;
    memset(&r, 0, sizeof r);
    r.product_id = product_id;
    fota_str_copy(r.version, sizeof r.version, version);
    snprintf(r.filter, sizeof r.filter, "{\"online\": true}");
    r.window = 256;
    r.timeout_s = 600;
    r.max_failures = -1;
    r.state = FOTA_ROLLOUT_RUNNING;
    r.ms_delivered = r.ms_acked = r.ms_finished = -1;
    return r;
}

static void test_rollout_create_get(void **state)
{
    struct fota_store *s = store_of(state);
    struct fota_rollout_row r = row_for(7, "v1.1"), out;
    r.n.total = 3;
    r.n.queued = 3;
    assert_int_equal(s->ops->rollout_create(s, &r), 0);
    assert_true(r.id > 0 && r.created > 0);
    assert_int_equal(s->ops->rollout_get(s, r.id, &out), 0);
    assert_int_equal(out.product_id, 7);
    assert_string_equal(out.version, "v1.1");
    assert_string_equal(out.filter, "{\"online\": true}");
    assert_int_equal(out.window, 256);
    assert_int_equal(out.max_failures, -1);
    assert_int_equal(out.state, FOTA_ROLLOUT_RUNNING);
    assert_int_equal(out.n.total, 3);
    assert_int_equal(out.n.queued, 3);
    assert_true(out.ms_delivered < 0 && out.ms_acked < 0 && out.ms_finished < 0);
    assert_int_equal(s->ops->rollout_get(s, r.id + 100, &out), FOTA_ENOENT);
    struct fota_rollout_row bad = row_for(0, "v1");
    assert_int_equal(s->ops->rollout_create(s, &bad), FOTA_EINVAL);
}

static void test_rollout_save_members(void **state)
{
    struct fota_store *s = store_of(state);
    struct fota_rollout_row r = row_for(1, "v2");
    assert_int_equal(s->ops->rollout_create(s, &r), 0);
    struct fota_rollout_member_row *ms = calloc(N_MEMBERS, sizeof *ms);
    assert_non_null(ms);
    for (size_t i = 0; i < N_MEMBERS; i++) /* given out of order: read back in id order */
        ms[i] = (struct fota_rollout_member_row){ r.id, (int64_t)(N_MEMBERS - i), 0,
                                                  FOTA_RM_QUEUED, 0, (int64_t)i + 1, 0, 0 };
    r.n.total = N_MEMBERS;
    r.n.queued = N_MEMBERS;
    assert_int_equal(s->ops->rollout_save(s, &r, 1, ms, N_MEMBERS), 0);
    /* The same keys again: updated in place, not added. */
    for (size_t i = 0; i < 10; i++) {
        ms[i].state = FOTA_RM_DONE;
        ms[i].command_id = 100 + (int64_t)i;
        ms[i].pushed = 1700000000;
    }
    r.n.queued = N_MEMBERS - 10;
    r.n.succeeded = 10;
    r.ms_delivered = 12.5;
    r.state = FOTA_ROLLOUT_CANCELLING;
    r.halted = 1;
    assert_int_equal(s->ops->rollout_save(s, &r, 1, ms, 10), 0);

    struct fota_rollout_member_row *got = NULL;
    size_t n = 0;
    assert_int_equal(s->ops->rollout_members(s, r.id, 0, 0, &got, &n), 0);
    assert_int_equal(n, N_MEMBERS);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(got[i].device_id, (int64_t)i + 1);
    struct fota_rollout_member_row *last = &got[N_MEMBERS - 1]; /* ms[0]: device N_MEMBERS */
    assert_int_equal(last->state, FOTA_RM_DONE);
    assert_int_equal(last->command_id, 100);
    assert_int_equal(last->pushed, 1700000000);
    assert_int_equal(last->nonce, 1);
    assert_int_equal(got[0].state, FOTA_RM_QUEUED);
    free(got);
    /* Paging: after device 4990, at most 4 rows. */
    assert_int_equal(s->ops->rollout_members(s, r.id, 4990, 4, &got, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(got[0].device_id, 4991);
    assert_int_equal(got[3].device_id, 4994);
    free(got);

    struct fota_rollout_row out;
    assert_int_equal(s->ops->rollout_get(s, r.id, &out), 0);
    assert_int_equal(out.n.succeeded, 10);
    assert_int_equal(out.n.queued, N_MEMBERS - 10);
    assert_int_equal(out.state, FOTA_ROLLOUT_CANCELLING);
    assert_int_equal(out.halted, 1);
    assert_true(out.ms_delivered > 12.4 && out.ms_delivered < 12.6);
    assert_true(out.ms_acked < 0);
    free(ms);
}

static void test_rollout_list(void **state)
{
    struct fota_store *s = store_of(state);
    struct fota_rollout_row a = row_for(1, "v1"), b = row_for(2, "v1"), c = row_for(1, "v2");
    c.state = FOTA_ROLLOUT_FINISHED;
    assert_int_equal(s->ops->rollout_create(s, &a), 0);
    assert_int_equal(s->ops->rollout_create(s, &b), 0);
    assert_int_equal(s->ops->rollout_create(s, &c), 0);
    struct fota_rollout_row *rows = NULL;
    size_t n = 0;
    assert_int_equal(s->ops->rollout_list(s, 0, 0, &rows, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(rows[0].id, c.id); /* newest first */
    assert_int_equal(rows[2].id, a.id);
    free(rows);
    assert_int_equal(s->ops->rollout_list(s, 1, 0, &rows, &n), 0);
    assert_int_equal(n, 2);
    free(rows);
    assert_int_equal(s->ops->rollout_list(s, 1, FOTA_ROLLOUT_RUNNING, &rows, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].id, a.id);
    free(rows);
    assert_int_equal(s->ops->rollout_list(s, 99, 0, &rows, &n), 0);
    assert_int_equal(n, 0);
    assert_non_null(rows);
    free(rows);
}

const struct CMUnitTest store_cases_rollout[] = {
    cmocka_unit_test(test_rollout_create_get),
    cmocka_unit_test(test_rollout_save_members),
    cmocka_unit_test(test_rollout_list),
};
const size_t store_cases_rollout_n = sizeof store_cases_rollout / sizeof store_cases_rollout[0];
