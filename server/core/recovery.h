/* recovery.h - start-up clean-up after a crash (orphan blobs) and, in test
 * builds (FOTA_TEST_HOOKS: the asan and tsan trees), the hooks that simulate
 * failures: a crash (FOTA_TEST_CRASH_AT) and running out of memory
 * (FOTA_ALLOC_FAIL_AT). */
#ifndef FOTA_RECOVERY_H
#define FOTA_RECOVERY_H

#include <time.h>

struct fota_server;

/* Deletes blobs no release row names (a crash between the durable blob
 * writes and the release transaction leaves them), if their mtime is before
 * `before` (NULL: now). Call it while holding the data dir lock and before
 * this process can write blobs (before listening): no other fotad writes this
 * blob dir while the lock is held, so every unreferenced blob older than that
 * moment is an orphan; younger unreferenced ones are kept and counted. Logs one INFO line
 * `orphan blobs swept removed=N kept_young=N referenced=N` (and one per blob
 * from the blob store). Call after store and blob store are open, before
 * listening. 0, or the store's / blob store's error (start-up goes on). */
int fota_recovery_sweep_blobs(struct fota_server *srv, const struct timespec *before);

/* Test hook: when the environment variable FOTA_TEST_CRASH_AT equals
 * `point`, logs `test crash point=NAME` at WARN and kills the process with
 * SIGKILL (no clean-up, like a power cut for everything already written to
 * disk). Points: "after_blobs" (release upload: blobs durable, release
 * transaction not started). Release builds compile it to nothing. */
/* Test hook: when the environment variable FOTA_ALLOC_FAIL_AT is N > 0, the
 * N-th allocation after this call (xmalloc.h, every thread counted) and
 * every one after it fail, which aborts fotad as a real out-of-memory would.
 * main.c arms it once fotad is ready. Release builds compile it to nothing. */
/* Test hook: when the environment variable FOTA_TEST_STORE_THREADS is 1,
 * store s (SQLite, whose ops are thread-safe) runs its executor's jobs on
 * store threads (store.h: threaded), as a store that waits for a round
 * trip does: the paths of PostgreSQL's threads, on SQLite. Call it before
 * the executor is made. Release builds compile it to nothing. */
/* Test hook: when the environment variable FOTA_TEST_HOLD_AT (a comma-separated
 * list) names point, fota_recovery_hold_point makes the calling thread (a store
 * thread) wait there: fota_recovery_hold(point), which waits until
 * fota_recovery_hold_release(point, 1) (POST /v1/test/hold/release?point=), at
 * most 10 s, and answers 1 when released. fota_recovery_hold_release answers
 * how many wait at point, and with release set lets them go. Release builds
 * compile the points to nothing. */
struct fota_store;
#ifdef FOTA_TEST_HOOKS
int fota_recovery_hold(const char *point);
void fota_recovery_hold_point(const char *point);
unsigned fota_recovery_hold_release(const char *point, int release);
void fota_recovery_crash_point(const char *point);
void fota_recovery_alloc_arm(void);
void fota_recovery_store_threads(struct fota_store *s);
#else
static inline void fota_recovery_hold_point(const char *point)
{
    (void)point;
}
static inline void fota_recovery_crash_point(const char *point)
{
    (void)point;
}
static inline void fota_recovery_alloc_arm(void)
{
}
static inline void fota_recovery_store_threads(struct fota_store *s)
{
    (void)s;
}
#endif

#endif
