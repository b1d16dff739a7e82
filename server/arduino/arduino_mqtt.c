/* arduino_mqtt.c - what a Tasmota device says about its upgrade over MQTT
 * (server/mqtt/ hears it): the version it runs after a boot (INFO1, or the
 * answer to Status 2) confirms the upgrade it was asked for, whichever comes
 * first of that and a confirming check-in; "Failed ..." on its UPGRADE topic
 * ends it. The same records as a check-in (arduino_track.c). Each call
 * makes store calls: server/mqtt/ makes it in a store job (store_exec.h, its
 * lane `mqtt`), never on a loop. */
#include <stdlib.h>
#include <string.h>

#include "arduino_int.h"
#include "clock.h"
#include "fota_str.h"
#include "log.h"
#include "xmalloc.h"

/* The device and its product as a check-in would see them. 0, FOTA_ENOENT
 * (no such arduino device, or the module is not running) or the store's error. */
static int visit_load(struct fota_server *srv, int64_t device_id, struct fota_arduino_visit *v)
{
    struct fota_store *st = srv->store;
    int rc;

    v->ctx = fota_server_module_state(srv, &fota_arduino_module);
    if (!v->ctx)
        return FOTA_ENOENT;
    v->now = fota_clock_wall_s();
    fota_arduino_batch_sync(v->ctx, device_id); /* its download and reports, written */
    rc = st->ops->device_get(st, device_id, &v->device);
    if (rc == 0)
        rc = st->ops->arduino_device_get(st, device_id, &v->adev);
    if (rc == 0)
        rc = st->ops->product_head(st, v->device.product_id, &v->product);
    if (rc == 0)
        rc = st->ops->arduino_product_get(st, v->device.product_id, &v->ap);
    return rc;
}

/* The version of the upgrade open for the device (its tracking, else its
 * open command) into v->adev.target; 0 when none is open. */
static int open_target(struct fota_arduino_visit *v)
{
    char cmdv[FOTA_VERSION_MAX] = "";
    int64_t cmd = 0;

    if (v->adev.target[0])
        return 1;
    if (fota_arduino_open_upgrade(v->ctx->srv->store, v->device.id, &cmd, cmdv, sizeof cmdv) != 0)
        return 0;
    fota_str_copy(v->adev.target, sizeof v->adev.target, cmdv);
    return 1;
}

int fota_arduino_mqtt_device(struct fota_server *srv, int64_t product_id, const char *mac,
                             int64_t *device_id)
{
    struct fota_store *st = srv->store;
    struct fota_arduino_device *a = fota_xcalloc(1, sizeof(*a));
    struct fota_device d = {0};
    int rc = st->ops->arduino_device_find(st, product_id, mac, NULL, a);

    if (rc == FOTA_ENOENT) {
        d.product_id = product_id;
        fota_str_copy(d.name, sizeof d.name, mac);
        for (size_t i = 0; mac[i] && i + 1 < sizeof d.bssid; i++)
            d.bssid[i] = (char)(mac[i] >= 'A' && mac[i] <= 'F' ? mac[i] - 'A' + 'a' : mac[i]);
        memset(a, 0, sizeof *a);
        a->chip_id = -1;
        fota_str_copy(a->sta_mac, sizeof a->sta_mac, mac);
        rc = st->ops->arduino_device_register(st, &d, a);
        if (rc == 0)
            FOTA_INFO("arduino device registered dev=%lld product=%lld name=%s (over MQTT)",
                      (long long)d.id, (long long)product_id, d.name);
        else if (rc == FOTA_EEXIST) /* a check-in registered it meanwhile */
            rc = st->ops->arduino_device_find(st, product_id, mac, NULL, a);
    }
    if (rc == 0)
        *device_id = a->device_id;
    else
        FOTA_WARN("arduino device by MAC failed product=%lld mac=%s error=%s",
                  (long long)product_id, mac, fota_errname(rc));
    free(a);
    return rc;
}

int fota_arduino_upgrade_open(struct fota_server *srv, int64_t device_id)
{
    struct fota_arduino_visit *v = fota_xcalloc(1, sizeof(*v));
    int open = visit_load(srv, device_id, v) == 0 && open_target(v);
    free(v);
    return open;
}

int fota_arduino_mqtt_version(struct fota_server *srv, int64_t device_id, const char *version)
{
    struct fota_arduino_visit *v = fota_xcalloc(1, sizeof(*v));
    int out = FOTA_ARDUINO_OUT_NONE, open, m;
    char base[FOTA_VERSION_MAX];

    if (!version || !version[0] || visit_load(srv, device_id, v) != 0)
        goto done;
    open = open_target(v);
    m = fota_arduino_version_match(version, open ? v->adev.target : NULL);
    if (m == FOTA_ARDUINO_V_TARGET) {
        fota_arduino_upgrade_success(v, "version", version);
        out = FOTA_ARDUINO_OUT_SUCCESS;
    } else if (m == FOTA_ARDUINO_V_MINIMAL) {
        if (open)
            FOTA_INFO("arduino upgrade step dev=%lld target=%s runs=%s", (long long)device_id,
                      v->adev.target, version);
        out = FOTA_ARDUINO_OUT_STEP;
    } else {
        /* not what it was asked for (or nothing was): what it runs, quietly */
        fota_arduino_version_base(version, base, sizeof base);
        if (base[0] && strcmp(v->device.rom_version, base) != 0) {
            fota_str_copy(v->device.rom_version, sizeof v->device.rom_version, base);
            if (srv->store->ops->device_update(srv->store, &v->device, FOTA_DEV_F_ROM_VERSION))
                FOTA_WARN("rom_version not stored dev=%lld", (long long)device_id);
        }
    }
done:
    free(v);
    return out;
}

int fota_arduino_mqtt_failed(struct fota_server *srv, int64_t device_id, const char *text)
{
    struct fota_arduino_visit *v = fota_xcalloc(1, sizeof(*v));
    char reason[256];
    int ended = 0;

    if (visit_load(srv, device_id, v) == 0 && open_target(v)) {
        fota_str_copy(reason, sizeof reason, "Tasmota's upgrade loop ended: ");
        fota_str_copy(reason + strlen(reason), sizeof reason - strlen(reason),
                      text && text[0] ? text : "Failed");
        fota_arduino_upgrade_failed(v, reason);
        ended = 1;
    }
    free(v);
    return ended;
}
