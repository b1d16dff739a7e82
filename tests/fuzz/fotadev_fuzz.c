/* fotadev_fuzz.c - libFuzzer target for libfotadev's input parsers: the
 * device channel in both dialects (pushes split at a fuzzed point), the
 * ROM download response header, and the legacy (port 5555) client. The
 * first byte picks the parser and the split. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fotadev.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char key[] = "0123456789abcdef0123456789abcdef01234567";
    struct fotadev_chan ch;
    struct fotadev_chan_cfg cc;
    struct fotadev_http_resp h;
    struct fotadev_legacy l;
    const uint8_t *body;
    size_t blen, split;
    uint8_t sel;

    if (size < 1)
        return 0;
    sel = data[0];
    data++;
    size--;
    split = size ? (size_t)sel % (size + 1) : 0;
    switch (sel & 3) {
    case 0:
    case 1:
        memset(&cc, 0, sizeof(cc));
        cc.dialect = (sel & 1) ? FOTADEV_DIALECT_JSON : FOTADEV_DIALECT_NONOS;
        cc.devkey = key;
        cc.token = key;
        cc.version = "v1.0.5t45772(a)";
        cc.activated = (sel >> 2) & 1;
        if (fotadev_chan_init(&ch, &cc) != 0)
            return 0;
        fotadev_chan_connected(&ch, 42);
        (void)fotadev_chan_feed(&ch, (const char *)data, split);
        (void)fotadev_chan_feed(&ch, (const char *)data + split, size - split);
        (void)fotadev_chan_report(&ch, 1);
        (void)fotadev_chan_tx(&ch, &blen);
        break;
    case 2:
        fotadev_http_resp_init(&h);
        if (fotadev_http_resp_feed(&h, (const char *)data, split) == FOTA_EAGAIN)
            (void)fotadev_http_resp_feed(&h, (const char *)data + split, size - split);
        break;
    default:
        fotadev_legacy_init(&l, (sel >> 2) & 1, (sel >> 3) & 1);
        fotadev_legacy_hello(&l, (sel >> 4) & 1);
        if (fotadev_legacy_feed(&l, data, split, &body, &blen) >= 0)
            (void)fotadev_legacy_feed(&l, data + split, size - split, &body, &blen);
        break;
    }
    return 0;
}
