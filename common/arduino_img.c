/* arduino_img.c - validation of an Arduino-core .bin (eboot at 0, sketch at
 * 0x1000), the facts a device reports once it runs it, and the core's
 * refusal checks on a download's first bytes. One pass per image over the
 * caller's buffer; every bound is checked before a byte is read.
 * Reference arduino-ota §1 (layout), §4 (refusals), §10.1 (what to accept). */
#include "arduino_img.h"

#include <string.h>

#include "fota_err.h"

#define SEG_HDR_LEN 8u
#define IMG_HDR_LEN 8u
#define CSUM_INIT   0xEFu

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int fail(struct fota_arduino_img_info *out, int err, uint32_t off, const char *reason)
{
    out->error = err;
    out->error_offset = off;
    out->reason = reason;
    return err;
}

uint32_t fota_arduino_sketch_round(uint32_t seg_end)
{
    return (seg_end + 16u) & ~15u;
}

/* The XOR of buf[lo, hi) intersected with [a, b). */
static uint8_t xor_overlap(const uint8_t *buf, uint32_t lo, uint32_t hi, uint32_t a, uint32_t b)
{
    uint8_t x = 0;
    uint32_t i, s = lo > a ? lo : a, e = hi < b ? hi : b;

    for (i = s; i < e; i++)
        x ^= buf[i];
    return x;
}

/* Texts per image: [0] eboot, [1] sketch. */
static const char *const r_magic[2] = {
    "eboot image at 0: magic byte is not 0xE9",
    "sketch image at 0x1000: magic byte is not 0xE9"};
static const char *const r_nsegs[2] = {
    "eboot image: segment count is 0 or above 16",
    "sketch image: segment count is 0 or above 16"};
static const char *const r_seghdr[2] = {
    "eboot image: file ends inside a segment header",
    "sketch image: file ends inside a segment header"};
static const char *const r_segdata[2] = {
    "eboot image: a segment runs past the end of the file",
    "sketch image: a segment runs past the end of the file"};
static const char *const r_csumbyte[2] = {
    "eboot image: file ends before its checksum byte",
    "sketch image: file ends before its checksum byte"};

/* Walks the image whose header is at off. Bytes beyond len make the file
 * truncated; bytes beyond cap (eboot: 0x1000) are out of range. For the
 * sketch, *crcw_xor gets the XOR of the segment data bytes that lie in the
 * CRC words (0x1010-0x1017). */
static int walk(const uint8_t *buf, uint32_t len, uint32_t off, uint32_t cap, int which,
                struct fota_arduino_part *p, uint8_t *crcw_xor,
                struct fota_arduino_img_info *out)
{
    uint32_t pos, i, seglen;
    uint8_t x = CSUM_INIT, wx = 0;
    /* Past the cap but inside the file: the eboot overlaps the sketch. */
    const int over = which == 0 && cap == FOTA_ARDUINO_SKETCH_OFF;
    const uint32_t wa = FOTA_ARDUINO_CRCW_OFF, wb = FOTA_ARDUINO_CRCW_OFF + FOTA_ARDUINO_CRCW_LEN;

    p->offset = off;
    if (len - off < IMG_HDR_LEN)
        return fail(out, FOTA_ETRUNC, off, which ? "file ends inside the sketch header at 0x1000"
                                                 : "file ends inside the eboot header");
    if (buf[off] != FOTA_ARDUINO_MAGIC)
        return fail(out, FOTA_EMAGIC, off, (which == 0 && buf[0] == 0x1F && buf[1] == 0x8B)
                                               ? "gzip data where a plain image was expected"
                                               : r_magic[which]);
    p->nsegs = buf[off + 1];
    p->mode_byte = buf[off + 2];
    p->size_freq = buf[off + 3];
    p->entry = le32(buf + off + 4);
    if (p->nsegs == 0 || p->nsegs > FOTA_ARDUINO_MAX_SEGS)
        return fail(out, FOTA_ERANGE, off + 1, r_nsegs[which]);
    pos = off + IMG_HDR_LEN;
    for (i = 0; i < p->nsegs; i++) {
        if (cap - pos < SEG_HDR_LEN)
            return fail(out, over ? FOTA_ERANGE : FOTA_ETRUNC, pos,
                        over ? "eboot image: a segment header lies beyond 0x1000"
                                  : r_seghdr[which]);
        seglen = le32(buf + pos + 4);
        pos += SEG_HDR_LEN;
        if (seglen > cap - pos)
            return fail(out, over ? FOTA_ERANGE : FOTA_ETRUNC, pos - 4,
                        over ? "eboot image: a segment runs past 0x1000"
                                  : r_segdata[which]);
        for (uint32_t k = pos; k < pos + seglen; k++)
            x ^= buf[k];
        wx ^= xor_overlap(buf, pos, pos + seglen, wa, wb);
        pos += seglen;
    }
    p->seg_end = pos;
    p->end = fota_arduino_sketch_round(pos);
    p->checksum_computed = x;
    if (p->end > cap)
        return fail(out, over ? FOTA_ERANGE : FOTA_ETRUNC, pos,
                    over ? "eboot image: its checksum byte lies beyond 0x1000"
                              : r_csumbyte[which]);
    p->checksum_stored = buf[p->end - 1];
    if (crcw_xor)
        *crcw_xor = wx;
    return 0;
}

static int size_code_known(unsigned code)
{
    return code <= 4 || code == 8 || code == 9;
}

static void check_crc_words(const uint8_t *buf, uint32_t len, struct fota_arduino_img_info *out)
{
    static const uint8_t zero[FOTA_ARDUINO_CRCW_LEN];
    const uint32_t w = FOTA_ARDUINO_CRCW_OFF, we = w + FOTA_ARDUINO_CRCW_LEN;
    uint32_t crc = 0xFFFFFFFFu;

    out->crc_len_word = le32(buf + w);
    out->crc_val_word = le32(buf + w + 4);
    crc = fota_arduino_crc_update(crc, buf, w);
    crc = fota_arduino_crc_update(crc, zero, sizeof zero);
    crc = fota_arduino_crc_update(crc, buf + we, len - we);
    out->crc_computed = crc;
    if (out->crc_len_word == 0 && out->crc_val_word == 0)
        out->crc_words = FOTA_ARDUINO_CRCW_ABSENT;
    else if (out->crc_len_word == len && out->crc_val_word == crc)
        out->crc_words = FOTA_ARDUINO_CRCW_VALID;
    else
        out->crc_words = FOTA_ARDUINO_CRCW_MISMATCH;
}

int fota_arduino_img_parse(const uint8_t *buf, size_t len, struct fota_arduino_img_info *out)
{
    uint32_t n;
    uint8_t crcw_xor = 0;
    int rc;

    memset(out, 0, sizeof *out);
    out->flash_mode = -1;
    out->size_code = -1;
    out->freq_code = -1;
    if (len > FOTA_ARDUINO_MAX_SIZE) {
        out->file_len = FOTA_ARDUINO_MAX_SIZE;
        return fail(out, FOTA_ERANGE, FOTA_ARDUINO_MAX_SIZE, "file is larger than 16 MB");
    }
    n = (uint32_t)len;
    out->file_len = n;
    if (n == 0)
        return fail(out, FOTA_ETRUNC, 0, "file is empty");

    rc = walk(buf, n, 0, n < FOTA_ARDUINO_SKETCH_OFF ? n : FOTA_ARDUINO_SKETCH_OFF, 0,
              &out->eboot, NULL, out);
    if (rc)
        return rc;
    out->flash_mode = buf[2];
    out->size_code = buf[3] >> 4;
    out->freq_code = buf[3] & 15;
    out->flash_size = fota_arduino_flash_size((unsigned)out->size_code);
    if (out->eboot.checksum_stored != out->eboot.checksum_computed)
        return fail(out, FOTA_ECHECKSUM, out->eboot.end - 1, "eboot image: checksum mismatch");
    if (out->flash_mode > 3)
        return fail(out, FOTA_EINVAL, 2, "flash mode (byte 2) is not 0-3 (qio, qout, dio, dout)");
    if (!size_code_known((unsigned)out->size_code))
        return fail(out, FOTA_EINVAL, 3,
                    "flash size code (byte 3, high nibble) is not one of 0,1,2,3,4,8,9");
    if (n < FOTA_ARDUINO_SKETCH_OFF)
        return fail(out, FOTA_ETRUNC, n, "file ends before the sketch image at 0x1000");

    rc = walk(buf, n, FOTA_ARDUINO_SKETCH_OFF, n, 1, &out->sketch, &crcw_xor, out);
    if (rc)
        return rc;
    out->sketch_size = out->sketch.end;
    out->trailing = n - out->sketch.end;
    /* A sketch walk that succeeded covers 0x1000 + 8 + 8 bytes and the
     * rounding adds at least one more: the CRC words are inside the file. */
    check_crc_words(buf, n, out);
    if (out->sketch.checksum_stored == out->sketch.checksum_computed)
        out->sketch_csum = FOTA_ARDUINO_CSUM_STORED;
    else if (out->sketch.checksum_stored == (uint8_t)(out->sketch.checksum_computed ^ crcw_xor))
        out->sketch_csum = FOTA_ARDUINO_CSUM_CRC_ZEROED;
    else
        return fail(out, FOTA_ECHECKSUM, out->sketch.end - 1,
                    "sketch image: checksum mismatch (also with 0x1010-0x1017 zeroed)");
    return 0;
}

uint32_t fota_arduino_flash_size(unsigned size_code)
{
    switch (size_code) {
    case 0: return 512u << 10;
    case 1: return 256u << 10;
    case 2: return 1u << 20;
    case 3: return 2u << 20;
    case 4: return 4u << 20;
    case 8: return 8u << 20;
    case 9: return 16u << 20;
    default: return 0;
    }
}

static const char *const mode_names[4] = {"qio", "qout", "dio", "dout"};

const char *fota_arduino_flash_mode_name(int mode)
{
    return mode >= 0 && mode < 4 ? mode_names[mode] : "unknown";
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

int fota_arduino_flash_mode_parse(const char *name)
{
    int m;

    if (!name)
        return -1;
    for (m = 0; m < 4; m++) {
        const char *a = name, *b = mode_names[m];
        while (*a && *b && lower((unsigned char)*a) == *b) {
            a++;
            b++;
        }
        if (!*a && !*b)
            return m;
    }
    return -1;
}

/* MSB-first CRC-32 (polynomial 0x04C11DB7), a nibble at a time. */
static const uint32_t crc_nib[16] = {
    0x00000000u, 0x04C11DB7u, 0x09823B6Eu, 0x0D4326D9u, 0x130476DCu, 0x17C56B6Bu,
    0x1A864DB2u, 0x1E475005u, 0x2608EDB8u, 0x22C9F00Fu, 0x2F8AD6D6u, 0x2B4BCB61u,
    0x350C9B64u, 0x31CD86D3u, 0x3C8EA00Au, 0x384FBDBDu};

uint32_t fota_arduino_crc_update(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = data;
    size_t i;

    for (i = 0; i < len; i++) {
        crc = (crc << 4) ^ crc_nib[((crc >> 28) ^ (uint32_t)(p[i] >> 4)) & 15u];
        crc = (crc << 4) ^ crc_nib[((crc >> 28) ^ (uint32_t)(p[i] & 15u)) & 15u];
    }
    return crc;
}

enum fota_arduino_verdict fota_arduino_device_verdict(const uint8_t *head, size_t head_len,
                                                      uint64_t content_length,
                                                      uint32_t free_space, uint32_t chip_size,
                                                      int accepts_gzip)
{
    if (content_length == 0)
        return FOTA_ARDUINO_NO_SIZE;
    if (content_length > free_space)
        return FOTA_ARDUINO_TOO_LESS_SPACE;
    if (head_len < FOTA_ARDUINO_HEAD_LEN || content_length < FOTA_ARDUINO_HEAD_LEN)
        return FOTA_ARDUINO_BAD_HEADER;
    if (head[0] == FOTA_ARDUINO_MAGIC)
        return fota_arduino_flash_size((unsigned)head[3] >> 4) > chip_size
                   ? FOTA_ARDUINO_WRONG_FLASH : FOTA_ARDUINO_ACCEPT;
    if (head[0] == 0x1F && accepts_gzip)
        return FOTA_ARDUINO_ACCEPT;
    return FOTA_ARDUINO_BAD_HEADER;
}

const char *fota_arduino_verdict_string(int verdict)
{
    switch (verdict) {
    case FOTA_ARDUINO_ACCEPT: return "";
    case FOTA_ARDUINO_TOO_LESS_SPACE: return "Not Enough space";
    case FOTA_ARDUINO_NO_SIZE: return "Server Did Not Report Size";
    case FOTA_ARDUINO_BAD_HEADER: return "Verify Bin Header Failed";
    case FOTA_ARDUINO_WRONG_FLASH: return "New Binary Does Not Fit Flash Size";
    default: return "unknown";
    }
}
