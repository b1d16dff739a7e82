/* store_pg_devpage.c - a fleet's devices selected, sorted and paged in the
 * PostgreSQL store (store.h device_page). The statement is put together
 * per call by store_devpage.c (fota_page_*, in PostgreSQL's SQL) from the
 * same fixed fragments as SQLite's, one per filter set, so that each shape
 * is planned on its own: a page is a range of the index of its order
 * (migration 8), walked from the cursor's position. Every value is a bound
 * parameter; no text of the caller becomes SQL. SQLite's LIKE ignores ASCII
 * case and PostgreSQL's does not: the search compares lower(column), which
 * with the columns' "C" collation folds ASCII only, as SQLite does, with a
 * pattern folded once (fota_store_page_search; ILIKE would fold the pattern
 * again for every row: twice the time). An op of several statements (the
 * product's kind, the tags' counts, the page, the total) reads one snapshot
 * (REPEATABLE READ, READ ONLY), as SQLite's lock gives. */
#include <stdlib.h>
#include <string.h>
#include "store_pg_int.h"
#include "xmalloc.h"

_Static_assert(FOTA_PAGE_PARAMS_MAX <= FOTA_PG_PARAMS_MAX, "a page's parameters fit pg_params");

/* The parameters of b in PostgreSQL's form. */
static void params_of(const struct fota_page_sql *b, struct pg_params *p)
{
    memset(p, 0, sizeof *p);
    for (int i = 0; i < b->n; i++) {
        if (b->param[i].text)
            fota_store_pg_param_text(p, b->param[i].text, b->param[i].cap);
        else
            fota_store_pg_param_int(p, b->param[i].num);
    }
}

/* Orders the selection's tags by how many devices carry each (one
 * statement: an index range count each), so a filter of several tags
 * starts from the rarest. */
static int tags_rarest_first(struct pg_conn *c, const struct fota_device_sel *sel,
                             struct fota_page_kind *k)
{
    int64_t count[FOTA_SELECT_MAX];
    struct pg_array_param tags;
    struct pg_params a = { 0 };
    PGresult *r;
    int rc = 0;

    k->ntags = sel->ntags;
    for (size_t i = 0; i < sel->ntags; i++) {
        k->tags[i] = sel->tags[i];
        count[i] = 0;
    }
    if (sel->ntags < 2)
        return 0;
    fota_store_pg_array_init(&tags, FOTA_PG_TEXT_ARRAY);
    for (size_t i = 0; i < sel->ntags; i++)
        fota_store_pg_array_text(&tags, sel->tags[i], strlen(sel->tags[i]) + 1);
    fota_store_pg_param_array(&a, &tags);
    r = fota_store_pg_run(c, -1,
                          "SELECT tag, COUNT(*) FROM device_tags WHERE tag = ANY($1) GROUP BY tag",
                          &a, "device_page", &rc);
    if (r) {
        for (int row = 0; row < PQntuples(r); row++)
            for (size_t i = 0; i < sel->ntags; i++)
                if (strcmp(PQgetvalue(r, row, 0), sel->tags[i]) == 0)
                    count[i] = fota_store_pg_col_int(r, row, 1);
        PQclear(r);
    }
    fota_store_pg_array_free(&tags);
    if (rc == 0)
        fota_store_tags_rarest_first(count, k->tags, k->ntags);
    return rc;
}

static void read_interval(const PGresult *r, int row, void *out)
{
    *(int64_t *)out = fota_store_pg_col_int(r, row, 0);
}

static int kind_of(struct pg_conn *c, int64_t product_id, struct fota_page_kind *k)
{
    struct pg_params a = { 0 };
    int rc;

    k->kind = FOTA_PAGE_ANY;
    k->interval = 0;
    if (!product_id)
        return 0;
    fota_store_pg_param_int(&a, product_id);
    rc = fota_store_pg_one(c, PQ_PAGE_KIND,
                           "SELECT checkin_interval FROM arduino_products WHERE product_id = $1",
                           &a, read_interval, &k->interval, "device_page");
    if (rc == 0)
        k->kind = FOTA_PAGE_ARDUINO;
    else if (rc == FOTA_ENOENT)
        k->kind = FOTA_PAGE_NONOS;
    return rc == FOTA_ENOENT ? 0 : rc;
}

/* Runs b (built per call: not prepared); NULL with *rc on failure. */
static PGresult *run(struct pg_conn *c, const struct fota_page_sql *b, const char *what, int *rc)
{
    struct pg_params p;

    if (b->overflow) {
        fota_store_logf(&c->q->base, FOTA_LOG_ERROR, "%s: statement too long", what);
        *rc = FOTA_EIO;
        return NULL;
    }
    params_of(b, &p);
    return fota_store_pg_run(c, -1, b->sql, &p, what, rc);
}

static int count_rows(struct pg_conn *c, const struct fota_device_sel *sel,
                      const struct fota_store_search *sr, const struct fota_page_kind *k,
                      int64_t now, int64_t *total)
{
    struct fota_page_sql *b = fota_xcalloc(1, sizeof *b);
    int rc;
    PGresult *r;

    b->pg = 1;
    fota_page_count(b, sel, sr, k, now);
    *total = 0;
    r = run(c, b, "device_page count", &rc);
    if (r) {
        *total = fota_store_pg_col_int(r, 0, 0);
        PQclear(r);
    }
    free(b);
    return rc;
}

/* The page of qy into *out, *n (and *total when non-NULL). */
static int page(struct pg_conn *c, const struct fota_device_query *qy, int64_t now,
                const struct fota_store_search *sr, struct fota_page_sql *b,
                struct fota_device **out, size_t *n, int64_t *total)
{
    const struct fota_device_sel *sel = &qy->sel;
    struct fota_page_kind k;
    int joins = 0, rc;
    PGresult *r;

    rc = kind_of(c, sel->product_id, &k);
    if (rc == 0)
        rc = tags_rarest_first(c, sel, &k);
    if (rc != 0)
        return rc;
    fota_page_sql_init(b, 1, now);
    fota_page_sql_put(b, "SELECT d.id, d.product_id, d.name, d.bssid, d.activated,"
                         " d.activated_at, d.rom_version, d.running_slot, d.last_active, "
                         FOTA_SQL_ONLINE("$1") ", d.created, d.key_generation FROM devices d"
                         FOTA_SQL_ONLINE_JOINS);
    fota_page_where(b, sel, sr, &k, &joins);
    fota_page_order(b, qy);
    if (!(r = run(c, b, "device_page", &rc)))
        return rc;
    *n = (size_t)PQntuples(r);
    *out = fota_xcalloc(*n ? *n : 1, sizeof **out);
    for (size_t i = 0; i < *n; i++)
        fota_store_pg_read_device(r, (int)i, &(*out)[i]);
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
    struct fota_page_sql *b;
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
