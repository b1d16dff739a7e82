/* fotactl.c - main(): picks the subcommand from the dispatch table and hands
 * it the rest of argv. No command logic lives here. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"

#ifndef FOTA_VERSION
#define FOTA_VERSION "dev"
#endif

struct fota_cli_cmd {
    const char *name;
    int (*run)(int argc, char **argv);   /* argv[0] = name; returns the exit status */
    const char *help;                    /* one line */
};

static const struct fota_cli_cmd cmds[] = {
    { "image", fota_cli_image, "inspect, check and make ESP8266 firmware images" },
    /* REST commands: fota_cli_run finds the verb in cli/commands.c's table. */
    { "login", fota_cli_run, "check and store the server and key" },
    { "product", fota_cli_run, "create, list, show products" },
    { "release", fota_cli_run, "publish, list releases; show or set the current one" },
    { "device", fota_cli_run, "add, list, show devices; their key sector" },
    { "rollout", fota_cli_run, "upgrade a product's fleet; follow or cancel it" },
    { "upgrade", fota_cli_run, "tell a device to install a version" },
    { "reboot", fota_cli_run, "tell a device to reboot" },
    { "rpc", fota_cli_run, "send any action to a device" },
    { "messages", fota_cli_run, "list or follow messages" },
    { NULL, NULL, NULL }
};

static void usage(FILE *f)
{
    /* The REST commands' table lists every verb; the image lines follow. */
    fota_cli_help_all(f, fota_cli_image_help);
}

static const struct fota_cli_cmd *find(const char *name)
{
    const struct fota_cli_cmd *c;

    for (c = cmds; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

int main(int argc, char **argv)
{
    const struct fota_cli_cmd *c;

    if (argc >= 2 && fota_cli_hoist_globals(argc, argv) != 0)
        return 2;
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        (!strcmp(argv[1], "help") && argc == 2)) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("fotactl %s\n", FOTA_VERSION);
        return 0;
    }
    if (!strcmp(argv[1], "help")) {
        char help[] = "--help";
        char *sub[3] = { argv[2], help, NULL };

        if (!(c = find(argv[2]))) {
            fprintf(stderr, "fotactl: no command '%s' (see fotactl --help)\n", argv[2]);
            return 2;
        }
        return c->run(2, sub);
    }
    if (!(c = find(argv[1]))) {
        fprintf(stderr, "fotactl: no command '%s' (see fotactl --help)\n", argv[1]);
        return 2;
    }
    return c->run(argc - 1, argv + 1);
}
