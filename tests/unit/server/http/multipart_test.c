/* multipart_test.c - server/http/multipart.c: boundaries, fields and files,
 * tri-state results for truncated and malformed bodies, and the bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "fota_err.h"
#include "multipart.h"

#define B "----fota7MA4YWxkTrZu0gW"

static const char body_ok[] =
    "preamble to ignore\r\n"
    "--" B "\r\n"
    "Content-Disposition: form-data; name=\"version\"\r\n"
    "\r\n"
    "v1.1\r\n"
    "--" B "\r\n"
    "content-disposition: form-data; name=\"file\"; filename=\"user1.bin\"\r\n"
    "Content-Type: application/octet-stream\r\n"
    "\r\n"
    "\xea\x04\x00\x01\r\n--not-the-boundary\r\n"
    "--" B "  \r\n"
    "Content-Disposition: form-data; name=empty\r\n"
    "\r\n"
    "\r\n"
    "--" B "--\r\n"
    "epilogue";

static void test_boundary(void **st)
{
    char b[FOTA_MP_BOUNDARY_MAX + 1];
    (void)st;
    assert_int_equal(fota_multipart_boundary("multipart/form-data; boundary=" B, b, sizeof(b)), 0);
    assert_string_equal(b, B);
    assert_int_equal(fota_multipart_boundary("Multipart/Form-Data;charset=utf-8; BOUNDARY=\"a b'c\"",
                                             b, sizeof(b)), 0);
    assert_string_equal(b, "a b'c");
    assert_int_equal(fota_multipart_boundary("multipart/form-data; boundary=x; y=z", b, sizeof(b)), 0);
    assert_string_equal(b, "x");
    assert_int_equal(fota_multipart_boundary("application/json", b, sizeof(b)), FOTA_EINVAL);
    assert_int_equal(fota_multipart_boundary("multipart/form-data", b, sizeof(b)), FOTA_EINVAL);
    assert_int_equal(fota_multipart_boundary("multipart/form-data; boundary=", b, sizeof(b)), FOTA_EINVAL);
    assert_int_equal(fota_multipart_boundary("multipart/form-data; boundary=\"open", b, sizeof(b)), FOTA_EINVAL);
    assert_int_equal(fota_multipart_boundary(NULL, b, sizeof(b)), FOTA_EINVAL);
    char longb[200] = "multipart/form-data; boundary=";
    memset(longb + strlen(longb), 'x', 71);
    assert_int_equal(fota_multipart_boundary(longb, b, sizeof(b)), FOTA_EINVAL);
}

static void test_parse_ok(void **st)
{
    struct fota_mp_part parts[8];
    size_t n;
    (void)st;
    assert_int_equal(fota_multipart_parse((const uint8_t *)body_ok, sizeof(body_ok) - 1, B,
                                          parts, 8, &n), 0);
    assert_int_equal(n, 3);
    assert_true(fota_multipart_str_eq(parts[0].name, "version"));
    assert_null(parts[0].filename.ptr);
    assert_int_equal(parts[0].len, 4);
    assert_memory_equal(parts[0].data, "v1.1", 4);
    assert_true(fota_multipart_str_eq(parts[1].name, "file"));
    assert_true(fota_multipart_str_eq(parts[1].filename, "user1.bin"));
    assert_true(fota_multipart_str_eq(parts[1].content_type, "application/octet-stream"));
    /* Binary data with CRLF and a near-boundary line stays intact. */
    assert_int_equal(parts[1].len, 4 + 2 + 18);
    assert_memory_equal(parts[1].data, "\xea\x04\x00\x01\r\n--not-the-boundary", 24);
    assert_true(fota_multipart_str_eq(parts[2].name, "empty"));
    assert_int_equal(parts[2].len, 0);
}

static void test_truncated(void **st)
{
    struct fota_mp_part parts[8];
    size_t n;
    (void)st;
    /* Every proper prefix that starts a part is incomplete, never accepted. */
    size_t len = sizeof(body_ok) - 1;
    const char *close = memmem(body_ok, len, "--" B "--", strlen("--" B "--"));
    assert_non_null(close);
    size_t close_at = (size_t)(close - body_ok) + strlen("--" B "--");
    for (size_t cut = 0; cut < close_at; cut++) {
        int r = fota_multipart_parse((const uint8_t *)body_ok, cut, B, parts, 8, &n);
        if (r == 0)
            fail_msg("prefix of %zu bytes accepted", cut);
        assert_true(r == FOTA_ETRUNC || r == FOTA_EPROTO);
    }
    assert_int_equal(fota_multipart_parse((const uint8_t *)body_ok, len - 30, B, parts, 8, &n),
                     FOTA_ETRUNC);
}

static void test_malformed(void **st)
{
    struct fota_mp_part parts[8];
    size_t n;
    (void)st;
    const char *bad[] = {
        "no delimiter at all, long enough to not be a prefix of one xxxxxxxxxxxxxx",
        "--" B "\r\nContent-Type: text/plain\r\n\r\nx\r\n--" B "--",          /* no disposition */
        "--" B "\r\nContent-Disposition: attachment; name=a\r\n\r\nx\r\n--" B "--",
        "--" B "\r\nContent-Disposition: form-data\r\n\r\nx\r\n--" B "--",   /* no name */
        "--" B "\r\nContent-Disposition: form-data; name=\"a\r\n\r\nx\r\n--" B "--",
        "--" B "\r\nbroken header line\r\n\r\nx\r\n--" B "--",
        "--" B "junk\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--" B "--",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int r = fota_multipart_parse((const uint8_t *)bad[i], strlen(bad[i]), B, parts, 8, &n);
        if (r != FOTA_EPROTO)
            fail_msg("case %zu: got %d", i, r);
    }
    assert_int_equal(fota_multipart_parse((const uint8_t *)"x", 1, "", parts, 8, &n), FOTA_EINVAL);
}

static void test_bounds(void **st)
{
    struct fota_mp_part parts[2];
    char body[4096];
    size_t n, off = 0;
    (void)st;
    for (int i = 0; i < 3; i++)
        off += (size_t)snprintf(body + off, sizeof(body) - off,
                                "--" B "\r\nContent-Disposition: form-data; name=f%d\r\n\r\nv\r\n", i);
    off += (size_t)snprintf(body + off, sizeof(body) - off, "--" B "--\r\n");
    assert_int_equal(fota_multipart_parse((const uint8_t *)body, off, B, parts, 2, &n), FOTA_ERANGE);
    assert_int_equal(n, 2);
    /* 17 header lines in one part. */
    off = (size_t)snprintf(body, sizeof(body), "--" B "\r\n");
    for (int i = 0; i < 17; i++)
        off += (size_t)snprintf(body + off, sizeof(body) - off, "X-H%d: v\r\n", i);
    off += (size_t)snprintf(body + off, sizeof(body) - off,
                            "Content-Disposition: form-data; name=a\r\n\r\nv\r\n--" B "--");
    assert_int_equal(fota_multipart_parse((const uint8_t *)body, off, B, parts, 2, &n), FOTA_ERANGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_boundary),  cmocka_unit_test(test_parse_ok),
        cmocka_unit_test(test_truncated), cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
