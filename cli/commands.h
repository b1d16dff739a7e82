/* commands.h - the table of fotactl's REST commands (cli/commands.c): for
 * each `fotactl GROUP [VERB]`, its synopsis, one-line summary, options,
 * positional count and handler. The dispatcher, --help, the man page and the
 * bash completion all follow this one table. */
#ifndef FOTA_CLI_COMMANDS_H
#define FOTA_CLI_COMMANDS_H

#include "args.h"

struct fota_cli_ctx;

/* A command's handler: runs with its parsed line, server and client in
 * ctx (cli/ctx.h) and returns the exit status (cli/cli.h). */
typedef int (*fota_cli_cmd_fn)(struct fota_cli_ctx *ctx);

/* struct fota_cli_command.flags */
enum {
    FOTA_CLI_CMD_SERVER = 1,   /* resolve server and key and open the API client first */
    FOTA_CLI_CMD_LOGIN = 2,    /* the server and key are what it stores: both must be given */
    FOTA_CLI_CMD_LOCAL = 4     /* works on local files only: no server, key or client */
};

/* One row: `fotactl GROUP [VERB] ARGS...`. */
struct fota_cli_command {
    const char *group;                 /* "product" */
    const char *verb;                  /* "create"; NULL for one-word commands (upgrade) */
    const char *synopsis;              /* positional part: "NAME" */
    const char *summary;               /* one line for --help and the man page */
    const struct fota_cli_opt *opts;   /* {NULL}-terminated, at most FOTA_CLI_ARGS_MAX_OPTS rows */
    int min_args, max_args;            /* positional count; max -1 = any */
    unsigned flags;                    /* FOTA_CLI_CMD_* */
    fota_cli_cmd_fn run;
};

/* The whole table, terminated by a row whose group is NULL. */
extern const struct fota_cli_command fota_cli_commands[];

#endif
