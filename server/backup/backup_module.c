/* backup_module.c - the backup module: `GET /v1/backup` (admin key). The
 * handler (main loop) flushes the download ledger, then a thread of its own
 * takes the snapshot (backup_snap.c: the database copy, the blobs linked
 * and hashed), so no loop waits for it; the connection's loop then streams
 * the archive with a known Content-Length, one piece at a time (tar
 * headers and inline members from memory, files as sendfile-backed
 * segments of at most 4 MiB, the next piece queued when the last one was
 * written): memory stays bounded whatever the backup's size. One backup at
 * a time. */
#include "backup.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "backup_int.h"
#include "clock.h"
#include "fota_str.h"
#include "hub.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "xmalloc.h"

#define SLICE (4u << 20)  /* bytes of one file queued at a time */
#define SNAPSHOT_NICE 10     /* the snapshot thread's nice value */
#define PIECE_FILES 16          /* file segments (descriptors) in one piece, at most */

struct backup_mod {
    struct fota_server *srv;
    int running;                /* atomic: a backup is being taken or sent */
    int cancel;                 /* atomic: snapshots stop (drain, stop) */
    int threads;                /* snapshot threads alive, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

struct job {
    struct backup_mod *m;
    struct fota_req *r;         /* invalid once the stream ended */
    uint64_t req_id;            /* r's, for logs */
    struct fota_loop *loop;     /* r's */
    char data_dir[FOTA_CONF_PATH_MAX];
    struct fota_backup_snap *snap;
    int rc;
    char err[512];
    int64_t t0, t_sent;         /* mono ms: request, stream start */
    size_t item;                /* next member to queue */
    uint64_t off;               /* bytes of that member's content queued */
    int fd;                     /* its file, while queued in slices; -1 none */
    uint64_t queued;            /* archive bytes handed to the connection */
    int done;                   /* every byte queued and written */
};

static void thread_done(struct backup_mod *m)
{
    pthread_mutex_lock(&m->mu);
    m->threads--;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
}

/* Runs fn(arg) on a detached thread the module's stop() waits for. 0 or
 * the pthread error. */
static int thread_run(struct backup_mod *m, void *(*fn)(void *), void *arg)
{
    pthread_attr_t attr;
    pthread_t th;

    pthread_mutex_lock(&m->mu);
    m->threads++;
    pthread_mutex_unlock(&m->mu);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int e = pthread_create(&th, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    if (e != 0)
        thread_done(m);
    return e;
}

struct cleanup {
    struct backup_mod *m;
    struct fota_backup_snap *snap;
};

static void *cleanup_thread(void *arg)
{
    struct cleanup *c = arg;
    struct backup_mod *m = c->m;
    fota_backup_snap_free(c->snap);
    free(c);
    thread_done(m);
    return NULL;
}

/* The snapshot's directory goes on a thread of its own: unlinking a large
 * database copy takes the file system tens of milliseconds, which no loop
 * should wait for. */
static void job_free(struct job *j)
{
    if (j->fd >= 0)
        close(j->fd);
    if (j->snap) {
        struct cleanup *c = fota_xcalloc(1, sizeof(*c));
        c->m = j->m;
        c->snap = j->snap;
        if (thread_run(j->m, cleanup_thread, c) != 0) {
            fota_backup_snap_free(j->snap);
            free(c);
        }
    }
    __atomic_store_n(&j->m->running, 0, __ATOMIC_RELEASE);
    free(j);
}

/* ------------------------------------------------------------ sending */

static const uint8_t zeros[FOTA_TAR_END_BYTES];

/* Opens member it's file. 0 or -1 (logged). */
static int open_member(struct job *j, const struct fota_backup_item *it)
{
    struct stat st;
    int fd = open(it->path, O_RDONLY | O_CLOEXEC);

    if (fd < 0 || fstat(fd, &st) != 0 || (uint64_t)st.st_size != it->size) {
        FOTA_ERROR("backup member unreadable req=%" PRIu64 " member=%s error=\"%s\"", j->req_id,
                   it->name, fd < 0 ? strerror(errno) : "its size changed");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    j->fd = fd;
    return 0;
}

/* Adds n bytes of the member's file at j->off to b: a segment of its own
 * (on a duplicate descriptor it closes when sent), so what a TLS
 * connection maps is this slice only. 0 or -1 (logged). */
static int add_slice(struct job *j, struct evbuffer *b, uint64_t n, const char *name)
{
    int fd = dup(j->fd);
    struct evbuffer_file_segment *seg =
        fd < 0 ? NULL
               : evbuffer_file_segment_new(fd, (ev_off_t)j->off, (ev_off_t)n,
                                           EVBUF_FS_CLOSE_ON_FREE);
    int rc = seg ? evbuffer_add_file_segment(b, seg, 0, (ev_off_t)n) : -1;

    if (seg)
        evbuffer_file_segment_free(seg);   /* b holds it until it is sent */
    else if (fd >= 0)
        close(fd);
    if (rc != 0)
        FOTA_ERROR("backup member unreadable req=%" PRIu64 " member=%s error=\"cannot queue it\"",
                   j->req_id, name);
    return rc;
}

/* Queues the next piece into b: 1 if something was added, 0 at the end,
 * -1 on an error (logged). */
static int fill(struct job *j, struct evbuffer *b)
{
    const struct fota_backup_snap *s = j->snap;
    int files = 0;

    while (evbuffer_get_length(b) < SLICE && files < PIECE_FILES) {
        if (j->item == s->nitems) {
            evbuffer_add(b, zeros, FOTA_TAR_END_BYTES);
            j->item++;
            break;
        }
        if (j->item > s->nitems)
            break;
        const struct fota_backup_item *it = &s->items[j->item];
        if (j->off == 0 && j->fd < 0) {
            uint8_t hdr[FOTA_TAR_BLOCK];
            fota_backup_snap_header(s, j->item, hdr);
            evbuffer_add(b, hdr, sizeof(hdr));
            if (it->data) {
                evbuffer_add(b, it->data, (size_t)it->size);
                evbuffer_add(b, zeros, fota_tar_pad(it->size));
                j->item++;
                continue;
            }
            if (open_member(j, it) != 0)
                return -1;
        }
        uint64_t n = it->size - j->off;
        n = n < SLICE ? n : SLICE;
        if (n > 0 && add_slice(j, b, n, it->name) != 0)
            return -1;
        files++;
        j->off += n;
        if (j->off == it->size) {
            evbuffer_add(b, zeros, fota_tar_pad(it->size));
            close(j->fd);
            j->fd = -1;
            j->off = 0;
            j->item++;
        }
    }
    return evbuffer_get_length(b) > 0;
}

static void pump(struct job *j);

static void on_sent(struct evhttp_connection *evcon, void *ud)
{
    (void)evcon;
    pump(ud);
}

static void pump(struct job *j)
{
    struct evbuffer *b = fota_req_stream_buffer(j->r);
    int more = b ? fill(j, b) : -1;

    if (more > 0) {
        j->queued += evbuffer_get_length(b);
        fota_req_stream_send_buf(j->r, b, on_sent, j);
        evbuffer_free(b);
        return;
    }
    if (b)
        evbuffer_free(b);
    j->done = more == 0 && j->queued == j->snap->archive_bytes;
    if (more == 0 && !j->done)
        FOTA_ERROR("backup size mismatch req=%" PRIu64 " sent=%" PRIu64 " announced=%" PRIu64,
                   j->req_id, j->queued, j->snap->archive_bytes);
    fota_req_stream_end(j->r);   /* closed() frees j */
}

/* The stream ended: all sent, the client went away, or fotad drains. */
static void on_closed(void *ud)
{
    struct job *j = ud;
    int64_t now = fota_clock_mono_ms();
    if (j->done)
        FOTA_INFO("backup sent req=%" PRIu64 " bytes=%" PRIu64 " members=%zu snapshot_ms=%" PRId64
                  " verify_ms=%" PRId64 " send_ms=%" PRId64,
                  j->req_id, j->queued,
                  j->snap->nitems, j->snap->ms_db, j->snap->ms_verify, now - j->t_sent);
    else
        FOTA_WARN("backup not completed req=%" PRIu64 " queued=%" PRIu64 " size=%" PRIu64
                  " reason=\"%s\"",
                  j->req_id, j->queued, j->snap->archive_bytes,
                  j->m->srv->draining ? "fotad is shutting down" : "the connection closed");
    job_free(j);
}

/* ------------------------------------------------------------ the job */

/* On r's loop once the snapshot is taken (or failed). */
static void job_ready(void *arg, int cancelled)
{
    struct job *j = arg;
    struct fota_req *r = j->r;
    char disp[96], len[32], stamp[32];
    time_t t;
    struct tm tm;

    if (cancelled) {
        fota_req_release(r);
        job_free(j);
        return;
    }
    if (j->rc) {
        if (j->rc == FOTA_ECLOSED)
            fota_reply_error(r, 503, "fotad is shutting down");
        else
            fota_reply_error(r, 500, "backup failed: %s", j->err);
        fota_req_release(r);
        job_free(j);
        return;
    }
    FOTA_INFO("backup snapshot req=%" PRIu64 " bytes=%" PRIu64 " database=%" PRIu64
              " blobs=%zu blob_bytes=%" PRIu64 " schema=%d",
              r->id, j->snap->archive_bytes,
              j->snap->db_bytes, j->snap->nblobs, j->snap->blob_bytes,
              j->snap->info.schema_version);
    t = (time_t)j->snap->info.created;
    gmtime_r(&t, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    snprintf(disp, sizeof(disp), "attachment; filename=fota-backup-%s.tar", stamp);
    snprintf(len, sizeof(len), "%" PRIu64, j->snap->archive_bytes);
    struct evkeyvalq *oh = evhttp_request_get_output_headers(r->ev);
    evhttp_add_header(oh, "Content-Type", "application/x-tar");
    evhttp_add_header(oh, "Content-Length", len);
    evhttp_add_header(oh, "Content-Disposition", disp);
    evhttp_add_header(oh, "Cache-Control", "no-store");
    if (fota_req_stream_begin_body(r, on_closed, j) != 0) {   /* replied 503 */
        fota_req_release(r);
        job_free(j);
        return;
    }
    j->t_sent = fota_clock_mono_ms();
    if (r->head) {
        j->done = 1;
        j->queued = j->snap->archive_bytes;
        fota_req_stream_end(r);
        return;
    }
    pump(j);
}

static void *job_thread(void *arg)
{
    struct job *j = arg;
    struct backup_mod *m = j->m;

    /* Serving comes first: the copy and the hashing yield the CPU to the
     * loops (a thread's nice value is its own on Linux). */
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), SNAPSHOT_NICE);

    j->rc = fota_backup_snap_take(j->data_dir, "GET /v1/backup", &m->cancel, NULL, NULL,
                                  &j->snap, j->err, sizeof(j->err));
    if (j->rc && j->rc != FOTA_ECLOSED)
        FOTA_ERROR("backup failed req=%" PRIu64 " error=\"%s\"", j->req_id, j->err);
    if (fota_loop_post(j->loop, job_ready, j) != 0)
        job_ready(j, 1);   /* the loop is gone: free only */
    thread_done(m);
    return NULL;
}

static void handle_backup(struct fota_req *r)
{
    struct backup_mod *m = r->ud;
    struct fota_key k;

    if (fota_req_admin(r, &k) != 0)
        return;
    if (r->srv->draining) {
        fota_reply_error(r, 503, "fotad is shutting down");
        return;
    }
    if (__atomic_exchange_n(&m->running, 1, __ATOMIC_ACQ_REL)) {
        fota_reply_error(r, 409, "a backup is being taken already; try again when it is done");
        return;
    }
    fota_hub_publish(r->srv, FOTA_HUB_DOWNLOADS_SYNC, NULL);   /* counts land in the snapshot */
    struct job *j = fota_xcalloc(1, sizeof(*j));
    j->m = m;
    j->r = r;
    j->req_id = r->id;
    j->loop = r->loop;
    j->fd = -1;
    j->t0 = fota_clock_mono_ms();
    fota_str_copy(j->data_dir, sizeof(j->data_dir), r->srv->conf.data_dir);
    int e = thread_run(m, job_thread, j);
    if (e != 0) {
        free(j);
        __atomic_store_n(&m->running, 0, __ATOMIC_RELEASE);
        fota_reply_error(r, 503, "cannot start the backup (%s)", strerror(e));
        return;
    }
    /* The thread's reply is posted to r's loop, which runs it only after
     * this handler has returned. */
    fota_req_defer(r);
}

/* ------------------------------------------------------------ module */

static int backup_start(struct fota_server *srv, void **state)
{
    struct backup_mod *m = fota_xcalloc(1, sizeof(*m));
    m->srv = srv;
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    if (fota_http_route(srv, FOTA_M_GET, "/v1/backup", handle_backup, m) != 0) {
        FOTA_ERROR("cannot add route path=/v1/backup");
        free(m);
        return FOTA_EEXIST;
    }
    *state = m;
    return 0;
}

/* Drain: a snapshot being taken stops at its next step (its request gets
 * 503); a backup being sent is ended by the HTTP server's drain. */
static void backup_drain(struct fota_server *srv, void *state)
{
    struct backup_mod *m = state;
    (void)srv;
    __atomic_store_n(&m->cancel, 1, __ATOMIC_RELEASE);
}

static int backup_busy(struct fota_server *srv, void *state)
{
    struct backup_mod *m = state;
    (void)srv;
    pthread_mutex_lock(&m->mu);
    int n = m->threads;
    pthread_mutex_unlock(&m->mu);
    return n > 0;
}

static void backup_stop(struct fota_server *srv, void *state)
{
    struct backup_mod *m = state;
    (void)srv;
    __atomic_store_n(&m->cancel, 1, __ATOMIC_RELEASE);
    pthread_mutex_lock(&m->mu);
    while (m->threads > 0)
        pthread_cond_wait(&m->cv, &m->mu);
    pthread_mutex_unlock(&m->mu);
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

const struct fota_module fota_backup_module = {
    .name = "backup",
    .start = backup_start,
    .drain = backup_drain,
    .busy = backup_busy,
    .stop = backup_stop,
};
