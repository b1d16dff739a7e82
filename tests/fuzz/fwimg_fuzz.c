/* fwimg_fuzz.c - libFuzzer target for the image codec: the one-shot parse and
 * a chunked stream (chunk sizes taken from the input) must agree exactly;
 * the release check and the head check must not crash on the same bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fwimg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fota_fwimg_info one, str;
    struct fota_fwimg_stream s;
    struct fota_release_file f[2];
    char why[256];
    size_t off = 0, step;
    int r1, r2, i = 0;

    memset(&one, 0, sizeof one);
    memset(&str, 0xA5, sizeof str);
    r1 = fota_fwimg_parse(data, size, &one);

    fota_fwimg_begin(&s, 0);
    while (off < size) {
        /* chunk lengths 1..64 drawn from the data itself, then the rest in big pieces */
        step = (i < 64) ? (size_t)(data[(off * 7 + (size_t)i) % size] % 64) + 1 : 4096;
        if (step > size - off)
            step = size - off;
        (void)fota_fwimg_update(&s, data + off, step);
        off += step;
        i++;
    }
    r2 = fota_fwimg_end(&s, &str);
    if (r1 != r2 || memcmp(&one, &str, sizeof one) != 0)
        abort();
    if (r1 == 0 && (one.total_size != size || one.checksum_offset % 16 != 15))
        abort();

    (void)fota_fwimg_check_head(data, size, 1);
    (void)fota_fwimg_sniff(data, size);
    f[0] = (struct fota_release_file){ "user1.bin", data, size, NULL };
    f[1] = (struct fota_release_file){ "user2.bin", NULL, 0, &one };
    why[0] = 'x';
    (void)fota_fwimg_release_check(fota_flash_map_get(size ? data[0] % 10 : 2), f, 2, why,
                                   sizeof why);
    if (!memchr(why, '\0', sizeof why))
        abort();
    why[0] = 'x';
    (void)fota_fwimg_release_check_flags(fota_flash_map_get(size ? data[0] % 10 : 2), f, 2,
                                         FOTA_RELEASE_F_SLOT_BY_NAME, why, sizeof why);
    if (!memchr(why, '\0', sizeof why))
        abort();
    return 0;
}
