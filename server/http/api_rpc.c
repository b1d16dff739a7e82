/* api_rpc.c - placeholder, filled in the next commit. */
#include "http.h"

void fota_api_rpc_routes(struct fota_server *srv)
{
    (void)srv;
}
