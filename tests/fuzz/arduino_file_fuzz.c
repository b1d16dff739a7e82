/* arduino_file_fuzz.c - libFuzzer target for what fotad reads of an uploaded
 * Arduino-core release file before the image inside (arduino_file.h): the
 * gzip container (zlib inflate with an output bound), the signature trailer
 * split, the core line of a product's settings and an RSA public key in PEM.
 * The first byte picks the output bound. Checks, each an abort: an inflated
 * file stays within the bound and its ISIZE, and compressing it again
 * inflates back to the same bytes; the input itself survives a compress and
 * inflate; a split signature and its payload tile the file; a core line
 * prints and parses back; every refusal says why. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arduino_file.h"
#include "fota_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail_at(int line)
{
    fprintf(stderr, "arduino_file_fuzz.c:%d: check failed\n", line);
    abort();
}
#define never() fail_at(__LINE__)

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Inflates buf; on success checks the bound and ISIZE. Returns the result. */
static int inflate_checked(const uint8_t *buf, size_t len, size_t max_out, uint8_t **out,
                           size_t *out_len)
{
    const char *why = NULL;
    int rc = fota_arduino_gz_inflate(buf, len, max_out, out, out_len, &why);
    if (rc == 0) {
        if (*out_len > max_out || le32(buf + len - 4) != (uint32_t)*out_len)
            never();
    } else if (!why || !why[0] || *out) {
        never();
    }
    return rc;
}

/* compress(in) inflates back to in. */
static void round_trip(const uint8_t *in, size_t len)
{
    uint8_t *gz = NULL, *back = NULL;
    size_t gl = 0, bl = 0;
    if (fota_arduino_gz_compress(in, len, &gz, &gl) != 0)
        never();
    if (inflate_checked(gz, gl, len, &back, &bl) != 0 || bl != len ||
        (len && memcmp(back, in, len) != 0))
        never();
    free(gz);
    free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t bounds[] = { 0, 1, 64, 4096, 1u << 20 };
    uint8_t *out = NULL;
    size_t out_len = 0;

    if (size < 1)
        return 0;
    size_t max_out = bounds[data[0] % 5];
    data++;
    size--;

    if (inflate_checked(data, size, max_out, &out, &out_len) == 0)
        round_trip(out, out_len);
    free(out);
    if (size <= 1024)
        round_trip(data, size);

    size_t payload_len = 0, sig_len = 0;
    const uint8_t *sig = NULL;
    if (fota_arduino_sig_split(data, size, &payload_len, &sig, &sig_len) == 0) {
        if (sig != data + payload_len || payload_len + sig_len + 4 != size ||
            sig_len < FOTA_ARDUINO_SIG_MIN || sig_len > FOTA_ARDUINO_SIG_MAX ||
            le32(data + size - 4) != sig_len)
            never();
    }

    char text[16], back[8];
    size_t tl = size < sizeof text - 1 ? size : sizeof text - 1;
    memcpy(text, data, tl);
    text[tl] = '\0';
    int core = fota_arduino_core_parse(text);
    if (core >= 0) {
        fota_arduino_core_format(core, back, sizeof back);
        if (fota_arduino_core_parse(back) != core)
            never();
    }

    if (size > 10 && memcmp(data, "-----BEGIN", 10) == 0) {
        unsigned bits = 0;
        const char *why = NULL;
        int rc = fota_arduino_sig_key_check((const char *)data, size, &bits, &why);
        if (rc != 0 && (!why || !why[0]))
            never();
        if (rc == 0 && bits == 0)
            never();
    }
    return 0;
}
