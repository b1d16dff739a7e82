/* fotadev_legacy.c - the raw-TCP DFU client of seed 000 (port 5555),
 * sans-IO: one byte out (slot 1/2, or 0x81/0x82 for the streaming
 * extension), a 4-byte little-endian length in, then the image bytes. */
#include <string.h>

#include "fotadev.h"

void fotadev_legacy_init(struct fotadev_legacy *l, int stream_ext, int seed_strict)
{
    memset(l, 0, sizeof(*l));
    l->stream_ext = stream_ext;
    l->seed_strict = seed_strict;
}

uint8_t fotadev_legacy_hello(struct fotadev_legacy *l, int slot)
{
    uint8_t b = slot == FOTADEV_SLOT_USER2 ? 2 : 1;
    l->state = FOTADEV_LEG_WAIT_LEN;
    l->lenhave = 0;
    return l->stream_ext ? (uint8_t)(0x80u | b) : b;
}

static int fail(struct fotadev_legacy *l, int err)
{
    l->state = FOTADEV_LEG_FAILED;
    return err;
}

int fotadev_legacy_feed(struct fotadev_legacy *l, const uint8_t *data, size_t len,
                        const uint8_t **body, size_t *body_len)
{
    *body = data;
    *body_len = 0;
    if (l->state == FOTADEV_LEG_WAIT_LEN) {
        if (l->seed_strict && len != 4)     /* seed: "received length error" */
            return fail(l, FOTA_EPROTO);
        while (l->lenhave < 4 && len > 0) {
            l->lenbuf[l->lenhave++] = *data++;
            len--;
        }
        if (l->lenhave < 4)
            return 0;
        l->length = (uint32_t)l->lenbuf[0] | (uint32_t)l->lenbuf[1] << 8 |
                    (uint32_t)l->lenbuf[2] << 16 | (uint32_t)l->lenbuf[3] << 24;
        if (l->length == 0 || l->length > 0x7FFFFFFFu)   /* seed: length < 0 */
            return fail(l, FOTA_EPROTO);
        l->remaining = l->length;
        l->state = FOTADEV_LEG_DATA;
        if (len == 0)
            return 0;
    }
    if (l->state != FOTADEV_LEG_DATA)
        return fail(l, FOTA_EPROTO);
    /* the seed memcpy()s each callback into uint8_t data_buffer[1280] */
    if (l->seed_strict && len > FOTADEV_LEGACY_BUF)
        return fail(l, FOTA_ETOOBIG);
    if (len > l->remaining)                 /* "received data size is not marched" */
        return fail(l, FOTA_EPROTO);
    l->remaining -= (uint32_t)len;
    *body = data;
    *body_len = len;
    if (l->remaining == 0) {
        l->state = FOTADEV_LEG_DONE;
        return 1;
    }
    return 0;
}
