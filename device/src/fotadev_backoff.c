/* fotadev_backoff.c - reconnect delay: exponential with a cap and jitter.
 * Pure (the random draw is an argument) so it is unit-tested exactly. */
#include "fotadev.h"

uint32_t fotadev_backoff_delay(const struct fotadev_backoff_cfg *cfg, unsigned attempt, uint32_t rnd)
{
    uint32_t d = cfg->base_ms, span, j;
    unsigned i, pct = cfg->jitter_pct > 100 ? 100 : cfg->jitter_pct;

    if (d == 0)
        return 0;
    for (i = 0; i < attempt && d < cfg->max_ms; i++)
        d = d > UINT32_MAX / 2 ? UINT32_MAX : d * 2;
    if (cfg->max_ms && d > cfg->max_ms)
        d = cfg->max_ms;
    /* jitter: subtract up to pct% so a fleet that lost the server together
     * does not come back in lock step; never below 1 ms */
    span = (uint32_t)(((uint64_t)d * pct) / 100u);
    j = span ? rnd % (span + 1) : 0;
    d -= j;
    return d ? d : 1;
}
