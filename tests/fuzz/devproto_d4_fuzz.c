/* devproto_d4_fuzz.c - differential libFuzzer target: the D4 fast path
 * (fota_devproto_d4_parse, exact bytes) against the full classifier
 * (fota_devproto_classify, a JSON parse) on the same bytes. Whenever the fast
 * path accepts a line, both must give the same frame and the same reply
 * value; when it declines, it must leave the frame untouched. Any
 * disagreement aborts. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "devproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *line = (const char *)data;
    struct fota_devproto_frame fast, full;
    if (size > FOTA_DEVPROTO_LINE_MAX)
        return 0;
    memset(&fast, 0x5a, sizeof fast);
    if (!fota_devproto_d4_parse(line, size, &fast)) {
        for (size_t i = 0; i < sizeof fast; i++)
            if (((const unsigned char *)&fast)[i] != 0x5a)
                abort(); /* declined, yet wrote into the frame */
        return 0;
    }
    fota_devproto_classify(line, size, &full);
    json_t *vfast = fota_devproto_reply_value(&fast), *vfull = fota_devproto_reply_value(&full);
    int same_value = vfast && vfull && json_equal(vfast, vfull);
    json_decref(vfast);
    json_decref(vfull);
    fota_devproto_frame_cleanup(&full);
    if (!same_value || fast.kind != FOTA_DP_REPLY || full.kind != FOTA_DP_REPLY ||
        memcmp(&fast, &full, offsetof(struct fota_devproto_frame, body)) != 0 ||
        strcmp(fast.body, full.body) != 0)
        abort(); /* the fast path took a line the parser reads otherwise */
    return 0;
}
