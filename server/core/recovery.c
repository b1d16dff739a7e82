/* recovery.c - the start-up sweep of orphan blobs (blobs written by an upload
 * whose release transaction never ran) and, in test builds, the
 * FOTA_TEST_CRASH_AT hook that integration tests use to stop fotad between
 * the two. */
#include "recovery.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blob.h"
#include "clock.h"
#include "log.h"
#include "server.h"
#include "store.h"
#include "xmalloc.h"

int fota_recovery_sweep_blobs(struct fota_server *srv, const struct timespec *before)
{
    struct timespec now;
    char (*refs)[FOTA_HASH_HEX] = NULL;
    size_t n = 0;
    unsigned removed = 0, young = 0;
    int rc;

    if (!srv->store->ops->blob_refs)
        return 0;   /* a backend without the op: keep everything */
    rc = srv->store->ops->blob_refs(srv->store, &refs, &n);
    if (rc) {
        FOTA_WARN("orphan blob sweep skipped: cannot list references error=%s",
                  fota_errname(rc));
        return rc;
    }
    if (!before) {
        int64_t ms = fota_clock_wall_ms();
        now.tv_sec = (time_t)(ms / 1000);
        now.tv_nsec = (long)(ms % 1000) * 1000000L;
        before = &now;
    }
    rc = fota_blob_sweep(srv->blobs, (const char (*)[FOTA_HASH_HEX])refs, n, before,
                         &removed, &young);
    free(refs);
    if (removed || young || rc)
        FOTA_INFO("orphan blobs swept removed=%u kept_young=%u referenced=%zu%s", removed,
                  young, n, rc ? " (some could not be read or deleted)" : "");
    return rc;
}

#ifdef FOTA_TEST_HOOKS
void fota_recovery_crash_point(const char *point)
{
    const char *want = getenv("FOTA_TEST_CRASH_AT");
    if (!want || strcmp(want, point) != 0)
        return;
    FOTA_WARN("test crash point=%s", point);
    kill(getpid(), SIGKILL);
    _exit(137);   /* not reached */
}

void fota_recovery_store_threads(struct fota_store *s)
{
    const char *v = getenv("FOTA_TEST_STORE_THREADS");
    if (!v || strcmp(v, "1") != 0 || s->threaded)
        return;
    FOTA_WARN("test store threads: the store's jobs run on store threads");
    s->threaded = 1;
}

void fota_recovery_alloc_arm(void)
{
    const char *n = getenv("FOTA_ALLOC_FAIL_AT");
    unsigned long at = n ? strtoul(n, NULL, 10) : 0;
    if (!at)
        return;
    FOTA_WARN("test allocation failure armed at=%lu", at);
    fota_xmalloc_fail_at(at);
}
#endif
