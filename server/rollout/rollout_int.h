/* rollout_int.h - what the rollout module's files share: the engine
 * (rollout.c: members' states, hub subscribers, batched writes, resume),
 * the pushes (rollout_push.c: template, window pump, reboots, timeouts) and
 * the REST side (rollout_api.c). Private to server/rollout. */
#ifndef FOTA_ROLLOUT_INT_H
#define FOTA_ROLLOUT_INT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "rollout.h"
#include "store.h"

struct event;
struct fota_devchan;
struct fota_key_deriver;

/* One device of a rollout: 40 bytes, so a 100,000-device rollout is 4 MB.
 * state is enum fota_rollout_member_state. */
struct fota_rollout_member {
    int64_t device_id;
    int64_t cmd_id;                    /* its command row; 0 none yet, -1 none possible */
    int32_t nonce;
    int32_t keygen;                    /* for the owner key in the push */
    int32_t pushed_s;                  /* second of the push, from the rollout's t0_ms */
    uint8_t state;
    uint8_t dirty;                     /* its member row (and command row) need a write */
    uint8_t reboot_due;                /* sys_reboot to send (rollout with reboot) */
    uint8_t active;                    /* counts against the window */
    uint8_t triggered;                 /* pull: its offer was triggered over MQTT */
};

/* A member that came online: pushed from due_ms on (monotonic). */
struct fota_rollout_ready {
    uint32_t idx;
    int64_t due_ms;
};

struct fota_rollout {
    struct fota_rollouts *ro;
    struct fota_rollout *next;
    struct fota_rollout_row row;       /* settings, state, counters, marks (as stored) */
    struct fota_rollout_member *m;     /* in device id order */
    size_t n, cursor, ndirty, nreboot, need_rows;
    struct fota_rollout_ready *ready;  /* members that came online, oldest first */
    size_t nready, capready;
    int64_t t0_ms;                     /* fota_clock_mono_ms() at creation */
    int stored;                        /* its members have been written once */
    int pumped;                        /* the first pushes were made */
    char *tmpl;                        /* its sys_upgrade push with placeholders */
    int tmpl_len, auth_off, nonce_off, nonce_end;
    json_t *ok_result;                 /* the command row result of a D7 success */
    int pull;                          /* pull-based devices (an arduino product): offered
                                        * a command row, not pushed (rollout_pull.c) */
    int64_t grace_s;                   /* pull: the product's checkin_interval */
};

/* The module's state. */
struct fota_rollouts {
    struct fota_server *srv;
    struct fota_devchan *ch;
    struct fota_key_deriver *kd;       /* owner keys of the pushes (keyed once) */
    struct fota_rollout *list;         /* running (and just ended, until saved) */
    struct event *timer;
    struct event *soon;                /* a slot freed or a reboot is due: act on the next turn */
    json_t *acked_result;              /* command row results every rollout shares */
    json_t *failed_result;
};

/* Members that have finished one way or another (over when this is n). */
static inline int64_t fota_rollout_ended(const struct fota_rollout *r)
{
    const struct fota_rollout_counts *n = &r->row.n;
    return n->succeeded + n->failed + n->timed_out + n->deleted + n->cancelled;
}

/* rollout.c: the engine. */
struct fota_rollout *fota_rollout_new(struct fota_rollouts *ro);
void fota_rollout_free(struct fota_rollout *r);
/* Adds r (members filled, row created in the store) and starts its pushes
 * on the next loop pass. */
void fota_rollout_start(struct fota_rollouts *ro, struct fota_rollout *r);
struct fota_rollout *fota_rollout_find(struct fota_rollouts *ro, int64_t id);
size_t fota_rollout_running(struct fota_rollouts *ro);
void fota_rollout_set_state(struct fota_rollout *r, struct fota_rollout_member *m, int st);
void fota_rollout_finish_member(struct fota_rollout *r, struct fota_rollout_member *m, int st);
/* The member was pushed: counted as delivered and active. */
void fota_rollout_count_delivered(struct fota_rollout *r, struct fota_rollout_member *m);
/* Marks the moments every member was delivered / acked / finished, and the end. */
void fota_rollout_marks(struct fota_rollout *r);
/* Cancels r: members not pushed yet end as cancelled (written at once);
 * pushed ones report as usual. Returns how many it cancelled. */
size_t fota_rollout_cancel(struct fota_rollout *r);
/* Writes every pending member, command row and counter of every rollout. */
void fota_rollout_flush(struct fota_rollouts *ro);
/* Writes r's members now, its command rows too (a read of its members follows). */
void fota_rollout_save_now(struct fota_rollout *r);
double fota_rollout_since_ms(const struct fota_rollout *r);

/* rollout_api.c: the JSON of a rollout (docs/api.md) and a member state's name. */
json_t *fota_rollout_json(const struct fota_rollout_row *row);
const char *fota_rollout_member_state_name(int st);

/* rollout_push.c */
void fota_rollout_make_template(struct fota_rollout *r);
/* Pushes waiting members (those that came online first) while the
 * product's window has room. */
void fota_rollout_pump(struct fota_rollout *r);
void fota_rollout_send_reboots(struct fota_rollout *r);
void fota_rollout_check_timeouts(struct fota_rollout *r);

/* Devices of the product upgrading now (active members of its rollouts). */
int64_t fota_rollout_product_active(struct fota_rollouts *ro, int64_t product_id);

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
 * from its checkin_interval). 1 pull, 0 not, or the store's error. */
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
/* After a restart: queued members whose devices are online wait for the
 * window again; offered ones keep their offer. */
void fota_rollout_pull_resume(struct fota_rollout *r);

/* rollout_api.c: adds the REST routes. 0 or -1. */
int fota_rollout_api_routes(struct fota_rollouts *ro);

#endif
