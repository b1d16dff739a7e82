/* arduino_img.h - the ESP8266 Arduino-core firmware file (elf2bin.py or
 * esptool-ck output: eboot at 0, the sketch at 0x1000): what a server must
 * accept at upload, what the device will report once it runs it, and the
 * core's own refusal checks on the first body bytes of a download.
 * Pure C99: no allocation, no OS calls, no printing (also built for
 * xtensa-lx106). Format and rules: reference arduino-ota §1, §4, §10. */
#ifndef FOTA_ARDUINO_IMG_H
#define FOTA_ARDUINO_IMG_H

#include <stddef.h>
#include <stdint.h>

#define FOTA_ARDUINO_SKETCH_OFF 0x1000u      /* sketch image header */
#define FOTA_ARDUINO_CRCW_OFF   0x1010u      /* __crc_len, __crc_val (core >= 2.7) */
#define FOTA_ARDUINO_CRCW_LEN   8u
#define FOTA_ARDUINO_MAX_SEGS   16u          /* per image (esptool's limit) */
#define FOTA_ARDUINO_MAX_SIZE   (16u << 20)  /* no image outgrows the largest flash */
#define FOTA_ARDUINO_HEAD_LEN   4u           /* body bytes the core peeks at (§4) */
#define FOTA_ARDUINO_MAGIC      0xE9u

/* How the sketch image's XOR checksum matched (§1.1). */
enum fota_arduino_csum {
    FOTA_ARDUINO_CSUM_BAD = 0,
    FOTA_ARDUINO_CSUM_STORED,      /* over the data as stored (cores <= 2.6, esptool-ck) */
    FOTA_ARDUINO_CSUM_CRC_ZEROED   /* only with file bytes 0x1010-0x1017 taken as zero:
                                    * elf2bin patches them after the checksum (every core >= 2.7 build) */
};

/* The length and CRC words at 0x1010 (reported, never a reason to refuse:
 * nothing on the device checks them during an update). */
enum fota_arduino_crcw {
    FOTA_ARDUINO_CRCW_ABSENT = 0,  /* both zero: built without add_crc (cores < 2.7) */
    FOTA_ARDUINO_CRCW_VALID,       /* length word = file length and the CRC matches */
    FOTA_ARDUINO_CRCW_MISMATCH     /* set, but not for these bytes */
};

/* One of the two images in the file. */
struct fota_arduino_part {
    uint32_t offset;            /* file offset of its 8-byte header */
    uint32_t nsegs;             /* segment count (header byte 1) */
    uint8_t mode_byte;          /* header byte 2 */
    uint8_t size_freq;          /* header byte 3: size code << 4 | freq code */
    uint32_t entry;             /* entry point */
    uint32_t seg_end;           /* file offset just after the last segment's data */
    uint32_t end;               /* (seg_end + 16) & ~15: just after the checksum byte */
    uint8_t checksum_stored;    /* the byte at end - 1 */
    uint8_t checksum_computed;  /* 0xEF ^ every data byte, as stored */
};

/* What fota_arduino_img_parse learns. Filled as far as parsing got, also on
 * error; plain data, copyable. */
struct fota_arduino_img_info {
    struct fota_arduino_part eboot;   /* at 0 */
    struct fota_arduino_part sketch;  /* at 0x1000 */
    int flash_mode;             /* file byte 2: 0 qio, 1 qout, 2 dio, 3 dout; -1 before it was read */
    int size_code;              /* file byte 3 >> 4; -1 before it was read */
    int freq_code;              /* file byte 3 & 15: 0 40 MHz, 1 26, 2 20, 15 80; -1 before */
    uint32_t flash_size;        /* size_code decoded to bytes (0 while unknown) */
    uint32_t sketch_size;       /* EspClass::getSketchSize once flashed (= sketch.end, absolute) */
    uint32_t file_len;          /* bytes given */
    uint32_t trailing;          /* bytes after sketch_size (copied by the device, outside its MD5) */
    enum fota_arduino_csum sketch_csum;
    enum fota_arduino_crcw crc_words;
    uint32_t crc_len_word;      /* LE word at 0x1010 */
    uint32_t crc_val_word;      /* LE word at 0x1014 */
    uint32_t crc_computed;      /* CRC (§1.1) over the file with both words zero */
    int error;                  /* 0, or the negative FOTA_E* parse returned */
    uint32_t error_offset;      /* file offset where the problem is */
    const char *reason;         /* static text for a 422 reply; NULL when error is 0 */
};

/* Validates a complete plain image (signature trailer stripped, gzip
 * inflated by the caller) as §10.1 says: eboot at 0 with a sane segment walk
 * and a matching checksum, ending before 0x1000; a sketch at 0x1000 with a
 * segment walk and checksum byte inside the file, its checksum matching as
 * stored or with 0x1010-0x1017 zeroed; file byte 2 a flash mode 0-3; the size
 * code one of 0,1,2,3,4,8,9. Bytes after the sketch are allowed (counted in
 * trailing). Returns 0, or FOTA_ETRUNC (the file ends inside the walk),
 * FOTA_EMAGIC (a header is not 0xE9; also gzip data), FOTA_ERANGE (segment
 * count, an eboot past 0x1000, a file over FOTA_ARDUINO_MAX_SIZE), FOTA_EINVAL
 * (flash mode, size code), FOTA_ECHECKSUM; out->reason says which.
 * buf may be NULL when len is 0; out must not be NULL. */
int fota_arduino_img_parse(const uint8_t *buf, size_t len, struct fota_arduino_img_info *out);

/* The core's size code decoded (EspClass::magicFlashChipSize): 0 -> 512 KB,
 * 1 -> 256 KB, 2 -> 1 MB, 3 -> 2 MB, 4 -> 4 MB, 8 -> 8 MB, 9 -> 16 MB, any
 * other code -> 0. Codes are not ordered: compare the decoded sizes. */
uint32_t fota_arduino_flash_size(unsigned size_code);

/* "qio", "qout", "dio", "dout" for 0-3; "unknown" otherwise. */
const char *fota_arduino_flash_mode_name(int mode);
/* The mode number of such a name (case-insensitive), or -1. */
int fota_arduino_flash_mode_parse(const char *name);

/* EspClass::getSketchSize's rounding of the end of the segment walk. */
uint32_t fota_arduino_sketch_round(uint32_t seg_end);

/* The CRC elf2bin.py stores at 0x1014 (polynomial 0x04C11DB7, MSB first,
 * no reflection, no final XOR): start with crc = 0xFFFFFFFF, feed pieces. */
uint32_t fota_arduino_crc_update(uint32_t crc, const void *data, size_t len);

/* The core's own verdict on a 200 answer, before it writes anything (§4,
 * steps 3.200.1-4), as its HTTP_UE_* code. */
enum fota_arduino_verdict {
    FOTA_ARDUINO_ACCEPT = 0,             /* goes on to download (it may still fail later) */
    FOTA_ARDUINO_TOO_LESS_SPACE = -100,  /* Content-Length > x-ESP8266-free-space */
    FOTA_ARDUINO_NO_SIZE = -101,         /* Content-Length absent or 0 */
    FOTA_ARDUINO_BAD_HEADER = -106,      /* fewer than 4 bytes, or byte 0 not 0xE9 (or 0x1F) */
    FOTA_ARDUINO_WRONG_FLASH = -107      /* 0xE9 body whose size code decodes above chip-size */
};

/* Predicts that verdict for a body of content_length bytes starting with
 * head[0..head_len) sent to a device that reported free_space and chip_size;
 * accepts_gzip is 1 for cores >= 2.7 (a 0x1F first byte passes). Gzip bodies
 * are not flash-size checked by the device. */
enum fota_arduino_verdict fota_arduino_device_verdict(const uint8_t *head, size_t head_len,
                                                      uint64_t content_length,
                                                      uint32_t free_space, uint32_t chip_size,
                                                      int accepts_gzip);

/* "Not Enough space", "Server Did Not Report Size", "Verify Bin Header
 * Failed", "New Binary Does Not Fit Flash Size" (the core's strings), "" for
 * ACCEPT, "unknown" otherwise. */
const char *fota_arduino_verdict_string(int verdict);

#endif
