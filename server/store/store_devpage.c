/* store_devpage.c - the parts of device_page (store.h) that are the same
 * in every SQL store (store_int.h): the query's checks, the LIKE patterns
 * of a search, the column of an order, the rarest-first order of a
 * selection's tags, and the statement's conditions, order and count in
 * either store's SQL (struct fota_page_sql). Every value is a bound
 * parameter; no text of the caller becomes SQL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store_int.h"
#include "xmalloc.h"

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static char lower(char c)
{
    return (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
}

static void search_of(const char *q, int fold, struct fota_store_search *s)
{
    size_t n = 0, h = 0, digits = 0;
    int hexish = is_hex(q[0]), decimal = 1;

    s->name[n++] = '%';
    for (const char *p = q; *p && n + 3 < sizeof s->name; p++) {
        if (*p == '%' || *p == '_' || *p == '\\')
            s->name[n++] = '\\';
        s->name[n++] = fold ? lower(*p) : *p;
    }
    s->name[n++] = '%';
    /* A MAC fragment: hex digits, single separators between them. */
    s->hex[h++] = '%';
    for (const char *p = q; *p; p++) {
        if (*p >= '0' && *p <= '9') {
            digits++;
        } else {
            decimal = 0;
        }
        if (is_hex(*p)) {
            if (h + 2 < sizeof s->hex)
                s->hex[h++] = lower(*p);
        } else if (!((*p == ':' || *p == '-' || *p == '.') && is_hex(p[1]) && p > q)) {
            hexish = 0;
        }
    }
    s->hex[h++] = '%';
    if (!hexish)
        s->hex[0] = '\0';
    if (decimal && digits > 0)
        snprintf(s->dec, sizeof s->dec, "%%%s%%", q);
}

int fota_store_page_search(const struct fota_device_query *qy, int fold,
                           struct fota_store_search *sr)
{
    const struct fota_device_sel *sel = &qy->sel;

    memset(sr, 0, sizeof *sr);
    if ((qy->sort != FOTA_DEVICE_SORT_ID && !fota_store_sort_col(qy->sort)) ||
        sel->ntags > FOTA_SELECT_MAX || sel->nversions > FOTA_SELECT_MAX)
        return FOTA_EINVAL;
    if (sel->q)
        search_of(sel->q, fold, sr);
    return 0;
}

const char *fota_store_sort_col(int sort)
{
    switch (sort) {
    case FOTA_DEVICE_SORT_NAME: return "d.name";
    case FOTA_DEVICE_SORT_VERSION: return "d.rom_version";
    case FOTA_DEVICE_SORT_LAST_ACTIVE: return "d.last_active";
    case FOTA_DEVICE_SORT_CREATED: return "d.created";
    default: return NULL;
    }
}

void fota_store_tags_rarest_first(int64_t *count, const char **tags, size_t n)
{
    for (size_t i = 1; i < n; i++)   /* insertion sort: at most FOTA_SELECT_MAX */
        for (size_t j = i; j > 0 && count[j] < count[j - 1]; j--) {
            int64_t c = count[j];
            const char *t = tags[j];
            count[j] = count[j - 1];
            tags[j] = tags[j - 1];
            count[j - 1] = c;
            tags[j - 1] = t;
        }
}

/* ---- the statement ------------------------------------------------------ */

void fota_page_sql_init(struct fota_page_sql *b, int pg, int64_t now)
{
    memset(b, 0, sizeof *b);
    b->pg = pg;
    b->param[b->n++].num = now;
}

void fota_page_sql_put(struct fota_page_sql *b, const char *frag)
{
    size_t n = strlen(frag);
    if (b->overflow || b->len + n >= sizeof b->sql) {
        b->overflow = 1;
        return;
    }
    memcpy(b->sql + b->len, frag, n + 1);
    b->len += n;
}

/* Appends "$N" or "?N" of parameter number n. */
static void put_ref(struct fota_page_sql *b, int n)
{
    char ph[16];
    snprintf(ph, sizeof ph, "%c%d", b->pg ? '$' : '?', n);
    fota_page_sql_put(b, ph);
}

/* Appends the next parameter's reference with its value: text (at most cap
 * bytes) or, when text is NULL, num. Returns its number (0 when there is
 * no room), for a later put_ref of the same value. */
static int param(struct fota_page_sql *b, const char *text, size_t cap, int64_t num)
{
    if (b->n >= FOTA_PAGE_PARAMS_MAX) {
        b->overflow = 1;
        return 0;
    }
    b->param[b->n++] = (struct fota_page_param){ text, cap, num };
    put_ref(b, b->n);
    return b->n;
}

static void put(struct fota_page_sql *b, const char *frag)
{
    fota_page_sql_put(b, frag);
}

/* A text column as the search compares it: lower(col) in PostgreSQL
 * (its LIKE compares case; the pattern is folded), col in SQLite. */
static void put_folded(struct fota_page_sql *b, const char *col)
{
    put(b, b->pg ? "lower(" : "");
    put(b, col);
    put(b, b->pg ? ")" : "");
}

/* " AND d.id IN (arduino rows of the selection's product WHERE " ... ")":
 * the product's arduino rows are read once into a list, not joined to
 * every device. pid is the product's parameter (0: none). */
static void arduino_rows(struct fota_page_sql *b, int pid, int not)
{
    put(b, not ? " AND d.id NOT IN" : " AND d.id IN");
    put(b, " (SELECT ad.device_id FROM arduino_devices ad WHERE ");
    if (pid) {
        put(b, "ad.product_id = ");
        put_ref(b, pid);
        put(b, " AND ");
    }
}

void fota_page_where(struct fota_page_sql *b, const struct fota_device_sel *sel,
                     const struct fota_store_search *sr, const struct fota_page_kind *k,
                     int *joins)
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
        put(b, " AND (");
        put_folded(b, "d.name");
        put(b, " LIKE ");
        param(b, sr->name, sizeof sr->name, 0);
        put(b, " ESCAPE '\\'");
        if (sr->hex[0]) {
            put(b, " OR ");
            put_folded(b, "REPLACE(d.bssid, ':', '')");
            put(b, " LIKE ");
            hex = param(b, sr->hex, sizeof sr->hex, 0);
        }
        if ((sr->hex[0] || sr->dec[0]) && k->kind != FOTA_PAGE_NONOS) {
            /* STA MACs and chip ids: the arduino rows, read once */
            put(b, " OR d.id IN (SELECT ad.device_id FROM arduino_devices ad WHERE ");
            if (pid) {
                put(b, "ad.product_id = ");
                put_ref(b, pid);
                put(b, " AND ");
            }
            put(b, "(0 = 1");
            if (sr->hex[0]) {
                put(b, " OR ");
                put_folded(b, "REPLACE(ad.sta_mac, ':', '')");
                put(b, " LIKE ");
                put_ref(b, hex);
                put(b, b->pg ? " OR (ad.chip_id >= 0 AND to_hex(ad.chip_id) LIKE "
                             : " OR (ad.chip_id >= 0 AND printf('%x', ad.chip_id) LIKE ");
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
    if (sel->online >= 0 && k->kind == FOTA_PAGE_NONOS) {
        put(b, sel->online ? " AND d.online <> 0" : " AND d.online = 0");
    } else if (sel->online >= 0 && k->kind == FOTA_PAGE_ARDUINO) {
        /* FOTA_SQL_ONLINE with the product's interval: its arduino rows
         * that are online (a device without one is not) */
        arduino_rows(b, pid, !sel->online);
        put(b, "CASE WHEN ad.mqtt_topic <> '' THEN (CASE WHEN ad.mqtt_lwt = 'Online' THEN 1"
               " ELSE 0 END) WHEN ad.last_checkin > 0 AND ");
        put_ref(b, 1);
        put(b, " - ad.last_checkin < ");
        param(b, NULL, 0, k->interval);
        put(b, " THEN 1 ELSE 0 END = 1)");
    } else if (sel->online >= 0) {
        *joins = 1;
        if (b->pg)
            put(b, sel->online ? " AND " FOTA_SQL_ONLINE("$1") " = 1"
                               : " AND " FOTA_SQL_ONLINE("$1") " = 0");
        else
            put(b, sel->online ? " AND " FOTA_SQL_ONLINE("?1") " = 1"
                               : " AND " FOTA_SQL_ONLINE("?1") " = 0");
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

void fota_page_count(struct fota_page_sql *b, const struct fota_device_sel *sel,
                     const struct fota_store_search *sr, const struct fota_page_kind *k,
                     int64_t now)
{
    struct fota_page_sql *w = fota_xcalloc(1, sizeof *w);
    int joins = 0;

    /* The conditions first: they decide whether the count needs the joins. */
    fota_page_sql_init(w, b->pg, now);
    fota_page_where(w, sel, sr, k, &joins);
    fota_page_sql_init(b, b->pg, now);
    put(b, "SELECT COUNT(*) FROM devices d");
    if (joins)
        put(b, FOTA_SQL_ONLINE_JOINS);
    put(b, w->sql);
    memcpy(b->param, w->param, sizeof b->param);
    b->n = w->n;
    b->overflow |= w->overflow;
    free(w);
}

void fota_page_order(struct fota_page_sql *b, const struct fota_device_query *qy)
{
    const char *col = fota_store_sort_col(qy->sort);

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
