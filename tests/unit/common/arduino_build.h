/* arduino_build.h - test-only builder of Arduino-core .bin files laid out as
 * elf2bin.py writes them (reference arduino-ota §1.1): eboot (2 segments,
 * zero pad, checksum, 0xAA filler to 0x1000), the sketch (5 segments, or 4 as
 * esptool-ck), then the length and CRC words patched at 0x1010 after the
 * checksum was written. Written from the spec, independent of the code under
 * test. Header-only (static functions) for the common and server tests. */
#ifndef FOTA_TEST_ARDUINO_BUILD_H
#define FOTA_TEST_ARDUINO_BUILD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct ab_spec {
    uint8_t mode;             /* byte 2 of both headers */
    uint8_t size_code;        /* byte 3 high nibble */
    uint8_t freq;             /* byte 3 low nibble */
    int nsketch;              /* 5 (elf2bin) or 4 (esptool-ck) */
    uint32_t irom_len;        /* first sketch segment; the others are fixed */
    int add_crc;              /* 1: core >= 2.7 (patch 0x1010-0x1017 after the checksum) */
    uint32_t seed;            /* content of the segment data */
};

static uint32_t ab_rand(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 16;
}

static void ab_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* elf2bin.py write_bin: header, segments, zero pad, checksum (the last byte
 * of a 16-byte block), then 0xAA up to to_addr when it is not 0. Returns the
 * new file position. irom_zero: the first 8 data bytes of segment 0 are zero
 * (the linker's __crc_len/__crc_val). */
static size_t ab_write_image(uint8_t *out, size_t start, uint8_t mode, uint8_t sizefreq,
                             uint32_t entry, int nsegs, const uint32_t *lens,
                             const uint32_t *addrs, uint32_t *seed, int irom_zero,
                             size_t to_addr)
{
    size_t pos = start, total = 8;
    uint8_t csum = 0xEF;

    out[pos++] = 0xE9;
    out[pos++] = (uint8_t)nsegs;
    out[pos++] = mode;
    out[pos++] = sizefreq;
    ab_le32(out + pos, entry);
    pos += 4;
    for (int i = 0; i < nsegs; i++) {
        ab_le32(out + pos, addrs[i]);
        ab_le32(out + pos + 4, lens[i]);
        pos += 8;
        total += 8;
        for (uint32_t k = 0; k < lens[i]; k++) {
            uint8_t b = (uint8_t)ab_rand(seed);
            if (irom_zero && i == 0 && k < 8)
                b = 0;
            out[pos++] = b;
            csum ^= b;
        }
        total += lens[i];
    }
    total += 1;
    while (total & 15) {
        total++;
        out[pos++] = 0;
    }
    out[pos++] = csum;
    if (to_addr)
        while (pos < to_addr)
            out[pos++] = 0xAA;
    return pos;
}

/* crc8266 of elf2bin.py, bit by bit. */
static uint32_t ab_crc8266(const uint8_t *d, size_t n)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++)
        for (int b = 7; b >= 0; b--) {
            uint32_t bit = crc & 0x80000000u;
            if ((d[i] >> b) & 1)
                bit = !bit;
            crc <<= 1;
            if (bit)
                crc ^= 0x04C11DB7u;
        }
    return crc;
}

/* The largest file ab_build makes for irom_len. */
#define AB_MAX_LEN(irom_len) (0x1000u + 8u + 5u * 8u + (irom_len) + 0x3000u + 32u)

/* Builds a whole .bin into out (at least AB_MAX_LEN bytes). Returns its length. */
static size_t ab_build(uint8_t *out, const struct ab_spec *sp)
{
    static const uint32_t eb_len[2] = {0xd60, 0x28};
    static const uint32_t eb_addr[2] = {0x4010f000u, 0x3fff20b8u};
    uint32_t lens[5] = {sp->irom_len, 0x1234, 0x0456, 0x0321, 0x0789};
    uint32_t addrs[5] = {0x40201010u, 0x40100000u, 0x40101234u, 0x3ffe8000u, 0x3ffe8400u};
    uint32_t seed = sp->seed;
    uint8_t sf = (uint8_t)(sp->size_code << 4 | sp->freq);
    size_t pos;

    if (sp->nsketch == 4) { /* esptool-ck: no .text1 */
        lens[2] = lens[3];
        lens[3] = lens[4];
        addrs[2] = addrs[3];
        addrs[3] = addrs[4];
    }
    pos = ab_write_image(out, 0, sp->mode, sf, 0x4010f480u, 2, eb_len, eb_addr, &seed, 0, 0x1000);
    pos = ab_write_image(out, pos, sp->mode, sf, 0x401000c0u, sp->nsketch, lens, addrs, &seed,
                         1, 0);
    if (sp->add_crc) {
        uint32_t crc;
        memset(out + 0x1010, 0, 8);
        crc = ab_crc8266(out, pos);
        ab_le32(out + 0x1010, (uint32_t)pos);
        ab_le32(out + 0x1014, crc);
    }
    return pos;
}

#endif
