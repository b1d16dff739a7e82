/* devtest.h - helpers shared by the device unit tests: build test images
 * with the shared codec's builder and set up a virtual flash. */
#ifndef DEVTEST_H
#define DEVTEST_H

#include <stdlib.h>
#include <string.h>

#include "fwimg.h"
#include "sim.h"

/* Builds a NONOS >= 2.0 image for slot (1|2), map, version; malloc'ed. */
static inline uint8_t *devtest_image(int slot, int map, const char *version, uint32_t irom,
                                     size_t *len)
{
    struct fota_fwimg_build_opts o;
    uint8_t *buf;
    size_t cap;
    fota_fwimg_build_opts_init(&o);
    o.slot = slot;
    o.size_map = map;
    o.version = version;
    o.irom_size = irom;
    o.seed = (uint32_t)slot * 7u + (uint32_t)strlen(version);
    cap = fota_fwimg_build_size(&o);
    if (cap == 0 || !(buf = malloc(cap)))
        return NULL;
    if (fota_fwimg_build(&o, buf, cap, len) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

#endif
