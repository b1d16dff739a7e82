/* ctx.h - what a REST command's handler gets (struct fota_cli_ctx: its
 * parsed command line, the resolved server and key, the API client) and
 * the helpers every handler shares: calls whose failure becomes one line
 * on stderr with a stable exit status, products and devices looked up by id
 * or name, and the usual endings of a command (a list, a sentence). */
#ifndef FOTA_CLI_CTX_H
#define FOTA_CLI_CTX_H

#include <stdint.h>
#include <jansson.h>

#include "api.h"
#include "args.h"
#include "cli.h"
#include "config.h"

struct fota_cli_list;

struct fota_cli_ctx {
    struct fota_cli_args args;      /* the command line (positionals: args.pos[0..npos)) */
    int json;                       /* --json */
    struct fota_cli_config conf;    /* server, key, CA file and where each came from */
    struct fota_cli_api *api;       /* open for commands with FOTA_CLI_CMD_SERVER */
};

/* The value of the command's option name ("" for a set flag), or NULL. */
const char *fota_cli_ctx_opt(const struct fota_cli_ctx *c, const char *name);

/* Reports a failed call (transport rc < 0 or non-2xx status) in one line and
 * returns the exit status; returns FOTA_CLI_EXIT_OK when the call succeeded.
 * what names the object for a 404 ("product 'lamp'"), may be NULL. */
int fota_cli_ctx_check(const struct fota_cli_ctx *c, int rc, const struct fota_cli_reply *r,
                       const char *what);

/* Calls and checks in one: on failure reports and returns the exit status
 * (r is cleaned up); on success returns 0 with r filled. */
int fota_cli_ctx_call(struct fota_cli_ctx *c, const char *method, const char *path, json_t *body,
                      struct fota_cli_reply *r, const char *what);

/* Resolves a product given as id or name to its id (GET /v1/products/ for a
 * name). Returns 0 or an exit status (already reported). */
int fota_cli_ctx_product_id(struct fota_cli_ctx *c, const char *ref, int64_t *id);

/* Every product's name into names, keyed by its id as text (GET
 * /v1/products/), for tables that show names instead of ids. Returns 0 or
 * an exit status (already reported). */
int fota_cli_ctx_product_names(struct fota_cli_ctx *c, json_t *names);

/* Resolves a device given as id or name (names are searched in every
 * product, or in product ref prod when not NULL). Returns 0 or an exit
 * status (already reported). */
int fota_cli_ctx_device_id(struct fota_cli_ctx *c, const char *ref, const char *prod,
                           int64_t *id);

/* Resolves the device the first positional argument names (id or name,
 * looked up in --product when given) and writes "device 'REF'" into what,
 * the name a 404 gets. Returns 0 or an exit status (reported). */
int fota_cli_ctx_device_arg(struct fota_cli_ctx *c, int64_t *id, char *what, size_t wcap);

/* Ends a list command: prints the whole reply with --json, else the elements
 * of rows (an array inside r->json, may be NULL) as the table l (cli/out.h;
 * ud goes to its cell formatters). Cleans r up. Returns 0, or an exit status
 * (reported). */
int fota_cli_ctx_print_list(struct fota_cli_ctx *c, struct fota_cli_reply *r, const json_t *rows,
                            const struct fota_cli_list *l, void *ud);

/* Ends a command that did one thing: prints the whole reply with --json,
 * else line; cleans r up. Returns 0. */
int fota_cli_ctx_done(struct fota_cli_ctx *c, struct fota_cli_reply *r, const char *line);

#endif
