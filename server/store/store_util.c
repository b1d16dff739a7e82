/* store_util.c - clock, nonces and logging shared by the store implementations.
 *
 * Nonces come from OpenSSL's CSPRNG so that a device cannot predict the next
 * command id; time() is enough for row timestamps (seconds). */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <openssl/rand.h>
#include "store_int.h"

int64_t fota_store_now(void)
{
    return (int64_t)time(NULL);
}

int64_t fota_store_nonce(void)
{
    static unsigned fallback = 1;
    uint32_t v = 0;

    if (RAND_bytes((unsigned char *)&v, sizeof v) != 1)
        v = (uint32_t)time(NULL) * 2654435761u + fallback++;
    v &= 0x7fffffffu;
    return v ? (int64_t)v : 1;
}

void fota_store_logf(struct fota_store *s, int level, const char *fmt, ...)
{
    char line[512];
    va_list ap;

    if (!s || !s->log)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    s->log(s->log_ud, level, line);
}

void fota_store_strlcpy(char *dst, const char *src, size_t n)
{
    size_t len;

    if (n == 0)
        return;
    len = src ? strnlen(src, n - 1) : 0;
    if (len)
        memcpy(dst, src, len);
    dst[len] = '\0';
}

size_t fota_store_limit(size_t limit)
{
    if (limit == 0)
        return FOTA_STORE_LIST_DEFAULT;
    return limit > FOTA_STORE_LIST_MAX ? FOTA_STORE_LIST_MAX : limit;
}
