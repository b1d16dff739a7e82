/* http_test.c - routes of the test builds only (FOTA_TEST_HOOKS: the
 * sanitizer trees) that exercise the FOTA_ROUTE_STORE placement
 * (tests/integration/http_store_test.py): a handler run as a store job
 * reads its headers and body from the request's copies, adds output
 * headers, and may hold its store thread until released, so a test can
 * close the client first. Release builds compile none of it. */
#include "http_int.h"

#ifdef FOTA_TEST_HOOKS

#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "clock.h"
#include "loop.h"
#include "recovery.h"

#define HOLD_MAX_S 10   /* a held handler gives up after this */

static pthread_mutex_t hold_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_cond;
static pthread_once_t hold_once = PTHREAD_ONCE_INIT;
static unsigned held;           /* handlers waiting now */
static uint64_t releases;       /* POST /v1/test/store/release calls */

static void hold_init(void)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&hold_cond, &a);
    pthread_condattr_destroy(&a);
}

/* Waits for the next release (at most HOLD_MAX_S): 1 released, 0 not. */
static int hold(void)
{
    int64_t ms = fota_clock_mono_ms() + HOLD_MAX_S * 1000;   /* the condvar's clock */
    struct timespec until = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
    int rc = 0;
    pthread_once(&hold_once, hold_init);
    pthread_mutex_lock(&hold_mu);
    uint64_t seen = releases;
    held++;
    while (releases == seen && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&hold_cond, &hold_mu, &until);
    held--;
    int released = releases != seen;
    pthread_mutex_unlock(&hold_mu);
    return released;
}

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
        released = json_boolean(hold());
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
    pthread_once(&hold_once, hold_init);
    pthread_mutex_lock(&hold_mu);
    unsigned n = held;
    releases++;
    pthread_cond_broadcast(&hold_cond);
    pthread_mutex_unlock(&hold_mu);
    fota_reply_json(r, 200, fota_http_json_pack("{s:i}", "held", (int)n));
}

/* GET /v1/test/store/state (admin key, any loop): {"held": handlers
 * waiting, "detached": FOTA_ROUTE_STORE requests not released yet}. */
static void test_store_state(struct fota_req *r)
{
    struct fota_key key;
    if (fota_req_admin(r, &key))
        return;
    pthread_mutex_lock(&hold_mu);
    unsigned n = held;
    pthread_mutex_unlock(&hold_mu);
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
