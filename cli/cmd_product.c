/* cmd_product.c - `fotactl login` and `fotactl product create|list|show`:
 * the admin's first steps (store server and key, make a product). */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "out.h"

int fota_cli_login(struct fota_cli_ctx *c)
{
    struct fota_cli_reply r;
    char path[FOTA_CLI_PATH_MAX], err[FOTA_CLI_PATH_MAX + 64], cacert[PATH_MAX];
    int rc, st, not_admin = 0;

    if (!fota_cli_opt(c, "no-check")) {
        /* Listing products needs the admin key: the cheapest proof it works. */
        rc = fota_cli_api_call(c->api, "GET", "/v1/products/", NULL, &r);
        if (rc == 0 && r.status == 403) {
            not_admin = 1;
        } else {
            st = fota_cli_check(c, rc, &r, NULL);
            if (st != 0) {
                fota_cli_reply_cleanup(&r);
                return st;
            }
        }
        fota_cli_reply_cleanup(&r);
    }
    /* A relative CA path would break as soon as fotactl runs elsewhere. */
    if (c->conf.cacert[0] && !realpath(c->conf.cacert, cacert))
        return fota_cli_fail(FOTA_CLI_EXIT_FAIL, "cannot find %s", c->conf.cacert);
    if (fota_cli_conf_save(fota_cli_api_server(c->api), c->conf.key,
                           c->conf.cacert[0] ? cacert : NULL, path, sizeof(path), err,
                           sizeof(err)) < 0)
        return fota_cli_fail(FOTA_CLI_EXIT_FAIL, "%s", err);
    if (not_admin)
        fprintf(stderr, "fotactl: warning: the key works but is not an admin key\n");
    if (c->json) {
        json_t *j = json_pack("{s:s, s:s}", "server", fota_cli_api_server(c->api), "config", path);

        fota_cli_out_json(stdout, j);
        json_decref(j);
    } else {
        printf("logged in to %s (saved in %s)\n", fota_cli_api_server(c->api), path);
    }
    return 0;
}

static const char *const product_order[] = {
    "id", "name", "serial", "status", "description", "flash_map", "slot_check", "current_version",
    "devices_activated", "devices_total", "created", NULL
};

/* Prints a product reply and cleans it up. Returns 0. */
static int show_product(struct fota_cli_ctx *c, struct fota_cli_reply *r)
{
    json_t *pkey = json_object_get(r->json, "product_key");
    char buf[128];

    if (c->json) {
        fota_cli_out_json(stdout, r->json);
    } else {
        fota_cli_out_show(stdout, fota_cli_object(r->json, "product"), product_order);
        /* The read-only key AT-style firmware uses to list the product's ROMs. */
        if (json_is_string(pkey))
            fota_cli_out_kv(stdout, 17, "product_key", fota_cli_fmt(pkey, buf, sizeof(buf)));
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

int fota_cli_product_create(struct fota_cli_ctx *c)
{
    struct fota_cli_reply r;
    const char *s;
    json_t *body = json_object();
    long map;
    int st;

    json_object_set_new(body, "name", json_string(c->args[0]));
    if ((s = fota_cli_opt(c, "serial")))
        json_object_set_new(body, "serial", json_string(s));
    if ((s = fota_cli_opt(c, "description")))
        json_object_set_new(body, "description", json_string(s));
    if ((s = fota_cli_opt(c, "flash-map"))) {
        if (parse_int(s, 0, 15, &map) < 0) {
            json_decref(body);
            return fota_cli_fail(FOTA_CLI_EXIT_USAGE, "--flash-map wants a size map code 0..15");
        }
        json_object_set_new(body, "flash_map", json_integer(map));
    }
    if ((s = fota_cli_opt(c, "slot-check"))) {
        if (strcmp(s, "byte3") != 0 && strcmp(s, "name") != 0) {
            json_decref(body);
            return fota_cli_fail(FOTA_CLI_EXIT_USAGE, "--slot-check wants byte3 or name");
        }
        json_object_set_new(body, "slot_check", json_string(s));
    }
    st = fota_cli_call(c, "POST", "/v1/products/", body, &r, NULL);
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
    fota_cli_fmt(json_object_get(p, "devices_activated"), a, sizeof(a));
    fota_cli_fmt(json_object_get(p, "devices_total"), t, sizeof(t));
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

int fota_cli_product_list(struct fota_cli_ctx *c)
{
    struct fota_cli_reply r;
    int st;

    st = fota_cli_call(c, "GET", "/v1/products/", NULL, &r, NULL);
    if (st != 0)
        return st;
    return fota_cli_print_list(c, &r, fota_cli_array(r.json, "products"), &product_list, NULL);
}

int fota_cli_product_show(struct fota_cli_ctx *c)
{
    struct fota_cli_reply r;
    char path[64], what[128];
    int64_t id;
    int st;

    st = fota_cli_product_id(c, c->args[0], &id);
    if (st != 0)
        return st;
    snprintf(path, sizeof(path), "/v1/products/%" PRId64 "/", id);
    snprintf(what, sizeof(what), "product '%s'", c->args[0]);
    st = fota_cli_call(c, "GET", path, NULL, &r, what);
    if (st != 0)
        return st;
    return show_product(c, &r);
}
