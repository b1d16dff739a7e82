/* devtest.h - helpers shared by the device unit tests: build test images
 * with the shared codec's builder and set up a virtual flash. */
#ifndef DEVTEST_H
#define DEVTEST_H

#include <stdlib.h>
#include <string.h>

#include "fwimg.h"
#include "fotasim.h"

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

/* One byte of the flash, and a raw byte change (no NOR rules). */
static inline uint8_t devtest_at(const struct fotasim_flash *f, uint32_t addr)
{
    uint8_t b = 0;
    fotasim_flash_peek(f, addr, &b, 1);
    return b;
}

static inline void devtest_xor(struct fotasim_flash *f, uint32_t addr, uint8_t mask)
{
    uint8_t b = (uint8_t)(devtest_at(f, addr) ^ mask);
    fotasim_flash_program(f, addr, &b, 1);
}

/* The whole flash, malloc'ed. */
static inline uint8_t *devtest_dump(const struct fotasim_flash *f)
{
    uint8_t *p = malloc(f->size);
    if (p)
        fotasim_flash_peek(f, 0, p, f->size);
    return p;
}

#endif
