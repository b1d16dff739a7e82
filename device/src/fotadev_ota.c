/* fotadev_ota.c - streams a firmware image into the inactive slot: the
 * shared codec (common/fwimg.h) judges the bytes before they are written;
 * this file erases lazily, writes 4-byte aligned, reads back, and checks
 * the CRC again from flash at the end (as upgrade_crc_check does). */
#include <string.h>

#include "fotadev.h"

#define OTA_CHUNK 64u

int fotadev_ota_begin(struct fotadev_ota *o, const struct fotadev_flash_ops *f,
                      const struct fotadev_layout *lay, int slot)
{
    if (!f || !lay || (slot != FOTADEV_SLOT_USER1 && slot != FOTADEV_SLOT_USER2))
        return FOTA_EINVAL;
    memset(o, 0, sizeof(*o));
    o->flash = *f;
    o->slot = slot;
    o->base = lay->slot_addr[slot];
    o->limit = lay->slot_size;
    fota_fwimg_begin(&o->img, FOTA_FWIMG_F_NO_SHA256 | FOTA_FWIMG_F_REQUIRE_CRC |
                                  (slot == FOTADEV_SLOT_USER1 ? FOTA_FWIMG_F_EXPECT_USER1
                                                              : FOTA_FWIMG_F_EXPECT_USER2));
    fota_fwimg_set_crc(&o->img, f->crc32);
    return 0;
}

static int fail(struct fotadev_ota *o, int err)
{
    if (!o->err)
        o->err = err;
    return o->err;
}

/* Makes sure [base, base + end) is erased. */
static int erase_to(struct fotadev_ota *o, uint32_t end)
{
    int rc;
    if (end > o->limit)
        return FOTA_ETOOBIG;
    while (o->erased < end) {
        rc = o->flash.erase(o->flash.ud, (uint16_t)((o->base + o->erased) / FOTADEV_SECTOR));
        if (rc < 0)
            return FOTA_EIO;
        o->erased += FOTADEV_SECTOR;
    }
    return 0;
}

int fotadev_ota_erase(struct fotadev_ota *o, uint32_t len)
{
    int rc;
    if (o->err)
        return o->err;
    rc = erase_to(o, (len + FOTADEV_SECTOR - 1) / FOTADEV_SECTOR * FOTADEV_SECTOR);
    return rc < 0 ? fail(o, rc) : 0;
}

/* Writes n (multiple of 4) bytes at image offset off, then reads them back. */
static int write_verify(struct fotadev_ota *o, uint32_t off, const uint8_t *p, uint32_t n)
{
    uint8_t back[OTA_CHUNK];
    int rc;
    if ((rc = erase_to(o, (off + n + FOTADEV_SECTOR - 1) / FOTADEV_SECTOR * FOTADEV_SECTOR)) < 0)
        return rc;
    if (o->flash.write(o->flash.ud, o->base + off, p, n) < 0)
        return FOTA_EIO;
    if (o->flash.read(o->flash.ud, o->base + off, back, n) < 0 || memcmp(back, p, n) != 0)
        return FOTA_EIO;
    return 0;
}

int fotadev_ota_update(struct fotadev_ota *o, const void *data, size_t len)
{
    const uint8_t *p = data;
    uint8_t stage[OTA_CHUNK];
    int rc;

    if (o->err)
        return o->err;
    if (len > o->limit - o->fed)
        return fail(o, FOTA_ETOOBIG);
    /* the codec sees the bytes first: a bad magic or slot is never written */
    if ((rc = fota_fwimg_update(&o->img, data, len)) < 0)
        return fail(o, rc);
    while (len > 0) {
        uint32_t off = o->fed - o->carry_len, n;
        uint32_t take = OTA_CHUNK - o->carry_len;
        if (take > len)
            take = (uint32_t)len;
        memcpy(stage, o->carry, o->carry_len);
        memcpy(stage + o->carry_len, p, take);
        n = o->carry_len + take;
        p += take;
        len -= take;
        o->fed += n - o->carry_len;
        o->carry_len = (uint8_t)(n & 3u);
        n &= ~3u;
        memcpy(o->carry, stage + n, o->carry_len);
        if (n && (rc = write_verify(o, off, stage, n)) < 0)
            return fail(o, rc);
    }
    return 0;
}

uint32_t fotadev_ota_offset(const struct fotadev_ota *o)
{
    return o->fed;
}

int fotadev_ota_end(struct fotadev_ota *o, struct fota_fwimg_info *info)
{
    struct fota_fwimg_info tmp, *inf = info ? info : &tmp;
    uint8_t buf[OTA_CHUNK];
    uint32_t crc = 0, off, body;
    int rc;

    if (o->err) {
        memset(inf, 0, sizeof(*inf));
        inf->error = o->err;
        return o->err;
    }
    if (o->carry_len) {              /* pad with 0xFF: NOR writes of 1s change nothing */
        memset(o->carry + o->carry_len, 0xFF, 4u - o->carry_len);
        if ((rc = write_verify(o, o->fed - o->carry_len, o->carry, 4)) < 0)
            return fail(o, rc);
        o->carry_len = 0;
    }
    if ((rc = fota_fwimg_end(&o->img, inf)) < 0)
        return fail(o, rc);
    if (o->fed < 8)
        return fail(o, FOTA_ETRUNC);
    /* upgrade_crc_check: the CRC again, over what the flash now holds */
    body = o->fed - 4;
    if (o->flash.crc_read && o->flash.crc_read(o->flash.ud, o->base, body, &crc) < 0)
        return fail(o, FOTA_EIO);
    for (off = o->flash.crc_read ? body : 0; off < body; off += OTA_CHUNK) {
        uint32_t n = body - off < OTA_CHUNK ? body - off : OTA_CHUNK;
        if (o->flash.read(o->flash.ud, o->base + off, buf, n) < 0)
            return fail(o, FOTA_EIO);
        crc = o->flash.crc32 ? o->flash.crc32(crc, buf, n) : fota_crc32_update(crc, buf, n);
    }
    if (o->flash.read(o->flash.ud, o->base + body, buf, 4) < 0)
        return fail(o, FOTA_EIO);
    if (fota_esp_crc_stored(crc) != ((uint32_t)buf[0] | (uint32_t)buf[1] << 8 |
                                     (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 24))
        return fail(o, FOTA_ECRC);
    return 0;
}
