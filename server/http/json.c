/* json.c - JSON views of store rows, shared by the API files. */
#include "http.h"

json_t *fota_json_product(const struct fota_product *p)
{
    return json_pack("{s:I, s:s, s:s}", "id", (json_int_t)p->id, "name", p->name, "serial",
                     p->serial);
}
