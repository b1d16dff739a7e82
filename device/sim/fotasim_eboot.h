/* fotasim_eboot.h - what happens to an Arduino-core device's flash from
 * power on to the sketch: eboot's copy of a staged image (§6.1: raw, or a
 * gzip member inflated with its ISIZE taken from the staged bytes' last
 * four), the ROM loader's check of the image at 0 (eboot), eboot's load of
 * the sketch at 0x1000, and what the sketch then reports about itself
 * (§1.2: sketch size, sketch MD5, flash mode; the FOTAVER: version a
 * fota-sim image embeds). */
#ifndef FOTASIM_EBOOT_H
#define FOTASIM_EBOOT_H

#include <stddef.h>
#include <stdint.h>

#include "fotadev.h"
#include "fotasim_ardupd.h"

#define FOTASIM_SKETCH_ADDR 0x1000u
#define FOTASIM_VERSION_MAX 48        /* an embedded version, NUL included */

/* eboot's copy_raw of cmd (dst 0), sector by sector (sector 0 only when it
 * differs), inflating a gzip source. Returns 0 or FOTA_EIO (a flash error:
 * the power failed), FOTA_EPROTO (gzip that does not inflate: the copy
 * stops where it failed, as eboot's would). */
int fotasim_eboot_copy(const struct fotadev_flash_ops *f, const struct fotasim_ebcmd *cmd);

/* An image header and segment walk at addr. Returns the end of the last
 * segment (absolute), or -1 (no 0xE9, a segment past max). With
 * checksum, the XOR of the segment data must equal the stored byte (the ROM
 * loader's test). */
long fotasim_eboot_walk(const struct fotadev_flash_ops *f, uint32_t addr, uint32_t max, int checksum);

/* What a running sketch knows about itself. */
struct fotasim_sketch_info {
    uint32_t size;              /* getSketchSize(): walk end rounded up, absolute */
    char md5[33];               /* getSketchMD5(): MD5 of flash [0, size) */
    uint8_t flash_mode;         /* byte 2 at 0 */
    uint8_t size_code;          /* byte 3 >> 4 at 0 */
    char version[FOTASIM_VERSION_MAX];  /* after FOTAVER: in [0x1000, size), "" none */
};

/* The boot after eboot: 0 with *out, or -1 when nothing runs (the ROM
 * refuses the image at 0, or eboot finds no sketch at 0x1000). */
int fotasim_eboot_sketch(const struct fotadev_flash_ops *f, uint32_t flash_size,
                         struct fotasim_sketch_info *out);

#endif
