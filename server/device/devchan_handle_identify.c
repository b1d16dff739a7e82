/* devchan_handle_identify.c - D2, GET /v1/device/identify/: a device that
 * was activated before proves its master key on a new connection; the reply
 * echoes its nonce and carries "device", and the connection goes online
 * (queued commands follow). An unknown key, or another device's key on a
 * connection already identified, closes the connection. */
#include "devchan_int.h"

void fota_devchan_handle_identify(struct fota_dconn *c, const struct fota_devproto_frame *f)
{
    struct fota_key k;
    if (fota_devchan_conn_auth(c, f, &k) < 0) {
        fota_devchan_conn_refuse(c, 403, "unknown key", "identify with an unknown key");
        return;
    }
    if (fota_devchan_conn_switch_refused(c, &k))
        return;
    char out[256];
    int n = fota_devproto_reply_identify(out, sizeof out, f->has_nonce, f->nonce, k.device_id, NULL);
    fota_devchan_conn_send(c, out, n);
    if (fota_devchan_conn_online(c, &k, NULL))
        fota_devchan_kick_later(c->ch, c->device_id);
}
