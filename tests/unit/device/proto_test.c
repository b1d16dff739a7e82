/* proto_test.c - the sans-IO protocol pieces of libfotadev: reconnect
 * backoff, the device channel fed the exact #128 push bytes (§2.5) and the
 * frames it answers with (§2.3), the HTTP request text and response parser
 * (split headers, 206, missing Content-Length), and the legacy client. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <cmocka.h>

#include "devtest.h"

#define KEY "0123456789abcdef0123456789abcdef01234567"
#define TOK "tttttttttttttttttttttttttttttttttttttttt"

static const char push128[] =
    "{\"deliver_to_device\": true, \"get\": {\"action\": \"sys_upgrade\", \"version\": "
    "\"v1.0.8t45772(a)\"}, \"meta\": {\"Authorization\": \"token *****\", \"Time-Zone\": "
    "\"Asia/Shanghai\"}, \"method\": \"GET\", \"nonce\": 684196666, \"path\": \"/v1/device/rpc/\"}";

static void test_backoff(void **state)
{
    struct fotadev_backoff_cfg c = {1000, 60000, 0};
    (void)state;
    assert_int_equal(fotadev_backoff_delay(&c, 0, 123), 1000);
    assert_int_equal(fotadev_backoff_delay(&c, 1, 123), 2000);
    assert_int_equal(fotadev_backoff_delay(&c, 5, 123), 32000);
    assert_int_equal(fotadev_backoff_delay(&c, 6, 123), 60000);
    assert_int_equal(fotadev_backoff_delay(&c, 1000, 123), 60000);
    c.jitter_pct = 50;
    for (uint32_t r = 0; r < 5000; r += 7) {
        uint32_t d = fotadev_backoff_delay(&c, 3, r * 2654435761u);
        assert_true(d >= 4000 && d <= 8000);
    }
    assert_int_equal(fotadev_backoff_delay(&c, 3, 0), 8000);
    assert_int_equal(fotadev_backoff_delay(&c, 3, 4000), 4000);
    c.jitter_pct = 100;
    assert_true(fotadev_backoff_delay(&c, 0, 1000) >= 1);
    c.base_ms = 0;
    assert_int_equal(fotadev_backoff_delay(&c, 3, 1), 0);
}

static void chan_new(struct fotadev_chan *ch, enum fotadev_dialect d, int activated)
{
    struct fotadev_chan_cfg c;
    memset(&c, 0, sizeof(c));
    c.dialect = d;
    c.devkey = KEY;
    c.token = TOK;
    c.version = "v1.0.5t45772(a)";
    c.activated = activated;
    memcpy(c.bssid, "\x18\xfe\x34\x97\xf3\xcd", 6);
    assert_int_equal(fotadev_chan_init(ch, &c), 0);
}

static void assert_tx(struct fotadev_chan *ch, const char *want)
{
    size_t n;
    const char *p = fotadev_chan_tx(ch, &n);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(p, want, n);
}

static void test_chan_frames(void **state)
{
    struct fotadev_chan ch;
    (void)state;
    chan_new(&ch, FOTADEV_DIALECT_NONOS, 0);
    assert_true(fotadev_chan_connected(&ch, 1804289383u) > 0);
    assert_tx(&ch, "{\"nonce\": 1804289383,\"path\": \"/v1/device/activate/\", \"method\": \"POST\", "
                   "\"body\": {\"encrypt_method\": \"PLAIN\", \"token\": \"" TOK "\", \"bssid\": "
                   "\"18:fe:34:97:f3:cd\",\"rom_version\":\"v1.0.5t45772(a)\"}, \"meta\": "
                   "{\"Authorization\": \"token " KEY "\"}}\n");
    /* activation reply with another nonce is ignored */
    assert_int_equal(fotadev_chan_feed(&ch, "{\"status\": 200, \"nonce\": 5, \"activate_status\": 1}", 49),
                     FOTADEV_ACT_NONE);
    assert_int_equal(ch.activated, 0);
    {
        const char r[] = "{\"status\": 200, \"nonce\": 1804289383, \"activate_status\": 1}\n";
        assert_int_equal(fotadev_chan_feed(&ch, r, sizeof(r) - 1), FOTADEV_ACT_ACTIVATED);
    }
    assert_int_equal(ch.activated, 1);
    {
        char want[200];
        snprintf(want, sizeof(want),
                 "{\"nonce\": %ld, \"path\": \"/v1/device/identify\", \"method\": \"GET\",\"meta\": "
                 "{\"Authorization\": \"token " KEY "\"}}\n", (long)ch.ident_nonce);
        assert_tx(&ch, want);
    }
    assert_int_equal(fotadev_chan_beacon(&ch), FOTADEV_ACT_NONE);
    assert_tx(&ch, "{\"path\": \"/v1/ping/\", \"method\": \"POST\",\"meta\": {\"Authorization\": \"token " KEY "\"}}\n");
    /* no "ping success" before the next beacon: disconnect */
    assert_int_equal(fotadev_chan_beacon(&ch), FOTADEV_ACT_DISCONNECT);
    assert_int_equal(fotadev_chan_feed(&ch, "{\"status\": 200, \"message\": \"ping success\"}\n", 43), FOTADEV_ACT_NONE);
    assert_int_equal(fotadev_chan_beacon(&ch), FOTADEV_ACT_NONE);
    fotadev_chan_tx(&ch, &(size_t){0});
}

/* The server's refusal of the key (fotad: activation refused, unknown key)
 * is noted with its message in both dialects; stock behaviour is unchanged
 * (no reply queued), and other statuses are not refusals. */
static void test_chan_refusal(void **state)
{
    static const char unknown[] = "{\"message\": \"unknown key\", \"status\": 403}\n";
    static const char other[] = "{\"message\": \"invalid json\", \"status\": 400}\n";
    struct fotadev_chan ch;
    char r[160];
    size_t n;
    int d;
    (void)state;
    for (d = FOTADEV_DIALECT_NONOS; d <= FOTADEV_DIALECT_JSON; d++) {
        chan_new(&ch, (enum fotadev_dialect)d, 0);
        assert_true(fotadev_chan_connected(&ch, 77u) > 0);
        fotadev_chan_tx(&ch, &n);
        snprintf(r, sizeof(r), "{\"activate_status\": 0, \"message\": \"activation refused\", "
                               "\"nonce\": %ld, \"status\": 403}\n", (long)ch.active_nonce);
        assert_int_equal(fotadev_chan_feed(&ch, r, strlen(r)), FOTADEV_ACT_ACTIVATE_FAILED);
        assert_string_equal(ch.refusal, "activation refused");
        assert_int_equal(ch.refused_status, 403);
        assert_int_equal(ch.activated, 0);
        fotadev_chan_tx(&ch, &n);
        assert_int_equal(n, 0);

        chan_new(&ch, (enum fotadev_dialect)d, 1);
        assert_true(fotadev_chan_connected(&ch, 78u) > 0);
        fotadev_chan_tx(&ch, &n);
        assert_int_equal(fotadev_chan_feed(&ch, other, sizeof(other) - 1), FOTADEV_ACT_NONE);
        assert_int_equal(ch.refused_status, 0);
        assert_int_equal(fotadev_chan_feed(&ch, unknown, sizeof(unknown) - 1), FOTADEV_ACT_REFUSED);
        assert_string_equal(ch.refusal, "unknown key");
        assert_int_equal(ch.refused_status, 403);
        fotadev_chan_tx(&ch, &n);
        assert_int_equal(n, 0);
    }
    /* a message longer than the field is cut, never overflows */
    chan_new(&ch, FOTADEV_DIALECT_NONOS, 1);
    snprintf(r, sizeof(r), "{\"message\": \"%0100d\", \"status\": 401}\n", 7);
    assert_int_equal(fotadev_chan_feed(&ch, r, strlen(r)), FOTADEV_ACT_REFUSED);
    assert_int_equal(strlen(ch.refusal), FOTADEV_REFUSAL_MAX - 1);
    assert_int_equal(ch.refused_status, 401);
}

static void test_chan_push128(void **state)
{
    struct fotadev_chan ch;
    (void)state;
    for (int d = 0; d < 2; d++) {
        chan_new(&ch, d ? FOTADEV_DIALECT_JSON : FOTADEV_DIALECT_NONOS, 1);
        assert_true(fotadev_chan_connected(&ch, 42) > 0);
        fotadev_chan_tx(&ch, &(size_t){0});
        assert_int_equal(fotadev_chan_feed(&ch, push128, strlen(push128)), FOTADEV_ACT_UPGRADE);
        assert_string_equal(ch.upgrade_version, "v1.0.8t45772(a)");
        assert_tx(&ch, "{\"status\": 200, \"nonce\": 684196666, \"deliver_to_device\": true}\n");
        assert_true(fotadev_chan_report(&ch, 1) > 0);
        assert_tx(&ch, "{\"path\": \"/v1/messages/\", \"method\": \"POST\", \"meta\": {\"Authorization\": "
                       "\"token " KEY "\"},\"get\":{\"action\":\"device_upgrade_success\"},\"body\":"
                       "{\"pre_rom_version\":\"v1.0.5t45772(a)\",\"rom_version\":\"v1.0.8t45772(a)\"}}\n");
        {
            const char rb[] = "{\"deliver_to_device\": true, \"get\": {\"action\": \"sys_reboot\"}, \"meta\": "
                              "{\"Authorization\": \"token x\"}, \"method\": \"GET\", \"nonce\": 684196667, "
                              "\"path\": \"/v1/device/rpc/\"}\n";
            assert_int_equal(fotadev_chan_feed(&ch, rb, sizeof(rb) - 1), FOTADEV_ACT_REBOOT);
            assert_tx(&ch, "");                       /* stock sends no reply */
        }
    }
}

static void test_chan_short_version(void **state)
{
    struct fotadev_chan ch;
    const char p[] = "{\"deliver_to_device\": true, \"get\": {\"action\": \"sys_upgrade\", \"version\": "
                     "\"v1.1\"}, \"meta\": {\"Authorization\": \"token x\"}, \"method\": \"GET\", "
                     "\"nonce\": 7, \"path\": \"/v1/device/rpc/\"}\n";
    (void)state;
    /* NONOS copies 15 bytes: junk included, exactly like stock */
    chan_new(&ch, FOTADEV_DIALECT_NONOS, 1);
    assert_int_equal(fotadev_chan_feed(&ch, p, sizeof(p) - 1), FOTADEV_ACT_UPGRADE);
    assert_string_equal(ch.upgrade_version, "v1.1\"}, \"meta\":");
    /* JSON dialect takes the value */
    chan_new(&ch, FOTADEV_DIALECT_JSON, 1);
    assert_int_equal(fotadev_chan_feed(&ch, p, sizeof(p) - 1), FOTADEV_ACT_UPGRADE);
    assert_string_equal(ch.upgrade_version, "v1.1");
}

static void test_chan_bad_input(void **state)
{
    struct fotadev_chan ch;
    char big[2100];
    const char longnonce[] = "{\"get\": {\"action\": \"sys_upgrade\", \"version\": \"v1.0.8t45772(a)\"}, "
                             "\"nonce\": 12345678901, \"path\": \"/v1/device/rpc/\"}\n";
    (void)state;
    for (int d = 0; d < 2; d++) {
        chan_new(&ch, d ? FOTADEV_DIALECT_JSON : FOTADEV_DIALECT_NONOS, 1);
        assert_int_equal(fotadev_chan_feed(&ch, longnonce, sizeof(longnonce) - 1), FOTA_EPROTO);
        memset(big, 'x', sizeof(big));
        assert_int_equal(fotadev_chan_feed(&ch, big, sizeof(big)), FOTA_ETOOBIG);
        fotadev_chan_tx(&ch, &(size_t){0});
    }
    /* NONOS: a 1460-byte segment waits for the next one */
    chan_new(&ch, FOTADEV_DIALECT_NONOS, 1);
    {
        char seg[1460 + 200];
        size_t pl = strlen(push128);
        memset(seg, ' ', sizeof(seg));
        memcpy(seg + 1460 - 100, push128, 100);
        assert_int_equal(fotadev_chan_feed(&ch, seg, 1460), FOTADEV_ACT_NONE);
        assert_int_equal(fotadev_chan_feed(&ch, push128 + 100, pl - 100), FOTADEV_ACT_UPGRADE);
    }
    /* JSON: two pushes in one read are both seen; a line split across reads waits */
    chan_new(&ch, FOTADEV_DIALECT_JSON, 1);
    assert_int_equal(fotadev_chan_feed(&ch, "{\"status\": 200, \"mess", 21), FOTADEV_ACT_NONE);
    assert_int_equal(fotadev_chan_feed(&ch, "age\": \"ping success\"}\n", 23), FOTADEV_ACT_NONE);
    assert_int_equal(ch.ping_status, 1);
}

static void test_http_request(void **state)
{
    char buf[1024];
    struct fotadev_http_req r;
    int n;
    (void)state;
    memset(&r, 0, sizeof(r));
    r.style = FOTADEV_HTTP_NONOS;
    r.version = "v1.0.8t45772(a)";
    r.slot = FOTADEV_SLOT_USER2;
    r.host = "119.9.91.208";
    r.port = 80;
    r.devkey = KEY;
    n = fotadev_http_request(buf, sizeof(buf), &r);
    assert_true(n > 0);
    assert_int_equal((size_t)n, strlen(buf));
    assert_string_equal(buf,
        "GET /v1/device/rom/?action=download_rom&version=v1.0.8t45772(a)&filename=user2.bin HTTP/1.0\r\n"
        "Host: 119.9.91.208:80\r\nConnection: keep-alive\r\nCache-Control: no-cache\r\n"
        "User-Agent: Mozilla/5.0 (Windows NT 5.1) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/30.0.1599.101 Safari/537.36 \r\nAccept: */*\r\nAuthorization: token " KEY "\r\n"
        "Accept-Encoding: gzip,deflate,sdch\r\nAccept-Language: zh-CN,zh;q=0.8\r\n\r\n");
    r.head = 1;
    assert_true(fotadev_http_request(buf, sizeof(buf), &r) > 0);
    assert_true(strncmp(buf, "HEAD /v1/device/rom/", 20) == 0);
    assert_non_null(strstr(buf, "Connection: close\r\n"));
    r.head = 0;
    r.style = FOTADEV_HTTP_RTOS;
    n = fotadev_http_request(buf, sizeof(buf), &r);
    assert_int_equal((size_t)n, strlen(buf) + 1);     /* the NUL goes out too */
    assert_non_null(strstr(buf, "\r\nHost: iot.espressif.cn:80\r\nConnection: close\r\n"));
    r.style = FOTADEV_HTTP_FOTA;
    r.range_from = 4096;
    assert_true(fotadev_http_request(buf, sizeof(buf), &r) > 0);
    assert_non_null(strstr(buf, " HTTP/1.1\r\n"));
    assert_non_null(strstr(buf, "\r\nRange: bytes=4096-\r\n\r\n"));
    assert_int_equal(fotadev_http_request(buf, 40, &r), FOTA_ETOOBIG);
}

static void test_http_response(void **state)
{
    struct fotadev_http_resp h;
    const char ok[] = "HTTP/1.1 200 OK\r\nServer: nginx/1.6.2\r\nContent-Type: application/octet-stream\r\n"
                      "Content-Length: 282448\r\nConnection: keep-alive\r\n\r\n\xEA\x04";
    size_t hl = sizeof(ok) - 3;
    (void)state;
    /* whole header + 2 body bytes in one read */
    fotadev_http_resp_init(&h);
    assert_int_equal(fotadev_http_resp_feed(&h, ok, sizeof(ok) - 1), (int)hl);
    assert_int_equal(h.status, 200);
    assert_int_equal(h.content_length, 282448);
    assert_int_equal(h.total, 282448);
    /* split at every position */
    for (size_t cut = 1; cut < hl; cut++) {
        int rc;
        fotadev_http_resp_init(&h);
        assert_int_equal(fotadev_http_resp_feed(&h, ok, cut), FOTA_EAGAIN);
        rc = fotadev_http_resp_feed(&h, ok + cut, sizeof(ok) - 1 - cut);
        assert_int_equal(rc, (int)(hl - cut));
        assert_int_equal(h.content_length, 282448);
    }
    /* 206 with Content-Range */
    fotadev_http_resp_init(&h);
    {
        const char p[] = "HTTP/1.1 206 Partial Content\r\ncontent-length: 1000\r\n"
                         "Content-Range: bytes 4096-5095/5096\r\n\r\n";
        assert_int_equal(fotadev_http_resp_feed(&h, p, sizeof(p) - 1), (int)sizeof(p) - 1);
        assert_int_equal(h.status, 206);
        assert_int_equal(h.range_start, 4096);
        assert_int_equal(h.total, 5096);
        assert_int_equal(h.content_length, 1000);
    }
    /* missing Content-Length, garbage, oversized */
    fotadev_http_resp_init(&h);
    assert_int_equal(fotadev_http_resp_feed(&h, "HTTP/1.0 200 OK\r\nServer: x\r\n\r\n", 30), FOTA_EPROTO);
    fotadev_http_resp_init(&h);
    assert_int_equal(fotadev_http_resp_feed(&h, "SSH-2.0-OpenSSH\r\n\r\n", 19), FOTA_EPROTO);
    fotadev_http_resp_init(&h);
    assert_int_equal(fotadev_http_resp_feed(&h, "HTTP/1.0 200 OK\r\nContent-Length: 12x\r\n\r\n", 40), FOTA_EPROTO);
    {
        char big[1600];
        memset(big, 'a', sizeof(big));
        memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
        fotadev_http_resp_init(&h);
        assert_int_equal(fotadev_http_resp_feed(&h, big, sizeof(big)), FOTA_ETOOBIG);
    }
}

static void test_legacy(void **state)
{
    struct fotadev_legacy l;
    const uint8_t *body;
    size_t blen;
    uint8_t data[1460];
    (void)state;
    memset(data, 0x42, sizeof(data));
    fotadev_legacy_init(&l, 0, 1);
    assert_int_equal(fotadev_legacy_hello(&l, FOTADEV_SLOT_USER2), 2);
    assert_int_equal(fotadev_legacy_feed(&l, (const uint8_t *)"\x00\x0a\x00\x00", 4, &body, &blen), 0);
    assert_int_equal(l.length, 2560);
    assert_int_equal(fotadev_legacy_feed(&l, data, 1280, &body, &blen), 0);
    assert_int_equal(blen, 1280);
    assert_int_equal(fotadev_legacy_feed(&l, data, 1280, &body, &blen), 1);
    /* seed semantics: a 1460-byte receive overflows the 1280-byte buffer */
    fotadev_legacy_init(&l, 0, 1);
    fotadev_legacy_hello(&l, FOTADEV_SLOT_USER1);
    assert_int_equal(fotadev_legacy_feed(&l, (const uint8_t *)"\x00\x10\x00\x00", 4, &body, &blen), 0);
    assert_int_equal(fotadev_legacy_feed(&l, data, 1460, &body, &blen), FOTA_ETOOBIG);
    /* seed: the length must come alone; more than announced is an error */
    fotadev_legacy_init(&l, 0, 1);
    fotadev_legacy_hello(&l, FOTADEV_SLOT_USER1);
    assert_int_equal(fotadev_legacy_feed(&l, data, 8, &body, &blen), FOTA_EPROTO);
    fotadev_legacy_init(&l, 1, 0);
    assert_int_equal(fotadev_legacy_hello(&l, FOTADEV_SLOT_USER1), 0x81);
    assert_int_equal(fotadev_legacy_feed(&l, (const uint8_t *)"\x05\x00", 2, &body, &blen), 0);
    assert_int_equal(fotadev_legacy_feed(&l, (const uint8_t *)"\x00\x00\xAB\xCD\xEF", 5, &body, &blen), 0);
    assert_int_equal(blen, 3);
    assert_int_equal(body[0], 0xAB);
    assert_int_equal(fotadev_legacy_feed(&l, data, 1460, &body, &blen), FOTA_EPROTO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff),         cmocka_unit_test(test_chan_frames),
        cmocka_unit_test(test_chan_refusal),    cmocka_unit_test(test_chan_push128),    cmocka_unit_test(test_chan_short_version),
        cmocka_unit_test(test_chan_bad_input),  cmocka_unit_test(test_http_request),
        cmocka_unit_test(test_http_response),   cmocka_unit_test(test_legacy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
