/* store_pg_census.c - the census queries behind GET /metrics and a
 * product's overview in the PostgreSQL store (store.h: device_census,
 * product_census, rollout_census; store_sqlite_census.c's statements in
 * PostgreSQL's form): counts grouped in SQL, one statement each. */
#include <stdlib.h>
#include <string.h>
#include "store_pg_int.h"

static void read_census(const PGresult *r, int row, void *out)
{
    struct fota_census_row *c = out;

    memset(c, 0, sizeof *c);
    c->product_id = fota_store_pg_col_int(r, row, 0);
    fota_store_pg_col_text(r, row, 1, c->product, sizeof c->product);
    c->arduino = fota_store_pg_col_int(r, row, 2) != 0;
    fota_store_pg_col_text(r, row, 3, c->version, sizeof c->version);
    c->devices = fota_store_pg_col_int(r, row, 4);
    c->online = fota_store_pg_col_int(r, row, 5);
    fota_store_pg_col_text(r, row, 6, c->current, sizeof c->current);
    c->releases = fota_store_pg_col_int(r, row, 7);
}

/* The census columns (read_census) of products p with their devices d per
 * version; online as every device list says it (FOTA_SQL_ONLINE, now is
 * $1). ap.product_id is grouped too: PostgreSQL sees only p's key as
 * deciding p's columns, and ap's row is p's. A WHERE on p, then the
 * grouping and order, follow. */
#define CENSUS_SELECT                                                                        \
    "SELECT p.id, p.name, (ap.product_id IS NOT NULL)::int, COALESCE(d.rom_version, ''),"    \
    " COUNT(d.id),"                                                                          \
    " COALESCE(SUM(CASE WHEN d.id IS NULL THEN 0 ELSE " FOTA_SQL_ONLINE("$1") " END), 0),"   \
    " COALESCE((SELECT r.version FROM roms r WHERE r.product_id = p.id"                      \
    "  AND r.is_current <> 0), ''),"                                                         \
    " (SELECT COUNT(*) FROM roms r WHERE r.product_id = p.id)"                               \
    " FROM products p"                                                                       \
    " LEFT JOIN arduino_products ap ON ap.product_id = p.id"                                 \
    " LEFT JOIN devices d ON d.product_id = p.id"                                            \
    " LEFT JOIN arduino_devices ad ON ad.device_id = d.id"

int fota_store_pg_device_census(struct fota_store *s, int64_t now, struct fota_census_row **out,
                                size_t *n)
{
    struct pg_params a = { 0 };
    struct pg_conn *c;
    int rc;

    *out = NULL;
    *n = 0;
    if ((rc = fota_store_pg_enter(s, "device_census", &c)) != 0)
        return rc;
    fota_store_pg_param_int(&a, now);
    rc = fota_store_pg_collect(c, PQ_CENSUS_ALL,
                               CENSUS_SELECT " GROUP BY p.id, ap.product_id, d.rom_version"
                                             " ORDER BY p.id, COUNT(d.id) DESC,"
                                             " COALESCE(d.rom_version, '')",
                               &a, read_census, sizeof **out, (void **)out, n, "device_census");
    return fota_store_pg_leave(c, rc);
}

int fota_store_pg_product_census(struct fota_store *s, int64_t product_id, int64_t now,
                                 struct fota_census_row **out, size_t *n)
{
    struct pg_params a = { 0 };
    struct pg_conn *c;
    int rc;

    *out = NULL;
    *n = 0;
    if ((rc = fota_store_pg_enter(s, "product_census", &c)) != 0)
        return rc;
    fota_store_pg_param_int(&a, now);
    fota_store_pg_param_int(&a, product_id);
    /* device_census for one product: an index on product_id finds its devices */
    rc = fota_store_pg_collect(c, PQ_CENSUS_PRODUCT,
                               CENSUS_SELECT " WHERE p.id = $2"
                                             " GROUP BY p.id, ap.product_id, d.rom_version"
                                             " ORDER BY COUNT(d.id) DESC,"
                                             " COALESCE(d.rom_version, '')",
                               &a, read_census, sizeof **out, (void **)out, n, "product_census");
    if (rc == 0 && *n == 0) {
        free(*out);
        *out = NULL;
        rc = FOTA_ENOENT;
    }
    return fota_store_pg_leave(c, rc);
}

int fota_store_pg_rollout_census(struct fota_store *s, int64_t *counts, size_t ncounts)
{
    struct pg_conn *c;
    PGresult *r;
    int rc;

    for (size_t i = 0; i < ncounts; i++)
        counts[i] = 0;
    if ((rc = fota_store_pg_enter(s, "rollout_census", &c)) != 0)
        return rc;
    r = fota_store_pg_run(c, PQ_CENSUS_ROLLOUTS,
                          "SELECT state, COUNT(*) FROM rollouts GROUP BY state", NULL,
                          "rollout_census", &rc);
    for (int i = 0; r && i < PQntuples(r); i++) {
        int64_t state = fota_store_pg_col_int(r, i, 0);
        if (state > 0 && (uint64_t)state < ncounts)
            counts[state] = fota_store_pg_col_int(r, i, 1);
    }
    PQclear(r);
    return fota_store_pg_leave(c, rc);
}
