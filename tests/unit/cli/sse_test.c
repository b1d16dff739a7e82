/* sse_test.c - unit tests of cli/sse.c, the event-stream parser behind
 * `fotactl messages --follow`: fields, comments, line ends split anywhere,
 * multi-line data, ids, stopping, and the size limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fota_err.h"
#include "fota_str.h"
#include "sse.h"

struct seen {
    int n;
    char event[8][64];
    char id[8][64];
    char data[8][256];
    int stop_at;   /* return 1 on this event number (1-based); 0 = never */
};

static int on_event(void *ud, const char *event, const char *id, const char *data)
{
    struct seen *s = ud;

    if (s->n < 8) {
        fota_str_copy(s->event[s->n], sizeof(s->event[0]), event);
        fota_str_copy(s->id[s->n], sizeof(s->id[0]), id);
        fota_str_copy(s->data[s->n], sizeof(s->data[0]), data);
    }
    s->n++;
    return s->stop_at && s->n == s->stop_at;
}

/* Feeds text in chunks of step bytes (0 = all at once). */
static int feed(struct fota_cli_sse *p, const char *text, size_t step)
{
    size_t len = strlen(text), i;
    int rc = 0;

    if (!step)
        return fota_cli_sse_feed(p, text, len);
    for (i = 0; i < len && rc == 0; i += step)
        rc = fota_cli_sse_feed(p, text + i, len - i < step ? len - i : step);
    return rc;
}

static const char fotad_stream[] =
    ": follow\n\n"
    "id: 7\ndata: {\"action\":\"rom_released\"}\n\n"
    ": keep-alive\n\n"
    "id: 8\r\ndata: {\"action\":\"device_upgrade_success\"}\r\n\r\n";

static void test_fotad_stream_any_chunking(void **state)
{
    size_t steps[] = { 0, 1, 2, 3, 7, 64 };
    size_t k;

    (void)state;
    for (k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
        struct fota_cli_sse p;
        struct seen s;

        memset(&s, 0, sizeof(s));
        fota_cli_sse_init(&p, on_event, &s);
        assert_int_equal(feed(&p, fotad_stream, steps[k]), 0);
        assert_int_equal(s.n, 2);
        assert_string_equal(s.id[0], "7");
        assert_string_equal(s.data[0], "{\"action\":\"rom_released\"}");
        assert_string_equal(s.event[0], "");
        assert_string_equal(s.id[1], "8");
        assert_string_equal(s.data[1], "{\"action\":\"device_upgrade_success\"}");
        fota_cli_sse_cleanup(&p);
    }
}

static void test_fields(void **state)
{
    struct fota_cli_sse p;
    struct seen s;

    (void)state;
    memset(&s, 0, sizeof(s));
    fota_cli_sse_init(&p, on_event, &s);
    /* Multi-line data, a named event, no space after the colon, an unknown
     * field, a field without colon, CR-only line ends, and an event with no
     * data (not dispatched). */
    assert_int_equal(feed(&p, "event: ping\nretry: 10\nid\n\n"
                              "event:hello\ndata:a\ndata: b\ndata\n\n"
                              "data: x\r\rdata:\r\r", 0), 0);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.event[0], "hello");
    assert_string_equal(s.data[0], "a\nb\n");
    assert_string_equal(s.id[0], "");
    assert_string_equal(s.event[1], "");   /* the name does not carry over */
    assert_string_equal(s.data[1], "x");
    assert_string_equal(s.data[2], "");     /* an empty data field still dispatches */
    fota_cli_sse_cleanup(&p);
}

static void test_unfinished_event_is_not_dispatched(void **state)
{
    struct fota_cli_sse p;
    struct seen s;

    (void)state;
    memset(&s, 0, sizeof(s));
    fota_cli_sse_init(&p, on_event, &s);
    assert_int_equal(feed(&p, "data: half\n", 0), 0);
    assert_int_equal(feed(&p, "data: more", 0), 0);
    assert_int_equal(s.n, 0);
    assert_int_equal(feed(&p, "\n\n", 0), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.data[0], "half\nmore");
    fota_cli_sse_cleanup(&p);
}

static void test_stop_is_sticky(void **state)
{
    struct fota_cli_sse p;
    struct seen s;

    (void)state;
    memset(&s, 0, sizeof(s));
    s.stop_at = 1;
    fota_cli_sse_init(&p, on_event, &s);
    assert_int_equal(feed(&p, "data: 1\n\ndata: 2\n\n", 0), 1);
    assert_int_equal(s.n, 1);
    assert_int_equal(feed(&p, "data: 3\n\n", 0), 1);
    assert_int_equal(s.n, 1);
    fota_cli_sse_cleanup(&p);
}

static void test_limit(void **state)
{
    struct fota_cli_sse p;
    struct seen s;
    char *big = malloc(FOTA_CLI_SSE_MAX + 16);
    size_t i;

    (void)state;
    assert_non_null(big);
    memset(&s, 0, sizeof(s));
    fota_cli_sse_init(&p, on_event, &s);
    /* One line of exactly the maximum is refused before it is complete. */
    memcpy(big, "data: ", 6);
    memset(big + 6, 'x', FOTA_CLI_SSE_MAX);
    assert_int_equal(fota_cli_sse_feed(&p, big, FOTA_CLI_SSE_MAX + 6), FOTA_ETOOBIG);
    assert_int_equal(fota_cli_sse_feed(&p, "\n\n", 2), FOTA_ETOOBIG);   /* sticky */
    assert_int_equal(s.n, 0);
    fota_cli_sse_cleanup(&p);

    /* Many short data lines that add up beyond the maximum: refused too. */
    memset(&s, 0, sizeof(s));
    fota_cli_sse_init(&p, on_event, &s);
    for (i = 0; i < FOTA_CLI_SSE_MAX / 8; i++)
        if (fota_cli_sse_feed(&p, "data: 1234567\n", 14) != 0)
            break;
    assert_true(i < FOTA_CLI_SSE_MAX / 8);
    assert_int_equal(s.n, 0);
    fota_cli_sse_cleanup(&p);
    free(big);
}

static void test_long_id_truncated(void **state)
{
    struct fota_cli_sse p;
    struct seen s;
    char text[256];

    (void)state;
    memset(&s, 0, sizeof(s));
    fota_cli_sse_init(&p, on_event, &s);
    snprintf(text, sizeof(text), "id: %0100d\ndata: z\n\n", 5);
    assert_int_equal(feed(&p, text, 0), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(strlen(s.id[0]), FOTA_CLI_SSE_NAME_MAX - 1);
    fota_cli_sse_cleanup(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fotad_stream_any_chunking),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_unfinished_event_is_not_dispatched),
        cmocka_unit_test(test_stop_is_sticky),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_long_id_truncated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
