/* cmd_rollout.c - `fotactl rollout start|list|show|approve|pause|resume|
 * cancel|rollback`: a rollout upgrades the matching devices of a product in
 * stages, paced by the server (POST /v1/rollouts/), which keeps its progress
 * (GET /v1/rollouts/[ID/]) and acts on it on request (POST
 * /v1/rollouts/ID/approve, pause, resume, cancel, rollback). `--wait`
 * follows a rollout until every device has reported, asking the server once
 * a second, and exits 0 only when every one succeeded (docs/api.md,
 * "Rollouts"). */
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

/* "v1,v2" -> one string or an array of them (versions, tags). */
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

/* --stages "1%,10%,100%" / "5,50%" / "@3+4,100%": a percent, a count or
 * device ids joined by '+' per stage -> the API's stage objects; success
 * and approval (< 0: unset) go into each. NULL (reported) on a bad list. */
static json_t *stage_list(const char *s, long success, int approval)
{
    json_t *a = json_array();
    const char *p = s;

    while (*p) {
        json_t *g = json_object();
        char *end = NULL;
        if (*p == '@') {
            json_t *ids = json_array();
            do {
                long long v = strtoll(p + 1, &end, 10);
                if (end == p + 1 || v <= 0) {
                    end = NULL;
                    break;
                }
                json_array_append_new(ids, json_integer(v));
                p = end;
            } while (*p == '+');
            json_object_set_new(g, "device_ids", ids);
        } else {
            long long v = strtoll(p, &end, 10);
            if (end != p && v > 0 && *end == '%') {
                json_object_set_new(g, "percent", json_integer(v));
                end++;
            } else if (end != p && v > 0) {
                json_object_set_new(g, "count", json_integer(v));
            } else {
                end = NULL;
            }
        }
        if (!end || (*end && *end != ',')) {
            json_decref(g);
            json_decref(a);
            fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "--stages takes stages separated by commas, "
                              "each N%% (a share of the devices), N (a count) or @ID+ID (those "
                              "devices): %s", s);
            return NULL;
        }
        if (success >= 0)
            json_object_set_new(g, "success", json_integer(success));
        if (approval > 0 && json_array_size(a) > 0)
            json_object_set_new(g, "approval", json_true());
        json_array_append_new(a, g);
        p = *end ? end + 1 : end;
    }
    return a;
}

/* --hours "22:00-05:00" -> {"from": "22:00", "to": "05:00"}; NULL (reported). */
static json_t *hours_obj(const char *s)
{
    char from[6], to[6];
    if (strlen(s) != 11 || s[5] != '-') {
        fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "--hours takes HH:MM-HH:MM (UTC): %s", s);
        return NULL;
    }
    memcpy(from, s, 5);
    from[5] = '\0';
    memcpy(to, s + 6, 5);
    to[5] = '\0';
    return json_pack("{s:s, s:s}", "from", from, "to", to);
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
    char gone[192] = "";
    if (num(ro, "deleted"))
        snprintf(gone, sizeof(gone), ", %zu deleted", num(ro, "deleted"));
    if (num(ro, "cancelled"))
        snprintf(gone + strlen(gone), sizeof(gone) - strlen(gone), ", %zu cancelled",
                 num(ro, "cancelled"));
    if (num(ro, "verifying"))
        snprintf(gone + strlen(gone), sizeof(gone) - strlen(gone), ", %zu in their health time",
                 num(ro, "verifying"));
    if (json_array_size(json_object_get(ro, "stages")) > 1)
        snprintf(gone + strlen(gone), sizeof(gone) - strlen(gone), ", stage %zu of %zu",
                 num(ro, "stage"), json_array_size(json_object_get(ro, "stages")));
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
    const char *why = json_string_value(json_object_get(json_object_get(ro, "paused"), "reason"));
    if (state && strcmp(state, "paused") == 0)
        return fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "rollout %" PRId64 " %s: %s (`fotactl "
                                 "rollout resume %" PRId64 "` goes on)", id,
                                 json_is_true(json_object_get(ro, "halted")) ? "paused itself"
                                                                             : "was paused",
                                 why ? why : "no reason given", id);
    if (state && strcmp(state, "awaiting_approval") == 0)
        return fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "rollout %" PRId64 ": stage %zu awaits an "
                                 "approval (`fotactl rollout approve %" PRId64 "`)", id,
                                 num(ro, "stage"), id);
    if (state && strcmp(state, "interrupted") == 0)
        return fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "rollout %" PRId64 " was interrupted by a "
                                 "restart of the server", id);
    if (state && strcmp(state, "cancelled") == 0)
        return fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "rollout %" PRId64 " %s: %zu of %zu "
                                 "devices upgraded", id,
                                 "was cancelled",
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
    const char *stages = fota_cli_ctx_opt(c, "stages"), *hours = fota_cli_ctx_opt(c, "hours");
    int approval = fota_cli_ctx_opt(c, "approval") != NULL;
    long window = -1, timeout = -1, max_fail = -1, success = -1, health = -1, reboots = -1;
    json_t *filter, *ids = NULL, *sj = NULL, *hj = NULL;
    int st;

    if (online && offline)
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "--online and --offline exclude each other");
    if ((st = int_opt(c, "window", 1, 100000, &window)) != 0 ||
        (st = int_opt(c, "timeout", 10, 86400, &timeout)) != 0 ||
        (st = int_opt(c, "max-failures", 0, 100000, &max_fail)) != 0 ||
        (st = int_opt(c, "success", 0, 100, &success)) != 0 ||
        (st = int_opt(c, "health", 0, 86400, &health)) != 0 ||
        (st = int_opt(c, "max-reboots", 0, 100, &reboots)) != 0)
        return st;
    if (success >= 0 && !stages)
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "--success is a threshold of --stages");
    if (hours && !(hj = hours_obj(hours)))
        return FOTA_CLI_EXIT_USAGE;
    if (stages && !(sj = stage_list(stages, success, approval))) {
        json_decref(hj);
        return FOTA_CLI_EXIT_USAGE;
    }
    if (devices && !(ids = id_list(devices))) {
        json_decref(hj);
        json_decref(sj);
        return FOTA_CLI_EXIT_USAGE;
    }
    filter = json_object();
    if (from)
        json_object_set_new(filter, "rom_version", version_list(from));
    if (online || offline)
        json_object_set_new(filter, "online", json_boolean(online));
    if (ids)
        json_object_set_new(filter, "device_ids", ids);
    if (fota_cli_ctx_opt(c, "tag"))
        json_object_set_new(filter, "tag", version_list(fota_cli_ctx_opt(c, "tag")));
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
    if (health >= 0)
        json_object_set_new(*body, "health", json_integer(health));
    if (reboots >= 0)
        json_object_set_new(*body, "max_reboots", json_integer(reboots));
    if (approval)
        json_object_set_new(*body, "approval", json_true());
    if (hj)
        json_object_set_new(*body, "hours", hj);
    if (sj)
        json_object_set_new(*body, "stages", sj);
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

/* "awaiting approval" for "awaiting_approval". */
static const char *words(const json_t *row, const char *field, void *ud, char *buf, size_t cap)
{
    (void)ud;
    fota_str_copy(buf, cap, json_string_value(json_object_get(row, field)) ?
                                json_string_value(json_object_get(row, field)) : "-");
    for (char *p = buf; *p; p++)
        *p = *p == '_' ? ' ' : *p;
    return buf;
}

/* The product by name (ud: the names by id, may lack it: its id). */
static const char *rollout_product(const json_t *row, const char *field, void *ud, char *buf,
                                   size_t cap)
{
    char id[32];
    (void)field;
    fota_cli_out_fmt(json_object_get(row, "product_id"), id, sizeof(id));
    const char *name = ud ? json_string_value(json_object_get(ud, id)) : NULL;
    fota_str_copy(buf, cap, name ? name : id);
    return buf;
}

/* "2/3" of a rollout in stages, "-" of one without. */
static const char *rollout_stage(const json_t *row, const char *field, void *ud, char *buf,
                                 size_t cap)
{
    size_t n = json_array_size(json_object_get(row, "stages"));
    (void)field;
    (void)ud;
    if (n < 2)
        return "";
    snprintf(buf, cap, "%zu/%zu", num(row, "stage"), n);
    return buf;
}

/* The state in words: "awaiting approval", "paused by itself". */
static const char *rollout_state(const json_t *row, const char *field, void *ud, char *buf,
                                 size_t cap)
{
    const json_t *paused = json_object_get(row, "paused");
    (void)ud;
    words(row, field, NULL, buf, cap);
    if (json_is_object(paused) && json_is_true(json_object_get(paused, "auto")))
        snprintf(buf + strlen(buf), cap - strlen(buf), " by itself");
    return buf;
}

static const struct fota_cli_col rollout_cols[] = {
    { "ID", "id", NULL, 1 },
    { "PRODUCT", NULL, rollout_product, 1 },
    { "VERSION", "version", NULL, 1 },
    { "STATE", "state", rollout_state, 1 },
    { "STAGE", NULL, rollout_stage, 1 },
    { "UPGRADED", NULL, rollout_done, 1 },
    { "IN PROGRESS", "in_progress", NULL, 1 },
    { "WAITING", "waiting", NULL, 1 },
    { "QUEUED", "queued", NULL, 1 },
    { "FAILED", "failed", NULL, 1 },
    { "TIMED OUT", "timed_out", NULL, 1 },
    { "CREATED", "created", fota_cli_out_cell_time, 1 },
};
static const struct fota_cli_list rollout_table = FOTA_CLI_LIST(rollout_cols, 128, 0);

int fota_cli_cmd_rollout_list(struct fota_cli_ctx *c)
{
    const char *product = fota_cli_ctx_opt(c, "product");
    json_t *names = json_object();
    struct fota_cli_reply r;
    char path[64] = "/v1/rollouts/";
    int64_t pid;
    int st;

    if (product) {
        if ((st = fota_cli_ctx_product_id(c, product, &pid)) != 0) {
            json_decref(names);
            return st;
        }
        snprintf(path, sizeof(path), "/v1/rollouts/?product_id=%" PRId64, pid);
    }
    if (!c->json && (st = fota_cli_ctx_product_names(c, names)) != 0) {
        json_decref(names);
        return st;
    }
    st = fota_cli_ctx_call(c, "GET", path, NULL, &r, NULL);
    if (st == 0)
        st = fota_cli_ctx_print_list(c, &r, fota_cli_reply_array(r.json, "rollouts"),
                                     &rollout_table, names);
    json_decref(names);
    return st;
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

/* "3/4" of a stage: upgraded of its devices. */
static const char *stage_done(const json_t *row, const char *field, void *ud, char *buf,
                              size_t cap)
{
    (void)field;
    (void)ud;
    snprintf(buf, cap, "%zu/%zu", num(row, "succeeded"), num(row, "total"));
    return buf;
}

/* "10 %", "5 devices", "3 listed", "the rest", "all". */
static const char *stage_size(const json_t *row, const char *field, void *ud, char *buf,
                              size_t cap)
{
    const char *kind = json_string_value(json_object_get(row, "kind"));
    (void)field;
    (void)ud;
    if (kind && strcmp(kind, "percent") == 0)
        snprintf(buf, cap, "up to %zu %%", num(row, "percent"));
    else if (kind && strcmp(kind, "count") == 0)
        snprintf(buf, cap, "%zu more", num(row, "count"));
    else if (kind && strcmp(kind, "devices") == 0)
        snprintf(buf, cap, "%zu listed", num(row, "listed"));
    else
        return kind && strcmp(kind, "rest") == 0 ? "the rest" : "all";
    return buf;
}

static const char *stage_gate(const json_t *row, const char *field, void *ud, char *buf,
                              size_t cap)
{
    const json_t *mf = json_object_get(row, "max_failures");
    (void)field;
    (void)ud;
    if (json_is_integer(mf))
        snprintf(buf, cap, "%zu %%, pause after %zu failed%s", num(row, "success"),
                 (size_t)json_integer_value(mf),
                 json_is_true(json_object_get(row, "approval")) ? ", approval" : "");
    else
        snprintf(buf, cap, "%zu %%%s", num(row, "success"),
                 json_is_true(json_object_get(row, "approval")) ? ", approval" : "");
    return buf;
}

static const struct fota_cli_col stage_cols[] = {
    { "STAGE", "stage", NULL, 1 },
    { "DEVICES", NULL, stage_size, 1 },
    { "STATE", "state", words, 1 },
    { "UPGRADED", NULL, stage_done, 1 },
    { "FAILED", "failed", NULL, 1 },
    { "TIMED OUT", "timed_out", NULL, 1 },
    { "NEEDS", NULL, stage_gate, 1 },
    { "STARTED", "started", fota_cli_out_cell_time, 1 },
};
static const struct fota_cli_list stage_table = FOTA_CLI_LIST(stage_cols, 96, 0);

/* "2 min 5 s", "1 h 3 min", "4 s". */
static void span(int64_t s, char *buf, size_t cap)
{
    if (s >= 3600)
        snprintf(buf, cap, "%lld h %lld min", (long long)(s / 3600), (long long)(s % 3600 / 60));
    else if (s >= 60)
        snprintf(buf, cap, "%lld min %lld s", (long long)(s / 60), (long long)(s % 60));
    else
        snprintf(buf, cap, "%lld s", (long long)s);
}

/* The product's name for its id (the id when it cannot be read). */
static void product_name(struct fota_cli_ctx *c, int64_t pid, char *buf, size_t cap)
{
    struct fota_cli_reply r;
    char path[64];
    snprintf(path, sizeof(path), "/v1/products/%" PRId64 "/", pid);
    snprintf(buf, cap, "%" PRId64, pid);
    if (fota_cli_ctx_call(c, "GET", path, NULL, &r, NULL) != 0)
        return;
    const char *name = json_string_value(
        json_object_get(fota_cli_reply_object(r.json, "product"), "name"));
    if (name)
        snprintf(buf, cap, "%s (%" PRId64 ")", name, pid);
    fota_cli_reply_cleanup(&r);
}

/* A rollout for people: its state and why, its counters in words, its
 * settings, then its stages as a table. */
static void show_human(struct fota_cli_ctx *c, const json_t *ro)
{
    const char *state = json_string_value(json_object_get(ro, "state"));
    const json_t *paused = json_object_get(ro, "paused"), *hours = json_object_get(ro, "hours");
    const json_t *stages = json_object_get(ro, "stages");
    char buf[512], t[64];
    const int w = 12;

    snprintf(buf, sizeof(buf), "%zu", num(ro, "id"));
    fota_cli_out_kv(stdout, w, "rollout", buf);
    words(ro, "state", NULL, buf, sizeof(buf));
    if (json_is_object(paused))
        snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), " (%s: %s)",
                 json_is_true(json_object_get(paused, "auto")) ? "by itself" : "by request",
                 json_string_value(json_object_get(paused, "reason")));
    else if (state && strcmp(state, "awaiting_approval") == 0)
        snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf),
                 " (stage %zu: fotactl rollout approve %zu)", num(ro, "stage"), num(ro, "id"));
    fota_cli_out_kv(stdout, w, "state", buf);
    product_name(c, (int64_t)num(ro, "product_id"), buf, sizeof(buf));
    fota_cli_out_kv(stdout, w, "product", buf);
    fota_cli_out_kv(stdout, w, "version", json_string_value(json_object_get(ro, "version")));
    progress(ro, buf, sizeof(buf));
    fota_cli_out_kv(stdout, w, "progress", buf);
    if (num(ro, "skipped")) {
        snprintf(buf, sizeof(buf), "%zu already on the version", num(ro, "skipped"));
        fota_cli_out_kv(stdout, w, "skipped", buf);
    }
    span((int64_t)num(ro, "timeout"), t, sizeof(t));
    snprintf(buf, sizeof(buf), "%zu at once, %s to report%s", num(ro, "window"), t,
             json_is_true(json_object_get(ro, "reboot")) ? ", rebooted after it" : "");
    fota_cli_out_kv(stdout, w, "pace", buf);
    if (num(ro, "health")) {
        span((int64_t)num(ro, "health"), t, sizeof(t));
        snprintf(buf, sizeof(buf), "healthy for %s after its report, at most %zu more boot%s",
                 t, num(ro, "max_reboots"), num(ro, "max_reboots") == 1 ? "" : "s");
    } else {
        fota_str_copy(buf, sizeof(buf), "counted at its report");
    }
    fota_cli_out_kv(stdout, w, "health", buf);
    if (json_is_object(hours)) {
        snprintf(buf, sizeof(buf), "%s-%s UTC, %s now", json_string_value(json_object_get(hours,
                 "from")), json_string_value(json_object_get(hours, "to")),
                 json_is_true(json_object_get(hours, "open")) ? "open" : "closed");
        fota_cli_out_kv(stdout, w, "hours", buf);
    }
    if (json_is_integer(json_object_get(ro, "rollback_of"))) {
        snprintf(buf, sizeof(buf), "rollout %zu", num(ro, "rollback_of"));
        fota_cli_out_kv(stdout, w, "rolls back", buf);
    }
    fota_cli_out_kv(stdout, w, "created",
                    fota_cli_out_fmt_time(json_object_get(ro, "created"), buf, sizeof(buf)));
    if (json_array_size(stages) > 0) {
        printf("\n");
        fota_cli_out_list(stdout, stages, &stage_table, NULL);
    }
}

int fota_cli_cmd_rollout_show(struct fota_cli_ctx *c)
{
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
        show_human(c, fota_cli_reply_object(r.json, "rollout"));
    fota_cli_reply_cleanup(&r);
    return 0;
}

/* POST /v1/rollouts/ID/VERB with body (may be NULL); 0 with r filled, or
 * the exit status (reported: 409 says why in the server's words). */
static int act(struct fota_cli_ctx *c, const char *verb, json_t *body, long long *id,
               struct fota_cli_reply *r)
{
    char path[80], what[96];
    int st = rollout_id(c, id);
    if (st != 0)
        return st;
    snprintf(path, sizeof(path), "/v1/rollouts/%lld/%s", *id, verb);
    snprintf(what, sizeof(what), "rollout %lld", *id);
    return fota_cli_ctx_call(c, "POST", path, body, r, what);
}

int fota_cli_cmd_rollout_approve(struct fota_cli_ctx *c)
{
    struct fota_cli_reply r;
    char line[256];
    long long id;
    int st = act(c, "approve", NULL, &id, &r);
    if (st != 0)
        return st;
    const json_t *ro = fota_cli_reply_object(r.json, "rollout");
    size_t k = num(ro, "stage");
    const json_t *g = json_array_get(json_object_get(ro, "stages"), k ? k - 1 : 0);
    snprintf(line, sizeof(line), "rollout %lld: stage %zu of %zu approved, %zu device%s",
             id, k, json_array_size(json_object_get(ro, "stages")), num(g, "total"),
             num(g, "total") == 1 ? "" : "s");
    return fota_cli_ctx_done(c, &r, line);
}

int fota_cli_cmd_rollout_pause(struct fota_cli_ctx *c)
{
    struct fota_cli_reply r;
    char line[256];
    long long id;
    int st = act(c, "pause", NULL, &id, &r);
    if (st != 0)
        return st;
    snprintf(line, sizeof(line), "rollout %lld paused: nothing new is pushed; %zu device%s in "
             "progress finish on their own", id,
             num(fota_cli_reply_object(r.json, "rollout"), "in_progress"),
             num(fota_cli_reply_object(r.json, "rollout"), "in_progress") == 1 ? "" : "s");
    return fota_cli_ctx_done(c, &r, line);
}

int fota_cli_cmd_rollout_resume(struct fota_cli_ctx *c)
{
    struct fota_cli_reply r;
    char line[256], st_words[64];
    long long id;
    int st = act(c, "resume", NULL, &id, &r);
    if (st != 0)
        return st;
    const json_t *ro = fota_cli_reply_object(r.json, "rollout");
    words(ro, "state", NULL, st_words, sizeof(st_words));
    snprintf(line, sizeof(line), "rollout %lld resumed: stage %zu of %zu, %s", id,
             num(ro, "stage"), json_array_size(json_object_get(ro, "stages")), st_words);
    return fota_cli_ctx_done(c, &r, line);
}

int fota_cli_cmd_rollout_rollback(struct fota_cli_ctx *c)
{
    struct fota_cli_reply r;
    char line[512];
    long long id;
    long window = -1;
    int st;
    if ((st = int_opt(c, "window", 1, 100000, &window)) != 0)
        return st;
    json_t *body = json_pack("{s:s}", "devices",
                             fota_cli_ctx_opt(c, "upgraded") ? "upgraded" : "failed");
    if (window > 0)
        json_object_set_new(body, "window", json_integer(window));
    if (fota_cli_ctx_opt(c, "reboot"))
        json_object_set_new(body, "reboot", json_true());
    st = act(c, "rollback", body, &id, &r);
    json_decref(body);
    if (st != 0)
        return st;
    const json_t *made = json_object_get(r.json, "rollouts"), *x;
    size_t i, n = 0;
    n += (size_t)snprintf(line, sizeof(line), "rollout %lld rolled back: %zu device%s", id,
                          num(r.json, "devices"), num(r.json, "devices") == 1 ? "" : "s");
    json_array_foreach(made, i, x) {
        if (n < sizeof(line))
            n += (size_t)snprintf(line + n, sizeof(line) - n, "%s rollout %zu to %s (%zu)",
                                  i ? "," : " in", num(x, "id"),
                                  json_string_value(json_object_get(x, "version")),
                                  num(x, "total"));
    }
    if (n < sizeof(line) && num(r.json, "left_out_total"))
        snprintf(line + n, sizeof(line) - n, "; %zu left out (no previous version to go back to)",
                 num(r.json, "left_out_total"));
    return fota_cli_ctx_done(c, &r, line);
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
