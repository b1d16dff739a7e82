/* fotasim_crc32.c - fota-sim's host CRC-32 (zlib's polynomial, fota_crc32_update's
 * semantics): carry-less multiplication folding (PCLMULQDQ, the method of
 * Intel's "Fast CRC Computation Using PCLMULQDQ" white paper) on x86-64
 * CPUs that have it, zlib's crc32 for short pieces, tails and other hosts.
 * Host only: the device keeps common/crc32.c's small table. */
#include <stddef.h>
#include <stdint.h>

#include <zlib.h>

#include "fotasim.h"

static uint32_t zlib_crc(uint32_t crc, const uint8_t *p, size_t len)
{
    uLong c = crc;
    while (len > 0) {                      /* zlib takes uInt lengths */
        uInt n = len > 0x40000000u ? 0x40000000u : (uInt)len;
        c = crc32(c, p, n);
        p += n;
        len -= n;
    }
    return (uint32_t)c;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define CLMUL_TARGET __attribute__((target("pclmul,sse4.1")))

/* x^(n) mod P constants for the bit-reflected polynomial 0xEDB88320 */
#define K1 0x0000000154442bd4ull       /* fold by 64 bytes */
#define K2 0x00000001c6e41596ull
#define K3 0x00000001751997d0ull       /* fold by 16 bytes */
#define K4 0x00000000ccaa009eull
#define K5 0x0000000163cd6124ull       /* 64 -> 32 bits */
#define POLY 0x00000001db710641ull     /* Barrett: P' and mu */
#define MU 0x00000001f7011641ull

static CLMUL_TARGET __m128i fold(__m128i x, __m128i k, __m128i next)
{
    return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00),
                                       _mm_clmulepi64_si128(x, k, 0x11)), next);
}

/* The raw (not inverted) CRC register over len bytes, len >= 64 and a
 * multiple of 16. */
static CLMUL_TARGET uint32_t clmul_crc(uint32_t reg, const uint8_t *p, size_t len)
{
    const __m128i k12 = _mm_set_epi64x((long long)K2, (long long)K1);
    const __m128i k34 = _mm_set_epi64x((long long)K4, (long long)K3);
    const __m128i k5 = _mm_set_epi64x(0, (long long)K5);
    const __m128i pmu = _mm_set_epi64x((long long)MU, (long long)POLY);
    const __m128i mask32 = _mm_set_epi32(0, 0, 0, -1);
    __m128i x1, x2, x3, x4, t;

    x1 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)p), _mm_cvtsi32_si128((int)reg));
    x2 = _mm_loadu_si128((const __m128i *)(p + 16));
    x3 = _mm_loadu_si128((const __m128i *)(p + 32));
    x4 = _mm_loadu_si128((const __m128i *)(p + 48));
    p += 64;
    len -= 64;
    while (len >= 64) {
        x1 = fold(x1, k12, _mm_loadu_si128((const __m128i *)p));
        x2 = fold(x2, k12, _mm_loadu_si128((const __m128i *)(p + 16)));
        x3 = fold(x3, k12, _mm_loadu_si128((const __m128i *)(p + 32)));
        x4 = fold(x4, k12, _mm_loadu_si128((const __m128i *)(p + 48)));
        p += 64;
        len -= 64;
    }
    x1 = fold(x1, k34, x2);
    x1 = fold(x1, k34, x3);
    x1 = fold(x1, k34, x4);
    while (len >= 16) {
        x1 = fold(x1, k34, _mm_loadu_si128((const __m128i *)p));
        p += 16;
        len -= 16;
    }
    /* 128 -> 64 bits */
    x1 = _mm_xor_si128(_mm_clmulepi64_si128(x1, k34, 0x10), _mm_srli_si128(x1, 8));
    /* 64 -> 32 bits */
    t = _mm_srli_si128(x1, 4);
    x1 = _mm_xor_si128(_mm_clmulepi64_si128(_mm_and_si128(x1, mask32), k5, 0x00), t);
    /* Barrett reduction */
    t = _mm_and_si128(_mm_clmulepi64_si128(_mm_and_si128(x1, mask32), pmu, 0x10), mask32);
    t = _mm_clmulepi64_si128(t, pmu, 0x00);
    x1 = _mm_xor_si128(x1, t);
    return (uint32_t)_mm_extract_epi32(x1, 1);
}

static int have_clmul(void)
{
    static int have = -1;
    if (have < 0) {
        __builtin_cpu_init();
        have = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
    }
    return have;
}

uint32_t fotasim_crc32(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = data;
    if (len >= 64 && have_clmul()) {
        size_t n = len & ~(size_t)15;
        crc = ~clmul_crc(~crc, p, n);
        p += n;
        len -= n;
    }
    return zlib_crc(crc, p, len);
}

#else

uint32_t fotasim_crc32(uint32_t crc, const void *data, size_t len)
{
    return zlib_crc(crc, data, len);
}

#endif
