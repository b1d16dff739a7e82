/* fwimg.h - the ESP8266 firmware-image codec: parse and verify user1.bin /
 * user2.bin (one-shot or streamed in caller storage), the flash maps and
 * their slot budgets, the release acceptance rules, and a builder of valid
 * test images. Pure C99: no malloc, no OS calls, no printing (also built for
 * xtensa-lx106). Formats: docs/image.md and reference espressif-protocol §5-7. */
#ifndef FOTA_FWIMG_H
#define FOTA_FWIMG_H

#include <stddef.h>
#include <stdint.h>

#include "crc32.h"
#include "sha256.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- limits */

#define FOTA_FWIMG_MAX_SEGS     16          /* E9 segments kept in the info (esptool's limit) */
#define FOTA_FWIMG_VERSION_MAX  32          /* embedded version incl. NUL */
#define FOTA_FWIMG_HEAD_LEN     32          /* first bytes kept for sniffing */
#define FOTA_FWIMG_MAX_SIZE     (16u << 20) /* no image is larger than the largest flash */
#define FOTA_FWIMG_OLD_IROM_OFF 0x10000u    /* old layout: irom starts here */
#define FOTA_FWIMG_CHECKSUM_INIT 0xEFu      /* XOR checksum seed (SDK/rBoot CHKSUM_INIT) */
#define FOTA_FWIMG_VERSION_MARKER "FOTAVER:" /* builder: marker + version + NUL in irom */

/* ----------------------------------------------------------------- enums */

enum fota_fwimg_layout {
    FOTA_FWIMG_LAYOUT_UNKNOWN = 0,
    FOTA_FWIMG_LAYOUT_V2,   /* "new" boot_mode 2: EA 04 header + irom (esptool may omit it), then the E9 image, CRC */
    FOTA_FWIMG_LAYOUT_V1,   /* plain E9 image (boot_mode 0 / esptool v1), optional CRC */
    FOTA_FWIMG_LAYOUT_OLD   /* boot_mode 1: E9 image, 0xFF up to 0x10000, raw irom, CRC */
};

/* What the first header's bytes 2 and 3 mean. */
enum fota_fwimg_variant {
    FOTA_FWIMG_VARIANT_NONE = 0,
    FOTA_FWIMG_VARIANT_NONOS2,   /* EA 04 00 <app>: NONOS >= 2.0 gen_appbin (byte2 0, byte3 = 1|2) */
    FOTA_FWIMG_VARIANT_LEGACY,   /* EA 04 <mode> <map<<4|freq>: RTOS 1.x / NONOS 1.x gen_appbin, esptool --version 2 */
    FOTA_FWIMG_VARIANT_APP,      /* E9 03 00 <app>: gen_appbin boot_mode 1 (byte3 = 1|2) */
    FOTA_FWIMG_VARIANT_SDK09,    /* E9 03 00 00: SDK 0.9.x (no app byte, no CRC) */
    FOTA_FWIMG_VARIANT_FLASHHDR  /* E9 nn <mode> <map<<4|freq>: esptool v1 flash header */
};

enum fota_fwimg_slot {
    FOTA_FWIMG_SLOT_UNKNOWN = 0,
    FOTA_FWIMG_SLOT_USER1 = 1,
    FOTA_FWIMG_SLOT_USER2 = 2
};

/* How the slot was decided (§6.4: byte 3 is the only reliable marker). */
enum fota_fwimg_slot_src {
    FOTA_FWIMG_SLOTSRC_NONE = 0,   /* undecided (slot UNKNOWN) */
    FOTA_FWIMG_SLOTSRC_BYTE3,      /* byte 3 is gen_appbin's app field (variants NONOS2, APP) */
    FOTA_FWIMG_SLOTSRC_NAME        /* from the file name (release check only; parse never sets it) */
};

enum fota_fwimg_crc_state {
    FOTA_FWIMG_CRC_ABSENT = 0,     /* layout carries no CRC (V1 without tail, SDK 0.9 old image) */
    FOTA_FWIMG_CRC_VALID,
    FOTA_FWIMG_CRC_INVALID
};

/* What a file looks like from its first bytes (fota_fwimg_sniff). */
enum fota_fwimg_kind {
    FOTA_FWIMG_KIND_EMPTY = 0,
    FOTA_FWIMG_KIND_IMAGE,     /* EA 04 or E9 03 (or E9 with another segment count) */
    FOTA_FWIMG_KIND_HTML,      /* starts with '<' after optional BOM/whitespace */
    FOTA_FWIMG_KIND_ZIP,       /* PK\3\4, PK\5\6 */
    FOTA_FWIMG_KIND_GZIP,      /* 1F 8B */
    FOTA_FWIMG_KIND_ELF,       /* 7F 'E' 'L' 'F' (the .out/.elf, not the gen_appbin output) */
    FOTA_FWIMG_KIND_OTHER
};

/* ------------------------------------------------------------ the report */

struct fota_fwimg_seg {
    uint32_t addr;     /* load address from the segment header */
    uint32_t len;      /* data length from the segment header */
    uint32_t offset;   /* file offset of the segment data */
};

/* Everything fota_fwimg_parse / fota_fwimg_end learn about an image. Plain
 * data, copyable. Filled as far as parsing got, also on error. */
struct fota_fwimg_info {
    enum fota_fwimg_layout layout;
    enum fota_fwimg_variant variant;
    enum fota_fwimg_slot slot;
    enum fota_fwimg_slot_src slot_src;
    uint8_t byte2, byte3;       /* raw bytes 2 and 3 of the file (what the device checks) */
    uint32_t entry;             /* entry point (from the E9 header) */
    uint32_t irom_addr;         /* V2: irom load-address field (gen_appbin writes 0) */
    uint32_t irom_offset;       /* file offset of the irom data (0 if none) */
    uint32_t irom_len;          /* irom length (V2: header field; OLD: up to the CRC) */
    uint32_t nsegs;             /* E9 segment count (header value; segs[] holds the first 16) */
    struct fota_fwimg_seg segs[FOTA_FWIMG_MAX_SEGS];
    int flash_mode;             /* 0 QIO, 1 QOUT, 2 DIO, 3 DOUT; -1 unknown */
    int size_map;               /* 0..15 (§7.1); -1 unknown (layout does not carry it) */
    int flash_freq;             /* 0 40 MHz, 1 26.7, 2 20, 15 80; -1 unknown */
    uint8_t checksum_stored;    /* XOR checksum byte in the file */
    uint8_t checksum_computed;  /* 0xEF ^ all E9 segment data */
    int checksum_valid;         /* 1 if equal */
    uint32_t checksum_offset;   /* file offset of the checksum byte (≡ 15 mod 16) */
    uint32_t crc_stored;        /* last 4 bytes, LE (when present) */
    uint32_t crc_computed;      /* fota_esp_crc_stored(zlib crc of all but the last 4 bytes) */
    enum fota_fwimg_crc_state crc_state;
    uint32_t total_size;        /* bytes seen */
    int has_sha256;             /* 0 when FOTA_FWIMG_F_NO_SHA256 */
    uint8_t sha256[FOTA_SHA256_LEN]; /* of the whole file */
    char version[FOTA_FWIMG_VERSION_MAX]; /* after "FOTAVER:", "" if none */
    uint32_t version_offset;    /* file offset of the marker (valid when version[0]) */
    uint8_t head[FOTA_FWIMG_HEAD_LEN]; /* first bytes fed (kept also after an error) */
    uint32_t head_len;
    /* After a structural error (not ECRC/ECHECKSUM) total_size = error_offset
     * and version is cleared, so the report does not depend on the chunking. */
    int error;                  /* 0, or the negative FOTA_E* parsing stopped with */
    uint32_t error_offset;      /* file offset where it was detected */
    const char *error_what;     /* static text ("bad magic", "segment 2 header truncated"), NULL if none */
};

/* ------------------------------------------------------------- streaming */

#define FOTA_FWIMG_F_NO_SHA256     0x01u  /* skip SHA-256 (slow devices); info.has_sha256 = 0 */
#define FOTA_FWIMG_F_EXPECT_USER1  0x02u  /* refuse (FOTA_ESLOT) unless byte 3 == 1, as the device does (§3.3) */
#define FOTA_FWIMG_F_EXPECT_USER2  0x04u  /* ... unless byte 3 == 2 */
#define FOTA_FWIMG_F_REQUIRE_CRC   0x08u  /* an absent CRC makes end() fail with FOTA_ECRC */
/* The EXPECT flag for slot n (1 or 2; 0 for any other n). */
#define FOTA_FWIMG_F_EXPECT_SLOT(n) \
    ((n) == 1 ? FOTA_FWIMG_F_EXPECT_USER1 : (n) == 2 ? FOTA_FWIMG_F_EXPECT_USER2 : 0u)

/* Stream state in caller storage (embed it anywhere; ~600 bytes). The fields
 * are private: use the functions. */
struct fota_fwimg_stream {
    struct fota_fwimg_info info;
    struct fota_sha256 sha;
    uint32_t flags;
    uint32_t pos;         /* bytes consumed so far */
    uint32_t need;        /* bytes left in the current field or region */
    uint32_t crc;         /* zlib CRC of the bytes that left the 4-byte window */
    uint32_t tail_len;    /* E9 layouts: bytes after the checksum */
    int err;              /* sticky error */
    uint8_t state;
    uint8_t hdr[8];
    uint8_t hdr_fill;
    uint8_t win[4];       /* the last 4 bytes seen (candidate CRC) */
    uint8_t seg_i;        /* current E9 segment */
    uint8_t xsum;
    uint8_t tail_ff;      /* 1 while every tail byte is 0xFF */
    uint8_t ver_match;    /* marker bytes matched */
    uint8_t ver_len;      /* version bytes collected; 0xFF = done */
    char ver_buf[FOTA_FWIMG_VERSION_MAX];
    uint32_t ver_off;
    uint32_t (*crc32)(uint32_t crc, const void *data, size_t len); /* NULL: fota_crc32_update */
};

/* Starts a stream; flags are FOTA_FWIMG_F_*. Never fails for valid s. */
void fota_fwimg_begin(struct fota_fwimg_stream *s, uint32_t flags);

/* Optional, after begin: a faster CRC-32 with exactly fota_crc32_update's
 * semantics (a host's zlib crc32); NULL keeps the portable one. The result
 * does not change; only the time it takes. */
void fota_fwimg_set_crc(struct fota_fwimg_stream *s,
                        uint32_t (*crc32)(uint32_t crc, const void *data, size_t len));

/* Feeds len bytes (any chunking, also 1 byte at a time). Returns 0, or a
 * negative FOTA_E* as soon as the input is known to be bad: FOTA_EMAGIC after
 * the byte that breaks the magic, FOTA_ESLOT after byte 3 (with an EXPECT
 * flag), FOTA_ERANGE for an impossible segment count/length or a file beyond
 * FOTA_FWIMG_MAX_SIZE, FOTA_EPROTO for data after the end of the image. The
 * error is sticky: later calls return it again. Does not keep data. */
int fota_fwimg_update(struct fota_fwimg_stream *s, const void *data, size_t len);

/* Finishes (once per begin): copies the report to *out (may be NULL) and
 * returns 0 if the image is complete and sound: structure parsed, XOR
 * checksum valid, CRC valid (or absent where the layout allows it and
 * F_REQUIRE_CRC is not set).
 * Otherwise FOTA_ETRUNC (incomplete), FOTA_ECHECKSUM, FOTA_ECRC, or the error
 * update() returned. out->error holds the same code. */
int fota_fwimg_end(struct fota_fwimg_stream *s, struct fota_fwimg_info *out);

/* One shot: begin(0) + update(buf, len) + end. Same result as any chunking. */
int fota_fwimg_parse(const uint8_t *buf, size_t len, struct fota_fwimg_info *out);
/* Same with FOTA_FWIMG_F_* flags. */
int fota_fwimg_parse_flags(const uint8_t *buf, size_t len, uint32_t flags,
                           struct fota_fwimg_info *out);

/* The device's download check (§3.3) on the first bytes of a body: magic
 * E9 03 or EA 04 and byte 3 == expected_slot (1 or 2; 0 = do not check).
 * Returns 0, FOTA_EAGAIN if fewer than the bytes needed, FOTA_EMAGIC, FOTA_ESLOT. */
int fota_fwimg_check_head(const uint8_t *buf, size_t len, int expected_slot);

/* What the first bytes look like. */
enum fota_fwimg_kind fota_fwimg_sniff(const uint8_t *buf, size_t len);

/* Static names for reports and JSON ("v2", "nonos2", "user1", "valid", "QIO",
 * "40MHz"...). Never NULL ("unknown" for out-of-range values). */
const char *fota_fwimg_layout_name(enum fota_fwimg_layout layout);
const char *fota_fwimg_variant_name(enum fota_fwimg_variant variant);
const char *fota_fwimg_slot_name(enum fota_fwimg_slot slot);
const char *fota_fwimg_slot_src_name(enum fota_fwimg_slot_src src);
const char *fota_fwimg_crc_state_name(enum fota_fwimg_crc_state state);
const char *fota_fwimg_kind_name(enum fota_fwimg_kind kind);          /* "an HTML page", "a zip file", ... */
const char *fota_fwimg_flash_mode_name(int mode);
const char *fota_fwimg_flash_freq_name(int freq);

/* ------------------------------------------------------------ flash maps */

/* One row of §7.2. Budget choice (the decision, with its source): slot_budget
 * is the largest image that fits in BOTH slot regions without overlapping the
 * next region of the standard layout, which is exactly FOTA_Demo's sector
 * counts (esp8266-rtos-sample-code 06Cloud/FOTA_Demo upgrade.h): map 0 58
 * sectors (user2 0x41000..RF cal 0x7B000), maps 2/3/4 122 sectors (user2
 * 0x81000..0xFB000), maps 5/6/8/9 250 sectors (user2 0x101000..0x1FB000).
 * sdk3_ota_size is the smaller 0x6A000 OTA partition of the NONOS SDK 3.0
 * IoT_Demo table (what system_partition_get_ota_partition_size() returns on
 * such a device and checks against Content-Length); 0 where SDK 3 has no
 * table (map 0). The release check enforces slot_budget; a server may warn
 * above sdk3_ota_size. */
struct fota_flash_map {
    int map;                  /* size map code (§7.1) */
    const char *name;         /* "1MB 512+512" */
    uint32_t flash_size;      /* bytes */
    uint32_t slot_size;       /* 0x40000, 0x80000 or 0x100000 (the slot's half) */
    uint32_t user1_addr;      /* 0x1000 */
    uint32_t user2_addr;      /* 0x41000 / 0x81000 / 0x101000 */
    uint32_t slot_budget;     /* bytes, see above */
    uint32_t sdk3_ota_size;   /* bytes, 0 if none */
    uint32_t priv_param_addr; /* IoT_Demo private param sector, 0 = user-defined */
    uint32_t rf_cal_addr;     /* flash_size - 0x5000 */
    uint32_t phy_init_addr;   /* flash_size - 0x4000 (esp_init_data_default.bin) */
    uint32_t sys_param_addr;  /* flash_size - 0x3000: copy 0, +0x1000 copy 1, +0x2000 flag */
    int nslots;               /* 2 for every map in the table */
};

/* The row for size map 0, 2, 3, 4, 5, 6, 8 or 9; NULL for any other code. */
const struct fota_flash_map *fota_flash_map_get(int map);

/* -------------------------------------------------------- release rules */

#define FOTA_RELEASE_MAX_FILES 10

/* One file of a release. Give either data/len (parsed here) or info (already
 * parsed or streamed, e.g. at upload; data may then be NULL). Borrowed. */
struct fota_release_file {
    const char *name;                    /* "user1.bin", "user2.bin", or any other name */
    const uint8_t *data;
    size_t len;
    const struct fota_fwimg_info *info;  /* optional; wins over data */
};

/* Accepts (0) or refuses a release. map may be NULL (unknown product map:
 * budget and layout checks skipped). Rules, first failure wins: at most 10
 * files, unique names, user1.bin and user2.bin present, each of them an
 * ESP8266 image (else "user1.bin is an HTML page ..."/"a zip file"/"not an
 * ESP8266 image"), complete, with a valid checksum and CRC, byte 3 = its
 * slot, within map->slot_budget, built for a size map whose slot layout
 * matches map, and both built for the same size map. Other files are not
 * checked. reason (may be NULL) receives one NUL-terminated sentence naming
 * the file, truncated to reason_len. Returns 0, FOTA_EINVAL (file set, not an
 * image), FOTA_ENOENT (missing slot image), the parse error of a malformed
 * image (FOTA_ETRUNC, FOTA_EPROTO, FOTA_ERANGE, FOTA_EMAGIC), FOTA_ECRC,
 * FOTA_ECHECKSUM, FOTA_ESLOT, FOTA_ETOOBIG, FOTA_ECONFIG (size map mismatch).
 * The messages are listed in docs/image.md. */
int fota_fwimg_release_check(const struct fota_flash_map *map,
                             const struct fota_release_file *files, size_t n,
                             char *reason, size_t reason_len);

/* How the release check identifies the slot of user1.bin / user2.bin. */
#define FOTA_RELEASE_F_SLOT_BY_NAME 0x01u
/* Same as fota_fwimg_release_check with flags; flags 0 is exactly that
 * function. FOTA_RELEASE_F_SLOT_BY_NAME (a product whose devices do not check
 * byte 3: the seed's RTOS 1.x client, RTOS 1.x FOTA_Demo) also accepts an RTOS
 * 1.x / NONOS 1.x gen_appbin image (variant LEGACY: EA 04 <flash mode>
 * <size map<<4|freq>) as the slot its file name says, if bytes 2-3 are a valid
 * flash mode, size map and frequency equal to the E9 header's (and the map
 * rules above still apply to that size map); its slot is then reported as
 * the name's. A byte 3 that names the other slot is refused in both modes. */
int fota_fwimg_release_check_flags(const struct fota_flash_map *map,
                                   const struct fota_release_file *files, size_t n,
                                   uint32_t flags, char *reason, size_t reason_len);

/* --------------------------------------------------------------- builder */

/* Options for a synthetic NONOS >= 2.0 "new" image. Start from
 * fota_fwimg_build_opts_init() and change what matters. */
struct fota_fwimg_build_opts {
    int slot;              /* 1 or 2 (byte 3) */
    int size_map;          /* a code fota_flash_map_get() knows */
    int flash_mode;        /* 0..3 */
    int flash_freq;        /* 0, 1, 2 or 15 */
    uint32_t entry;        /* entry point; 0 = 0x40100004 */
    uint32_t irom_size;    /* irom bytes (rounded up to 16; grown to hold the version) */
    uint32_t text_size;    /* .text @ 0x40100000 (rounded up to 4), 1..0x8000 */
    uint32_t data_size;    /* .data @ 0x3FFE8000 (rounded up to 4); 0 = no .data segment */
    uint32_t rodata_size;  /* .rodata after .data (rounded up to 4), 1..0x14000 */
    const char *version;   /* embedded as "FOTAVER:" version NUL; NULL = none; printable, < 32 */
    uint32_t seed;         /* filler bytes come from this seed (same opts = same bytes) */
    int rtos1_header;      /* 1: RTOS 1.x gen_appbin first header EA 04 <flash_mode>
                            * <size_map<<4|freq> (no slot number; variant LEGACY) */
};

/* Realistic small defaults: slot 1, map 2, QIO, 40 MHz, irom 4 KiB, .text
 * 2 KiB, .data 64 B, .rodata 512 B, no version, seed 1. */
void fota_fwimg_build_opts_init(struct fota_fwimg_build_opts *o);

/* Size fota_fwimg_build() will write for o (always ≡ 4 mod 16), or 0 if o is
 * invalid. */
size_t fota_fwimg_build_size(const struct fota_fwimg_build_opts *o);

/* Sets o->irom_size so the image is as large as possible but <= total bytes.
 * Returns 0, FOTA_EINVAL (bad o) or FOTA_ERANGE (total below the minimum). */
int fota_fwimg_build_fit(struct fota_fwimg_build_opts *o, size_t total);

/* Writes the image to out (capacity cap) and its size to *len. Returns 0,
 * FOTA_EINVAL (bad options) or FOTA_ETOOBIG (cap too small; *len = needed).
 * The result parses as layout V2 / variant NONOS2 / slot o->slot with a valid
 * checksum and CRC (variant LEGACY / slot unknown with o->rtos1_header). */
int fota_fwimg_build(const struct fota_fwimg_build_opts *o, uint8_t *out, size_t cap,
                     size_t *len);

#ifdef __cplusplus
}
#endif

#endif
