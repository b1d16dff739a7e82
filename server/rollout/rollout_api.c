/* rollout_api.c - the REST side of rollouts (docs/api.md, "Rollouts"):
 * POST /v1/rollouts/ checks the request, its filter and its stages, selects
 * the devices, puts each in its stage and hands the rollout to the engine
 * (rollout.c), answering 202 at once; GET /v1/rollouts/ and
 * /v1/rollouts/ID/ show settings, counters and stages (a live rollout from
 * memory, any other from the store); GET /v1/rollouts/ID/devices/ pages
 * through its members. What acts on a rollout is in rollout_ctl.c. Admin
 * key. */
#include "rollout_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "clock.h"
#include "cluster.h"
#include "devchan.h"
#include "devproto.h"
#include "fota_str.h"
#include "api.h"
#include "api_select.h"
#include "log.h"
#include "relcache.h"
#include "loop.h"
#include "http.h"
#include "rollout_plan.h"
#include "xmalloc.h"

#define MEMBERS_PAGE_DEFAULT 100
#define MEMBERS_PAGE_MAX     1000

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* A stage's device_ids, checked and sorted into *ids (the caller frees).
 * 0, or a reply was sent. */
static int parse_ids(struct fota_req *r, json_t *v, int64_t **ids, size_t *nids)
{
    size_t n = json_array_size(v), i;
    json_t *e;
    if (!json_is_array(v) || n == 0 || n > FOTA_ROLLOUT_WINDOW_MAX) {
        fota_reply_error(r, 400, "device_ids must be a list of 1..%d device ids",
                         FOTA_ROLLOUT_WINDOW_MAX);
        return -1;
    }
    *ids = fota_xreallocarray(NULL, n, sizeof **ids);
    json_array_foreach(v, i, e) {
        if (!json_is_integer(e) || json_integer_value(e) <= 0) {
            fota_reply_error(r, 400, "device_ids must hold positive integers");
            return -1;
        }
        (*ids)[i] = json_integer_value(e);
    }
    *nids = n;
    qsort(*ids, n, sizeof **ids, cmp_id);
    return 0;
}

/* The request's filter: the words every device selection takes
 * (api_select.h: tag, version or rom_version, online, checkin_before,
 * checkin_after, q, name, device_ids). *online is its online (-1: any),
 * which the rollout decides itself (the device channel's or a pull
 * device's presence now); the store selects the rest. 0, or a reply was
 * sent. */
static int parse_filter(struct fota_req *r, json_t *f, struct fota_api_select *out, int *online)
{
    char reason[200];
    if (fota_api_select_json(f, fota_clock_wall_s(), out, reason, sizeof reason) != 0) {
        fota_reply_error(r, 400, "%s", reason);
        return -1;
    }
    *online = out->sel.online;
    out->sel.online = -1;
    return 0;
}

static int opt_int(struct fota_req *r, json_t *body, const char *name, int64_t lo, int64_t hi,
                   int64_t *out)
{
    json_t *v = json_object_get(body, name);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        fota_reply_error(r, 400, "%s must be an integer %lld..%lld", name, (long long)lo,
                         (long long)hi);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

static int opt_bool(struct fota_req *r, json_t *body, const char *name, int *out)
{
    json_t *v = json_object_get(body, name);
    if (!v)
        return 0;
    if (!json_is_boolean(v)) {
        fota_reply_error(r, 400, "%s must be true or false", name);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

/* ---- stages ------------------------------------------------------------- */

/* The request's stages, checked (docs/api.md, "Stages"). */
struct stages_req {
    struct fota_rollout_stage_spec spec[FOTA_ROLLOUT_STAGES_MAX];
    int success[FOTA_ROLLOUT_STAGES_MAX];
    int64_t max_failures[FOTA_ROLLOUT_STAGES_MAX];
    int approval[FOTA_ROLLOUT_STAGES_MAX];     /* -1: the rollout's */
    int64_t *ids[FOTA_ROLLOUT_STAGES_MAX];     /* owned */
    size_t n;
};

static void stages_req_cleanup(struct stages_req *q)
{
    for (size_t i = 0; i < q->n; i++)
        free(q->ids[i]);
}

/* Stage k's object into q. 0, or a reply was sent. */
static int parse_stage(struct fota_req *r, json_t *o, size_t k, int64_t max_failures,
                       struct stages_req *q)
{
    struct fota_rollout_stage_spec *sp = &q->spec[k];
    const char *key;
    json_t *v;
    int kinds = 0;
    q->success[k] = 100;
    q->max_failures[k] = max_failures;
    q->approval[k] = -1;
    if (!json_is_object(o)) {
        fota_reply_error(r, 400, "stage %zu must be an object", k + 1);
        return -1;
    }
    json_object_foreach(o, key, v) {
        int64_t x = 0;
        if (strcmp(key, "percent") == 0 || strcmp(key, "count") == 0) {
            int pct = key[0] == 'p';
            if (opt_int(r, o, key, 1, pct ? 100 : FOTA_ROLLOUT_WINDOW_MAX, &x) < 0)
                return -1;
            sp->kind = pct ? FOTA_STAGE_PERCENT : FOTA_STAGE_COUNT;
            sp->value = x;
            kinds++;
        } else if (strcmp(key, "device_ids") == 0) {
            int64_t *ids = NULL;
            size_t nids = 0;
            if (parse_ids(r, v, &ids, &nids) < 0) {
                free(ids);
                return -1;
            }
            sp->kind = FOTA_STAGE_DEVICES;
            sp->ids = q->ids[k] = ids;
            sp->nids = nids;
            sp->value = (int64_t)nids;
            kinds++;
        } else if (strcmp(key, "success") == 0) {
            if (opt_int(r, o, key, 0, 100, &x) < 0)
                return -1;
            q->success[k] = (int)x;
        } else if (strcmp(key, "max_failures") == 0) {
            if (opt_int(r, o, key, 0, FOTA_ROLLOUT_WINDOW_MAX, &q->max_failures[k]) < 0)
                return -1;
        } else if (strcmp(key, "approval") == 0) {
            if (opt_bool(r, o, key, &q->approval[k]) < 0)
                return -1;
        } else {
            fota_reply_error(r, 400, "stage %zu: unknown key \"%.40s\" (percent, count, "
                             "device_ids, success, max_failures, approval)", k + 1, key);
            return -1;
        }
    }
    if (kinds != 1) {
        fota_reply_error(r, 400, "stage %zu needs one of percent, count or device_ids", k + 1);
        return -1;
    }
    return 0;
}

/* 0, or a reply was sent. */
static int parse_stages(struct fota_req *r, json_t *arr, int64_t max_failures,
                        struct stages_req *q)
{
    size_t i;
    json_t *o;
    int64_t last_pct = 0;
    memset(q, 0, sizeof *q);
    if (!arr)
        return 0;
    if (!json_is_array(arr) || json_array_size(arr) == 0 ||
        json_array_size(arr) >= FOTA_ROLLOUT_STAGES_MAX) {
        fota_reply_error(r, 400, "stages must be a list of 1..%d stages",
                         FOTA_ROLLOUT_STAGES_MAX - 1);
        return -1;
    }
    json_array_foreach(arr, i, o) {
        q->n = i + 1;
        if (parse_stage(r, o, i, max_failures, q) < 0)
            return -1;
        if (q->spec[i].kind == FOTA_STAGE_PERCENT) {
            if (q->spec[i].value <= last_pct) {
                fota_reply_error(r, 400, "stage %zu: percent %lld does not grow (the stage "
                                 "before reaches %lld %%)", i + 1, (long long)q->spec[i].value,
                                 (long long)last_pct);
                return -1;
            }
            last_pct = q->spec[i].value;
        }
    }
    return 0;
}

/* Puts each member of x in its stage and fills x's stages: the request's,
 * plus one for the members they leave over. */
static void plan_stages(struct fota_rollout *x, const struct stages_req *q, int approval)
{
    struct fota_rollout_row *w = &x->row;
    int64_t *ids = fota_xreallocarray(NULL, x->n ? x->n : 1, sizeof *ids);
    uint8_t *stage_of = fota_xcalloc(x->n ? x->n : 1, 1);
    struct fota_rollout_plan_slot *scratch = fota_xreallocarray(NULL, x->n ? x->n : 1,
                                                                sizeof *scratch);
    int64_t totals[FOTA_ROLLOUT_STAGES_MAX + 1];
    for (size_t i = 0; i < x->n; i++)
        ids[i] = x->m[i].device_id;
    size_t ns = fota_rollout_plan_stages(q->spec, q->n, ids, x->n, (uint64_t)w->seed, stage_of,
                                         totals, scratch);
    for (size_t i = 0; i < x->n; i++)
        x->m[i].stage = stage_of[i];
    w->nstages = (int)ns;
    for (size_t k = 0; k < ns; k++) {
        struct fota_rollout_stage *g = &w->stages[k];
        memset(g, 0, sizeof *g);
        g->total = totals[k];
        if (k < q->n) {
            g->kind = q->spec[k].kind;
            g->value = q->spec[k].value;
            g->success = q->success[k];
            g->max_failures = q->max_failures[k];
            g->approval = q->approval[k] >= 0 ? q->approval[k] : k > 0 && approval;
        } else {
            g->kind = q->n ? FOTA_STAGE_REST : FOTA_STAGE_ALL;
            g->value = q->n ? 0 : 100;
            g->success = 100;
            g->max_failures = w->max_failures;
            g->approval = k > 0 && approval;
        }
    }
    free(ids);
    free(stage_of);
    free(scratch);
}

/* ---- settings and selection --------------------------------------------- */

/* "HH:MM" as minutes of the day, or -1. */
static int parse_hhmm(const char *s)
{
    if (!s || strlen(s) != 5 || s[2] != ':')
        return -1;
    for (int i = 0; i < 5; i++)
        if (i != 2 && (s[i] < '0' || s[i] > '9'))
            return -1;
    int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
    return h < 24 && m < 60 ? h * 60 + m : -1;
}

static int parse_hours(struct fota_req *r, json_t *v, struct fota_rollout_row *w)
{
    if (!v || json_is_null(v))
        return 0;
    int from = parse_hhmm(json_string_value(json_object_get(v, "from")));
    int to = parse_hhmm(json_string_value(json_object_get(v, "to")));
    if (!json_is_object(v) || json_object_size(v) != 2 || from < 0 || to < 0 || from == to) {
        fota_reply_error(r, 400, "hours must be {\"from\": \"HH:MM\", \"to\": \"HH:MM\"} (UTC, "
                         "from and to different)");
        return -1;
    }
    w->hours_from = from;
    w->hours_to = to;
    return 0;
}

/* The index of version in x->pre (0: "", or the table is full). */
static uint8_t pre_index(struct fota_rollout *x, const char *version, uint8_t *last)
{
    if (!version[0])
        return 0;
    if (*last && strcmp(x->pre[*last], version) == 0)
        return *last;
    for (size_t i = 1; i < x->npre; i++)
        if (strcmp(x->pre[i], version) == 0)
            return *last = (uint8_t)i;
    if (x->npre >= FOTA_ROLLOUT_PRE_MAX)
        return 0;
    if (!x->pre) {
        x->pre = fota_xcalloc(FOTA_ROLLOUT_PRE_MAX, sizeof *x->pre);
        x->npre = 1;
    }
    fota_str_copy(x->pre[x->npre], sizeof x->pre[0], version);
    return *last = (uint8_t)x->npre++;
}

/* The product's devices f selects (its online aside), in device id order. */
static int list_devices(struct fota_store *st, int64_t product_id, struct fota_api_select *f,
                        struct fota_device **ds, size_t *nd)
{
    const struct fota_device_sel *s = &f->sel;
    if (!s->ntags && !s->nversions && !s->checkin_before && !s->checkin_after && !s->q &&
        !s->name)
        return st->ops->device_list(st, product_id, ds, nd);
    struct fota_device_query q = { .sel = *s, .sort = FOTA_DEVICE_SORT_ID };
    q.sel.product_id = product_id;
    return st->ops->device_page(st, &q, fota_clock_wall_s(), ds, nd, NULL);
}

/* What a create asks the main loop, whose state it reads: the device
 * channel's presence of the selected devices (online NULL: none asked), or
 * a place among the running rollouts (reserve), or the end of a create
 * (install: the rollout joins the engine; a copy of its row in out). */
struct create_main {
    struct fota_rollouts *ro;
    const int64_t *ids;
    size_t n;
    uint8_t *online;
    int reserve, reserved, release;
    int elsewhere;                     /* another instance drives the rollouts (lease) */
    int resuming;                      /* this one resumes them after taking the lease */
    struct fota_rollout *install;
    struct fota_rollout_row *out;
};

static void create_main_run(void *arg)
{
    struct create_main *c = arg;
    struct fota_rollouts *ro = c->ro;
    for (size_t i = 0; c->online && i < c->n; i++)
        c->online[i] = (uint8_t)fota_devchan_online(ro->ch, c->ids[i]);
    if (c->reserve && ro->epoch == 0)
        c->elsewhere = 1;
    else if (c->reserve && ro->resuming)
        c->resuming = 1;
    else if (c->reserve && fota_rollout_running(ro) + ro->creating < FOTA_ROLLOUT_RUNNING_MAX) {
        ro->creating++;
        c->reserved = 1;
    }
    if (c->release)
        ro->creating--;
    if (c->install) {
        fota_rollout_gate(c->install);   /* an empty first stage passes at once */
        fota_rollout_start(ro, c->install);
        *c->out = c->install->row;
    }
}

/* Runs c on the main loop (inline there), as the store threads may: the
 * main loop waits for no store job. 0, or FOTA_ECLOSED (fotad stops). */
static int create_call(struct fota_rollouts *ro, struct create_main *c)
{
    c->ro = ro;
    return fota_loop_call(ro->srv->loops[0], create_main_run, c);
}

/* Selects the members, in device id order; only those in ids when ids is
 * not NULL. 0, or a reply was sent. Any thread: the device channel's
 * presence comes from the main loop in one call. */
static int select_members(struct fota_req *r, struct fota_rollout *ro, struct fota_api_select *f,
                          int want_online, const int64_t *ids, size_t nids)
{
    struct fota_store *st = r->srv->store;
    struct fota_device *ds = NULL;
    size_t nd = 0, nc = 0;
    uint8_t last = 0;
    int rc = list_devices(st, ro->row.product_id, f, &ds, &nd);
    if (rc < 0) {
        fota_reply_error(r, 500, "cannot list the devices: %s", fota_errname(rc));
        return -1;
    }
    struct fota_rollout_seen *seen = NULL;
    size_t nseen = 0;
    if (ro->pull &&
        (rc = fota_rollout_pull_presence(st, ro->row.product_id, ro->grace_s, &seen, &nseen)) < 0) {
        free(ds);
        fota_reply_error(r, 500, "cannot list the devices: %s", fota_errname(rc));
        return -1;
    }
    /* the candidates: named by the filter's ids and the caller's */
    size_t *cand = fota_xreallocarray(NULL, nd ? nd : 1, sizeof *cand);
    int64_t *cids = fota_xreallocarray(NULL, nd ? nd : 1, sizeof *cids);
    uint8_t *online = fota_xcalloc(nd ? nd : 1, 1);
    for (size_t i = 0; i < nd; i++) {
        if (!fota_api_select_has_id(f, ds[i].id) ||
            (ids && !bsearch(&ds[i].id, ids, nids, sizeof *ids, cmp_id)))
            continue; /* not named: skip the lookup */
        cand[nc] = i;
        cids[nc++] = ds[i].id;
    }
    if (ro->pull) {
        for (size_t j = 0; j < nc; j++) {
            const struct fota_rollout_seen *sn = fota_rollout_pull_find(seen, nseen, cids[j]);
            online[j] = sn && sn->online;
        }
    } else if (nc > 0) {
        struct create_main c = { .ids = cids, .n = nc, .online = online };
        if (create_call(ro->ro, &c) != 0) {
            free(ds);
            free(seen);
            free(cand);
            free(cids);
            free(online);
            fota_reply_error(r, 503, "fotad is shutting down");
            return -1;
        }
        /* Several instances: a device connected to another one is online too
         * (its row's presence, written by that instance), and the driver has
         * it pushed there (rollout_remote.c). */
        if (fota_cluster_instance_id(r->srv) > 0)
            for (size_t j = 0; j < nc; j++)
                online[j] |= ds[cand[j]].online != 0;
    }
    ro->m = fota_xcalloc(nc ? nc : 1, sizeof *ro->m);
    /* The nonces: one CSPRNG call for the rollout, not one per device. */
    uint32_t *rnd = fota_xcalloc(nc ? nc : 1, sizeof *rnd);
    int have_rnd = RAND_bytes((unsigned char *)rnd, (int)((nc ? nc : 1) * sizeof *rnd)) == 1;
    struct fota_rollout_counts *n = &ro->row.n;
    for (size_t j = 0; j < nc; j++) {
        const struct fota_device *d = &ds[cand[j]];
        if (want_online >= 0 && online[j] != want_online)
            continue;
        if (strcmp(d->rom_version, ro->row.version) == 0) {
            n->skipped++; /* already there */
            continue;
        }
        struct fota_rollout_member *m = &ro->m[ro->n++];
        m->device_id = d->id;
        m->keygen = d->key_generation;
        m->nonce = (int32_t)(have_rnd ? fota_devproto_nonce(rnd[j]) : fota_devchan_nonce());
        m->state = online[j] ? FOTA_RM_WAITING : FOTA_RM_QUEUED;
        m->dirty = 1;
        m->pre = pre_index(ro, d->rom_version, &last);
        n->waiting += online[j];
        n->queued += !online[j];
    }
    ro->ndirty = ro->n;
    n->total = (int64_t)ro->n;
    free(ds);
    free(rnd);
    free(seen);
    free(cand);
    free(cids);
    free(online);
    return 0;
}

static int body_keys_ok(struct fota_req *r, json_t *body)
{
    static const char *const known[] = { "product_id", "version", "filter", "reboot", "window",
                                         "timeout", "max_failures", "stages", "approval",
                                         "health", "max_reboots", "hours", "seed", NULL };
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v) {
        int ok = 0;
        for (int i = 0; known[i] && !ok; i++)
            ok = strcmp(key, known[i]) == 0;
        if (!ok) {
            fota_reply_error(r, 400, "unknown key \"%.40s\" (product_id, version, filter, reboot, "
                             "window, timeout, max_failures, stages, approval, health, "
                             "max_reboots, hours, seed)", key);
            return -1;
        }
    }
    return 0;
}

/* The settings of a new rollout from the request body into w. 0, or a reply was sent. */
static int read_settings(struct fota_req *r, json_t *body, struct fota_rollout_row *w,
                         int *approval)
{
    const char *version = json_string_value(json_object_get(body, "version"));
    json_t *pid = json_object_get(body, "product_id");
    if (body_keys_ok(r, body) < 0)
        return -1;
    if (!json_is_integer(pid) || json_integer_value(pid) <= 0) {
        fota_reply_error(r, 400, "product_id is required (a product id)");
        return -1;
    }
    if (!version || !*version || strlen(version) >= FOTA_VERSION_MAX) {
        fota_reply_error(r, 400, "version is required (a release of the product)");
        return -1;
    }
    w->product_id = json_integer_value(pid);
    fota_str_copy(w->version, sizeof w->version, version);
    w->window = FOTA_ROLLOUT_WINDOW_DEFAULT;
    w->timeout_s = FOTA_ROLLOUT_TIMEOUT_DEFAULT;
    w->max_failures = -1;
    w->max_reboots = FOTA_ROLLOUT_REBOOTS_DEFAULT;
    w->seed = fota_rollout_plan_seed(w->product_id, version);
    *approval = 0;
    if (opt_bool(r, body, "reboot", &w->reboot) < 0 || opt_bool(r, body, "approval", approval) < 0 ||
        opt_int(r, body, "window", 1, FOTA_ROLLOUT_WINDOW_MAX, &w->window) < 0 ||
        opt_int(r, body, "timeout", 10, 86400, &w->timeout_s) < 0 ||
        opt_int(r, body, "max_failures", 0, FOTA_ROLLOUT_WINDOW_MAX, &w->max_failures) < 0 ||
        opt_int(r, body, "health", 0, 86400, &w->health_s) < 0 ||
        opt_int(r, body, "max_reboots", 0, 100, &w->max_reboots) < 0 ||
        opt_int(r, body, "seed", 0, 0x7FFFFFFF, &w->seed) < 0 ||
        parse_hours(r, json_object_get(body, "hours"), w) < 0)
        return -1;
    json_t *fj = json_object_get(body, "filter");
    char *ft = fj ? json_dumps(fj, JSON_SORT_KEYS) : NULL;
    if (ft && fota_str_copy(w->filter, sizeof w->filter, ft) >= sizeof w->filter) {
        free(ft);
        fota_reply_error(r, 400, "filter too long");
        return -1;
    }
    free(ft);
    if (!ft)
        fota_str_copy(w->filter, sizeof w->filter, "{}");
    return 0;
}

int fota_rollout_create(struct fota_req *r, struct fota_rollouts *ro, json_t *body,
                        const int64_t *ids, size_t nids, int64_t rollback_of,
                        struct fota_rollout_row *out)
{
    struct fota_product prod;
    struct fota_rom rom;
    struct fota_api_select f;
    int want_online = -1, reserved = 0, rc = -1;
    struct stages_req sq;
    struct fota_rollout *x = fota_rollout_new(ro);
    int approval = 0;
    memset(&sq, 0, sizeof sq);
    memset(&f, 0, sizeof f);
    if (read_settings(r, body, &x->row, &approval) < 0 ||
        parse_filter(r, json_object_get(body, "filter"), &f, &want_online) < 0 ||
        parse_stages(r, json_object_get(body, "stages"), x->row.max_failures, &sq) < 0 ||
        fota_api_product_load(r, x->row.product_id, &prod) != 0)
        goto out;
    if (fota_relcache_get(r->srv->relcache, r->srv->store, prod.id, x->row.version, &rom) < 0) {
        fota_reply_error(r, 404, "product %lld has no release %s", (long long)prod.id,
                         x->row.version);
        goto out;
    }
    int pull = fota_rollout_pull_setup(x, r->srv->store);
    if (pull < 0) {
        fota_reply_error(r, 500, "cannot read product %lld: %s", (long long)prod.id,
                         fota_errname(pull));
        goto out;
    }
    struct create_main c = { .reserve = 1 };
    if (create_call(ro, &c) != 0) {
        fota_reply_error(r, 503, "fotad is shutting down");
        goto out;
    }
    reserved = c.reserved;
    if (c.elsewhere) {
        rc = 1;   /* checked as the driver checks it: the caller asks the driver */
        goto out;
    }
    if (c.resuming) {
        fota_reply_error(r, 409, "the rollouts are being resumed here after a takeover of lease "
                         "rollouts: retry in a moment");
        goto out;
    }
    if (!reserved) {
        fota_reply_error(r, 429, "%d rollouts are running; wait for one to finish",
                         FOTA_ROLLOUT_RUNNING_MAX);
        goto out;
    }
    if (select_members(r, x, &f, want_online, ids, nids) < 0)
        goto out;
    plan_stages(x, &sq, approval);
    struct fota_rollout_row *w = &x->row;
    w->rollback_of = rollback_of;
    w->created = fota_clock_wall_s();
    w->stage = 0;
    if (w->stages[0].approval && w->stages[0].total > 0) {
        w->state = FOTA_ROLLOUT_APPROVAL;
    } else {
        w->state = FOTA_ROLLOUT_RUNNING;
        w->stages[0].started = w->created;
    }
    x->open = w->hours_from == FOTA_ROLLOUT_ANY_HOUR ||
              fota_rollout_hours_open(w->hours_from, w->hours_to, w->created);
    int src = r->srv->store->ops->rollout_create(r->srv->store, w);
    if (src < 0) {
        fota_reply_error(r, 500, "cannot store the rollout: %s", fota_errname(src));
        goto out;
    }
    FOTA_INFO("rollout created rollout=%lld product=%lld version=%s total=%zu online=%lld "
              "queued=%lld skipped=%lld window=%lld devices=%s stages=%d health_s=%lld%s",
              (long long)w->id, (long long)prod.id, w->version, x->n, (long long)w->n.waiting,
              (long long)w->n.queued, (long long)w->n.skipped, (long long)w->window,
              x->pull ? "pull" : "channel", w->nstages, (long long)w->health_s,
              x->open ? "" : " hours=closed");
    struct create_main in = { .release = 1, .install = x, .out = out };
    if (create_call(ro, &in) != 0) {
        /* stored, never run: the next start finds it without members (cancelled) */
        fota_reply_error(r, 503, "fotad is shutting down");
        goto out;
    }
    reserved = 0;
    x = NULL;   /* the engine's */
    rc = 0;
out:
    if (reserved) {
        struct create_main rel = { .release = 1 };
        create_call(ro, &rel);
    }
    fota_rollout_free(x);
    fota_api_select_cleanup(&f);
    stages_req_cleanup(&sq);
    return rc;
}

/* POST /v1/rollouts/: a store job (the selection, the rollout's row), the
 * main loop reached for the device channel's presence and to install it. */
static void create_handler(struct fota_req *r)
{
    struct fota_key k;
    json_t *body = NULL;
    if (fota_req_admin(r, &k) < 0 || !(body = fota_req_json_body(r)))
        return;
    struct fota_rollout_row *row = fota_xmalloc(sizeof *row);
    int rc = fota_rollout_create(r, r->ud, body, NULL, 0, 0, row);
    if (rc == 0)
        fota_reply_json(r, 202, json_pack("{s:o}", "rollout", fota_rollout_json(row)));
    else if (rc > 0)
        fota_rollout_elsewhere(r->ud, r, "/v1/rollouts/", body);
    free(row);
    json_decref(body);
}

/* What the GET handlers (store jobs, any thread) read of the engine, which
 * lives on the main loop: each of rows[0..n) (by id) that the engine holds
 * takes the live row, its members written out first when save is set, all
 * in one main-loop call. */
struct live_merge {
    struct fota_rollouts *ro;
    struct fota_rollout_row *rows;
    size_t n;
    int save;
    size_t live;
};

static void live_merge_main(void *arg)
{
    struct live_merge *m = arg;
    for (size_t i = 0; i < m->n; i++) {
        struct fota_rollout *x = fota_rollout_find(m->ro, m->rows[i].id);
        if (!x)
            continue;
        if (m->save)
            fota_rollout_save_now(x);   /* the store then holds every member as it is */
        m->rows[i] = x->row;
        m->live++;
    }
}

size_t fota_rollout_live_rows(struct fota_rollouts *ro, struct fota_rollout_row *rows, size_t n,
                              int save)
{
    struct live_merge m = { ro, rows, n, save, 0 };
    if (n == 0 || fota_loop_call(ro->srv->loops[0], live_merge_main, &m) != 0)
        return 0;
    return m.live;
}

int fota_rollout_view(struct fota_req *r, struct fota_rollouts *ro, struct fota_rollout_row *row,
                      int save)
{
    int64_t id = fota_req_cap_id(r, 0);
    if (id < 0)
        return -1;
    row->id = id;
    if (fota_rollout_live_rows(ro, row, 1, save))
        return 1;
    int rc = r->srv->store->ops->rollout_get(r->srv->store, id, row);
    if (rc == FOTA_ENOENT)
        fota_reply_error(r, 404, "no rollout %lld", (long long)id);
    else if (rc < 0)
        fota_reply_error(r, 500, "cannot read rollout %lld: %s", (long long)id, fota_errname(rc));
    return rc < 0 ? rc : 0;
}

static void list_handler(struct fota_req *r)
{
    struct fota_rollouts *ro = r->ud;
    struct fota_key k;
    if (fota_req_admin(r, &k) < 0)
        return;
    const char *ps = fota_req_query(r, "product_id");
    char *end = NULL;
    long long pid = ps ? strtoll(ps, &end, 10) : 0;
    if (ps && (!*ps || *end || pid <= 0)) {
        fota_reply_error(r, 400, "product_id must be a product id");
        return;
    }
    struct fota_rollout_row *rows = NULL;
    size_t n = 0;
    int rc = r->srv->store->ops->rollout_list(r->srv->store, pid, 0, &rows, &n);
    if (rc < 0) {
        fota_reply_error(r, 500, "cannot list the rollouts: %s", fota_errname(rc));
        return;
    }
    fota_rollout_live_rows(ro, rows, n, 0);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, fota_rollout_json(&rows[i]));
    free(rows);
    fota_reply_json(r, 200, json_pack("{s:o}", "rollouts", arr));
}

/* GET /v1/rollouts/ID/: a live rollout as the engine holds it, answered
 * after the lane's writes of what it did until then (with store threads:
 * offers a pause called back are cancelled in the store once the answer
 * says paused), else as stored. */
static void get_handler(struct fota_req *r)
{
    struct fota_rollouts *ro = r->ud;
    struct fota_key k;
    struct fota_rollout_row *row = fota_xmalloc(sizeof *row);
    int live;
    if (fota_req_admin(r, &k) == 0 && (live = fota_rollout_view(r, ro, row, 0)) >= 0) {
        json_t *body = json_pack("{s:o}", "rollout", fota_rollout_json(row));
        if (live && ro->srv->exec && fota_store_exec_threaded(ro->srv->exec))
            fota_rollout_reply_written(ro, r, body);
        else
            fota_reply_json(r, 200, body);
    }
    free(row);
}

/* A page of members to read and answer. */
struct members_page {
    struct fota_req *r;
    int64_t rollout_id, cursor, health_s;
    int state;
    size_t limit;
};

/* Reads the page and replies (any thread; r released when deferred). */
static void members_reply(struct fota_store *st, struct members_page *p, int deferred)
{
    struct fota_req *r = p->r;
    struct fota_rollout_member_row *ms = NULL;
    size_t n = 0;
    int rc = st->ops->rollout_members(st, p->rollout_id, p->cursor, p->state, p->limit, &ms, &n);
    if (rc < 0) {
        fota_reply_error(r, 500, "cannot read the members: %s", fota_errname(rc));
    } else {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, fota_rollout_member_json(&ms[i], p->health_s));
        json_t *next = n == p->limit ? json_integer(ms[n - 1].device_id) : json_null();
        fota_reply_json(r, 200, json_pack("{s:o, s:o}", "devices", arr, "next_cursor", next));
    }
    free(ms);
    if (deferred)
        fota_req_release(r);
}

static void members_job(struct fota_store *st, void *arg)
{
    members_reply(st, arg, 1);
    free(arg);
}

/* GET /v1/rollouts/ID/devices/?limit=N&cursor=DEVICE_ID&state=S: members
 * after cursor in device id order (in state S only); next_cursor is null on
 * the last page. A live rollout's members are written out on the main loop
 * first (a job on the rollout lane): the page is read by the next job of
 * that lane. */
static void devices_handler(struct fota_req *r)
{
    struct fota_key k;
    struct fota_rollouts *ro = r->ud;
    struct fota_rollout_row *row = fota_xmalloc(sizeof *row);
    int live = 0;
    if (fota_req_admin(r, &k) < 0 || (live = fota_rollout_view(r, ro, row, 1)) < 0)
        goto out;
    const char *ls = fota_req_query(r, "limit"), *cs = fota_req_query(r, "cursor");
    const char *ss = fota_req_query(r, "state");
    char *e1 = NULL, *e2 = NULL;
    long long limit = ls ? strtoll(ls, &e1, 10) : MEMBERS_PAGE_DEFAULT;
    long long cursor = cs ? strtoll(cs, &e2, 10) : 0;
    int state = ss ? fota_rollout_member_state_of(ss) : 0;
    if ((ls && (!*ls || *e1 || limit < 1 || limit > MEMBERS_PAGE_MAX)) ||
        (cs && (!*cs || *e2 || cursor < 0))) {
        fota_reply_error(r, 400, "limit must be 1..%d and cursor a device id", MEMBERS_PAGE_MAX);
        goto out;
    }
    if (ss && !state) {
        fota_reply_error(r, 400, "state must be a member state (waiting, queued, delivered, "
                         "acked, verifying, done, failed, timeout, deleted, cancelled)");
        goto out;
    }
    struct members_page *p = fota_xmalloc(sizeof *p);
    *p = (struct members_page){ r, row->id, cursor, row->health_s, state, (size_t)limit };
    if (live && ro->srv->exec && fota_store_exec_threaded(ro->srv->exec)) {
        fota_req_defer(r);
        if (fota_rollout_submit(ro, "members page", members_job, NULL, p) == 0)
            goto out;   /* r is the job's */
        fota_reply_error(r, 503, "store busy: too many requests wait for the store");
        fota_req_release(r);
        free(p);
        goto out;
    }
    /* inline (SQLite): the write ran already */
    members_reply(r->srv->store, p, 0);
    free(p);
out:
    free(row);
}

int fota_rollout_api_routes(struct fota_rollouts *ro)
{
    struct fota_server *srv = ro->srv;
    /* Create and the reads run as store jobs; what changes a rollout, on
     * the main loop. */
    if (fota_http_route_flags(srv, FOTA_M_POST, "/v1/rollouts/", create_handler, ro,
                              FOTA_ROUTE_STORE) < 0 ||
        fota_http_route_flags(srv, FOTA_M_GET, "/v1/rollouts/", list_handler, ro,
                              FOTA_ROUTE_STORE) < 0 ||
        fota_http_route_flags(srv, FOTA_M_GET, "/v1/rollouts/*/", get_handler, ro,
                              FOTA_ROUTE_STORE) < 0 ||
        fota_http_route_flags(srv, FOTA_M_GET, "/v1/rollouts/*/devices/", devices_handler, ro,
                              FOTA_ROUTE_STORE) < 0)
        return -1;
    return fota_rollout_ctl_routes(ro);
}
