/* fota_web.c - lookup in the embedded console asset table.
 * The table itself (fota_web_assets[], fota_web_nassets) is generated at
 * build time by web/embed.cmake into the build tree. */
#include <string.h>
#include "fota_web.h"

extern const struct fota_web_asset fota_web_assets[];
extern const size_t fota_web_nassets;

const struct fota_web_asset *fota_web_asset_find(const char *path)
{
    size_t i;

    if (!path || path[0] != '/' || strstr(path, ".."))
        return NULL;
    if (strcmp(path, "/") == 0)
        path = "/index.html";
    for (i = 0; i < fota_web_nassets; i++)
        if (strcmp(fota_web_assets[i].path, path) == 0)
            return &fota_web_assets[i];
    return NULL;
}

size_t fota_web_asset_count(void)
{
    return fota_web_nassets;
}

const struct fota_web_asset *fota_web_asset_at(size_t i)
{
    return i < fota_web_nassets ? &fota_web_assets[i] : NULL;
}

const char *fota_web_cache_control(const struct fota_web_asset *a)
{
    (void)a;
    return "no-cache";
}
