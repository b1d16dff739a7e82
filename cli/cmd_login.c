/* cmd_login.c - `fotactl login`: checks a server and key with one request
 * and stores them for the next commands (cli/config.h). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "cmd.h"
#include "out.h"

int fota_cli_cmd_login(struct fota_cli_ctx *c)
{
    struct fota_cli_reply r;
    char path[FOTA_CLI_PATH_MAX], err[FOTA_CLI_PATH_MAX + 64], cacert[PATH_MAX];
    int rc, st, not_admin = 0;

    if (!fota_cli_ctx_opt(c, "no-check")) {
        /* Listing products needs the admin key: the cheapest proof it works. */
        rc = fota_cli_api_call(c->api, "GET", "/v1/products/", NULL, &r);
        if (rc == 0 && r.status == 403) {
            not_admin = 1;
        } else {
            st = fota_cli_ctx_check(c, rc, &r, NULL);
            if (st != 0) {
                fota_cli_reply_cleanup(&r);
                return st;
            }
        }
        fota_cli_reply_cleanup(&r);
    }
    /* A relative CA path would break as soon as fotactl runs elsewhere. */
    if (c->conf.cacert[0] && !realpath(c->conf.cacert, cacert))
        return fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "cannot find %s", c->conf.cacert);
    if (fota_cli_config_save(fota_cli_api_server(c->api), c->conf.key,
                             c->conf.cacert[0] ? cacert : NULL, path, sizeof(path), err,
                             sizeof(err)) < 0)
        return fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "%s", err);
    if (not_admin)
        fprintf(stderr, "fotactl: warning: the key works but is not an admin key\n");
    if (c->json) {
        json_t *j = json_pack("{s:s, s:s}", "server", fota_cli_api_server(c->api), "config", path);

        fota_cli_out_json(stdout, j);
        json_decref(j);
    } else {
        printf("logged in to %s (saved in %s)\n", fota_cli_api_server(c->api), path);
    }
    return 0;
}
