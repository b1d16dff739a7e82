/* fota_str.c - bounded string copies (fota_str.h). */
#include "fota_str.h"

#include <stdarg.h>
#include <stdio.h>
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

/* How many bytes of s[0, n) form whole, valid UTF-8 characters from its
 * start, up to a NUL or the first byte that breaks the encoding. */
static size_t utf8_prefix(const unsigned char *p, size_t n)
{
    size_t i = 0;

    while (i < n && p[i]) {
        unsigned c = p[i], lo = 0x80, hi = 0xBF;
        size_t more, k;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            more = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            more = 2;
            lo = c == 0xE0 ? 0xA0 : 0x80; /* no overlong form */
            hi = c == 0xED ? 0x9F : 0xBF; /* no surrogate */
        } else if (c >= 0xF0 && c <= 0xF4) {
            more = 3;
            lo = c == 0xF0 ? 0x90 : 0x80;
            hi = c == 0xF4 ? 0x8F : 0xBF; /* nothing past U+10FFFF */
        } else {
            break;
        }
        if (n - i <= more || p[i + 1] < lo || p[i + 1] > hi)
            break;
        k = 2;
        while (k <= more && (p[i + k] & 0xC0) == 0x80)
            k++;
        if (k <= more)
            break;
        i += more + 1;
    }
    return i;
}

size_t fota_str_copy_utf8(char *dst, size_t cap, const char *src, size_t n)
{
    size_t k;

    if (cap == 0)
        return 0;
    k = src ? utf8_prefix((const unsigned char *)src, n < cap ? n : cap - 1) : 0;
    if (k)
        memcpy(dst, src, k);
    dst[k] = '\0';
    return k;
}

size_t fota_str_copy_dir(char *dst, size_t cap, const char *path)
{
    const char *slash = strrchr(path, '/');

    if (!slash)
        return fota_str_copy(dst, cap, ".");
    if (slash == path)
        return fota_str_copy(dst, cap, "/");
    return fota_str_copy_n(dst, cap, path, (size_t)(slash - path));
}

unsigned fota_str_hash(unsigned h, const char *s)
{
    for (; s && *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

int fota_str_err(char *err, size_t errlen, int code, const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0)
        return code;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return code;
}
