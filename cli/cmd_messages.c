/* cmd_messages.c - `fotactl messages`: the product/device message log
 * (update available, upgrade done, ...) oldest first like a log file, and
 * --follow, the server-sent-events feed printed line by line like tail -f. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cmd.h"
#include "fota_str.h"
#include "out.h"

/* A sentence for the messages fotad records without a "text". */
static int describe(const char *action, const json_t *b, char *buf, size_t cap)
{
    const char *v = json_string_value(json_object_get(b, "version"));
    const char *pre = json_string_value(json_object_get(b, "pre_rom_version"));
    const char *now = json_string_value(json_object_get(b, "rom_version"));

    if (strcmp(action, "rom_released") == 0 && v)
        snprintf(buf, cap, "release %s published", v);
    else if (strcmp(action, "device_upgrade_success") == 0 && now)
        snprintf(buf, cap, "upgraded %s%s to %s", pre ? "from " : "", pre ? pre : "", now);
    else if (strcmp(action, "device_upgrade_failed") == 0 && now)
        snprintf(buf, cap, "upgrade to %s failed", now);
    else
        return -1;
    return 0;
}

/* The human text of a message: its "text"/"message" member, or the same
 * inside its body (an object or JSON text), a sentence for known actions,
 * else the body as compact JSON. */
static const char *message_text(const json_t *m, char *buf, size_t cap)
{
    static const char *const names[] = { "text", "message", "msg" };
    json_t *body = json_object_get(m, "body"), *parsed = NULL, *b, *v;
    const char *action = json_string_value(json_object_get(m, "action"));
    size_t i;

    for (i = 0; i < 3; i++) {
        v = json_object_get(m, names[i]);
        if (json_is_string(v))
            return fota_cli_out_fmt(v, buf, cap);
    }
    if (json_is_string(body))
        parsed = json_loads(json_string_value(body), 0, NULL);
    b = parsed ? parsed : body;
    for (i = 0; i < 3 && json_is_object(b); i++) {
        v = json_object_get(b, names[i]);
        if (json_is_string(v)) {
            fota_cli_out_fmt(v, buf, cap);
            json_decref(parsed);
            return buf;
        }
    }
    if (!(json_is_object(b) && action && describe(action, b, buf, cap) == 0))
        fota_cli_out_fmt(b, buf, cap);
    json_decref(parsed);
    return buf;
}

/* "created", or "time" as older servers name it. */
static const char *time_cell(const json_t *m, const char *field, void *ud, char *buf, size_t cap)
{
    json_t *t = json_object_get(m, field);

    (void)ud;
    return fota_cli_out_fmt_time(t ? t : json_object_get(m, "time"), buf, cap);
}

/* Devices' names by id, looked up once each on a connection of their own
 * (a follow's connection is busy with the stream). */
struct names {
    struct fota_cli_ctx *c;
    struct fota_cli_api *api;          /* opened at the first lookup */
    json_t *by_id;                     /* "ID" -> name, or null when the server would not say */
};

/* Frees what n holds (n stays usable: freeing twice is harmless). */
static void names_free(struct names *n)
{
    fota_cli_api_free(n->api);
    json_decref(n->by_id);
    n->api = NULL;
    n->by_id = NULL;
}

/* The name of device id, or NULL (deleted since, or not this key's to see). */
static const char *device_name(struct names *n, const char *id)
{
    struct fota_cli_reply r;
    char path[64];
    json_t *v = json_object_get(n->by_id, id), *name = json_null();

    if (v)
        return json_string_value(v);
    if (!n->api)
        n->api = fota_cli_api_new(n->c->conf.server, n->c->conf.key, n->c->conf.cacert);
    snprintf(path, sizeof(path), "/v1/devices/%s/", id);
    if (n->api && fota_cli_api_call(n->api, "GET", path, NULL, &r) == 0 && r.status == 200) {
        v = json_object_get(json_object_get(r.json, "device"), "name");
        if (json_is_string(v) && json_string_length(v) > 0)
            name = json_copy(v);
    }
    fota_cli_reply_cleanup(&r);
    json_object_set_new(n->by_id, id, name);
    return json_string_value(name);
}

/* The device's name (its id when the server does not say it); device 0 is
 * a product-wide message: no device. */
static const char *device_cell(const json_t *m, const char *field, void *ud, char *buf,
                               size_t cap)
{
    const char *name;

    fota_cli_out_fmt(json_object_get(m, field), buf, cap);
    if (strcmp(buf, "0") == 0 || !buf[0])
        return "-";
    name = ud ? device_name(ud, buf) : NULL;
    if (name)
        fota_str_copy(buf, cap, name);
    return buf;
}

static const char *text_cell(const json_t *m, const char *field, void *ud, char *buf,
                             size_t cap)
{
    (void)field;
    (void)ud;
    return message_text(m, buf, cap);
}

static const struct fota_cli_col message_cols[] = {
    { "TIME", "created", time_cell, 1 },
    { "DEVICE", "device_id", device_cell, 1 },
    { "ACTION", "action", NULL, 1 },
    { "MESSAGE", NULL, text_cell, 1 },
};
/* The server pages newest first; a log reads oldest first. */
static const struct fota_cli_list message_list = FOTA_CLI_LIST(message_cols, 1024, 1);

struct follow_state {
    struct fota_cli_ctx *c;
    long want, got;
    int broken;   /* stdout is a closed pipe */
    struct names *names;
};

static int on_event(void *ud, const char *event, const char *id, const char *data)
{
    struct follow_state *f = ud;
    char b[4][FOTA_CLI_CELL_MAX];
    const char *cells[4];
    json_t *m;

    if (event[0] && strcmp(event, "message") != 0)
        return 0;   /* other event kinds (hello, ping) are not messages */
    m = json_loads(data, JSON_DECODE_ANY, NULL);
    if (!json_is_object(m)) {
        json_decref(m);
        return 0;
    }
    if (f->c->json) {
        char *s = json_dumps(m, JSON_COMPACT);

        printf("%s\n", s ? s : "{}");
        free(s);
    } else {
        fota_cli_out_list_cells(json_is_object(json_object_get(m, "message"))
                                ? json_object_get(m, "message") : m, &message_list, f->names, b,
                                cells);
        if (fota_cli_out_tty())
            printf("%s%s%s  %-6s  %s%-24s%s  %s\n", fota_cli_out_dim(), cells[0],
                   fota_cli_out_off(), cells[1], fota_cli_out_bold(), cells[2], fota_cli_out_off(),
                   cells[3]);
        else
            printf("%s\t%s\t%s\t%s\n", cells[0], cells[1], cells[2], cells[3]);
    }
    json_decref(m);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        /* libcurl ignores SIGPIPE while it runs, so `| head -1` shows up as
         * EPIPE here: stop, and die of SIGPIPE afterwards like tail -f. */
        f->broken = 1;
        return 1;
    }
    f->got++;
    return f->want > 0 && f->got >= f->want;
}

/* Streams the messages of path (a /v1/messages/?...follow=true query) until
 * want of them were printed (0: until the server ends the stream). Returns
 * the exit status (reported); dies of SIGPIPE when stdout's reader is gone. */
static int follow(struct fota_cli_ctx *c, const char *path, long want, struct names *names)
{
    struct fota_cli_reply r;
    struct follow_state f = { c, want, 0, 0, names };
    int st;

    st = fota_cli_api_stream(c->api, path, on_event, &f, &r);
    if (f.broken) {
        fota_cli_reply_cleanup(&r);
        fota_cli_api_free(c->api);
        c->api = NULL;
        names_free(names);
        signal(SIGPIPE, SIG_DFL);
        raise(SIGPIPE);
        return FOTA_CLI_EXIT_FAIL;   /* SIGPIPE was blocked: still fail */
    }
    st = fota_cli_ctx_check(c, st, &r, NULL);
    if (st == 0 && r.stream_ended)   /* fotad stopped, or a proxy cut the stream */
        st = fota_cli_out_fail(FOTA_CLI_EXIT_CONNECT, "%s ended the message stream after %ld "
                               "message%s", fota_cli_api_server(c->api), f.got,
                               f.got == 1 ? "" : "s");
    else if (st == 0 && !(f.want && f.got >= f.want))
        st = fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "the server does not stream messages");
    fota_cli_reply_cleanup(&r);
    return st;
}

int fota_cli_cmd_messages(struct fota_cli_ctx *c)
{
    const char *product = fota_cli_ctx_opt(c, "product"), *device = fota_cli_ctx_opt(c, "device");
    const char *count = fota_cli_ctx_opt(c, "count"), *after = fota_cli_ctx_opt(c, "after");
    struct fota_cli_reply r;
    struct names names = { 0 };
    char path[256], *end;
    int64_t pid = 0, did = 0;
    long n = 0;
    size_t o;
    int st;

    if (count) {
        n = strtol(count, &end, 10);
        if (!count[0] || *end || n <= 0 || n > 1000000)
            return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "--count wants a positive number");
    }
    if (product && (st = fota_cli_ctx_product_id(c, product, &pid)) != 0)
        return st;
    if (device && (st = fota_cli_ctx_device_id(c, device, product, &did)) != 0)
        return st;
    o = (size_t)snprintf(path, sizeof(path), "/v1/messages/?");
    if (pid)
        o += (size_t)snprintf(path + o, sizeof(path) - o, "product_id=%" PRId64 "&", pid);
    if (did)
        o += (size_t)snprintf(path + o, sizeof(path) - o, "device_id=%" PRId64 "&", did);
    if (after && (!after[0] || strspn(after, "0123456789") != strlen(after) || strlen(after) > 18))
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "--after wants a message id");
    names.c = c;
    names.by_id = json_object();
    if (did && strspn(device, "0123456789") != strlen(device)) {
        char id[32];
        snprintf(id, sizeof(id), "%" PRId64, did);
        json_object_set_new(names.by_id, id, json_string(device));
    }
    if (fota_cli_ctx_opt(c, "follow")) {
        if (after)
            o += (size_t)snprintf(path + o, sizeof(path) - o, "after=%s&", after);
        snprintf(path + o, sizeof(path) - o, "follow=true");
        st = follow(c, path, n, &names);
        names_free(&names);
        return st;
    }
    if (n)
        snprintf(path + o, sizeof(path) - o, "limit=%ld", n);
    else if (o > 0 && (path[o - 1] == '&' || path[o - 1] == '?'))
        path[o - 1] = '\0';
    st = fota_cli_ctx_call(c, "GET", path, NULL, &r, NULL);
    if (st == 0)
        st = fota_cli_ctx_print_list(c, &r, fota_cli_reply_array(r.json, "messages"),
                                     &message_list, &names);
    names_free(&names);
    return st;
}
