/* recovery.c - the start-up sweep of orphan blobs (blobs written by an upload
 * whose release transaction never ran) and, in test builds, the
 * FOTA_TEST_CRASH_AT hook that integration tests use to stop fotad between
 * the two, and the FOTA_TEST_HOLD_AT points where a store job waits for a
 * test's release. */
#include "recovery.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blob.h"
#include "clock.h"
#include "fota_str.h"
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

/* Hold points: a store thread waits at a named point until a test releases
 * that point (or HOLD_MAX_S passes), so a test can order two store jobs. */
#define HOLD_POINTS 8
#define HOLD_MAX_S 10

static pthread_mutex_t hold_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_cond;
static pthread_once_t hold_once = PTHREAD_ONCE_INIT;
static struct hold_point {
    char name[32];
    unsigned held;                     /* threads waiting there now */
    uint64_t releases;
} holds[HOLD_POINTS];

static void hold_init(void)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&hold_cond, &a);
    pthread_condattr_destroy(&a);
}

/* point's slot (made on first use), NULL when all are taken; under hold_mu. */
static struct hold_point *hold_slot(const char *point)
{
    for (int i = 0; i < HOLD_POINTS; i++) {
        if (!holds[i].name[0])
            fota_str_copy(holds[i].name, sizeof holds[i].name, point);
        if (strcmp(holds[i].name, point) == 0)
            return &holds[i];
    }
    return NULL;
}

/* point is an item of the comma-separated list want. */
static int listed(const char *want, const char *point)
{
    size_t n = strlen(point);
    for (const char *p = want; (p = strstr(p, point)) != NULL; p += n)
        if ((p == want || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            return 1;
    return 0;
}

int fota_recovery_hold(const char *point)
{
    int64_t ms = fota_clock_mono_raw_ms() + HOLD_MAX_S * 1000;   /* the condvar's clock */
    struct timespec until = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
    int rc = 0, released = 0;
    pthread_once(&hold_once, hold_init);
    pthread_mutex_lock(&hold_mu);
    struct hold_point *h = hold_slot(point);
    if (h) {
        uint64_t seen = h->releases;
        h->held++;
        while (h->releases == seen && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&hold_cond, &hold_mu, &until);
        h->held--;
        released = h->releases != seen;
    }
    pthread_mutex_unlock(&hold_mu);
    return released;
}

void fota_recovery_hold_point(const char *point)
{
    const char *want = getenv("FOTA_TEST_HOLD_AT");
    if (!want || !listed(want, point))
        return;
    FOTA_WARN("test hold point=%s", point);
    fota_recovery_hold(point);
}

unsigned fota_recovery_hold_release(const char *point, int release)
{
    pthread_once(&hold_once, hold_init);
    pthread_mutex_lock(&hold_mu);
    struct hold_point *h = hold_slot(point);
    unsigned n = h ? h->held : 0;
    if (h && release) {
        h->releases++;
        pthread_cond_broadcast(&hold_cond);
    }
    pthread_mutex_unlock(&hold_mu);
    return n;
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
