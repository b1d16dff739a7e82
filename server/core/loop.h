/* loop.h - fotad's event loops: the main loop (device channel, legacy
 * listener, timers, uploads, the REST handlers that touch module state) and
 * worker loops on their own threads (HTTP: ROM downloads, live feeds, the
 * REST handlers that run as store jobs, and everything else marshalled to
 * the main loop). Each loop has a small
 * mutex-protected job queue woken through a libevent event, so any thread can
 * hand work to a loop. evthread_use_pthreads() must run before any base is made. */
#ifndef FOTA_LOOP_H
#define FOTA_LOOP_H

struct event_base;
struct fota_loop;

/* A job: runs on the loop's thread with cancelled = 0, or, if the loop is
 * stopped before it ran, with cancelled = 1 on the stopping thread (free
 * resources only: no libevent calls on that loop). */
typedef void (*fota_loop_fn)(void *arg, int cancelled);

/* A new event base configured for fotad's loops (epoll changelist). */
struct event_base *fota_loop_base_new(void);

/* Wraps base as a loop run by the caller's thread (the main loop: index 0).
 * NULL on out of memory. The caller keeps running event_base_dispatch(base). */
struct fota_loop *fota_loop_adopt(struct event_base *base, int index);
/* Creates a loop with its own base (index > 0), not running yet: events may
 * be made on its base meanwhile. NULL on failure. */
struct fota_loop *fota_loop_new(int index);
/* Starts its thread, which runs init(l, arg) on itself (may be NULL) and then
 * dispatches until fota_loop_stop. 0 or FOTA_ENOMEM. */
int fota_loop_start(struct fota_loop *l, void (*init)(struct fota_loop *l, void *arg), void *arg);
/* Stops a spawned loop (its dispatch ends; pending jobs are cancelled),
 * joins its thread. The base stays until fota_loop_free. */
void fota_loop_stop(struct fota_loop *l);
/* Adopted loops: refuses new jobs and runs (cancelled = 0) the ones queued,
 * on the calling thread, which must be the loop's own (after its dispatch
 * returned). Repeats until the queue is empty. */
void fota_loop_close(struct fota_loop *l);
/* Frees the loop (after stop/close); a spawned loop's base is freed too. */
void fota_loop_free(struct fota_loop *l);

struct event_base *fota_loop_base(const struct fota_loop *l);
int fota_loop_index(const struct fota_loop *l);
/* The loop whose thread is calling, or NULL (e.g. the blob writer thread). */
struct fota_loop *fota_loop_current(void);
/* The index of the loop whose thread is calling, or -1 (the store's loop
 * guard, store.h fota_store_set_loop_guard). */
int fota_loop_current_index(void);

/* Queues fn(arg) on l; any thread. 0, or FOTA_ECLOSED if l no longer takes
 * jobs (fn is not called then). */
int fota_loop_post(struct fota_loop *l, fota_loop_fn fn, void *arg);
/* Runs fn(arg, 0) on l and waits for it: inline when l is the caller's loop.
 * Only worker loops and store threads (store_exec.h) call the main loop
 * this way, and the main loop waits for neither: it never calls a worker
 * (it posts), and nothing waits for a store job (there is no call to wait
 * with: its continuation is posted). So no cycle of waits exists. 0, or
 * FOTA_ECLOSED when l is closed (fn not called). */
int fota_loop_call(struct fota_loop *l, void (*fn)(void *arg), void *arg);

#endif
