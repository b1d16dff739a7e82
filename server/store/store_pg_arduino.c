/* store_pg_arduino.c - the Arduino-core rows of the PostgreSQL store
 * (store_sqlite_arduino.c's statements in PostgreSQL's form): product
 * settings, served-file facts by blob, the devices' x-ESP8266-* reports,
 * upgrade tracking, explicit targets and what MQTT discovery learnt.
 * Settings, facts and registrations are durable catalog writes; reports,
 * tracking and served downloads are device traffic (synchronous_commit
 * off, no new catalog generation). A batch of reports or downloads is one
 * statement per table over unnest() arrays, whatever its size; a device
 * named twice in a batch takes its last row, as one statement per row in
 * order would leave it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "clock.h"
#include "fota_str.h"
#include "store_pg_int.h"

/* ---- products ---------------------------------------------------------- */

int fota_store_pg_arduino_product_put(struct fota_store *s, const struct fota_arduino_product *p)
{
    struct pg_params a = { 0 };
    struct pg_conn *c;
    int rc;

    if ((rc = fota_store_pg_enter(s, "arduino_product_put", &c)) != 0)
        return rc;
    fota_store_pg_param_int(&a, p->product_id);
    fota_store_pg_param_int(&a, p->gzip);
    fota_store_pg_param_int(&a, p->core);
    fota_store_pg_param_int(&a, p->flash_mode);
    PG_PARAM_STR(&a, p->signing_key);
    fota_store_pg_param_int(&a, p->checkin_interval);
    fota_store_pg_param_int(&a, p->confirm_after);
    PG_PARAM_STR(&a, p->mqtt_url);
    PG_PARAM_STR(&a, p->mqtt_username);
    PG_PARAM_STR(&a, p->mqtt_password);
    /* an unknown product: 23503, ENOENT */
    rc = fota_store_pg_exec_tx(
        c, PQ_A_PRODUCT_PUT,
        "INSERT INTO arduino_products (product_id, gzip, core, flash_mode, signing_key,"
        " checkin_interval, confirm_after, mqtt_url, mqtt_username, mqtt_password)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        " ON CONFLICT (product_id) DO UPDATE SET gzip = excluded.gzip, core = excluded.core,"
        " flash_mode = excluded.flash_mode, signing_key = excluded.signing_key,"
        " checkin_interval = excluded.checkin_interval, confirm_after = excluded.confirm_after,"
        " mqtt_url = excluded.mqtt_url, mqtt_username = excluded.mqtt_username,"
        " mqtt_password = excluded.mqtt_password",
        &a, 1, "arduino_product_put", NULL);
    return fota_store_pg_leave(c, rc);
}

static void read_aproduct(const PGresult *r, int row, void *out)
{
    struct fota_arduino_product *p = out;

    memset(p, 0, sizeof *p);
    p->product_id = fota_store_pg_col_int(r, row, 0);
    p->gzip = (int)fota_store_pg_col_int(r, row, 1);
    p->core = (int)fota_store_pg_col_int(r, row, 2);
    p->flash_mode = (int)fota_store_pg_col_int(r, row, 3);
    fota_store_pg_col_text(r, row, 4, p->signing_key, sizeof p->signing_key);
    p->checkin_interval = fota_store_pg_col_int(r, row, 5);
    p->confirm_after = fota_store_pg_col_int(r, row, 6);
    fota_store_pg_col_text(r, row, 7, p->mqtt_url, sizeof p->mqtt_url);
    fota_store_pg_col_text(r, row, 8, p->mqtt_username, sizeof p->mqtt_username);
    fota_store_pg_col_text(r, row, 9, p->mqtt_password, sizeof p->mqtt_password);
}

int fota_store_pg_arduino_product_get(struct fota_store *s, int64_t product_id,
                                      struct fota_arduino_product *out)
{
    struct pg_params a = { 0 };
    struct pg_conn *c;
    int rc;

    if ((rc = fota_store_pg_enter(s, "arduino_product_get", &c)) != 0)
        return rc;
    fota_store_pg_param_int(&a, product_id);
    rc = fota_store_pg_one(c, PQ_A_PRODUCT_GET,
                           "SELECT product_id, gzip, core, flash_mode, signing_key,"
                           " checkin_interval, confirm_after, mqtt_url, mqtt_username,"
                           " mqtt_password FROM arduino_products WHERE product_id = $1",
                           &a, read_aproduct, out, "arduino_product_get");
    return fota_store_pg_leave(c, rc);
}

/* ---- served-file facts ------------------------------------------------- */

int fota_store_pg_arduino_blob_put(struct fota_store *s, const struct fota_arduino_blob *b,
                                   size_t n)
{
    struct pg_array_param col[11];
    static const Oid types[11] = { FOTA_PG_TEXT_ARRAY, FOTA_PG_TEXT_ARRAY, FOTA_PG_INT8_ARRAY,
                                   FOTA_PG_INT8_ARRAY, FOTA_PG_INT8_ARRAY, FOTA_PG_TEXT_ARRAY,
                                   FOTA_PG_TEXT_ARRAY, FOTA_PG_TEXT_ARRAY, FOTA_PG_INT8_ARRAY,
                                   FOTA_PG_INT8_ARRAY, FOTA_PG_INT8_ARRAY };
    char md5s[4 * FOTA_ARDUINO_MD5_TEXT];
    struct pg_params a = { 0 };
    struct pg_conn *c;
    int rc;

    if (n == 0)
        return 0;
    if ((rc = fota_store_pg_enter(s, "arduino_blob_put", &c)) != 0)
        return rc;
    for (int k = 0; k < 11; k++)
        fota_store_pg_array_init(&col[k], types[k]);
    for (size_t i = 0; i < n; i++) {
        snprintf(md5s, sizeof md5s, "%.32s,%.32s,%.32s,%.32s", b[i].sketch_md5[0],
                 b[i].sketch_md5[1], b[i].sketch_md5[2], b[i].sketch_md5[3]);
        PG_ARRAY_STR(&col[0], b[i].sha256);
        PG_ARRAY_STR(&col[1], b[i].md5);
        fota_store_pg_array_int(&col[2], b[i].gzip);
        fota_store_pg_array_int(&col[3], b[i].sig_form);
        fota_store_pg_array_int(&col[4], b[i].image_size);
        PG_ARRAY_STR(&col[5], b[i].image_md5);
        PG_ARRAY_STR(&col[6], b[i].image_sha256);
        PG_ARRAY_STR(&col[7], md5s);
        fota_store_pg_array_int(&col[8], b[i].flash_mode);
        fota_store_pg_array_int(&col[9], b[i].flash_size);
        fota_store_pg_array_int(&col[10], b[i].sketch_size);
    }
    for (int k = 0; k < 11; k++)
        fota_store_pg_param_array(&a, &col[k]);
    /* a sha256 twice in the batch, or known already: the first facts stay */
    rc = fota_store_pg_exec_tx(
        c, PQ_A_BLOB_PUT,
        "INSERT INTO arduino_blobs (sha256, md5, gzip, sig_form, image_size, image_md5,"
        " image_sha256, sketch_md5, flash_mode, flash_size, sketch_size)"
        " SELECT sha256, md5, gzip, sig_form, image_size, image_md5, image_sha256, sketch_md5,"
        " flash_mode, flash_size, sketch_size FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::int8[],"
        " $6::text[], $7::text[], $8::text[], $9::int8[], $10::int8[], $11::int8[])"
        " WITH ORDINALITY AS u(sha256, md5, gzip, sig_form, image_size, image_md5, image_sha256,"
        " sketch_md5, flash_mode, flash_size, sketch_size, o)"
        " ORDER BY o ON CONFLICT (sha256) DO NOTHING",
        &a, 1, "arduino_blob_put", NULL);
    for (int k = 0; k < 11; k++)
        fota_store_pg_array_free(&col[k]);
    return fota_store_pg_leave(c, rc);
}

static void read_ablob(const PGresult *r, int row, void *out)
{
    struct fota_arduino_blob *b = out;
    char md5s[4 * FOTA_ARDUINO_MD5_TEXT];

    memset(b, 0, sizeof *b);
    fota_store_pg_col_text(r, row, 0, b->sha256, sizeof b->sha256);
    fota_store_pg_col_text(r, row, 1, b->md5, sizeof b->md5);
    b->gzip = (int)fota_store_pg_col_int(r, row, 2);
    b->sig_form = (int)fota_store_pg_col_int(r, row, 3);
    b->image_size = fota_store_pg_col_int(r, row, 4);
    fota_store_pg_col_text(r, row, 5, b->image_md5, sizeof b->image_md5);
    fota_store_pg_col_text(r, row, 6, b->image_sha256, sizeof b->image_sha256);
    fota_store_pg_col_text(r, row, 7, md5s, sizeof md5s);
    b->flash_mode = (int)fota_store_pg_col_int(r, row, 8);
    b->flash_size = fota_store_pg_col_int(r, row, 9);
    b->sketch_size = fota_store_pg_col_int(r, row, 10);
    for (int m = 0; m < 4 && strlen(md5s) >= (size_t)(33 * m + 32); m++)
        fota_str_copy_n(b->sketch_md5[m], sizeof b->sketch_md5[m], md5s + 33 * m, 32);
}

int fota_store_pg_arduino_blob_get(struct fota_store *s, const char *sha256,
                                   struct fota_arduino_blob *out)
{
    struct pg_params a = { 0 };
    struct pg_conn *c;
    int rc;

    if ((rc = fota_store_pg_enter(s, "arduino_blob_get", &c)) != 0)
        return rc;
    fota_store_pg_param_text(&a, sha256, FOTA_HASH_HEX);
    rc = fota_store_pg_one(c, PQ_A_BLOB_GET,
                           "SELECT sha256, md5, gzip, sig_form, image_size, image_md5,"
                           " image_sha256, sketch_md5, flash_mode, flash_size, sketch_size"
                           " FROM arduino_blobs WHERE sha256 = $1",
                           &a, read_ablob, out, "arduino_blob_get");
    return fota_store_pg_leave(c, rc);
}

/* ---- devices ----------------------------------------------------------- */

/* devices.id, then the arduino columns (NULL when the device has no row). */
#define ADEV_COLS                                                                            \
    "SELECT d.id, d.product_id, a.sta_mac, a.ap_mac, a.chip_id, a.free_space, a.sketch_size," \
    " a.chip_size, a.sketch_md5, a.sdk_version, a.version, a.mode, a.last_checkin, a.target,"  \
    " a.target_rom_id, a.served_at, a.served_md5, a.pin_version, a.pin_current, a.mqtt_topic," \
    " a.mqtt_lwt, a.mqtt_version, a.mqtt_seen"

static void read_adev(const PGresult *r, int row, void *out)
{
    struct fota_arduino_device *a = out;

    memset(a, 0, sizeof *a);
    a->chip_id = -1;
    a->device_id = fota_store_pg_col_int(r, row, 0);
    a->product_id = fota_store_pg_col_int(r, row, 1);
    if (PQgetisnull(r, row, 2))
        return; /* a device of the product without an arduino row yet */
    fota_store_pg_col_text(r, row, 2, a->sta_mac, sizeof a->sta_mac);
    fota_store_pg_col_text(r, row, 3, a->ap_mac, sizeof a->ap_mac);
    a->chip_id = fota_store_pg_col_int(r, row, 4);
    a->free_space = fota_store_pg_col_int(r, row, 5);
    a->sketch_size = fota_store_pg_col_int(r, row, 6);
    a->chip_size = fota_store_pg_col_int(r, row, 7);
    fota_store_pg_col_text(r, row, 8, a->sketch_md5, sizeof a->sketch_md5);
    fota_store_pg_col_text(r, row, 9, a->sdk_version, sizeof a->sdk_version);
    fota_store_pg_col_text(r, row, 10, a->version, sizeof a->version);
    fota_store_pg_col_text(r, row, 11, a->mode, sizeof a->mode);
    a->last_checkin = fota_store_pg_col_int(r, row, 12);
    fota_store_pg_col_text(r, row, 13, a->target, sizeof a->target);
    a->target_rom_id = fota_store_pg_col_int(r, row, 14);
    a->served_at = fota_store_pg_col_int(r, row, 15);
    fota_store_pg_col_text(r, row, 16, a->served_md5, sizeof a->served_md5);
    fota_store_pg_col_text(r, row, 17, a->pin_version, sizeof a->pin_version);
    fota_store_pg_col_text(r, row, 18, a->pin_current, sizeof a->pin_current);
    fota_store_pg_col_text(r, row, 19, a->mqtt_topic, sizeof a->mqtt_topic);
    fota_store_pg_col_text(r, row, 20, a->mqtt_lwt, sizeof a->mqtt_lwt);
    fota_store_pg_col_text(r, row, 21, a->mqtt_version, sizeof a->mqtt_version);
    a->mqtt_seen = fota_store_pg_col_int(r, row, 22);
}

static void lower_mac(const char *mac, char *out)
{
    size_t i;
    for (i = 0; mac[i] && i + 1 < FOTA_ARDUINO_MAC_MAX; i++)
        out[i] = (char)(mac[i] >= 'A' && mac[i] <= 'F' ? mac[i] - 'A' + 'a' : mac[i]);
    out[i] = '\0';
}

/* What a check-in reports (sta_mac ... last_checkin, the columns of
 * arduino_devices in that order): 11 parameters. */
static void param_report(struct pg_params *p, const struct fota_arduino_device *a)
{
    PG_PARAM_STR(p, a->sta_mac);
    PG_PARAM_STR(p, a->ap_mac);
    fota_store_pg_param_int(p, a->chip_id);
    fota_store_pg_param_int(p, a->free_space);
    fota_store_pg_param_int(p, a->sketch_size);
    fota_store_pg_param_int(p, a->chip_size);
    PG_PARAM_STR(p, a->sketch_md5);
    PG_PARAM_STR(p, a->sdk_version);
    PG_PARAM_STR(p, a->version);
    PG_PARAM_STR(p, a->mode);
    fota_store_pg_param_int(p, a->last_checkin);
}

int fota_store_pg_arduino_device_register(struct fota_store *s, struct fota_device *d,
                                          struct fota_arduino_device *a)
{
    int64_t now = fota_clock_wall_s(), id = 0;
    struct pg_params p = { 0 };
    struct pg_conn *c;
    int rc;

    if ((rc = fota_store_pg_enter(s, "arduino_device_register", &c)) != 0)
        return rc;
    fota_store_pg_param_int(&p, d->product_id);
    PG_PARAM_STR(&p, d->name);
    PG_PARAM_STR(&p, d->bssid);
    fota_store_pg_param_int(&p, d->last_active);
    fota_store_pg_param_int(&p, now);
    param_report(&p, a);
    /* Both rows in one statement: an unknown product is 23503 (ENOENT), a
     * MAC the product has already 23505 on arduino_devices_mac (EEXIST),
     * and either leaves no device row behind. */
    rc = fota_store_pg_exec_tx(
        c, PQ_A_REGISTER,
        "WITH d AS (INSERT INTO devices (product_id, name, bssid, last_active, created)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING id, product_id)"
        " INSERT INTO arduino_devices (device_id, product_id, sta_mac, ap_mac, chip_id,"
        " free_space, sketch_size, chip_size, sketch_md5, sdk_version, version, mode,"
        " last_checkin) SELECT d.id, d.product_id, $6, $7, $8, $9, $10, $11, $12, $13, $14,"
        " $15, $16 FROM d RETURNING device_id",
        &p, 1, "arduino_device_register", &id);
    if (rc == 0 && id == 0)
        rc = FOTA_EIO;
    if (rc == 0) {
        d->id = id;
        d->created = now;
        a->device_id = id;
        a->product_id = d->product_id;
    }
    return fota_store_pg_leave(c, rc);
}

int fota_store_pg_arduino_device_find(struct fota_store *s, int64_t product_id,
                                      const char *sta_mac, const char *name,
                                      struct fota_arduino_device *out)
{
    struct pg_params p = { 0 };
    char low[FOTA_ARDUINO_MAC_MAX];
    struct pg_conn *c;
    int rc;

    if ((sta_mac == NULL) == (name == NULL))
        return FOTA_EINVAL;
    if ((rc = fota_store_pg_enter(s, "arduino_device_find", &c)) != 0)
        return rc;
    fota_store_pg_param_int(&p, product_id);
    if (sta_mac) {
        /* "sta_mac <> ''": the partial index arduino_devices_mac */
        fota_store_pg_param_text(&p, sta_mac, FOTA_ARDUINO_MAC_MAX);
        rc = fota_store_pg_one(c, PQ_A_FIND_MAC,
                               ADEV_COLS " FROM arduino_devices a JOIN devices d"
                               " ON d.id = a.device_id WHERE a.product_id = $1"
                               " AND a.sta_mac = $2 AND a.sta_mac <> '' ORDER BY d.id LIMIT 1",
                               &p, read_adev, out, "arduino_device_find");
        if (rc != FOTA_ENOENT)
            return fota_store_pg_leave(c, rc);
        /* a device made through the API with its MAC as bssid */
        lower_mac(sta_mac, low);
        memset(&p, 0, sizeof p);
        fota_store_pg_param_int(&p, product_id);
        fota_store_pg_param_text(&p, low, sizeof low);
        rc = fota_store_pg_one(c, PQ_A_FIND_BSSID,
                               ADEV_COLS " FROM devices d LEFT JOIN arduino_devices a"
                               " ON a.device_id = d.id WHERE d.product_id = $1 AND d.bssid = $2"
                               " ORDER BY d.id LIMIT 1",
                               &p, read_adev, out, "arduino_device_find");
    } else {
        fota_store_pg_param_text(&p, name, FOTA_NAME_MAX);
        rc = fota_store_pg_one(c, PQ_A_FIND_NAME,
                               ADEV_COLS " FROM devices d LEFT JOIN arduino_devices a"
                               " ON a.device_id = d.id WHERE d.product_id = $1 AND d.name = $2"
                               " ORDER BY d.id LIMIT 1",
                               &p, read_adev, out, "arduino_device_find");
    }
    return fota_store_pg_leave(c, rc);
}

int fota_store_pg_arduino_device_get(struct fota_store *s, int64_t device_id,
                                     struct fota_arduino_device *out)
{
    struct pg_params p = { 0 };
    struct pg_conn *c;
    int rc;

    if ((rc = fota_store_pg_enter(s, "arduino_device_get", &c)) != 0)
        return rc;
    fota_store_pg_param_int(&p, device_id);
    rc = fota_store_pg_one(c, PQ_A_DEV_GET,
                           ADEV_COLS " FROM arduino_devices a JOIN devices d"
                           " ON d.id = a.device_id WHERE a.device_id = $1",
                           &p, read_adev, out, "arduino_device_get");
    return fota_store_pg_leave(c, rc);
}

int fota_store_pg_arduino_device_list(struct fota_store *s, int64_t product_id,
                                      struct fota_arduino_device **out, size_t *n)
{
    struct pg_params p = { 0 };
    struct pg_conn *c;
    int rc;

    *out = NULL;
    *n = 0;
    if ((rc = fota_store_pg_enter(s, "arduino_device_list", &c)) != 0)
        return rc;
    fota_store_pg_param_int(&p, product_id);
    rc = fota_store_pg_collect(c, PQ_A_DEV_LIST,
                               ADEV_COLS " FROM arduino_devices a JOIN devices d"
                               " ON d.id = a.device_id WHERE a.product_id = $1 ORDER BY d.id",
                               &p, read_adev, sizeof **out, (void **)out, n,
                               "arduino_device_list");
    return fota_store_pg_leave(c, rc);
}

/* ---- reports ------------------------------------------------------------ */

enum { R_DEV, R_MAC, R_AP, R_CHIP, R_FREE, R_SKETCH, R_CHIPSZ, R_MD5, R_SDK, R_VER, R_MODE,
       R_CHECKIN, R_NCOL };

/* report_tx's statements: each device's last row (and its last non-empty
 * MAC; an empty one keeps the stored MAC) upserted for the devices that
 * exist (held by FOR KEY SHARE, so none is deleted between the check and
 * the insert), then each device's last_active. */
static const char REPORT_SQL[] =
    "WITH u AS (SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], $4::int8[],"
    " $5::int8[], $6::int8[], $7::int8[], $8::text[], $9::text[], $10::text[], $11::text[],"
    " $12::int8[]) WITH ORDINALITY AS u(d, mac, ap, chip, free, sketch, chipsz, md5, sdk, ver,"
    " mode, checkin, o)),"
    " l AS (SELECT DISTINCT ON (d) * FROM u ORDER BY d, o DESC),"
    " m AS (SELECT DISTINCT ON (d) d, mac FROM u WHERE mac <> '' ORDER BY d, o DESC),"
    " dv AS (SELECT id, product_id FROM devices WHERE id IN (SELECT d FROM l) ORDER BY id"
    " FOR KEY SHARE)"
    " INSERT INTO arduino_devices (device_id, product_id, sta_mac, ap_mac, chip_id,"
    " free_space, sketch_size, chip_size, sketch_md5, sdk_version, version, mode, last_checkin)"
    " SELECT dv.id, dv.product_id, COALESCE(m.mac, ''), l.ap, l.chip, l.free, l.sketch,"
    " l.chipsz, l.md5, l.sdk, l.ver, l.mode, l.checkin FROM l JOIN dv ON dv.id = l.d"
    " LEFT JOIN m ON m.d = l.d ORDER BY dv.id"
    " ON CONFLICT (device_id) DO UPDATE SET"
    " sta_mac = CASE WHEN excluded.sta_mac <> '' THEN excluded.sta_mac"
    " ELSE arduino_devices.sta_mac END,"
    " ap_mac = excluded.ap_mac, chip_id = excluded.chip_id,"
    " free_space = excluded.free_space, sketch_size = excluded.sketch_size,"
    " chip_size = excluded.chip_size, sketch_md5 = excluded.sketch_md5,"
    " sdk_version = excluded.sdk_version, version = excluded.version,"
    " mode = excluded.mode, last_checkin = excluded.last_checkin";

static const char REPORT_ACTIVE_SQL[] =
    "UPDATE devices SET last_active = l.checkin FROM (SELECT DISTINCT ON (d) d, checkin"
    " FROM unnest($1::int8[], $2::int8[]) WITH ORDINALITY AS u(d, checkin, o)"
    " ORDER BY d, o DESC) l WHERE devices.id = l.d";

static int report_tx(struct pg_conn *c, struct pg_array_param *col)
{
    struct pg_params p = { 0 };
    int rc;

    if ((rc = fota_store_pg_begin(c, 0)) != 0)
        return rc;
    for (int k = 0; k < R_NCOL; k++)
        fota_store_pg_param_array(&p, &col[k]);
    rc = fota_store_pg_exec(c, PQ_A_REPORT, REPORT_SQL, &p, "arduino_device_report", NULL);
    if (rc == 0) {
        memset(&p, 0, sizeof p);
        fota_store_pg_param_array(&p, &col[R_DEV]);
        fota_store_pg_param_array(&p, &col[R_CHECKIN]);
        rc = fota_store_pg_exec(c, PQ_A_REPORT_ACTIVE, REPORT_ACTIVE_SQL, &p,
                                "arduino_device_report", NULL);
    }
    return fota_store_pg_finish(c, rc);
}

int fota_store_pg_arduino_device_report(struct fota_store *s,
                                        const struct fota_arduino_device *rows, size_t n)
{
    static const Oid types[R_NCOL] = {
        [R_DEV] = FOTA_PG_INT8_ARRAY,    [R_MAC] = FOTA_PG_TEXT_ARRAY,
        [R_AP] = FOTA_PG_TEXT_ARRAY,     [R_CHIP] = FOTA_PG_INT8_ARRAY,
        [R_FREE] = FOTA_PG_INT8_ARRAY,   [R_SKETCH] = FOTA_PG_INT8_ARRAY,
        [R_CHIPSZ] = FOTA_PG_INT8_ARRAY, [R_MD5] = FOTA_PG_TEXT_ARRAY,
        [R_SDK] = FOTA_PG_TEXT_ARRAY,    [R_VER] = FOTA_PG_TEXT_ARRAY,
        [R_MODE] = FOTA_PG_TEXT_ARRAY,   [R_CHECKIN] = FOTA_PG_INT8_ARRAY,
    };
    struct pg_array_param col[R_NCOL];
    struct pg_conn *c;
    int rc;

    if (n == 0)
        return 0;
    if ((rc = fota_store_pg_enter(s, "arduino_device_report", &c)) != 0)
        return rc;
    c->hot = 1; /* device traffic: caches do not depend on it (store.h) */
    for (int k = 0; k < R_NCOL; k++)
        fota_store_pg_array_init(&col[k], types[k]);
    for (size_t i = 0; i < n; i++) {
        const struct fota_arduino_device *a = &rows[i];
        fota_store_pg_array_int(&col[R_DEV], a->device_id);
        PG_ARRAY_STR(&col[R_MAC], a->sta_mac);
        PG_ARRAY_STR(&col[R_AP], a->ap_mac);
        fota_store_pg_array_int(&col[R_CHIP], a->chip_id);
        fota_store_pg_array_int(&col[R_FREE], a->free_space);
        fota_store_pg_array_int(&col[R_SKETCH], a->sketch_size);
        fota_store_pg_array_int(&col[R_CHIPSZ], a->chip_size);
        PG_ARRAY_STR(&col[R_MD5], a->sketch_md5);
        PG_ARRAY_STR(&col[R_SDK], a->sdk_version);
        PG_ARRAY_STR(&col[R_VER], a->version);
        PG_ARRAY_STR(&col[R_MODE], a->mode);
        fota_store_pg_array_int(&col[R_CHECKIN], a->last_checkin);
    }
    /* two batches on the same devices in opposite orders: a deadlock, run again */
    rc = FOTA_EAGAIN;
    for (int i = 0; i < FOTA_PG_TRIES && rc == FOTA_EAGAIN; i++)
        rc = report_tx(c, col);
    for (int k = 0; k < R_NCOL; k++)
        fota_store_pg_array_free(&col[k]);
    return fota_store_pg_leave(c, rc);
}

/* ---- tracking, MQTT ----------------------------------------------------- */

/* sql, an upsert of a device's arduino row that selects the device from
 * devices and returns its id, alone in its own transaction (device
 * traffic): FOTA_ENOENT when the device is gone (the SELECT found no row,
 * or it went before the foreign key's check: 23503). */
static int device_upsert(struct fota_store *s, int sid, const char *sql, const struct pg_params *p,
                         const char *what)
{
    struct pg_conn *c;
    int64_t id = 0;
    int rc;

    if ((rc = fota_store_pg_enter(s, what, &c)) != 0)
        return rc;
    c->hot = 1; /* caches do not depend on it (store.h) */
    rc = fota_store_pg_exec_tx(c, sid, sql, p, 0, what, &id);
    if (rc == 0 && id == 0)
        rc = FOTA_ENOENT;
    return fota_store_pg_leave(c, rc);
}

int fota_store_pg_arduino_device_track(struct fota_store *s, const struct fota_arduino_device *a)
{
    struct pg_params p = { 0 };

    fota_store_pg_param_int(&p, a->device_id);
    PG_PARAM_STR(&p, a->target);
    fota_store_pg_param_int(&p, a->target_rom_id);
    fota_store_pg_param_int(&p, a->served_at);
    PG_PARAM_STR(&p, a->served_md5);
    PG_PARAM_STR(&p, a->pin_version);
    PG_PARAM_STR(&p, a->pin_current);
    return device_upsert(
        s, PQ_A_TRACK,
        "INSERT INTO arduino_devices (device_id, product_id, target, target_rom_id,"
        " served_at, served_md5, pin_version, pin_current) SELECT id, product_id, $2, $3,"
        " $4, $5, $6, $7 FROM devices WHERE id = $1 ON CONFLICT (device_id) DO UPDATE SET"
        " target = excluded.target, target_rom_id = excluded.target_rom_id,"
        " served_at = excluded.served_at, served_md5 = excluded.served_md5,"
        " pin_version = excluded.pin_version, pin_current = excluded.pin_current"
        " RETURNING device_id",
        &p, "arduino_device_track");
}

int fota_store_pg_arduino_device_mqtt(struct fota_store *s, const struct fota_arduino_device *a)
{
    struct pg_params p = { 0 };

    fota_store_pg_param_int(&p, a->device_id);
    PG_PARAM_STR(&p, a->mqtt_topic);
    PG_PARAM_STR(&p, a->mqtt_lwt);
    PG_PARAM_STR(&p, a->mqtt_version);
    fota_store_pg_param_int(&p, a->mqtt_seen);
    return device_upsert(
        s, PQ_A_MQTT,
        "INSERT INTO arduino_devices (device_id, product_id, mqtt_topic, mqtt_lwt,"
        " mqtt_version, mqtt_seen) SELECT id, product_id, $2, $3, $4, $5 FROM devices"
        " WHERE id = $1 ON CONFLICT (device_id) DO UPDATE SET"
        " mqtt_topic = excluded.mqtt_topic, mqtt_lwt = excluded.mqtt_lwt,"
        " mqtt_version = excluded.mqtt_version, mqtt_seen = excluded.mqtt_seen"
        " RETURNING device_id",
        &p, "arduino_device_mqtt");
}

/* ---- served downloads --------------------------------------------------- */

enum { W_DEV, W_FILE, W_BYTES, W_DONE, W_TARGET, W_ROM, W_AT, W_MD5, W_NCOL };

/* served_tx's statements. A row of an unknown file is skipped whole: the
 * files that exist are held (FOR KEY SHARE) by the first statement until
 * the transaction ends, so the later ones see the same files. Each
 * (device, file) ledger row once per batch, with the batch's sums; each
 * file's count and each product's minute once per batch. */
static const char SERVED_LEDGER_SQL[] =
    "WITH u AS (SELECT * FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::int8[])"
    " AS u(d, f, b, c)),"
    " f AS (SELECT id FROM rom_files WHERE id IN (SELECT f FROM u) ORDER BY id FOR KEY SHARE)"
    " INSERT INTO downloads (device_id, file_id, bytes, completions)"
    " SELECT u.d, u.f, SUM(u.b), SUM(u.c) FROM u JOIN f ON f.id = u.f GROUP BY u.d, u.f"
    " ORDER BY u.d, u.f"
    " ON CONFLICT (device_id, file_id) DO UPDATE SET"
    " bytes = downloads.bytes + excluded.bytes,"
    " completions = downloads.completions + excluded.completions";

static const char SERVED_COUNT_SQL[] =
    "UPDATE rom_files SET download_count = rom_files.download_count + s.c"
    " FROM (SELECT f, SUM(c) AS c FROM unnest($1::int8[], $2::int8[]) AS u(f, c)"
    " GROUP BY f) s WHERE rom_files.id = s.f AND s.c <> 0";

static const char SERVED_MINUTE_SQL[] =
    "INSERT INTO product_minutes (product_id, minute, downloads, bytes)"
    " SELECT r.product_id, $4, SUM(u.c), SUM(u.b)"
    " FROM unnest($1::int8[], $2::int8[], $3::int8[]) AS u(f, b, c)"
    " JOIN rom_files f ON f.id = u.f JOIN roms r ON r.id = f.rom_id"
    " WHERE u.b <> 0 OR u.c <> 0 GROUP BY r.product_id ORDER BY r.product_id"
    " ON CONFLICT (product_id, minute) DO UPDATE SET"
    " downloads = product_minutes.downloads + excluded.downloads,"
    " bytes = product_minutes.bytes + excluded.bytes";

/* each device's last row of a file that exists, for the devices that exist */
static const char SERVED_DEVICE_SQL[] =
    "WITH l AS (SELECT DISTINCT ON (u.d) u.d, u.t, u.r, u.a, u.m"
    " FROM unnest($1::int8[], $2::int8[], $3::text[], $4::int8[], $5::int8[], $6::text[])"
    " WITH ORDINALITY AS u(d, f, t, r, a, m, o) JOIN rom_files rf ON rf.id = u.f"
    " WHERE u.d > 0 ORDER BY u.d, u.o DESC),"
    " dv AS (SELECT id, product_id FROM devices WHERE id IN (SELECT d FROM l) ORDER BY id"
    " FOR KEY SHARE)"
    " INSERT INTO arduino_devices (device_id, product_id, target, target_rom_id, served_at,"
    " served_md5) SELECT dv.id, dv.product_id, l.t, l.r, l.a, l.m FROM l JOIN dv ON dv.id = l.d"
    " ORDER BY dv.id"
    " ON CONFLICT (device_id) DO UPDATE SET"
    " target = excluded.target, target_rom_id = excluded.target_rom_id,"
    " served_at = excluded.served_at, served_md5 = excluded.served_md5";

static int served_tx(struct pg_conn *c, struct pg_array_param *col, int devices)
{
    struct pg_params p;
    int rc;

    if ((rc = fota_store_pg_begin(c, 0)) != 0)
        return rc;
    memset(&p, 0, sizeof p);
    fota_store_pg_param_array(&p, &col[W_DEV]);
    fota_store_pg_param_array(&p, &col[W_FILE]);
    fota_store_pg_param_array(&p, &col[W_BYTES]);
    fota_store_pg_param_array(&p, &col[W_DONE]);
    rc = fota_store_pg_exec(c, PQ_A_SERVED_LEDGER, SERVED_LEDGER_SQL, &p,
                            "arduino_device_served", NULL);
    if (rc == 0) {
        memset(&p, 0, sizeof p);
        fota_store_pg_param_array(&p, &col[W_FILE]);
        fota_store_pg_param_array(&p, &col[W_DONE]);
        rc = fota_store_pg_exec(c, PQ_A_SERVED_COUNT, SERVED_COUNT_SQL, &p,
                                "arduino_device_served", NULL);
    }
    if (rc == 0) {
        memset(&p, 0, sizeof p);
        fota_store_pg_param_array(&p, &col[W_FILE]);
        fota_store_pg_param_array(&p, &col[W_BYTES]);
        fota_store_pg_param_array(&p, &col[W_DONE]);
        fota_store_pg_param_int(&p, fota_clock_wall_s() / 60);
        rc = fota_store_pg_exec(c, PQ_A_SERVED_MINUTE, SERVED_MINUTE_SQL, &p,
                                "arduino_device_served", NULL);
    }
    if (rc == 0)
        rc = fota_store_pg_minutes_prune(c);
    if (rc == 0 && devices) {
        memset(&p, 0, sizeof p);
        fota_store_pg_param_array(&p, &col[W_DEV]);
        fota_store_pg_param_array(&p, &col[W_FILE]);
        fota_store_pg_param_array(&p, &col[W_TARGET]);
        fota_store_pg_param_array(&p, &col[W_ROM]);
        fota_store_pg_param_array(&p, &col[W_AT]);
        fota_store_pg_param_array(&p, &col[W_MD5]);
        rc = fota_store_pg_exec(c, PQ_A_SERVED_DEVICE, SERVED_DEVICE_SQL, &p,
                                "arduino_device_served", NULL);
    }
    return fota_store_pg_finish(c, rc);
}

int fota_store_pg_arduino_device_served(struct fota_store *s,
                                        const struct fota_arduino_download *rows, size_t n)
{
    static const Oid types[W_NCOL] = {
        [W_DEV] = FOTA_PG_INT8_ARRAY,    [W_FILE] = FOTA_PG_INT8_ARRAY,
        [W_BYTES] = FOTA_PG_INT8_ARRAY,  [W_DONE] = FOTA_PG_INT8_ARRAY,
        [W_TARGET] = FOTA_PG_TEXT_ARRAY, [W_ROM] = FOTA_PG_INT8_ARRAY,
        [W_AT] = FOTA_PG_INT8_ARRAY,     [W_MD5] = FOTA_PG_TEXT_ARRAY,
    };
    struct pg_array_param col[W_NCOL];
    struct pg_conn *c;
    int rc, devices = 0;

    for (size_t i = 0; i < n; i++)
        if (rows[i].bytes < 0 || rows[i].completed < 0)
            return FOTA_EINVAL;
    if (n == 0)
        return 0;
    if ((rc = fota_store_pg_enter(s, "arduino_device_served", &c)) != 0)
        return rc;
    c->hot = 1; /* device traffic: caches do not depend on it (store.h) */
    for (int k = 0; k < W_NCOL; k++)
        fota_store_pg_array_init(&col[k], types[k]);
    for (size_t i = 0; i < n; i++) {
        const struct fota_arduino_download *w = &rows[i];
        fota_store_pg_array_int(&col[W_DEV], w->device_id);
        fota_store_pg_array_int(&col[W_FILE], w->file_id);
        fota_store_pg_array_int(&col[W_BYTES], w->bytes);
        fota_store_pg_array_int(&col[W_DONE], w->completed);
        PG_ARRAY_STR(&col[W_TARGET], w->target);
        fota_store_pg_array_int(&col[W_ROM], w->target_rom_id);
        fota_store_pg_array_int(&col[W_AT], w->served_at);
        PG_ARRAY_STR(&col[W_MD5], w->served_md5);
        devices |= w->device_id > 0;
    }
    rc = FOTA_EAGAIN;
    for (int i = 0; i < FOTA_PG_TRIES && rc == FOTA_EAGAIN; i++)
        rc = served_tx(c, col, devices);
    for (int k = 0; k < W_NCOL; k++)
        fota_store_pg_array_free(&col[k]);
    return fota_store_pg_leave(c, rc);
}

/* The ROM ledger's batch: served_tx's ledger, counts and minutes, no device rows. */
int fota_store_pg_download_add_batch(struct fota_store *s, const struct fota_download_row *rows,
                                     size_t n)
{
    struct pg_array_param col[W_DONE + 1];
    struct pg_conn *c;
    int rc;

    for (size_t i = 0; i < n; i++)
        if (rows[i].bytes < 0 || rows[i].completed < 0)
            return FOTA_EINVAL;
    if (n == 0)
        return 0;
    if ((rc = fota_store_pg_enter(s, "download_add_batch", &c)) != 0)
        return rc;
    c->hot = 1; /* device traffic: caches do not depend on it (store.h) */
    for (int k = 0; k <= W_DONE; k++)
        fota_store_pg_array_init(&col[k], FOTA_PG_INT8_ARRAY);
    for (size_t i = 0; i < n; i++) {
        fota_store_pg_array_int(&col[W_DEV], rows[i].device_id);
        fota_store_pg_array_int(&col[W_FILE], rows[i].file_id);
        fota_store_pg_array_int(&col[W_BYTES], rows[i].bytes);
        fota_store_pg_array_int(&col[W_DONE], rows[i].completed);
    }
    rc = FOTA_EAGAIN;
    for (int i = 0; i < FOTA_PG_TRIES && rc == FOTA_EAGAIN; i++)
        rc = served_tx(c, col, 0);
    for (int k = 0; k <= W_DONE; k++)
        fota_store_pg_array_free(&col[k]);
    return fota_store_pg_leave(c, rc);
}
