/* cmd_rollout.c - `fotactl rollout start|list|show|cancel`: a rollout
 * upgrades the matching devices of a product, paced by the server
 * (POST /v1/rollouts/), which keeps its progress (GET /v1/rollouts/[ID/])
 * and stops it on request (POST /v1/rollouts/ID/cancel). `--wait` follows a
 * rollout until every device has reported, asking the server once a second,
 * and exits 0 only when every one succeeded (docs/api.md, "Rollouts"). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "fota_str.h"
#include "out.h"

#define ROLLOUT_WAIT_DEFAULT 3600   /* s: --wait gives up after this (the rollout goes on) */

/* "1,2,3" -> a JSON array of integers; NULL (reported) on a bad list. */
static json_t *id_list(const char *s)
{
    json_t *a = json_array();
    const char *p = s;

    while (a && *p) {
        char *end = NULL;
        long long v = strtoll(p, &end, 10);
        if (end == p || v <= 0 || (*end && *end != ',')) {
            json_decref(a);
            fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "--devices takes ids separated by commas: %s",
                              s);
            return NULL;
        }
        json_array_append_new(a, json_integer(v));
        p = *end ? end + 1 : end;
    }
    return a;
}

/* "v1,v2" -> one string or an array of them. */
static json_t *version_list(const char *s)
{
    if (!strchr(s, ','))
        return json_string(s);
    json_t *a = json_array();
    char *copy = strdup(s), *save = NULL;
    for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save))
        json_array_append_new(a, json_string(t));
    free(copy);
    return a;
}

/* Parses --NAME as an integer lo..hi into *out (unset: untouched). */
static int int_opt(struct fota_cli_ctx *c, const char *name, long lo, long hi, long *out)
{
    const char *s = fota_cli_ctx_opt(c, name);
    char *end = NULL;
    long v;

    if (!s)
        return 0;
    v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "--%s must be a number %ld..%ld", name, lo,
                                 hi);
    *out = v;
    return 0;
}

static size_t num(const json_t *ro, const char *k)
{
    return (size_t)json_integer_value(json_object_get(ro, k));
}

/* "1200/19000 upgraded, 256 in progress, ..." */
static void progress(const json_t *ro, char *buf, size_t cap)
{
    char gone[96] = "";
    if (num(ro, "deleted"))
        snprintf(gone, sizeof(gone), ", %zu deleted", num(ro, "deleted"));
    if (num(ro, "cancelled"))
        snprintf(gone + strlen(gone), sizeof(gone) - strlen(gone), ", %zu cancelled",
                 num(ro, "cancelled"));
    snprintf(buf, cap, "%zu/%zu upgraded, %zu in progress, %zu waiting, %zu queued (offline), "
             "%zu failed, %zu timed out%s", num(ro, "succeeded"), num(ro, "total"),
             num(ro, "in_progress"), num(ro, "waiting"), num(ro, "queued"), num(ro, "failed"),
             num(ro, "timed_out"), gone);
}

/* 0 if every selected device upgraded, else FOTA_CLI_EXIT_FAIL (reported). */
static int outcome(const json_t *ro)
{
    size_t total = num(ro, "total"), ok = num(ro, "succeeded");
    if (ok == total)
        return 0;
    return fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "rollout %" PRId64 " finished: %zu of %zu devices "
                             "upgraded (%zu failed, %zu timed out, %zu deleted)",
                             (int64_t)json_integer_value(json_object_get(ro, "id")), ok, total,
                             num(ro, "failed"), num(ro, "timed_out"), num(ro, "deleted"));
}

/* Reports how a finished rollout ended. Returns 0 if every selected device
 * upgraded, else FOTA_CLI_EXIT_FAIL (reported). */
static int finished(int64_t id, const json_t *ro, const char *state)
{
    if (state && strcmp(state, "interrupted") == 0)
        return fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "rollout %" PRId64 " was interrupted by a "
                                 "restart of the server", id);
    if (state && strcmp(state, "cancelled") == 0)
        return fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "rollout %" PRId64 " %s: %zu of %zu "
                                 "devices upgraded", id,
                                 json_is_true(json_object_get(ro, "halted"))
                                     ? "stopped itself after too many failures"
                                     : "was cancelled",
                                 num(ro, "succeeded"), num(ro, "total"));
    return outcome(ro);
}

/* Polls the rollout once a second until it is no longer running, printing
 * a line whenever the counters move. Returns the exit status. */
static int wait_rollout(struct fota_cli_ctx *c, int64_t id, long timeout)
{
    char path[64], line[512], last[512] = "";
    double end = fota_cli_api_clock() + (double)timeout;
    struct fota_cli_reply r;
    const char *state;
    json_t *ro;
    int st;

    snprintf(path, sizeof(path), "/v1/rollouts/%" PRId64 "/", id);
    for (;;) {
        st = fota_cli_ctx_call(c, "GET", path, NULL, &r, "rollout");
        if (st != 0)
            return st;
        ro = fota_cli_reply_object(r.json, "rollout");
        state = json_string_value(json_object_get(ro, "state"));
        progress(ro, line, sizeof(line));
        if (!c->json && strcmp(line, last) != 0) {
            printf("rollout %" PRId64 ": %s\n", id, line);
            fflush(stdout);
            fota_str_copy(last, sizeof(last), line);
        }
        if (!state || (strcmp(state, "running") != 0 && strcmp(state, "cancelling") != 0)) {
            if (c->json)
                fota_cli_out_json(stdout, r.json);
            st = finished(id, ro, state);
            fota_cli_reply_cleanup(&r);
            return st;
        }
        fota_cli_reply_cleanup(&r);
        if (fota_cli_api_clock() >= end)
            return fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "rollout %" PRId64 " still running "
                                     "after %ld s (it goes on: `fotactl rollout show %" PRId64
                                     "`)", id, timeout, id);
        sleep(1);
    }
}

/* The body of a rollout start (the product goes in once it is known):
 * version, the device filter (--from,
 * --online/--offline, --devices) and the pacing options. Returns 0 with
 * *body set (the caller owns it) or FOTA_CLI_EXIT_USAGE (reported). */
static int start_body(struct fota_cli_ctx *c, json_t **body)
{
    const char *from = fota_cli_ctx_opt(c, "from"), *devices = fota_cli_ctx_opt(c, "devices");
    int online = fota_cli_ctx_opt(c, "online") != NULL;
    int offline = fota_cli_ctx_opt(c, "offline") != NULL;
    long window = -1, timeout = -1, max_fail = -1;
    json_t *filter, *ids = NULL;
    int st;

    if (online && offline)
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "--online and --offline exclude each other");
    if ((st = int_opt(c, "window", 1, 100000, &window)) != 0 ||
        (st = int_opt(c, "timeout", 10, 86400, &timeout)) != 0 ||
        (st = int_opt(c, "max-failures", 0, 100000, &max_fail)) != 0)
        return st;
    if (devices && !(ids = id_list(devices)))
        return FOTA_CLI_EXIT_USAGE;
    filter = json_object();
    if (from)
        json_object_set_new(filter, "rom_version", version_list(from));
    if (online || offline)
        json_object_set_new(filter, "online", json_boolean(online));
    if (ids)
        json_object_set_new(filter, "device_ids", ids);
    *body = json_object();
    json_object_set_new(*body, "version", json_string(fota_cli_ctx_opt(c, "version")));
    json_object_set_new(*body, "filter", filter);
    json_object_set_new(*body, "reboot", json_boolean(fota_cli_ctx_opt(c, "reboot") != NULL));
    if (window > 0)
        json_object_set_new(*body, "window", json_integer(window));
    if (timeout > 0)
        json_object_set_new(*body, "timeout", json_integer(timeout));
    if (max_fail >= 0)
        json_object_set_new(*body, "max_failures", json_integer(max_fail));
    return 0;
}

int fota_cli_cmd_rollout_start(struct fota_cli_ctx *c)
{
    const char *product = fota_cli_ctx_opt(c, "product"), *version = fota_cli_ctx_opt(c, "version");
    int wait = fota_cli_ctx_opt(c, "wait") != NULL;
    long wait_s = ROLLOUT_WAIT_DEFAULT;
    struct fota_cli_reply r;
    json_t *body = NULL, *rollout;
    size_t total;
    int64_t pid, id;
    int st;

    if (!product || !version || !*version)
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE,
                                 "rollout start needs --product and --version");
    if ((st = start_body(c, &body)) != 0)
        return st;
    if ((st = int_opt(c, "wait-timeout", 1, 7 * 86400, &wait_s)) != 0 ||
        (st = fota_cli_ctx_product_id(c, product, &pid)) != 0) {
        json_decref(body);
        return st;
    }
    json_object_set_new(body, "product_id", json_integer(pid));
    /* 404 names the product or the version */
    st = fota_cli_ctx_call(c, "POST", "/v1/rollouts/", body, &r, NULL);
    json_decref(body);
    if (st != 0)
        return st;
    rollout = fota_cli_reply_object(r.json, "rollout");
    id = (int64_t)json_integer_value(json_object_get(rollout, "id"));
    total = num(rollout, "total");
    if (c->json && !wait)
        fota_cli_out_json(stdout, r.json);
    else if (!c->json)
        printf("rollout %" PRId64 " of %s to %s: %zu device%s selected, %zu already on it\n", id,
               product, version, total, total == 1 ? "" : "s", num(rollout, "skipped"));
    fota_cli_reply_cleanup(&r);
    if (!wait || total == 0)
        return 0;
    return wait_rollout(c, id, wait_s);
}

static const char *rollout_done(const json_t *row, const char *field, void *ud, char *buf,
                                size_t cap)
{
    (void)field;
    (void)ud;
    snprintf(buf, cap, "%zu/%zu", num(row, "succeeded"), num(row, "total"));
    return buf;
}

static const struct fota_cli_col rollout_cols[] = {
    { "ID", "id", NULL, 1 },
    { "PRODUCT", "product_id", NULL, 1 },
    { "VERSION", "version", NULL, 1 },
    { "STATE", "state", NULL, 1 },
    { "UPGRADED", NULL, rollout_done, 1 },
    { "IN PROGRESS", "in_progress", NULL, 1 },
    { "WAITING", "waiting", NULL, 1 },
    { "QUEUED", "queued", NULL, 1 },
    { "FAILED", "failed", NULL, 1 },
    { "TIMED OUT", "timed_out", NULL, 1 },
    { "DELETED", "deleted", NULL, 1 },
    { "CREATED", "created", fota_cli_out_cell_time, 1 },
};
static const struct fota_cli_list rollout_table = FOTA_CLI_LIST(rollout_cols, 128, 0);

int fota_cli_cmd_rollout_list(struct fota_cli_ctx *c)
{
    const char *product = fota_cli_ctx_opt(c, "product");
    struct fota_cli_reply r;
    char path[64] = "/v1/rollouts/";
    int64_t pid;
    int st;

    if (product) {
        if ((st = fota_cli_ctx_product_id(c, product, &pid)) != 0)
            return st;
        snprintf(path, sizeof(path), "/v1/rollouts/?product_id=%" PRId64, pid);
    }
    st = fota_cli_ctx_call(c, "GET", path, NULL, &r, NULL);
    if (st != 0)
        return st;
    return fota_cli_ctx_print_list(c, &r, fota_cli_reply_array(r.json, "rollouts"), &rollout_table,
                                   NULL);
}

/* The rollout id in the first argument. 0, or the usage status (reported). */
static int rollout_id(const struct fota_cli_ctx *c, long long *id)
{
    char *end = NULL;
    *id = strtoll(c->args.pos[0], &end, 10);
    if (!*c->args.pos[0] || *end || *id <= 0)
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "a rollout is named by its id: %s",
                                 c->args.pos[0]);
    return 0;
}

int fota_cli_cmd_rollout_show(struct fota_cli_ctx *c)
{
    static const char *const order[] = { "id", "state", "product_id", "version", "total",
                                         "succeeded", "in_progress", "waiting", "queued", "failed",
                                         "timed_out", "deleted", "cancelled", "skipped", NULL };
    struct fota_cli_reply r;
    char path[64], what[96];
    long long id;
    long wait_s = ROLLOUT_WAIT_DEFAULT;
    int st;

    if ((st = rollout_id(c, &id)) != 0 ||
        (st = int_opt(c, "wait-timeout", 1, 7 * 86400, &wait_s)) != 0)
        return st;
    if (fota_cli_ctx_opt(c, "wait"))
        return wait_rollout(c, (int64_t)id, wait_s);
    snprintf(path, sizeof(path), "/v1/rollouts/%lld/", id);
    snprintf(what, sizeof(what), "rollout %lld", id);
    st = fota_cli_ctx_call(c, "GET", path, NULL, &r, what);
    if (st != 0)
        return st;
    if (c->json)
        fota_cli_out_json(stdout, r.json);
    else
        fota_cli_out_show(stdout, fota_cli_reply_object(r.json, "rollout"), order);
    fota_cli_reply_cleanup(&r);
    return 0;
}

int fota_cli_cmd_rollout_cancel(struct fota_cli_ctx *c)
{
    struct fota_cli_reply r;
    char path[64], what[96];
    json_t *ro;
    long long id;
    int st;

    if ((st = rollout_id(c, &id)) != 0)
        return st;
    snprintf(path, sizeof(path), "/v1/rollouts/%lld/cancel", id);
    snprintf(what, sizeof(what), "rollout %lld", id);
    st = fota_cli_ctx_call(c, "POST", path, NULL, &r, what);   /* 409 once it has finished */
    if (st != 0)
        return st;
    ro = fota_cli_reply_object(r.json, "rollout");
    if (c->json)
        fota_cli_out_json(stdout, r.json);
    else
        printf("rollout %lld cancelled: %zu device%s dropped before their push; %zu already "
               "pushed finish on their own\n", id, num(r.json, "cancelled_now"),
               num(r.json, "cancelled_now") == 1 ? "" : "s", num(ro, "in_progress"));
    fota_cli_reply_cleanup(&r);
    return 0;
}
