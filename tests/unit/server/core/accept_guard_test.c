/* accept_guard_test.c - server/core/accept_guard.c: with the process's
 * descriptors used up, a listener's failed accept asks its owner to give
 * some back, pauses the listener and enables it again after the back-off,
 * when the waiting connection is accepted, for a watched listener and for an
 * adopted one (whose accept callback stays its owner's, as evhttp's); and
 * the reserve of the last descriptors of the open-file limit. Runs with
 * RLIMIT_NOFILE lowered to 64. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "accept_guard.h"
#include "clock.h"

struct state {
    int fill[64];
    int nfill;
    int shorts, accepted;
    struct fota_accept_guard *adopted_by;   /* an adopted listener's owner reports */
};

static void on_short(void *ud)
{
    struct state *st = ud;
    st->shorts++;
    for (int i = 0; i < 4 && st->nfill > 0; i++) /* the owner gives four back */
        close(st->fill[--st->nfill]);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *ud)
{
    struct state *st = ud;
    (void)l;
    (void)sa;
    (void)len;
    st->accepted++;
    if (st->adopted_by)
        fota_accept_guard_accepted(st->adopted_by);
    close(fd);
}

/* Runs base until cond holds or 5 s pass (monotonic). */
#define RUN_UNTIL(base, cond)                                                       \
    do {                                                                           \
        int64_t end_ = fota_clock_mono_ms() + 5000;                                \
        while (!(cond) && fota_clock_mono_ms() < end_)                             \
            event_base_loop((base), EVLOOP_ONCE);                                  \
    } while (0)

static void pause_and_retry(int adopt)
{
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = 64;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);

    struct state st = { .nfill = 0 };
    struct event_base *base = event_base_new();
    assert_non_null(base);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = 0 };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct evconnlistener *l =
        evconnlistener_new_bind(base, on_accept, &st, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                16, (struct sockaddr *)&sin, sizeof sin);
    assert_non_null(l);
    socklen_t sl = sizeof sin;
    assert_int_equal(getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&sin, &sl), 0);
    struct fota_accept_guard *g = fota_accept_guard_new(base, "test", on_short, &st);
    if (adopt) {
        st.adopted_by = g;
        assert_int_equal(fota_accept_guard_adopt(g, l), 0);
    } else {
        assert_int_equal(fota_accept_guard_watch(g, l, on_accept, &st), 0);
    }

    struct fota_accept_guard_stats gs;
    fota_accept_guard_stats(g, &gs);
    assert_int_equal(gs.limit, 64);
    assert_int_equal(gs.reserve, 16);            /* at least 16 */
    assert_false(fota_accept_guard_short(g, 47));
    assert_true(fota_accept_guard_short(g, 48));  /* 48 + 16 reach the limit */

    /* A client connects (the kernel completes it in the backlog), then every
     * descriptor left is taken. */
    int cfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(cfd >= 0);
    assert_int_equal(connect(cfd, (struct sockaddr *)&sin, sizeof sin), 0);
    for (;;) {
        int fd = dup(0);
        if (fd < 0) {
            assert_int_equal(errno, EMFILE);
            break;
        }
        assert_true(st.nfill < 64);
        st.fill[st.nfill++] = fd;
    }

    /* The accept fails: the owner is asked, the listener pauses. */
    RUN_UNTIL(base, st.shorts > 0);
    assert_int_equal(st.shorts, 1);
    assert_int_equal(st.accepted, 0);
    fota_accept_guard_stats(g, &gs);
    assert_int_equal(gs.failures, 1);
    assert_int_equal(gs.pauses, 1);
    assert_true(gs.paused);

    /* After the back-off the listener is enabled again and the connection
     * that waited is accepted (the owner gave descriptors back). */
    RUN_UNTIL(base, st.accepted > 0);
    assert_int_equal(st.accepted, 1);
    fota_accept_guard_stats(g, &gs);
    assert_false(gs.paused);
    assert_int_equal(gs.failures, 1);

    /* Closed (a drain): a failure no longer brings the listener back. */
    fota_accept_guard_close(g);
    while (st.nfill > 0)
        close(st.fill[--st.nfill]);
    close(cfd);
    evconnlistener_free(l);
    fota_accept_guard_free(g);
    event_base_free(base);
}

static void test_pause_and_retry(void **unused)
{
    (void)unused;
    pause_and_retry(0);
}

static void test_adopted(void **unused)
{
    (void)unused;
    pause_and_retry(1);
}

static void test_reserve_bounds(void **unused)
{
    (void)unused;
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    struct event_base *base = event_base_new();
    struct fota_accept_guard_stats gs;
    const rlim_t lims[] = { 100, 1024, 4096 };   /* a sixteenth, within 16..256 */
    const unsigned want[] = { 16, 64, 256 };
    for (int i = 0; i < 3; i++) {
        struct rlimit r2 = { lims[i], rl.rlim_max };
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &r2), 0);
        struct fota_accept_guard *g = fota_accept_guard_new(base, "test", NULL, NULL);
        fota_accept_guard_stats(g, &gs);
        assert_int_equal(gs.reserve, want[i]);
        assert_true(fota_accept_guard_short(g, (int)(lims[i] - want[i])));
        assert_false(fota_accept_guard_short(g, (int)(lims[i] - want[i] - 1)));
        fota_accept_guard_free(g);
    }
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reserve_bounds),
        cmocka_unit_test(test_pause_and_retry),
        cmocka_unit_test(test_adopted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
