/* ard_test.c - fota-sim's Arduino-core emulation, pure parts
 * (shared/reference/arduino-ota.md, §n): ESPhttpUpdate's request bytes per
 * core line against the transcripts in data/ (the 463 bytes of §2.1),
 * ESPHome's request, the response header rules of §3, every verdict of
 * §0.3/§4 with its getLastErrorString, the updater (mode byte rewritten in
 * flash but not in the MD5, x-MD5 rules, the signature of §7 standard and
 * core 2.5, tampered), eboot's gzip copy and the sketch's MD5, Tasmota's URL
 * rewrites (§8's examples) and ESPHome's manifest and path join (§9.3). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "fota_str.h"
#include "fotasim.h"
#include "fotasim_ardhttp.h"
#include "fotasim_ardimg.h"
#include "fotasim_ardupd.h"
#include "fotasim_eboot.h"
#include "fotasim_esphome.h"
#include "fotasim_tasmota.h"

static char *slurp(const char *name, size_t *len)
{
    char path[512];
    FILE *fp;
    char *buf;
    long n;
    snprintf(path, sizeof(path), "%s/%s", DEVTEST_DATA, name);
    fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), n);
    fclose(fp);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

static void assert_request(const char *file, int core, const char *url, const char *version)
{
    struct fotasim_url u;
    struct fotasim_ardreq q;
    char buf[1024];
    size_t wantlen;
    char *want = slurp(file, &wantlen);
    int n;

    assert_int_equal(fotasim_url_parse(url, &u), 0);
    memset(&q, 0, sizeof(q));
    q.core = core;
    q.url = &u;
    q.chip_id = 15602487;
    fota_str_copy(q.sta_mac, sizeof(q.sta_mac), "DE:BA:7A:B1:E0:42");
    fota_str_copy(q.ap_mac, sizeof(q.ap_mac), "DE:BA:7A:B1:E0:42");
    q.free_space = 4194304;
    q.sketch_size = 400000;
    fota_str_copy(q.sketch_md5, sizeof(q.sketch_md5), "0123456789abcdef0123456789abcdef");
    q.chip_size = 4194304;
    q.sdk_version = "2.5.0";
    q.mode = "sketch";
    q.version = version;
    n = fotasim_ardreq_build(buf, sizeof(buf), &q);
    if (n != (int)wantlen || memcmp(buf, want, wantlen) != 0)
        fail_msg("%s: got %d bytes:\n%.*s\nwant %zu:\n%s", file, n, n, buf, wantlen, want);
    free(want);
}

static void test_requests(void **state)
{
    struct fotasim_url u;
    char buf[512];
    size_t wantlen;
    char *want;
    (void)state;
    assert_request("espupdate-3.1.http", 31, "http://127.0.0.1:18090/fw/firmware.bin?x=1", "1.0.0");
    assert_request("espupdate-3.1.http", 30, "http://127.0.0.1:18090/fw/firmware.bin?x=1", "1.0.0");
    assert_request("espupdate-3.1.http", 27, "http://127.0.0.1:18090/fw/firmware.bin?x=1", "1.0.0");
    assert_request("espupdate-3.1.http", 26, "http://127.0.0.1:18090/fw/firmware.bin?x=1", "1.0.0");
    assert_request("espupdate-2.5.http", 25, "http://127.0.0.1:18090/fw/firmware.bin?x=1", "1.0.0");
    assert_request("espupdate-3.1-noversion.http", 31, "http://127.0.0.1:18090/fw/firmware.bin?x=1", "");
    assert_request("espupdate-3.1-noversion.http", 31, "http://127.0.0.1:18090/fw/firmware.bin?x=1", NULL);
    assert_request("espupdate-3.1-auth.http", 31, "http://u:p@127.0.0.1:18094", "1.0.0");
    assert_request("espupdate-3.1-auth.http", 27, "http://u:p@127.0.0.1:18094/", "1.0.0");
    assert_request("espupdate-2.6-auth.http", 26, "http://u:p@127.0.0.1:18094/", "1.0.0");
    /* ESPHome: HTTP/1.1, keep-alive, Accept-Encoding, no x-ESP8266 headers */
    want = slurp("esphome.http", &wantlen);
    assert_int_equal(fotasim_url_parse("http://192.168.1.10/v1/arduino/KEY/d/kitchen/manifest.json", &u), 0);
    assert_int_equal(fotasim_esphome_req_build(buf, sizeof(buf), &u, NULL), (int)wantlen);
    assert_memory_equal(buf, want, wantlen);
    free(want);
    /* Host: the port only when it is neither 80 nor 443 */
    assert_int_equal(fotasim_url_parse("http://h:443/a", &u), 0);
    assert_int_equal(u.port, 443);
    assert_int_equal(fotasim_url_parse("https://h/a", &u), 0);
    assert_int_equal(u.port, 443);
    assert_int_equal(fotasim_url_parse("ftp://h/a", &u), -1);
    assert_int_equal(fotasim_url_parse("http://h", &u), 0);
    assert_string_equal(u.path, "/");
}

static struct fotasim_ardresp parse(const char *text, int *used)
{
    struct fotasim_ardresp r;
    fotasim_ardresp_init(&r);
    *used = fotasim_ardresp_feed(&r, (const uint8_t *)text, strlen(text));
    return r;
}

static void test_response_header(void **state)
{
    struct fotasim_ardresp r;
    int used;
    size_t i;
    const char *h = "HTTP/1.1 200\r\ncontent-length: 8\r\nContent-Length: 12\r\nx-MD5: a\r\nX-md5:  b \r\n\r\nBODY";
    (void)state;
    r = parse(h, &used);
    assert_int_equal(used, (int)strlen(h) - 4);
    assert_int_equal(r.status, 200);                 /* no reason phrase */
    assert_int_equal(r.content_length, 12);          /* the last wins */
    assert_string_equal(r.x_md5, "a,b");             /* joined with ',' */
    assert_int_equal(fotasim_ardresp_verdict(&r), 0);
    /* split anywhere */
    for (i = 1; i < strlen(h); i++) {
        fotasim_ardresp_init(&r);
        if (fotasim_ardresp_feed(&r, (const uint8_t *)h, i) < 0)
            assert_int_equal(fotasim_ardresp_feed(&r, (const uint8_t *)h + i, strlen(h) - i),
                             (int)(strlen(h) - 4 - i));
        assert_int_equal(r.content_length, 12);
    }
    r = parse("HTTP/1.0 OK\r\n\r\n", &used);
    assert_int_equal(fotasim_ardresp_verdict(&r), FOTASIM_HTTPC_NO_HTTP_SERVER);
    r = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", &used);
    assert_int_equal(fotasim_ardresp_verdict(&r), FOTASIM_HTTPC_ENCODING);
    r = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n", &used);
    assert_int_equal(fotasim_ardresp_verdict(&r), 0);
    assert_int_equal(r.chunked, 1);
    r = parse("HTTP/1.1 200 OK\r\nContent-Length : 5\r\nContent-Length: abc\r\n\r\n", &used);
    assert_int_equal(r.content_length, 0);           /* the name is not trimmed; atoi("abc") */
    r = parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", &used);
    assert_int_equal(used, -1);                      /* no end yet */
    /* keep-alive (ESPHome's reuse): HTTP/1.1 without Connection: close */
    r = parse("HTTP/1.1 200 OK\r\n\r\n", &used);
    assert_int_equal(r.can_reuse, 1);
    r = parse("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", &used);
    assert_int_equal(r.can_reuse, 0);
    r = parse("HTTP/1.0 200 OK\r\n\r\n", &used);
    assert_int_equal(r.can_reuse, 0);
    r = parse("HTTP/1.1 503 Busy\r\n\r\n", &used);
    assert_int_equal(r.can_reuse, 0);
}

static struct fotasim_ardenv env31(void)
{
    struct fotasim_ardenv e;
    memset(&e, 0, sizeof(e));
    e.core = 31;
    e.sketch_area = 0x100000;
    e.sketch_size = 400000;
    e.chip_size = 4194304;
    e.flash_mode = 2;
    e.size_code = 4;
    return e;
}

/* One row of §0.3: the header, the first body bytes; the verdict. */
static void verdict(const char *hdr, const uint8_t *first4, int core, int want_result, int want_err,
                    const char *want_string)
{
    struct fotasim_ardenv e = env31();
    struct fotasim_ardresp r;
    char s[256];
    int used, err = 0, res, v;
    long len = 0;

    e.core = core;
    r = parse(hdr, &used);
    assert_true(used > 0);
    v = fotasim_ardresp_verdict(&r);
    res = fotasim_ardupd_decide(&r, v ? v : r.status, &e, &err, &len);
    if (res == -1) {                                 /* 200 that fits: the peek */
        err = fotasim_ardupd_check4(first4, &e);
        res = err ? FOTASIM_UPDATE_FAILED : FOTASIM_UPDATE_OK;
    }
    assert_int_equal(res, want_result);
    assert_int_equal(err, want_err);
    fotasim_ardupd_error_string(core, err, NULL, s, sizeof(s));
    assert_string_equal(s, want_string);
}

static void test_verdicts(void **state)
{
    static const uint8_t e9[4] = {0xE9, 0x05, 0x02, 0x40}, gz[4] = {0x1F, 0x8B, 0x08, 0x00},
                         zero[4] = {0}, big[4] = {0xE9, 0x05, 0x02, 0x90}, odd[4] = {0xE9, 5, 2, 0x50};
    (void)state;
    verdict("HTTP/1.0 200 OK\r\nContent-Length: 1000\r\n\r\n", e9, 31, FOTASIM_UPDATE_OK, 0, "");
    verdict("HTTP/1.0 200 OK\r\nContent-Length: 1000\r\n\r\n", gz, 31, FOTASIM_UPDATE_OK, 0, "");
    verdict("HTTP/1.0 200 OK\r\nContent-Length: 1000\r\n\r\n", gz, 26, FOTASIM_UPDATE_FAILED, -106,
            "Verify Bin Header Failed");               /* gzip from core 2.7 on */
    verdict("HTTP/1.0 200 OK\r\n\r\n", e9, 31, FOTASIM_UPDATE_FAILED, -101, "Server Did Not Report Size");
    verdict("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", e9, 31, FOTASIM_UPDATE_FAILED,
            -101, "Server Did Not Report Size");
    verdict("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 100\r\n\r\n",
            (const uint8_t *)"64\r\n", 31, FOTASIM_UPDATE_FAILED, -106, "Verify Bin Header Failed");
    verdict("HTTP/1.0 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", e9, 31, FOTASIM_UPDATE_FAILED, -9,
            "HTTP error: Transfer-Encoding not supported");
    verdict("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", e9, 31, FOTASIM_UPDATE_FAILED, -101,
            "Server Did Not Report Size");
    verdict("HTTP/1.0 200 OK\r\nContent-Length: 8388608\r\n\r\n", e9, 31, FOTASIM_UPDATE_FAILED, -100,
            "Not Enough space");
    verdict("HTTP/1.0 200 OK\r\nContent-Length: 1000\r\n\r\n", zero, 31, FOTASIM_UPDATE_FAILED, -106,
            "Verify Bin Header Failed");
    verdict("HTTP/1.0 200 OK\r\nContent-Length: 1000\r\n\r\n", big, 31, FOTASIM_UPDATE_FAILED, -107,
            "New Binary Does Not Fit Flash Size");
    verdict("HTTP/1.0 200 OK\r\nContent-Length: 1000\r\n\r\n", odd, 31, FOTASIM_UPDATE_OK, 0, "");
    verdict("HTTP/1.0 304 Not Modified\r\n\r\n", e9, 31, FOTASIM_UPDATE_NO_UPDATES, 0, "");
    verdict("HTTP/1.0 401 Unauthorized\r\n\r\n", e9, 31, FOTASIM_UPDATE_FAILED, -108, "Unauthorized (401)");
    verdict("HTTP/1.0 401 Unauthorized\r\n\r\n", e9, 27, FOTASIM_UPDATE_FAILED, -104, "Wrong HTTP Code");
    verdict("HTTP/1.0 403 Forbidden\r\n\r\n", e9, 31, FOTASIM_UPDATE_FAILED, -103, "Forbidden (403)");
    verdict("HTTP/1.0 404 Not Found\r\n\r\n", e9, 31, FOTASIM_UPDATE_FAILED, -102, "File Not Found (404)");
    verdict("HTTP/1.0 500 Oops\r\n\r\n", e9, 31, FOTASIM_UPDATE_FAILED, -104, "Wrong HTTP Code");
    verdict("HTTP/1.0 302 Found\r\nLocation: /x\r\n\r\n", e9, 31, FOTASIM_UPDATE_FAILED, -104,
            "Wrong HTTP Code");
    verdict("HTTP/1.0 206 Partial\r\nContent-Length: 10\r\n\r\n", e9, 31, FOTASIM_UPDATE_FAILED, -104,
            "Wrong HTTP Code");
    verdict("HTTP/1.0 OK\r\n\r\n", e9, 31, FOTASIM_UPDATE_FAILED, -7, "HTTP error: no HTTP server");
}

/* A flash with an Arduino image of `version` at 0; the device's env. */
static void ard_flash(struct fotasim_flash *f, const char *version, uint8_t mode)
{
    struct fotasim_ardimg_opts o;
    uint8_t *img;
    size_t len;
    memset(&o, 0, sizeof(o));
    o.version = version;
    o.flash_mode = mode;
    o.size_code = 4;
    o.size = 48 << 10;
    o.crc_words = 1;
    assert_int_equal(fotasim_ardimg_build(&o, &img, &len), 0);
    assert_int_equal(fotasim_flash_init(f, 0x400000, 7), 0);
    assert_int_equal(fotasim_flash_program(f, 0, img, (uint32_t)len), 0);
    free(img);
}

static void md5hex(const uint8_t *p, size_t n, char out[33])
{
    uint8_t d[16];
    unsigned i;
    EVP_Digest(p, n, d, NULL, EVP_md5(), NULL);
    for (i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* Stages img through the updater (in odd pieces) and copies it as eboot would. */
static int stage(struct fotasim_flash *f, struct fotasim_ardenv *e, const uint8_t *img, size_t len,
                 const char *xmd5, struct fotasim_updater *u)
{
    struct fotadev_flash_ops ops = fotasim_flash_ops(f);
    struct fotasim_ebcmd cmd;
    size_t off = 0, k = 333;
    int rc;
    memset(u, 0, sizeof(*u));
    assert_int_equal(fotasim_upd_begin(u, e, &ops, (uint32_t)len), 0);
    if (xmd5 && fotasim_upd_set_md5(u, xmd5) < 0)
        return -105;
    if (fotasim_upd_check_first(u, img[0]) != 0)
        return u->error;
    while (off < len) {
        size_t n = len - off < k ? len - off : k;
        assert_true(fotasim_upd_write(u, img + off, n) == (long)n);
        off += n;
        k = k * 7 % 5000 + 1;
    }
    if ((rc = fotasim_upd_end(u, &cmd)) != 0)
        return rc;
    assert_int_equal(fotasim_eboot_copy(&ops, &cmd), 0);
    return 0;
}

static void test_updater(void **state)
{
    struct fotasim_flash f;
    struct fotasim_ardimg_opts o;
    struct fotasim_sketch_info sk;
    struct fotasim_updater u;
    struct fotasim_ardenv e = env31();
    struct fotadev_flash_ops ops;
    uint8_t *img, *gz;
    size_t len, gzlen;
    char md5[33], s[256];
    (void)state;

    ard_flash(&f, "1.0.0", 3);                       /* the device runs dout */
    ops = fotasim_flash_ops(&f);
    assert_int_equal(fotasim_eboot_sketch(&ops, f.size, &sk), 0);
    assert_string_equal(sk.version, "1.0.0");
    assert_int_equal(sk.flash_mode, 3);
    assert_int_equal(sk.size, 48 << 10);             /* getSketchSize = the file's length */
    e.sketch_size = sk.size;
    e.flash_mode = sk.flash_mode;
    memset(&o, 0, sizeof(o));
    o.version = "2.0.0";
    o.flash_mode = 2;                                /* built dio */
    o.size_code = 4;
    o.size = 40000;
    o.crc_words = 1;
    assert_int_equal(fotasim_ardimg_build(&o, &img, &len), 0);
    md5hex(img, len, md5);
    /* an upper-case x-MD5 of the bytes received passes (case-insensitive) */
    {
        char up[33];
        size_t i;
        for (i = 0; i < 33; i++)
            up[i] = (char)(md5[i] >= 'a' && md5[i] <= 'f' ? md5[i] - 32 : md5[i]);
        assert_int_equal(stage(&f, &e, img, len, up, &u), 0);
    }
    assert_int_equal(fotasim_eboot_sketch(&ops, f.size, &sk), 0);
    assert_string_equal(sk.version, "2.0.0");
    assert_int_equal(sk.flash_mode, 3);              /* rewritten to the device's mode */
    img[2] = 3;
    md5hex(img, len, s);                             /* the check-in MD5: the mode-3 variant */
    assert_string_equal(sk.md5, s);
    img[2] = 2;
    /* x-MD5 not 32 characters: -105, and the updater stays running */
    e.sketch_size = sk.size;
    assert_int_equal(stage(&f, &e, img, len, "abc", &u), -105);
    assert_int_equal(fotasim_upd_begin(&u, &e, &ops, (uint32_t)len), -1);
    assert_int_equal(u.error, 0);
    fotasim_upd_reset(&u);
    /* a wrong x-MD5: 7 with both digests */
    assert_int_equal(stage(&f, &e, img, len, "00000000000000000000000000000000", &u), FOTASIM_UPD_MD5);
    fotasim_ardupd_error_string(31, 7, &u, s, sizeof(s));
    assert_non_null(strstr(s, "Update error: ERROR[7]: MD5 verification failed: expected: 0000"));
    assert_non_null(strstr(s, md5));
    fotasim_ardupd_error_string(27, 7, &u, s, sizeof(s));
    assert_non_null(strstr(s, "Update error: ERROR[7]: MD5"));
    /* gzip: inflated by eboot, its ISIZE from the last 4 bytes; no mode rewrite */
    assert_int_equal(fotasim_ardimg_gzip(img, len, &gz, &gzlen), 0);
    assert_true(gzlen < len);
    assert_int_equal(stage(&f, &e, gz, gzlen, NULL, &u), 0);
    assert_int_equal(fotasim_eboot_sketch(&ops, f.size, &sk), 0);
    md5hex(img, len, s);
    assert_string_equal(sk.md5, s);                  /* the inflated image, mode byte kept */
    assert_int_equal(sk.flash_mode, 2);
    /* 1f 00: passes the first byte, refused at the end (10) */
    gz[1] = 0;
    assert_int_equal(stage(&f, &e, gz, gzlen, NULL, &u), FOTASIM_UPD_MAGIC_BYTE);
    fotasim_ardupd_error_string(31, 10, &u, s, sizeof(s));
    assert_string_equal(s, "Update error: ERROR[10]: Magic byte is not 0xE9");
    free(gz);
    free(img);
    fotasim_flash_cleanup(&f);
}

static EVP_PKEY *rsa_key(const char *path_priv, const char *path_pub)
{
    EVP_PKEY *k = EVP_RSA_gen(2048);
    FILE *fp;
    assert_non_null(k);
    fp = fopen(path_priv, "w");
    assert_non_null(fp);
    assert_true(PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL) == 1);
    fclose(fp);
    fp = fopen(path_pub, "w");
    assert_non_null(fp);
    assert_true(PEM_write_PUBKEY(fp, k) == 1);
    fclose(fp);
    return k;
}

static void test_signatures(void **state)
{
    char dir[] = "/tmp/fotasim-sig-XXXXXX", priv[128], pub[128], err[160];
    struct fotasim_flash f;
    struct fotasim_ardimg_opts o;
    struct fotasim_updater u;
    struct fotasim_sketch_info sk;
    struct fotasim_ardenv e = env31();
    struct fotadev_flash_ops ops;
    EVP_PKEY *k, *verifier;
    uint8_t *img, *signed_img;
    size_t len, slen;
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(priv, sizeof(priv), "%s/private.key", dir);
    snprintf(pub, sizeof(pub), "%s/public.key", dir);
    k = rsa_key(priv, pub);
    verifier = fotasim_ard_load_pubkey(pub, err, sizeof(err));
    assert_non_null(verifier);
    ard_flash(&f, "1.0.0", 2);
    ops = fotasim_flash_ops(&f);
    assert_int_equal(fotasim_eboot_sketch(&ops, f.size, &sk), 0);
    e.sketch_size = sk.size;
    e.pubkey = verifier;
    memset(&o, 0, sizeof(o));
    o.version = "3.0.0";
    o.flash_mode = 2;
    o.size_code = 4;
    o.size = 30000;
    o.crc_words = 1;
    assert_int_equal(fotasim_ardimg_build(&o, &img, &len), 0);
    /* standard DigestInfo: core 3.1 takes it (a wrong x-MD5 is not even looked at) */
    assert_int_equal(fotasim_ardimg_sign(img, len, priv, 0, &signed_img, &slen, err, sizeof(err)), 0);
    assert_int_equal(slen, len + 256 + 4);
    assert_int_equal(stage(&f, &e, signed_img, slen, "00000000000000000000000000000000", &u), 0);
    assert_int_equal(fotasim_eboot_sketch(&ops, f.size, &sk), 0);
    assert_string_equal(sk.version, "3.0.0");
    /* core 2.5 wants the raw digest: the standard form fails (12) */
    e.core = 25;
    e.sketch_size = sk.size;
    assert_int_equal(stage(&f, &e, signed_img, slen, NULL, &u), FOTASIM_UPD_SIGN);
    free(signed_img);
    assert_int_equal(fotasim_ardimg_sign(img, len, priv, 1, &signed_img, &slen, err, sizeof(err)), 0);
    assert_int_equal(stage(&f, &e, signed_img, slen, NULL, &u), 0);
    e.core = 31;                                     /* and 3.1 refuses the legacy form */
    assert_int_equal(stage(&f, &e, signed_img, slen, NULL, &u), FOTASIM_UPD_SIGN);
    free(signed_img);
    /* tampered payload, unsigned image, and a mode byte the updater rewrites */
    assert_int_equal(fotasim_ardimg_sign(img, len, priv, 0, &signed_img, &slen, err, sizeof(err)), 0);
    signed_img[5000] ^= 1;
    assert_int_equal(stage(&f, &e, signed_img, slen, NULL, &u), FOTASIM_UPD_SIGN);
    signed_img[5000] ^= 1;
    assert_int_equal(stage(&f, &e, img, len, NULL, &u), FOTASIM_UPD_SIGN);
    e.flash_mode = 3;                                /* device dout, image dio: the staged
                                                      * flash no longer matches (§7.4) */
    assert_int_equal(stage(&f, &e, signed_img, slen, NULL, &u), FOTASIM_UPD_SIGN);
    free(signed_img);
    free(img);
    fotasim_ard_free_pubkey(verifier);
    EVP_PKEY_free(k);
    unlink(priv);
    unlink(pub);
    rmdir(dir);
    fotasim_flash_cleanup(&f);
}

static void test_tasmota_urls(void **state)
{
    static const struct { const char *in, *out; } minimal[] = {
        {"http://h/x/firmware.bin", "http://h/x/firmware-minimal.bin"},
        {"http://h/x/firmware.bin.gz", "http://h/x/firmware-minimal.bin.gz"},
        {"http://h/x/tasmota-DE.bin", "http://h/x/tasmota-minimal.bin"},
        {"http://h/x/firmware", "http://h/x/firmware-minimal"},
        {"http://domus1:80/api/ard-uino/tasmota-DE.bin.gz", "http://domus1:80/api/ard-uino/tasmota-minimal.bin.gz"},
        {"http://192.168.2.17/api/arduino/tasmota.bin.gz", "http://192.168.2.17/api/arduino/tasmota-minimal.bin.gz"},
        {"http://h/tasmota.ino.bin", "http://h/tasmota-minimal.ino.bin"},
    };
    char url[256];
    int retry, i, n;
    (void)state;
    for (i = 0; i < (int)(sizeof(minimal) / sizeof(minimal[0])); i++) {
        fota_str_copy(url, sizeof(url), minimal[i].in);
        fotasim_tasmota_minimal_url(url, sizeof(url));
        assert_string_equal(url, minimal[i].out);
    }
    fotasim_tasmota_get_ota_url("http://h/%04d.bin", 0x123456, url, sizeof(url));
    assert_string_equal(url, "http://h/5206.bin");             /* 0x123456 & 0x1fff */
    fotasim_tasmota_get_ota_url("http://h/%d.bin", 0x123456, url, sizeof(url));
    assert_string_equal(url, "http://h/1193046.bin");
    /* a plain OtaUrl: 5 x firmware.bin, then 4 x firmware.bin.gz (counter 9..1) */
    for (retry = 9, n = 0; retry > 0; retry--, n++) {
        int r = retry;
        fotasim_tasmota_attempt_url("http://h/firmware.bin", 1, 0, 0, &r, url, sizeof(url));
        assert_string_equal(url, n < 5 ? "http://h/firmware.bin" : "http://h/firmware.bin.gz");
    }
    /* a .gz OtaUrl (any case, anywhere): below 5 the counter drops to 1 */
    retry = 4;
    fotasim_tasmota_attempt_url("http://h.GZ.example/fw.bin", 1, 0, 0, &retry, url, sizeof(url));
    assert_int_equal(retry, 1);
    assert_string_equal(url, "http://h.GZ.example/fw.bin");
    /* after -100: the minimal image, and .gz still applies; not in a minimal build */
    retry = 3;
    fotasim_tasmota_attempt_url("http://h/firmware.bin", 1, 1, 0, &retry, url, sizeof(url));
    assert_string_equal(url, "http://h/firmware-minimal.bin.gz");
    retry = 8;
    fotasim_tasmota_attempt_url("http://h/firmware.bin", 1, 1, 1, &retry, url, sizeof(url));
    assert_string_equal(url, "http://h/firmware.bin");
}

static int manifest(const char *json, struct fotasim_manifest *m, const char **why)
{
    return fotasim_esphome_manifest(json, strlen(json), m, why);
}

static void test_esphome(void **state)
{
    static const char good[] =
        "{\"name\": \"Kitchen plug\", \"version\": \"1.4.0\", \"builds\": [{\"chipFamily\": \"ESP32\","
        "\"ota\": {\"path\": \"x\", \"md5\": \"y\"}}, {\"chipFamily\": \"ESP8266\", \"ota\": {\"path\":"
        " \"firmware.bin\", \"md5\": \"0123456789abcdef0123456789abcdef\", \"summary\": \"s\"}}]}";
    struct fotasim_manifest m;
    const char *why;
    char out[256];
    (void)state;
    assert_int_equal(fotasim_esphome_manifest(good, strlen(good), &m, &why), 0);
    assert_string_equal(m.version, "1.4.0");
    assert_string_equal(m.path, "firmware.bin");
    assert_string_equal(m.md5, "0123456789abcdef0123456789abcdef");
    assert_int_equal(manifest("{\"name\":\"n\",\"version\":\"1\",\"builds\":[{\"ota\":{}},"
                              "{\"chipFamily\":\"ESP8266\"}]}", &m, &why), -1);
    assert_string_equal(why, "a build without chipFamily");
    assert_int_equal(manifest("{\"name\":\"n\",\"builds\":[]}", &m, &why), -1);
    assert_string_equal(why, "name, version and builds are required");
    assert_int_equal(manifest("{\"name\":\"n\",\"version\":1.4,\"builds\":[]}", &m, &why), -1);
    assert_int_equal(manifest("{\"name\":\"n\",\"version\":\"1\",\"builds\":[{\"chipFamily\":"
                              "\"ESP32\"}]}", &m, &why), -1);
    assert_string_equal(why, "no build for ESP8266");
    /* ota.path joins */
    fotasim_esphome_join("http://h:8080/v1/arduino/K/manifest.json", "firmware.bin", out, sizeof(out));
    assert_string_equal(out, "http://h:8080/v1/arduino/K/firmware.bin");
    fotasim_esphome_join("http://h:8080/v1/arduino/K/manifest.json", "/fw/a.bin", out, sizeof(out));
    assert_string_equal(out, "http://h:8080/fw/a.bin");
    fotasim_esphome_join("http://h:8080/v1/m.json", "http://other/x.bin", out, sizeof(out));
    assert_string_equal(out, "http://other/x.bin");
    fotasim_esphome_join("http://h/v1/m.json", "my-http-build.bin", out, sizeof(out));
    assert_string_equal(out, "my-http-build.bin");   /* contains "http": taken as absolute */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests),   cmocka_unit_test(test_response_header),
        cmocka_unit_test(test_verdicts),   cmocka_unit_test(test_updater),
        cmocka_unit_test(test_signatures), cmocka_unit_test(test_tasmota_urls),
        cmocka_unit_test(test_esphome),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
