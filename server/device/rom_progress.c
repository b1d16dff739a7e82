/* rom_progress.c - counts a ROM download's body bytes as libevent writes
 * them (an output-buffer callback) and notices when the body is gone (the
 * file segment's cleanup), for the device's download record. The per-download
 * context is freed one loop pass after the segment is gone: by then the
 * buffer callback has either counted the last bytes and removed itself (all
 * sent) or vanished with the buffer (connection closed first). */
#include "rom_progress.h"

#include <pthread.h>
#include <stdlib.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "dlprogress.h"

struct body_progress {
    struct fota_dl *dl;
    uint64_t seq;
    struct event_base *base;
    size_t skip;                       /* output bytes queued ahead of the body */
    int64_t counted, total;
    struct evbuffer_cb_entry *ent;
    fota_rom_body_done done;           /* the borrowed file is free again */
    void *done_arg;
    int cb_done;                       /* every body byte counted; callback removed */
    struct body_progress *prev, *next; /* all live contexts (reachable until freed) */
};

static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static struct body_progress *live;

static void live_link(struct body_progress *p)
{
    pthread_mutex_lock(&live_lock);
    p->next = live;
    if (live)
        live->prev = p;
    live = p;
    pthread_mutex_unlock(&live_lock);
}

static void live_unlink_free(struct body_progress *p)
{
    pthread_mutex_lock(&live_lock);
    if (p->prev)
        p->prev->next = p->next;
    else
        live = p->next;
    if (p->next)
        p->next->prev = p->prev;
    pthread_mutex_unlock(&live_lock);
    free(p);
}

static void body_written(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct body_progress *p = arg;
    size_t n = info->n_deleted;
    if (p->cb_done || n == 0)
        return;
    size_t k = n < p->skip ? n : p->skip;
    p->skip -= k;
    n -= k;
    if (n == 0)
        return;
    if ((int64_t)n > p->total - p->counted)
        n = (size_t)(p->total - p->counted);
    p->counted += (int64_t)n;
    fota_dl_sent(p->dl, p->seq, (int64_t)n);
    if (p->counted >= p->total) {
        p->cb_done = 1;
        evbuffer_remove_cb_entry(buf, p->ent);   /* safe from inside its own call */
    }
}

static void body_finish(evutil_socket_t fd, short what, void *arg)
{
    struct body_progress *p = arg;
    (void)fd;
    (void)what;
    if (!p->cb_done)
        fota_dl_end(p->dl, p->seq);   /* the connection went first */
    live_unlink_free(p);
}

/* The segment is freed: fully written (inside the drain, before the buffer
 * callback counts the last bytes) or dropped with the buffer. Decide later. */
static void body_gone(struct evbuffer_file_segment const *seg, int flags, void *arg)
{
    struct body_progress *p = arg;
    static const struct timeval now = { 0, 0 };
    (void)seg;
    (void)flags;
    if (p->done)
        p->done(p->done_arg);
    if (event_base_once(p->base, -1, EV_TIMEOUT, body_finish, p, &now) != 0)
        fota_dl_end(p->dl, p->seq);   /* p stays on the live list */
}

/* The segment of a borrowed descriptor without a download record. */
struct body_plain {
    fota_rom_body_done done;
    void *done_arg;
};

static void plain_gone(struct evbuffer_file_segment const *seg, int flags, void *arg)
{
    struct body_plain *b = arg;
    (void)seg;
    (void)flags;
    b->done(b->done_arg);
    free(b);
}

int fota_rom_add_body(struct bufferevent *bev, int fd, int64_t from, int64_t len, int64_t size,
                      int64_t device_id, const char *file, const char *version,
                      fota_rom_body_done done, void *done_arg)
{
    struct evbuffer *out = bufferevent_get_output(bev);
    struct body_progress *p = NULL;
    /* A borrowed descriptor stays open; the segment is used on this loop only. */
    unsigned fsflags = done ? EVBUF_FS_DISABLE_LOCKING : EVBUF_FS_CLOSE_ON_FREE;
    if (device_id > 0 && len > 0 && (p = calloc(1, sizeof(*p))) != NULL) {
        p->dl = fota_dl_begin(device_id, file, version, from, len, size, &p->seq);
        p->base = bufferevent_get_base(bev);
        p->skip = evbuffer_get_length(out);
        p->total = len;
        p->done = done;
        p->done_arg = done_arg;
        if (!p->dl || !p->base ||
            (p->ent = evbuffer_add_cb(out, body_written, p)) == NULL) {
            free(p);
            p = NULL;
        }
    }
    if (!p && !done)
        return evbuffer_add_file(out, fd, from, len);
    struct body_plain *b = NULL;
    if (!p && (b = malloc(sizeof(*b))) == NULL)
        return -1;
    struct evbuffer_file_segment *seg = evbuffer_file_segment_new(fd, from, len, fsflags);
    if (!seg) {
        free(b);
        if (p) {
            evbuffer_remove_cb_entry(out, p->ent);
            fota_dl_end(p->dl, p->seq);
            free(p);
        }
        return -1;
    }
    if (p) {
        live_link(p);
        evbuffer_file_segment_add_cleanup_cb(seg, body_gone, p);
    } else {
        *b = (struct body_plain){ done, done_arg };
        evbuffer_file_segment_add_cleanup_cb(seg, plain_gone, b);
    }
    if (evbuffer_add_file_segment(out, seg, 0, len) != 0 && p) {
        /* Out of memory: no body goes out (the client sees a short reply). */
        evbuffer_remove_cb_entry(out, p->ent);
        p->cb_done = 1;
        fota_dl_end(p->dl, p->seq);
    }
    /* The buffer holds it now; else it is freed here, which closes an owned
     * fd or calls done (so the caller never sees -1 after this point). */
    evbuffer_file_segment_free(seg);
    return 0;
}
