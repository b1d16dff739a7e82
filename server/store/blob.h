/* blob.h - content-addressed firmware files under DATA/blobs/.
 *
 * A blob is named by the SHA-256 of its bytes: DIR/sha256/ab/abcdef... (the
 * first two hex digits fan out the directory). Writes go to DIR/tmp/, are
 * fsynced, renamed into place and the directory is fsynced, so a blob that is
 * visible is complete and durable; a crash mid-write leaves only a temp file,
 * which the next fota_blob_store_open() deletes. Release metadata (store.h)
 * refers to blobs by hash and is committed only after the blobs are durable. */
#ifndef FOTA_BLOB_H
#define FOTA_BLOB_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "fota_err.h"

#ifndef FOTA_HASH_HEX
#define FOTA_HASH_HEX 65   /* SHA-256 as lower-case hex + NUL (same as store.h) */
#endif

struct fota_blob_store;
struct fota_blob_writer;

/* Opens the blob store rooted at dir (e.g. "DATA/blobs"), creating dir,
 * dir/sha256 and dir/tmp as needed (mode 0700), and deletes every leftover
 * file in dir/tmp (logged at WARN with the count). The handle is immutable
 * after open (but for its reserve, below) and safe to use from several threads. FOTA_EIO if a directory
 * cannot be created; FOTA_EINVAL if dir is too long. */
int fota_blob_store_open(const char *dir, fota_log_cb log, void *log_ud,
                         struct fota_blob_store **out);
/* Frees the handle (NULL-safe). Blobs stay on disk. */
void fota_blob_store_close(struct fota_blob_store *bs);

/* Writes len bytes as a blob and returns its hash in hash_hex_out. Durable
 * when it returns 0 (temp file fsynced, renamed, directory fsynced).
 * Idempotent: if the blob exists it is kept and nothing is written.
 * FOTA_ENOSPC (nothing written) when fota_blob_room() refuses len, or when
 * the file system runs out of room while writing (the temp file is removed);
 * FOTA_EIO for other failures. */
int fota_blob_put(struct fota_blob_store *bs, const void *data, size_t len,
                  char hash_hex_out[FOTA_HASH_HEX]);

/* Streaming put, for bodies that arrive in pieces: begin opens a temp file;
 * update appends (hashing as it goes); end fsyncs, renames into place (or
 * drops the temp file if the blob already exists), fsyncs the directory,
 * writes the hash and the size, and frees the writer whatever it returns.
 * abort deletes the temp file and frees the writer (NULL-safe). Errors:
 * FOTA_ENOSPC when the file system has no room (the disk, or a quota),
 * FOTA_EIO otherwise. */
int fota_blob_write_begin(struct fota_blob_store *bs, struct fota_blob_writer **out);
int fota_blob_write_update(struct fota_blob_writer *w, const void *data, size_t len);
int fota_blob_write_end(struct fota_blob_writer *w, char hash_hex_out[FOTA_HASH_HEX],
                        int64_t *size_out /* may be NULL */);
void fota_blob_write_abort(struct fota_blob_writer *w);

/* Opens a blob read-only (O_CLOEXEC) for sendfile/evbuffer_add_file; the
 * caller owns *fd and closes it. FOTA_EINVAL for a malformed hash (anything
 * but 64 lower-case hex digits), FOTA_ENOENT if absent, FOTA_EIO otherwise. */
int fota_blob_open(struct fota_blob_store *bs, const char *hash_hex, int *fd, int64_t *size);

/* Writes the blob's path into buf (whether or not it exists). FOTA_EINVAL
 * for a malformed hash, FOTA_ERANGE if buf is too small. */
int fota_blob_path(const struct fota_blob_store *bs, const char *hash_hex, char *buf, size_t buflen);

/* 1 if the blob exists, 0 if not, FOTA_EINVAL for a malformed hash. */
int fota_blob_exists(const struct fota_blob_store *bs, const char *hash_hex);

/* Deletes a blob (garbage collection of orphans; the caller makes sure no
 * release row names it). FOTA_ENOENT if absent. */
int fota_blob_remove(struct fota_blob_store *bs, const char *hash_hex);

/* Garbage collection of orphans, run at start-up before any upload can
 * commit (a crash between the durable blob writes and the release
 * transaction leaves blobs no row names). Deletes every blob under
 * DIR/sha256/ whose hash is not in keep (n sorted strcmp-ascending hashes)
 * and whose mtime is before `before`; newer unreferenced blobs are counted in
 * *young and kept (they may belong to an upload still being committed).
 * Files that are not blob names are left alone. *removed and *young are
 * always set. FOTA_EIO if a directory cannot be read or a blob not deleted
 * (the sweep goes on; counts cover what was done). */
int fota_blob_sweep(struct fota_blob_store *bs, const char (*keep)[FOTA_HASH_HEX], size_t n,
                    const struct timespec *before, unsigned *removed, unsigned *young);

/* Free space: a blob of bytes may be written when the file system holding
 * the store keeps at least `reserve` bytes available after it (statvfs
 * f_bavail: what an unprivileged writer may use), so uploads never eat the
 * room the database needs. set_reserve may be called at any time (atomic;
 * 0 at open). fota_blob_room: 0, or FOTA_ENOSPC (logged at WARN with the
 * figures); 0 also when the file system cannot be asked. */
void fota_blob_store_set_reserve(struct fota_blob_store *bs, uint64_t reserve);
int fota_blob_room(const struct fota_blob_store *bs, uint64_t bytes);

/* A second home for the blobs, shared by several fotad instances (the
 * store's blob_put and blob_fetch on PostgreSQL). With one set,
 * fota_blob_put also stores the blob there once it is durable here (its
 * error is put's: a release must not name a blob the others cannot get), and
 * fota_blob_fill copies a blob missing here from there. put stores len bytes
 * under hash; fetch hands the bytes to sink in order and the size it holds to
 * *size before the first piece; both return 0 or FOTA_E*. Set once, before
 * the handle is shared between threads. */
struct fota_blob_remote {
    int (*put)(void *ud, const char *hash, const void *data, size_t len);
    int (*fetch)(void *ud, const char *hash, int (*sink)(void *sink_ud, const void *data,
                                                        size_t len),
                 void *sink_ud, int64_t *size);
    void *ud;
};
void fota_blob_store_set_remote(struct fota_blob_store *bs, const struct fota_blob_remote *r);
/* 1 when a remote is set, else 0. */
int fota_blob_shared(const struct fota_blob_store *bs);
/* Makes blob hash_hex present here: 0 when it is, already or copied now
 * from the remote, its bytes checked against the name before the copy
 * becomes visible; FOTA_ENOENT when neither holds it (without a remote:
 * when it is not here); FOTA_EIO when the remote's bytes do not hash to the
 * name (logged at ERROR; nothing kept), FOTA_ENOSPC (fota_blob_room),
 * FOTA_EUNAVAIL (the remote cannot be reached), FOTA_EINVAL for a malformed
 * hash. Blocks for the copy: for store threads and start-up, never an
 * event loop. */
int fota_blob_fill(struct fota_blob_store *bs, const char *hash_hex);

/* SHA-256 of a buffer as lower-case hex (pure; OpenSSL EVP). */
int fota_blob_hash(const void *data, size_t len, char hash_hex_out[FOTA_HASH_HEX]);

/* 1 if s is 64 lower-case hex digits, else 0. */
int fota_blob_hash_valid(const char *s);

#endif
