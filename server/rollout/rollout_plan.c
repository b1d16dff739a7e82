/* rollout_plan.c - a rollout's stages decided at its creation (which
 * member joins which stage) and its maintenance window's arithmetic. Pure:
 * see rollout_plan.h. */
#include "rollout_plan.h"

#include <stdlib.h>

#include "store.h"

uint64_t fota_rollout_plan_key(int64_t device_id, uint64_t seed)
{
    uint64_t z = (uint64_t)device_id ^ (seed * 0x9E3779B97F4A7C15ull);
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int64_t fota_rollout_plan_seed(int64_t product_id, const char *version)
{
    uint64_t h = 14695981039346656037ull;
    for (int i = 0; i < 8; i++) {
        h ^= (uint8_t)((uint64_t)product_id >> (8 * i));
        h *= 1099511628211ull;
    }
    for (const char *p = version; p && *p; p++) {
        h ^= (uint8_t)*p;
        h *= 1099511628211ull;
    }
    return (int64_t)((h ^ (h >> 31)) & 0x7FFFFFFF);
}

static int cmp_slot(const void *a, const void *b)
{
    const struct fota_rollout_plan_slot *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static size_t find_id(const int64_t *ids, size_t n, int64_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && ids[lo] == id ? lo : n;
}

size_t fota_rollout_plan_stages(const struct fota_rollout_stage_spec *specs, size_t nspecs,
                                const int64_t *ids, size_t n, uint64_t seed, uint8_t *stage_of,
                                int64_t *totals, struct fota_rollout_plan_slot *order)
{
    const uint8_t none = 0xFF;
    size_t npool = 0, taken = 0, done = 0;

    for (size_t k = 0; k <= nspecs; k++)
        totals[k] = 0;
    if (nspecs == 0) {
        for (size_t i = 0; i < n; i++)
            stage_of[i] = 0;
        totals[0] = (int64_t)n;
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        stage_of[i] = none;
    for (size_t k = 0; k < nspecs; k++) {
        if (specs[k].kind != FOTA_STAGE_DEVICES)
            continue;
        for (size_t j = 0; j < specs[k].nids; j++) {
            size_t i = find_id(ids, n, specs[k].ids[j]);
            if (i < n && stage_of[i] == none) {
                stage_of[i] = (uint8_t)k;
                totals[k]++;
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        if (stage_of[i] == none)
            order[npool++] = (struct fota_rollout_plan_slot){ fota_rollout_plan_key(ids[i], seed),
                                                              ids[i], (uint32_t)i };
    qsort(order, npool, sizeof *order, cmp_slot);
    for (size_t k = 0; k < nspecs; k++) {
        size_t want = 0;
        if (specs[k].kind == FOTA_STAGE_PERCENT) {
            size_t target = (size_t)(((uint64_t)n * (uint64_t)specs[k].value + 99) / 100);
            want = target > done ? target - done : 0;
        } else if (specs[k].kind == FOTA_STAGE_COUNT) {
            want = (size_t)specs[k].value;
        }
        for (; want > 0 && taken < npool; want--) {
            stage_of[order[taken++].idx] = (uint8_t)k;
            totals[k]++;
        }
        done += (size_t)totals[k];
    }
    if (taken == npool)
        return nspecs;
    for (; taken < npool; taken++) {
        stage_of[order[taken].idx] = (uint8_t)nspecs;
        totals[nspecs]++;
    }
    return nspecs + 1;
}

#define DAY 86400

int fota_rollout_hours_open(int from, int to, int64_t wall_s)
{
    int m = (int)((wall_s % DAY + DAY) % DAY / 60);
    return from < to ? m >= from && m < to : m >= from || m < to;
}

int64_t fota_rollout_hours_next(int from, int to, int64_t wall_s)
{
    int edge = fota_rollout_hours_open(from, to, wall_s) ? to : from;
    int64_t day = wall_s - (wall_s % DAY + DAY) % DAY;
    int64_t t = day + (int64_t)edge * 60;
    return t > wall_s ? t : t + DAY;
}
