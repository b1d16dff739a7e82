/* help.c - help texts from the command table: the overall listing, a
 * group's verbs, one command's usage and options. */
#include "help.h"

#include <string.h>

/* 1 when table has a row named name. */
static int has_opt(const struct fota_cli_opt *table, const char *name)
{
    for (; table && table->name; table++)
        if (strcmp(table->name, name) == 0)
            return 1;
    return 0;
}

/* What a local command (FOTA_CLI_CMD_LOCAL) has no use for. */
static const struct fota_cli_opt server_opts[] = {
    { "server", 0, NULL, NULL }, { "key", 0, NULL, NULL }, { "cacert", 0, NULL, NULL },
    { NULL, 0, NULL, NULL }
};

/* The rows of o, except those named in skip (may be NULL). */
static void print_opts(FILE *f, const struct fota_cli_opt *o, const struct fota_cli_opt *skip)
{
    char left[64];

    for (; o && o->name; o++) {
        if (has_opt(skip, o->name))
            continue;
        if (o->short_name)
            snprintf(left, sizeof(left), "-%c, --%s%s%s", o->short_name, o->name,
                     o->metavar ? " " : "", o->metavar ? o->metavar : "");
        else
            snprintf(left, sizeof(left), "    --%s%s%s", o->name, o->metavar ? " " : "",
                     o->metavar ? o->metavar : "");
        fprintf(f, "  %-26s %s\n", left, o->help);
    }
}

void fota_cli_help_usage(FILE *f, const struct fota_cli_command *cmd)
{
    fprintf(f, "usage: fotactl %s%s%s%s%s [options]\n", cmd->group, cmd->verb ? " " : "",
            cmd->verb ? cmd->verb : "", cmd->synopsis[0] ? " " : "", cmd->synopsis);
}

void fota_cli_help_command(FILE *f, const struct fota_cli_command *cmd)
{
    fota_cli_help_usage(f, cmd);
    fprintf(f, "\n%s\n", cmd->summary);
    if (fota_cli_args_count(cmd->opts) > 0) {
        fprintf(f, "\noptions:\n");
        print_opts(f, cmd->opts, NULL);
    }
    /* a local command has no server, and its own --key is a file (release sign) */
    fprintf(f, "\ncommon options:\n");
    print_opts(f, fota_cli_args_common, (cmd->flags & FOTA_CLI_CMD_LOCAL) ? server_opts : NULL);
}

void fota_cli_help_group(FILE *f, const struct fota_cli_command *table, const char *group)
{
    const struct fota_cli_command *cmd;

    fprintf(f, "usage: fotactl %s COMMAND [options]\n\ncommands:\n", group);
    for (cmd = table; cmd->group; cmd++)
        if (strcmp(cmd->group, group) == 0)
            fprintf(f, "  %-12s %s\n", cmd->verb, cmd->summary);
    fprintf(f, "\n`fotactl %s COMMAND --help` shows a command's options.\n", group);
}

void fota_cli_help_all(FILE *f, const struct fota_cli_command *table, const char *extra)
{
    const struct fota_cli_command *cmd;
    char name[40];

    fprintf(f, "usage: fotactl COMMAND [options]\n\n"
               "fotactl drives a fota server's REST API (and builds and inspects firmware "
               "images).\n\ncommands:\n");
    for (cmd = table; cmd->group; cmd++) {
        snprintf(name, sizeof(name), "%s%s%s", cmd->group, cmd->verb ? " " : "",
                 cmd->verb ? cmd->verb : "");
        fprintf(f, "  %-19s %s\n", name, cmd->summary);
    }
    if (extra)
        fputs(extra, f);
    fprintf(f, "\ncommon options:\n");
    print_opts(f, fota_cli_args_common, NULL);
    fprintf(f, "\nServer and key come from --server/--key, else FOTA_SERVER/FOTA_KEY, else the "
               "file\n`fotactl login` writes. `fotactl COMMAND --help` shows a command's options;\n"
               "man fotactl has the rest.\n");
}
