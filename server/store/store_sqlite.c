/* store_sqlite.c - placeholder until the SQLite store lands (next commit). */
#include <stdio.h>
#include "store.h"

int fota_store_sqlite_open(const char *path, fota_log_cb log, void *log_ud,
                           struct fota_store **out, char *err, size_t errlen)
{
    *out = NULL;
    snprintf(err, errlen, "sqlite store not implemented yet (path %s)", path);
    return FOTA_EIO;
}
