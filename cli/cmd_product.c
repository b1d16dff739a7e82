/* cmd_product.c - `fotactl product create|list|show|delete|arduino|mqtt`:
 * the products a fleet's releases and devices belong to, the fleet settings
 * of an arduino product (cli/arduino.h) and its Tasmota fleet's MQTT broker. A product is deleted last (the
 * server refuses while it has devices or releases, with the counts). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "arduino.h"
#include "cmd.h"
#include "file.h"
#include "out.h"

#define PEM_MAX (16 * 1024)

static const char *const product_order[] = {
    "id", "name", "serial", "status", "description", "platform", "flash_map", "slot_check",
    "current_version", "devices_activated", "devices_total", "created", NULL
};

static const char *const arduino_order[] = {
    "product_id", "platform", "arduino_core", "gzip", "flash_mode", "signing_key",
    "checkin_interval", "confirm_after", NULL
};

/* The PEM public key of a product as one line: "RSA 2048-bit public key"
 * (the whole text is in --json). */
static void key_line(json_t *obj)
{
    json_t *k = json_object_get(obj, "signing_key");
    char line[96];
    BIO *b;
    EVP_PKEY *pk;

    if (!json_is_string(k))
        return;
    b = BIO_new_mem_buf(json_string_value(k), (int)json_string_length(k));
    pk = b ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
    if (pk && EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA)
        snprintf(line, sizeof(line), "RSA %d-bit public key (--json shows it)",
                 EVP_PKEY_get_bits(pk));
    else
        snprintf(line, sizeof(line), "a PEM text (--json shows it)");
    EVP_PKEY_free(pk);
    BIO_free(b);
    json_object_set_new(obj, "signing_key", json_string(line));
}

/* Seconds as they were given ("3600 (1h)"). */
static void seconds_line(json_t *obj, const char *name)
{
    json_t *v = json_object_get(obj, name);
    char line[64];
    json_int_t s;

    if (!json_is_integer(v))
        return;
    s = json_integer_value(v);
    if (s >= 86400 && s % 86400 == 0)
        snprintf(line, sizeof(line), "%lld s (%lldd)", (long long)s, (long long)(s / 86400));
    else if (s >= 3600 && s % 3600 == 0)
        snprintf(line, sizeof(line), "%lld s (%lldh)", (long long)s, (long long)(s / 3600));
    else if (s >= 60 && s % 60 == 0)
        snprintf(line, sizeof(line), "%lld s (%lldm)", (long long)s, (long long)(s / 60));
    else
        snprintf(line, sizeof(line), "%lld s", (long long)s);
    json_object_set_new(obj, name, json_string(line));
}

/* An object's copy with the arduino settings made readable for a show block. */
static json_t *readable(const json_t *obj)
{
    json_t *c = json_deep_copy(obj);

    if (!c)
        return json_object();
    key_line(c);
    seconds_line(c, "checkin_interval");
    seconds_line(c, "confirm_after");
    return c;
}

/* Prints a product reply and cleans it up. Returns 0. */
static int show_product(struct fota_cli_ctx *c, struct fota_cli_reply *r)
{
    json_t *pkey = json_object_get(r->json, "product_key");
    char buf[128];

    if (c->json) {
        fota_cli_out_json(stdout, r->json);
    } else {
        json_t *p = readable(fota_cli_reply_object(r->json, "product"));

        fota_cli_out_show(stdout, p, product_order);
        json_decref(p);
        /* The read-only key AT-style firmware uses to list the product's ROMs. */
        if (json_is_string(pkey))
            fota_cli_out_kv(stdout, 17, "product_key", fota_cli_out_fmt(pkey, buf, sizeof(buf)));
    }
    fota_cli_reply_cleanup(r);
    return 0;
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);

    if (!s[0] || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* --signing-key FILE into body. Returns 0 or an exit status (reported). */
static int signing_key(struct fota_cli_ctx *c, json_t *body)
{
    const char *path = fota_cli_ctx_opt(c, "signing-key");
    char err[512];
    uint8_t *pem;
    size_t len;
    int st;

    if (!path)
        return 0;
    st = fota_cli_file_read(path, PEM_MAX, &pem, &len);
    if (st != 0)
        return st;
    st = fota_cli_arduino_signing_key(path, (const char *)pem, len, body, err, sizeof(err));
    free(pem);
    return st == 0 ? 0 : fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "%s", err);
}

/* The fleet options of an arduino product. Returns 0 or an exit status
 * (reported). */
static int arduino_options(struct fota_cli_ctx *c, json_t *body, int *n)
{
    char err[256];

    *n = fota_cli_arduino_settings(&c->args, body, err, sizeof(err));
    if (*n < 0)
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "%s", err);
    if (fota_cli_ctx_opt(c, "signing-key") || fota_cli_ctx_opt(c, "no-signing-key"))
        (*n)++;
    if (fota_cli_ctx_opt(c, "signing-key") && fota_cli_ctx_opt(c, "no-signing-key"))
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE,
                                 "give --signing-key or --no-signing-key, not both");
    if (fota_cli_ctx_opt(c, "no-signing-key"))
        json_object_set_new(body, "signing_key", json_null());
    return signing_key(c, body);
}

int fota_cli_cmd_product_create(struct fota_cli_ctx *c)
{
    struct fota_cli_reply r;
    const char *s, *platform = fota_cli_ctx_opt(c, "platform");
    json_t *body = json_object();
    long map;
    int st, nfleet;

    json_object_set_new(body, "name", json_string(c->args.pos[0]));
    if ((s = fota_cli_ctx_opt(c, "serial")))
        json_object_set_new(body, "serial", json_string(s));
    if ((s = fota_cli_ctx_opt(c, "description")))
        json_object_set_new(body, "description", json_string(s));
    if ((s = fota_cli_ctx_opt(c, "flash-map"))) {
        if (parse_int(s, 0, 15, &map) < 0) {
            json_decref(body);
            return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE,
                                     "--flash-map wants a size map code 0..15");
        }
        json_object_set_new(body, "flash_map", json_integer(map));
    }
    if ((s = fota_cli_ctx_opt(c, "slot-check"))) {
        if (strcmp(s, "byte3") != 0 && strcmp(s, "name") != 0) {
            json_decref(body);
            return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "--slot-check wants byte3 or name");
        }
        json_object_set_new(body, "slot_check", json_string(s));
    }
    if (platform && strcmp(platform, "nonos") != 0 && strcmp(platform, "arduino") != 0) {
        json_decref(body);
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "--platform wants nonos or arduino");
    }
    if (platform)
        json_object_set_new(body, "platform", json_string(platform));
    st = arduino_options(c, body, &nfleet);
    if (st == 0 && nfleet > 0 && (!platform || strcmp(platform, "arduino") != 0))
        st = fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "--gzip, --arduino-core, --flash-mode, "
                               "--signing-key, --checkin-interval and --confirm-after are for "
                               "--platform arduino");
    if (st != 0) {
        json_decref(body);
        return st;
    }
    st = fota_cli_ctx_call(c, "POST", "/v1/products/", body, &r, NULL);
    json_decref(body);
    if (st != 0)
        return st;
    return show_product(c, &r);
}

/* "3/5" from activated/total counts, whatever the server names them. */
static const char *device_counts(const json_t *p, const char *field, void *ud, char *buf,
                                 size_t cap)
{
    char a[32], t[32];

    (void)field;
    (void)ud;
    fota_cli_out_fmt(json_object_get(p, "devices_activated"), a, sizeof(a));
    fota_cli_out_fmt(json_object_get(p, "devices_total"), t, sizeof(t));
    snprintf(buf, cap, "%s/%s", a, t);
    return buf;
}

static const struct fota_cli_col product_cols[] = {
    { "ID", "id", NULL, 1 },
    { "NAME", "name", NULL, 1 },
    { "SERIAL", "serial", NULL, 1 },
    { "MAP", "flash_map", NULL, 1 },
    { "CURRENT", "current_version", NULL, 1 },
    { "DEVICES", NULL, device_counts, 1 },
    { "DESCRIPTION", "description", NULL, 1 },
};
static const struct fota_cli_list product_list = FOTA_CLI_LIST(product_cols, 256, 0);

int fota_cli_cmd_product_list(struct fota_cli_ctx *c)
{
    struct fota_cli_reply r;
    int st;

    st = fota_cli_ctx_call(c, "GET", "/v1/products/", NULL, &r, NULL);
    if (st != 0)
        return st;
    return fota_cli_ctx_print_list(c, &r, fota_cli_reply_array(r.json, "products"), &product_list,
                                   NULL);
}

/* method /v1/products/ID/sub of the product the first argument names (its
 * id into *id when id is not NULL), sending body unless it is NULL (body
 * stays the caller's). A 404 of the product itself (sub "") is reported as
 * the product's; one of a sub-resource of an arduino product is "not an
 * arduino product", the server's sentence. Returns 0 with *r, or an exit
 * status (reported). */
static int product_call(struct fota_cli_ctx *c, const char *method, const char *sub,
                        json_t *body, struct fota_cli_reply *r, int64_t *id)
{
    char path[64], what[128];
    int64_t pid;
    int st = fota_cli_ctx_product_id(c, c->args.pos[0], &pid);

    if (st != 0)
        return st;
    if (id)
        *id = pid;
    snprintf(path, sizeof(path), "/v1/products/%" PRId64 "/%s", pid, sub);
    snprintf(what, sizeof(what), "product '%s'", c->args.pos[0]);
    return fota_cli_ctx_call(c, method, path, body, r, sub[0] ? NULL : what);
}

int fota_cli_cmd_product_show(struct fota_cli_ctx *c)
{
    struct fota_cli_reply r;
    int st = product_call(c, "GET", "", NULL, &r, NULL);

    if (st != 0)
        return st;
    return show_product(c, &r);
}

int fota_cli_cmd_product_delete(struct fota_cli_ctx *c)
{
    struct fota_cli_reply r;
    char line[256];
    int64_t id;
    int st = product_call(c, "DELETE", "", NULL, &r, &id);

    if (st != 0)
        return st;
    snprintf(line, sizeof(line), "deleted product %s (id %" PRId64 ")", c->args.pos[0], id);
    return fota_cli_ctx_done(c, &r, line);
}

/* `product arduino PRODUCT [options]`: GET, or PUT with the options given. */
int fota_cli_cmd_product_arduino(struct fota_cli_ctx *c)
{
    struct fota_cli_reply r;
    json_t *body = json_object(), *settings;
    int st, n;

    st = arduino_options(c, body, &n);
    if (st == 0)
        st = product_call(c, n ? "PUT" : "GET", "arduino", n ? body : NULL, &r, NULL);
    json_decref(body);
    if (st != 0)
        return st;
    if (c->json) {
        fota_cli_out_json(stdout, r.json);
    } else {
        settings = readable(fota_cli_reply_object(r.json, "arduino"));
        fota_cli_out_show(stdout, settings, arduino_order);
        json_decref(settings);
    }
    fota_cli_reply_cleanup(&r);
    return 0;
}

static const char *const mqtt_order[] = {
    "url", "username", "password_set", "connected", "error", "since", "public_url", "triggered",
    "confirmed", "failed", NULL
};

static const struct fota_cli_col mqtt_cols[] = {
    { "TOPIC", "topic", NULL, 0 },
    { "DEVICE", "device_id", NULL, 1 },
    { "LWT", "lwt", NULL, 1 },
    { "VERSION", "version", NULL, 1 },
    { "SEEN", "seen", fota_cli_out_cell_time, 1 },
};
static const struct fota_cli_list mqtt_table = FOTA_CLI_LIST(mqtt_cols, 256, 0);

/* The password of --password-file (FILE, or - for standard input), its
 * final newline dropped, into body. Returns 0 or an exit status (reported). */
static int mqtt_password(const char *path, json_t *body)
{
    char buf[1024];
    size_t n;
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");

    if (!f)
        return fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "cannot read %s", path);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    if (f != stdin)
        fclose(f);
    if (n == sizeof(buf) - 1)
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "the password in %s is too long", path);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    if (memchr(buf, '\0', n))
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "%s is not a text password", path);
    json_object_set_new(body, "password", json_stringn(buf, n));
    return 0;
}

/* `product mqtt PRODUCT [options]`: GET, or PUT with the options given. */
int fota_cli_cmd_product_mqtt(struct fota_cli_ctx *c)
{
    const char *url = fota_cli_ctx_opt(c, "url"), *user = fota_cli_ctx_opt(c, "username");
    const char *pwfile = fota_cli_ctx_opt(c, "password-file");
    int nopw = fota_cli_ctx_opt(c, "no-password") != NULL;
    int remove = fota_cli_ctx_opt(c, "remove") != NULL;
    struct fota_cli_reply r;
    json_t *body = json_object(), *m, *devs;
    int st = 0, put = url || user || pwfile || nopw || remove;

    if (remove && (url || user || pwfile || nopw))
        st = fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "--remove takes no other option");
    else if (pwfile && nopw)
        st = fota_cli_out_fail(FOTA_CLI_EXIT_USAGE,
                               "give --password-file or --no-password, not both");
    if (st == 0 && remove)
        json_object_set_new(body, "url", json_null());
    if (st == 0 && url)
        json_object_set_new(body, "url", json_string(url));
    if (st == 0 && user)
        json_object_set_new(body, "username", user[0] ? json_string(user) : json_null());
    if (st == 0 && nopw)
        json_object_set_new(body, "password", json_null());
    if (st == 0 && pwfile)
        st = mqtt_password(pwfile, body);
    if (st == 0)
        st = product_call(c, put ? "PUT" : "GET", "mqtt", put ? body : NULL, &r, NULL);
    json_decref(body);
    if (st != 0)
        return st;
    if (c->json) {
        fota_cli_out_json(stdout, r.json);
        fota_cli_reply_cleanup(&r);
        return 0;
    }
    m = json_object_get(r.json, "mqtt");
    if (!json_is_object(m)) {
        printf("no broker\n");
        fota_cli_reply_cleanup(&r);
        return 0;
    }
    devs = json_incref(json_object_get(m, "devices"));
    m = json_deep_copy(m);
    json_object_del(m, "devices");
    fota_cli_out_show(stdout, m, mqtt_order);
    json_decref(m);
    if (json_array_size(devs) > 0) {
        fputc('\n', stdout);
        st = fota_cli_out_list(stdout, devs, &mqtt_table, NULL);
    }
    json_decref(devs);
    fota_cli_reply_cleanup(&r);
    return st == 0 ? 0 : fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "out of memory");
}
