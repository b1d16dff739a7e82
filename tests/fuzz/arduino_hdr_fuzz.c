/* arduino_hdr_fuzz.c - libFuzzer target for the x-ESP8266-* header handling:
 * a header block parsed whole must give the same fields as the same lines fed
 * one by one, every field stays NUL-terminated and a well-formed MAC prints
 * and parses back to itself. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arduino_hdr.h"
#include "fota_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fota_arduino_hdrs a, b;
    const char *p = (const char *)data;
    char mac[FOTA_ARDUINO_MAC_TEXT];
    uint8_t back[6];
    size_t pos = 0;
    int rc;

    fota_arduino_hdrs_init(&a);
    rc = fota_arduino_hdrs_parse_block(&a, p, size);
    if (rc == 0 || (rc > 0 && (size_t)rc > size) ||
        (rc < 0 && rc != FOTA_EAGAIN && rc != FOTA_EPROTO))
        abort();
    if (!memchr(a.version, 0, sizeof a.version) || !memchr(a.sdk_version, 0, sizeof a.sdk_version) ||
        !memchr(a.sketch_md5, 0, sizeof a.sketch_md5) || (a.bad & ~a.seen))
        abort();
    if (fota_arduino_hdrs_is_device(&a)) {
        fota_arduino_mac_format(a.sta_mac, mac);
        if (fota_arduino_mac_parse(mac, strlen(mac), back) != 0 || memcmp(back, a.sta_mac, 6))
            abort();
    }
    if (rc <= 0)
        return 0;
    /* the same lines, fed one at a time */
    fota_arduino_hdrs_init(&b);
    while (pos < (size_t)rc) {
        const char *lf = memchr(p + pos, '\n', (size_t)rc - pos);
        size_t end = (size_t)(lf - p), e = end, colon = pos;
        if (e > pos && p[e - 1] == '\r')
            e--;
        if (e == pos)
            break;
        while (p[colon] != ':')
            colon++;
        (void)fota_arduino_hdrs_feed(&b, p + pos, colon - pos, p + colon + 1, e - colon - 1);
        pos = end + 1;
    }
    if (memcmp(&a, &b, sizeof a) != 0)
        abort();
    return 0;
}
