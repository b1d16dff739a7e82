/* ctx.c - what every REST command shares once it runs: a failed call
 * becomes one line on stderr with a stable exit status, products and
 * devices are found by id or name, and a command ends with its list, its
 * sentence or the server's JSON. */
#include "ctx.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fota_err.h"
#include "out.h"

const char *fota_cli_ctx_opt(const struct fota_cli_ctx *c, const char *name)
{
    return fota_cli_args_get(&c->args, name);
}

/* ---------------------------------------------------------- call results */

int fota_cli_ctx_check(const struct fota_cli_ctx *c, int rc, const struct fota_cli_reply *r,
                       const char *what)
{
    const char *msg;
    long status;
    json_t *js;

    if (rc < 0)
        return fota_cli_out_fail(FOTA_CLI_EXIT_CONNECT, "%s",
                                 r->transport[0] ? r->transport : fota_strerror(rc));
    status = r->status;
    /* Espressif-style replies carry their own "status"; trust the worse one. */
    js = r->json ? json_object_get(r->json, "status") : NULL;
    if (status >= 200 && status < 300 && json_is_integer(js) && json_integer_value(js) >= 400)
        status = (long)json_integer_value(js);
    if (status >= 200 && status < 300)
        return FOTA_CLI_EXIT_OK;
    msg = fota_cli_reply_message(r);
    switch (status) {
    case 401:
        return fota_cli_out_fail(FOTA_CLI_EXIT_AUTH, "the key was refused (key from %s)",
                                 c->conf.key_from ? c->conf.key_from : "nowhere");
    case 403:
        return fota_cli_out_fail(FOTA_CLI_EXIT_AUTH, "the key is not allowed to do this%s%s",
                                 msg ? ": " : "", msg ? msg : "");
    case 404:
        if (what)
            return fota_cli_out_fail(FOTA_CLI_EXIT_NOTFOUND, "no such %s", what);
        return fota_cli_out_fail(FOTA_CLI_EXIT_NOTFOUND, "%s", msg ? msg : "not found");
    default:
        break;
    }
    if (status >= 500)
        return fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "server error (HTTP %ld)%s%s", status,
                                 msg ? ": " : "", msg ? msg : "");
    if (msg)
        return fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "%s", msg);
    return fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "the server refused the request (HTTP %ld)",
                             status);
}

int fota_cli_ctx_call(struct fota_cli_ctx *c, const char *method, const char *path, json_t *body,
                      struct fota_cli_reply *r, const char *what)
{
    int rc = fota_cli_api_call(c->api, method, path, body, r);
    int st = fota_cli_ctx_check(c, rc, r, what);

    if (st != 0)
        fota_cli_reply_cleanup(r);
    return st;
}

int fota_cli_ctx_print_list(struct fota_cli_ctx *c, struct fota_cli_reply *r, const json_t *rows,
                            const struct fota_cli_list *l, void *ud)
{
    int rc = 0;

    if (c->json)
        fota_cli_out_json(stdout, r->json);
    else
        rc = fota_cli_out_list(stdout, rows, l, ud);
    fota_cli_reply_cleanup(r);
    if (rc == 0)
        return 0;
    return fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "%s",
                             rc == FOTA_ENOMEM ? "out of memory" : fota_strerror(rc));
}

int fota_cli_ctx_done(struct fota_cli_ctx *c, struct fota_cli_reply *r, const char *line)
{
    if (c->json)
        fota_cli_out_json(stdout, r->json);
    else
        printf("%s\n", line);
    fota_cli_reply_cleanup(r);
    return 0;
}

/* -------------------------------------------------------------- lookups */

static int parse_id(const char *s, int64_t *id)
{
    char *end;
    long long v;

    if (!s[0] || s[0] < '0' || s[0] > '9')
        return FOTA_EINVAL;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (*end || errno || v <= 0)
        return FOTA_EINVAL;
    *id = v;
    return 0;
}

static int json_id(const json_t *o, int64_t *id)
{
    json_t *v = json_object_get(o, "id");

    if (json_is_integer(v)) {
        *id = json_integer_value(v);
        return 0;
    }
    if (json_is_string(v))
        return parse_id(json_string_value(v), id);
    return FOTA_EINVAL;
}

/* How many objects of array a are called name; *id gets the first one's id. */
static int find_named(const json_t *a, const char *name, int64_t *id)
{
    size_t i;
    json_t *o;
    int64_t one;
    int hits = 0;

    json_array_foreach(a, i, o) {
        json_t *n = json_object_get(o, "name");

        if (json_is_string(n) && strcmp(json_string_value(n), name) == 0 && json_id(o, &one) == 0)
            if (hits++ == 0)
                *id = one;
    }
    return hits;
}

int fota_cli_ctx_product_id(struct fota_cli_ctx *c, const char *ref, int64_t *id)
{
    struct fota_cli_reply r;
    int st, hits;

    if (parse_id(ref, id) == 0)
        return 0;
    st = fota_cli_ctx_call(c, "GET", "/v1/products/", NULL, &r, NULL);
    if (st != 0)
        return st;
    hits = find_named(fota_cli_reply_array(r.json, "products"), ref, id);
    fota_cli_reply_cleanup(&r);
    if (hits == 0)
        return fota_cli_out_fail(FOTA_CLI_EXIT_NOTFOUND, "no such product '%s'", ref);
    return 0;
}

int fota_cli_ctx_product_names(struct fota_cli_ctx *c, json_t *names)
{
    struct fota_cli_reply r;
    char id[32];
    size_t i;
    json_t *p;
    int st = fota_cli_ctx_call(c, "GET", "/v1/products/", NULL, &r, NULL);

    if (st != 0)
        return st;
    json_array_foreach(fota_cli_reply_array(r.json, "products"), i, p) {
        fota_cli_out_fmt(json_object_get(p, "id"), id, sizeof(id));
        json_object_set(names, id, json_object_get(p, "name"));
    }
    fota_cli_reply_cleanup(&r);
    return 0;
}

/* Counts the devices called name in one product into *hits (the first
 * match's id into *id). Returns 0 or an exit status. */
static int device_in_product(struct fota_cli_ctx *c, int64_t pid, const char *name, int64_t *id,
                             int *hits)
{
    struct fota_cli_reply r;
    char path[96];
    int64_t one = 0;
    int st, n;

    snprintf(path, sizeof(path), "/v1/products/%" PRId64 "/devices/", pid);
    st = fota_cli_ctx_call(c, "GET", path, NULL, &r, NULL);
    if (st != 0)
        return st;
    n = find_named(fota_cli_reply_array(r.json, "devices"), name, &one);
    if (n > 0 && *hits == 0)
        *id = one;
    *hits += n;
    fota_cli_reply_cleanup(&r);
    return 0;
}

/* A name must pick exactly one device: the API allows duplicates. */
static int device_verdict(const char *ref, int hits)
{
    if (hits == 0)
        return fota_cli_out_fail(FOTA_CLI_EXIT_NOTFOUND, "no such device '%s'", ref);
    if (hits > 1)
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE,
                                 "%d devices are called '%s': give the device id instead", hits,
                                 ref);
    return 0;
}

int fota_cli_ctx_device_id(struct fota_cli_ctx *c, const char *ref, const char *prod, int64_t *id)
{
    struct fota_cli_reply r;
    int64_t pid;
    size_t i;
    json_t *o;
    int st, hits = 0;

    if (parse_id(ref, id) == 0)
        return 0;
    if (prod) {
        st = fota_cli_ctx_product_id(c, prod, &pid);
        if (st == 0)
            st = device_in_product(c, pid, ref, id, &hits);
        return st != 0 ? st : device_verdict(ref, hits);
    }
    st = fota_cli_api_call(c->api, "GET", "/v1/products/", NULL, &r);
    if (st == 0 && r.status == 403) {   /* an owner key: it cannot list, but may know its id */
        fota_cli_reply_cleanup(&r);
        return fota_cli_out_fail(FOTA_CLI_EXIT_AUTH, "finding device '%s' by name needs the admin "
                                 "key: give the device id instead", ref);
    }
    st = fota_cli_ctx_check(c, st, &r, NULL);
    if (st != 0) {
        fota_cli_reply_cleanup(&r);
        return st;
    }
    json_array_foreach(fota_cli_reply_array(r.json, "products"), i, o) {
        if (json_id(o, &pid) < 0)
            continue;
        st = device_in_product(c, pid, ref, id, &hits);
        if (st != 0)
            break;
    }
    fota_cli_reply_cleanup(&r);
    return st != 0 ? st : device_verdict(ref, hits);
}

int fota_cli_ctx_device_arg(struct fota_cli_ctx *c, int64_t *id, char *what, size_t wcap)
{
    snprintf(what, wcap, "device '%s'", c->args.pos[0]);
    return fota_cli_ctx_device_id(c, c->args.pos[0], fota_cli_ctx_opt(c, "product"), id);
}
