/* api_roms.c - placeholder, filled in the next commit. */
#include "http.h"

void fota_api_roms_routes(struct fota_server *srv)
{
    (void)srv;
}
