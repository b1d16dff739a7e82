/* store_exec_test.c - the store executor (server/store/store_exec.c) on
 * every backend of store_fixture.c with store threads (forced on for
 * SQLite, whose ops are thread-safe), and on SQLite inline as fotad runs
 * it: order and exclusion within a lane under many threads, jobs on no lane
 * at once, continuations on the submitting loop's thread (real fota loops),
 * inline mode never calling back before submit returns, the lane bound,
 * drain and free with loops stopped, the per-thread hooks, and store ops
 * from store threads. One cmocka group per backend and mode. */
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"
#include "store_exec.h"
#include "store_fixture.h"

#define WAIT_S 20   /* deadline of every wait: a hang fails instead */

/* A counter that threads bump and a test thread waits on. */
struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int n;
    int open;                         /* a gate: jobs wait until it opens */
};

static void waiter_init(struct waiter *w)
{
    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
}

static void waiter_cleanup(struct waiter *w)
{
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
}

static void waiter_add(struct waiter *w)
{
    pthread_mutex_lock(&w->lock);
    w->n++;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static int deadline_wait(struct waiter *w, const struct timespec *until)
{
    return pthread_cond_timedwait(&w->cond, &w->lock, until) == ETIMEDOUT ? -1 : 0;
}

static struct timespec deadline(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += WAIT_S;
    return t;
}

/* 0 once w->n >= n, -1 at the deadline. */
static int waiter_until(struct waiter *w, int n)
{
    struct timespec until = deadline();
    int rc = 0;
    pthread_mutex_lock(&w->lock);
    while (w->n < n && rc == 0)
        rc = deadline_wait(w, &until);
    rc = w->n >= n ? 0 : -1;
    pthread_mutex_unlock(&w->lock);
    return rc;
}

static void gate_open(struct waiter *w)
{
    pthread_mutex_lock(&w->lock);
    w->open = 1;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

/* Waits (bounded) for the gate; 0 when it opened. */
static int gate_pass(struct waiter *w)
{
    struct timespec until = deadline();
    int rc = 0;
    pthread_mutex_lock(&w->lock);
    while (!w->open && rc == 0)
        rc = deadline_wait(w, &until);
    rc = w->open ? 0 : -1;
    pthread_mutex_unlock(&w->lock);
    return rc;
}

static struct fota_loop *loop_spawn(int index)
{
    struct fota_loop *l = fota_loop_new(index);
    assert_non_null(l);
    assert_int_equal(fota_loop_start(l, NULL, NULL), 0);
    return l;
}

static void loop_end(struct fota_loop *l)
{
    fota_loop_stop(l);
    fota_loop_free(l);
}

/* ------------------------------------------------ order within a lane */

#define LANES 4
#define PER_LANE 2000
#define ORDER_JOBS (LANES * PER_LANE)

struct order_lane {
    struct fota_store_lane *lane;
    int running;                      /* jobs of the lane running now (atomic) */
    int overlap;                      /* times two ran at once (atomic) */
    int next_job;                     /* the sequence number the next job must have */
    int job_errors;
    int next_done;                    /* the same for continuations (loop thread) */
    int done_errors;
};

struct order_arg {
    struct order_lane *ol;
    int seq;
    struct fota_loop *loop;
    struct waiter *w;
    int wrong_loop;
};

static void order_job(struct fota_store *s, void *arg)
{
    struct order_arg *a = arg;
    struct order_lane *ol = a->ol;
    (void)s;
    if (__atomic_add_fetch(&ol->running, 1, __ATOMIC_SEQ_CST) != 1)
        __atomic_add_fetch(&ol->overlap, 1, __ATOMIC_SEQ_CST);
    if (ol->next_job != a->seq)
        ol->job_errors++;
    ol->next_job = a->seq + 1;
    __atomic_sub_fetch(&ol->running, 1, __ATOMIC_SEQ_CST);
}

static void order_done(void *arg, int cancelled)
{
    struct order_arg *a = arg;
    if (cancelled || fota_loop_current() != a->loop)
        a->wrong_loop = 1;
    if (a->ol->next_done != a->seq)
        a->ol->done_errors++;
    a->ol->next_done = a->seq + 1;
    waiter_add(a->w);
}

static void test_lane_order(void **st)
{
    struct fota_store *s = store_of(st);
    s->threaded = 1;
    struct fota_store_exec *x;
    assert_int_equal(fota_store_exec_new(s, 8, &x), 0);
    assert_int_equal(fota_store_exec_threaded(x), 1);
    struct fota_loop *l = loop_spawn(1);
    struct waiter w;
    waiter_init(&w);
    static struct order_lane lanes[LANES];
    static struct order_arg args[ORDER_JOBS];
    memset(lanes, 0, sizeof(lanes));
    for (int i = 0; i < LANES; i++) {
        char name[16];
        snprintf(name, sizeof(name), "order%d", i);
        lanes[i].lane = fota_store_lane_new(x, name);
        assert_non_null(lanes[i].lane);
    }
    /* Interleaved over the lanes, so all of them are busy at once. */
    for (int k = 0; k < PER_LANE; k++)
        for (int i = 0; i < LANES; i++) {
            struct order_arg *a = &args[k * LANES + i];
            *a = (struct order_arg){ .ol = &lanes[i], .seq = k, .loop = l, .w = &w };
            assert_int_equal(fota_store_submit(x, lanes[i].lane, l, order_job, order_done, a), 0);
        }
    assert_int_equal(waiter_until(&w, ORDER_JOBS), 0);
    fota_store_exec_drain(x);
    for (int i = 0; i < LANES; i++) {
        assert_int_equal(__atomic_load_n(&lanes[i].overlap, __ATOMIC_SEQ_CST), 0);
        assert_int_equal(lanes[i].job_errors, 0);
        assert_int_equal(lanes[i].next_job, PER_LANE);
        assert_int_equal(lanes[i].done_errors, 0);
        assert_int_equal(lanes[i].next_done, PER_LANE);
    }
    for (int i = 0; i < ORDER_JOBS; i++)
        assert_int_equal(args[i].wrong_loop, 0);
    loop_end(l);
    fota_store_exec_free(x);
    waiter_cleanup(&w);
}

/* ------------------------------------- jobs on no lane run concurrently */

struct meet {
    struct waiter *w;                 /* n: jobs arrived */
    int want;
    int met;                          /* jobs that saw every other arrive (atomic) */
};

static void meet_job(struct fota_store *s, void *arg)
{
    struct meet *m = arg;
    (void)s;
    waiter_add(m->w);
    if (waiter_until(m->w, m->want) == 0)
        __atomic_add_fetch(&m->met, 1, __ATOMIC_SEQ_CST);
}

static void test_unordered_concurrent(void **st)
{
    struct fota_store *s = store_of(st);
    s->threaded = 1;
    struct fota_store_exec *x;
    assert_int_equal(fota_store_exec_new(s, 4, &x), 0);
    struct waiter w;
    waiter_init(&w);
    /* Each job waits until all four have started: only four jobs running
     * at once on four threads gets there. */
    struct meet m = { .w = &w, .want = 4 };
    for (int i = 0; i < 4; i++)
        assert_int_equal(fota_store_submit(x, NULL, NULL, meet_job, NULL, &m), 0);
    fota_store_exec_drain(x);
    assert_int_equal(__atomic_load_n(&m.met, __ATOMIC_SEQ_CST), 4);
    fota_store_exec_free(x);
    waiter_cleanup(&w);
}

/* ------------------------------ the continuation on the submitting loop */

struct where {
    pthread_t submitter;
    pthread_t job_thread;
    struct fota_loop *job_loop;       /* fota_loop_current() in the job */
    struct fota_loop *done_loop;
    pthread_t done_thread;
    int cancelled;
    int returned;                     /* fota_store_submit had returned (atomic) */
    int done_before_return;
    int submit_rc;
    struct fota_store_exec *x;
    struct waiter *w;
};

static void where_job(struct fota_store *s, void *arg)
{
    struct where *p = arg;
    (void)s;
    p->job_thread = pthread_self();
    p->job_loop = fota_loop_current();
}

static void where_done(void *arg, int cancelled)
{
    struct where *p = arg;
    p->done_thread = pthread_self();
    p->done_loop = fota_loop_current();
    p->cancelled = cancelled;
    if (!__atomic_load_n(&p->returned, __ATOMIC_SEQ_CST))
        p->done_before_return = 1;
    waiter_add(p->w);
}

/* Runs on a loop: submits with that loop as the continuation's. */
static void submit_from_loop(void *arg, int cancelled)
{
    struct where *p = arg;
    if (cancelled)
        return;
    p->submitter = pthread_self();
    p->submit_rc = fota_store_submit(p->x, NULL, fota_loop_current(), where_job, where_done, p);
    __atomic_store_n(&p->returned, 1, __ATOMIC_SEQ_CST);
}

/* Two loops each submit one job; threaded: store threads, or inline. */
static void continuation_case(struct fota_store *s, int threaded)
{
    s->threaded = threaded;
    struct fota_store_exec *x;
    assert_int_equal(fota_store_exec_new(s, 2, &x), 0);
    assert_int_equal(fota_store_exec_threaded(x), threaded);
    struct fota_loop *a = loop_spawn(1), *b = loop_spawn(2);
    struct waiter w;
    waiter_init(&w);
    struct where pa = { .x = x, .w = &w }, pb = { .x = x, .w = &w };
    assert_int_equal(fota_loop_post(a, submit_from_loop, &pa), 0);
    assert_int_equal(fota_loop_post(b, submit_from_loop, &pb), 0);
    assert_int_equal(waiter_until(&w, 2), 0);
    struct where *ps[] = { &pa, &pb };
    struct fota_loop *ls[] = { a, b };
    for (int i = 0; i < 2; i++) {
        struct where *p = ps[i];
        assert_int_equal(p->submit_rc, 0);
        assert_ptr_equal(p->done_loop, ls[i]);
        assert_true(pthread_equal(p->done_thread, p->submitter));
        assert_int_equal(p->cancelled, 0);
        assert_int_equal(p->done_before_return, 0);
        if (threaded) {   /* on a store thread, not a loop */
            assert_null(p->job_loop);
            assert_false(pthread_equal(p->job_thread, p->submitter));
        } else {          /* inline: on the submitting loop */
            assert_ptr_equal(p->job_loop, ls[i]);
            assert_true(pthread_equal(p->job_thread, p->submitter));
        }
    }
    fota_store_exec_drain(x);   /* every post made: a store thread may still be in one */
    loop_end(a);
    loop_end(b);
    fota_store_exec_free(x);
    waiter_cleanup(&w);
}

static void test_continuation_threads(void **st)
{
    continuation_case(store_of(st), 1);
}

static void test_continuation_inline(void **st)
{
    continuation_case(store_of(st), 0);
}

/* ------------------------------- inline: done is never called inline */

struct flag {
    int job;
    int done;
    int cancelled;
};

static void flag_job(struct fota_store *s, void *arg)
{
    (void)s;
    ((struct flag *)arg)->job++;
}

static void flag_done(void *arg, int cancelled)
{
    struct flag *f = arg;
    f->done++;
    f->cancelled = cancelled;
}

static void test_inline_deferred(void **st)
{
    struct fota_store *s = store_of(st);
    struct fota_store_exec *x;
    assert_int_equal(fota_store_exec_new(s, 0, &x), 0);
    assert_int_equal(fota_store_exec_threaded(x), 0);
    struct event_base *base = fota_loop_base_new();
    assert_non_null(base);
    struct fota_loop *l = fota_loop_adopt(base, 0);
    assert_non_null(l);
    struct fota_store_lane *lane = fota_store_lane_new(x, "inline");

    struct flag f[2] = { { 0 } };
    assert_int_equal(fota_store_submit(x, lane, l, flag_job, flag_done, &f[0]), 0);
    assert_int_equal(fota_store_submit(x, NULL, l, flag_job, flag_done, &f[1]), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(f[i].job, 1);     /* the job ran in submit */
        assert_int_equal(f[i].done, 0);    /* its continuation waits for the loop */
    }
    event_base_loop(base, EVLOOP_NONBLOCK);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(f[i].done, 1);
        assert_int_equal(f[i].cancelled, 0);
    }

    /* No loop: the job runs, nothing follows. */
    struct flag g = { 0 };
    assert_int_equal(fota_store_submit(x, lane, NULL, flag_job, flag_done, &g), 0);
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(g.job, 1);
    assert_int_equal(g.done, 0);

    /* A loop that takes no more jobs: the job runs, done says cancelled. */
    fota_loop_close(l);
    struct flag h = { 0 };
    assert_int_equal(fota_store_submit(x, lane, l, flag_job, flag_done, &h), 0);
    assert_int_equal(h.job, 1);
    assert_int_equal(h.done, 1);
    assert_int_equal(h.cancelled, 1);

    fota_store_exec_drain(x);   /* nothing queued: returns */
    fota_store_exec_free(x);
    fota_loop_free(l);
    event_base_free(base);
}

/* ------------------------------------------------------ the lane bound */

struct bound {
    struct waiter *gate;
    int ran;                          /* atomic */
    int blocked_ok;
};

static void gated_job(struct fota_store *s, void *arg)
{
    struct bound *b = arg;
    (void)s;
    if (gate_pass(b->gate) == 0)
        b->blocked_ok = 1;
    __atomic_add_fetch(&b->ran, 1, __ATOMIC_SEQ_CST);
}

static void count_job(struct fota_store *s, void *arg)
{
    (void)s;
    __atomic_add_fetch(&((struct bound *)arg)->ran, 1, __ATOMIC_SEQ_CST);
}

static void test_bound(void **st)
{
    struct fota_store *s = store_of(st);
    s->threaded = 1;
    struct fota_store_exec *x;
    assert_int_equal(fota_store_exec_new(s, 1, &x), 0);
    struct fota_store_lane *lane = fota_store_lane_new(x, "bounded");
    struct fota_store_lane *other = fota_store_lane_new(x, "other");
    struct waiter gate;
    waiter_init(&gate);
    struct bound b = { .gate = &gate };

    /* The one thread waits at the gate: every later job stays queued. */
    assert_int_equal(fota_store_submit(x, lane, NULL, gated_job, NULL, &b), 0);
    for (int i = 1; i < FOTA_STORE_LANE_MAX; i++)
        assert_int_equal(fota_store_submit(x, lane, NULL, count_job, NULL, &b), 0);
    assert_int_equal(fota_store_submit(x, lane, NULL, count_job, NULL, &b), FOTA_EBUSY);
    assert_int_equal(fota_store_submit(x, lane, NULL, count_job, NULL, &b), FOTA_EBUSY);
    /* The jobs on no lane have a bound of their own, and other lanes too. */
    for (int i = 0; i < FOTA_STORE_LANE_MAX; i++)
        assert_int_equal(fota_store_submit(x, NULL, NULL, count_job, NULL, &b), 0);
    assert_int_equal(fota_store_submit(x, NULL, NULL, count_job, NULL, &b), FOTA_EBUSY);
    assert_int_equal(fota_store_submit(x, other, NULL, count_job, NULL, &b), 0);

    gate_open(&gate);
    fota_store_exec_drain(x);
    assert_int_equal(b.blocked_ok, 1);
    assert_int_equal(__atomic_load_n(&b.ran, __ATOMIC_SEQ_CST), 2 * FOTA_STORE_LANE_MAX + 1);
    /* Room again once they ran. */
    assert_int_equal(fota_store_submit(x, lane, NULL, count_job, NULL, &b), 0);
    fota_store_exec_drain(x);
    assert_int_equal(__atomic_load_n(&b.ran, __ATOMIC_SEQ_CST), 2 * FOTA_STORE_LANE_MAX + 2);

    /* A lane of another executor is refused. */
    struct fota_store_exec *y;
    assert_int_equal(fota_store_exec_new(s, 1, &y), 0);
    assert_int_equal(fota_store_submit(y, lane, NULL, count_job, NULL, &b), FOTA_EINVAL);
    fota_store_exec_free(y);
    assert_int_equal(fota_store_exec_new(s, FOTA_STORE_THREADS_MAX + 1, &y), FOTA_EINVAL);
    assert_null(y);

    fota_store_exec_free(x);
    waiter_cleanup(&gate);
}

/* ------------------- drain with the loops stopped; free joins the threads */

struct shut {
    struct waiter *gate;
    int ran;                          /* atomic */
    int done;                         /* atomic */
    int cancelled;                    /* atomic */
};

static void shut_job(struct fota_store *s, void *arg)
{
    struct shut *t = arg;
    (void)s;
    gate_pass(t->gate);
    __atomic_add_fetch(&t->ran, 1, __ATOMIC_SEQ_CST);
}

static void shut_done(void *arg, int cancelled)
{
    struct shut *t = arg;
    __atomic_add_fetch(&t->done, 1, __ATOMIC_SEQ_CST);
    if (cancelled)
        __atomic_add_fetch(&t->cancelled, 1, __ATOMIC_SEQ_CST);
}

static void test_drain_on_stop(void **st)
{
    struct fota_store *s = store_of(st);
    s->threaded = 1;
    struct fota_store_exec *x;
    assert_int_equal(fota_store_exec_new(s, 3, &x), 0);
    struct fota_store_lane *lane = fota_store_lane_new(x, "writes");
    struct fota_loop *l = loop_spawn(1);
    struct waiter gate;
    waiter_init(&gate);
    struct shut t = { .gate = &gate };
    for (int i = 0; i < 50; i++)
        assert_int_equal(fota_store_submit(x, i % 2 ? lane : NULL, l, shut_job, shut_done, &t), 0);
    /* The loop stops while every job is still queued or at the gate. */
    fota_loop_stop(l);
    gate_open(&gate);
    fota_store_exec_drain(x);
    assert_int_equal(__atomic_load_n(&t.ran, __ATOMIC_SEQ_CST), 50);
    assert_int_equal(__atomic_load_n(&t.done, __ATOMIC_SEQ_CST), 50);
    assert_int_equal(__atomic_load_n(&t.cancelled, __ATOMIC_SEQ_CST), 50);
    fota_loop_free(l);
    fota_store_exec_free(x);
    waiter_cleanup(&gate);
}

static int begun, ended;              /* thread hooks run (atomic) */
static _Thread_local int thread_ready; /* set by the hook on its thread */
/* The backend's own hooks (a connection per thread), which ours call. */
static void (*backend_begin)(struct fota_store *s);
static void (*backend_end)(struct fota_store *s);

static void hook_begin(struct fota_store *s)
{
    if (backend_begin)
        backend_begin(s);
    thread_ready = 1;
    __atomic_add_fetch(&begun, 1, __ATOMIC_SEQ_CST);
}

static void hook_end(struct fota_store *s)
{
    thread_ready = 0;
    __atomic_add_fetch(&ended, 1, __ATOMIC_SEQ_CST);
    if (backend_end)
        backend_end(s);
}

struct hooked {
    int ran;                          /* atomic */
    int without_hook;                 /* atomic */
};

static void hooked_job(struct fota_store *s, void *arg)
{
    struct hooked *h = arg;
    (void)s;
    if (!thread_ready)
        __atomic_add_fetch(&h->without_hook, 1, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&h->ran, 1, __ATOMIC_SEQ_CST);
}

static void hooks_install(struct fota_store *s)
{
    backend_begin = s->thread_begin;
    backend_end = s->thread_end;
    s->thread_begin = hook_begin;
    s->thread_end = hook_end;
    __atomic_store_n(&begun, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&ended, 0, __ATOMIC_SEQ_CST);
}

static void hooks_remove(struct fota_store *s)
{
    s->thread_begin = backend_begin;
    s->thread_end = backend_end;
}

static void test_free_joins(void **st)
{
    struct fota_store *s = store_of(st);
    s->threaded = 1;
    hooks_install(s);
    struct fota_store_exec *x;
    assert_int_equal(fota_store_exec_new(s, 3, &x), 0);
    struct fota_store_lane *lane = fota_store_lane_new(x, "last");
    struct hooked h = { 0 };
    for (int i = 0; i < 300; i++)
        assert_int_equal(fota_store_submit(x, i % 3 ? lane : NULL, NULL, hooked_job, NULL, &h), 0);
    /* Free with jobs queued: they run, then every thread ends and is joined. */
    fota_store_exec_free(x);
    hooks_remove(s);
    assert_int_equal(__atomic_load_n(&h.ran, __ATOMIC_SEQ_CST), 300);
    assert_int_equal(__atomic_load_n(&h.without_hook, __ATOMIC_SEQ_CST), 0);
    assert_int_equal(__atomic_load_n(&begun, __ATOMIC_SEQ_CST), 3);
    assert_int_equal(__atomic_load_n(&ended, __ATOMIC_SEQ_CST), 3);
    assert_int_equal(thread_ready, 0);   /* the hooks never ran on this thread */
}

static void test_inline_no_threads(void **st)
{
    struct fota_store *s = store_of(st);
    hooks_install(s);
    struct fota_store_exec *x;
    assert_int_equal(fota_store_exec_new(s, 3, &x), 0);
    assert_int_equal(fota_store_exec_threaded(x), 0);
    struct hooked h = { 0 };
    assert_int_equal(fota_store_submit(x, NULL, NULL, hooked_job, NULL, &h), 0);
    assert_int_equal(__atomic_load_n(&h.ran, __ATOMIC_SEQ_CST), 1);
    fota_store_exec_free(x);
    hooks_remove(s);
    assert_int_equal(__atomic_load_n(&begun, __ATOMIC_SEQ_CST), 0);
    assert_int_equal(__atomic_load_n(&ended, __ATOMIC_SEQ_CST), 0);
    assert_int_equal(__atomic_load_n(&h.without_hook, __ATOMIC_SEQ_CST), 1);
}

/* ------------------------------------------ store ops from store threads */

#define DEV_JOBS 200

struct dev_job {
    int64_t product_id;
    int i;
    int rc_create, rc_get, rc_msg;
    int64_t id;
    char got_name[FOTA_NAME_MAX];
    int done;                         /* on the loop */
    struct waiter *w;
};

static void dev_job(struct fota_store *s, void *arg)
{
    struct dev_job *d = arg;
    struct fota_device dev;
    memset(&dev, 0, sizeof(dev));
    dev.product_id = d->product_id;
    snprintf(dev.name, sizeof(dev.name), "dev-%d", d->i);
    d->rc_create = s->ops->device_create(s, &dev);
    d->id = dev.id;
    struct fota_device got;
    memset(&got, 0, sizeof(got));
    d->rc_get = s->ops->device_get(s, dev.id, &got);
    memcpy(d->got_name, got.name, sizeof(d->got_name));
    struct fota_message m;
    memset(&m, 0, sizeof(m));
    m.product_id = d->product_id;
    m.device_id = dev.id;
    snprintf(m.action, sizeof(m.action), "exec");
    snprintf(m.body, sizeof(m.body), "{}");
    d->rc_msg = s->ops->message_add(s, &m);
}

static void dev_done(void *arg, int cancelled)
{
    struct dev_job *d = arg;
    d->done = cancelled ? -1 : 1;
    waiter_add(d->w);
}

static void test_ops_on_threads(void **st)
{
    struct fota_store *s = store_of(st);
    int64_t product = mk_product(s, "exec");
    s->threaded = 1;
    struct fota_store_exec *x;
    assert_int_equal(fota_store_exec_new(s, 4, &x), 0);
    struct fota_store_lane *lanes[2] = { fota_store_lane_new(x, "a"), fota_store_lane_new(x, "b") };
    struct fota_loop *l = loop_spawn(1);
    struct waiter w;
    waiter_init(&w);
    static struct dev_job jobs[DEV_JOBS];
    for (int i = 0; i < DEV_JOBS; i++) {
        jobs[i] = (struct dev_job){ .product_id = product, .i = i, .w = &w };
        struct fota_store_lane *lane = i % 3 == 2 ? NULL : lanes[i % 3];
        assert_int_equal(fota_store_submit(x, lane, l, dev_job, dev_done, &jobs[i]), 0);
    }
    assert_int_equal(waiter_until(&w, DEV_JOBS), 0);
    for (int i = 0; i < DEV_JOBS; i++) {
        char name[FOTA_NAME_MAX];
        snprintf(name, sizeof(name), "dev-%d", i);
        assert_int_equal(jobs[i].done, 1);
        assert_int_equal(jobs[i].rc_create, 0);
        assert_int_equal(jobs[i].rc_get, 0);
        assert_int_equal(jobs[i].rc_msg, 0);
        assert_string_equal(jobs[i].got_name, name);
    }
    fota_store_exec_drain(x);   /* every post made: a store thread may still be in one */
    loop_end(l);
    fota_store_exec_free(x);
    struct fota_device *list = NULL;
    size_t n = 0;
    assert_int_equal(s->ops->device_list(s, product, &list, &n), 0);
    assert_int_equal(n, DEV_JOBS);
    free(list);
    waiter_cleanup(&w);
}

/* On every backend, with store threads (forced on where the backend runs
 * inline). */
static const struct CMUnitTest threads_cases[] = {
    cmocka_unit_test(test_lane_order),
    cmocka_unit_test(test_unordered_concurrent),
    cmocka_unit_test(test_continuation_threads),
    cmocka_unit_test(test_bound),
    cmocka_unit_test(test_drain_on_stop),
    cmocka_unit_test(test_free_joins),
    cmocka_unit_test(test_ops_on_threads),
};
/* SQLite as fotad runs it: inline. */
static const struct CMUnitTest inline_cases[] = {
    cmocka_unit_test(test_continuation_inline),
    cmocka_unit_test(test_inline_deferred),
    cmocka_unit_test(test_inline_no_threads),
};

/* Runs cases, each on a fresh store of be, as group exec.<be>.<mode>;
 * returns the number of failures. */
static int run_cases(const struct store_backend *be, const char *mode,
                     const struct CMUnitTest *cases, size_t n)
{
    struct store_fixture fx = { .backend = be };
    struct CMUnitTest tests[8];
    char group[64];
    size_t k = 0;
    if (n > sizeof(tests) / sizeof(tests[0]))
        return 1;
    for (size_t i = 0; i < n; i++) {
        if (!store_backend_runs(be, "exec", cases[i].name))
            continue;   /* ops the backend does not have yet (store_fixture.c) */
        tests[k] = cases[i];
        tests[k].setup_func = store_fixture_setup;
        tests[k].teardown_func = store_fixture_teardown;
        tests[k].initial_state = &fx;
        k++;
    }
    snprintf(group, sizeof(group), "exec.%s.%s", be->name, mode);
    return _cmocka_run_group_tests(group, tests, k, NULL, NULL);
}

int main(void)
{
    int fails = 0;
    evthread_use_pthreads();
    for (size_t b = 0; b < store_nbackends; b++) {
        const struct store_backend *be = store_backends[b];
        if (be->suite_begin() != 0) {
            fprintf(stderr, "exec.%s: cannot prepare the backend\n", be->name);
            fails++;
            continue;
        }
        fails += run_cases(be, "threads", threads_cases,
                           sizeof(threads_cases) / sizeof(threads_cases[0]));
        if (be == &store_backend_sqlite)
            fails += run_cases(be, "inline", inline_cases,
                               sizeof(inline_cases) / sizeof(inline_cases[0]));
        be->suite_end();
    }
    return fails ? 1 : 0;
}
