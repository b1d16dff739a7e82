/* fotasim_ardimg.h - test images in the ESP8266 Arduino core's layout
 * (§1.1, as tools/elf2bin.py writes them): eboot (2 segments, zero padding
 * to the checksum byte, 0xAA filler) at 0 and the sketch (5 segments, the
 * version embedded as FOTAVER: in .rodata) at 0x1000, with the length and
 * CRC words of core >= 2.7 in the first 8 bytes of .irom0.text; and the
 * forms a release takes: a gzip member (§6.1) and the signature trailer
 * (§7.2, standard or the core 2.5 raw-digest form). */
#ifndef FOTASIM_ARDIMG_H
#define FOTASIM_ARDIMG_H

#include <stddef.h>
#include <stdint.h>

struct fotasim_ardimg_opts {
    const char *version;        /* embedded after FOTAVER: (at most 47 characters) */
    uint8_t flash_mode;         /* byte 2: 0 qio, 1 qout, 2 dio, 3 dout */
    uint8_t size_code;          /* byte 3's high nibble (4 = 4 MB) */
    uint32_t size;              /* the file's length, about (>= 8 KiB; 0: 64 KiB) */
    uint32_t seed;              /* the segments' bytes */
    int crc_words;              /* the core >= 2.7 patch (length and CRC words) */
};

/* A plain image; *out is malloc'ed. Returns 0 or -1. */
int fotasim_ardimg_build(const struct fotasim_ardimg_opts *o, uint8_t **out, size_t *len);
/* One gzip member of in at the best level; *out is malloc'ed. */
int fotasim_ardimg_gzip(const uint8_t *in, size_t n, uint8_t **out, size_t *len);
/* in || signature || uint32_le(len(signature)) with the RSA private key in
 * key_pem (PKCS#1 v1.5, SHA-256: DigestInfo, or the raw digest when
 * legacy); *out is malloc'ed. Returns 0 or -1 with err. */
int fotasim_ardimg_sign(const uint8_t *in, size_t n, const char *key_pem, int legacy, uint8_t **out,
                        size_t *len, char *err, size_t errcap);

#endif
