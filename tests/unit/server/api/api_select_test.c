/* api_select_test.c - server/api/api_select.c: a device list's query and a
 * filter object become the same selection (each member, its limits and
 * its refusals), the orders' names, and the cursor (a round trip for every
 * order; refused when it is garbage or made for another order). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/http.h>
#include <stdio.h>
#include <string.h>

#include "api_select.h"
#include "fota_str.h"

#define NOW 1700000000

static int parse_q(const char *qs, struct fota_api_select *s, char *reason, size_t cap,
                   int (*skip)(const char *))
{
    struct evkeyvalq q;
    q.tqh_first = NULL;
    q.tqh_last = &q.tqh_first;
    assert_int_equal(evhttp_parse_query_str(qs, &q), 0);
    int rc = fota_api_select_query(&q, NOW, skip, s, reason, cap);
    if (rc == 0) {
        /* the strings must outlive the query: copy what the test reads */
        static char keep[8][80];
        int k = 0;
        if (s->sel.q) {
            fota_str_copy(keep[k], sizeof keep[k], s->sel.q);
            s->sel.q = keep[k++];
        }
        if (s->sel.name) {
            fota_str_copy(keep[k], sizeof keep[k], s->sel.name);
            s->sel.name = keep[k++];
        }
        for (size_t i = 0; i < s->sel.nversions && k < 8; i++) {
            fota_str_copy(keep[k], sizeof keep[k], s->sel.versions[i]);
            s->sel.versions[i] = keep[k++];
        }
    }
    evhttp_clear_headers(&q);
    return rc;
}

static int skip_limit(const char *name)
{
    return strcmp(name, "limit") == 0;
}

static void test_query(void **st)
{
    struct fota_api_select s;
    char why[200];
    (void)st;

    assert_int_equal(parse_q("", &s, why, sizeof why, NULL), 0);
    assert_int_equal(s.sel.online, -1);
    assert_null(s.sel.q);
    assert_int_equal(s.sel.ntags, 0);
    fota_api_select_cleanup(&s);

    assert_int_equal(parse_q("q=kit%20chen&name=plug-1&tag=beta,floor:1&tag=site%3Dberlin"
                             "&version=v1.0&version=&online=true&checkin_before=7d"
                             "&checkin_after=1600000000&limit=5",
                             &s, why, sizeof why, skip_limit), 0);
    assert_string_equal(s.sel.q, "kit chen");
    assert_string_equal(s.sel.name, "plug-1");
    assert_int_equal(s.sel.ntags, 3);
    assert_string_equal(s.sel.tags[0], "beta");
    assert_string_equal(s.sel.tags[1], "floor:1");
    assert_string_equal(s.sel.tags[2], "site=berlin");
    assert_int_equal(s.sel.nversions, 2);
    assert_string_equal(s.sel.versions[0], "v1.0");
    assert_string_equal(s.sel.versions[1], "");
    assert_int_equal(s.sel.online, 1);
    assert_int_equal(s.sel.checkin_before, NOW - 7 * 86400);
    assert_int_equal(s.sel.checkin_after, 1600000000);
    assert_null(s.ids);
    assert_true(fota_api_select_has_id(&s, 42));
    fota_api_select_cleanup(&s);

    static const struct {
        const char *qs, *why;
    } bad[] = {
        { "limit=5", "unknown parameter \"limit\"" },
        { "colour=red", "unknown parameter \"colour\"" },
        { "q=", "q must be 1..63 characters" },
        { "q=a&q=b", "q is given twice" },
        { "name=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
          "name must be 1..63 characters" },
        { "tag=a%20b", "is not a tag" },
        { "tag=a,,b", "is not a tag" },
        { "tag=", "is not a tag" },
        { "online=yes", "online must be true or false" },
        { "checkin_before=soon", "checkin_before must be" },
        { "checkin_after=0", "checkin_after must be" },
        { "checkin_after=-5", "checkin_after must be" },
        { "checkin_after=5w", "checkin_after must be" },
        { "checkin_after=99999999999d", "checkin_after must be" },
        { "tag=a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", "at most 16 tags" },
        { "version=1&version=2&version=3&version=4&version=5&version=6&version=7&version=8"
          "&version=9&version=10&version=11&version=12&version=13&version=14&version=15"
          "&version=16&version=17", "at most 16 versions" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = '\0';
        assert_int_equal(parse_q(bad[i].qs, &s, why, sizeof why, NULL), FOTA_EINVAL);
        if (!strstr(why, bad[i].why))
            fail_msg("%s: \"%s\" lacks \"%s\"", bad[i].qs, why, bad[i].why);
        fota_api_select_cleanup(&s);
    }
    /* 16 tags is the most */
    assert_int_equal(parse_q("tag=a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p", &s, why, sizeof why, NULL), 0);
    assert_int_equal(s.sel.ntags, 16);
    assert_string_equal(s.sel.tags[15], "p");
    fota_api_select_cleanup(&s);
}

static void test_json(void **st)
{
    struct fota_api_select s;
    char why[200];
    json_error_t je;
    (void)st;

    assert_int_equal(fota_api_select_json(NULL, NOW, &s, why, sizeof why), 0);
    assert_int_equal(s.sel.online, -1);
    fota_api_select_cleanup(&s);

    json_t *f = json_loads("{\"tag\": [\"beta\", \"canary\"], \"rom_version\": \"v1.0\","
                           " \"online\": false, \"checkin_before\": \"12h\","
                           " \"checkin_after\": 1600000000, \"q\": \"kit\", \"name\": \"n\","
                           " \"device_ids\": [9, 3, 5]}", 0, &je);
    assert_non_null(f);
    assert_int_equal(fota_api_select_json(f, NOW, &s, why, sizeof why), 0);
    json_decref(f);                          /* the selection holds what it points into */
    assert_int_equal(s.sel.ntags, 2);
    assert_string_equal(s.sel.tags[1], "canary");
    assert_int_equal(s.sel.nversions, 1);
    assert_string_equal(s.sel.versions[0], "v1.0");
    assert_int_equal(s.sel.online, 0);
    assert_int_equal(s.sel.checkin_before, NOW - 12 * 3600);
    assert_int_equal(s.sel.checkin_after, 1600000000);
    assert_string_equal(s.sel.q, "kit");
    assert_string_equal(s.sel.name, "n");
    assert_int_equal(s.nids, 3);
    assert_int_equal(s.ids[0], 3);
    assert_int_equal(s.ids[2], 9);
    assert_true(fota_api_select_has_id(&s, 5));
    assert_false(fota_api_select_has_id(&s, 4));
    fota_api_select_cleanup(&s);

    f = json_loads("{\"version\": [\"a\", \"b\"], \"tag\": \"x\"}", 0, &je);
    assert_int_equal(fota_api_select_json(f, NOW, &s, why, sizeof why), 0);
    assert_int_equal(s.sel.nversions, 2);
    assert_int_equal(s.sel.ntags, 1);
    json_decref(f);
    fota_api_select_cleanup(&s);

    static const struct {
        const char *json, *why;
    } bad[] = {
        { "[]", "filter must be an object" },
        { "{\"colour\": 1}", "unknown filter key \"colour\"" },
        { "{\"online\": \"yes\"}", "filter.online" },
        { "{\"device_ids\": [0]}", "filter.device_ids" },
        { "{\"device_ids\": []}", "filter.device_ids" },
        { "{\"device_ids\": \"1\"}", "filter.device_ids" },
        { "{\"rom_version\": []}", "filter.rom_version" },
        { "{\"version\": [1]}", "filter.version" },
        { "{\"version\": \"a\", \"rom_version\": \"b\"}", "both version and rom_version" },
        { "{\"tag\": \"a b\"}", "is not a tag" },
        { "{\"tag\": []}", "filter.tag" },
        { "{\"q\": \"\"}", "filter.q" },
        { "{\"name\": 5}", "filter.name" },
        { "{\"checkin_before\": -1}", "filter.checkin_before" },
        { "{\"checkin_after\": \"7x\"}", "filter.checkin_after" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        f = json_loads(bad[i].json, JSON_DECODE_ANY, &je);
        assert_non_null(f);
        why[0] = '\0';
        assert_int_equal(fota_api_select_json(f, NOW, &s, why, sizeof why), FOTA_EINVAL);
        if (!strstr(why, bad[i].why))
            fail_msg("%s: \"%s\" lacks \"%s\"", bad[i].json, why, bad[i].why);
        fota_api_select_cleanup(&s);
        json_decref(f);
    }
}

static void test_sort(void **st)
{
    int sort, desc;
    char name[24];
    (void)st;
    assert_int_equal(fota_api_sort_parse(NULL, &sort, &desc), 0);
    assert_int_equal(sort, FOTA_DEVICE_SORT_ID);
    assert_int_equal(desc, 0);
    assert_int_equal(fota_api_sort_parse("-name", &sort, &desc), 0);
    assert_int_equal(sort, FOTA_DEVICE_SORT_NAME);
    assert_int_equal(desc, 1);
    fota_api_sort_name(sort, desc, name, sizeof name);
    assert_string_equal(name, "-name");
    assert_int_equal(fota_api_sort_parse("checkin", &sort, &desc), 0);
    assert_int_equal(sort, FOTA_DEVICE_SORT_LAST_ACTIVE);
    fota_api_sort_name(sort, desc, name, sizeof name);
    assert_string_equal(name, "last_active");
    assert_int_equal(fota_api_sort_parse("version", &sort, &desc), 0);
    assert_int_equal(sort, FOTA_DEVICE_SORT_VERSION);
    assert_int_equal(fota_api_sort_parse("-created", &sort, &desc), 0);
    assert_int_equal(sort, FOTA_DEVICE_SORT_CREATED);
    assert_int_equal(fota_api_sort_parse("size", &sort, &desc), FOTA_EINVAL);
    assert_int_equal(fota_api_sort_parse("--name", &sort, &desc), FOTA_EINVAL);
}

static void test_cursor(void **st)
{
    struct fota_device_key k, back;
    char text[FOTA_API_CURSOR_MAX];
    (void)st;

    for (int sort = 0; sort <= FOTA_DEVICE_SORT_CREATED; sort++) {
        for (int desc = 0; desc <= 1; desc++) {
            for (size_t len = 0; len < 6; len++) {
                memset(&k, 0, sizeof k);
                k.id = 1234567 + (int64_t)len;
                k.num = len == 3 ? -5 : 1700000000;
                memcpy(k.text, "a|b=\xc3\xa9", len);   /* '|', '=' and UTF-8 are text */
                int n = fota_api_cursor_encode(sort, desc, &k, text, sizeof text);
                assert_true(n > 0);
                assert_int_equal(strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                              "0123456789-_"), (size_t)n);
                assert_int_equal(fota_api_cursor_decode(text, sort, desc, &back), 0);
                assert_int_equal(back.id, k.id);
                assert_int_equal(back.num, k.num);
                assert_string_equal(back.text, k.text);
                /* another order's cursor */
                assert_int_equal(fota_api_cursor_decode(text, sort, !desc, &back), FOTA_EINVAL);
                assert_int_equal(fota_api_cursor_decode(text, (sort + 1) % 5, desc, &back),
                                 FOTA_EINVAL);
            }
        }
    }
    /* the longest name fits */
    memset(&k, 0, sizeof k);
    k.id = INT64_MAX;
    k.num = INT64_MIN;
    memset(k.text, 'z', FOTA_NAME_MAX - 1);
    assert_true(fota_api_cursor_encode(FOTA_DEVICE_SORT_NAME, 1, &k, text, sizeof text) > 0);
    assert_int_equal(fota_api_cursor_decode(text, FOTA_DEVICE_SORT_NAME, 1, &back), 0);
    assert_string_equal(back.text, k.text);
    assert_int_equal(fota_api_cursor_encode(FOTA_DEVICE_SORT_NAME, 1, &k, text, 20),
                     FOTA_ETOOBIG);
    /* not cursors */
    static const char *const bad[] = {
        "", "a", "!!!!", "MXwwfGF8MHwwfA", /* 1|0|a|0|0| : id 0 */
        "MnwwfGF8MXwwfA",                  /* 2|0|a|1|0| : version 2 */
        "MXwwfGF8MXww",                    /* 1|0|a|1|0  : no text separator */
        "MXwwfGF8MXwwfAB4",                /* a NUL in the text */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (fota_api_cursor_decode(bad[i], 0, 0, &back) != FOTA_EINVAL)
            fail_msg("\"%s\" decoded", bad[i]);
    char longtext[400];
    memset(longtext, 'A', sizeof longtext - 1);
    longtext[sizeof longtext - 1] = '\0';
    assert_int_equal(fota_api_cursor_decode(longtext, 0, 0, &back), FOTA_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_sort),
        cmocka_unit_test(test_cursor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
