/* dispatch.h - runs one of fotactl's REST commands: finds its row in the
 * command table, parses its line, answers --help, resolves server and key,
 * opens the API client and calls the handler. */
#ifndef FOTA_CLI_DISPATCH_H
#define FOTA_CLI_DISPATCH_H

/* Runs `fotactl GROUP ...`: argv[0] is the group ("product"), argv[1] the
 * verb for grouped commands. Handles --help at every level. Returns the
 * exit status (cli/cli.h); every failure is reported on stderr. */
int fota_cli_dispatch(int argc, char **argv);

#endif
