/* arduino_gz.c - the gzip container an Arduino-core fleet flashes: checked
 * the way eboot reads it (one member, ISIZE in the file's last 4 bytes) and
 * written at the best level with zlib's gzip wrapper, plus the rule that keeps
 * eboot's inflate from overrunning its own source (§6.1). */
#include "arduino_file.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "fota_err.h"
#include "xmalloc.h"

#define GZ_MIN_LEN 18u /* 10-byte header + empty deflate block + 8-byte trailer, roughly */

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int inflate_fail(z_stream *z, uint8_t **buf, int err, const char **reason, const char *r)
{
    inflateEnd(z);
    free(*buf);
    *buf = NULL;
    *reason = r;
    return err;
}

static const char *zlib_reason(const z_stream *z)
{
    if (z->msg && strcmp(z->msg, "incorrect length check") == 0)
        return "gzip ISIZE (the last 4 bytes) is not the inflated length";
    if (z->msg && strcmp(z->msg, "incorrect data check") == 0)
        return "gzip CRC-32 does not match the inflated data";
    if (z->msg && strcmp(z->msg, "incorrect header check") == 0)
        return "gzip header is broken";
    if (z->msg && strcmp(z->msg, "unknown compression method") == 0)
        return "gzip compression method is not deflate";
    return "gzip data is corrupt (deflate stream error)";
}

int fota_arduino_gz_inflate(const uint8_t *gz, size_t len, size_t max_out,
                            uint8_t **out, size_t *out_len, const char **reason)
{
    z_stream z;
    uint8_t *buf = NULL;
    size_t cap, isize;
    int zr;

    *out = NULL;
    *out_len = 0;
    if (len < 2 || gz[0] != 0x1F || gz[1] != 0x8B) {
        *reason = "not gzip data (does not start with 1f 8b)";
        return FOTA_EMAGIC;
    }
    if (len < GZ_MIN_LEN) {
        *reason = "gzip file is truncated";
        return FOTA_ETRUNC;
    }
    if (len > UINT32_MAX) {
        *reason = "gzip file is too large";
        return FOTA_ETOOBIG;
    }
    /* Start from ISIZE (one extra byte shows a longer output); grow only if
     * it lied, so a second member or a wrong ISIZE is reported as such. */
    isize = le32(gz + len - 4);
    cap = (isize < max_out ? isize : max_out) + 1;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
        *reason = "inflate could not start";
        return FOTA_EIO;
    }
    buf = fota_xmalloc(cap);
    z.next_in = (Bytef *)(uintptr_t)gz;
    z.avail_in = (uInt)len;
    z.next_out = buf;
    z.avail_out = (uInt)cap;
    for (;;) {
        zr = inflate(&z, Z_NO_FLUSH);
        if (zr == Z_STREAM_END)
            break;
        if (zr == Z_OK && z.avail_out == 0) {
            size_t have = cap;
            if (cap > max_out)
                return inflate_fail(&z, &buf, FOTA_ETOOBIG, reason,
                                    "gzip data inflates to more than 16 MB");
            cap = cap * 2 < max_out + 1 ? cap * 2 : max_out + 1;
            buf = fota_xrealloc(buf, cap);
            z.next_out = buf + have;
            z.avail_out = (uInt)(cap - have);
            continue;
        }
        if (zr == Z_OK)
            continue;
        if (zr == Z_BUF_ERROR && z.avail_in == 0)
            return inflate_fail(&z, &buf, FOTA_ETRUNC, reason,
                                "gzip file ends inside its compressed data");
        return inflate_fail(&z, &buf, FOTA_EPROTO, reason, zlib_reason(&z));
    }
    if (z.avail_in != 0)
        return inflate_fail(&z, &buf, FOTA_EPROTO, reason,
                            z.avail_in >= 2 && z.next_in[0] == 0x1F && z.next_in[1] == 0x8B
                                ? "gzip file has more than one member (eboot inflates one)"
                                : "bytes follow the gzip member (eboot takes ISIZE from the "
                                  "file's last 4 bytes)");
    if (z.total_out > max_out)
        return inflate_fail(&z, &buf, FOTA_ETOOBIG, reason, "gzip data inflates to more than 16 MB");
    /* zlib checked the member's own ISIZE; the member ends the file, so the
     * last 4 bytes are that ISIZE. */
    if ((uint32_t)z.total_out != isize)
        return inflate_fail(&z, &buf, FOTA_EPROTO, reason,
                            "gzip ISIZE (the last 4 bytes) is not the inflated length");
    *out_len = z.total_out;
    inflateEnd(&z);
    *out = buf;
    return 0;
}

int fota_arduino_gz_compress(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len)
{
    z_stream z;
    uint8_t *buf;
    uLong bound;
    int zr;

    *out = NULL;
    *out_len = 0;
    if (len > UINT32_MAX)
        return FOTA_EIO;
    memset(&z, 0, sizeof z);
    /* windowBits 15 + 16: a gzip header and trailer (mtime 0, no name);
     * memLevel 8 as Python's gzip (elf2bin.py -g) uses. */
    if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return FOTA_EIO;
    bound = deflateBound(&z, (uLong)len);
    buf = fota_xmalloc(bound);
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    z.next_out = buf;
    z.avail_out = (uInt)bound;
    zr = deflate(&z, Z_FINISH);
    if (zr != Z_STREAM_END) {
        deflateEnd(&z);
        free(buf);
        return FOTA_EIO;
    }
    *out_len = z.total_out;
    deflateEnd(&z);
    *out = buf;
    return 0;
}

static uint64_t round4k(uint64_t n)
{
    return (n + 4095u) & ~(uint64_t)4095u;
}

int fota_arduino_gz_fits(uint64_t inflated_len, uint64_t gz_len, uint64_t free_space,
                         uint64_t sketch_size)
{
    return inflated_len + round4k(gz_len) <= free_space + round4k(sketch_size);
}
