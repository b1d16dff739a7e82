/* devchan_handle_identify.c - D2, GET /v1/device/identify/: a device that
 * was activated before proves its master key on a new connection; the reply
 * echoes its nonce and carries "device", and the connection goes online
 * (queued commands follow). An unknown key, or another device's key on a
 * connection already identified, closes the connection. A key the key
 * cache does not hold is looked up by a store job, the connection's
 * reading paused until its answer. */
#include "devchan_int.h"

#include <stdlib.h>
#include <string.h>

#include "fota_str.h"

struct identify_job {
    struct fota_devchan_job j;
    char key[FOTA_DEVPROTO_KEY_MAX];
    int64_t nonce;
    int has_nonce;
    int rc;
    struct fota_key k;
};

static void identified(struct fota_dconn *c, int rc, const struct fota_key *k, int has_nonce,
                       int64_t nonce)
{
    if (rc < 0) {
        fota_devchan_conn_refuse(c, 403, "unknown key", "identify with an unknown key");
        return;
    }
    if (fota_devchan_conn_switch_refused(c, k))
        return;
    char out[256];
    int n = fota_devproto_reply_identify(out, sizeof out, has_nonce, nonce, k->device_id, NULL);
    fota_devchan_conn_send(c, out, n);
    if (fota_devchan_conn_online(c, k, NULL))
        fota_devchan_kick_later(c->ch, c->device_id);
}

static void identify_run(struct fota_store *st, struct fota_devchan_job *j)
{
    struct identify_job *p = (struct identify_job *)j;
    (void)st;
    p->rc = fota_devchan_key_check(j->srv, p->key, &p->k);
}

static void identify_done(struct fota_devchan_job *j, struct fota_dconn *c)
{
    struct identify_job *p = (struct identify_job *)j;
    if (c && !c->closing)
        identified(c, p->rc, &p->k, p->has_nonce, p->nonce);
    free(p);
}

void fota_devchan_handle_identify(struct fota_dconn *c, const struct fota_devproto_frame *f)
{
    struct fota_key k;
    int rc = fota_devchan_conn_auth(c, f, &k);
    if (rc != FOTA_EAGAIN) {
        identified(c, rc, &k, f->has_nonce, f->nonce);
        return;
    }
    struct identify_job *p = fota_devchan_job_new(c->ch, sizeof *p);
    p->j.run = identify_run;
    p->j.done = identify_done;
    fota_str_copy(p->key, sizeof p->key, f->key);
    p->nonce = f->nonce;
    p->has_nonce = f->has_nonce;
    if (fota_devchan_job_submit(c->ch, c, c->device_id ? c->device_id : (int64_t)c->id, &p->j) < 0) {
        free(p);
        fota_devchan_conn_refuse(c, 503, "store busy", "identify while the store is busy");
    }
}
