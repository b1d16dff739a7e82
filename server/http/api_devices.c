/* api_devices.c - placeholder, filled in the next commit. */
#include "http.h"

void fota_api_devices_routes(struct fota_server *srv)
{
    (void)srv;
}
