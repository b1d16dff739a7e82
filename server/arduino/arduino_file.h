/* arduino_file.h - what fotad checks and records about an Arduino-core
 * release file at upload: the gzip container, the signature trailer and its
 * RSA check, the plain image inside (common/arduino_img.h), the hashes of the
 * bytes served and of the image a device will run, and the fleet rules that
 * decide whether the product's devices would take the file.
 * Server-only (zlib, OpenSSL). Reference arduino-ota §1, §6, §7, §10. */
#ifndef FOTA_ARDUINO_FILE_H
#define FOTA_ARDUINO_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "arduino_img.h"

#define FOTA_ARDUINO_MD5_HEX    33     /* 32 lower-case hex + NUL */
#define FOTA_ARDUINO_SHA256_HEX 65
#define FOTA_ARDUINO_SIG_MIN    64u    /* trailer lengths taken as a signature (RSA 512..8192) */
#define FOTA_ARDUINO_SIG_MAX    1024u
#define FOTA_ARDUINO_REASON_MAX 256    /* a 422 reason, incl. NUL */

/* ------------------------------------------------------------ core lines */

/* A fleet's core line as major * 10 + minor: 24 ("2.4") ... 31 ("3.1").
 * What the line decides: signature form (2.5: legacy; >= 2.6: standard),
 * gzip bodies (>= 2.7), signed gzip (>= 3.0) (§4, §7.3). */
#define FOTA_ARDUINO_CORE_DEFAULT 31

/* "2.4", "2.5", "2.6", "2.7", "3.0", "3.1" (a third ".N" part is allowed and
 * ignored) -> the line; anything else -> -1. */
int fota_arduino_core_parse(const char *s);
/* The line as "X.Y" into buf (at least 4 bytes). */
void fota_arduino_core_format(int core, char *buf, size_t cap);

/* ----------------------------------------------------------------- gzip */

/* Inflates gz[0, len) as eboot needs it (§6.1, §10.9): one gzip member
 * (1f 8b, deflate), nothing after it, its CRC-32 right and its ISIZE (the
 * file's last 4 bytes, LE) equal to the inflated length, at most max_out
 * bytes. On success *out (fota_xmalloc'd, the caller frees) holds *out_len
 * bytes. Returns 0, FOTA_EMAGIC (not gzip), FOTA_ETRUNC, FOTA_EPROTO (a
 * second member or other bytes after the first, ISIZE or CRC mismatch, bad
 * deflate data), FOTA_ETOOBIG (over max_out); *reason says which. */
int fota_arduino_gz_inflate(const uint8_t *gz, size_t len, size_t max_out,
                            uint8_t **out, size_t *out_len, const char **reason);

/* Compresses in[0, len) into one gzip member at the best level (the
 * container eboot parses, not a raw zlib stream). *out is fota_xmalloc'd.
 * Returns 0 or FOTA_EIO. Deterministic: the same bytes in give the same out. */
int fota_arduino_gz_compress(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len);

/* eboot inflates while it copies from the staging area to address 0; the
 * output must not reach compressed bytes not read yet (§6.1):
 * inflated_len + roundup4096(gz_len) <= free_space + roundup4096(sketch_size),
 * with the device's x-ESP8266-free-space and sketch-size. 1 when safe. */
int fota_arduino_gz_fits(uint64_t inflated_len, uint64_t gz_len, uint64_t free_space,
                         uint64_t sketch_size);

/* ------------------------------------------------------------ signature */

enum fota_arduino_sig_form {
    FOTA_ARDUINO_SIG_NONE = 0,
    FOTA_ARDUINO_SIG_STANDARD,   /* PKCS#1 v1.5 over the SHA-256 DigestInfo (cores >= 2.6) */
    FOTA_ARDUINO_SIG_LEGACY      /* PKCS#1 v1.5 type 1 around the raw digest (cores 2.5.x) */
};

/* "none", "standard", "legacy". */
const char *fota_arduino_sig_form_name(enum fota_arduino_sig_form form);

/* Splits file = payload || signature || uint32_le(len(signature)) (§7.2).
 * Returns 0 with the parts (pointers into buf), or FOTA_ENOENT when the last
 * word is not a signature length (outside FOTA_ARDUINO_SIG_MIN..MAX or
 * longer than the file). */
int fota_arduino_sig_split(const uint8_t *buf, size_t len, size_t *payload_len,
                           const uint8_t **sig, size_t *sig_len);

/* Checks that pem holds an RSA public key (SubjectPublicKeyInfo or PKCS#1
 * "RSA PUBLIC KEY"); refuses private keys. *bits gets the modulus size.
 * Returns 0 or FOTA_ECONFIG with *reason. */
int fota_arduino_sig_key_check(const char *pem, size_t pem_len, unsigned *bits,
                               const char **reason);

/* Verifies sig over payload with the RSA public key in pem the way the core
 * does (§7.2): the signature is as long as the modulus, its PKCS#1 type-1
 * padding holds the SHA-256 of payload as a DigestInfo (with or without the
 * NULL parameters: standard) or bare (legacy). *form gets which. Returns 0,
 * FOTA_ECONFIG (bad key), FOTA_EINVAL (length), FOTA_EAUTH (does not verify),
 * with *reason. */
int fota_arduino_sig_verify(const char *pem, size_t pem_len, const uint8_t *payload,
                            size_t payload_len, const uint8_t *sig, size_t sig_len,
                            enum fota_arduino_sig_form *form, const char **reason);

/* --------------------------------------------------------------- hashes */

/* MD5 as 32 lower-case hex (what x-MD5 and x-ESP8266-sketch-md5 carry). */
void fota_arduino_md5_hex(const uint8_t *buf, size_t len, char out[FOTA_ARDUINO_MD5_HEX]);
void fota_arduino_sha256_hex(const uint8_t *buf, size_t len, char out[FOTA_ARDUINO_SHA256_HEX]);

/* The four sketch MD5s a device can report after running img (§6.3): MD5 of
 * img[0, sketch_size) with byte 2 (the flash mode, rewritten by the updater
 * to the device's own) set to 0, 1, 2, 3. sketch_size >= 3. */
void fota_arduino_mode_md5s(const uint8_t *img, size_t sketch_size,
                            char out[4][FOTA_ARDUINO_MD5_HEX]);

/* Index 0-3 of md5 (32 hex, any case) in the four variants, or -1. */
int fota_arduino_mode_md5_match(const char md5s[4][FOTA_ARDUINO_MD5_HEX], const char *md5);

/* ------------------------------------------------------- a release file */

/* The product's facts the upload check needs. */
struct fota_arduino_policy {
    int core;                 /* fleet core line (fota_arduino_core_parse) */
    int flash_mode;           /* the fleet's flash mode 0-3, -1 not known yet */
    int gzip;                 /* product option: serve the gzip container */
    const char *signing_pem;  /* product option signing_key; NULL: unsigned product */
    size_t signing_pem_len;
};

/* The product's options among themselves: gzip needs core 2.7, a signing
 * key core 2.5, both together core 3.0 (§4, §7.3). 0, or FOTA_ECONFIG with
 * a sentence in reason (cap bytes). Does not read the key. */
int fota_arduino_policy_check(const struct fota_arduino_policy *pol, char *reason, size_t cap);

/* Bytes fotad serves for one file, and their hashes (x-MD5 is md5). */
struct fota_arduino_served {
    const uint8_t *data;      /* NULL when this form is not served */
    size_t len;
    char md5[FOTA_ARDUINO_MD5_HEX];
    char sha256[FOTA_ARDUINO_SHA256_HEX];
};

/* What fota_arduino_file_check learns about one uploaded file. */
struct fota_arduino_file {
    int upload_gzip;                       /* the upload was a gzip container */
    enum fota_arduino_sig_form sig_form;   /* NONE for an unsigned product */
    size_t sig_len;                        /* signature bytes (trailer = sig_len + 4) */
    struct fota_arduino_served gz;         /* the gzip container (firmware.bin.gz; also
                                            * firmware.bin on a gzip product) */
    struct fota_arduino_served plain;      /* the plain file (with its trailer when signed) */
    size_t image_len;                      /* the inflated image without trailer */
    char image_md5[FOTA_ARDUINO_MD5_HEX];
    char image_sha256[FOTA_ARDUINO_SHA256_HEX];
    char sketch_md5[4][FOTA_ARDUINO_MD5_HEX]; /* fota_arduino_mode_md5s of the image */
    struct fota_arduino_img_info img;
    uint8_t *owned[2];                     /* buffers served data points into; see cleanup */
};

/* Checks one uploaded file (firmware.bin or firmware-minimal.bin) of an
 * arduino product against pol and fills *out. Rules:
 * - signed product: the trailer must be there and verify with the form the
 *   fleet's core expects (2.5: legacy, >= 2.6: standard);
 * - gzip upload: one member, ISIZE right, core >= 2.7; signed gzip: core >= 3.0
 *   and the product's gzip option (fotad cannot inflate what the signature
 *   covers); an unsigned gzip upload on a product without gzip is served
 *   inflated;
 * - a plain upload on a gzip product is compressed (best level) unless signed
 *   (then 422: fotad cannot sign);
 * - a signed plain image must carry the fleet's flash mode (the updater
 *   rewrites byte 2 before hashing, §7.4);
 * - the image inside passes fota_arduino_img_parse.
 * buf must stay alive while *out is used (served data may point into it).
 * Returns 0, or a negative FOTA_E* with a sentence in reason (cap bytes) for
 * the 422 reply. Call fota_arduino_file_cleanup in both cases. */
int fota_arduino_file_check(const uint8_t *buf, size_t len, const struct fota_arduino_policy *pol,
                            struct fota_arduino_file *out, char *reason, size_t cap);

/* Frees what file_check allocated; out stays zeroed. NULL is a no-op. */
void fota_arduino_file_cleanup(struct fota_arduino_file *f);

#endif
