/* server_bus_test.c - the message bus (server/core/server_bus.c): publish stores
 * the message and fans it out on the loop thread to matching subscribers,
 * also when published from another thread; unsubscribe inside a callback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server.h"

struct seen {
    int n;
    int64_t last_id;
    struct fota_server *srv;
    struct fota_server_sub *self;
    int unsub_in_cb;
};

static void on_msg(void *ud, const struct fota_message *m)
{
    struct seen *s = ud;
    s->n++;
    s->last_id = m->id;
    if (s->unsub_in_cb) {
        fota_server_unsubscribe(s->srv, s->self);
        s->self = NULL;
    }
}

static void publish(struct fota_server *srv, int64_t product, int64_t device)
{
    struct fota_message m;
    memset(&m, 0, sizeof(m));
    m.product_id = product;
    m.device_id = device;
    snprintf(m.action, sizeof(m.action), "test");
    snprintf(m.body, sizeof(m.body), "{}");
    assert_int_equal(fota_server_publish_message(srv, &m), 0);
    assert_true(m.id > 0);
}

static void *thread_pub(void *arg)
{
    publish(arg, 1, 0);
    return NULL;
}

static void test_bus(void **st)
{
    struct fota_server srv;
    struct seen any = { 0 }, p1 = { 0 }, d5 = { 0 }, once = { 0 };
    (void)st;
    memset(&srv, 0, sizeof(srv));
    evthread_use_pthreads();
    srv.base = event_base_new();
    assert_non_null(srv.base);
    char dir[] = "/tmp/fota-bus-test-XXXXXX", path[64], err[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/fota.db", dir);
    assert_int_equal(fota_store_sqlite_open(path, NULL, NULL, &srv.store, err, sizeof(err)), 0);
    assert_int_equal(fota_server_bus_init(&srv), 0);
    assert_non_null(fota_server_subscribe(&srv, 0, 0, on_msg, &any));
    assert_non_null(fota_server_subscribe(&srv, 1, 0, on_msg, &p1));
    assert_non_null(fota_server_subscribe(&srv, 0, 5, on_msg, &d5));
    once.srv = &srv;
    once.unsub_in_cb = 1;
    once.self = fota_server_subscribe(&srv, 0, 0, on_msg, &once);

    publish(&srv, 1, 0);
    publish(&srv, 2, 5);
    assert_int_equal(any.n, 0);            /* nothing runs before the loop */
    event_base_loop(srv.base, EVLOOP_NONBLOCK);
    assert_int_equal(any.n, 2);
    assert_int_equal(p1.n, 1);
    assert_int_equal(d5.n, 1);
    assert_int_equal(once.n, 1);           /* unsubscribed itself in the callback */

    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, thread_pub, &srv), 0);
    pthread_join(t, NULL);
    event_base_loop(srv.base, EVLOOP_NONBLOCK);
    assert_int_equal(any.n, 3);
    assert_int_equal(p1.n, 2);
    assert_int_equal(once.n, 1);

    /* Everything published was stored, newest first. */
    struct fota_message_filter f = { 0 };
    struct fota_message *list = NULL;
    size_t n = 0;
    assert_int_equal(srv.store->ops->message_list(srv.store, &f, &list, &n), 0);
    assert_int_equal(n, 3);
    assert_true(list[0].id > list[2].id);
    free(list);

    fota_server_bus_cleanup(&srv);
    fota_store_close(srv.store);
    event_base_free(srv.base);
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/fota.db%s", dir, (const char *[]){ "", "-wal", "-shm" }[i]);
        unlink(path);
    }
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_bus) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
