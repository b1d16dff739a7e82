/* version_test.c - server/core/version.c: the Espressif and dotted grammars
 * and the ordering used for "device runs an older version". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fota_err.h"
#include "version.h"

static void test_parse_espressif(void **st)
{
    struct fota_version v;
    (void)st;
    assert_int_equal(fota_version_parse("v1.0.5t45772(a)", &v), 0);
    assert_int_equal(v.espressif, 1);
    assert_int_equal(v.nparts, 3);
    assert_int_equal(v.ptype, 45772);
    assert_int_equal(v.flag, 'a');
    assert_int_equal(fota_version_value(&v), 1000005);
    assert_int_equal(fota_version_parse("b2.3.4.t23701(O)", &v), 0);
    assert_int_equal(v.prefix, 'b');
    assert_int_equal(fota_version_value(&v), 2003004);
    assert_int_equal(fota_version_parse("v1.1", &v), 0);
    assert_int_equal(fota_version_value(&v), 1001000);
    assert_int_equal(fota_version_parse("v1.0.5t45772", &v), 0);
    assert_int_equal(v.flag, 0);
}

static void test_parse_dotted_and_bad(void **st)
{
    struct fota_version v;
    (void)st;
    assert_int_equal(fota_version_parse("1.0.4", &v), 0);
    assert_int_equal(v.espressif, 0);
    assert_int_equal(fota_version_parse("123331", &v), 0);
    assert_int_equal(v.nparts, 1);
    assert_int_equal(fota_version_parse("2.0.0-rc1", &v), 0);
    assert_string_equal(v.tag, "rc1");
    const char *bad[] = { "", "v", "1.", ".1", "1..2", "v1.0 beta", "abc", "1.0-", "1.0-r c",
                          "1234567890.1", "1.2.3.4.5.6.7.8.9", "v1.0.5t45772(ab)",
                          "v1.0.5t45772(a)x", "v1.0.5t", "0123456789012345678901234567890123" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (fota_version_parse(bad[i], &v) != FOTA_EINVAL)
            fail_msg("accepted bad version \"%s\"", bad[i]);
    }
}

static void test_compare(void **st)
{
    (void)st;
    assert_true(fota_version_cmp("v1.0", "v1.1") < 0);
    assert_true(fota_version_cmp("v1.1", "v1.0.5t45772(a)") > 0);
    assert_true(fota_version_cmp("v1.0.5t45772(a)", "v1.0.5t23701(n)") == 0); /* suffix ignored */
    assert_true(fota_version_cmp("v1.0.5t45772(a)", "v1.0.6t45772(a)") < 0);
    assert_true(fota_version_cmp("v1.1", "v1.1.0") == 0);
    assert_true(fota_version_cmp("v2.0.0", "v1.999.999") > 0);
    assert_true(fota_version_cmp("1.0.10", "1.0.9") > 0);   /* numeric, not text */
    assert_true(fota_version_cmp("1.2", "1.2.0.1") < 0);
    assert_true(fota_version_cmp("2.0.0-rc1", "2.0.0") < 0);
    assert_true(fota_version_cmp("2.0.0-rc1", "2.0.0-rc2") < 0);
    assert_true(fota_version_cmp("v1.2", "1.3") < 0);         /* mixed: by components */
    assert_true(fota_version_cmp("garbage", "v0.0.1") < 0);   /* invalid sorts first */
    assert_true(fota_version_cmp("a", "b") < 0);
    assert_true(fota_version_cmp("x", "x") == 0);
    /* Espressif value arithmetic: minor above 999 still orders by value. */
    assert_true(fota_version_cmp("v1.1000.0", "v2.0.0") == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_espressif),
        cmocka_unit_test(test_parse_dotted_and_bad),
        cmocka_unit_test(test_compare),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
