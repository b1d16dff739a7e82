/* cmd_product.c - `fotactl product create|list|show|delete`: the products a
 * fleet's releases and devices belong to. A product is deleted last (the
 * server refuses while it has devices or releases, with the counts). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "out.h"

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
        fota_cli_out_show(stdout, fota_cli_reply_object(r->json, "product"), product_order);
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

int fota_cli_cmd_product_create(struct fota_cli_ctx *c)
{
    struct fota_cli_reply r;
    const char *s;
    json_t *body = json_object();
    long map;
    int st;

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

int fota_cli_cmd_product_show(struct fota_cli_ctx *c)
{
    struct fota_cli_reply r;
    char path[64], what[128];
    int64_t id;
    int st;

    st = fota_cli_ctx_product_id(c, c->args.pos[0], &id);
    if (st != 0)
        return st;
    snprintf(path, sizeof(path), "/v1/products/%" PRId64 "/", id);
    snprintf(what, sizeof(what), "product '%s'", c->args.pos[0]);
    st = fota_cli_ctx_call(c, "GET", path, NULL, &r, what);
    if (st != 0)
        return st;
    return show_product(c, &r);
}

int fota_cli_cmd_product_delete(struct fota_cli_ctx *c)
{
    struct fota_cli_reply r;
    char path[64], what[128], line[256];
    int64_t id;
    int st;

    st = fota_cli_ctx_product_id(c, c->args.pos[0], &id);
    if (st != 0)
        return st;
    snprintf(path, sizeof(path), "/v1/products/%" PRId64 "/", id);
    snprintf(what, sizeof(what), "product '%s'", c->args.pos[0]);
    st = fota_cli_ctx_call(c, "DELETE", path, NULL, &r, what);
    if (st != 0)
        return st;
    snprintf(line, sizeof(line), "deleted product %s (id %" PRId64 ")", c->args.pos[0], id);
    return fota_cli_ctx_done(c, &r, line);
}
