/* keys.c - key generation (OpenSSL CSPRNG), SHA-256 hashing, HMAC derivation
 * of device keys, key files with mode 0600, and the master-key flash sector. */
#include "keys.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fota_err.h"
#include "hex.h"
#include "xmalloc.h"

int fota_key_generate(char out[FOTA_KEY_BUF])
{
    uint8_t raw[FOTA_KEY_LEN / 2];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return FOTA_EIO;
    fota_hex_encode(raw, sizeof(raw), out);
    OPENSSL_cleanse(raw, sizeof(raw));
    return 0;
}

int fota_key_valid(const char *s, size_t len)
{
    if (len != FOTA_KEY_LEN)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!isxdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

/* SHA-256 fetched once: SHA256() and EVP_sha256() fetch the algorithm at
 * every call, under the method store's locks, which cost more than the
 * digest of a key (hashed at every check-in, download and identify). */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void fota_key_hash(const char *key, size_t len, char out[65])
{
    uint8_t d[SHA256_DIGEST_LENGTH];
    pthread_once(&sha256_once, sha256_fetch);
    if (!sha256_md || EVP_Digest(key, len, d, NULL, sha256_md, NULL) != 1)
        SHA256((const unsigned char *)key, len, d);
    fota_hex_encode(d, sizeof(d), out);
}

void fota_key_derive(const uint8_t secret[FOTA_SECRET_LEN], const char *kind,
                     int64_t device_id, int generation, char out[FOTA_KEY_BUF])
{
    char msg[96];
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    int n = snprintf(msg, sizeof(msg), "%s:%lld:%d", kind, (long long)device_id, generation);

    HMAC(EVP_sha256(), secret, FOTA_SECRET_LEN, (const unsigned char *)msg, (size_t)n, mac,
         &maclen);
    fota_hex_encode(mac, maclen, hex);
    memcpy(out, hex, FOTA_KEY_LEN);
    out[FOTA_KEY_LEN] = '\0';
}

void fota_key_fingerprint(const uint8_t secret[FOTA_SECRET_LEN], char out[65])
{
    static const char msg[] = "fota cluster";
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;

    HMAC(EVP_sha256(), secret, FOTA_SECRET_LEN, (const unsigned char *)msg, sizeof msg - 1, mac,
         &maclen);
    fota_hex_encode(mac, maclen, out);   /* SHA-256: 32 bytes, 64 characters */
    OPENSSL_cleanse(mac, sizeof mac);
}

/* The inner and outer HMAC-SHA256 states after the key's pads; each
 * derivation copies them into work (no allocation, no digest fetch). */
struct fota_key_deriver {
    EVP_MD_CTX *inner, *outer, *work;
};

void fota_key_deriver_free(struct fota_key_deriver *kd)
{
    if (!kd)
        return;
    EVP_MD_CTX_free(kd->inner); /* EVP_MD_CTX_free cleanses the state */
    EVP_MD_CTX_free(kd->outer);
    EVP_MD_CTX_free(kd->work);
    free(kd);
}

struct fota_key_deriver *fota_key_deriver_new(const uint8_t secret[FOTA_SECRET_LEN])
{
    enum { BLOCK = 64 }; /* SHA-256 block; the secret (32 bytes) fits unhashed */
    uint8_t ipad[BLOCK], opad[BLOCK];
    struct fota_key_deriver *kd = fota_xcalloc(1, sizeof *kd);
    kd->inner = EVP_MD_CTX_new();
    kd->outer = EVP_MD_CTX_new();
    kd->work = EVP_MD_CTX_new();
    memset(ipad, 0x36, BLOCK);
    memset(opad, 0x5c, BLOCK);
    for (size_t i = 0; i < FOTA_SECRET_LEN; i++) {
        ipad[i] ^= secret[i];
        opad[i] ^= secret[i];
    }
    int ok = kd->inner && kd->outer && kd->work &&
             EVP_DigestInit_ex(kd->inner, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(kd->inner, ipad, BLOCK) == 1 &&
             EVP_DigestInit_ex(kd->outer, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(kd->outer, opad, BLOCK) == 1;
    OPENSSL_cleanse(ipad, sizeof ipad);
    OPENSSL_cleanse(opad, sizeof opad);
    if (!ok) {
        fota_key_deriver_free(kd);
        return NULL;
    }
    return kd;
}

/* Appends the decimal of v (any sign) at buf+n. The new length, or -1 if it would not fit. */
static int put_dec(char *buf, int n, size_t cap, int64_t v)
{
    char tmp[24];
    int k = 0;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[k++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        tmp[k++] = '-';
    if ((size_t)n + (size_t)k >= cap)
        return -1;
    while (k > 0)
        buf[n++] = tmp[--k];
    return n;
}

/* "<kind>:<id>:<generation>" as fota_key_derive's snprintf writes it,
 * without the printf machinery (a fan-out formats one per device). */
static int derive_msg(char *buf, size_t cap, const char *kind, int64_t device_id, int generation)
{
    size_t kl = strlen(kind);
    if (kl + 2 >= cap)
        return -1;
    memcpy(buf, kind, kl);
    int n = (int)kl;
    buf[n++] = ':';
    n = put_dec(buf, n, cap - 1, device_id);
    if (n < 0)
        return -1;
    buf[n++] = ':';
    return put_dec(buf, n, cap, generation);
}

void fota_key_deriver_run(struct fota_key_deriver *kd, const char *kind, int64_t device_id,
                          int generation, char out[FOTA_KEY_BUF])
{
    char msg[96];
    uint8_t in[EVP_MAX_MD_SIZE], mac[EVP_MAX_MD_SIZE];
    unsigned n1 = 0, n2 = 0;
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    int n = derive_msg(msg, sizeof(msg), kind, device_id, generation);
    if (n < 0 || EVP_MD_CTX_copy_ex(kd->work, kd->inner) != 1 ||
        EVP_DigestUpdate(kd->work, msg, (size_t)n) != 1 ||
        EVP_DigestFinal_ex(kd->work, in, &n1) != 1 ||
        EVP_MD_CTX_copy_ex(kd->work, kd->outer) != 1 || EVP_DigestUpdate(kd->work, in, n1) != 1 ||
        EVP_DigestFinal_ex(kd->work, mac, &n2) != 1 || n2 * 2 < FOTA_KEY_LEN) {
        out[0] = '\0'; /* cannot happen short of a broken libcrypto; callers check the length */
        return;
    }
    fota_hex_encode(mac, n2, hex);
    memcpy(out, hex, FOTA_KEY_LEN);
    out[FOTA_KEY_LEN] = '\0';
}

int fota_key_equal(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}

int fota_key_from_header(const char *hdr, const char **key, size_t *len)
{
    const char *p = hdr;
    while (*p == ' ')
        p++;
    if (strncasecmp(p, "token", 5) != 0 || p[5] != ' ')
        return FOTA_EAUTH;
    p += 5;
    while (*p == ' ')
        p++;
    size_t n = strlen(p);
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r'))
        n--;
    if (n == 0)
        return FOTA_EAUTH;
    *key = p;
    *len = n;
    return 0;
}

/* Writes len bytes to path via path.tmp + fsync + rename, mode 0600. */
static int write_private(const char *path, const void *data, size_t len, int excl)
{
    char tmp[1024];
    int fd, r = FOTA_EIO;

    if (excl && access(path, F_OK) == 0)
        return FOTA_EEXIST;
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return FOTA_EINVAL;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return FOTA_EIO;
    const uint8_t *p = data;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, p + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            goto out;
        }
        off += (size_t)w;
    }
    if (fchmod(fd, 0600) || fsync(fd))
        goto out;
    if (close(fd)) {
        fd = -1;
        goto out;
    }
    fd = -1;
    if (rename(tmp, path))
        goto out;
    r = 0;
out:
    if (fd >= 0)
        close(fd);
    if (r)
        unlink(tmp);
    return r;
}

int fota_key_secret_load(const char *path, uint8_t secret[FOTA_SECRET_LEN], int *created)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    *created = 0;
    if (fd >= 0) {
        uint8_t buf[FOTA_SECRET_LEN + 1];
        ssize_t n = read(fd, buf, sizeof(buf));
        close(fd);
        if (n != FOTA_SECRET_LEN)
            return FOTA_EINVAL;
        memcpy(secret, buf, FOTA_SECRET_LEN);
        OPENSSL_cleanse(buf, sizeof(buf));
        return 0;
    }
    if (errno != ENOENT)
        return FOTA_EIO;
    if (RAND_bytes(secret, FOTA_SECRET_LEN) != 1)
        return FOTA_EIO;
    int r = write_private(path, secret, FOTA_SECRET_LEN, 1);
    if (r == 0)
        *created = 1;
    return r;
}

int fota_key_write_file(const char *path, const char *key)
{
    char buf[FOTA_KEY_BUF + 1];
    int n = snprintf(buf, sizeof(buf), "%s\n", key);
    return write_private(path, buf, (size_t)n, 1);
}

int fota_key_read_file(const char *path, char out[FOTA_KEY_BUF])
{
    char buf[128];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? FOTA_ENOENT : FOTA_EIO;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n < FOTA_KEY_LEN || !fota_key_valid(buf, FOTA_KEY_LEN))
        return FOTA_EINVAL;
    if (n > FOTA_KEY_LEN && !isspace((unsigned char)buf[FOTA_KEY_LEN]))
        return FOTA_EINVAL;
    for (int i = 0; i < FOTA_KEY_LEN; i++)
        out[i] = (char)tolower((unsigned char)buf[i]);
    out[FOTA_KEY_LEN] = '\0';
    return 0;
}

void fota_key_bin_build(const char devkey[FOTA_KEY_LEN], const char token[FOTA_KEY_LEN],
                       uint8_t activeflag, uint8_t out[FOTA_KEYBIN_SIZE])
{
    memset(out, 0xFF, FOTA_KEYBIN_SIZE);
    memcpy(out, devkey, FOTA_KEY_LEN);
    memcpy(out + 40, token, FOTA_KEY_LEN);
    out[80] = activeflag;
}
