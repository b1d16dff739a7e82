/* err_test.c - every FOTA_E* code has a distinct name and a message. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>
#include "fota_err.h"

static void test_names_distinct(void **state)
{
    (void)state;
    for (int a = FOTA_ERR_MIN_ + 1; a < 0; a++) {
        assert_string_not_equal(fota_errname(a), "EUNKNOWN");
        assert_string_not_equal(fota_strerror(a), "unknown error");
        for (int b = a + 1; b < 0; b++)
            assert_string_not_equal(fota_errname(a), fota_errname(b));
    }
    assert_string_equal(fota_strerror(FOTA_OK), "success");
    assert_string_equal(fota_errname(-999), "EUNKNOWN");
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_names_distinct) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
