/* log_test.c - server/core/log.c: each event is one line on stderr, whatever
 * text reached its message (control bytes written as '?'), and
 * fota_log_quote makes any text one key=value value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* The bytes fota_log_write(level, "%s", msg) puts on stderr. */
static size_t logged(int level, const char *msg, char *out, size_t cap)
{
    int fds[2], saved;
    ssize_t n;

    assert_int_equal(pipe(fds), 0);
    saved = dup(2);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fds[1], 2), 2);
    fota_log_write(level, "%s", msg);
    assert_int_equal(dup2(saved, 2), 2);
    close(saved);
    close(fds[1]);
    n = read(fds[0], out, cap - 1);
    close(fds[0]);
    assert_true(n > 0);
    out[n] = '\0';
    return (size_t)n;
}

static void test_one_line(void **st)
{
    char buf[8192];
    (void)st;
    size_t n = logged(FOTA_LOG_WARN, "product created name=evil\x1b[31m\r\nERROR forged\t\x7f end",
                      buf, sizeof buf);
    /* "2026-11-22T03:00:00.123Z WARN  message": the level at 25, the message at 31 */
    assert_true(n > 31);
    assert_memory_equal(buf + 25, "WARN  ", 6);
    assert_string_equal(buf + 31, "product created name=evil?[31m??ERROR forged?? end\n");
    /* UTF-8 text is kept as it is */
    logged(FOTA_LOG_ERROR, "name=\xc3\xa9l\xc3\xa8ve", buf, sizeof buf);
    assert_string_equal(buf + 31, "name=\xc3\xa9l\xc3\xa8ve\n");
    /* a message over the line's size: cut, still one line */
    char big[6000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    big[5000] = '\n';
    n = logged(FOTA_LOG_INFO, big, buf, sizeof buf);
    assert_true(n > 4000 && n <= 4096);
    assert_ptr_equal(memchr(buf, '\n', n), buf + n - 1);
}

static void test_quote(void **st)
{
    char q[64];
    (void)st;
    assert_string_equal(fota_log_quote("plug-7", q, sizeof q), "plug-7");
    assert_string_equal(fota_log_quote("", q, sizeof q), "\"\"");
    assert_string_equal(fota_log_quote("a b=c", q, sizeof q), "\"a b=c\"");
    assert_string_equal(fota_log_quote("say \"hi\\\"\r\n", q, sizeof q), "\"say \\\"hi\\\\\\\"??\"");
    assert_string_equal(fota_log_quote("x\x7fy", q, sizeof q), "\"x?y\"");
    assert_string_equal(fota_log_quote("a b c d e", q, 6), "\"a \"");   /* cut, still quoted */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_line),
        cmocka_unit_test(test_quote),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
