/* fota_web.h - the web console's static assets, embedded in the binary.
 *
 * web/CMakeLists.txt turns every file under web/assets/ into a byte array at
 * build time (web/embed.cmake, no xxd); this header is how fotad finds them.
 * The table is read-only and lives for the whole process. */
#ifndef FOTA_WEB_H
#define FOTA_WEB_H

#include <stddef.h>

struct fota_web_asset {
    const char          *path;         /* URL path, e.g. "/index.html", "/app.js" */
    const unsigned char *data;         /* file bytes (not NUL-terminated) */
    size_t               len;
    const char          *content_type; /* e.g. "text/html; charset=utf-8" */
    const char          *etag;         /* strong ETag with quotes: "\"<16 hex of sha256>\"" */
};

/* Looks up the asset served at URL path (no query string). "/" maps to
 * "/index.html". Returns a pointer into a static table, or NULL when the path
 * names no asset (also for NULL, "" and paths containing ".."). */
const struct fota_web_asset *fota_web_asset_find(const char *path);

/* Number of embedded assets and the i-th one (NULL past the end): for tests
 * and for listing. */
size_t fota_web_asset_count(void);
const struct fota_web_asset *fota_web_asset_at(size_t i);

/* Cache-Control to send with an asset: always "no-cache" (revalidate with
 * the ETag) because asset names carry no content hash, so a new fotad's
 * console is picked up at once; a 304 makes the check cheap. */
const char *fota_web_cache_control(const struct fota_web_asset *a);

#endif
