/* store.c - what every store backend shares (store_int.h): command nonces,
 * logging through the store's callback and the list limits.
 *
 * Nonces come from OpenSSL's CSPRNG so that a device cannot predict the next
 * command id. */
#include <stdio.h>
#include <openssl/rand.h>
#include "clock.h"
#include "store_int.h"

int64_t fota_store_nonce(void)
{
    /* Process-wide and atomic (every loop thread creates commands); used
     * only if OpenSSL has no randomness to give, so that nonces still
     * differ from one call to the next. */
    static uint32_t fallback;
    uint32_t v = 0;

    if (RAND_bytes((unsigned char *)&v, sizeof v) != 1)
        v = (uint32_t)fota_clock_mono_ms() * 2654435761u +
            __atomic_add_fetch(&fallback, 1, __ATOMIC_RELAXED);
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

size_t fota_store_limit(size_t limit)
{
    if (limit == 0)
        return FOTA_STORE_LIST_DEFAULT;
    return limit > FOTA_STORE_LIST_MAX ? FOTA_STORE_LIST_MAX : limit;
}
