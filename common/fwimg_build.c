/* fwimg_build.c - writes synthetic but well-formed NONOS >= 2.0 "new" images
 * (boot_mode 2, gen_appbin layout: EA 04 00 <slot>, irom, E9 header, .text,
 * .data, .rodata, zero padding, XOR checksum at offset ≡ 15 mod 16, CRC) for
 * tests, the simulator and `fotactl image make`. Deterministic per seed. */
#include "fwimg.h"

#include <string.h>

#include "fota_err.h"

#define TEXT_ADDR   0x40100000u
#define DATA_ADDR   0x3FFE8000u
#define ENTRY_DEF   0x40100004u
#define IRAM_MAX    0x8000u      /* 32 KiB instruction RAM */
#define DRAM_MAX    0x14000u     /* 80 KiB data RAM for .data + .rodata */

static uint32_t up4(uint32_t v) { return (v + 3u) & ~3u; }
static uint32_t up16(uint32_t v) { return (v + 15u) & ~15u; }

void fota_fwimg_build_opts_init(struct fota_fwimg_build_opts *o)
{
    memset(o, 0, sizeof *o);
    o->slot = 1;
    o->size_map = 2;
    o->flash_mode = 0;
    o->flash_freq = 0;
    o->irom_size = 0x1000;
    o->text_size = 0x800;
    o->data_size = 0x40;
    o->rodata_size = 0x200;
    o->seed = 1;
}

/* Length of the version record "FOTAVER:" v NUL, 0 if none; -1 if invalid. */
static long version_len(const char *v)
{
    size_t n, i;

    if (!v)
        return 0;
    n = strlen(v);
    if (n >= FOTA_FWIMG_VERSION_MAX)
        return -1;
    for (i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7E)
            return -1;
    return (long)(sizeof FOTA_FWIMG_VERSION_MARKER - 1 + n + 1);
}

static int opts_valid(const struct fota_fwimg_build_opts *o)
{
    if (o->slot != 1 && o->slot != 2)
        return 0;
    if (!fota_flash_map_get(o->size_map))
        return 0;
    if (o->flash_mode < 0 || o->flash_mode > 3)
        return 0;
    if (o->flash_freq != 0 && o->flash_freq != 1 && o->flash_freq != 2 && o->flash_freq != 15)
        return 0;
    if (o->text_size == 0 || o->text_size > IRAM_MAX)
        return 0;
    if (o->rodata_size == 0 || o->rodata_size > DRAM_MAX || o->data_size > DRAM_MAX ||
        up4(o->data_size) + up4(o->rodata_size) > DRAM_MAX)
        return 0;
    if (o->irom_size > FOTA_FWIMG_MAX_SIZE / 2)
        return 0;
    return version_len(o->version) >= 0;
}

static uint32_t irom_len(const struct fota_fwimg_build_opts *o)
{
    uint32_t v = (uint32_t)version_len(o->version);
    return up16(o->irom_size > v ? o->irom_size : v);
}

/* Offset just past the last segment. */
static uint32_t segments_end(const struct fota_fwimg_build_opts *o)
{
    uint32_t s = 16 + irom_len(o) + 8;

    s += 8 + up4(o->text_size);
    if (o->data_size)
        s += 8 + up4(o->data_size);
    s += 8 + up4(o->rodata_size);
    return s;
}

size_t fota_fwimg_build_size(const struct fota_fwimg_build_opts *o)
{
    if (!o || !opts_valid(o))
        return 0;
    return (size_t)(segments_end(o) | 15u) + 1u + 4u;
}

int fota_fwimg_build_fit(struct fota_fwimg_build_opts *o, size_t total)
{
    struct fota_fwimg_build_opts t;
    size_t base;

    if (!o)
        return FOTA_EINVAL;
    t = *o;
    t.irom_size = 0;
    if (!(base = fota_fwimg_build_size(&t)))
        return FOTA_EINVAL;
    if (total < base)
        return FOTA_ERANGE;
    if (total - base > FOTA_FWIMG_MAX_SIZE / 2)
        return FOTA_ERANGE;
    /* the image grows in 16-byte steps of irom */
    t.irom_size = irom_len(&t) + (uint32_t)((total - base) & ~(size_t)15);
    o->irom_size = t.irom_size;
    return 0;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* xorshift32: cheap, deterministic filler that does not compress to nothing */
static void fill(uint8_t *p, uint32_t n, uint32_t *st)
{
    uint32_t x = *st, i;

    for (i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)(x >> 24);
    }
    *st = x;
}

/* Writes one E9 segment (header + data + zero pad to 4); returns its size. */
static uint32_t put_segment(uint8_t *p, uint32_t addr, uint32_t len, uint32_t *st, uint8_t *xsum)
{
    uint32_t l4 = up4(len), i;

    put32(p, addr);
    put32(p + 4, l4);
    fill(p + 8, len, st);
    memset(p + 8 + len, 0, l4 - len);
    for (i = 0; i < l4; i++)
        *xsum ^= p[8 + i];
    return 8 + l4;
}

int fota_fwimg_build(const struct fota_fwimg_build_opts *o, uint8_t *out, size_t cap, size_t *len)
{
    uint32_t entry, irom, pos, vlen, st, chk;
    uint8_t xsum = FOTA_FWIMG_CHECKSUM_INIT;
    size_t need;
    int nseg;

    if (len)
        *len = 0;
    if (!o || !(need = fota_fwimg_build_size(o)))
        return FOTA_EINVAL;
    if (len)
        *len = need;
    if (!out || cap < need)
        return FOTA_ETOOBIG;

    entry = o->entry ? o->entry : ENTRY_DEF;
    irom = irom_len(o);
    vlen = (uint32_t)version_len(o->version);
    st = o->seed ? o->seed : 0x9E3779B9u;
    nseg = o->data_size ? 3 : 2;

    /* first header (NONOS >= 2.0: byte 2 = 0, byte 3 = app; RTOS 1.x: the
     * flash settings again) and the irom segment */
    out[0] = 0xEA;
    out[1] = 0x04;
    out[2] = o->rtos1_header ? (uint8_t)o->flash_mode : 0;
    out[3] = o->rtos1_header ? (uint8_t)((o->size_map << 4) | o->flash_freq) : (uint8_t)o->slot;
    put32(out + 4, entry);
    put32(out + 8, 0);
    put32(out + 12, irom);
    pos = 16;
    if (vlen) {
        memcpy(out + pos, FOTA_FWIMG_VERSION_MARKER, sizeof FOTA_FWIMG_VERSION_MARKER - 1);
        memcpy(out + pos + sizeof FOTA_FWIMG_VERSION_MARKER - 1, o->version,
               vlen - (sizeof FOTA_FWIMG_VERSION_MARKER - 1));   /* includes the NUL */
    }
    fill(out + pos + vlen, o->irom_size > vlen ? o->irom_size - vlen : 0, &st);
    if (o->irom_size > vlen)
        memset(out + pos + o->irom_size, 0, irom - o->irom_size);
    else
        memset(out + pos + vlen, 0, irom - vlen);
    pos += irom;

    /* second header and the RAM segments */
    out[pos] = 0xE9;
    out[pos + 1] = (uint8_t)nseg;
    out[pos + 2] = (uint8_t)o->flash_mode;
    out[pos + 3] = (uint8_t)((o->size_map << 4) | o->flash_freq);
    put32(out + pos + 4, entry);
    pos += 8;
    pos += put_segment(out + pos, TEXT_ADDR, o->text_size, &st, &xsum);
    if (o->data_size)
        pos += put_segment(out + pos, DATA_ADDR, o->data_size, &st, &xsum);
    pos += put_segment(out + pos, DATA_ADDR + up16(up4(o->data_size)), o->rodata_size, &st, &xsum);

    /* zero padding, checksum at the last byte of a 16-byte line, CRC */
    chk = pos | 15u;
    memset(out + pos, 0, chk - pos);
    out[chk] = xsum;
    pos = chk + 1;
    put32(out + pos, fota_esp_crc_stored(fota_crc32_update(0, out, pos)));
    pos += 4;
    return pos == need ? 0 : FOTA_EINVAL;   /* cannot differ; keeps the invariant checked */
}
