/* arduino_cache.c - each loop's cache of the devices that check in (struct
 * fota_arduino_dev_entry, arduino_int.h): a fleet that polls while already
 * current is answered without a store read, and a device whose tracking
 * moved (a download completed) reads its arduino row again, nothing else.
 * Each part of an entry answers while the store's generation that covers it
 * (the catalog's, the device's, the device's arduino one, each read before
 * the rows) is unchanged; any write of the device's row, commands or
 * tracking, by any module, drops that part. */
#include <stdlib.h>
#include <string.h>

#include "arduino_int.h"
#include "fota_str.h"
#include "xmalloc.h"

static unsigned set_of(int64_t product_id, const char *key)
{
    return fota_str_hash(FOTA_STR_HASH_SEED ^ (uint32_t)product_id, key) % FOTA_ARDUINO_DEV_SETS;
}

struct fota_arduino_dev_entry *fota_arduino_cache_find(struct fota_arduino_visit *v,
                                                       const char *key)
{
    struct fota_arduino_loop *al = v->al;
    struct fota_arduino_dev_entry **set;

    if (!al) { /* a store job: the entry copied on the loop, if any */
        struct fota_arduino_dev_entry *e = v->off && v->off->dev_found ? &v->off->dev : NULL;
        return e && e->product_id == v->product.id && strcmp(e->key, key) == 0 ? e : NULL;
    }
    set = &al->dev[set_of(v->product.id, key) * FOTA_ARDUINO_DEV_WAYS];
    for (unsigned w = 0; w < FOTA_ARDUINO_DEV_WAYS; w++)
        if (set[w] && set[w]->product_id == v->product.id && strcmp(set[w]->key, key) == 0) {
            set[w]->used = ++al->tick;
            return set[w];
        }
    return NULL;
}

int fota_arduino_cache_fresh(const struct fota_arduino_visit *v,
                             const struct fota_arduino_dev_entry *e)
{
    int64_t last = e->adev.last_checkin;
    return last > 0 && last <= v->now && v->now - last < v->ap.checkin_interval;
}

void fota_arduino_cache_put(struct fota_arduino_visit *v, const char *key)
{
    struct fota_arduino_loop *al = v->al;
    struct fota_arduino_dev_entry *e = fota_arduino_cache_find(v, key), **slot;

    if (!v->device.id || strlen(key) >= sizeof e->key)
        return;
    if (!e) {
        /* the way to use: an empty one, else the least recently used */
        struct fota_arduino_dev_entry **set =
            &al->dev[set_of(v->product.id, key) * FOTA_ARDUINO_DEV_WAYS];
        slot = &set[0];
        for (unsigned w = 0; w < FOTA_ARDUINO_DEV_WAYS; w++) {
            if (!set[w]) {
                slot = &set[w];
                break;
            }
            if (set[w]->used < (*slot)->used)
                slot = &set[w];
        }
        if (!*slot)
            *slot = fota_xmalloc(sizeof **slot);
        e = *slot;
        e->product_id = v->product.id;
        fota_str_copy(e->key, sizeof e->key, key);
        e->used = ++al->tick;
    }
    /* only generations read for this very device before its rows vouch for them */
    e->gen = v->devgen_id == v->device.id && v->open_known ? v->gen : 0;
    e->devgen = v->devgen;
    e->agen = v->agen;
    e->device = v->device;
    e->adev = v->adev;
    e->cmd_id = v->open_known ? v->open_cmd_id : 0;
    fota_str_copy(e->cmd_version, sizeof e->cmd_version, v->open_known ? v->open_version : "");
}

void fota_arduino_cache_free(struct fota_arduino_loop *al)
{
    for (size_t i = 0; i < FOTA_ARDUINO_DEV_SETS * FOTA_ARDUINO_DEV_WAYS; i++) {
        free(al->dev[i]);
        al->dev[i] = NULL;
    }
}
