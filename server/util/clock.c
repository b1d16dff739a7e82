/* clock.c - monotonic and wall-clock time with one test offset (clock.h). */
#include "clock.h"

#include <time.h>

static int64_t offset_ms;

static int64_t read_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 +
           __atomic_load_n(&offset_ms, __ATOMIC_RELAXED);
}

int64_t fota_clock_mono_ms(void)
{
    return read_ms(CLOCK_MONOTONIC);
}

int64_t fota_clock_mono_raw_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t fota_clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec +
           __atomic_load_n(&offset_ms, __ATOMIC_RELAXED) * 1000000;
}

int64_t fota_clock_wall_ms(void)
{
    return read_ms(CLOCK_REALTIME);
}

int64_t fota_clock_wall_s(void)
{
    return fota_clock_wall_ms() / 1000;
}

void fota_clock_advance_ms(int64_t ms)
{
    __atomic_add_fetch(&offset_ms, ms, __ATOMIC_RELAXED);
}
