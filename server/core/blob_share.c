/* blob_share.c - DATA/blobs as each instance's verified copy of the release
 * files the store keeps for all of them (blob_share.h). */
#include "blob_share.h"

#include <event2/event.h>
#include <stdlib.h>

#include "blob.h"
#include "log.h"
#include "server.h"
#include "store.h"
#include "store_exec.h"
#include "xmalloc.h"

#define RESCAN_S 1   /* how often the catalog generation is compared */

/* The prefetch's state (main loop): a round runs after the catalog
 * generation moved (another instance's release, rung by its commit), one at
 * a time. */
struct fota_blob_share {
    struct fota_server *srv;
    struct event *tick;
    uint64_t gen;       /* the generation the last round started at */
    int refs;           /* atomic: the owner's, and a round's while one runs */
};

/* Drops a reference: the last frees. A cancelled round's end may run on a
 * store thread while the owner stops on the main loop. */
static void share_unref(struct fota_blob_share *bs)
{
    if (__atomic_sub_fetch(&bs->refs, 1, __ATOMIC_ACQ_REL) == 0)
        free(bs);
}

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
    struct fota_server *srv = ((struct fota_blob_share *)arg)->srv;
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

/* Main loop: the round is over. */
static void prefetch_done(void *arg, int cancelled)
{
    (void)cancelled;
    share_unref(arg);
}

static void prefetch_submit(struct fota_blob_share *bs)
{
    struct fota_server *srv = bs->srv;
    bs->gen = fota_store_generation(srv->store);
    __atomic_add_fetch(&bs->refs, 1, __ATOMIC_ACQ_REL);
    int rc = fota_store_submit(srv->exec, NULL, srv->loops[0], prefetch_job, prefetch_done, bs);
    if (rc) {
        share_unref(bs);
        FOTA_WARN("shared blobs not prefetched error=%s", fota_errname(rc));
    }
}

static void rescan_tick(evutil_socket_t fd, short what, void *arg)
{
    struct fota_blob_share *bs = arg;
    (void)fd;
    (void)what;
    if (__atomic_load_n(&bs->refs, __ATOMIC_ACQUIRE) == 1 &&
        fota_store_generation(bs->srv->store) != bs->gen)
        prefetch_submit(bs);
}

int fota_blob_share_start(struct fota_server *srv, struct fota_blob_share **out)
{
    static const struct timeval every = { RESCAN_S, 0 };
    struct fota_store *s = srv->store;
    *out = NULL;
    if (!s->ops->blob_put || !s->ops->blob_fetch)
        return 0;
    struct fota_blob_remote r = { remote_put, remote_fetch, s };
    fota_blob_store_set_remote(srv->blobs, &r);
    struct fota_blob_share *bs = fota_xcalloc(1, sizeof *bs);
    bs->srv = srv;
    bs->refs = 1;
    bs->tick = event_new(srv->base, -1, EV_PERSIST, rescan_tick, bs);
    if (!bs->tick || event_add(bs->tick, &every) != 0) {
        fota_blob_share_stop(bs);
        return FOTA_ENOMEM;
    }
    prefetch_submit(bs);
    *out = bs;
    return 0;
}

void fota_blob_share_stop(struct fota_blob_share *bs)
{
    if (!bs)
        return;
    if (bs->tick)
        event_free(bs->tick);
    bs->tick = NULL;
    share_unref(bs);
}
