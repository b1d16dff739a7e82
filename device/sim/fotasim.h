/* fotasim.h - fota-sim's virtual ESP8266: NOR flash with a fault plan, the
 * SDK's parameter area and boot loader (§7.3-§7.4 via libfotadev's pure
 * code), and the boot of an image that reports its embedded version.
 * Host-only code (malloc and stdio allowed here; not in libfotadev). */
#ifndef FOTASIM_H
#define FOTASIM_H

#include <stdint.h>
#include <stdio.h>

#include "fotadev.h"

/* ------------------------------------------------------------- flash */

/* In-memory NOR flash: 4 KiB sectors, erase sets 0xFF, a write ANDs (can
 * only clear bits), writes must be 4-byte aligned. Sparse: an erased sector
 * costs no memory, and factory sectors may be shared between devices until
 * one of them erases or writes (copy on write) - so thousands of devices
 * fit in memory. A fault plan can cut power at the Nth erase/write: that
 * operation is torn (part done, part garbage) and every later operation
 * fails with FOTA_EIO until power_on. */
struct fotasim_pool;
struct fotasim_flash {
    uint8_t **sec;     /* per sector; NULL = erased */
    uint8_t *owned;    /* per sector: 1 if sec[i] is ours to free/modify */
    uint32_t size, nsec;
    long ops;          /* erase + write operations since power on */
    long cut_at;       /* op index that loses power; -1 = never */
    int powered;
    uint32_t rnd;      /* torn-operation garbage */
    unsigned long erases, writes, reads;
    struct fotasim_pool *pool;   /* optional: where the loader memoises image versions */
};

/* Sets up size bytes (multiple of 4 KiB), all erased. 0 or FOTA_ENOMEM. */
int fotasim_flash_init(struct fotasim_flash *f, uint32_t size, uint32_t seed);
void fotasim_flash_cleanup(struct fotasim_flash *f);
/* Load / store the whole flash image from / to a file (optional backing). */
int fotasim_flash_load(struct fotasim_flash *f, const char *path);
int fotasim_flash_save(const struct fotasim_flash *f, const char *path);
/* Restores power and clears the fault plan; ops restarts at 0. */
void fotasim_flash_power_on(struct fotasim_flash *f);
/* Factory programming (esptool write_flash): raw copy, no NOR rules, not
 * counted, works without power. */
int fotasim_flash_program(struct fotasim_flash *f, uint32_t addr, const void *data, uint32_t len);
/* The same for sector-aligned whole sectors that stay shared with `data`
 * (which must outlive the flash): len a multiple of 4 KiB. */
int fotasim_flash_program_shared(struct fotasim_flash *f, uint32_t addr, const uint8_t *data,
                                 uint32_t len);
/* Raw read for tests and the simulator itself: not counted, works without
 * power. FOTA_ERANGE outside the flash. */
int fotasim_flash_peek(const struct fotasim_flash *f, uint32_t addr, void *buf, uint32_t len);
/* Bytes of memory the sectors owned by this flash use. */
size_t fotasim_flash_footprint(const struct fotasim_flash *f);
/* The device's flash ops on f (crc32 = fotasim_crc32). */
struct fotadev_flash_ops fotasim_flash_ops(struct fotasim_flash *f);
/* fota_crc32_update's CRC, fast (sim_crc.c: PCLMULQDQ folding on x86-64,
 * zlib's crc32 otherwise): host only, the simulator's path for the image
 * CRCs; the device keeps the small table. */
uint32_t fotasim_crc32(uint32_t crc, const void *data, size_t len);
/* Read-only view of sector i as the flash holds it now (a shared 0xFF
 * sector when erased), valid until the next erase/write/cleanup of f;
 * NULL outside the flash. Not counted (for the simulator's own checks). */
const uint8_t *fotasim_flash_sector(const struct fotasim_flash *f, uint32_t i);
int fotasim_flash_read(void *ud, uint32_t addr, void *buf, uint32_t len);
int fotasim_flash_erase(void *ud, uint32_t sector);
int fotasim_flash_crc_read(void *ud, uint32_t addr, uint32_t len, uint32_t *crc);
int fotasim_flash_write(void *ud, uint32_t addr, const void *buf, uint32_t len);

/* A pool of read-only sectors shared by content between flashes: after a
 * device downloaded an image, its sectors are identical to every other
 * device's, so the simulator keeps one copy (copy-on-write as above).
 * A flash with f->pool hands over each sector a write completes (see
 * fotasim_flash_write). Pooled sectors are not reference-counted: they live
 * until fotasim_pool_cleanup, so a run whose downloads fail keeps one 4 KiB
 * copy of each distinct sector they wrote (a corrupt byte: one sector). */
#define FOTASIM_VER_MEMO 4
struct fotasim_pool {
    uint8_t **slot;    /* open addressing by content hash; NULL = empty */
    size_t cap, used;
    size_t shared;     /* sectors replaced by a pool copy */
    /* The loader's version read, memoised for images whose sectors are all
     * immutable (pooled, factory-shared or erased): the same sector
     * pointers hold the same bytes for as long as the pool lives. */
    struct fotasim_ver_memo {
        uint32_t addr, len;
        const uint8_t **secs;  /* malloc'd; the sector pointers of [addr, addr + len) */
        char version[FOTA_FWIMG_VERSION_MAX];
    } memo[FOTASIM_VER_MEMO];
    unsigned nmemo, memo_hits;
    /* The same for CRC read-backs (fotasim_flash_crc_read): the CRC of whole
     * immutable sectors [first, first + n), continued from crc_in. */
    struct fotasim_crc_memo {
        uint32_t first, n, crc_in, crc;
        const uint8_t **secs;  /* malloc'd; the sector pointers */
    } crc_memo[FOTASIM_VER_MEMO];
    unsigned ncrc_memo, crc_memo_hits;
};
void fotasim_pool_init(struct fotasim_pool *p);
/* Frees every pooled sector: only after every flash using it is gone. */
void fotasim_pool_cleanup(struct fotasim_pool *p);
/* Moves the owned sectors of [first, first + n) into the pool (or points
 * them at an identical pooled sector). Returns 0 or FOTA_ENOMEM (the
 * flash is unchanged for sectors not done). */
int fotasim_pool_adopt(struct fotasim_pool *p, struct fotasim_flash *f, uint32_t first, uint32_t n);

/* ------------------------------------------------------- boot loader */

/* Boot loader versions that matter (§7.4): 2 and 31 use the old nibble
 * format; >= 3 (e.g. 7 for boot v1.7) the usr_bin/boot_statue format. */
struct fotasim_boot {
    int ok;                      /* a valid image was started */
    int slot;                    /* FOTADEV_SLOT_USER1/2 that runs */
    int fallback;                /* the wanted slot failed its check */
    char version[FOTA_FWIMG_VERSION_MAX]; /* embedded version, "" if none */
    uint32_t image_len;
};

/* The loader's XOR-checksum test of the image at addr (§6.5): returns the
 * image length (through the CRC word) or a negative FOTA_E*. */
long fotasim_boot_image_check(struct fotasim_flash *f, uint32_t addr, uint32_t max);
/* Steps 1-4 of §7.4 on this flash: picks the slot from the boot bytes,
 * checks it, falls back to the other slot (recording boot_statue = 0 for
 * loaders >= 3), stores the loader version, and reads the running image's
 * version with the shared codec. Flash writes go through the protected
 * save, so they can be cut too. Returns 0 (even if nothing bootable:
 * out->ok == 0) or FOTA_EIO when power was lost during the boot. */
int fotasim_boot_run(struct fotasim_flash *f, const struct fotadev_layout *lay, int loader_ver,
                     struct fotasim_boot *out);
/* system_upgrade_reboot()'s flip on this flash (upgrade flag FINISH
 * assumed): load boot bytes, fotadev_boot_flip, protected save. */
int fotasim_boot_flip(struct fotasim_flash *f, const struct fotadev_layout *lay);
/* system_upgrade_userbin_check() on this flash. */
int fotasim_boot_running_slot(struct fotasim_flash *f, const struct fotadev_layout *lay);

#endif
