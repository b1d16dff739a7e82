/* api_products.c - placeholder, filled in the next commit. */
#include "http.h"

void fota_api_products_routes(struct fota_server *srv)
{
    (void)srv;
}
