/* rollout_ctl.c - what acts on a rollout over REST (docs/api.md,
 * "Rollouts"): POST /v1/rollouts/ID/cancel stops its pushes, /pause and
 * /resume hold and release them, /approve starts its next stage, /rollback
 * puts the failed (or all upgraded) devices back on the version each ran
 * before, as new rollouts linked to it; GET /v1/rollouts/ID/progress is its
 * counters over time. Admin key; every change is written at once. Test
 * builds add POST /v1/test/clock (below). */
#include "rollout_int.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cluster.h"
#include "fota_str.h"
#include "http.h"
#include "hub.h"
#include "log.h"
#include "loop.h"
#include "xmalloc.h"

#define ROLLBACK_GROUPS_MAX 8     /* previous versions one rollback goes back to */
#define LEFT_OUT_SHOWN      100

/* A control route's rollout that the engine does not hold: the store says
 * how it ended (or that it does not exist). */
struct ended {
    struct fota_req *r;                /* deferred */
    struct fota_rollouts *ro;
    const char *what;
    int64_t id;
    int rc;
    int elsewhere;                     /* another instance drives the rollouts */
    struct fota_rollout_row row;
};

static void ended_job(struct fota_store *st, void *arg)
{
    struct ended *e = arg;
    e->rc = st->ops->rollout_get(st, e->id, &e->row);
}

static void ended_done(void *arg, int cancelled)
{
    struct ended *e = arg;
    struct fota_req *r = e->r;
    const struct fota_rollout_row *row = &e->row;
    if (!cancelled && e->rc == 0 && e->elsewhere &&
        (fota_rollout_live(row->state) || row->state == FOTA_ROLLOUT_CANCELLING)) {
        fota_rollout_elsewhere(e->ro, r, r->path, NULL);   /* the driver's to answer */
        free(e);
        return;
    }
    if (cancelled)
        fota_reply_error(r, 503, "fotad is shutting down");
    else if (e->rc == FOTA_ENOENT)
        fota_reply_error(r, 404, "no rollout %lld", (long long)e->id);
    else if (e->rc < 0)
        fota_reply_error(r, 500, "cannot read rollout %lld: %s", (long long)e->id,
                         fota_errname(e->rc));
    else
        fota_reply_error(r, 409, "rollout %lld has %s: nothing to %s", (long long)row->id,
                         row->state == FOTA_ROLLOUT_INTERRUPTED ? "been interrupted by a restart"
                         : row->state == FOTA_ROLLOUT_CANCELLED ? "been cancelled and finished"
                                                                : "finished",
                         e->what);
    fota_req_release(r);
    free(e);
}

/* What live_find left of a control route's request: the live rollout it
 * names (*out), an answer sent, or the request passed on (a job reads a
 * rollout the engine does not hold, or the driver answers): r is theirs. */
enum { ONE_LIVE, ONE_REPLIED, ONE_PASSED };

/* The live rollout id (live_one), looked up. */
static int live_find(struct fota_req *r, int64_t id, const char *what, struct fota_rollout **out)
{
    struct fota_rollouts *ro = r->ud;
    if (ro->epoch == 0 && r->inner) {
        fota_rollout_elsewhere(ro, r, r->path, NULL);   /* 503: the lease moved */
        return ONE_PASSED;
    }
    struct fota_rollout *live = ro->epoch ? fota_rollout_find(ro, id) : NULL;
    if (live && fota_rollout_ended(live) < (int64_t)live->n) {
        *out = live;
        return ONE_LIVE;
    }
    if (live) {
        fota_reply_error(r, 409, "rollout %lld has %s: nothing to %s", (long long)id,
                         live->row.state == FOTA_ROLLOUT_CANCELLED ? "been cancelled and finished"
                                                                   : "finished",
                         what);
        return ONE_REPLIED;
    }
    struct ended *e = fota_xcalloc(1, sizeof *e);
    *e = (struct ended){ .r = r, .ro = ro, .what = what, .id = id, .elsewhere = ro->epoch == 0 };
    /* the continuation runs on this loop after the handler returned */
    if (fota_rollout_submit(ro, "rollout read", ended_job, ended_done, e) == 0) {
        fota_req_defer(r);
        return ONE_PASSED;
    }
    free(e);
    fota_reply_error(r, 503, "store busy: too many requests wait for the store");
    return ONE_REPLIED;
}

/* The live rollout a control route names, or NULL when a reply is sent
 * (409 naming how it ended) or on its way (one the engine does not hold:
 * a job on the rollout lane, after the rollout's last write, reads it;
 * r is deferred). On an instance that does not drive the rollouts, the
 * stored row says whether the rollout exists and still runs, and the
 * driver answers for one that does (fota_rollout_elsewhere). */
static struct fota_rollout *live_one(struct fota_req *r, const char *what)
{
    struct fota_rollout *x = NULL;
    struct fota_key k;
    int64_t id;
    if (fota_req_admin(r, &k) < 0 || (id = fota_req_cap_id(r, 0)) < 0)
        return NULL;
    return live_find(r, id, what, &x) == ONE_LIVE ? x : NULL;
}

/* A pull rollout's device takes its offer by downloading it, and the
 * engine hears so (DEVICE_REPLY) when the download's command is written
 * `delivered`: with store threads, a job some milliseconds after the last
 * byte went out. A control that calls offers back (cancel, pause) acts on
 * every download completed before the request: a job publishes
 * DOWNLOADS_SYNC first (off the loops its subscribers write at once, and
 * each write posts its reply to the main loop ahead of the job's
 * continuation), and the route acts in the continuation. Inline (SQLite)
 * the commands are written before the download's end is logged. An act
 * replies, or passes r on (1: reply_rollout's continuation). */
typedef int (*act_fn)(struct fota_req *r, struct fota_rollout *x);
struct synced {
    struct fota_req *r;                /* deferred */
    int64_t id;
    const char *what;
    act_fn act;
};

static void synced_job(struct fota_store *st, void *arg)
{
    struct synced *s = arg;
    (void)st;
    fota_hub_publish(s->r->srv, FOTA_HUB_DOWNLOADS_SYNC, NULL);
}

static void synced_done(void *arg, int cancelled)
{
    struct synced *s = arg;
    struct fota_req *r = s->r;
    struct fota_rollout *x = NULL;
    int how = ONE_REPLIED;
    if (cancelled)
        fota_reply_error(r, 503, "fotad is shutting down");
    else if ((how = live_find(r, s->id, s->what, &x)) == ONE_LIVE && s->act(r, x))
        how = ONE_PASSED;
    if (how != ONE_PASSED)
        fota_req_release(r);
    free(s);
}

/* Runs act(r, x) now, or after the downloads' sync (above) for a pull
 * rollout when the store has threads. */
static void act_synced(struct fota_req *r, struct fota_rollout *x, const char *what, act_fn act)
{
    struct fota_rollouts *ro = r->ud;
    struct synced *s;
    if (!x->pull || !ro->srv->exec || !fota_store_exec_threaded(ro->srv->exec)) {
        (void)act(r, x);
        return;
    }
    s = fota_xcalloc(1, sizeof *s);
    *s = (struct synced){ .r = r, .id = x->row.id, .what = what, .act = act };
    /* any store thread: the sync needs no place among the lane's writes */
    if (fota_store_submit(ro->srv->exec, NULL, ro->srv->loops[0], synced_job, synced_done, s) == 0) {
        fota_req_defer(r);
        return;
    }
    free(s);
    fota_reply_error(r, 503, "store busy: too many requests wait for the store");
}

/* fota_rollout_reply_written: the answer waits in a job on the rollout
 * lane, which runs after the jobs submitted before it. */
struct written {
    struct fota_req *r;                /* deferred */
    json_t *body;
};

static void written_job(struct fota_store *st, void *arg)
{
    (void)st;
    (void)arg;   /* the lane's jobs before it ran */
}

static void written_done(void *arg, int cancelled)
{
    struct written *w = arg;
    if (cancelled) {
        json_decref(w->body);
        fota_reply_error(w->r, 503, "fotad is shutting down");
    } else {
        fota_reply_json(w->r, 200, w->body);
    }
    fota_req_release(w->r);
    free(w);
}

void fota_rollout_reply_written(struct fota_rollouts *ro, struct fota_req *r, json_t *body)
{
    struct fota_server *srv = ro->srv;
    struct written *w = fota_xmalloc(sizeof *w);
    *w = (struct written){ r, body };
    fota_req_defer(r);
    /* ro->lane is set at start; the job writes nothing, so it needs no fence */
    if (fota_store_submit(srv->exec, ro->lane, srv->loops[0], written_job, written_done, w) == 0)
        return;
    free(w);   /* the lane is full: answered now */
    fota_reply_json(r, 200, body);
    fota_req_release(r);
}

/* A control's answer: the rollout x (and key: v), once the lane has written
 * what the control changed when the store has threads (1: r is passed on,
 * fota_rollout_reply_written), else now (0). */
static int reply_rollout(struct fota_req *r, struct fota_rollout *x, const char *key, int64_t v)
{
    struct fota_rollouts *ro = x->ro;
    fota_rollout_flush(ro); /* now, not at the next tick */
    json_t *j = json_pack("{s:o}", "rollout", fota_rollout_json(&x->row));
    if (key)
        json_object_set_new(j, key, json_integer(v));
    if (ro->srv->exec && fota_store_exec_threaded(ro->srv->exec)) {
        fota_rollout_reply_written(ro, r, j);
        return 1;
    }
    fota_reply_json(r, 200, j);
    return 0;
}

/* POST /v1/rollouts/ID/cancel: stops a live rollout's pushes (see
 * fota_rollout_cancel); 409 once it has ended. */
static int cancel_act(struct fota_req *r, struct fota_rollout *x)
{
    size_t n = fota_rollout_live(x->row.state) ? fota_rollout_cancel(x) : 0;
    FOTA_INFO("rollout cancelled rollout=%lld members_cancelled=%zu in_progress=%lld",
              (long long)x->row.id, n, (long long)x->row.n.active);
    return reply_rollout(r, x, "cancelled_now", (int64_t)n);
}

static void cancel_handler(struct fota_req *r)
{
    struct fota_rollout *x = live_one(r, "cancel");
    if (x)
        act_synced(r, x, "cancel", cancel_act);
}

static int pause_act(struct fota_req *r, struct fota_rollout *x)
{
    if (x->row.state == FOTA_ROLLOUT_CANCELLING) {
        fota_reply_error(r, 409, "rollout %lld is cancelling", (long long)x->row.id);
        return 0;
    }
    fota_rollout_pause(x, 0, "paused by request");   /* paused already: as it is */
    return reply_rollout(r, x, NULL, 0);
}

static void pause_handler(struct fota_req *r)
{
    struct fota_rollout *x = live_one(r, "pause");
    if (x)
        act_synced(r, x, "pause", pause_act);
}

static void resume_handler(struct fota_req *r)
{
    struct fota_rollout *x = live_one(r, "resume");
    if (!x)
        return;
    if (fota_rollout_resume(x) < 0) {
        fota_reply_error(r, 409, "rollout %lld is not paused", (long long)x->row.id);
        return;
    }
    (void)reply_rollout(r, x, NULL, 0);
}

static void approve_handler(struct fota_req *r)
{
    struct fota_rollout *x = live_one(r, "approve");
    if (!x)
        return;
    int rc = x->row.state == FOTA_ROLLOUT_CANCELLING ? FOTA_ENOENT : fota_rollout_approve(x);
    if (rc == FOTA_EINVAL) {
        fota_reply_error(r, 409, "rollout %lld is paused: resume it first", (long long)x->row.id);
        return;
    }
    if (rc < 0) {
        fota_reply_error(r, 409, "rollout %lld has no stage left to approve", (long long)x->row.id);
        return;
    }
    FOTA_INFO("rollout approved rollout=%lld stage=%d", (long long)x->row.id, x->row.stage + 1);
    (void)reply_rollout(r, x, NULL, 0);
}

static void progress_handler(struct fota_req *r)
{
    struct fota_key k;
    struct fota_rollout_row *row = fota_xmalloc(sizeof *row);
    struct fota_rollout_sample *xs = NULL;
    size_t n = 0;
    int live = 0;
    if (fota_req_admin(r, &k) < 0 || (live = fota_rollout_view(r, r->ud, row, 0)) < 0)
        goto out;
    int rc = r->srv->store->ops->rollout_samples(r->srv->store, row->id, &xs, &n);
    if (rc < 0) {
        fota_reply_error(r, 500, "cannot read the progress: %s", fota_errname(rc));
        goto out;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, fota_rollout_sample_json(&xs[i]));
    if (live) { /* and now */
        struct fota_rollout_sample now = { row->id, fota_clock_wall_s(), row->n };
        if (n == 0 || xs[n - 1].t < now.t)
            json_array_append_new(arr, fota_rollout_sample_json(&now));
    }
    fota_reply_json(r, 200, json_pack("{s:I, s:o}", "rollout_id", (json_int_t)row->id,
                                      "progress", arr));
out:
    free(xs);
    free(row);
}

/* ---- roll back ------------------------------------------------------------ */

/* The devices of one previous version. */
struct group {
    char version[FOTA_VERSION_MAX];
    int64_t *ids;
    size_t n;
};

static int member_chosen(const struct fota_rollout_member_row *m, int upgraded)
{
    if (upgraded)
        return m->reported > 0;
    return m->state == FOTA_RM_FAILED || m->state == FOTA_RM_TIMEOUT;
}

/* Why a chosen member cannot go back, or NULL. */
static const char *left_out(struct fota_store *st, const struct fota_rollout_row *row,
                            const struct fota_rollout_member_row *m)
{
    struct fota_rom rom;
    if (!m->pre_version[0])
        return "its version before the rollout is unknown";
    if (strcmp(m->pre_version, row->version) == 0)
        return "it ran the rollout's version before";
    if (st->ops->rom_get(st, row->product_id, m->pre_version, &rom) != 0)
        return "its previous version is no release of the product";
    return NULL;
}

/* Groups the chosen members by previous version; the others go to out. */
static int group_members(struct fota_store *st, const struct fota_rollout_row *row,
                         const struct fota_rollout_member_row *ms, size_t nm, int upgraded,
                         struct group *g, size_t *ng, json_t *out, size_t *nout)
{
    for (size_t i = 0; i < nm; i++) {
        if (!member_chosen(&ms[i], upgraded))
            continue;
        const char *why = left_out(st, row, &ms[i]);
        size_t k = 0;
        while (!why && k < *ng && strcmp(g[k].version, ms[i].pre_version) != 0)
            k++;
        if (!why && k == *ng && *ng == ROLLBACK_GROUPS_MAX)
            why = "the rollback goes back to more previous versions than it can at once";
        if (why) {
            if ((*nout)++ < LEFT_OUT_SHOWN)
                json_array_append_new(out, json_pack("{s:I, s:s}", "device_id",
                                                     (json_int_t)ms[i].device_id, "reason", why));
            continue;
        }
        if (k == *ng) {
            fota_str_copy(g[k].version, sizeof g[k].version, ms[i].pre_version);
            g[k].ids = fota_xreallocarray(NULL, nm, sizeof *g[k].ids);
            (*ng)++;
        }
        g[k].ids[g[k].n++] = ms[i].device_id; /* device id order: ms is */
    }
    return 0;
}

/* The body of a group's rollout: the rolled-back rollout's settings, the
 * request's overrides. */
static json_t *group_body(const struct fota_rollout_row *row, const struct group *g,
                          json_t *req)
{
    json_t *b = json_pack("{s:I, s:s, s:b, s:I, s:I, s:I, s:I}", "product_id",
                          (json_int_t)row->product_id, "version", g->version, "reboot",
                          row->reboot, "window", (json_int_t)row->window, "timeout",
                          (json_int_t)row->timeout_s, "health", (json_int_t)row->health_s,
                          "max_reboots", (json_int_t)row->max_reboots);
    const char *key;
    json_t *v;
    json_object_foreach(req, key, v) {
        if (strcmp(key, "devices") != 0)
            json_object_set(b, key, v);
    }
    return b;
}

/* A rollback between its checks and its reply. */
struct rollback {
    struct fota_req *r;
    struct fota_rollouts *ro;
    struct fota_rollout_row row;
    json_t *body;
    int upgraded;
    int deferred;                      /* r is the job's: released after the reply */
};

/* What a rollback does on the main loop: the rollouts running (over: too
 * many for ng more) and the rolled-back rollout cancelled if it runs. */
struct rollback_main {
    struct fota_rollouts *ro;
    int64_t id;
    size_t ng;
    int over;
};

static void rollback_main_run(void *arg)
{
    struct rollback_main *c = arg;
    struct fota_rollouts *ro = c->ro;
    if (fota_rollout_running(ro) + ro->creating + c->ng > FOTA_ROLLOUT_RUNNING_MAX) {
        c->over = 1;
        return;
    }
    struct fota_rollout *live = fota_rollout_find(ro, c->id);
    if (live && fota_rollout_live(live->row.state)) {
        size_t n = fota_rollout_cancel(live);   /* its members not started yet stay where they are */
        fota_rollout_flush(ro);
        FOTA_INFO("rollout cancelled rollout=%lld members_cancelled=%zu reason=\"rolled back\"",
                  (long long)c->id, n);
    }
}

/* The members as stored (a live rollout's written before), grouped; the
 * rollouts made; the reply. Any thread. */
static void rollback_run(struct fota_store *st, struct rollback *b)
{
    struct fota_req *r = b->r;
    struct fota_rollouts *ro = b->ro;
    const struct fota_rollout_row *row = &b->row;
    struct fota_rollout_member_row *ms = NULL;
    struct group g[ROLLBACK_GROUPS_MAX];
    size_t nm = 0, ng = 0, nout = 0, chosen = 0;
    json_t *out = json_array(), *made = json_array();
    memset(g, 0, sizeof g);
    int rc = st->ops->rollout_members(st, row->id, 0, 0, 0, &ms, &nm);
    if (rc < 0) {
        fota_reply_error(r, 500, "cannot read the members: %s", fota_errname(rc));
        goto done;
    }
    group_members(st, row, ms, nm, b->upgraded, g, &ng, out, &nout);
    for (size_t j = 0; j < ng; j++)
        chosen += g[j].n;
    if (chosen == 0) {
        fota_reply_error(r, 409, "rollout %lld has no %s devices to roll back%s",
                         (long long)row->id, b->upgraded ? "upgraded" : "failed",
                         nout ? " (none has a previous version to go back to)" : "");
        goto done;
    }
    struct rollback_main c = { ro, row->id, ng, 0 };
    if (fota_loop_call(ro->srv->loops[0], rollback_main_run, &c) != 0) {
        fota_reply_error(r, 503, "fotad is shutting down");
        goto done;
    }
    if (c.over) {
        fota_reply_error(r, 429, "%d rollouts are running; wait for one to finish",
                         FOTA_ROLLOUT_RUNNING_MAX);
        goto done;
    }
    for (size_t j = 0; j < ng; j++) {
        json_t *gb = group_body(row, &g[j], b->body);
        struct fota_rollout_row *xr = fota_xmalloc(sizeof *xr);
        int crc = fota_rollout_create(r, ro, gb, g[j].ids, g[j].n, row->id, xr);
        json_decref(gb);
        if (crc == 0)
            json_array_append_new(made, fota_rollout_json(xr));
        free(xr);
        if (crc > 0)   /* the lease moved meanwhile */
            fota_reply_error(r, 503, "this fotad instance no longer drives the rollouts: "
                             "retry the rollback");
        if (crc != 0)
            goto done;   /* replied (a bad override: the first group is refused) */
    }
    FOTA_INFO("rollout rolled back rollout=%lld devices=%s chosen=%zu rollouts=%zu left_out=%zu",
              (long long)row->id, b->upgraded ? "upgraded" : "failed", chosen, ng, nout);
    fota_reply_json(r, 202, json_pack("{s:O, s:I, s:O, s:I}", "rollouts", made, "devices",
                                      (json_int_t)chosen, "left_out", out, "left_out_total",
                                      (json_int_t)nout));
done:
    for (size_t j = 0; j < ng; j++)
        free(g[j].ids);
    free(ms);
    json_decref(out);
    json_decref(made);
    json_decref(b->body);
    if (b->deferred)
        fota_req_release(r);
    free(b);
}

static void rollback_job(struct fota_store *st, void *arg)
{
    struct rollback *b = arg;
    int64_t epoch = fota_store_fence_epoch();
    /* the rollout's cancel acts on every download completed before
     * (act_synced); their commands' writes are not the engine's to fence */
    fota_store_fence(0);
    fota_hub_publish(b->ro->srv, FOTA_HUB_DOWNLOADS_SYNC, NULL);
    fota_store_fence(epoch);
    rollback_run(st, b);
}

/* POST /v1/rollouts/ID/rollback {"devices": "failed" | "upgraded", ...}:
 * each previous version of the chosen devices gets a rollout of them,
 * linked to it; the rollout itself stops first (cancelled, when it still
 * runs). Nothing changes when no device can go back (409). A store job: a
 * live rollout's members are written on the main loop first (a job on the
 * rollout lane), and read by the next job of that lane. */
static void rollback_handler(struct fota_req *r)
{
    struct fota_rollouts *ro = r->ud;
    struct fota_key k;
    struct rollback *b = fota_xcalloc(1, sizeof *b);
    int live;
    b->r = r;
    b->ro = ro;
    if (fota_req_admin(r, &k) < 0 || (live = fota_rollout_view(r, ro, &b->row, 1)) < 0)
        goto fail;
    /* (a store route's body is its copy: body_len 0 for none) */
    b->body = r->body_len ? fota_req_json_body(r) : json_object();
    if (!b->body)
        goto fail;
    const char *which = json_string_value(json_object_get(b->body, "devices"));
    json_t *allowed = json_pack("[s, s, s, s, s, s, s, s]", "devices", "reboot", "window",
                                "timeout", "health", "max_reboots", "hours", "max_failures");
    const char *key;
    json_t *v;
    size_t i;
    json_object_foreach(b->body, key, v) {
        int ok = 0;
        json_t *a;
        json_array_foreach(allowed, i, a) ok = ok || strcmp(key, json_string_value(a)) == 0;
        if (!ok) {
            json_decref(allowed);
            fota_reply_error(r, 400, "unknown key \"%.40s\" (devices, reboot, window, timeout, "
                             "health, max_reboots, hours, max_failures)", key);
            goto fail;
        }
    }
    json_decref(allowed);
    if (json_object_get(b->body, "devices") && (!which || (strcmp(which, "failed") != 0 &&
                                                           strcmp(which, "upgraded") != 0))) {
        fota_reply_error(r, 400, "devices must be \"failed\" or \"upgraded\"");
        goto fail;
    }
    b->upgraded = which && strcmp(which, "upgraded") == 0;
    if (fota_cluster_rollouts_epoch(ro->srv) == 0) {
        fota_rollout_elsewhere(ro, r, r->path, b->body);   /* the driver's to answer */
        goto fail;
    }
    if (live && ro->srv->exec && fota_store_exec_threaded(ro->srv->exec)) {
        fota_req_defer(r);
        b->deferred = 1;
        if (fota_rollout_submit(ro, "rollback", rollback_job, NULL, b) == 0)
            return;   /* r and b are the job's */
        fota_reply_error(r, 503, "store busy: too many requests wait for the store");
        fota_req_release(r);
        goto fail;
    }
    rollback_run(r->srv->store, b);   /* inline (SQLite): the write ran already */
    return;
fail:
    json_decref(b->body);
    free(b);
}

#ifdef FOTA_TEST_HOOKS
/* POST /v1/test/clock {"advance_ms": N} (admin key), in test builds only
 * (FOTA_TEST_HOOKS: the sanitizer trees): moves fotad's clocks forward
 * (clock.h), so the tests of health times, timeouts and maintenance
 * windows do not wait for them; the rollouts look on their next tick. */
static void test_clock_handler(struct fota_req *r)
{
    struct fota_key k;
    json_t *body = NULL;
    if (fota_req_admin(r, &k) < 0 || !(body = fota_req_json_body(r)))
        return;
    json_t *v = json_object_get(body, "advance_ms");
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > 366LL * 86400 * 1000) {
        fota_reply_error(r, 400, "advance_ms must be an integer 0..31622400000");
    } else {
        fota_clock_advance_ms(json_integer_value(v));
        FOTA_WARN("test clock advanced ms=%lld", (long long)json_integer_value(v));
        fota_rollout_act_soon(r->ud);
        fota_reply_json(r, 200, json_pack("{s:I}", "wall_ms", (json_int_t)fota_clock_wall_ms()));
    }
    json_decref(body);
}
#endif

int fota_rollout_ctl_routes(struct fota_rollouts *ro)
{
    struct fota_server *srv = ro->srv;
#ifdef FOTA_TEST_HOOKS
    if (fota_http_route(srv, FOTA_M_POST, "/v1/test/clock", test_clock_handler, ro) < 0)
        return -1;
#endif
    if (fota_http_route(srv, FOTA_M_POST, "/v1/rollouts/*/cancel", cancel_handler, ro) < 0 ||
        fota_http_route(srv, FOTA_M_POST, "/v1/rollouts/*/pause", pause_handler, ro) < 0 ||
        fota_http_route(srv, FOTA_M_POST, "/v1/rollouts/*/resume", resume_handler, ro) < 0 ||
        fota_http_route(srv, FOTA_M_POST, "/v1/rollouts/*/approve", approve_handler, ro) < 0 ||
        fota_http_route_flags(srv, FOTA_M_POST, "/v1/rollouts/*/rollback", rollback_handler, ro,
                              FOTA_ROUTE_STORE) < 0 ||
        fota_http_route_flags(srv, FOTA_M_GET, "/v1/rollouts/*/progress", progress_handler, ro,
                              FOTA_ROUTE_STORE) < 0)
        return -1;
    return 0;
}
