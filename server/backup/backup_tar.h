/* backup_tar.h - the POSIX ustar header as fota's backup archive uses it:
 * 512-byte blocks, regular files only, names of at most 99 bytes (no
 * prefix field written; one is read), sizes beyond the 11 octal digits of
 * the field (8 GiB) in GNU base-256, so GNU tar, bsdtar and Python's
 * tarfile read the archive too. Pure: no I/O, no allocation. */
#ifndef FOTA_BACKUP_TAR_H
#define FOTA_BACKUP_TAR_H

#include <stddef.h>
#include <stdint.h>

#define FOTA_TAR_BLOCK 512
#define FOTA_TAR_NAME_MAX 256   /* prefix (155) + '/' + name (100) + NUL */

/* A parsed header. */
struct fota_tar_entry {
    char name[FOTA_TAR_NAME_MAX];
    uint64_t size;               /* bytes of content that follow the header */
    unsigned mode;
    int64_t mtime;
    char type;               /* '0' regular file ('\0' is read as '0'), '5' directory, ... */
};

/* Writes the header of a regular file: name (1 to 99 bytes), size, mode
 * (permission bits), mtime (Unix seconds, >= 0); uid and gid 0. 0, or
 * FOTA_EINVAL for a name that is empty or too long, or a negative mtime. */
int fota_tar_header_make(uint8_t hdr[FOTA_TAR_BLOCK], const char *name, uint64_t size,
                         unsigned mode, int64_t mtime);

/* Reads one block. 0 with *e filled for a header (any type: the caller
 * decides what it accepts); 1 for an all-zero block (the end of the
 * archive); FOTA_EMAGIC when the block has no ustar magic (not a tar
 * header, or not at a header's place), FOTA_ECHECKSUM when its checksum
 * does not match, FOTA_EPROTO for a malformed numeric or name field. */
int fota_tar_header_parse(const uint8_t hdr[FOTA_TAR_BLOCK], struct fota_tar_entry *e);

/* Bytes of zero padding after size bytes of content. */
static inline size_t fota_tar_pad(uint64_t size)
{
    return (size_t)((FOTA_TAR_BLOCK - size % FOTA_TAR_BLOCK) % FOTA_TAR_BLOCK);
}

/* Bytes one member takes in the archive: header, content, padding. */
static inline uint64_t fota_tar_member_bytes(uint64_t size)
{
    return FOTA_TAR_BLOCK + size + fota_tar_pad(size);
}

/* The end of an archive: two zero blocks. */
#define FOTA_TAR_END_BYTES (2 * FOTA_TAR_BLOCK)

#endif
