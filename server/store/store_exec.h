/* store_exec.h - the store executor: how fotad's event loops run store work
 * without waiting for it. A loop submits a job (synchronous store code) and
 * goes on; the job runs on a store thread, or inline for a store whose ops
 * cost microseconds, and its continuation runs later on the loop that asked.
 *
 * Two modes, chosen by the store (struct fota_store.threaded, store.h):
 *   - inline (SQLite): fota_store_submit runs the job on the calling thread,
 *     serialised by the store's own mutex as any op, and posts the
 *     continuation to the loop: it is always deferred, never run before
 *     fota_store_submit returns.
 *   - threads (PostgreSQL): N store threads of the executor's own run the
 *     jobs. Each calls the store's thread_begin before its first job and
 *     thread_end after its last (a connection per thread).
 * Callers write one code path for both: job on any thread, continuation on
 * their loop.
 *
 * Lanes give order: a lane's jobs run one at a time, in submission order,
 * on any store thread, and their continuations reach a loop in that order.
 * Jobs on no lane (lane NULL) run in any order, several at once. In inline
 * mode a job runs when it is submitted: a lane fed by one thread (each lane
 * has one submitting loop) keeps its order there too.
 *
 * Back-pressure: a lane holds at most FOTA_STORE_LANE_MAX jobs submitted and
 * not yet finished (the jobs on no lane count as one more lane); beyond it
 * fota_store_submit refuses with FOTA_EBUSY, which a batching writer merges
 * into its next batch and a request answers with 503 `store busy`.
 *
 * No call waits for a job (fota_store_exec_drain, for shutdown once the
 * loops stopped, aside): a loop must never wait on a store thread, because
 * store threads may wait on the main loop (fota_loop_call), so the only way
 * back is the continuation. A job touches only what its arg owns
 * (copies of rows, its results); a loop's state is touched in the
 * continuation alone, which runs on that loop. */
#ifndef FOTA_STORE_EXEC_H
#define FOTA_STORE_EXEC_H

#include "store.h"

struct fota_loop;
struct fota_store_exec;
struct fota_store_lane;   /* a serial queue of jobs, owned by its executor */

#define FOTA_STORE_THREADS_DEFAULT 4
#define FOTA_STORE_THREADS_MAX 64
#define FOTA_STORE_LANE_MAX 4096   /* jobs in flight per lane */

/* A unit of store work with the store handle; runs on a store thread
 * (threads mode) or on the submitting thread (inline). */
typedef void (*fota_store_job_fn)(struct fota_store *s, void *arg);
/* The continuation: runs after the job, on the loop given to
 * fota_store_submit, with cancelled = 0. When that loop no longer takes
 * jobs (it is stopping), it runs instead with cancelled = 1 on whichever
 * thread found the loop closed (a store thread, the submitter, or the
 * loop's stopping thread): free arg only, touch no loop. */
typedef void (*fota_store_done_fn)(void *arg, int cancelled);

/* An executor for store s (borrowed: it outlives the executor). threads is
 * the number of store threads when s->threaded (1..FOTA_STORE_THREADS_MAX;
 * 0 = FOTA_STORE_THREADS_DEFAULT) and unused in inline mode. 0 and *out, or
 * FOTA_EINVAL (too many threads) or FOTA_ENOMEM (a thread did not start;
 * the ones started are joined). */
int fota_store_exec_new(struct fota_store *s, unsigned threads, struct fota_store_exec **out);
/* 1 when jobs run on store threads, 0 inline. */
int fota_store_exec_threaded(const struct fota_store_exec *x);
/* A new lane named name (copied; for log lines). The executor owns it and
 * frees it in fota_store_exec_free. Any thread. */
struct fota_store_lane *fota_store_lane_new(struct fota_store_exec *x, const char *name);

/* Queues job(s, arg) on lane (NULL: no order) of x; afterwards done(arg, 0)
 * is posted to loop (fota_loop_post). loop NULL or done NULL: no
 * continuation, so arg is the job's to free. Any thread, a job's included.
 * 0, or FOTA_EBUSY when the lane holds FOTA_STORE_LANE_MAX jobs (a WARN
 * line, at most one a second per lane, says so), FOTA_EINVAL for a lane of
 * another executor; neither job nor done is called then. */
int fota_store_submit(struct fota_store_exec *x, struct fota_store_lane *lane,
                      struct fota_loop *loop, fota_store_job_fn job, fota_store_done_fn done,
                      void *arg);

/* Returns once every job submitted before or during the call has run and
 * its continuation has been posted, or cancelled (done(arg, 1)) because its
 * loop had stopped. At shutdown (after the loops stop, before the store
 * closes) it finishes the queued writes. Jobs may still be submitted
 * meanwhile, and after it. Not from a store thread, nor from a loop that
 * a job may wait on (fota_loop_call) while that loop still takes jobs: the
 * job would wait for the loop and the loop for the job. NULL-safe. */
void fota_store_exec_drain(struct fota_store_exec *x);
/* Drains (as fota_store_exec_drain, with its limits), stops and joins the
 * store threads (each runs thread_end) and frees the lanes and x. No job
 * may be submitted once it started. NULL-safe. */
void fota_store_exec_free(struct fota_store_exec *x);

#endif
