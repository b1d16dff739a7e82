/* sim_flash.c - the simulated SPI NOR flash: erase-before-write, AND
 * semantics, 4-byte alignment, sparse sectors shared copy-on-write with
 * the factory image, optional file backing, and the power-cut fault plan
 * used by the power-loss tests and --faults. */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define SEC FOTADEV_SECTOR

int fotasim_flash_init(struct fotasim_flash *f, uint32_t size, uint32_t seed)
{
    memset(f, 0, sizeof(*f));
    if (size == 0 || size % SEC)
        return FOTA_EINVAL;
    f->nsec = size / SEC;
    f->sec = calloc(f->nsec, sizeof(*f->sec));
    f->owned = calloc(f->nsec, 1);
    if (!f->sec || !f->owned) {
        fotasim_flash_cleanup(f);
        return FOTA_ENOMEM;
    }
    f->size = size;
    f->cut_at = -1;
    f->powered = 1;
    f->rnd = seed ? seed : 1;
    return 0;
}

static void drop_sector(struct fotasim_flash *f, uint32_t i)
{
    if (f->owned[i])
        free(f->sec[i]);
    f->sec[i] = NULL;
    f->owned[i] = 0;
}

void fotasim_flash_cleanup(struct fotasim_flash *f)
{
    uint32_t i;
    for (i = 0; f->sec && i < f->nsec; i++)
        drop_sector(f, i);
    free(f->sec);
    free(f->owned);
    f->sec = NULL;
    f->owned = NULL;
}

/* A private, writable copy of sector i (0xFF-filled if erased). */
static uint8_t *own_sector(struct fotasim_flash *f, uint32_t i)
{
    uint8_t *p;
    if (f->owned[i])
        return f->sec[i];
    if (!(p = malloc(SEC)))
        return NULL;
    if (f->sec[i])
        memcpy(p, f->sec[i], SEC);
    else
        memset(p, 0xFF, SEC);
    f->sec[i] = p;
    f->owned[i] = 1;
    return p;
}

int fotasim_flash_peek(const struct fotasim_flash *f, uint32_t addr, void *buf, uint32_t len)
{
    uint8_t *out = buf;
    if (addr > f->size || len > f->size - addr)
        return FOTA_ERANGE;
    while (len > 0) {
        uint32_t i = addr / SEC, off = addr % SEC, n = SEC - off < len ? SEC - off : len;
        if (f->sec[i])
            memcpy(out, f->sec[i] + off, n);
        else
            memset(out, 0xFF, n);
        out += n;
        addr += n;
        len -= n;
    }
    return 0;
}

int fotasim_flash_program(struct fotasim_flash *f, uint32_t addr, const void *data, uint32_t len)
{
    const uint8_t *in = data;
    if (addr > f->size || len > f->size - addr)
        return FOTA_ERANGE;
    while (len > 0) {
        uint32_t i = addr / SEC, off = addr % SEC, n = SEC - off < len ? SEC - off : len;
        uint8_t *p = own_sector(f, i);
        if (!p)
            return FOTA_ENOMEM;
        memcpy(p + off, in, n);
        in += n;
        addr += n;
        len -= n;
    }
    return 0;
}

int fotasim_flash_program_shared(struct fotasim_flash *f, uint32_t addr, const uint8_t *data,
                                 uint32_t len)
{
    uint32_t i;
    if ((addr % SEC) || (len % SEC) || addr > f->size || len > f->size - addr)
        return FOTA_EINVAL;
    for (i = 0; i < len / SEC; i++) {
        drop_sector(f, addr / SEC + i);
        f->sec[addr / SEC + i] = (uint8_t *)(uintptr_t)(data + (size_t)i * SEC);
    }
    return 0;
}

size_t fotasim_flash_footprint(const struct fotasim_flash *f)
{
    size_t n = f->nsec * (sizeof(*f->sec) + 1);
    uint32_t i;
    for (i = 0; i < f->nsec; i++)
        n += f->owned[i] ? SEC : 0;
    return n;
}

int fotasim_flash_load(struct fotasim_flash *f, const char *path)
{
    FILE *fp = fopen(path, "rb");
    uint8_t buf[SEC];
    uint32_t i;
    int rc = 0;
    if (!fp)
        return FOTA_ENOENT;
    for (i = 0; i < f->nsec && rc == 0; i++) {
        if (fread(buf, 1, SEC, fp) != SEC)
            rc = FOTA_ETRUNC;
        else
            rc = fotasim_flash_program(f, i * SEC, buf, SEC);
    }
    fclose(fp);
    return rc;
}

int fotasim_flash_save(const struct fotasim_flash *f, const char *path)
{
    FILE *fp = fopen(path, "wb");
    uint8_t buf[SEC];
    uint32_t i;
    int rc = 0;
    if (!fp)
        return FOTA_EIO;
    for (i = 0; i < f->nsec && rc == 0; i++) {
        fotasim_flash_peek(f, i * SEC, buf, SEC);
        if (fwrite(buf, 1, SEC, fp) != SEC)
            rc = FOTA_EIO;
    }
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
    f->reads++;
    return fotasim_flash_peek(f, addr, buf, len);
}

int fotasim_flash_erase(void *ud, uint32_t sector)
{
    struct fotasim_flash *f = ud;
    uint8_t *p;
    uint32_t i, keep;

    if (!f->powered)
        return FOTA_EIO;
    if (sector >= f->nsec)
        return FOTA_ERANGE;
    if (cut_now(f)) {
        /* torn erase: a random prefix erased, the rest random bits */
        if (!(p = own_sector(f, sector)))
            return FOTA_ENOMEM;
        keep = xorshift(f) % SEC;
        for (i = 0; i < SEC; i++)
            p[i] = i < keep ? 0xFF : (uint8_t)(p[i] | (uint8_t)xorshift(f));
        return FOTA_EIO;
    }
    drop_sector(f, sector);
    f->erases++;
    return 0;
}

int fotasim_flash_write(void *ud, uint32_t addr, const void *buf, uint32_t len)
{
    struct fotasim_flash *f = ud;
    const uint8_t *s = buf;
    uint32_t n = len;

    if (!f->powered)
        return FOTA_EIO;
    if ((addr & 3u) || (len & 3u))
        return FOTA_EINVAL;
    if (addr > f->size || len > f->size - addr)
        return FOTA_ERANGE;
    if (cut_now(f))
        n = (xorshift(f) % (len / 4 + 1)) * 4;  /* torn write: some words made it */
    while (n > 0) {
        uint32_t i = addr / SEC, off = addr % SEC, k = SEC - off < n ? SEC - off : n, j;
        uint8_t *p = own_sector(f, i);
        if (!p)
            return FOTA_ENOMEM;
        for (j = 0; j < k; j++)
            p[off + j] &= s[j];                  /* NOR: bits only go 1 -> 0 */
        s += k;
        addr += k;
        n -= k;
        len -= k;
    }
    if (len != 0)
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

/* ---- sector pool ---- */

static uint64_t sector_hash(const uint8_t *p)
{
    uint64_t h = 1469598103934665603ull;   /* FNV-1a */
    uint32_t i;
    for (i = 0; i < SEC; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

void fotasim_pool_init(struct fotasim_pool *p)
{
    memset(p, 0, sizeof(*p));
}

void fotasim_pool_cleanup(struct fotasim_pool *p)
{
    size_t i;
    for (i = 0; i < p->cap; i++)
        free(p->slot[i]);
    free(p->slot);
    memset(p, 0, sizeof(*p));
}

static int pool_grow(struct fotasim_pool *p)
{
    size_t ncap = p->cap ? p->cap * 2 : 1024, i, j;
    uint8_t **ns = calloc(ncap, sizeof(*ns));
    if (!ns)
        return FOTA_ENOMEM;
    for (i = 0; i < p->cap; i++) {
        if (!p->slot[i])
            continue;
        for (j = (size_t)sector_hash(p->slot[i]) & (ncap - 1); ns[j]; j = (j + 1) & (ncap - 1))
            ;
        ns[j] = p->slot[i];
    }
    free(p->slot);
    p->slot = ns;
    p->cap = ncap;
    return 0;
}

int fotasim_flash_dedupe(struct fotasim_flash *f, struct fotasim_pool *p, uint32_t first, uint32_t n)
{
    uint32_t s;
    size_t j;

    for (s = first; s < first + n && s < f->nsec; s++) {
        uint8_t *d = f->sec[s];
        if (!f->owned[s] || !d)
            continue;
        if (p->used * 2 >= p->cap && pool_grow(p) < 0)
            return FOTA_ENOMEM;
        for (j = (size_t)sector_hash(d) & (p->cap - 1); p->slot[j]; j = (j + 1) & (p->cap - 1))
            if (memcmp(p->slot[j], d, SEC) == 0)
                break;
        if (p->slot[j]) {                 /* an identical sector is pooled: share it */
            free(d);
            f->sec[s] = p->slot[j];
            p->shared++;
        } else {                          /* the pool takes this one */
            p->slot[j] = d;
            p->used++;
        }
        f->owned[s] = 0;
    }
    return 0;
}
