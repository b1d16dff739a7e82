/* args.c - the one command-line parser of fotactl's REST commands: argv is
 * read against the command's option table and the common options, into
 * caller storage, with a sentence for whatever does not fit. */
#include "args.h"

#include <stdio.h>
#include <string.h>

#include "fota_err.h"

const struct fota_cli_opt fota_cli_args_common[] = {
    { "server", 0, "URL", "server base URL (overrides FOTA_SERVER and the config file)" },
    { "key", 0, "KEY", "API key (overrides FOTA_KEY and the config file)" },
    { "cacert", 0, "FILE", "CA certificates (PEM) for an https server with a private CA" },
    { "json", 0, NULL, "print the server's JSON reply instead of a table" },
    { "no-color", 0, NULL, "never colour the output" },
    { "help", 'h', NULL, "show this help" },
    { NULL, 0, NULL, NULL }
};

size_t fota_cli_args_count(const struct fota_cli_opt *opts)
{
    size_t n = 0;

    while (opts && opts[n].name)
        n++;
    return n;
}

const char *fota_cli_args_get(const struct fota_cli_args *a, const char *name)
{
    size_t i;

    for (i = 0; a->opts && a->opts[i].name; i++)
        if (strcmp(a->opts[i].name, name) == 0)
            return a->val[i];
    return NULL;
}

/* Finds --name (nlen bytes of name) or, when name is NULL, -sh among the
 * command's options (*index >= 0) or the common ones (*index = -1 - row).
 * Returns 0 when found, FOTA_ENOENT when not. */
static int find_opt(const struct fota_cli_opt *opts, const char *name, size_t nlen, char sh,
                    int *index, const struct fota_cli_opt **opt)
{
    const struct fota_cli_opt *tabs[2] = { opts, fota_cli_args_common };
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

static void set_common(struct fota_cli_args *a, const char *name, const char *val)
{
    if (strcmp(name, "server") == 0)
        a->server = val;
    else if (strcmp(name, "key") == 0)
        a->key = val;
    else if (strcmp(name, "cacert") == 0)
        a->cacert = val;
    else if (strcmp(name, "json") == 0)
        a->json = 1;
    else if (strcmp(name, "no-color") == 0)
        a->no_color = 1;
    else if (strcmp(name, "help") == 0)
        a->help = 1;
}

/* Reads the option at argv[*i] (its value may be the next word: *i moves
 * on). Returns 0 or FOTA_EINVAL with err filled. */
static int one_opt(struct fota_cli_args *a, int argc, char **argv, int *i, char *err,
                   size_t errlen)
{
    const char *arg = argv[*i], *val = NULL, *eq = NULL;
    const struct fota_cli_opt *o;
    int idx;

    if (arg[1] == '-') {
        eq = strchr(arg + 2, '=');
        if (find_opt(a->opts, arg + 2, eq ? (size_t)(eq - arg - 2) : strlen(arg + 2), 0, &idx,
                     &o) < 0) {
            snprintf(err, errlen, "unknown option %.*s (see --help)",
                     eq ? (int)(eq - arg) : (int)strlen(arg), arg);
            return FOTA_EINVAL;
        }
        if (eq)
            val = eq + 1;
    } else {
        if (find_opt(a->opts, NULL, 0, arg[1], &idx, &o) < 0) {
            snprintf(err, errlen, "unknown option %s (see --help)", arg);
            return FOTA_EINVAL;
        }
        if (arg[2])
            val = arg + 2;   /* -oFILE */
    }
    if (o->metavar && !val) {
        if (*i + 1 >= argc) {
            snprintf(err, errlen, "--%s needs a value (%s)", o->name, o->metavar);
            return FOTA_EINVAL;
        }
        val = argv[++*i];
    } else if (!o->metavar && val) {
        snprintf(err, errlen, "--%s takes no value", o->name);
        return FOTA_EINVAL;
    }
    if (idx >= 0)
        a->val[idx] = val ? val : "";
    else
        set_common(a, o->name, val);
    return 0;
}

int fota_cli_args_parse(struct fota_cli_args *a, const struct fota_cli_opt *opts, int argc,
                        char **argv, char *err, size_t errlen)
{
    int i, rc, only_pos = 0;

    memset(a, 0, sizeof(*a));
    a->opts = opts;
    if (fota_cli_args_count(opts) > FOTA_CLI_ARGS_MAX_OPTS) {
        snprintf(err, errlen, "internal: too many options");
        return FOTA_ETOOBIG;
    }
    for (i = 0; i < argc; i++) {
        char *arg = argv[i];

        if (!only_pos && strcmp(arg, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (only_pos || arg[0] != '-' || arg[1] == '\0') {
            if (a->npos >= FOTA_CLI_ARGS_MAX_POS) {
                snprintf(err, errlen, "too many arguments");
                return FOTA_EINVAL;
            }
            a->pos[a->npos++] = arg;
            continue;
        }
        rc = one_opt(a, argc, argv, &i, err, errlen);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int fota_cli_args_hoist(int argc, char **argv, char *err, size_t errlen)
{
    char *moved[FOTA_CLI_ARGS_MAX_POS];
    int i = 1, k = 0, j;

    while (i < argc && argv[i][0] == '-' && argv[i][1] == '-' && k + 2 <= FOTA_CLI_ARGS_MAX_POS) {
        const struct fota_cli_opt *o;
        const char *name = argv[i] + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);

        for (o = fota_cli_args_common; o->name; o++)
            if (strlen(o->name) == nlen && strncmp(o->name, name, nlen) == 0)
                break;
        if (!o->name || strcmp(o->name, "help") == 0)
            break;   /* not ours (or --help/--version): the caller handles it */
        moved[k++] = argv[i++];
        if (o->metavar && !eq) {
            if (i >= argc) {
                snprintf(err, errlen, "--%s needs a value (%s)", o->name, o->metavar);
                return FOTA_EINVAL;
            }
            moved[k++] = argv[i++];
        }
    }
    if (k == 0 || i >= argc)
        return 0;   /* nothing to move, or no command after them (the caller reports) */
    for (j = i; j < argc; j++)
        argv[j - k] = argv[j];
    for (j = 0; j < k; j++)
        argv[argc - k + j] = moved[j];
    return 0;
}
