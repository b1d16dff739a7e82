/* fota_web_test.c - the embedded console table: every asset of web/assets is
 * there with its bytes, a content type and an ETag, and lookups refuse what
 * they must. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "fota_web.h"

static void test_index_and_root(void **state)
{
    const struct fota_web_asset *root = fota_web_asset_find("/");
    const struct fota_web_asset *idx = fota_web_asset_find("/index.html");

    (void)state;
    assert_non_null(idx);
    assert_ptr_equal(root, idx);
    assert_string_equal(idx->content_type, "text/html; charset=utf-8");
    assert_true(idx->len > 100);
    assert_memory_equal(idx->data, "<!doctype html>", 15);
    assert_string_equal(fota_web_cache_control(idx), "no-cache");
}

static void test_types(void **state)
{
    const struct fota_web_asset *js = fota_web_asset_find("/app.js");
    const struct fota_web_asset *css = fota_web_asset_find("/app.css");

    (void)state;
    assert_non_null(js);
    assert_non_null(css);
    assert_string_equal(js->content_type, "text/javascript; charset=utf-8");
    assert_string_equal(css->content_type, "text/css; charset=utf-8");
}

static void test_refusals(void **state)
{
    (void)state;
    assert_null(fota_web_asset_find(NULL));
    assert_null(fota_web_asset_find(""));
    assert_null(fota_web_asset_find("index.html"));
    assert_null(fota_web_asset_find("/../index.html"));
    assert_null(fota_web_asset_find("/index.html/"));
    assert_null(fota_web_asset_find("/nope.js"));
    assert_null(fota_web_asset_find("/v1/products/"));
    assert_null(fota_web_asset_at(fota_web_asset_count()));
}

static void test_table(void **state)
{
    size_t i, n = fota_web_asset_count();

    (void)state;
    assert_true(n >= 3);
    for (i = 0; i < n; i++) {
        const struct fota_web_asset *a = fota_web_asset_at(i);
        assert_non_null(a);
        assert_int_equal(a->path[0], '/');
        assert_ptr_equal(fota_web_asset_find(a->path), a);
        assert_non_null(a->content_type);
        /* "\"" + 16 hex + "\"" */
        assert_int_equal(strlen(a->etag), 18);
        assert_int_equal(a->etag[0], '"');
        assert_int_equal(a->etag[17], '"');
        /* The generator NUL-pads: the byte after the data exists and is 0. */
        assert_int_equal(a->data[a->len], 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_and_root),
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
