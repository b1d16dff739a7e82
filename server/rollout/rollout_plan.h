/* rollout_plan.h - the pure parts of a rollout's plan: which stage each
 * member joins (decided once, when the rollout is created, and stored) and
 * when its maintenance window is open. No I/O, no allocation, no clock:
 * what the unit tests eat (tests/unit/server/rollout/rollout_plan_test.c). */
#ifndef FOTA_ROLLOUT_PLAN_H
#define FOTA_ROLLOUT_PLAN_H

#include <stddef.h>
#include <stdint.h>

/* A stage as requested (docs/api.md, "Stages"): kind is enum
 * fota_rollout_stage_kind (store.h) without ALL and REST; ids (DEVICES
 * only) ascending, borrowed. */
struct fota_rollout_stage_spec {
    int kind;
    int64_t value;                     /* PERCENT: 1..100, COUNT: 1.. */
    const int64_t *ids;
    size_t nids;
};

/* The order percent and count stages take members in: members sorted by
 * this key (then by id). splitmix64 of the device id mixed with the seed:
 * spread over the id range, the same for the same seed. */
uint64_t fota_rollout_plan_key(int64_t device_id, uint64_t seed);

/* The default seed of a rollout of version to product_id: FNV-1a of both,
 * 31 bits (so a rollout and its retry choose the same first devices). */
int64_t fota_rollout_plan_seed(int64_t product_id, const char *version);

/* Scratch of fota_rollout_plan_stages: one per member. */
struct fota_rollout_plan_slot {
    uint64_t key;
    int64_t id;
    uint32_t idx;
};

/* Assigns the n members (device ids ascending) to stages: stage_of[i] gets
 * member i's stage index, totals[k] the number of members in stage k.
 * DEVICES stages take their listed members first (a device listed twice
 * joins the first); then, in stage order, a PERCENT stage takes members
 * (in key order) until value % of the n members (rounded up) are in it and
 * the stages before it, a COUNT stage takes value more; members left over
 * form one more stage. nspecs 0: one stage holds every member. Returns the
 * number of stages (nspecs, or nspecs + 1 with the left-over stage);
 * totals needs room for nspecs + 1; scratch room for n. */
size_t fota_rollout_plan_stages(const struct fota_rollout_stage_spec *specs, size_t nspecs,
                                const int64_t *ids, size_t n, uint64_t seed, uint8_t *stage_of,
                                int64_t *totals, struct fota_rollout_plan_slot *scratch);

/* Maintenance windows: from and to are minutes of the UTC day (0..1439),
 * from != to; a window with to < from spans midnight. 1 when wall_s (Unix
 * seconds) lies in it. */
int fota_rollout_hours_open(int from, int to, int64_t wall_s);
/* The next Unix second after wall_s at which the window opens or closes. */
int64_t fota_rollout_hours_next(int from, int to, int64_t wall_s);

#endif
