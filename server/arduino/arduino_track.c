/* arduino_track.c - the devices behind Arduino-core requests: found by
 * their STA MAC (or the URL's name) and registered when new, their
 * x-ESP8266-* report recorded, their target chosen (a queued sys_upgrade,
 * else the product's current release), and the upgrade they were served
 * judged at the next check-in: the target's image in any flash mode is a
 * success, the old image confirm_after seconds after a whole download a
 * failure (§6.3, §10.5). Synchronous store code: a check-in runs it in a
 * store job (arduino_serve.c), the loop's caches read through the copies the
 * job was given (struct fota_arduino_offloop); only the cached check-in
 * (fota_arduino_visit_cached) runs on a loop, and it calls no store op. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "arduino_img.h"
#include "arduino_int.h"
#include "clock.h"
#include "fota_str.h"
#include "log.h"
#include "loop.h"
#include "store_exec.h"
#include "xmalloc.h"

/* ---- the hub (main loop only): outcomes, downloads, presence */

struct hub_job {
    struct fota_server *srv;
    enum fota_hub_topic topic;
    int64_t device_id, product_id, nonce;
    int ok;
    char version[FOTA_VERSION_MAX];
    char target[FOTA_VERSION_MAX];
};

static void hub_run(void *arg, int cancelled)
{
    struct hub_job *j = arg;
    if (!cancelled) {
        if (j->topic == FOTA_HUB_DEVICE_REPORT) {
            struct fota_hub_report ev = {.device_id = j->device_id, .ok = j->ok,
                                         .version = j->version, .target = j->target};
            fota_hub_publish(j->srv, FOTA_HUB_DEVICE_REPORT, &ev);
        } else if (j->topic == FOTA_HUB_DEVICE_REPLY) {
            json_t *res = json_pack("{s:s, s:s}", "action", "download", "version", j->target);
            struct fota_hub_reply ev = {.device_id = j->device_id, .nonce = j->nonce,
                                        .status = 200, .result = res};
            fota_hub_publish(j->srv, FOTA_HUB_DEVICE_REPLY, &ev);
            json_decref(res);
        } else {
            struct fota_hub_presence ev = {.device_id = j->device_id,
                                           .product_id = j->product_id};
            fota_hub_publish(j->srv, FOTA_HUB_DEVICE_ONLINE, &ev);
        }
    }
    free(j);
}

static void hub_post(struct fota_server *srv, struct hub_job *j)
{
    j->srv = srv;
    if (fota_loop_current() == srv->loops[0])
        hub_run(j, 0); /* on the main loop already (MQTT reports) */
    else if (fota_loop_post(srv->loops[0], hub_run, j) != 0)
        free(j);
}

/* Tells the hub (rollouts) how the device's upgrade ended. */
static void report_post(struct fota_server *srv, int64_t device_id, int ok, const char *version,
                        const char *target)
{
    struct hub_job *j = fota_xcalloc(1, sizeof(*j));
    j->topic = FOTA_HUB_DEVICE_REPORT;
    j->device_id = device_id;
    j->ok = ok;
    fota_str_copy(j->version, sizeof j->version, version);
    fota_str_copy(j->target, sizeof j->target, target);
    hub_post(srv, j);
}

/* A pull-based device's acknowledgement: it downloaded the image its
 * command (nonce) named. */
static void taken_post(struct fota_server *srv, int64_t device_id, int64_t nonce,
                       const char *version)
{
    struct hub_job *j = fota_xcalloc(1, sizeof(*j));
    j->topic = FOTA_HUB_DEVICE_REPLY;
    j->device_id = device_id;
    j->nonce = nonce;
    fota_str_copy(j->target, sizeof j->target, version);
    hub_post(srv, j);
}

static void online_post(struct fota_server *srv, int64_t device_id, int64_t product_id)
{
    struct hub_job *j = fota_xcalloc(1, sizeof(*j));
    j->topic = FOTA_HUB_DEVICE_ONLINE;
    j->device_id = device_id;
    j->product_id = product_id;
    hub_post(srv, j);
}

/* ---- releases */

int fota_arduino_rel_load(struct fota_server *srv, int64_t product_id, const char *version,
                          struct fota_arduino_rel *rel, char *changelog, size_t cap)
{
    struct fota_store *st = srv->store;
    struct fota_rom *rom = fota_xmalloc(sizeof(*rom));
    int rc = st->ops->rom_get(st, product_id, version, rom);

    memset(rel, 0, sizeof *rel);
    if (rc == 0) {
        rel->rom_id = rom->id;
        fota_str_copy(rel->version, sizeof rel->version, rom->version);
        if (changelog)
            fota_str_copy(changelog, cap, rom->changelog);
        for (size_t i = 0; i < rom->nfiles && i < FOTA_ROM_MAX_FILES; i++) {
            int k = fota_arduino_kind_of(rom->files[i].name);
            if (k < 0 || k >= FOTA_ARDUINO_K_FILES)
                continue;
            struct fota_arduino_rel_file *f = &rel->f[k];
            if (st->ops->arduino_blob_get(st, rom->files[i].sha256, &f->facts) != 0)
                continue; /* not an arduino file: never served */
            f->present = 1;
            f->file_id = rom->files[i].id;
            f->size = rom->files[i].size;
            fota_str_copy(f->sha256, sizeof f->sha256, rom->files[i].sha256);
        }
    }
    free(rom);
    return rc;
}

static unsigned slot_of(const char *a, int64_t n, unsigned slots)
{
    return fota_str_hash(FOTA_STR_HASH_SEED ^ (uint32_t)n, a) % slots;
}

/* 1 when entry e (may be NULL) holds version for this visit. */
static int rel_holds(const struct fota_arduino_visit *v, const struct fota_arduino_rel_entry *e,
                     const char *version)
{
    return e && v->gen && e->gen == v->gen && e->product_id == v->product.id &&
           strcmp(e->rel.version, version) == 0;
}

/* The entry for version when it holds it for this visit, else NULL: the
 * loop's (*slot: where version goes), or off the loop one copied for the
 * job or read by it (*slot NULL). */
static struct fota_arduino_rel_entry *rel_cached(struct fota_arduino_visit *v, const char *version,
                                                 struct fota_arduino_rel_entry **slot)
{
    struct fota_arduino_rel_entry *e;

    if (!v->al) {
        if (slot)
            *slot = NULL;
        if (!v->off)
            return NULL;
        if (rel_holds(v, v->off->rel_copy, version))
            return v->off->rel_copy;
        for (unsigned i = 0; i < 2; i++)
            if (rel_holds(v, v->off->rel_read[i], version))
                return v->off->rel_read[i];
        return NULL;
    }
    e = &v->al->rels[slot_of(version, v->product.id, FOTA_ARDUINO_REL_SLOTS)];
    if (slot)
        *slot = e;
    return rel_holds(v, e, version) ? e : NULL;
}

/* Off the loop: an entry for a release the job reads, kept in v->off for
 * the continuation while there is room (else *temp: the caller frees it). */
static struct fota_arduino_rel_entry *rel_new(struct fota_arduino_visit *v, int *temp)
{
    struct fota_arduino_rel_entry *e = fota_xmalloc(sizeof(*e));

    e->gen = 0;
    *temp = 1;
    for (unsigned i = 0; v->off && i < 2 && *temp; i++)
        if (!v->off->rel_read[i]) {
            v->off->rel_read[i] = e;
            *temp = 0;
        }
    return e;
}

int fota_arduino_rel_get(struct fota_arduino_visit *v, const char *version,
                         struct fota_arduino_rel *rel, char *changelog, size_t cap)
{
    struct fota_arduino_rel_entry *slot, *e = rel_cached(v, version, &slot);
    int rc, temp = 0;

    if (e) {
        *rel = e->rel;
        if (changelog)
            fota_str_copy(changelog, cap, e->changelog);
        return 0;
    }
    e = slot ? slot : rel_new(v, &temp);
    rc = fota_arduino_rel_load(v->ctx->srv, v->product.id, version, rel, e->changelog,
                               sizeof e->changelog);
    if (rc) {
        e->gen = 0;
    } else {
        if (changelog)
            fota_str_copy(changelog, cap, e->changelog);
        e->rel = *rel;
        e->product_id = v->product.id;
        e->gen = v->gen; /* read before the lookups: a write meanwhile invalidates it */
    }
    if (temp)
        free(e);
    return rc;
}

void fota_arduino_offloop_begin(struct fota_arduino_visit *v, struct fota_arduino_offloop *off,
                                int have_product)
{
    struct fota_arduino_dev_entry *e = NULL;
    struct fota_arduino_rel_entry *re;
    char key[FOTA_NAME_MAX];

    memset(off, 0, sizeof *off);
    if (have_product && fota_arduino_hdrs_is_device(&v->h)) {
        fota_arduino_mac_format(v->h.sta_mac, key);
        e = fota_arduino_cache_find(v, key);
    } else if (have_product && v->name && strlen(v->name) < sizeof key) {
        e = fota_arduino_cache_find(v, v->name);
    }
    if (e) {
        off->dev = *e;
        off->dev_found = 1;
    }
    if (have_product && v->product.current_version[0] &&
        (re = rel_cached(v, v->product.current_version, NULL)) != NULL) {
        off->rel_copy = fota_xmalloc(sizeof(*off->rel_copy));
        *off->rel_copy = *re;
    }
    v->off = off;
    v->al = NULL;
}

void fota_arduino_offloop_end(struct fota_arduino_visit *v)
{
    struct fota_arduino_offloop *o = v->off;

    if (!o)
        return;
    for (unsigned i = 0; i < 2; i++) {
        struct fota_arduino_rel_entry *e = o->rel_read[i];
        if (e && e->gen && v->al)
            v->al->rels[slot_of(e->rel.version, e->product_id, FOTA_ARDUINO_REL_SLOTS)] = *e;
        free(e);
        o->rel_read[i] = NULL;
    }
    free(o->rel_copy);
    o->rel_copy = NULL;
    v->off = NULL;
}

/* The sketch MD5s of rel's full (minimal = 0) or minimal image, or NULL. */
static const char (*image_md5s(const struct fota_arduino_rel *rel, int minimal))[FOTA_ARDUINO_MD5_TEXT]
{
    int k = minimal ? FOTA_ARDUINO_K_MIN : FOTA_ARDUINO_K_BIN;
    if (rel->f[k].present)
        return rel->f[k].facts.sketch_md5;
    if (rel->f[k + 1].present)
        return rel->f[k + 1].facts.sketch_md5;
    return NULL;
}

/* ---- commands */

/* A command state an upgrade is still open in. */
static int command_open(int state)
{
    return state == FOTA_CMD_QUEUED || state == FOTA_CMD_DELIVERED || state == FOTA_CMD_ACKED;
}

int fota_arduino_open_upgrade(struct fota_store *st, int64_t device_id, int64_t *cmd_id,
                              char *version, size_t cap)
{
    struct fota_command *list = NULL;
    size_t n = 0;
    int found = 0;

    if (st->ops->command_list_device(st, device_id, 0, &list, &n) != 0)
        return FOTA_EIO;
    for (size_t i = n; i-- > 0 && !found;) {
        const struct fota_command *c = &list[i];
        if (strcmp(c->action, "sys_upgrade") != 0 || !command_open(c->state))
            continue;
        const char *ver = json_string_value(json_object_get(c->params, "version"));
        if (ver && ver[0]) {
            fota_str_copy(version, cap, ver);
            *cmd_id = c->id;
            found = 1;
        }
    }
    fota_store_command_list_free(list, n);
    return found ? 0 : FOTA_ENOENT;
}

/* Moves the command to state; result (a reference it takes, may be NULL)
 * replaces the stored one. */
static void command_set(struct fota_arduino_ctx *ctx, int64_t cmd_id, int state, json_t *result)
{
    struct fota_store *st = ctx->srv->store;
    struct fota_command c = { 0 };

    if (cmd_id <= 0) {
        json_decref(result);
        return;
    }
    pthread_mutex_lock(&ctx->taken.cmd_mu);
    if (st->ops->command_get(st, cmd_id, &c) != 0) {
        json_decref(result);
        goto out;
    }
    c.state = state;
    c.updated = 0;
    if (result) {
        json_decref(c.result);
        c.result = result;
    }
    if (st->ops->command_update(st, &c) != 0)
        FOTA_WARN("arduino command not updated cmd=%lld", (long long)cmd_id);
out:
    pthread_mutex_unlock(&ctx->taken.cmd_mu);
    fota_store_command_cleanup(&c);
}

/* The open sys_upgrade for version, if the device has one. */
static int64_t command_for(struct fota_store *st, int64_t device_id, const char *version)
{
    int64_t id = 0;
    char v[FOTA_VERSION_MAX];
    if (fota_arduino_open_upgrade(st, device_id, &id, v, sizeof v) == 0 && strcmp(v, version) == 0)
        return id;
    return 0;
}

/* ---- the check-in */

static void mac_text(const uint8_t mac[6], char out[FOTA_ARDUINO_MAC_MAX])
{
    fota_arduino_mac_format(mac, out);
}

/* The report this request makes (fields the headers lack keep the stored
 * ones: an ESPHome device named in its URL sends none). */
static void report_row(const struct fota_arduino_visit *v, struct fota_arduino_device *row)
{
    const struct fota_arduino_hdrs *h = &v->h;

    *row = v->adev;
    row->device_id = v->device.id;
    row->product_id = v->product.id;
    row->last_checkin = v->now;
    if (!h->seen)
        return;
    if (fota_arduino_hdrs_is_device(h))
        mac_text(h->sta_mac, row->sta_mac);
    if (fota_arduino_hdr_has(h, FOTA_ARDUINO_H_AP_MAC))
        mac_text(h->ap_mac, row->ap_mac);
    row->chip_id = fota_arduino_hdr_has(h, FOTA_ARDUINO_H_CHIP_ID) ? (int64_t)h->chip_id : -1;
    row->free_space = h->free_space;
    row->sketch_size = h->sketch_size;
    row->chip_size = h->chip_size;
    fota_str_copy(row->sketch_md5, sizeof row->sketch_md5, h->sketch_md5);
    fota_str_copy(row->sdk_version, sizeof row->sdk_version, h->sdk_version);
    fota_str_copy(row->version, sizeof row->version, h->version);
    fota_str_copy(row->mode, sizeof row->mode, fota_arduino_mode_name(h->mode));
}

/* Clears the device's upgrade in flight. */
static void track_clear(struct fota_arduino_visit *v)
{
    struct fota_store *st = v->ctx->srv->store;
    v->adev.target[0] = '\0';
    v->adev.target_rom_id = 0;
    v->adev.served_at = 0;
    v->adev.served_md5[0] = '\0';
    fota_arduino_served_sync(v->ctx, v->device.id); /* a waiting download must not undo it */
    if (st->ops->arduino_device_track(st, &v->adev) != 0)
        FOTA_WARN("arduino tracking not stored dev=%lld", (long long)v->device.id);
}

/* The version an explicit upgrade installed holds as the device's target
 * until the product's current release changes (fota_arduino_target_of). */
static void pin_set(struct fota_arduino_visit *v, const char *version)
{
    fota_str_copy(v->adev.pin_version, sizeof v->adev.pin_version, version);
    fota_str_copy(v->adev.pin_current, sizeof v->adev.pin_current, v->product.current_version);
}

void fota_arduino_upgrade_success(struct fota_arduino_visit *v, const char *seen, const char *what)
{
    struct fota_server *srv = v->ctx->srv;
    struct fota_store *st = srv->store;
    char pre[FOTA_VERSION_MAX], target[FOTA_VERSION_MAX];
    int64_t cmd;

    v->open_known = 0; /* its command ends here: asked again if needed */
    fota_str_copy(target, sizeof target, v->adev.target);
    fota_str_copy(pre, sizeof pre, v->device.rom_version);
    fota_str_copy(v->device.rom_version, sizeof v->device.rom_version, target);
    if (st->ops->device_update(st, &v->device, FOTA_DEV_F_ROM_VERSION) != 0)
        FOTA_WARN("rom_version not stored dev=%lld", (long long)v->device.id);
    cmd = command_for(st, v->device.id, target);
    if (cmd)
        pin_set(v, target); /* an explicit upgrade: it holds */
    command_set(v->ctx, cmd, FOTA_CMD_DONE, json_pack("{s:s}", "action", "device_upgrade_success"));
    fota_server_publish_json(srv, v->product.id, v->device.id, "device_upgrade_success",
                             json_pack("{s:s, s:s, s:s, s:s}", "pre_rom_version", pre,
                                       "rom_version", target, seen, what, "platform", "arduino"));
    FOTA_INFO("arduino upgrade success dev=%lld product=%lld from=%s to=%s %s=%s",
              (long long)v->device.id, (long long)v->product.id, pre[0] ? pre : "-", target,
              strcmp(seen, "sketch_md5") == 0 ? "md5" : seen, what[0] ? what : "-");
    report_post(srv, v->device.id, 1, target, target);
    track_clear(v);
}

void fota_arduino_upgrade_failed(struct fota_arduino_visit *v, const char *reason)
{
    struct fota_server *srv = v->ctx->srv;
    struct fota_store *st = srv->store;
    char target[FOTA_VERSION_MAX];

    v->open_known = 0; /* its command ends here: asked again if needed */
    fota_str_copy(target, sizeof target, v->adev.target);
    command_set(v->ctx, command_for(st, v->device.id, target), FOTA_CMD_FAILED,
                json_pack("{s:s, s:s}", "action", "device_upgrade_failed", "reason", reason));
    fota_server_publish_json(srv, v->product.id, v->device.id, "device_upgrade_failed",
                             json_pack("{s:s, s:s, s:s, s:s}", "pre_rom_version",
                                       v->device.rom_version, "rom_version", target, "reason",
                                       reason, "platform", "arduino"));
    FOTA_WARN("arduino upgrade failed dev=%lld product=%lld target=%s reason=\"%s\"",
              (long long)v->device.id, (long long)v->product.id, target, reason);
    report_post(srv, v->device.id, 0, v->device.rom_version, target);
    track_clear(v);
}

/* A check-in with the old MD5 confirm_after s after the download. */
static void upgrade_stale(struct fota_arduino_visit *v)
{
    char reason[256];
    snprintf(reason, sizeof reason,
             "the device still runs the image it had when it downloaded %s (sketch MD5 %s) "
             "%" PRId64 " s after the download: it refused the image or did not reboot",
             v->adev.target, v->h.sketch_md5, v->now - v->adev.served_at);
    fota_arduino_upgrade_failed(v, reason);
}

/* Judges the upgrade the device was served against this check-in. */
static void judge(struct fota_arduino_visit *v)
{
    struct fota_arduino_rel *rel;
    enum fota_arduino_outcome out;

    if (!v->adev.target[0] || !v->h.seen)
        return;
    rel = fota_xmalloc(sizeof(*rel));
    if (fota_arduino_rel_get(v, v->adev.target, rel, NULL, 0) != 0) {
        track_clear(v); /* the release is gone */
        free(rel);
        return;
    }
    out = fota_arduino_confirm(&v->adev, &v->h, image_md5s(rel, 0), image_md5s(rel, 1), v->now,
                               v->ap.confirm_after);
    free(rel);
    if (out == FOTA_ARDUINO_OUT_SUCCESS)
        fota_arduino_upgrade_success(v, "sketch_md5", v->h.sketch_md5);
    else if (out == FOTA_ARDUINO_OUT_FAILED)
        upgrade_stale(v);
    else if (out == FOTA_ARDUINO_OUT_STEP)
        FOTA_INFO("arduino upgrade step dev=%lld target=%s runs=minimal", (long long)v->device.id,
                  v->adev.target);
}

/* A name for a device named in its URL: printable ASCII. */
static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= FOTA_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7E)
            return 0;
    return 1;
}

/* The report this check-in makes joins the loop's batch; v->adev becomes it. */
static void report(struct fota_arduino_visit *v)
{
    struct fota_arduino_device row;
    int64_t quiet_s = 0;

    /* A device that polls with nothing new and no upgrade offered (an open
     * command, whose rollout compares check-in times with its offer): its
     * check-in time is written at most every quiet_s seconds (an eighth of
     * checkin_interval, at most FOTA_ARDUINO_QUIET_S), the precision that
     * "online" and a rollout's health time need; a fleet polling back to
     * back writes a few rows a second, not one per device and second on
     * every loop. Any other check-in is written within a second. */
    if (v->open_known && !v->open_cmd_id) {
        quiet_s = v->ap.checkin_interval / 8;
        quiet_s = quiet_s > FOTA_ARDUINO_QUIET_S ? FOTA_ARDUINO_QUIET_S : quiet_s;
    }
    report_row(v, &row);
    /* v->adev stays the row as stored (the cache keeps what was written) */
    if (fota_arduino_report_add(v->ctx, &row, &v->adev, quiet_s))
        v->adev = row;
}

/* The device's open sys_upgrade into v->open_* (open_known unless the store failed). */
static void open_read(struct fota_arduino_visit *v)
{
    int rc = fota_arduino_open_upgrade(v->ctx->srv->store, v->device.id, &v->open_cmd_id,
                                       v->open_version, sizeof v->open_version);
    v->open_known = rc == 0 || rc == FOTA_ENOENT;
    if (rc == FOTA_ENOENT)
        v->open_cmd_id = 0;
}

/* The device of cache entry e, its parts read again where their generation
 * moved: 1 when it is identified so, 0 when the whole lookup must run (the
 * entry's catalog generation is not this visit's, or a row is gone), or a
 * negative FOTA_E* when the store fails. */
/* Whether cache entry e may answer for this visit: 0 when its catalog
 * generation is not the visit's (nothing set). Else 1, with the device's
 * generations read into v (before any row) and *fresh_adev 1 when its
 * arduino row answers as cached (v->adev set from it, a waiting download
 * read through). */
static int cache_vouched(struct fota_arduino_visit *v, const struct fota_arduino_dev_entry *e,
                         int *fresh_adev)
{
    struct fota_store *st = v->ctx->srv->store;
    int64_t id = e->device.id;

    if (!v->gen || e->gen != v->gen || id <= 0)
        return 0;
    v->devgen_id = id;
    v->devgen = fota_store_device_generation(st, id);
    v->agen = fota_store_arduino_generation(st, id);
    *fresh_adev = e->agen == v->agen && fota_arduino_cache_fresh(v, e);
    if (*fresh_adev) {
        v->adev = e->adev; /* as stored: its download waiting since, read through */
        fota_arduino_served_overlay_locked(v->ctx, &v->adev);
        /* a batch written meanwhile left it (and moved the generation): read it */
        *fresh_adev = fota_store_arduino_generation(st, id) == v->agen;
    }
    return 1;
}

/* The device row and open command of entry e, whose device generation holds. */
static void cache_device(struct fota_arduino_visit *v, const struct fota_arduino_dev_entry *e)
{
    v->device = e->device;
    v->open_known = 1;
    v->open_cmd_id = e->cmd_id;
    fota_str_copy(v->open_version, sizeof v->open_version, e->cmd_version);
}

/* The device of cache entry e, its parts read again where their generation
 * moved: 1 when it is identified so, 0 when the whole lookup must run (the
 * entry's catalog generation is not this visit's, or a row is gone), or a
 * negative FOTA_E* when the store fails. */
static int identify_cached(struct fota_arduino_visit *v, const struct fota_arduino_dev_entry *e,
                           int *silent)
{
    struct fota_store *st = v->ctx->srv->store;
    int64_t id = e->device.id;
    int fresh_adev, rc;

    if (!cache_vouched(v, e, &fresh_adev))
        return 0;
    if (!fresh_adev) {
        /* its waiting report written first; its waiting download read through */
        fota_arduino_report_sync_device(v->ctx, id);
        fota_arduino_served_lock(v->ctx);
        v->agen = fota_store_arduino_generation(st, id);
        rc = st->ops->arduino_device_get(st, id, &v->adev);
        if (rc == 0)
            fota_arduino_served_overlay(v->ctx, &v->adev);
        fota_arduino_served_unlock(v->ctx);
        if (rc)
            return rc == FOTA_ENOENT ? 0 : rc;
        *silent = v->adev.last_checkin <= 0 || v->now - v->adev.last_checkin >= v->ap.checkin_interval;
    }
    if (e->devgen == v->devgen) {
        cache_device(v, e);
    } else {
        rc = st->ops->device_get(st, id, &v->device);
        if (rc)
            return rc == FOTA_ENOENT ? 0 : rc;
        open_read(v);
    }
    return 1;
}

int fota_arduino_identify(struct fota_arduino_visit *v)
{
    struct fota_store *st = v->ctx->srv->store;
    char *mac = v->devkey;
    const char *by_mac = NULL, *by_name = NULL;
    struct fota_arduino_device row;
    struct fota_arduino_dev_entry *e;
    int rc, silent = 0;
    int64_t hint;

    if (fota_arduino_hdrs_is_device(&v->h)) {
        mac_text(v->h.sta_mac, mac);
        by_mac = mac;
    } else if (v->name) {
        if (!name_ok(v->name))
            return FOTA_EINVAL;
        by_name = v->name;
        fota_str_copy(v->devkey, sizeof v->devkey, v->name);
    } else {
        return 0; /* anonymous */
    }
    e = fota_arduino_cache_find(v, v->devkey);
    rc = e ? identify_cached(v, e, &silent) : 0;
    if (rc < 0)
        return rc;
    if (rc > 0)
        goto known;
    /* The whole lookup, for the device the cache last knew (its waiting
     * report written first, its generations read before its rows, its
     * waiting download read through), else for the one found (its report
     * written, read again; the generations vouch for nothing: devgen_id
     * says so). */
    hint = e ? e->device.id : 0;
    fota_arduino_report_sync_device(v->ctx, hint);
    fota_arduino_served_lock(v->ctx);
    v->devgen_id = hint;
    v->devgen = hint ? fota_store_device_generation(st, hint) : 0;
    v->agen = hint ? fota_store_arduino_generation(st, hint) : 0;
    rc = st->ops->arduino_device_find(st, v->product.id, by_mac, by_name, &v->adev);
    if (rc == 0 && v->adev.device_id != hint &&
        fota_arduino_report_sync_device(v->ctx, v->adev.device_id))
        rc = st->ops->arduino_device_find(st, v->product.id, by_mac, by_name, &v->adev);
    if (rc == 0)
        fota_arduino_served_overlay(v->ctx, &v->adev);
    fota_arduino_served_unlock(v->ctx);
    if (rc == FOTA_ENOENT) {
        struct fota_device d = {0};
        d.product_id = v->product.id;
        fota_str_copy(d.name, sizeof d.name, by_mac ? by_mac : by_name);
        if (by_mac)
            for (size_t i = 0; mac[i] && i + 1 < sizeof d.bssid; i++)
                d.bssid[i] = (char)(mac[i] >= 'A' && mac[i] <= 'F' ? mac[i] - 'A' + 'a' : mac[i]);
        d.last_active = v->now;
        v->device.id = 0;
        report_row(v, &row);
        rc = st->ops->arduino_device_register(st, &d, &row);
        if (rc == 0) {
            FOTA_INFO("arduino device registered dev=%lld product=%lld name=%s", (long long)d.id,
                      (long long)v->product.id, d.name);
            v->device = d;
            v->adev = row;
            return 0;
        }
        if (rc != FOTA_EEXIST) /* another loop registered it meanwhile: find it */
            return rc;
        rc = st->ops->arduino_device_find(st, v->product.id, by_mac, by_name, &v->adev);
    }
    if (rc)
        return rc;
    rc = st->ops->device_get(st, v->adev.device_id, &v->device);
    if (rc)
        return rc;
    open_read(v);
    silent = v->adev.last_checkin <= 0 || v->now - v->adev.last_checkin >= v->ap.checkin_interval;
known:
    if (silent)
        online_post(v->ctx->srv, v->device.id, v->product.id); /* back after a silence */
    judge(v);
    report(v);
    return 0;
}

/* Writes the device's tracking and pin fields as v->adev holds them. */
static void track_write(struct fota_arduino_visit *v)
{
    struct fota_store *st = v->ctx->srv->store;
    fota_arduino_served_sync(v->ctx, v->device.id); /* a waiting download must not undo it */
    if (st->ops->arduino_device_track(st, &v->adev) != 0)
        FOTA_WARN("arduino tracking not stored dev=%lld", (long long)v->device.id);
}

static void pin_clear(struct fota_arduino_visit *v, const char *why)
{
    FOTA_INFO("arduino pin ends dev=%lld version=%s reason=\"%s\"", (long long)v->device.id,
              v->adev.pin_version, why);
    v->adev.pin_version[0] = '\0';
    v->adev.pin_current[0] = '\0';
    track_write(v);
}

/* The device runs v->rel, its target: its version is the release's, a
 * command for it is done (and holds as its pin), and an upgrade to another
 * version that was in flight is moot. No upgrade is recorded (no message):
 * it was registered on it, flashed by other means, or asked again. */
static void already_running(struct fota_arduino_visit *v)
{
    struct fota_server *srv = v->ctx->srv;
    struct fota_store *st = srv->store;
    int write = 0;

    if (strcmp(v->device.rom_version, v->rel.version) != 0) {
        fota_str_copy(v->device.rom_version, sizeof v->device.rom_version, v->rel.version);
        if (st->ops->device_update(st, &v->device, FOTA_DEV_F_ROM_VERSION) != 0)
            FOTA_WARN("rom_version not stored dev=%lld", (long long)v->device.id);
    }
    if (v->adev.target[0]) {
        v->adev.target[0] = '\0';
        v->adev.target_rom_id = 0;
        v->adev.served_at = 0;
        v->adev.served_md5[0] = '\0';
        write = 1;
    }
    if (v->cmd_id) {
        v->open_known = 0;
        command_set(v->ctx, v->cmd_id, FOTA_CMD_DONE, json_pack("{s:s}", "note", "already running"));
        pin_set(v, v->rel.version);
        write = 1;
        report_post(srv, v->device.id, 1, v->rel.version, v->rel.version);
        FOTA_INFO("arduino upgrade needless dev=%lld product=%lld version=%s (already running)",
                  (long long)v->device.id, (long long)v->product.id, v->rel.version);
    }
    if (write)
        track_write(v);
}

int fota_arduino_target(struct fota_arduino_visit *v)
{
    struct fota_server *srv = v->ctx->srv;
    struct fota_store *st = srv->store;
    char cmdv[FOTA_VERSION_MAX] = "", version[FOTA_VERSION_MAX];
    const char *pick;
    int rc, src, lapsed;

    v->cmd_id = 0;
    if (v->device.id && v->open_known) {
        v->cmd_id = v->open_cmd_id;
        fota_str_copy(cmdv, sizeof cmdv, v->open_cmd_id ? v->open_version : "");
    } else if (v->device.id) {
        fota_arduino_open_upgrade(st, v->device.id, &v->cmd_id, cmdv, sizeof cmdv);
    }
    src = fota_arduino_target_of(cmdv, v->device.id ? v->adev.pin_version : "",
                                 v->adev.pin_current, v->product.current_version, &pick, &lapsed);
    fota_str_copy(version, sizeof version, pick);
    if (lapsed)
        pin_clear(v, "the product's current release changed");
    if (src == FOTA_ARDUINO_SRC_NONE)
        return FOTA_ENOENT;
    rc = fota_arduino_rel_get(v, version, &v->rel, v->changelog, sizeof v->changelog);
    if (rc == FOTA_ENOENT && src == FOTA_ARDUINO_SRC_COMMAND) {
        /* the command's release was deleted: the command cannot run */
        command_set(v->ctx, v->cmd_id, FOTA_CMD_FAILED, json_pack("{s:s}", "error", "release deleted"));
        v->cmd_id = 0;
        v->open_known = 0; /* an older one may be open: asked again */
        return fota_arduino_target(v);
    }
    if (rc == FOTA_ENOENT && src == FOTA_ARDUINO_SRC_PIN) {
        pin_clear(v, "its release was deleted");
        return fota_arduino_target(v);
    }
    if (rc)
        return rc;
    v->have_rel = 1;
    if (v->device.id && fota_arduino_runs(&v->rel, &v->h))
        already_running(v);
    return 0;
}

void fota_arduino_refused(struct fota_arduino_visit *v, int kind, int64_t size, int verdict)
{
    char reason[320];
    const struct fota_arduino_hdrs *h = &v->h;

    if (!v->device.id)
        return;
    switch (verdict) {
    case FOTA_ARDUINO_TOO_LESS_SPACE:
        snprintf(reason, sizeof reason, "%s is %" PRId64 " bytes but the device has %" PRIu32
                 " bytes of free sketch space: it refuses the download (-100, Not Enough space)%s",
                 fota_arduino_kind_name((enum fota_arduino_kind)kind), size, h->free_space,
                 kind == FOTA_ARDUINO_K_BIN || kind == FOTA_ARDUINO_K_BIN_GZ
                     ? "; Tasmota goes on with firmware-minimal.bin" : "");
        break;
    case FOTA_ARDUINO_WRONG_FLASH:
        snprintf(reason, sizeof reason, "%s is built for a larger flash than the device's %" PRIu32
                 " bytes: it refuses the download (-107, New Binary Does Not Fit Flash Size)",
                 fota_arduino_kind_name((enum fota_arduino_kind)kind), h->chip_size);
        break;
    default:
        snprintf(reason, sizeof reason, "the device refuses %s from its first bytes (%d, %s): "
                 "a gzip image needs core 2.7 or later",
                 fota_arduino_kind_name((enum fota_arduino_kind)kind), verdict,
                 fota_arduino_verdict_string(verdict));
        break;
    }
    fota_server_publish_json(v->ctx->srv, v->product.id, v->device.id, "device_upgrade_failed",
                             json_pack("{s:s, s:s, s:s, s:i, s:s}", "pre_rom_version",
                                       v->device.rom_version, "rom_version", v->rel.version,
                                       "reason", reason, "error", verdict, "platform", "arduino"));
    /* The device refuses the same file at every check-in: the upgrade its
     * command asks for has failed, unless Tasmota's -minimal step follows
     * (-100 or -107 on the full image of a release that has a minimal one)
     * or the device reports its outcome itself over MQTT. */
    int minimal_next = (verdict == FOTA_ARDUINO_TOO_LESS_SPACE ||
                        verdict == FOTA_ARDUINO_WRONG_FLASH) &&
                       (kind == FOTA_ARDUINO_K_BIN || kind == FOTA_ARDUINO_K_BIN_GZ) &&
                       (v->rel.f[FOTA_ARDUINO_K_MIN].present ||
                        v->rel.f[FOTA_ARDUINO_K_MIN_GZ].present);
    if (v->cmd_id && !minimal_next && !v->adev.mqtt_topic[0]) {
        v->open_known = 0;
        command_set(v->ctx, v->cmd_id, FOTA_CMD_FAILED,
                    json_pack("{s:s, s:s}", "action", "device_upgrade_failed", "reason", reason));
        report_post(v->ctx->srv, v->device.id, 0, v->device.rom_version, v->rel.version);
        v->cmd_id = 0;
    }
}

/* A completed download's command: delivered (the device took its image),
 * and the hub hears it. Store calls: from a loop a store job on the lane,
 * listed in ctx->taken until it is written (by its job or by a sync). */
struct fota_arduino_taken {
    struct fota_arduino_ctx *ctx;
    int64_t device_id, cmd_id;
    char version[FOTA_VERSION_MAX];
    int state;                           /* TAKEN_*, under ctx->taken.mu */
    int orphan;                          /* no job: the sync that writes it frees it */
    struct fota_arduino_taken *next;     /* in ctx->taken while TAKEN_LISTED */
};

enum { TAKEN_LISTED = 0, TAKEN_WRITING, TAKEN_WRITTEN };

static void taken_write(struct fota_store *st, const struct fota_arduino_taken *j)
{
    struct fota_command c = {0};

    pthread_mutex_lock(&j->ctx->taken.cmd_mu);
    if (st->ops->command_get(st, j->cmd_id, &c) == 0 && command_open(c.state)) {
        c.state = FOTA_CMD_DELIVERED;
        c.updated = 0;
        if (st->ops->command_update(st, &c) != 0)
            FOTA_WARN("arduino command not updated cmd=%lld", (long long)j->cmd_id);
        taken_post(j->ctx->srv, j->device_id, c.nonce, j->version);
    }
    pthread_mutex_unlock(&j->ctx->taken.cmd_mu);
    fota_store_command_cleanup(&c);
}

/* j's job: written unless a sync took it first. Frees j. */
static void taken_run(struct fota_store *st, void *arg)
{
    struct fota_arduino_taken *j = arg;
    struct fota_arduino_taken_list *q = &j->ctx->taken;
    int mine;

    pthread_mutex_lock(&q->write_mu);
    pthread_mutex_lock(&q->mu);
    /* under write_mu a sync has written what it took: LISTED or WRITTEN */
    mine = j->state == TAKEN_LISTED;
    if (mine) {
        struct fota_arduino_taken **pp = &q->head;
        while (*pp && *pp != j)
            pp = &(*pp)->next;
        if (*pp)
            *pp = j->next;
        j->state = TAKEN_WRITING;
    }
    pthread_mutex_unlock(&q->mu);
    if (mine)
        taken_write(st, j);
    pthread_mutex_unlock(&q->write_mu);
    free(j);
}

/* j's job was not submitted: out of the list and freed, or left to the
 * sync writing it now. On a loop: never waits for a write. */
static void taken_drop(struct fota_arduino_taken_list *q, struct fota_arduino_taken *j)
{
    int keep = 0;

    pthread_mutex_lock(&q->mu);
    if (j->state == TAKEN_LISTED) {
        for (struct fota_arduino_taken **pp = &q->head; *pp; pp = &(*pp)->next) {
            if (*pp == j) {
                *pp = j->next;
                break;
            }
        }
    } else if (j->state == TAKEN_WRITING) {
        j->orphan = keep = 1;
    }
    pthread_mutex_unlock(&q->mu);
    if (!keep)
        free(j);
}

void fota_arduino_taken_sync(struct fota_arduino_ctx *ctx)
{
    struct fota_arduino_taken_list *q;
    struct fota_arduino_taken *list;

    if (!ctx)
        return;
    q = &ctx->taken;
    /* write_mu first: an entry its job is writing now is written before */
    pthread_mutex_lock(&q->write_mu);
    pthread_mutex_lock(&q->mu);
    list = q->head;
    q->head = NULL;
    for (struct fota_arduino_taken *j = list; j; j = j->next)
        j->state = TAKEN_WRITING;
    pthread_mutex_unlock(&q->mu);
    /* their jobs wait for write_mu before they free them */
    for (struct fota_arduino_taken *j = list; j; j = j->next)
        taken_write(ctx->srv->store, j);
    pthread_mutex_lock(&q->mu);
    for (struct fota_arduino_taken *j = list, *next; j; j = next) {
        next = j->next;
        if (j->orphan)
            free(j);
        else
            j->state = TAKEN_WRITTEN;   /* its job frees it */
    }
    pthread_mutex_unlock(&q->mu);
    pthread_mutex_unlock(&q->write_mu);
}

void fota_arduino_taken_init(struct fota_arduino_ctx *ctx)
{
    pthread_mutex_init(&ctx->taken.mu, NULL);
    pthread_mutex_init(&ctx->taken.write_mu, NULL);
    pthread_mutex_init(&ctx->taken.cmd_mu, NULL);
    ctx->taken.head = NULL;
}

void fota_arduino_taken_destroy(struct fota_arduino_ctx *ctx)
{
    pthread_mutex_destroy(&ctx->taken.mu);
    pthread_mutex_destroy(&ctx->taken.write_mu);
    pthread_mutex_destroy(&ctx->taken.cmd_mu);
}

void fota_arduino_served(struct fota_arduino_ctx *ctx, const struct fota_arduino_pending *p)
{
    struct fota_server *srv = ctx->srv;
    struct fota_arduino_download row = { 0 };
    struct fota_arduino_taken *j, **pp;
    int rc;

    row.device_id = p->device_id > 0 ? p->device_id : 0;
    row.file_id = p->file_id;
    row.bytes = p->bytes;
    row.completed = 1;
    fota_str_copy(row.target, sizeof row.target, p->version);
    row.target_rom_id = p->rom_id;
    row.served_at = fota_clock_wall_s();
    fota_str_copy(row.served_md5, sizeof row.served_md5, p->md5_before);
    fota_arduino_served_add(ctx, &row);
    if (p->device_id <= 0 || !p->cmd_id)
        return;
    j = fota_xcalloc(1, sizeof(*j));
    j->ctx = ctx;
    j->device_id = p->device_id;
    j->cmd_id = p->cmd_id;
    fota_str_copy(j->version, sizeof j->version, p->version);
    if (!srv->exec || !ctx->lane || !fota_loop_current()) {
        taken_write(srv->store, j);
        free(j);
        return;
    }
    pthread_mutex_lock(&ctx->taken.mu);
    for (pp = &ctx->taken.head; *pp; pp = &(*pp)->next)
        ;
    *pp = j;
    pthread_mutex_unlock(&ctx->taken.mu);
    rc = fota_store_submit(srv->exec, ctx->lane, NULL, taken_run, NULL, j);
    if (rc != 0) { /* the lane is full: the store is gone for a while */
        FOTA_WARN("arduino command not updated cmd=%lld error=%s", (long long)p->cmd_id,
                  fota_errname(rc));
        taken_drop(&ctx->taken, j);
    }
}

/* ---- the check-in answered from the caches */

void fota_arduino_visit_decide(struct fota_arduino_visit *v, int kind)
{
    fota_arduino_decide(v->have_rel ? &v->rel : NULL, (enum fota_arduino_kind)kind, v->ap.gzip,
                        v->ap.core, v->h.seen ? &v->h : NULL, v->device.id != 0 && v->h.seen,
                        &v->ans);
}

/* fota_arduino_visit_cached; quick: only a device by STA MAC that runs its
 * target and is answered 304. */
static int visit_cached(struct fota_arduino_visit *v, int kind, int head, int quick)
{
    struct fota_arduino_dev_entry *e;
    struct fota_arduino_rel_entry *re;
    const char *pick;
    int src, lapsed, fresh_adev = 0;

    /* identify_cached's way with every part as cached, for a device polling in time */
    if (fota_arduino_hdrs_is_device(&v->h))
        mac_text(v->h.sta_mac, v->devkey);
    else if (quick || (v->name && !name_ok(v->name)))
        return 0;
    else if (v->name)
        fota_str_copy(v->devkey, sizeof v->devkey, v->name);
    if (v->devkey[0]) {
        e = fota_arduino_cache_find(v, v->devkey);
        if (!e || e->cmd_id || !cache_vouched(v, e, &fresh_adev) || !fresh_adev ||
            e->devgen != v->devgen || v->adev.target[0])
            return 0; /* a command, or a download waiting to be judged: the full visit */
        cache_device(v, e);
    }

    /* fota_arduino_target's, with no command: a cached release, and
     * nothing for already_running to record */
    src = fota_arduino_target_of("", v->device.id ? v->adev.pin_version : "",
                                 v->adev.pin_current, v->product.current_version, &pick, &lapsed);
    if (lapsed || (quick && src == FOTA_ARDUINO_SRC_NONE))
        return 0;
    v->cmd_id = 0;
    if (src != FOTA_ARDUINO_SRC_NONE) {
        if (!(re = rel_cached(v, pick, NULL)))
            return 0;
        v->rel = re->rel;
        v->have_rel = 1;
        if (kind == FOTA_ARDUINO_K_MANIFEST)
            fota_str_copy(v->changelog, sizeof v->changelog, re->changelog);
        if (v->device.id && fota_arduino_runs(&v->rel, &v->h) &&
            strcmp(v->device.rom_version, v->rel.version) != 0)
            return 0;
        if (quick && !fota_arduino_runs(&v->rel, &v->h))
            return 0;
    }
    if (kind != FOTA_ARDUINO_K_MD5 && kind != FOTA_ARDUINO_K_MANIFEST) {
        fota_arduino_visit_decide(v, kind);
        if (quick && v->ans.status != 304)
            return 0;
        if (v->ans.status == 200 && v->ans.verdict != FOTA_ARDUINO_ACCEPT && !head &&
            v->device.id)
            return 0; /* fota_arduino_refused records it */
    }

    /* what the full visit leaves: its report in the batch, the entry */
    if (v->device.id) {
        report(v);
        fota_arduino_cache_put(v, v->devkey);
    }
    return 1;
}

int fota_arduino_visit_cached(struct fota_arduino_visit *v, int kind, int head)
{
    return visit_cached(v, kind, head, 0);
}

int fota_arduino_quick_current(struct fota_arduino_visit *v, int kind)
{
    return visit_cached(v, kind, 0, 1);
}
