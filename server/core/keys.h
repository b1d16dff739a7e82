/* keys.h - API keys: generation, hashing, derivation and the flash sector.
 *
 * Keys are 40 lower-case hex characters (Espressif's length). Only their
 * SHA-256 (hex) is stored. Device keys (master, owner) are DERIVED:
 * HMAC-SHA256(server_secret, "<kind>:<device_id>:<generation>") as hex,
 * first 40 characters, so the admin can fetch master_device_key.bin again
 * later although the database holds only hashes. The 32-byte server secret
 * is random at first start and kept in DATA/secret.key (0600). */
#ifndef FOTA_KEYS_H
#define FOTA_KEYS_H

#include <stddef.h>
#include <stdint.h>

#define FOTA_KEY_LEN        40      /* characters */
#define FOTA_KEY_BUF        41      /* with NUL */
#define FOTA_SECRET_LEN     32      /* bytes of server secret */
#define FOTA_KEYBIN_SIZE    4096    /* master_device_key.bin: one flash sector */

/* A fresh random key from the CSPRNG (RAND_bytes). 0 or FOTA_EIO. */
int fota_key_generate(char out[FOTA_KEY_BUF]);

/* 1 if s is exactly 40 hex characters (either case), else 0. */
int fota_key_valid(const char *s, size_t len);

/* SHA-256 of the key text (as given, len bytes) as 64 lower-case hex + NUL. */
void fota_key_hash(const char *key, size_t len, char out[65]);

/* Derived device key, e.g. kind "master" or "owner". */
void fota_key_derive(const uint8_t secret[FOTA_SECRET_LEN], const char *kind,
                     int64_t device_id, int generation, char out[FOTA_KEY_BUF]);

/* The secret's fingerprint, HMAC-SHA256(secret, "fota cluster") as 64
 * lower-case hex + NUL: what PostgreSQL's cluster table holds so that every
 * instance can check it runs with the same secret.key (cluster.h) without the
 * database holding anything a key could be derived from. */
void fota_key_fingerprint(const uint8_t secret[FOTA_SECRET_LEN], char out[65]);

/* A derivation context keyed once with the server secret, for bulk use
 * (a fan-out derives one owner key per device): the secret's HMAC pads are
 * hashed once, so each derivation costs two SHA-256 blocks instead of a
 * digest fetch and the key schedule (about 5x cheaper). Same output as
 * fota_key_derive. Not thread-safe: one per thread or event loop. */
struct fota_key_deriver;

/* NULL on out of memory (the caller falls back to fota_key_derive). */
struct fota_key_deriver *fota_key_deriver_new(const uint8_t secret[FOTA_SECRET_LEN]);
/* As fota_key_derive(secret, kind, device_id, generation, out). */
void fota_key_deriver_run(struct fota_key_deriver *kd, const char *kind, int64_t device_id,
                          int generation, char out[FOTA_KEY_BUF]);
/* Wipes and frees. NULL-safe. */
void fota_key_deriver_free(struct fota_key_deriver *kd);

/* Constant-time equality of two equal-length buffers (CRYPTO_memcmp): 1 equal. */
int fota_key_equal(const void *a, const void *b, size_t len);

/* Parses an Authorization header value: "token KEY" or "Token KEY" (any
 * case of the scheme, extra spaces tolerated). Sets *key and *len to the borrowed
 * key text. 0, or FOTA_EAUTH if the header has another form. */
int fota_key_from_header(const char *hdr, const char **key, size_t *len);

/* Loads DATA/secret.key (32 raw bytes) or, if it does not exist, creates it
 * with mode 0600 (write to a temp file, fsync, rename). *created tells which.
 * 0, FOTA_EIO (errno kept), FOTA_EINVAL (file of the wrong size). */
int fota_key_secret_load(const char *path, uint8_t secret[FOTA_SECRET_LEN], int *created);

/* Writes a text file holding key + "\n" with mode 0600 atomically (temp,
 * fsync, rename). Fails with FOTA_EEXIST if path exists. */
int fota_key_write_file(const char *path, const char *key);

/* Reads a key file (first 40 characters must be hex). 0, FOTA_ENOENT, FOTA_EINVAL. */
int fota_key_read_file(const char *path, char out[FOTA_KEY_BUF]);

/* Fills the 4096-byte master_device_key.bin sector in the layout the stock
 * IoT_Demo firmware reads (struct esp_platform_saved_param, espressif-protocol
 * §2.2): devkey[40] at 0, token[40] at 40, activeflag at 80, the rest 0xFF
 * (erased flash). activeflag 0 makes the device send its activation frame on
 * the first connect. */
void fota_key_bin_build(const char devkey[FOTA_KEY_LEN], const char token[FOTA_KEY_LEN],
                       uint8_t activeflag, uint8_t out[FOTA_KEYBIN_SIZE]);

#endif
