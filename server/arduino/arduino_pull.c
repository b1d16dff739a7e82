/* arduino_pull.c - which file answers a device URL, 304 or 200, the
 * device's own verdict on a 200, confirmation of an upgrade at the next
 * check-in, and ESPHome's manifest. Pure: the module does the I/O. */
#include "arduino_pull.h"

#include <string.h>

#include "arduino_file.h"
#include "arduino_img.h"
#include "fota_str.h"

static const char *const kind_names[] = {
    "firmware.bin", "firmware.bin.gz", "firmware-minimal.bin", "firmware-minimal.bin.gz",
    "firmware.md5", "manifest.json"};

int fota_arduino_kind_of(const char *name)
{
    for (int k = 0; k < (int)(sizeof kind_names / sizeof kind_names[0]); k++)
        if (name && strcmp(name, kind_names[k]) == 0)
            return k;
    return -1;
}

const char *fota_arduino_kind_name(enum fota_arduino_kind k)
{
    return (unsigned)k < sizeof kind_names / sizeof kind_names[0] ? kind_names[k] : "";
}

int fota_arduino_hdr_has(const struct fota_arduino_hdrs *h, unsigned bit)
{
    return h && (h->seen & bit) && !(h->bad & bit);
}

/* eboot's in-place inflate fits this device (unknown facts: assume so). */
static int gz_fits(const struct fota_arduino_rel_file *f, const struct fota_arduino_hdrs *h)
{
    if (!fota_arduino_hdr_has(h, FOTA_ARDUINO_H_FREE_SPACE) ||
        !fota_arduino_hdr_has(h, FOTA_ARDUINO_H_SKETCH_SIZE))
        return 1;
    return fota_arduino_gz_fits((uint64_t)f->facts.image_size, (uint64_t)f->size,
                                h->free_space, h->sketch_size);
}

int fota_arduino_pick(const struct fota_arduino_rel *rel, enum fota_arduino_kind k, int gzip_product,
                      const struct fota_arduino_hdrs *h)
{
    int plain, gz;

    if (!rel || k >= FOTA_ARDUINO_K_FILES)
        return -1;
    plain = k == FOTA_ARDUINO_K_BIN || k == FOTA_ARDUINO_K_BIN_GZ ? FOTA_ARDUINO_K_BIN
                                                                  : FOTA_ARDUINO_K_MIN;
    gz = plain + 1;
    if (k == FOTA_ARDUINO_K_BIN_GZ || k == FOTA_ARDUINO_K_MIN_GZ) {
        if (!rel->f[gz].present)
            return -1;
    } else if (!gzip_product || !rel->f[gz].present) {
        return rel->f[plain].present ? plain : -1;
    }
    if (gz_fits(&rel->f[gz], h))
        return gz;
    return rel->f[plain].present ? plain : -2;
}

/* The image facts of rel (any stored file of its full image). */
static const struct fota_arduino_blob *image_facts(const struct fota_arduino_rel *rel, int minimal)
{
    int plain = minimal ? FOTA_ARDUINO_K_MIN : FOTA_ARDUINO_K_BIN;

    if (rel->f[plain].present)
        return &rel->f[plain].facts;
    if (rel->f[plain + 1].present)
        return &rel->f[plain + 1].facts;
    return NULL;
}

static int md5_in(const char md5s[4][FOTA_ARDUINO_MD5_TEXT], const char *md5)
{
    for (int m = 0; m < 4; m++)
        if (md5s[m][0] && strcmp(md5s[m], md5) == 0)
            return 1;
    return 0;
}

int fota_arduino_runs(const struct fota_arduino_rel *rel, const struct fota_arduino_hdrs *h)
{
    const struct fota_arduino_blob *img;

    if (!rel || !h)
        return 0;
    if (fota_arduino_hdr_has(h, FOTA_ARDUINO_H_SKETCH_MD5)) {
        img = image_facts(rel, 0);
        return img && md5_in(img->sketch_md5, h->sketch_md5);
    }
    return fota_arduino_hdr_has(h, FOTA_ARDUINO_H_VERSION) && strcmp(h->version, rel->version) == 0;
}

void fota_arduino_head_of(const struct fota_arduino_blob *facts, uint8_t head[4])
{
    unsigned code = 0;

    for (unsigned c = 0; c < 16; c++)
        if (fota_arduino_flash_size(c) == (uint32_t)facts->flash_size && facts->flash_size) {
            code = c;
            break;
        }
    head[0] = facts->gzip ? 0x1F : FOTA_ARDUINO_MAGIC;
    head[1] = facts->gzip ? 0x8B : 0;
    head[2] = facts->gzip ? 0x08 : (uint8_t)facts->flash_mode;
    head[3] = facts->gzip ? 0 : (uint8_t)(code << 4);
}

void fota_arduino_decide(const struct fota_arduino_rel *rel, enum fota_arduino_kind k,
                         int gzip_product, int core, const struct fota_arduino_hdrs *h,
                         int device, struct fota_arduino_answer *out)
{
    const struct fota_arduino_rel_file *f;
    uint8_t head[4];
    int pick;

    memset(out, 0, sizeof *out);
    out->file = -1;
    out->why = "";
    if (fota_arduino_hdr_has(h, FOTA_ARDUINO_H_MODE) && h->mode != FOTA_ARDUINO_MODE_SKETCH) {
        out->status = 304;
        out->why = "asks for something other than the sketch (x-ESP8266-mode)";
        return;
    }
    if (!rel) {
        out->status = device ? 304 : 404;
        out->why = "the product has no release";
        return;
    }
    if (device && fota_arduino_runs(rel, h)) {
        out->status = 304;
        out->why = "runs the target already";
        return;
    }
    pick = fota_arduino_pick(rel, k, gzip_product, h);
    if (pick == -1) {
        out->status = 404;
        out->why = "the release has no such file";
        return;
    }
    if (pick == -2) {
        out->status = 409;
        out->why = "the gzip image would overrun its own compressed bytes while eboot inflates "
                   "it on this device (free space too small), and the release has no plain image";
        return;
    }
    f = &rel->f[pick];
    out->status = 200;
    out->file = pick;
    out->send = f->size;
    if (!fota_arduino_hdr_has(h, FOTA_ARDUINO_H_FREE_SPACE) ||
        !fota_arduino_hdr_has(h, FOTA_ARDUINO_H_CHIP_SIZE))
        return;
    fota_arduino_head_of(&f->facts, head);
    out->verdict = fota_arduino_device_verdict(head, sizeof head, (uint64_t)f->size, h->free_space,
                                               h->chip_size, core >= 27);
    if (out->verdict != FOTA_ARDUINO_ACCEPT) {
        out->send = f->size < FOTA_ARDUINO_HEAD_LEN ? f->size : FOTA_ARDUINO_HEAD_LEN;
        out->why = fota_arduino_verdict_string(out->verdict);
    }
}

enum fota_arduino_outcome fota_arduino_confirm(const struct fota_arduino_device *a,
                                               const struct fota_arduino_hdrs *h,
                                               const char target_md5[4][FOTA_ARDUINO_MD5_TEXT],
                                               const char minimal_md5[4][FOTA_ARDUINO_MD5_TEXT],
                                               int64_t now, int64_t confirm_after)
{
    if (!a->target[0] || !h)
        return FOTA_ARDUINO_OUT_NONE;
    if (!fota_arduino_hdr_has(h, FOTA_ARDUINO_H_SKETCH_MD5))
        return fota_arduino_hdr_has(h, FOTA_ARDUINO_H_VERSION) && strcmp(h->version, a->target) == 0
                   ? FOTA_ARDUINO_OUT_SUCCESS : FOTA_ARDUINO_OUT_NONE;
    if (target_md5 && md5_in(target_md5, h->sketch_md5))
        return FOTA_ARDUINO_OUT_SUCCESS;
    /* before the step: a device that downloaded the full image while it ran
     * the minimal one and still runs the minimal one has failed */
    if (a->served_at && now - a->served_at >= confirm_after &&
        strcmp(a->served_md5, h->sketch_md5) == 0)
        return FOTA_ARDUINO_OUT_FAILED;
    if (minimal_md5 && md5_in(minimal_md5, h->sketch_md5))
        return FOTA_ARDUINO_OUT_STEP;
    return FOTA_ARDUINO_OUT_NONE;
}

int fota_arduino_target_of(const char *cmd_version, const char *pin_version,
                           const char *pin_current, const char *current, const char **out,
                           int *lapsed)
{
    *lapsed = 0;
    if (cmd_version && cmd_version[0]) {
        *out = cmd_version;
        return FOTA_ARDUINO_SRC_COMMAND;
    }
    if (pin_version && pin_version[0]) {
        if (strcmp(pin_current ? pin_current : "", current ? current : "") == 0) {
            *out = pin_version;
            return FOTA_ARDUINO_SRC_PIN;
        }
        *lapsed = 1;
    }
    *out = current ? current : "";
    return (*out)[0] ? FOTA_ARDUINO_SRC_CURRENT : FOTA_ARDUINO_SRC_NONE;
}

void fota_arduino_version_base(const char *reported, char *out, size_t cap)
{
    const char *paren = strchr(reported, '(');
    fota_str_copy_n(out, cap, reported, paren ? (size_t)(paren - reported) : strlen(reported));
}

int fota_arduino_version_match(const char *reported, const char *target)
{
    const char *paren;
    size_t n;

    if (!reported || !reported[0])
        return FOTA_ARDUINO_V_OTHER;
    paren = strchr(reported, '(');
    if (paren && strstr(paren, "minimal"))
        return FOTA_ARDUINO_V_MINIMAL;
    if (!target || !target[0])
        return FOTA_ARDUINO_V_OTHER;
    if (strcmp(reported, target) == 0)
        return FOTA_ARDUINO_V_TARGET;
    n = paren ? (size_t)(paren - reported) : strlen(reported);
    return strlen(target) == n && strncmp(reported, target, n) == 0 ? FOTA_ARDUINO_V_TARGET
                                                                    : FOTA_ARDUINO_V_OTHER;
}

json_t *fota_arduino_manifest(const char *name, const char *version, const char *md5,
                              const char *summary)
{
    json_t *ota = json_pack("{s:s, s:s}", "path", "firmware.bin", "md5", md5);

    if (summary && summary[0])
        json_object_set_new(ota, "summary", json_string(summary));
    return json_pack("{s:s, s:s, s:[{s:s, s:o}]}", "name", name, "version", version, "builds",
                     "chipFamily", "ESP8266", "ota", ota);
}
