/* store_sqlite_arduino.c - the Arduino-core rows of the SQLite store
 * (store_arduino.h, migrations 4 and 7): product settings, served-file facts
 * by blob, the devices' x-ESP8266-* reports, upgrade tracking, explicit
 * targets and what MQTT discovery learnt.
 * Settings, facts and registrations are durable catalog writes; reports and
 * tracking are device traffic (synchronous=NORMAL, no new generation). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "fota_str.h"
#include "store_sqlite_int.h"
#include "xmalloc.h"

#define Q(s) fota_store_sqlite_cast(s)
#define STMT(k, sql) fota_store_sqlite_stmt(q, SQ_ARDUINO0 + (k), (sql))

enum {
    A_PRODUCT_PUT, A_PRODUCT_GET, A_BLOB_PUT, A_BLOB_GET, A_DEV_INSERT, A_ADEV_INSERT,
    A_FIND_MAC, A_FIND_BSSID, A_FIND_NAME, A_DEV_GET, A_DEV_LIST, A_REPORT, A_REPORT_ACTIVE,
    A_TRACK, A_MQTT, A_SERVED, A_COUNT
};
_Static_assert(SQ_ARDUINO0 + A_COUNT <= SQ_ARDUINO_LAST + 1, "arduino statement ids");

/* ---- products ---------------------------------------------------------- */

int fota_store_sqlite_arduino_product_put(struct fota_store *s, const struct fota_arduino_product *p)
{
    struct sql_store *q = Q(s);
    sqlite3_stmt *st;
    int rc;

    fota_store_sqlite_lock(q);
    st = STMT(A_PRODUCT_PUT,
              "INSERT INTO arduino_products (product_id, gzip, core, flash_mode, signing_key,"
              " checkin_interval, confirm_after, mqtt_url, mqtt_username, mqtt_password)"
              " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
              " ON CONFLICT (product_id) DO UPDATE SET gzip = excluded.gzip, core = excluded.core,"
              " flash_mode = excluded.flash_mode, signing_key = excluded.signing_key,"
              " checkin_interval = excluded.checkin_interval, confirm_after = excluded.confirm_after,"
              " mqtt_url = excluded.mqtt_url, mqtt_username = excluded.mqtt_username,"
              " mqtt_password = excluded.mqtt_password");
    if (st) {
        sqlite3_bind_int64(st, 1, p->product_id);
        sqlite3_bind_int(st, 2, p->gzip);
        sqlite3_bind_int(st, 3, p->core);
        sqlite3_bind_int(st, 4, p->flash_mode);
        SQL_BIND_STR(st, 5, p->signing_key);
        sqlite3_bind_int64(st, 6, p->checkin_interval);
        sqlite3_bind_int64(st, 7, p->confirm_after);
        SQL_BIND_STR(st, 8, p->mqtt_url);
        SQL_BIND_STR(st, 9, p->mqtt_username);
        SQL_BIND_STR(st, 10, p->mqtt_password);
    }
    rc = fota_store_sqlite_exec_tx(q, st, 1, "arduino_product_put", NULL);
    return fota_store_sqlite_unlock(q, rc);
}

static void read_aproduct(sqlite3_stmt *st, void *row)
{
    struct fota_arduino_product *p = row;

    memset(p, 0, sizeof *p);
    p->product_id = sqlite3_column_int64(st, 0);
    p->gzip = sqlite3_column_int(st, 1);
    p->core = sqlite3_column_int(st, 2);
    p->flash_mode = sqlite3_column_int(st, 3);
    fota_store_sqlite_col_text(st, 4, p->signing_key, sizeof p->signing_key);
    p->checkin_interval = sqlite3_column_int64(st, 5);
    p->confirm_after = sqlite3_column_int64(st, 6);
    fota_store_sqlite_col_text(st, 7, p->mqtt_url, sizeof p->mqtt_url);
    fota_store_sqlite_col_text(st, 8, p->mqtt_username, sizeof p->mqtt_username);
    fota_store_sqlite_col_text(st, 9, p->mqtt_password, sizeof p->mqtt_password);
}

int fota_store_sqlite_arduino_product_get(struct fota_store *s, int64_t product_id,
                                          struct fota_arduino_product *out)
{
    struct sql_store *q = Q(s);
    sqlite3_stmt *st;

    fota_store_sqlite_lock(q);
    st = STMT(A_PRODUCT_GET,
              "SELECT product_id, gzip, core, flash_mode, signing_key, checkin_interval,"
              " confirm_after, mqtt_url, mqtt_username, mqtt_password FROM arduino_products"
              " WHERE product_id = ?");
    if (st)
        sqlite3_bind_int64(st, 1, product_id);
    return fota_store_sqlite_unlock(q, fota_store_sqlite_one(q, st, read_aproduct, out,
                                                             "arduino_product_get"));
}

/* ---- served-file facts ------------------------------------------------- */

int fota_store_sqlite_arduino_blob_put(struct fota_store *s, const struct fota_arduino_blob *b,
                                       size_t n)
{
    struct sql_store *q = Q(s);
    sqlite3_stmt *st;
    char md5s[4 * FOTA_ARDUINO_MD5_TEXT];
    int rc;

    fota_store_sqlite_lock(q);
    rc = fota_store_sqlite_begin(q, 1);
    if (rc)
        return fota_store_sqlite_unlock(q, rc);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        snprintf(md5s, sizeof md5s, "%.32s,%.32s,%.32s,%.32s", b[i].sketch_md5[0],
                 b[i].sketch_md5[1], b[i].sketch_md5[2], b[i].sketch_md5[3]);
        st = STMT(A_BLOB_PUT,
                  "INSERT INTO arduino_blobs (sha256, md5, gzip, sig_form, image_size, image_md5,"
                  " image_sha256, sketch_md5, flash_mode, flash_size, sketch_size)"
                  " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sha256) DO NOTHING");
        if (st) {
            SQL_BIND_STR(st, 1, b[i].sha256);
            SQL_BIND_STR(st, 2, b[i].md5);
            sqlite3_bind_int(st, 3, b[i].gzip);
            sqlite3_bind_int(st, 4, b[i].sig_form);
            sqlite3_bind_int64(st, 5, b[i].image_size);
            SQL_BIND_STR(st, 6, b[i].image_md5);
            SQL_BIND_STR(st, 7, b[i].image_sha256);
            SQL_BIND_STR(st, 8, md5s);
            sqlite3_bind_int(st, 9, b[i].flash_mode);
            sqlite3_bind_int64(st, 10, b[i].flash_size);
            sqlite3_bind_int64(st, 11, b[i].sketch_size);
        }
        rc = fota_store_sqlite_exec(q, st, "arduino_blob_put", NULL);
    }
    rc = fota_store_sqlite_finish(q, rc);
    return fota_store_sqlite_unlock(q, rc);
}

static void read_ablob(sqlite3_stmt *st, void *row)
{
    struct fota_arduino_blob *b = row;
    char md5s[4 * FOTA_ARDUINO_MD5_TEXT];

    memset(b, 0, sizeof *b);
    fota_store_sqlite_col_text(st, 0, b->sha256, sizeof b->sha256);
    fota_store_sqlite_col_text(st, 1, b->md5, sizeof b->md5);
    b->gzip = sqlite3_column_int(st, 2);
    b->sig_form = sqlite3_column_int(st, 3);
    b->image_size = sqlite3_column_int64(st, 4);
    fota_store_sqlite_col_text(st, 5, b->image_md5, sizeof b->image_md5);
    fota_store_sqlite_col_text(st, 6, b->image_sha256, sizeof b->image_sha256);
    fota_store_sqlite_col_text(st, 7, md5s, sizeof md5s);
    b->flash_mode = sqlite3_column_int(st, 8);
    b->flash_size = sqlite3_column_int64(st, 9);
    b->sketch_size = sqlite3_column_int64(st, 10);
    for (int m = 0; m < 4 && strlen(md5s) >= (size_t)(33 * m + 32); m++)
        fota_str_copy(b->sketch_md5[m], 33, md5s + 33 * m);
}

int fota_store_sqlite_arduino_blob_get(struct fota_store *s, const char *sha256,
                                       struct fota_arduino_blob *out)
{
    struct sql_store *q = Q(s);
    sqlite3_stmt *st;

    fota_store_sqlite_lock(q);
    st = STMT(A_BLOB_GET,
              "SELECT sha256, md5, gzip, sig_form, image_size, image_md5, image_sha256,"
              " sketch_md5, flash_mode, flash_size, sketch_size FROM arduino_blobs"
              " WHERE sha256 = ?");
    if (st)
        sqlite3_bind_text(st, 1, sha256, -1, SQLITE_STATIC);
    return fota_store_sqlite_unlock(q, fota_store_sqlite_one(q, st, read_ablob, out,
                                                             "arduino_blob_get"));
}

/* ---- devices ----------------------------------------------------------- */

/* devices.id, then the arduino columns (NULL when the device has no row). */
#define ADEV_COLS                                                                            \
    "SELECT d.id, d.product_id, a.sta_mac, a.ap_mac, a.chip_id, a.free_space, a.sketch_size," \
    " a.chip_size, a.sketch_md5, a.sdk_version, a.version, a.mode, a.last_checkin, a.target,"  \
    " a.target_rom_id, a.served_at, a.served_md5, a.pin_version, a.pin_current, a.mqtt_topic," \
    " a.mqtt_lwt, a.mqtt_version, a.mqtt_seen"

static void adev_defaults(struct fota_arduino_device *a)
{
    memset(a, 0, sizeof *a);
    a->chip_id = -1;
}

static void read_adev(sqlite3_stmt *st, void *row)
{
    struct fota_arduino_device *a = row;

    adev_defaults(a);
    a->device_id = sqlite3_column_int64(st, 0);
    a->product_id = sqlite3_column_int64(st, 1);
    if (sqlite3_column_type(st, 2) == SQLITE_NULL)
        return; /* a device of the product without an arduino row yet */
    fota_store_sqlite_col_text(st, 2, a->sta_mac, sizeof a->sta_mac);
    fota_store_sqlite_col_text(st, 3, a->ap_mac, sizeof a->ap_mac);
    a->chip_id = sqlite3_column_int64(st, 4);
    a->free_space = sqlite3_column_int64(st, 5);
    a->sketch_size = sqlite3_column_int64(st, 6);
    a->chip_size = sqlite3_column_int64(st, 7);
    fota_store_sqlite_col_text(st, 8, a->sketch_md5, sizeof a->sketch_md5);
    fota_store_sqlite_col_text(st, 9, a->sdk_version, sizeof a->sdk_version);
    fota_store_sqlite_col_text(st, 10, a->version, sizeof a->version);
    fota_store_sqlite_col_text(st, 11, a->mode, sizeof a->mode);
    a->last_checkin = sqlite3_column_int64(st, 12);
    fota_store_sqlite_col_text(st, 13, a->target, sizeof a->target);
    a->target_rom_id = sqlite3_column_int64(st, 14);
    a->served_at = sqlite3_column_int64(st, 15);
    fota_store_sqlite_col_text(st, 16, a->served_md5, sizeof a->served_md5);
    fota_store_sqlite_col_text(st, 17, a->pin_version, sizeof a->pin_version);
    fota_store_sqlite_col_text(st, 18, a->pin_current, sizeof a->pin_current);
    fota_store_sqlite_col_text(st, 19, a->mqtt_topic, sizeof a->mqtt_topic);
    fota_store_sqlite_col_text(st, 20, a->mqtt_lwt, sizeof a->mqtt_lwt);
    fota_store_sqlite_col_text(st, 21, a->mqtt_version, sizeof a->mqtt_version);
    a->mqtt_seen = sqlite3_column_int64(st, 22);
}

static void lower_mac(const char *mac, char *out)
{
    size_t i;
    for (i = 0; mac[i] && i + 1 < FOTA_ARDUINO_MAC_MAX; i++)
        out[i] = (char)(mac[i] >= 'A' && mac[i] <= 'F' ? mac[i] - 'A' + 'a' : mac[i]);
    out[i] = '\0';
}

/* Binds what a check-in reports (sta_mac ... last_checkin, the columns of
 * arduino_devices in that order) to the 11 parameters from first on. */
static void bind_report(sqlite3_stmt *st, int first, const struct fota_arduino_device *a)
{
    SQL_BIND_STR(st, first, a->sta_mac);
    SQL_BIND_STR(st, first + 1, a->ap_mac);
    sqlite3_bind_int64(st, first + 2, a->chip_id);
    sqlite3_bind_int64(st, first + 3, a->free_space);
    sqlite3_bind_int64(st, first + 4, a->sketch_size);
    sqlite3_bind_int64(st, first + 5, a->chip_size);
    SQL_BIND_STR(st, first + 6, a->sketch_md5);
    SQL_BIND_STR(st, first + 7, a->sdk_version);
    SQL_BIND_STR(st, first + 8, a->version);
    SQL_BIND_STR(st, first + 9, a->mode);
    sqlite3_bind_int64(st, first + 10, a->last_checkin);
}

int fota_store_sqlite_arduino_device_register(struct fota_store *s, struct fota_device *d,
                                              struct fota_arduino_device *a)
{
    struct sql_store *q = Q(s);
    int64_t now = fota_clock_wall_s(), id = 0;
    sqlite3_stmt *st;
    int rc;

    fota_store_sqlite_lock(q);
    rc = fota_store_sqlite_begin(q, 1);
    if (rc)
        return fota_store_sqlite_unlock(q, rc);
    st = STMT(A_DEV_INSERT, "INSERT INTO devices (id, product_id, name, bssid, last_active, created)"
                            " VALUES (" SQL_NEXT_ID("devices") ", ?, ?, ?, ?, ?) RETURNING id");
    if (st) {
        sqlite3_bind_int64(st, 1, d->product_id);
        SQL_BIND_STR(st, 2, d->name);
        SQL_BIND_STR(st, 3, d->bssid);
        sqlite3_bind_int64(st, 4, d->last_active);
        sqlite3_bind_int64(st, 5, now);
    }
    rc = fota_store_sqlite_exec(q, st, "arduino_device_register", &id);
    if (rc == 0) {
        st = STMT(A_ADEV_INSERT,
                  "INSERT INTO arduino_devices (device_id, product_id, sta_mac, ap_mac, chip_id,"
                  " free_space, sketch_size, chip_size, sketch_md5, sdk_version, version, mode,"
                  " last_checkin) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
        if (st) {
            sqlite3_bind_int64(st, 1, id);
            sqlite3_bind_int64(st, 2, d->product_id);
            bind_report(st, 3, a);
        }
        rc = fota_store_sqlite_exec(q, st, "arduino_device_register", NULL);
    }
    rc = fota_store_sqlite_finish(q, rc);
    if (rc == 0) {
        d->id = id;
        d->created = now;
        a->device_id = id;
        a->product_id = d->product_id;
    }
    return fota_store_sqlite_unlock(q, rc);
}

int fota_store_sqlite_arduino_device_find(struct fota_store *s, int64_t product_id,
                                          const char *sta_mac, const char *name,
                                          struct fota_arduino_device *out)
{
    struct sql_store *q = Q(s);
    sqlite3_stmt *st;
    char low[FOTA_ARDUINO_MAC_MAX];
    int rc;

    if ((sta_mac == NULL) == (name == NULL))
        return FOTA_EINVAL;
    fota_store_sqlite_lock(q);
    if (sta_mac) {
        /* "sta_mac <> ''" lets SQLite use the partial index arduino_devices_mac
         * (it cannot prove it of a bound parameter): without it, every
         * check-in scanned the table */
        st = STMT(A_FIND_MAC, ADEV_COLS " FROM arduino_devices a JOIN devices d ON d.id = a.device_id"
                              " WHERE a.product_id = ? AND a.sta_mac = ? AND a.sta_mac <> ''"
                              " ORDER BY d.id LIMIT 1");
        if (st) {
            sqlite3_bind_int64(st, 1, product_id);
            sqlite3_bind_text(st, 2, sta_mac, -1, SQLITE_STATIC);
        }
        rc = fota_store_sqlite_one(q, st, read_adev, out, "arduino_device_find");
        if (rc != FOTA_ENOENT)
            return fota_store_sqlite_unlock(q, rc);
        /* a device made through the API with its MAC as bssid */
        lower_mac(sta_mac, low);
        st = STMT(A_FIND_BSSID, ADEV_COLS " FROM devices d LEFT JOIN arduino_devices a"
                                " ON a.device_id = d.id WHERE d.product_id = ? AND d.bssid = ?"
                                " ORDER BY d.id LIMIT 1");
        if (st) {
            sqlite3_bind_int64(st, 1, product_id);
            sqlite3_bind_text(st, 2, low, -1, SQLITE_STATIC);
        }
    } else {
        st = STMT(A_FIND_NAME, ADEV_COLS " FROM devices d LEFT JOIN arduino_devices a"
                               " ON a.device_id = d.id WHERE d.product_id = ? AND d.name = ?"
                               " ORDER BY d.id LIMIT 1");
        if (st) {
            sqlite3_bind_int64(st, 1, product_id);
            sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
        }
    }
    return fota_store_sqlite_unlock(q, fota_store_sqlite_one(q, st, read_adev, out, "arduino_device_find"));
}

int fota_store_sqlite_arduino_device_get(struct fota_store *s, int64_t device_id,
                                         struct fota_arduino_device *out)
{
    struct sql_store *q = Q(s);
    sqlite3_stmt *st;

    fota_store_sqlite_lock(q);
    st = STMT(A_DEV_GET, ADEV_COLS " FROM arduino_devices a JOIN devices d ON d.id = a.device_id"
                         " WHERE a.device_id = ?");
    if (st)
        sqlite3_bind_int64(st, 1, device_id);
    return fota_store_sqlite_unlock(q, fota_store_sqlite_one(q, st, read_adev, out, "arduino_device_get"));
}

int fota_store_sqlite_arduino_device_list(struct fota_store *s, int64_t product_id,
                                          struct fota_arduino_device **out, size_t *n)
{
    struct sql_store *q = Q(s);
    sqlite3_stmt *st;

    fota_store_sqlite_lock(q);
    st = STMT(A_DEV_LIST, ADEV_COLS " FROM arduino_devices a JOIN devices d ON d.id = a.device_id"
                          " WHERE a.product_id = ? ORDER BY d.id");
    if (st)
        sqlite3_bind_int64(st, 1, product_id);
    return fota_store_sqlite_unlock(q, fota_store_sqlite_collect(q, st, read_adev, sizeof **out,
                                                                 (void **)out, n,
                                                                 "arduino_device_list"));
}

int fota_store_sqlite_arduino_device_report(struct fota_store *s,
                                            const struct fota_arduino_device *rows, size_t n)
{
    struct sql_store *q = Q(s);
    sqlite3_stmt *st;
    int rc;

    if (n == 0)
        return 0;
    fota_store_sqlite_lock(q);
    q->hot = 1; /* device traffic: caches do not depend on it (store.h) */
    rc = fota_store_sqlite_begin(q, 0);
    if (rc)
        return fota_store_sqlite_unlock(q, rc);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const struct fota_arduino_device *a = &rows[i];
        /* skips a device deleted meanwhile: INSERT ... SELECT finds no row */
        st = STMT(A_REPORT,
                  "INSERT INTO arduino_devices (device_id, product_id, sta_mac, ap_mac, chip_id,"
                  " free_space, sketch_size, chip_size, sketch_md5, sdk_version, version, mode,"
                  " last_checkin) SELECT id, product_id, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
                  " ?12 FROM devices WHERE id = ?1 ON CONFLICT (device_id) DO UPDATE SET"
                  " sta_mac = CASE WHEN excluded.sta_mac <> '' THEN excluded.sta_mac ELSE sta_mac END,"
                  " ap_mac = excluded.ap_mac, chip_id = excluded.chip_id,"
                  " free_space = excluded.free_space, sketch_size = excluded.sketch_size,"
                  " chip_size = excluded.chip_size, sketch_md5 = excluded.sketch_md5,"
                  " sdk_version = excluded.sdk_version, version = excluded.version,"
                  " mode = excluded.mode, last_checkin = excluded.last_checkin");
        if (st) {
            sqlite3_bind_int64(st, 1, a->device_id);
            bind_report(st, 2, a);
        }
        rc = fota_store_sqlite_exec(q, st, "arduino_device_report", NULL);
        if (rc)
            break;
        st = STMT(A_REPORT_ACTIVE, "UPDATE devices SET last_active = ? WHERE id = ?");
        if (st) {
            sqlite3_bind_int64(st, 1, a->last_checkin);
            sqlite3_bind_int64(st, 2, a->device_id);
        }
        rc = fota_store_sqlite_exec(q, st, "arduino_device_report", NULL);
    }
    rc = fota_store_sqlite_finish(q, rc);
    return fota_store_sqlite_unlock(q, rc);
}

/* st, an upsert of a device's arduino row that selects the device from
 * devices, alone in its own transaction (device traffic): FOTA_ENOENT when
 * the device is gone (the SELECT found no row, so nothing changed). */
static int device_upsert(struct sql_store *q, sqlite3_stmt *st, const char *what)
{
    int rc;

    q->hot = 1; /* caches do not depend on it (store.h) */
    rc = fota_store_sqlite_exec_tx(q, st, 0, what, NULL);
    if (rc == 0 && sqlite3_changes(q->db) == 0)
        rc = FOTA_ENOENT;
    return rc;
}

int fota_store_sqlite_arduino_device_track(struct fota_store *s, const struct fota_arduino_device *a)
{
    struct sql_store *q = Q(s);
    sqlite3_stmt *st;

    fota_store_sqlite_lock(q);
    st = STMT(A_TRACK,
              "INSERT INTO arduino_devices (device_id, product_id, target, target_rom_id,"
              " served_at, served_md5, pin_version, pin_current) SELECT id, product_id, ?2, ?3,"
              " ?4, ?5, ?6, ?7 FROM devices WHERE id = ?1 ON CONFLICT (device_id) DO UPDATE SET"
              " target = excluded.target, target_rom_id = excluded.target_rom_id,"
              " served_at = excluded.served_at, served_md5 = excluded.served_md5,"
              " pin_version = excluded.pin_version, pin_current = excluded.pin_current");
    if (st) {
        sqlite3_bind_int64(st, 1, a->device_id);
        SQL_BIND_STR(st, 2, a->target);
        sqlite3_bind_int64(st, 3, a->target_rom_id);
        sqlite3_bind_int64(st, 4, a->served_at);
        SQL_BIND_STR(st, 5, a->served_md5);
        SQL_BIND_STR(st, 6, a->pin_version);
        SQL_BIND_STR(st, 7, a->pin_current);
    }
    return fota_store_sqlite_unlock(q, device_upsert(q, st, "arduino_device_track"));
}

int fota_store_sqlite_arduino_device_mqtt(struct fota_store *s, const struct fota_arduino_device *a)
{
    struct sql_store *q = Q(s);
    sqlite3_stmt *st;

    fota_store_sqlite_lock(q);
    st = STMT(A_MQTT,
              "INSERT INTO arduino_devices (device_id, product_id, mqtt_topic, mqtt_lwt,"
              " mqtt_version, mqtt_seen) SELECT id, product_id, ?2, ?3, ?4, ?5 FROM devices"
              " WHERE id = ?1 ON CONFLICT (device_id) DO UPDATE SET"
              " mqtt_topic = excluded.mqtt_topic, mqtt_lwt = excluded.mqtt_lwt,"
              " mqtt_version = excluded.mqtt_version, mqtt_seen = excluded.mqtt_seen");
    if (st) {
        sqlite3_bind_int64(st, 1, a->device_id);
        SQL_BIND_STR(st, 2, a->mqtt_topic);
        SQL_BIND_STR(st, 3, a->mqtt_lwt);
        SQL_BIND_STR(st, 4, a->mqtt_version);
        sqlite3_bind_int64(st, 5, a->mqtt_seen);
    }
    return fota_store_sqlite_unlock(q, device_upsert(q, st, "arduino_device_mqtt"));
}

/* A batch's sums for one file (arduino_device_served). */
struct file_sum {
    int64_t file_id, bytes, completed;
};

int fota_store_sqlite_arduino_device_served(struct fota_store *s,
                                            const struct fota_arduino_download *rows, size_t n)
{
    struct sql_store *q = Q(s);
    struct file_sum *sums;
    size_t nsums = 0;
    sqlite3_stmt *st;
    int rc;

    for (size_t i = 0; i < n; i++)
        if (rows[i].bytes < 0 || rows[i].completed < 0)
            return FOTA_EINVAL;
    if (n == 0)
        return 0;
    sums = fota_xcalloc(n, sizeof *sums);
    fota_store_sqlite_lock(q);
    q->hot = 1; /* device traffic: caches do not depend on it (store.h) */
    rc = fota_store_sqlite_begin(q, 0);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const struct fota_arduino_download *w = &rows[i];
        size_t k;
        /* a file deleted meanwhile: its row is skipped, the others stay */
        rc = fota_store_sqlite_ledger_row(q, w->device_id, w->file_id, w->bytes, w->completed);
        if (rc == FOTA_ENOENT) {
            rc = 0;
            continue;
        }
        if (rc)
            break;
        /* the file's count and activity once per batch, not once per row */
        for (k = 0; k < nsums && sums[k].file_id != w->file_id; k++)
            ;
        if (k == nsums)
            sums[nsums++].file_id = w->file_id;
        sums[k].bytes += w->bytes;
        sums[k].completed += w->completed;
        if (w->device_id <= 0)
            continue;
        /* skips a device deleted meanwhile: INSERT ... SELECT finds no row */
        st = STMT(A_SERVED,
                  "INSERT INTO arduino_devices (device_id, product_id, target, target_rom_id,"
                  " served_at, served_md5) SELECT id, product_id, ?2, ?3, ?4, ?5 FROM devices"
                  " WHERE id = ?1 ON CONFLICT (device_id) DO UPDATE SET"
                  " target = excluded.target, target_rom_id = excluded.target_rom_id,"
                  " served_at = excluded.served_at, served_md5 = excluded.served_md5");
        if (st) {
            sqlite3_bind_int64(st, 1, w->device_id);
            SQL_BIND_STR(st, 2, w->target);
            sqlite3_bind_int64(st, 3, w->target_rom_id);
            sqlite3_bind_int64(st, 4, w->served_at);
            SQL_BIND_STR(st, 5, w->served_md5);
        }
        rc = fota_store_sqlite_exec(q, st, "arduino_device_served", NULL);
    }
    for (size_t k = 0; rc == 0 && k < nsums; k++)
        rc = fota_store_sqlite_ledger_file(q, sums[k].file_id, sums[k].bytes, sums[k].completed);
    rc = fota_store_sqlite_finish(q, rc);
    free(sums);
    return fota_store_sqlite_unlock(q, rc);
}
