/* store_exec.c - the store executor (store_exec.h): one mutex, one ready
 * queue of jobs that store threads take from the front. A lane has at most
 * one job in the ready queue or running; the rest wait in the lane's own
 * FIFO, and the thread that finishes one moves the next to the ready
 * queue's back, so a busy lane takes turns with the others. In inline mode
 * nothing is queued: the job runs in fota_store_submit. */
#include "store_exec.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "fota_str.h"
#include "log.h"
#include "loop.h"
#include "xmalloc.h"

struct job {
    fota_store_job_fn fn;
    fota_store_done_fn done;
    void *arg;
    struct fota_loop *loop;           /* NULL: no continuation */
    struct fota_store_lane *lane;     /* NULL: the unordered jobs */
    struct job *next;
};

struct fota_store_lane {
    char name[32];
    struct fota_store_exec *x;
    struct job *head, *tail;          /* waiting behind the one scheduled */
    int scheduled;                    /* one job of the lane is ready or running */
    unsigned inflight;                /* submitted, not finished */
    int64_t warn_ms;                  /* fota_clock_mono_ms() of the last "full" line */
    unsigned refused;                 /* refusals not logged yet */
    struct fota_store_lane *next;     /* x->lanes */
};

struct fota_store_exec {
    struct fota_store *store;
    int threaded;
    pthread_mutex_t lock;
    pthread_cond_t work;              /* ready queue not empty, or stopping */
    pthread_cond_t idle;              /* pending reached 0 */
    struct job *ready, *ready_tail;
    size_t pending;                   /* submitted, not finished */
    int stopping;
    struct fota_store_lane any;       /* the jobs on no lane (only its bound and log) */
    struct fota_store_lane *lanes;
    unsigned nthreads;
    pthread_t *threads;
};

static void done_job(void *arg, int cancelled)
{
    struct job *j = arg;
    j->done(j->arg, cancelled);
    free(j);
}

/* Posts j's continuation (or cancels it when its loop is closed) and frees
 * j: the caller must not touch it afterwards. */
static void finish(struct job *j)
{
    if (j->loop && j->done) {
        if (fota_loop_post(j->loop, done_job, j) == 0)
            return;
        j->done(j->arg, 1);
    }
    free(j);
}

static void ready_push(struct fota_store_exec *x, struct job *j)
{
    j->next = NULL;
    if (x->ready_tail)
        x->ready_tail->next = j;
    else
        x->ready = j;
    x->ready_tail = j;
    pthread_cond_signal(&x->work);
}

/* Under x->lock, after a job of lane finished. */
static void lane_next(struct fota_store_exec *x, struct fota_store_lane *lane)
{
    lane->inflight--;
    if (lane == &x->any)
        return;
    struct job *j = lane->head;
    if (!j) {
        lane->scheduled = 0;
        return;
    }
    lane->head = j->next;
    if (!lane->head)
        lane->tail = NULL;
    ready_push(x, j);
}

static void *store_thread(void *arg)
{
    struct fota_store_exec *x = arg;
    struct fota_store *s = x->store;
    if (s->thread_begin)
        s->thread_begin(s);
    pthread_mutex_lock(&x->lock);
    for (;;) {
        while (!x->ready && !x->stopping)
            pthread_cond_wait(&x->work, &x->lock);
        struct job *j = x->ready;
        if (!j)
            break;                    /* stopping, nothing left */
        x->ready = j->next;
        if (!x->ready)
            x->ready_tail = NULL;
        pthread_mutex_unlock(&x->lock);

        struct fota_store_lane *lane = j->lane;
        j->fn(s, j->arg);
        finish(j);                    /* before the lane's next job: continuations in order */

        pthread_mutex_lock(&x->lock);
        lane_next(x, lane ? lane : &x->any);
        if (--x->pending == 0)
            pthread_cond_broadcast(&x->idle);
    }
    pthread_mutex_unlock(&x->lock);
    if (s->thread_end)
        s->thread_end(s);
    return NULL;
}

static void lane_init(struct fota_store_lane *lane, struct fota_store_exec *x, const char *name)
{
    fota_str_copy(lane->name, sizeof(lane->name), name ? name : "");
    lane->x = x;
}

/* Joins the store threads (they finish the ready queue first). */
static void stop_threads(struct fota_store_exec *x, unsigned started)
{
    pthread_mutex_lock(&x->lock);
    x->stopping = 1;
    pthread_cond_broadcast(&x->work);
    pthread_mutex_unlock(&x->lock);
    for (unsigned i = 0; i < started; i++)
        pthread_join(x->threads[i], NULL);
}

static void exec_destroy(struct fota_store_exec *x)
{
    for (struct fota_store_lane *l = x->lanes, *next; l; l = next) {
        next = l->next;
        free(l);
    }
    free(x->threads);
    pthread_cond_destroy(&x->idle);
    pthread_cond_destroy(&x->work);
    pthread_mutex_destroy(&x->lock);
    free(x);
}

int fota_store_exec_new(struct fota_store *s, unsigned threads, struct fota_store_exec **out)
{
    *out = NULL;
    if (threads > FOTA_STORE_THREADS_MAX)
        return FOTA_EINVAL;
    struct fota_store_exec *x = fota_xcalloc(1, sizeof(*x));
    x->store = s;
    x->threaded = s->threaded != 0;
    pthread_mutex_init(&x->lock, NULL);
    pthread_cond_init(&x->work, NULL);
    pthread_cond_init(&x->idle, NULL);
    lane_init(&x->any, x, "any");
    if (x->threaded) {
        x->nthreads = threads ? threads : FOTA_STORE_THREADS_DEFAULT;
        x->threads = fota_xcalloc(x->nthreads, sizeof(*x->threads));
        for (unsigned i = 0; i < x->nthreads; i++)
            if (pthread_create(&x->threads[i], NULL, store_thread, x) != 0) {
                stop_threads(x, i);
                exec_destroy(x);
                return FOTA_ENOMEM;
            }
    }
    *out = x;
    return 0;
}

int fota_store_exec_threaded(const struct fota_store_exec *x)
{
    return x->threaded;
}

struct fota_store_lane *fota_store_lane_new(struct fota_store_exec *x, const char *name)
{
    struct fota_store_lane *lane = fota_xcalloc(1, sizeof(*lane));
    lane_init(lane, x, name);
    pthread_mutex_lock(&x->lock);
    lane->next = x->lanes;
    x->lanes = lane;
    pthread_mutex_unlock(&x->lock);
    return lane;
}

/* Under x->lock: counts a refusal of lane; 1 when a line is due (one a
 * second), with *n the refusals it reports (this one and those held back). */
static int refusal_due(struct fota_store_lane *lane, unsigned *n)
{
    int64_t now = fota_clock_mono_ms();
    lane->refused++;
    if (lane->warn_ms && now - lane->warn_ms < 1000)
        return 0;
    *n = lane->refused;
    lane->refused = 0;
    lane->warn_ms = now;
    return 1;
}

int fota_store_submit(struct fota_store_exec *x, struct fota_store_lane *lane,
                      struct fota_loop *loop, fota_store_job_fn job, fota_store_done_fn done,
                      void *arg)
{
    if (lane && lane->x != x)
        return FOTA_EINVAL;
    struct job *j = fota_xmalloc(sizeof(*j));
    *j = (struct job){ .fn = job, .done = done, .arg = arg, .loop = loop, .lane = lane };
    if (!x->threaded) {
        job(x->store, arg);
        finish(j);
        return 0;
    }
    struct fota_store_lane *bound = lane ? lane : &x->any;
    unsigned refused = 0;
    pthread_mutex_lock(&x->lock);
    if (bound->inflight >= FOTA_STORE_LANE_MAX) {
        int log = refusal_due(bound, &refused);
        pthread_mutex_unlock(&x->lock);
        free(j);
        if (log)
            FOTA_WARN("mod=store store lane full, jobs refused lane=%s max=%u refused=%u",
                      bound->name, FOTA_STORE_LANE_MAX, refused);
        return FOTA_EBUSY;
    }
    bound->inflight++;
    x->pending++;
    if (!lane) {
        ready_push(x, j);
    } else if (!lane->scheduled) {
        lane->scheduled = 1;
        ready_push(x, j);
    } else {
        j->next = NULL;
        if (lane->tail)
            lane->tail->next = j;
        else
            lane->head = j;
        lane->tail = j;
    }
    pthread_mutex_unlock(&x->lock);
    return 0;
}

void fota_store_exec_drain(struct fota_store_exec *x)
{
    if (!x)
        return;
    pthread_mutex_lock(&x->lock);
    while (x->pending)
        pthread_cond_wait(&x->idle, &x->lock);
    pthread_mutex_unlock(&x->lock);
}

void fota_store_exec_free(struct fota_store_exec *x)
{
    if (!x)
        return;
    fota_store_exec_drain(x);
    stop_threads(x, x->nthreads);
    exec_destroy(x);
}
