/* devchan_handle_datapoint.c - D8, POST /v1/datastreams/NAME/datapoint/: a
 * sensor reading becomes a message "datapoint:NAME" whose body is the frame's
 * body (decoded once by devproto, without the key in its meta). Sensors send
 * it straight after connecting, with their key (espressif-protocol §2.7), so
 * it also brings a connection online. */
#include "devchan_int.h"

#include <stdio.h>

#include "fota_str.h"
#include "log.h"

void fota_devchan_handle_datapoint(struct fota_dconn *c, const struct fota_devproto_frame *f)
{
    if (c->online && !fota_devchan_conn_same_key(c, f)) {
        fota_devchan_conn_refuse(c, 403, "unknown key", "key differs from the identified one");
        return;
    }
    if (!c->online) {
        struct fota_key k;
        if (fota_devchan_conn_auth(c, f, &k) < 0) {
            fota_devchan_conn_refuse(c, 403, "unknown key", "datapoint with an unknown key");
            return;
        }
        if (fota_devchan_conn_online(c, &k, NULL))
            fota_devchan_kick_later(c->ch, c->device_id);
    }
    struct fota_message m = { 0 };
    m.product_id = c->product_id;
    m.device_id = c->device_id;
    snprintf(m.action, sizeof m.action, "datapoint:%.37s", f->stream);
    fota_str_copy(m.body, sizeof m.body, f->body);
    int rc = fota_server_publish_message(c->ch->srv, &m);
    if (rc < 0 && rc != FOTA_ENOSPC)   /* a full disk: the store says so once a second */
        FOTA_WARN("datapoint not stored conn=%llu dev=%lld", (unsigned long long)c->id,
                  (long long)c->device_id);
    char out[96];
    fota_devchan_conn_send(c, out,
                           fota_devproto_reply_datapoint(out, sizeof out, f->has_nonce, f->nonce));
}
