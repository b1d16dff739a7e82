/* rpc_fanout_int.h - what the two halves of the bulk upgrade share: the job
 * engine (rpc_fanout.c: window, pushes, batched rows, jobs.json) and its REST
 * side (rpc_fanout_api.c: POST /v1/products/ID/upgrade, GET /v1/jobs/).
 * Private to server/device. */
#ifndef FOTA_RPC_FANOUT_INT_H
#define FOTA_RPC_FANOUT_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#include <jansson.h>

#include "store.h"

struct event;
struct fota_key_deriver;

/* Member states (compact; the store rows carry enum fota_command_state). */
enum { M_WAITING = 1, M_QUEUED, M_DELIVERED, M_ACKED, M_DONE, M_FAILED, M_TIMEOUT,
       M_GONE,      /* the device was deleted: no row any more, nothing to wait for */
       M_CANCELLED  /* the job was cancelled before this member was pushed */ };

/* One device of a job: 40 bytes, so a 100,000-device job is 4 MB. */
struct member {
    int64_t device_id;
    int64_t cmd_id;
    int32_t nonce;
    int32_t keygen;                    /* for the owner key in the push */
    uint32_t pushed_s;                 /* job-relative second of the push */
    uint8_t state;
    uint8_t dirty;                     /* the row needs a state write */
    uint8_t reboot_due;                /* sys_reboot to send (job with reboot) */
    uint8_t active;                    /* counts against the window */
};

struct job {
    struct fota_fanout *fo;
    struct job *next;
    int64_t id, product_id, created;
    char version[FOTA_VERSION_MAX];
    char *filter;                      /* the request's filter, JSON text */
    char *ok_result;                   /* the row result of a D7 success */
    int reboot, interrupted;
    int cancel;                        /* cancelled: members not pushed yet were dropped */
    int halted;                        /* cancelled by itself: failures passed max_fail */
    long max_fail;                     /* failed + timed out allowed; < 0: no limit */
    unsigned window, timeout_s;
    struct member *m;
    size_t n, cursor, active, ndirty, nreboot;
    int rows_pending;                  /* some command rows not written yet (see insert_rows) */
    int rows_queued;                   /* the not-yet-pushed members' rows are written */
    int pumped;                        /* the first pushes were made */
    char *tmpl;                        /* the job's sys_upgrade push with a placeholder */
    int tmpl_len, auth_off, nonce_off, nonce_end;
    size_t skipped, waiting, queued, delivered, acked, succeeded, failed, timed_out, deleted;
    size_t cancelled;
    struct timeval t0;
    double ms_delivered, ms_acked, ms_finished;   /* < 0: not yet */
};

struct fota_fanout {
    struct fota_devchan *ch;
    struct fota_key_deriver *kd;       /* owner keys of the pushes (keyed once), or NULL */
    struct job *jobs;
    int64_t next_id;
    struct event *timer;
    struct event *soon;                /* a slot freed or a reboot is due: act on the next turn */
    int changed;                       /* counters moved since jobs.json was written */
    int64_t saved_at;
};

/* Members that have finished, one way or another (the job is over when this is n). */
static inline size_t fota_fanout__ended(const struct job *j)
{
    return j->succeeded + j->failed + j->timed_out + j->deleted + j->cancelled;
}

/* The job engine, for the REST side. */
void fota_fanout__job_free(struct job *j);
json_t *fota_fanout__job_json(const struct job *j);
struct job *fota_fanout__job_find(struct fota_fanout *fo, int64_t id);
/* Builds the job's sys_upgrade push template (owner key and nonce patched per device). */
void fota_fanout__make_template(struct job *j);
/* Marks the moments every member was delivered / acked / finished. */
void fota_fanout__job_marks(struct job *j);
/* Cancels j: members not pushed yet (waiting for the window, or queued for an
 * offline device) end as cancelled and their command rows say so at once;
 * pushed members go on and report as usual. Returns how many it cancelled. */
size_t fota_fanout__job_cancel(struct job *j);

/* Restart safety (rpc_fanout_rows.c): rows_note records the ids of rows
 * written as queued (DATA/jobs-ID.rows), rows_forget drops that record when
 * the job has finished, rows_recover (at start) cancels the still-queued
 * rows of every job that was running when fotad stopped. */
void fota_fanout__rows_note(struct job *j, const int64_t *ids, size_t n);
void fota_fanout__rows_forget(struct job *j);
void fota_fanout__rows_recover(struct fota_fanout *fo);

/* The REST side: adds the bulk upgrade routes. 0, or -1. */
int fota_fanout__routes(struct fota_fanout *fo);

#endif
