/* agent_test.c - the libfotadev agent on a fake HAL (no sockets): stock
 * NONOS flow (D1, D4, HEAD, erase, reconnect, GET, D7), sys_reboot is a
 * no-op before FINISH, the watchdog reports a failure, the FOTA profile
 * resumes with Range after a drop, and bounded random input never breaks
 * the channel, HTTP and legacy parsers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <cmocka.h>

#include "fota_str.h"
#include "devtest.h"

#define KEY "0123456789abcdef0123456789abcdef01234567"
#define V1 "v1.0.0t45772(a)"
#define V2 "v1.0.8t45772(a)"

struct fake {
    struct fotasim_flash f;
    struct fotadev_layout l;
    struct fotadev_hal hal;
    struct fotadev_agent a;
    char out[2][8192];
    size_t out_len[2];
    int connects[2], closes[2];
    uint32_t timer_ms[FOTADEV_TIMER_MAX];
    int reboots, restarts;
    uint32_t rnd;
};

static int f_sp_load(void *ud, uint16_t sec, uint32_t off, void *buf, uint32_t len)
{
    struct fake *x = ud;
    struct fotadev_flash_ops o = fotasim_flash_ops(&x->f);
    return fotadev_sysparam_load(&o, sec, off, buf, len);
}
static int f_sp_save(void *ud, uint16_t sec, const void *buf, uint32_t len)
{
    struct fake *x = ud;
    struct fotadev_flash_ops o = fotasim_flash_ops(&x->f);
    return fotadev_sysparam_save(&o, sec, buf, len);
}
static int f_slot(void *ud) { return fotasim_boot_running_slot(&((struct fake *)ud)->f, &((struct fake *)ud)->l); }
static void f_upgrade_reboot(void *ud) { ((struct fake *)ud)->reboots++; }
static void f_restart(void *ud) { ((struct fake *)ud)->restarts++; }
static uint32_t f_now(void *ud) { return 0; }
static void f_timer(void *ud, int id, uint32_t ms) { ((struct fake *)ud)->timer_ms[id] = ms; }
static int f_connect(void *ud, int c, const char *h, uint16_t p) { ((struct fake *)ud)->connects[c]++; return 0; }
static int f_send(void *ud, int c, const void *b, size_t n)
{
    struct fake *x = ud;
    assert_true(x->out_len[c] + n < sizeof(x->out[c]));
    memcpy(x->out[c] + x->out_len[c], b, n);
    x->out_len[c] += n;
    x->out[c][x->out_len[c]] = '\0';
    return 0;
}
static void f_close(void *ud, int c) { ((struct fake *)ud)->closes[c]++; }
static uint32_t f_random(void *ud) { return ((struct fake *)ud)->rnd += 7919; }

static void fake_init(struct fake *x, enum fotadev_profile prof)
{
    struct fotadev_agent_cfg cfg;
    memset(x, 0, sizeof(*x));
    assert_int_equal(fotadev_layout_get(2, &x->l), 0);
    assert_int_equal(fotasim_flash_init(&x->f, x->l.flash_size, 5), 0);
    x->hal.ud = x;
    x->hal.flash = fotasim_flash_ops(&x->f);
    x->hal.sysparam_load = f_sp_load;
    x->hal.sysparam_save = f_sp_save;
    x->hal.running_slot = f_slot;
    x->hal.upgrade_reboot = f_upgrade_reboot;
    x->hal.restart = f_restart;
    x->hal.now_ms = f_now;
    x->hal.timer = f_timer;
    x->hal.tcp_connect = f_connect;
    x->hal.tcp_send = f_send;
    x->hal.tcp_close = f_close;
    x->hal.random = f_random;
    memset(&cfg, 0, sizeof(cfg));
    cfg.profile = prof;
    cfg.host = "10.0.0.1";
    cfg.chan_port = 8000;
    cfg.http_port = 80;
    cfg.devkey = KEY;
    cfg.token = KEY;
    cfg.version = V1;
    cfg.activated = 1;
    cfg.map = 2;
    assert_int_equal(fotadev_agent_init(&x->a, &x->hal, &cfg), 0);
}

static void take(struct fake *x, int c, char *buf, size_t cap)
{
    fota_str_copy(buf, cap, x->out[c]);
    x->out_len[c] = 0;
    x->out[c][0] = '\0';
}

static void feed(struct fake *x, int c, const void *p, size_t n)
{
    fotadev_agent_on_data(&x->a, c, p, n);
}

static const char push_up[] = "{\"deliver_to_device\": true, \"get\": {\"action\": \"sys_upgrade\", \"version\": \"" V2
                              "\"}, \"meta\": {\"Authorization\": \"token x\"}, \"method\": \"GET\", \"nonce\": 11, "
                              "\"path\": \"/v1/device/rpc/\"}\n";
static const char push_rb[] = "{\"deliver_to_device\": true, \"get\": {\"action\": \"sys_reboot\"}, \"meta\": "
                              "{\"Authorization\": \"token x\"}, \"method\": \"GET\", \"nonce\": 12, "
                              "\"path\": \"/v1/device/rpc/\"}\n";

static void test_nonos_flow(void **state)
{
    struct fake *x = malloc(sizeof(*x));
    char buf[8192], hdr[256];
    size_t len, off;
    uint8_t *img = devtest_image(2, 2, V2, 9000, &len);
    (void)state;
    fake_init(x, FOTADEV_PROFILE_NONOS);
    fotadev_agent_start(&x->a);
    assert_int_equal(x->connects[0], 1);
    fotadev_agent_on_connect(&x->a, 0, 0);
    take(x, 0, buf, sizeof(buf));
    assert_non_null(strstr(buf, "\"path\": \"/v1/device/identify\""));
    assert_int_equal(x->timer_ms[FOTADEV_TIMER_BEACON], 50000);
    /* sys_reboot before any download: system_upgrade_reboot is a no-op */
    feed(x, 0, push_rb, sizeof(push_rb) - 1);
    assert_int_equal(x->timer_ms[FOTADEV_TIMER_REBOOT], 1000);
    fotadev_agent_on_timer(&x->a, FOTADEV_TIMER_REBOOT);
    assert_int_equal(x->reboots, 0);
    /* sys_upgrade: D4 first, then HEAD on a new connection */
    feed(x, 0, push_up, sizeof(push_up) - 1);
    take(x, 0, buf, sizeof(buf));
    assert_string_equal(buf, "{\"status\": 200, \"nonce\": 11, \"deliver_to_device\": true}\n");
    assert_int_equal(x->connects[1], 1);
    assert_int_equal(x->timer_ms[FOTADEV_TIMER_WATCHDOG], 120000);
    fotadev_agent_on_connect(&x->a, 1, 0);
    take(x, 1, buf, sizeof(buf));
    {
        static const char head[] = "HEAD /v1/device/rom/?action=download_rom&version=" V2
                                   "&filename=user2.bin HTTP/1.0\r\nHost: 10.0.0.1:80\r\nConnection: close\r\n";
        assert_true(strncmp(buf, head, sizeof(head) - 1) == 0);
    }
    snprintf(hdr, sizeof(hdr), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", len);
    assert_int_equal(fotadev_agent_dl_due(&x->a), 0);   /* HEAD: nothing known to be due */
    feed(x, 1, hdr, strlen(hdr));
    /* closed, erased what the image needs, reconnected for the GET */
    assert_int_equal(x->closes[1], 1);
    assert_int_equal(x->f.erases, (len + 4095) / 4096);
    assert_int_equal(x->connects[1], 2);
    fotadev_agent_on_connect(&x->a, 1, 0);
    take(x, 1, buf, sizeof(buf));
    assert_true(strncmp(buf, "GET /v1/device/rom/", 19) == 0);
    assert_non_null(strstr(buf, "Connection: keep-alive\r\n"));
    assert_int_equal(fotadev_agent_dl_due(&x->a), 0);   /* GET sent, no header yet */
    /* header + first bytes in one segment, then 1460-byte segments; the
     * image bytes still due (a HAL's read batching) count down to 0 */
    memcpy(buf, hdr, strlen(hdr));
    memcpy(buf + strlen(hdr), img, 1000);
    feed(x, 1, buf, strlen(hdr) + 1000);
    assert_int_equal(fotadev_agent_dl_due(&x->a), len - 1000);
    for (off = 1000; off < len; off += 1460) {
        feed(x, 1, img + off, len - off < 1460 ? len - off : 1460);
        assert_int_equal(fotadev_agent_dl_due(&x->a), len - off < 1460 ? 0 : len - off - 1460);
    }
    take(x, 0, buf, sizeof(buf));
    assert_non_null(strstr(buf, "\"get\":{\"action\":\"device_upgrade_success\"},\"body\":{\"pre_rom_version\":\"" V1
                                "\",\"rom_version\":\"" V2 "\"}}\n"));
    assert_int_equal(x->a.upgrade_flag, FOTADEV_UPGRADE_FINISH);
    feed(x, 0, push_rb, sizeof(push_rb) - 1);
    fotadev_agent_on_timer(&x->a, FOTADEV_TIMER_REBOOT);
    assert_int_equal(x->reboots, 1);
    free(img);
    fotasim_flash_cleanup(&x->f);
    free(x);
}

static void test_watchdog_reports_failure(void **state)
{
    struct fake *x = malloc(sizeof(*x));
    char buf[8192];
    (void)state;
    fake_init(x, FOTADEV_PROFILE_NONOS);
    fotadev_agent_start(&x->a);
    fotadev_agent_on_connect(&x->a, 0, 0);
    take(x, 0, buf, sizeof(buf));
    feed(x, 0, push_up, sizeof(push_up) - 1);
    take(x, 0, buf, sizeof(buf));
    fotadev_agent_on_timer(&x->a, FOTADEV_TIMER_WATCHDOG);
    take(x, 0, buf, sizeof(buf));
    assert_non_null(strstr(buf, "\"action\":\"device_upgrade_failed\""));
    assert_int_equal(x->a.upgrade_flag, FOTADEV_UPGRADE_IDLE);
    fotadev_agent_on_timer(&x->a, FOTADEV_TIMER_REBOOT);
    assert_int_equal(x->reboots, 0);
    fotasim_flash_cleanup(&x->f);
    free(x);
}

static void test_fota_resume(void **state)
{
    struct fake *x = malloc(sizeof(*x));
    char buf[8192], hdr[256];
    size_t len, cut = 5000;
    uint8_t *img = devtest_image(2, 2, V2, 9000, &len);
    (void)state;
    fake_init(x, FOTADEV_PROFILE_FOTA);
    fotadev_agent_start(&x->a);
    fotadev_agent_on_connect(&x->a, 0, 0);
    take(x, 0, buf, sizeof(buf));
    feed(x, 0, push_up, sizeof(push_up) - 1);
    take(x, 0, buf, sizeof(buf));
    assert_string_equal(buf, "{\"status\": 200, \"nonce\": 11, \"deliver_to_device\": true}\n");
    fotadev_agent_on_connect(&x->a, 1, 0);
    take(x, 1, buf, sizeof(buf));
    assert_null(strstr(buf, "Range:"));
    snprintf(hdr, sizeof(hdr), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", len);
    feed(x, 1, hdr, strlen(hdr));
    feed(x, 1, img, cut);
    fotadev_agent_on_close(&x->a, 1);                  /* the network drops it */
    assert_true(x->timer_ms[FOTADEV_TIMER_DL_RETRY] >= 500);
    fotadev_agent_on_timer(&x->a, FOTADEV_TIMER_DL_RETRY);
    assert_int_equal(x->connects[1], 2);
    fotadev_agent_on_connect(&x->a, 1, 0);
    take(x, 1, buf, sizeof(buf));
    assert_non_null(strstr(buf, "\r\nRange: bytes=5000-\r\n"));
    snprintf(hdr, sizeof(hdr), "HTTP/1.1 206 Partial Content\r\nContent-Length: %zu\r\n"
             "Content-Range: bytes %zu-%zu/%zu\r\n\r\n", len - cut, cut, len - 1, len);
    feed(x, 1, hdr, strlen(hdr));
    feed(x, 1, img + cut, len - cut);
    assert_int_equal(x->a.upgrade_flag, FOTADEV_UPGRADE_FINISH);
    take(x, 0, buf, sizeof(buf));
    assert_non_null(strstr(buf, "device_upgrade_success"));
    free(img);
    fotasim_flash_cleanup(&x->f);
    free(x);
}

/* Random and mutated input: every call returns, nothing out of bounds (ASan). */
static void test_parsers_random_input(void **state)
{
    struct fotadev_chan ch;
    struct fotadev_chan_cfg cc;
    struct fotadev_http_resp h;
    struct fotadev_legacy l;
    static const char *seeds[] = {push_up, push_rb, "HTTP/1.1 206 Partial Content\r\nContent-Length: 9\r\n"
                                  "Content-Range: bytes 1-9/10\r\n\r\n", "{\"nonce\": 1, \"activate_status\": 1}\n"};
    char buf[3000];
    uint32_t r = 12345;
    (void)state;
    memset(&cc, 0, sizeof(cc));
    cc.devkey = KEY;
    cc.token = KEY;
    cc.version = V1;
    for (int i = 0; i < 4000; i++) {
        size_t n, k;
        const char *s = seeds[i % 4];
        r = r * 1103515245u + 12345u;
        n = (r >> 8) % sizeof(buf);
        if (i & 1) {                               /* mutate a seed */
            n = strlen(s);
            memcpy(buf, s, n);
            for (k = 0; k < 4; k++) {
                r = r * 1103515245u + 12345u;
                buf[(r >> 8) % n] = (char)(r >> 24);
            }
        } else {
            for (k = 0; k < n; k++) {
                r = r * 1103515245u + 12345u;
                buf[k] = (char)(r >> 24);
            }
        }
        cc.dialect = (i >> 1) & 1 ? FOTADEV_DIALECT_JSON : FOTADEV_DIALECT_NONOS;
        fotadev_chan_init(&ch, &cc);
        (void)fotadev_chan_feed(&ch, buf, n);
        (void)fotadev_chan_feed(&ch, buf, n / 2);
        fotadev_http_resp_init(&h);
        (void)fotadev_http_resp_feed(&h, buf, n);
        fotadev_legacy_init(&l, i & 1, (i >> 1) & 1);
        fotadev_legacy_hello(&l, 1);
        {
            const uint8_t *b;
            size_t bl;
            (void)fotadev_legacy_feed(&l, (const uint8_t *)buf, n, &b, &bl);
            assert_true(bl <= n);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nonos_flow), cmocka_unit_test(test_watchdog_reports_failure),
        cmocka_unit_test(test_fota_resume), cmocka_unit_test(test_parsers_random_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
