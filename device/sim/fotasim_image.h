/* fotasim_image.h - the images fota-sim makes with the shared codec's
 * builder: every device's factory image, and --write-image's test image. */
#ifndef FOTASIM_IMAGE_H
#define FOTASIM_IMAGE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fotasim_opts.h"

/* The factory user1 image of --initial-version for --map, padded with 0xFF
 * to whole sectors (devices share them): *img is malloc'ed, *len the image
 * length without the padding. Returns 0 or FOTA_E*. */
int fotasim_image_factory(const struct fotasim_opts *o, uint8_t **img, size_t *len);
/* --write-image SLOT:VERSION:FILE (--map, --image-size, --seed). Returns
 * the exit status: 0, 1 (cannot write), 2 (usage, message on err). */
int fotasim_image_write(const struct fotasim_opts *o, FILE *err);

#endif
