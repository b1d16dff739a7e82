/* blob_share.c - DATA/blobs as each instance's verified copy of the release
 * files the store keeps for all of them (blob_share.h). */
#include "blob_share.h"

#include <stdlib.h>

#include "blob.h"
#include "log.h"
#include "server.h"
#include "store.h"
#include "store_exec.h"

static int remote_put(void *ud, const char *hash, const void *data, size_t len)
{
    struct fota_store *s = ud;
    return s->ops->blob_put(s, hash, data, len);
}

static int remote_fetch(void *ud, const char *hash,
                        int (*sink)(void *sink_ud, const void *data, size_t len), void *sink_ud,
                        int64_t *size)
{
    struct fota_store *s = ud;
    return s->ops->blob_fetch(s, hash, sink, sink_ud, size);
}

/* A store job: every referenced blob made present here, one at a time. */
static void prefetch_job(struct fota_store *s, void *arg)
{
    struct fota_server *srv = arg;
    char (*refs)[FOTA_HASH_HEX] = NULL;
    size_t n = 0;
    unsigned copied = 0, failed = 0;
    int rc = s->ops->blob_refs(s, &refs, &n);

    if (rc) {
        FOTA_WARN("shared blobs not prefetched: cannot list references error=%s",
                  fota_errname(rc));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (fota_blob_exists(srv->blobs, refs[i]) == 1)
            continue;
        rc = fota_blob_fill(srv->blobs, refs[i]);
        if (rc == 0) {
            copied++;
        } else {
            failed++;
            FOTA_WARN("shared blob not prefetched sha256=%s error=%s", refs[i],
                      fota_errname(rc));
        }
    }
    free(refs);
    if (copied || failed)
        FOTA_INFO("shared blobs prefetched copied=%u failed=%u referenced=%zu", copied, failed, n);
}

void fota_blob_share_start(struct fota_server *srv)
{
    struct fota_store *s = srv->store;
    if (!s->ops->blob_put || !s->ops->blob_fetch)
        return;
    struct fota_blob_remote r = { remote_put, remote_fetch, s };
    fota_blob_store_set_remote(srv->blobs, &r);
    int rc = fota_store_submit(srv->exec, NULL, NULL, prefetch_job, NULL, srv);
    if (rc)
        FOTA_WARN("shared blobs not prefetched error=%s", fota_errname(rc));
}
