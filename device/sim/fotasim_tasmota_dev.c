/* fotasim_tasmota_dev.c - Tasmota on a fota-sim device (§8): MQTT with
 * Tasmota's topics (cmnd/TOPIC/#, the group topic cmnd/tasmotas/#, the
 * fallback cmnd/DVES_XXXXXX_fb/#; tele/TOPIC/LWT Online, tele/TOPIC/INFO1
 * after boot, stat/TOPIC/STATUS5 for Status 5), OtaUrl and Upgrade 1, and
 * the OTA loop of support_tasmota.ino's Every250mSeconds: a once-a-second
 * countdown, 10 attempts counted down before each, `.gz` from the sixth, the
 * `-minimal` rewrite after -100/-107 kept in RTC memory across the restart,
 * a 304 taken as success, "Successful. Restarting" and a restart a few
 * seconds later; a minimal build that boots with the RTC flag set starts
 * the upgrade from the same OtaUrl by itself. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fota_str.h"
#include "fotasim_ardsk.h"
#include "fotasim_dev.h"
#include "fotasim_mqtt.h"
#include "fotasim_tasmota.h"

#define OTA_ATTEMPTS 10                     /* ESP8266 */
#define DEFAULT_OTA_URL "http://ota.tasmota.com/tasmota/release/tasmota.bin.gz"
#define TICK_MS 1000u

/* ---- MQTT ---- */

static struct fotasim_tas *tas_of(struct fotasim_dev *d)
{
    return &d->u.ard.p.tas;
}

static void publish(struct fotasim_dev *d, const char *prefix, const char *sub, const char *json,
                    int retain)
{
    struct fotasim_tas *t = tas_of(d);
    char topic[96];
    if (!t->mqtt)
        return;
    snprintf(topic, sizeof(topic), "%s/%s/%s", prefix, t->topic, sub);
    fotasim_mqtt_publish(t->mqtt, topic, json, retain);
}

/* TasmotaGlobal.version: the embedded version up to its build name. */
static void version_part(const struct fotasim_dev *d, char *out, size_t cap)
{
    const char *p = strchr(d->version, '(');
    fota_str_copy_n(out, cap, d->version, p ? (size_t)(p - d->version) : strlen(d->version));
}

static void on_connect(void *ud)
{
    struct fotasim_dev *d = ud;
    struct fotasim_tas *t = tas_of(d);
    char topic[96], json[512];

    if (d->halted)
        return;
    publish(d, "tele", "LWT", "Online", 1);
    snprintf(topic, sizeof(topic), "cmnd/%s/#", t->topic);
    fotasim_mqtt_subscribe(t->mqtt, topic);
    fotasim_mqtt_subscribe(t->mqtt, "cmnd/tasmotas/#");
    snprintf(topic, sizeof(topic), "cmnd/%s_fb/#", t->client);
    fotasim_mqtt_subscribe(t->mqtt, topic);
    snprintf(json, sizeof(json),
             "{\"Info1\":{\"Module\":\"Generic\",\"Version\":\"%s\",\"FallbackTopic\":\"cmnd/%s_fb/\","
             "\"GroupTopic\":\"cmnd/tasmotas/\"}}", d->version, t->client);
    publish(d, "tele", "INFO1", json, 0);
    snprintf(json, sizeof(json), "{\"Info3\":{\"RestartReason\":\"%s\"}}",
             d->boots > 1 ? "Software/System restart" : "Power On");
    publish(d, "tele", "INFO3", json, 0);
    fotasim_ardsk_settle(d, 1, NULL);        /* it reached the broker (on the target: done) */
}

static void status5(struct fotasim_dev *d)
{
    struct fotasim_ard *a = &d->u.ard;
    char json[512];
    snprintf(json, sizeof(json),
             "{\"StatusNET\":{\"Hostname\":\"tasmota-%02X%02X%02X-%04u\",\"IPAddress\":\"127.0.0.1\","
             "\"Gateway\":\"127.0.0.1\",\"Subnetmask\":\"255.0.0.0\",\"DNSServer1\":\"127.0.0.1\","
             "\"DNSServer2\":\"0.0.0.0\",\"Mac\":\"%s\",\"Webserver\":2,\"HTTP_API\":1,"
             "\"WifiConfig\":4,\"WifiPower\":17.0}}",
             a->mac[3], a->mac[4], a->mac[5], (unsigned)(a->chip_id & 0x1fff), a->sta_mac);
    publish(d, "stat", "STATUS5", json, 0);
}

/* One command (its name after the last '/'), as the console would take it. */
static void command(struct fotasim_dev *d, const char *cmd, const char *payload, size_t len)
{
    struct fotasim_tas *t = tas_of(d);
    char json[FOTASIM_URL_MAX + 96], ver[FOTASIM_VERSION_MAX], url[FOTASIM_URL_MAX];

    if (strcasecmp(cmd, "OtaUrl") == 0) {
        if (len > 0)
            fota_str_copy(t->ota_url, sizeof(t->ota_url), strcmp(payload, "1") == 0 ? DEFAULT_OTA_URL
                                                                                    : payload);
        snprintf(json, sizeof(json), "{\"OtaUrl\":\"%s\"}", t->ota_url);
        publish(d, "stat", "RESULT", json, 0);
    } else if (strcasecmp(cmd, "Upgrade") == 0 || strcasecmp(cmd, "Upload") == 0) {
        version_part(d, ver, sizeof(ver));
        if (len == 1 && payload[0] == '1') {
            t->state_flag = 3;
            fotasim_tasmota_get_ota_url(t->ota_url, d->u.ard.chip_id, url, sizeof(url));
            snprintf(json, sizeof(json), "{\"%s\":\"Version %s from %s\"}", cmd, ver, url);
        } else {
            snprintf(json, sizeof(json), "{\"%s\":\"1 or >%s to upgrade\"}", cmd, ver);
        }
        publish(d, "stat", "RESULT", json, 0);
    } else if (strcasecmp(cmd, "Status") == 0 && len == 1 && payload[0] == '5') {
        status5(d);
    } else if (strcasecmp(cmd, "Restart") == 0 && len == 1 && payload[0] == '1') {
        t->restart_flag = 2;
        publish(d, "stat", "RESULT", "{\"Restart\":\"Restarting\"}", 0);
    }
}

static void on_message(void *ud, const char *topic, const char *payload, size_t len)
{
    struct fotasim_dev *d = ud;
    const char *cmd = strrchr(topic, '/');
    if (d->halted || !cmd || strncmp(topic, "cmnd/", 5) != 0)
        return;
    command(d, cmd + 1, payload, len);
    fotasim_dev_check_power(d);
}

/* ---- the loop ---- */

static void attempt(struct fotasim_dev *d)
{
    struct fotasim_tas *t = tas_of(d);
    struct fotasim_ard *a = &d->u.ard;

    t->state_flag = 92;
    t->result = 0;
    t->retry--;
    if (!t->retry)
        return;                              /* out of attempts: "Failed ..." at 90 */
    fotasim_tasmota_attempt_url(t->ota_url, a->chip_id, a->rtc_ota_loader, t->minimal, &t->retry,
                                t->last_url, sizeof(t->last_url));
    t->attempts++;
    if (d->t_start <= 0)
        d->t_start = (float)fotasim_fleet_elapsed(d->sim);
    /* update() blocks the loop: the countdown waits for its result */
    fotasim_dev_timer(d, FOTASIM_ARD_TIMER_SK1, 0);
    fotasim_ard_update(d, t->last_url, d->version);
}

static void report(struct fotasim_dev *d)
{
    struct fotasim_tas *t = tas_of(d);
    struct fotasim_ard *a = &d->u.ard;
    char json[320];

    t->state_flag = 0;
    if (t->result) {
        publish(d, "stat", "UPGRADE", "{\"Upgrade\":\"Successful. Restarting\"}", 0);
        t->restart_flag = 5;
    } else {
        snprintf(json, sizeof(json), "{\"Upgrade\":\"Failed %s\"}", a->last_errstr);
        publish(d, "stat", "UPGRADE", json, 0);
        fotasim_dev_set_reason(d, json);
    }
}

/* Every250mSeconds' once-a-second parts for the OTA and the restart. */
static void tick(struct fotasim_dev *d)
{
    struct fotasim_tas *t = tas_of(d);

    if (t->state_flag) {
        t->state_flag--;
        if (t->state_flag == 2) {
            d->u.ard.rtc_ota_loader = 0;     /* try the requested image first */
            t->retry = OTA_ATTEMPTS;
        }
        if (t->state_flag <= 0) {
            attempt(d);
            if (d->u.ard.op != FOTASIM_ARD_OP_NONE)
                return;                      /* the tick goes on after the result */
        }
        if (t->state_flag == 90)
            report(d);
    }
    if (t->restart_flag && --t->restart_flag <= 0) {
        fotasim_ard_restart(d, 10);
        return;
    }
    fotasim_dev_timer(d, FOTASIM_ARD_TIMER_SK1, TICK_MS);
}

static void ts_result(struct fotasim_dev *d, const struct fotasim_ard_result *r)
{
    struct fotasim_tas *t = tas_of(d);

    if (r->op != FOTASIM_ARD_OP_UPDATE)
        return;
    t->result = r->result != FOTASIM_UPDATE_FAILED;   /* 304 counts as success */
    if (!t->result) {
        if (!t->minimal && (r->err == FOTASIM_UE_TOO_LESS_SPACE ||
                            r->err == FOTASIM_UE_BIN_FOR_WRONG_FLASH))
            d->u.ard.rtc_ota_loader = 1;     /* try the minimal image next */
        t->state_flag = 2;                   /* failed: retry */
    }
    fotasim_dev_timer(d, FOTASIM_ARD_TIMER_SK1, TICK_MS);
}

static void ts_timer(struct fotasim_dev *d, int id)
{
    if (id == FOTASIM_ARD_TIMER_SK1)
        tick(d);
}

static void ts_start(struct fotasim_dev *d)
{
    struct fotasim_ard *a = &d->u.ard;
    struct fotasim_tas *t = tas_of(d);
    struct fotasim_mqtt_cfg cfg;
    const char *paren = strchr(d->version, '(');
    char will[96], url[FOTASIM_URL_MAX];

    memset(t, 0, sizeof(*t));
    snprintf(t->topic, sizeof(t->topic), "tasmota_%02X%02X%02X", a->mac[3], a->mac[4], a->mac[5]);
    snprintf(t->client, sizeof(t->client), "DVES_%02X%02X%02X", a->mac[3], a->mac[4], a->mac[5]);
    t->minimal = paren && strstr(paren, "minimal") != NULL;
    /* OtaUrl: a setting in flash, kept across restarts (the run's --url,
     * until an OtaUrl command changes it) */
    fota_str_copy(t->ota_url, sizeof(t->ota_url), DEFAULT_OTA_URL);
    if (d->sim->o.url && fotasim_ardsk_url(d, d->sim->o.url, url, sizeof(url)) == 0)
        fota_str_copy(t->ota_url, sizeof(t->ota_url), url);
    if (a->saved_ota_url[0])
        fota_str_copy(t->ota_url, sizeof(t->ota_url), a->saved_ota_url);
    t->retry = OTA_ATTEMPTS;
    if (t->minimal && a->rtc_ota_loader == 1) {
        a->rtc_ota_loader = 0;               /* "OTA: Propagating upload" */
        t->state_flag = 6;
    }
    snprintf(will, sizeof(will), "tele/%s/LWT", t->topic);
    memset(&cfg, 0, sizeof(cfg));
    cfg.host = d->sim->o.server;
    cfg.port = d->sim->o.mqtt_port;
    cfg.client_id = t->client;
    cfg.will_topic = will;
    cfg.will_payload = "Offline";
    cfg.keepalive = 30;
    cfg.on_connect = on_connect;
    cfg.on_message = on_message;
    cfg.ud = d;
    t->mqtt = fotasim_mqtt_new(d->sim->base, &cfg);
    if (!t->mqtt) {
        fotasim_dev_finish(d, DEV_FAILED, "cannot make an MQTT client");
        return;
    }
    fotasim_dev_timer(d, FOTASIM_ARD_TIMER_SK1, TICK_MS);
}

static void ts_stop(struct fotasim_dev *d)
{
    struct fotasim_tas *t = tas_of(d);
    fota_str_copy(d->u.ard.saved_ota_url, sizeof(d->u.ard.saved_ota_url), t->ota_url);
    fotasim_mqtt_free(t->mqtt);              /* no DISCONNECT: the broker sends Offline */
    t->mqtt = NULL;
}

const struct fotasim_sketch fotasim_tasmota_dev_sketch = {
    "tasmota", ts_start, ts_timer, ts_result, ts_stop,
};
