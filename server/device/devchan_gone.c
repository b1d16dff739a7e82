/* devchan_gone.c - what the device channel does when the REST API deletes
 * things: a deleted device's connections are closed at once (its key no
 * longer exists, so it cannot come back), and a release that a running bulk
 * upgrade still pushes cannot be deleted. Main loop thread only. */
#include <string.h>

#include "devchan_gone.h"
#include "devchan_int.h"
#include "rpc_fanout_int.h"
#include "server.h"

static int device_gone(void *ud, int64_t device_id)
{
    struct fota_devchan *ch = ud;
    int closed = 0;

    /* Every connection that proved this device's key, identified or not;
     * deletion is rare, so a walk of the list is fine. */
    for (struct fota_dconn *c = ch->conns; c; c = c->next) {
        if (c->device_id != device_id || c->closing)
            continue;
        fota_dconn_refuse(c, 403, "device deleted", "device deleted");
        closed++;
    }
    return closed;   /* the API logs the deletion with this count */
}

static int64_t release_busy(void *ud, int64_t product_id, const char *version)
{
    struct fota_devchan *ch = ud;

    if (!ch->fanout)
        return 0;
    for (const struct job *j = ch->fanout->jobs; j; j = j->next) {
        int running = !j->interrupted && j->succeeded + j->failed + j->timed_out < j->n;
        if (running && j->product_id == product_id && strcmp(j->version, version) == 0)
            return j->id;
    }
    return 0;
}

void fota_devchan_gone_hooks(struct fota_devchan *ch, int on)
{
    struct fota_server *srv = ch->srv;

    if (on)
        fota_server_set_device_gone_hook(srv, device_gone, release_busy, ch);
    else if (srv->gone_ud == ch)
        fota_server_set_device_gone_hook(srv, NULL, NULL, NULL);
}
