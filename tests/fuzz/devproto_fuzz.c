/* devproto_fuzz.c - libFuzzer target for the device channel's sans-IO code:
 * line framing, frame classification (incl. the raw D7 fallback) and the
 * version clean-up, fed arbitrary bytes. Replies to a classified frame are
 * built too, so every path the channel takes on input is exercised. Check:
 * every text field of a frame is a string jansson takes (whole UTF-8
 * characters), as the JSON views of what the channel stores need. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "devproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *field, size_t cap)
{
    json_t *j;
    if (!memchr(field, '\0', cap) || !(j = json_string(field)))
        abort();
    json_decref(j);
}

static void check_frame(const struct fota_devproto_frame *f)
{
    check_text(f->key, sizeof f->key);
    check_text(f->token, sizeof f->token);
    check_text(f->bssid, sizeof f->bssid);
    check_text(f->rom_version, sizeof f->rom_version);
    check_text(f->pre_version, sizeof f->pre_version);
    check_text(f->action, sizeof f->action);
    check_text(f->stream, sizeof f->stream);
    check_text(f->body, sizeof f->body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    size_t off = 0;
    for (int i = 0; i < 64 && off < size; i++) {
        size_t ll = 0, used = 0;
        int rc = fota_devproto_line(buf + off, size - off, &ll, &used);
        if (rc != 1)
            break;
        struct fota_devproto_frame f;
        fota_devproto_classify(buf + off, ll, &f);
        check_frame(&f);
        char out[FOTA_DEVPROTO_PUSH_MAX], v[FOTA_DEVPROTO_VER_MAX];
        fota_devproto_version_clean(v, sizeof v, f.rom_version, strlen(f.rom_version));
        if (f.kind == FOTA_DP_IDENTIFY)
            fota_devproto_reply_identify(out, sizeof out, f.has_nonce, f.nonce, 1, v);
        if (f.kind == FOTA_DP_ACTIVATE)
            fota_devproto_reply_activate(out, sizeof out, f.nonce, 1, v);
        fota_devproto_version_clean(v, sizeof v, buf + off, ll);
        json_decref(fota_devproto_reply_value(&f));
        fota_devproto_frame_cleanup(&f);
        off += used;
    }
    /* The rest as a version= value and as a push body. */
    char v[FOTA_DEVPROTO_VER_MAX], text[512], out[FOTA_DEVPROTO_PUSH_MAX];
    fota_devproto_version_clean(v, sizeof v, buf, size);
    size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
    memcpy(text, buf, n);
    text[n] = '\0';
    json_error_t jerr;
    json_t *body = json_loads(text, 0, &jerr);
    fota_devproto_push(out, sizeof out, "POST", "/v1/datastreams/x/datapoint/", NULL, body, "k", 1);
    fota_devproto_push(out, sizeof out, "GET", "/v1/device/rpc/", body, NULL, "k", 3);
    json_decref(body);
    fota_devproto_push_rpc(out, sizeof out, "sys_upgrade", text, "k", 2);
    return 0;
}
