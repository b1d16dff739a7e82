/* fotactl.c - main(): the common options that precede a command, the
 * overall help and version, then the command: `image` (local, cli/cmd_image.c)
 * or a REST command (cli/dispatch.c). No command logic lives here. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"
#include "commands.h"
#include "dispatch.h"
#include "help.h"
#include "out.h"

#ifndef FOTA_VERSION
#define FOTA_VERSION "dev"
#endif

static void usage(FILE *f)
{
    /* The REST commands' table lists every verb; the image lines follow. */
    fota_cli_help_all(f, fota_cli_commands, fota_cli_cmd_image_help);
}

/* argv[0] is the command's name. */
static int run(int argc, char **argv)
{
    if (strcmp(argv[0], "image") == 0)
        return fota_cli_cmd_image(argc, argv);
    return fota_cli_dispatch(argc, argv);
}

int main(int argc, char **argv)
{
    char err[256];

    if (argc >= 2 && fota_cli_args_hoist(argc, argv, err, sizeof(err)) < 0)
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "%s", err);
    if (argc < 2) {
        usage(stderr);
        return FOTA_CLI_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        (!strcmp(argv[1], "help") && argc == 2)) {
        usage(stdout);
        return FOTA_CLI_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("fotactl %s\n", FOTA_VERSION);
        return FOTA_CLI_EXIT_OK;
    }
    if (!strcmp(argv[1], "help")) {
        char help[] = "--help";
        char *sub[3] = { argv[2], help, NULL };

        return run(2, sub);
    }
    return run(argc - 1, argv + 1);
}
