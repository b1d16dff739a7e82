/* store_sqlite_overview.c - a product's activity at a glance (store.h:
 * product_activity; its devices per version are product_census, in
 * store_sqlite_census.c): upgrade reports, finished downloads and bytes per
 * minute, counted in product_minutes by the writes that see them happen
 * (message_add, download_add) and summed per bucket on read, so an overview
 * costs at most a month of minute rows, whatever the size of the message
 * log. */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "store_sqlite_int.h"

#define Q(s)          fota_store_sqlite_cast(s)
#define STMT(id, sql) fota_store_sqlite_stmt(q, (id), (sql))

static void read_activity(sqlite3_stmt *st, void *row)
{
    struct fota_activity_row *a = row;
    a->t = sqlite3_column_int64(st, 0);
    a->upgraded = sqlite3_column_int64(st, 1);
    a->failed = sqlite3_column_int64(st, 2);
    a->downloads = sqlite3_column_int64(st, 3);
    a->bytes = sqlite3_column_int64(st, 4);
}

int fota_store_sqlite_product_activity(struct fota_store *s, int64_t product_id, int64_t since,
                                       int64_t until, int64_t step,
                                       struct fota_activity_row **out, size_t *n)
{
    struct sql_store *q = Q(s);
    sqlite3_stmt *st;

    *out = NULL;
    *n = 0;
    if (step < 60 || step > 86400 || step % 60 != 0 || since < 0 || until < since)
        return FOTA_EINVAL;
    fota_store_sqlite_lock(q);
    /* The primary key (product_id, minute) is the range. */
    st = STMT(SQ_MINUTE_SUM,
              "SELECT (minute * 60 / ?1) * ?1, SUM(upgraded), SUM(failed), SUM(downloads),"
              " SUM(bytes) FROM product_minutes"
              " WHERE product_id = ?2 AND minute >= ?3 AND minute < ?4"
              " GROUP BY 1 ORDER BY 1");
    if (st) {
        sqlite3_bind_int64(st, 1, step);
        sqlite3_bind_int64(st, 2, product_id);
        sqlite3_bind_int64(st, 3, since / step * step / 60);
        sqlite3_bind_int64(st, 4, (until + 59) / 60);
    }
    return fota_store_sqlite_unlock(q, fota_store_sqlite_collect(q, st, read_activity,
                                                                 sizeof **out, (void **)out, n,
                                                                 "product_activity"));
}

/* Once a minute, the minutes past FOTA_ACTIVITY_KEEP_S go (an index on
 * minute: the cost is the rows removed). */
static int prune(struct sql_store *q)
{
    int64_t now_min = fota_clock_wall_s() / 60;
    if (q->minutes_pruned == now_min)
        return 0;
    sqlite3_stmt *st = STMT(SQ_MINUTE_PRUNE, "DELETE FROM product_minutes WHERE minute < ?");
    if (st)
        sqlite3_bind_int64(st, 1, now_min - FOTA_ACTIVITY_KEEP_S / 60);
    int rc = fota_store_sqlite_exec(q, st, "activity prune", NULL);
    if (rc == 0)
        q->minutes_pruned = now_min;
    return rc;
}

int fota_store_sqlite_activity_reports(struct sql_store *q, int64_t product_id, int64_t when,
                                       int64_t upgraded, int64_t failed)
{
    /* INSERT ... ON CONFLICT DO UPDATE: the same in PostgreSQL */
    sqlite3_stmt *st = STMT(SQ_MINUTE_COUNT,
                            "INSERT INTO product_minutes (product_id, minute, upgraded, failed)"
                            " VALUES (?, ?, ?, ?) ON CONFLICT (product_id, minute) DO UPDATE SET"
                            " upgraded = product_minutes.upgraded + excluded.upgraded,"
                            " failed = product_minutes.failed + excluded.failed");
    if (st) {
        sqlite3_bind_int64(st, 1, product_id);
        sqlite3_bind_int64(st, 2, when / 60);
        sqlite3_bind_int64(st, 3, upgraded);
        sqlite3_bind_int64(st, 4, failed);
    }
    int rc = fota_store_sqlite_exec(q, st, "activity", NULL);
    return rc ? rc : prune(q);
}

int fota_store_sqlite_activity_download(struct sql_store *q, int64_t file_id, int64_t bytes,
                                        int64_t completed)
{
    /* The file's product through its release; no row for an unknown file.
     * The WHERE keeps SQLite from reading ON CONFLICT as a join's ON. */
    sqlite3_stmt *st = STMT(SQ_MINUTE_DOWNLOAD,
                            "INSERT INTO product_minutes (product_id, minute, downloads, bytes)"
                            " SELECT r.product_id, ?, ?, ? FROM rom_files f"
                            " JOIN roms r ON r.id = f.rom_id WHERE f.id = ?"
                            " ON CONFLICT (product_id, minute) DO UPDATE SET"
                            " downloads = product_minutes.downloads + excluded.downloads,"
                            " bytes = product_minutes.bytes + excluded.bytes");
    if (st) {
        sqlite3_bind_int64(st, 1, fota_clock_wall_s() / 60);
        sqlite3_bind_int64(st, 2, completed);
        sqlite3_bind_int64(st, 3, bytes);
        sqlite3_bind_int64(st, 4, file_id);
    }
    int rc = fota_store_sqlite_exec(q, st, "activity", NULL);
    return rc ? rc : prune(q);
}
