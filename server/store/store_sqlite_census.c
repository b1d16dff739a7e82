/* store_sqlite_census.c - the census queries behind GET /metrics and a
 * product's overview (store.h: device_census, product_census,
 * rollout_census): counts grouped in SQL, one statement each, prepared per
 * call (a scrape or an overview every few seconds at most). */
#include <stdlib.h>
#include <string.h>

#include "store_sqlite_int.h"

#define Q(s) fota_store_sqlite_cast(s)

static sqlite3_stmt *prepare(struct sql_store *q, const char *sql)
{
    return fota_store_sqlite_prepare(q, sql, -1, "census prepare");
}

static void read_census(sqlite3_stmt *st, void *row)
{
    struct fota_census_row *c = row;
    memset(c, 0, sizeof *c);
    c->product_id = sqlite3_column_int64(st, 0);
    fota_store_sqlite_col_text(st, 1, c->product, sizeof c->product);
    c->arduino = sqlite3_column_int(st, 2) != 0;
    fota_store_sqlite_col_text(st, 3, c->version, sizeof c->version);
    c->devices = sqlite3_column_int64(st, 4);
    c->online = sqlite3_column_int64(st, 5);
    fota_store_sqlite_col_text(st, 6, c->current, sizeof c->current);
    c->releases = sqlite3_column_int64(st, 7);
}

/* The census columns (read_census) of products p with their devices d per
 * version; online as every device list says it (FOTA_SQL_ONLINE, now is ?1).
 * A WHERE on p, then the grouping and order, follow. */
#define CENSUS_SELECT                                                                        \
    "SELECT p.id, p.name, ap.product_id IS NOT NULL, COALESCE(d.rom_version, ''),"           \
    " COUNT(d.id),"                                                                          \
    " COALESCE(SUM(CASE WHEN d.id IS NULL THEN 0 ELSE " FOTA_SQL_ONLINE("?1") " END), 0),"   \
    " COALESCE((SELECT r.version FROM roms r WHERE r.product_id = p.id"                      \
    "  AND r.is_current <> 0), ''),"                                                         \
    " (SELECT COUNT(*) FROM roms r WHERE r.product_id = p.id)"                               \
    " FROM products p"                                                                       \
    " LEFT JOIN arduino_products ap ON ap.product_id = p.id"                                 \
    " LEFT JOIN devices d ON d.product_id = p.id"                                            \
    " LEFT JOIN arduino_devices ad ON ad.device_id = d.id"

int fota_store_sqlite_device_census(struct fota_store *s, int64_t now,
                                    struct fota_census_row **out, size_t *n)
{
    struct sql_store *q = Q(s);

    fota_store_sqlite_lock(q);
    sqlite3_stmt *st = prepare(q, CENSUS_SELECT
                               " GROUP BY p.id, d.rom_version"
                               " ORDER BY p.id, COUNT(d.id) DESC, COALESCE(d.rom_version, '')");
    if (st)
        sqlite3_bind_int64(st, 1, now);
    int rc = fota_store_sqlite_collect(q, st, read_census, sizeof **out, (void **)out, n,
                                       "device_census");
    sqlite3_finalize(st);
    return fota_store_sqlite_unlock(q, rc);
}

int fota_store_sqlite_product_census(struct fota_store *s, int64_t product_id, int64_t now,
                                     struct fota_census_row **out, size_t *n)
{
    struct sql_store *q = Q(s);

    *out = NULL;
    *n = 0;
    fota_store_sqlite_lock(q);
    /* device_census for one product: an index on product_id finds its devices */
    sqlite3_stmt *st = prepare(q, CENSUS_SELECT
                               " WHERE p.id = ?2"
                               " GROUP BY p.id, d.rom_version"
                               " ORDER BY COUNT(d.id) DESC, COALESCE(d.rom_version, '')");
    if (st) {
        sqlite3_bind_int64(st, 1, now);
        sqlite3_bind_int64(st, 2, product_id);
    }
    int rc = fota_store_sqlite_collect(q, st, read_census, sizeof **out, (void **)out, n,
                                       "product_census");
    if (rc == 0 && *n == 0) {
        free(*out);
        *out = NULL;
        rc = FOTA_ENOENT;
    }
    sqlite3_finalize(st);
    return fota_store_sqlite_unlock(q, rc);
}

int fota_store_sqlite_rollout_census(struct fota_store *s, int64_t *counts, size_t ncounts)
{
    struct sql_store *q = Q(s);
    int rc;

    for (size_t i = 0; i < ncounts; i++)
        counts[i] = 0;
    fota_store_sqlite_lock(q);
    sqlite3_stmt *st = prepare(q, "SELECT state, COUNT(*) FROM rollouts GROUP BY state");
    if (!st) {
        rc = FOTA_EIO;
        goto out;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t state = sqlite3_column_int64(st, 0);
        if (state > 0 && (uint64_t)state < ncounts)
            counts[state] = sqlite3_column_int64(st, 1);
    }
    rc = rc == SQLITE_DONE ? 0 : fota_store_sqlite_err(q, rc, "rollout_census");
out:
    sqlite3_finalize(st);
    return fota_store_sqlite_unlock(q, rc);
}
