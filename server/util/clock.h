/* clock.h - fotad's one clock.
 *
 * Two readings: monotonic milliseconds, for every timeout, deadline and
 * duration (never the wall clock, which jumps); and wall-clock Unix time, for
 * what is stored or shown (created, last_active, messages). Tests move both
 * forward with fota_clock_advance_ms() instead of sleeping. Thread-safe. */
#ifndef FOTA_CLOCK_H
#define FOTA_CLOCK_H

#include <stdint.h>

/* Milliseconds of CLOCK_MONOTONIC (plus the test offset). */
int64_t fota_clock_mono_ms(void);
/* Milliseconds of CLOCK_MONOTONIC without the test offset: for a deadline
 * that another clock keeps, which fota_clock_advance_ms cannot move (a
 * lease that the database lets expire in its own time). */
int64_t fota_clock_mono_raw_ms(void);
/* The same clock in nanoseconds, for durations below a millisecond (the
 * latency histograms of metric.h). */
int64_t fota_clock_mono_ns(void);
/* Unix time in seconds / milliseconds (plus the test offset). */
int64_t fota_clock_wall_s(void);
int64_t fota_clock_wall_ms(void);
/* Tests: moves both clocks forward by ms (cumulative). */
void fota_clock_advance_ms(int64_t ms);

#endif
