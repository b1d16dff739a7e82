/* devchan_rate.h - the per-device message rate of the device channel: a
 * generic cell rate algorithm (GCRA, the token bucket as one number: the
 * theoretical arrival time of the next message). Pure and inline, so a
 * check costs a few integer operations on the read path. */
#ifndef FOTA_DEVCHAN_RATE_H
#define FOTA_DEVCHAN_RATE_H

#include <stdint.h>

/* A message arriving at now_us (monotonic microseconds) against a limit of
 * rate messages per second with bursts of up to burst (>= 1) at once; *tat
 * is the device's state (0 for a device never seen, which has its whole
 * burst). Returns 0 when the message may pass (and advances *tat), else the
 * microseconds until it may (*tat unchanged). rate 0: no limit. */
static inline int64_t fota_devchan_rate_gcra(int64_t *tat, int64_t now_us, unsigned rate,
                                             unsigned burst)
{
    if (rate == 0)
        return 0;
    int64_t t = 1000000 / (int64_t)rate;                  /* one message's share of time */
    int64_t tau = t * (int64_t)(burst > 0 ? burst - 1 : 0); /* how far ahead a burst may run */
    int64_t at = *tat > now_us ? *tat : now_us;
    if (at - now_us > tau)
        return at - now_us - tau;
    *tat = at + t;
    return 0;
}

/* 1 when a device's state is back to a full burst at now_us (nothing to keep). */
static inline int fota_devchan_rate_idle(int64_t tat, int64_t now_us)
{
    return tat <= now_us;
}

#endif
