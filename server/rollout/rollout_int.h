/* rollout_int.h - what the rollout module's files share: the engine
 * (rollout.c: members' states, hub subscribers, batched writes), its
 * resumption at start (rollout_resume.c), the stages (rollout_stage.c:
 * thresholds, approvals, pauses, the maintenance window, progress samples),
 * the health after a report (rollout_health.c), the pushes (rollout_push.c:
 * template, window pump, reboots, timeouts), the offers of pull devices
 * (rollout_pull.c) and the REST side (rollout_api.c: create, read;
 * rollout_ctl.c: cancel, pause, resume, approve, roll back; rollout_json.c:
 * the JSON views). Private to server/rollout. */
#ifndef FOTA_ROLLOUT_INT_H
#define FOTA_ROLLOUT_INT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "rollout.h"
#include "store.h"
#include "store_exec.h"

struct event;
struct fota_hub_presence;
struct fota_hub_reply;
struct fota_hub_report;
struct fota_rollout_remote;
struct fota_devchan;
struct fota_key_deriver;
struct fota_req;
struct fota_rollout_ask;

/* One device of a rollout: 40 bytes, so a 100,000-device rollout is 4 MB.
 * state is enum fota_rollout_member_state, reason enum fota_rollout_reason. */
struct fota_rollout_member {
    int64_t device_id;
    int64_t cmd_id;                    /* its command row; 0 none yet, -1 none possible */
    int32_t nonce;
    int32_t keygen;                    /* for the owner key in the push */
    int32_t pushed_s;                  /* second of the push, from the rollout's t0_ms */
    int32_t since_s;                   /* second of its success report (its health time
                                          began), from t0_ms; valid when reported */
    uint8_t state;
    uint8_t dirty;                     /* 1: its member row and command row need a write;
                                          2: its member row only */
    uint8_t stage;                     /* 0-based */
    uint8_t boots;                     /* boots seen in its health time */
    uint8_t reason;
    uint8_t pre;                       /* its version when selected: r->pre[pre] (until stored) */
    uint8_t reboot_due : 1;            /* sys_reboot to send (rollout with reboot) */
    uint8_t active : 1;                /* counts against the window */
    uint8_t triggered : 1;             /* pull: its offer was triggered over MQTT */
    uint8_t reported : 1;              /* it reported success at since_s */
    uint8_t row_pending : 1;           /* a store job writes its command row: cmd_id
                                          comes with the job's continuation */
    uint8_t remote : 1;                /* its push asked of the instance holding its device
                                          (rollout_remote.c): WAITING and active until that
                                          instance says it pushed */
};

/* A member that came online: pushed from due_ms on (monotonic). */
struct fota_rollout_ready {
    uint32_t idx;
    int64_t due_ms;
};

#define FOTA_ROLLOUT_PRE_MAX 255       /* distinct versions before a rollout it remembers */
#define FOTA_ROLLOUT_MD5_MAX 8         /* sketch MD5s of a pull release's image */

/* A push line encoded once with placeholders for the owner key and the
 * nonce (rollout_push.c): text is NULL when the line could not be cut so. */
struct fota_rollout_tmpl {
    char *text;
    int len, auth_off, nonce_off, nonce_end;
};

struct fota_rollout {
    struct fota_rollouts *ro;
    struct fota_rollout *next;
    struct fota_rollout_row row;       /* settings, state, stages, counters, marks (as stored) */
    struct fota_rollout_member *m;     /* in device id order */
    size_t n, cursor, ndirty, nreboot, need_rows;
    uint32_t *reboots;                 /* members given reboot_due, in order (some may be
                                          cleared since): what send_reboots walks */
    size_t nreboots, capreboots;
    struct fota_rollout_ready *ready;  /* members that came online, oldest first */
    size_t nready, capready;
    int64_t t0_ms;                     /* fota_clock_mono_ms() at creation */
    int stored;                        /* its members have been written once */
    int pumped;                        /* the first pushes were made */
    struct fota_rollout_tmpl upgrade;  /* its sys_upgrade push with placeholders */
    struct fota_rollout_tmpl reboot;   /* its sys_reboot push, the same way */
    json_t *ok_result;                 /* the command row result of a D7 success */
    int pull;                          /* pull-based devices (an arduino product): offered
                                        * a command row, not pushed (rollout_pull.c) */
    int64_t grace_s;                   /* pull: the product's checkin_interval */
    char (*pre)[FOTA_VERSION_MAX];     /* versions members ran when selected (until stored) */
    size_t npre;
    int open;                          /* its maintenance window was open at the last look */
    int rows_due;                      /* the next flush writes its missing command rows */
    int jobs;                          /* store jobs whose continuation looks at it: it
                                          stays in the list until they are back */
    size_t offering;                   /* pull: members a job offers now (they hold
                                          window slots until it is back) */
    int timing, judging;               /* pull: a job reads for its timeouts / health */
    int64_t health_next_ms;            /* the next look at its verifying members */
    int64_t sample_min;                /* the minute of its last progress sample */
    struct fota_rollout_counts sampled;/* the counters of that sample */
    char md5s[FOTA_ROLLOUT_MD5_MAX][FOTA_ARDUINO_MD5_TEXT]; /* pull: its image's sketch MD5s */
    size_t nmd5;
    int gone;                          /* dropped at a lost lease: no more writes of its own */
    int final_sent;                    /* a write holds its ended row: it stays until that
                                          write is back (a read of the store finds it ended) */
};

/* The module's state. */
struct fota_rollouts {
    struct fota_server *srv;
    struct fota_devchan *ch;
    struct fota_key_deriver *kd;       /* owner keys of the pushes (keyed once) */
    struct fota_rollout *list;         /* running (and just ended, until saved) */
    struct fota_store_lane *lane;      /* "rollout": its writes in order (store_exec.h) */
    struct event *timer;
    struct event *soon;                /* a slot freed or a reboot is due: act on the next turn */
    json_t *acked_result;              /* command row results every rollout shares */
    json_t *failed_result;
    size_t creating;                   /* creates between their place among the running
                                          rollouts and their install (rollout_api.c) */
    int clustered;                     /* fotad instances share the store: only the holder
                                          of lease rollouts drives (docs/scale-out.md) */
    int64_t epoch;                     /* the lease's epoch this instance drives under; 0:
                                          another instance drives (alone: 1) */
    struct fota_rollout *gone;         /* dropped when the lease was lost, freed once the
                                          jobs that look at them are back */
    int resuming;                      /* a takeover's resume is on its way: creates wait
                                          (its read would find their rows half made) */
    struct fota_rollout_remote *remote;/* several instances: pushes to and events from the
                                          devices other instances hold (rollout_remote.c) */
    int64_t events_late_s;             /* how late the other instances' events reach the
                                          driver now (s): a push asked of them is given
                                          this much more than FOTA_ROLLOUT_TAKE_S */
    struct fota_rollout_ask *asks;     /* requests waiting for the driver's reply
                                          (rollout_ask.c) */
};

/* Members that have finished one way or another (over when this is n). */
static inline int64_t fota_rollout_ended(const struct fota_rollout *r)
{
    const struct fota_rollout_counts *n = &r->row.n;
    return n->succeeded + n->failed + n->timed_out + n->deleted + n->cancelled;
}

/* 1 while a member may still change: not ended (verifying included). */
static inline int fota_rollout_member_open(int st)
{
    return st < FOTA_RM_DONE || st == FOTA_RM_VERIFYING;
}

/* 1 for a rollout that may still push or offer (its members not all ended). */
static inline int fota_rollout_live(int state)
{
    return state == FOTA_ROLLOUT_RUNNING || state == FOTA_ROLLOUT_PAUSED ||
           state == FOTA_ROLLOUT_APPROVAL;
}

/* rollout.c: the engine. */
struct fota_rollout *fota_rollout_new(struct fota_rollouts *ro);
void fota_rollout_free(struct fota_rollout *r);
/* Adds r (members filled, row created in the store) and starts its pushes
 * on the next loop pass. */
void fota_rollout_start(struct fota_rollouts *ro, struct fota_rollout *r);
struct fota_rollout *fota_rollout_find(struct fota_rollouts *ro, int64_t id);
size_t fota_rollout_running(struct fota_rollouts *ro);
/* m enters state st; dirty: its member row, and its command row unless
 * member_only. */
void fota_rollout_set_state(struct fota_rollout *r, struct fota_rollout_member *m, int st);
void fota_rollout_set_state_member(struct fota_rollout *r, struct fota_rollout_member *m, int st);
/* m ends in st (DONE, FAILED with reason, TIMEOUT, DELETED, CANCELLED):
 * counted in the rollout and its stage, its slot freed, the stages'
 * gates looked at. */
void fota_rollout_finish_member(struct fota_rollout *r, struct fota_rollout_member *m, int st,
                                int reason);
/* The member was pushed: counted as delivered and active. */
void fota_rollout_count_delivered(struct fota_rollout *r, struct fota_rollout_member *m);
/* Marks the moments every member was delivered / acked / finished, and the end. */
void fota_rollout_marks(struct fota_rollout *r);
/* Cancels r: members not pushed yet end as cancelled (written at once);
 * pushed ones report as usual. Returns how many it cancelled. */
size_t fota_rollout_cancel(struct fota_rollout *r);
/* Writes every pending member, command row and counter of every rollout:
 * one job on the lane, built here (copies), run on a store thread. */
void fota_rollout_flush(struct fota_rollouts *ro);
/* Writes r's members now, its missing command rows too: a job on the lane
 * that a read of its members queued on the lane afterwards follows. */
void fota_rollout_save_now(struct fota_rollout *r);
/* Cancels command rows (a withdrawn, unreachable or called back push or
 * offer) with {"withdrawn": why} as their result: a job on the lane. */
void fota_rollout_rows_cancel(struct fota_rollouts *ro, const int64_t *ids, size_t k,
                              const char *why);
/* Submits job on the rollout lane with done on the main loop (done NULL:
 * none). The store's error (FOTA_EBUSY: the lane is full) after a log
 * line naming what; neither job nor done ran then. */
int fota_rollout_submit(struct fota_rollouts *ro, const char *what, fota_store_job_fn job,
                        fota_store_done_fn done, void *arg);
/* The same on lane (fenced as the rollout lane's jobs are). */
int fota_rollout_submit_on(struct fota_rollouts *ro, struct fota_store_lane *lane,
                           const char *what, fota_store_job_fn job, fota_store_done_fn done,
                           void *arg);
double fota_rollout_since_ms(const struct fota_rollout *r);
/* Seconds since r's t0 on the monotonic clock. */
int64_t fota_rollout_now_s(const struct fota_rollout *r);
/* The pump and reboots run on the next loop turn. */
void fota_rollout_act_soon(struct fota_rollouts *ro);
/* Puts m in r's ready list: pushed or offered from due_ms on. */
void fota_rollout_ready_add(struct fota_rollout *r, struct fota_rollout_member *m, int64_t due_ms);
/* r's member for device_id, or NULL. */
struct fota_rollout_member *fota_rollout_member_at(struct fota_rollout *r, int64_t device_id);

/* rollout_resume.c: the live rollouts (running, paused, awaiting an
 * approval, cancelling) rebuilt from the store, those the engine does not
 * hold already: one job reads them, its continuation installs them. now
 * set (start-up, before the loops run): both here, the caller waiting;
 * else on the lane and the main loop. */
void fota_rollout_resume_all(struct fota_rollouts *ro, int now);
/* A rollout resumed while devices are connected (a takeover of lease
 * rollouts): queued members whose device is here wait for the window,
 * pushed ones whose device is here are pushed again (their push may have
 * died with the instance that made it). */
void fota_rollout_takeover(struct fota_rollout *r);

/* rollout_stage.c: stages, approvals, pauses, the maintenance window. */
/* 1 when m's stage has started (it may be pushed or offered). */
int fota_rollout_eligible(const struct fota_rollout *r, const struct fota_rollout_member *m);
/* 1 when r may start pushes or offers now: running or awaiting an
 * approval, inside its maintenance window. */
int fota_rollout_may_start(struct fota_rollout *r);
/* Looks at the stages after an outcome: a stage whose failures passed its
 * max_failures pauses the rollout; a current stage that reached its
 * success threshold starts the next (or awaits its approval); one that
 * ended below it pauses the rollout. */
void fota_rollout_gate(struct fota_rollout *r);
/* Pauses r (auto: by itself) with reason; calls back pull offers not
 * taken. No-op unless it runs or awaits an approval. */
void fota_rollout_pause(struct fota_rollout *r, int autom, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Resumes a paused r: failures count again from now, a stage that ended
 * below its threshold is accepted. 0, or FOTA_EINVAL when not paused. */
int fota_rollout_resume(struct fota_rollout *r);
/* Approves the next stage (the one awaiting approval, or the one after a
 * running stage: it starts now). 0, FOTA_EINVAL (paused), FOTA_ENOENT (no
 * stage left). */
int fota_rollout_approve(struct fota_rollout *r);
/* A stage's failures (failed + timed out). */
int64_t fota_rollout_stage_failures(const struct fota_rollout_stage *g);
/* Notes an opening or closing of r's maintenance window (pull offers not
 * taken are called back at a closing). */
void fota_rollout_hours_tick(struct fota_rollout *r);
/* A progress sample of r once a minute while its counters move. */
void fota_rollout_sample(struct fota_rollout *r, int final);
/* Builds r's single stage when its row has none (stored before stages). */
void fota_rollout_stages_default(struct fota_rollout *r);

/* rollout_health.c: the health time after a success report. */
/* m reported success: DONE at once without a health time, else VERIFYING. */
void fota_rollout_health_begin(struct fota_rollout *r, struct fota_rollout_member *m);
/* A verifying member's device came online (a boot), saying version (NULL:
 * it said none). */
void fota_rollout_health_online(struct fota_rollout *r, struct fota_rollout_member *m,
                                const char *version);
/* A verifying pull member's device reported an upgrade's outcome again. */
void fota_rollout_health_report(struct fota_rollout *r, struct fota_rollout_member *m, int ok);
/* Ends the health times that are over. */
void fota_rollout_health_check(struct fota_rollout *r);
/* Pull: the sketch MD5s of r's release image (r->md5s). */
void fota_rollout_health_setup(struct fota_rollout *r);

/* rollout_json.c: the JSON views (docs/api.md). */
json_t *fota_rollout_json(const struct fota_rollout_row *row);
json_t *fota_rollout_member_json(const struct fota_rollout_member_row *m, int64_t health_s);
json_t *fota_rollout_sample_json(const struct fota_rollout_sample *x);
const char *fota_rollout_member_state_name(int st);
/* The member state named s, or 0. */
int fota_rollout_member_state_of(const char *s);
const char *fota_rollout_reason_name(int reason);

/* rollout_push.c */
void fota_rollout_make_template(struct fota_rollout *r);
/* Pushes waiting members (those that came online first) while the
 * product's window has room. */
void fota_rollout_pump(struct fota_rollout *r);
void fota_rollout_send_reboots(struct fota_rollout *r);
void fota_rollout_check_timeouts(struct fota_rollout *r);
/* Pushes a pushed member's upgrade again, with its nonce (its device
 * reconnected, perhaps to this instance after the one that pushed it
 * died): 1 sent, 0 its device is not connected here. A device that got the
 * first push ignores the second while it downloads. */
int fota_rollout_repush(struct fota_rollout *r, struct fota_rollout_member *m);

/* Writes action (sys_upgrade from r's template, or sys_reboot) with m's
 * owner key and nonce to m's device if it is connected here: 0,
 * FOTA_ENOENT (not connected) or FOTA_E*. */
int fota_rollout_push_one(struct fota_rollout *r, const struct fota_rollout_member *m,
                          const char *action);
/* Another instance pushed m (its event): m counts as delivered. */
void fota_rollout_taken(struct fota_rollout *r, struct fota_rollout_member *m);

/* Devices of the product upgrading now (active members of its rollouts). */
int64_t fota_rollout_product_active(struct fota_rollouts *ro, int64_t product_id);

/* rollout.c: what the hub's subscribers do, for events another instance
 * wrote (rollout_remote.c). */
void fota_rollout_feed_online(struct fota_rollouts *ro, const struct fota_hub_presence *ev);
void fota_rollout_feed_reply(struct fota_rollouts *ro, const struct fota_hub_reply *ev);
void fota_rollout_feed_report(struct fota_rollouts *ro, const struct fota_hub_report *ev);

/* rollout_remote.c: several instances (docs/scale-out.md). The driver asks
 * the instance holding a member's device to push it (channel fota_push);
 * every instance remembers the members so named, pushes those whose device
 * it holds and writes what their devices do (rollout_events, channel
 * fota_rollout_ev), which the driver applies as the hub's subscribers do
 * for its own devices; the driver also finds its queued members whose
 * device another instance holds. Nothing of this runs alone. */
/* Starts it when the instances share the store (ro->clustered). 0 or -1. */
int fota_rollout_remote_start(struct fota_rollouts *ro);
void fota_rollout_remote_stop(struct fota_rollouts *ro);
/* The driver: asks for m's push (m's device is not connected here); sent
 * with the next fota_rollout_remote_send. */
void fota_rollout_remote_push(struct fota_rollout *r, const struct fota_rollout_member *m);
/* Sends the pushes asked for (notifications of at most
 * FOTA_CLUSTER_PAYLOAD_MAX bytes). */
void fota_rollout_remote_send(struct fota_rollouts *ro);
/* The hub's events of this instance's devices that the engine did not take:
 * those of a member another instance drives go to rollout_events. Reply
 * and report return non-zero when taken. */
int64_t fota_rollout_remote_reply(struct fota_rollouts *ro, const struct fota_hub_reply *ev);
int64_t fota_rollout_remote_report(struct fota_rollouts *ro, const struct fota_hub_report *ev);
void fota_rollout_remote_online(struct fota_rollouts *ro, const struct fota_hub_presence *ev);
/* Every engine tick (FOTA_ROLLOUT_FLUSH_MS), on every instance: the driver
 * applies the events written and looks for its queued members held
 * elsewhere (once a second each at least). */
void fota_rollout_remote_tick(struct fota_rollouts *ro);

/* rollout_pull.c: rollouts of pull-based devices (docs/arduino.md). */
/* Where a pull-based device is: online (a check-in within the product's
 * checkin_interval, or Online over MQTT for a device known there), and
 * whether it is known over MQTT. */
struct fota_rollout_seen {
    int64_t device_id;
    uint8_t online;
    uint8_t mqtt;
};
/* Makes r a pull rollout when its product is an arduino product (grace_s
 * from its checkin_interval, r->md5s from its release's image: call it once
 * r->row.version is set). 1 pull, 0 not, or the store's error. */
int fota_rollout_pull_setup(struct fota_rollout *r, struct fota_store *st);
/* Every arduino device of the product with its presence, in device id
 * order (free()). 0 or the store's error. */
int fota_rollout_pull_presence(struct fota_store *st, int64_t product_id, int64_t grace_s,
                               struct fota_rollout_seen **out, size_t *n);
/* device_id's entry in a presence list, or NULL. */
const struct fota_rollout_seen *fota_rollout_pull_find(const struct fota_rollout_seen *seen,
                                                      size_t n, int64_t device_id);
/* Offers waiting members (those that came online first) while the
 * product's window has room: their command rows, then the hub's OFFER. */
void fota_rollout_pull_pump(struct fota_rollout *r);
/* Offers not taken by their deadline are withdrawn (the device never
 * checked in) or time out; taken ones time out. */
void fota_rollout_pull_timeouts(struct fota_rollout *r);
/* Cancels the command rows of offers the rollout calls back, now. */
void fota_rollout_pull_call_back(struct fota_rollout *r, const int64_t *cmd_ids, size_t k);
/* Calls back every offer not downloaded yet (a pause, a closing
 * maintenance window): the members wait again. Returns how many. */
size_t fota_rollout_pull_recall(struct fota_rollout *r, const char *why);
/* After a restart, with its devices' presence (seen NULL: unknown, as
 * fota_rollout_pull_presence gives it): queued members whose devices are
 * online wait for the window again; offered ones keep their offer. */
void fota_rollout_pull_resume(struct fota_rollout *r, const struct fota_rollout_seen *seen,
                              size_t ns);

/* rollout_ask.c: creates and controls asked of an instance that does not
 * drive the rollouts, carried to the one that does (docs/scale-out.md,
 * "Where to ask"). Listens on channel fota_rollout_ask when clustered. 0 or
 * FOTA_E* from fota_cluster_listen. */
int fota_rollout_ask_start(struct fota_rollouts *ro);
/* Answers 503 to the requests still waiting for the driver; after the
 * store executor drained. */
void fota_rollout_ask_stop(struct fota_rollouts *ro);
/* r (POST path with body, checked here as the driver checks it; body NULL
 * for none) is for the instance driving the rollouts: deferred and asked of
 * it, answered with its reply, or 503 with Retry-After when none takes it
 * in time. A request another instance asked of this one (r->inner) answers
 * 503 at once: the lease moved. Any thread. */
void fota_rollout_elsewhere(struct fota_rollouts *ro, struct fota_req *r, const char *path,
                            json_t *body);

/* rollout_ctl.c: replies 200 body (stolen) to r once the rollout lane has
 * run every job submitted before (the engine's writes of what the answer
 * says: offers called back, members, command rows), so that a check-in or
 * a read after the answer finds the rows as it says. Needs store threads
 * (with the inline store the writes ran already). Any thread; r is
 * deferred here and released by it. */
void fota_rollout_reply_written(struct fota_rollouts *ro, struct fota_req *r, json_t *body);
/* rollout_api.c: adds the REST routes. 0 or -1. */
int fota_rollout_api_routes(struct fota_rollouts *ro);
/* The request's settings and filter made a rollout: selects its members
 * (device_ids restricts them when non-NULL, ascending), stores it, starts
 * it (rollback_of: the rollout it rolls back, 0 none). 0 and a copy of its
 * row in *out (no reply sent), or -1 when an error reply was sent. Any
 * thread (a store job's, or the main loop's): what it needs of the engine
 * and the device channel it asks the main loop (fota_loop_call). Used by
 * create and by a rollback. 1 (no reply sent) when the request is good and
 * another instance drives the rollouts. */
int fota_rollout_create(struct fota_req *req, struct fota_rollouts *ro, json_t *body,
                        const int64_t *device_ids, size_t nids, int64_t rollback_of,
                        struct fota_rollout_row *out);
/* The rollout the path's first '*' names, for handlers off the main loop
 * (FOTA_ROUTE_STORE): a copy of the live row, taken on the main loop (its
 * members written out first, a job on the rollout lane, when save is set),
 * else the stored one. 1 live, 0 stored, or negative after a reply
 * (400/404/500). */
int fota_rollout_view(struct fota_req *r, struct fota_rollouts *ro, struct fota_rollout_row *row,
                      int save);
/* Replaces each of rows[0..n) (by id) that the engine holds with its live
 * row (members written out first when save is set), in one main-loop call
 * (fota_loop_call; any thread). The number replaced. */
size_t fota_rollout_live_rows(struct fota_rollouts *ro, struct fota_rollout_row *rows, size_t n,
                              int save);

/* rollout_ctl.c: the routes that act on a rollout. 0 or -1. */
int fota_rollout_ctl_routes(struct fota_rollouts *ro);

#endif
