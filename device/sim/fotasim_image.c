/* fotasim_image.c - fota-sim's images from the shared codec's builder
 * (fwimg_build.c): the version is embedded as FOTAVER: in irom, so a
 * device reports the version of the image it booted. */
#include <stdlib.h>
#include <string.h>

#include "fota_str.h"
#include "fotasim_ardimg.h"
#include "fotasim_image.h"
#include "fwimg.h"

static void ard_opts(const struct fotasim_opts *o, const char *version, struct fotasim_ardimg_opts *a)
{
    memset(a, 0, sizeof(*a));
    a->version = version;
    a->flash_mode = (uint8_t)o->flash_mode;
    a->size_code = (uint8_t)(o->image_flash_size >= 0 ? o->image_flash_size : o->chip_size);
    a->size = o->image_size;
    a->seed = o->seed;
    a->crc_words = o->core >= 27;      /* elf2bin's CRC patch, from core 2.7 */
}

/* The Arduino-core factory image: the sketch of --initial-version. */
static int ard_factory(const struct fotasim_opts *o, uint8_t **img, size_t *len)
{
    struct fotasim_ardimg_opts a;
    uint8_t *p, *q;
    size_t cap;

    ard_opts(o, o->initial_version, &a);
    if (fotasim_ardimg_build(&a, &p, len) < 0)
        return FOTA_EINVAL;
    cap = (*len + 4095) & ~(size_t)4095;
    if (!(q = realloc(p, cap))) {
        free(p);
        return FOTA_ENOMEM;
    }
    memset(q + *len, 0xFF, cap - *len);
    *img = q;
    return 0;
}

int fotasim_image_factory(const struct fotasim_opts *o, uint8_t **img, size_t *len)
{
    struct fota_fwimg_build_opts b;
    size_t cap;
    int rc;

    if (FOTASIM_PROFILE_IS_ARD(o->profile))
        return ard_factory(o, img, len);
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

/* --write-image arduino:VERSION:FILE: plain, --gzip, then --sign-key. */
static int ard_write(const struct fotasim_opts *o, const char *version, const char *path, FILE *err)
{
    struct fotasim_ardimg_opts a;
    uint8_t *img = NULL, *next;
    size_t len, nlen;
    char why[160];
    FILE *fp;
    int rc = 1;

    ard_opts(o, version, &a);
    if (fotasim_ardimg_build(&a, &img, &len) < 0) {
        fprintf(err, "fota-sim: --write-image: cannot build an image of %u bytes for %s\n",
                o->image_size, version);
        return 2;
    }
    if (o->gzip) {
        if (fotasim_ardimg_gzip(img, len, &next, &nlen) < 0)
            goto out;
        free(img);
        img = next, len = nlen;
    }
    if (o->sign_key) {
        if (fotasim_ardimg_sign(img, len, o->sign_key, o->legacy_sign, &next, &nlen, why,
                                sizeof(why)) < 0) {
            fprintf(err, "fota-sim: --sign-key: %s\n", why);
            rc = 2;
            goto out;
        }
        free(img);
        img = next, len = nlen;
    }
    if ((fp = fopen(path, "wb"))) {
        rc = fwrite(img, 1, len, fp) == len ? 0 : 1;
        if (fclose(fp) != 0)
            rc = 1;
    }
    if (rc)
        fprintf(err, "fota-sim: cannot write %s\n", path);
out:
    free(img);
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

    if (strncmp(arg, "arduino:", 8) == 0) {
        const char *v = arg + 8, *c = strrchr(v, ':');
        char version[64];
        if (!c || c == v || (size_t)(c - v) >= sizeof(version) || !c[1]) {
            fprintf(err, "fota-sim: --write-image: '%s' is not arduino:VERSION:FILE\n", arg);
            return 2;
        }
        fota_str_copy_n(version, sizeof(version), v, (size_t)(c - v));
        return ard_write(o, version, c + 1, err);
    }
    if (!c1 || !c2 || (arg[0] != '1' && arg[0] != '2') || c1 != arg + 1 ||
        (size_t)(c2 - c1 - 1) >= sizeof(ver) || !c2[1]) {
        fprintf(err, "fota-sim: --write-image: '%s' is not SLOT:VERSION:FILE (slot 1, 2 or arduino, "
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
