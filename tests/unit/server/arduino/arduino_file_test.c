/* arduino_file_test.c - the upload check of Arduino-core release files:
 * the gzip container (wrong ISIZE, two members, trailing bytes, bombs), the
 * signature trailer with an RSA key made here (standard, DigestInfo without
 * NULL, the 2.5 raw-digest form, tampered, another key), the fleet rules of
 * §7.3/§7.4 and the four sketch MD5s of §6.3. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/encoder.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <zlib.h>

#include "arduino_build.h"
#include "arduino_file.h"
#include "fota_err.h"

/* ------------------------------------------------------------- fixtures */

struct fx {
    EVP_PKEY *key, *other;
    char *pem, *pem_pkcs1, *pem_other, *pem_private;
    size_t pem_len, pem_pkcs1_len, pem_other_len, pem_private_len;
};

static char *pem_of(EVP_PKEY *k, const char *structure, int selection, size_t *len)
{
    OSSL_ENCODER_CTX *e = OSSL_ENCODER_CTX_new_for_pkey(k, selection, "PEM", structure, NULL);
    unsigned char *data = NULL;
    size_t n = 0;
    char *s;
    assert_non_null(e);
    assert_int_equal(OSSL_ENCODER_to_data(e, &data, &n), 1);
    OSSL_ENCODER_CTX_free(e);
    s = malloc(n + 1);
    assert_non_null(s);
    memcpy(s, data, n);
    s[n] = '\0';
    OPENSSL_free(data);
    *len = n;
    return s;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->key = EVP_RSA_gen(2048);
    f->other = EVP_RSA_gen(2048);
    assert_non_null(f->key);
    assert_non_null(f->other);
    f->pem = pem_of(f->key, "SubjectPublicKeyInfo", OSSL_KEYMGMT_SELECT_PUBLIC_KEY, &f->pem_len);
    f->pem_pkcs1 = pem_of(f->key, "type-specific", OSSL_KEYMGMT_SELECT_PUBLIC_KEY,
                          &f->pem_pkcs1_len);
    f->pem_other = pem_of(f->other, "SubjectPublicKeyInfo", OSSL_KEYMGMT_SELECT_PUBLIC_KEY,
                          &f->pem_other_len);
    f->pem_private = pem_of(f->key, "PrivateKeyInfo", OSSL_KEYMGMT_SELECT_ALL,
                            &f->pem_private_len);
    assert_non_null(strstr(f->pem, "BEGIN PUBLIC KEY"));
    assert_non_null(strstr(f->pem_pkcs1, "BEGIN RSA PUBLIC KEY"));
    assert_non_null(strstr(f->pem_private, "PRIVATE KEY"));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    EVP_PKEY_free(f->key);
    EVP_PKEY_free(f->other);
    free(f->pem);
    free(f->pem_pkcs1);
    free(f->pem_other);
    free(f->pem_private);
    free(f);
    return 0;
}

static uint8_t *image(uint8_t mode, uint32_t irom, size_t *len)
{
    struct ab_spec sp = {.mode = mode, .size_code = 4, .freq = 0, .nsketch = 5,
                         .irom_len = irom, .add_crc = 1, .seed = 11};
    uint8_t *b = calloc(1, AB_MAX_LEN(irom) + 2048);
    assert_non_null(b);
    *len = ab_build(b, &sp);
    return b;
}

/* gzip.compress of Python: one member, written with zlib here. */
static uint8_t *gzip_of(const uint8_t *in, size_t len, size_t *out_len)
{
    z_stream z;
    uint8_t *out;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
    out = malloc(deflateBound(&z, len) + 2048);
    assert_non_null(out);
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)deflateBound(&z, len);
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    *out_len = z.total_out;
    deflateEnd(&z);
    return out;
}

/* openssl dgst -sha256 -sign: PKCS#1 v1.5 over the DigestInfo. */
static size_t sign_standard(EVP_PKEY *k, const uint8_t *p, size_t n, uint8_t *sig)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    size_t slen = 512;
    assert_int_equal(EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL, k), 1);
    assert_int_equal(EVP_DigestSign(c, sig, &slen, p, n), 1);
    EVP_MD_CTX_free(c);
    return slen;
}

/* A raw PKCS#1 type-1 signature of msg (rsautl -sign). */
static size_t sign_raw(EVP_PKEY *k, const uint8_t *msg, size_t mlen, uint8_t *sig)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(k, NULL);
    size_t slen = 512;
    assert_int_equal(EVP_PKEY_sign_init(c), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING), 1);
    assert_int_equal(EVP_PKEY_sign(c, sig, &slen, msg, mlen), 1);
    EVP_PKEY_CTX_free(c);
    return slen;
}

enum { SIG_STD, SIG_LEGACY, SIG_BARE_DI };

/* payload || sig || u32le(len): signing.py's output (or its --legacy one). */
static uint8_t *signed_file(EVP_PKEY *k, const uint8_t *p, size_t n, int how, size_t *out_len)
{
    static const uint8_t bare[17] = {0x30, 0x2f, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48,
                                     0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x04, 0x20};
    uint8_t *out = malloc(n + 520), md[32], msg[64];
    size_t slen;
    assert_non_null(out);
    memcpy(out, p, n);
    assert_int_equal(EVP_Digest(p, n, md, NULL, EVP_sha256(), NULL), 1);
    if (how == SIG_STD) {
        slen = sign_standard(k, p, n, out + n);
    } else if (how == SIG_LEGACY) {
        slen = sign_raw(k, md, 32, out + n);
    } else {
        memcpy(msg, bare, sizeof bare);
        memcpy(msg + sizeof bare, md, 32);
        slen = sign_raw(k, msg, sizeof bare + 32, out + n);
    }
    ab_le32(out + n + slen, (uint32_t)slen);
    *out_len = n + slen + 4;
    return out;
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void md5_of(const uint8_t *b, size_t n, char out[33])
{
    fota_arduino_md5_hex(b, n, out);
}

/* ----------------------------------------------------------------- gzip */

static void test_gz_compress_container(void **state)
{
    size_t len, zlen, zlen2, ilen;
    uint8_t *img = image(3, 20000, &len), *gz, *gz2, *back;
    const char *why = NULL;
    (void)state;

    assert_int_equal(fota_arduino_gz_compress(img, len, &gz, &zlen), 0);
    /* the gzip container: 1f 8b, deflate, CRC-32 and ISIZE at the end */
    assert_int_equal(gz[0], 0x1F);
    assert_int_equal(gz[1], 0x8B);
    assert_int_equal(gz[2], 8);
    assert_int_equal(gz[8], 2); /* XFL: best compression */
    assert_int_equal(rd32(gz + zlen - 4), len);
    assert_int_equal(rd32(gz + zlen - 8), crc32(0, img, (uInt)len));
    assert_true(zlen < len);
    /* zlib's own reader agrees (auto-detect gzip) */
    {
        z_stream z;
        uint8_t *o = malloc(len + 1);
        memset(&z, 0, sizeof z);
        assert_int_equal(inflateInit2(&z, 47), Z_OK);
        z.next_in = gz;
        z.avail_in = (uInt)zlen;
        z.next_out = o;
        z.avail_out = (uInt)len + 1;
        assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
        assert_int_equal(z.total_out, len);
        assert_memory_equal(o, img, len);
        inflateEnd(&z);
        free(o);
    }
    /* deterministic: the same blob every time */
    assert_int_equal(fota_arduino_gz_compress(img, len, &gz2, &zlen2), 0);
    assert_int_equal(zlen, zlen2);
    assert_memory_equal(gz, gz2, zlen);
    assert_int_equal(fota_arduino_gz_inflate(gz, zlen, FOTA_ARDUINO_MAX_SIZE, &back, &ilen, &why), 0);
    assert_int_equal(ilen, len);
    assert_memory_equal(back, img, len);
    free(back);
    free(gz2);
    free(gz);
    free(img);
}

static void test_gz_refusals(void **state)
{
    size_t len, zlen, ilen;
    uint8_t *img = image(3, 5000, &len), *gz = gzip_of(img, len, &zlen), *c, *out = NULL;
    const char *why;
    (void)state;

    c = malloc(2 * zlen + 64);
    assert_non_null(c);

    /* wrong ISIZE */
    memcpy(c, gz, zlen);
    c[zlen - 4] ^= 0x10;
    assert_int_equal(fota_arduino_gz_inflate(c, zlen, FOTA_ARDUINO_MAX_SIZE, &out, &ilen, &why),
                     FOTA_EPROTO);
    assert_non_null(strstr(why, "ISIZE"));
    assert_null(out);
    /* wrong CRC-32 */
    memcpy(c, gz, zlen);
    c[zlen - 8] ^= 0x01;
    assert_int_equal(fota_arduino_gz_inflate(c, zlen, FOTA_ARDUINO_MAX_SIZE, &out, &ilen, &why),
                     FOTA_EPROTO);
    assert_non_null(strstr(why, "CRC"));
    /* two members (gzip -c a b > ab.gz): eboot inflates one */
    memcpy(c, gz, zlen);
    memcpy(c + zlen, gz, zlen);
    assert_int_equal(fota_arduino_gz_inflate(c, 2 * zlen, FOTA_ARDUINO_MAX_SIZE, &out, &ilen, &why),
                     FOTA_EPROTO);
    assert_non_null(strstr(why, "more than one member"));
    /* other bytes after the member (a signature trailer, say) */
    memcpy(c, gz, zlen);
    memset(c + zlen, 0x42, 20);
    assert_int_equal(fota_arduino_gz_inflate(c, zlen + 20, FOTA_ARDUINO_MAX_SIZE, &out, &ilen, &why),
                     FOTA_EPROTO);
    assert_non_null(strstr(why, "follow"));
    /* cut short */
    assert_int_equal(fota_arduino_gz_inflate(gz, zlen / 2, FOTA_ARDUINO_MAX_SIZE, &out, &ilen, &why),
                     FOTA_ETRUNC);
    for (size_t cut = 0; cut < zlen; cut += 97)
        assert_int_not_equal(fota_arduino_gz_inflate(gz, cut, FOTA_ARDUINO_MAX_SIZE, &out, &ilen, &why), 0);
    /* not gzip at all; raw zlib is not the container */
    assert_int_equal(fota_arduino_gz_inflate(img, len, FOTA_ARDUINO_MAX_SIZE, &out, &ilen, &why),
                     FOTA_EMAGIC);
    {
        uLongf zl = compressBound(len);
        uint8_t *zb = malloc(zl);
        assert_int_equal(compress2(zb, &zl, img, len, 9), Z_OK);
        assert_int_equal(fota_arduino_gz_inflate(zb, zl, FOTA_ARDUINO_MAX_SIZE, &out, &ilen, &why),
                         FOTA_EMAGIC);
        free(zb);
    }
    /* more than the limit (a small bomb against a small limit) */
    assert_int_equal(fota_arduino_gz_inflate(gz, zlen, len - 1, &out, &ilen, &why), FOTA_ETOOBIG);
    assert_null(out);
    /* ISIZE lies low: the output outgrows the first buffer, and it is ISIZE that is reported */
    memcpy(c, gz, zlen);
    c[zlen - 2] = 0;
    c[zlen - 1] = 0;
    c[zlen - 3] = 0;
    c[zlen - 4] = 10;
    assert_int_equal(fota_arduino_gz_inflate(c, zlen, FOTA_ARDUINO_MAX_SIZE, &out, &ilen, &why),
                     FOTA_EPROTO);
    assert_non_null(strstr(why, "ISIZE"));
    free(c);
    free(gz);
    free(img);
}

static void test_gz_bomb(void **state)
{
    size_t n = FOTA_ARDUINO_MAX_SIZE + 4096, zlen, ilen;
    uint8_t *zeros = calloc(1, n), *gz, *out = NULL;
    const char *why;
    (void)state;
    assert_non_null(zeros);
    gz = gzip_of(zeros, n, &zlen);
    free(zeros);
    assert_int_equal(fota_arduino_gz_inflate(gz, zlen, FOTA_ARDUINO_MAX_SIZE, &out, &ilen, &why),
                     FOTA_ETOOBIG);
    assert_null(out);
    free(gz);
}

static void test_gz_fits(void **state)
{
    (void)state;
    /* sketch area 1 MB: sketch 300 KB + free 724 KB */
    assert_true(fota_arduino_gz_fits(600000, 400000, 724 * 1024, 300 * 1024));
    assert_false(fota_arduino_gz_fits(700000, 400000, 724 * 1024, 300 * 1024));
    /* exactly the area */
    assert_true(fota_arduino_gz_fits(1048576 - 4096, 4096, 1048576 - 4096, 4096));
    assert_false(fota_arduino_gz_fits(1048576 - 4096 + 1, 4096, 1048576 - 4096, 4096));
    /* rounding up to 4096 on both sides */
    assert_false(fota_arduino_gz_fits(4096, 1, 4096, 0));
    assert_true(fota_arduino_gz_fits(4096, 1, 4096, 1));
}

/* ------------------------------------------------------------ signature */

static void test_sig_forms(void **state)
{
    struct fx *f = *state;
    size_t len, slen, plen, sl;
    uint8_t *img = image(3, 3000, &len), *s;
    const uint8_t *sig;
    enum fota_arduino_sig_form form;
    const char *why;

    /* standard (openssl dgst -sha256 -sign) */
    s = signed_file(f->key, img, len, SIG_STD, &slen);
    assert_int_equal(slen, len + 256 + 4);
    assert_int_equal(fota_arduino_sig_split(s, slen, &plen, &sig, &sl), 0);
    assert_int_equal(plen, len);
    assert_int_equal(sl, 256);
    assert_int_equal(fota_arduino_sig_verify(f->pem, f->pem_len, s, plen, sig, sl, &form, &why), 0);
    assert_int_equal(form, FOTA_ARDUINO_SIG_STANDARD);
    /* the same key as PKCS#1 "RSA PUBLIC KEY" */
    assert_int_equal(fota_arduino_sig_verify(f->pem_pkcs1, f->pem_pkcs1_len, s, plen, sig, sl,
                                             &form, &why), 0);
    /* another key */
    assert_int_equal(fota_arduino_sig_verify(f->pem_other, f->pem_other_len, s, plen, sig, sl,
                                             &form, &why), FOTA_EAUTH);
    assert_int_equal(form, FOTA_ARDUINO_SIG_NONE);
    /* tampered payload, tampered signature */
    s[100] ^= 1;
    assert_int_equal(fota_arduino_sig_verify(f->pem, f->pem_len, s, plen, sig, sl, &form, &why),
                     FOTA_EAUTH);
    s[100] ^= 1;
    s[len + 7] ^= 0x80;
    assert_int_equal(fota_arduino_sig_verify(f->pem, f->pem_len, s, plen, sig, sl, &form, &why),
                     FOTA_EAUTH);
    s[len + 7] ^= 0x80;
    /* a signature shorter than the modulus */
    assert_int_equal(fota_arduino_sig_verify(f->pem, f->pem_len, s, plen, sig, 255, &form, &why),
                     FOTA_EINVAL);
    free(s);

    /* DigestInfo without the NULL parameters: standard too */
    s = signed_file(f->key, img, len, SIG_BARE_DI, &slen);
    assert_int_equal(fota_arduino_sig_split(s, slen, &plen, &sig, &sl), 0);
    assert_int_equal(fota_arduino_sig_verify(f->pem, f->pem_len, s, plen, sig, sl, &form, &why), 0);
    assert_int_equal(form, FOTA_ARDUINO_SIG_STANDARD);
    free(s);

    /* core 2.5's raw digest */
    s = signed_file(f->key, img, len, SIG_LEGACY, &slen);
    assert_int_equal(fota_arduino_sig_split(s, slen, &plen, &sig, &sl), 0);
    assert_int_equal(fota_arduino_sig_verify(f->pem, f->pem_len, s, plen, sig, sl, &form, &why), 0);
    assert_int_equal(form, FOTA_ARDUINO_SIG_LEGACY);
    free(s);

    /* no trailer: the last word of an image is no signature length */
    assert_int_equal(fota_arduino_sig_split(img, len, &plen, &sig, &sl), FOTA_ENOENT);
    assert_int_equal(fota_arduino_sig_split(img, 3, &plen, &sig, &sl), FOTA_ENOENT);
    {
        uint8_t t[8] = {0, 0, 0, 0, 0xFF, 0xFF, 0, 0};
        assert_int_equal(fota_arduino_sig_split(t, 8, &plen, &sig, &sl), FOTA_ENOENT);
        ab_le32(t + 4, 64); /* longer than the file */
        assert_int_equal(fota_arduino_sig_split(t, 8, &plen, &sig, &sl), FOTA_ENOENT);
    }
    free(img);
}

static void test_sig_keys(void **state)
{
    struct fx *f = *state;
    unsigned bits = 0;
    const char *why = NULL;
    uint8_t sig[256] = {0};
    enum fota_arduino_sig_form form;

    assert_int_equal(fota_arduino_sig_key_check(f->pem, f->pem_len, &bits, &why), 0);
    assert_int_equal(bits, 2048);
    assert_int_equal(fota_arduino_sig_key_check(f->pem_pkcs1, f->pem_pkcs1_len, &bits, &why), 0);
    assert_int_equal(fota_arduino_sig_key_check(f->pem_private, f->pem_private_len, &bits, &why),
                     FOTA_ECONFIG);
    assert_non_null(strstr(why, "private"));
    assert_int_equal(fota_arduino_sig_key_check("hello", 5, &bits, &why), FOTA_ECONFIG);
    assert_int_equal(fota_arduino_sig_key_check("", 0, &bits, &why), FOTA_ECONFIG);
    assert_int_equal(fota_arduino_sig_verify("junk", 4, sig, 1, sig, 256, &form, &why),
                     FOTA_ECONFIG);
    /* an EC key is not what the core verifies */
    {
        EVP_PKEY *ec = EVP_EC_gen("P-256");
        size_t n;
        char *pem = pem_of(ec, "SubjectPublicKeyInfo", OSSL_KEYMGMT_SELECT_PUBLIC_KEY, &n);
        assert_int_equal(fota_arduino_sig_key_check(pem, n, &bits, &why), FOTA_ECONFIG);
        free(pem);
        EVP_PKEY_free(ec);
    }
}

/* --------------------------------------------------------------- hashes */

static void test_mode_md5s(void **state)
{
    size_t len;
    uint8_t *img = image(2, 3000, &len), *c = malloc(len + 64);
    char v[4][FOTA_ARDUINO_MD5_HEX], want[33], upper[33];
    (void)state;

    fota_arduino_mode_md5s(img, len, v);
    for (int m = 0; m < 4; m++) {
        memcpy(c, img, len);
        c[2] = (uint8_t)m;
        md5_of(c, len, want);
        assert_string_equal(v[m], want);
        assert_int_equal(fota_arduino_mode_md5_match(v, want), m);
        for (int i = 0; i < 33; i++)
            upper[i] = (char)(want[i] >= 'a' && want[i] <= 'f' ? want[i] - 32 : want[i]);
        assert_int_equal(fota_arduino_mode_md5_match(v, upper), m);
    }
    /* the plain MD5 of the file is the variant of its own mode byte */
    md5_of(img, len, want);
    assert_string_equal(v[2], want);
    assert_int_equal(fota_arduino_mode_md5_match(v, "0123456789abcdef0123456789abcdef"), -1);
    assert_int_equal(fota_arduino_mode_md5_match(v, "0123"), -1);
    assert_int_equal(fota_arduino_mode_md5_match(v, NULL), -1);
    /* bytes after the sketch are outside what the device hashes */
    memcpy(c, img, len);
    memset(c + len, 0x77, 64);
    {
        char w[4][FOTA_ARDUINO_MD5_HEX];
        fota_arduino_mode_md5s(c, len, w);
        assert_string_equal(w[2], v[2]);
    }
    md5_of((const uint8_t *)"", 0, want);
    assert_string_equal(want, "d41d8cd98f00b204e9800998ecf8427e");
    free(c);
    free(img);
}

static void test_core_lines(void **state)
{
    char buf[8];
    (void)state;
    assert_int_equal(fota_arduino_core_parse("3.1"), 31);
    assert_int_equal(fota_arduino_core_parse("2.5"), 25);
    assert_int_equal(fota_arduino_core_parse("2.7.4"), 27);
    assert_int_equal(fota_arduino_core_parse("3.0.0"), 30);
    assert_int_equal(fota_arduino_core_parse("2.4"), 24);
    assert_int_equal(fota_arduino_core_parse("2.8"), -1);
    assert_int_equal(fota_arduino_core_parse("3.2"), -1);
    assert_int_equal(fota_arduino_core_parse("3.1."), -1);
    assert_int_equal(fota_arduino_core_parse("3.1.2.1"), -1);
    assert_int_equal(fota_arduino_core_parse("31"), -1);
    assert_int_equal(fota_arduino_core_parse(""), -1);
    assert_int_equal(fota_arduino_core_parse(NULL), -1);
    fota_arduino_core_format(27, buf, sizeof buf);
    assert_string_equal(buf, "2.7");
}

/* ------------------------------------------------------- file_check */

static struct fota_arduino_policy pol(int core, int mode, int gzip, const char *pem, size_t n)
{
    struct fota_arduino_policy p = {.core = core, .flash_mode = mode, .gzip = gzip,
                                    .signing_pem = pem, .signing_pem_len = n};
    return p;
}

static void test_file_plain(void **state)
{
    struct fota_arduino_file out;
    struct fota_arduino_policy p = pol(31, -1, 0, NULL, 0);
    char reason[FOTA_ARDUINO_REASON_MAX], md5[33];
    size_t len;
    uint8_t *img = image(3, 20000, &len);
    (void)state;

    assert_int_equal(fota_arduino_file_check(img, len, &p, &out, reason, sizeof reason), 0);
    assert_string_equal(reason, "");
    assert_ptr_equal(out.plain.data, img);
    assert_int_equal(out.plain.len, len);
    assert_null(out.gz.data);
    assert_int_equal(out.gz.len, 0);
    md5_of(img, len, md5);
    assert_string_equal(out.plain.md5, md5);
    assert_string_equal(out.image_md5, md5);
    assert_string_equal(out.sketch_md5[3], md5);
    assert_int_equal(out.image_len, len);
    assert_int_equal(out.img.flash_mode, 3);
    assert_int_equal(out.img.flash_size, 4u << 20);
    assert_int_equal(out.img.sketch_csum, FOTA_ARDUINO_CSUM_CRC_ZEROED);
    assert_int_equal(out.sig_form, FOTA_ARDUINO_SIG_NONE);
    assert_int_equal(out.upload_gzip, 0);
    assert_int_equal(strlen(out.plain.sha256), 64);
    fota_arduino_file_cleanup(&out);

    /* gzip product: compressed at the best level, plain kept */
    p.gzip = 1;
    assert_int_equal(fota_arduino_file_check(img, len, &p, &out, reason, sizeof reason), 0);
    assert_non_null(out.gz.data);
    assert_true(out.gz.len < len);
    assert_int_equal(out.gz.data[0], 0x1F);
    assert_ptr_equal(out.plain.data, img);
    {
        uint8_t *back;
        size_t blen;
        const char *why;
        char gzmd5[33];
        assert_int_equal(fota_arduino_gz_inflate(out.gz.data, out.gz.len, FOTA_ARDUINO_MAX_SIZE,
                                                 &back, &blen, &why), 0);
        assert_int_equal(blen, len);
        assert_memory_equal(back, img, len);
        free(back);
        md5_of(out.gz.data, out.gz.len, gzmd5);
        assert_string_equal(out.gz.md5, gzmd5);
    }
    assert_string_equal(out.sketch_md5[3], md5);
    fota_arduino_file_cleanup(&out);

    /* gzip on a fleet that cannot take it */
    p.core = 26;
    assert_int_equal(fota_arduino_file_check(img, len, &p, &out, reason, sizeof reason),
                     FOTA_ECONFIG);
    assert_non_null(strstr(reason, "2.7"));
    fota_arduino_file_cleanup(&out);

    /* a broken image says where */
    p = pol(31, -1, 0, NULL, 0);
    img[0x1000] = 0;
    assert_int_equal(fota_arduino_file_check(img, len, &p, &out, reason, sizeof reason),
                     FOTA_EMAGIC);
    assert_non_null(strstr(reason, "offset 0x1000"));
    fota_arduino_file_cleanup(&out);
    assert_int_equal(fota_arduino_file_check(img, 0, &p, &out, reason, sizeof reason),
                     FOTA_ETRUNC);
    fota_arduino_file_cleanup(&out);
    fota_arduino_file_cleanup(NULL);
    free(img);
}

static void test_file_gzip_upload(void **state)
{
    struct fota_arduino_file out;
    struct fota_arduino_policy p = pol(31, -1, 0, NULL, 0);
    char reason[FOTA_ARDUINO_REASON_MAX], md5[33];
    size_t len, zlen;
    uint8_t *img = image(0, 20000, &len), *gz = gzip_of(img, len, &zlen);
    (void)state;

    md5_of(img, len, md5);
    /* a product without gzip serves it inflated */
    assert_int_equal(fota_arduino_file_check(gz, zlen, &p, &out, reason, sizeof reason), 0);
    assert_int_equal(out.upload_gzip, 1);
    assert_null(out.gz.data);
    assert_int_equal(out.plain.len, len);
    assert_memory_equal(out.plain.data, img, len);
    assert_string_equal(out.plain.md5, md5);
    assert_string_equal(out.image_md5, md5);
    assert_string_equal(out.sketch_md5[0], md5);
    fota_arduino_file_cleanup(&out);
    /* a gzip product serves the upload as it is */
    p.gzip = 1;
    assert_int_equal(fota_arduino_file_check(gz, zlen, &p, &out, reason, sizeof reason), 0);
    assert_ptr_equal(out.gz.data, gz);
    assert_int_equal(out.gz.len, zlen);
    assert_int_equal(out.plain.len, len);
    assert_string_equal(out.image_md5, md5);
    fota_arduino_file_cleanup(&out);
    /* cores before 2.7 refuse gzip bodies */
    p.gzip = 0;
    p.core = 26;
    assert_int_equal(fota_arduino_file_check(gz, zlen, &p, &out, reason, sizeof reason),
                     FOTA_EPERM);
    assert_non_null(strstr(reason, "0xE9"));
    fota_arduino_file_cleanup(&out);
    /* wrong ISIZE, two members */
    p.core = 31;
    gz[zlen - 1] ^= 1;
    assert_int_equal(fota_arduino_file_check(gz, zlen, &p, &out, reason, sizeof reason),
                     FOTA_EPROTO);
    assert_non_null(strstr(reason, "ISIZE"));
    fota_arduino_file_cleanup(&out);
    gz[zlen - 1] ^= 1;
    {
        uint8_t *two = malloc(2 * zlen);
        memcpy(two, gz, zlen);
        memcpy(two + zlen, gz, zlen);
        assert_int_equal(fota_arduino_file_check(two, 2 * zlen, &p, &out, reason, sizeof reason),
                         FOTA_EPROTO);
        assert_non_null(strstr(reason, "member"));
        fota_arduino_file_cleanup(&out);
        free(two);
    }
    /* gzip of something that is not an Arduino image */
    {
        size_t jl;
        uint8_t junk[5000];
        memset(junk, 0xE9, sizeof junk);
        uint8_t *jz = gzip_of(junk, sizeof junk, &jl);
        assert_int_not_equal(fota_arduino_file_check(jz, jl, &p, &out, reason, sizeof reason), 0);
        assert_non_null(strstr(reason, "inflated image"));
        fota_arduino_file_cleanup(&out);
        free(jz);
    }
    free(gz);
    free(img);
}

static void test_file_signed(void **state)
{
    struct fx *f = *state;
    struct fota_arduino_file out;
    struct fota_arduino_policy p = pol(31, 3, 0, f->pem, f->pem_len);
    char reason[FOTA_ARDUINO_REASON_MAX], md5[33];
    size_t len, slen;
    uint8_t *img = image(3, 20000, &len), *s = signed_file(f->key, img, len, SIG_STD, &slen);

    md5_of(img, len, md5);
    assert_int_equal(fota_arduino_file_check(s, slen, &p, &out, reason, sizeof reason), 0);
    assert_int_equal(out.sig_form, FOTA_ARDUINO_SIG_STANDARD);
    assert_int_equal(out.sig_len, 256);
    assert_ptr_equal(out.plain.data, s);
    assert_int_equal(out.plain.len, slen);    /* served with its trailer */
    assert_int_equal(out.image_len, len);     /* the device runs the payload */
    assert_string_equal(out.image_md5, md5);
    assert_string_equal(out.sketch_md5[3], md5);
    fota_arduino_file_cleanup(&out);

    /* the fleet's flash mode differs: the updater's rewrite breaks the signature */
    p.flash_mode = 2;
    assert_int_equal(fota_arduino_file_check(s, slen, &p, &out, reason, sizeof reason),
                     FOTA_EPERM);
    assert_non_null(strstr(reason, "flash mode dout"));
    assert_non_null(strstr(reason, "dio"));
    fota_arduino_file_cleanup(&out);
    p.flash_mode = -1; /* not known yet: the first release sets it */
    assert_int_equal(fota_arduino_file_check(s, slen, &p, &out, reason, sizeof reason), 0);
    fota_arduino_file_cleanup(&out);

    /* a 2.5 fleet wants the legacy form */
    p.core = 25;
    assert_int_equal(fota_arduino_file_check(s, slen, &p, &out, reason, sizeof reason),
                     FOTA_EAUTH);
    assert_non_null(strstr(reason, "legacy"));
    fota_arduino_file_cleanup(&out);

    /* tampered, unsigned, another key */
    p.core = 31;
    s[0x1000 + 200] ^= 4;
    assert_int_equal(fota_arduino_file_check(s, slen, &p, &out, reason, sizeof reason),
                     FOTA_EAUTH);
    assert_non_null(strstr(reason, "does not verify"));
    fota_arduino_file_cleanup(&out);
    s[0x1000 + 200] ^= 4;
    assert_int_equal(fota_arduino_file_check(img, len, &p, &out, reason, sizeof reason),
                     FOTA_EAUTH);
    assert_non_null(strstr(reason, "no signature"));
    fota_arduino_file_cleanup(&out);
    p.signing_pem = f->pem_other;
    p.signing_pem_len = f->pem_other_len;
    assert_int_equal(fota_arduino_file_check(s, slen, &p, &out, reason, sizeof reason),
                     FOTA_EAUTH);
    fota_arduino_file_cleanup(&out);

    /* with gzip too, fotad cannot sign: a plain signed upload is refused */
    p = pol(31, -1, 1, f->pem, f->pem_len);
    assert_int_equal(fota_arduino_file_check(s, slen, &p, &out, reason, sizeof reason),
                     FOTA_EPERM);
    assert_non_null(strstr(reason, ".gz"));
    fota_arduino_file_cleanup(&out);
    /* a signed file on an unsigned product: the trailer is bytes after the sketch */
    p = pol(31, -1, 0, NULL, 0);
    assert_int_equal(fota_arduino_file_check(s, slen, &p, &out, reason, sizeof reason), 0);
    assert_int_equal(out.img.trailing, 260);
    assert_string_equal(out.sketch_md5[3], md5);
    fota_arduino_file_cleanup(&out);
    free(s);

    /* legacy form on a 2.5 fleet */
    s = signed_file(f->key, img, len, SIG_LEGACY, &slen);
    p = pol(25, -1, 0, f->pem, f->pem_len);
    assert_int_equal(fota_arduino_file_check(s, slen, &p, &out, reason, sizeof reason), 0);
    assert_int_equal(out.sig_form, FOTA_ARDUINO_SIG_LEGACY);
    fota_arduino_file_cleanup(&out);
    p.core = 27;
    assert_int_equal(fota_arduino_file_check(s, slen, &p, &out, reason, sizeof reason),
                     FOTA_EAUTH);
    assert_non_null(strstr(reason, "standard"));
    fota_arduino_file_cleanup(&out);
    p.core = 24;
    assert_int_equal(fota_arduino_file_check(s, slen, &p, &out, reason, sizeof reason),
                     FOTA_ECONFIG);
    fota_arduino_file_cleanup(&out);
    free(s);
    free(img);
}

static void test_file_signed_gzip(void **state)
{
    struct fx *f = *state;
    struct fota_arduino_file out;
    struct fota_arduino_policy p = pol(30, 3, 1, f->pem, f->pem_len);
    char reason[FOTA_ARDUINO_REASON_MAX], md5[33];
    size_t len, zlen, slen;
    uint8_t *img = image(2, 20000, &len), *gz = gzip_of(img, len, &zlen);
    uint8_t *s = signed_file(f->key, gz, zlen, SIG_STD, &slen);

    md5_of(img, len, md5);
    /* the signature covers the compressed bytes; served as uploaded; the
     * mode byte of a gzip image is never rewritten (fleet dout, image dio) */
    assert_int_equal(fota_arduino_file_check(s, slen, &p, &out, reason, sizeof reason), 0);
    assert_ptr_equal(out.gz.data, s);
    assert_int_equal(out.gz.len, slen);
    assert_null(out.plain.data);
    assert_int_equal(out.image_len, len);
    assert_string_equal(out.image_md5, md5);
    assert_string_equal(out.sketch_md5[2], md5);
    assert_int_equal(out.sig_form, FOTA_ARDUINO_SIG_STANDARD);
    fota_arduino_file_cleanup(&out);
    /* 2.7 fleets break on signed gzip */
    p.core = 27;
    assert_int_equal(fota_arduino_file_check(s, slen, &p, &out, reason, sizeof reason),
                     FOTA_ECONFIG);
    assert_non_null(strstr(reason, "3.0.0"));
    fota_arduino_file_cleanup(&out);
    /* signed gzip on a product without gzip */
    p = pol(31, -1, 0, f->pem, f->pem_len);
    assert_int_equal(fota_arduino_file_check(s, slen, &p, &out, reason, sizeof reason),
                     FOTA_EPERM);
    assert_non_null(strstr(reason, "gzip option"));
    fota_arduino_file_cleanup(&out);
    free(s);
    free(gz);
    free(img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gz_compress_container),
        cmocka_unit_test(test_gz_refusals),
        cmocka_unit_test(test_gz_bomb),
        cmocka_unit_test(test_gz_fits),
        cmocka_unit_test(test_sig_forms),
        cmocka_unit_test(test_sig_keys),
        cmocka_unit_test(test_mode_md5s),
        cmocka_unit_test(test_core_lines),
        cmocka_unit_test(test_file_plain),
        cmocka_unit_test(test_file_gzip_upload),
        cmocka_unit_test(test_file_signed),
        cmocka_unit_test(test_file_signed_gzip),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
