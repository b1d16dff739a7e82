/* sim_flash.c - the simulated SPI NOR flash: erase-before-write, AND
 * semantics, 4-byte alignment, optional file backing, and the power-cut
 * fault plan used by the power-loss tests and --faults. */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

int fotasim_flash_init(struct fotasim_flash *f, uint32_t size, uint32_t seed)
{
    memset(f, 0, sizeof(*f));
    if (size == 0 || size % FOTADEV_SECTOR)
        return FOTA_EINVAL;
    f->mem = malloc(size);
    if (!f->mem)
        return FOTA_ENOMEM;
    memset(f->mem, 0xFF, size);
    f->size = size;
    f->cut_at = -1;
    f->powered = 1;
    f->rnd = seed ? seed : 1;
    return 0;
}

void fotasim_flash_cleanup(struct fotasim_flash *f)
{
    free(f->mem);
    f->mem = NULL;
}

int fotasim_flash_load(struct fotasim_flash *f, const char *path)
{
    FILE *fp = fopen(path, "rb");
    size_t n;
    if (!fp)
        return FOTA_ENOENT;
    n = fread(f->mem, 1, f->size, fp);
    fclose(fp);
    return n == f->size ? 0 : FOTA_ETRUNC;
}

int fotasim_flash_save(const struct fotasim_flash *f, const char *path)
{
    FILE *fp = fopen(path, "wb");
    int rc = 0;
    if (!fp)
        return FOTA_EIO;
    if (fwrite(f->mem, 1, f->size, fp) != f->size)
        rc = FOTA_EIO;
    if (fclose(fp) != 0)
        rc = FOTA_EIO;
    return rc;
}

void fotasim_flash_power_on(struct fotasim_flash *f)
{
    f->powered = 1;
    f->cut_at = -1;
    f->ops = 0;
}

int fotasim_flash_program(struct fotasim_flash *f, uint32_t addr, const void *data, uint32_t len)
{
    if (addr > f->size || len > f->size - addr)
        return FOTA_ERANGE;
    memcpy(f->mem + addr, data, len);
    return 0;
}

static uint32_t xorshift(struct fotasim_flash *f)
{
    uint32_t x = f->rnd;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return f->rnd = x;
}

/* Counts an operation; returns 1 if this one is the one that loses power. */
static int cut_now(struct fotasim_flash *f)
{
    long op = f->ops++;
    if (f->cut_at >= 0 && op == f->cut_at) {
        f->powered = 0;
        return 1;
    }
    return 0;
}

int fotasim_flash_read(void *ud, uint32_t addr, void *buf, uint32_t len)
{
    struct fotasim_flash *f = ud;
    if (!f->powered)
        return FOTA_EIO;
    if (addr > f->size || len > f->size - addr)
        return FOTA_ERANGE;
    memcpy(buf, f->mem + addr, len);
    f->reads++;
    return 0;
}

int fotasim_flash_erase(void *ud, uint32_t sector)
{
    struct fotasim_flash *f = ud;
    uint8_t *p;
    uint32_t i, keep;

    if (!f->powered)
        return FOTA_EIO;
    if ((uint64_t)sector * FOTADEV_SECTOR >= f->size)
        return FOTA_ERANGE;
    p = f->mem + sector * FOTADEV_SECTOR;
    if (cut_now(f)) {
        /* torn erase: a random prefix erased, the rest random bits */
        keep = xorshift(f) % FOTADEV_SECTOR;
        for (i = 0; i < FOTADEV_SECTOR; i++)
            p[i] = i < keep ? 0xFF : (uint8_t)(p[i] | (uint8_t)xorshift(f));
        return FOTA_EIO;
    }
    memset(p, 0xFF, FOTADEV_SECTOR);
    f->erases++;
    return 0;
}

int fotasim_flash_write(void *ud, uint32_t addr, const void *buf, uint32_t len)
{
    struct fotasim_flash *f = ud;
    const uint8_t *s = buf;
    uint32_t i, n = len;

    if (!f->powered)
        return FOTA_EIO;
    if ((addr & 3u) || (len & 3u))
        return FOTA_EINVAL;
    if (addr > f->size || len > f->size - addr)
        return FOTA_ERANGE;
    if (cut_now(f))
        n = (xorshift(f) % (len / 4 + 1)) * 4;  /* torn write: some words made it */
    for (i = 0; i < n; i++)
        f->mem[addr + i] &= s[i];                /* NOR: bits only go 1 -> 0 */
    if (n != len)
        return FOTA_EIO;
    f->writes++;
    return 0;
}

struct fotadev_flash_ops fotasim_flash_ops(struct fotasim_flash *f)
{
    struct fotadev_flash_ops o;
    o.ud = f;
    o.read = fotasim_flash_read;
    o.erase = fotasim_flash_erase;
    o.write = fotasim_flash_write;
    return o;
}
