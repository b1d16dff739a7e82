/* devquery.h - the query of `fotactl device list`: its options (--tag,
 * --version, --online/--offline, --search, --name, --checkin-before,
 * --checkin-after, --sort, --limit, --cursor, --all) as the parameters of
 * the API's device lists (docs/api.md "Selecting devices"), checked before
 * a request goes. Pure: no output, no globals. */
#ifndef FOTA_CLI_DEVQUERY_H
#define FOTA_CLI_DEVQUERY_H

#include <stddef.h>

#include "args.h"

#define FOTA_CLI_PAGE_DEFAULT 50     /* devices in a page without --limit */
#define FOTA_CLI_PAGE_ALL     1000   /* with --all: devices fetched per request */

struct fota_cli_devquery {
    char query[2048];        /* "tag=a&version=v1&online=true&sort=-name" (no limit, no cursor) */
    long limit;              /* devices per request (1..1000) */
    int all;                 /* follow next_cursor to the last page */
    const char *cursor;      /* --cursor (borrowed from argv) or NULL */
};

/* Builds q from the parsed options of a. --tag T[,T...] (every tag),
 * --version V[,V...] (any version), --online or --offline, --search Q,
 * --name NAME, --checkin-before/--checkin-after (Unix seconds or 30s, 15m,
 * 12h, 7d), --sort [-]id|name|version|last_active|checkin|created, --limit
 * 1..1000, --cursor C, --all. 0, or FOTA_EINVAL with the sentence in err
 * (--online with --offline, --cursor with --all, a value out of shape). */
int fota_cli_devquery_build(const struct fota_cli_args *a, struct fota_cli_devquery *q, char *err,
                            size_t errlen);

#endif
