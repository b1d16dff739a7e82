/* backup_tar.c - the ustar header codec of the backup archive (backup_tar.h):
 * octal fields, GNU base-256 sizes, the header checksum. */
#include "backup_tar.h"

#include <string.h>

#include "fota_err.h"

enum {
    OFF_NAME = 0,
    OFF_MODE = 100,
    OFF_UID = 108,
    OFF_GID = 116,
    OFF_SIZE = 124,
    OFF_MTIME = 136,
    OFF_CHKSUM = 148,
    OFF_TYPE = 156,
    OFF_MAGIC = 257,
    OFF_VERSION = 263,
    OFF_PREFIX = 345,
    LEN_NAME = 100,
    LEN_PREFIX = 155
};

/* width-1 octal digits, zero-padded, then NUL. 0, or -1 if v does not fit. */
static int put_octal(uint8_t *f, size_t width, uint64_t v)
{
    for (size_t i = width - 1; i-- > 0;) {
        f[i] = (uint8_t)('0' + (v & 7));
        v >>= 3;
    }
    f[width - 1] = '\0';
    return v == 0 ? 0 : -1;
}

/* GNU base-256: 0x80 in the first byte, then the value big-endian. */
static void put_base256(uint8_t *f, size_t width, uint64_t v)
{
    for (size_t i = width; i-- > 1;) {
        f[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
    f[0] = 0x80;
}

static unsigned checksum(const uint8_t *h)
{
    unsigned sum = 0;
    for (size_t i = 0; i < FOTA_TAR_BLOCK; i++)
        sum += (i >= OFF_CHKSUM && i < OFF_CHKSUM + 8) ? (unsigned)' ' : h[i];
    return sum;
}

/* The same sum with bytes read as signed chars (some old writers). */
static int checksum_signed(const uint8_t *h)
{
    int sum = 0;
    for (size_t i = 0; i < FOTA_TAR_BLOCK; i++)
        sum += (i >= OFF_CHKSUM && i < OFF_CHKSUM + 8) ? ' ' : (int)(signed char)h[i];
    return sum;
}

int fota_tar_header_make(uint8_t hdr[FOTA_TAR_BLOCK], const char *name, uint64_t size,
                         unsigned mode, int64_t mtime)
{
    size_t n = strlen(name);

    if (n == 0 || n >= LEN_NAME || mtime < 0)
        return FOTA_EINVAL;
    memset(hdr, 0, FOTA_TAR_BLOCK);
    memcpy(hdr + OFF_NAME, name, n);
    put_octal(hdr + OFF_MODE, 8, mode & 07777);
    put_octal(hdr + OFF_UID, 8, 0);
    put_octal(hdr + OFF_GID, 8, 0);
    if (put_octal(hdr + OFF_SIZE, 12, size) != 0)
        put_base256(hdr + OFF_SIZE, 12, size);
    if (put_octal(hdr + OFF_MTIME, 12, (uint64_t)mtime) != 0)
        put_base256(hdr + OFF_MTIME, 12, (uint64_t)mtime);
    hdr[OFF_TYPE] = '0';
    memcpy(hdr + OFF_MAGIC, "ustar", 6);
    memcpy(hdr + OFF_VERSION, "00", 2);
    /* six octal digits, NUL, space: the historical form every reader takes */
    put_octal(hdr + OFF_CHKSUM, 7, checksum(hdr));
    hdr[OFF_CHKSUM + 7] = ' ';
    return 0;
}

/* An octal field: leading spaces, digits, then NUL or spaces to the end;
 * or base-256 (first byte 0x80, value < 2^63). 0 or -1. */
static int get_number(const uint8_t *f, size_t width, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;

    if (f[0] == 0x80) {
        for (i = 1; i < width; i++) {
            if (v >> 55)
                return -1;
            v = (v << 8) | f[i];
        }
        *out = v;
        return 0;
    }
    while (i < width && f[i] == ' ')
        i++;
    size_t digits = 0;
    for (; i < width && f[i] >= '0' && f[i] <= '7'; i++, digits++) {
        if (v >> 60)
            return -1;
        v = (v << 3) | (uint64_t)(f[i] - '0');
    }
    for (; i < width; i++)
        if (f[i] != '\0' && f[i] != ' ')
            return -1;
    if (digits == 0)
        return -1;
    *out = v;
    return 0;
}

/* Copies a NUL-padded text field (it may fill the field without a NUL). */
static size_t get_text(const uint8_t *f, size_t width, char *out)
{
    size_t n = 0;
    while (n < width && f[n])
        n++;
    memcpy(out, f, n);
    out[n] = '\0';
    return n;
}

int fota_tar_header_parse(const uint8_t hdr[FOTA_TAR_BLOCK], struct fota_tar_entry *e)
{
    uint64_t v, sum;
    size_t i;

    for (i = 0; i < FOTA_TAR_BLOCK && hdr[i] == 0; i++)
        ;
    if (i == FOTA_TAR_BLOCK)
        return 1;
    /* POSIX "ustar\0" "00", or GNU "ustar " " \0" */
    if (memcmp(hdr + OFF_MAGIC, "ustar", 5) != 0 ||
        (hdr[OFF_MAGIC + 5] != '\0' && hdr[OFF_MAGIC + 5] != ' '))
        return FOTA_EMAGIC;
    if (get_number(hdr + OFF_CHKSUM, 8, &sum) != 0)
        return FOTA_ECHECKSUM;
    if (sum != checksum(hdr) && (int64_t)sum != (int64_t)checksum_signed(hdr))
        return FOTA_ECHECKSUM;
    memset(e, 0, sizeof(*e));
    size_t np = get_text(hdr + OFF_PREFIX, LEN_PREFIX, e->name);
    if (np > 0)
        e->name[np++] = '/';
    if (get_text(hdr + OFF_NAME, LEN_NAME, e->name + np) == 0)
        return FOTA_EPROTO;
    if (get_number(hdr + OFF_SIZE, 12, &e->size) != 0)
        return FOTA_EPROTO;
    if (get_number(hdr + OFF_MODE, 8, &v) != 0)
        return FOTA_EPROTO;
    e->mode = (unsigned)(v & 07777);
    if (get_number(hdr + OFF_MTIME, 12, &v) != 0 || v > INT64_MAX)
        return FOTA_EPROTO;
    e->mtime = (int64_t)v;
    e->type = hdr[OFF_TYPE] ? (char)hdr[OFF_TYPE] : '0';
    return 0;
}
