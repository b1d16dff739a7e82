/* rollout_api.c - the REST side of rollouts (docs/api.md, "Rollouts"):
 * POST /v1/rollouts/ checks the request and its filter, selects the devices
 * and hands the rollout to the engine (rollout.c), answering 202 at once;
 * GET /v1/rollouts/ and /v1/rollouts/ID/ show settings and counters (a
 * running rollout from memory, any other from the store); POST
 * /v1/rollouts/ID/cancel stops the pushes; GET /v1/rollouts/ID/devices/
 * pages through its members. Admin key. */
#include "rollout_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "clock.h"
#include "devchan.h"
#include "devproto.h"
#include "fota_str.h"
#include "api.h"
#include "log.h"
#include "xmalloc.h"

#define MEMBERS_PAGE_DEFAULT 100
#define MEMBERS_PAGE_MAX     1000

static const char *state_name(int st)
{
    switch (st) {
    case FOTA_ROLLOUT_RUNNING: return "running";
    case FOTA_ROLLOUT_CANCELLING: return "cancelling";
    case FOTA_ROLLOUT_CANCELLED: return "cancelled";
    case FOTA_ROLLOUT_FINISHED: return "finished";
    default: return "interrupted";
    }
}

const char *fota_rollout_member_state_name(int st)
{
    static const char *const names[] = { "?", "waiting", "queued", "delivered", "acked", "done",
                                         "failed", "timeout", "deleted", "cancelled" };
    return st > 0 && st < (int)(sizeof names / sizeof names[0]) ? names[st] : "?";
}

static json_t *mark(double ms)
{
    return ms >= 0 ? json_real(ms) : json_null();
}

json_t *fota_rollout_json(const struct fota_rollout_row *w)
{
    json_error_t jerr;
    json_t *f = json_loads(w->filter, 0, &jerr);
    const struct fota_rollout_counts *n = &w->n;
    json_t *j = json_pack("{s:I, s:I, s:s, s:o, s:b, s:I, s:I, s:b, s:o, s:I, s:s}",
                          "id", (json_int_t)w->id, "product_id", (json_int_t)w->product_id,
                          "version", w->version, "filter", json_is_object(f) ? f : json_object(),
                          "reboot", w->reboot, "window", (json_int_t)w->window,
                          "timeout", (json_int_t)w->timeout_s, "halted", w->halted,
                          "max_failures", w->max_failures >= 0 ? json_integer(w->max_failures)
                                                               : json_null(),
                          "created", (json_int_t)w->created, "state", state_name(w->state));
    if (!json_is_object(f))
        json_decref(f);
    const struct {
        const char *k;
        int64_t v;
    } counts[] = { { "total", n->total }, { "skipped", n->skipped }, { "queued", n->queued },
                   { "waiting", n->waiting }, { "in_progress", n->active },
                   { "delivered", n->delivered }, { "acked", n->acked },
                   { "succeeded", n->succeeded }, { "failed", n->failed },
                   { "timed_out", n->timed_out }, { "deleted", n->deleted },
                   { "cancelled", n->cancelled } };
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        json_object_set_new(j, counts[i].k, json_integer(counts[i].v));
    json_object_set_new(j, "elapsed_ms",
                        json_pack("{s:o, s:o, s:o}", "delivered", mark(w->ms_delivered), "acked",
                                  mark(w->ms_acked), "finished", mark(w->ms_finished)));
    return j;
}

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The request's filter, checked. */
struct filter {
    json_t *versions;                  /* array of strings or NULL */
    int online;                        /* -1 any, 0 offline only, 1 online only */
    int64_t *ids;                      /* sorted, or NULL */
    size_t nids;
};

static int parse_versions(struct fota_req *r, json_t *v, struct filter *out)
{
    out->versions = json_is_string(v) ? json_pack("[O]", v) : json_incref(v);
    size_t i;
    json_t *s;
    int ok = json_is_array(out->versions) && json_array_size(out->versions) > 0;
    json_array_foreach(out->versions, i, s) ok = ok && json_is_string(s);
    if (!ok)
        fota_reply_error(r, 400, "filter.rom_version must be a version or a list of them");
    return ok ? 0 : -1;
}

static int parse_ids(struct fota_req *r, json_t *v, struct filter *out)
{
    size_t n = json_array_size(v), i;
    json_t *e;
    if (!json_is_array(v) || n == 0 || n > FOTA_ROLLOUT_WINDOW_MAX) {
        fota_reply_error(r, 400, "filter.device_ids must be a list of 1..%d device ids",
                         FOTA_ROLLOUT_WINDOW_MAX);
        return -1;
    }
    out->ids = fota_xreallocarray(NULL, n, sizeof *out->ids);
    json_array_foreach(v, i, e) {
        if (!json_is_integer(e) || json_integer_value(e) <= 0) {
            fota_reply_error(r, 400, "filter.device_ids must hold positive integers");
            return -1;
        }
        out->ids[i] = json_integer_value(e);
    }
    out->nids = n;
    qsort(out->ids, n, sizeof *out->ids, cmp_id);
    return 0;
}

/* 0, or a reply was sent. */
static int parse_filter(struct fota_req *r, json_t *f, struct filter *out)
{
    const char *key;
    json_t *v;
    memset(out, 0, sizeof *out);
    out->online = -1;
    if (!f)
        return 0;
    if (!json_is_object(f)) {
        fota_reply_error(r, 400, "filter must be an object");
        return -1;
    }
    json_object_foreach(f, key, v) {
        if (strcmp(key, "rom_version") == 0) {
            if (parse_versions(r, v, out) < 0)
                return -1;
        } else if (strcmp(key, "online") == 0) {
            if (!json_is_boolean(v)) {
                fota_reply_error(r, 400, "filter.online must be true or false");
                return -1;
            }
            out->online = json_is_true(v);
        } else if (strcmp(key, "device_ids") == 0) {
            if (parse_ids(r, v, out) < 0)
                return -1;
        } else {
            fota_reply_error(r, 400, "unknown filter key \"%.40s\" (rom_version, online, device_ids)",
                             key);
            return -1;
        }
    }
    return 0;
}

static int filter_match(const struct filter *f, const struct fota_device *d, int online)
{
    if (f->ids && !bsearch(&d->id, f->ids, f->nids, sizeof *f->ids, cmp_id))
        return 0;
    if (f->online >= 0 && online != f->online)
        return 0;
    if (f->versions) {
        size_t i;
        json_t *s;
        json_array_foreach(f->versions, i, s) if (strcmp(json_string_value(s), d->rom_version) == 0)
            return 1;
        return 0;
    }
    return 1;
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

/* Selects the members, in device id order (device_list's order). 0, or a reply was sent. */
static int select_members(struct fota_req *r, struct fota_rollout *ro, const struct filter *f)
{
    struct fota_store *st = r->srv->store;
    struct fota_device *ds = NULL;
    size_t nd = 0;
    int rc = st->ops->device_list(st, ro->row.product_id, &ds, &nd);
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
    ro->m = fota_xcalloc(nd ? nd : 1, sizeof *ro->m);
    /* The nonces: one CSPRNG call for the rollout, not one per device. */
    uint32_t *rnd = fota_xcalloc(nd ? nd : 1, sizeof *rnd);
    int have_rnd = RAND_bytes((unsigned char *)rnd, (int)((nd ? nd : 1) * sizeof *rnd)) == 1;
    struct fota_rollout_counts *n = &ro->row.n;
    for (size_t i = 0; i < nd; i++) {
        if (f->ids && !bsearch(&ds[i].id, f->ids, f->nids, sizeof *f->ids, cmp_id))
            continue; /* not named: skip the lookup */
        const struct fota_rollout_seen *sn = fota_rollout_pull_find(seen, nseen, ds[i].id);
        int online = ro->pull ? sn && sn->online : fota_devchan_online(ro->ro->ch, ds[i].id);
        if (!filter_match(f, &ds[i], online))
            continue;
        if (strcmp(ds[i].rom_version, ro->row.version) == 0) {
            n->skipped++; /* already there */
            continue;
        }
        struct fota_rollout_member *m = &ro->m[ro->n++];
        m->device_id = ds[i].id;
        m->keygen = ds[i].key_generation;
        m->nonce = (int32_t)(have_rnd ? fota_devproto_nonce(rnd[i]) : fota_devchan_nonce());
        m->state = online ? FOTA_RM_WAITING : FOTA_RM_QUEUED;
        m->dirty = 1;
        n->waiting += online;
        n->queued += !online;
    }
    ro->ndirty = ro->n;
    n->total = (int64_t)ro->n;
    free(ds);
    free(rnd);
    free(seen);
    return 0;
}

static int body_keys_ok(struct fota_req *r, json_t *body)
{
    static const char *const known[] = { "product_id", "version", "filter", "reboot", "window",
                                         "timeout", "max_failures", NULL };
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v) {
        int ok = 0;
        for (int i = 0; known[i] && !ok; i++)
            ok = strcmp(key, known[i]) == 0;
        if (!ok) {
            fota_reply_error(r, 400, "unknown key \"%.40s\" (product_id, version, filter, reboot, "
                             "window, timeout, max_failures)", key);
            return -1;
        }
    }
    return 0;
}

/* The settings of a new rollout from the request body into w. 0, or a reply was sent. */
static int read_settings(struct fota_req *r, json_t *body, struct fota_rollout_row *w)
{
    const char *version = json_string_value(json_object_get(body, "version"));
    json_t *reboot = json_object_get(body, "reboot"), *pid = json_object_get(body, "product_id");
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
    if (reboot && !json_is_boolean(reboot)) {
        fota_reply_error(r, 400, "reboot must be true or false");
        return -1;
    }
    w->product_id = json_integer_value(pid);
    fota_str_copy(w->version, sizeof w->version, version);
    w->reboot = json_is_true(reboot);
    w->window = FOTA_ROLLOUT_WINDOW_DEFAULT;
    w->timeout_s = FOTA_ROLLOUT_TIMEOUT_DEFAULT;
    w->max_failures = -1;
    if (opt_int(r, body, "window", 1, FOTA_ROLLOUT_WINDOW_MAX, &w->window) < 0 ||
        opt_int(r, body, "timeout", 10, 86400, &w->timeout_s) < 0 ||
        opt_int(r, body, "max_failures", 0, FOTA_ROLLOUT_WINDOW_MAX, &w->max_failures) < 0)
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

static void create_handler(struct fota_req *r)
{
    struct fota_rollouts *ro = r->ud;
    struct fota_key k;
    struct fota_product prod;
    struct fota_rom rom;
    struct filter f = { 0 };
    struct fota_rollout *x = fota_rollout_new(ro);
    json_t *body = NULL;
    if (fota_req_admin(r, &k) < 0 || !(body = fota_req_json_body(r)) ||
        read_settings(r, body, &x->row) < 0 ||
        parse_filter(r, json_object_get(body, "filter"), &f) < 0 ||
        fota_api_product_load(r, x->row.product_id, &prod) != 0)
        goto fail;
    if (r->srv->store->ops->rom_get(r->srv->store, prod.id, x->row.version, &rom) < 0) {
        fota_reply_error(r, 404, "product %lld has no release %s", (long long)prod.id,
                         x->row.version);
        goto fail;
    }
    int pull = fota_rollout_pull_setup(x, r->srv->store);
    if (pull < 0) {
        fota_reply_error(r, 500, "cannot read product %lld: %s", (long long)prod.id,
                         fota_errname(pull));
        goto fail;
    }
    if (fota_rollout_running(ro) >= FOTA_ROLLOUT_RUNNING_MAX) {
        fota_reply_error(r, 429, "%d rollouts are running; wait for one to finish",
                         FOTA_ROLLOUT_RUNNING_MAX);
        goto fail;
    }
    if (select_members(r, x, &f) < 0)
        goto fail;
    x->row.state = FOTA_ROLLOUT_RUNNING;
    x->row.created = fota_clock_wall_s();
    int rc = r->srv->store->ops->rollout_create(r->srv->store, &x->row);
    if (rc < 0) {
        fota_reply_error(r, 500, "cannot store the rollout: %s", fota_errname(rc));
        goto fail;
    }
    FOTA_INFO("rollout created rollout=%lld product=%lld version=%s total=%zu online=%lld "
              "queued=%lld skipped=%lld window=%lld devices=%s", (long long)x->row.id,
              (long long)prod.id, x->row.version, x->n, (long long)x->row.n.waiting,
              (long long)x->row.n.queued, (long long)x->row.n.skipped, (long long)x->row.window,
              x->pull ? "pull" : "channel");
    fota_rollout_start(ro, x);
    fota_reply_json(r, 202, json_pack("{s:o}", "rollout", fota_rollout_json(&x->row)));
    goto out;
fail:
    fota_rollout_free(x);
out:
    json_decref(f.versions);
    free(f.ids);
    json_decref(body);
}

/* The rollout the path's first '*' names: from memory while it runs, else
 * from the store. 0, or a reply (400/404/500) was sent. */
static int rollout_of(struct fota_req *r, struct fota_rollouts *ro, struct fota_rollout **live,
                      struct fota_rollout_row *row)
{
    int64_t id = fota_req_cap_id(r, 0);
    if (id < 0)
        return -1;
    *live = fota_rollout_find(ro, id);
    if (*live) {
        *row = (*live)->row;
        return 0;
    }
    int rc = r->srv->store->ops->rollout_get(r->srv->store, id, row);
    if (rc == FOTA_ENOENT)
        fota_reply_error(r, 404, "no rollout %lld", (long long)id);
    else if (rc < 0)
        fota_reply_error(r, 500, "cannot read rollout %lld: %s", (long long)id, fota_errname(rc));
    return rc;
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
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        struct fota_rollout *live = fota_rollout_find(ro, rows[i].id);
        json_array_append_new(arr, fota_rollout_json(live ? &live->row : &rows[i]));
    }
    free(rows);
    fota_reply_json(r, 200, json_pack("{s:o}", "rollouts", arr));
}

static void get_handler(struct fota_req *r)
{
    struct fota_key k;
    struct fota_rollout *live;
    struct fota_rollout_row row;
    if (fota_req_admin(r, &k) == 0 && rollout_of(r, r->ud, &live, &row) == 0)
        fota_reply_json(r, 200, json_pack("{s:o}", "rollout", fota_rollout_json(&row)));
}

/* POST /v1/rollouts/ID/cancel: stops a running rollout's pushes (see
 * fota_rollout_cancel); 409 once it has ended. */
static void cancel_handler(struct fota_req *r)
{
    struct fota_key k;
    struct fota_rollout *live;
    struct fota_rollout_row row;
    if (fota_req_admin(r, &k) < 0 || rollout_of(r, r->ud, &live, &row) < 0)
        return;
    if (!live || fota_rollout_ended(live) == (int64_t)live->n) {
        fota_reply_error(r, 409, "rollout %lld has %s: nothing to cancel", (long long)row.id,
                         row.state == FOTA_ROLLOUT_INTERRUPTED ? "been interrupted by a restart"
                         : row.state == FOTA_ROLLOUT_CANCELLED ? "been cancelled and finished"
                                                               : "finished");
        return;
    }
    size_t n = live->row.state == FOTA_ROLLOUT_RUNNING ? fota_rollout_cancel(live) : 0;
    fota_rollout_flush(live->ro); /* now, not at the next tick */
    FOTA_INFO("rollout cancelled rollout=%lld members_cancelled=%zu in_progress=%lld",
              (long long)live->row.id, n, (long long)live->row.n.active);
    fota_reply_json(r, 200, json_pack("{s:o, s:I}", "rollout", fota_rollout_json(&live->row),
                                      "cancelled_now", (json_int_t)n));
}

static json_t *member_json(const struct fota_rollout_member_row *m)
{
    return json_pack("{s:I, s:s, s:o, s:I}", "device_id", (json_int_t)m->device_id, "state",
                     fota_rollout_member_state_name(m->state), "command_id",
                     m->command_id > 0 ? json_integer(m->command_id) : json_null(), "updated",
                     (json_int_t)m->updated);
}

/* GET /v1/rollouts/ID/devices/?limit=N&cursor=DEVICE_ID: members after
 * cursor in device id order; next_cursor is null on the last page. */
static void devices_handler(struct fota_req *r)
{
    struct fota_key k;
    struct fota_rollout *live;
    struct fota_rollout_row row;
    if (fota_req_admin(r, &k) < 0 || rollout_of(r, r->ud, &live, &row) < 0)
        return;
    const char *ls = fota_req_query(r, "limit"), *cs = fota_req_query(r, "cursor");
    char *e1 = NULL, *e2 = NULL;
    long long limit = ls ? strtoll(ls, &e1, 10) : MEMBERS_PAGE_DEFAULT;
    long long cursor = cs ? strtoll(cs, &e2, 10) : 0;
    if ((ls && (!*ls || *e1 || limit < 1 || limit > MEMBERS_PAGE_MAX)) ||
        (cs && (!*cs || *e2 || cursor < 0))) {
        fota_reply_error(r, 400, "limit must be 1..%d and cursor a device id", MEMBERS_PAGE_MAX);
        return;
    }
    if (live)
        fota_rollout_save_now(live);   /* the store then holds every member as it is */
    struct fota_rollout_member_row *ms = NULL;
    size_t n = 0;
    int rc = r->srv->store->ops->rollout_members(r->srv->store, row.id, cursor, (size_t)limit,
                                                 &ms, &n);
    if (rc < 0) {
        fota_reply_error(r, 500, "cannot read the members: %s", fota_errname(rc));
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, member_json(&ms[i]));
    json_t *next = n == (size_t)limit ? json_integer(ms[n - 1].device_id) : json_null();
    free(ms);
    fota_reply_json(r, 200, json_pack("{s:o, s:o}", "devices", arr, "next_cursor", next));
}

int fota_rollout_api_routes(struct fota_rollouts *ro)
{
    struct fota_server *srv = ro->srv;
    if (fota_http_route(srv, FOTA_M_POST, "/v1/rollouts/", create_handler, ro) < 0 ||
        fota_http_route(srv, FOTA_M_GET, "/v1/rollouts/", list_handler, ro) < 0 ||
        fota_http_route(srv, FOTA_M_GET, "/v1/rollouts/*/", get_handler, ro) < 0 ||
        fota_http_route(srv, FOTA_M_POST, "/v1/rollouts/*/cancel", cancel_handler, ro) < 0 ||
        fota_http_route(srv, FOTA_M_GET, "/v1/rollouts/*/devices/", devices_handler, ro) < 0)
        return -1;
    return 0;
}
