/* devproto_test.c - server/device/devproto.c: framing, classification of the
 * literal §2.3 frames, exact reply and push bytes, and the stock device's
 * substring dispatch (§2.5) and 15-byte version copy replayed on our output. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "devproto.h"

#define KEY "0123456789abcdef0123456789abcdef01234567"
#define TOK "fedcba9876543210fedcba9876543210fedcba98"

/* Literal os_sprintf expansions of the IoT_Demo format strings (§2.3). */
static const char D1[] = "{\"nonce\": 1804289383,\"path\": \"/v1/device/activate/\", \"method\": \"POST\", "
    "\"body\": {\"encrypt_method\": \"PLAIN\", \"token\": \"" TOK "\", \"bssid\": \"18:fe:34:97:f3:cd\","
    "\"rom_version\":\"v1.0.5t45772(a)\"}, \"meta\": {\"Authorization\": \"token " KEY "\"}}\n";
static const char D2[] = "{\"nonce\": 846930886, \"path\": \"/v1/device/identify\", \"method\": \"GET\","
    "\"meta\": {\"Authorization\": \"token " KEY "\"}}\n";
static const char D3[] = "{\"path\": \"/v1/ping/\", \"method\": \"POST\",\"meta\": {\"Authorization\": \"token "
    KEY "\"}}\n";
static const char D4[] = "{\"status\": 200, \"nonce\": 684196666, \"deliver_to_device\": true}\n";
static const char D5B[] = "{\"status\": 200,\"nonce\": 12345, \"datapoint\": {\"x\": 1000,\"y\": 8000,\"z\": 0,"
    "\"k\": 0,\"l\": 0},\"deliver_to_device\":true}\n";
static const char D6[] = "{\"body\": {}, \"get\":{\"is_humanize_format_simple\":\"true\"},\"meta\": "
    "{\"Authorization\": \"Token " KEY "\"},\"path\": \"/v1/device/timers/\",\"post\":{},\"method\": \"GET\"}\n";
#define D7FMT "{\"path\": \"/v1/messages/\", \"method\": \"POST\", \"meta\": {\"Authorization\": \"token %s\"}," \
    "\"get\":{\"action\":\"%s\"},\"body\":{\"pre_rom_version\":\"%s\",\"rom_version\":\"%s\"}}\n"
static const char D8A[] = "{\"nonce\": 3, \"path\": \"/v1/datastreams/tem_hum/datapoint/\", \"method\": \"POST\", "
    "\"body\": {\"datapoint\": {\"x\": -21.05,\"y\": 40.50}}, \"meta\": {\"Authorization\": \"token " KEY "\"}}\n";

static void classify(const char *s, struct fota_devproto_frame *f)
{
    size_t ll = 0, used = 0;
    assert_int_equal(fota_devproto_line(s, strlen(s), &ll, &used), 1);
    assert_int_equal(used, strlen(s));
    fota_devproto_classify(s, ll, f);
}

/* The device's parse_nonce: first "nonce": , up to ',' (else '}' else ']'), <= 10 chars. */
static long dev_parse_nonce(const char *buf)
{
    const char *p = strstr(buf, "\"nonce\": ");
    if (!p)
        return 0;
    p += 9;
    const char *e = strchr(p, ',');
    if (!e)
        e = strchr(p, '}');
    if (!e)
        e = strchr(p, ']');
    if (!e || e - p > 10)
        return -1;
    char tmp[11];
    memcpy(tmp, p, (size_t)(e - p));
    tmp[e - p] = '\0';
    return strtol(tmp, NULL, 10);
}

/* §2.5 dispatch: returns the branch number the device takes (1..9, 0 none). */
static int dev_dispatch(const char *buf, long active_nonce)
{
    const char *p = strstr(buf, "\"activate_status\": ");
    if (p && dev_parse_nonce(buf) == active_nonce)
        return p[19] == '1' ? 1 : -1;
    if (strstr(buf, "\"action\": \"sys_upgrade\"") && strstr(buf, "\"version\":"))
        return 2;
    if (strstr(buf, "\"action\": \"sys_reboot\""))
        return 3;
    if (strstr(buf, "/v1/device/timers/"))
        return 4;
    if (strstr(buf, "\"method\": "))
        return 5;
    if (strstr(buf, "ping success"))
        return 6;
    if (strstr(buf, "send message success"))
        return 7;
    if (strstr(buf, "timers"))
        return 8;
    if (strstr(buf, "device"))
        return 9;
    return 0;
}

/* The device's 15-byte copy: os_memcpy(v, strstr(buf,"\"version\":") + 12, 16); v[15] = 0. */
static void dev_copy_version(const char *push, char out[16])
{
    const char *p = strstr(push, "\"version\":");
    assert_non_null(p);
    memcpy(out, p + 12, 16);
    out[15] = '\0';
}

static void test_line(void **st)
{
    (void)st;
    size_t ll = 99, used = 99;
    assert_int_equal(fota_devproto_line("{}\r\n{", 5, &ll, &used), 1);
    assert_int_equal(ll, 2);
    assert_int_equal(used, 4);
    assert_int_equal(fota_devproto_line("{\"a\": 1", 7, &ll, &used), 0);
    static char big[FOTA_DEVPROTO_LINE_MAX + 2];
    memset(big, 'x', sizeof big);
    assert_int_equal(fota_devproto_line(big, FOTA_DEVPROTO_LINE_MAX, &ll, &used), 0);
    assert_int_equal(fota_devproto_line(big, FOTA_DEVPROTO_LINE_MAX + 1, &ll, &used), FOTA_ETOOBIG);
    big[FOTA_DEVPROTO_LINE_MAX] = '\n'; /* exactly 2048 bytes of content: accepted */
    assert_int_equal(fota_devproto_line(big, sizeof big, &ll, &used), 1);
    assert_int_equal(ll, FOTA_DEVPROTO_LINE_MAX);
    big[FOTA_DEVPROTO_LINE_MAX] = 'x';
    big[FOTA_DEVPROTO_LINE_MAX + 1] = '\n'; /* 2049: refused */
    assert_int_equal(fota_devproto_line(big, sizeof big, &ll, &used), FOTA_ETOOBIG);
}

static void test_classify_stock_frames(void **st)
{
    (void)st;
    struct fota_devproto_frame f;
    classify(D1, &f);
    assert_int_equal(f.kind, FOTA_DP_ACTIVATE);
    assert_true(f.has_nonce);
    assert_int_equal(f.nonce, 1804289383);
    assert_string_equal(f.key, KEY);
    assert_string_equal(f.token, TOK);
    assert_string_equal(f.bssid, "18:fe:34:97:f3:cd");
    assert_string_equal(f.rom_version, "v1.0.5t45772(a)");
    classify(D2, &f);
    assert_int_equal(f.kind, FOTA_DP_IDENTIFY);
    assert_int_equal(f.nonce, 846930886);
    assert_string_equal(f.key, KEY);
    const char *id2 = "{\"nonce\": 7, \"path\": \"/v1/device/identify/\", \"method\": \"GET\"}";
    fota_devproto_classify(id2, strlen(id2), &f);
    assert_int_equal(f.kind, FOTA_DP_IDENTIFY);
    classify(D3, &f);
    assert_int_equal(f.kind, FOTA_DP_PING);
    assert_false(f.has_nonce);
    assert_string_equal(f.key, KEY);
    classify(D4, &f);
    assert_int_equal(f.kind, FOTA_DP_REPLY);
    assert_int_equal(f.status, 200);
    assert_int_equal(f.nonce, 684196666);
    /* A reply keeps its decoded line: the command's result, no second parse. */
    assert_true(json_is_true(json_object_get(f.reply, "deliver_to_device")));
    json_t *rv = fota_devproto_reply_value(&f);
    assert_ptr_equal(rv, f.reply);
    json_decref(rv);
    fota_devproto_frame_cleanup(&f);
    assert_null(f.reply);
    classify(D5B, &f);
    assert_int_equal(f.kind, FOTA_DP_REPLY);
    assert_int_equal(f.nonce, 12345);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(f.reply, "datapoint"), "y")),
                     8000);
    fota_devproto_frame_cleanup(&f);
    classify(D6, &f);
    assert_int_equal(f.kind, FOTA_DP_TIMERS);
    assert_null(f.reply);
    assert_null(fota_devproto_reply_value(&f));
    assert_string_equal(f.key, KEY); /* capital "Token" */
    classify(D8A, &f);
    assert_int_equal(f.kind, FOTA_DP_DATAPOINT);
    assert_string_equal(f.stream, "tem_hum");
    assert_int_equal(f.nonce, 3);
    /* The body as stored: only the body (no key), sorted, json.dumps separators. */
    assert_true(strncmp(f.body, "{\"datapoint\": {\"x\": -21.05", 26) == 0);
    assert_non_null(strstr(f.body, ", \"y\": 40.5}}"));
    assert_null(strstr(f.body, KEY));
    classify(D3, &f);
    assert_string_equal(f.body, "");

    char d7[1024];
    snprintf(d7, sizeof d7, D7FMT, KEY, "device_upgrade_success", "v1.0.5t45772(a)", "v1.0.6t45772(a)");
    classify(d7, &f);
    assert_int_equal(f.kind, FOTA_DP_MESSAGE);
    assert_false(f.recovered);
    assert_string_equal(f.action, "device_upgrade_success");
    assert_string_equal(f.pre_version, "v1.0.5t45772(a)");
    assert_string_equal(f.rom_version, "v1.0.6t45772(a)");

    fota_devproto_classify("{\"path\": ", 9, &f);
    assert_int_equal(f.kind, FOTA_DP_INVALID);
    fota_devproto_classify("[1, 2]", 6, &f);
    assert_int_equal(f.kind, FOTA_DP_INVALID);
    fota_devproto_classify("{\"path\": \"/v1/other/\"}", 22, &f);
    assert_int_equal(f.kind, FOTA_DP_UNKNOWN);
}

static void test_replies_exact(void **st)
{
    (void)st;
    char b[512];
    int n = fota_devproto_reply_activate(b, sizeof b, 1804289383, 5, "v1.0.5t45772(a)");
    assert_int_equal(n, (int)strlen(b));
    assert_string_equal(b, "{\"activate_status\": 1, \"device\": {\"id\": 5}, \"message\": \"device activated\", "
                           "\"nonce\": 1804289383, \"status\": 200}\n");
    assert_int_equal(dev_dispatch(b, 1804289383), 1);
    assert_int_equal(dev_parse_nonce(b), 1804289383);

    fota_devproto_reply_activate_refused(b, sizeof b, 42);
    assert_int_equal(dev_dispatch(b, 42), -1); /* DEVICE_ACTIVE_FAIL */

    /* identify: echoes the nonce, carries "device", never "activate_status": . */
    fota_devproto_reply_identify(b, sizeof b, 1, 846930886, 5, "x");
    assert_string_equal(b, "{\"device\": {\"id\": 5}, \"message\": \"device identified\", "
                           "\"nonce\": 846930886, \"status\": 200}\n");
    assert_null(strstr(b, "\"activate_status\": "));
    assert_null(strstr(b, "\"method\": "));
    assert_int_equal(dev_parse_nonce(b), 846930886);
    assert_int_equal(dev_dispatch(b, 0), 9);          /* after reboot active_nonce is 0 */
    assert_int_equal(dev_dispatch(b, 846930886), 9);  /* and equal to the nonce: still no re-activation */

    fota_devproto_reply_ping(b, sizeof b);
    assert_string_equal(b, "{\"message\": \"ping success\", \"status\": 200}\n");
    assert_int_equal(dev_dispatch(b, 0), 6);
    fota_devproto_reply_message(b, sizeof b);
    assert_string_equal(b, "{\"message\": \"send message success\", \"status\": 200}\n");
    assert_int_equal(dev_dispatch(b, 0), 7);
    fota_devproto_reply_timers(b, sizeof b, 1500000000);
    assert_string_equal(b, "{\"status\": 200, \"timestamp\": 1500000000, \"timers\": \"\"}\n");
    assert_int_equal(dev_dispatch(b, 0), 8);
    /* the device's timer parser: "timestamp": +13 up to ',' */
    assert_int_equal(strtol(strstr(b, "\"timestamp\":") + 13, NULL, 10), 1500000000);
    fota_devproto_reply_datapoint(b, sizeof b, 1, 3);
    assert_string_equal(b, "{\"nonce\": 3, \"status\": 200}\n");
    assert_int_equal(strtol(strstr(b, "\"status\":") + 10, NULL, 10), 200);

    n = fota_devproto_reply_refusal(b, sizeof b, 403, "unknown key");
    assert_true(n > 0);
    assert_string_equal(b, "{\"message\": \"unknown key\", \"status\": 403}\n");
    assert_int_equal(dev_dispatch(b, 0), 0);
    assert_int_equal(fota_devproto_reply_refusal(b, sizeof b, 403, "bad device"), FOTA_EINVAL);
    assert_int_equal(fota_devproto_reply_ping(b, 10), FOTA_ETOOBIG);
}

static void test_push_exact(void **st)
{
    (void)st;
    char b[FOTA_DEVPROTO_PUSH_MAX];
    int n = fota_devproto_push_rpc(b, sizeof b, "sys_upgrade", "v1.0.8t45772(a)", KEY, 684196666);
    assert_true(n > 0 && n < FOTA_DEVPROTO_PUSH_MAX);
    assert_string_equal(b, "{\"deliver_to_device\": true, \"get\": {\"action\": \"sys_upgrade\", \"version\": "
                           "\"v1.0.8t45772(a)\"}, \"meta\": {\"Authorization\": \"token " KEY "\"}, "
                           "\"method\": \"GET\", \"nonce\": 684196666, \"path\": \"/v1/device/rpc/\"}\n");
    assert_int_equal(dev_dispatch(b, 0), 2);
    assert_int_equal(dev_parse_nonce(b), 684196666);
    char v[16];
    dev_copy_version(b, v);
    assert_string_equal(v, "v1.0.8t45772(a)");

    n = fota_devproto_push_rpc(b, sizeof b, "sys_reboot", NULL, KEY, 5);
    assert_string_equal(b, "{\"deliver_to_device\": true, \"get\": {\"action\": \"sys_reboot\"}, \"meta\": "
                           "{\"Authorization\": \"token " KEY "\"}, \"method\": \"GET\", \"nonce\": 5, "
                           "\"path\": \"/v1/device/rpc/\"}\n");
    assert_int_equal(dev_dispatch(b, 0), 3);

    json_t *body = json_pack("{s:{s:i}}", "datapoint", "x", 1);
    n = fota_devproto_push(b, sizeof b, "POST", "/v1/datastreams/plug-status/datapoint/", NULL,
                           body, KEY, 9);
    json_decref(body);
    assert_true(n > 0);
    assert_string_equal(b, "{\"body\": {\"datapoint\": {\"x\": 1}}, \"deliver_to_device\": true, \"meta\": "
                           "{\"Authorization\": \"token " KEY "\"}, \"method\": \"POST\", \"nonce\": 9, "
                           "\"path\": \"/v1/datastreams/plug-status/datapoint/\"}\n");
    assert_null(strstr(b, "\\/"));
    assert_int_equal(dev_dispatch(b, 0), 5);
    /* plug: p = strstr("body"), p[27] is the x value */
    assert_int_equal(strstr(b, "body")[27], '1');

    assert_int_equal(fota_devproto_push(b, sizeof b, "GET", "/x", NULL, NULL, KEY, 0), FOTA_EINVAL);
    json_t *arr = json_pack("[i]", 1);
    assert_int_equal(fota_devproto_push(b, sizeof b, "GET", "/x", arr, NULL, KEY, 1), FOTA_EINVAL);
    json_decref(arr);
    static char huge[2000];
    memset(huge, 'a', sizeof huge - 1);
    json_t *big = json_pack("{s:s}", "a", huge);
    assert_int_equal(fota_devproto_push(b, sizeof b, "GET", "/x", big, NULL, KEY, 1), FOTA_ETOOBIG);
    json_decref(big);

    /* The caller's get object is not changed by the version padding. */
    json_t *get = json_pack("{s:s, s:s}", "action", "sys_upgrade", "version", "v1.1");
    n = fota_devproto_push(b, sizeof b, "GET", "/v1/device/rpc/", get, NULL, KEY, 3);
    assert_true(n > 0);
    assert_non_null(strstr(b, "\"version\": \"v1.1~~~~~~~~~~~\""));
    assert_string_equal(json_string_value(json_object_get(get, "version")), "v1.1");
    json_decref(get);
}

/* Short version: the literal 15-byte copy must lead to a clean URL and a
 * recoverable success report. */
static void test_short_version(void **st)
{
    (void)st;
    char b[FOTA_DEVPROTO_PUSH_MAX], v[16], clean[64];
    fota_devproto_push_rpc(b, sizeof b, "sys_upgrade", "v1.1", KEY, 77);
    dev_copy_version(b, v);
    assert_string_equal(v, "v1.1~~~~~~~~~~~");
    assert_null(strpbrk(v, " \"&#?%"));
    char url[512];
    snprintf(url, sizeof url, "GET /v1/device/rom/?action=download_rom&version=%s&filename=%s HTTP/1.0\r\n",
             v, "user2.bin");
    const char *q = strstr(url, "version=") + 8;
    assert_int_equal(fota_devproto_version_clean(clean, sizeof clean, q, strcspn(q, "&")), 4);
    assert_string_equal(clean, "v1.1");
    /* D7 built from that copy is valid JSON and cleans back to v1.1 */
    char d7[1024];
    struct fota_devproto_frame f;
    snprintf(d7, sizeof d7, D7FMT, KEY, "device_upgrade_success", "v1.0.5t45772(a)", v);
    classify(d7, &f);
    assert_int_equal(f.kind, FOTA_DP_MESSAGE);
    assert_false(f.recovered);
    fota_devproto_version_clean(clean, sizeof clean, f.rom_version, strlen(f.rom_version));
    assert_string_equal(clean, "v1.1");

    /* Junk-tailed (another server's unpadded push): still recovered. */
    const char *unpadded = "{\"deliver_to_device\": true, \"get\": {\"action\": \"sys_upgrade\", \"version\": "
                           "\"v1.1\"}, \"meta\": {\"Authorization\": \"token x\"}}";
    dev_copy_version(unpadded, v);
    assert_string_equal(v, "v1.1\"}, \"meta\":");
    fota_devproto_version_clean(clean, sizeof clean, v, strlen(v));
    assert_string_equal(clean, "v1.1");
    snprintf(d7, sizeof d7, D7FMT, KEY, "device_upgrade_success", "v1.0.5t45772(a)", v);
    classify(d7, &f); /* JSON is broken by the quote */
    assert_int_equal(f.kind, FOTA_DP_MESSAGE);
    assert_true(f.recovered);
    assert_string_equal(f.key, KEY);
    assert_string_equal(f.action, "device_upgrade_success");
    assert_string_equal(f.pre_version, "v1.0.5t45772(a)");
    fota_devproto_version_clean(clean, sizeof clean, f.rom_version, strlen(f.rom_version));
    assert_string_equal(clean, "v1.1");

    /* 15 and longer are not padded; nonces are 31-bit and never 0 */
    assert_int_equal(fota_devproto_version_pad(clean, sizeof clean, "v1.0.8t45772(a)"), 15);
    assert_string_equal(clean, "v1.0.8t45772(a)");
    assert_int_equal(fota_devproto_nonce(0x80000000u), 1);
    assert_int_equal(fota_devproto_nonce(0xFFFFFFFFu), 0x7FFFFFFF);
}

/* Text fields hold whole UTF-8 characters: a value cut to its field loses
 * the character that does not fit, raw bytes of a broken D7 stop at the
 * first invalid one (a broken character made the device's JSON view fail
 * to encode: devproto_fuzz). */
static void test_text_fields_whole_utf8(void **st)
{
    (void)st;
    struct fota_devproto_frame f;
    /* bssid holds 17 bytes: 16 ASCII and a 2-byte é do not fit */
    classify("{\"path\": \"/v1/device/activate/\", \"nonce\": 1, \"body\": {\"token\": \"t\", "
             "\"bssid\": \"aaaaaaaaaaaaaaaa\\u00e9\", \"rom_version\": \"v1\\u20ac\"}}\n", &f);
    assert_int_equal(f.kind, FOTA_DP_ACTIVATE);
    assert_string_equal(f.bssid, "aaaaaaaaaaaaaaaa");
    assert_string_equal(f.rom_version, "v1\xe2\x82\xac");   /* whole: kept */
    /* A broken D7: its raw bytes stop where UTF-8 breaks */
    char d7[512];
    snprintf(d7, sizeof d7, D7FMT, KEY, "device_upgrade_success", "v1.0\xc3(\xff", "v1.1\"x");
    classify(d7, &f);
    assert_true(f.recovered);
    assert_string_equal(f.pre_version, "v1.0");
    assert_string_equal(f.action, "device_upgrade_success");
    snprintf(d7, sizeof d7, D7FMT, KEY, "up\xe2\x82", "v1", "v1.1\"x");
    classify(d7, &f);
    assert_true(f.recovered);
    assert_string_equal(f.action, "up");
    /* a datastream name cut inside a character */
    char d8[512], name[64];
    memset(name, 'n', 46);
    memcpy(name + 46, "\xc3\xa9", 3);
    snprintf(d8, sizeof d8, "{\"path\": \"/v1/datastreams/%s/datapoint/\", \"body\": {}}\n", name);
    classify(d8, &f);
    assert_int_equal(f.kind, FOTA_DP_DATAPOINT);
    assert_int_equal(strlen(f.stream), 46);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line),
        cmocka_unit_test(test_classify_stock_frames),
        cmocka_unit_test(test_replies_exact),
        cmocka_unit_test(test_push_exact),
        cmocka_unit_test(test_short_version),
        cmocka_unit_test(test_text_fields_whole_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
