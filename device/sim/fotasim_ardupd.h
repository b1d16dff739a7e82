/* fotasim_ardupd.h - the Arduino core's update path, sans-IO over the
 * device's flash: ESPhttpUpdate's decision on a response (§4, every
 * refusal -100 ... -108 and 304), the UpdaterClass that stages the image
 * at the end of the sketch area (§5: space check, x-MD5 rules, the
 * flash-mode byte rewrite, MD5 of the received bytes, the signature
 * check of §7 with the core 2.5 raw-digest form, the end checks and the
 * eboot command), and getLastErrorString's texts per core line. */
#ifndef FOTASIM_ARDUPD_H
#define FOTASIM_ARDUPD_H

#include <stddef.h>
#include <stdint.h>

#include "fotadev.h"
#include "fotasim_ardhttp.h"

/* ESPhttpUpdate results (§0.3) and its own error codes (§4). */
enum { FOTASIM_UPDATE_FAILED = 0, FOTASIM_UPDATE_NO_UPDATES = 1, FOTASIM_UPDATE_OK = 2 };
enum {
    FOTASIM_UE_TOO_LESS_SPACE = -100, FOTASIM_UE_SERVER_NOT_REPORT_SIZE = -101,
    FOTASIM_UE_SERVER_FILE_NOT_FOUND = -102, FOTASIM_UE_SERVER_FORBIDDEN = -103,
    FOTASIM_UE_SERVER_WRONG_HTTP_CODE = -104, FOTASIM_UE_SERVER_FAULTY_MD5 = -105,
    FOTASIM_UE_BIN_VERIFY_HEADER_FAILED = -106, FOTASIM_UE_BIN_FOR_WRONG_FLASH = -107,
    FOTASIM_UE_SERVER_UNAUTHORIZED = -108
};
/* UpdaterClass errors (§5). */
enum {
    FOTASIM_UPD_OK = 0, FOTASIM_UPD_WRITE = 1, FOTASIM_UPD_ERASE = 2, FOTASIM_UPD_READ = 3,
    FOTASIM_UPD_SPACE = 4, FOTASIM_UPD_SIZE = 5, FOTASIM_UPD_STREAM = 6, FOTASIM_UPD_MD5 = 7,
    FOTASIM_UPD_FLASH_CONFIG = 8, FOTASIM_UPD_NEW_FLASH_CONFIG = 9, FOTASIM_UPD_MAGIC_BYTE = 10,
    FOTASIM_UPD_BOOTSTRAP = 11, FOTASIM_UPD_SIGN = 12, FOTASIM_UPD_NO_DATA = 13
};

struct evp_pkey_st;

/* What the update code reads from the device (ESP.* and the linker's
 * FS_start), and the verifier a signed build installs. */
struct fotasim_ardenv {
    int core;                   /* FOTASIM_CORE_* */
    uint32_t sketch_area;       /* FS_start - 0x40200000: the sketch and its staged copy */
    uint32_t sketch_size;       /* getSketchSize() */
    uint32_t chip_size;         /* getFlashChipRealSize() */
    uint8_t flash_mode;         /* getFlashChipMode(): byte 2 at flash 0 */
    uint8_t size_code;          /* byte 3 >> 4 at flash 0 (the running header) */
    struct evp_pkey_st *pubkey; /* --pubkey: RSA key of an installed verifier, NULL none */
};

/* ESP.getFreeSketchSpace(): sketch_area - roundup4096(sketch_size). */
uint32_t fotasim_ardenv_free_space(const struct fotasim_ardenv *e);

/* The eboot command the updater leaves in RTC memory (copy size bytes
 * from src to dst at the next boot). */
struct fotasim_ebcmd {
    int valid;
    uint32_t src, dst, size;
};

struct fotasim_updater {
    const struct fotasim_ardenv *env;
    struct fotadev_flash_ops flash;
    int running;                /* begin() succeeded and nothing reset it since */
    int error;                  /* FOTASIM_UPD_* */
    char errstr[200];           /* printError's text for error */
    uint32_t start, size;       /* staging address and the length begun */
    uint32_t written;           /* bytes handed to the flash */
    uint8_t buf[4096];
    size_t buf_len;
    void *md5;                  /* EVP_MD_CTX of the received bytes (no verifier) */
    char target_md5[64];
    int have_target;
};

/* UpdaterClass::begin(size, U_FLASH). 0, or the error (also in u->error):
 * FOTASIM_UPD_SPACE, FOTASIM_UPD_FLASH_CONFIG; -1 when u is still running
 * (a previous setMD5 refusal left it so: no error is set, §5.2). */
int fotasim_upd_begin(struct fotasim_updater *u, const struct fotasim_ardenv *env,
                      const struct fotadev_flash_ops *flash, uint32_t size);
/* setMD5: 0, or -1 unless exactly 32 characters (u stays running). */
int fotasim_upd_set_md5(struct fotasim_updater *u, const char *md5);
/* writeStream's first check on the next byte: 0, or FOTASIM_UPD_MAGIC_BYTE
 * (u is reset). */
int fotasim_upd_check_first(struct fotasim_updater *u, uint8_t b);
/* Bytes of the image: at most what remains (the rest is ignored, as the
 * core reads exactly size bytes). Returns bytes taken, or -1 after an
 * error (u->error). */
long fotasim_upd_write(struct fotasim_updater *u, const uint8_t *p, size_t n);
/* Bytes still due. */
uint32_t fotasim_upd_remaining(const struct fotasim_updater *u);
/* end(): signature or MD5, the end checks, and *cmd. 0 or the error. */
int fotasim_upd_end(struct fotasim_updater *u, struct fotasim_ebcmd *cmd);
/* Sets error (with its text) and resets, as a stream timeout does. */
void fotasim_upd_fail(struct fotasim_updater *u, int error);
/* Frees the MD5 state; u is not running afterwards. */
void fotasim_upd_reset(struct fotasim_updater *u);

/* ESPhttpUpdate::handleUpdate after the header: the HTTPClient result rc
 * (<= 0 an error, else the status) and the header. Returns
 * FOTASIM_UPDATE_FAILED with *err, FOTASIM_UPDATE_NO_UPDATES, or -1 for
 * "200 with a length that fits: peek 4 body bytes" (*len set). */
int fotasim_ardupd_decide(const struct fotasim_ardresp *r, int rc, const struct fotasim_ardenv *env,
                          int *err, long *len);
/* The peeked bytes (§4.3.3-4): 0, FOTASIM_UE_BIN_VERIFY_HEADER_FAILED or
 * FOTASIM_UE_BIN_FOR_WRONG_FLASH. */
int fotasim_ardupd_check4(const uint8_t b[4], const struct fotasim_ardenv *env);
/* getLastErrorString() for err (updater text from u for err > 0). */
void fotasim_ardupd_error_string(int core, int err, const struct fotasim_updater *u, char *out,
                                 size_t cap);

/* The RSA public key in a PEM file, or NULL (err says why). */
struct evp_pkey_st *fotasim_ard_load_pubkey(const char *path, char *err, size_t errcap);
void fotasim_ard_free_pubkey(struct evp_pkey_st *k);

#endif
