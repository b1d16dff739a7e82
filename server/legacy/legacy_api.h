/* legacy_api.h - the legacy listener's HTTP endpoint (GET /v1/legacy/transfers/),
 * registered by fotad's legacy module through fota_http_route(). See docs/api.md. */
#ifndef FOTA_LEGACY_API_H
#define FOTA_LEGACY_API_H

#include "legacy.h"
#include "server.h"

/* Adds GET /v1/legacy/transfers/ (admin key): the stored transfers, newest first, with a
 * summary of the running listener. lg is borrowed (NULL when the legacy port is off: the
 * stored records are still listed) and must outlive the HTTP server's last request.
 * Returns 0, FOTA_EINVAL (no HTTP server) or FOTA_ENOMEM. */
int fota_legacy_api_routes(struct fota_server *srv, const struct fota_legacy *lg);

#endif
