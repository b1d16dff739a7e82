/* store_sqlite_devpage.c - a fleet's devices selected, sorted and paged
 * (store.h device_page). The statement is put together per call by
 * store_devpage.c (fota_page_*, in SQLite's SQL) from fixed fragments, one
 * per filter set, so that SQLite plans each shape on its own: a page is
 * then a range of the index of its order (migration 8), walked from the
 * cursor's position, and filters that no index serves cost only the rows
 * the walk passes. Every value is a bound parameter; no text of the caller
 * becomes SQL. */
#include <stdlib.h>
#include <string.h>

#include "store_sqlite_int.h"
#include "xmalloc.h"

#define Q(s) fota_store_sqlite_cast(s)

/* Orders the selection's tags by how many devices carry each (an index
 * range count each), so a filter of several tags starts from the rarest. */
static int tags_rarest_first(struct sql_store *q, const struct fota_device_sel *sel,
                             struct fota_page_kind *k)
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

static int kind_of(struct sql_store *q, int64_t product_id, struct fota_page_kind *k)
{
    sqlite3_stmt *st = NULL;
    int rc;

    k->kind = FOTA_PAGE_ANY;
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
        k->kind = FOTA_PAGE_ARDUINO;
        k->interval = sqlite3_column_int64(st, 0);
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        k->kind = FOTA_PAGE_NONOS;
        rc = 0;
    } else {
        rc = fota_store_sqlite_err(q, rc, "device_page");
    }
    sqlite3_finalize(st);
    return rc;
}

/* Prepares b and binds its parameters; NULL (logged) on failure. */
static sqlite3_stmt *prepare(struct sql_store *q, const struct fota_page_sql *b)
{
    sqlite3_stmt *st = NULL;
    if (b->overflow) {
        fota_store_logf(&q->base, FOTA_LOG_ERROR, "device_page: statement too long");
        return NULL;
    }
    st = fota_store_sqlite_prepare(q, b->sql, (int)b->len + 1, "device_page prepare");
    if (!st)
        return NULL;
    for (int i = 0; i < b->n && i < sqlite3_bind_parameter_count(st); i++) {
        if (b->param[i].text)
            sqlite3_bind_text(st, i + 1, b->param[i].text, -1, SQLITE_STATIC);
        else
            sqlite3_bind_int64(st, i + 1, b->param[i].num);
    }
    return st;
}

static int count_rows(struct sql_store *q, const struct fota_device_sel *sel,
                      const struct fota_store_search *sr, const struct fota_page_kind *k,
                      int64_t now, int64_t *total)
{
    struct fota_page_sql *b = fota_xcalloc(1, sizeof *b);
    sqlite3_stmt *st;
    int rc;

    fota_page_count(b, sel, sr, k, now);
    st = prepare(q, b);
    *total = 0;
    rc = st ? fota_store_sqlite_exec(q, st, "device_page count", total) : FOTA_EIO;
    sqlite3_finalize(st);
    free(b);
    return rc;
}

int fota_store_sqlite_device_page(struct fota_store *s, const struct fota_device_query *qy,
                                  int64_t now, struct fota_device **out, size_t *n,
                                  int64_t *total)
{
    struct sql_store *q = Q(s);
    const struct fota_device_sel *sel = &qy->sel;
    struct fota_store_search sr;
    struct fota_page_kind k;
    int joins = 0, rc;

    *out = NULL;
    *n = 0;
    if ((rc = fota_store_page_search(qy, 0, &sr)) != 0)
        return rc;
    struct fota_page_sql *b = fota_xcalloc(1, sizeof *b);
    fota_page_sql_init(b, 0, now);
    fota_page_sql_put(b, "SELECT d.id, d.product_id, d.name, d.bssid, d.activated,"
                         " d.activated_at, d.rom_version, d.running_slot, d.last_active, "
                         FOTA_SQL_ONLINE("?1") ", d.created, d.key_generation FROM devices d"
                         FOTA_SQL_ONLINE_JOINS);
    sqlite3_stmt *st = NULL;
    fota_store_sqlite_lock(q);
    rc = kind_of(q, sel->product_id, &k);
    if (rc == 0)
        rc = tags_rarest_first(q, sel, &k);
    if (rc == 0) {
        fota_page_where(b, sel, &sr, &k, &joins);
        fota_page_order(b, qy);
        st = prepare(q, b);
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
