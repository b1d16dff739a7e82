/* hub_test.c - the module hub (server/core/hub.c): subscribers run in
 * subscription order, publish stops at the first non-zero answer, a topic
 * without subscribers answers 0, unsubscribe removes only its own entry,
 * and a full topic refuses one more subscriber. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "fota_err.h"
#include "hub.h"
#include "server.h"

struct probe {
    int calls;
    int order;           /* the global call counter when this one ran */
    int64_t answer;
    int64_t seen_device;
};

static int counter;

static int64_t on_event(void *ud, const void *event)
{
    struct probe *p = ud;
    const struct fota_hub_device *d = event;
    p->calls++;
    p->order = ++counter;
    p->seen_device = d ? d->device_id : -1;
    return p->answer;
}

static void test_order_and_first_answer(void **state)
{
    static struct fota_server srv;
    struct probe a = { 0 }, b = { .answer = 42 }, c = { .answer = 7 };
    struct fota_hub_device ev = { 99 };
    (void)state;
    memset(&srv, 0, sizeof srv);
    counter = 0;
    assert_int_equal(fota_hub_publish(&srv, FOTA_HUB_DEVICE_BUSY, &ev), 0);
    assert_int_equal(fota_hub_subscribe(&srv, FOTA_HUB_DEVICE_BUSY, on_event, &a), 0);
    assert_int_equal(fota_hub_subscribe(&srv, FOTA_HUB_DEVICE_BUSY, on_event, &b), 0);
    assert_int_equal(fota_hub_subscribe(&srv, FOTA_HUB_DEVICE_BUSY, on_event, &c), 0);
    assert_int_equal(fota_hub_publish(&srv, FOTA_HUB_DEVICE_BUSY, &ev), 42);
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 1);
    assert_int_equal(c.calls, 0);          /* b answered: c is not asked */
    assert_true(a.order < b.order);
    assert_int_equal(a.seen_device, 99);
    /* Another topic is independent. */
    assert_int_equal(fota_hub_publish(&srv, FOTA_HUB_RELEASE_BUSY, &ev), 0);
    assert_int_equal(a.calls, 1);
    /* Without b, c answers. */
    fota_hub_unsubscribe(&srv, FOTA_HUB_DEVICE_BUSY, on_event, &b);
    assert_int_equal(fota_hub_publish(&srv, FOTA_HUB_DEVICE_BUSY, &ev), 7);
    assert_int_equal(a.calls, 2);
    assert_int_equal(b.calls, 1);
    assert_int_equal(c.calls, 1);
    assert_true(a.order < c.order);
    /* Unsubscribing something never subscribed changes nothing. */
    fota_hub_unsubscribe(&srv, FOTA_HUB_DEVICE_BUSY, on_event, &b);
    fota_hub_unsubscribe(&srv, FOTA_HUB_DEVICE_BUSY, on_event, &a);
    fota_hub_unsubscribe(&srv, FOTA_HUB_DEVICE_BUSY, on_event, &c);
    assert_int_equal(fota_hub_publish(&srv, FOTA_HUB_DEVICE_BUSY, &ev), 0);
    assert_int_equal(a.calls, 2);
}

static void test_limits(void **state)
{
    static struct fota_server srv;
    struct probe p[FOTA_HUB_SUBS_MAX + 1];
    (void)state;
    memset(&srv, 0, sizeof srv);
    memset(p, 0, sizeof p);
    for (int i = 0; i < FOTA_HUB_SUBS_MAX; i++)
        assert_int_equal(fota_hub_subscribe(&srv, FOTA_HUB_DOWNLOADS_SYNC, on_event, &p[i]), 0);
    assert_int_equal(fota_hub_subscribe(&srv, FOTA_HUB_DOWNLOADS_SYNC, on_event,
                                        &p[FOTA_HUB_SUBS_MAX]), FOTA_ETOOBIG);
    assert_int_equal(fota_hub_subscribe(&srv, FOTA_HUB_TOPICS, on_event, &p[0]), FOTA_EINVAL);
    assert_int_equal(fota_hub_subscribe(&srv, FOTA_HUB_DEVICE_ONLINE, NULL, &p[0]), FOTA_EINVAL);
    assert_int_equal(fota_hub_publish(&srv, FOTA_HUB_TOPICS, NULL), 0);
    assert_int_equal(fota_hub_publish(&srv, FOTA_HUB_DOWNLOADS_SYNC, NULL), 0);
    for (int i = 0; i < FOTA_HUB_SUBS_MAX; i++) {
        assert_int_equal(p[i].calls, 1);
        assert_int_equal(p[i].seen_device, -1);   /* the NULL event reached them */
    }
    assert_int_equal(p[FOTA_HUB_SUBS_MAX].calls, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_first_answer),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
