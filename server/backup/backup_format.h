/* backup_format.h - fota's backup archive (docs/backup.md): a ustar file
 * whose first member is manifest.json, followed by the members the
 * manifest lists, in its order: secret.key, owner.key (if the data dir had
 * one), fota.db (an online SQLite snapshot) and every firmware blob as
 * blobs/sha256/xx/<sha256>: the data dir's own layout, so plain `tar`
 * can list and extract it. The manifest names the format and its version,
 * the writing fotad's version and schema version, row counts, and each
 * member's size and SHA-256.
 *
 * This library is what fotad (restore) and fotactl (backup) share to read
 * one: the manifest's parser and a sans-IO reader that checks the archive
 * as bytes are fed (each member's size and hash against the manifest, the
 * order, the end) and hands the members' bytes to a callback. No I/O; it
 * allocates the manifest through fota_x* (server/util/xmalloc.h: out of
 * memory aborts, in fotactl as in fotad). */
#ifndef FOTA_BACKUP_FORMAT_H
#define FOTA_BACKUP_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "backup_tar.h"
#include "sha256.h"

#define FOTA_BACKUP_FORMAT "fota-backup"
#define FOTA_BACKUP_FORMAT_VERSION 1
#define FOTA_BACKUP_MANIFEST "manifest.json"
#define FOTA_BACKUP_MANIFEST_MAX (64u << 20)  /* bytes of manifest.json accepted */
#define FOTA_BACKUP_MEMBERS_MAX 1000000u
#define FOTA_BACKUP_NAME_MAX 96           /* "blobs/sha256/xx/<64 hex>" is 80 */
#define FOTA_BACKUP_COUNTS_MAX 16
#define FOTA_BACKUP_SECRET_LEN 32           /* bytes of DATA/secret.key */
#define FOTA_BACKUP_OWNER_MAX 128          /* bytes of DATA/owner.key, at most */

/* What a member is (its name says it). */
enum fota_backup_kind {
    FOTA_BACKUP_DB = 1,         /* fota.db */
    FOTA_BACKUP_SECRET,         /* secret.key */
    FOTA_BACKUP_OWNER,          /* owner.key */
    FOTA_BACKUP_BLOB            /* blobs/sha256/xx/<sha256> */
};

struct fota_backup_member {
    char name[FOTA_BACKUP_NAME_MAX];
    uint64_t size;
    char sha256[65];        /* lower-case hex */
    int kind;              /* enum fota_backup_kind */
};

/* A row count of the snapshot ("devices": 500). */
struct fota_backup_count {
    char name[32];
    int64_t n;
};

struct fota_backup_manifest {
    int format_version;
    char fotad_version[64];
    int schema_version;     /* the database's, PRAGMA user_version */
    int64_t created;            /* Unix seconds */
    char source[64];         /* "fotad backup" or "GET /v1/backup" */
    struct fota_backup_count counts[FOTA_BACKUP_COUNTS_MAX];
    size_t ncounts;
    struct fota_backup_member *members;   /* archive order, after manifest.json */
    size_t nmembers;
    uint64_t content_bytes;      /* sum of the members' sizes */
    uint64_t archive_bytes;      /* the whole archive (manifest included) */
};

/* The kind of a member name, or 0 for a name that is not one of the
 * archive's (anything else, "../x", "blobs/sha256/ab/<hash not starting
 * with ab>", upper-case hex ...). For a blob, hash (if not NULL) gets the
 * 64 hex digits. */
int fota_backup_name_kind(const char *name, char hash[65]);

/* The manifest's row counts: the name of each and the table of fota.db it
 * counts, in the manifest's order (fota_backup_count_ntables of them). */
struct fota_backup_count_table {
    const char *name, *table;
};
extern const struct fota_backup_count_table fota_backup_count_tables[];
extern const size_t fota_backup_count_ntables;

/* The count called name in m, or -1. */
int64_t fota_backup_manifest_count(const struct fota_backup_manifest *m, const char *name);

/* Parses and checks manifest.json (len bytes, not NUL-terminated): format
 * "fota-backup" and version FOTA_BACKUP_FORMAT_VERSION, every member a
 * known name with a size and a hash (a blob's hash is its name), none
 * twice, fota.db and secret.key present, secret.key 32 bytes.
 * manifest_bytes is manifest.json's own size (for archive_bytes). 0, or
 * FOTA_EPROTO with the reason in err. On success the caller
 * frees with fota_backup_manifest_cleanup (also safe after a failure). */
int fota_backup_manifest_parse(const char *text, size_t len, struct fota_backup_manifest *m,
                               char *err, size_t errlen);
void fota_backup_manifest_cleanup(struct fota_backup_manifest *m);

/* ---------------------------------------------------------------- reader */

/* What the reader hands to its callback, in this order: MANIFEST once (m
 * NULL: look at fota_backup_reader_manifest), then for every member BEGIN,
 * DATA (any number of times, len > 0), END once its bytes hashed to the
 * manifest's value. A non-zero return stops the reader: feed() returns it
 * (the callback writes its own message; the reader's says "stopped"). */
enum fota_backup_event {
    FOTA_BACKUP_EV_MANIFEST,
    FOTA_BACKUP_EV_BEGIN,
    FOTA_BACKUP_EV_DATA,
    FOTA_BACKUP_EV_END
};
typedef int (*fota_backup_read_cb)(void *ud, int event, const struct fota_backup_member *m,
                                   const uint8_t *data, size_t len);

struct fota_backup_reader {
    fota_backup_read_cb cb;
    void *ud;
    int state;                   /* private */
    uint8_t block[FOTA_TAR_BLOCK];
    size_t have;                 /* bytes in block */
    uint64_t left;               /* content bytes of the current member still to come */
    size_t pad;                  /* padding bytes still to skip */
    size_t next;                 /* index of the member being read or expected next */
    char *mtext;                 /* manifest.json being collected */
    size_t mlen, mcap;
    struct fota_sha256 sha;
    struct fota_backup_manifest man;
    int have_manifest;
    uint64_t offset;             /* archive bytes consumed */
    uint64_t block_at;           /* where the block in `block` started */
    int error;                   /* sticky: the first error */
    char err[256];
};

void fota_backup_reader_init(struct fota_backup_reader *r, fota_backup_read_cb cb, void *ud);
/* Feeds the next n bytes of the archive. 0 (all consumed), or a negative
 * FOTA_E* (sticky): FOTA_EMAGIC not a tar / not a fota backup,
 * FOTA_EPROTO a malformed or unexpected member, FOTA_ECHECKSUM a member
 * whose bytes do not hash to the manifest's value, or the callback's
 * value. fota_backup_reader_error() says which member and why. */
int fota_backup_reader_feed(struct fota_backup_reader *r, const uint8_t *p, size_t n);
/* The input ended: 0 if the archive was whole (every member read and
 * verified, the end marker seen), else FOTA_ETRUNC (or the sticky error). */
int fota_backup_reader_finish(struct fota_backup_reader *r);
/* The manifest, once the MANIFEST event came; NULL before. */
const struct fota_backup_manifest *fota_backup_reader_manifest(const struct fota_backup_reader *r);
/* The reason of the last error, "" if none. */
const char *fota_backup_reader_error(const struct fota_backup_reader *r);
void fota_backup_reader_cleanup(struct fota_backup_reader *r);

#endif
