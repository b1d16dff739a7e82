/* arduino_file.c - the upload check of an Arduino-core release file: trailer,
 * gzip, image, the fleet's rules (§7.3, §7.4, §10.1), and the bytes and
 * hashes fotad will serve; plus the core lines and the MD5 variants a device
 * reports (§6.3). */
#include "arduino_file.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "fota_err.h"
#include "fota_str.h"
#include "hex.h"
#include "xmalloc.h"

static const int core_lines[] = {24, 25, 26, 27, 30, 31};

int fota_arduino_core_parse(const char *s)
{
    int major, minor, n = 0;

    if (!s || s[0] < '0' || s[0] > '9' || s[1] != '.' || s[2] < '0' || s[2] > '9')
        return -1;
    major = s[0] - '0';
    minor = s[2] - '0';
    s += 3;
    if (*s == '.') { /* "2.7.4": the patch level does not change the rules */
        s++;
        while (*s >= '0' && *s <= '9' && n < 3) {
            s++;
            n++;
        }
        if (n == 0)
            return -1;
    }
    if (*s)
        return -1;
    for (size_t i = 0; i < sizeof core_lines / sizeof core_lines[0]; i++)
        if (core_lines[i] == major * 10 + minor)
            return major * 10 + minor;
    return -1;
}

void fota_arduino_core_format(int core, char *buf, size_t cap)
{
    unsigned c = core >= 0 && core < 100 ? (unsigned)core : 0;
    const char t[4] = {(char)('0' + c / 10), '.', (char)('0' + c % 10), '\0'};

    fota_str_copy(buf, cap, t);
}

static void digest_hex(const EVP_MD *md, const uint8_t *buf, size_t len, char *out)
{
    uint8_t d[EVP_MAX_MD_SIZE];
    unsigned dlen = 0;

    if (EVP_Digest(buf, len, d, &dlen, md, NULL) != 1)
        abort(); /* a digest over memory fails only when OpenSSL is broken */
    fota_hex_encode(d, dlen, out);
}

void fota_arduino_md5_hex(const uint8_t *buf, size_t len, char out[FOTA_ARDUINO_MD5_HEX])
{
    digest_hex(EVP_md5(), buf, len, out);
}

void fota_arduino_sha256_hex(const uint8_t *buf, size_t len, char out[FOTA_ARDUINO_SHA256_HEX])
{
    digest_hex(EVP_sha256(), buf, len, out);
}

void fota_arduino_mode_md5s(const uint8_t *img, size_t sketch_size,
                            char out[4][FOTA_ARDUINO_MD5_HEX])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    uint8_t d[16];

    if (!c)
        abort();
    for (uint8_t m = 0; m < 4; m++) {
        if (EVP_DigestInit_ex(c, EVP_md5(), NULL) != 1 || EVP_DigestUpdate(c, img, 2) != 1 ||
            EVP_DigestUpdate(c, &m, 1) != 1 ||
            EVP_DigestUpdate(c, img + 3, sketch_size - 3) != 1 ||
            EVP_DigestFinal_ex(c, d, NULL) != 1)
            abort();
        fota_hex_encode(d, sizeof d, out[m]);
    }
    EVP_MD_CTX_free(c);
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

int fota_arduino_mode_md5_match(const char md5s[4][FOTA_ARDUINO_MD5_HEX], const char *md5)
{
    if (!md5 || strlen(md5) != 32)
        return -1;
    for (int m = 0; m < 4; m++) {
        int i = 0;
        while (i < 32 && lower((unsigned char)md5[i]) == md5s[m][i])
            i++;
        if (i == 32 && md5s[m][32] == '\0')
            return m;
    }
    return -1;
}

/* ------------------------------------------------------------ the check */

static int refuse(char *reason, size_t cap, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int refuse(char *reason, size_t cap, int err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, cap, fmt, ap);
    va_end(ap);
    return err;
}

static void served_set(struct fota_arduino_served *s, const uint8_t *data, size_t len)
{
    s->data = data;
    s->len = len;
    fota_arduino_md5_hex(data, len, s->md5);
    fota_arduino_sha256_hex(data, len, s->sha256);
}

int fota_arduino_policy_check(const struct fota_arduino_policy *pol, char *reason, size_t cap)
{
    char core[8];

    fota_arduino_core_format(pol->core, core, sizeof core);
    if (pol->gzip && pol->core < 27)
        return refuse(reason, cap, FOTA_ECONFIG,
                      "gzip needs core 2.7 or later; the product's devices run core %s", core);
    if (pol->signing_pem && pol->core < 25)
        return refuse(reason, cap, FOTA_ECONFIG,
                      "core %s does not check signatures; signing_key needs core 2.5 or later",
                      core);
    if (pol->signing_pem && pol->gzip && pol->core < 30)
        return refuse(reason, cap, FOTA_ECONFIG,
                      "signed gzip needs core 3.0.0 or later: core %s takes ISIZE from the "
                      "signature length word and boots a broken image", core);
    return 0;
}

static int check_signature(const uint8_t *buf, size_t len, const struct fota_arduino_policy *pol,
                           struct fota_arduino_file *out, size_t *plen, char *reason, size_t cap)
{
    const uint8_t *sig;
    const char *why = NULL;
    enum fota_arduino_sig_form want;
    char core[8];
    int rc;

    if (fota_arduino_sig_split(buf, len, plen, &sig, &out->sig_len) != 0)
        return refuse(reason, cap, FOTA_EAUTH,
                      "the file carries no signature trailer and the product has signing_key "
                      "(its devices refuse unsigned images with error 12)");
    rc = fota_arduino_sig_verify(pol->signing_pem, pol->signing_pem_len, buf, *plen, sig,
                                 out->sig_len, &out->sig_form, &why);
    if (rc)
        return refuse(reason, cap, rc == FOTA_ECONFIG ? FOTA_ECONFIG : FOTA_EAUTH, "%s", why);
    want = pol->core == 25 ? FOTA_ARDUINO_SIG_LEGACY : FOTA_ARDUINO_SIG_STANDARD;
    fota_arduino_core_format(pol->core, core, sizeof core);
    if (out->sig_form != want)
        return refuse(reason, cap, FOTA_EAUTH,
                      "the file is signed in the %s form but devices on core %s expect the %s "
                      "form (%s)", fota_arduino_sig_form_name(out->sig_form), core,
                      fota_arduino_sig_form_name(want),
                      want == FOTA_ARDUINO_SIG_LEGACY ? "signing.py --legacy"
                                                      : "openssl dgst -sha256 -sign");
    return 0;
}

int fota_arduino_file_check(const uint8_t *buf, size_t len, const struct fota_arduino_policy *pol,
                            struct fota_arduino_file *out, char *reason, size_t cap)
{
    const int signed_ = pol->signing_pem != NULL;
    const uint8_t *image;
    const char *why = NULL;
    size_t plen = len;
    char core[8];
    int rc, is_gz;

    memset(out, 0, sizeof *out);
    if (cap)
        reason[0] = '\0';
    fota_arduino_core_format(pol->core, core, sizeof core);
    if ((rc = fota_arduino_policy_check(pol, reason, cap)) != 0)
        return rc;
    if (len == 0)
        return refuse(reason, cap, FOTA_ETRUNC, "the file is empty");
    if (len > (size_t)FOTA_ARDUINO_MAX_SIZE + FOTA_ARDUINO_SIG_MAX + 4)
        return refuse(reason, cap, FOTA_ETOOBIG, "the file is larger than 16 MB");
    if (signed_ && (rc = check_signature(buf, len, pol, out, &plen, reason, cap)) != 0)
        return rc;

    is_gz = plen >= 2 && buf[0] == 0x1F && buf[1] == 0x8B;
    out->upload_gzip = is_gz;
    image = buf;
    out->image_len = plen;
    if (is_gz) {
        if (pol->core < 27)
            return refuse(reason, cap, FOTA_EPERM,
                          "a gzip file needs core 2.7 or later; devices on core %s refuse a "
                          "body that does not start with 0xE9 (-106)", core);
        if (signed_ && !pol->gzip)
            return refuse(reason, cap, FOTA_EPERM,
                          "a signed gzip file needs the product's gzip option (the signature "
                          "covers the compressed bytes: fotad cannot serve them inflated)");
        rc = fota_arduino_gz_inflate(buf, plen, FOTA_ARDUINO_MAX_SIZE, &out->owned[1],
                                     &out->image_len, &why);
        if (rc)
            return refuse(reason, cap, rc, "%s", why);
        image = out->owned[1];
    }
    rc = fota_arduino_img_parse(image, out->image_len, &out->img);
    if (rc)
        return refuse(reason, cap, rc, "%s%s (offset 0x%x)", is_gz ? "inflated image: " : "",
                      out->img.reason, (unsigned)out->img.error_offset);
    if (signed_ && !is_gz) {
        if (pol->gzip)
            return refuse(reason, cap, FOTA_EPERM,
                          "the product has gzip and signing_key: upload the signed .gz file "
                          "(fotad cannot sign what it compresses)");
        if (pol->flash_mode >= 0 && out->img.flash_mode != pol->flash_mode)
            return refuse(reason, cap, FOTA_EPERM,
                          "the signed image is built for flash mode %s but the fleet runs %s: "
                          "the updater rewrites that byte before it checks the signature, so "
                          "every device would refuse it (error 12); build with %s",
                          fota_arduino_flash_mode_name(out->img.flash_mode),
                          fota_arduino_flash_mode_name(pol->flash_mode),
                          fota_arduino_flash_mode_name(pol->flash_mode));
    }

    if (is_gz) {
        if (pol->gzip)
            served_set(&out->gz, buf, len);
        if (!signed_)
            served_set(&out->plain, image, out->image_len);
    } else {
        served_set(&out->plain, buf, len);
        if (pol->gzip && !signed_) {
            size_t zlen;
            if (fota_arduino_gz_compress(buf, len, &out->owned[0], &zlen) != 0)
                return refuse(reason, cap, FOTA_EIO, "gzip compression failed");
            served_set(&out->gz, out->owned[0], zlen);
        }
    }
    fota_arduino_md5_hex(image, out->image_len, out->image_md5);
    fota_arduino_sha256_hex(image, out->image_len, out->image_sha256);
    fota_arduino_mode_md5s(image, out->img.sketch_size, out->sketch_md5);
    return 0;
}

void fota_arduino_file_cleanup(struct fota_arduino_file *f)
{
    if (!f)
        return;
    free(f->owned[0]);
    free(f->owned[1]);
    memset(f, 0, sizeof *f);
}
