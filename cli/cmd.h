/* cmd.h - fotactl's command table and what every command shares: option
 * parsing from the table (so --help, the man page synopsis and completion
 * agree), the resolved server/key and API client, error reporting with
 * stable exit statuses, and product/device lookups by id or name. */
#ifndef FOTA_CLI_CMD_H
#define FOTA_CLI_CMD_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "api.h"
#include "config.h"

/* Exit statuses (documented in docs/fotactl.1). */
enum {
    FOTA_CLI_EXIT_OK = 0,
    FOTA_CLI_EXIT_FAIL = 1,      /* refused by the server (4xx/5xx), bad local file or image */
    FOTA_CLI_EXIT_USAGE = 2,     /* bad command line */
    FOTA_CLI_EXIT_AUTH = 3,      /* 401/403: the key was refused / not allowed */
    FOTA_CLI_EXIT_NOTFOUND = 4,  /* 404: no such product/device/release */
    FOTA_CLI_EXIT_CONNECT = 5    /* no reply: connection refused, DNS, timeout */
};

#define FOTA_CLI_MAX_OPTS 16
#define FOTA_CLI_MAX_ARGS 64

struct fota_cli_opt {
    const char *name;        /* long name without "--" */
    char short_name;         /* 'o' for -o, 0 for none */
    const char *metavar;     /* "V" when it takes a value, NULL for a flag */
    const char *help;
};

struct fota_cli_ctx;
typedef int (*fota_cli_run_fn)(struct fota_cli_ctx *ctx);

/* One row of the command table: `fotactl GROUP [VERB] ARGS...`. */
struct fota_cli_verb {
    const char *group;                 /* "product" */
    const char *verb;                  /* "create"; NULL for one-word commands (upgrade) */
    const char *synopsis;              /* positional part: "NAME" */
    const char *summary;               /* one line for --help and the man page */
    const struct fota_cli_opt *opts;   /* terminated by a {NULL} row; may be NULL */
    int min_args, max_args;            /* positional count; max -1 = any */
    int needs_server;                  /* 1: resolve server/key and open the client */
    fota_cli_run_fn run;
};

/* The whole table (cli/commands.c), terminated by a {NULL} row. */
extern const struct fota_cli_verb fota_cli_verbs[];
/* Options every command accepts (--server, --key, --json, --no-color, --help). */
extern const struct fota_cli_opt fota_cli_global_opts[];

struct fota_cli_ctx {
    const struct fota_cli_verb *verb;
    char *args[FOTA_CLI_MAX_ARGS];     /* positionals (borrowed from argv) */
    int nargs;
    const char *val[FOTA_CLI_MAX_OPTS];/* per verb->opts row: value, "" for a set flag, NULL unset */
    int json;                          /* --json */
    struct fota_cli_conf conf;
    struct fota_cli_api *api;          /* open when verb->needs_server */
};

/* Runs `fotactl GROUP ...`: argv[0] is the group ("product"), argv[1] the
 * verb for grouped commands. Handles --help at every level. Returns the exit
 * status. */
int fota_cli_run(int argc, char **argv);

/* `fotactl --server URL --json product list`: moves the common options
 * (--server, --key, --cacert, --json, --no-color) that precede the command to
 * the end of argv, where every REST command accepts them. argv[0] is the
 * program. Returns 0, or FOTA_CLI_EXIT_USAGE (reported) for an option
 * without its value. */
int fota_cli_hoist_globals(int argc, char **argv);

/* Prints the overall help (every row of the table, plus extra lines such as
 * the image command's, which the caller passes; may be NULL) to f. */
void fota_cli_help_all(FILE *f, const char *extra);

/* The value of option name ("" for a set flag), or NULL when not given. */
const char *fota_cli_opt(const struct fota_cli_ctx *c, const char *name);

/* Prints "fotactl: <reason>" on stderr and returns status. */
int fota_cli_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reports a failed call (transport rc < 0 or non-2xx status) in one line and
 * returns the exit status; returns FOTA_CLI_EXIT_OK when the call succeeded.
 * what names the object for a 404 ("product 'lamp'"), may be NULL. */
int fota_cli_check(const struct fota_cli_ctx *c, int rc, const struct fota_cli_reply *r,
                   const char *what);

/* Calls and checks in one: on failure reports and returns the exit status
 * (r is cleaned up); on success returns 0 with r filled. */
int fota_cli_call(struct fota_cli_ctx *c, const char *method, const char *path, json_t *body,
                  struct fota_cli_reply *r, const char *what);

/* Resolves a product given as id or name to its id (GET /v1/products/ for a
 * name). Returns 0 or an exit status (already reported). */
int fota_cli_product_id(struct fota_cli_ctx *c, const char *ref, int64_t *id);

/* Resolves a device given as id or name (names are searched in every
 * product, or in product ref prod when not NULL). Returns 0 or an exit
 * status (already reported). */
int fota_cli_device_id(struct fota_cli_ctx *c, const char *ref, const char *prod, int64_t *id);

/* The list in a reply: member name if it is an array, else the reply itself
 * if it is an array, else its first array member; NULL if none. Borrowed. */
json_t *fota_cli_array(json_t *reply, const char *name);
/* Member name if it is an object, else the reply itself. Borrowed. */
json_t *fota_cli_object(json_t *reply, const char *name);

struct fota_cli_list;
/* Ends a list command: prints the whole reply with --json, else the elements
 * of rows (an array inside r->json, may be NULL) as the table l (cli/out.h;
 * ud goes to its cell formatters). Cleans r up. Returns 0, or an exit status
 * (reported). */
int fota_cli_print_list(struct fota_cli_ctx *c, struct fota_cli_reply *r, const json_t *rows,
                        const struct fota_cli_list *l, void *ud);

/* Reads a whole local file (at most max bytes). Returns 0, or an exit status
 * after reporting "cannot read FILE (reason)". *data is malloc'ed. */
int fota_cli_read_file(const char *path, size_t max, uint8_t **data, size_t *len);

/* Command entry points (cmd_*.c). */
int fota_cli_login(struct fota_cli_ctx *c);
int fota_cli_product_create(struct fota_cli_ctx *c);
int fota_cli_product_list(struct fota_cli_ctx *c);
int fota_cli_product_show(struct fota_cli_ctx *c);
int fota_cli_release_publish(struct fota_cli_ctx *c);
int fota_cli_release_list(struct fota_cli_ctx *c);
int fota_cli_release_current(struct fota_cli_ctx *c);
int fota_cli_release_show(struct fota_cli_ctx *c);
int fota_cli_release_download(struct fota_cli_ctx *c);
int fota_cli_device_add(struct fota_cli_ctx *c);
int fota_cli_device_list(struct fota_cli_ctx *c);
int fota_cli_device_show(struct fota_cli_ctx *c);
int fota_cli_device_key(struct fota_cli_ctx *c);
int fota_cli_device_commands(struct fota_cli_ctx *c);
int fota_cli_device_rotate(struct fota_cli_ctx *c);
int fota_cli_upgrade(struct fota_cli_ctx *c);
int fota_cli_reboot(struct fota_cli_ctx *c);
int fota_cli_rpc(struct fota_cli_ctx *c);
int fota_cli_messages(struct fota_cli_ctx *c);
int fota_cli_release_delete(struct fota_cli_ctx *c);
int fota_cli_device_delete(struct fota_cli_ctx *c);
int fota_cli_product_delete(struct fota_cli_ctx *c);
int fota_cli_rollout_start(struct fota_cli_ctx *c);
int fota_cli_rollout_list(struct fota_cli_ctx *c);
int fota_cli_rollout_show(struct fota_cli_ctx *c);
int fota_cli_rollout_cancel(struct fota_cli_ctx *c);

#endif
