/* cmd_device.c - `fotactl device add|list|show|key|commands|command|tag|
 * rotate-keys|delete`: a product's devices (listed a page at a time, or
 * every page with --all), their keys (printed, or as the flash-ready key
 * sector), the report of an Arduino-core device's last check-in, their
 * tags, the history of the commands sent to them and the cancel of a
 * queued one. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "cmd.h"
#include "devquery.h"
#include "file.h"
#include "fota_err.h"
#include "fota_str.h"
#include "out.h"

#define KEY_SECTOR_MAX (64u << 10)

static const char *const device_order[] = {
    "id", "name", "product", "product_id", "bssid", "rom_version", "latest_rom_version",
    "running_slot", "online", "activated", "activated_at", "last_active", "created", "tags",
    "download", "download_bytes", NULL
};

/* What an Arduino-core device said at its last check-in (its x-ESP8266-*
 * headers), then the upgrade it was served. */
static const char *const arduino_order[] = {
    "chip_id", "sta_mac", "ap_mac", "version", "sketch_md5", "sketch_size", "free_space",
    "chip_size", "sdk_version", "mode", "last_checkin", NULL
};

/* A device's tags as one cell ("a,b"; "-" for none). */
static const char *tags_cell(const json_t *d, const char *field, void *ud, char *buf, size_t cap);

/* Replaces d's member key (a byte count) by its people's form. */
static void size_member(json_t *d, const char *key)
{
    char buf[96];
    json_t *v = json_object_get(d, key);

    if (json_is_integer(v))
        json_object_set_new(d, key, json_string(fota_cli_out_fmt_size(v, buf, sizeof(buf))));
}

/* The download in flight (or the last one) as one line: "user2.bin of
 * v1.1: 1.5 MiB (...) of 4.0 MiB (...), downloading, started ...". */
static void download_member(json_t *d)
{
    json_t *dl = json_object_get(d, "download");
    char line[512], file[128], ver[96], got[96], of[96], state[32], when[64];

    if (!json_is_object(dl)) {
        json_object_set_new(d, "download", json_string("-"));
        return;
    }
    snprintf(line, sizeof(line), "%s of %s: %s of %s, %s, started %s",
             fota_cli_out_fmt(json_object_get(dl, "file"), file, sizeof(file)),
             fota_cli_out_fmt(json_object_get(dl, "version"), ver, sizeof(ver)),
             fota_cli_out_fmt_size(json_object_get(dl, "bytes"), got, sizeof(got)),
             fota_cli_out_fmt_size(json_object_get(dl, "total"), of, sizeof(of)),
             fota_cli_out_fmt(json_object_get(dl, "state"), state, sizeof(state)),
             fota_cli_out_fmt_time(json_object_get(dl, "started"), when, sizeof(when)));
    json_object_set_new(d, "download", json_string(line));
}

/* Prints a device: its row (its product by name when product_name is
 * given, sizes and the download for people, its tags as a list), then an
 * arduino device's last report as its own block ("arduino.chip_id ..."),
 * the upgrade in flight as one line. */
static void show_device(const json_t *dev, const char *product_name)
{
    json_t *d = json_deep_copy(dev), *a = json_incref(json_object_get(d, "arduino"));
    json_t *up, *pin, *mqtt;
    char line[512];

    if (!d)
        return;
    json_object_del(d, "arduino");
    if (product_name) {
        char id[32];
        snprintf(line, sizeof(line), "%s (%s)", product_name,
                 fota_cli_out_fmt(json_object_get(d, "product_id"), id, sizeof(id)));
        json_object_set_new(d, "product", json_string(line));
        json_object_del(d, "product_id");
    }
    if (json_is_array(json_object_get(d, "tags")))
        json_object_set_new(d, "tags", json_string(tags_cell(d, "tags", NULL, line,
                                                             sizeof(line))));
    download_member(d);
    size_member(d, "download_bytes");
    if (json_is_object(a)) {
        size_member(a, "sketch_size");
        size_member(a, "free_space");
        size_member(a, "chip_size");
    }
    fota_cli_out_show(stdout, d, device_order);
    if (json_is_object(a)) {
        up = json_object_get(a, "upgrade");
        if (json_is_object(up)) {
            char when[64], t[128], m[64];

            snprintf(line, sizeof(line), "%s served %s (x-MD5 %s)",
                     fota_cli_out_fmt(json_object_get(up, "target"), t, sizeof(t)),
                     fota_cli_out_fmt_time(json_object_get(up, "served_at"), when, sizeof(when)),
                     fota_cli_out_fmt(json_object_get(up, "served_md5"), m, sizeof(m)));
            json_object_set_new(a, "upgrade", json_string(line));
        } else {
            json_object_set_new(a, "upgrade", json_string("-"));
        }
        pin = json_object_get(a, "pin");
        if (json_is_object(pin)) {
            char v[128], cur[128];

            snprintf(line, sizeof(line), "%s until the current release (%s) changes",
                     fota_cli_out_fmt(json_object_get(pin, "version"), v, sizeof(v)),
                     fota_cli_out_fmt(json_object_get(pin, "current"), cur, sizeof(cur)));
            json_object_set_new(a, "pin", json_string(line));
        } else {
            json_object_del(a, "pin");
        }
        /* a Tasmota device seen over MQTT: its topic, LWT and INFO1 version */
        mqtt = json_object_get(a, "mqtt");
        if (json_is_object(mqtt)) {
            char tp[256], lwt[64], ver[96], seen[64];

            snprintf(line, sizeof(line), "topic %s, %s, version %s, seen %s",
                     fota_cli_out_fmt(json_object_get(mqtt, "topic"), tp, sizeof(tp)),
                     fota_cli_out_fmt(json_object_get(mqtt, "lwt"), lwt, sizeof(lwt)),
                     fota_cli_out_fmt(json_object_get(mqtt, "version"), ver, sizeof(ver)),
                     fota_cli_out_fmt_time(json_object_get(mqtt, "seen"), seen, sizeof(seen)));
            json_object_set_new(a, "mqtt", json_string(line));
        } else {
            json_object_del(a, "mqtt");
        }
        json_object_del(a, "platform");
        printf("\narduino (the last check-in)\n");
        fota_cli_out_show(stdout, a, arduino_order);
    }
    json_decref(a);
    json_decref(d);
}

/* Resolves the device c->args.pos[0] and calls method /v1/devices/ID/suffix.
 * Returns 0 with r filled and *id set (id may be NULL), or an exit status
 * (reported). */
static int device_call(struct fota_cli_ctx *c, const char *method, const char *suffix,
                       struct fota_cli_reply *r, int64_t *id)
{
    char path[128], what[128];
    int64_t dev;
    int st;

    st = fota_cli_ctx_device_arg(c, &dev, what, sizeof(what));
    if (st != 0)
        return st;
    if (id)
        *id = dev;
    snprintf(path, sizeof(path), "/v1/devices/%" PRId64 "/%s", dev, suffix);
    return fota_cli_ctx_call(c, method, path, NULL, r, what);
}

/* The key pair of an add or rotate-keys reply as show lines. */
static void print_keys(const json_t *reply)
{
    char buf[256];

    fota_cli_out_kv(stdout, 18, "master_device_key",
                    fota_cli_out_fmt(json_object_get(reply, "master_device_key"), buf,
                                     sizeof(buf)));
    fota_cli_out_kv(stdout, 18, "owner_key",
                    fota_cli_out_fmt(json_object_get(reply, "owner_key"), buf, sizeof(buf)));
}

int fota_cli_cmd_device_add(struct fota_cli_ctx *c)
{
    struct fota_cli_reply r;
    const char *product = fota_cli_ctx_opt(c, "product"), *s;
    char path[64], what[128];
    json_t *body;
    int64_t pid;
    int st;

    if (!product)
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "device add needs --product");
    st = fota_cli_ctx_product_id(c, product, &pid);
    if (st != 0)
        return st;
    body = json_pack("{s:s}", "name", c->args.pos[0]);
    if ((s = fota_cli_ctx_opt(c, "bssid")))
        json_object_set_new(body, "bssid", json_string(s));
    snprintf(path, sizeof(path), "/v1/products/%" PRId64 "/devices/", pid);
    snprintf(what, sizeof(what), "product '%s'", product);
    st = fota_cli_ctx_call(c, "POST", path, body, &r, what);
    json_decref(body);
    if (st != 0)
        return st;
    if (c->json) {
        fota_cli_out_json(stdout, r.json);
    } else {
        fota_cli_out_show(stdout, fota_cli_reply_object(r.json, "device"), device_order);
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

    fota_cli_out_fmt(json_object_get(d, field), buf, cap);
    if (json_is_string(json_object_get(names, buf)))
        fota_cli_out_fmt(json_object_get(names, buf), buf, cap);
    return buf;
}

static const char *state_cell(const json_t *d, const char *field, void *ud, char *buf,
                              size_t cap)
{
    json_t *on = json_object_get(d, field);

    (void)ud;
    if (json_is_true(on) || (json_is_integer(on) && json_integer_value(on)))
        snprintf(buf, cap, "%sonline%s", fota_cli_out_green(), fota_cli_out_off());
    else
        snprintf(buf, cap, "%soffline%s", fota_cli_out_dim(), fota_cli_out_off());
    return buf;
}


/* A device's tags as one cell ("a,b"; "-" for none). */
static const char *tags_cell(const json_t *d, const char *field, void *ud, char *buf, size_t cap)
{
    const json_t *tags = json_object_get(d, field);
    size_t i, o = 0;
    json_t *t;

    (void)ud;
    buf[0] = '\0';
    json_array_foreach(tags, i, t) {
        int n = snprintf(buf + o, cap - o, "%s%s", i ? "," : "", json_string_value(t));
        if (n < 0 || (size_t)n >= cap - o)
            break;
        o += (size_t)n;
    }
    return buf[0] ? buf : "-";
}

static const struct fota_cli_col device_cols[] = {
    { "ID", "id", NULL, 1 },
    { "NAME", "name", NULL, 1 },
    { "PRODUCT", "product_id", product_cell, 1 },
    { "BSSID", "bssid", NULL, 1 },
    { "VERSION", "rom_version", NULL, 1 },
    { "SLOT", "running_slot", NULL, 1 },
    { "STATE", "online", state_cell, 1 },
    { "LAST ACTIVE", "last_active", fota_cli_out_cell_time, 1 },
    { "TAGS", "tags", tags_cell, 1 },
};
static const struct fota_cli_list device_list = FOTA_CLI_LIST(device_cols, 128, 0);

/* One page of the list: base + the query, the limit and cursor (NULL: the
 * first page). Returns 0 with r filled, or an exit status (reported). */
static int device_page(struct fota_cli_ctx *c, const char *base,
                       const struct fota_cli_devquery *q, const char *cursor,
                       struct fota_cli_reply *r, const char *what)
{
    char path[4096], enc[512];

    if (cursor && fota_cli_api_urlencode(cursor, enc, sizeof(enc)) < 0)
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "the cursor is too long");
    snprintf(path, sizeof(path), "%s?%s%slimit=%ld%s%s", base, q->query, q->query[0] ? "&" : "",
             q->limit, cursor ? "&cursor=" : "", cursor ? enc : "");
    return fota_cli_ctx_call(c, "GET", path, NULL, r, what);
}

int fota_cli_cmd_device_list(struct fota_cli_ctx *c)
{
    const char *product = fota_cli_ctx_opt(c, "product");
    struct fota_cli_devquery q;
    struct fota_cli_reply r;
    json_t *all = json_array(), *names = json_object(), *total = NULL;
    char base[64], what[128], err[256], cursor[512] = "";
    int64_t pid;
    int st;

    if (fota_cli_devquery_build(&c->args, &q, err, sizeof(err)) != 0) {
        st = fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "%s", err);
        goto out;
    }
    snprintf(base, sizeof(base), "/v1/devices/");
    snprintf(what, sizeof(what), "product '%s'", product ? product : "?");
    if (product) {
        st = fota_cli_ctx_product_id(c, product, &pid);
        if (st != 0)
            goto out;
        snprintf(base, sizeof(base), "/v1/products/%" PRId64 "/devices/", pid);
        if (strspn(product, "0123456789") != strlen(product)) {
            char id[32];
            snprintf(id, sizeof(id), "%" PRId64, pid);
            json_object_set_new(names, id, json_string(product));
        }
    } else if (!c->json && (st = fota_cli_ctx_product_names(c, names)) != 0) {
        goto out;
    }
    if (q.cursor)
        fota_str_copy(cursor, sizeof(cursor), q.cursor);
    for (;;) {
        const char *next;

        st = device_page(c, base, &q, cursor[0] ? cursor : NULL, &r, what);
        if (st != 0)
            goto out;
        if (!total)
            total = json_incref(json_object_get(r.json, "total"));
        json_array_extend(all, fota_cli_reply_array(r.json, "devices"));
        next = json_string_value(json_object_get(r.json, "next_cursor"));
        if (!q.all) {
            if (c->json)
                fota_cli_out_json(stdout, r.json);
            else if (fota_cli_out_list(stdout, all, &device_list, names) != 0)
                st = fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "out of memory");
            if (st == 0 && next && !c->json) {
                char t[32] = "more";
                if (json_is_integer(total))
                    snprintf(t, sizeof(t), "%" JSON_INTEGER_FORMAT, json_integer_value(total));
                fprintf(stderr, "%zu of %s devices; the next page: --cursor %s (or --all)\n",
                        json_array_size(all), t, next);
            }
            fota_cli_reply_cleanup(&r);
            goto out;
        }
        if (!next || fota_str_copy(cursor, sizeof(cursor), next) >= sizeof(cursor)) {
            fota_cli_reply_cleanup(&r);
            break;
        }
        fota_cli_reply_cleanup(&r);
    }
    if (c->json) {
        json_t *j = json_pack("{s:i, s:O, s:O, s:n}", "status", 200, "devices", all, "total",
                              total ? total : json_null(), "next_cursor");
        fota_cli_out_json(stdout, j);
        json_decref(j);
    } else if (fota_cli_out_list(stdout, all, &device_list, names) != 0) {
        st = fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "out of memory");
    }
out:
    json_decref(total);
    json_decref(all);
    json_decref(names);
    return st;
}

int fota_cli_cmd_device_show(struct fota_cli_ctx *c)
{
    struct fota_cli_reply r;
    int st;

    st = device_call(c, "GET", "", &r, NULL);
    if (st != 0)
        return st;
    if (c->json) {
        fota_cli_out_json(stdout, r.json);
    } else {
        const json_t *dev = fota_cli_reply_object(r.json, "device");
        json_t *pid = json_object_get(dev, "product_id");
        struct fota_cli_reply pr;
        char path[64];
        const char *name = NULL;

        /* the product's name; a key that may not read the product shows its id */
        memset(&pr, 0, sizeof(pr));
        snprintf(path, sizeof(path), "/v1/products/%" JSON_INTEGER_FORMAT "/",
                 json_integer_value(pid));
        if (json_is_integer(pid) && fota_cli_api_call(c->api, "GET", path, NULL, &pr) == 0 &&
            pr.status == 200)
            name = json_string_value(json_object_get(json_object_get(pr.json, "product"),
                                                     "name"));
        show_device(dev, name);
        fota_cli_reply_cleanup(&pr);
    }
    fota_cli_reply_cleanup(&r);
    return 0;
}

/* Writes the 4 KiB key sector to out (NULL or "-": standard output) and
 * says how to flash it. Returns 0 or an exit status (reported). */
static int key_sector(struct fota_cli_ctx *c, const struct fota_cli_reply *r, const char *out)
{
    const char *addr;
    unsigned long a;
    int st;

    if (!out || strcmp(out, "-") == 0)
        return fwrite(r->body, 1, r->len, stdout) == r->len
                   ? 0
                   : fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "cannot write to standard output");
    st = fota_cli_file_write_private(out, r->body, r->len);
    if (st != 0 || c->json)
        return st;
    /* fotad says where the product's flash map keeps the sector. */
    addr = fota_cli_api_header(c->api, "X-Fota-Flash-Address");
    a = addr ? strtoul(addr, NULL, 0) : 0;
    /* The flag sector after it must be erased so copy 1 is read. */
    if (a)
        fprintf(stderr, "wrote %zu bytes to %s; flash it with: esptool.py write_flash "
                "0x%lX %s 0x%lX blank.bin\n", r->len, out, a, out, a + 0x1000);
    else
        fprintf(stderr, "wrote %zu bytes to %s (flash it at the firmware's key sector)\n",
                r->len, out);
    return 0;
}

/* Prints the key (40 characters; as JSON with --json) or writes it to out
 * (NULL or "-": standard output). Returns 0 or an exit status (reported). */
static int key_text(struct fota_cli_ctx *c, int64_t id, const char *key, const char *out)
{
    int to_file = out && strcmp(out, "-") != 0;
    char line[64];
    json_t *j;
    char *txt;
    int st = 0;

    if (!c->json) {
        snprintf(line, sizeof(line), "%s\n", key);
        if (to_file)
            return fota_cli_file_write_private(out, line, strlen(line));
        fputs(line, stdout);
        return 0;
    }
    j = json_pack("{s:I, s:s}", "device_id", (json_int_t)id, "master_device_key", key);
    txt = json_dumps(j, JSON_INDENT(2));
    json_decref(j);
    if (to_file)
        st = txt ? fota_cli_file_write_private(out, txt, strlen(txt)) : FOTA_CLI_EXIT_FAIL;
    else
        printf("%s\n", txt ? txt : "{}");
    free(txt);
    return st;
}

int fota_cli_cmd_device_key(struct fota_cli_ctx *c)
{
    struct fota_cli_reply r;
    const char *out = fota_cli_ctx_opt(c, "output");
    int bin = fota_cli_ctx_opt(c, "bin") != NULL;
    char path[80], what[128], key[FOTA_CLI_KEY_LEN + 1];
    int64_t id;
    size_t n;
    int st;

    st = fota_cli_ctx_device_arg(c, &id, what, sizeof(what));
    if (st != 0)
        return st;
    if (bin && !out && isatty(STDOUT_FILENO))
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE,
                                 "not writing a binary sector to a terminal: use -o FILE");
    snprintf(path, sizeof(path), "/v1/devices/%" PRId64 "/master_device_key.bin", id);
    st = fota_cli_ctx_call(c, "GET", path, NULL, &r, what);
    if (st != 0)
        return st;
    if (bin) {
        st = key_sector(c, &r, out);
        fota_cli_reply_cleanup(&r);
        return st;
    }
    /* The sector starts with the 40 ASCII characters of the key. */
    for (n = 0; n < r.len && n < FOTA_CLI_KEY_LEN && r.body[n] > ' ' && r.body[n] < 0x7f; n++)
        key[n] = r.body[n];
    key[n] = '\0';
    fota_cli_reply_cleanup(&r);
    if (n == 0)
        return fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "the server's key sector holds no key");
    return key_text(c, id, key, out);
}

static const struct fota_cli_col command_cols[] = {
    { "ID", "id", NULL, 0 },
    { "ACTION", "action", NULL, 0 },
    { "PARAMS", "params", NULL, 0 },
    { "STATE", "state", NULL, 0 },
    { "CREATED", "created", fota_cli_out_cell_time, 0 },
    { "UPDATED", "updated", fota_cli_out_cell_time, 0 },
    { "RESULT", "result", NULL, 0 },
};
static const struct fota_cli_list command_list = FOTA_CLI_LIST(command_cols, 256, 0);

int fota_cli_cmd_device_commands(struct fota_cli_ctx *c)
{
    const char *count = fota_cli_ctx_opt(c, "count");
    struct fota_cli_reply r;
    char suffix[64], *end;
    long n = 50;
    int st;

    if (count) {
        n = strtol(count, &end, 10);
        if (!count[0] || *end || n < 1 || n > 500)
            return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "--count wants 1..500");
    }
    snprintf(suffix, sizeof(suffix), "commands/?limit=%ld", n);
    st = device_call(c, "GET", suffix, &r, NULL);
    if (st != 0)
        return st;
    return fota_cli_ctx_print_list(c, &r, fota_cli_reply_array(r.json, "commands"), &command_list,
                                   NULL);
}

int fota_cli_cmd_device_rotate_keys(struct fota_cli_ctx *c)
{
    struct fota_cli_reply r;
    int st;

    st = device_call(c, "POST", "rotate_keys", &r, NULL);
    if (st != 0)
        return st;
    if (c->json) {
        fota_cli_out_json(stdout, r.json);
    } else {
        print_keys(r.json);
        fprintf(stderr, "the old keys stop working: flash the new sector "
                "(fotactl device key %s --bin -o FILE)\n", c->args.pos[0]);
    }
    fota_cli_reply_cleanup(&r);
    return 0;
}

int fota_cli_cmd_device_delete(struct fota_cli_ctx *c)
{
    struct fota_cli_reply r;
    char line[256];
    int64_t id;
    json_t *closed;
    int st;

    st = device_call(c, "DELETE", "", &r, &id);
    if (st != 0)
        return st;
    closed = json_object_get(r.json, "connections_closed");
    snprintf(line, sizeof(line), "deleted device %s (id %" PRId64 ")%s; its keys no longer work",
             c->args.pos[0], id,
             json_integer_value(closed) > 0 ? ", its connection was closed" : "");
    return fota_cli_ctx_done(c, &r, line);
}

/* `device tag DEVICE add|remove|set|list [TAG...]` */
int fota_cli_cmd_device_tag(struct fota_cli_ctx *c)
{
    const char *verb = c->args.npos > 1 ? c->args.pos[1] : "";
    struct fota_cli_reply r;
    char path[256], enc[200], what[128], line[1024];
    int64_t id;
    json_t *tags;
    int st = 0, i;

    if (strcmp(verb, "add") != 0 && strcmp(verb, "remove") != 0 && strcmp(verb, "set") != 0 &&
        strcmp(verb, "list") != 0)
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "device tag DEVICE add|remove|set|list "
                                 "[TAG...]: not '%s'", verb);
    if (strcmp(verb, "list") != 0 && strcmp(verb, "set") != 0 && c->args.npos < 3)
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "device tag DEVICE %s needs a TAG", verb);
    if (strcmp(verb, "list") == 0 && c->args.npos > 2)
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "device tag DEVICE list takes no TAG");
    st = fota_cli_ctx_device_arg(c, &id, what, sizeof(what));
    if (st != 0)
        return st;
    snprintf(path, sizeof(path), "/v1/devices/%" PRId64 "/tags/", id);
    if (strcmp(verb, "remove") == 0) {
        for (i = 2; i < c->args.npos; i++) {
            if (fota_cli_api_urlencode(c->args.pos[i], enc, sizeof(enc)) < 0)
                return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "'%s' is too long",
                                         c->args.pos[i]);
            snprintf(path, sizeof(path), "/v1/devices/%" PRId64 "/tags/%s", id, enc);
            st = fota_cli_ctx_call(c, "DELETE", path, NULL, &r, what);
            if (st != 0)
                return st;
            if (i + 1 < c->args.npos)
                fota_cli_reply_cleanup(&r);
        }
    } else if (strcmp(verb, "list") == 0) {
        st = fota_cli_ctx_call(c, "GET", path, NULL, &r, what);
    } else {
        json_t *list = json_array();
        for (i = 2; i < c->args.npos; i++)
            json_array_append_new(list, json_string(c->args.pos[i]));
        json_t *body = json_pack("{s:o}", "tags", list);
        st = fota_cli_ctx_call(c, strcmp(verb, "set") == 0 ? "PUT" : "POST", path, body, &r,
                               what);
        json_decref(body);
    }
    if (st != 0)
        return st;
    tags = json_object_get(r.json, "tags");
    if (c->json) {
        fota_cli_out_json(stdout, r.json);
    } else if (strcmp(verb, "list") == 0 || !fota_cli_out_tty()) {
        size_t k;
        json_t *t;
        json_array_foreach(tags, k, t)
            printf("%s\n", json_string_value(t));
    } else {
        char cell[512];
        snprintf(line, sizeof(line), "device %s: tags %s", c->args.pos[0],
                 tags_cell(r.json, "tags", NULL, cell, sizeof(cell)));
        printf("%s\n", line);
    }
    fota_cli_reply_cleanup(&r);
    return 0;
}

/* `device command cancel DEVICE COMMAND_ID` */
int fota_cli_cmd_device_command(struct fota_cli_ctx *c)
{
    struct fota_cli_reply r;
    char path[128], what[128], line[512], params[256], *end;
    int64_t dev;
    long long cid;
    int st;

    if (strcmp(c->args.pos[0], "cancel") != 0)
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "device command cancel DEVICE COMMAND_ID: "
                                 "not '%s'", c->args.pos[0]);
    cid = strtoll(c->args.pos[2], &end, 10);
    if (!c->args.pos[2][0] || *end || cid <= 0)
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "'%s' is not a command id (see fotactl "
                                 "device commands %s)", c->args.pos[2], c->args.pos[1]);
    snprintf(what, sizeof(what), "device '%s'", c->args.pos[1]);
    st = fota_cli_ctx_device_id(c, c->args.pos[1], fota_cli_ctx_opt(c, "product"), &dev);
    if (st != 0)
        return st;
    snprintf(path, sizeof(path), "/v1/devices/%" PRId64 "/commands/%lld/", dev, cid);
    /* a 404 is the command's (the device was found): the server's message says so */
    st = fota_cli_ctx_call(c, "DELETE", path, NULL, &r, NULL);
    if (st != 0)
        return st;
    json_t *cmd = json_object_get(r.json, "command");
    snprintf(line, sizeof(line), "cancelled command %lld of device %s (%s %s)", cid,
             c->args.pos[1], json_string_value(json_object_get(cmd, "action")),
             fota_cli_out_fmt(json_object_get(cmd, "params"), params, sizeof(params)));
    return fota_cli_ctx_done(c, &r, line);
}
