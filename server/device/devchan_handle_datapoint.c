/* devchan_handle_datapoint.c - D8, POST /v1/datastreams/NAME/datapoint/: a
 * sensor reading becomes a message "datapoint:NAME" whose body is the frame's
 * body (decoded once by devproto, without the key in its meta). Sensors send
 * it straight after connecting, with their key (espressif-protocol §2.7), so
 * it also brings a connection online. The message is stored by a store job
 * (with the key's lookup when the key cache does not hold it); the
 * connection reads on, and is answered, after it. */
#include "devchan_int.h"

#include <stdio.h>
#include <stdlib.h>

#include "fota_str.h"
#include "log.h"

struct datapoint_job {
    struct fota_devchan_job j;
    char key[FOTA_DEVPROTO_KEY_MAX];   /* "" when the connection is online or the key known */
    int64_t nonce;
    int has_nonce;
    int rc;                            /* FOTA_EAUTH: unknown key */
    int store_rc;
    struct fota_key k;
    struct fota_message m;
};

static void datapoint_run(struct fota_store *st, struct fota_devchan_job *j)
{
    struct datapoint_job *p = (struct datapoint_job *)j;
    (void)st;
    if (p->key[0] && (p->rc = fota_devchan_key_check(j->srv, p->key, &p->k)) < 0)
        return;
    if (p->key[0]) {
        p->m.product_id = p->k.product_id;
        p->m.device_id = p->k.device_id;
    }
    p->store_rc = fota_server_publish_message(j->srv, &p->m);
}

static void datapoint_done(struct fota_devchan_job *j, struct fota_dconn *c)
{
    struct datapoint_job *p = (struct datapoint_job *)j;
    if (!c || c->closing) {
        free(p);
        return;
    }
    if (p->rc < 0) {
        fota_devchan_conn_refuse(c, 403, "unknown key", "datapoint with an unknown key");
        free(p);
        return;
    }
    if (p->key[0] && fota_devchan_conn_online(c, &p->k, NULL))
        fota_devchan_kick_later(c->ch, c->device_id);
    if (p->store_rc < 0 && p->store_rc != FOTA_ENOSPC)   /* a full disk: the store says so */
        FOTA_WARN("datapoint not stored conn=%llu dev=%lld", (unsigned long long)c->id,
                  (long long)c->device_id);
    char out[96];
    fota_devchan_conn_send(c, out,
                           fota_devproto_reply_datapoint(out, sizeof out, p->has_nonce, p->nonce));
    free(p);
}

void fota_devchan_handle_datapoint(struct fota_dconn *c, const struct fota_devproto_frame *f)
{
    if (FOTA_DCONN_IDENTIFIED(c) && !fota_devchan_conn_same_key(c, f)) {
        fota_devchan_conn_refuse(c, 403, "unknown key", "key differs from the identified one");
        return;
    }
    struct datapoint_job *p = fota_devchan_job_new(c->ch, sizeof *p);
    p->j.run = datapoint_run;
    p->j.done = datapoint_done;
    p->nonce = f->nonce;
    p->has_nonce = f->has_nonce;
    if (!FOTA_DCONN_IDENTIFIED(c)) {
        int rc = fota_devchan_conn_auth(c, f, &p->k);
        if (rc == FOTA_EAUTH) {
            free(p);
            fota_devchan_conn_refuse(c, 403, "unknown key", "datapoint with an unknown key");
            return;
        }
        if (rc == FOTA_EAGAIN)
            fota_str_copy(p->key, sizeof p->key, f->key);
        else if (fota_devchan_conn_online(c, &p->k, NULL))
            fota_devchan_kick_later(c->ch, c->device_id);
    }
    p->m.product_id = c->product_id;
    p->m.device_id = c->device_id;
    snprintf(p->m.action, sizeof p->m.action, "datapoint:%.37s", f->stream);
    fota_str_copy(p->m.body, sizeof p->m.body, f->body);
    int64_t key = c->device_id ? c->device_id : (int64_t)c->id;
    if (fota_devchan_job_submit(c->ch, c, key, &p->j) < 0) {
        free(p);
        fota_devchan_conn_refuse(c, 503, "store busy", "datapoint while the store is busy");
    }
}
