/* cmd_device.c - `fotactl device add|list|show|key` and the device commands
 * `upgrade`, `reboot`, `rpc`, which go through the seed's own endpoint
 * (/v1/device/rpc/?deliver_to_device=true&action=...) with device_id= as the
 * admin key needs. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "fota_err.h"
#include "out.h"

#define KEY_SECTOR_MAX (64u << 10)

static const char *const device_order[] = {
    "id", "name", "product_id", "bssid", "rom_version", "latest_rom_version", "running_slot",
    "online", "activated", "activated_at", "last_active", "created", NULL
};

static int device_path(struct fota_cli_ctx *c, const char *ref, int64_t *id, char *what,
                       size_t wcap)
{
    int st = fota_cli_device_id(c, ref, fota_cli_opt(c, "product"), id);

    snprintf(what, wcap, "device '%s'", ref);
    return st;
}

/* Resolves the device c->args[0] and calls method /v1/devices/ID/suffix.
 * Returns 0 with r filled, or an exit status (reported). */
static int device_call(struct fota_cli_ctx *c, const char *method, const char *suffix,
                       struct fota_cli_reply *r)
{
    char path[128], what[128];
    int64_t id;
    int st;

    st = device_path(c, c->args[0], &id, what, sizeof(what));
    if (st != 0)
        return st;
    snprintf(path, sizeof(path), "/v1/devices/%" PRId64 "/%s", id, suffix);
    return fota_cli_call(c, method, path, NULL, r, what);
}

/* The key pair of an add or rotate-keys reply as show lines. */
static void print_keys(const json_t *reply)
{
    char buf[256];

    fota_cli_out_kv(stdout, 18, "master_device_key",
                    fota_cli_fmt(json_object_get(reply, "master_device_key"), buf, sizeof(buf)));
    fota_cli_out_kv(stdout, 18, "owner_key",
                    fota_cli_fmt(json_object_get(reply, "owner_key"), buf, sizeof(buf)));
}

int fota_cli_device_add(struct fota_cli_ctx *c)
{
    struct fota_cli_reply r;
    const char *product = fota_cli_opt(c, "product"), *s;
    char path[64], what[128];
    json_t *body;
    int64_t pid;
    int st;

    if (!product)
        return fota_cli_fail(FOTA_CLI_EXIT_USAGE, "device add needs --product");
    st = fota_cli_product_id(c, product, &pid);
    if (st != 0)
        return st;
    body = json_pack("{s:s}", "name", c->args[0]);
    if ((s = fota_cli_opt(c, "bssid")))
        json_object_set_new(body, "bssid", json_string(s));
    snprintf(path, sizeof(path), "/v1/products/%" PRId64 "/devices/", pid);
    snprintf(what, sizeof(what), "product '%s'", product);
    st = fota_cli_call(c, "POST", path, body, &r, what);
    json_decref(body);
    if (st != 0)
        return st;
    if (c->json) {
        fota_cli_out_json(stdout, r.json);
    } else {
        fota_cli_out_show(stdout, fota_cli_object(r.json, "device"), device_order);
        print_keys(r.json);
    }
    fota_cli_reply_cleanup(&r);
    return 0;
}

/* The product's name when known (ud: names by product id), else its id. */
static const char *product_cell(const json_t *d, const char *field, void *ud, char *buf,
                                size_t cap)
{
    const json_t *names = ud;

    fota_cli_fmt(json_object_get(d, field), buf, cap);
    if (json_is_string(json_object_get(names, buf)))
        fota_cli_fmt(json_object_get(names, buf), buf, cap);
    return buf;
}

static const char *state_cell(const json_t *d, const char *field, void *ud, char *buf,
                              size_t cap)
{
    json_t *on = json_object_get(d, field);

    (void)ud;
    if (json_is_true(on) || (json_is_integer(on) && json_integer_value(on)))
        snprintf(buf, cap, "%sonline%s", fota_cli_c_green(), fota_cli_c_off());
    else
        snprintf(buf, cap, "%soffline%s", fota_cli_c_dim(), fota_cli_c_off());
    return buf;
}

static const struct fota_cli_col device_cols[] = {
    { "ID", "id", NULL, 1 },
    { "NAME", "name", NULL, 1 },
    { "PRODUCT", "product_id", product_cell, 1 },
    { "BSSID", "bssid", NULL, 1 },
    { "VERSION", "rom_version", NULL, 1 },
    { "SLOT", "running_slot", NULL, 1 },
    { "STATE", "online", state_cell, 1 },
    { "LAST ACTIVE", "last_active", fota_cli_cell_time, 1 },
};
static const struct fota_cli_list device_list = FOTA_CLI_LIST(device_cols, 128, 0);

int fota_cli_device_list(struct fota_cli_ctx *c)
{
    const char *product = fota_cli_opt(c, "product");
    struct fota_cli_reply pr, r;
    json_t *all = json_array(), *p, *pids = json_array(), *names = json_object();
    char path[64];
    size_t i, k;
    int64_t pid;
    int st;

    if (product) {
        st = fota_cli_product_id(c, product, &pid);
        if (st != 0)
            goto out;
        json_array_append_new(pids, json_integer(pid));
        if (strspn(product, "0123456789") != strlen(product)) {
            char id[32];

            snprintf(id, sizeof(id), "%" PRId64, pid);
            json_object_set_new(names, id, json_string(product));
        }
    } else {
        st = fota_cli_call(c, "GET", "/v1/products/", NULL, &pr, NULL);
        if (st != 0)
            goto out;
        json_array_foreach(fota_cli_array(pr.json, "products"), i, p) {
            char id[32];

            json_array_append(pids, json_object_get(p, "id"));
            fota_cli_fmt(json_object_get(p, "id"), id, sizeof(id));
            json_object_set(names, id, json_object_get(p, "name"));
        }
        fota_cli_reply_cleanup(&pr);
    }
    json_array_foreach(pids, k, p) {
        char what[128];

        snprintf(path, sizeof(path), "/v1/products/%" JSON_INTEGER_FORMAT "/devices/",
                 json_integer_value(p));
        snprintf(what, sizeof(what), "product '%s'", product ? product : "?");
        st = fota_cli_call(c, "GET", path, NULL, &r, what);
        if (st != 0)
            goto out;
        json_array_extend(all, fota_cli_array(r.json, "devices"));
        fota_cli_reply_cleanup(&r);
    }
    if (c->json) {
        json_t *j = json_pack("{s:i, s:O}", "status", 200, "devices", all);

        fota_cli_out_json(stdout, j);
        json_decref(j);
        goto out;
    }
    if (fota_cli_out_list(stdout, all, &device_list, names) != 0)
        st = fota_cli_fail(FOTA_CLI_EXIT_FAIL, "out of memory");
out:
    json_decref(all);
    json_decref(pids);
    json_decref(names);
    return st;
}

int fota_cli_device_show(struct fota_cli_ctx *c)
{
    struct fota_cli_reply r;
    int st;

    st = device_call(c, "GET", "", &r);
    if (st != 0)
        return st;
    if (c->json)
        fota_cli_out_json(stdout, r.json);
    else
        fota_cli_out_show(stdout, fota_cli_object(r.json, "device"), device_order);
    fota_cli_reply_cleanup(&r);
    return 0;
}

/* Writes data to path through a 0600 temp file and rename (it is a secret). */
static int write_secret(const char *path, const void *data, size_t len)
{
    char tmp[4096];
    const char *p = data;
    ssize_t n;
    int fd;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path, (long)getpid()) >= (int)sizeof(tmp))
        return fota_cli_fail(FOTA_CLI_EXIT_USAGE, "the output path is too long");
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return fota_cli_fail(FOTA_CLI_EXIT_FAIL, "cannot write %s (%s)", path, strerror(errno));
    while (len > 0) {
        n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        p += n;
        len -= (size_t)n;
    }
    if (len > 0 || fsync(fd) < 0 || close(fd) < 0 || rename(tmp, path) < 0) {
        int e = errno;

        unlink(tmp);
        return fota_cli_fail(FOTA_CLI_EXIT_FAIL, "cannot write %s (%s)", path, strerror(e));
    }
    return 0;
}

int fota_cli_device_key(struct fota_cli_ctx *c)
{
    struct fota_cli_reply r;
    const char *out = fota_cli_opt(c, "output");
    int bin = fota_cli_opt(c, "bin") != NULL;
    char path[80], what[128], key[64];
    int64_t id;
    size_t n;
    int st;

    st = device_path(c, c->args[0], &id, what, sizeof(what));
    if (st != 0)
        return st;
    if (bin && !out && isatty(STDOUT_FILENO))
        return fota_cli_fail(FOTA_CLI_EXIT_USAGE,
                             "not writing a binary sector to a terminal: use -o FILE");
    snprintf(path, sizeof(path), "/v1/devices/%" PRId64 "/master_device_key.bin", id);
    st = fota_cli_call(c, "GET", path, NULL, &r, what);
    if (st != 0)
        return st;
    if (bin) {
        if (out && strcmp(out, "-") != 0)
            st = write_secret(out, r.body, r.len);
        else if (fwrite(r.body, 1, r.len, stdout) != r.len)
            st = fota_cli_fail(FOTA_CLI_EXIT_FAIL, "cannot write to standard output");
        if (st == 0 && out && strcmp(out, "-") != 0 && !c->json) {
            /* fotad says where the product's flash map keeps the sector. */
            const char *addr = fota_cli_api_header(c->api, "X-Fota-Flash-Address");

            unsigned long a = addr ? strtoul(addr, NULL, 0) : 0;

            /* The flag sector after it must be erased so copy 1 is read. */
            if (a)
                fprintf(stderr, "wrote %zu bytes to %s; flash it with: esptool.py write_flash "
                        "0x%lX %s 0x%lX blank.bin\n", r.len, out, a, out, a + 0x1000);
            else
                fprintf(stderr, "wrote %zu bytes to %s (flash it at the firmware's key sector)\n",
                        r.len, out);
        }
        fota_cli_reply_cleanup(&r);
        return st;
    }
    /* The sector starts with the 40 ASCII characters of the key. */
    for (n = 0; n < r.len && n < 40 && r.body[n] > ' ' && r.body[n] < 0x7f; n++)
        key[n] = r.body[n];
    key[n] = '\0';
    fota_cli_reply_cleanup(&r);
    if (n == 0)
        return fota_cli_fail(FOTA_CLI_EXIT_FAIL, "the server's key sector holds no key");
    if (c->json) {
        json_t *j = json_pack("{s:I, s:s}", "device_id", (json_int_t)id, "master_device_key", key);
        char *txt = json_dumps(j, JSON_INDENT(2));

        json_decref(j);
        if (out && strcmp(out, "-") != 0)
            st = txt ? write_secret(out, txt, strlen(txt)) : FOTA_CLI_EXIT_FAIL;
        else
            printf("%s\n", txt ? txt : "{}");
        free(txt);
        return st;
    }
    if (out && strcmp(out, "-") != 0) {
        key[n++] = '\n';
        return write_secret(out, key, n);
    }
    printf("%s\n", key);
    return 0;
}

static const struct fota_cli_col command_cols[] = {
    { "ID", "id", NULL, 0 },
    { "ACTION", "action", NULL, 0 },
    { "PARAMS", "params", NULL, 0 },
    { "STATE", "state", NULL, 0 },
    { "CREATED", "created", fota_cli_cell_time, 0 },
    { "UPDATED", "updated", fota_cli_cell_time, 0 },
    { "RESULT", "result", NULL, 0 },
};
static const struct fota_cli_list command_list = FOTA_CLI_LIST(command_cols, 256, 0);

int fota_cli_device_commands(struct fota_cli_ctx *c)
{
    const char *count = fota_cli_opt(c, "count");
    struct fota_cli_reply r;
    char suffix[64], *end;
    long n = 50;
    int st;

    if (count) {
        n = strtol(count, &end, 10);
        if (!count[0] || *end || n < 1 || n > 500)
            return fota_cli_fail(FOTA_CLI_EXIT_USAGE, "--count wants 1..500");
    }
    snprintf(suffix, sizeof(suffix), "commands/?limit=%ld", n);
    st = device_call(c, "GET", suffix, &r);
    if (st != 0)
        return st;
    return fota_cli_print_list(c, &r, fota_cli_array(r.json, "commands"), &command_list, NULL);
}

int fota_cli_device_rotate(struct fota_cli_ctx *c)
{
    struct fota_cli_reply r;
    int st;

    st = device_call(c, "POST", "rotate_keys", &r);
    if (st != 0)
        return st;
    if (c->json) {
        fota_cli_out_json(stdout, r.json);
    } else {
        print_keys(r.json);
        fprintf(stderr, "the old keys stop working: flash the new sector "
                "(fotactl device key %s --bin -o FILE)\n", c->args[0]);
    }
    fota_cli_reply_cleanup(&r);
    return 0;
}

/* ---------------------------------------------------------------- rpc */

/* Sends action with KEY=VALUE parameters to the device c->args[0] and prints
 * the outcome (done: the sentence for a known command; NULL prints the
 * reply). *id_out (may be NULL) receives the device id; quiet skips the
 * printing. */
static int rpc(struct fota_cli_ctx *c, const char *action, const char *const *kv, int nkv,
               const char *done, int64_t *id_out, int quiet)
{
    struct fota_cli_reply r;
    char path[2048], what[128], enc[512], word[64];
    size_t o;
    int64_t id;
    int st, i;
    json_t *cmd, *state;
    const char *msg;

    st = device_path(c, c->args[0], &id, what, sizeof(what));
    if (st != 0)
        return st;
    if (id_out)
        *id_out = id;
    if (fota_cli_urlencode(action, enc, sizeof(enc)) < 0)
        return fota_cli_fail(FOTA_CLI_EXIT_USAGE, "the action is too long");
    o = (size_t)snprintf(path, sizeof(path),
                         "/v1/device/rpc/?deliver_to_device=true&action=%s&device_id=%" PRId64,
                         enc, id);
    for (i = 0; i < nkv; i++) {
        const char *eq = strchr(kv[i], '=');
        char k[128];
        int w;

        if (!eq || eq == kv[i] || (size_t)(eq - kv[i]) >= sizeof(k))
            return fota_cli_fail(FOTA_CLI_EXIT_USAGE, "'%s' is not KEY=VALUE", kv[i]);
        memcpy(k, kv[i], (size_t)(eq - kv[i]));
        k[eq - kv[i]] = '\0';
        if (fota_cli_urlencode(k, word, sizeof(word)) < 0 ||
            fota_cli_urlencode(eq + 1, enc, sizeof(enc)) < 0)
            return fota_cli_fail(FOTA_CLI_EXIT_USAGE, "'%s' is too long", kv[i]);
        w = snprintf(path + o, sizeof(path) - o, "&%s=%s", word, enc);
        if (w < 0 || (size_t)w >= sizeof(path) - o)
            return fota_cli_fail(FOTA_CLI_EXIT_USAGE, "too many parameters");
        o += (size_t)w;
    }
    st = fota_cli_api_call(c->api, "GET", path, NULL, &r);
    /* A 404 here is the device, or (sys_upgrade) the version: let the
     * server's message say which unless it is about the device. */
    msg = st == 0 && r.status == 404 ? fota_cli_reply_message(&r) : NULL;
    st = fota_cli_check(c, st, &r, msg && !strstr(msg, "device") ? NULL : what);
    if (st != 0) {
        fota_cli_reply_cleanup(&r);
        return st;
    }
    if (quiet) {
        /* the caller reports */
    } else if (c->json) {
        fota_cli_out_json(stdout, r.json);
    } else if (done) {
        cmd = json_object_get(r.json, "command");
        state = json_object_get(cmd, "state");
        if (json_is_string(state))
            snprintf(word, sizeof(word), "%s", json_string_value(state));
        else
            snprintf(word, sizeof(word), "%s", r.status == 202 ? "queued" : "sent");
        printf("%s for device %s: %s%s\n", done, c->args[0], word,
               strcmp(word, "queued") == 0 ? " (delivered when the device connects)" : "");
    } else {
        fota_cli_out_show(stdout, r.json, NULL);
    }
    fota_cli_reply_cleanup(&r);
    return 0;
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
    st = fota_cli_call(c, "GET", "/v1/messages/?limit=1", NULL, &r, NULL);
    if (st != 0)
        return st;
    id = json_object_get(json_array_get(fota_cli_array(r.json, "messages"), 0), "id");
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
        return fota_cli_fail(FOTA_CLI_EXIT_FAIL, "device %s did not report the upgrade to %s "
                             "within %ld s", c->args[0], version, timeout);
    }
    st = fota_cli_check(c, rc, &r, NULL);
    if (st == 0 && !w.outcome)
        st = fota_cli_fail(FOTA_CLI_EXIT_CONNECT, "%s ended the message stream before device %s "
                           "reported", fota_cli_api_server(c->api), c->args[0]);
    fota_cli_reply_cleanup(&r);
    if (st != 0) {
        json_decref(w.report);
        return st;
    }
    body = json_object_get(w.report, "body");
    if (c->json)
        fota_cli_out_json(stdout, w.report);
    else if (w.outcome > 0)
        printf("device %s upgraded to %s; `fotactl reboot %s` starts it\n", c->args[0],
               fota_cli_fmt(json_object_get(body, "rom_version"), text, sizeof(text)),
               c->args[0]);
    json_decref(w.report);
    if (w.outcome < 0)
        return fota_cli_fail(FOTA_CLI_EXIT_FAIL, "device %s reports the upgrade to %s failed (%s)",
                             c->args[0], version, fota_cli_fmt(body, text, sizeof(text)));
    return 0;
}

int fota_cli_upgrade(struct fota_cli_ctx *c)
{
    const char *v = fota_cli_opt(c, "version"), *t = fota_cli_opt(c, "timeout");
    int wait = fota_cli_opt(c, "wait") != NULL;
    char kv[256], done[300], *end;
    const char *p[1] = { kv };
    int64_t dev = 0, after = 0;
    long timeout = 300;
    int st;

    if (!v || !v[0])
        return fota_cli_fail(FOTA_CLI_EXIT_USAGE, "upgrade needs --version V");
    if (snprintf(kv, sizeof(kv), "version=%s", v) >= (int)sizeof(kv))
        return fota_cli_fail(FOTA_CLI_EXIT_USAGE, "the version is too long");
    if (t) {
        timeout = strtol(t, &end, 10);
        if (!wait || !t[0] || *end || timeout <= 0 || timeout > 86400)
            return fota_cli_fail(FOTA_CLI_EXIT_USAGE,
                                 "--timeout wants seconds (1..86400) and goes with --wait");
    }
    if (wait && (st = newest_message(c, &after)) != 0)
        return st;
    snprintf(done, sizeof(done), "upgrade to %s", v);
    st = rpc(c, "sys_upgrade", p, 1, done, &dev, wait && c->json);
    if (st != 0 || !wait)
        return st;
    fflush(stdout);
    return wait_report(c, dev, after, timeout, v);
}

int fota_cli_reboot(struct fota_cli_ctx *c)
{
    return rpc(c, "sys_reboot", NULL, 0, "reboot", NULL, 0);
}

int fota_cli_rpc(struct fota_cli_ctx *c)
{
    return rpc(c, c->args[1], (const char *const *)c->args + 2, c->nargs - 2, NULL, NULL, 0);
}
