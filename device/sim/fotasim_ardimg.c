/* fotasim_ardimg.c - builds Arduino-core images for tests and for the
 * simulated devices' factory flash, byte for byte in elf2bin's layout, and
 * their gzip and signed forms. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <zlib.h>

#include "fotasim_ardimg.h"

#define SKETCH 0x1000u

struct img {
    uint8_t *p;
    size_t len, cap;
    uint8_t xs;                 /* XOR of the segment data, from 0xEF */
    uint32_t rnd;
};

static void put(struct img *m, const void *d, size_t n)
{
    memcpy(m->p + m->len, d, n);
    m->len += n;
}

static void put32(struct img *m, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(m, b, 4);
}

static uint8_t rnd8(struct img *m)
{
    uint32_t x = m->rnd;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    m->rnd = x;
    return (uint8_t)x;
}

/* A segment: header (load address, length), then its bytes (text first,
 * the rest pseudo-random), counted into the checksum. */
static void segment(struct img *m, uint32_t addr, uint32_t n, const char *text)
{
    size_t at, t = text ? strlen(text) + 1 : 0, i;
    put32(m, addr);
    put32(m, n);
    at = m->len;
    for (i = 0; i < n; i++)
        m->p[at + i] = i < t ? (uint8_t)text[i] : rnd8(m);
    m->len += n;
    for (i = 0; i < n; i++)
        m->xs ^= m->p[at + i];
}

/* Zero padding so that the checksum byte ends a 16-byte block. */
static void checksum(struct img *m)
{
    while ((m->len & 15u) != 15u)
        m->p[m->len++] = 0;
    m->p[m->len++] = m->xs;
}

static void header(struct img *m, uint8_t nseg, const struct fotasim_ardimg_opts *o, uint32_t entry)
{
    uint8_t h[4] = {0xE9, nseg, o->flash_mode, (uint8_t)(o->size_code << 4)};   /* 40 MHz */
    put(m, h, 4);
    put32(m, entry);
    m->xs = 0xEF;
}

/* CRC-32, polynomial 0x04C11DB7, init 0xFFFFFFFF, MSB first, no reflection,
 * no final XOR (elf2bin's add_crc). */
static uint32_t crc_msb(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    size_t i;
    int b;
    for (i = 0; i < n; i++) {
        c ^= (uint32_t)p[i] << 24;
        for (b = 0; b < 8; b++)
            c = (c & 0x80000000u) ? (c << 1) ^ 0x04C11DB7u : c << 1;
    }
    return c;
}

int fotasim_ardimg_build(const struct fotasim_ardimg_opts *o, uint8_t **out, size_t *len)
{
    char ver[80];
    uint32_t total = o->size ? o->size : 64u << 10, irom;
    const uint32_t text = 0x1800, text1 = 0x40, data = 0x200, rodata = 0x100;
    struct img m;

    if (!o->version || strlen(o->version) > 47 || total < (8u << 10))
        return -1;
    /* the sketch: header, 5 segment headers and the fixed segments, checksum */
    irom = total - SKETCH - 8 - 5 * 8 - text - text1 - data - rodata - 16;
    irom &= ~3u;
    memset(&m, 0, sizeof(m));
    m.cap = (size_t)total + 64;
    if (!(m.p = calloc(1, m.cap)))
        return -1;
    m.rnd = (o->seed ? o->seed : 1) * 2654435761u + (uint32_t)strlen(o->version);
    /* eboot: .text and .rodata, padding, checksum, 0xAA to 0x1000 */
    header(&m, 2, o, 0x4010f000u);
    segment(&m, 0x4010f000u, 0xa00, NULL);
    segment(&m, 0x3fff8000u, 0x100, NULL);
    checksum(&m);
    memset(m.p + m.len, 0xAA, SKETCH - m.len);
    m.len = SKETCH;
    /* the sketch: .irom0.text (its first 8 bytes zero), .text, .text1, .data, .rodata */
    snprintf(ver, sizeof(ver), "FOTAVER:%s", o->version);
    header(&m, 5, o, 0x40100004u);
    segment(&m, 0x40201010u, irom, NULL);
    memset(m.p + SKETCH + 16, 0, 8);
    m.xs = 0xEF;                         /* the checksum is over the final data bytes */
    {
        size_t i;
        for (i = 0; i < irom; i++)
            m.xs ^= m.p[SKETCH + 16 + i];
    }
    segment(&m, 0x40100000u, text, NULL);
    segment(&m, 0x40101800u, text1, NULL);
    segment(&m, 0x3ffe8000u, data, NULL);
    segment(&m, 0x3ffe8200u, rodata, ver);
    checksum(&m);
    if (o->crc_words) {                  /* core >= 2.7: after the checksum, not counted in it */
        uint32_t crc = crc_msb(m.p, m.len), n = (uint32_t)m.len, i;
        for (i = 0; i < 4; i++) {
            m.p[SKETCH + 16 + i] = (uint8_t)(n >> (8 * i));
            m.p[SKETCH + 20 + i] = (uint8_t)(crc >> (8 * i));
        }
    }
    *out = m.p;
    *len = m.len;
    return 0;
}

int fotasim_ardimg_gzip(const uint8_t *in, size_t n, uint8_t **out, size_t *len)
{
    z_stream z;
    uLong cap = compressBound((uLong)n) + 64;
    uint8_t *p = malloc(cap);
    int rc;

    memset(&z, 0, sizeof(z));
    if (!p || deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
        free(p);
        return -1;
    }
    z.next_in = (uint8_t *)(uintptr_t)in;
    z.avail_in = (uInt)n;
    z.next_out = p;
    z.avail_out = (uInt)cap;
    rc = deflate(&z, Z_FINISH);
    *len = z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(p);
        return -1;
    }
    *out = p;
    return 0;
}

int fotasim_ardimg_sign(const uint8_t *in, size_t n, const char *key_pem, int legacy, uint8_t **out,
                        size_t *len, char *err, size_t errcap)
{
    FILE *fp = fopen(key_pem, "r");
    EVP_PKEY *k = fp ? PEM_read_PrivateKey(fp, NULL, NULL, NULL) : NULL;
    EVP_PKEY_CTX *ctx = NULL;
    uint8_t hash[32], *p = NULL;
    size_t siglen = 0;
    int rc = -1;

    if (fp)
        fclose(fp);
    if (!k || EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA) {
        snprintf(err, errcap, "%s: no RSA private key (PEM)", key_pem);
        goto out;
    }
    siglen = (size_t)EVP_PKEY_get_size(k);
    if (!(p = malloc(n + siglen + 4)) || !EVP_Digest(in, n, hash, NULL, EVP_sha256(), NULL) ||
        !(ctx = EVP_PKEY_CTX_new(k, NULL)) || EVP_PKEY_sign_init(ctx) <= 0 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) <= 0 ||
        (!legacy && EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) <= 0) ||
        EVP_PKEY_sign(ctx, p + n, &siglen, hash, sizeof(hash)) <= 0) {
        snprintf(err, errcap, "signing failed");
        free(p);
        p = NULL;
        goto out;
    }
    memcpy(p, in, n);
    p[n + siglen] = (uint8_t)siglen;
    p[n + siglen + 1] = (uint8_t)(siglen >> 8);
    p[n + siglen + 2] = (uint8_t)(siglen >> 16);
    p[n + siglen + 3] = (uint8_t)(siglen >> 24);
    *out = p;
    *len = n + siglen + 4;
    rc = 0;
out:
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(k);
    return rc;
}
