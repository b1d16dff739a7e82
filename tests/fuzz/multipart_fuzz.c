/* multipart_fuzz.c - libFuzzer target for server/http/multipart.c. The input's
 * first line is a Content-Type header (boundary extraction), the rest is the
 * body parsed with that boundary (or a fixed one when extraction fails).
 * Checks: every returned part lies inside the body. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fota_err.h"
#include "fota_str.h"
#include "multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char ct[256], boundary[FOTA_MP_BOUNDARY_MAX + 1];
    struct fota_mp_part parts[24];
    size_t n = 0, i = 0;

    while (i < size && i < sizeof(ct) - 1 && data[i] != '\n') {
        ct[i] = (char)(data[i] ? data[i] : ' ');
        i++;
    }
    ct[i] = '\0';
    const uint8_t *body = data + (i < size ? i + 1 : size);
    size_t blen = size - (size_t)(body - data);
    if (fota_multipart_boundary(ct, boundary, sizeof(boundary)) != 0)
        fota_str_copy(boundary, sizeof(boundary), "B");
    /* Copy so ASan catches reads past the body. */
    uint8_t *copy = malloc(blen ? blen : 1);
    if (!copy)
        return 0;
    if (blen)
        memcpy(copy, body, blen);
    int r = fota_multipart_parse(copy, blen, boundary, parts, 24, &n);
    if (n > 24)
        abort();
    for (size_t k = 0; k < n; k++) {
        const struct fota_mp_part *p = &parts[k];
        if (p->data < copy || p->data + p->len > copy + blen)
            abort();
        if (!p->name.ptr || (const uint8_t *)p->name.ptr < copy ||
            (const uint8_t *)p->name.ptr + p->name.len > copy + blen)
            abort();
        if (p->filename.ptr && ((const uint8_t *)p->filename.ptr < copy ||
                                (const uint8_t *)p->filename.ptr + p->filename.len > copy + blen))
            abort();
    }
    if (r > 0)
        abort();
    free(copy);
    return 0;
}
