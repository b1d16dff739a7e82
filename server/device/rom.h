/* rom.h - the ROM download of stock firmware: GET and HEAD
 * /v1/device/rom/?action=download_rom&version=V&filename=user1.bin|user2.bin
 * on the HTTP ports, byte-exact per espressif-protocol.md §3.5 (one-write
 * header with Content-Length, 200 OK, no chunking or compression, Range,
 * ETag, Connection: close so nothing follows the body), body by sendfile. */
#ifndef FOTA_ROM_H
#define FOTA_ROM_H

#include <stddef.h>
#include <stdint.h>

struct fota_req;

/* The server's rom_download hook (server.h); ud is the device channel.
 * Always replies exactly once. Keys: master or owner key of a device of the
 * release's product, product key of that product, or admin. */
void fota_rom_download(void *ud, struct fota_req *r);

/* Writes the download ledger rows still batched on each loop and frees the
 * batches. Module stop, after the worker loops stopped. */
struct fota_devchan;
void fota_rom_ledgers_free(struct fota_devchan *ch);
/* Subscriber of the hub topic DOWNLOADS_SYNC (ud: the device channel):
 * writes every loop's batched ledger rows now; returns 0. Any thread. */
int64_t fota_rom_ledgers_sync(void *ud, const void *event);

/* Parses a Range header against size. Returns 1 with [*from, *to] for one
 * satisfiable "bytes=a-b" / "bytes=a-" / "bytes=-n" range, 0 for no/ignored
 * header (multi-range: served whole), -1 for an unsatisfiable one (416). */
int fota_rom_range(const char *hdr, int64_t size, int64_t *from, int64_t *to);

#endif
