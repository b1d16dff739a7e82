/* rpc_fanout.c - bulk upgrades: POST /v1/products/ID/upgrade creates a job
 * (one transaction of command rows), answers 202 at once and pushes
 * sys_upgrade to the matching connected devices from the loop, at most
 * `window` of a product's devices upgrading at once; GET /v1/jobs/ID/ shows
 * the counters. Offline devices keep their rows queued (the channel delivers
 * them when they connect). State changes are written in batches by a timer;
 * job counters live in memory and are saved to DATA/jobs.json. */
#include "rpc_fanout.h"
#include "rpc_fanout_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <event2/event.h>
#include <jansson.h>

#include "devchan_int.h"
#include "http.h"
#include "log.h"

static double since_ms(const struct timeval *t0)
{
    struct timeval now;
    gettimeofday(&now, NULL);
    return (double)(now.tv_sec - t0->tv_sec) * 1e3 + (double)(now.tv_usec - t0->tv_usec) / 1e3;
}

static size_t product_active(struct fota_fanout *fo, int64_t product_id)
{
    size_t a = 0;
    for (struct job *j = fo->jobs; j; j = j->next)
        if (j->product_id == product_id)
            a += j->active;
    return a;
}

/* Marks the moments every member was delivered / acked / finished. */
void fota_fanout__job_marks(struct job *j)
{
    j->fo->changed = 1;
    if (j->ms_delivered < 0 && j->delivered == j->n)
        j->ms_delivered = since_ms(&j->t0);
    if (j->ms_acked < 0 && j->acked == j->n)
        j->ms_acked = since_ms(&j->t0);
    if (j->ms_finished < 0 && fota_fanout__ended(j) == j->n) {
        j->ms_finished = since_ms(&j->t0);
        fota_fanout__rows_forget(j); /* no queued row of it is left */
    }
}

static void set_state(struct job *j, struct member *m, int st)
{
    m->state = (uint8_t)st;
    if (!m->dirty) {
        m->dirty = 1;
        j->ndirty++;
    }
}

static void finish_member(struct job *j, struct member *m, int st)
{
    if (m->active) {
        m->active = 0;
        j->active--;
    }
    if (st == M_GONE) {   /* its row went with the device: nothing to write */
        j->deleted++;
        m->state = M_GONE;
        if (m->dirty) {
            m->dirty = 0;
            j->ndirty--;
        }
        return;
    }
    if (st == M_DONE)
        j->succeeded++;
    else if (st == M_TIMEOUT)
        j->timed_out++;
    else if (st == M_CANCELLED)
        j->cancelled++;
    else
        j->failed++;
    set_state(j, m, st);
    /* A health gate: too many devices failing stops the rest of the wave. */
    if ((st == M_FAILED || st == M_TIMEOUT) && j->max_fail >= 0 && !j->cancel &&
        (long)(j->failed + j->timed_out) > j->max_fail) {
        j->halted = 1;
        size_t n = fota_fanout__job_cancel(j);
        FOTA_WARN("bulk upgrade halted job=%lld failed=%zu timed_out=%zu max_failures=%ld "
                  "members_cancelled=%zu", (long long)j->id, j->failed, j->timed_out, j->max_fail,
                  n);
    }
}

/* The member was delivered outside the pump (queued row sent on reconnect). */
static void count_delivered(struct job *j, struct member *m)
{
    if (m->state == M_WAITING)
        j->waiting--;
    else if (m->state == M_QUEUED)
        j->queued--;
    else
        return;
    j->delivered++;
    m->pushed_s = (uint32_t)(since_ms(&j->t0) / 1000);
    m->active = 1;
    j->active++;
}

/* The sys_upgrade push differs per device only in the owner key and the
 * nonce: encode it once with placeholders and patch copies (a fan-out to
 * 19,000 devices then costs a key derivation and two memcpy per device). */
#define TMPL_NONCE 1999999999
void fota_fanout__make_template(struct job *j)
{
    char buf[FOTA_DEVPROTO_PUSH_MAX], auth[FOTA_KEY_BUF], nonce[32];
    memset(auth, 'A', FOTA_KEY_LEN);
    auth[FOTA_KEY_LEN] = '\0';
    int n = fota_devproto_push_rpc(buf, sizeof buf, "sys_upgrade", j->version, auth, TMPL_NONCE);
    if (n <= 0)
        return;
    buf[n] = '\0';
    snprintf(nonce, sizeof nonce, "\"nonce\": %d", TMPL_NONCE);
    const char *a = strstr(buf, auth), *k = strstr(buf, nonce);
    if (!a || !k || a > k || strstr(a + 1, auth) || !(j->tmpl = malloc((size_t)n)))
        return; /* push() encodes each one in full */
    memcpy(j->tmpl, buf, (size_t)n);
    j->tmpl_len = n;
    j->auth_off = (int)(a - buf);
    j->nonce_off = (int)(k - buf) + (int)strlen(nonce) - 10;
    j->nonce_end = (int)(k - buf) + (int)strlen(nonce);
}

static int push(struct job *j, struct member *m, const char *action)
{
    struct fota_fanout *fo = j->fo;
    char auth[FOTA_KEY_BUF], buf[FOTA_DEVPROTO_PUSH_MAX];
    if (!fo->kd)
        fo->kd = fota_key_deriver_new(fo->ch->srv->secret);
    if (fo->kd) {
        fota_key_deriver_run(fo->kd, "owner", m->device_id, m->keygen, auth);
    } else {
        struct fota_device d;
        memset(&d, 0, sizeof d);
        d.id = m->device_id;
        d.key_generation = m->keygen;
        fota_server_device_key(fo->ch->srv, "owner", &d, auth);
    }
    int reboot = strcmp(action, "sys_reboot") == 0;
    if (!reboot && j->tmpl && strlen(auth) == FOTA_KEY_LEN) {
        memcpy(buf, j->tmpl, (size_t)j->nonce_off);
        memcpy(buf + j->auth_off, auth, FOTA_KEY_LEN);
        int k = snprintf(buf + j->nonce_off, 16, "%d", (int)m->nonce);
        int rest = j->tmpl_len - j->nonce_end;
        if (k > 0 && j->nonce_off + k + rest < (int)sizeof buf) {
            memcpy(buf + j->nonce_off + k, j->tmpl + j->nonce_end, (size_t)rest);
            return fota_devchan_send(fo->ch, m->device_id, buf, j->nonce_off + k + rest);
        }
    }
    int n = fota_devproto_push_rpc(buf, sizeof buf, action, reboot ? NULL : j->version, auth,
                                   reboot ? fota_devchan_nonce() : m->nonce);
    if (n < 0)
        return n;
    return fota_devchan_send(fo->ch, m->device_id, buf, n);
}

/* Pushes waiting members while the product's window has room. */
static void pump(struct job *j)
{
    struct fota_devchan *ch = j->fo->ch;
    j->pumped = 1;
    size_t room_used = product_active(j->fo, j->product_id);
    while (j->cursor < j->n && room_used < j->window) {
        struct member *m = &j->m[j->cursor++];
        if (m->state != M_WAITING)
            continue;
        int rc = fota_devchan_online(ch, m->device_id) ? push(j, m, "sys_upgrade") : FOTA_ENOENT;
        if (rc == FOTA_ENOENT) {
            m->state = M_QUEUED; /* the channel delivers the row when it connects */
            j->waiting--;
            j->queued++;
            continue;
        }
        if (rc < 0) {
            FOTA_WARN("bulk upgrade push failed job=%lld dev=%lld error=%s", (long long)j->id,
                      (long long)m->device_id, fota_errname(rc));
            j->waiting--;
            finish_member(j, m, M_FAILED);
            continue;
        }
        count_delivered(j, m);
        set_state(j, m, M_DELIVERED);
        room_used++;
    }
    fota_fanout__job_marks(j);
}

static void send_reboots(struct job *j)
{
    for (size_t i = 0; i < j->n && j->nreboot > 0; i++) {
        struct member *m = &j->m[i];
        if (!m->reboot_due)
            continue;
        m->reboot_due = 0;
        j->nreboot--;
        push(j, m, "sys_reboot"); /* FOTA_ENOENT: not connected, no reboot */
    }
}

static void check_timeouts(struct job *j)
{
    uint32_t now_s = (uint32_t)(since_ms(&j->t0) / 1000);
    for (size_t i = 0; i < j->n && j->active > 0; i++) {
        struct member *m = &j->m[i];
        if (m->active && now_s >= m->pushed_s + j->timeout_s)
            finish_member(j, m, M_TIMEOUT);
    }
}

static int row_state(int st)
{
    switch (st) {
    case M_DELIVERED: return FOTA_CMD_DELIVERED;
    case M_ACKED: return FOTA_CMD_ACKED;
    case M_DONE: return FOTA_CMD_DONE;
    case M_FAILED: return FOTA_CMD_FAILED;
    case M_TIMEOUT: return FOTA_CMD_TIMEOUT;
    case M_CANCELLED: return FOTA_CMD_CANCELLED;
    default: return FOTA_CMD_QUEUED;
    }
}

/* The row result of a member's state (NULL: the store's default, ""). */
static const char *row_result(const struct job *j, int st)
{
    return st == M_DONE     ? j->ok_result
           : st == M_ACKED  ? "{\"status\": 200}"
           : st == M_FAILED ? "{\"action\": \"device_upgrade_failed\"}"
                            : NULL;
}

/* One transaction for every dirty row of every job. */
static void flush_rows(struct fota_fanout *fo)
{
    size_t total = 0;
    for (struct job *j = fo->jobs; j; j = j->next)
        total += j->ndirty;
    if (total == 0)
        return;
    struct fota_command_set *rows = malloc(total * sizeof *rows);
    if (!rows)
        return; /* next tick */
    size_t k = 0;
    int64_t now = fota_server_now();
    for (struct job *j = fo->jobs; j; j = j->next) {
        for (size_t i = 0; i < j->n && j->ndirty > 0; i++) {
            struct member *m = &j->m[i];
            if (!m->dirty || !m->cmd_id)
                continue; /* no row yet: insert_rows writes its state */
            m->dirty = 0;
            j->ndirty--;
            rows[k++] = (struct fota_command_set){ m->cmd_id, row_state(m->state), now,
                                                   row_result(j, m->state) };
        }
    }
    struct fota_store *st = fo->ch->srv->store;
    int rc = st->ops->command_update_batch(st, rows, k);
    if (rc < 0)
        FOTA_ERROR("bulk upgrade state write failed rows=%zu error=%s", k, fota_errname(rc));
    free(rows);
}

json_t *fota_fanout__job_json(const struct job *j)
{
    json_error_t jerr;
    json_t *f = j->filter ? json_loads(j->filter, 0, &jerr) : NULL;
    json_t *ms = json_pack("{s:o, s:o, s:o}",
                           "delivered", j->ms_delivered >= 0 ? json_real(j->ms_delivered) : json_null(),
                           "acked", j->ms_acked >= 0 ? json_real(j->ms_acked) : json_null(),
                           "finished", j->ms_finished >= 0 ? json_real(j->ms_finished) : json_null());
    int over = fota_fanout__ended(j) == j->n;
    const char *state = j->interrupted ? "interrupted"
                        : j->cancel    ? (over ? "cancelled" : "cancelling")
                        : over         ? "finished"
                                       : "running";
    return json_pack("{s:I, s:I, s:s, s:o, s:b, s:i, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
                     "s:I, s:I, s:I, s:I, s:b, s:o, s:I, s:o, s:s}",
                     "id", (json_int_t)j->id, "product_id", (json_int_t)j->product_id, "version",
                     j->version, "filter", f ? f : json_object(), "reboot", j->reboot, "window",
                     (int)j->window, "timeout", (int)j->timeout_s, "total", (json_int_t)j->n,
                     "skipped", (json_int_t)j->skipped, "queued", (json_int_t)j->queued,
                     "waiting", (json_int_t)j->waiting, "in_progress", (json_int_t)j->active,
                     "delivered", (json_int_t)j->delivered, "acked", (json_int_t)j->acked,
                     "succeeded", (json_int_t)j->succeeded, "failed", (json_int_t)j->failed,
                     "timed_out", (json_int_t)j->timed_out, "deleted", (json_int_t)j->deleted,
                     "cancelled", (json_int_t)j->cancelled, "halted", j->halted,
                     "max_failures", j->max_fail >= 0 ? json_integer(j->max_fail) : json_null(),
                     "created", (json_int_t)j->created,
                     "elapsed_ms", ms, "state", state);
}

/* DATA/jobs.json: the counters of every job, rewritten (temp + rename) at
 * most once a second while they move; read back at start as "interrupted". */
static void save_jobs(struct fota_fanout *fo)
{
    const char *dir = fo->ch->srv->conf.data_dir;
    char path[FOTA_CONF_PATH_MAX + 32], tmp[FOTA_CONF_PATH_MAX + 40];
    if (!dir[0] || !fo->changed || fota_server_now() == fo->saved_at)
        return;
    snprintf(path, sizeof path, "%s/jobs.json", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    json_t *arr = json_array();
    for (struct job *j = fo->jobs; j; j = j->next)
        json_array_append_new(arr, fota_fanout__job_json(j));
    if (json_dump_file(arr, tmp, JSON_SORT_KEYS) == 0 && rename(tmp, path) == 0) {
        fo->changed = 0;
        fo->saved_at = fota_server_now();
    } else {
        FOTA_WARN("bulk upgrade jobs not saved path=%s error=\"%s\"", path, strerror(errno));
    }
    json_decref(arr);
}

static void load_jobs(struct fota_fanout *fo)
{
    char path[FOTA_CONF_PATH_MAX + 32];
    json_error_t jerr;
    if (!fo->ch->srv->conf.data_dir[0])
        return;
    snprintf(path, sizeof path, "%s/jobs.json", fo->ch->srv->conf.data_dir);
    json_t *arr = json_load_file(path, 0, &jerr);
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o) {
        struct job *j = calloc(1, sizeof *j);
        if (!j)
            break;
        j->fo = fo;
        j->interrupted = 1;
        j->id = json_integer_value(json_object_get(o, "id"));
        j->product_id = json_integer_value(json_object_get(o, "product_id"));
        j->created = json_integer_value(json_object_get(o, "created"));
        snprintf(j->version, sizeof j->version, "%s",
                 json_string_value(json_object_get(o, "version")) ?: "");
        j->filter = json_dumps(json_object_get(o, "filter"), JSON_SORT_KEYS);
        j->reboot = json_is_true(json_object_get(o, "reboot"));
        j->window = (unsigned)json_integer_value(json_object_get(o, "window"));
        j->timeout_s = (unsigned)json_integer_value(json_object_get(o, "timeout"));
#define GETN(k) (size_t)json_integer_value(json_object_get(o, #k))
        j->n = GETN(total);
        j->skipped = GETN(skipped);
        j->queued = GETN(queued);
        j->waiting = GETN(waiting);
        j->delivered = GETN(delivered);
        j->acked = GETN(acked);
        j->succeeded = GETN(succeeded);
        j->failed = GETN(failed);
        j->timed_out = GETN(timed_out);
        j->deleted = GETN(deleted);
        j->cancelled = GETN(cancelled);
        j->halted = json_is_true(json_object_get(o, "halted"));
        j->max_fail = json_is_integer(json_object_get(o, "max_failures"))
                          ? (long)json_integer_value(json_object_get(o, "max_failures")) : -1;
#undef GETN
        json_t *ms = json_object_get(o, "elapsed_ms");
        j->ms_delivered = json_is_number(json_object_get(ms, "delivered"))
                              ? json_number_value(json_object_get(ms, "delivered")) : -1;
        j->ms_acked = json_is_number(json_object_get(ms, "acked"))
                          ? json_number_value(json_object_get(ms, "acked")) : -1;
        j->ms_finished = json_is_number(json_object_get(ms, "finished"))
                             ? json_number_value(json_object_get(ms, "finished")) : -1;
        j->next = fo->jobs;
        fo->jobs = j;
        if (j->id >= fo->next_id)
            fo->next_id = j->id + 1;
    }
    json_decref(arr);
}

void fota_fanout__job_free(struct job *j)
{
    free(j->m);
    free(j->filter);
    free(j->ok_result);
    free(j->tmpl);
    free(j);
}

/* Writes the job's command rows, in two steps so the fan-out never waits
 * for them and each row is written once where possible:
 *  - pushed = 0, on the tick after the first pushes: the rows of members not
 *    pushed yet (offline ones, which the channel delivers when they connect,
 *    and those waiting for the window), as queued;
 *  - pushed = 1, once every pushed member's D4 is in (or FOTA_FANOUT_ROWS_MS
 *    after the job started): the rest, each in the state its member has
 *    reached (acked, done...), so the acknowledgement storm runs without
 *    database work and those rows need no second write.
 * One transaction per state present. Later changes go through flush_rows.
 * A crash before the second step loses the rows of pushes already sent
 * (the devices still upgrade and report; their D7 then has no command to
 * finish). A failed group (FOTA_ENOENT: a device was deleted meanwhile)
 * leaves its members without rows; the job still counts them. */
static void insert_rows(struct job *j, int pushed)
{
    struct fota_store *st = j->fo->ch->srv->store;
    size_t n = j->n ? j->n : 1;
    int64_t *ids = malloc(n * sizeof *ids), *nonces = malloc(n * sizeof *nonces);
    int64_t *cids = malloc(n * sizeof *cids);
    uint32_t *idx = malloc(n * sizeof *idx);
    int rc = FOTA_ENOMEM;
    size_t written = 0;
    if (ids && nonces && cids && idx) {
        struct fota_command t;
        memset(&t, 0, sizeof t);
        snprintf(t.action, sizeof t.action, "sys_upgrade");
        json_t *p = json_pack("{s:s}", "version", j->version);
        char *pt = p ? json_dumps(p, JSON_SORT_KEYS) : NULL;
        json_decref(p);
        snprintf(t.params, sizeof t.params, "%s", pt ? pt : "{}");
        free(pt);
        rc = 0;
        /* One group per row state; M_WAITING and M_QUEUED are both "queued";
         * cancelled members get their row too, a deleted device's none.
         * A failed group does not stop the others (rc keeps its error). */
        for (int s = M_QUEUED; s <= M_CANCELLED; s++) {
            if (s == M_GONE || (!pushed && s != M_QUEUED && s != M_CANCELLED))
                continue;
            size_t k = 0;
            for (size_t i = 0; i < j->n; i++) {
                int ms = j->m[i].state == M_WAITING ? M_QUEUED : j->m[i].state;
                if (ms != s || j->m[i].cmd_id)
                    continue;
                idx[k] = (uint32_t)i;
                ids[k] = j->m[i].device_id;
                nonces[k] = j->m[i].nonce;
                k++;
            }
            if (k == 0)
                continue;
            t.state = row_state(s);
            const char *res = row_result(j, s);
            snprintf(t.result, sizeof t.result, "%s", res ? res : "");
            int grc = st->ops->command_create_many(st, &t, ids, nonces, cids, k);
            if (grc < 0) {
                rc = grc;
                continue;
            }
            if (s == M_QUEUED) /* delivered on connect: cancelled if fotad restarts */
                fota_fanout__rows_note(j, cids, k);
            for (size_t i = 0; i < k; i++) {
                struct member *m = &j->m[idx[i]];
                m->cmd_id = cids[i];
                if (m->dirty) { /* written in the state it has now */
                    m->dirty = 0;
                    j->ndirty--;
                }
            }
            written += k;
        }
    }
    if (rc < 0)
        FOTA_ERROR("bulk upgrade rows not written job=%lld rows=%zu written=%zu error=%s",
                   (long long)j->id, j->n, written, fota_errname(rc));
    j->rows_pending = pushed ? 0 : 1;
    j->rows_queued = 1;
    free(ids);
    free(nonces);
    free(cids);
    free(idx);
}

/* The next loop turn after a report (so after the D7 reply went out): the
 * reboot and the next push of the window do not wait for the 200 ms tick.
 * Row writes stay with the tick (batched). */
static void soon_cb(evutil_socket_t fd, short what, void *ud)
{
    struct fota_fanout *fo = ud;
    (void)fd;
    (void)what;
    for (struct job *j = fo->jobs; j; j = j->next) {
        if (j->interrupted)
            continue;
        if (j->nreboot > 0)
            send_reboots(j);
        if (j->cursor < j->n)
            pump(j);
    }
}

static void timer_cb(evutil_socket_t fd, short what, void *ud)
{
    struct fota_fanout *fo = ud;
    (void)fd;
    (void)what;
    for (struct job *j = fo->jobs; j; j = j->next) {
        if (j->interrupted)
            continue;
        if (j->rows_pending && j->pumped && !j->rows_queued)
            insert_rows(j, 0);
        if (j->rows_pending && j->pumped &&
            (j->acked >= j->delivered || since_ms(&j->t0) >= FOTA_FANOUT_ROWS_MS))
            insert_rows(j, 1);
        if (j->active > 0)
            check_timeouts(j);
        if (j->nreboot > 0)
            send_reboots(j);
        if (j->cursor < j->n || !j->pumped)
            pump(j);
        else if (fo->changed)
            fota_fanout__job_marks(j);
    }
    flush_rows(fo);
    save_jobs(fo);
}

struct job *fota_fanout__job_find(struct fota_fanout *fo, int64_t id)
{
    for (struct job *j = fo->jobs; j; j = j->next)
        if (j->id == id)
            return j;
    return NULL;
}

/* j's member for device_id, or NULL (members are in device id order). */
static struct member *member_at(struct job *j, int64_t device_id)
{
    size_t lo = 0, hi = j->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (j->m[mid].device_id < device_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < j->n && j->m[lo].device_id == device_id ? &j->m[lo] : NULL;
}

/* The member of a running job for device_id whose row is still open. */
static struct member *member_find(struct fota_fanout *fo, int64_t device_id, int64_t nonce,
                                  struct job **jo)
{
    for (struct job *j = fo->jobs; j; j = j->next) {
        if (j->interrupted || !j->m)
            continue;
        struct member *m = member_at(j, device_id);
        if (!m || m->state >= M_DONE || (nonce && m->nonce != nonce))
            continue;
        *jo = j;
        return m;
    }
    return NULL;
}

size_t fota_fanout__job_cancel(struct job *j)
{
    size_t n = 0;
    j->cancel = 1;
    for (size_t i = 0; i < j->n; i++) {
        struct member *m = &j->m[i];
        if (m->state == M_WAITING)
            j->waiting--;
        else if (m->state == M_QUEUED)
            j->queued--; /* its row must not reach the device when it connects */
        else
            continue;
        finish_member(j, m, M_CANCELLED); /* no row yet: insert_rows writes it cancelled */
        n++;
    }
    fota_fanout__job_marks(j);
    flush_rows(j->fo); /* now, not at the next tick: an offline member may connect */
    return n;
}

void fota_fanout_device_gone(struct fota_fanout *fo, int64_t device_id)
{
    struct job *j = NULL;
    struct member *m;
    if (!fo)
        return;
    /* member_find skips finished members: every open one of this device goes */
    while ((m = member_find(fo, device_id, 0, &j)) != NULL) {
        if (m->state == M_WAITING)
            j->waiting--;
        else if (m->state == M_QUEUED)
            j->queued--;
        finish_member(j, m, M_GONE);
        FOTA_INFO("bulk upgrade member gone job=%lld dev=%lld reason=\"device deleted\"",
                  (long long)j->id, (long long)device_id);
        fota_fanout__job_marks(j);
    }
    for (j = fo->jobs; j; j = j->next) { /* a finished member may still await its reboot */
        struct member *r = j->interrupted || !j->m ? NULL : member_at(j, device_id);
        if (r && r->reboot_due) {
            r->reboot_due = 0;
            j->nreboot--;
        }
    }
    if (fo->soon)
        event_active(fo->soon, EV_TIMEOUT, 0); /* the window has room again */
}

int fota_fanout_on_reply(struct fota_fanout *fo, int64_t device_id, int64_t nonce, int status)
{
    struct job *j = NULL;
    struct member *m = fo && nonce ? member_find(fo, device_id, nonce, &j) : NULL;
    if (!m)
        return 0;
    count_delivered(j, m);
    if (m->state != M_ACKED)
        j->acked++;
    if (status != 200) {
        finish_member(j, m, M_FAILED);
        event_active(fo->soon, EV_TIMEOUT, 0); /* its window slot is free */
    } else
        set_state(j, m, M_ACKED);
    fota_fanout__job_marks(j);
    FOTA_DEBUG("bulk upgrade ack job=%lld dev=%lld status=%d", (long long)j->id,
               (long long)device_id, status);
    return 1;
}

int fota_fanout_on_report(struct fota_fanout *fo, int64_t device_id, int ok, const char *clean,
                          char *real, size_t cap)
{
    struct job *j = NULL;
    struct member *m = fo ? member_find(fo, device_id, 0, &j) : NULL;
    if (!m || m->state == M_WAITING)
        return 0;
    if (m->state == M_QUEUED && !ok)
        return 0;
    count_delivered(j, m);
    if (m->state != M_ACKED)
        j->acked++;
    finish_member(j, m, ok ? M_DONE : M_FAILED);
    if (ok && clean[0] && strncmp(j->version, clean, strlen(clean)) == 0)
        snprintf(real, cap, "%s", j->version);
    if (ok && j->reboot) {
        m->reboot_due = 1; /* after the D7 reply: next loop turn */
        j->nreboot++;
    }
    fota_fanout__job_marks(j);
    if (fo->soon)
        event_active(fo->soon, EV_TIMEOUT, 0);
    return 1;
}

struct fota_fanout *fota_fanout_new(struct fota_devchan *ch)
{
    struct fota_fanout *fo = calloc(1, sizeof *fo);
    if (!fo)
        return NULL;
    fo->ch = ch;
    fo->next_id = 1;
    fo->timer = event_new(ch->srv->base, -1, EV_PERSIST, timer_cb, fo);
    fo->soon = event_new(ch->srv->base, -1, 0, soon_cb, fo);
    struct timeval tv = { 0, FOTA_FANOUT_FLUSH_MS * 1000 };
    if (!fo->timer || !fo->soon || event_add(fo->timer, &tv) < 0) {
        fota_fanout_free(fo);
        return NULL;
    }
    load_jobs(fo);
    fota_fanout__rows_recover(fo);
    if (ch->srv->http && fota_fanout__routes(fo) < 0) {
        FOTA_ERROR("cannot add the bulk upgrade routes");
        fota_fanout_free(fo);
        return NULL;
    }
    return fo;
}

void fota_fanout_free(struct fota_fanout *fo)
{
    if (!fo)
        return;
    for (struct job *j = fo->jobs; j; j = j->next)
        if (j->rows_pending)
            insert_rows(j, 1);
    flush_rows(fo);
    fo->saved_at = 0;
    save_jobs(fo);
    while (fo->jobs) {
        struct job *j = fo->jobs;
        fo->jobs = j->next;
        fota_fanout__job_free(j);
    }
    if (fo->timer)
        event_free(fo->timer);
    if (fo->soon)
        event_free(fo->soon);
    fota_key_deriver_free(fo->kd);
    free(fo);
}
