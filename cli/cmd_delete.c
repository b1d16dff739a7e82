/* cmd_delete.c - `fotactl release delete`, `fotactl device delete` and
 * `fotactl product delete`: one DELETE each (docs/api.md, "Deleting").
 * The server refuses what is still in use (409: exit 1, with its reason),
 * so nothing here asks for confirmation; --json prints the server's reply. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "out.h"

/* Prints r (--json) or the line fmt, and cleans r up. Returns 0. */
static int done(struct fota_cli_ctx *c, struct fota_cli_reply *r, const char *line)
{
    if (c->json)
        fota_cli_out_json(stdout, r->json);
    else
        printf("%s\n", line);
    fota_cli_reply_cleanup(r);
    return 0;
}

int fota_cli_release_delete(struct fota_cli_ctx *c)
{
    struct fota_cli_reply r;
    const char *product = fota_cli_opt(c, "product"), *version;
    char ev[200], path[320], line[512];
    size_t removed, kept;
    int64_t pid;
    int st;

    /* `release delete --product P VERSION` or `release delete PRODUCT VERSION` */
    if (c->nargs == 2 && product)
        return fota_cli_fail(FOTA_CLI_EXIT_USAGE, "give the product once (--product or PRODUCT)");
    if (c->nargs == 2)
        product = c->args[0];
    if (!product)
        return fota_cli_fail(FOTA_CLI_EXIT_USAGE, "this command needs --product");
    version = c->args[c->nargs - 1];
    if (fota_cli_urlencode(version, ev, sizeof(ev)) < 0)
        return fota_cli_fail(FOTA_CLI_EXIT_USAGE, "the version is too long");
    st = fota_cli_product_id(c, product, &pid);
    if (st != 0)
        return st;
    snprintf(path, sizeof(path), "/v1/products/%" PRId64 "/roms/%s/", pid, ev);
    st = fota_cli_call(c, "DELETE", path, NULL, &r, NULL);   /* 404 names product or version */
    if (st != 0)
        return st;
    removed = json_array_size(json_object_get(r.json, "blobs_removed"));
    kept = json_array_size(json_object_get(r.json, "blobs_kept"));
    snprintf(line, sizeof(line), "deleted release %s of %s (%zu stored file%s removed, %zu kept "
             "for other releases)", version, product, removed, removed == 1 ? "" : "s", kept);
    return done(c, &r, line);
}

int fota_cli_device_delete(struct fota_cli_ctx *c)
{
    struct fota_cli_reply r;
    char path[64], what[128], line[256];
    int64_t id;
    json_t *closed;
    int st;

    st = fota_cli_device_id(c, c->args[0], fota_cli_opt(c, "product"), &id);
    if (st != 0)
        return st;
    snprintf(path, sizeof(path), "/v1/devices/%" PRId64 "/", id);
    snprintf(what, sizeof(what), "device '%s'", c->args[0]);
    st = fota_cli_call(c, "DELETE", path, NULL, &r, what);
    if (st != 0)
        return st;
    closed = json_object_get(r.json, "connections_closed");
    snprintf(line, sizeof(line), "deleted device %s (id %" PRId64 ")%s; its keys no longer work",
             c->args[0], id,
             json_integer_value(closed) > 0 ? ", its connection was closed" : "");
    return done(c, &r, line);
}

int fota_cli_product_delete(struct fota_cli_ctx *c)
{
    struct fota_cli_reply r;
    char path[64], what[128], line[256];
    int64_t id;
    int st;

    st = fota_cli_product_id(c, c->args[0], &id);
    if (st != 0)
        return st;
    snprintf(path, sizeof(path), "/v1/products/%" PRId64 "/", id);
    snprintf(what, sizeof(what), "product '%s'", c->args[0]);
    st = fota_cli_call(c, "DELETE", path, NULL, &r, what);
    if (st != 0)
        return st;
    snprintf(line, sizeof(line), "deleted product %s (id %" PRId64 ")", c->args[0], id);
    return done(c, &r, line);
}
