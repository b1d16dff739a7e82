/* rpc_fanout_api.c - the REST side of bulk upgrades: POST
 * /v1/products/ID/upgrade checks the request and its filter, selects the
 * devices and hands the job to the engine (rpc_fanout.c), answering 202 at
 * once; GET /v1/jobs/ and /v1/jobs/ID/ show the counters; POST
 * /v1/jobs/ID/cancel stops the pushes. */
#include "rpc_fanout.h"
#include "rpc_fanout_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/rand.h>

#include "devchan_int.h"
#include "api.h"
#include "log.h"


static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The request's filter, checked. 0, or a reply was sent. */
struct filter {
    json_t *versions;                  /* array of strings or NULL */
    int online;                        /* -1 any, 0 offline only, 1 online only */
    int64_t *ids;                      /* sorted, or NULL */
    size_t nids;
};

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
            out->versions = json_is_string(v) ? json_pack("[O]", v) : json_incref(v);
            size_t i;
            json_t *s;
            int ok = json_is_array(out->versions) && json_array_size(out->versions) > 0;
            json_array_foreach(out->versions, i, s) ok = ok && json_is_string(s);
            if (!ok) {
                fota_reply_error(r, 400, "filter.rom_version must be a version or a list of them");
                return -1;
            }
        } else if (strcmp(key, "online") == 0) {
            if (!json_is_boolean(v)) {
                fota_reply_error(r, 400, "filter.online must be true or false");
                return -1;
            }
            out->online = json_is_true(v);
        } else if (strcmp(key, "device_ids") == 0) {
            size_t n = json_array_size(v), i;
            json_t *e;
            if (!json_is_array(v) || n == 0 || n > FOTA_FANOUT_WINDOW_MAX) {
                fota_reply_error(r, 400, "filter.device_ids must be a list of 1..%d device ids",
                                 FOTA_FANOUT_WINDOW_MAX);
                return -1;
            }
            out->ids = malloc(n * sizeof *out->ids);
            if (!out->ids) {
                fota_reply_error(r, 503, "out of memory");
                return -1;
            }
            json_array_foreach(v, i, e) {
                if (!json_is_integer(e) || json_integer_value(e) <= 0) {
                    fota_reply_error(r, 400, "filter.device_ids must hold positive integers");
                    return -1;
                }
                out->ids[i] = json_integer_value(e);
            }
            out->nids = n;
            qsort(out->ids, n, sizeof *out->ids, cmp_id);
        } else {
            fota_reply_error(r, 400, "unknown filter key \"%.40s\" (rom_version, online, device_ids)",
                             key);
            return -1;
        }
    }
    return 0;
}

/* online: whether the device is connected (looked up once by the caller). */
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

static int opt_uint(struct fota_req *r, json_t *body, const char *name, unsigned lo, unsigned hi,
                    unsigned *out)
{
    json_t *v = json_object_get(body, name);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        fota_reply_error(r, 400, "%s must be an integer %u..%u", name, lo, hi);
        return -1;
    }
    *out = (unsigned)json_integer_value(v);
    return 0;
}

/* Room for one more job: drops the oldest finished one when full. */
static int make_room(struct fota_fanout *fo)
{
    size_t n = 0;
    struct job **oldest = NULL;
    for (struct job **pp = &fo->jobs; *pp; pp = &(*pp)->next) {
        struct job *j = *pp;
        n++;
        if (j->interrupted || fota_fanout__ended(j) == j->n)
            oldest = pp; /* the list is newest first */
    }
    if (n < FOTA_FANOUT_JOBS_MAX)
        return 0;
    if (!oldest)
        return -1;
    struct job *j = *oldest;
    *oldest = j->next;
    fota_fanout__job_free(j);
    return 0;
}

/* Selects the members (their rows are written by insert_rows). 0, or a reply was sent. */
static int job_fill(struct fota_req *r, struct job *j, const struct filter *f)
{
    struct fota_store *st = r->srv->store;
    struct fota_device *ds = NULL;
    size_t nd = 0;
    int rc = st->ops->device_list(st, j->product_id, &ds, &nd);
    if (rc < 0) {
        fota_reply_error(r, 500, "cannot list the devices: %s", fota_errname(rc));
        return -1;
    }
    j->m = calloc(nd ? nd : 1, sizeof *j->m);
    if (!j->m) {
        free(ds);
        fota_reply_error(r, 503, "out of memory");
        return -1;
    }
    /* The nonces: one CSPRNG call for the job, not one per device. */
    uint32_t *rnd = malloc((nd ? nd : 1) * sizeof *rnd);
    if (!rnd || RAND_bytes((unsigned char *)rnd, (int)((nd ? nd : 1) * sizeof *rnd)) != 1) {
        free(rnd);
        rnd = NULL; /* one call per device, as before */
    }
    for (size_t i = 0; i < nd; i++) { /* device_list is in id order: members stay sorted */
        if (f->ids && !bsearch(&ds[i].id, f->ids, f->nids, sizeof *f->ids, cmp_id))
            continue; /* not named: skip the lookup */
        int online = fota_devchan_online(j->fo->ch, ds[i].id);
        if (!filter_match(f, &ds[i], online))
            continue;
        if (strcmp(ds[i].rom_version, j->version) == 0) {
            j->skipped++; /* already there */
            continue;
        }
        struct member *m = &j->m[j->n++];
        m->device_id = ds[i].id;
        m->keygen = ds[i].key_generation;
        m->nonce = (int32_t)(rnd ? fota_devproto_nonce(rnd[i]) : fota_devchan_nonce());
        if (online) {
            m->state = M_WAITING;
            j->waiting++;
        } else {
            m->state = M_QUEUED;
            j->queued++;
        }
    }
    free(ds);
    free(rnd);
    j->rows_pending = 1;
    return 0;
}

static void upgrade_handler(struct fota_req *r)
{
    struct fota_fanout *fo = r->ud;
    struct fota_key k;
    struct fota_product prod;
    struct fota_rom rom;
    struct filter f = { 0 };
    struct job *j = NULL;
    if (fota_req_admin(r, &k) < 0)
        return;
    int64_t pid = fota_req_cap_id(r, 0);
    if (pid < 0 || fota_api_product_load(r, pid, &prod) != 0)
        return;
    json_t *body = fota_req_json_body(r);
    if (!body)
        return;
    const char *version = json_string_value(json_object_get(body, "version"));
    json_t *reboot = json_object_get(body, "reboot");
    unsigned window = FOTA_FANOUT_WINDOW_DEFAULT, timeout = FOTA_FANOUT_TIMEOUT_DEFAULT;
    unsigned max_fail = FOTA_FANOUT_WINDOW_MAX + 1u;   /* not given: no limit */
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v) {
        if (strcmp(key, "version") && strcmp(key, "filter") && strcmp(key, "reboot") &&
            strcmp(key, "window") && strcmp(key, "timeout") && strcmp(key, "max_failures")) {
            fota_reply_error(r, 400, "unknown key \"%.40s\" (version, filter, reboot, window, "
                             "timeout, max_failures)", key);
            goto out;
        }
    }
    if (!version || !*version || strlen(version) >= FOTA_VERSION_MAX) {
        fota_reply_error(r, 400, "version is required (a release of the product)");
        goto out;
    }
    if (reboot && !json_is_boolean(reboot)) {
        fota_reply_error(r, 400, "reboot must be true or false");
        goto out;
    }
    if (opt_uint(r, body, "window", 1, FOTA_FANOUT_WINDOW_MAX, &window) < 0 ||
        opt_uint(r, body, "timeout", 10, 86400, &timeout) < 0 ||
        opt_uint(r, body, "max_failures", 0, FOTA_FANOUT_WINDOW_MAX, &max_fail) < 0 ||
        parse_filter(r, json_object_get(body, "filter"), &f) < 0)
        goto out;
    if (r->srv->store->ops->rom_get(r->srv->store, pid, version, &rom) < 0) {
        fota_reply_error(r, 404, "product %lld has no release %s", (long long)pid, version);
        goto out;
    }
    if (make_room(fo) < 0) {
        fota_reply_error(r, 429, "%d bulk upgrades are running; wait for one to finish",
                         FOTA_FANOUT_JOBS_MAX);
        goto out;
    }
    j = calloc(1, sizeof *j);
    if (!j) {
        fota_reply_error(r, 503, "out of memory");
        goto out;
    }
    j->fo = fo;
    j->id = fo->next_id++;
    j->product_id = pid;
    j->created = fota_server_now();
    gettimeofday(&j->t0, NULL);
    j->ms_delivered = j->ms_acked = j->ms_finished = -1;
    snprintf(j->version, sizeof j->version, "%s", version);
    j->reboot = json_is_true(reboot);
    j->window = window;
    j->timeout_s = timeout;
    j->max_fail = max_fail > FOTA_FANOUT_WINDOW_MAX ? -1 : (long)max_fail;
    fota_fanout__make_template(j);
    json_t *fj = json_object_get(body, "filter");
    j->filter = fj ? json_dumps(fj, JSON_SORT_KEYS) : strdup("{}");
    json_t *okr = json_pack("{s:s, s:s}", "action", "device_upgrade_success", "rom_version", version);
    j->ok_result = okr ? json_dumps(okr, JSON_SORT_KEYS) : NULL;
    json_decref(okr);
    if (job_fill(r, j, &f) < 0) {
        fota_fanout__job_free(j);
        goto out;
    }
    j->next = fo->jobs;
    fo->jobs = j;
    fota_fanout__job_marks(j);
    FOTA_INFO("bulk upgrade job=%lld product=%lld version=%s total=%zu online=%zu queued=%zu "
              "skipped=%zu window=%u", (long long)j->id, (long long)pid, version, j->n, j->waiting,
              j->queued, j->skipped, window);
    fota_reply_json(r, 202, json_pack("{s:o}", "job", fota_fanout__job_json(j)));
    /* The pushes start on the next loop pass, not in this one: on the main
     * loop the 202 then goes out before them (the socket's write event of
     * that pass runs before a zero timeout), not after 19,000 pushes. */
    struct timeval next_pass = { 0, 0 };
    event_add(fo->soon, &next_pass);
out:
    json_decref(f.versions);
    free(f.ids);
    json_decref(body);
}

/* The job the path's first '*' names, or NULL after replying 400/404. */
static struct job *job_of(struct fota_req *r, struct fota_fanout *fo)
{
    int64_t id = fota_req_cap_id(r, 0);
    if (id < 0)
        return NULL;
    struct job *j = fota_fanout__job_find(fo, id);
    if (!j)
        fota_reply_error(r, 404, "no job %lld", (long long)id);
    return j;
}

static void job_get_handler(struct fota_req *r)
{
    struct fota_fanout *fo = r->ud;
    struct fota_key k;
    if (fota_req_admin(r, &k) < 0)
        return;
    if (r->ncaps == 0) { /* ?product_id=P: that product's jobs only */
        const char *ps = fota_req_query(r, "product_id");
        char *end = NULL;
        long long pid = ps ? strtoll(ps, &end, 10) : 0;
        if (ps && (!*ps || *end || pid <= 0)) {
            fota_reply_error(r, 400, "product_id must be a product id");
            return;
        }
        json_t *arr = json_array();
        for (struct job *j = fo->jobs; j; j = j->next)
            if (!pid || j->product_id == pid)
                json_array_append_new(arr, fota_fanout__job_json(j));
        fota_reply_json(r, 200, json_pack("{s:o}", "jobs", arr));
        return;
    }
    struct job *j = job_of(r, fo);
    if (j)
        fota_reply_json(r, 200, json_pack("{s:o}", "job", fota_fanout__job_json(j)));
}

/* POST /v1/jobs/ID/cancel: stops a running job's pushes (see
 * fota_fanout__job_cancel); 409 once it has finished or was interrupted. */
static void job_cancel_handler(struct fota_req *r)
{
    struct fota_key k;
    if (fota_req_admin(r, &k) < 0)
        return;
    struct job *j = job_of(r, r->ud);
    if (!j)
        return;
    int64_t id = j->id;
    if (j->interrupted || fota_fanout__ended(j) == j->n) {
        fota_reply_error(r, 409, "job %lld has %s: nothing to cancel", (long long)id,
                         j->interrupted ? "been interrupted by a restart"
                         : j->cancel    ? "been cancelled and finished"
                                        : "finished");
        return;
    }
    size_t n = j->cancel ? 0 : fota_fanout__job_cancel(j);
    FOTA_INFO("bulk upgrade cancelled job=%lld members_cancelled=%zu in_progress=%zu",
              (long long)id, n, j->active);
    fota_reply_json(r, 200, json_pack("{s:o, s:I}", "job", fota_fanout__job_json(j),
                                      "cancelled_now", (json_int_t)n));
}

int fota_fanout__routes(struct fota_fanout *fo)
{
    struct fota_server *srv = fo->ch->srv;
    if (fota_http_route(srv, FOTA_M_POST, "/v1/products/*/upgrade", upgrade_handler, fo) < 0 ||
        fota_http_route(srv, FOTA_M_GET, "/v1/jobs/*", job_get_handler, fo) < 0 ||
        fota_http_route(srv, FOTA_M_GET, "/v1/jobs", job_get_handler, fo) < 0 ||
        fota_http_route(srv, FOTA_M_POST, "/v1/jobs/*/cancel", job_cancel_handler, fo) < 0)
        return -1;
    return 0;
}
