/* store_pg_todo.c - the operations of the PostgreSQL store not written yet:
 * each answers FOTA_ENOTSUP (HTTP 501) until its group is translated from
 * the SQLite store (docs/design/postgresql.md, section 6, lists the groups),
 * which then removes its lines here and names its own functions in
 * store_pg.c's table. */
#include "store_pg_int.h"

int fota_store_pg_rollout_create(struct fota_store *s, struct fota_rollout_row *r)
{
    return FOTA_ENOTSUP;
}

int fota_store_pg_rollout_save(struct fota_store *s, const struct fota_rollout_row *rs, size_t nr,
                               const struct fota_rollout_member_row *ms, size_t nm)
{
    return FOTA_ENOTSUP;
}

int fota_store_pg_rollout_get(struct fota_store *s, int64_t id, struct fota_rollout_row *out)
{
    return FOTA_ENOTSUP;
}

int fota_store_pg_rollout_list(struct fota_store *s, int64_t product_id, int state,
                               struct fota_rollout_row **out, size_t *n)
{
    return FOTA_ENOTSUP;
}

int fota_store_pg_rollout_members(struct fota_store *s, int64_t rollout_id, int64_t after_device,
                                  int state, size_t limit, struct fota_rollout_member_row **out,
                                  size_t *n)
{
    return FOTA_ENOTSUP;
}

int fota_store_pg_rollout_sample_add(struct fota_store *s, const struct fota_rollout_sample *rows,
                                     size_t n)
{
    return FOTA_ENOTSUP;
}

int fota_store_pg_rollout_samples(struct fota_store *s, int64_t rollout_id,
                                  struct fota_rollout_sample **out, size_t *n)
{
    return FOTA_ENOTSUP;
}
