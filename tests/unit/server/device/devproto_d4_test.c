/* devproto_d4_test.c - server/device/devproto_d4.c: the D4 fast path accepts
 * exactly the stock acknowledgement and then yields the same frame as
 * fota_devproto_classify; near misses (and random mutations) are left to it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "devproto.h"

/* 1 if the fast path took s; then its frame must equal classify's, byte for byte. */
static int same_as_classify(const char *s, size_t n)
{
    struct fota_devproto_frame a, b;
    memset(&a, 0x5a, sizeof a);
    if (!fota_devproto_d4_parse(s, n, &a)) {
        for (size_t i = 0; i < sizeof a; i++) /* untouched */
            assert_int_equal(((unsigned char *)&a)[i], 0x5a);
        return 0;
    }
    fota_devproto_classify(s, n, &b);
    assert_int_equal(a.kind, FOTA_DP_REPLY);
    assert_int_equal(b.kind, FOTA_DP_REPLY);
    /* The same reply value: the fast path's stands for the bytes the parser decoded. */
    assert_null(a.reply);
    json_t *va = fota_devproto_reply_value(&a), *vb = fota_devproto_reply_value(&b);
    assert_true(json_equal(va, vb));
    json_decref(va);
    json_decref(vb);
    fota_devproto_frame_cleanup(&b);
    /* Every field before the body byte for byte (reply now NULL in both), then the body. */
    assert_memory_equal(&a, &b, offsetof(struct fota_devproto_frame, body));
    assert_string_equal(a.body, b.body);
    return 1;
}

#define TRY(s) same_as_classify(s, strlen(s))

static void test_stock_lines(void **st)
{
    (void)st;
    assert_true(TRY("{\"status\": 200, \"nonce\": 684196666, \"deliver_to_device\": true}"));
    assert_true(TRY("{\"status\": 200, \"nonce\": 1, \"deliver_to_device\": true}"));
    assert_true(TRY("{\"status\": 0, \"nonce\": 0, \"deliver_to_device\": true}"));
    assert_true(TRY("{\"status\": 404, \"nonce\": 2147483647, \"deliver_to_device\": true}"));
    assert_true(TRY("{\"status\": 999999999, \"nonce\": 999999999999999999, \"deliver_to_device\": true}"));
    struct fota_devproto_frame f;
    const char *s = "{\"status\": 503, \"nonce\": 1804289383, \"deliver_to_device\": true}";
    assert_int_equal(fota_devproto_d4_parse(s, strlen(s), &f), 1);
    assert_int_equal(f.status, 503);
    assert_int_equal(f.nonce, 1804289383);
    assert_int_equal(f.has_nonce, 1);
    assert_string_equal(f.key, "");
}

static void test_near_misses(void **st)
{
    (void)st;
    static const char *const miss[] = {
        "",
        "{\"status\": 200, \"nonce\": 684196666, \"deliver_to_device\": true} ",
        "{\"status\": 200, \"nonce\": 684196666, \"deliver_to_device\": true",
        "{\"status\": 200, \"nonce\": 684196666, \"deliver_to_device\": false}",
        "{\"status\": 200,\"nonce\": 684196666, \"deliver_to_device\": true}",
        "{\"status\":200, \"nonce\": 684196666, \"deliver_to_device\": true}",
        "{\"nonce\": 684196666, \"status\": 200, \"deliver_to_device\": true}",
        "{\"status\": 200, \"nonce\": -5, \"deliver_to_device\": true}",
        "{\"status\": -1, \"nonce\": 5, \"deliver_to_device\": true}",
        "{\"status\": 0200, \"nonce\": 5, \"deliver_to_device\": true}",
        "{\"status\": 200, \"nonce\": 05, \"deliver_to_device\": true}",
        "{\"status\": 200, \"nonce\": 5.0, \"deliver_to_device\": true}",
        "{\"status\": 200, \"nonce\": \"5\", \"deliver_to_device\": true}",
        "{\"status\": 200, \"nonce\": , \"deliver_to_device\": true}",
        "{\"status\": 1000000000, \"nonce\": 5, \"deliver_to_device\": true}",
        "{\"status\": 200, \"nonce\": 1000000000000000000, \"deliver_to_device\": true}",
        "{\"status\": 200, \"datapoint\": {\"x\": 1}, \"nonce\": 5, \"deliver_to_device\": true}",
        "{\"status\": 200, \"nonce\": 5, \"deliver_to_device\": true}}",
    };
    for (size_t i = 0; i < sizeof miss / sizeof miss[0]; i++)
        assert_false(TRY(miss[i]));
    /* A prefix of a good line is never taken (the length is exact). */
    const char *good = "{\"status\": 200, \"nonce\": 684196666, \"deliver_to_device\": true}";
    for (size_t n = 0; n < strlen(good); n++)
        assert_false(same_as_classify(good, n));
}

/* Random byte mutations of a good line: whatever the fast path takes, classify agrees. */
static void test_mutations(void **st)
{
    (void)st;
    const char *good = "{\"status\": 200, \"nonce\": 684196666, \"deliver_to_device\": true}";
    static const char alphabet[] = "0123456789 -.,:{}\"tx\\";
    size_t n = strlen(good), taken = 0;
    char buf[128];
    srand(12345);
    for (int it = 0; it < 20000; it++) {
        memcpy(buf, good, n);
        int k = 1 + rand() % 3;
        for (int m = 0; m < k; m++)
            buf[rand() % (int)n] = alphabet[rand() % (int)(sizeof alphabet - 1)];
        taken += (size_t)same_as_classify(buf, n);
    }
    assert_true(taken > 0); /* some mutations only change digits */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stock_lines),
        cmocka_unit_test(test_near_misses),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
