/* devchan_shed_test.c - the device channel's choice of the connections it
 * gives back when accept() finds no descriptor (fota_devchan_conn_shed,
 * devchan_conn.c, called by the accept guard's on_short): the newest
 * connections not identified yet go first, identified devices never, and
 * a shed asked for more than there are closes every anonymous one and no
 * more. Connections are socketpairs; a closed one shows as EOF on its peer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "devchan_int.h"
#include "server.h"
#include "store.h"

#define NCONN 10

struct fixture {
    struct event_base *base;
    struct fota_server srv;
    struct fota_devchan_conf conf;
    struct fota_devchan *ch;
    struct fota_dconn *c[NCONN];
    int peer[NCONN];
};

static void noop(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    (void)ud;
}

/* NCONN connections, accepted in index order (conn_new appends each to the
 * anonymous list), the ones in `identified` then identified as devices. */
static struct fixture *setup(const int *identified, int nidentified)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->base = event_base_new();
    assert_non_null(f->base);
    f->srv.base = f->base;
    f->conf.ping_timeout = 60;
    f->ch = calloc(1, sizeof *f->ch);
    assert_non_null(f->ch);
    f->ch->srv = &f->srv;
    f->ch->conf = &f->conf;
    f->ch->hello_ms = 60000;
    f->ch->hello_ev = evtimer_new(f->base, noop, f->ch);
    for (int i = 0; i < NCONN; i++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        f->c[i] = fota_devchan_conn_new(f->ch, sv[0], "127.0.0.1", (uint16_t)(40000 + i), 0);
        assert_non_null(f->c[i]);
        f->peer[i] = sv[1];
    }
    for (int i = 0; i < nidentified; i++) {
        struct fota_key k = { .kind = FOTA_KEY_MASTER, .product_id = 1,
                              .device_id = 100 + identified[i] };
        assert_int_equal(fota_devchan_conn_online(f->c[identified[i]], &k, NULL), 1);
    }
    return f;
}

/* 1 when connection i was closed by the channel (its peer reads EOF). */
static int closed(struct fixture *f, int i)
{
    char b;
    for (int pass = 0; pass < 4; pass++) /* a close libevent finishes on its loop */
        event_base_loop(f->base, EVLOOP_NONBLOCK);
    ssize_t n = recv(f->peer[i], &b, 1, MSG_DONTWAIT);
    if (n == 0)
        return 1;
    assert_true(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
    return 0;
}

/* The channel's connections as a string of 'o' (open) and 'x' (closed), oldest first. */
static const char *picture(struct fixture *f)
{
    static char s[NCONN + 1];
    for (int i = 0; i < NCONN; i++)
        s[i] = closed(f, i) ? 'x' : 'o';
    s[NCONN] = '\0';
    return s;
}

static void teardown(struct fixture *f)
{
    for (int i = 0; i < NCONN; i++) {
        if (!closed(f, i))
            fota_devchan_conn_free(f->c[i]);
        close(f->peer[i]);
    }
    assert_int_equal(f->ch->nconns, 0);
    free(f->ch->pres);
    event_free(f->ch->hello_ev);
    free(f->ch);
    event_base_free(f->base);
    free(f);
}

static void test_newest_anonymous_first(void **st)
{
    (void)st;
    static const int ids[] = { 2, 6, 9 };  /* identified: the newest connection among them */
    struct fixture *f = setup(ids, 3);
    assert_int_equal(f->ch->nanon, NCONN - 3);

    /* Three go: the newest not identified (8, 7, 5), passing over 9 and 6. */
    assert_int_equal(fota_devchan_conn_shed(f->ch, 3, "test"), 3);
    assert_string_equal(picture(f), "oooooxoxxo");
    assert_int_equal(f->ch->nanon, NCONN - 6);
    /* One more: 4. */
    assert_int_equal(fota_devchan_conn_shed(f->ch, 1, "test"), 1);
    assert_string_equal(picture(f), "ooooxxoxxo");
    teardown(f);
}

static void test_never_identified_ones(void **st)
{
    (void)st;
    static const int ids[] = { 0, 3 };
    struct fixture *f = setup(ids, 2);
    /* More asked than there are anonymous connections: all of them, and only them. */
    assert_int_equal(fota_devchan_conn_shed(f->ch, 100, "test"), NCONN - 2);
    assert_string_equal(picture(f), "oxxoxxxxxx");
    assert_int_equal(f->ch->nanon, 0);
    assert_int_equal(fota_devchan_conn_shed(f->ch, 16, "test"), 0);
    assert_string_equal(picture(f), "oxxoxxxxxx");
    teardown(f);
}

static void test_new_connection_after_shed(void **st)
{
    (void)st;
    struct fixture *f = setup(NULL, 0);
    assert_int_equal(fota_devchan_conn_shed(f->ch, 2, "test"), 2);
    assert_string_equal(picture(f), "ooooooooxx");
    /* The oldest identifies meanwhile; a shed takes the newest left (7, 6). */
    struct fota_key k = { .kind = FOTA_KEY_MASTER, .product_id = 1, .device_id = 100 };
    assert_int_equal(fota_devchan_conn_online(f->c[0], &k, NULL), 1);
    assert_int_equal(fota_devchan_conn_shed(f->ch, 2, "test"), 2);
    assert_string_equal(picture(f), "ooooooxxxx");
    teardown(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_newest_anonymous_first),
        cmocka_unit_test(test_never_identified_ones),
        cmocka_unit_test(test_new_connection_after_shed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
