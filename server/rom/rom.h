/* rom.h - the rom module: the ROM download of stock firmware, GET and HEAD
 * /v1/device/rom/?action=download_rom&version=V&filename=user1.bin|user2.bin
 * on the HTTP ports, byte-exact per espressif-protocol.md §3.5 (one-write
 * header with Content-Length, 200 OK, no chunking or compression, Range,
 * ETag, Connection: close so nothing follows the body), body by sendfile;
 * the same path without action= lists the key's product's releases. The
 * module owns the download ledger (batched counts) and each device's
 * download progress; other modules read the progress only through this
 * header, and ask for the ledger to be written through the hub
 * (FOTA_HUB_DOWNLOADS_SYNC). */
#ifndef FOTA_ROM_H
#define FOTA_ROM_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct fota_server;

/* The module (server.h), started after http and api. */
extern const struct fota_module fota_rom_module;

enum fota_rom_dl_state {
    FOTA_ROM_DL_DOWNLOADING = 1,   /* body still being sent */
    FOTA_ROM_DL_COMPLETE,          /* every byte of the body handed to the kernel */
    FOTA_ROM_DL_ABORTED,           /* connection gone before the whole body was sent */
};

/* A device's current or last firmware download since fotad started (memory;
 * the store's ledger has the totals). */
struct fota_rom_progress {
    char file[FOTA_NAME_MAX];
    char version[FOTA_VERSION_MAX];
    int64_t bytes;             /* body bytes sent so far (this download) */
    int64_t total;             /* body length (a Range request: the range's length) */
    int64_t offset;            /* first byte of the body within the file (Range) */
    int64_t size;              /* whole file */
    int64_t started, updated;  /* Unix seconds */
    enum fota_rom_dl_state state;
};

/* Copies device_id's progress record: 0, or FOTA_ENOENT if it has not
 * downloaded since start (or the rom module is not running). Any thread. */
int fota_rom_progress_get(const struct fota_server *srv, int64_t device_id,
                          struct fota_rom_progress *out);
/* "downloading", "complete", "aborted". */
const char *fota_rom_progress_state_name(enum fota_rom_dl_state s);

/* The JSON view of a release (the REST API and the device listing share it):
 * files with their download path, size, sha256 and counts. New reference. */
struct json_t;
struct json_t *fota_rom_json(const struct fota_rom *rom);

/* Parses a Range header against size. Returns 1 with [*from, *to] for one
 * satisfiable "bytes=a-b" / "bytes=a-" / "bytes=-n" range, 0 for no/ignored
 * header (multi-range: served whole), -1 for an unsatisfiable one (416). */
int fota_rom_range(const char *hdr, int64_t size, int64_t *from, int64_t *to);

#endif
