/* store_sqlite_devpage.c - a fleet's devices selected, sorted and paged
 * (store.h device_page). The statement is put together per call from fixed
 * fragments, one per filter set, so that SQLite plans each shape on its
 * own: a page is then a range of the index of its order (migration 8),
 * walked from the cursor's position, and filters that no index serves cost
 * only the rows the walk passes. Every value is a bound parameter; no text
 * of the caller becomes SQL. The search's patterns, the orders' columns and
 * the tags' order are store_devpage.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_sqlite_int.h"
#include "xmalloc.h"

#define Q(s) fota_store_sqlite_cast(s)

#define SQL_CAP   4096
#define BINDS_MAX 64

/* A statement being written: its text and its parameters in order (?1 is
 * always the current time, used by the presence rule). */
struct sql_build {
    char sql[SQL_CAP];
    size_t len;
    int overflow;
    struct {
        const char *text;              /* NULL: an integer */
        int64_t num;
    } bind[BINDS_MAX];
    int nbind;
};

static void put(struct sql_build *b, const char *frag)
{
    size_t n = strlen(frag);
    if (b->overflow || b->len + n >= sizeof b->sql) {
        b->overflow = 1;
        return;
    }
    memcpy(b->sql + b->len, frag, n + 1);
    b->len += n;
}

/* Appends the next parameter's "?N" and records its value. */
static void param(struct sql_build *b, const char *text, int64_t num)
{
    char ph[16];
    if (b->nbind >= BINDS_MAX) {
        b->overflow = 1;
        return;
    }
    b->bind[b->nbind].text = text;
    b->bind[b->nbind].num = num;
    b->nbind++;
    snprintf(ph, sizeof ph, "?%d", b->nbind + 1);   /* ?1 is now */
    put(b, ph);
}

/* What kind of product a selection is in, which decides how presence is
 * read: KIND_ANY (every product: the rule's SQL with the arduino rows
 * joined to each device), KIND_NONOS (the channel's column), KIND_ARDUINO
 * (the product's arduino rows read once, with its checkin_interval). */
enum { KIND_ANY, KIND_NONOS, KIND_ARDUINO };

struct kind {
    int kind;
    int64_t interval;                  /* KIND_ARDUINO: the product's checkin_interval */
    const char *tags[FOTA_SELECT_MAX]; /* the selection's tags, the rarest first */
    size_t ntags;
};

/* Orders the selection's tags by how many devices carry each (an index
 * range count each), so a filter of several tags starts from the rarest. */
static int tags_rarest_first(struct sql_store *q, const struct fota_device_sel *sel,
                             struct kind *k)
{
    int64_t count[FOTA_SELECT_MAX];
    int rc = 0;

    k->ntags = sel->ntags;
    for (size_t i = 0; i < sel->ntags; i++) {
        k->tags[i] = sel->tags[i];
        count[i] = 0;
    }
    for (size_t i = 0; rc == 0 && sel->ntags > 1 && i < sel->ntags; i++) {
        sqlite3_stmt *st = fota_store_sqlite_stmt(q, SQ_TAG_DEVICES,
                                                  "SELECT COUNT(*) FROM device_tags WHERE tag = ?");
        if (st)
            sqlite3_bind_text(st, 1, sel->tags[i], -1, SQLITE_STATIC);
        rc = fota_store_sqlite_exec(q, st, "device_page", &count[i]);
    }
    if (rc == 0)
        fota_store_tags_rarest_first(count, k->tags, k->ntags);
    return rc;
}

static int kind_of(struct sql_store *q, int64_t product_id, struct kind *k)
{
    sqlite3_stmt *st = NULL;
    int rc;

    k->kind = KIND_ANY;
    k->interval = 0;
    if (!product_id)
        return 0;
    if (sqlite3_prepare_v2(q->db, "SELECT checkin_interval FROM arduino_products"
                                  " WHERE product_id = ?", -1, &st, NULL) != SQLITE_OK) {
        rc = fota_store_sqlite_err(q, sqlite3_errcode(q->db), "device_page prepare");
        sqlite3_finalize(st);
        return rc;
    }
    sqlite3_bind_int64(st, 1, product_id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        k->kind = KIND_ARDUINO;
        k->interval = sqlite3_column_int64(st, 0);
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        k->kind = KIND_NONOS;
        rc = 0;
    } else {
        rc = fota_store_sqlite_err(q, rc, "device_page");
    }
    sqlite3_finalize(st);
    return rc;
}

/* " AND d.id IN (arduino rows of the selection's product WHERE " ... ")":
 * the product's arduino rows are read once into a list, not joined to
 * every device. */
static void arduino_rows(struct sql_build *b, const struct fota_device_sel *sel, int not)
{
    put(b, not ? " AND d.id NOT IN" : " AND d.id IN");
    put(b, " (SELECT ad.device_id FROM arduino_devices ad WHERE ");
    if (sel->product_id) {
        put(b, "ad.product_id = ");
        param(b, NULL, sel->product_id);
        put(b, " AND ");
    }
}

/* The WHERE conditions of sel (without the cursor); *joins set when they
 * read the arduino rows joined to each device (FOTA_SQL_ONLINE_JOINS). */
static void where_sel(struct sql_build *b, const struct fota_device_sel *sel,
                      const struct fota_store_search *sr, const struct kind *k, int *joins)
{
    put(b, " WHERE 1 = 1");
    if (sel->product_id) {
        put(b, " AND d.product_id = ");
        param(b, NULL, sel->product_id);
    }
    if (sel->name) {
        put(b, " AND d.name = ");
        param(b, sel->name, 0);
    }
    if (sel->q) {
        put(b, " AND (d.name LIKE ");
        param(b, sr->name, 0);
        put(b, " ESCAPE '\\'");
        if (sr->hex[0]) {
            put(b, " OR REPLACE(d.bssid, ':', '') LIKE ");
            param(b, sr->hex, 0);
        }
        if ((sr->hex[0] || sr->dec[0]) && k->kind != KIND_NONOS) {
            /* STA MACs and chip ids: the arduino rows, read once */
            put(b, " OR d.id IN (SELECT ad.device_id FROM arduino_devices ad WHERE ");
            if (sel->product_id) {
                put(b, "ad.product_id = ");
                param(b, NULL, sel->product_id);
                put(b, " AND ");
            }
            put(b, "(0 = 1");
            if (sr->hex[0]) {
                put(b, " OR REPLACE(ad.sta_mac, ':', '') LIKE ");
                param(b, sr->hex, 0);
                put(b, " OR (ad.chip_id >= 0 AND printf('%x', ad.chip_id) LIKE ");
                param(b, sr->hex, 0);
                put(b, ")");
            }
            if (sr->dec[0]) {
                put(b, " OR (ad.chip_id >= 0 AND CAST(ad.chip_id AS TEXT) LIKE ");
                param(b, sr->dec, 0);
                put(b, ")");
            }
            put(b, "))");
        }
        put(b, ")");
    }
    if (sel->nversions) {
        put(b, " AND d.rom_version IN (");
        for (size_t i = 0; i < sel->nversions; i++) {
            put(b, i ? ", " : "");
            param(b, sel->versions[i], 0);
        }
        put(b, ")");
    }
    if (k->ntags) {
        /* the rarest tag's devices, read once, that carry the others too */
        put(b, " AND d.id IN (SELECT t.device_id FROM device_tags t WHERE t.tag = ");
        param(b, k->tags[0], 0);
        for (size_t i = 1; i < k->ntags; i++) {
            put(b, " AND EXISTS (SELECT 1 FROM device_tags u WHERE u.device_id = t.device_id"
                   " AND u.tag = ");
            param(b, k->tags[i], 0);
            put(b, ")");
        }
        put(b, ")");
    }
    if (sel->online >= 0 && k->kind == KIND_NONOS) {
        put(b, sel->online ? " AND d.online <> 0" : " AND d.online = 0");
    } else if (sel->online >= 0 && k->kind == KIND_ARDUINO) {
        /* FOTA_SQL_ONLINE with the product's interval: its arduino rows
         * that are online (a device without one is not) */
        arduino_rows(b, sel, !sel->online);
        put(b, "CASE WHEN ad.mqtt_topic <> '' THEN (CASE WHEN ad.mqtt_lwt = 'Online' THEN 1"
               " ELSE 0 END) WHEN ad.last_checkin > 0 AND ?1 - ad.last_checkin < ");
        param(b, NULL, k->interval);
        put(b, " THEN 1 ELSE 0 END = 1)");
    } else if (sel->online >= 0) {
        *joins = 1;
        put(b, sel->online ? " AND " FOTA_SQL_ONLINE("?1") " = 1"
                           : " AND " FOTA_SQL_ONLINE("?1") " = 0");
    }
    if (sel->checkin_before) {
        put(b, " AND d.last_active < ");
        param(b, NULL, sel->checkin_before);
    }
    if (sel->checkin_after) {
        put(b, " AND d.last_active >= ");
        param(b, NULL, sel->checkin_after);
    }
}

/* Prepares b and binds its parameters; NULL (logged) on failure. */
static sqlite3_stmt *prepare(struct sql_store *q, const struct sql_build *b, int64_t now)
{
    sqlite3_stmt *st = NULL;
    if (b->overflow) {
        fota_store_logf(&q->base, FOTA_LOG_ERROR, "device_page: statement too long");
        return NULL;
    }
    st = fota_store_sqlite_prepare(q, b->sql, (int)b->len + 1, "device_page prepare");
    if (!st)
        return NULL;
    if (sqlite3_bind_parameter_count(st) >= 1)
        sqlite3_bind_int64(st, 1, now);
    for (int i = 0; i < b->nbind; i++) {
        if (b->bind[i].text)
            sqlite3_bind_text(st, i + 2, b->bind[i].text, -1, SQLITE_STATIC);
        else
            sqlite3_bind_int64(st, i + 2, b->bind[i].num);
    }
    return st;
}

static int count_rows(struct sql_store *q, const struct fota_device_sel *sel,
                      const struct fota_store_search *sr, const struct kind *k, int64_t now,
                      int64_t *total)
{
    struct sql_build *b = fota_xcalloc(1, sizeof *b), *w = fota_xcalloc(1, sizeof *w);
    int joins = 0, rc;

    /* The conditions first: they decide whether the count needs the joins. */
    where_sel(w, sel, sr, k, &joins);
    put(b, "SELECT COUNT(*) FROM devices d");
    if (joins)
        put(b, FOTA_SQL_ONLINE_JOINS);
    put(b, w->sql);
    memcpy(b->bind, w->bind, sizeof b->bind);
    b->nbind = w->nbind;
    b->overflow |= w->overflow;
    sqlite3_stmt *st = prepare(q, b, now);
    *total = 0;
    rc = st ? fota_store_sqlite_exec(q, st, "device_page count", total) : FOTA_EIO;
    sqlite3_finalize(st);
    free(b);
    free(w);
    return rc;
}

/* The cursor's condition, the order and the limit of q. */
static void append_order(struct sql_build *b, const struct fota_device_query *qy, const char *col)
{
    if (qy->after.id) {
        const char *op = qy->desc ? " < " : " > ";
        if (!col) {
            put(b, " AND d.id");
            put(b, op);
            param(b, NULL, qy->after.id);
        } else {
            put(b, " AND (");
            put(b, col);
            put(b, ", d.id)");
            put(b, op);
            put(b, "(");
            if (qy->sort == FOTA_DEVICE_SORT_NAME || qy->sort == FOTA_DEVICE_SORT_VERSION)
                param(b, qy->after.text, 0);
            else
                param(b, NULL, qy->after.num);
            put(b, ", ");
            param(b, NULL, qy->after.id);
            put(b, ")");
        }
    }
    put(b, " ORDER BY ");
    if (col) {
        put(b, col);
        put(b, qy->desc ? " DESC, " : ", ");
    }
    put(b, qy->desc ? "d.id DESC" : "d.id");
    if (qy->limit) {
        put(b, " LIMIT ");
        param(b, NULL, (int64_t)qy->limit);
    }
}

int fota_store_sqlite_device_page(struct fota_store *s, const struct fota_device_query *qy,
                                  int64_t now, struct fota_device **out, size_t *n,
                                  int64_t *total)
{
    struct sql_store *q = Q(s);
    const struct fota_device_sel *sel = &qy->sel;
    const char *col = fota_store_sort_col(qy->sort);
    struct fota_store_search sr;
    struct kind k;
    int joins = 0, rc;

    *out = NULL;
    *n = 0;
    if ((rc = fota_store_page_search(qy, 0, &sr)) != 0)
        return rc;
    struct sql_build *b = fota_xcalloc(1, sizeof *b);
    put(b, "SELECT d.id, d.product_id, d.name, d.bssid, d.activated, d.activated_at,"
           " d.rom_version, d.running_slot, d.last_active, " FOTA_SQL_ONLINE("?1") ","
           " d.created, d.key_generation FROM devices d" FOTA_SQL_ONLINE_JOINS);
    sqlite3_stmt *st = NULL;
    fota_store_sqlite_lock(q);
    rc = kind_of(q, sel->product_id, &k);
    if (rc == 0)
        rc = tags_rarest_first(q, sel, &k);
    if (rc == 0) {
        where_sel(b, sel, &sr, &k, &joins);
        append_order(b, qy, col);
        st = prepare(q, b, now);
        rc = fota_store_sqlite_collect(q, st, fota_store_sqlite_read_device, sizeof **out,
                                       (void **)out, n, "device_page");
    }
    sqlite3_finalize(st);
    /* A first page that holds every selected device is its own count. */
    if (rc == 0 && total && !qy->after.id && (!qy->limit || *n < qy->limit))
        *total = (int64_t)*n;
    else if (rc == 0 && total)
        rc = count_rows(q, sel, &sr, &k, now, total);
    if (rc != 0) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    free(b);
    return fota_store_sqlite_unlock(q, rc);
}
