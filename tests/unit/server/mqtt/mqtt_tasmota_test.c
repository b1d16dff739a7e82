/* mqtt_tasmota_test.c - what fotad reads from and writes to Tasmota over
 * MQTT: broker URLs, the topics of %prefix%/%topic%/, INFO1 (current and
 * the older flat shape), Status 5 and Status 2, UPGRADE, the OtaUrl, and a
 * product's settings as REST takes and shows them (never the password). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fota_err.h"
#include "mqtt_tasmota.h"

static void test_url(void **state)
{
    struct fota_mqtt_url u;
    char why[160];
    (void)state;
    assert_int_equal(fota_mqtt_url_parse("mqtt://broker.lan", &u, why, sizeof why), 0);
    assert_string_equal(u.host, "broker.lan");
    assert_int_equal(u.port, 1883);
    assert_int_equal(u.tls, 0);
    assert_int_equal(fota_mqtt_url_parse("mqtts://10.0.0.2:18883/", &u, why, sizeof why), 0);
    assert_string_equal(u.host, "10.0.0.2");
    assert_int_equal(u.port, 18883);
    assert_int_equal(u.tls, 1);
    assert_int_equal(fota_mqtt_url_parse("mqtts://[::1]", &u, why, sizeof why), 0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 8883);
    assert_int_equal(fota_mqtt_url_parse("mqtt://[::1]:1884", &u, why, sizeof why), 0);
    assert_int_equal(u.port, 1884);
    const char *bad[] = {"http://x", "mqtt://", "mqtt://:1883", "mqtt://h:0", "mqtt://h:65536",
                         "mqtt://h:12x", "mqtt://h/topic", "mqtt://u:p@h", "mqtt://[::1",
                         "mqtt://h h", "MQTT://h", NULL};
    for (int i = 0; bad[i]; i++) {
        why[0] = '\0';
        assert_int_equal(fota_mqtt_url_parse(bad[i], &u, why, sizeof why), FOTA_EINVAL);
        assert_true(why[0] != '\0');
    }
    assert_int_equal(fota_mqtt_url_parse(NULL, &u, why, sizeof why), FOTA_EINVAL);
}

static void test_topics(void **state)
{
    char t[64];
    (void)state;
    assert_int_equal(fota_mqtt_msg_kind("tele/tasmota_B1E042/LWT", t, sizeof t), FOTA_MQTT_M_LWT);
    assert_string_equal(t, "tasmota_B1E042");
    assert_int_equal(fota_mqtt_msg_kind("tele/plug/INFO1", t, sizeof t), FOTA_MQTT_M_INFO1);
    assert_string_equal(t, "plug");
    assert_int_equal(fota_mqtt_msg_kind("stat/plug/STATUS5", t, sizeof t), FOTA_MQTT_M_STATUS5);
    assert_int_equal(fota_mqtt_msg_kind("stat/plug/STATUS2", t, sizeof t), FOTA_MQTT_M_STATUS2);
    assert_int_equal(fota_mqtt_msg_kind("stat/plug/UPGRADE", t, sizeof t), FOTA_MQTT_M_UPGRADE);
    const char *other[] = {"tele/plug/STATE", "stat/plug/RESULT", "tele//LWT", "tele/LWT",
                           "tele/a/b/LWT", "cmnd/plug/LWT", "stat/plug/INFO1", "", NULL};
    for (int i = 0; other[i]; i++)
        assert_int_equal(fota_mqtt_msg_kind(other[i], t, sizeof t), FOTA_MQTT_M_OTHER);
    assert_int_equal(fota_mqtt_msg_kind(NULL, t, sizeof t), FOTA_MQTT_M_OTHER);
    /* a topic longer than fotad keeps is not one of its devices */
    assert_int_equal(fota_mqtt_msg_kind("tele/0123456789/LWT", t, 8), FOTA_MQTT_M_OTHER);
}

static void test_payloads(void **state)
{
    char v[64], mac[FOTA_ARDUINO_MAC_MAX], text[64];
    const char *info1 = "{\"Info1\":{\"Module\":\"Sonoff Basic\",\"Version\":"
                        "\"14.4.1(release-tasmota)\",\"FallbackTopic\":\"cmnd/DVES_B1E042_fb/\","
                        "\"GroupTopic\":\"cmnd/tasmotas/\"}}";
    const char *old = "{\"Module\":\"Generic\",\"Version\":\"9.5.0(tasmota)\","
                      "\"FallbackTopic\":\"cmnd/DVES_B1E042_fb/\",\"GroupTopic\":\"tasmotas\"}";
    const char *st2 = "{\"StatusFWR\":{\"Version\":\"14.4.1(minimal)\",\"Core\":\"2_7_8\"}}";
    const char *st5 = "{\"StatusNET\":{\"Hostname\":\"tasmota-B1E042-0066\",\"IPAddress\":"
                      "\"192.168.1.7\",\"Mac\":\"5c:cf:7f:b1:e0:42\",\"Webserver\":2}}";
    (void)state;
    assert_int_equal(fota_mqtt_tasmota_version(info1, strlen(info1), v, sizeof v), 0);
    assert_string_equal(v, "14.4.1(release-tasmota)");
    assert_int_equal(fota_mqtt_tasmota_version(old, strlen(old), v, sizeof v), 0);
    assert_string_equal(v, "9.5.0(tasmota)");
    assert_int_equal(fota_mqtt_tasmota_version(st2, strlen(st2), v, sizeof v), 0);
    assert_string_equal(v, "14.4.1(minimal)");
    const char *nov[] = {"", "Online", "[]", "{\"Info1\":{\"Version\":3}}",
                         "{\"Info1\":{\"Version\":\"\"}}", "{\"Info1\":{}}", "{\"Version\"", NULL};
    for (int i = 0; nov[i]; i++)
        assert_int_equal(fota_mqtt_tasmota_version(nov[i], strlen(nov[i]), v, sizeof v),
                         FOTA_EINVAL);
    assert_int_equal(fota_mqtt_tasmota_version(info1, strlen(info1), v, 8), FOTA_EINVAL);

    assert_int_equal(fota_mqtt_tasmota_mac(st5, strlen(st5), mac), 0);
    assert_string_equal(mac, "5C:CF:7F:B1:E0:42");
    const char *nomac[] = {"{\"StatusNET\":{\"Mac\":\"5C:CF:7F\"}}", "{\"StatusNET\":{}}",
                           "{\"Mac\":\"5C:CF:7F:B1:E0:42\"}", "x", NULL};
    for (int i = 0; nomac[i]; i++)
        assert_int_equal(fota_mqtt_tasmota_mac(nomac[i], strlen(nomac[i]), mac), FOTA_EINVAL);

    const char *ok = "{\"Upgrade\":\"Successful. Restarting\"}";
    const char *fail = "{\"Upgrade\":\"Failed Not Enough space\"}";
    const char *res = "{\"Upgrade\":\"Version 14.4.1 from http://x/firmware.bin\"}";
    assert_int_equal(fota_mqtt_tasmota_upgrade(ok, strlen(ok), text, sizeof text), 1);
    assert_int_equal(fota_mqtt_tasmota_upgrade(fail, strlen(fail), text, sizeof text), 0);
    assert_string_equal(text, "Failed Not Enough space");
    assert_int_equal(fota_mqtt_tasmota_upgrade(res, strlen(res), text, sizeof text), -1);
    assert_int_equal(fota_mqtt_tasmota_upgrade("", 0, text, sizeof text), -1);
    /* A text longer than its buffer is cut at a character boundary (it is
     * shown in JSON, which takes whole UTF-8 characters only). */
    const char *cut = "{\"Upgrade\":\"Failed \u00e9\u00e9\"}";
    char small[11];
    assert_int_equal(fota_mqtt_tasmota_upgrade(cut, strlen(cut), small, sizeof small), 0);
    assert_string_equal(small, "Failed \xc3\xa9");
}

static void test_ota_url(void **state)
{
    char u[128];
    const char *key = "0123456789abcdef0123456789abcdef01234567";
    (void)state;
    assert_int_equal(fota_mqtt_tasmota_ota_url("http://fotad.lan:8080", key, u, sizeof u), 0);
    assert_string_equal(u, "http://fotad.lan:8080/v1/arduino/"
                           "0123456789abcdef0123456789abcdef01234567/firmware.bin");
    assert_int_equal(fota_mqtt_tasmota_ota_url("http://h/ota//", key, u, sizeof u), 0);
    assert_string_equal(u, "http://h/ota/v1/arduino/0123456789abcdef0123456789abcdef01234567"
                           "/firmware.bin");
    assert_int_equal(fota_mqtt_tasmota_ota_url("http://h", key, u, 40), FOTA_ETOOBIG);
}

static void test_settings(void **state)
{
    struct fota_arduino_product p;
    char why[200];
    json_t *j;
    (void)state;
    memset(&p, 0, sizeof p);
    j = json_loads("{\"url\": \"mqtt://b:1883\", \"username\": \"u\", \"password\": \"pw\"}", 0,
                   NULL);
    assert_int_equal(fota_mqtt_settings_apply(j, &p, why, sizeof why), 0);
    json_decref(j);
    assert_string_equal(p.mqtt_url, "mqtt://b:1883");
    assert_string_equal(p.mqtt_password, "pw");
    /* the view says it is set, never what it is */
    j = fota_mqtt_settings_json(&p);
    char *t = json_dumps(j, JSON_SORT_KEYS);
    assert_string_equal(t, "{\"password_set\": true, \"url\": \"mqtt://b:1883\", "
                           "\"username\": \"u\"}");
    free(t);
    json_decref(j);
    /* absent keeps, null clears */
    j = json_loads("{\"url\": \"mqtts://b\"}", 0, NULL);
    assert_int_equal(fota_mqtt_settings_apply(j, &p, why, sizeof why), 0);
    json_decref(j);
    assert_string_equal(p.mqtt_username, "u");
    assert_string_equal(p.mqtt_password, "pw");
    j = json_loads("{\"password\": null}", 0, NULL);
    assert_int_equal(fota_mqtt_settings_apply(j, &p, why, sizeof why), 0);
    json_decref(j);
    assert_string_equal(p.mqtt_password, "");
    assert_string_equal(p.mqtt_url, "mqtts://b");
    /* refused: among them a user name the broker's library refuses (MQTT
     * text: no control characters, C0 or C1), a value cut short by a NUL */
    const char *bad[] = {"{\"url\": \"tcp://b\"}", "{\"url\": 5}", "{\"host\": \"b\"}", "[]",
                         "{\"username\": true}", "{\"username\": \"u\\u001b[2J\"}",
                         "{\"username\": \"u\\nx\"}", "{\"username\": \"u\\u0085x\"}",
                         "{\"username\": \"u\\u007fx\"}", "{\"password\": \"p\\u0000w\"}",
                         NULL};
    const int status[] = {422, 400, 400, 400, 400, 422, 422, 422, 422, 422};
    for (int i = 0; bad[i]; i++) {
        j = json_loads(bad[i], JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        assert_non_null(j);
        assert_int_equal(fota_mqtt_settings_apply(j, &p, why, sizeof why), status[i]);
        json_decref(j);
    }
    assert_string_equal(p.mqtt_url, "mqtts://b");
    assert_string_equal(p.mqtt_username, "u");
    assert_string_equal(p.mqtt_password, "");
    j = json_loads("{\"username\": \"\xc3\xa9l\xc3\xa8ve\", \"password\": \"p\\tw\"}", 0, NULL);
    assert_int_equal(fota_mqtt_settings_apply(j, &p, why, sizeof why), 0);   /* UTF-8 text */
    json_decref(j);
    assert_string_equal(p.mqtt_username, "\xc3\xa9l\xc3\xa8ve");
    assert_string_equal(p.mqtt_password, "p\tw");   /* a password is bytes */
    /* url null: no broker, credentials gone with it */
    j = json_loads("{\"url\": null}", 0, NULL);
    assert_int_equal(fota_mqtt_settings_apply(j, &p, why, sizeof why), 0);
    json_decref(j);
    assert_string_equal(p.mqtt_url, "");
    assert_string_equal(p.mqtt_username, "");
    j = fota_mqtt_settings_json(&p);
    assert_true(json_is_null(j));
    json_decref(j);
    /* a first broker needs its url */
    j = json_loads("{\"username\": \"u\"}", 0, NULL);
    assert_int_equal(fota_mqtt_settings_apply(j, &p, why, sizeof why), 400);
    json_decref(j);
    assert_int_equal(fota_mqtt_settings_apply(NULL, &p, why, sizeof why), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url),
        cmocka_unit_test(test_topics),
        cmocka_unit_test(test_payloads),
        cmocka_unit_test(test_ota_url),
        cmocka_unit_test(test_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
