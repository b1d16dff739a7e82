/* store_int.h - what the store backends share (store.c), not public:
 * command nonces, the JSON columns of command rows, printf-style logging through the store's callback and the
 * limits every backend applies the same way. Backends read the time with
 * fota_clock_wall_s() (clock.h) and copy strings with fota_str_copy(). */
#ifndef FOTA_STORE_INT_H
#define FOTA_STORE_INT_H

#include <stdarg.h>
#include "store.h"

#define FOTA_STORE_LIST_DEFAULT 50    /* limit 0 in message/transfer lists */
#define FOTA_STORE_LIST_MAX     1000  /* larger limits are clamped to this */

/* A random 31-bit positive command nonce (never 0). */
int64_t fota_store_nonce(void);
/* A JSON column as a row carries it (struct fota_command): text[0..len)
 * decoded; "" gives NULL, or an empty object when object is set (params),
 * as does a value that is not an object; text that is not JSON becomes a
 * JSON string holding it. A new reference. */
struct json_t *fota_store_json_decode(const char *text, size_t len, int object);
/* The text a JSON column stores (sorted keys, json.dumps separators); NULL
 * for NULL. The caller free()s it. */
char *fota_store_json_encode(const struct json_t *v);
/* Formats and passes one line to s->log (no-op when s->log is NULL). */
void fota_store_logf(struct fota_store *s, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Effective list limit for a caller's limit (0 -> default, clamped). */
size_t fota_store_limit(size_t limit);

/* A line logged at most once a second (a full disk fails every write: one
 * line a second says so without flooding the log). Caller-serialised. */
struct fota_store_ratelimit {
    int64_t next_ms;                  /* fota_clock_mono_ms() before which lines are counted */
    unsigned suppressed;              /* lines counted since the last one logged */
};
/* 1 if a line may be logged now, with *suppressed the number of lines held
 * back since the previous one; 0 (and one more counted) otherwise. */
int fota_store_ratelimit_pass(struct fota_store_ratelimit *rl, unsigned *suppressed);

/* The checks the ops of both stores make before any statement, and the
 * rows they hand back: */
/* product_create: FOTA_EINVAL without a name or with an unknown
 * slot_check; an empty status becomes "development". */
int fota_store_product_check(struct fota_product *p);
/* rom_create: the created release's id, time (not current) and its files'
 * ids fid[0..rom->nfiles) (no downloads yet) into *rom. */
void fota_store_rom_created(struct fota_rom *rom, int64_t id, int64_t now, const int64_t *fid);
/* device_tags_edit: FOTA_EINVAL for an unknown mode or a tag that breaks
 * the tag rule (fota_store_tag_valid). */
int fota_store_tags_edit_check(int mode, const char *const *tags, size_t nt);
/* command_create(_replacing): the created row's id, nonce, state (queued
 * unless given) and times into *c. */
void fota_store_command_created(struct fota_command *c, int64_t id, int64_t nonce, int64_t now);
/* command_create_replacing: the replaced ids old[0..nold) into
 * replaced[0..cap) (when non-NULL), their number into *nreplaced (when
 * non-NULL). */
void fota_store_replaced_out(const int64_t *old, size_t nold, int64_t *replaced, size_t cap,
                             size_t *nreplaced);

/* device_page's search q as LIKE patterns, the characters LIKE treats
 * specially escaped with '\' (store.h device_page). */
#define FOTA_STORE_PATTERN_CAP (2 * FOTA_NAME_MAX + 4)
struct fota_store_search {
    char name[FOTA_STORE_PATTERN_CAP]; /* %q% */
    char hex[FOTA_STORE_PATTERN_CAP];  /* %hex digits% (lower case) of a MAC fragment, else "" */
    char dec[FOTA_STORE_PATTERN_CAP];  /* %q% when q is decimal digits, else "" */
};
/* Checks qy (its sort, its numbers of tags and versions: FOTA_EINVAL) and
 * fills *sr from qy->sel.q (all "" without one); fold set puts the name
 * pattern's ASCII letters in lower case, for a store whose LIKE compares
 * case (PostgreSQL's; SQLite's LIKE ignores ASCII case). */
int fota_store_page_search(const struct fota_device_query *qy, int fold,
                           struct fota_store_search *sr);
/* The column of the devices row d an order sorts by ("d.name", ...); NULL
 * for FOTA_DEVICE_SORT_ID and an unknown order. */
const char *fota_store_sort_col(int sort);
/* Sorts tags[0..n) by count[] (the number of devices that carry each),
 * the rarest first, count[] with them. */
void fota_store_tags_rarest_first(int64_t *count, const char **tags, size_t n);
/* What kind of product a page's selection is in, which decides how
 * presence is read: FOTA_PAGE_ANY (every product: the rule's SQL with the
 * arduino rows joined to each device), FOTA_PAGE_NONOS (the channel's
 * column), FOTA_PAGE_ARDUINO (the product's arduino rows read once, with
 * its checkin_interval). Each store reads it (and the tags' counts). */
enum { FOTA_PAGE_ANY, FOTA_PAGE_NONOS, FOTA_PAGE_ARDUINO };
struct fota_page_kind {
    int kind;
    int64_t interval;                  /* FOTA_PAGE_ARDUINO: the product's checkin_interval */
    const char *tags[FOTA_SELECT_MAX]; /* the selection's tags, the rarest first */
    size_t ntags;
};
/* device_page's statement being written in one store's SQL (pg set:
 * PostgreSQL's "$N" and lower() of the searched columns; else SQLite's
 * "?N"): its text and its parameters in order, param[0] (number 1) always
 * the current time, used by the presence rule. overflow: the text or the
 * parameters did not fit, and the statement must not run. */
#define FOTA_PAGE_SQL_CAP     4096
#define FOTA_PAGE_PARAMS_MAX  48
struct fota_page_param {
    const char *text;                  /* NULL: num */
    size_t cap;                        /* text: at most cap bytes (up to its NUL) */
    int64_t num;
};
struct fota_page_sql {
    char sql[FOTA_PAGE_SQL_CAP];
    size_t len;
    int overflow, pg;
    struct fota_page_param param[FOTA_PAGE_PARAMS_MAX];
    int n;
};
void fota_page_sql_init(struct fota_page_sql *b, int pg, int64_t now);
void fota_page_sql_put(struct fota_page_sql *b, const char *frag);
/* Appends the WHERE conditions of sel (without the cursor); *joins set
 * when they read the arduino rows joined to each device
 * (FOTA_SQL_ONLINE_JOINS). */
void fota_page_where(struct fota_page_sql *b, const struct fota_device_sel *sel,
                     const struct fota_store_search *sr, const struct fota_page_kind *k,
                     int *joins);
/* Appends the cursor's condition, the order and the limit of qy. */
void fota_page_order(struct fota_page_sql *b, const struct fota_device_query *qy);
/* Writes into b (its pg kept) the count of the devices sel selects. */
void fota_page_count(struct fota_page_sql *b, const struct fota_device_sel *sel,
                     const struct fota_store_search *sr, const struct fota_page_kind *k,
                     int64_t now);

/* Retention of a log table (store.h message_prune, transfer_prune): the
 * walk every store shares (store_prune.c) over the statements of one table
 * a store runs in the call's transaction. fota_prune_pos.phase is one of: */
enum { FOTA_PRUNE_START, FOTA_PRUNE_PREFIX, FOTA_PRUNE_DEVICES, FOTA_PRUNE_DONE };
#define FOTA_PRUNE_SCAN 20000         /* index entries the per-device pass reads per call */
/* One device's rows counted in a slice of the (device_id, id) index. */
struct fota_prune_run {
    int64_t device_id, count;
};
/* A store's statements; ctx is its connection and table; each returns 0 or
 * FOTA_E*. */
struct fota_prune_ops {
    /* The number of rows in the table. */
    int (*count)(void *ctx, int64_t *total);
    /* *m: how many of the oldest rows, at most budget, are older than
     * older_than (they stop at the first one that is not). */
    int (*age_walk)(void *ctx, int64_t older_than, int64_t budget, int64_t *m);
    /* Deletes the m oldest rows; *last the largest id deleted. */
    int (*cut_oldest)(void *ctx, int64_t m, int64_t *last);
    /* Reads up to FOTA_PRUNE_SCAN entries of the messages' (device_id, id)
     * index after pos into runs of one device each (*out, *n; free()d by
     * the caller). The last run may be cut by the slice's end: it goes back
     * into pos (device, last id read, count so far) instead of the array.
     * *end: the index ended within the slice. */
    int (*scan_slice)(void *ctx, struct fota_prune_pos *pos, struct fota_prune_run **out,
                      size_t *n, int *end);
    /* Deletes device dev's n oldest messages; *last as for cut_oldest. */
    int (*cut_device)(void *ctx, int64_t dev, int64_t n, int64_t *last);
};
/* *budget: the rows one call of r deletes at most; FOTA_EINVAL for a
 * negative limit. */
int fota_store_prune_budget(const struct fota_retention *r, int64_t *budget);
/* One call's work inside the store's transaction: moves r->pos and adds
 * the rows deleted to *deleted, the largest id deleted (when larger) to
 * *last. per_device: the table is messages (keep_per_device applies). On
 * failure the caller rolls back and puts r->pos back. */
int fota_store_prune_call(const struct fota_prune_ops *ops, void *ctx, struct fota_retention *r,
                          int per_device, int64_t budget, int64_t *deleted, int64_t *last);

/* A device's presence, the SQL form of the one rule (store.h device_page;
 * fota_arduino_online in store_arduino.h): 1 online, 0 not, for the row of
 * devices d with its product's arduino_products row ap and its
 * arduino_devices row ad LEFT JOINed (NULL for a nonos product or device);
 * now is the SQL text of the current time's parameter ("?1" in SQLite,
 * "$1" in PostgreSQL): the same SQL in both stores. */
#define FOTA_SQL_ONLINE(now)                                                                  \
    "(CASE WHEN ap.product_id IS NULL THEN (CASE WHEN d.online <> 0 THEN 1 ELSE 0 END)"       \
    " WHEN ad.mqtt_topic <> '' THEN (CASE WHEN ad.mqtt_lwt = 'Online' THEN 1 ELSE 0 END)"     \
    " WHEN ad.last_checkin > 0 AND " now " - ad.last_checkin < ap.checkin_interval THEN 1"   \
    " ELSE 0 END)"
#define FOTA_SQL_ONLINE_JOINS                                                                 \
    " LEFT JOIN arduino_products ap ON ap.product_id = d.product_id"                          \
    " LEFT JOIN arduino_devices ad ON ad.device_id = d.id"

/* What command_update_batch never does (store.h): open again (queued,
 * delivered, acked) a command that ended (done, failed, cancelled). old
 * and new are the SQL of the stored and the written state. */
#define FOTA_SQL_CMD_NOT_REOPENED(old, new)                                                  \
    "(" old " NOT IN (4, 5, 7) OR " new " NOT IN (1, 2, 3))"
_Static_assert(FOTA_CMD_QUEUED == 1 && FOTA_CMD_DELIVERED == 2 && FOTA_CMD_ACKED == 3 &&
               FOTA_CMD_DONE == 4 && FOTA_CMD_FAILED == 5 && FOTA_CMD_CANCELLED == 7,
               "FOTA_SQL_CMD_NOT_REOPENED names the states by number");

/* The SQL of rollouts that is the same in both stores: the columns a
 * rollout row and a stage row are read from (in the stores' read order),
 * a sample's counts, and what a sample at a second that already has one
 * of its rollout writes over it. */
#define FOTA_SQL_ROLLOUT_COLS                                                               \
    "SELECT id, product_id, version, filter, reboot, window_size, timeout_s, max_failures,"  \
    " state, halted, n_total, n_skipped, n_waiting, n_queued, n_active, n_delivered,"      \
    " n_acked, n_succeeded, n_failed, n_timed_out, n_deleted, n_cancelled, n_verifying,"   \
    " ms_delivered, ms_acked, ms_finished, created, updated, health_s, max_reboots,"       \
    " hours_from, hours_to, seed, rollback_of, paused_at, pause_reason, stage FROM rollouts"
#define FOTA_SQL_STAGE_COLS                                                                 \
    "SELECT rollout_id, idx, kind, value, success, max_failures, approval, fail_base,"     \
    " n_total, n_succeeded, n_failed, n_timed_out, n_deleted, n_cancelled, started,"       \
    " approved FROM rollout_stages"
#define FOTA_SQL_SAMPLE_COUNTS                                                              \
    "n_total, n_skipped, n_waiting, n_queued, n_active, n_delivered, n_acked, n_succeeded,"  \
    " n_failed, n_timed_out, n_deleted, n_cancelled, n_verifying"
#define FOTA_SQL_SAMPLE_UPSERT                                                              \
    " ON CONFLICT (rollout_id, t) DO UPDATE SET"                                           \
    " n_total = excluded.n_total, n_skipped = excluded.n_skipped,"                         \
    " n_waiting = excluded.n_waiting, n_queued = excluded.n_queued,"                       \
    " n_active = excluded.n_active, n_delivered = excluded.n_delivered,"                   \
    " n_acked = excluded.n_acked, n_succeeded = excluded.n_succeeded,"                     \
    " n_failed = excluded.n_failed, n_timed_out = excluded.n_timed_out,"                   \
    " n_deleted = excluded.n_deleted, n_cancelled = excluded.n_cancelled,"                 \
    " n_verifying = excluded.n_verifying"

#endif
