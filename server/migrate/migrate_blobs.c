/* migrate_blobs.c - the moved fleet's release files written into
 * PostgreSQL's blobs through the store's own blob_put, so that an instance
 * on the target whose data dir is empty fills its copy from there
 * (blob_share.c). Each file must hash to its name as read, is put (one
 * durable transaction per blob, nothing written for a blob the database
 * holds already), and is read back through blob_fetch and hashed again:
 * every file the fleet's rows name is whole in the database before they
 * commit. */
#include "migrate_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blob.h"
#include "fota_str.h"
#include "hex.h"
#include "store.h"
#include "xmalloc.h"

/* The whole file at path into *out (the caller frees), at most
 * FOTA_MIGRATE_BLOB_MAX bytes. */
static int read_all(const char *path, unsigned char **out, size_t *len, char *err, size_t errlen)
{
    struct stat sb;
    unsigned char *p = NULL;
    size_t got = 0;
    int rc = 0, fd = open(path, O_RDONLY | O_CLOEXEC);

    *out = NULL;
    if (fd < 0)
        return fota_str_err(err, errlen, FOTA_EIO, "cannot open %s: %s", path, strerror(errno));
    if (fstat(fd, &sb) != 0) {
        rc = fota_str_err(err, errlen, FOTA_EIO, "cannot stat %s: %s", path, strerror(errno));
        goto out;
    }
    if ((uint64_t)sb.st_size > FOTA_MIGRATE_BLOB_MAX) {
        rc = fota_str_err(err, errlen, FOTA_ETOOBIG, "%s holds %lld bytes, more than a release file "
                    "migrate moves (%u)", path, (long long)sb.st_size, FOTA_MIGRATE_BLOB_MAX);
        goto out;
    }
    p = fota_xmalloc((size_t)sb.st_size + 1);
    while (got < (size_t)sb.st_size) {
        ssize_t n = read(fd, p + got, (size_t)sb.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = fota_str_err(err, errlen, FOTA_EIO, "cannot read %s: %s", path,
                        n < 0 ? strerror(errno) : "shorter than its size");
            goto out;
        }
        got += (size_t)n;
    }
out:
    close(fd);
    if (rc) {
        free(p);
        return rc;
    }
    *out = p;
    *len = got;
    return 0;
}

/* blob_fetch's sink of the presence check: the first piece is enough. */
static int stop_sink(void *ud, const void *data, size_t len)
{
    (void)ud;
    (void)data;
    (void)len;
    return FOTA_EEXIST;
}

/* 1 when the database holds blob hash, 0 when not, or a negative FOTA_E*. */
static int present(struct fota_store *s, const char *hash)
{
    int rc = s->ops->blob_fetch(s, hash, stop_sink, NULL, NULL);
    if (rc == 0 || rc == FOTA_EEXIST)
        return 1;
    return rc == FOTA_ENOENT ? 0 : rc;
}

struct readback {
    EVP_MD_CTX *h;
    uint64_t bytes;
};

static int hash_sink(void *ud, const void *data, size_t len)
{
    struct readback *rb = ud;
    rb->bytes += len;
    return EVP_DigestUpdate(rb->h, data, len) == 1 ? 0 : FOTA_EIO;
}

/* Blob hash read back from the database: len bytes that hash to the name. */
static int verify(struct fota_store *s, const char *hash, size_t len, char *err, size_t errlen)
{
    struct readback rb = { EVP_MD_CTX_new(), 0 };
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    char hex[FOTA_HASH_HEX];
    int64_t size = -1;
    int rc;

    if (!rb.h || EVP_DigestInit_ex(rb.h, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(rb.h);
        return fota_str_err(err, errlen, FOTA_EIO, "no SHA-256");
    }
    rc = s->ops->blob_fetch(s, hash, hash_sink, &rb, &size);
    if (rc == 0 && EVP_DigestFinal_ex(rb.h, md, &mdlen) != 1)
        rc = FOTA_EIO;
    EVP_MD_CTX_free(rb.h);
    if (rc)
        return fota_str_err(err, errlen, rc, "release file %s read back from postgresql: %s", hash,
                      fota_strerror(rc));
    fota_hex_encode(md, mdlen, hex);
    if (rb.bytes != len || size != (int64_t)len || strcmp(hex, hash) != 0)
        return fota_str_err(err, errlen, FOTA_ECHECKSUM,
                      "release file %s in postgresql differs from the source's: %" PRIu64
                      " bytes (recorded %" PRId64 ", source %zu) hashing to %s; delete its "
                      "row from blobs and migrate again",
                      hash, rb.bytes, size, len, hex);
    return 0;
}

/* One release file: checked against its name, put unless there, read back. */
static int move_one(struct fota_store *s, const char *hash, const char *path,
                    struct fota_migrate_blobs *out, char *err, size_t errlen)
{
    unsigned char *data = NULL;
    char hex[FOTA_HASH_HEX];
    size_t len = 0;
    int rc, there;

    if ((rc = read_all(path, &data, &len, err, errlen)) != 0)
        return rc;
    if ((rc = fota_blob_hash(data, len, hex)) != 0 || strcmp(hex, hash) != 0) {
        rc = fota_str_err(err, errlen, FOTA_ECHECKSUM, "release file %s hashes to %s, not its name",
                    path, rc ? "nothing" : hex);
        goto out;
    }
    if ((there = present(s, hash)) < 0) {
        rc = fota_str_err(err, errlen, there, "release file %s in postgresql: %s", hash,
                    fota_strerror(there));
        goto out;
    }
    if (!there && (rc = s->ops->blob_put(s, hash, data, len)) != 0) {
        rc = fota_str_err(err, errlen, rc, "release file %s into postgresql: %s", hash,
                    fota_strerror(rc));
        goto out;
    }
    if ((rc = verify(s, hash, len, err, errlen)) != 0)
        goto out;
    if (there)
        out->present++;
    else
        out->stored++;
    out->bytes += len;
out:
    free(data);
    return rc;
}

int fota_migrate_blobs_put(struct fota_store *s, char *const *hashes, char *const *src_paths,
                           size_t n, struct fota_migrate_blobs *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (!s->ops->blob_put || !s->ops->blob_fetch)
        return fota_str_err(err, errlen, FOTA_ENOTSUP, "the target store keeps no release files");
    for (size_t i = 0; i < n; i++) {
        int rc = move_one(s, hashes[i], src_paths[i], out, err, errlen);
        if (rc)
            return rc;
    }
    return 0;
}
