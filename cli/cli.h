/* cli.h - entry points of fotactl's local subcommands (no server needed),
 * called from the dispatch table in fotactl.c. Each takes the subcommand's
 * argv (argv[0] is the subcommand name) and returns the process exit status:
 * 0 ok, 1 a file or image failed, 2 bad command line. */
#ifndef FOTA_CLI_CLI_H
#define FOTA_CLI_CLI_H

/* `fotactl image info|make|check ...` (cli/cmd_image.c, docs/image.md). */
int fota_cli_image(int argc, char **argv);

/* The image commands' lines for an overall help listing ("  image info ...\n"). */
extern const char fota_cli_image_help[];

#endif
