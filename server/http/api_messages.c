/* api_messages.c - placeholder, filled in the next commit. */
#include "http.h"

void fota_api_messages_routes(struct fota_server *srv)
{
    (void)srv;
}
