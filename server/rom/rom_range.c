/* rom_range.c - the Range header of a ROM download (rom.h): one byte range,
 * or none; a pure parser. */
#include <stdlib.h>
#include <string.h>

#include "rom.h"

int fota_rom_range(const char *hdr, int64_t size, int64_t *from, int64_t *to)
{
    if (!hdr)
        return 0;
    while (*hdr == ' ')
        hdr++;
    if (strncmp(hdr, "bytes=", 6) != 0 || strchr(hdr, ','))
        return 0;
    const char *p = hdr + 6;
    char *end;
    if (*p == '-') {
        long long n = strtoll(p + 1, &end, 10);
        if (end == p + 1 || *end || n <= 0)
            return -1;
        *from = n >= size ? 0 : size - n;
        *to = size - 1;
        return size > 0 ? 1 : -1;
    }
    if (*p < '0' || *p > '9')
        return 0;
    long long a = strtoll(p, &end, 10);
    if (*end != '-')
        return 0;
    const char *q = end + 1;
    long long b = size - 1;
    if (*q) {
        b = strtoll(q, &end, 10);
        if (end == q || *end)
            return 0;
        if (b >= size)
            b = size - 1;
    }
    if (a >= size || a > b)
        return -1;
    *from = a;
    *to = b;
    return 1;
}
