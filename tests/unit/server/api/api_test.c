/* api_test.c - server/api/api.c and api_json.c: the input checks every
 * handler shares (UTF-8 text, safe file names) and the JSON views of store
 * rows in Espressif's field names (a command's params and result stay JSON,
 * a message body that is not JSON stays text). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "api.h"
#include "fota_str.h"

static void test_checks(void **st)
{
    (void)st;
    assert_true(fota_api_utf8_ok("v1.0 é", strlen("v1.0 é")));
    assert_false(fota_api_utf8_ok("a\xff", 2));
    assert_false(fota_api_utf8_ok("a\0b", 3));
    assert_true(fota_api_filename_ok("user1.bin", 9));
    assert_true(fota_api_filename_ok("a-b_c.9", 7));
    assert_false(fota_api_filename_ok(".hidden", 7));
    assert_false(fota_api_filename_ok("a/b", 3));
    assert_false(fota_api_filename_ok("", 0));
    char longname[FOTA_NAME_MAX + 1];
    memset(longname, 'a', sizeof(longname));
    assert_true(fota_api_filename_ok(longname, FOTA_NAME_MAX - 1));
    assert_false(fota_api_filename_ok(longname, FOTA_NAME_MAX));
}

static void test_views(void **st)
{
    (void)st;
    struct fota_device d;
    memset(&d, 0, sizeof(d));
    d.id = 7;
    d.product_id = 2;
    d.activated = 1;
    fota_str_copy(d.name, sizeof(d.name), "lamp");
    json_t *j = fota_api_json_device(&d);
    assert_int_equal(json_integer_value(json_object_get(j, "id")), 7);
    assert_int_equal(json_integer_value(json_object_get(j, "activate_status")), 1);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "lamp");
    json_decref(j);

    struct fota_command c;
    memset(&c, 0, sizeof(c));
    c.state = FOTA_CMD_DONE;
    fota_str_copy(c.action, sizeof(c.action), "sys_reboot");
    c.params = json_pack("{s:i}", "a", 1);
    j = fota_api_json_command(&c);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "done");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "params"), "a")), 1);
    assert_true(json_is_null(json_object_get(j, "result")));
    json_decref(j);
    fota_store_command_cleanup(&c);

    struct fota_message m;
    memset(&m, 0, sizeof(m));
    fota_str_copy(m.action, sizeof(m.action), "note");
    fota_str_copy(m.body, sizeof(m.body), "plain text");
    j = fota_api_json_message(&m);
    assert_string_equal(json_string_value(json_object_get(j, "body")), "plain text");
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checks),
        cmocka_unit_test(test_views),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
