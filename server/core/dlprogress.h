/* dlprogress.h - each device's current or last firmware download, kept in
 * memory (the store's ledger has the totals): file, bytes handed to the
 * kernel so far, size, state. Written by the ROM download path on any HTTP
 * loop, read by the REST API on the main loop; one mutex. Lost on restart. */
#ifndef FOTA_DLPROGRESS_H
#define FOTA_DLPROGRESS_H

#include <stdint.h>
#include "store.h"

enum fota_dl_state {
    FOTA_DL_DOWNLOADING = 1,   /* body still being sent */
    FOTA_DL_COMPLETE,          /* every byte of the body handed to the kernel */
    FOTA_DL_ABORTED,           /* connection gone before the whole body was sent */
};

struct fota_dl_info {
    char file[FOTA_NAME_MAX];
    char version[FOTA_VERSION_MAX];
    int64_t bytes;             /* body bytes sent so far (this download) */
    int64_t total;             /* body length (a Range request: the range's length) */
    int64_t offset;            /* first byte of the body within the file (Range) */
    int64_t size;              /* whole file */
    int64_t started, updated;  /* Unix seconds */
    enum fota_dl_state state;
};

struct fota_dl;                /* one device's record; lives until exit */

/* Starts a download record for device_id (> 0), replacing the device's
 * previous one (a later call for an older download is ignored: see seq).
 * Returns the record with *seq identifying this download, or NULL (no
 * memory: progress is then not shown). Thread-safe. */
struct fota_dl *fota_dl_begin(int64_t device_id, const char *file, const char *version,
                              int64_t offset, int64_t total, int64_t size, uint64_t *seq);
/* Adds n body bytes sent (state becomes COMPLETE at total). Ignored if a
 * newer download of the device has begun since (seq differs). */
void fota_dl_sent(struct fota_dl *dl, uint64_t seq, int64_t n);
/* The body's data is gone (sent or dropped): ABORTED unless COMPLETE. */
void fota_dl_end(struct fota_dl *dl, uint64_t seq);
/* Copies device_id's record; 0, or FOTA_ENOENT if it never downloaded since
 * start. Thread-safe. */
int fota_dl_get(int64_t device_id, struct fota_dl_info *out);
/* "downloading", "complete", "aborted". */
const char *fota_dl_state_name(enum fota_dl_state s);

#endif
