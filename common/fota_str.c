/* fota_str.c - bounded string copy (fota_str.h). */
#include "fota_str.h"

#include <string.h>

size_t fota_str_copy_n(char *dst, size_t cap, const char *src, size_t n)
{
    size_t k = 0;

    if (cap == 0)
        return n;
    if (src) {
        const char *nul = memchr(src, '\0', n);
        k = nul ? (size_t)(nul - src) : n;
    }
    if (k >= cap)
        k = cap - 1;
    if (k)
        memcpy(dst, src, k);
    dst[k] = '\0';
    return n;
}

size_t fota_str_copy(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;

    fota_str_copy_n(dst, cap, src, n);
    return n;
}
