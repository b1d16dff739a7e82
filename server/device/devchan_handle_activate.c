/* devchan_handle_activate.c - D1, POST /v1/device/activate/: a device proves
 * its master key, its row records the activation (and the bssid and version
 * it sent), the reply carries "activate_status": 1 and the connection goes
 * online. An unknown key gets "activate_status": 0 and the connection closes,
 * as does another device's key on a connection already identified.
 * A device whose key and row the caches hold and that changes nothing is
 * answered at once; anything else (a lookup, a write) is one store job, the
 * connection's reading paused until its answer. */
#include "devchan_int.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "devcache.h"
#include "fota_str.h"
#include "log.h"

struct activate_job {
    struct fota_devchan_job j;
    char key[FOTA_DEVPROTO_KEY_MAX];
    char bssid[FOTA_NAME_MAX], version[FOTA_VERSION_MAX];
    int64_t nonce;
    int has_nonce;
    int have_key;                      /* k is the cache's answer already */
    int rc;                            /* FOTA_EAUTH: unknown key; FOTA_ENOENT: no row */
    int store_rc;                      /* device_update's */
    struct fota_key k;
    struct fota_device d;
};

/* The fields of d that the frame changes (d updated in place). Only what
 * changes is written: a device that activates again with the same bssid and
 * version (stock firmware after a reset of its flag) costs no write, and its
 * cached row stays valid for the next time. */
static unsigned changes(struct fota_device *d, const char *bssid, const char *version)
{
    unsigned fields = 0;
    if (!d->activated) {
        d->activated = 1;
        d->activated_at = fota_clock_wall_s();
        fields |= FOTA_DEV_F_ACTIVATION;
    }
    if (bssid[0] && strcmp(bssid, d->bssid) != 0) {
        fota_str_copy(d->bssid, sizeof d->bssid, bssid);
        fields |= FOTA_DEV_F_BSSID;
    }
    if (version[0] && strcmp(version, d->rom_version) != 0) {
        fota_str_copy(d->rom_version, sizeof d->rom_version, version);
        fields |= FOTA_DEV_F_ROM_VERSION;
    }
    return fields;
}

static void activated(struct fota_dconn *c, struct activate_job *p)
{
    char out[256];
    if (p->rc == FOTA_EAUTH) {
        int n = fota_devproto_reply_activate_refused(out, sizeof out, p->nonce);
        fota_devchan_conn_close_with(c, out, n, 403, "activation with an unknown key");
        return;
    }
    if (fota_devchan_conn_switch_refused(c, &p->k))
        return;
    if (p->rc < 0) {
        fota_devchan_conn_refuse(c, 403, "unknown key", "key without its row");
        return;
    }
    struct fota_device *d = &p->d;
    if (p->store_rc < 0)
        FOTA_ERROR("activation not stored conn=%llu dev=%lld error=%s", (unsigned long long)c->id,
                   (long long)d->id, fota_errname(p->store_rc));
    char vq[80];
    FOTA_INFO("device activated conn=%llu dev=%lld bssid=%s rom_version=%s", (unsigned long long)c->id,
              (long long)d->id, d->bssid[0] ? d->bssid : "-",
              fota_log_quote(d->rom_version, vq, sizeof vq));
    int n = fota_devproto_reply_activate(out, sizeof out, p->has_nonce ? p->nonce : 0, d->id,
                                         d->rom_version);
    fota_devchan_conn_send(c, out, n);
    if (fota_devchan_conn_online(c, &p->k, p->version[0] ? p->version : NULL))
        fota_devchan_kick_later(c->ch, c->device_id);
}

/* On a store thread: the key, the row and its write. */
static void activate_run(struct fota_store *st, struct fota_devchan_job *j)
{
    struct activate_job *p = (struct activate_job *)j;
    struct fota_server *srv = j->srv;
    if (!p->have_key && fota_devchan_key_check(srv, p->key, &p->k) < 0) {
        p->rc = FOTA_EAUTH;
        return;
    }
    if (fota_devcache_get(srv->devcache, st, p->k.device_id, &p->d) < 0) {
        p->rc = FOTA_ENOENT;
        return;
    }
    unsigned fields = changes(&p->d, p->bssid, p->version);
    if (fields)
        p->store_rc = st->ops->device_update(st, &p->d, fields);
}

static void activate_done(struct fota_devchan_job *j, struct fota_dconn *c)
{
    if (c && !c->closing)
        activated(c, (struct activate_job *)j);
    free(j);
}

void fota_devchan_handle_activate(struct fota_dconn *c, const struct fota_devproto_frame *f)
{
    struct fota_server *srv = c->ch->srv;
    struct activate_job *p = fota_devchan_job_new(c->ch, sizeof *p);
    p->j.run = activate_run;
    p->j.done = activate_done;
    fota_str_copy(p->key, sizeof p->key, f->key);
    fota_str_copy(p->bssid, sizeof p->bssid, f->bssid);
    fota_str_copy(p->version, sizeof p->version, f->rom_version);
    p->nonce = f->nonce;
    p->has_nonce = f->has_nonce;
    int rc = fota_devchan_conn_auth(c, f, &p->k);
    if (rc == FOTA_EAUTH) {
        p->rc = rc;
        activated(c, p);
        free(p);
        return;
    }
    p->have_key = rc == 0;
    if (p->have_key && fota_devcache_peek(srv->devcache, srv->store, p->k.device_id, &p->d) == 0 &&
        changes(&p->d, p->bssid, p->version) == 0) {
        activated(c, p);   /* cached, and nothing to write */
        free(p);
        return;
    }
    int64_t key = p->have_key ? p->k.device_id : c->device_id ? c->device_id : (int64_t)c->id;
    if (fota_devchan_job_submit(c->ch, c, key, &p->j) < 0) {
        free(p);
        fota_devchan_conn_refuse(c, 503, "store busy", "activation while the store is busy");
    }
}
