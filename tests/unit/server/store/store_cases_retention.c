/* store_cases_retention.c - conformance cases of message_prune and
 * transfer_prune: by age, by count, per device, in rounds of bounded calls;
 * kept rows keep their ids, a follower's after_id skips only what was
 * pruned, and no pruned id is handed out again (also after a reopen). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "clock.h"
#include "store_fixture.h"

#define DAY 86400

/* A message of device dev (0: product-wide) created at `created`. */
static int64_t msg_at(struct fota_store *s, int64_t dev, int64_t created)
{
    struct fota_message m = { .product_id = 1, .device_id = dev, .created = created };

    snprintf(m.action, sizeof m.action, "datapoint");
    snprintf(m.body, sizeof m.body, "{\"n\": %lld}", (long long)created);
    assert_int_equal(s->ops->message_add(s, &m), 0);
    return m.id;
}

static int64_t xfer_at(struct fota_store *s, int64_t created)
{
    struct fota_transfer t = { .section = 1, .bytes = 4096, .created = created };

    snprintf(t.peer, sizeof t.peer, "127.0.0.1:5000");
    snprintf(t.result, sizeof t.result, "client_closed");
    assert_int_equal(s->ops->transfer_add(s, &t), 0);
    return t.id;
}

/* The ids message_list returns for device dev (-1: any) after id `after`
 * (0: all), oldest first. */
static size_t msg_ids(struct fota_store *s, int64_t dev, int64_t after, int64_t *ids, size_t cap)
{
    struct fota_message_filter f = { .after_id = after, .limit = 1000 };
    struct fota_message *list = NULL;
    size_t n = 0;

    if (dev >= 0)
        f.device_id = dev;
    assert_int_equal(s->ops->message_list(s, &f, &list, &n), 0);
    assert_true(n <= cap);
    for (size_t i = 0; i < n; i++)   /* without after_id the list is newest first */
        ids[after ? i : n - 1 - i] = list[i].id;
    free(list);
    return n;
}

/* One round of message_prune (which = 0) or transfer_prune (1) with r:
 * calls until the store says it is over, each within r->max_batch. The
 * rows deleted; *calls (may be NULL) the calls it took. */
static size_t round_of(struct fota_store *s, int which, struct fota_retention *r, size_t *calls)
{
    size_t batch = r->max_batch ? r->max_batch : FOTA_PRUNE_BATCH, n, total = 0, k = 0;
    int more = 1;

    memset(&r->pos, 0, sizeof r->pos);
    while (more) {
        n = 99999;
        more = -1;
        if (which == 0)
            assert_int_equal(s->ops->message_prune(s, r, &n, &more), 0);
        else
            assert_int_equal(s->ops->transfer_prune(s, r, &n, &more), 0);
        assert_true(n <= batch);
        assert_true(more == 0 || more == 1);
        total += n;
        assert_true(++k < 10000);
    }
    if (calls)
        *calls = k;
    return total;
}

static size_t prune_msgs(struct fota_store *s, struct fota_retention *r)
{
    return round_of(s, 0, r, NULL);
}

/* By age: the oldest rows up to the first young one go; a young row keeps
 * an old row after it (ids follow arrival); the kept rows keep their ids. */
static void test_prune_age(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t now = fota_clock_wall_s(), id[8], got[16];
    struct fota_retention r = { .older_than = now - 30 * DAY };
    size_t n;
    int more;

    for (int i = 0; i < 5; i++)
        id[i] = msg_at(s, 0, now - 100 * DAY + i);   /* 5 old */
    id[5] = msg_at(s, 0, now - 1 * DAY);             /* young */
    id[6] = msg_at(s, 0, now - 90 * DAY);            /* old, behind a young one */
    id[7] = msg_at(s, 0, now);
    assert_int_equal(prune_msgs(s, &r), 5);
    assert_int_equal(prune_msgs(s, &r), 0);
    n = msg_ids(s, -1, 0, got, 16);
    assert_int_equal(n, 3);
    assert_int_equal(got[0], id[5]);
    assert_int_equal(got[1], id[6]);
    assert_int_equal(got[2], id[7]);

    /* no limit set: nothing goes */
    r = (struct fota_retention){ 0 };
    assert_int_equal(prune_msgs(s, &r), 0);
    r.keep_rows = -1;
    n = 7;
    assert_int_equal(s->ops->message_prune(s, &r, &n, &more), FOTA_EINVAL);
    assert_int_equal(n, 0);
}

/* By count, in batches: each call deletes at most max_batch of the oldest
 * rows, the round ends once none is over the count, and the newest
 * keep_rows stay with their ids. */
static void test_prune_count(void **state)
{
    struct fota_store *s = store_of(state);
    struct fota_retention r = { .keep_rows = 10, .max_batch = 4 };
    int64_t now = fota_clock_wall_s(), id[25], got[32];
    size_t n, calls;

    for (int i = 0; i < 25; i++)
        id[i] = msg_at(s, i % 3, now);
    assert_int_equal(round_of(s, 0, &r, &calls), 15);
    assert_int_equal(calls, 4);                  /* 4, 4, 4, then 3 */
    n = msg_ids(s, -1, 0, got, 32);
    assert_int_equal(n, 10);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(got[i], id[15 + i]);
    assert_int_equal(round_of(s, 0, &r, &calls), 0);
    assert_int_equal(calls, 1);

    /* max_batch 0 is FOTA_PRUNE_BATCH; age and count together take the
     * larger prefix */
    r = (struct fota_retention){ .keep_rows = 8, .older_than = now + 1 };
    assert_int_equal(prune_msgs(s, &r), 10);     /* everything is older than now + 1 */
    assert_int_equal(msg_ids(s, -1, 0, got, 32), 0);
}

/* Per device: each device keeps its newest keep_per_device rows; other
 * devices and the product-wide messages (device 0) are not touched. */
static void test_prune_per_device(void **state)
{
    struct fota_store *s = store_of(state);
    struct fota_retention r = { .keep_per_device = 4, .max_batch = 3 };
    int64_t now = fota_clock_wall_s(), a[8], b[3], got[16];
    size_t n, calls;

    for (int i = 0; i < 8; i++) {
        a[i] = msg_at(s, 7, now);
        if (i < 3)
            b[i] = msg_at(s, 9, now);
        msg_at(s, 0, now);
    }

    assert_int_equal(round_of(s, 0, &r, &calls), 4);   /* a batch of 3, then the rest */
    assert_int_equal(calls, 2);
    assert_int_equal(prune_msgs(s, &r), 0);
    n = msg_ids(s, 7, 0, got, 16);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(got[i], a[4 + i]);
    n = msg_ids(s, 9, 0, got, 16);
    assert_int_equal(n, 3);
    assert_int_equal(got[0], b[0]);
    assert_int_equal(msg_ids(s, -1, 0, got, 16), 4 + 3 + 8);   /* device 0 kept its 8 */
}

/* A follower (after_id) skips only the pruned rows; once retention has
 * emptied the table a new message still gets a higher id than any before,
 * also after a restart, so the follower sees it. */
static void test_prune_follow(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t now = fota_clock_wall_s(), id[10], got[16], last;
    struct fota_retention r = { .keep_rows = 5 };
    size_t n;

    for (int i = 0; i < 10; i++)
        id[i] = msg_at(s, 3, now);
    assert_int_equal(prune_msgs(s, &r), 5);
    n = msg_ids(s, -1, id[2], got, 16);          /* the follower had read up to id[2] */
    assert_int_equal(n, 5);
    assert_int_equal(got[0], id[5]);

    r = (struct fota_retention){ .older_than = now + 1 };
    assert_int_equal(prune_msgs(s, &r), 5);
    last = id[9];
    assert_true(msg_at(s, 3, now) > last);
    store_fixture_reopen(store_fx(state));
    s = store_of(state);
    assert_int_equal(prune_msgs(s, &r), 1);
    last = msg_at(s, 3, now);
    assert_true(last > id[9] + 1);
    n = msg_ids(s, -1, id[9], got, 16);
    assert_int_equal(n, 1);
    assert_int_equal(got[0], last);
}

/* Transfers: age and count the same way (no per-device cap); a burst of
 * legacy connections is bounded to keep_rows, pruned in full batches (two of
 * them, then a call that finds none); ids never come back. */
#define XFER_KEEP 200
#define XFER_OVER (2 * FOTA_PRUNE_BATCH)
static void test_prune_transfers(void **state)
{
    struct fota_store *s = store_of(state);
    int64_t now = fota_clock_wall_s(), first, newest = 0;
    struct fota_retention r = { .keep_rows = XFER_KEEP };
    struct fota_transfer *list = NULL;
    size_t n, calls;

    first = xfer_at(s, now - 40 * DAY);
    for (int i = 0; i < XFER_KEEP + XFER_OVER - 1; i++)
        newest = xfer_at(s, now);
    assert_int_equal(round_of(s, 1, &r, &calls), XFER_OVER);
    assert_int_equal(calls, XFER_OVER / FOTA_PRUNE_BATCH + 1);   /* full batches, then none */
    assert_int_equal(s->ops->transfer_list(s, 1000, &list, &n), 0);
    assert_int_equal(n, XFER_KEEP);
    assert_int_equal(list[0].id, newest);
    assert_int_equal(list[XFER_KEEP - 1].id, newest - (XFER_KEEP - 1));
    assert_true(list[XFER_KEEP - 1].id > first);
    free(list);

    r = (struct fota_retention){ .older_than = now + 1 };
    assert_int_equal(round_of(s, 1, &r, NULL), XFER_KEEP);
    assert_true(xfer_at(s, now) > newest);
}

/* Pruning is log traffic: no new generation, caches stay. */
static void test_prune_generation(void **state)
{
    struct fota_store *s = store_of(state);
    struct fota_retention r = { .keep_rows = 1 };
    int64_t now = fota_clock_wall_s();
    uint64_t g;

    msg_at(s, 1, now);
    msg_at(s, 1, now);
    xfer_at(s, now);
    xfer_at(s, now);
    g = fota_store_generation(s);
    assert_int_equal(round_of(s, 0, &r, NULL), 1);
    assert_int_equal(round_of(s, 1, &r, NULL), 1);
    assert_true(fota_store_generation(s) == g);
}

const struct CMUnitTest store_cases_retention[] = {
    cmocka_unit_test(test_prune_age),
    cmocka_unit_test(test_prune_count),
    cmocka_unit_test(test_prune_per_device),
    cmocka_unit_test(test_prune_follow),
    cmocka_unit_test(test_prune_transfers),
    cmocka_unit_test(test_prune_generation),
};
const size_t store_cases_retention_n = sizeof store_cases_retention / sizeof store_cases_retention[0];
