/* backup_int.h - what the backup module's files share: a snapshot of a data
 * dir (backup_snap.c) ready to be written as an archive, to a file
 * (backup_write.c) or streamed by the REST route (backup_module.c), and
 * the restore (backup_restore.c). Private to server/backup. */
#ifndef FOTA_BACKUP_INT_H
#define FOTA_BACKUP_INT_H

#include <stddef.h>
#include <stdint.h>

#include "backup_format.h"
#include "fota_err.h"

#define FOTA_BACKUP_PATH_MAX 1024

/* Progress of a long step: what ("database", "blobs", "archive"), done of
 * total units (pages, blobs, bytes). Called from the working thread. */
typedef void (*fota_backup_progress_cb)(void *ud, const char *what, uint64_t done,
                                        uint64_t total);

/* One member of the archive to write. */
struct fota_backup_item {
    char name[FOTA_BACKUP_NAME_MAX];
    int kind;                        /* enum fota_backup_kind; 0 for manifest.json */
    const uint8_t *data;             /* inline bytes (manifest, keys), else NULL */
    uint64_t size;
    char sha256[65];
    char *path;                      /* the file to copy when data is NULL (owned) */
};

/* A consistent snapshot of a data dir, held in DATA/backup.tmp-XXXXXX
 * (the database's copy and a hard link to every blob it names, so a
 * release deleted meanwhile cannot take a blob away), with its manifest.
 * Everything is verified (hashes, sizes) when fota_backup_snap_take
 * returns. Not tied to a thread once taken. */
struct fota_backup_snap {
    char tmp[FOTA_BACKUP_PATH_MAX];  /* the snapshot's directory */
    int lock_fd;                     /* flock'ed tmp/lock: the directory is in use */
    struct fota_backup_item *items;  /* archive order, manifest.json first */
    size_t nitems;
    char *manifest;
    size_t manifest_len;
    uint8_t secret[FOTA_BACKUP_SECRET_LEN];
    uint8_t owner[FOTA_BACKUP_OWNER_MAX];
    size_t owner_len;                /* 0: the data dir has no owner.key */
    struct fota_backup_manifest info;   /* counts, versions, created (members unused) */
    uint64_t archive_bytes;
    uint64_t db_bytes, blob_bytes;
    size_t nblobs;
    int64_t ms_db, ms_verify;        /* time of the database copy and of the blob check */
};

/* Takes a snapshot of data_dir (DATA/fota.db through SQLite's online backup
 * API inside one read transaction, so writers go on and the copy is one
 * consistent moment; the blobs it names, linked and hashed; secret.key and
 * owner.key). Works while a fotad serves data_dir and while none does.
 * source goes into the manifest. *cancel (may be NULL) is polled between
 * steps: non-zero stops with FOTA_ECLOSED. 0 with *out, or a negative
 * FOTA_E* with the reason in err (nothing left behind). */
int fota_backup_snap_take(const char *data_dir, const char *source, const int *cancel,
                          fota_backup_progress_cb progress, void *ud,
                          struct fota_backup_snap **out, char *err, size_t errlen);
/* Removes the snapshot's directory and frees it (NULL-safe). */
void fota_backup_snap_free(struct fota_backup_snap *s);

/* The tar header of item i into hdr (backup_tar.h). */
void fota_backup_snap_header(const struct fota_backup_snap *s, size_t i,
                             uint8_t hdr[FOTA_TAR_BLOCK]);

/* Writes the archive to fd with plain write(2)s (a file, a pipe, a
 * terminal...). 0, or a negative FOTA_E* with the reason in err. */
int fota_backup_snap_write(const struct fota_backup_snap *s, int fd,
                           fota_backup_progress_cb progress, void *ud, char *err, size_t errlen);

/* rm -r: removes dir with the files, links and directories in it (errors
 * ignored: what cannot be removed stays). */
void fota_backup_remove_tree(const char *dir);

/* "12.3 MiB" */
void fota_backup_human(uint64_t bytes, char *out, size_t cap);

/* Restores the archive read from fd (a file or a pipe; size_hint its size
 * for progress, 0 if unknown) into data_dir (see docs/backup.md): data_dir
 * must not exist, be empty, or force must be set; a fotad holding it is
 * refused. Every member is verified before anything in data_dir changes;
 * the result is fsynced. Messages (errors, the summary) go to the caller
 * through err and *summary. 0, or a negative FOTA_E* with the reason in
 * err (data_dir unchanged). */
int fota_backup_restore(int fd, uint64_t size_hint, const char *data_dir, int force,
                        fota_backup_progress_cb progress, void *ud,
                        struct fota_backup_manifest *summary, char *err, size_t errlen);

#endif
