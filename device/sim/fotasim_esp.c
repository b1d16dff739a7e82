/* fotasim_esp.c - the Espressif firmware of a fota-sim device: the SDK
 * loader picks the slot (fotasim_boot.c), then libfotadev's agent runs on
 * a HAL made of the device's hardware (fotasim_dev.c). Agent events keep
 * the device's and the fleet's counts and go on to the fleet's on_event
 * (the phone app). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fota_str.h"
#include "fotasim_dev.h"

static struct fotasim_dev *dev_of(void *ud)
{
    return ud;
}

static struct fotasim_esp *esp_of(struct fotasim_dev *d)
{
    return &d->u.esp;
}

/* ---- the HAL ---- */

static int hal_sp_load(void *ud, uint16_t sec, uint32_t off, void *buf, uint32_t len)
{
    struct fotadev_flash_ops o = fotasim_flash_ops(&dev_of(ud)->flash);
    return fotadev_sysparam_load(&o, sec, off, buf, len);
}

static int hal_sp_save(void *ud, uint16_t sec, const void *buf, uint32_t len)
{
    struct fotadev_flash_ops o = fotasim_flash_ops(&dev_of(ud)->flash);
    return fotadev_sysparam_save(&o, sec, buf, len);
}

static int hal_running_slot(void *ud)
{
    struct fotasim_dev *d = dev_of(ud);
    return fotasim_boot_running_slot(&d->flash, &esp_of(d)->lay);
}

static void hal_upgrade_reboot(void *ud)
{
    fotasim_dev_reboot(dev_of(ud), FOTASIM_RESTART_FLIP, 10);
}

static void hal_restart(void *ud)
{
    fotasim_dev_reboot(dev_of(ud), FOTASIM_RESTART, 10);
}

static uint32_t hal_now(void *ud)
{
    return fotasim_dev_now_ms(dev_of(ud));
}

static void hal_timer(void *ud, int id, uint32_t ms)
{
    fotasim_dev_timer(dev_of(ud), id, ms);
}

static int hal_connect(void *ud, int c, const char *host, uint16_t port)
{
    return fotasim_dev_connect(dev_of(ud), c, host, port);
}

static int hal_send(void *ud, int c, const void *buf, size_t len)
{
    return fotasim_dev_send(dev_of(ud), c, buf, len);
}

static void hal_close(void *ud, int c)
{
    fotasim_dev_close(dev_of(ud), c);
}

static uint32_t hal_random(void *ud)
{
    return fotasim_dev_random(dev_of(ud));
}

static void hal_log(void *ud, int level, const char *msg)
{
    fotasim_dev_log(dev_of(ud), "%s", msg);
}

static void note(struct fotasim_dev *d, int ev, const char *what)
{
    struct fotasim *s = d->sim;
    if (s->on_event)
        s->on_event(s->on_event_ud, d, ev, what);
}

/* The device's own bookkeeping of an agent event; the fleet's on_event
 * (the app) sees every event afterwards. */
static void hal_event(void *ud, int ev, int err, const char *what)
{
    struct fotasim_dev *d = dev_of(ud);
    struct fotasim_esp *e = esp_of(d);
    struct fotasim *s = d->sim;
    char why[sizeof(d->reason)];

    fotasim_dev_log(d, "event %d (%s)", ev, what ? what : "");
    switch (ev) {
    case FOTADEV_EV_UPGRADE_DONE: {
        /* every device holds the same image now: keep one copy */
        uint32_t first = e->lay.slot_addr[e->agent.target_slot] / FOTADEV_SECTOR;
        (void)fotasim_pool_adopt(&s->pool, &d->flash, first, e->lay.slot_size / FOTADEV_SECTOR);
        break;
    }
    case FOTADEV_EV_ACTIVATED:
        e->activated = 1;
        if (!e->ever_activated)
            s->activated++;
        e->ever_activated = 1;
        if (!s->o.upgrade_to && d->state == DEV_RUNNING)
            d->state = DEV_DONE;
        break;
    case FOTADEV_EV_UPGRADE_START:
        if (d->t_start <= 0)
            d->t_start = (float)fotasim_fleet_elapsed(s);
        if (s->cpu_at_push < 0)
            s->cpu_at_push = fotasim_fleet_cpu_seconds();
        if (s->o.ack_only && d->state == DEV_RUNNING)
            d->state = DEV_DONE;               /* acknowledged: all this run wants */
        break;
    case FOTADEV_EV_ACTIVATE_FAILED:
    case FOTADEV_EV_REFUSED:
        /* the server will not take this key: a stock device would retry
         * forever; the simulator stops it with the server's reason */
        snprintf(why, sizeof(why), "the server refused the device key: %s (%d)",
                 what && what[0] ? what : "no reason given", e->agent.chan.refused_status);
        note(d, ev, what);
        fotasim_dev_finish(d, DEV_FAILED, why);
        return;
    case FOTADEV_EV_UPGRADE_FAILED:
        fotasim_dev_set_reason(d, what);
        break;
    default:
        break;
    }
    note(d, ev, what);
    fotasim_fleet_check_done(s);
}

/* ---- the firmware's entry points ---- */

static void fw_on_connect(struct fotasim_dev *d, int c, int err)
{
    fotadev_agent_on_connect(&esp_of(d)->agent, c, err);
}

static void fw_on_data(struct fotasim_dev *d, int c, const uint8_t *p, size_t n)
{
    struct fotasim_esp *e = esp_of(d);

    fotadev_agent_on_data(&e->agent, c, p, n);
    if (c != FOTASIM_CONN_CHAN || d->halted || !d->conn[c].bev)
        return;
    /* A check-in run is done when the server answered the identify: its
     * refusal (which failed the device above) may follow a store round trip,
     * so the TCP connect alone says nothing of the key. */
    if (e->activated && e->agent.chan.identified && !d->sim->o.upgrade_to &&
        d->state == DEV_RUNNING) {
        d->state = DEV_DONE;
        fotasim_fleet_check_done(d->sim);
    }
    note(d, FOTASIM_EV_CHAN_RX, NULL);     /* the server answered on this connection */
}

static void fw_on_close(struct fotasim_dev *d, int c)
{
    fotadev_agent_on_close(&esp_of(d)->agent, c);
}

static void fw_on_timer(struct fotasim_dev *d, int id)
{
    fotadev_agent_on_timer(&esp_of(d)->agent, id);
}

static uint32_t fw_dl_due(const struct fotasim_dev *d)
{
    return fotadev_agent_dl_due(&d->u.esp.agent);
}

static int fw_flip(struct fotasim_dev *d)
{
    return fotasim_boot_flip(&d->flash, &esp_of(d)->lay);
}

/* The loader's part of a boot: which image starts (logged for
 * --json-devices). Returns 1 when an image runs, 0 when the device stops
 * (power lost while the loader saved: it reboots; nothing bootable). */
static int esp_load(struct fotasim_dev *d)
{
    struct fotasim *s = d->sim;
    struct fotasim_boot b;

    if (fotasim_boot_run(&d->flash, &esp_of(d)->lay, s->o.loader, &b) < 0 || !d->flash.powered) {
        fotasim_dev_reboot(d, FOTASIM_POWER_LOSS, 100);   /* cut while the loader saved */
        return 0;
    }
    fotasim_dev_log_boot(d, !b.ok ? FOTASIM_BOOT_NONE
                            : strcmp(b.version, s->o.initial_version) == 0 ? FOTASIM_BOOT_INITIAL
                            : s->o.upgrade_to && strcmp(b.version, s->o.upgrade_to) == 0
                                ? FOTASIM_BOOT_TARGET : FOTASIM_BOOT_OTHER);
    if (!b.ok) {
        fotasim_dev_finish(d, DEV_DEAD, "no bootable image");
        return 0;
    }
    fota_str_copy(d->version, sizeof(d->version), b.version);
    return 1;
}

/* The running image's start: IoT_Demo reads esp_param and runs the agent. */
static void esp_start_agent(struct fotasim_dev *d)
{
    struct fotasim *s = d->sim;
    struct fotasim_esp *e = esp_of(d);
    struct fotadev_agent_cfg cfg;
    uint8_t esp_param[84];

    e->activated = 0;
    e->rpc_upgrade_sent = 0;
    e->rpc_on_rx = 0;
    if (e->lay.privparam_sec && hal_sp_load(d, (uint16_t)(e->lay.privparam_sec + 1), 0, esp_param,
                                            sizeof(esp_param)) == 0)
        e->activated = esp_param[80] == 1;
    if (d->faulty && !(d->fault_fired & FOTASIM_FIRED_FLASH) && d->flash_at >= 0) {
        d->fault_fired |= FOTASIM_FIRED_FLASH;
        d->flash.cut_at = d->flash.ops + d->flash_at;
    }
    memset(&cfg, 0, sizeof(cfg));
    cfg.profile = (enum fotadev_profile)s->o.profile;
    cfg.host = s->o.server;
    cfg.chan_port = (uint16_t)s->o.device_port;
    cfg.http_port = (uint16_t)s->o.http_port;
    cfg.legacy_port = (uint16_t)s->o.legacy_port;
    cfg.devkey = e->devkey;
    cfg.token = e->token;
    memcpy(cfg.bssid, e->bssid, 6);
    cfg.version = d->version;
    cfg.activated = e->activated;
    cfg.map = (unsigned)s->o.map;
    cfg.legacy_stream_ext = s->o.stream_ext;
    if (strlen(d->version) > FOTADEV_VERSION_LEN || fotadev_agent_init(&e->agent, &e->hal, &cfg) < 0) {
        fotasim_dev_finish(d, DEV_FAILED, "image version does not fit the 15-byte field");
        return;
    }
    fotadev_agent_start(&e->agent);
}

static void fw_boot(struct fotasim_dev *d)
{
    struct fotasim *s = d->sim;
    struct fotasim_esp *e = esp_of(d);

    if (!esp_load(d))
        return;
    if (s->o.upgrade_to && strcmp(d->version, s->o.upgrade_to) == 0) {
        if (d->t_done <= 0)
            d->t_done = (float)fotasim_fleet_elapsed(s);
        fotasim_dev_finish(d, DEV_DONE, NULL);
        /* with --hold the device lives on (connects, identifies, pings) */
        if (!s->o.hold_s || s->o.profile == FOTADEV_PROFILE_SEED_DFU)
            return;
    } else {
        d->state = DEV_RUNNING;
    }
    if (s->o.profile == FOTADEV_PROFILE_SEED_DFU) {
        if (!s->o.upgrade_to) {
            fotasim_dev_finish(d, DEV_DONE, NULL);
            return;
        }
        if (e->attempts >= s->o.max_attempts) {
            fotasim_dev_finish(d, DEV_FAILED, d->reason[0] ? NULL : "too many attempts");
            return;
        }
        e->attempts++;
    }
    esp_start_agent(d);
}

const struct fotasim_fw fotasim_esp_fw = {
    fw_boot, fw_flip, fw_on_connect, fw_on_data, fw_on_close, fw_on_timer, fw_dl_due, NULL,
};

/* ---- set-up ---- */

static void rand_hex(struct fotasim_dev *d, char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < n; i++)
        out[i] = hex[fotasim_dev_random(d) & 15u];
    out[n] = '\0';
}

/* factory: master_device_key in esp_param (copy at priv+1), not activated */
static int write_esp_param(struct fotasim_dev *d)
{
    struct fotasim_esp *e = esp_of(d);
    struct fotadev_flash_ops ops = fotasim_flash_ops(&d->flash);
    uint8_t esp_param[84];
    int rc = 0;
    memset(esp_param, 0, sizeof(esp_param));
    memcpy(esp_param, e->devkey, FOTADEV_KEY_LEN);
    memcpy(esp_param + 40, e->token, FOTADEV_KEY_LEN);
    if (e->lay.privparam_sec)
        rc = fotadev_sysparam_save(&ops, (uint16_t)(e->lay.privparam_sec + 1), esp_param,
                                   sizeof(esp_param));
    d->flash.ops = 0;
    return rc;
}

/* A master_device_key.bin sector, flashed as `esptool write_flash` does
 * (fotad's X-Fota-Flash-Address): the second copy of the protected
 * esp_param area (priv + 2), with an erased flag sector (priv + 3), which
 * system_param_load then reads. Key and token come from it. */
static int write_key_sector(struct fotasim_dev *d, const uint8_t *sec)
{
    struct fotasim_esp *e = esp_of(d);
    uint8_t *ff;
    int rc;

    if (!e->lay.privparam_sec)
        return FOTA_EINVAL;                    /* no IoT_Demo parameter area in this map */
    if (!(ff = malloc(FOTADEV_SECTOR)))
        return FOTA_ENOMEM;
    memset(ff, 0xFF, FOTADEV_SECTOR);
    rc = fotasim_flash_program(&d->flash, (uint32_t)(e->lay.privparam_sec + 2) * FOTADEV_SECTOR, sec,
                               FOTADEV_SECTOR);
    if (rc == 0)
        rc = fotasim_flash_program(&d->flash, (uint32_t)(e->lay.privparam_sec + 3) * FOTADEV_SECTOR,
                                   ff, FOTADEV_SECTOR);
    free(ff);
    fota_str_copy_n(e->devkey, sizeof(e->devkey), (const char *)sec, FOTADEV_KEY_LEN);
    fota_str_copy_n(e->token, sizeof(e->token), (const char *)sec + 40, FOTADEV_KEY_LEN);
    return rc;
}

void fotasim_esp_rekey(struct fotasim_dev *d, const char *devkey)
{
    fota_str_copy(esp_of(d)->devkey, sizeof(esp_of(d)->devkey), devkey);
    (void)write_esp_param(d);
}

/* The keys: a key sector, a given key or a made-up one; the factory
 * esp_param unless the flash came from --flash-dir. */
static int esp_keys(struct fotasim_dev *d, const char *devkey, const uint8_t *keysector)
{
    struct fotasim_esp *e = esp_of(d);

    rand_hex(d, e->token, FOTADEV_KEY_LEN);
    if (keysector && !d->loaded)
        return write_key_sector(d, keysector);
    if (keysector)
        fota_str_copy_n(e->devkey, sizeof(e->devkey), (const char *)keysector, FOTADEV_KEY_LEN);
    else if (devkey)
        fota_str_copy(e->devkey, sizeof(e->devkey), devkey);
    else
        rand_hex(d, e->devkey, FOTADEV_KEY_LEN);
    return d->loaded ? 0 : write_esp_param(d);
}

static void esp_hal(struct fotasim_dev *d)
{
    struct fotadev_hal *h = &esp_of(d)->hal;
    h->ud = d;
    h->flash = fotasim_flash_ops(&d->flash);
    h->sysparam_load = hal_sp_load;
    h->sysparam_save = hal_sp_save;
    h->running_slot = hal_running_slot;
    h->upgrade_reboot = hal_upgrade_reboot;
    h->restart = hal_restart;
    h->now_ms = hal_now;
    h->timer = hal_timer;
    h->tcp_connect = hal_connect;
    h->tcp_send = hal_send;
    h->tcp_close = hal_close;
    h->random = hal_random;
    h->event = hal_event;
    h->log = hal_log;
}

int fotasim_esp_init(struct fotasim *s, struct fotasim_dev *d, int idx, const char *devkey,
                     const uint8_t *keysector)
{
    struct fotadev_layout lay;
    struct fotasim_esp *e;
    int rc;

    if ((rc = fotadev_layout_get((unsigned)s->o.map, &lay)) < 0 ||
        (rc = fotasim_dev_init(s, d, idx, &fotasim_esp_fw, lay.flash_size)) < 0)
        return rc;
    e = esp_of(d);
    e->lay = lay;
    if ((rc = fotasim_flash_program_shared(&d->flash, lay.slot_addr[0], s->factory,
                                           (uint32_t)((s->factory_len + 4095) & ~(size_t)4095))) < 0 ||
        (rc = fotasim_dev_load_flash(d)) < 0 || (rc = esp_keys(d, devkey, keysector)) < 0)
        return rc;
    e->bssid[0] = 0x18;
    e->bssid[1] = 0xfe;
    e->bssid[2] = 0x34;
    e->bssid[3] = (uint8_t)s->o.seed;
    e->bssid[4] = (uint8_t)(idx >> 8);
    e->bssid[5] = (uint8_t)idx;
    esp_hal(d);
    return 0;
}
