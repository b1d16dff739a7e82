/* devchan_gone.c - what the device channel does when the REST API deletes
 * things: a deleted device's connections are closed at once (its key no
 * longer exists, so it cannot come back), an RPC waiting for its reply is
 * answered (410) and its bulk-upgrade members end as "deleted"; a release
 * that a running bulk upgrade still pushes cannot be deleted, nor a device
 * whose command row a job that just started has not written yet. The bulk
 * upgrade engine is read here (rpc_fanout_int.h) and told through
 * fota_fanout_device_gone. Main loop thread only. */
#include <stdlib.h>
#include <string.h>

#include "devchan_gone.h"
#include "devchan_int.h"
#include "hub.h"
#include "log.h"
#include "rpc_fanout.h"
#include "rpc_fanout_int.h"
#include "server.h"

static int64_t device_gone(void *ud, const void *event)
{
    const struct fota_hub_device_deleted *ev = event;
    struct fota_devchan *ch = ud;
    int64_t device_id = ev->device_id;
    int closed = 0;

    /* An RPC waiting for this device's reply gets its answer now (its
     * command row is gone with the device), not at its timeout. */
    fota_devchan_wait_wake_device(ch, device_id, FOTA_DEVCHAN_GONE);
    fota_fanout_device_gone(ch->fanout, device_id);
    /* Every connection that proved this device's key, identified or not;
     * deletion is rare, so a walk of the list is fine. */
    for (struct fota_dconn *c = ch->conns; c; c = c->next) {
        if (c->device_id != device_id || c->closing)
            continue;
        fota_devchan_conn_refuse(c, 403, "device deleted", "device deleted");
        closed++;
    }
    *ev->closed += closed;   /* the API logs the deletion with this count */
    return 0;
}

static int64_t release_busy(void *ud, const void *event)
{
    const struct fota_hub_release *ev = event;
    struct fota_devchan *ch = ud;
    int64_t product_id = ev->product_id;
    const char *version = ev->version;

    if (!ch->fanout)
        return 0;
    for (const struct job *j = ch->fanout->jobs; j; j = j->next) {
        int running = !j->interrupted && fota_fanout__ended(j) < j->n;
        if (!running || j->product_id != product_id || strcmp(j->version, version) != 0)
            continue;
        for (size_t i = 0; i < j->n; i++)
            if (j->m[i].state < M_DONE)   /* open (a deleted device's member has ended) */
                return j->id;
    }
    return 0;
}

/* A job whose rows are not written yet would fail to write them all
 * (command_create_many refuses a missing device): the device waits. */
static int64_t device_busy(void *ud, const void *event)
{
    struct fota_devchan *ch = ud;
    int64_t device_id = ((const struct fota_hub_device *)event)->device_id;

    if (!ch->fanout)
        return 0;
    for (const struct job *j = ch->fanout->jobs; j; j = j->next) {
        if (j->interrupted || !j->rows_pending)
            continue;
        for (size_t i = 0; i < j->n; i++)
            if (j->m[i].device_id == device_id && j->m[i].cmd_id == 0)
                return j->id;
    }
    return 0;
}

void fota_devchan_gone_hooks(struct fota_devchan *ch, int on)
{
    struct fota_server *srv = ch->srv;

    if (on) {
        fota_hub_subscribe(srv, FOTA_HUB_DEVICE_DELETED, device_gone, ch);
        fota_hub_subscribe(srv, FOTA_HUB_RELEASE_BUSY, release_busy, ch);
        fota_hub_subscribe(srv, FOTA_HUB_DEVICE_BUSY, device_busy, ch);
        return;
    }
    fota_hub_unsubscribe(srv, FOTA_HUB_DEVICE_DELETED, device_gone, ch);
    fota_hub_unsubscribe(srv, FOTA_HUB_RELEASE_BUSY, release_busy, ch);
    fota_hub_unsubscribe(srv, FOTA_HUB_DEVICE_BUSY, device_busy, ch);
}
