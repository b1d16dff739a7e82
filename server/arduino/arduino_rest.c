/* arduino_rest.c - what the REST catalog shows and accepts for arduino
 * products: the fleet settings (at product creation and on GET|PUT
 * /v1/products/ID/arduino), the Arduino fields of devices and release
 * files, and the upload of a release (firmware.bin, firmware-minimal.bin)
 * checked against the fleet (arduino_file.h) with the files fotad will
 * serve (the gzip container it compresses, the image it inflates). Called
 * from the api module's handlers, on the main loop or as store jobs (the
 * views and the settings route: store reads and the batches' mutexes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arduino_file.h"
#include "arduino_int.h"
#include "clock.h"
#include "fota_str.h"
#include "http.h"
#include "log.h"
#include "multipart.h"
#include "mqtt_tasmota.h"
#include "xmalloc.h"

#define CHECKIN_DEFAULT 3600
#define CONFIRM_DEFAULT 60
#define SECONDS_MAX     (30 * 86400)

static void settings_defaults(struct fota_arduino_product *p)
{
    memset(p, 0, sizeof *p);
    p->core = FOTA_ARDUINO_CORE_DEFAULT;
    p->flash_mode = -1;
    p->checkin_interval = CHECKIN_DEFAULT;
    p->confirm_after = CONFIRM_DEFAULT;
}

static int fail(char *reason, size_t cap, int status, const char *text)
{
    fota_str_copy(reason, cap, text);
    return status;
}

/* Applies the options present in body over *p. 0 or 400/422 with reason. */
static int settings_apply(const json_t *body, struct fota_arduino_product *p, char *reason,
                          size_t cap)
{
    json_t *v;

    if ((v = json_object_get(body, "gzip")) && !json_is_null(v)) {
        if (!json_is_boolean(v) && !json_is_integer(v))
            return fail(reason, cap, 400, "gzip must be true or false");
        p->gzip = json_is_true(v) || (json_is_integer(v) && json_integer_value(v) != 0);
    }
    if ((v = json_object_get(body, "arduino_core")) && !json_is_null(v)) {
        int c = fota_arduino_core_parse(json_string_value(v));
        if (c < 0)
            return fail(reason, cap, 422, "arduino_core must be one of \"2.4\", \"2.5\", \"2.6\", "
                                          "\"2.7\", \"3.0\", \"3.1\" (the core line the devices run)");
        p->core = c;
    }
    if ((v = json_object_get(body, "flash_mode"))) {
        if (json_is_null(v)) {
            p->flash_mode = -1;
        } else {
            int m = fota_arduino_flash_mode_parse(json_string_value(v));
            if (m < 0)
                return fail(reason, cap, 422, "flash_mode must be \"qio\", \"qout\", \"dio\" or "
                                              "\"dout\" (the fleet's flash mode)");
            p->flash_mode = m;
        }
    }
    if ((v = json_object_get(body, "signing_key"))) {
        if (json_is_null(v)) {
            p->signing_key[0] = '\0';
        } else if (!json_is_string(v)) {
            return fail(reason, cap, 400, "signing_key must be a PEM text");
        } else if (json_string_length(v) >= sizeof p->signing_key) {
            return fail(reason, cap, 422, "signing_key is too long for a public key");
        } else {
            fota_str_copy(p->signing_key, sizeof p->signing_key, json_string_value(v));
        }
    }
    if ((v = json_object_get(body, "checkin_interval")) && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > SECONDS_MAX)
            return fail(reason, cap, 422, "checkin_interval is seconds, 1 to 2592000");
        p->checkin_interval = json_integer_value(v);
    }
    if ((v = json_object_get(body, "confirm_after")) && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) > SECONDS_MAX)
            return fail(reason, cap, 422, "confirm_after is seconds, 0 to 2592000");
        p->confirm_after = json_integer_value(v);
    }
    return fota_mqtt_settings_apply(json_object_get(body, "mqtt"), p, reason, cap);
}

int fota_arduino_settings_check(const struct fota_arduino_product *p, char *reason, size_t cap)
{
    struct fota_arduino_policy pol = {.core = p->core, .flash_mode = p->flash_mode,
                                      .gzip = p->gzip};
    const char *why = NULL;

    if (p->signing_key[0]) {
        pol.signing_pem = p->signing_key;
        pol.signing_pem_len = strlen(p->signing_key);
        if (fota_arduino_sig_key_check(pol.signing_pem, pol.signing_pem_len, NULL, &why) != 0)
            return fail(reason, cap, 422, why);
    }
    if (fota_arduino_policy_check(&pol, reason, cap) != 0)
        return 422;
    return 0;
}

int fota_arduino_product_parse(const json_t *body, struct fota_arduino_product *out,
                               int *is_arduino, char *reason, size_t cap)
{
    json_t *v = json_object_get(body, "platform");
    const char *platform = v && !json_is_null(v) ? json_string_value(v) : "nonos";
    int st;

    *is_arduino = 0;
    settings_defaults(out);
    if (!platform || (strcmp(platform, "nonos") != 0 && strcmp(platform, "arduino") != 0))
        return fail(reason, cap, 422, "platform must be \"nonos\" (Espressif NONOS firmware) or "
                                      "\"arduino\" (ESP8266 Arduino core: sketches, Tasmota, "
                                      "ESPHome)");
    if (strcmp(platform, "arduino") != 0)
        return 0;
    *is_arduino = 1;
    if ((st = settings_apply(body, out, reason, cap)) != 0)
        return st;
    return fota_arduino_settings_check(out, reason, cap);
}

static json_t *settings_json(const struct fota_arduino_product *p)
{
    char core[8];

    fota_arduino_core_format(p->core, core, sizeof core);
    return json_pack("{s:s, s:b, s:s, s:o, s:o, s:I, s:I, s:o}", "platform", "arduino", "gzip",
                     p->gzip != 0, "arduino_core", core, "flash_mode",
                     p->flash_mode >= 0 ? json_string(fota_arduino_flash_mode_name(p->flash_mode))
                                        : json_null(),
                     "signing_key", p->signing_key[0] ? json_string(p->signing_key) : json_null(),
                     "checkin_interval", (json_int_t)p->checkin_interval, "confirm_after",
                     (json_int_t)p->confirm_after, "mqtt", fota_mqtt_settings_json(p));
}

void fota_arduino_product_json(struct fota_server *srv, int64_t product_id, json_t *product)
{
    struct fota_arduino_product *p = fota_xmalloc(sizeof(*p));

    if (srv->store->ops->arduino_product_get(srv->store, product_id, p) == 0) {
        json_t *s = settings_json(p);
        json_object_update(product, s);
        json_decref(s);
    } else {
        json_object_set_new(product, "platform", json_string("nonos"));
    }
    free(p);
}

int fota_arduino_is_product(struct fota_server *srv, int64_t product_id)
{
    struct fota_arduino_product *p = fota_xmalloc(sizeof(*p));
    int is = srv->store->ops->arduino_product_get(srv->store, product_id, p) == 0;
    free(p);
    return is;
}

int fota_arduino_admin_product(struct fota_req *r, struct fota_arduino_product *out)
{
    struct fota_store *st = r->srv->store;
    struct fota_key key;
    int64_t pid;
    int rc;

    if (fota_req_admin(r, &key))
        return FOTA_EAUTH;
    pid = fota_req_cap_id(r, 0);
    if (pid < 0)
        return FOTA_ENOENT;
    rc = st->ops->arduino_product_get(st, pid, out);
    if (rc == FOTA_ENOENT)
        fota_reply_error(r, 404, "product %lld is not an arduino product", (long long)pid);
    else if (rc)
        fota_reply_status(r, rc, "product %lld", (long long)pid);
    return rc;
}

/* GET|PUT /v1/products/ID/arduino: the fleet settings of an arduino
 * product; PUT changes the options it names. */
void fota_arduino_settings(struct fota_req *r)
{
    struct fota_store *st = r->srv->store;
    struct fota_arduino_product *p = fota_xmalloc(sizeof(*p));
    json_t *body = NULL;
    char reason[FOTA_ARDUINO_REASON_MAX];
    int64_t pid;
    int rc;

    if (fota_arduino_admin_product(r, p))
        goto out;
    pid = p->product_id;
    if (r->method == FOTA_M_PUT) {
        body = fota_req_json_body(r);
        if (!body)
            goto out;
        if ((rc = settings_apply(body, p, reason, sizeof reason)) != 0 ||
            (rc = fota_arduino_settings_check(p, reason, sizeof reason)) != 0) {
            fota_reply_error(r, rc, "%s", reason);
            goto out;
        }
        rc = st->ops->arduino_product_put(st, p);
        if (rc) {
            fota_reply_status(r, rc, "product %lld", (long long)pid);
            goto out;
        }
        FOTA_INFO("arduino settings product=%lld gzip=%d core=%d flash_mode=%d signed=%d mqtt=%s",
                  (long long)pid, p->gzip, p->core, p->flash_mode, p->signing_key[0] != 0,
                  p->mqtt_url[0] ? p->mqtt_url : "-");
    }
    json_t *j = json_object();
    json_t *s = settings_json(p);
    json_object_set_new(s, "product_id", json_integer((json_int_t)pid));
    json_object_set_new(j, "arduino", s);
    fota_reply_json(r, 200, j);
out:
    json_decref(body);
    free(p);
}

/* ---- devices */

void fota_arduino_device_json(struct fota_server *srv, const struct fota_device *d, json_t *device)
{
    struct fota_store *st = srv->store;
    struct fota_arduino_device a;
    struct fota_arduino_product *p;

    /* the batched check-ins first: what is shown is exact */
    fota_arduino_report_sync(fota_server_module_state(srv, &fota_arduino_module));
    if (st->ops->arduino_device_get(st, d->id, &a) != 0)
        return;
    p = fota_xmalloc(sizeof(*p));
    /* presence by the one rule (store_arduino.h) */
    if (st->ops->arduino_product_get(st, d->product_id, p) == 0)
        json_object_set_new(device, "online",
                            json_boolean(fota_arduino_online(&a, p->checkin_interval,
                                                             fota_clock_wall_s())));
    free(p);
    json_t *x = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s, s:s, s:I}",
                          "sta_mac", a.sta_mac, "ap_mac", a.ap_mac, "sketch_md5", a.sketch_md5,
                          "sketch_size", (json_int_t)a.sketch_size, "free_space",
                          (json_int_t)a.free_space, "chip_size", (json_int_t)a.chip_size,
                          "sdk_version", a.sdk_version, "version", a.version, "mode", a.mode,
                          "platform", "arduino", "last_checkin", (json_int_t)a.last_checkin);
    json_object_set_new(x, "chip_id", a.chip_id >= 0 ? json_integer((json_int_t)a.chip_id)
                                                      : json_null());
    json_object_set_new(x, "upgrade", a.target[0]
        ? json_pack("{s:s, s:I, s:s}", "target", a.target, "served_at",
                    (json_int_t)a.served_at, "served_md5", a.served_md5)
        : json_null());
    json_object_set_new(x, "pin", a.pin_version[0]
        ? json_pack("{s:s, s:s}", "version", a.pin_version, "current", a.pin_current)
        : json_null());
    json_object_set_new(x, "mqtt", a.mqtt_topic[0]
        ? json_pack("{s:s, s:s, s:s, s:I}", "topic", a.mqtt_topic, "lwt", a.mqtt_lwt, "version",
                    a.mqtt_version, "seen", (json_int_t)a.mqtt_seen)
        : json_null());
    json_object_set_new(device, "arduino", x);
}

/* ---- releases */

static const char *const sig_names[] = {"none", "standard", "legacy"};

void fota_arduino_rom_json(struct fota_server *srv, const struct fota_rom *rom, json_t *view)
{
    struct fota_store *st = srv->store;
    json_t *files = json_object_get(view, "files");
    struct fota_arduino_blob b;

    for (size_t i = 0; i < rom->nfiles && i < FOTA_ROM_MAX_FILES; i++) {
        json_t *f = json_array_get(files, i);
        if (!f || st->ops->arduino_blob_get(st, rom->files[i].sha256, &b) != 0)
            continue;
        json_t *md5s = json_array();
        for (int m = 0; m < 4; m++)
            json_array_append_new(md5s, json_string(b.sketch_md5[m]));
        json_object_set_new(f, "md5", json_string(b.md5));
        json_object_set_new(f, "gzip", json_boolean(b.gzip));
        json_object_set_new(f, "signature",
                            json_string(b.sig_form >= 0 && b.sig_form <= 2 ? sig_names[b.sig_form]
                                                                           : "none"));
        json_object_set_new(f, "image", json_pack(
            "{s:I, s:s, s:s, s:s, s:I, s:I, s:o}", "size", (json_int_t)b.image_size, "md5",
            b.image_md5, "sha256", b.image_sha256, "flash_mode",
            fota_arduino_flash_mode_name(b.flash_mode), "flash_size", (json_int_t)b.flash_size,
            "sketch_size", (json_int_t)b.sketch_size, "sketch_md5", md5s));
        if (b.gzip && b.image_size > 0) {
            int64_t saved = b.image_size - rom->files[i].size;
            json_object_set_new(f, "gzip_saving", json_pack(
                "{s:I, s:I, s:I, s:I}", "image", (json_int_t)b.image_size, "gzip",
                (json_int_t)rom->files[i].size, "bytes", (json_int_t)saved, "percent",
                (json_int_t)(saved * 100 / b.image_size)));
            if (strcmp(rom->files[i].name, "firmware.bin.gz") == 0)
                json_object_set(view, "gzip_saving", json_object_get(f, "gzip_saving"));
        }
        json_object_set_new(view, "platform", json_string("arduino"));
    }
}

/* ---- release upload */

/* One uploaded file: the full image or the minimal one. */
#define REL_FULL 0
#define REL_MIN  1

struct fota_arduino_release {
    int64_t product_id;
    int set_flash_mode;                   /* the product's first release: its mode, else -1 */
    struct fota_arduino_product settings; /* the product's, when the upload arrived */
    const struct fota_mp_part *by_kind[2];
    size_t n;
    char names[FOTA_ARDUINO_K_FILES][FOTA_NAME_MAX];
    struct fota_mp_part parts[FOTA_ARDUINO_K_FILES];
    struct fota_arduino_blob facts[FOTA_ARDUINO_K_FILES];
    struct fota_arduino_file files[2];    /* own the derived buffers */
};

/* REL_FULL, REL_MIN or -1 for a part named (file name, else field name)
 * firmware.bin[.gz] or firmware-minimal.bin[.gz]. */
static int upload_kind(const struct fota_mp_part *p)
{
    const struct fota_mp_str names[2] = {p->filename, p->name};
    for (int i = 0; i < 2; i++) {
        if (!names[i].ptr)
            continue;
        if (fota_multipart_str_eq(names[i], "firmware.bin") || fota_multipart_str_eq(names[i], "firmware.bin.gz"))
            return REL_FULL;
        if (fota_multipart_str_eq(names[i], "firmware-minimal.bin") ||
            fota_multipart_str_eq(names[i], "firmware-minimal.bin.gz"))
            return REL_MIN;
    }
    return -1;
}

static void add_file(struct fota_arduino_release *ar, const char *name,
                     const struct fota_arduino_served *s, int gzip,
                     const struct fota_arduino_file *f)
{
    size_t i = ar->n++;
    struct fota_arduino_blob *b = &ar->facts[i];

    fota_str_copy(ar->names[i], sizeof ar->names[i], name);
    ar->parts[i].data = s->data;
    ar->parts[i].len = s->len;
    fota_str_copy(b->sha256, sizeof b->sha256, s->sha256);
    fota_str_copy(b->md5, sizeof b->md5, s->md5);
    b->gzip = gzip;
    b->sig_form = (int)f->sig_form;
    b->image_size = (int64_t)f->image_len;
    fota_str_copy(b->image_md5, sizeof b->image_md5, f->image_md5);
    fota_str_copy(b->image_sha256, sizeof b->image_sha256, f->image_sha256);
    for (int m = 0; m < 4; m++)
        fota_str_copy(b->sketch_md5[m], sizeof b->sketch_md5[m], f->sketch_md5[m]);
    b->flash_mode = f->img.flash_mode;
    b->flash_size = f->img.flash_size;
    b->sketch_size = f->img.sketch_size;
}

int fota_arduino_release_prepare(struct fota_server *srv, int64_t product_id,
                                 const struct fota_mp_part *const *parts, size_t nparts,
                                 struct fota_arduino_release **out, char *reason, size_t cap)
{
    static const char *const base[2] = {"firmware.bin", "firmware-minimal.bin"};
    struct fota_arduino_release *ar = fota_xcalloc(1, sizeof(*ar));
    int st = 0;

    *out = NULL;
    ar->product_id = product_id;
    ar->set_flash_mode = -1;
    if (srv->store->ops->arduino_product_get(srv->store, product_id, &ar->settings) != 0) {
        st = fail(reason, cap, 404, "not an arduino product");
        goto out;
    }
    for (size_t i = 0; i < nparts; i++) {
        int k = upload_kind(parts[i]);
        if (k < 0) {
            st = fail(reason, cap, 422, "an arduino release takes firmware.bin (required) and "
                                        "firmware-minimal.bin (optional), plain or gzip");
            goto out;
        }
        if (ar->by_kind[k]) {
            snprintf(reason, cap, "%s is given twice", base[k]);
            st = 422;
            goto out;
        }
        ar->by_kind[k] = parts[i];
    }
    if (!ar->by_kind[REL_FULL])
        st = fail(reason, cap, 400, "firmware.bin is required");
out:
    if (st) {
        fota_arduino_release_free(ar);
        return st;
    }
    *out = ar;
    return 0;
}

int fota_arduino_release_check(struct fota_arduino_release *ar, char *reason, size_t cap)
{
    static const char *const base[2] = {"firmware.bin", "firmware-minimal.bin"};
    const struct fota_arduino_product *p = &ar->settings;
    struct fota_arduino_policy pol = {.core = p->core, .flash_mode = p->flash_mode,
                                      .gzip = p->gzip};
    char why[FOTA_ARDUINO_REASON_MAX];

    if (p->signing_key[0]) {
        pol.signing_pem = p->signing_key;
        pol.signing_pem_len = strlen(p->signing_key);
    }
    for (int k = 0; k < 2; k++) {
        struct fota_arduino_file *f = &ar->files[k];
        const struct fota_mp_part *part = ar->by_kind[k];
        if (!part)
            continue;
        if (fota_arduino_file_check(part->data, part->len, &pol, f, why, sizeof why) != 0) {
            snprintf(reason, cap, "%s: %s", base[k], why);
            return 422;
        }
        if (f->plain.data)
            add_file(ar, base[k], &f->plain, 0, f);
        if (f->gz.data) {
            char gzname[FOTA_NAME_MAX];
            snprintf(gzname, sizeof gzname, "%s.gz", base[k]);
            add_file(ar, gzname, &f->gz, 1, f);
        }
    }
    if (p->flash_mode < 0)
        ar->set_flash_mode = ar->files[REL_FULL].img.flash_mode;
    return 0;
}

size_t fota_arduino_release_nfiles(const struct fota_arduino_release *ar)
{
    return ar ? ar->n : 0;
}

const struct fota_mp_part *fota_arduino_release_part(const struct fota_arduino_release *ar,
                                                     size_t i)
{
    return i < ar->n ? &ar->parts[i] : NULL;
}

const char *fota_arduino_release_name(const struct fota_arduino_release *ar, size_t i)
{
    return i < ar->n ? ar->names[i] : "";
}

int fota_arduino_release_commit(struct fota_server *srv, const struct fota_arduino_release *ar)
{
    struct fota_store *st = srv->store;
    int rc = st->ops->arduino_blob_put(st, ar->facts, ar->n);

    if (rc == 0 && ar->set_flash_mode >= 0) {
        struct fota_arduino_product *p = fota_xmalloc(sizeof(*p));
        if (st->ops->arduino_product_get(st, ar->product_id, p) == 0 && p->flash_mode < 0) {
            p->flash_mode = ar->set_flash_mode;
            rc = st->ops->arduino_product_put(st, p);
            if (rc == 0)
                FOTA_INFO("arduino fleet flash mode product=%lld flash_mode=%s (the first "
                          "release's)", (long long)ar->product_id,
                          fota_arduino_flash_mode_name(p->flash_mode));
        }
        free(p);
    }
    return rc;
}

void fota_arduino_release_free(struct fota_arduino_release *ar)
{
    if (!ar)
        return;
    fota_arduino_file_cleanup(&ar->files[0]);
    fota_arduino_file_cleanup(&ar->files[1]);
    free(ar);
}
