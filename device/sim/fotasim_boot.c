/* fotasim_boot.c - the closed boot.bin, modelled as §7.4 steps 1-4: read the
 * protected parameter area, pick usr_bin, check the image's XOR checksum
 * (the SDK loader's only check, §6.5), fall back to the other slot, and
 * report the version the shared codec finds in the running image. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fota_str.h"
#include "fotasim.h"

#define BOOT_PARAM_LEN 0x4a4u   /* what system_upgrade_reboot loads and saves */

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* XOR of n bytes, 8 at a time. */
static uint8_t xor_bytes(const uint8_t *p, uint32_t n)
{
    uint64_t w = 0, v;
    uint32_t i = 0;
    uint8_t x;
    for (; i + 8 <= n; i += 8) {
        memcpy(&v, p + i, 8);
        w ^= v;
    }
    w ^= w >> 32;
    w ^= w >> 16;
    w ^= w >> 8;
    x = (uint8_t)w;
    for (; i < n; i++)
        x ^= p[i];
    return x;
}

long fotasim_boot_image_check(struct fotasim_flash *f, uint32_t addr, uint32_t max)
{
    uint8_t h[16], buf[FOTADEV_SECTOR];
    uint32_t pos = 0, i, nseg, len, n;
    uint8_t xsum = 0xEF;

    if (max < 16 || fotasim_flash_read(f, addr, h, 16) < 0)
        return FOTA_EIO;
    if (h[0] == 0xEA && h[1] == 0x04) {         /* skip the irom part */
        pos = 16 + rd32(h + 12);
        if (pos + 8 > max || fotasim_flash_read(f, addr + pos, h, 8) < 0)
            return FOTA_ERANGE;
    }
    if (h[0] != 0xE9 || h[1] == 0 || h[1] > 16)
        return FOTA_EMAGIC;
    nseg = h[1];
    pos += 8;
    for (i = 0; i < nseg; i++) {
        if (pos + 8 > max || fotasim_flash_read(f, addr + pos, h, 8) < 0)
            return FOTA_ERANGE;
        len = rd32(h + 4);
        pos += 8;
        if (len > max - pos)
            return FOTA_ERANGE;
        while (len > 0) {
            n = len < sizeof(buf) ? len : (uint32_t)sizeof(buf);
            if (fotasim_flash_read(f, addr + pos, buf, n) < 0)
                return FOTA_EIO;
            xsum ^= xor_bytes(buf, n);
            pos += n;
            len -= n;
        }
    }
    pos |= 0x0Fu;                                 /* checksum: last byte of a 16-byte line */
    if (pos + 5 > max || fotasim_flash_read(f, addr + pos, buf, 1) < 0)
        return FOTA_ERANGE;
    if (buf[0] != xsum)
        return FOTA_ECHECKSUM;
    return (long)pos + 5;                         /* + the CRC word */
}

/* The memo entry for [addr, addr + len) when every sector of it is
 * immutable (not owned by f): *slot = the matching entry or -1. Returns 0
 * when the range cannot be memoised. */
static int memo_find(const struct fotasim_flash *f, uint32_t addr, uint32_t len, int *slot)
{
    uint32_t first = addr / FOTADEV_SECTOR, last = (addr + len - 1) / FOTADEV_SECTOR, i;
    unsigned m;

    *slot = -1;
    if (!f->pool || len == 0 || last >= f->nsec)
        return 0;
    for (i = first; i <= last; i++)
        if (f->owned[i])
            return 0;
    for (m = 0; m < f->pool->nmemo; m++) {
        const struct fotasim_ver_memo *e = &f->pool->memo[m];
        if (e->addr != addr || e->len != len)
            continue;
        for (i = first; i <= last && e->secs[i - first] == f->sec[i]; i++)
            ;
        if (i > last) {
            *slot = (int)m;
            break;
        }
    }
    return 1;
}

static void memo_store(struct fotasim_flash *f, uint32_t addr, uint32_t len, const char *version)
{
    uint32_t first = addr / FOTADEV_SECTOR, n = (addr + len - 1) / FOTADEV_SECTOR - first + 1, i;
    struct fotasim_ver_memo *e;

    if (f->pool->nmemo >= FOTASIM_VER_MEMO)
        return;
    e = &f->pool->memo[f->pool->nmemo];
    if (!(e->secs = malloc(n * sizeof(*e->secs))))
        return;
    for (i = 0; i < n; i++)
        e->secs[i] = f->sec[first + i];
    e->addr = addr;
    e->len = len;
    fota_str_copy(e->version, sizeof(e->version), version);
    f->pool->nmemo++;
}

/* The version the shared codec finds in the image, fed sector by sector
 * straight from the flash (no copy) with the host's fast CRC; memoised in
 * f->pool for images made of immutable sectors (a wave's devices all boot
 * the same pooled image). */
static void read_version(struct fotasim_flash *f, uint32_t addr, uint32_t len, char *out, size_t cap)
{
    struct fota_fwimg_stream st;
    struct fota_fwimg_info info;
    uint32_t pos = 0;
    int memo, can_memo = memo_find(f, addr, len, &memo);

    out[0] = '\0';
    if (memo >= 0) {
        fota_str_copy(out, cap, f->pool->memo[memo].version);
        f->pool->memo_hits++;
        return;
    }
    fota_fwimg_begin(&st, FOTA_FWIMG_F_NO_SHA256);
    fota_fwimg_set_crc(&st, fotasim_crc32);
    while (pos < len) {
        uint32_t a = addr + pos, off = a % FOTADEV_SECTOR;
        uint32_t n = FOTADEV_SECTOR - off < len - pos ? FOTADEV_SECTOR - off : len - pos;
        const uint8_t *sec = fotasim_flash_sector(f, a / FOTADEV_SECTOR);
        if (!sec || fota_fwimg_update(&st, sec + off, n) < 0)
            break;
        pos += n;
    }
    fota_fwimg_end(&st, &info);
    fota_str_copy(out, cap, info.version);
    if (can_memo)
        memo_store(f, addr, len, info.version);
}

int fotasim_boot_run(struct fotasim_flash *f, const struct fotadev_layout *lay, int loader_ver,
                     struct fotasim_boot *out)
{
    struct fotadev_flash_ops ops = fotasim_flash_ops(f);
    uint8_t *bp = NULL, orig[2];
    int want, slot, rc = 0, old = loader_ver == 2 || loader_ver == 31;
    long len;

    memset(out, 0, sizeof(*out));
    bp = malloc(BOOT_PARAM_LEN);
    if (!bp)
        return FOTA_ENOMEM;
    if ((rc = fotadev_sysparam_load(&ops, lay->sysparam_sec, 0, bp, BOOT_PARAM_LEN)) < 0)
        goto out;
    orig[0] = bp[0];
    orig[1] = bp[1];
    if (!(bp[1] & 0x80u) && !old) {
        /* enhance mode (system_restart_enhance): boot the stored address */
        uint32_t a = (bp[0] & 4u) ? ((uint32_t)bp[5] | (uint32_t)bp[6] << 8 | (uint32_t)bp[7] << 16)
                                  : ((uint32_t)bp[2] | (uint32_t)bp[3] << 8 | (uint32_t)bp[4] << 16);
        slot = a == lay->slot_addr[1] ? FOTADEV_SLOT_USER2 : FOTADEV_SLOT_USER1;
        len = fotasim_boot_image_check(f, lay->slot_addr[slot], lay->slot_size);
        if (len > 0) {
            out->ok = 1;
            out->slot = slot;
            out->image_len = (uint32_t)len;
            read_version(f, lay->slot_addr[slot], (uint32_t)len, out->version, sizeof(out->version));
        }
        goto out;
    }
    want = fotadev_boot_wanted_slot(bp);
    slot = want;
    len = fotasim_boot_image_check(f, lay->slot_addr[slot], lay->slot_size);
    if (len <= 0) {
        slot ^= 1;
        len = fotasim_boot_image_check(f, lay->slot_addr[slot], lay->slot_size);
        out->fallback = 1;
    }
    if (!old) {
        /* loaders >= v1.3 keep their version and the new bit format */
        if (FOTADEV_BOOT_VER(bp[1]) == 2 || FOTADEV_BOOT_VER(bp[1]) == 31)
            bp[0] = (uint8_t)((bp[0] & 0xF8u) | (unsigned)want);
        bp[1] = (uint8_t)(0x80u | (bp[1] & 0x60u) | ((unsigned)loader_ver & 0x1Fu));
        bp[0] = (uint8_t)((bp[0] & ~4u) | (slot == want ? 4u : 0u));
        if ((bp[0] != orig[0] || bp[1] != orig[1]) &&
            (rc = fotadev_sysparam_save(&ops, lay->sysparam_sec, bp, BOOT_PARAM_LEN)) < 0)
            goto out;
    }
    if (len > 0) {
        out->ok = 1;
        out->slot = slot;
        out->image_len = (uint32_t)len;
        read_version(f, lay->slot_addr[slot], (uint32_t)len, out->version, sizeof(out->version));
    }
out:
    free(bp);
    return rc < 0 ? FOTA_EIO : 0;
}

int fotasim_boot_flip(struct fotasim_flash *f, const struct fotadev_layout *lay)
{
    struct fotadev_flash_ops ops = fotasim_flash_ops(f);
    uint8_t *bp = malloc(BOOT_PARAM_LEN);
    int rc;

    if (!bp)
        return FOTA_ENOMEM;
    rc = fotadev_sysparam_load(&ops, lay->sysparam_sec, 0, bp, BOOT_PARAM_LEN);
    if (rc == 0) {
        fotadev_boot_flip(bp);
        rc = fotadev_sysparam_save(&ops, lay->sysparam_sec, bp, BOOT_PARAM_LEN);
    }
    free(bp);
    return rc;
}

int fotasim_boot_running_slot(struct fotasim_flash *f, const struct fotadev_layout *lay)
{
    struct fotadev_flash_ops ops = fotasim_flash_ops(f);
    uint8_t bp[4];
    if (fotadev_sysparam_load(&ops, lay->sysparam_sec, 0, bp, sizeof(bp)) < 0)
        return FOTADEV_SLOT_USER1;
    return fotadev_boot_running_slot(bp);
}
