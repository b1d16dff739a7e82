/* fotasim_ardupd.c - ESPhttpUpdate's decision (§4) and the core's
 * UpdaterClass (§5, §7) over the device's flash. The texts and the order
 * of the checks are the core's: the space test before any body byte, 4
 * peeked bytes, the first-byte check again in writeStream, the mode byte
 * rewritten in flash but hashed as received, the signature over the staged
 * flash, then the magic and size checks of _verifyEnd. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "arduino_img.h"
#include "fota_str.h"
#include "fotasim_ardupd.h"
#include "hex.h"

#define SEC 4096u

static uint32_t round4k(uint32_t n)
{
    return (n + SEC - 1) & ~(SEC - 1);
}

uint32_t fotasim_ardenv_free_space(const struct fotasim_ardenv *e)
{
    uint32_t used = round4k(e->sketch_size);
    return e->sketch_area > used ? e->sketch_area - used : 0;
}

/* ---- the updater ---- */

static const char *upd_text(int core, int e)
{
    int old = core < FOTASIM_CORE_30;     /* 2.7.4's printError (and before) */
    switch (e) {
    case FOTASIM_UPD_OK: return "No Error";
    case FOTASIM_UPD_WRITE: return "Flash Write Failed";
    case FOTASIM_UPD_ERASE: return "Flash Erase Failed";
    case FOTASIM_UPD_READ: return "Flash Read Failed";
    case FOTASIM_UPD_SPACE: return "Not Enough Space";
    case FOTASIM_UPD_SIZE: return "Bad Size Given";
    case FOTASIM_UPD_STREAM: return "Stream Read Timeout";
    case FOTASIM_UPD_MAGIC_BYTE: return old ? "Magic byte is wrong, not 0xE9" : "Magic byte is not 0xE9";
    case FOTASIM_UPD_BOOTSTRAP: return "Invalid bootstrapping state, reset ESP8266 before updating";
    case FOTASIM_UPD_SIGN: return "Signature verification failed";
    case FOTASIM_UPD_NO_DATA: return "No data supplied";
    default: return "UNKNOWN";
    }
}

static int set_error(struct fotasim_updater *u, int e)
{
    u->error = e;
    if (e != FOTASIM_UPD_MD5 && e != FOTASIM_UPD_FLASH_CONFIG && e != FOTASIM_UPD_NEW_FLASH_CONFIG)
        fota_str_copy(u->errstr, sizeof(u->errstr), upd_text(u->env->core, e));
    return e;
}

void fotasim_upd_reset(struct fotasim_updater *u)
{
    if (u->md5)
        EVP_MD_CTX_free(u->md5);
    u->md5 = NULL;
    u->running = 0;
    u->buf_len = 0;
    u->have_target = 0;
}

void fotasim_upd_fail(struct fotasim_updater *u, int error)
{
    set_error(u, error);
    fotasim_upd_reset(u);
}

int fotasim_upd_begin(struct fotasim_updater *u, const struct fotasim_ardenv *env,
                      const struct fotadev_flash_ops *flash, uint32_t size)
{
    uint32_t end = env->sketch_area, rounded = round4k(size);

    if (u->running)
        return -1;                       /* "already running": false, no error set */
    memset(u, 0, sizeof(*u));
    u->env = env;
    u->flash = *flash;
    if (size == 0)
        return set_error(u, FOTASIM_UPD_SIZE);
    if (fota_arduino_flash_size(env->size_code) > env->chip_size) {
        u->error = FOTASIM_UPD_FLASH_CONFIG;
        snprintf(u->errstr, sizeof(u->errstr),
                 env->core >= FOTASIM_CORE_30 ? "Flash config wrong: real: %u, SDK: %u"
                                              : "Flash config wrong real: %u IDE: %u",
                 (unsigned)env->chip_size, (unsigned)fota_arduino_flash_size(env->size_code));
        return u->error;
    }
    /* staged at the end of the sketch area, below the file system */
    u->start = end > rounded ? end - rounded : 0;
    if (u->start < round4k(env->sketch_size))
        return set_error(u, FOTASIM_UPD_SPACE);
    u->size = size;
    u->running = 1;
    if (!env->pubkey) {                  /* the MD5 is not computed under a verifier */
        if (!(u->md5 = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(u->md5, EVP_md5(), NULL))
            return set_error(u, FOTASIM_UPD_WRITE);
    }
    return 0;
}

int fotasim_upd_set_md5(struct fotasim_updater *u, const char *md5)
{
    if (strlen(md5) != 32)
        return -1;                       /* and the updater stays running (§5.2) */
    fota_str_copy(u->target_md5, sizeof(u->target_md5), md5);
    u->have_target = 1;
    return 0;
}

/* _verifyHeader for U_FLASH: 0xE9, or 0x1F from core 2.7 on. */
int fotasim_upd_check_first(struct fotasim_updater *u, uint8_t b)
{
    if (b == 0xE9 || (b == 0x1F && u->env->core >= FOTASIM_CORE_27))
        return 0;
    fotasim_upd_fail(u, FOTASIM_UPD_MAGIC_BYTE);
    return FOTASIM_UPD_MAGIC_BYTE;
}

/* _writeBuffer: erase on a sector start, the mode byte of the first buffer
 * written as the device's own (unless gzip), restored before hashing. */
static int write_buffer(struct fotasim_updater *u)
{
    uint32_t addr = u->start + u->written;
    uint8_t saved = 0;
    size_t n = u->buf_len, padded = (n + 3) & ~(size_t)3;
    int modify = 0, rc = 0;

    if (addr % SEC == 0 && u->flash.erase(u->flash.ud, addr / SEC) < 0) {
        fotasim_upd_fail(u, FOTASIM_UPD_ERASE);
        return -1;
    }
    if (u->written == 0 && u->buf[0] != 0x1F && n > 2 && u->buf[2] != u->env->flash_mode) {
        modify = 1;
        saved = u->buf[2];
        u->buf[2] = u->env->flash_mode;
    }
    memset(u->buf + n, 0xFF, padded - n);     /* a short tail: whole words, erased bits */
    rc = u->flash.write(u->flash.ud, addr, u->buf, (uint32_t)padded);
    if (modify)
        u->buf[2] = saved;
    if (rc < 0) {
        fotasim_upd_fail(u, FOTASIM_UPD_WRITE);
        return -1;
    }
    if (u->md5)
        EVP_DigestUpdate(u->md5, u->buf, n);
    u->written += (uint32_t)n;
    u->buf_len = 0;
    return 0;
}

uint32_t fotasim_upd_remaining(const struct fotasim_updater *u)
{
    return u->size - u->written - (uint32_t)u->buf_len;
}

long fotasim_upd_write(struct fotasim_updater *u, const uint8_t *p, size_t n)
{
    size_t taken = 0;

    if (!u->running || u->error)
        return -1;
    while (taken < n && fotasim_upd_remaining(u) > 0) {
        size_t room = sizeof(u->buf) - u->buf_len, rem = fotasim_upd_remaining(u), k = n - taken;
        if (k > room)
            k = room;
        if (k > rem)
            k = rem;
        memcpy(u->buf + u->buf_len, p + taken, k);
        u->buf_len += k;
        taken += k;
        if ((u->buf_len == sizeof(u->buf) || fotasim_upd_remaining(u) == 0) && write_buffer(u) < 0)
            return -1;
    }
    return (long)taken;
}

/* BearSSL's br_rsa_pkcs1_sig_unpad after the public operation on sig:
 * 00 01, at least 8 FF, 00, then the DigestInfo of SHA-256 (with or
 * without the NULL parameters) or, raw (core 2.5), the 32 hash bytes. */
static int unpad_matches(const uint8_t *m, size_t n, const uint8_t hash[32], int raw)
{
    static const uint8_t di_null[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                      0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
    static const uint8_t di_bare[] = {0x30, 0x2f, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48,
                                      0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x04, 0x20};
    size_t i = 2, ff;

    if (n < 11 || m[0] != 0x00 || m[1] != 0x01)
        return 0;
    while (i < n && m[i] == 0xFF)
        i++;
    ff = i - 2;
    if (ff < 8 || i >= n || m[i] != 0x00)
        return 0;
    i++;
    if (raw)
        return n - i == 32 && memcmp(m + i, hash, 32) == 0;
    if (n - i == sizeof(di_null) + 32 && memcmp(m + i, di_null, sizeof(di_null)) == 0)
        return memcmp(m + i + sizeof(di_null), hash, 32) == 0;
    if (n - i == sizeof(di_bare) + 32 && memcmp(m + i, di_bare, sizeof(di_bare)) == 0)
        return memcmp(m + i + sizeof(di_bare), hash, 32) == 0;
    return 0;
}

/* The signature of end() (§7.2): trailer length = the key's length, SHA-256
 * of the staged flash [0, size - len - 4) in 128-byte reads, the public
 * operation, the unpadding. Returns the payload size, or -1. */
static long verify_signature(struct fotasim_updater *u)
{
    EVP_PKEY *k = u->env->pubkey;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_MD_CTX *sha = NULL;
    uint8_t lenb[4], chunk[128], hash[32], *sig = NULL, *m = NULL;
    uint32_t siglen, want = (uint32_t)EVP_PKEY_get_size(k), bin, i;
    size_t mlen = 0;
    long rc = -1;

    if (u->size < 4 || u->flash.read(u->flash.ud, u->start + u->size - 4, lenb, 4) < 0)
        return -1;
    siglen = (uint32_t)lenb[0] | (uint32_t)lenb[1] << 8 | (uint32_t)lenb[2] << 16 |
             (uint32_t)lenb[3] << 24;
    if (siglen != want || u->size < siglen + 4)
        return -1;
    bin = u->size - siglen - 4;
    if (!(sha = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(sha, EVP_sha256(), NULL))
        goto out;
    for (i = 0; i < bin; i += 128) {
        uint32_t n = bin - i < 128 ? bin - i : 128;
        if (u->flash.read(u->flash.ud, u->start + i, chunk, (n + 3) & ~3u) < 0)
            goto out;
        EVP_DigestUpdate(sha, chunk, n);
    }
    EVP_DigestFinal_ex(sha, hash, NULL);
    if (!(sig = malloc(siglen)) || !(m = malloc(siglen)) ||
        u->flash.read(u->flash.ud, u->start + bin, sig, siglen) < 0)
        goto out;
    mlen = siglen;
    if (!(ctx = EVP_PKEY_CTX_new(k, NULL)) || EVP_PKEY_encrypt_init(ctx) <= 0 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING) <= 0 ||
        EVP_PKEY_encrypt(ctx, m, &mlen, sig, siglen) <= 0)
        goto out;                        /* s^e mod n: the raw public operation */
    if (unpad_matches(m, mlen, hash, u->env->core == FOTASIM_CORE_25))
        rc = (long)bin;
out:
    EVP_PKEY_CTX_free(ctx);
    EVP_MD_CTX_free(sha);
    free(sig);
    free(m);
    return rc;
}

/* _verifyEnd: 1f 8b passes; else 0xE9 and a size code that fits the chip. */
static int verify_end(struct fotasim_updater *u)
{
    uint8_t b[4];
    if (u->flash.read(u->flash.ud, u->start, b, 4) < 0)
        return set_error(u, FOTASIM_UPD_READ);
    if (b[0] == 0x1F && b[1] == 0x8B && u->env->core >= FOTASIM_CORE_27)
        return 0;
    if (b[0] != 0xE9)
        return set_error(u, FOTASIM_UPD_MAGIC_BYTE);
    if (fota_arduino_flash_size(b[3] >> 4) > u->env->chip_size) {
        u->error = FOTASIM_UPD_NEW_FLASH_CONFIG;
        snprintf(u->errstr, sizeof(u->errstr),
                 u->env->core >= FOTASIM_CORE_30 ? "new Flash config wrong, real size: %u"
                                                 : "new Flash config wrong real: %u",
                 (unsigned)u->env->chip_size);
        return u->error;
    }
    return 0;
}

static void md5_hex(EVP_MD_CTX *c, char out[33])
{
    uint8_t d[16];
    EVP_DigestFinal_ex(c, d, NULL);
    fota_hex_encode(d, sizeof(d), out);
}

int fotasim_upd_end(struct fotasim_updater *u, struct fotasim_ebcmd *cmd)
{
    uint32_t size = u->size;
    int rc;

    memset(cmd, 0, sizeof(*cmd));
    if (!u->running)
        return u->error ? u->error : FOTASIM_UPD_NO_DATA;
    if (u->error || fotasim_upd_remaining(u) > 0) {
        fotasim_upd_reset(u);
        return u->error ? u->error : FOTASIM_UPD_STREAM;
    }
    if (u->env->pubkey) {
        long bin = verify_signature(u);
        if (bin < 0) {
            fotasim_upd_fail(u, FOTASIM_UPD_SIGN);
            return FOTASIM_UPD_SIGN;
        }
        if (u->env->core >= FOTASIM_CORE_30)
            size = (uint32_t)bin;        /* 3.x stages only the payload (2.x copies the trailer) */
    } else if (u->have_target) {
        char got[33];
        md5_hex(u->md5, got);
        if (strcasecmp(u->target_md5, got) != 0) {
            u->error = FOTASIM_UPD_MD5;
            snprintf(u->errstr, sizeof(u->errstr),
                     u->env->core >= FOTASIM_CORE_30
                         ? "MD5 verification failed: expected: %s, calculated: %s"
                         : "MD5 Failed: expected:%s, calculated:%s", u->target_md5, got);
            fotasim_upd_reset(u);
            return FOTASIM_UPD_MD5;
        }
    }
    if ((rc = verify_end(u)) != 0) {
        fotasim_upd_reset(u);
        return rc;
    }
    cmd->valid = 1;
    cmd->src = u->start;
    cmd->dst = 0;
    cmd->size = size;
    fotasim_upd_reset(u);
    return 0;
}

/* ---- ESPhttpUpdate ---- */

int fotasim_ardupd_decide(const struct fotasim_ardresp *r, int rc, const struct fotasim_ardenv *env,
                          int *err, long *len)
{
    *err = 0;
    if (rc <= 0) {
        *err = rc;
        return FOTASIM_UPDATE_FAILED;
    }
    switch (rc) {
    case 200:
        *len = r->content_length;
        if (*len <= 0) {
            *err = FOTASIM_UE_SERVER_NOT_REPORT_SIZE;
            return FOTASIM_UPDATE_FAILED;
        }
        if ((unsigned long)*len > fotasim_ardenv_free_space(env)) {
            *err = FOTASIM_UE_TOO_LESS_SPACE;
            return FOTASIM_UPDATE_FAILED;
        }
        return -1;
    case 304:
        return FOTASIM_UPDATE_NO_UPDATES;     /* the last error is not touched */
    case 404:
        *err = FOTASIM_UE_SERVER_FILE_NOT_FOUND;
        return FOTASIM_UPDATE_FAILED;
    case 403:
        *err = FOTASIM_UE_SERVER_FORBIDDEN;
        return FOTASIM_UPDATE_FAILED;
    case 401:
        *err = env->core >= FOTASIM_CORE_30 ? FOTASIM_UE_SERVER_UNAUTHORIZED
                                            : FOTASIM_UE_SERVER_WRONG_HTTP_CODE;
        return FOTASIM_UPDATE_FAILED;
    default:
        *err = FOTASIM_UE_SERVER_WRONG_HTTP_CODE;
        return FOTASIM_UPDATE_FAILED;
    }
}

int fotasim_ardupd_check4(const uint8_t b[4], const struct fotasim_ardenv *env)
{
    if (b[0] != 0xE9 && !(b[0] == 0x1F && env->core >= FOTASIM_CORE_27))
        return FOTASIM_UE_BIN_VERIFY_HEADER_FAILED;
    if (b[0] == 0xE9 && fota_arduino_flash_size((unsigned)b[3] >> 4) > env->chip_size)
        return FOTASIM_UE_BIN_FOR_WRONG_FLASH;
    return 0;
}

void fotasim_ardupd_error_string(int core, int err, const struct fotasim_updater *u, char *out,
                                 size_t cap)
{
    static const char *const ue[] = {
        "Not Enough space", "Server Did Not Report Size", "File Not Found (404)", "Forbidden (403)",
        "Wrong HTTP Code", "Wrong MD5", "Verify Bin Header Failed",
        "New Binary Does Not Fit Flash Size", "Unauthorized (401)"};
    if (err == 0)
        out[0] = '\0';
    else if (err > 0)
        snprintf(out, cap, "Update error: ERROR[%d]: %s", err,
                 u && u->error == err && u->errstr[0] ? u->errstr : upd_text(core, err));
    else if (err > -100)
        snprintf(out, cap, "HTTP error: %s", fotasim_httpc_error_string(err));
    else if (err >= -108 && (err != -108 || core >= FOTASIM_CORE_30))
        fota_str_copy(out, cap, ue[-100 - err]);
    else
        snprintf(out, cap, "error %d", err);
}

struct evp_pkey_st *fotasim_ard_load_pubkey(const char *path, char *err, size_t errcap)
{
    FILE *fp = fopen(path, "r");
    EVP_PKEY *k;
    if (!fp) {
        snprintf(err, errcap, "cannot open %s", path);
        return NULL;
    }
    k = PEM_read_PUBKEY(fp, NULL, NULL, NULL);
    fclose(fp);
    if (!k || EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA) {
        snprintf(err, errcap, "%s holds no RSA public key (PEM)", path);
        EVP_PKEY_free(k);
        return NULL;
    }
    return k;
}

void fotasim_ard_free_pubkey(struct evp_pkey_st *k)
{
    EVP_PKEY_free(k);
}
