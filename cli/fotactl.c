/* fotactl.c - main(): picks the subcommand from the dispatch table and hands
 * it the rest of argv. No command logic lives here. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

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
    { NULL, NULL, NULL }
};

static void usage(FILE *f)
{
    const struct fota_cli_cmd *c;

    fprintf(f, "usage: fotactl COMMAND [ARGS...]\n\ncommands:\n");
    for (c = cmds; c->name; c++)
        fprintf(f, "  %-10s %s\n", c->name, c->help);
    fprintf(f, "  %-10s %s\n", "help", "this text, or `fotactl help COMMAND`");
    fprintf(f, "\n%s", fota_cli_image_help);
    fprintf(f, "\n`fotactl COMMAND --help` shows a command's options.\n");
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
