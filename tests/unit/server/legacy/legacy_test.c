/* legacy_test.c - server/legacy: the pure helpers, and transfers through the real listener on
 * 127.0.0.1 with the client driven by the same event loop (paced, stream, bad request,
 * no image, refused when full). Every loop run is bounded by a 10 s failsafe timer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <signal.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <event2/event.h>

#include "fota_str.h"
#include "legacy.h"

#define IMG_LEN 5000

static void test_request_parse(void **state)
{
    int sec = 0, stream = 0;

    assert_int_equal(fota_legacy_request_parse(1, &sec, &stream), 0);
    assert_int_equal(sec, 1);
    assert_int_equal(stream, 0);
    assert_int_equal(fota_legacy_request_parse(2, &sec, &stream), 0);
    assert_int_equal(sec, 2);
    assert_int_equal(fota_legacy_request_parse(0x81, &sec, &stream), 0);
    assert_int_equal(sec, 1);
    assert_int_equal(stream, 1);
    assert_int_equal(fota_legacy_request_parse(0x82, &sec, &stream), 0);
    assert_int_equal(sec, 2);
    assert_int_equal(stream, 1);
    const uint8_t bad[] = { 0, 3, 5, 0x7f, 0x80, 0x83, 0xff, '1', '\n' };
    for (size_t i = 0; i < sizeof(bad); i++)
        assert_int_equal(fota_legacy_request_parse(bad[i], &sec, &stream), FOTA_EPROTO);
    /* The request is one byte: every value, in place of a fuzz target. */
    for (unsigned b = 0; b < 256; b++) {
        int s = b & 0x7f, ok = s == 1 || s == 2;
        sec = stream = -1;
        assert_int_equal(fota_legacy_request_parse((uint8_t)b, &sec, &stream), ok ? 0 : FOTA_EPROTO);
        assert_int_equal(sec, ok ? s : -1);
        assert_int_equal(stream, ok ? (b & 0x80) != 0 : -1);
    }
}

static void test_len_encode(void **state)
{
    uint8_t b[4];

    fota_legacy_len_encode(0x01020304u, b);
    assert_memory_equal(b, "\x04\x03\x02\x01", 4);
    fota_legacy_len_encode(524288u, b);
    assert_memory_equal(b, "\x00\x00\x08\x00", 4);
}

static void test_conf_check(void **state)
{
    struct fota_legacy_conf c;
    char why[128];

    fota_legacy_conf_init(&c);
    assert_int_equal(c.chunk, 1280);
    assert_int_equal(fota_legacy_conf_check(&c, why, sizeof(why)), 0);
    c.chunk = 1281;
    assert_int_equal(fota_legacy_conf_check(&c, why, sizeof(why)), FOTA_ECONFIG);
    assert_non_null(strstr(why, "chunk"));
    c.chunk = 0;
    assert_int_equal(fota_legacy_conf_check(&c, NULL, 0), FOTA_ECONFIG);
    fota_legacy_conf_init(&c);
    c.timeout_ms = 0;
    assert_int_equal(fota_legacy_conf_check(&c, why, sizeof(why)), FOTA_ECONFIG);
    fota_legacy_conf_init(&c);
    c.max_clients = 0;
    assert_int_equal(fota_legacy_conf_check(&c, why, sizeof(why)), FOTA_ECONFIG);
}

/* ------------------------------------------------------------------ loopback harness */

struct client {
    int fd;
    struct event *ev;
    uint8_t buf[IMG_LEN + 64];
    size_t got;
    size_t first_read;
    size_t max_read;
    int reads;
    int eof;
};

struct harness {
    struct event_base *base;
    struct fota_legacy *lg;
    uint8_t img[IMG_LEN];
    int have_section2;
    int port;
    int nrec;
    char results[4][32];
    char modes[4][16];
    uint64_t sent[4];
    int want_records;
    struct client cl[2];
    int later;               /* opens to answer FOTA_EAGAIN, ready soon after */
    int opens, ready_calls;
    unsigned wait_active, wait_queued;   /* the counts while the source looked up */
};

/* The source's lookup ends: what waited is counted, then the listener asks again. */
static void on_source_ready(evutil_socket_t fd, short what, void *arg)
{
    struct harness *h = arg;

    (void)fd;
    (void)what;
    fota_legacy_stats(h->lg, &h->wait_active, &h->wait_queued, NULL);
    h->ready_calls++;
    fota_legacy_source_ready(h->lg);
}

static int src_open(void *ud, int section, int *fd, uint64_t *size, char *label, size_t ll)
{
    struct harness *h = ud;
    FILE *f;

    h->opens++;
    if (h->later > 0) {
        struct timeval soon = { 0, 20000 };
        h->later--;
        assert_int_equal(event_base_once(h->base, -1, EV_TIMEOUT, on_source_ready, h, &soon), 0);
        return FOTA_EAGAIN;
    }
    if (section == 2 && !h->have_section2)
        return FOTA_ENOENT;
    f = tmpfile();
    if (!f)
        return FOTA_EIO;
    if (fwrite(h->img, 1, IMG_LEN, f) != IMG_LEN || fflush(f) != 0) {
        fclose(f);
        return FOTA_EIO;
    }
    *fd = dup(fileno(f));
    fclose(f);
    *size = IMG_LEN;
    snprintf(label, ll, "test user%d", section);
    return *fd >= 0 ? 0 : FOTA_EIO;
}

static void on_record(void *ud, const struct fota_legacy_record *r)
{
    struct harness *h = ud;

    if (h->nrec < 4) {
        fota_str_copy(h->results[h->nrec], sizeof(h->results[0]), r->result);
        fota_str_copy(h->modes[h->nrec], sizeof(h->modes[0]), r->mode);
        h->sent[h->nrec] = r->bytes_sent;
    }
    h->nrec++;
    if (h->nrec >= h->want_records && h->cl[0].eof)
        event_base_loopexit(h->base, NULL);
}

static void on_client(evutil_socket_t fd, short what, void *arg)
{
    struct harness *h = arg;
    struct client *c = fd == h->cl[0].fd ? &h->cl[0] : &h->cl[1];
    ssize_t n = recv(fd, c->buf + c->got, sizeof(c->buf) - c->got, 0);

    if (n <= 0) {
        c->eof = 1;
        event_del(c->ev);
        if (c == &h->cl[0] && h->nrec >= h->want_records)
            event_base_loopexit(h->base, NULL);
        return;
    }
    if (c->reads++ == 0)
        c->first_read = (size_t)n;
    else if ((size_t)n > c->max_read)
        c->max_read = (size_t)n;
    c->got += (size_t)n;
    /* a stock device hangs up once it has length + image */
    if (c->got >= 4 + IMG_LEN && c == &h->cl[0]) {
        c->eof = 1;
        event_del(c->ev);
        if (h->nrec >= h->want_records)
            event_base_loopexit(h->base, NULL);
    }
}

static void client_connect(struct harness *h, struct client *c, int req)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)h->port) };
    uint8_t b = (uint8_t)req;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(c->fd >= 0);
    assert_int_equal(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    if (req >= 0)
        assert_int_equal(send(c->fd, &b, 1, 0), 1);
    evutil_make_socket_nonblocking(c->fd);
    c->ev = event_new(h->base, c->fd, EV_READ | EV_PERSIST, on_client, h);
    event_add(c->ev, NULL);
}

static void on_failsafe(evutil_socket_t fd, short what, void *arg)
{
    event_base_loopexit(arg, NULL);
}

static struct harness *harness_new(unsigned max_clients, unsigned max_queue)
{
    struct harness *h = calloc(1, sizeof(*h));
    struct fota_legacy_conf conf;
    struct fota_legacy_source src = { src_open, NULL };

    assert_non_null(h);
    for (size_t i = 0; i < IMG_LEN; i++)
        h->img[i] = (uint8_t)(i * 7 + 3);
    h->have_section2 = 1;
    h->base = event_base_new();
    assert_non_null(h->base);
    fota_legacy_conf_init(&conf);
    conf.interval_ms = 1;
    conf.timeout_ms = 3000;
    conf.max_clients = max_clients;
    conf.max_queue = max_queue;
    src.ud = h;
    h->lg = fota_legacy_new(h->base, &conf, &src, NULL, NULL);
    assert_non_null(h->lg);
    fota_legacy_set_record_cb(h->lg, on_record, h);
    assert_int_equal(fota_legacy_listen(h->lg, "127.0.0.1", 0, &h->port), 0);
    assert_true(h->port > 0);
    h->cl[0].fd = h->cl[1].fd = -1;
    return h;
}

static void harness_run(struct harness *h)
{
    struct timeval tv = { 10, 0 };
    struct event *fs = evtimer_new(h->base, on_failsafe, h->base);

    evtimer_add(fs, &tv);
    event_base_dispatch(h->base);
    event_free(fs);
}

static void harness_free(struct harness *h)
{
    fota_legacy_free(h->lg);
    for (int i = 0; i < 2; i++) {
        if (h->cl[i].ev)
            event_free(h->cl[i].ev);
        if (h->cl[i].fd >= 0)
            close(h->cl[i].fd);
    }
    event_base_free(h->base);
    free(h);
}

static void check_image(struct harness *h, struct client *c)
{
    assert_int_equal(c->got, 4 + IMG_LEN);
    assert_memory_equal(c->buf, "\x88\x13\x00\x00", 4); /* 5000 LE */
    assert_memory_equal(c->buf + 4, h->img, IMG_LEN);
}

static void test_paced(void **state)
{
    struct harness *h = harness_new(4, 4);

    h->want_records = 1;
    client_connect(h, &h->cl[0], 1);
    harness_run(h);
    check_image(h, &h->cl[0]);
    assert_int_equal(h->cl[0].first_read, 4);   /* the length arrives alone */
    assert_true(h->cl[0].max_read <= 1280);     /* and no later read is over a chunk */
    assert_int_equal(h->nrec, 1);
    assert_string_equal(h->results[0], "ok");
    assert_string_equal(h->modes[0], "paced");
    assert_int_equal(h->sent[0], IMG_LEN);
    harness_free(h);
}

static void test_stream(void **state)
{
    struct harness *h = harness_new(4, 4);

    h->want_records = 1;
    client_connect(h, &h->cl[0], 0x82);
    harness_run(h);
    check_image(h, &h->cl[0]);
    assert_int_equal(h->nrec, 1);
    assert_string_equal(h->results[0], "ok");
    assert_string_equal(h->modes[0], "stream");
    harness_free(h);
}

static void test_bad_request_and_no_image(void **state)
{
    struct harness *h = harness_new(4, 4);

    h->have_section2 = 0;
    h->want_records = 1;
    client_connect(h, &h->cl[0], 0x05);
    harness_run(h);
    assert_int_equal(h->cl[0].got, 0);
    assert_true(h->cl[0].eof);
    assert_string_equal(h->results[0], "bad_request");
    event_free(h->cl[0].ev);
    close(h->cl[0].fd);
    memset(&h->cl[0], 0, sizeof(h->cl[0]));
    h->want_records = 2;
    client_connect(h, &h->cl[0], 2);
    harness_run(h);
    assert_int_equal(h->cl[0].got, 0);
    assert_string_equal(h->results[1], "no_image");
    /* A transfer ended as it started leaves no slot counted. */
    unsigned active = 9, queued = 9;
    fota_legacy_stats(h->lg, &active, &queued, NULL);
    assert_int_equal(active, 0);
    assert_int_equal(queued, 0);
    harness_free(h);
}

static void test_reload_then_refused_when_full(void **state)
{
    struct harness *h = harness_new(4, 4);
    struct fota_legacy_conf c;

    fota_legacy_conf_init(&c);
    c.chunk = 2000;
    assert_int_equal(fota_legacy_set_conf(h->lg, &c), FOTA_ECONFIG);
    c.chunk = 1000;
    c.interval_ms = 1;
    c.max_clients = 1;
    c.max_queue = 0;
    assert_int_equal(fota_legacy_set_conf(h->lg, &c), 0);
    h->want_records = 2;
    client_connect(h, &h->cl[0], 1);
    client_connect(h, &h->cl[1], 1);
    harness_run(h);
    /* The slot goes to the request read first: the other one is busy. */
    struct client *won = h->cl[0].got ? &h->cl[0] : &h->cl[1];
    check_image(h, won);
    assert_int_equal(h->nrec, 2);
    assert_string_equal(h->results[0], "busy");
    assert_string_equal(h->results[1], "ok");
    assert_int_equal(h->cl[won == &h->cl[0] ? 1 : 0].got, 0);
    assert_true(won->max_read <= 1000); /* the reloaded chunk size */
    harness_free(h);
}

/* One slot, room in the queue: the second client waits, then gets the whole image. */
static void test_queued(void **state)
{
    struct harness *h = harness_new(1, 4);
    unsigned active = 9, queued = 9;

    h->want_records = 2;
    client_connect(h, &h->cl[1], 2);
    client_connect(h, &h->cl[0], 1);
    harness_run(h);
    check_image(h, &h->cl[0]);
    assert_int_equal(h->cl[1].got, 4 + IMG_LEN);
    assert_int_equal(h->nrec, 2);
    assert_string_equal(h->results[0], "ok");
    assert_string_equal(h->results[1], "ok");
    fota_legacy_stats(h->lg, &active, &queued, NULL);
    assert_int_equal(active, 0);
    assert_int_equal(queued, 0);
    harness_free(h);
}

/* The source answers FOTA_EAGAIN: both requests wait queued, none active, until it is
 * ready; then it is asked again for each and both get the whole image. */
static void test_source_later(void **state)
{
    struct harness *h = harness_new(4, 4);
    unsigned active = 9, queued = 9;

    h->later = 1;
    h->want_records = 2;
    client_connect(h, &h->cl[0], 1);
    client_connect(h, &h->cl[1], 0x82);
    harness_run(h);
    check_image(h, &h->cl[0]);
    assert_int_equal(h->cl[1].got, 4 + IMG_LEN);
    assert_int_equal(h->ready_calls, 1);
    assert_int_equal(h->opens, 3);   /* one FOTA_EAGAIN, then one per request */
    assert_int_equal(h->wait_active, 0);
    assert_true(h->wait_queued >= 1);
    assert_string_equal(h->results[0], "ok");
    assert_string_equal(h->results[1], "ok");
    fota_legacy_stats(h->lg, &active, &queued, NULL);
    assert_int_equal(active, 0);
    assert_int_equal(queued, 0);
    harness_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_parse),
        cmocka_unit_test(test_len_encode),
        cmocka_unit_test(test_conf_check),
        cmocka_unit_test(test_paced),
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_bad_request_and_no_image),
        cmocka_unit_test(test_reload_then_refused_when_full),
        cmocka_unit_test(test_queued),
        cmocka_unit_test(test_source_later),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
