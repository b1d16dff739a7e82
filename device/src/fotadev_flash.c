/* fotadev_flash.c - flash layouts (§7.2), the SDK's protected 3-sector
 * parameter save (§7.3) and the boot-byte logic of
 * system_upgrade_userbin_check / system_upgrade_reboot (§7.4).
 * Pure code over struct fotadev_flash_ops: the simulator uses it as its
 * "SDK", and host tools can read a flash dump with it. */
#include <string.h>

#include "fotadev.h"
#include "fwimg.h"

int fotadev_layout_get(unsigned map, struct fotadev_layout *out)
{
    const struct fota_flash_map *m = fota_flash_map_get((int)map);

    if (!m)
        return FOTA_EINVAL;
    memset(out, 0, sizeof(*out));
    out->map = (uint8_t)map;
    out->flash_size = m->flash_size;
    out->slot_addr[0] = m->user1_addr;
    out->slot_addr[1] = m->user2_addr;
    out->slot_size = m->slot_budget;
    out->sysparam_sec = (uint16_t)(m->sys_param_addr / FOTADEV_SECTOR);
    out->privparam_sec = (uint16_t)(m->priv_param_addr / FOTADEV_SECTOR);
    return 0;
}

/* ---- §7.3: flag sector record, little-endian words ---- */

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

int fotadev_sysparam_load(const struct fotadev_flash_ops *f, uint16_t start_sec,
                          uint32_t off, void *buf, uint32_t len)
{
    uint8_t flag[32];
    int rc, copy;

    if (off + len > FOTADEV_SECTOR || len == 0)
        return FOTA_EINVAL;
    rc = f->read(f->ud, (uint32_t)(start_sec + 2) * FOTADEV_SECTOR, flag, sizeof(flag));
    if (rc < 0)
        return rc;
    copy = flag[0] != 0 ? 1 : 0;
    return f->read(f->ud, (uint32_t)(start_sec + copy) * FOTADEV_SECTOR + off, buf, len);
}

static uint32_t word_sum(const uint8_t *p, uint32_t len)
{
    uint32_t s = 0, i;
    for (i = 0; i + 4 <= len; i += 4)
        s += get32(p + i);
    return s;
}

int fotadev_sysparam_save(const struct fotadev_flash_ops *f, uint16_t start_sec,
                          const void *buf, uint32_t len)
{
    uint8_t flag[32], chunk[64];
    const uint8_t *src = buf;
    uint32_t base, done, count;
    int rc, cur, next, same = 1;

    if (len == 0 || len > FOTADEV_SECTOR || (len & 3u))
        return FOTA_EINVAL;
    rc = f->read(f->ud, (uint32_t)(start_sec + 2) * FOTADEV_SECTOR, flag, sizeof(flag));
    if (rc < 0)
        return rc;
    cur = flag[0] != 0 ? 1 : 0;
    next = cur ^ 1;
    base = (uint32_t)(start_sec + next) * FOTADEV_SECTOR;
    for (done = 0; done < len && same; done += sizeof(chunk)) {
        uint32_t n = len - done < sizeof(chunk) ? len - done : (uint32_t)sizeof(chunk);
        rc = f->read(f->ud, base + done, chunk, n);
        if (rc < 0)
            return rc;
        same = memcmp(chunk, src + done, n) == 0;
    }
    if (!same) {
        rc = f->erase(f->ud, (uint16_t)(start_sec + next));
        if (rc < 0)
            return rc;
        rc = f->write(f->ud, base, src, len);
        if (rc < 0)
            return rc;
    }
    /* Rewrite the flag: only after this does `next` become the active copy;
     * an erased flag reads as byte0 = 0xFF -> copy 1, which then holds either
     * the old (cur == 1) or the new (next == 1) data, both complete. */
    count = (get32(flag + 4) == FOTADEV_SYSPARAM_MAGIC1 && get32(flag + 28) == FOTADEV_SYSPARAM_MAGIC2)
                ? get32(flag + 8) + 1 : 1;
    memset(flag, 0, sizeof(flag));
    flag[0] = (uint8_t)next;
    put32(flag + 4, FOTADEV_SYSPARAM_MAGIC1);
    put32(flag + 8, count);
    put32(flag + 12 + 4 * (unsigned)next, len);
    put32(flag + 20 + 4 * (unsigned)next, word_sum(src, len));
    put32(flag + 28, FOTADEV_SYSPARAM_MAGIC2);
    rc = f->erase(f->ud, (uint16_t)(start_sec + 2));
    if (rc < 0)
        return rc;
    return f->write(f->ud, (uint32_t)(start_sec + 2) * FOTADEV_SECTOR, flag, sizeof(flag));
}

/* ---- §7.4 boot parameter bytes ---- */

static int old_format(const uint8_t bp[2])
{
    unsigned ver = FOTADEV_BOOT_VER(bp[1]);
    return ver == 2 || ver == 31;
}

int fotadev_boot_running_slot(const uint8_t bp[2])
{
    unsigned bin, st;
    if (old_format(bp))
        return (bp[0] & 0x0Fu) == 1 ? FOTADEV_SLOT_USER2 : FOTADEV_SLOT_USER1;
    bin = bp[0] & 3u;
    st = (bp[0] >> 2) & 1u;
    /* st = 1: running == usr_bin; st = 0: the loader fell back to the other.
     * (libmain maps every usr_bin other than 1 to user1.) */
    if (bin == 1)
        return st ? FOTADEV_SLOT_USER2 : FOTADEV_SLOT_USER1;
    return st ? FOTADEV_SLOT_USER1 : FOTADEV_SLOT_USER2;
}

int fotadev_boot_wanted_slot(const uint8_t bp[2])
{
    if (old_format(bp))
        return (bp[0] & 0x0Fu) == 1 ? FOTADEV_SLOT_USER2 : FOTADEV_SLOT_USER1;
    return (bp[0] & 3u) == 1 ? FOTADEV_SLOT_USER2 : FOTADEV_SLOT_USER1;
}

int fotadev_boot_flip(uint8_t bp[2])
{
    unsigned bin;
    if (old_format(bp)) {
        if ((bp[0] & 0x0Fu) == 1)
            bp[0] &= 0xF0u;
        else
            bp[0] = (uint8_t)((bp[0] & 0xF0u) | 1u);
        return fotadev_boot_wanted_slot(bp);
    }
    bp[1] |= 0x80u;
    bin = bp[0] & 3u;
    if (bp[0] & 4u)
        bin = bin == 1 ? 0 : 1;
    /* else: running the fallback, usr_bin already names the other slot */
    bp[0] = (uint8_t)((bp[0] & ~3u) | bin | 4u);
    return fotadev_boot_wanted_slot(bp);
}
