/* http_test.c - routes of the test builds only (FOTA_TEST_HOOKS: the
 * sanitizer trees) that exercise the FOTA_ROUTE_STORE placement
 * (tests/integration/http_store_test.py): a handler run as a store job
 * reads its headers and body from the request's copies, adds output
 * headers, and may hold its store thread until released, so a test can
 * close the client first. Release builds compile none of it. */
#include "http_int.h"

#ifdef FOTA_TEST_HOOKS

#include "loop.h"
#include "recovery.h"

#define HOLD_POINT "store"   /* the route's hold point (recovery.h) */

/* POST /v1/test/store (admin key; FOTA_ROUTE_STORE) with a JSON body
 * {"echo": ANY, "headers": [[NAME, VALUE], ...], "hold": BOOL}: replies
 * {"echo": ANY, "x_test": the X-Fota-Test header, "store_thread": run on a
 * store thread, "loop": the loop's index (-1 on a store thread),
 * "headers_refused": the headers fota_reply_header refused, "released": a
 * held handler was released (null when not held)} with the headers. */
static void test_store(struct fota_req *r)
{
    struct fota_key key;
    if (fota_req_admin(r, &key))
        return;
    json_t *body = fota_req_json_body(r);
    if (!body)
        return;
    json_t *released = json_null();
    if (json_is_true(json_object_get(body, "hold")))
        released = json_boolean(fota_recovery_hold(HOLD_POINT));
    json_t *hs = json_object_get(body, "headers");
    int refused = 0;
    for (size_t i = 0; i < json_array_size(hs); i++) {
        const char *name = json_string_value(json_array_get(json_array_get(hs, i), 0));
        const char *value = json_string_value(json_array_get(json_array_get(hs, i), 1));
        if (name && value && fota_reply_header(r, name, value) != 0)
            refused++;
    }
    struct fota_loop *l = fota_loop_current();
    const char *x = fota_req_header(r, "X-Fota-Test");
    json_t *echo = json_object_get(body, "echo");
    fota_reply_json(r, 200, fota_http_json_pack(
        "{s:O, s:o, s:b, s:i, s:i, s:o}", "echo", echo ? echo : json_null(), "x_test",
        x ? json_string(x) : json_null(), "store_thread", l == NULL, "loop",
        l ? fota_loop_index(l) : -1, "headers_refused", refused, "released", released));
    json_decref(body);
}

/* POST /v1/test/store/release (admin key, any loop): releases the held
 * handlers; replies {"held": how many waited}. */
static void test_store_release(struct fota_req *r)
{
    struct fota_key key;
    if (fota_req_admin(r, &key))
        return;
    unsigned n = fota_recovery_hold_release(HOLD_POINT, 1);
    fota_reply_json(r, 200, fota_http_json_pack("{s:i}", "held", (int)n));
}

/* GET /v1/test/store/state (admin key, any loop): {"held": handlers
 * waiting, "detached": FOTA_ROUTE_STORE requests not released yet}. */
static void test_store_state(struct fota_req *r)
{
    struct fota_key key;
    if (fota_req_admin(r, &key))
        return;
    unsigned n = fota_recovery_hold_release(HOLD_POINT, 0);
    int64_t d = __atomic_load_n(&r->srv->http->detached, __ATOMIC_RELAXED);
    fota_reply_json(r, 200, fota_http_json_pack("{s:i, s:I}", "held", (int)n, "detached",
                                                (json_int_t)d));
}

/* GET /v1/test/hold?point=NAME and POST /v1/test/hold/release?point=NAME
 * (admin key, any loop): {"held": store threads waiting at the hold point
 * NAME (recovery.h)}; the POST lets them go. */
static void test_hold(struct fota_req *r)
{
    struct fota_key key;
    if (fota_req_admin(r, &key))
        return;
    const char *point = fota_req_query(r, "point");
    if (!point || !point[0]) {
        fota_reply_error(r, 400, "point= is required");
        return;
    }
    int release = strcmp(r->path, "/v1/test/hold/release") == 0;
    unsigned n = fota_recovery_hold_release(point, release);
    fota_reply_json(r, 200, fota_http_json_pack("{s:i}", "held", (int)n));
}

int fota_http__test_routes(struct fota_server *srv)
{
    int rc = fota_http_route_flags(srv, FOTA_M_GET, "/v1/test/hold", test_hold, NULL,
                                   FOTA_ROUTE_ANY_LOOP);
    if (rc == 0)
        rc = fota_http_route_flags(srv, FOTA_M_POST, "/v1/test/hold/release", test_hold, NULL,
                                   FOTA_ROUTE_ANY_LOOP);
    if (rc == 0)
        rc = fota_http_route_flags(srv, FOTA_M_POST, "/v1/test/store", test_store, NULL,
                                   FOTA_ROUTE_STORE);
    if (rc == 0)
        rc = fota_http_route_flags(srv, FOTA_M_POST, "/v1/test/store/release",
                                   test_store_release, NULL, FOTA_ROUTE_ANY_LOOP);
    if (rc == 0)
        rc = fota_http_route_flags(srv, FOTA_M_GET, "/v1/test/store/state", test_store_state,
                                   NULL, FOTA_ROUTE_ANY_LOOP);
    return rc;
}

#else

int fota_http__test_routes(struct fota_server *srv)
{
    (void)srv;
    return 0;
}

#endif
