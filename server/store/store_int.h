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

#endif
