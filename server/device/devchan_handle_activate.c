/* devchan_handle_activate.c - D1, POST /v1/device/activate/: a device proves
 * its master key, its row records the activation (and the bssid and version
 * it sent), the reply carries "activate_status": 1 and the connection goes
 * online. An unknown key gets "activate_status": 0 and the connection closes,
 * as does another device's key on a connection already identified. */
#include "devchan_int.h"

#include <string.h>

#include "clock.h"
#include "devcache.h"
#include "fota_str.h"
#include "log.h"

void fota_devchan_handle_activate(struct fota_dconn *c, const struct fota_devproto_frame *f)
{
    struct fota_server *srv = c->ch->srv;
    struct fota_key k;
    char out[256];
    if (fota_devchan_conn_auth(c, f, &k) < 0) {
        int n = fota_devproto_reply_activate_refused(out, sizeof out, f->nonce);
        fota_devchan_conn_close_with(c, out, n, 403, "activation with an unknown key");
        return;
    }
    if (fota_devchan_conn_switch_refused(c, &k))
        return;
    struct fota_device d;
    if (fota_devcache_get(srv->devcache, srv->store, k.device_id, &d) < 0) {
        fota_devchan_conn_refuse(c, 403, "unknown key", "key without its row");
        return;
    }
    /* Only what changes is written: a device that activates again with the
     * same bssid and version (stock firmware after a reset of its flag) costs
     * no write, and its cached row stays valid for the next time. */
    unsigned fields = 0;
    char bssid[sizeof d.bssid], version[sizeof d.rom_version];
    if (!d.activated) {
        d.activated = 1;
        d.activated_at = fota_clock_wall_s();
        fields |= FOTA_DEV_F_ACTIVATION;
    }
    fota_str_copy(bssid, sizeof bssid, f->bssid);
    if (bssid[0] && strcmp(bssid, d.bssid) != 0) {
        memcpy(d.bssid, bssid, sizeof bssid);
        fields |= FOTA_DEV_F_BSSID;
    }
    fota_str_copy(version, sizeof version, f->rom_version);
    if (version[0] && strcmp(version, d.rom_version) != 0) {
        memcpy(d.rom_version, version, sizeof version);
        fields |= FOTA_DEV_F_ROM_VERSION;
    }
    int rc = fields ? srv->store->ops->device_update(srv->store, &d, fields) : 0;
    if (rc < 0)
        FOTA_ERROR("activation not stored conn=%llu dev=%lld error=%s", (unsigned long long)c->id,
                   (long long)d.id, fota_errname(rc));
    char vq[80];
    FOTA_INFO("device activated conn=%llu dev=%lld bssid=%s rom_version=%s", (unsigned long long)c->id,
              (long long)d.id, d.bssid[0] ? d.bssid : "-",
              fota_log_quote(d.rom_version, vq, sizeof vq));
    int n = fota_devproto_reply_activate(out, sizeof out, f->has_nonce ? f->nonce : 0, d.id,
                                         d.rom_version);
    fota_devchan_conn_send(c, out, n);
    if (fota_devchan_conn_online(c, &k, f->rom_version[0] ? f->rom_version : NULL))
        fota_devchan_kick_later(c->ch, c->device_id);
}
