/* store_pg_devpage.c - a fleet's devices selected, sorted and paged in the
 * PostgreSQL store (store.h device_page; store_sqlite_devpage.c in
 * PostgreSQL's form). The statement is put together per call from the same
 * fixed fragments, one per filter set, so that each shape is planned on its
 * own: a page is a range of the index of its order (migration 8), walked
 * from the cursor's position. Every value is a bound parameter; no text of
 * the caller becomes SQL. SQLite's LIKE ignores ASCII case and PostgreSQL's
 * does not: the search compares lower(column), which with the columns' "C"
 * collation folds ASCII only, as SQLite does, with a pattern folded once
 * (fota_store_page_search; ILIKE would fold the pattern again for every
 * row: twice the time). The search's patterns, the orders' columns and the
 * tags' order are store_devpage.c's. An op of several statements (the product's kind, the tags' counts, the
 * page, the total) reads one snapshot (REPEATABLE READ, READ ONLY), as
 * SQLite's lock gives. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store_pg_int.h"
#include "xmalloc.h"

#define SQL_CAP     4096

/* A statement being written: its text and its parameters in order ($1 is
 * always the current time, used by the presence rule). */
struct sql_build {
    char sql[SQL_CAP];
    size_t len;
    int overflow;
    struct pg_params p;
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

/* Appends "$N" of parameter number n. */
static void put_ref(struct sql_build *b, int n)
{
    char ph[16];
    snprintf(ph, sizeof ph, "$%d", n);
    put(b, ph);
}

/* Appends the next parameter's "$N" with its value: text (at most cap
 * bytes) or, when text is NULL, num. Returns N (0 when there is no room),
 * for a later put_ref of the same value. */
static int param(struct sql_build *b, const char *text, size_t cap, int64_t num)
{
    if (b->p.n >= FOTA_PG_PARAMS_MAX) {
        b->overflow = 1;
        return 0;
    }
    if (text)
        fota_store_pg_param_text(&b->p, text, cap);
    else
        fota_store_pg_param_int(&b->p, num);
    put_ref(b, b->p.n);
    return b->p.n;
}

static void builder_init(struct sql_build *b, int64_t now)
{
    memset(b, 0, sizeof *b);
    fota_store_pg_param_int(&b->p, now);
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

/* Orders the selection's tags by how many devices carry each (one
 * statement: an index range count each), so a filter of several tags
 * starts from the rarest. */
static int tags_rarest_first(struct pg_conn *c, const struct fota_device_sel *sel,
                             struct kind *k)
{
    int64_t count[FOTA_SELECT_MAX];
    struct sql_build *b;
    PGresult *r;
    int rc = 0;

    k->ntags = sel->ntags;
    for (size_t i = 0; i < sel->ntags; i++) {
        k->tags[i] = sel->tags[i];
        count[i] = 0;
    }
    if (sel->ntags < 2)
        return 0;
    b = fota_xcalloc(1, sizeof *b);
    put(b, "SELECT tag, COUNT(*) FROM device_tags WHERE tag IN (");
    for (size_t i = 0; i < sel->ntags; i++) {
        put(b, i ? ", " : "");
        param(b, sel->tags[i], strlen(sel->tags[i]) + 1, 0);
    }
    put(b, ") GROUP BY tag");
    r = b->overflow ? NULL : fota_store_pg_run(c, -1, b->sql, &b->p, "device_page", &rc);
    if (r) {
        for (int row = 0; row < PQntuples(r); row++)
            for (size_t i = 0; i < sel->ntags; i++)
                if (strcmp(PQgetvalue(r, row, 0), sel->tags[i]) == 0)
                    count[i] = fota_store_pg_col_int(r, row, 1);
        PQclear(r);
    } else if (b->overflow) {
        rc = FOTA_EIO;
    }
    free(b);
    if (rc == 0)
        fota_store_tags_rarest_first(count, k->tags, k->ntags);
    return rc;
}

static void read_interval(const PGresult *r, int row, void *out)
{
    *(int64_t *)out = fota_store_pg_col_int(r, row, 0);
}

static int kind_of(struct pg_conn *c, int64_t product_id, struct kind *k)
{
    struct pg_params a = { 0 };
    int rc;

    k->kind = KIND_ANY;
    k->interval = 0;
    if (!product_id)
        return 0;
    fota_store_pg_param_int(&a, product_id);
    rc = fota_store_pg_one(c, PQ_PAGE_KIND,
                           "SELECT checkin_interval FROM arduino_products WHERE product_id = $1",
                           &a, read_interval, &k->interval, "device_page");
    if (rc == 0)
        k->kind = KIND_ARDUINO;
    else if (rc == FOTA_ENOENT)
        k->kind = KIND_NONOS;
    return rc == FOTA_ENOENT ? 0 : rc;
}

/* " AND d.id IN (arduino rows of the selection's product WHERE " ... ")":
 * the product's arduino rows are read once into a list, not joined to
 * every device. pid is the product's parameter (0: none). */
static void arduino_rows(struct sql_build *b, int pid, int not)
{
    put(b, not ? " AND d.id NOT IN" : " AND d.id IN");
    put(b, " (SELECT ad.device_id FROM arduino_devices ad WHERE ");
    if (pid) {
        put(b, "ad.product_id = ");
        put_ref(b, pid);
        put(b, " AND ");
    }
}

/* The WHERE conditions of sel (without the cursor); *joins set when they
 * read the arduino rows joined to each device (FOTA_SQL_ONLINE_JOINS). */
static void where_sel(struct sql_build *b, const struct fota_device_sel *sel,
                      const struct fota_store_search *sr, const struct kind *k, int *joins)
{
    int pid = 0;

    put(b, " WHERE 1 = 1");
    if (sel->product_id) {
        put(b, " AND d.product_id = ");
        pid = param(b, NULL, 0, sel->product_id);
    }
    if (sel->name) {
        put(b, " AND d.name = ");
        param(b, sel->name, strlen(sel->name) + 1, 0);
    }
    if (sel->q) {
        int hex = 0;
        put(b, " AND (lower(d.name) LIKE ");
        param(b, sr->name, sizeof sr->name, 0);
        put(b, " ESCAPE '\\'");
        if (sr->hex[0]) {
            put(b, " OR lower(REPLACE(d.bssid, ':', '')) LIKE ");
            hex = param(b, sr->hex, sizeof sr->hex, 0);
        }
        if ((sr->hex[0] || sr->dec[0]) && k->kind != KIND_NONOS) {
            /* STA MACs and chip ids: the arduino rows, read once */
            put(b, " OR d.id IN (SELECT ad.device_id FROM arduino_devices ad WHERE ");
            if (pid) {
                put(b, "ad.product_id = ");
                put_ref(b, pid);
                put(b, " AND ");
            }
            put(b, "(0 = 1");
            if (sr->hex[0]) {
                put(b, " OR lower(REPLACE(ad.sta_mac, ':', '')) LIKE ");
                put_ref(b, hex);
                put(b, " OR (ad.chip_id >= 0 AND to_hex(ad.chip_id) LIKE ");
                put_ref(b, hex);
                put(b, ")");
            }
            if (sr->dec[0]) {
                put(b, " OR (ad.chip_id >= 0 AND CAST(ad.chip_id AS TEXT) LIKE ");
                param(b, sr->dec, sizeof sr->dec, 0);
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
            param(b, sel->versions[i], strlen(sel->versions[i]) + 1, 0);
        }
        put(b, ")");
    }
    if (k->ntags) {
        /* the rarest tag's devices, read once, that carry the others too */
        put(b, " AND d.id IN (SELECT t.device_id FROM device_tags t WHERE t.tag = ");
        param(b, k->tags[0], strlen(k->tags[0]) + 1, 0);
        for (size_t i = 1; i < k->ntags; i++) {
            put(b, " AND EXISTS (SELECT 1 FROM device_tags u WHERE u.device_id = t.device_id"
                   " AND u.tag = ");
            param(b, k->tags[i], strlen(k->tags[i]) + 1, 0);
            put(b, ")");
        }
        put(b, ")");
    }
    if (sel->online >= 0 && k->kind == KIND_NONOS) {
        put(b, sel->online ? " AND d.online <> 0" : " AND d.online = 0");
    } else if (sel->online >= 0 && k->kind == KIND_ARDUINO) {
        /* FOTA_SQL_ONLINE with the product's interval: its arduino rows
         * that are online (a device without one is not) */
        arduino_rows(b, pid, !sel->online);
        put(b, "CASE WHEN ad.mqtt_topic <> '' THEN (CASE WHEN ad.mqtt_lwt = 'Online' THEN 1"
               " ELSE 0 END) WHEN ad.last_checkin > 0 AND $1 - ad.last_checkin < ");
        param(b, NULL, 0, k->interval);
        put(b, " THEN 1 ELSE 0 END = 1)");
    } else if (sel->online >= 0) {
        *joins = 1;
        put(b, sel->online ? " AND " FOTA_SQL_ONLINE("$1") " = 1"
                           : " AND " FOTA_SQL_ONLINE("$1") " = 0");
    }
    if (sel->checkin_before) {
        put(b, " AND d.last_active < ");
        param(b, NULL, 0, sel->checkin_before);
    }
    if (sel->checkin_after) {
        put(b, " AND d.last_active >= ");
        param(b, NULL, 0, sel->checkin_after);
    }
}

/* Runs b (built per call: not prepared); NULL with *rc on failure. */
static PGresult *run(struct pg_conn *c, const struct sql_build *b, const char *what, int *rc)
{
    if (b->overflow) {
        fota_store_logf(&c->q->base, FOTA_LOG_ERROR, "%s: statement too long", what);
        *rc = FOTA_EIO;
        return NULL;
    }
    return fota_store_pg_run(c, -1, b->sql, &b->p, what, rc);
}

static int count_rows(struct pg_conn *c, const struct fota_device_sel *sel,
                      const struct fota_store_search *sr, const struct kind *k, int64_t now,
                      int64_t *total)
{
    struct sql_build *b = fota_xcalloc(1, sizeof *b), *w = fota_xcalloc(1, sizeof *w);
    int joins = 0, rc;
    PGresult *r;

    /* The conditions first: they decide whether the count needs the joins. */
    builder_init(w, now);
    where_sel(w, sel, sr, k, &joins);
    put(b, "SELECT COUNT(*) FROM devices d");
    if (joins)
        put(b, FOTA_SQL_ONLINE_JOINS);
    put(b, w->sql);
    b->p = w->p;
    b->overflow |= w->overflow;
    *total = 0;
    r = run(c, b, "device_page count", &rc);
    if (r) {
        *total = fota_store_pg_col_int(r, 0, 0);
        PQclear(r);
    }
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
            param(b, NULL, 0, qy->after.id);
        } else {
            put(b, " AND (");
            put(b, col);
            put(b, ", d.id)");
            put(b, op);
            put(b, "(");
            if (qy->sort == FOTA_DEVICE_SORT_NAME || qy->sort == FOTA_DEVICE_SORT_VERSION)
                param(b, qy->after.text, sizeof qy->after.text, 0);
            else
                param(b, NULL, 0, qy->after.num);
            put(b, ", ");
            param(b, NULL, 0, qy->after.id);
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
        param(b, NULL, 0, (int64_t)qy->limit);
    }
}

static void read_device(const PGresult *r, int row, void *out)
{
    struct fota_device *d = out;

    memset(d, 0, sizeof *d);
    d->id = fota_store_pg_col_int(r, row, 0);
    d->product_id = fota_store_pg_col_int(r, row, 1);
    fota_store_pg_col_text(r, row, 2, d->name, sizeof d->name);
    fota_store_pg_col_text(r, row, 3, d->bssid, sizeof d->bssid);
    d->activated = (int)fota_store_pg_col_int(r, row, 4);
    d->activated_at = fota_store_pg_col_int(r, row, 5);
    fota_store_pg_col_text(r, row, 6, d->rom_version, sizeof d->rom_version);
    d->running_slot = (int)fota_store_pg_col_int(r, row, 7);
    d->last_active = fota_store_pg_col_int(r, row, 8);
    d->online = (int)fota_store_pg_col_int(r, row, 9);
    d->created = fota_store_pg_col_int(r, row, 10);
    d->key_generation = (int)fota_store_pg_col_int(r, row, 11);
}

/* The page of qy into *out, *n (and *total when non-NULL). */
static int page(struct pg_conn *c, const struct fota_device_query *qy, int64_t now,
                const struct fota_store_search *sr, struct sql_build *b, struct fota_device **out,
                size_t *n, int64_t *total)
{
    const struct fota_device_sel *sel = &qy->sel;
    struct kind k;
    int joins = 0, rc;
    PGresult *r;

    rc = kind_of(c, sel->product_id, &k);
    if (rc == 0)
        rc = tags_rarest_first(c, sel, &k);
    if (rc != 0)
        return rc;
    builder_init(b, now);
    put(b, "SELECT d.id, d.product_id, d.name, d.bssid, d.activated, d.activated_at,"
           " d.rom_version, d.running_slot, d.last_active, " FOTA_SQL_ONLINE("$1") ","
           " d.created, d.key_generation FROM devices d" FOTA_SQL_ONLINE_JOINS);
    where_sel(b, sel, sr, &k, &joins);
    append_order(b, qy, fota_store_sort_col(qy->sort));
    if (!(r = run(c, b, "device_page", &rc)))
        return rc;
    *n = (size_t)PQntuples(r);
    *out = fota_xcalloc(*n ? *n : 1, sizeof **out);
    for (size_t i = 0; i < *n; i++)
        read_device(r, (int)i, &(*out)[i]);
    PQclear(r);
    /* A first page that holds every selected device is its own count. */
    if (total && !qy->after.id && (!qy->limit || *n < qy->limit))
        *total = (int64_t)*n;
    else if (total)
        rc = count_rows(c, sel, sr, &k, now, total);
    return rc;
}

int fota_store_pg_device_page(struct fota_store *s, const struct fota_device_query *qy,
                              int64_t now, struct fota_device **out, size_t *n, int64_t *total)
{
    const struct fota_device_sel *sel = &qy->sel;
    struct sql_build *b;
    struct pg_conn *c;
    struct fota_store_search sr;
    int rc, snapshot;

    *out = NULL;
    *n = 0;
    if ((rc = fota_store_page_search(qy, 1, &sr)) != 0)
        return rc;
    if ((rc = fota_store_pg_enter(s, "device_page", &c)) != 0)
        return rc;
    /* More than the page's one statement: one snapshot for all of them. */
    snapshot = sel->product_id || sel->ntags > 1 || total;
    if (snapshot) {
        rc = fota_store_pg_exec(c, -1, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", NULL,
                                "device_page", NULL);
        c->in_tx = rc == 0;
    }
    b = fota_xcalloc(1, sizeof *b);
    if (rc == 0)
        rc = page(c, qy, now, &sr, b, out, n, total);
    if (snapshot && c->in_tx)
        rc = fota_store_pg_finish(c, rc);
    free(b);
    if (rc != 0) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return fota_store_pg_leave(c, rc);
}
