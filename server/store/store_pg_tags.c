/* store_pg_tags.c - devices' tags in the PostgreSQL store (store.h:
 * device_tags_edit, device_tags, tag_list; store_sqlite_tags.c in
 * PostgreSQL's form). An edit of many devices is one durable transaction
 * of four statements whatever the number of devices and tags (arrays
 * unnested): it first locks the devices' rows in id order, so two edits of
 * one device take turns (the limit of FOTA_TAGS_PER_DEVICE is counted
 * after the writes, as SQLite's one writer allows) and two edits of many
 * devices cannot deadlock; a device deleted meanwhile is not found. Tags
 * are not cached, so no edit moves the generation. */
#include <stdlib.h>
#include <string.h>
#include "store_pg_int.h"
#include "xmalloc.h"

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The int8[] of ids[0..n) into *out, sorted and without repeats;
 * *distinct gets their number. The caller frees it. */
static void id_array(struct pg_array_param *out, const int64_t *ids, size_t n, size_t *distinct)
{
    int64_t *v = fota_xmemdup(ids, n * sizeof *ids);
    size_t k = 0;

    qsort(v, n, sizeof *v, cmp_id);
    fota_store_pg_array_init(out, FOTA_PG_INT8_ARRAY);
    for (size_t i = 0; i < n; i++) {
        if (i && v[i] == v[i - 1])
            continue;
        fota_store_pg_array_int(out, v[i]);
        k++;
    }
    free(v);
    *distinct = k;
}

/* The text[] of tags[0..n) into *out. The caller frees it. */
static void tag_array(struct pg_array_param *out, const char *const *tags, size_t n)
{
    fota_store_pg_array_init(out, FOTA_PG_TEXT_ARRAY);
    for (size_t i = 0; i < n; i++)
        fota_store_pg_array_text(out, tags[i], FOTA_TAG_MAX);
}

/* One statement of the edit with the ids ($1) and, when tags is non-NULL,
 * the tags ($2) or, when limit is non-zero, the limit ($2); first as for
 * fota_store_pg_exec. */
static int edit_stmt(struct pg_conn *c, int id, const char *sql, struct pg_array_param *ids,
                     struct pg_array_param *tags, int64_t limit, int64_t *first)
{
    struct pg_params a = { 0 };

    fota_store_pg_param_array(&a, ids);
    if (tags)
        fota_store_pg_param_array(&a, tags);
    else if (limit)
        fota_store_pg_param_int(&a, limit);
    return fota_store_pg_exec(c, id, sql, &a, "device_tags_edit", first);
}

static int edit_tx(struct pg_conn *c, struct pg_array_param *ids, size_t nd, int mode,
                   struct pg_array_param *tags, size_t nt)
{
    int64_t found = 0, over = 0;
    int rc;

    if ((rc = fota_store_pg_begin(c, 1)) != 0)
        return rc;
    rc = edit_stmt(c, PQ_TAG_LOCK,
                   "SELECT COUNT(*) FROM (SELECT id FROM devices WHERE id = ANY($1::int8[])"
                   " ORDER BY id FOR UPDATE) AS l",
                   ids, NULL, 0, &found);
    if (rc == 0 && (size_t)found != nd)
        rc = FOTA_ENOENT;
    if (rc == 0 && mode == FOTA_TAGS_SET)
        rc = edit_stmt(c, PQ_TAG_CLEAR,
                       "DELETE FROM device_tags WHERE device_id = ANY($1::int8[])", ids,
                       NULL, 0, NULL);
    if (rc == 0 && nt && mode == FOTA_TAGS_REMOVE)
        rc = edit_stmt(c, PQ_TAG_DEL,
                       "DELETE FROM device_tags WHERE device_id = ANY($1::int8[])"
                       " AND tag = ANY($2::text[])",
                       ids, tags, 0, NULL);
    else if (rc == 0 && nt)
        rc = edit_stmt(c, PQ_TAG_ADD,
                       "INSERT INTO device_tags (device_id, tag)"
                       " SELECT DISTINCT i.id, g.tag FROM unnest($1::int8[]) AS i(id),"
                       " unnest($2::text[]) AS g(tag) ON CONFLICT DO NOTHING",
                       ids, tags, 0, NULL);
    if (rc == 0 && mode != FOTA_TAGS_REMOVE) {
        rc = edit_stmt(c, PQ_TAG_OVER,
                       "SELECT COUNT(*) FROM (SELECT device_id FROM device_tags"
                       " WHERE device_id = ANY($1::int8[]) GROUP BY device_id"
                       " HAVING COUNT(*) > $2) AS o",
                       ids, NULL, FOTA_TAGS_PER_DEVICE, &over);
        if (rc == 0 && over > 0)
            rc = FOTA_ERANGE;
    }
    return fota_store_pg_finish(c, rc);
}

int fota_store_pg_device_tags_edit(struct fota_store *s, const int64_t *device_ids, size_t nd,
                                   int mode, const char *const *tags, size_t nt)
{
    struct pg_conn *c;
    struct pg_array_param ids, arr;
    size_t distinct = 0;
    int rc;

    if ((rc = fota_store_tags_edit_check(mode, tags, nt)) != 0)
        return rc;
    if (nd == 0)
        return 0;
    if ((rc = fota_store_pg_enter(s, "device_tags_edit", &c)) != 0)
        return rc;
    c->hot = 1;                        /* not cached: no new generation */
    id_array(&ids, device_ids, nd, &distinct);
    tag_array(&arr, tags, nt);
    rc = FOTA_EAGAIN;
    for (int i = 0; i < FOTA_PG_TRIES && rc == FOTA_EAGAIN; i++)
        rc = edit_tx(c, &ids, distinct, mode, &arr, nt);
    fota_store_pg_array_free(&ids);
    fota_store_pg_array_free(&arr);
    return fota_store_pg_leave(c, rc);
}

int fota_store_pg_device_tags(struct fota_store *s, int64_t device_id,
                              char (**out)[FOTA_TAG_MAX], size_t *n)
{
    struct pg_params a = { 0 };
    struct pg_conn *c;
    PGresult *r;
    int rc, rows;

    *out = NULL;
    *n = 0;
    if ((rc = fota_store_pg_enter(s, "device_tags", &c)) != 0)
        return rc;
    fota_store_pg_param_int(&a, device_id);
    /* No row: no such device; one row whose tag is NULL: no tags. */
    r = fota_store_pg_run(c, PQ_TAG_GET,
                          "SELECT t.tag FROM devices d LEFT JOIN device_tags t"
                          " ON t.device_id = d.id WHERE d.id = $1 ORDER BY t.tag",
                          &a, "device_tags", &rc);
    if (r) {
        rows = PQntuples(r);
        if (rows == 0) {
            rc = FOTA_ENOENT;
        } else {
            *out = fota_xcalloc((size_t)rows, FOTA_TAG_MAX);
            for (int i = 0; i < rows; i++)
                if (!PQgetisnull(r, i, 0))
                    fota_store_pg_col_text(r, i, 0, (*out)[(*n)++], FOTA_TAG_MAX);
        }
        PQclear(r);
    }
    return fota_store_pg_leave(c, rc);
}

static void read_tag_count(const PGresult *r, int row, void *out)
{
    struct fota_tag_count *t = out;

    memset(t, 0, sizeof *t);
    fota_store_pg_col_text(r, row, 0, t->tag, sizeof t->tag);
    t->devices = fota_store_pg_col_int(r, row, 1);
}

int fota_store_pg_tag_list(struct fota_store *s, int64_t product_id, struct fota_tag_count **out,
                           size_t *n)
{
    struct pg_params a = { 0 };
    struct pg_conn *c;
    int rc;

    *out = NULL;
    *n = 0;
    if ((rc = fota_store_pg_enter(s, "tag_list", &c)) != 0)
        return rc;
    /* tag is COLLATE "C": strcmp order */
    if (product_id) {
        fota_store_pg_param_int(&a, product_id);
        rc = fota_store_pg_collect(c, PQ_TAG_LIST,
                                   "SELECT t.tag, COUNT(*) FROM device_tags t"
                                   " JOIN devices d ON d.id = t.device_id WHERE d.product_id = $1"
                                   " GROUP BY t.tag ORDER BY t.tag",
                                   &a, read_tag_count, sizeof **out, (void **)out, n, "tag_list");
    } else {
        rc = fota_store_pg_collect(c, PQ_TAG_LIST_ALL,
                                   "SELECT tag, COUNT(*) FROM device_tags GROUP BY tag"
                                   " ORDER BY tag",
                                   NULL, read_tag_count, sizeof **out, (void **)out, n,
                                   "tag_list");
    }
    return fota_store_pg_leave(c, rc);
}
