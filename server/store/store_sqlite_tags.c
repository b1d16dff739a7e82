/* store_sqlite_tags.c - devices' tags in the SQLite store (store.h:
 * device_tags_edit, device_tags, tag_list): one row per device and tag,
 * indexed both ways (a device's tags; a tag's devices, which device_page's
 * tag filter reads). An edit of many devices is one durable transaction;
 * tags are not cached, so no edit moves the generation. */
#include <stdlib.h>
#include <string.h>

#include "store_sqlite_int.h"

#define Q(s) fota_store_sqlite_cast(s)
#define STMT(id, sql) fota_store_sqlite_stmt(q, (id), (sql))

/* One device's part of an edit, inside the caller's transaction. */
static int edit_one(struct sql_store *q, int64_t dev, int mode, const char *const *tags,
                    size_t nt)
{
    sqlite3_stmt *st;
    int64_t have = 0;
    int rc;

    st = STMT(SQ_TAG_DEVICE, "SELECT COUNT(*) FROM devices WHERE id = ?");
    if (st)
        sqlite3_bind_int64(st, 1, dev);
    rc = fota_store_sqlite_exec(q, st, "device_tags_edit", &have);
    if (rc == 0 && have == 0)
        rc = FOTA_ENOENT;
    if (rc == 0 && mode == FOTA_TAGS_SET) {
        st = STMT(SQ_TAG_CLEAR, "DELETE FROM device_tags WHERE device_id = ?");
        if (st)
            sqlite3_bind_int64(st, 1, dev);
        rc = fota_store_sqlite_exec(q, st, "device_tags_edit", NULL);
    }
    for (size_t i = 0; rc == 0 && i < nt; i++) {
        if (mode == FOTA_TAGS_REMOVE)
            st = STMT(SQ_TAG_DEL, "DELETE FROM device_tags WHERE device_id = ? AND tag = ?");
        else
            st = STMT(SQ_TAG_ADD, "INSERT INTO device_tags (device_id, tag) VALUES (?, ?)"
                                  " ON CONFLICT DO NOTHING");
        if (st) {
            sqlite3_bind_int64(st, 1, dev);
            sqlite3_bind_text(st, 2, tags[i], -1, SQLITE_STATIC);
        }
        rc = fota_store_sqlite_exec(q, st, "device_tags_edit", NULL);
    }
    if (rc == 0 && mode != FOTA_TAGS_REMOVE) {
        st = STMT(SQ_TAG_COUNT, "SELECT COUNT(*) FROM device_tags WHERE device_id = ?");
        if (st)
            sqlite3_bind_int64(st, 1, dev);
        rc = fota_store_sqlite_exec(q, st, "device_tags_edit", &have);
        if (rc == 0 && have > FOTA_TAGS_PER_DEVICE)
            rc = FOTA_ERANGE;
    }
    return rc;
}

int fota_store_sqlite_device_tags_edit(struct fota_store *s, const int64_t *device_ids, size_t nd,
                                       int mode, const char *const *tags, size_t nt)
{
    struct sql_store *q = Q(s);
    int rc;

    if ((rc = fota_store_tags_edit_check(mode, tags, nt)) != 0)
        return rc;
    if (nd == 0)
        return 0;
    fota_store_sqlite_lock(q);
    q->hot = 1;                        /* not cached: no new generation */
    rc = fota_store_sqlite_begin(q, 1);
    for (size_t i = 0; rc == 0 && i < nd; i++)
        rc = edit_one(q, device_ids[i], mode, tags, nt);
    rc = fota_store_sqlite_finish(q, rc);
    return fota_store_sqlite_unlock(q, rc);
}

static void read_tag(sqlite3_stmt *st, void *row)
{
    fota_store_sqlite_col_text(st, 0, row, FOTA_TAG_MAX);
}

int fota_store_sqlite_device_tags(struct fota_store *s, int64_t device_id,
                                  char (**out)[FOTA_TAG_MAX], size_t *n)
{
    struct sql_store *q = Q(s);
    sqlite3_stmt *st;
    int64_t have = 0;
    int rc;

    *out = NULL;
    *n = 0;
    fota_store_sqlite_lock(q);
    st = STMT(SQ_TAG_DEVICE, "SELECT COUNT(*) FROM devices WHERE id = ?");
    if (st)
        sqlite3_bind_int64(st, 1, device_id);
    rc = fota_store_sqlite_exec(q, st, "device_tags", &have);
    if (rc == 0 && have == 0)
        rc = FOTA_ENOENT;
    if (rc == 0) {
        st = STMT(SQ_TAG_GET, "SELECT tag FROM device_tags WHERE device_id = ? ORDER BY tag");
        if (st)
            sqlite3_bind_int64(st, 1, device_id);
        rc = fota_store_sqlite_collect(q, st, read_tag, FOTA_TAG_MAX, (void **)out, n,
                                       "device_tags");
    }
    return fota_store_sqlite_unlock(q, rc);
}

static void read_tag_count(sqlite3_stmt *st, void *row)
{
    struct fota_tag_count *t = row;

    memset(t, 0, sizeof *t);
    fota_store_sqlite_col_text(st, 0, t->tag, sizeof t->tag);
    t->devices = sqlite3_column_int64(st, 1);
}

int fota_store_sqlite_tag_list(struct fota_store *s, int64_t product_id,
                               struct fota_tag_count **out, size_t *n)
{
    struct sql_store *q = Q(s);
    sqlite3_stmt *st;

    fota_store_sqlite_lock(q);
    if (product_id) {
        st = STMT(SQ_TAG_LIST, "SELECT t.tag, COUNT(*) FROM device_tags t"
                               " JOIN devices d ON d.id = t.device_id WHERE d.product_id = ?"
                               " GROUP BY t.tag ORDER BY t.tag");
        if (st)
            sqlite3_bind_int64(st, 1, product_id);
    } else {
        st = STMT(SQ_TAG_LIST_ALL, "SELECT tag, COUNT(*) FROM device_tags GROUP BY tag"
                                   " ORDER BY tag");
    }
    return fota_store_sqlite_unlock(q, fota_store_sqlite_collect(q, st, read_tag_count,
                                                                 sizeof **out, (void **)out, n,
                                                                 "tag_list"));
}
