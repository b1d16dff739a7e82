/* cmd.c - the machinery shared by fotactl's REST commands: parse a command
 * line against its row of the command table, print help from that table,
 * resolve server and key, turn failed calls into one line on stderr with a
 * stable exit status, and look products and devices up by id or name. */
#include "cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fota_err.h"
#include "out.h"

int fota_cli_fail(int status, const char *fmt, ...)
{
    va_list ap;

    fputs("fotactl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return status;
}

/* ------------------------------------------------------------------ help */

static size_t count_opts(const struct fota_cli_opt *o)
{
    size_t n = 0;

    while (o && o[n].name)
        n++;
    return n;
}

static void print_opts(FILE *f, const struct fota_cli_opt *o)
{
    char left[64];

    for (; o && o->name; o++) {
        if (o->short_name)
            snprintf(left, sizeof(left), "-%c, --%s%s%s", o->short_name, o->name,
                     o->metavar ? " " : "", o->metavar ? o->metavar : "");
        else
            snprintf(left, sizeof(left), "    --%s%s%s", o->name, o->metavar ? " " : "",
                     o->metavar ? o->metavar : "");
        fprintf(f, "  %-26s %s\n", left, o->help);
    }
}

static void print_usage(FILE *f, const struct fota_cli_verb *v)
{
    fprintf(f, "usage: fotactl %s%s%s%s%s [options]\n", v->group, v->verb ? " " : "",
            v->verb ? v->verb : "", v->synopsis[0] ? " " : "", v->synopsis);
}

static void help_verb(FILE *f, const struct fota_cli_verb *v)
{
    print_usage(f, v);
    fprintf(f, "\n%s\n", v->summary);
    if (count_opts(v->opts) > 0) {
        fprintf(f, "\noptions:\n");
        print_opts(f, v->opts);
    }
    fprintf(f, "\ncommon options:\n");
    print_opts(f, fota_cli_global_opts);
}

static void help_group(FILE *f, const char *group)
{
    const struct fota_cli_verb *v;

    fprintf(f, "usage: fotactl %s COMMAND [options]\n\ncommands:\n", group);
    for (v = fota_cli_verbs; v->group; v++)
        if (strcmp(v->group, group) == 0)
            fprintf(f, "  %-12s %s\n", v->verb, v->summary);
    fprintf(f, "\n`fotactl %s COMMAND --help` shows a command's options.\n", group);
}

void fota_cli_help_all(FILE *f, const char *extra)
{
    const struct fota_cli_verb *v;
    char name[40];

    fprintf(f, "usage: fotactl COMMAND [options]\n\n"
               "fotactl drives a fota server's REST API (and builds and inspects firmware images).\n\n"
               "commands:\n");
    for (v = fota_cli_verbs; v->group; v++) {
        snprintf(name, sizeof(name), "%s%s%s", v->group, v->verb ? " " : "", v->verb ? v->verb : "");
        fprintf(f, "  %-19s %s\n", name, v->summary);
    }
    if (extra)
        fputs(extra, f);
    fprintf(f, "\ncommon options:\n");
    print_opts(f, fota_cli_global_opts);
    fprintf(f, "\nServer and key come from --server/--key, else FOTA_SERVER/FOTA_KEY, else the file\n"
               "`fotactl login` writes. `fotactl COMMAND --help` shows a command's options;\n"
               "man fotactl has the rest.\n");
}

/* --------------------------------------------------------------- parsing */

const char *fota_cli_opt(const struct fota_cli_ctx *c, const char *name)
{
    size_t i;

    for (i = 0; c->verb->opts && c->verb->opts[i].name; i++)
        if (strcmp(c->verb->opts[i].name, name) == 0)
            return c->val[i];
    return NULL;
}

struct globals {
    const char *server, *key, *cacert;
    int json, no_color, help;
};

/* Finds --name / -x among the verb's options (index >= 0) or the globals
 * (index -1 - i). Returns 0 when found. */
static int find_opt(const struct fota_cli_verb *v, const char *name, size_t nlen, char sh,
                    int *index, const struct fota_cli_opt **opt)
{
    const struct fota_cli_opt *tabs[2] = { v->opts, fota_cli_global_opts };
    int t, i;

    for (t = 0; t < 2; t++) {
        for (i = 0; tabs[t] && tabs[t][i].name; i++) {
            const struct fota_cli_opt *o = &tabs[t][i];
            int hit = name ? strlen(o->name) == nlen && strncmp(o->name, name, nlen) == 0
                           : o->short_name == sh;

            if (hit) {
                *index = t == 0 ? i : -1 - i;
                *opt = o;
                return 0;
            }
        }
    }
    return FOTA_ENOENT;
}

static void set_global(struct globals *g, const char *name, const char *val)
{
    if (strcmp(name, "server") == 0)
        g->server = val;
    else if (strcmp(name, "key") == 0)
        g->key = val;
    else if (strcmp(name, "cacert") == 0)
        g->cacert = val;
    else if (strcmp(name, "json") == 0)
        g->json = 1;
    else if (strcmp(name, "no-color") == 0)
        g->no_color = 1;
    else if (strcmp(name, "help") == 0)
        g->help = 1;
}

static int parse(struct fota_cli_ctx *c, struct globals *g, int argc, char **argv)
{
    const struct fota_cli_verb *v = c->verb;
    const struct fota_cli_opt *o;
    int i, idx, only_pos = 0;

    for (i = 0; i < argc; i++) {
        char *a = argv[i];
        const char *val = NULL, *eq = NULL;
        int rc;

        if (!only_pos && strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (only_pos || a[0] != '-' || a[1] == '\0') {
            if (c->nargs >= FOTA_CLI_MAX_ARGS)
                return fota_cli_fail(FOTA_CLI_EXIT_USAGE, "too many arguments");
            c->args[c->nargs++] = a;
            continue;
        }
        if (a[1] == '-') {
            eq = strchr(a + 2, '=');
            rc = find_opt(v, a + 2, eq ? (size_t)(eq - a - 2) : strlen(a + 2), 0, &idx, &o);
            if (rc < 0)
                return fota_cli_fail(FOTA_CLI_EXIT_USAGE, "unknown option %.*s (see --help)",
                                     eq ? (int)(eq - a) : (int)strlen(a), a);
            if (eq)
                val = eq + 1;
        } else {
            rc = find_opt(v, NULL, 0, a[1], &idx, &o);
            if (rc < 0)
                return fota_cli_fail(FOTA_CLI_EXIT_USAGE, "unknown option %s (see --help)", a);
            if (a[2])
                val = a + 2;   /* -oFILE */
        }
        if (o->metavar && !val) {
            if (i + 1 >= argc)
                return fota_cli_fail(FOTA_CLI_EXIT_USAGE, "--%s needs a value (%s)", o->name,
                                     o->metavar);
            val = argv[++i];
        } else if (!o->metavar && val) {
            return fota_cli_fail(FOTA_CLI_EXIT_USAGE, "--%s takes no value", o->name);
        }
        if (idx >= 0)
            c->val[idx] = val ? val : "";
        else
            set_global(g, o->name, val);
    }
    return 0;
}

int fota_cli_hoist_globals(int argc, char **argv)
{
    char *moved[FOTA_CLI_MAX_ARGS];
    int i = 1, k = 0, j;

    while (i < argc && argv[i][0] == '-' && argv[i][1] == '-' && k + 2 <= FOTA_CLI_MAX_ARGS) {
        const struct fota_cli_opt *o;
        const char *name = argv[i] + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);

        for (o = fota_cli_global_opts; o->name; o++)
            if (strlen(o->name) == nlen && strncmp(o->name, name, nlen) == 0)
                break;
        if (!o->name || strcmp(o->name, "help") == 0)
            break;   /* not ours (or --help/--version): main handles it */
        moved[k++] = argv[i++];
        if (o->metavar && !eq) {
            if (i >= argc)
                return fota_cli_fail(FOTA_CLI_EXIT_USAGE, "--%s needs a value (%s)", o->name,
                                     o->metavar);
            moved[k++] = argv[i++];
        }
    }
    if (k == 0 || i >= argc)
        return 0;   /* nothing to move, or no command after them (main reports) */
    for (j = i; j < argc; j++)
        argv[j - k] = argv[j];
    for (j = 0; j < k; j++)
        argv[argc - k + j] = moved[j];
    return 0;
}

static const struct fota_cli_verb *find_verb(const char *group, const char *verb)
{
    const struct fota_cli_verb *v;

    for (v = fota_cli_verbs; v->group; v++)
        if (strcmp(v->group, group) == 0 &&
            ((!v->verb && !verb) || (v->verb && verb && strcmp(v->verb, verb) == 0)))
            return v;
    return NULL;
}

static int group_is_grouped(const char *group, int *known)
{
    const struct fota_cli_verb *v;

    *known = 0;
    for (v = fota_cli_verbs; v->group; v++)
        if (strcmp(v->group, group) == 0) {
            *known = 1;
            return v->verb != NULL;
        }
    return 0;
}

static int open_client(struct fota_cli_ctx *c, const struct globals *g)
{
    char err[FOTA_CLI_PATH_MAX + 64];

    if (fota_cli_conf_load(&c->conf, g->server, g->key, g->cacert, err, sizeof(err)) < 0)
        return fota_cli_fail(FOTA_CLI_EXIT_USAGE, "%s", err);
    if (c->verb->run == fota_cli_login && (!c->conf.server[0] || !c->conf.key[0]))
        return fota_cli_fail(FOTA_CLI_EXIT_USAGE, "login needs --server URL and --key KEY "
                             "(the admin key is in the server's DATA/owner.key)");
    if (!c->conf.server[0])
        return fota_cli_fail(FOTA_CLI_EXIT_USAGE,
                             "no server: run `fotactl login`, set FOTA_SERVER or pass --server");
    if (!c->conf.key[0])
        return fota_cli_fail(FOTA_CLI_EXIT_USAGE,
                             "no key: run `fotactl login`, set FOTA_KEY or pass --key");
    c->api = fota_cli_api_new(c->conf.server, c->conf.key, c->conf.cacert);
    if (!c->api)
        return fota_cli_fail(FOTA_CLI_EXIT_FAIL, "cannot start libcurl");
    return 0;
}

int fota_cli_run(int argc, char **argv)
{
    struct fota_cli_ctx c;
    struct globals g;
    const struct fota_cli_verb *v;
    const char *verb = NULL;
    int known, grouped, skip = 1, rc;

    memset(&c, 0, sizeof(c));
    memset(&g, 0, sizeof(g));
    if (argc < 1)
        return FOTA_CLI_EXIT_USAGE;
    grouped = group_is_grouped(argv[0], &known);
    if (!known)
        return fota_cli_fail(FOTA_CLI_EXIT_USAGE, "unknown command '%s' (see fotactl --help)",
                             argv[0]);
    if (grouped) {
        if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
            strcmp(argv[1], "help") == 0) {
            help_group(argc < 2 ? stderr : stdout, argv[0]);
            return argc < 2 ? FOTA_CLI_EXIT_USAGE : FOTA_CLI_EXIT_OK;
        }
        verb = argv[1];
        skip = 2;
    }
    v = find_verb(argv[0], verb);
    if (!v)
        return fota_cli_fail(FOTA_CLI_EXIT_USAGE, "unknown command '%s %s' (see fotactl %s --help)",
                             argv[0], verb, argv[0]);
    c.verb = v;
    if (count_opts(v->opts) > FOTA_CLI_MAX_OPTS)
        return fota_cli_fail(FOTA_CLI_EXIT_FAIL, "internal: too many options");
    rc = parse(&c, &g, argc - skip, argv + skip);
    if (rc != 0)
        return rc;
    if (g.help) {
        help_verb(stdout, v);
        return FOTA_CLI_EXIT_OK;
    }
    if (c.nargs < v->min_args || (v->max_args >= 0 && c.nargs > v->max_args)) {
        print_usage(stderr, v);
        return FOTA_CLI_EXIT_USAGE;
    }
    c.json = g.json;
    fota_cli_out_init(!g.no_color);
    if (v->needs_server) {
        rc = open_client(&c, &g);
        if (rc != 0)
            return rc;
    }
    rc = v->run(&c);
    fota_cli_api_free(c.api);
    return rc;
}

/* ---------------------------------------------------------- call results */

int fota_cli_check(const struct fota_cli_ctx *c, int rc, const struct fota_cli_reply *r,
                   const char *what)
{
    const char *msg;
    long status;
    json_t *js;

    if (rc < 0)
        return fota_cli_fail(FOTA_CLI_EXIT_CONNECT, "%s",
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
        return fota_cli_fail(FOTA_CLI_EXIT_AUTH, "the key was refused (key from %s)",
                             c->conf.key_from ? c->conf.key_from : "nowhere");
    case 403:
        return fota_cli_fail(FOTA_CLI_EXIT_AUTH, "the key is not allowed to do this%s%s",
                             msg ? ": " : "", msg ? msg : "");
    case 404:
        if (what)
            return fota_cli_fail(FOTA_CLI_EXIT_NOTFOUND, "no such %s", what);
        return fota_cli_fail(FOTA_CLI_EXIT_NOTFOUND, "%s", msg ? msg : "not found");
    default:
        break;
    }
    if (status >= 500)
        return fota_cli_fail(FOTA_CLI_EXIT_FAIL, "server error (HTTP %ld)%s%s", status,
                             msg ? ": " : "", msg ? msg : "");
    if (msg)
        return fota_cli_fail(FOTA_CLI_EXIT_FAIL, "%s", msg);
    return fota_cli_fail(FOTA_CLI_EXIT_FAIL, "the server refused the request (HTTP %ld)", status);
}

int fota_cli_call(struct fota_cli_ctx *c, const char *method, const char *path, json_t *body,
                  struct fota_cli_reply *r, const char *what)
{
    int rc = fota_cli_api_call(c->api, method, path, body, r);
    int st = fota_cli_check(c, rc, r, what);

    if (st != 0)
        fota_cli_reply_cleanup(r);
    return st;
}

/* -------------------------------------------------------------- lookups */

json_t *fota_cli_array(json_t *reply, const char *name)
{
    json_t *a = json_object_get(reply, name), *v;
    const char *k;

    if (json_is_array(a))
        return a;
    if (json_is_array(reply))
        return reply;
    json_object_foreach(reply, k, v)
        if (json_is_array(v))
            return v;
    return NULL;
}

json_t *fota_cli_object(json_t *reply, const char *name)
{
    json_t *o = json_object_get(reply, name);

    return json_is_object(o) ? o : reply;
}

int fota_cli_print_list(struct fota_cli_ctx *c, struct fota_cli_reply *r, const json_t *rows,
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
    return fota_cli_fail(FOTA_CLI_EXIT_FAIL, "%s",
                         rc == FOTA_ENOMEM ? "out of memory" : fota_strerror(rc));
}

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

int fota_cli_product_id(struct fota_cli_ctx *c, const char *ref, int64_t *id)
{
    struct fota_cli_reply r;
    char what[128];
    int st;

    if (parse_id(ref, id) == 0)
        return 0;
    st = fota_cli_call(c, "GET", "/v1/products/", NULL, &r, NULL);
    if (st != 0)
        return st;
    st = find_named(fota_cli_array(r.json, "products"), ref, id) > 0 ? 0 : FOTA_CLI_EXIT_NOTFOUND;
    fota_cli_reply_cleanup(&r);
    if (st != 0) {
        snprintf(what, sizeof(what), "product '%s'", ref);
        return fota_cli_fail(st, "no such %s", what);
    }
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
    st = fota_cli_call(c, "GET", path, NULL, &r, NULL);
    if (st != 0)
        return st;
    n = find_named(fota_cli_array(r.json, "devices"), name, &one);
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
        return fota_cli_fail(FOTA_CLI_EXIT_NOTFOUND, "no such device '%s'", ref);
    if (hits > 1)
        return fota_cli_fail(FOTA_CLI_EXIT_USAGE,
                             "%d devices are called '%s': give the device id instead", hits, ref);
    return 0;
}

int fota_cli_device_id(struct fota_cli_ctx *c, const char *ref, const char *prod, int64_t *id)
{
    struct fota_cli_reply r;
    int64_t pid;
    size_t i;
    json_t *o;
    int st, hits = 0;

    if (parse_id(ref, id) == 0)
        return 0;
    if (prod) {
        st = fota_cli_product_id(c, prod, &pid);
        if (st == 0)
            st = device_in_product(c, pid, ref, id, &hits);
        return st != 0 ? st : device_verdict(ref, hits);
    }
    st = fota_cli_api_call(c->api, "GET", "/v1/products/", NULL, &r);
    if (st == 0 && r.status == 403) {   /* an owner key: it cannot list, but may know its id */
        fota_cli_reply_cleanup(&r);
        return fota_cli_fail(FOTA_CLI_EXIT_AUTH, "finding device '%s' by name needs the admin "
                             "key: give the device id instead", ref);
    }
    st = fota_cli_check(c, st, &r, NULL);
    if (st != 0) {
        fota_cli_reply_cleanup(&r);
        return st;
    }
    json_array_foreach(fota_cli_array(r.json, "products"), i, o) {
        if (json_id(o, &pid) < 0)
            continue;
        st = device_in_product(c, pid, ref, id, &hits);
        if (st != 0)
            break;
    }
    fota_cli_reply_cleanup(&r);
    return st != 0 ? st : device_verdict(ref, hits);
}

/* ------------------------------------------------------------ local files */

int fota_cli_read_file(const char *path, size_t max, uint8_t **data, size_t *len)
{
    struct stat st;
    uint8_t *buf = NULL;
    size_t got = 0;
    ssize_t n;
    int fd, rc = 0;
    char why[128];

    *data = NULL;
    *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        goto fail;
    if (fstat(fd, &st) < 0)
        goto fail;
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return fota_cli_fail(FOTA_CLI_EXIT_FAIL, "cannot read %s (not a regular file)", path);
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return fota_cli_fail(FOTA_CLI_EXIT_FAIL, "cannot read %s (larger than %zu bytes)", path,
                             max);
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf)
        goto fail;
    while (got < (size_t)st.st_size) {
        n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto fail;
        got += (size_t)n;
    }
    buf[got] = 0;
    close(fd);
    *data = buf;
    *len = got;
    return 0;
fail:
    snprintf(why, sizeof(why), "%s", strerror(errno ? errno : EIO));
    if (why[0] >= 'A' && why[0] <= 'Z' && !(why[1] >= 'A' && why[1] <= 'Z'))
        why[0] = (char)(why[0] - 'A' + 'a');
    rc = fota_cli_fail(FOTA_CLI_EXIT_FAIL, "cannot read %s (%s)", path, why);
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}
