/* fotasim_image.c - fota-sim's images from the shared codec's builder
 * (fwimg_build.c): the version is embedded as FOTAVER: in irom, so a
 * device reports the version of the image it booted. */
#include <stdlib.h>
#include <string.h>

#include "fota_str.h"
#include "fotasim_image.h"
#include "fwimg.h"

int fotasim_image_factory(const struct fotasim_opts *o, uint8_t **img, size_t *len)
{
    struct fota_fwimg_build_opts b;
    size_t cap;
    int rc;

    fota_fwimg_build_opts_init(&b);
    b.slot = 1;
    b.size_map = o->map;
    b.version = o->initial_version;
    b.irom_size = 8192;
    b.seed = o->seed;
    *len = fota_fwimg_build_size(&b);
    cap = (*len + 4095) & ~(size_t)4095;
    if (!*len || !(*img = malloc(cap)))
        return FOTA_ENOMEM;
    memset(*img, 0xFF, cap);
    if ((rc = fota_fwimg_build(&b, *img, *len, len)) < 0) {
        free(*img);
        *img = NULL;
    }
    return rc;
}

int fotasim_image_write(const struct fotasim_opts *o, FILE *err)
{
    struct fota_fwimg_build_opts b;
    char ver[FOTA_FWIMG_VERSION_MAX];
    const char *arg = o->write_image;
    const char *c1 = strchr(arg, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    uint8_t *img;
    size_t len;
    FILE *fp;
    int rc = 1;

    if (!c1 || !c2 || (arg[0] != '1' && arg[0] != '2') || c1 != arg + 1 ||
        (size_t)(c2 - c1 - 1) >= sizeof(ver) || !c2[1]) {
        fprintf(err, "fota-sim: --write-image: '%s' is not SLOT:VERSION:FILE (slot 1 or 2, "
                     "a version of at most %d characters)\n", arg, FOTA_FWIMG_VERSION_MAX - 1);
        return 2;
    }
    fota_str_copy_n(ver, sizeof(ver), c1 + 1, (size_t)(c2 - c1 - 1));
    fota_fwimg_build_opts_init(&b);
    b.slot = arg[0] - '0';
    b.size_map = o->map;
    b.version = ver;
    b.seed = o->seed;
    if (o->image_size && fota_fwimg_build_fit(&b, o->image_size) != 0) {
        fprintf(err, "fota-sim: --image-size: cannot fit an image in %u bytes\n", o->image_size);
        return 2;
    }
    len = fota_fwimg_build_size(&b);
    if (!len || !(img = malloc(len)))
        return 2;
    if (fota_fwimg_build(&b, img, len, &len) == 0 && (fp = fopen(c2 + 1, "wb"))) {
        rc = fwrite(img, 1, len, fp) == len ? 0 : 1;
        if (fclose(fp) != 0)
            rc = 1;
    }
    free(img);
    if (rc)
        fprintf(err, "fota-sim: cannot write %s\n", c2 + 1);
    return rc;
}
