/* reserve.h - the disk reserve: a ballast file (DATA/reserve) holding
 * disk_reserve bytes of the file system fotad's data lives on, so that when
 * the disk fills up an admin can still delete (a release, a device, a key):
 * such a delete that hits a full disk gives the ballast's room back and
 * retries once (store.h, fota_store_make_room); every other write fails fast.
 * The ballast comes back once the disk has twice its size free again.
 *
 * The file's blocks are allocated (posix_fallocate), not a sparse hole, so
 * the room is really held. Thread-safe: a delete on any loop thread may
 * release it while the main loop refills it. */
#ifndef FOTA_RESERVE_H
#define FOTA_RESERVE_H

#include <stdint.h>
#include "fota_err.h"

struct fota_reserve;

/* Opens the ballast at path and makes it size bytes (size 0: no ballast, and
 * a file left by an earlier setting is removed). A disk without the room for
 * it is not an error: the ballast stays short (WARN) until fota_reserve_refill
 * finds the room. FOTA_EIO (logged) if the file cannot be created. */
int fota_reserve_open(const char *path, uint64_t size, fota_log_cb log, void *log_ud,
                      struct fota_reserve **out);
/* Frees the handle (NULL-safe); the file stays for the next start. */
void fota_reserve_close(struct fota_reserve *r);

/* Gives the ballast's room back to the file system (truncates the file to
 * 0), logged at WARN with why (the op that found the disk full). 1 if it held
 * bytes, 0 if there was nothing to give (NULL-safe). */
int fota_reserve_release(struct fota_reserve *r, const char *why);

/* Makes the ballast whole again when the file system has at least twice its
 * size available (so it never takes the last room); logged at INFO. 1 if it
 * was refilled, 0 if it is whole or there is not enough room yet. */
int fota_reserve_refill(struct fota_reserve *r);

/* The bytes the ballast holds now, and the size it is meant to have. */
uint64_t fota_reserve_held(const struct fota_reserve *r);
uint64_t fota_reserve_size(const struct fota_reserve *r);

#endif
