/* rollout_health.c - a member's health time: after its success report a
 * member is "verifying" for the rollout's `health` seconds, and counts as
 * upgraded only if it stays healthy through them (docs/api.md, "Health").
 *
 * A device on the device channel must come back after the rollout's reboot
 * (its next identified connection), must not come back saying another
 * version (an activation carries the version it runs), must not boot more
 * than max_reboots times beyond that one (every identified connection is a
 * boot: the channel cannot tell a reboot from a reconnect), and must be
 * connected when the time is over. A pull device (arduino product) must
 * not install the version again or report a failure (either means it came
 * back on another image), must not come back after a silence more than
 * max_reboots times, and must check in again, on the rollout's image
 * (its sketch MD5), within its checkin_interval of the end of the time; a
 * device known over MQTT must be Online and report the rollout's version.
 * Deadlines on the monotonic clock; the boots and the report time are in
 * the member's row, so a restart goes on where it stopped. */
#include "rollout_int.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "devchan.h"
#include "fota_str.h"
#include "log.h"
#include "relcache.h"
#include "xmalloc.h"

#define HEALTH_LOOK_MS 1000    /* a device channel rollout's verifying members, looked at */
#define HEALTH_SLACK_S 3       /* pull: check-ins reach the store in batches (1 s) */

void fota_rollout_health_begin(struct fota_rollout *r, struct fota_rollout_member *m)
{
    m->reported = 1;
    m->since_s = (int32_t)fota_rollout_now_s(r);
    m->boots = 0;
    if (r->row.health_s <= 0) {
        fota_rollout_finish_member(r, m, FOTA_RM_DONE, FOTA_RR_NONE);
        return;
    }
    if (m->active) {
        m->active = 0;
        r->row.n.active--;
    }
    r->row.n.verifying++;
    fota_rollout_set_state(r, m, FOTA_RM_VERIFYING);
}

static void health_end(struct fota_rollout *r, struct fota_rollout_member *m, int reason,
                       const char *why)
{
    if (reason == FOTA_RR_NONE) {
        FOTA_DEBUG("rollout member healthy rollout=%lld dev=%lld boots=%d", (long long)r->row.id,
                   (long long)m->device_id, m->boots);
        fota_rollout_finish_member(r, m, FOTA_RM_DONE, FOTA_RR_NONE);
    } else {
        FOTA_WARN("rollout member unhealthy rollout=%lld dev=%lld reason=%s boots=%d "
                  "health_s=%lld why=\"%s\"", (long long)r->row.id, (long long)m->device_id,
                  fota_rollout_reason_name(reason), m->boots, (long long)r->row.health_s, why);
        fota_rollout_finish_member(r, m, FOTA_RM_FAILED, reason);
    }
    fota_rollout_marks(r);
    fota_rollout_act_soon(r->ro);
}

/* 1 when a device saying `said` (a D1's rom_version, maybe padded with '~'
 * or cut at 15 characters) runs `want`. */
static int version_is(const char *want, const char *said)
{
    size_t n = strlen(said);
    while (n > 0 && said[n - 1] == '~')
        n--;
    return strncmp(want, said, n) == 0 && (want[n] == '\0' || n >= 15);
}

/* Boots a member may show in its health time: max_reboots, plus the one
 * the rollout's own sys_reboot causes. */
static int64_t boots_allowed(const struct fota_rollout *r)
{
    return r->row.max_reboots + (r->row.reboot && !r->pull ? 1 : 0);
}

void fota_rollout_health_online(struct fota_rollout *r, struct fota_rollout_member *m,
                                const char *version)
{
    if (m->boots < 255)
        m->boots++;
    fota_rollout_set_state_member(r, m, FOTA_RM_VERIFYING);   /* its boots are stored */
    if (version && version[0] && !version_is(r->row.version, version))
        health_end(r, m, FOTA_RR_OLD_VERSION, "it came back saying another version");
    else if (m->boots > boots_allowed(r))
        health_end(r, m, FOTA_RR_REBOOT_LOOP, "more boots than max_reboots in its health time");
}

void fota_rollout_health_report(struct fota_rollout *r, struct fota_rollout_member *m, int ok)
{
    if (ok)
        health_end(r, m, FOTA_RR_OLD_VERSION,
                   "it installed the version again: it had come back on another image");
    else
        health_end(r, m, FOTA_RR_REPORTED, "it reported a failed upgrade in its health time");
}

void fota_rollout_health_setup(struct fota_rollout *r)
{
    struct fota_store *st = r->ro->srv->store;
    struct fota_rom *rom = fota_xmalloc(sizeof *rom);
    struct fota_arduino_blob b;
    r->nmd5 = 0;
    if (!r->pull ||
        fota_relcache_get(r->ro->srv->relcache, st, r->row.product_id, r->row.version, rom) != 0) {
        free(rom);
        return;
    }
    for (size_t i = 0; i < rom->nfiles && i < FOTA_ROM_MAX_FILES; i++) {
        if (strstr(rom->files[i].name, "minimal") ||
            st->ops->arduino_blob_get(st, rom->files[i].sha256, &b) != 0)
            continue;   /* Tasmota's intermediate image is not the version */
        for (int k = 0; k < 4 && r->nmd5 < FOTA_ROLLOUT_MD5_MAX; k++) {
            int seen = !b.sketch_md5[k][0];
            for (size_t j = 0; j < r->nmd5 && !seen; j++)
                seen = strcmp(r->md5s[j], b.sketch_md5[k]) == 0;
            if (!seen)
                memcpy(r->md5s[r->nmd5++], b.sketch_md5[k], FOTA_ARDUINO_MD5_TEXT);
        }
    }
    free(rom);
}

static int md5_is_ours(const struct fota_rollout *r, const char *md5)
{
    for (size_t j = 0; j < r->nmd5; j++)
        if (strcmp(r->md5s[j], md5) == 0)
            return 1;
    return r->nmd5 == 0;   /* unknown: the check-in's version decided at its report */
}

/* What the store says of a pull member whose health time is over (read
 * by a job). */
struct judge {
    uint32_t idx;
    int64_t device_id, end_s;
    int have;                          /* its arduino row was read (else deleted) */
    int mqtt, lwt_online, other_version;
    int64_t last_checkin;
    char sketch_md5[FOTA_ARDUINO_MD5_TEXT];
};

struct judges {
    struct fota_rollout *r;            /* held (r->jobs) until the continuation */
    char version[FOTA_VERSION_MAX];
    struct judge *v;
    size_t n;
};

static void judges_job(struct fota_store *st, void *arg)
{
    struct judges *j = arg;
    struct fota_arduino_device *a = fota_xmalloc(sizeof *a);
    struct fota_device *d = fota_xmalloc(sizeof *d);
    for (size_t i = 0; i < j->n; i++) {
        struct judge *x = &j->v[i];
        if (st->ops->arduino_device_get(st, x->device_id, a) != 0)
            continue;   /* deleted: the hub's DEVICE_DELETED ends it */
        x->have = 1;
        x->mqtt = a->mqtt_topic[0] != '\0';
        x->lwt_online = strcmp(a->mqtt_lwt, "Online") == 0;
        x->last_checkin = a->last_checkin;
        memcpy(x->sketch_md5, a->sketch_md5, sizeof x->sketch_md5);
        x->other_version = x->mqtt && st->ops->device_get(st, x->device_id, d) == 0 &&
                           strcmp(d->rom_version, j->version) != 0;
    }
    free(a);
    free(d);
}

/* A pull member whose health time is over: its device's row decides, or
 * it waits for the next look. */
static void pull_judge(struct fota_rollout *r, struct fota_rollout_member *m,
                       const struct judge *x)
{
    int64_t now = fota_clock_wall_s(), since = r->row.created + m->since_s;
    int64_t end = r->row.created + x->end_s;
    if (!x->have)
        return;   /* deleted: the hub's DEVICE_DELETED ends it */
    if (x->mqtt) {
        if (x->other_version)
            health_end(r, m, FOTA_RR_OLD_VERSION, "it reports another version over MQTT");
        else if (x->lwt_online)
            health_end(r, m, FOTA_RR_NONE, "");
        else if (now >= end + r->row.timeout_s)
            health_end(r, m, FOTA_RR_SILENT, "not Online over MQTT at the end of its health time");
        return;
    }
    /* Only a check-in after the report says how it runs: the stored row may
     * still be the one of its download (check-ins reach the store in batches). */
    int after = x->last_checkin >= since + 2;
    if (after && x->sketch_md5[0] && !md5_is_ours(r, x->sketch_md5))
        health_end(r, m, FOTA_RR_OLD_VERSION, "it checked in with another image");
    else if (after && x->last_checkin >= end - r->grace_s)
        health_end(r, m, FOTA_RR_NONE, "");
    else if (now >= end + r->grace_s + HEALTH_SLACK_S)
        health_end(r, m, FOTA_RR_SILENT, "no check-in within its checkin_interval of the end of "
                   "its health time");
}

static void judges_done(void *arg, int cancelled)
{
    struct judges *j = arg;
    if (!cancelled) {
        struct fota_rollout *r = j->r;
        r->jobs--;
        r->judging = 0;
        for (size_t i = 0; i < j->n; i++) {
            struct fota_rollout_member *m = &r->m[j->v[i].idx];
            if (m->state == FOTA_RM_VERIFYING)
                pull_judge(r, m, &j->v[i]);   /* else it ended meanwhile */
        }
    }
    free(j->v);
    free(j);
}

void fota_rollout_health_check(struct fota_rollout *r)
{
    int64_t now_ms = fota_clock_mono_ms();
    if (now_ms < r->health_next_ms || (r->pull && r->judging))
        return;
    int64_t every = r->pull && r->grace_s * 50 > HEALTH_LOOK_MS ? r->grace_s * 50 : HEALTH_LOOK_MS;
    r->health_next_ms = now_ms + every;
    int64_t now_s = fota_rollout_now_s(r);
    struct judges *j = NULL;
    for (size_t i = 0; i < r->n && r->row.n.verifying > 0; i++) {
        struct fota_rollout_member *m = &r->m[i];
        if (m->state != FOTA_RM_VERIFYING)
            continue;
        int64_t end_s = (int64_t)m->since_s + r->row.health_s;
        if (now_s < end_s)
            continue;
        if (r->pull) {   /* its device's rows decide: read by a job */
            if (!j) {
                j = fota_xcalloc(1, sizeof *j);
                j->v = fota_xreallocarray(NULL, (size_t)r->row.n.verifying, sizeof *j->v);
            }
            if (j->n < (size_t)r->row.n.verifying)
                j->v[j->n++] = (struct judge){ .idx = (uint32_t)i, .device_id = m->device_id,
                                               .end_s = end_s };
        } else if (!fota_devchan_online(r->ro->ch, m->device_id)) {
            health_end(r, m, FOTA_RR_SILENT, "not connected at the end of its health time");
        } else if (r->row.reboot && m->boots == 0) {
            health_end(r, m, FOTA_RR_NO_REBOOT, "it never came back after the reboot");
        } else {
            health_end(r, m, FOTA_RR_NONE, "");
        }
    }
    if (!j)
        return;
    j->r = r;
    fota_str_copy(j->version, sizeof j->version, r->row.version);
    if (fota_rollout_submit(r->ro, "health", judges_job, judges_done, j) < 0) {
        free(j->v);
        free(j);
        return;   /* looked at again on the next tick */
    }
    r->jobs++;
    r->judging = 1;
}
