/* args.h - fotactl's command-line grammar: a command's options are a table
 * (struct fota_cli_opt rows), and one parser reads argv against that table
 * plus the common options every REST command takes, so --help, the man
 * page and the completion describe exactly what is accepted. Pure: no
 * output, no globals; a bad command line comes back as one sentence. */
#ifndef FOTA_CLI_ARGS_H
#define FOTA_CLI_ARGS_H

#include <stddef.h>

#define FOTA_CLI_ARGS_MAX_OPTS 24   /* rows of one command's table */
#define FOTA_CLI_ARGS_MAX_POS  64   /* positional arguments */

/* One option. A table of them ends with a row whose name is NULL. */
struct fota_cli_opt {
    const char *name;        /* long name without "--" */
    char short_name;         /* 'o' for -o, 0 for none */
    const char *metavar;     /* "V" when it takes a value, NULL for a flag */
    const char *help;        /* one line */
};

/* The common options: --server, --key, --cacert, --json, --no-color, --help. */
extern const struct fota_cli_opt fota_cli_args_common[];

/* A parsed command line. Every string is borrowed from argv. */
struct fota_cli_args {
    const struct fota_cli_opt *opts;          /* the command's table (borrowed, may be NULL) */
    char *pos[FOTA_CLI_ARGS_MAX_POS];         /* positionals, in order */
    int npos;
    const char *val[FOTA_CLI_ARGS_MAX_OPTS];  /* per opts row: value, "" for a flag, NULL unset */
    const char *server, *key, *cacert;        /* common options with a value; NULL unset */
    int json, no_color, help;                 /* common flags */
};

/* Rows in a table (0 for NULL). */
size_t fota_cli_args_count(const struct fota_cli_opt *opts);

/* Parses argv[0..argc) (no program or command name in it) against opts and
 * the common options into *a (a row of opts shadows a common option of the
 * same name: `release sign --key` is its private key, not the API key):
 * --name, --name=value, --name value, -x, -xVALUE, -x value; "--" ends the options; "-" alone is a positional. Returns 0;
 * FOTA_EINVAL for an unknown option, a missing value, a value given to a
 * flag or too many positionals (err gets the sentence, e.g. "--version
 * needs a value (V)"); FOTA_ETOOBIG when opts has more than
 * FOTA_CLI_ARGS_MAX_OPTS rows. */
int fota_cli_args_parse(struct fota_cli_args *a, const struct fota_cli_opt *opts, int argc,
                        char **argv, char *err, size_t errlen);

/* The value of the command's option name ("" for a set flag), or NULL when
 * it was not given or the table has no such row. */
const char *fota_cli_args_get(const struct fota_cli_args *a, const char *name);

/* `fotactl --server URL --json product list`: moves the common options that
 * precede the command (argv[1]...; argv[0] is the program) to the end of
 * argv, where every REST command accepts them. --help stays in place (the
 * caller handles it). Returns 0, or FOTA_EINVAL for such an option without
 * its value (err gets the sentence). */
int fota_cli_args_hoist(int argc, char **argv, char *err, size_t errlen);

#endif
