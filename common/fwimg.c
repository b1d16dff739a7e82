/* fwimg.c - the streaming ESP8266 image parser (fota_fwimg_begin/update/end),
 * its one-shot wrapper, the device-style head check, sniffing and names.
 * One state machine walks the headers; CRC, SHA-256, the first bytes and the
 * version marker are computed beside it over every byte, so any chunking of
 * the input gives the same report. Layouts: reference §6, docs/image.md. */
#include "fwimg.h"

#include <string.h>

#include "fota_err.h"

enum {
    ST_HDR = 0,     /* first 8-byte header (EA 04 .. or E9 nn ..) */
    ST_IROM_HDR,    /* V2: irom load address + length */
    ST_IROM_DATA,   /* V2: irom bytes */
    ST_E9_HDR,      /* V2: the second (E9) header */
    ST_SEG_HDR,     /* segment address + length */
    ST_SEG_DATA,    /* segment bytes (XOR-summed) */
    ST_PAD,         /* zeros before the checksum byte */
    ST_CHK,         /* the checksum byte at offset ≡ 15 mod 16 */
    ST_TAIL         /* CRC (V2, V1) or 0xFF padding + irom + CRC (old layout) */
};

#define MARKER_LEN ((uint8_t)(sizeof FOTA_FWIMG_VERSION_MARKER - 1))
#define VER_DONE 0xFFu

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int fail(struct fota_fwimg_stream *s, int err, uint32_t off, const char *what)
{
    s->err = err;
    s->info.error = err;
    s->info.error_offset = off;
    s->info.error_what = what;
    return err;
}

void fota_fwimg_begin(struct fota_fwimg_stream *s, uint32_t flags)
{
    memset(s, 0, sizeof *s);
    s->flags = flags;
    s->info.flash_mode = -1;
    s->info.size_map = -1;
    s->info.flash_freq = -1;
    s->state = ST_HDR;
    s->tail_ff = 1;
    if (!(flags & FOTA_FWIMG_F_NO_SHA256))
        fota_sha256_init(&s->sha);
}

void fota_fwimg_set_crc(struct fota_fwimg_stream *s,
                        uint32_t (*crc32)(uint32_t crc, const void *data, size_t len))
{
    s->crc32 = crc32;
}

static uint32_t crc_upd(const struct fota_fwimg_stream *s, uint32_t crc, const void *p, size_t n)
{
    return s->crc32 ? s->crc32(crc, p, n) : fota_crc32_update(crc, p, n);
}

/* CRC of everything but the last 4 bytes: bytes are CRC'd when they leave a
 * 4-byte window, so whatever ends the file stays out of the sum. */
static void crc_window(struct fota_fwimg_stream *s, const uint8_t *p, size_t len)
{
    uint32_t w = s->info.total_size < 4 ? s->info.total_size : 4; /* bytes in win */
    size_t out, k;
    uint8_t keep[4];
    size_t i, nkeep;

    if (w + len <= 4) {
        memcpy(s->win + w, p, len);
        return;
    }
    out = w + len - 4;
    k = out < w ? out : w;
    s->crc = crc_upd(s, s->crc, s->win, k);
    if (out > k)
        s->crc = crc_upd(s, s->crc, p, out - k);
    /* new window = last 4 bytes of win[0..w) + p[0..len) */
    nkeep = 0;
    for (i = out; i < w; i++)
        keep[nkeep++] = s->win[i];
    for (i = (out > w ? out - w : 0); i < len; i++)
        keep[nkeep++] = p[i];
    memcpy(s->win, keep, 4);
}

/* Finds FOTAVER:<printable...>\0 anywhere in the file (first one wins). */
static void version_scan(struct fota_fwimg_stream *s, const uint8_t *p, size_t len, uint32_t base)
{
    static const char marker[] = FOTA_FWIMG_VERSION_MARKER;
    size_t i = 0;

    while (i < len && s->ver_len != VER_DONE) {
        uint8_t b = p[i];
        if (s->ver_match < MARKER_LEN) {
            if (s->ver_match == 0) {
                const uint8_t *f = memchr(p + i, marker[0], len - i);
                if (!f)
                    return;
                i = (size_t)(f - p);
                b = p[i];
            }
            if (b == (uint8_t)marker[s->ver_match]) {
                if (s->ver_match == 0)
                    s->ver_off = base + (uint32_t)i;
                s->ver_match++;
            } else {
                /* 'F' occurs once in the marker, so a restart is exact */
                s->ver_match = (b == (uint8_t)marker[0]) ? 1 : 0;
                if (s->ver_match)
                    s->ver_off = base + (uint32_t)i;
            }
            i++;
            continue;
        }
        if (b == 0) {
            s->ver_buf[s->ver_len] = '\0';
            memcpy(s->info.version, s->ver_buf, (size_t)s->ver_len + 1);
            s->info.version_offset = s->ver_off;
            s->ver_len = VER_DONE;
            return;
        }
        if (b < 0x20 || b > 0x7E || s->ver_len >= FOTA_FWIMG_VERSION_MAX - 1) {
            s->ver_match = 0;    /* not a version: look again from this byte */
            s->ver_len = 0;
            continue;
        }
        s->ver_buf[s->ver_len++] = (char)b;
        i++;
    }
}

/* Copies header bytes into s->hdr; returns how many were taken. */
static size_t collect(struct fota_fwimg_stream *s, const uint8_t *p, size_t n)
{
    size_t take = 8u - s->hdr_fill;

    if (take > n)
        take = n;
    memcpy(s->hdr + s->hdr_fill, p, take);
    s->hdr_fill = (uint8_t)(s->hdr_fill + take);
    return take;
}

/* Checks the first header byte by byte as it fills: fails on the first bad byte. */
static int check_first(struct fota_fwimg_stream *s, uint8_t from)
{
    const uint8_t *h = s->hdr;
    uint8_t i;

    for (i = from; i < s->hdr_fill; i++) {
        if (i == 0 && h[0] != 0xEA && h[0] != 0xE9)
            return fail(s, FOTA_EMAGIC, 0, "bad magic (expected EA 04 or E9 03)");
        if (i == 1 && h[0] == 0xEA && h[1] != 0x04)
            return fail(s, FOTA_EMAGIC, 1, "bad magic (EA must be followed by 04)");
        if (i == 1 && h[0] == 0xE9 && h[1] == 0)
            return fail(s, FOTA_EMAGIC, 1, "bad magic (E9 header with no segments)");
        if (i == 1 && h[0] == 0xE9 && h[1] > FOTA_FWIMG_MAX_SEGS)
            return fail(s, FOTA_ERANGE, 1, "too many segments");
        if (i == 3 && (s->flags & FOTA_FWIMG_F_EXPECT_USER1) && h[3] != 1)
            return fail(s, FOTA_ESLOT, 3, "byte 3 is not 1 (a user1 image was expected)");
        if (i == 3 && (s->flags & FOTA_FWIMG_F_EXPECT_USER2) && h[3] != 2)
            return fail(s, FOTA_ESLOT, 3, "byte 3 is not 2 (a user2 image was expected)");
    }
    return 0;
}

static void first_header_done(struct fota_fwimg_stream *s)
{
    struct fota_fwimg_info *in = &s->info;
    const uint8_t *h = s->hdr;
    int app = (h[2] == 0 && (h[3] == 1 || h[3] == 2));

    in->byte2 = h[2];
    in->byte3 = h[3];
    in->entry = le32(h + 4);
    if (h[0] == 0xEA) {
        in->layout = FOTA_FWIMG_LAYOUT_V2;
        in->variant = app ? FOTA_FWIMG_VARIANT_NONOS2 : FOTA_FWIMG_VARIANT_LEGACY;
        s->state = ST_IROM_HDR;
    } else {
        in->layout = FOTA_FWIMG_LAYOUT_V1;
        in->nsegs = h[1];
        if (app)
            in->variant = FOTA_FWIMG_VARIANT_APP;
        else if (h[2] == 0 && h[3] == 0)
            in->variant = FOTA_FWIMG_VARIANT_SDK09;
        else {
            in->variant = FOTA_FWIMG_VARIANT_FLASHHDR;
            in->flash_mode = h[2];
            in->size_map = h[3] >> 4;
            in->flash_freq = h[3] & 0x0F;
        }
        s->state = ST_SEG_HDR;
    }
    if (app) {
        in->slot = (enum fota_fwimg_slot)h[3];
        in->slot_src = FOTA_FWIMG_SLOTSRC_BYTE3;
    }
}

/* The E9 header of a v2 image (in s->hdr) carries the flash parameters. */
static void second_header_done(struct fota_fwimg_stream *s)
{
    struct fota_fwimg_info *in = &s->info;

    in->nsegs = s->hdr[1];
    in->flash_mode = s->hdr[2];
    in->size_map = s->hdr[3] >> 4;
    in->flash_freq = s->hdr[3] & 0x0F;
    in->entry = le32(s->hdr + 4);
    s->state = ST_SEG_HDR;
}

/* After the last segment: pad to the checksum byte at (pos | 15). */
static void segments_done(struct fota_fwimg_stream *s)
{
    s->need = (s->pos | 15u) - s->pos;
    s->state = s->need ? ST_PAD : ST_CHK;
}

static void next_segment(struct fota_fwimg_stream *s)
{
    s->seg_i++;
    s->hdr_fill = 0;
    if (s->seg_i < s->info.nsegs)
        s->state = ST_SEG_HDR;
    else
        segments_done(s);
}

/* The tail after the checksum of an E9 image: either a 4-byte CRC, or 0xFF
 * padding up to 0x10000 followed by raw irom and a CRC (old layout). */
static int e9_tail(struct fota_fwimg_stream *s, const uint8_t *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        uint32_t off = s->pos + (uint32_t)i;
        s->tail_len++;
        if (off < FOTA_FWIMG_OLD_IROM_OFF && p[i] != 0xFF) {
            if (s->tail_len > 4)
                return fail(s, FOTA_EPROTO, off,
                            "data after the image (expected 0xFF padding up to 0x10000)");
            s->tail_ff = 0;
        }
        if (s->tail_len == 5) {
            if (!s->tail_ff || s->info.checksum_offset + 1 >= FOTA_FWIMG_OLD_IROM_OFF)
                return fail(s, FOTA_EPROTO, off,
                            "data after the image (expected a 4-byte CRC or 0xFF padding to 0x10000)");
        }
        if (s->tail_len > 4 && off >= FOTA_FWIMG_OLD_IROM_OFF) {
            s->tail_len += (uint32_t)(n - i - 1);   /* raw irom: nothing to check */
            break;
        }
    }
    s->pos += (uint32_t)n;
    return 0;
}

/* Runs the structure state machine over p[0..n). */
static int walk(struct fota_fwimg_stream *s, const uint8_t *p, size_t n)
{
    struct fota_fwimg_info *in = &s->info;
    size_t take;
    int rc;

    while (n > 0) {
        switch (s->state) {
        case ST_HDR: {
            uint8_t from = s->hdr_fill;
            take = collect(s, p, n);
            if ((rc = check_first(s, from)) < 0)
                return rc;
            s->pos += (uint32_t)take;
            if (s->hdr_fill == 8) {
                first_header_done(s);
                s->hdr_fill = 0;
            }
            break;
        }
        case ST_IROM_HDR:
            take = collect(s, p, n);
            s->pos += (uint32_t)take;
            if (s->hdr_fill < 8)
                break;
            s->hdr_fill = 0;
            if (s->hdr[0] == 0xE9 && s->hdr[1] >= 1 && s->hdr[1] <= FOTA_FWIMG_MAX_SEGS) {
                /* esptool --version 2 writes no irom header when there is no
                 * irom; gen_appbin and esptool write irom address 0, so a
                 * non-zero "address" starting E9 nn is the second header. */
                second_header_done(s);
                break;
            }
            in->irom_addr = le32(s->hdr);
            in->irom_len = le32(s->hdr + 4);
            in->irom_offset = s->pos;
            if (in->irom_len > FOTA_FWIMG_MAX_SIZE - s->pos)
                return fail(s, FOTA_ERANGE, s->pos - 4, "irom length beyond any flash");
            s->need = in->irom_len;
            s->state = s->need ? ST_IROM_DATA : ST_E9_HDR;
            break;
        case ST_IROM_DATA:
        case ST_PAD:
            take = n < s->need ? n : s->need;
            s->need -= (uint32_t)take;
            s->pos += (uint32_t)take;
            if (s->need == 0)
                s->state = (s->state == ST_PAD) ? ST_CHK : ST_E9_HDR;
            break;
        case ST_E9_HDR: {
            uint32_t at = s->pos - s->hdr_fill;
            take = collect(s, p, n);
            s->pos += (uint32_t)take;
            if (s->hdr[0] != 0xE9)
                return fail(s, FOTA_EMAGIC, at, "second header does not start with E9");
            if (s->hdr_fill >= 2 && (s->hdr[1] == 0 || s->hdr[1] > FOTA_FWIMG_MAX_SEGS))
                return fail(s, s->hdr[1] ? FOTA_ERANGE : FOTA_EMAGIC, at + 1,
                            "bad segment count in the second header");
            if (s->hdr_fill < 8)
                break;
            s->hdr_fill = 0;
            second_header_done(s);
            break;
        }
        case ST_SEG_HDR: {
            struct fota_fwimg_seg *sg = &in->segs[s->seg_i];
            take = collect(s, p, n);
            s->pos += (uint32_t)take;
            if (s->hdr_fill < 8)
                break;
            s->hdr_fill = 0;
            sg->addr = le32(s->hdr);
            sg->len = le32(s->hdr + 4);
            sg->offset = s->pos;
            if (sg->len > FOTA_FWIMG_MAX_SIZE - s->pos)
                return fail(s, FOTA_ERANGE, s->pos - 4, "segment length beyond any flash");
            s->need = sg->len;
            if (s->need)
                s->state = ST_SEG_DATA;
            else
                next_segment(s);
            break;
        }
        case ST_SEG_DATA: {
            size_t i;
            uint8_t x = s->xsum;
            take = n < s->need ? n : s->need;
            for (i = 0; i < take; i++)
                x ^= p[i];
            s->xsum = x;
            s->need -= (uint32_t)take;
            s->pos += (uint32_t)take;
            if (s->need == 0)
                next_segment(s);
            break;
        }
        case ST_CHK:
            in->checksum_offset = s->pos;
            in->checksum_stored = p[0];
            take = 1;
            s->pos++;
            s->state = ST_TAIL;
            break;
        case ST_TAIL:
        default:
            if (in->layout == FOTA_FWIMG_LAYOUT_V2) {
                if (s->tail_len + n > 4)
                    return fail(s, FOTA_EPROTO, s->pos + (4 - s->tail_len),
                                "data after the CRC");
                s->tail_len += (uint32_t)n;
                s->pos += (uint32_t)n;
                return 0;
            }
            return e9_tail(s, p, n);
        }
        p += take;
        n -= take;
    }
    return 0;
}

int fota_fwimg_update(struct fota_fwimg_stream *s, const void *data, size_t len)
{
    const uint8_t *p = data;
    uint32_t base = s->info.total_size;
    int rc;

    /* the first bytes are kept even after an error, for sniffing */
    if (s->info.head_len < FOTA_FWIMG_HEAD_LEN && len) {
        size_t h = FOTA_FWIMG_HEAD_LEN - s->info.head_len;
        if (h > len)
            h = len;
        memcpy(s->info.head + s->info.head_len, p, h);
        s->info.head_len += (uint32_t)h;
    }
    if (s->err)
        return s->err;
    if (len == 0)
        return 0;
    if (len > FOTA_FWIMG_MAX_SIZE - base)
        return fail(s, FOTA_ERANGE, FOTA_FWIMG_MAX_SIZE, "file larger than any flash");
    crc_window(s, p, len);
    if (!(s->flags & FOTA_FWIMG_F_NO_SHA256))
        fota_sha256_update(&s->sha, p, len);
    version_scan(s, p, len, base);
    s->info.total_size = base + (uint32_t)len;
    rc = walk(s, p, len);
    return rc;
}

static const char *trunc_what(int state)
{
    switch (state) {
    case ST_HDR:       return "truncated in the first header";
    case ST_IROM_HDR:  return "truncated in the irom header";
    case ST_IROM_DATA: return "truncated in the irom data";
    case ST_E9_HDR:    return "truncated in the second (E9) header";
    case ST_SEG_HDR:   return "truncated in a segment header";
    case ST_SEG_DATA:  return "truncated in segment data";
    case ST_PAD:       return "truncated before the checksum byte";
    default:           return "truncated before the checksum byte";
    }
}

/* Decides layout and CRC from the tail once the input has ended. */
static int finish_tail(struct fota_fwimg_stream *s)
{
    struct fota_fwimg_info *in = &s->info;
    uint32_t whole = crc_upd(s, s->crc, s->win, s->pos < 4 ? s->pos : 4);
    int crc_present, crc_optional;

    if (in->layout == FOTA_FWIMG_LAYOUT_V2) {
        if (s->tail_len < 4)
            return fail(s, FOTA_ETRUNC, s->pos,
                        s->tail_len ? "CRC truncated" : "CRC missing after the checksum byte");
        crc_present = 1;
    } else if (s->tail_len == 0) {
        crc_present = 0;
    } else if (s->tail_len < 4) {
        return fail(s, FOTA_ETRUNC, s->pos, "CRC truncated");
    } else if (s->tail_len == 4) {
        crc_present = 1;
    } else {
        if (s->pos <= FOTA_FWIMG_OLD_IROM_OFF)
            return fail(s, FOTA_ETRUNC, s->pos, "old layout: no irom after the 0xFF padding");
        in->layout = FOTA_FWIMG_LAYOUT_OLD;
        in->irom_offset = FOTA_FWIMG_OLD_IROM_OFF;
        /* gen_appbin >= SDK 1.1 (app byte) appends a CRC; SDK 0.9 and esptool
         * v1 flash images (0x00000.bin + 0xFF + 0x10000.bin) have none */
        crc_optional = in->variant == FOTA_FWIMG_VARIANT_SDK09 ||
                       in->variant == FOTA_FWIMG_VARIANT_FLASHHDR;
        crc_present = s->pos >= FOTA_FWIMG_OLD_IROM_OFF + 4 &&
                      (!crc_optional || fota_esp_crc_stored(s->crc) == le32(s->win));
        if (!crc_present && !crc_optional)
            return fail(s, FOTA_ETRUNC, s->pos, "CRC truncated");
        in->irom_len = s->pos - FOTA_FWIMG_OLD_IROM_OFF - (crc_present ? 4u : 0u);
    }
    if (crc_present) {
        in->crc_stored = le32(s->win);
        in->crc_computed = fota_esp_crc_stored(s->crc);
        in->crc_state = in->crc_stored == in->crc_computed ? FOTA_FWIMG_CRC_VALID
                                                           : FOTA_FWIMG_CRC_INVALID;
    } else {
        in->crc_stored = 0;
        in->crc_computed = fota_esp_crc_stored(whole);   /* what a CRC would be */
        in->crc_state = FOTA_FWIMG_CRC_ABSENT;
    }
    return 0;
}

int fota_fwimg_end(struct fota_fwimg_stream *s, struct fota_fwimg_info *out)
{
    struct fota_fwimg_info *in = &s->info;
    int rc = s->err;

    if (rc)
        goto out;
    in->checksum_computed = (uint8_t)(FOTA_FWIMG_CHECKSUM_INIT ^ s->xsum);
    if (s->state != ST_TAIL) {
        rc = fail(s, FOTA_ETRUNC, s->pos, s->pos ? trunc_what(s->state) : "empty file");
        goto out;
    }
    in->checksum_valid = in->checksum_stored == in->checksum_computed;
    if ((rc = finish_tail(s)) < 0)
        goto out;
    if (!(s->flags & FOTA_FWIMG_F_NO_SHA256)) {
        fota_sha256_final(&s->sha, in->sha256);
        in->has_sha256 = 1;
    }
    if (in->crc_state == FOTA_FWIMG_CRC_INVALID)
        rc = fail(s, FOTA_ECRC, s->pos - 4, "CRC mismatch");
    else if (!in->checksum_valid)
        rc = fail(s, FOTA_ECHECKSUM, in->checksum_offset, "segment checksum mismatch");
    else if (in->crc_state == FOTA_FWIMG_CRC_ABSENT && (s->flags & FOTA_FWIMG_F_REQUIRE_CRC))
        rc = fail(s, FOTA_ECRC, s->pos, "no CRC");
out:
    if (in->error && in->error != FOTA_ECRC && in->error != FOTA_ECHECKSUM) {
        /* only what does not depend on the chunking survives a structural error */
        in->total_size = in->error_offset;
        memset(in->version, 0, sizeof in->version);
        in->version_offset = 0;
    }
    if (out)
        *out = *in;
    return rc;
}

int fota_fwimg_parse_flags(const uint8_t *buf, size_t len, uint32_t flags,
                           struct fota_fwimg_info *out)
{
    struct fota_fwimg_stream s;

    fota_fwimg_begin(&s, flags);
    (void)fota_fwimg_update(&s, buf, len);
    return fota_fwimg_end(&s, out);
}

int fota_fwimg_parse(const uint8_t *buf, size_t len, struct fota_fwimg_info *out)
{
    return fota_fwimg_parse_flags(buf, len, 0, out);
}

int fota_fwimg_check_head(const uint8_t *buf, size_t len, int expected_slot)
{
    if (len >= 1 && buf[0] != 0xE9 && buf[0] != 0xEA)
        return FOTA_EMAGIC;
    if (len >= 2 && !((buf[0] == 0xE9 && buf[1] == 0x03) || (buf[0] == 0xEA && buf[1] == 0x04)))
        return FOTA_EMAGIC;
    if (len < 2 || (expected_slot && len < 4))
        return FOTA_EAGAIN;
    if (expected_slot && buf[3] != (uint8_t)expected_slot)
        return FOTA_ESLOT;
    return 0;
}

enum fota_fwimg_kind fota_fwimg_sniff(const uint8_t *buf, size_t len)
{
    size_t i = 0;

    if (len == 0)
        return FOTA_FWIMG_KIND_EMPTY;
    if ((buf[0] == 0xEA && (len < 2 || buf[1] == 0x04)) ||
        (buf[0] == 0xE9 && (len < 2 || (buf[1] >= 1 && buf[1] <= FOTA_FWIMG_MAX_SEGS))))
        return FOTA_FWIMG_KIND_IMAGE;
    if (len >= 4 && buf[0] == 'P' && buf[1] == 'K' &&
        ((buf[2] == 3 && buf[3] == 4) || (buf[2] == 5 && buf[3] == 6)))
        return FOTA_FWIMG_KIND_ZIP;
    if (len >= 2 && buf[0] == 0x1F && buf[1] == 0x8B)
        return FOTA_FWIMG_KIND_GZIP;
    if (len >= 4 && buf[0] == 0x7F && buf[1] == 'E' && buf[2] == 'L' && buf[3] == 'F')
        return FOTA_FWIMG_KIND_ELF;
    if (len >= 3 && buf[0] == 0xEF && buf[1] == 0xBB && buf[2] == 0xBF)
        i = 3;                                  /* UTF-8 BOM */
    while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'))
        i++;
    if (i < len && buf[i] == '<')
        return FOTA_FWIMG_KIND_HTML;
    return FOTA_FWIMG_KIND_OTHER;
}

/* Entry i of a name table, "unknown" outside it or on a hole. long holds every
 * value of the int and enum arguments below, negative ones included. */
static const char *name_at(const char *const *tab, size_t n, long i)
{
    return (i >= 0 && (size_t)i < n && tab[i]) ? tab[i] : "unknown";
}
#define NAME_AT(tab, i) name_at((tab), sizeof(tab) / sizeof((tab)[0]), (i))

const char *fota_fwimg_layout_name(enum fota_fwimg_layout layout)
{
    static const char *const t[] = { "unknown", "v2", "v1", "old" };
    return NAME_AT(t, layout);
}

const char *fota_fwimg_variant_name(enum fota_fwimg_variant variant)
{
    static const char *const t[] = { "none", "nonos2", "legacy", "app", "sdk09", "flashhdr" };
    return NAME_AT(t, variant);
}

const char *fota_fwimg_slot_name(enum fota_fwimg_slot slot)
{
    static const char *const t[] = { "unknown", "user1", "user2" };
    return NAME_AT(t, slot);
}

const char *fota_fwimg_slot_src_name(enum fota_fwimg_slot_src src)
{
    static const char *const t[] = { "none", "byte3", "name" };
    return NAME_AT(t, src);
}

const char *fota_fwimg_crc_state_name(enum fota_fwimg_crc_state state)
{
    static const char *const t[] = { "absent", "valid", "invalid" };
    return NAME_AT(t, state);
}

const char *fota_fwimg_kind_name(enum fota_fwimg_kind kind)
{
    static const char *const t[] = { "an empty file", "an ESP8266 image", "an HTML page",
                                     "a zip file", "a gzip file", "an ELF file",
                                     "not an ESP8266 image" };
    return NAME_AT(t, kind);
}

const char *fota_fwimg_flash_mode_name(int mode)
{
    static const char *const t[] = { "QIO", "QOUT", "DIO", "DOUT" };
    return NAME_AT(t, mode);
}

const char *fota_fwimg_flash_freq_name(int freq)
{
    static const char *const t[16] = { "40MHz", "26.7MHz", "20MHz", [15] = "80MHz" };
    return NAME_AT(t, freq);
}
