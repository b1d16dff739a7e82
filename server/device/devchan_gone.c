/* devchan_gone.c - the device channel's side of a device's deletion (hub
 * topic DEVICE_DELETED): its connections are closed at once (its key no
 * longer exists, so it cannot come back) and an RPC waiting for its reply is
 * answered (410). Main loop thread only. */
#include "devchan_gone.h"
#include "devchan_int.h"
#include "hub.h"
#include "server.h"

static int64_t device_gone(void *ud, const void *event)
{
    const struct fota_hub_device_deleted *ev = event;
    struct fota_devchan *ch = ud;
    int closed = 0;

    /* An RPC waiting for this device's reply gets its answer now (its
     * command row is gone with the device), not at its timeout. */
    fota_devchan_wait_wake_device(ch, ev->device_id, FOTA_DEVCHAN_GONE);
    /* Every connection that proved this device's key, identified or not;
     * deletion is rare, so a walk of the list is fine. */
    for (struct fota_dconn *c = ch->conns; c; c = c->next) {
        if (c->device_id != ev->device_id || c->closing)
            continue;
        fota_devchan_conn_refuse(c, 403, "device deleted", "device deleted");
        closed++;
    }
    *ev->closed += closed;   /* the API logs the deletion with this count */
    return 0;
}

void fota_devchan_gone_hooks(struct fota_devchan *ch, int on)
{
    if (on)
        fota_hub_subscribe(ch->srv, FOTA_HUB_DEVICE_DELETED, device_gone, ch);
    else
        fota_hub_unsubscribe(ch->srv, FOTA_HUB_DEVICE_DELETED, device_gone, ch);
}
