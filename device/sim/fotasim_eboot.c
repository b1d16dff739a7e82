/* fotasim_eboot.c - an Arduino-core device between power on and its
 * sketch: eboot's copy_raw of a staged image (zlib inflates what uzlib
 * would: a gzip member, ISIZE from the last four staged bytes, the tail of
 * the last sector filled with 0xFF), the ROM loader's checksum test of
 * eboot at 0, eboot's segment walk of the sketch at 0x1000, and the
 * sketch's getSketchSize / getSketchMD5 and embedded version. */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <zlib.h>

#include "fota_str.h"
#include "fotasim_eboot.h"
#include "hex.h"

#define SEC 4096u

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Erases and writes one destination sector (sector 0 only when it differs). */
static int put_sector(const struct fotadev_flash_ops *f, uint32_t daddr, const uint8_t *buf)
{
    if (daddr == 0) {
        uint8_t *cur = malloc(SEC);
        int same = cur && f->read(f->ud, 0, cur, SEC) == 0 && memcmp(cur, buf, SEC) == 0;
        free(cur);
        if (same)
            return 0;
    }
    if (f->erase(f->ud, daddr / SEC) < 0 || f->write(f->ud, daddr, buf, SEC) < 0)
        return FOTA_EIO;
    return 0;
}

static int copy_plain(const struct fotadev_flash_ops *f, const struct fotasim_ebcmd *c, uint8_t *buf)
{
    uint32_t left = (c->size + SEC - 1) & ~(SEC - 1), s = c->src, d = c->dst;
    for (; left > 0; left -= SEC, s += SEC, d += SEC) {
        if (f->read(f->ud, s, buf, SEC) < 0 || put_sector(f, d, buf) < 0)
            return FOTA_EIO;
    }
    return 0;
}

/* The gzip path: the staged bytes are the source stream, read from flash. */
static int copy_gzip(const struct fotadev_flash_ops *f, const struct fotasim_ebcmd *c, uint8_t *buf)
{
    uint8_t in[SEC], tail[4];
    uint32_t left, s = c->src, end = c->src + c->size, d = c->dst;
    z_stream z;
    int rc = 0, zr = Z_OK;

    if (c->size < 4 || f->read(f->ud, c->src + c->size - 4, tail, 4) < 0)
        return FOTA_EIO;
    left = rd32(tail);                           /* ISIZE, or whatever ends the staged bytes */
    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
        return FOTA_EPROTO;
    while (left > 0 && rc == 0) {
        uint32_t want = left < SEC ? left : SEC;
        z.next_out = buf;
        z.avail_out = want;
        while (z.avail_out > 0 && zr != Z_STREAM_END) {
            if (z.avail_in == 0) {
                uint32_t n = end - s < SEC ? end - s : SEC;
                if (n == 0 || f->read(f->ud, s, in, n) < 0) {
                    rc = n == 0 ? FOTA_EPROTO : FOTA_EIO;
                    break;
                }
                s += n;
                z.next_in = in;
                z.avail_in = n;
            }
            zr = inflate(&z, Z_NO_FLUSH);
            if (zr != Z_OK && zr != Z_STREAM_END) {
                rc = FOTA_EPROTO;
                break;
            }
        }
        memset(buf + (want - z.avail_out), 0xFF, SEC - (want - z.avail_out));
        if (rc == 0 && put_sector(f, d, buf) < 0)
            rc = FOTA_EIO;
        d += SEC;
        left -= want;
        if (zr == Z_STREAM_END && left > 0 && rc == 0)
            memset(buf, 0xFF, SEC);             /* ISIZE beyond the data: erased tail */
    }
    inflateEnd(&z);
    return rc;
}

int fotasim_eboot_copy(const struct fotadev_flash_ops *f, const struct fotasim_ebcmd *cmd)
{
    uint8_t *buf = malloc(SEC), head[2];
    int rc;

    if (!buf)
        return FOTA_ENOMEM;
    if ((cmd->src % SEC) || (cmd->dst % SEC) || f->read(f->ud, cmd->src, head, 2) < 0)
        rc = FOTA_EIO;
    else if (head[0] == 0x1F && head[1] == 0x8B)
        rc = copy_gzip(f, cmd, buf);
    else
        rc = copy_plain(f, cmd, buf);
    free(buf);
    return rc;
}

long fotasim_eboot_walk(const struct fotadev_flash_ops *f, uint32_t addr, uint32_t max, int checksum)
{
    uint8_t h[8], chunk[256], xs = 0xEF;
    uint32_t pos = addr + 8, i, nseg;

    if (f->read(f->ud, addr, h, 8) < 0 || h[0] != 0xE9 || h[1] == 0 || h[1] > 16)
        return -1;
    nseg = h[1];
    for (i = 0; i < nseg; i++) {
        uint32_t len, k;
        if (pos + 8 > max || f->read(f->ud, pos, h, 8) < 0)
            return -1;
        len = rd32(h + 4);
        pos += 8;
        if (len > max - pos)
            return -1;
        for (k = 0; checksum && k < len; k += (uint32_t)sizeof(chunk)) {
            uint32_t n = len - k < sizeof(chunk) ? len - k : (uint32_t)sizeof(chunk), j;
            if (f->read(f->ud, pos + k, chunk, n) < 0)
                return -1;
            for (j = 0; j < n; j++)
                xs ^= chunk[j];
        }
        pos += len;
    }
    if (checksum) {
        uint32_t at = pos | 0x0Fu;               /* the last byte of the 16-byte block */
        if (at >= max || f->read(f->ud, at, chunk, 1) < 0 || chunk[0] != xs)
            return -1;
    }
    return (long)pos;
}

/* The first FOTAVER: marker at or after index `from` of buf[0, n) (buf[0]
 * is at flash address base): 1 when found and whole (or at the end). */
static int find_version(const uint8_t *buf, size_t n, uint32_t base, uint32_t from, int last,
                        char *out, size_t cap)
{
    static const char mark[] = "FOTAVER:";
    const uint8_t *p = buf, *end = buf + n;
    while ((p = memchr(p, 'F', (size_t)(end - p))) != NULL) {
        size_t avail = (size_t)(end - p);
        if (base + (uint32_t)(p - buf) >= from && avail >= sizeof(mark) - 1 &&
            memcmp(p, mark, sizeof(mark) - 1) == 0) {
            if (avail < sizeof(mark) - 1 + cap && !last)
                return 0;                        /* finish it with the next chunk */
            fota_str_copy_n(out, cap, (const char *)p + 8, avail - 8 < cap - 1 ? avail - 8 : cap - 1);
            return 1;
        }
        p++;
    }
    return 0;
}

/* MD5 of flash [0, size) and the FOTAVER: marker in [from, size). */
static int scan_sketch(const struct fotadev_flash_ops *f, uint32_t from, uint32_t size,
                       struct fotasim_sketch_info *out)
{
    enum { KEEP = 8 + FOTASIM_VERSION_MAX };
    uint8_t buf[KEEP + SEC], d[16];
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint32_t pos = 0;
    size_t carry = 0;
    int found = 0, rc = -1;

    if (!md || !EVP_DigestInit_ex(md, EVP_md5(), NULL))
        goto out;
    while (pos < size) {
        uint32_t n = size - pos < SEC ? size - pos : SEC;
        size_t total = carry + n, keep;
        if (f->read(f->ud, pos, buf + carry, n) < 0)
            goto out;
        EVP_DigestUpdate(md, buf + carry, n);
        if (!found && pos + n > from)
            found = find_version(buf, total, pos - (uint32_t)carry, from, pos + n == size,
                                 out->version, sizeof(out->version));
        keep = total < KEEP ? total : KEEP;
        memmove(buf, buf + total - keep, keep);
        carry = keep;
        pos += n;
    }
    EVP_DigestFinal_ex(md, d, NULL);
    fota_hex_encode(d, sizeof(d), out->md5);
    rc = 0;
out:
    EVP_MD_CTX_free(md);
    return rc;
}

int fotasim_eboot_sketch(const struct fotadev_flash_ops *f, uint32_t flash_size,
                         struct fotasim_sketch_info *out)
{
    uint8_t h[4];
    long end;

    memset(out, 0, sizeof(*out));
    /* the ROM loader boots only the image at 0 (eboot) and checks it */
    if (fotasim_eboot_walk(f, 0, FOTASIM_SKETCH_ADDR, 1) < 0 || f->read(f->ud, 0, h, 4) < 0)
        return -1;
    out->flash_mode = h[2];
    out->size_code = (uint8_t)(h[3] >> 4);
    /* eboot's load_app_from_flash_raw: a walk, no checksum */
    if ((end = fotasim_eboot_walk(f, FOTASIM_SKETCH_ADDR, flash_size, 0)) < 0)
        return -1;
    out->size = ((uint32_t)end + 16) & ~15u;    /* (pos + 16) & ~15 */
    if (out->size > flash_size)
        out->size = flash_size;
    return scan_sketch(f, FOTASIM_SKETCH_ADDR, out->size, out);
}
