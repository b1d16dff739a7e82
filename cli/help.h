/* help.h - fotactl's help texts, printed from a command table (cli/commands.h)
 * so that what --help says is what the parser accepts. */
#ifndef FOTA_CLI_HELP_H
#define FOTA_CLI_HELP_H

#include <stdio.h>

#include "commands.h"

/* "usage: fotactl GROUP VERB SYNOPSIS [options]" and a newline. */
void fota_cli_help_usage(FILE *f, const struct fota_cli_command *cmd);

/* One command's help: usage, summary, its options, the common options. */
void fota_cli_help_command(FILE *f, const struct fota_cli_command *cmd);

/* A group's help: the verbs of group in table with their summaries. */
void fota_cli_help_group(FILE *f, const struct fota_cli_command *table, const char *group);

/* The overall help: every row of table, then extra (lines for commands
 * outside the table, such as `image`; may be NULL), then the common
 * options. */
void fota_cli_help_all(FILE *f, const struct fota_cli_command *table, const char *extra);

#endif
