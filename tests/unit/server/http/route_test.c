/* route_test.c - server/http/http_route.c: patterns with '*' segments and
 * their captures and limits, the optional trailing slash, one owner per
 * pattern and method, the newest of two matching patterns winning, 405
 * versus 404, percent-decoded paths, HEAD routed as GET and the POST method
 * tunnel. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "fota_err.h"
#include "http_route.h"

static char caps[FOTA_ROUTE_MAX_CAPS][FOTA_ROUTE_CAP_LEN];
static int ncaps;

static int match(const char *pattern, const char *path)
{
    ncaps = -1;
    return fota_http_route_match(pattern, path, caps, &ncaps);
}

static void h_a(struct fota_req *r) { (void)r; }
static void h_b(struct fota_req *r) { (void)r; }
static void h_c(struct fota_req *r) { (void)r; }

static void test_literal_and_slash(void **st)
{
    (void)st;
    assert_true(match("/v1/products/", "/v1/products/"));
    assert_int_equal(ncaps, 0);
    assert_true(match("/v1/products/", "/v1/products"));     /* trailing '/' optional */
    assert_true(match("/v1/jobs", "/v1/jobs/"));
    assert_true(match("/v1//products/", "/v1/products//"));  /* repeated '/' are one */
    assert_false(match("/v1/products/", "/v1/product/"));
    assert_false(match("/v1/products/", "/v1/products/1/"));
    assert_false(match("/v1/products/1/", "/v1/products/"));
    assert_false(match("/v1/products/", "/V1/products/"));   /* case matters */
    assert_true(match("/", "/"));
    assert_false(match("/", "/v1/"));
}

static void test_captures(void **st)
{
    (void)st;
    assert_true(match("/v1/products/*/roms/*/", "/v1/products/12/roms/v1.0t45772(a)/"));
    assert_int_equal(ncaps, 2);
    assert_string_equal(caps[0], "12");
    assert_string_equal(caps[1], "v1.0t45772(a)");
    assert_true(match("/v1/products/*/roms/*/files/*", "/v1/products/1/roms/2/files/user1.bin"));
    assert_int_equal(ncaps, 3);
    assert_string_equal(caps[2], "user1.bin");
    assert_false(match("/v1/products/*/roms/*/", "/v1/products/12/roms/"));   /* one short */
    assert_false(match("/v1/products/*/", "/v1/products/12/roms/"));          /* one long */
    assert_false(match("/v1/products/*/roms/", "/v1/products//roms/"));       /* no empty '*' */
    /* A capture must fit: FOTA_ROUTE_CAP_LEN - 1 bytes at most. */
    char path[FOTA_ROUTE_CAP_LEN + 32], seg[FOTA_ROUTE_CAP_LEN + 1];
    memset(seg, 'x', sizeof(seg));
    seg[FOTA_ROUTE_CAP_LEN - 1] = '\0';
    snprintf(path, sizeof(path), "/v1/devices/%s/", seg);
    assert_true(match("/v1/devices/*/", path));
    assert_int_equal(strlen(caps[0]), FOTA_ROUTE_CAP_LEN - 1);
    seg[FOTA_ROUTE_CAP_LEN - 1] = 'x';
    seg[FOTA_ROUTE_CAP_LEN] = '\0';
    snprintf(path, sizeof(path), "/v1/devices/%s/", seg);
    assert_false(match("/v1/devices/*/", path));
    /* At most FOTA_ROUTE_MAX_CAPS captures. */
    assert_true(match("/*/*/*/*", "/a/b/c/d"));
    assert_int_equal(ncaps, FOTA_ROUTE_MAX_CAPS);
    assert_false(match("/*/*/*/*/*", "/a/b/c/d/e"));
}

static void test_table(void **st)
{
    struct fota_http_routes t = { 0 };
    int allowed;
    (void)st;
    assert_int_equal(fota_http_routes_add(&t, FOTA_M_GET, "/v1/devices/*/", h_a, NULL, 0), 0);
    assert_int_equal(fota_http_routes_add(&t, FOTA_M_DELETE, "/v1/devices/*/", h_b, NULL, 0), 0);
    /* One owner per pattern and method. */
    assert_int_equal(fota_http_routes_add(&t, FOTA_M_GET | FOTA_M_POST, "/v1/devices/*/", h_c,
                                          NULL, 0), FOTA_EEXIST);
    assert_int_equal(fota_http_routes_add(&t, FOTA_M_GET, "v1/x/", h_c, NULL, 0), FOTA_EINVAL);
    assert_int_equal(fota_http_routes_add(&t, FOTA_M_GET, "/v1/x/", NULL, NULL, 0), FOTA_EINVAL);
    const struct fota_http_route_entry *rt =
        fota_http_routes_find(&t, "/v1/devices/7/", FOTA_M_GET, caps, &ncaps, &allowed);
    assert_non_null(rt);
    assert_ptr_equal(rt->fn, h_a);
    assert_string_equal(caps[0], "7");
    rt = fota_http_routes_find(&t, "/v1/devices/7", FOTA_M_DELETE, caps, &ncaps, &allowed);
    assert_non_null(rt);
    assert_ptr_equal(rt->fn, h_b);
    /* The path is known, the method is not: 405 with the methods it has. */
    assert_null(fota_http_routes_find(&t, "/v1/devices/7/", FOTA_M_PUT, caps, &ncaps, &allowed));
    assert_int_equal(allowed, FOTA_M_GET | FOTA_M_DELETE);
    /* Unknown path: 404. */
    assert_null(fota_http_routes_find(&t, "/v1/nothing/", FOTA_M_GET, caps, &ncaps, &allowed));
    assert_int_equal(allowed, 0);
    /* Two patterns match one path: the newer wins, the older keeps the rest. */
    assert_int_equal(fota_http_routes_add(&t, FOTA_M_GET, "/v1/devices/self/", h_c, &t,
                                          FOTA_ROUTE_ANY_LOOP), 0);
    rt = fota_http_routes_find(&t, "/v1/devices/self/", FOTA_M_GET, caps, &ncaps, &allowed);
    assert_ptr_equal(rt->fn, h_c);
    assert_ptr_equal(rt->ud, &t);
    assert_int_equal(rt->flags, FOTA_ROUTE_ANY_LOOP);
    assert_int_equal(ncaps, 0);
    rt = fota_http_routes_find(&t, "/v1/devices/8/", FOTA_M_GET, caps, &ncaps, &allowed);
    assert_ptr_equal(rt->fn, h_a);
    fota_http_routes_free(&t);
    assert_null(t.head);
}

static void test_decoded_path(void **st)
{
    struct fota_http_routes t = { 0 };
    int allowed;
    (void)st;
    char *p = fota_http_route_path("/v1/pro%64ucts/%31%32/roms/v1.0%20beta/");
    assert_string_equal(p, "/v1/products/12/roms/v1.0 beta/");
    assert_int_equal(fota_http_routes_add(&t, FOTA_M_GET, "/v1/products/*/roms/*/", h_a, NULL, 0),
                     0);
    const struct fota_http_route_entry *rt =
        fota_http_routes_find(&t, p, FOTA_M_GET, caps, &ncaps, &allowed);
    assert_non_null(rt);
    assert_string_equal(caps[0], "12");
    assert_string_equal(caps[1], "v1.0 beta");
    free(p);
    /* An encoded '/' is a '/' after decoding: one more segment. */
    p = fota_http_route_path("/v1/products/1%2F2/roms/x/");
    assert_null(fota_http_routes_find(&t, p, FOTA_M_GET, caps, &ncaps, &allowed));
    free(p);
    p = fota_http_route_path("/a+b/");   /* '+' is not a space in a path */
    assert_string_equal(p, "/a+b/");
    free(p);
    p = fota_http_route_path("");
    assert_string_equal(p, "/");
    free(p);
    p = fota_http_route_path(NULL);
    assert_string_equal(p, "/");
    free(p);
    fota_http_routes_free(&t);
    /* %00 would end the decoded C string early: such a path is refused. */
    assert_true(fota_http_route_has_nul("/v1/x/user1.bin%00.txt"));
    assert_true(fota_http_route_has_nul("a=%%00"));
    assert_false(fota_http_route_has_nul("/v1/x/%0a%20%30%300"));
    assert_false(fota_http_route_has_nul("%0"));
    assert_false(fota_http_route_has_nul(NULL));
}

static void test_methods(void **st)
{
    int head = -1;
    (void)st;
    assert_int_equal(fota_http_route_method(EVHTTP_REQ_HEAD, NULL, &head), FOTA_M_GET);
    assert_int_equal(head, 1);
    assert_int_equal(fota_http_route_method(EVHTTP_REQ_HEAD, "DELETE", &head), FOTA_M_GET);
    assert_int_equal(fota_http_route_method(EVHTTP_REQ_GET, NULL, &head), FOTA_M_GET);
    assert_int_equal(head, 0);
    assert_int_equal(fota_http_route_method(EVHTTP_REQ_POST, "put", &head), FOTA_M_PUT);
    assert_int_equal(fota_http_route_method(EVHTTP_REQ_POST, "DELETE", &head), FOTA_M_DELETE);
    assert_int_equal(fota_http_route_method(EVHTTP_REQ_POST, "PATCH", &head), FOTA_M_POST);
    assert_int_equal(fota_http_route_method(EVHTTP_REQ_POST, NULL, &head), FOTA_M_POST);
    assert_int_equal(fota_http_route_method(EVHTTP_REQ_GET, "DELETE", &head), FOTA_M_GET);
    assert_int_equal(head, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal_and_slash), cmocka_unit_test(test_captures),
        cmocka_unit_test(test_table),             cmocka_unit_test(test_decoded_path),
        cmocka_unit_test(test_methods),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
