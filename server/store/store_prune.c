/* store_prune.c - retention of the two log tables (store.h message_prune,
 * transfer_prune) as every SQL store walks it (store_int.h), over the
 * statements each store runs (struct fota_prune_ops): a round of bounded
 * calls, each one transaction that deletes at most max_batch rows.
 *
 * The oldest rows are the lowest ids (ids follow arrival). Age and the
 * total count both cut a prefix of the table in id order; the count is
 * taken once a round. The per-device cap reads the (device_id, id) index
 * in slices of FOTA_PRUNE_SCAN entries from where the previous call stopped
 * (struct fota_prune_pos), counting each device's rows. */
#include <stdint.h>
#include <stdlib.h>
#include "store_int.h"

int fota_store_prune_budget(const struct fota_retention *r, int64_t *budget)
{
    *budget = (int64_t)(r->max_batch ? r->max_batch : FOTA_PRUNE_BATCH);
    if (r->older_than < 0 || r->keep_rows < 0 || r->keep_per_device < 0 || *budget < 0)
        return FOTA_EINVAL;
    return 0;
}

/* A round's first call: the count over keep_rows, and where the per-device
 * pass starts. */
static int round_start(const struct fota_prune_ops *ops, void *ctx, struct fota_retention *r)
{
    int64_t total = 0;
    int rc = 0;

    r->pos = (struct fota_prune_pos){ .phase = FOTA_PRUNE_PREFIX, .id = INT64_MAX };
    if (r->keep_rows > 0) {
        rc = ops->count(ctx, &total);
        if (total > r->keep_rows)
            r->pos.excess = total - r->keep_rows;
    }
    return rc;
}

/* Age and total count: the oldest rows outside either, at most budget.
 * The prefix is done when fewer than budget had to go. */
static int prune_prefix(const struct fota_prune_ops *ops, void *ctx, struct fota_retention *r,
                        int64_t budget, int64_t *deleted, int64_t *last)
{
    struct fota_prune_pos *pos = &r->pos;
    int64_t m = 0;
    int rc = 0;

    if (r->older_than > 0)
        rc = ops->age_walk(ctx, r->older_than, budget, &m);
    if (rc == 0 && pos->excess > m)
        m = pos->excess < budget ? pos->excess : budget;
    if (rc == 0 && m > 0)
        rc = ops->cut_oldest(ctx, m, last);
    if (rc)
        return rc;
    *deleted += m;
    pos->excess = pos->excess > m ? pos->excess - m : 0;
    if (m < budget)
        pos->phase = FOTA_PRUNE_DEVICES;
    return 0;
}

/* The per-device cap of messages, one slice of the index: every device
 * counted whole in it that is over keep loses its oldest rows, within the
 * budget. A device cut short by the budget keeps the rows it still has to
 * lose in pos->excess, and the next call starts with them. */
static int prune_devices(const struct fota_prune_ops *ops, void *ctx, struct fota_retention *r,
                         int64_t budget, int64_t *deleted, int64_t *last)
{
    struct fota_prune_pos *pos = &r->pos;
    struct fota_prune_run *runs = NULL;
    int64_t keep = r->keep_per_device, n, cut = 0;
    size_t nruns = 0;
    int end = 0, rc;

    if (pos->excess > 0) {   /* the rest of a device cut short */
        n = pos->excess < budget - *deleted ? pos->excess : budget - *deleted;
        rc = ops->cut_device(ctx, pos->device_id, n, &cut);
        if (rc)
            return rc;
        *deleted += n;
        if (cut > *last)
            *last = cut;
        pos->excess -= n;
        if (pos->excess > 0 || *deleted == budget)
            return 0;
    }
    rc = ops->scan_slice(ctx, pos, &runs, &nruns, &end);
    for (size_t i = 0; rc == 0 && i < nruns; i++) {
        int cut_short;

        if (runs[i].count <= keep)
            continue;
        n = runs[i].count - keep;
        cut_short = n > budget - *deleted;
        if (cut_short) {   /* the rest of this device at the next call, then the scan after it */
            *pos = (struct fota_prune_pos){ .phase = FOTA_PRUNE_DEVICES,
                                            .excess = n - (budget - *deleted),
                                            .device_id = runs[i].device_id, .id = INT64_MAX };
            n = budget - *deleted;
            end = 0;
        }
        if (n > 0)
            rc = ops->cut_device(ctx, runs[i].device_id, n, &cut);
        if (rc)
            break;
        *deleted += n;
        if (cut > *last)
            *last = cut;
        if (cut_short)
            break;
    }
    free(runs);
    if (rc == 0 && end)
        pos->phase = FOTA_PRUNE_DONE;
    return rc;
}

int fota_store_prune_call(const struct fota_prune_ops *ops, void *ctx, struct fota_retention *r,
                          int per_device, int64_t budget, int64_t *deleted, int64_t *last)
{
    int rc = 0;

    if (r->pos.phase == FOTA_PRUNE_START)
        rc = round_start(ops, ctx, r);
    if (rc == 0 && r->pos.phase == FOTA_PRUNE_PREFIX)
        rc = prune_prefix(ops, ctx, r, budget, deleted, last);
    if (rc == 0 && r->pos.phase == FOTA_PRUNE_DEVICES && !(per_device && r->keep_per_device > 0))
        r->pos.phase = FOTA_PRUNE_DONE;
    if (rc == 0 && r->pos.phase == FOTA_PRUNE_DEVICES && *deleted < budget)
        rc = prune_devices(ops, ctx, r, budget, deleted, last);
    return rc;
}
