/* file.h - fotactl's local files: whole files read with a size limit, and
 * secrets (keys, key sectors) written so that no one else can read them
 * and no half-written file is left behind. Failures are reported on
 * stderr (cli/out.h) and come back as an exit status. */
#ifndef FOTA_CLI_FILE_H
#define FOTA_CLI_FILE_H

#include <stddef.h>
#include <stdint.h>

/* Reads a whole regular file of at most max bytes. Returns 0 with *data
 * (malloc'ed, NUL-terminated beyond len: the caller frees it) and *len, or an
 * exit status after reporting "cannot read FILE (reason)". */
    int fota_cli_file_read(const char *path, size_t max, uint8_t **data, size_t *len);

/* Writes len bytes of data to path through a temp file of mode 0600 beside
 * it, fsync and rename. Returns 0 or an exit status (reported). */
int fota_cli_file_write_private(const char *path, const void *data, size_t len);

#endif
