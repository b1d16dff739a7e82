/* rom_body.c - the body of a ROM download: a sendfile segment on the
 * connection's output whose progress feeds the device's record
 * (rom_progress.c) and the download metrics (rom_metrics.c). Bytes are
 * counted as libevent writes them (an output-buffer callback); the
 * segment's cleanup says when the body is gone.
 * A body's context is freed one loop pass after its segment: by then the
 * buffer callback has either counted the last bytes and removed itself (all
 * sent) or vanished with the buffer (connection closed first). Contexts are
 * listed on their loop (rl->bodies), so the module's stop can detach them. */
#include <stdlib.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "rom_int.h"
#include "xmalloc.h"

struct fota_rom_body {
    struct fota_rom_loop *rl;          /* NULL once detached (module stopped) */
    struct fota_rom_dl *dl;            /* the device's record, NULL without one */
    uint64_t seq;
    struct event_base *base;
    size_t skip;                       /* output bytes queued ahead of the body */
    int64_t counted, total;
    struct evbuffer_cb_entry *ent;
    fota_rom_body_done done;           /* the borrowed file is free again */
    void *done_arg;
    int cb_done;                       /* every body byte counted; callback removed */
    int gone;                          /* the segment is freed; finish is pending */
    struct fota_rom_body *prev, *next; /* rl->bodies */
};

static void body_link(struct fota_rom_body *b)
{
    struct fota_rom_loop *rl = b->rl;
    b->prev = NULL;
    b->next = rl->bodies;
    if (rl->bodies)
        rl->bodies->prev = b;
    rl->bodies = b;
}

static void body_unlink_free(struct fota_rom_body *b)
{
    if (b->rl) {
        if (b->prev)
            b->prev->next = b->next;
        else
            b->rl->bodies = b->next;
        if (b->next)
            b->next->prev = b->prev;
    }
    free(b);
}

/* The body ended: every byte written (complete) or not. */
static void body_end(struct fota_rom_body *b, int complete)
{
    fota_metric_add_local(&b->rl->m_flight, -1);
    fota_metric_add_local(complete ? &b->rl->m_complete : &b->rl->m_aborted, 1);
}

static void body_written(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct fota_rom_body *b = arg;
    size_t n = info->n_deleted;
    if (b->cb_done || n == 0 || !b->rl)
        return;
    size_t k = n < b->skip ? n : b->skip;
    b->skip -= k;
    n -= k;
    if (n == 0)
        return;
    if ((int64_t)n > b->total - b->counted)
        n = (size_t)(b->total - b->counted);
    b->counted += (int64_t)n;
    fota_metric_add_local(&b->rl->m_bytes, (int64_t)n);
    fota_rom_progress_sent(&b->rl->ctx->progress, b->dl, b->seq, (int64_t)n);
    if (b->counted >= b->total) {
        b->cb_done = 1;
        body_end(b, 1);
        evbuffer_remove_cb_entry(buf, b->ent);   /* safe from inside its own call */
    }
}

static void body_finish(evutil_socket_t fd, short what, void *arg)
{
    struct fota_rom_body *b = arg;
    (void)fd;
    (void)what;
    if (!b->cb_done && b->rl) {   /* the connection went first */
        fota_rom_progress_end(&b->rl->ctx->progress, b->dl, b->seq);
        body_end(b, 0);
    }
    body_unlink_free(b);
}

/* The segment is freed: fully written (inside the drain, before the buffer
 * callback counts the last bytes) or dropped with the buffer. Decide later. */
static void body_gone(struct evbuffer_file_segment const *seg, int flags, void *arg)
{
    struct fota_rom_body *b = arg;
    static const struct timeval now = { 0, 0 };
    (void)seg;
    (void)flags;
    if (!b->rl) {        /* detached: the module is gone, nothing to record */
        free(b);
        return;
    }
    if (b->done)
        b->done(b->done_arg);
    if (b->cb_done) {    /* every byte counted already, or none to count: done at once */
        body_unlink_free(b);
        return;
    }
    b->gone = 1;
    if (event_base_once(b->base, -1, EV_TIMEOUT, body_finish, b, &now) != 0)
        body_finish(-1, 0, b);
}

int fota_rom_body_add(struct fota_rom_loop *rl, struct bufferevent *bev, int fd, int64_t from,
                      int64_t len, int64_t size, int64_t device_id, const char *file,
                      const char *version, fota_rom_body_done done, void *done_arg)
{
    struct evbuffer *out = bufferevent_get_output(bev);
    int track = len > 0;   /* every body's bytes are counted; a device's feed its record too */
    /* A borrowed descriptor stays open; the segment is used on this loop only. */
    unsigned fsflags = done ? EVBUF_FS_DISABLE_LOCKING : EVBUF_FS_CLOSE_ON_FREE;
    if (!track && !done)
        return evbuffer_add_file(out, fd, from, len);
    struct evbuffer_file_segment *seg = evbuffer_file_segment_new(fd, from, len, fsflags);
    if (!seg)
        return -1;
    struct fota_rom_body *b = fota_xcalloc(1, sizeof(*b));
    b->rl = rl;
    b->base = bufferevent_get_base(bev);
    b->skip = evbuffer_get_length(out);
    b->total = len;
    b->done = done;
    b->done_arg = done_arg;
    b->cb_done = 1;
    if (track) {
        if (device_id > 0)
            b->dl = fota_rom_progress_begin(&rl->ctx->progress, device_id, file, version, from,
                                            len, size, &b->seq);
        b->ent = evbuffer_add_cb(out, body_written, b);
        b->cb_done = 0;
        fota_metric_add_local(&rl->m_flight, 1);
    }
    body_link(b);
    evbuffer_file_segment_add_cleanup_cb(seg, body_gone, b);
    if (evbuffer_add_file_segment(out, seg, 0, len) != 0 && !b->cb_done) {
        /* No body goes out (the client sees a short reply). */
        evbuffer_remove_cb_entry(out, b->ent);
        b->cb_done = 1;
        fota_rom_progress_end(&rl->ctx->progress, b->dl, b->seq);
        body_end(b, 0);
    }
    /* The buffer holds it now; else it is freed here, which closes an owned
     * fd or calls done (so the caller never sees -1 after this point). */
    evbuffer_file_segment_free(seg);
    return 0;
}

void fota_rom_body_detach_all(struct fota_rom_loop *rl)
{
    while (rl->bodies) {
        struct fota_rom_body *b = rl->bodies;
        rl->bodies = b->next;
        if (b->gone) {
            /* Its finish was queued on a loop that no longer runs. */
            free(b);
            continue;
        }
        b->rl = NULL;
        b->dl = NULL;
        b->done = NULL;
        b->prev = b->next = NULL;
    }
}
