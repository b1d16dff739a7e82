/* loop.c - event loops with a cross-thread job queue (see loop.h): one
 * mutex-protected FIFO per loop, drained by a libevent event that other
 * threads activate; synchronous calls wait on a condition variable. */
#include "loop.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>

#include "fota_err.h"
#include "xmalloc.h"

struct job {
    fota_loop_fn fn;
    void *arg;
    struct job *next;
};

struct fota_loop {
    struct event_base *base;
    int index;
    int own_base;                 /* made by fota_loop_new */
    int spawned;                  /* its thread runs (1) or was joined (2) */
    int closed;                   /* no more jobs accepted */
    pthread_t thread;
    pthread_mutex_t lock;
    struct job *head, *tail;
    struct event *wake;
    void (*init)(struct fota_loop *l, void *arg);
    void *init_arg;
};

/* Per thread: the loop this thread runs (NULL on threads without one). */
static _Thread_local struct fota_loop *current;

struct fota_loop *fota_loop_current(void)
{
    return current;
}

int fota_loop_current_index(void)
{
    return current ? current->index : -1;
}

struct event_base *fota_loop_base(const struct fota_loop *l)
{
    return l->base;
}

int fota_loop_index(const struct fota_loop *l)
{
    return l->index;
}

static struct job *take_all(struct fota_loop *l)
{
    pthread_mutex_lock(&l->lock);
    struct job *list = l->head;
    l->head = l->tail = NULL;
    pthread_mutex_unlock(&l->lock);
    return list;
}

static void run_list(struct job *list, int cancelled)
{
    while (list) {
        struct job *j = list;
        list = j->next;
        j->fn(j->arg, cancelled);
        free(j);
    }
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    run_list(take_all(arg), 0);
}

static struct fota_loop *loop_new(struct event_base *base, int index)
{
    struct fota_loop *l = fota_xcalloc(1, sizeof(*l));
    if (pthread_mutex_init(&l->lock, NULL) != 0) {
        free(l);
        return NULL;
    }
    l->base = base;
    l->index = index;
    l->wake = event_new(base, -1, 0, wake_cb, l);
    if (!l->wake) {
        pthread_mutex_destroy(&l->lock);
        free(l);
        return NULL;
    }
    return l;
}

struct fota_loop *fota_loop_adopt(struct event_base *base, int index)
{
    struct fota_loop *l = loop_new(base, index);
    if (l)
        current = l;
    return l;
}

/* Keeps a worker's dispatch alive while it has no sockets yet. */
static void keepalive_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static void *loop_main(void *arg)
{
    struct fota_loop *l = arg;
    current = l;
    struct event *idle = event_new(l->base, -1, EV_PERSIST, keepalive_cb, NULL);
    struct timeval day = { 86400, 0 };
    if (idle)
        event_add(idle, &day);
    if (l->init)
        l->init(l, l->init_arg);
    event_base_dispatch(l->base);
    if (idle)
        event_free(idle);
    return NULL;
}

struct event_base *fota_loop_base_new(void)
{
    /* The epoll changelist folds the add/modify/delete calls a connection
     * makes within one loop pass into one epoll_ctl (evhttp toggles read and
     * write interest several times per request). fotad never dup()s a
     * socket it watches, the case the changelist cannot handle. */
    struct event_config *cfg = event_config_new();
    struct event_base *base;
    if (!cfg)
        return event_base_new();
#ifndef FOTA_TSAN
    /* Not under ThreadSanitizer: the changelist applies a closed socket's
     * EPOLL_CTL_DEL at the next pass, after the close, when another loop
     * may already have accepted a connection with the same number. The
     * kernel refuses that stale call harmlessly (the number is not in this
     * loop's epoll set), but TSan sees two threads using one descriptor. */
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
#endif
    base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    return base ? base : event_base_new();
}

struct fota_loop *fota_loop_new(int index)
{
    struct event_base *base = fota_loop_base_new();
    if (!base)
        return NULL;
    struct fota_loop *l = loop_new(base, index);
    if (!l) {
        event_base_free(base);
        return NULL;
    }
    l->own_base = 1;
    return l;
}

int fota_loop_start(struct fota_loop *l, void (*init)(struct fota_loop *l, void *arg), void *arg)
{
    l->init = init;
    l->init_arg = arg;
    if (pthread_create(&l->thread, NULL, loop_main, l) != 0)
        return FOTA_ENOMEM;
    l->spawned = 1;
    return 0;
}

static void exit_job(void *arg, int cancelled)
{
    struct fota_loop *l = arg;
    if (!cancelled)
        event_base_loopbreak(l->base);
}

void fota_loop_stop(struct fota_loop *l)
{
    if (!l || l->spawned != 1)
        return;
    if (fota_loop_post(l, exit_job, l) != 0)
        event_base_loopbreak(l->base);
    pthread_join(l->thread, NULL);
    pthread_mutex_lock(&l->lock);
    l->closed = 1;
    pthread_mutex_unlock(&l->lock);
    run_list(take_all(l), 1);
    l->spawned = 2;   /* joined; base still ours */
}

void fota_loop_close(struct fota_loop *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->lock);
    l->closed = 1;
    pthread_mutex_unlock(&l->lock);
    for (struct job *list; (list = take_all(l)) != NULL;)
        run_list(list, 0);
}

void fota_loop_free(struct fota_loop *l)
{
    if (!l)
        return;
    run_list(take_all(l), 1);
    event_free(l->wake);
    if (l->own_base)
        event_base_free(l->base);
    pthread_mutex_destroy(&l->lock);
    if (current == l)
        current = NULL;
    free(l);
}

int fota_loop_post(struct fota_loop *l, fota_loop_fn fn, void *arg)
{
    struct job *j = fota_xmalloc(sizeof(*j));
    j->fn = fn;
    j->arg = arg;
    j->next = NULL;
    pthread_mutex_lock(&l->lock);
    if (l->closed) {
        pthread_mutex_unlock(&l->lock);
        free(j);
        return FOTA_ECLOSED;
    }
    if (l->tail)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
    pthread_mutex_unlock(&l->lock);
    event_active(l->wake, EV_READ, 0);
    return 0;
}

struct call {
    void (*fn)(void *arg);
    void *arg;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
};

static void call_job(void *arg, int cancelled)
{
    struct call *c = arg;
    if (!cancelled)
        c->fn(c->arg);
    pthread_mutex_lock(&c->lock);
    c->done = cancelled ? 2 : 1;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

int fota_loop_call(struct fota_loop *l, void (*fn)(void *arg), void *arg)
{
    if (l == current) {
        fn(arg);
        return 0;
    }
    struct call c = { .fn = fn, .arg = arg };
    pthread_mutex_init(&c.lock, NULL);
    pthread_cond_init(&c.cond, NULL);
    int rc = fota_loop_post(l, call_job, &c);
    if (rc == 0) {
        pthread_mutex_lock(&c.lock);
        while (!c.done)
            pthread_cond_wait(&c.cond, &c.lock);
        pthread_mutex_unlock(&c.lock);
        if (c.done == 2)
            rc = FOTA_ECLOSED;
    }
    pthread_cond_destroy(&c.cond);
    pthread_mutex_destroy(&c.lock);
    return rc;
}
