/* store_cases_rollout.c - conformance cases: rollouts and their members
 * (create, one-transaction saves of thousands of members, inserted and then
 * updated in place, read back in device id order with paging and by state,
 * counters and marks, lists newest first by product and state), their
 * stages (created with the rollout, saved with it, read back by get and
 * list), the version a member ran before (written once) and the progress
 * samples (bounded: a rollout over the bound loses every second one). */
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
    r.hours_from = r.hours_to = FOTA_ROLLOUT_ANY_HOUR;
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
        ms[i] = (struct fota_rollout_member_row){ .rollout_id = r.id,
                                                  .device_id = (int64_t)(N_MEMBERS - i),
                                                  .state = FOTA_RM_QUEUED,
                                                  .nonce = (int64_t)i + 1 };
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
    assert_int_equal(s->ops->rollout_members(s, r.id, 0, 0, 0, &got, &n), 0);
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
    assert_int_equal(s->ops->rollout_members(s, r.id, 4990, 0, 4, &got, &n), 0);
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

static void test_rollout_stages(void **state)
{
    struct fota_store *s = store_of(state);
    struct fota_rollout_row r = row_for(3, "v3"), other = row_for(3, "v4"), out;
    r.nstages = 3;
    r.stage = 0;
    r.health_s = 120;
    r.max_reboots = 2;
    r.hours_from = 22 * 60;
    r.hours_to = 4 * 60;
    r.seed = 12345;
    r.state = FOTA_ROLLOUT_APPROVAL;
    for (int k = 0; k < 3; k++) {
        r.stages[k].kind = k == 2 ? FOTA_STAGE_REST : FOTA_STAGE_PERCENT;
        r.stages[k].value = k == 0 ? 1 : k == 1 ? 10 : 0;
        r.stages[k].success = 90 + k;
        r.stages[k].max_failures = k == 0 ? -1 : k;
        r.stages[k].approval = k > 0;
        r.stages[k].total = 10 * (k + 1);
    }
    assert_int_equal(s->ops->rollout_create(s, &r), 0);
    assert_int_equal(s->ops->rollout_create(s, &other), 0);   /* no stages */
    assert_int_equal(s->ops->rollout_get(s, r.id, &out), 0);
    assert_int_equal(out.nstages, 3);
    assert_int_equal(out.state, FOTA_ROLLOUT_APPROVAL);
    assert_int_equal(out.health_s, 120);
    assert_int_equal(out.max_reboots, 2);
    assert_int_equal(out.hours_from, 22 * 60);
    assert_int_equal(out.hours_to, 4 * 60);
    assert_int_equal(out.seed, 12345);
    assert_int_equal(out.stages[1].kind, FOTA_STAGE_PERCENT);
    assert_int_equal(out.stages[1].value, 10);
    assert_int_equal(out.stages[1].success, 91);
    assert_int_equal(out.stages[1].max_failures, 1);
    assert_int_equal(out.stages[0].max_failures, -1);
    assert_int_equal(out.stages[2].kind, FOTA_STAGE_REST);
    assert_int_equal(out.stages[2].approval, 1);
    assert_int_equal(out.stages[2].total, 30);
    /* a save moves the stage, pause and the stages' counters and times */
    r.stage = 1;
    r.state = FOTA_ROLLOUT_PAUSED;
    r.halted = 1;
    r.paused_at = 1700000100;
    snprintf(r.pause_reason, sizeof r.pause_reason, "stage 2: too many failures");
    r.stages[0].succeeded = 10;
    r.stages[0].started = 1700000000;
    r.stages[1].failed = 3;
    r.stages[1].fail_base = 1;
    r.stages[1].started = r.stages[1].approved = 1700000050;
    r.n.verifying = 4;
    assert_int_equal(s->ops->rollout_save(s, &r, 1, NULL, 0), 0);
    assert_int_equal(s->ops->rollout_get(s, r.id, &out), 0);
    assert_int_equal(out.stage, 1);
    assert_int_equal(out.state, FOTA_ROLLOUT_PAUSED);
    assert_int_equal(out.paused_at, 1700000100);
    assert_string_equal(out.pause_reason, "stage 2: too many failures");
    assert_int_equal(out.n.verifying, 4);
    assert_int_equal(out.stages[0].succeeded, 10);
    assert_int_equal(out.stages[0].started, 1700000000);
    assert_int_equal(out.stages[1].failed, 3);
    assert_int_equal(out.stages[1].fail_base, 1);
    assert_int_equal(out.stages[1].approved, 1700000050);
    assert_int_equal(out.stages[1].kind, FOTA_STAGE_PERCENT);   /* settings stay */
    struct fota_rollout_row *rows = NULL;
    size_t n = 0;
    assert_int_equal(s->ops->rollout_list(s, 3, 0, &rows, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(rows[0].id, other.id);
    assert_int_equal(rows[0].nstages, 0);
    assert_int_equal(rows[0].hours_from, FOTA_ROLLOUT_ANY_HOUR);
    assert_int_equal(rows[1].nstages, 3);
    assert_int_equal(rows[1].stages[1].failed, 3);
    free(rows);
    struct fota_rollout_row bad = row_for(3, "v5");
    bad.nstages = FOTA_ROLLOUT_STAGES_MAX + 1;
    assert_int_equal(s->ops->rollout_create(s, &bad), FOTA_EINVAL);
}

static void test_rollout_member_fields(void **state)
{
    struct fota_store *s = store_of(state);
    struct fota_rollout_row r = row_for(4, "v2");
    assert_int_equal(s->ops->rollout_create(s, &r), 0);
    struct fota_rollout_member_row ms[3];
    memset(ms, 0, sizeof ms);
    for (int i = 0; i < 3; i++) {
        ms[i].rollout_id = r.id;
        ms[i].device_id = 10 + i;
        ms[i].stage = i;
        ms[i].state = FOTA_RM_WAITING;
        snprintf(ms[i].pre_version, sizeof ms[i].pre_version, "v1.%d", i);
    }
    assert_int_equal(s->ops->rollout_save(s, &r, 1, ms, 3), 0);
    /* later saves carry no previous version: the first one's stays */
    ms[1].state = FOTA_RM_FAILED;
    ms[1].reason = FOTA_RR_REBOOT_LOOP;
    ms[1].boots = 4;
    ms[1].reported = 1700000200;
    ms[1].pre_version[0] = '\0';
    ms[2].state = FOTA_RM_VERIFYING;
    ms[2].pre_version[0] = '\0';
    assert_int_equal(s->ops->rollout_save(s, &r, 1, &ms[1], 2), 0);
    struct fota_rollout_member_row *got = NULL;
    size_t n = 0;
    assert_int_equal(s->ops->rollout_members(s, r.id, 0, 0, 0, &got, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(got[0].pre_version, "v1.0");
    assert_string_equal(got[1].pre_version, "v1.1");
    assert_string_equal(got[2].pre_version, "v1.2");
    assert_int_equal(got[1].state, FOTA_RM_FAILED);
    assert_int_equal(got[1].reason, FOTA_RR_REBOOT_LOOP);
    assert_int_equal(got[1].boots, 4);
    assert_int_equal(got[1].reported, 1700000200);
    assert_int_equal(got[1].stage, 1);
    free(got);
    /* by state */
    assert_int_equal(s->ops->rollout_members(s, r.id, 0, FOTA_RM_VERIFYING, 0, &got, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(got[0].device_id, 12);
    free(got);
    assert_int_equal(s->ops->rollout_members(s, r.id, 0, FOTA_RM_DONE, 0, &got, &n), 0);
    assert_int_equal(n, 0);
    assert_non_null(got);
    free(got);
}

static void test_rollout_samples(void **state)
{
    struct fota_store *s = store_of(state);
    struct fota_rollout_row r = row_for(5, "v2"), q = row_for(5, "v3");
    assert_int_equal(s->ops->rollout_create(s, &r), 0);
    assert_int_equal(s->ops->rollout_create(s, &q), 0);
    struct fota_rollout_sample x = { .rollout_id = r.id, .t = 1000 };
    x.n.succeeded = 1;
    assert_int_equal(s->ops->rollout_sample_add(s, &x, 1), 0);
    x.n.succeeded = 2;   /* the same second: replaced */
    assert_int_equal(s->ops->rollout_sample_add(s, &x, 1), 0);
    struct fota_rollout_sample *got = NULL;
    size_t n = 0;
    assert_int_equal(s->ops->rollout_samples(s, r.id, &got, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(got[0].n.succeeded, 2);
    free(got);
    /* beyond the bound: every second one goes, the newest stays, others' untouched */
    size_t total = FOTA_ROLLOUT_SAMPLES_MAX + 1;
    struct fota_rollout_sample *many = calloc(total, sizeof *many);
    assert_non_null(many);
    for (size_t i = 0; i < total; i++) {
        many[i].rollout_id = r.id;
        many[i].t = 1000 + 60 * (int64_t)i;
        many[i].n.delivered = (int64_t)i;
    }
    assert_int_equal(s->ops->rollout_sample_add(s, many, total), 0);
    x.rollout_id = q.id;
    assert_int_equal(s->ops->rollout_sample_add(s, &x, 1), 0);
    assert_int_equal(s->ops->rollout_samples(s, r.id, &got, &n), 0);
    assert_true(n <= FOTA_ROLLOUT_SAMPLES_MAX && n >= FOTA_ROLLOUT_SAMPLES_MAX / 2);
    assert_int_equal(got[0].t, 1000);                          /* oldest first */
    assert_int_equal(got[n - 1].t, many[total - 1].t);         /* the newest kept */
    for (size_t i = 1; i < n; i++)
        assert_true(got[i].t > got[i - 1].t);
    free(got);
    assert_int_equal(s->ops->rollout_samples(s, q.id, &got, &n), 0);
    assert_int_equal(n, 1);
    free(got);
    free(many);
}

/* A member named twice in one save ends as its last row says, with the
 * version before the rollout of its first (as one write per row in order
 * leaves it); a batch of distinct members and one naming one twice write
 * alike. */
static void test_rollout_save_twice(void **state)
{
    struct fota_store *s = store_of(state);
    struct fota_rollout_row r = row_for(1, "v2");
    struct fota_rollout_member_row ms[3], *got = NULL;
    size_t n = 0;

    assert_int_equal(s->ops->rollout_create(s, &r), 0);
    memset(ms, 0, sizeof ms);
    for (int i = 0; i < 3; i++) {
        ms[i].rollout_id = r.id;
        ms[i].device_id = 20 + i % 2;   /* 20, 21, 20 */
        ms[i].state = i < 2 ? FOTA_RM_WAITING : FOTA_RM_DELIVERED;
        ms[i].nonce = 7 + i;
    }
    snprintf(ms[0].pre_version, sizeof ms[0].pre_version, "v1.a");
    snprintf(ms[1].pre_version, sizeof ms[1].pre_version, "v1.b");
    ms[2].command_id = 99;
    assert_int_equal(s->ops->rollout_save(s, &r, 1, ms, 3), 0);
    assert_int_equal(s->ops->rollout_members(s, r.id, 0, 0, 0, &got, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(got[0].device_id, 20);
    assert_int_equal(got[0].state, FOTA_RM_DELIVERED);
    assert_int_equal(got[0].nonce, 9);
    assert_int_equal(got[0].command_id, 99);
    assert_string_equal(got[0].pre_version, "v1.a");
    assert_int_equal(got[1].state, FOTA_RM_WAITING);
    assert_string_equal(got[1].pre_version, "v1.b");
    free(got);
}

const struct CMUnitTest store_cases_rollout[] = {
    cmocka_unit_test(test_rollout_create_get),
    cmocka_unit_test(test_rollout_save_members),
    cmocka_unit_test(test_rollout_list),
    cmocka_unit_test(test_rollout_stages),
    cmocka_unit_test(test_rollout_member_fields),
    cmocka_unit_test(test_rollout_samples),
    cmocka_unit_test(test_rollout_save_twice),
};
const size_t store_cases_rollout_n = sizeof store_cases_rollout / sizeof store_cases_rollout[0];
