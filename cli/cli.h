/* cli.h - fotactl's exit statuses, the one contract every part of it keeps
 * with scripts (documented in docs/fotactl.1, EXIT STATUS). */
#ifndef FOTA_CLI_CLI_H
#define FOTA_CLI_CLI_H

enum {
    FOTA_CLI_EXIT_OK = 0,
    FOTA_CLI_EXIT_FAIL = 1,      /* refused by the server (4xx/5xx), bad local file or image */
    FOTA_CLI_EXIT_USAGE = 2,     /* bad command line, or no usable server/key */
    FOTA_CLI_EXIT_AUTH = 3,      /* 401/403: the key was refused / not allowed */
    FOTA_CLI_EXIT_NOTFOUND = 4,  /* 404: no such product/device/release */
    FOTA_CLI_EXIT_CONNECT = 5    /* no reply: connection refused, DNS, timeout, not HTTP */
};

#endif
