/* dispatch.c - from argv to a running REST command: the row of the command
 * table, its parsed line, help, the server and key (checked for shape before
 * a request carries them), the API client, the handler. */
#include "dispatch.h"

#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "ctx.h"
#include "fota_err.h"
#include "help.h"
#include "out.h"

static const struct fota_cli_command *find_command(const char *group, const char *verb)
{
    const struct fota_cli_command *cmd;

    for (cmd = fota_cli_commands; cmd->group; cmd++)
        if (strcmp(cmd->group, group) == 0 &&
            ((!cmd->verb && !verb) || (cmd->verb && verb && strcmp(cmd->verb, verb) == 0)))
            return cmd;
    return NULL;
}

/* 1 if group's commands take a verb, 0 if not; *known = 0 for no such group. */
static int group_is_grouped(const char *group, int *known)
{
    const struct fota_cli_command *cmd;

    *known = 0;
    for (cmd = fota_cli_commands; cmd->group; cmd++)
        if (strcmp(cmd->group, group) == 0) {
            *known = 1;
            return cmd->verb != NULL;
        }
    return 0;
}

/* Resolves server, key and CA file, checks the key's shape and opens the
 * client. Returns 0 or an exit status (reported). */
static int open_client(struct fota_cli_ctx *c, const struct fota_cli_command *cmd)
{
    char err[FOTA_CLI_PATH_MAX + 64];

    if (fota_cli_config_load(&c->conf, c->args.server, c->args.key, c->args.cacert, err,
                             sizeof(err)) < 0)
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "%s", err);
    if ((cmd->flags & FOTA_CLI_CMD_LOGIN) && (!c->conf.server[0] || !c->conf.key[0]))
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "login needs --server URL and --key KEY "
                                 "(the admin key is in the server's DATA/owner.key)");
    if (!c->conf.server[0])
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "no server: run `fotactl login`, set "
                                 "FOTA_SERVER or pass --server");
    if (!c->conf.key[0])
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE,
                                 "no key: run `fotactl login`, set FOTA_KEY or pass --key");
    if (fota_cli_config_key_check(c->conf.key, err, sizeof(err)) < 0)
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "the key from %s is malformed (%s)",
                                 c->conf.key_from, err);
    c->api = fota_cli_api_new(c->conf.server, c->conf.key, c->conf.cacert);
    if (!c->api)
        return fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "cannot start libcurl");
    return 0;
}

/* Finds the command argv names; *skip = the words it took (1 or 2). NULL
 * when there is none or only the group was asked for: *status is then the
 * exit status (help printed or failure reported). */
static const struct fota_cli_command *pick(int argc, char **argv, int *skip, int *status)
{
    const struct fota_cli_command *cmd;
    const char *verb = NULL;
    int known, grouped;

    *skip = 1;
    grouped = group_is_grouped(argv[0], &known);
    if (!known) {
        *status = fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "no command '%s' (see fotactl --help)",
                                    argv[0]);
        return NULL;
    }
    if (grouped) {
        if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
            strcmp(argv[1], "help") == 0) {
            fota_cli_help_group(argc < 2 ? stderr : stdout, fota_cli_commands, argv[0]);
            *status = argc < 2 ? FOTA_CLI_EXIT_USAGE : FOTA_CLI_EXIT_OK;
            return NULL;
        }
        verb = argv[1];
        *skip = 2;
    }
    cmd = find_command(argv[0], verb);
    if (!cmd)
        *status = fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "unknown command '%s %s' (see fotactl "
                                    "%s --help)", argv[0], verb, argv[0]);
    return cmd;
}

int fota_cli_dispatch(int argc, char **argv)
{
    const struct fota_cli_command *cmd;
    struct fota_cli_ctx c;
    char err[256];
    int skip, rc;

    if (argc < 1)
        return FOTA_CLI_EXIT_USAGE;
    cmd = pick(argc, argv, &skip, &rc);
    if (!cmd)
        return rc;
    memset(&c, 0, sizeof(c));
    rc = fota_cli_args_parse(&c.args, cmd->opts, argc - skip, argv + skip, err, sizeof(err));
    if (rc < 0)
        return fota_cli_out_fail(rc == FOTA_EINVAL ? FOTA_CLI_EXIT_USAGE : FOTA_CLI_EXIT_FAIL,
                                 "%s", err);
    if (c.args.help) {
        fota_cli_help_command(stdout, cmd);
        return FOTA_CLI_EXIT_OK;
    }
    if (c.args.npos < cmd->min_args || (cmd->max_args >= 0 && c.args.npos > cmd->max_args)) {
        fota_cli_help_usage(stderr, cmd);
        return FOTA_CLI_EXIT_USAGE;
    }
    c.json = c.args.json;
    fota_cli_out_init(!c.args.no_color);
    if (cmd->flags & FOTA_CLI_CMD_SERVER) {
        rc = open_client(&c, cmd);
        if (rc != 0)
            return rc;
    }
    rc = cmd->run(&c);
    fota_cli_api_free(c.api);
    return rc;
}
