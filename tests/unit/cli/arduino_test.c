/* arduino_test.c - unit tests of fotactl's arduino pieces (cli/arduino.c):
 * the fleet options of `product create` and `product arduino` parsed with
 * the real option tables into the REST body (every value form, and each
 * refusal), intervals with their units, a signing key that must be public,
 * the names files are uploaded under, the local image check (an elf2bin.py
 * image with the core >= 2.7 checksum passes, a broken one is refused with
 * its offset, a signed one passes) and the gzip container (one member that
 * inflates back to the input). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "arduino.h"
#include "arduino_build.h"
#include "commands.h"
#include "fota_err.h"
#include "fota_str.h"

/* The option table of `product GROUP verb`. */
static const struct fota_cli_opt *opts_of(const char *group, const char *verb)
{
    for (const struct fota_cli_command *c = fota_cli_commands; c->group; c++)
        if (strcmp(c->group, group) == 0 && c->verb && strcmp(c->verb, verb) == 0)
            return c->opts;
    fail_msg("no command %s %s", group, verb);
    return NULL;
}

/* Parses line (space-separated words) against `product VERB`'s table, then
 * the fleet options into a new body (*body, decref it). Returns what
 * fota_cli_arduino_settings returned. */
static int settings(const char *verb, const char *line, json_t **body, char *err, size_t cap)
{
    static char buf[512];
    static struct fota_cli_args a;
    char *argv[40], *save = NULL, *w;
    int argc = 0;

    assert_true(fota_str_copy(buf, sizeof(buf), line) < sizeof(buf));
    for (w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save))
        argv[argc++] = w;
    assert_int_equal(fota_cli_args_parse(&a, opts_of("product", verb), argc, argv, err, cap), 0);
    *body = json_object();
    err[0] = '\0';
    return fota_cli_arduino_settings(&a, *body, err, cap);
}

static void test_settings_into_the_body(void **state)
{
    char err[256], *text;
    json_t *b;

    (void)state;
    assert_int_equal(settings("create",
                              "plug --platform arduino --gzip --arduino-core 2.7.4 "
                              "--flash-mode DOUT --checkin-interval 15m --confirm-after 0",
                              &b, err, sizeof(err)), 5);
    text = json_dumps(b, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(text, "{\"arduino_core\":\"2.7.4\",\"checkin_interval\":900,"
                              "\"confirm_after\":0,\"flash_mode\":\"dout\",\"gzip\":true}");
    free(text);
    json_decref(b);
    /* nothing given: nothing sent (the server keeps its defaults) */
    assert_int_equal(settings("create", "plug --platform arduino", &b, err, sizeof(err)), 0);
    assert_int_equal(json_object_size(b), 0);
    json_decref(b);
    /* changing later: --no-gzip, and none resets the flash mode */
    assert_int_equal(settings("arduino", "plug --no-gzip --flash-mode none --confirm-after 2h",
                              &b, err, sizeof(err)),
                     3);
    text = json_dumps(b, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(text, "{\"confirm_after\":7200,\"flash_mode\":null,\"gzip\":false}");
    free(text);
    json_decref(b);
}

static void test_settings_refused(void **state)
{
    static const struct {
        const char *verb, *line, *want;
    } bad[] = {
        { "arduino", "p --gzip --no-gzip", "give --gzip or --no-gzip, not both" },
        { "create", "p --arduino-core 2.8", "--arduino-core wants" },
        { "create", "p --arduino-core 3", "--arduino-core wants" },
        { "create", "p --arduino-core 2.7.", "--arduino-core wants" },
        { "create", "p --arduino-core 2.7.1234", "--arduino-core wants" },
        { "create", "p --flash-mode fast", "--flash-mode wants" },
        { "create", "p --flash-mode none", "" },
        { "create", "p --checkin-interval 0", "--checkin-interval wants 1s to 30d" },
        { "create", "p --checkin-interval 31d", "--checkin-interval wants 1s to 30d" },
        { "create", "p --checkin-interval 1w", "--checkin-interval wants 1s to 30d" },
        { "arduino", "p --confirm-after=-1", "--confirm-after wants 0 to 30d" },
        { "arduino", "p --confirm-after 1hh", "--confirm-after wants 0 to 30d" },
    };
    char err[256];
    json_t *b;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = settings(bad[i].verb, bad[i].line, &b, err, sizeof(err));
        if (!bad[i].want[0]) {
            assert_int_equal(rc, 1);   /* none is null: the first release's mode */
        } else if (rc != FOTA_EINVAL || !strstr(err, bad[i].want)) {
            fail_msg("%s: rc %d, err %s", bad[i].line, rc, err);
        }
        json_decref(b);
    }
}

static void test_seconds(void **state)
{
    long s = -1;

    (void)state;
    assert_int_equal(fota_cli_arduino_seconds("90", 0, 100, &s), 0);
    assert_int_equal(s, 90);
    assert_int_equal(fota_cli_arduino_seconds("90s", 0, 100, &s), 0);
    assert_int_equal(fota_cli_arduino_seconds("2d", 0, 30 * 86400, &s), 0);
    assert_int_equal(s, 172800);
    assert_int_equal(fota_cli_arduino_seconds("30d", 0, 30 * 86400, &s), 0);
    assert_int_equal(fota_cli_arduino_seconds("31d", 0, 30 * 86400, &s), FOTA_EINVAL);
    assert_int_equal(fota_cli_arduino_seconds("99999999999999999999d", 0, 100, &s), FOTA_EINVAL);
    assert_int_equal(fota_cli_arduino_seconds("", 0, 100, &s), FOTA_EINVAL);
    assert_int_equal(fota_cli_arduino_seconds("m", 0, 100, &s), FOTA_EINVAL);
    assert_int_equal(fota_cli_arduino_seconds(" 5", 0, 100, &s), FOTA_EINVAL);
    assert_int_equal(fota_cli_arduino_seconds("0", 1, 100, &s), FOTA_EINVAL);
}

static void test_signing_key_must_be_public(void **state)
{
    static const char pub[] = "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n";
    static const char rsapub[] = "-----BEGIN RSA PUBLIC KEY-----\nMIIB\n"
                                 "-----END RSA PUBLIC KEY-----\n";
    static const char priv[] = "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n"
                               "-----END RSA PRIVATE KEY-----\n";
    json_t *b = json_object();
    char err[256];

    (void)state;
    assert_int_equal(fota_cli_arduino_signing_key("k.pem", pub, strlen(pub), b, err,
                                                  sizeof(err)),
                     0);
    assert_string_equal(json_string_value(json_object_get(b, "signing_key")), pub);
    assert_int_equal(fota_cli_arduino_signing_key("k.pem", rsapub, strlen(rsapub), b, err,
                                                  sizeof(err)),
                     0);
    assert_int_equal(fota_cli_arduino_signing_key("p.pem", priv, strlen(priv), b, err,
                                                  sizeof(err)),
                     FOTA_EINVAL);
    assert_non_null(strstr(err, "p.pem is a private key"));
    assert_int_equal(fota_cli_arduino_signing_key("x.pem", "hello", 5, b, err, sizeof(err)),
                     FOTA_EINVAL);
    assert_non_null(strstr(err, "x.pem is not a PEM public key"));
    /* the refused texts never reached the body */
    assert_string_equal(json_string_value(json_object_get(b, "signing_key")), rsapub);
    json_decref(b);
}

static void test_upload_names(void **state)
{
    static const uint8_t gz[4] = { 0x1f, 0x8b, 8, 0 }, img[4] = { 0xe9, 5, 3, 0x40 };
    char n[64];

    (void)state;
    fota_cli_arduino_file_name("build/sketch.ino.bin", img, 4, n, sizeof(n));
    assert_string_equal(n, "firmware.bin");
    fota_cli_arduino_file_name("out/tasmota.bin.gz", gz, 4, n, sizeof(n));
    assert_string_equal(n, "firmware.bin.gz");
    fota_cli_arduino_file_name("out/tasmota-minimal.bin", img, 4, n, sizeof(n));
    assert_string_equal(n, "firmware-minimal.bin");
    fota_cli_arduino_file_name("tasmota-minimal.bin.gz", gz, 4, n, sizeof(n));
    assert_string_equal(n, "firmware-minimal.bin.gz");
    /* the content decides .gz, not the name; a directory named minimal says nothing */
    fota_cli_arduino_file_name("minimal/fw.bin.gz", img, 4, n, sizeof(n));
    assert_string_equal(n, "firmware.bin");
    assert_int_equal(fota_cli_arduino_is_gzip(gz, 1), 0);
}

static void test_local_check(void **state)
{
    struct ab_spec sp = { .mode = 3, .size_code = 4, .nsketch = 5, .irom_len = 3000,
                          .add_crc = 1, .seed = 7 };
    size_t cap = AB_MAX_LEN(3000) + 300, len;
    uint8_t *img = calloc(1, cap);
    char reason[256];

    (void)state;
    assert_non_null(img);
    len = ab_build(img, &sp);
    assert_int_equal(fota_cli_arduino_check(img, len, reason, sizeof(reason)), 0);
    /* a signature trailer is bytes after the sketch */
    memset(img + len, 0x5a, 256);
    img[len + 256] = 0;
    img[len + 257] = 1;
    img[len + 258] = 0;
    img[len + 259] = 0;
    assert_int_equal(fota_cli_arduino_check(img, len + 260, reason, sizeof(reason)), 0);
    /* gzip: fotad inflates and checks it */
    assert_int_equal(fota_cli_arduino_check((const uint8_t *)"\x1f\x8b\x08", 3, reason,
                                            sizeof(reason)),
                     0);
    /* cut inside the sketch: refused, the offset named */
    assert_int_not_equal(fota_cli_arduino_check(img, 0x1100, reason, sizeof(reason)), 0);
    assert_non_null(strstr(reason, "(at offset 0x"));
    img[0] = 0;
    assert_int_equal(fota_cli_arduino_check(img, len, reason, sizeof(reason)), FOTA_EMAGIC);
    free(img);
}

static void test_gzip_container(void **state)
{
    uint8_t in[20000], back[20000 + 16], *gz = NULL, *gz2 = NULL;
    size_t gzlen = 0, gzlen2 = 0;
    z_stream z;

    (void)state;
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (uint8_t)((size_t)(unsigned char)"abcdefgh"[i % 8] ^ (i / 1000));
    assert_int_equal(fota_cli_arduino_gzip(in, sizeof(in), &gz, &gzlen), 0);
    assert_true(gzlen > 18 && gzlen < sizeof(in) / 4);
    /* gzip, not zlib: 1f 8b, deflate, ISIZE the input length */
    assert_int_equal(gz[0], 0x1f);
    assert_int_equal(gz[1], 0x8b);
    assert_int_equal(gz[2], 8);
    assert_int_equal((uint32_t)gz[gzlen - 4] | (uint32_t)gz[gzlen - 3] << 8 |
                         (uint32_t)gz[gzlen - 2] << 16 | (uint32_t)gz[gzlen - 1] << 24,
                     sizeof(in));
    memset(&z, 0, sizeof(z));
    assert_int_equal(inflateInit2(&z, 16 + 15), Z_OK);
    z.next_in = gz;
    z.avail_in = (uInt)gzlen;
    z.next_out = back;
    z.avail_out = sizeof(back);
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    assert_int_equal(z.total_out, sizeof(in));
    assert_int_equal(z.avail_in, 0);   /* one member, nothing after it */
    inflateEnd(&z);
    assert_memory_equal(back, in, sizeof(in));
    /* deterministic: the same bytes give the same file */
    assert_int_equal(fota_cli_arduino_gzip(in, sizeof(in), &gz2, &gzlen2), 0);
    assert_int_equal(gzlen2, gzlen);
    assert_memory_equal(gz2, gz, gzlen);
    free(gz);
    free(gz2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_settings_into_the_body),
        cmocka_unit_test(test_settings_refused),
        cmocka_unit_test(test_seconds),
        cmocka_unit_test(test_signing_key_must_be_public),
        cmocka_unit_test(test_upload_names),
        cmocka_unit_test(test_local_check),
        cmocka_unit_test(test_gzip_container),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
