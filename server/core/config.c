/* config.c - core's option table and everything generated from a set of
 * tables (core's and the modules'): INI loading through inih, flag parsing,
 * validation, --help and the markdown reference. Adding an option is one
 * row in its owner's table plus the struct field. */
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "fota_err.h"
#include "log.h"

#define OFF(f) FOTA_CONF_FIELD(struct fota_config, f)

const struct fota_conf_opt fota_config_opts[] = {
    { "data", FOTA_CONF_T_STR, OFF(data_dir), "./var", 0, 0, 0,
      "Data directory: fota.db, blobs/, owner.key, secret.key." },
    { "store", FOTA_CONF_T_STR, OFF(store), "sqlite", 0, 0, 0,
      "Metadata store: sqlite (DATA/fota.db) or postgresql:DSN (DSN in libpq's syntax, e.g. "
      "postgresql:host=/run/postgresql dbname=fota; every operation is there, but the "
      "device channel, downloads and the rollout engine still call it on their event loops, "
      "where a slow query stalls them: not for production yet, docs/store.md)." },
    { "bind", FOTA_CONF_T_STR, OFF(bind), "0.0.0.0", 0, 0, 0,
      "Address every listener binds (numeric IPv4 or IPv6, e.g. 127.0.0.1 or ::)." },
    { "tls_cert", FOTA_CONF_T_STR, OFF(tls_cert), "", 0, 0, 0,
      "PEM certificate (chain) for https_port and device_tls_port." },
    { "tls_key", FOTA_CONF_T_STR, OFF(tls_key), "", 0, 0, 0,
      "PEM private key for tls_cert." },
    { "log_level", FOTA_CONF_T_LEVEL, OFF(log_level), "info", 0, 3, FOTA_CONF_RELOAD,
      "debug, info, warn or error." },
    { "shutdown_grace", FOTA_CONF_T_UINT, OFF(shutdown_grace), "10", 0, 3600, FOTA_CONF_RELOAD,
      "Seconds SIGTERM waits for in-flight requests before closing them." },
    { "store_threads", FOTA_CONF_T_UINT, OFF(store_threads), "4", 1, 64, 0,
      "Threads that run the store's work off the event loops, each with a connection of its "
      "own, for a store whose operations wait for the network; sqlite uses none (its "
      "operations run on the thread that asks, see docs/store.md)." },
    { "user", FOTA_CONF_T_STR, OFF(user), "", 0, 0, 0,
      "Started as root: run as this user and its groups (the data dir must be the user's); "
      "ports below 1024 still bind. \"\" = stay as started." },
    { NULL, 0, 0, 0, NULL, 0, 0, 0, NULL }
};

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int fota_config_add_part(struct fota_conf_set *set, const char *name,
                         const struct fota_conf_opt *opts, void *base,
                         int (*check)(const void *base, char *err, size_t errlen))
{
    if (set->n == FOTA_CONF_PARTS_MAX)
        return FOTA_ETOOBIG;
    set->part[set->n++] = (struct fota_conf_part){ name, opts, base, check };
    return 0;
}

/* The row named name and the part it belongs to. */
static const struct fota_conf_opt *find_opt(const struct fota_conf_set *set, const char *name,
                                            const struct fota_conf_part **part)
{
    for (size_t i = 0; i < set->n; i++)
        for (const struct fota_conf_opt *o = set->part[i].opts; o && o->name; o++)
            if (strcmp(o->name, name) == 0) {
                *part = &set->part[i];
                return o;
            }
    return NULL;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

static int parse_size(const char *s, uint64_t *out)
{
    char num[32];
    size_t i = 0;
    uint64_t v, mul = 1;

    while (s[i] >= '0' && s[i] <= '9' && i < sizeof(num) - 1) {
        num[i] = s[i];
        i++;
    }
    num[i] = '\0';
    if (i == 0 || parse_u64(num, &v))
        return -1;
    const char *suf = s + i;
    if (*suf == '\0' || strcasecmp(suf, "b") == 0)
        mul = 1;
    else if (strcasecmp(suf, "k") == 0 || strcasecmp(suf, "kib") == 0 || strcasecmp(suf, "kb") == 0)
        mul = 1024;
    else if (strcasecmp(suf, "m") == 0 || strcasecmp(suf, "mib") == 0 || strcasecmp(suf, "mb") == 0)
        mul = 1024 * 1024;
    else if (strcasecmp(suf, "g") == 0 || strcasecmp(suf, "gib") == 0 || strcasecmp(suf, "gb") == 0)
        mul = 1024ull * 1024 * 1024;
    else
        return -1;
    if (v > UINT64_MAX / mul)
        return -1;
    *out = v * mul;
    return 0;
}

/* Parses value into o's field of base. */
static int opt_set(const struct fota_conf_opt *o, void *base, const char *value, char *err,
                   size_t errlen)
{
    const char *name = o->name;
    char *field = (char *)base + o->offset;
    uint64_t v;

    switch (o->type) {
    case FOTA_CONF_T_STR:
        if (strlen(value) >= o->size) {
            seterr(err, errlen, "%s: longer than %zu characters", name, o->size - 1);
            return FOTA_ECONFIG;
        }
        memcpy(field, value, strlen(value) + 1);
        return 0;
    case FOTA_CONF_T_PORT:
        if (strcasecmp(value, "off") == 0) {
            *(int *)(void *)field = FOTA_PORT_OFF;
            return 0;
        }
        if (parse_u64(value, &v) || v > 65535) {
            seterr(err, errlen, "%s: \"%s\" is not a port (0..65535 or off)", name, value);
            return FOTA_ECONFIG;
        }
        *(int *)(void *)field = (int)v;
        return 0;
    case FOTA_CONF_T_UINT:
    case FOTA_CONF_T_SIZE:
        if ((o->type == FOTA_CONF_T_UINT ? parse_u64(value, &v) : parse_size(value, &v))) {
            seterr(err, errlen, "%s: \"%s\" is not a %s", name, value,
                   o->type == FOTA_CONF_T_UINT ? "number" : "size (e.g. 16M)");
            return FOTA_ECONFIG;
        }
        if (v < o->min || v > o->max) {
            seterr(err, errlen, "%s: %s is out of range %llu..%llu", name, value,
                   (unsigned long long)o->min, (unsigned long long)o->max);
            return FOTA_ECONFIG;
        }
        if (o->type == FOTA_CONF_T_UINT)
            *(unsigned *)(void *)field = (unsigned)v;
        else
            *(uint64_t *)(void *)field = v;
        return 0;
    case FOTA_CONF_T_LEVEL: {
        int lv = fota_log_level_parse(value);
        if (lv < 0) {
            seterr(err, errlen, "%s: \"%s\" is not one of debug, info, warn, error", name, value);
            return FOTA_ECONFIG;
        }
        *(int *)(void *)field = lv;
        return 0;
    }
    }
    seterr(err, errlen, "%s: bad table entry", name);
    return FOTA_ECONFIG;
}

#define NEAREST_MAX 63   /* longer words are nobody's typo */

/* Optimal string alignment distance of a and b (both at most NEAREST_MAX). */
static size_t osa_distance(const char *a, size_t la, const char *b, size_t lb)
{
    size_t d[NEAREST_MAX + 1][NEAREST_MAX + 1];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v)
                v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[la][lb];
}

const char *fota_config_nearest(const char *word, const char *const *names, size_t n)
{
    size_t lw = strlen(word), best_d = 3;
    const char *best = NULL;
    if (lw == 0 || lw > NEAREST_MAX)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        size_t ln = strlen(names[i]);
        /* The distance is at least the difference in length: a name that
         * much longer or shorter cannot beat best_d (no table to fill). */
        if (ln > NEAREST_MAX || (ln > lw ? ln - lw : lw - ln) >= best_d)
            continue;
        size_t dist = osa_distance(word, lw, names[i], ln);
        if (dist < best_d && 2 * dist < lw) {
            best_d = dist;
            best = names[i];
        }
    }
    return best;
}

/* The option name closest to name (see fota_config_nearest), or NULL. */
static const char *nearest_opt(const struct fota_conf_set *set, const char *name)
{
    const char *names[256];
    size_t n = 0;
    for (size_t i = 0; i < set->n; i++)
        for (const struct fota_conf_opt *o = set->part[i].opts; o->name && n < 256; o++)
            names[n++] = o->name;
    return fota_config_nearest(name, names, n);
}

/* ": did you mean NAME?" for an unknown option, "" without a near one;
 * flag: the name as a --flag. */
static const char *did_you_mean(const struct fota_conf_set *set, const char *name, int flag,
                                char *out, size_t cap)
{
    char key[NEAREST_MAX + 1];
    size_t i = 0;
    for (; name[i] && name[i] != '=' && i < NEAREST_MAX; i++)
        key[i] = name[i] == '-' ? '_' : name[i];
    key[i] = '\0';
    const char *near = nearest_opt(set, key);
    out[0] = '\0';
    if (!near)
        return out;
    snprintf(out, cap, ": did you mean %s", flag ? "--" : "");
    size_t used = strlen(out);
    for (size_t k = 0; near[k] && used + 3 < cap; k++)
        out[used++] = flag && near[k] == '_' ? '-' : near[k];
    out[used] = '\0';
    snprintf(out + used, cap - used, "?");
    return out;
}

int fota_config_set(const struct fota_conf_set *set, const char *name, const char *value,
                    char *err, size_t errlen)
{
    const struct fota_conf_part *part;
    const struct fota_conf_opt *o = find_opt(set, name, &part);

    if (!o) {
        char dym[NEAREST_MAX + 32];
        seterr(err, errlen, "unknown option %s%s", name,
               did_you_mean(set, name, 0, dym, sizeof(dym)));
        return FOTA_ECONFIG;
    }
    return opt_set(o, part->base, value, err, errlen);
}

void fota_config_defaults(const struct fota_conf_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        for (const struct fota_conf_opt *o = set->part[i].opts; o && o->name; o++) {
            int r = opt_set(o, set->part[i].base, o->def, NULL, 0);
            (void)r; /* every default is checked by unit.config_test */
        }
}

struct ini_ctx {
    const struct fota_conf_set *set;
    char *err;
    size_t errlen;
    int failed;
};

static int conf_ini_handler(void *user, const char *section, const char *name, const char *value)
{
    struct ini_ctx *x = user;
    char msg[256];

    if (x->failed)
        return 0;
    if (section[0] && strcmp(section, "fotad") != 0) {
        seterr(x->err, x->errlen, "unknown section [%s] (use top level or [fotad])", section);
        x->failed = 1;
        return 0;
    }
    if (fota_config_set(x->set, name, value, msg, sizeof(msg))) {
        seterr(x->err, x->errlen, "%s", msg);
        x->failed = 1;
        return 0;
    }
    return 1;
}

int fota_config_load_stream(const struct fota_conf_set *set, FILE *f, const char *name,
                            char *err, size_t errlen)
{
    char msg[300] = "";
    struct ini_ctx x = { set, msg, sizeof(msg), 0 };

    int line = ini_parse_file(f, conf_ini_handler, &x);
    if (line != 0) {
        seterr(err, errlen, "%s:%d: %s", name, line, msg[0] ? msg : "syntax error");
        return FOTA_ECONFIG;
    }
    return 0;
}

int fota_config_load_file(const struct fota_conf_set *set, const char *path, char *err,
                          size_t errlen)
{
    FILE *f = fopen(path, "r");

    if (!f) {
        seterr(err, errlen, "%s: %s", path, strerror(errno));
        return FOTA_EIO;
    }
    int r = fota_config_load_stream(set, f, path, err, errlen);
    fclose(f);
    return r;
}

int fota_config_check_core(const void *conf, char *err, size_t errlen)
{
    const struct fota_config *c = conf;

    if (c->data_dir[0] == '\0') {
        seterr(err, errlen, "data: must not be empty");
        return FOTA_ECONFIG;
    }
    if (strcmp(c->store, "sqlite") != 0 &&
        (strncmp(c->store, FOTA_CONF_STORE_PG, strlen(FOTA_CONF_STORE_PG)) != 0 ||
         c->store[strlen(FOTA_CONF_STORE_PG)] == '\0')) {
        seterr(err, errlen,
               "store: \"%s\" is not a store fotad has (sqlite, postgresql:DSN)", c->store);
        return FOTA_ECONFIG;
    }
    if (c->bind[0] == '\0') {
        seterr(err, errlen, "bind: must not be empty");
        return FOTA_ECONFIG;
    }
    struct sockaddr_storage ss;
    socklen_t sl;
    if (fota_addr_parse(c->bind, 0, &ss, &sl, NULL, 0) != 0) {
        seterr(err, errlen, "bind: \"%s\" is not a numeric IPv4 or IPv6 address", c->bind);
        return FOTA_ECONFIG;
    }
    if ((c->tls_cert[0] != '\0') != (c->tls_key[0] != '\0')) {
        seterr(err, errlen, "tls_cert and tls_key must be set together");
        return FOTA_ECONFIG;
    }
    return 0;
}

/* The value of a PORT row. */
static int port_of(const struct fota_conf_part *p, const struct fota_conf_opt *o)
{
    return *(const int *)(const void *)((const char *)p->base + o->offset);
}

int fota_config_check(const struct fota_conf_set *set, char *err, size_t errlen)
{
    for (size_t i = 0; i < set->n; i++) {
        const struct fota_conf_part *p = &set->part[i];
        int r = p->check ? p->check(p->base, err, errlen) : 0;
        if (r)
            return r;
    }
    /* Every PORT row of every part against every later one. */
    for (size_t i = 0; i < set->n; i++)
        for (const struct fota_conf_opt *a = set->part[i].opts; a && a->name; a++) {
            if (a->type != FOTA_CONF_T_PORT || port_of(&set->part[i], a) <= 0)
                continue;
            int pa = port_of(&set->part[i], a), later = 0;
            for (size_t j = i; j < set->n; j++)
                for (const struct fota_conf_opt *b = set->part[j].opts; b && b->name; b++) {
                    if (b == a) {
                        later = 1;
                        continue;
                    }
                    if (later && b->type == FOTA_CONF_T_PORT && port_of(&set->part[j], b) == pa) {
                        seterr(err, errlen, "port %d is configured twice (%s, %s)", pa, a->name,
                               b->name);
                        return FOTA_ECONFIG;
                    }
                }
        }
    return 0;
}

/* "--http-port" -> "http_port"; NULL if not an option flag. */
static const struct fota_conf_opt *flag_opt(const struct fota_conf_set *set, const char *arg,
                                            const char **inline_val)
{
    const struct fota_conf_part *part;
    char name[64];
    size_t i = 0;

    *inline_val = NULL;
    if (strncmp(arg, "--", 2) != 0)
        return NULL;
    arg += 2;
    while (arg[i] && arg[i] != '=' && i < sizeof(name) - 1) {
        name[i] = arg[i] == '-' ? '_' : arg[i];
        i++;
    }
    name[i] = '\0';
    if (arg[i] == '=')
        *inline_val = arg + i + 1;
    return find_opt(set, name, &part);
}

int fota_config_from_args(const struct fota_conf_set *set, struct fota_cmdline *cl, int argc,
                          char **argv, char *err, size_t errlen)
{
    int r;

    memset(cl, 0, sizeof(*cl));
    fota_config_defaults(set);
    /* Pass 1: the plain switches and -c. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
            if (i + 1 >= argc) {
                seterr(err, errlen, "%s needs a file name", a);
                return FOTA_ECONFIG;
            }
            cl->config_file = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            cl->config_file = a + 9;
        } else if (strcmp(a, "-t") == 0 || strcmp(a, "--test-config") == 0) {
            cl->test_only = 1;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            cl->help = 1;
        } else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            cl->version = 1;
        } else if (strcmp(a, "--config-doc") == 0) {
            cl->config_doc = 1;
        } else {
            const char *iv;
            const struct fota_conf_opt *o = flag_opt(set, a, &iv);
            if (!o) {
                char dym[NEAREST_MAX + 32];
                seterr(err, errlen, "unknown argument %s%s (see --help)", a,
                       strncmp(a, "--", 2) == 0 ? did_you_mean(set, a + 2, 1, dym, sizeof(dym))
                                                : "");
                return FOTA_ECONFIG;
            }
            if (!iv) {
                if (i + 1 >= argc) {
                    seterr(err, errlen, "%s needs a value", a);
                    return FOTA_ECONFIG;
                }
                i++;
            }
        }
    }
    if (cl->help || cl->version || cl->config_doc)
        return 0;
    if (cl->config_file) {
        r = fota_config_load_file(set, cl->config_file, err, errlen);
        if (r)
            return r;
    }
    /* Pass 2: flags override the file. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *iv;
        if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
            i++;
            continue;
        }
        const struct fota_conf_opt *o = flag_opt(set, a, &iv);
        if (!o)
            continue;
        const char *val = iv ? iv : argv[++i];
        r = fota_config_set(set, o->name, val, err, errlen);
        if (r)
            return r;
    }
    return fota_config_check(set, err, errlen);
}

static void flag_name(const struct fota_conf_opt *o, char *buf, size_t len)
{
    size_t i;
    for (i = 0; o->name[i] && i + 1 < len; i++)
        buf[i] = o->name[i] == '_' ? '-' : o->name[i];
    buf[i] = '\0';
}

static const char *type_hint(int t)
{
    switch (t) {
    case FOTA_CONF_T_PORT: return "PORT/off";
    case FOTA_CONF_T_UINT: return "N";
    case FOTA_CONF_T_SIZE: return "SIZE";
    case FOTA_CONF_T_LEVEL: return "LEVEL";
    default: return "TEXT";
    }
}

void fota_config_usage(FILE *f, const char *prog, const struct fota_conf_set *set)
{
    char fl[64];
    fprintf(f, "usage: %s [-c FILE] [-t] [--OPTION VALUE ...]\n"
               "       %s legacy -fw1 user1.bin -fw2 user2.bin [...]   (drop-in DFU server)\n"
               "       %s backup [-c FILE] [--data DIR] ARCHIVE|-   (docs/backup.md)\n"
               "       %s restore [-c FILE] [--data DIR] [--force] ARCHIVE|-\n\n"
               "  -c, --config FILE   INI file (keys at top level or in [fotad])\n"
               "  -t, --test-config   check the configuration and exit\n"
               "  -V, --version       print the version\n"
               "  --config-doc        print the option reference (markdown)\n\n"
               "Options (flags override the file):\n", prog, prog, prog, prog);
    for (size_t i = 0; i < set->n; i++)
        for (const struct fota_conf_opt *o = set->part[i].opts; o && o->name; o++) {
            flag_name(o, fl, sizeof(fl));
            fprintf(f, "  --%-20s %-9s %s (default: %s)\n", fl, type_hint(o->type), o->help,
                    o->def[0] ? o->def : "\"\"");
        }
}

void fota_config_doc(FILE *f, const struct fota_conf_set *set)
{
    char fl[64];
    fprintf(f, "# fotad configuration\n\n"
               "<!-- Generated by `fotad --config-doc` from the option tables of core\n"
               "     (server/core/config.c) and of each module (its struct fota_module);\n"
               "     edit the tables, not this file. -->\n\n"
               "fotad reads an INI file given with `-c FILE` (keys at top level or in a\n"
               "`[fotad]` section; `;` and `#` start comments), then applies command-line\n"
               "flags, which win. `fotad -t -c FILE` checks the file and exits (status 0 when\n"
               "valid). Ports take a number, `0` for an ephemeral port (the bound port is logged\n"
               "as `listening proto=... addr=IP:PORT`) or `off`. Options marked *reload* are\n"
               "applied again when fotad receives SIGHUP; the others need a restart. Each\n"
               "option belongs to the part of fotad that uses it (its module).\n\n"
               "| key | flag | module | type | default | reload | meaning |\n"
               "|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < set->n; i++)
        for (const struct fota_conf_opt *o = set->part[i].opts; o && o->name; o++) {
            flag_name(o, fl, sizeof(fl));
            fprintf(f, "| `%s` | `--%s` | %s | %s | `%s` | %s | %s |\n", o->name, fl,
                    set->part[i].name, type_hint(o->type), o->def[0] ? o->def : "\"\"",
                    (o->flags & FOTA_CONF_RELOAD) ? "yes" : "no", o->help);
        }
    fprintf(f, "\nTypes: PORT/off = 0..65535 or `off`; N = decimal integer within the option's\n"
               "range; SIZE = bytes with optional `K`, `M`, `G` (binary) suffix; LEVEL = `debug`,\n"
               "`info`, `warn`, `error`.\n\n"
               "TLS: `https_port` and `device_tls_port` listen only when both `tls_cert` and\n"
               "`tls_key` are set.\n\n"
               "## Example\n\n"
               "`etc/fotad.conf.example` sets every option; check a file with\n"
               "`fotad -t -c etc/fotad.conf.example` and run with\n"
               "`fotad -c etc/fotad.conf.example --http-port 8080` (the flag wins).\n\n"
               "```ini\n[fotad]\ndata = /var/lib/fota\nbind = 0.0.0.0\nhttp_port = 80\n"
               "device_port = 8000\n;tls_cert = /etc/fota/cert.pem\n;tls_key = /etc/fota/key.pem\n"
               "max_upload = 16M\nlog_level = info\n```\n\n"
               "## Signals\n\n"
               "- `SIGTERM`, `SIGINT`: stop accepting, end live message streams, let in-flight\n"
               "  requests finish (at most `shutdown_grace` seconds), close the store cleanly,\n"
               "  exit 0. A second signal exits at once.\n"
               "- `SIGHUP`: re-read the file and flags and apply the options marked *reload*\n"
               "  (logged as `configuration reloaded changed=...`); the others keep their\n"
               "  values until a restart.\n"
               "- `SIGPIPE` is ignored.\n\n"
               "## Data directory\n\n"
               "`fotad.lock` (held while fotad runs: a second fotad on the same directory\n"
               "refuses to start and names the first one's pid), "
               "`fota.db` (SQLite, WAL), `blobs/sha256/xx/<sha256>` (firmware files),\n"
               "`blobs/tmp/` (uploads in progress; emptied at start), `owner.key` (the admin\n"
               "key, 0600, created at first start), `secret.key` (32 random bytes, 0600: device\n"
               "and product keys are derived from it, see docs/api.md). Back up all of it:\n"
               "`fotad backup [-c FILE] ARCHIVE` (or `fotactl backup`, `GET /v1/backup`) takes\n"
               "one consistent archive while fotad runs, `fotad restore [-c FILE] ARCHIVE`\n"
               "brings it back onto a new data dir (docs/backup.md). `fotad migrate --from\n"
               "sqlite:DIR --to postgresql:DSN --data NEWDIR` moves a fleet from a data dir's\n"
               "SQLite store into PostgreSQL (docs/store.md, \"Moving to PostgreSQL\").\n");
}

/* Copies one reloadable row's value if it changed; notes its name. */
static void reload_row(const struct fota_conf_opt *o, void *dst, const void *src, char *changed,
                       size_t changed_len, size_t *used)
{
    char *d = (char *)dst + o->offset;
    const char *s = (const char *)src + o->offset;
    if (memcmp(d, s, o->size) == 0)
        return;
    memcpy(d, s, o->size);
    if (changed_len && *used < changed_len) {
        int n = snprintf(changed + *used, changed_len - *used, "%s%s", *used ? "," : "", o->name);
        if (n > 0)
            *used += (size_t)n;
    }
}

void fota_config_apply_reloadable(const struct fota_conf_set *dst,
                                  const struct fota_conf_set *src, char *changed,
                                  size_t changed_len)
{
    size_t used = 0;
    if (changed_len)
        changed[0] = '\0';
    for (size_t i = 0; i < dst->n && i < src->n; i++)
        for (const struct fota_conf_opt *o = dst->part[i].opts; o && o->name; o++)
            if (o->flags & FOTA_CONF_RELOAD)
                reload_row(o, dst->part[i].base, src->part[i].base, changed, changed_len, &used);
}

const char *fota_config_port_str(int port, char *buf, size_t len)
{
    if (port == FOTA_PORT_OFF)
        snprintf(buf, len, "off");
    else
        snprintf(buf, len, "%d", port);
    return buf;
}
