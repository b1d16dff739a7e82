/* cmd_rpc.c - the commands sent to one device: `fotactl upgrade` (with
 * --wait, which follows the message stream until the device reports),
 * `fotactl reboot` and `fotactl rpc` for any other action. They go through
 * the seed's own endpoint (/v1/device/rpc/?deliver_to_device=true&action=...)
 * with device_id= as the admin key needs. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "fota_err.h"
#include "fota_str.h"
#include "out.h"

/* The seed's RPC path for action with KEY=VALUE parameters kv[0..nkv) to
 * device id, query values encoded. Returns 0 or FOTA_CLI_EXIT_USAGE
 * (reported). */
static int rpc_path(const char *action, const char *const *kv, int nkv, int64_t id, char *path,
                    size_t cap)
{
    char enc[512], word[64], k[128];
    size_t o;
    int i, w;

    if (fota_cli_api_urlencode(action, enc, sizeof(enc)) < 0)
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "the action is too long");
    o = (size_t)snprintf(path, cap,
                         "/v1/device/rpc/?deliver_to_device=true&action=%s&device_id=%" PRId64,
                         enc, id);
    for (i = 0; i < nkv; i++) {
        const char *eq = strchr(kv[i], '=');

        if (!eq || eq == kv[i] ||
            fota_str_copy_n(k, sizeof(k), kv[i], (size_t)(eq - kv[i])) >= sizeof(k))
            return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "'%s' is not KEY=VALUE", kv[i]);
        if (fota_cli_api_urlencode(k, word, sizeof(word)) < 0 ||
            fota_cli_api_urlencode(eq + 1, enc, sizeof(enc)) < 0)
            return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "'%s' is too long", kv[i]);
        w = snprintf(path + o, cap - o, "&%s=%s", word, enc);
        if (w < 0 || (size_t)w >= cap - o)
            return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "too many parameters");
        o += (size_t)w;
    }
    return 0;
}

/* Prints what a sent command became: the reply with --json, "DONE for
 * device D: STATE" for a known command (done), else the reply as a show
 * block. */
static void print_sent(const struct fota_cli_ctx *c, const struct fota_cli_reply *r,
                       const char *done)
{
    json_t *state = json_object_get(json_object_get(r->json, "command"), "state");
    char word[64];

    if (c->json) {
        fota_cli_out_json(stdout, r->json);
    } else if (done) {
        if (json_is_string(state))
            fota_str_copy(word, sizeof(word), json_string_value(state));
        else
            fota_str_copy(word, sizeof(word), r->status == 202 ? "queued" : "sent");
        printf("%s for device %s: %s%s\n", done, c->args.pos[0], word,
               strcmp(word, "queued") == 0 ? " (delivered when the device connects)" : "");
    } else {
        fota_cli_out_show(stdout, r->json, NULL);
    }
}

/* Sends action with KEY=VALUE parameters to the device c->args.pos[0] and
 * prints the outcome (done: the sentence for a known command; NULL prints
 * the reply). *id_out (may be NULL) receives the device id; quiet skips the
 * printing. */
static int rpc(struct fota_cli_ctx *c, const char *action, const char *const *kv, int nkv,
               const char *done, int64_t *id_out, int quiet)
{
    struct fota_cli_reply r;
    char path[2048], what[128];
    const char *msg;
    int64_t id;
    int st;

    st = fota_cli_ctx_device_arg(c, &id, what, sizeof(what));
    if (st != 0)
        return st;
    if (id_out)
        *id_out = id;
    st = rpc_path(action, kv, nkv, id, path, sizeof(path));
    if (st != 0)
        return st;
    st = fota_cli_api_call(c->api, "GET", path, NULL, &r);
    /* A 404 here is the device, or (sys_upgrade) the version: let the
     * server's message say which unless it is about the device. */
    msg = st == 0 && r.status == 404 ? fota_cli_reply_message(&r) : NULL;
    st = fota_cli_ctx_check(c, st, &r, msg && !strstr(msg, "device") ? NULL : what);
    if (st == 0 && !quiet)
        print_sent(c, &r, done);
    fota_cli_reply_cleanup(&r);
    return st;
}

/* ------------------------------------------------------- upgrade --wait */

struct wait {
    struct fota_cli_ctx *c;
    int outcome;      /* 0 none yet, 1 success, -1 failed */
    json_t *report;   /* the message that decided it */
};

static int on_report(void *ud, const char *event, const char *id, const char *data)
{
    struct wait *w = ud;
    json_t *m = json_loads(data, JSON_DECODE_ANY, NULL);
    const char *action = json_string_value(json_object_get(m, "action"));

    if (action && strcmp(action, "device_upgrade_success") == 0)
        w->outcome = 1;
    else if (action && strcmp(action, "device_upgrade_failed") == 0)
        w->outcome = -1;
    if (!w->outcome) {
        json_decref(m);
        return 0;
    }
    w->report = m;
    return 1;
}

/* The newest message id the key can see (0 if none): the stream resumes
 * after it, so a report that arrives before the stream is open is not lost
 * (message ids are global and only grow). */
static int newest_message(struct fota_cli_ctx *c, int64_t *newest)
{
    struct fota_cli_reply r;
    json_t *id;
    int st;

    *newest = 0;
    st = fota_cli_ctx_call(c, "GET", "/v1/messages/?limit=1", NULL, &r, NULL);
    if (st != 0)
        return st;
    id = json_object_get(json_array_get(fota_cli_reply_array(r.json, "messages"), 0), "id");
    if (json_is_integer(id))
        *newest = json_integer_value(id);
    fota_cli_reply_cleanup(&r);
    return 0;
}

static int wait_report(struct fota_cli_ctx *c, int64_t dev, int64_t after, long timeout,
                       const char *version)
{
    struct fota_cli_reply r;
    struct wait w = { c, 0, NULL };
    json_t *body;
    char path[128], text[256];
    int rc, st;

    snprintf(path, sizeof(path), "/v1/messages/?device_id=%" PRId64 "&after=%" PRId64
             "&follow=true", dev, after);
    fota_cli_api_set_timeout(c->api, timeout);
    rc = fota_cli_api_stream(c->api, path, on_report, &w, &r);
    fota_cli_api_set_timeout(c->api, 0);
    if (rc == FOTA_ETIMEDOUT) {
        fota_cli_reply_cleanup(&r);
        return fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "device %s did not report the upgrade to %s "
                                 "within %ld s", c->args.pos[0], version, timeout);
    }
    st = fota_cli_ctx_check(c, rc, &r, NULL);
    if (st == 0 && !w.outcome)
        st = fota_cli_out_fail(FOTA_CLI_EXIT_CONNECT, "%s ended the message stream before "
                               "device %s reported", fota_cli_api_server(c->api), c->args.pos[0]);
    fota_cli_reply_cleanup(&r);
    if (st != 0) {
        json_decref(w.report);
        return st;
    }
    body = json_object_get(w.report, "body");
    if (c->json)
        fota_cli_out_json(stdout, w.report);
    else if (w.outcome > 0)
        printf("device %s upgraded to %s; `fotactl reboot %s` starts it\n", c->args.pos[0],
               fota_cli_out_fmt(json_object_get(body, "rom_version"), text, sizeof(text)),
               c->args.pos[0]);
    json_decref(w.report);
    if (w.outcome < 0)
        return fota_cli_out_fail(FOTA_CLI_EXIT_FAIL,
                                 "device %s reports the upgrade to %s failed (%s)", c->args.pos[0],
                                 version, fota_cli_out_fmt(body, text, sizeof(text)));
    return 0;
}

int fota_cli_cmd_rpc_upgrade(struct fota_cli_ctx *c)
{
    const char *v = fota_cli_ctx_opt(c, "version"), *t = fota_cli_ctx_opt(c, "timeout");
    int wait = fota_cli_ctx_opt(c, "wait") != NULL;
    char kv[256], done[300], *end;
    const char *p[2] = { kv, "force=true" };
    int64_t dev = 0, after = 0;
    long timeout = 300;
    int st;

    if (!v || !v[0])
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "upgrade needs --version V");
    if (snprintf(kv, sizeof(kv), "version=%s", v) >= (int)sizeof(kv))
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "the version is too long");
    if (t) {
        timeout = strtol(t, &end, 10);
        if (!wait || !t[0] || *end || timeout <= 0 || timeout > 86400)
            return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE,
                                     "--timeout wants seconds (1..86400) and goes with --wait");
    }
    if (wait && (st = newest_message(c, &after)) != 0)
        return st;
    snprintf(done, sizeof(done), "upgrade to %s", v);
    st = rpc(c, "sys_upgrade", p, fota_cli_ctx_opt(c, "force") ? 2 : 1, done, &dev,
             wait && c->json);
    if (st != 0 || !wait)
        return st;
    fflush(stdout);
    return wait_report(c, dev, after, timeout, v);
}

int fota_cli_cmd_rpc_reboot(struct fota_cli_ctx *c)
{
    return rpc(c, "sys_reboot", NULL, 0, "reboot", NULL, 0);
}

int fota_cli_cmd_rpc_action(struct fota_cli_ctx *c)
{
    return rpc(c, c->args.pos[1], (const char *const *)c->args.pos + 2, c->args.npos - 2, NULL,
               NULL, 0);
}
