/* fotasim_flash.c - the simulated SPI NOR flash: erase-before-write, AND
 * semantics, 4-byte alignment, sparse sectors shared copy-on-write with
 * the factory image, optional file backing, and the power-cut fault plan
 * used by the power-loss tests and --faults. */
#include <stdlib.h>
#include <string.h>

#include "fotasim.h"

#define SEC FOTADEV_SECTOR

static const uint8_t erased_sector[SEC] = {
#define FF8 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF
#define FF64 FF8, FF8, FF8, FF8, FF8, FF8, FF8, FF8
#define FF512 FF64, FF64, FF64, FF64, FF64, FF64, FF64, FF64
    FF512, FF512, FF512, FF512, FF512, FF512, FF512, FF512
#undef FF512
#undef FF64
#undef FF8
};

const uint8_t *fotasim_flash_sector(const struct fotasim_flash *f, uint32_t i)
{
    if (i >= f->nsec)
        return NULL;
    return f->sec[i] ? f->sec[i] : erased_sector;
}

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

/* memcpy through an external call: GCC inlines copies it knows to be
 * bounded (<= 4 KiB) as `rep movsq`, whose start-up dominates the device's
 * 64-byte reads; the libc's memcpy does them in a few instructions. */
void fotasim_flash_copy_out(void *dst, const void *src, size_t n);   /* not static: see above */
__attribute__((noinline)) void fotasim_flash_copy_out(void *dst, const void *src, size_t n)
{
    memcpy(dst, src, n);
}

int fotasim_flash_peek(const struct fotasim_flash *f, uint32_t addr, void *buf, uint32_t len)
{
    uint8_t *out = buf;
    if (addr > f->size || len > f->size - addr)
        return FOTA_ERANGE;
    while (len > 0) {
        uint32_t i = addr / SEC, off = addr % SEC, n = SEC - off < len ? SEC - off : len;
        fotasim_flash_copy_out(out, (f->sec[i] ? f->sec[i] : erased_sector) + off, n);
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

/* CRC of the whole sectors [first, first + n) continued from crc_in, from
 * the pool's memo when every one of them is immutable (not owned: pooled,
 * factory-shared or erased - the same pointers hold the same bytes for as
 * long as the pool lives), else computed (and memoised when immutable). */
static uint32_t sectors_crc(struct fotasim_flash *f, uint32_t first, uint32_t n, uint32_t crc_in)
{
    struct fotasim_pool *p = f->pool;
    uint32_t i, crc = crc_in;
    unsigned m;
    int immutable = p != NULL;

    for (i = first; immutable && i < first + n; i++)
        immutable = !f->owned[i];
    for (m = 0; immutable && m < p->ncrc_memo; m++) {
        const struct fotasim_crc_memo *e = &p->crc_memo[m];
        if (e->first != first || e->n != n || e->crc_in != crc_in)
            continue;
        for (i = 0; i < n && e->secs[i] == f->sec[first + i]; i++)
            ;
        if (i == n) {
            p->crc_memo_hits++;
            return e->crc;
        }
    }
    for (i = first; i < first + n; i++)
        crc = fotasim_crc32(crc, fotasim_flash_sector(f, i), SEC);
    if (immutable && p->ncrc_memo < FOTASIM_VER_MEMO) {
        struct fotasim_crc_memo *e = &p->crc_memo[p->ncrc_memo];
        if ((e->secs = malloc(n * sizeof(*e->secs))) != NULL) {
            for (i = 0; i < n; i++)
                e->secs[i] = f->sec[first + i];
            e->first = first;
            e->n = n;
            e->crc_in = crc_in;
            e->crc = crc;
            p->ncrc_memo++;
        }
    }
    return crc;
}

int fotasim_flash_crc_read(void *ud, uint32_t addr, uint32_t len, uint32_t *crc)
{
    struct fotasim_flash *f = ud;
    if (!f->powered)
        return FOTA_EIO;
    if (addr > f->size || len > f->size - addr)
        return FOTA_ERANGE;
    f->reads++;
    if (addr % SEC == 0 && len >= SEC) {   /* the whole sectors first */
        uint32_t n = len / SEC;
        *crc = sectors_crc(f, addr / SEC, n, *crc);
        addr += n * SEC;
        len -= n * SEC;
    }
    while (len > 0) {                      /* straight from the sectors, no copy */
        uint32_t i = addr / SEC, off = addr % SEC, n = SEC - off < len ? SEC - off : len;
        *crc = fotasim_crc32(*crc, fotasim_flash_sector(f, i) + off, n);
        addr += n;
        len -= n;
    }
    return 0;
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

/* With f->pool, a write that writes the last word of a sector hands that
 * sector to the pool (content-addressed sharing, copied again on the next
 * write: invisible to the device) while its bytes are still in the cache:
 * a wave's devices then hold one copy of the image, and the final CRC
 * read-back of those immutable sectors is memoised (sectors_crc). */
int fotasim_flash_write(void *ud, uint32_t addr, const void *buf, uint32_t len)
{
    struct fotasim_flash *f = ud;
    const uint8_t *s = buf;
    uint32_t n = len, n_total = len;

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
        /* NOR: bits only go 1 -> 0 (k and off are multiples of 4) */
        for (j = 0; j + 16 <= k; j += 16) {
            uint64_t w[2], v[2];
            memcpy(w, p + off + j, 16);
            memcpy(v, s + j, 16);
            w[0] &= v[0];
            w[1] &= v[1];
            memcpy(p + off + j, w, 16);
        }
        for (; j < k; j += 4) {
            uint32_t w, v;
            memcpy(&w, p + off + j, 4);
            memcpy(&v, s + j, 4);
            w &= v;
            memcpy(p + off + j, &w, 4);
        }
        s += k;
        addr += k;
        n -= k;
        len -= k;
    }
    if (len != 0)
        return FOTA_EIO;
    f->writes++;
    /* the sectors whose last word this write wrote (see above) */
    if (f->pool && n_total > 0 && addr / SEC > (addr - n_total) / SEC)
        (void)fotasim_pool_adopt(f->pool, f, (addr - n_total) / SEC,
                                 addr / SEC - (addr - n_total) / SEC);
    return 0;
}

struct fotadev_flash_ops fotasim_flash_ops(struct fotasim_flash *f)
{
    struct fotadev_flash_ops o;
    o.ud = f;
    o.read = fotasim_flash_read;
    o.erase = fotasim_flash_erase;
    o.write = fotasim_flash_write;
    o.crc32 = fotasim_crc32;
    o.crc_read = fotasim_flash_crc_read;
    return o;
}
