/* store_pg_overview.c - a product's activity at a glance in the PostgreSQL
 * store (store.h: product_activity; store_sqlite_overview.c's read in
 * PostgreSQL's form): the per-minute counts of product_minutes summed per
 * bucket, a range of its primary key (product_id, minute). */
#include <string.h>
#include "store_pg_int.h"

static void read_activity(const PGresult *r, int row, void *out)
{
    struct fota_activity_row *a = out;

    /* SUM(bigint) is numeric: its text is an integer all the same */
    a->t = fota_store_pg_col_int(r, row, 0);
    a->upgraded = fota_store_pg_col_int(r, row, 1);
    a->failed = fota_store_pg_col_int(r, row, 2);
    a->downloads = fota_store_pg_col_int(r, row, 3);
    a->bytes = fota_store_pg_col_int(r, row, 4);
}

int fota_store_pg_product_activity(struct fota_store *s, int64_t product_id, int64_t since,
                                   int64_t until, int64_t step, struct fota_activity_row **out,
                                   size_t *n)
{
    struct pg_params a = { 0 };
    struct pg_conn *c;
    int rc;

    *out = NULL;
    *n = 0;
    if (step < 60 || step > 86400 || step % 60 != 0 || since < 0 || until < since)
        return FOTA_EINVAL;
    if ((rc = fota_store_pg_enter(s, "product_activity", &c)) != 0)
        return rc;
    fota_store_pg_param_int(&a, step);
    fota_store_pg_param_int(&a, product_id);
    fota_store_pg_param_int(&a, since / step * step / 60);
    fota_store_pg_param_int(&a, (until + 59) / 60);
    rc = fota_store_pg_collect(c, PQ_CENSUS_ACTIVITY,
                               "SELECT (minute * 60 / $1) * $1, SUM(upgraded), SUM(failed),"
                               " SUM(downloads), SUM(bytes) FROM product_minutes"
                               " WHERE product_id = $2 AND minute >= $3 AND minute < $4"
                               " GROUP BY 1 ORDER BY 1",
                               &a, read_activity, sizeof **out, (void **)out, n,
                               "product_activity");
    return fota_store_pg_leave(c, rc);
}
