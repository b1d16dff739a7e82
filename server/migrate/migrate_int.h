/* migrate_int.h - what the files of `fotad migrate` share: the copy of the
 * tables from a SQLite database into PostgreSQL in one transaction
 * (migrate_db.c), the release files into PostgreSQL's blobs
 * (migrate_blobs.c) and the target data dir with the files a PostgreSQL
 * instance needs besides its database (migrate_files.c). Private to
 * server/migrate. */
#ifndef FOTA_MIGRATE_INT_H
#define FOTA_MIGRATE_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fota_err.h"

#define FOTA_MIGRATE_PATH_MAX 1024
#define FOTA_MIGRATE_NAME_MAX 64
#define FOTA_MIGRATE_BLOB_MAX (1u << 30)   /* a release file held in memory for blob_put */

struct fota_store;

/* One table of the target database, as the copy left it. */
struct fota_migrate_table {
    char name[FOTA_MIGRATE_NAME_MAX];
    int pg_only;            /* PostgreSQL's alone (instance state): nothing to copy */
    int64_t rows;           /* rows copied, the same count read back */
    char sum[65];           /* SHA-256 of the rows in key order, equal on both sides */
    int64_t next_id;        /* the next id its identity hands out; 0: none set */
};

struct fota_migrate_db;

/* Whether the SQLite database at sqlite_path is a fotad store whose schema
 * is this fotad's newest: 0, or FOTA_EINVAL / FOTA_EIO with the reason
 * (and what to do) in err. */
int fota_migrate_source_check(const char *sqlite_path, char *err, size_t errlen);

/* Opens the SQLite database at sqlite_path read-only and checks that its
 * schema is this fotad's newest; connects to dsn (whose schema
 * fota_store_pg_open has brought to the newest), begins the transaction,
 * locks every table to copy against writers and checks that none holds a
 * row. 0 with *out, or a negative FOTA_E* with the reason in err (nothing
 * written; FOTA_EEXIST: the target holds rows). */
int fota_migrate_db_begin(const char *sqlite_path, const char *dsn,
                          struct fota_migrate_db **out, char *err, size_t errlen);

/* Copies every table (COPY FROM STDIN, in the order of the foreign keys,
 * ids as they are), reads each back to compare its row count and checksum
 * with the source's, and moves every identity past the largest id the
 * source ever handed out. Called once; the transaction stays open. */
int fota_migrate_db_copy(struct fota_migrate_db *m, char *err, size_t errlen);

/* The tables of the target after the copy (valid until _free). */
const struct fota_migrate_table *fota_migrate_db_tables(const struct fota_migrate_db *m,
                                                        size_t *n);

/* COMMIT. 0 or FOTA_EIO (the reason in err: nothing was written). */
int fota_migrate_db_commit(struct fota_migrate_db *m, char *err, size_t errlen);

/* Rolls back what was not committed, closes both databases (NULL-safe). */
void fota_migrate_db_free(struct fota_migrate_db *m);

/* The release files as the target database holds them after
 * fota_migrate_blobs_put. */
struct fota_migrate_blobs {
    size_t stored;          /* put by this run */
    size_t present;         /* held by the database already (an earlier run) */
    uint64_t bytes;         /* of both, each read back and checked */
};

/* Puts each release file named by hash (64 hex) from src_paths[i] into
 * the PostgreSQL store s (blob_put: one durable transaction per blob,
 * committed at once), after checking the file's bytes against the name,
 * unless the database holds that blob already; then reads every one back
 * (blob_fetch) and checks its size and SHA-256. 0 with the counts in *out,
 * or a negative FOTA_E* with the reason in err (FOTA_ECHECKSUM: a file or
 * the database's copy is not what its name says). Blobs put before a
 * failure stay: nothing names them until the fleet's rows commit. */
int fota_migrate_blobs_put(struct fota_store *s, char *const *hashes, char *const *src_paths,
                           size_t n, struct fota_migrate_blobs *out, char *err, size_t errlen);

/* The data dir of the PostgreSQL instance, locked as fotad locks it. */
struct fota_migrate_target {
    char dir[FOTA_MIGRATE_PATH_MAX];
    int lock_fd;
    int made_dir, made_lock;
    int same;               /* the source's own data dir: its files are in place */
    int chown_to;           /* root migrating into the service user's dir */
    uid_t uid;
    gid_t gid;
    size_t blobs_copied, blobs_present;
    uint64_t bytes_copied;
    int secret_written, owner_written;
};

/* Locks the source data dir against a running fotad (what it writes after
 * the copy would not reach PostgreSQL). 0 with *lock_fd (-1 when the dir
 * has no lock file), or FOTA_EBUSY / FOTA_EIO with the reason in err. */
int fota_migrate_source_lock(const char *dir, int *lock_fd, char *err, size_t errlen);

/* Makes (0700) or opens the target dir and locks it; refuses one a fotad
 * runs on and one whose secret.key or owner.key differ from the given
 * ones (owner NULL: the source has no owner.key). */
int fota_migrate_target_open(struct fota_migrate_target *t, const char *dir,
                             const char *source_dir, const uint8_t *secret, size_t secret_len,
                             const uint8_t *owner, size_t owner_len, char *err, size_t errlen);

/* Writes secret.key and owner.key (0600) when the target lacks them, and
 * copies each release file named by hash (64 hex) from src_paths[i] into
 * DIR/blobs/sha256/xx/<hash>, hashed as it is written; a file already
 * there with the right bytes stays. Everything is fsynced. */
int fota_migrate_target_fill(struct fota_migrate_target *t, const uint8_t *secret,
                             size_t secret_len, const uint8_t *owner, size_t owner_len,
                             char *const *hashes, char *const *src_paths, size_t n, char *err,
                             size_t errlen);

/* Unlocks; a dir and lock file made by _open and left empty go again. */
void fota_migrate_target_close(struct fota_migrate_target *t);

#endif
