/* store_sqlite_schema.c - the numbered schema migrations of the SQLite store.
 *
 * Migration N is applied once, in its own transaction, together with the row
 * N in schema_migrations (and PRAGMA user_version = N, a mirror for the
 * sqlite3 shell). Never edit a released migration: append a new one. The SQL
 * is kept portable to PostgreSQL (docs/store.md lists what differs). */
#include <stdio.h>
#include <string.h>
#include "clock.h"
#include "fota_str.h"
#include "store_sqlite_int.h"

static const char *const migrations[] = {
    /* 1: the initial schema. */
    "CREATE TABLE products ("
    "  id          INTEGER PRIMARY KEY,"
    "  name        TEXT    NOT NULL,"
    "  serial      TEXT    NOT NULL DEFAULT '',"
    "  status      TEXT    NOT NULL DEFAULT 'development',"
    "  description TEXT    NOT NULL DEFAULT '',"
    "  flash_map   INTEGER NOT NULL DEFAULT 0,"
    "  created     BIGINT  NOT NULL"
    ");"
    "CREATE UNIQUE INDEX products_name ON products (name);"

    "CREATE TABLE roms ("
    "  id          INTEGER PRIMARY KEY,"
    "  product_id  INTEGER NOT NULL REFERENCES products (id),"
    "  version     TEXT    NOT NULL,"
    "  codename    TEXT    NOT NULL DEFAULT '',"
    "  changelog   TEXT    NOT NULL DEFAULT '',"
    "  is_current  INTEGER NOT NULL DEFAULT 0,"
    "  created     BIGINT  NOT NULL"
    ");"
    "CREATE UNIQUE INDEX roms_product_version ON roms (product_id, version);"
    /* at most one current release per product, enforced by the database */
    "CREATE UNIQUE INDEX roms_one_current ON roms (product_id) WHERE is_current <> 0;"

    "CREATE TABLE rom_files ("
    "  id             INTEGER PRIMARY KEY,"
    "  rom_id         INTEGER NOT NULL REFERENCES roms (id) ON DELETE CASCADE,"
    "  file_index     INTEGER NOT NULL,"
    "  name           TEXT    NOT NULL,"
    "  sha256         TEXT    NOT NULL,"
    "  size           BIGINT  NOT NULL,"
    "  slot           INTEGER NOT NULL DEFAULT 0,"
    "  download_count BIGINT  NOT NULL DEFAULT 0"
    ");"
    "CREATE UNIQUE INDEX rom_files_rom_name ON rom_files (rom_id, name);"
    "CREATE INDEX rom_files_sha256 ON rom_files (sha256);"

    "CREATE TABLE devices ("
    "  id             INTEGER PRIMARY KEY,"
    "  product_id     INTEGER NOT NULL REFERENCES products (id),"
    "  name           TEXT    NOT NULL DEFAULT '',"
    "  bssid          TEXT    NOT NULL DEFAULT '',"
    "  activated      INTEGER NOT NULL DEFAULT 0,"
    "  activated_at   BIGINT  NOT NULL DEFAULT 0,"
    "  rom_version    TEXT    NOT NULL DEFAULT '',"
    "  running_slot   INTEGER NOT NULL DEFAULT 0,"
    "  last_active    BIGINT  NOT NULL DEFAULT 0,"
    "  online         INTEGER NOT NULL DEFAULT 0,"
    "  created        BIGINT  NOT NULL,"
    "  key_generation INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE INDEX devices_product ON devices (product_id);"

    "CREATE TABLE api_keys ("
    "  hash       TEXT    PRIMARY KEY,"
    "  kind       INTEGER NOT NULL,"
    "  product_id INTEGER REFERENCES products (id),"
    "  device_id  INTEGER REFERENCES devices (id) ON DELETE CASCADE,"
    "  created    BIGINT  NOT NULL"
    ");"
    "CREATE INDEX api_keys_device ON api_keys (device_id);"

    "CREATE TABLE commands ("
    "  id        INTEGER PRIMARY KEY,"
    "  device_id INTEGER NOT NULL REFERENCES devices (id) ON DELETE CASCADE,"
    "  nonce     BIGINT  NOT NULL,"
    "  action    TEXT    NOT NULL,"
    "  params    TEXT    NOT NULL DEFAULT '',"
    "  state     INTEGER NOT NULL,"
    "  result    TEXT    NOT NULL DEFAULT '',"
    "  created   BIGINT  NOT NULL,"
    "  updated   BIGINT  NOT NULL"
    ");"
    "CREATE INDEX commands_device ON commands (device_id, state);"

    /* a log: ids are kept as plain numbers (0 = none), no foreign keys */
    "CREATE TABLE messages ("
    "  id         INTEGER PRIMARY KEY,"
    "  product_id INTEGER NOT NULL DEFAULT 0,"
    "  device_id  INTEGER NOT NULL DEFAULT 0,"
    "  action     TEXT    NOT NULL,"
    "  body       TEXT    NOT NULL DEFAULT '',"
    "  created    BIGINT  NOT NULL"
    ");"
    "CREATE INDEX messages_product ON messages (product_id, id);"
    "CREATE INDEX messages_device ON messages (device_id, id);"

    /* device_id 0: anonymous (product key) downloads */
    "CREATE TABLE downloads ("
    "  device_id   INTEGER NOT NULL,"
    "  file_id     INTEGER NOT NULL REFERENCES rom_files (id) ON DELETE CASCADE,"
    "  bytes       BIGINT  NOT NULL DEFAULT 0,"
    "  completions BIGINT  NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (device_id, file_id)"
    ");"
    "CREATE INDEX downloads_file ON downloads (file_id);"

    "CREATE TABLE transfers ("
    "  id          INTEGER PRIMARY KEY,"
    "  peer        TEXT    NOT NULL,"
    "  section     INTEGER NOT NULL,"
    "  bytes       BIGINT  NOT NULL,"
    "  result      TEXT    NOT NULL,"
    "  duration_ms BIGINT  NOT NULL,"
    "  mode        TEXT    NOT NULL,"
    "  created     BIGINT  NOT NULL"
    ");",

    /* 2: how a product's release slots are identified (FOTA_SLOT_CHECK_*; 0 = byte 3). */
    "ALTER TABLE products ADD COLUMN slot_check INTEGER NOT NULL DEFAULT 0;",

    /* 3: deletion. The largest id ever deleted per table: SQLite gives a new
     * row max(id) + 1, which would hand a deleted device's (or product's) id,
     * and so its derived keys, to the next one; inserts take SQL_NEXT_ID. */
    "CREATE TABLE id_floor ("
    "  tbl  TEXT   PRIMARY KEY,"
    "  high BIGINT NOT NULL"
    ");",

    /* 4: Arduino-core products (store_sqlite_arduino.c, store_arduino.h): the
     * fleet settings of a product whose platform is arduino, the facts of
     * each served file by blob, each device's x-ESP8266-* report and the
     * upgrade it is being served. Rows go with their product and device. */
    "CREATE TABLE arduino_products ("
    "  product_id       INTEGER PRIMARY KEY REFERENCES products (id) ON DELETE CASCADE,"
    "  gzip             INTEGER NOT NULL DEFAULT 0,"
    "  core             INTEGER NOT NULL DEFAULT 31,"
    "  flash_mode       INTEGER NOT NULL DEFAULT -1,"
    "  signing_key      TEXT    NOT NULL DEFAULT '',"
    "  checkin_interval BIGINT  NOT NULL DEFAULT 3600,"
    "  confirm_after    BIGINT  NOT NULL DEFAULT 60"
    ");"
    "CREATE TABLE arduino_blobs ("
    "  sha256       TEXT    PRIMARY KEY,"
    "  md5          TEXT    NOT NULL,"
    "  gzip         INTEGER NOT NULL,"
    "  sig_form     INTEGER NOT NULL,"
    "  image_size   BIGINT  NOT NULL,"
    "  image_md5    TEXT    NOT NULL,"
    "  image_sha256 TEXT    NOT NULL,"
    "  sketch_md5   TEXT    NOT NULL,"
    "  flash_mode   INTEGER NOT NULL,"
    "  flash_size   BIGINT  NOT NULL,"
    "  sketch_size  BIGINT  NOT NULL"
    ");"
    "CREATE TABLE arduino_devices ("
    "  device_id     INTEGER PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,"
    "  product_id    INTEGER NOT NULL,"
    "  sta_mac       TEXT    NOT NULL DEFAULT '',"
    "  ap_mac        TEXT    NOT NULL DEFAULT '',"
    "  chip_id       BIGINT  NOT NULL DEFAULT -1,"
    "  free_space    BIGINT  NOT NULL DEFAULT 0,"
    "  sketch_size   BIGINT  NOT NULL DEFAULT 0,"
    "  chip_size     BIGINT  NOT NULL DEFAULT 0,"
    "  sketch_md5    TEXT    NOT NULL DEFAULT '',"
    "  sdk_version   TEXT    NOT NULL DEFAULT '',"
    "  version       TEXT    NOT NULL DEFAULT '',"
    "  mode          TEXT    NOT NULL DEFAULT '',"
    "  last_checkin  BIGINT  NOT NULL DEFAULT 0,"
    "  target        TEXT    NOT NULL DEFAULT '',"
    "  target_rom_id BIGINT  NOT NULL DEFAULT 0,"
    "  served_at     BIGINT  NOT NULL DEFAULT 0,"
    "  served_md5    TEXT    NOT NULL DEFAULT ''"
    ");"
    /* one device per MAC and product (two loops registering the same MAC) */
    "CREATE UNIQUE INDEX arduino_devices_mac ON arduino_devices (product_id, sta_mac)"
    "  WHERE sta_mac <> '';",

    /* 5: a device's reply names its command by nonce (command_find_nonce):
     * one index probe instead of every command of the device. */
    "CREATE INDEX commands_device_nonce ON commands (device_id, nonce);",

    /* 6: rollouts (server/rollout/, store_sqlite_rollout.c): one row per
     * rollout with its settings, state and counters, and one row per member
     * device with its state, command row and nonce, so a rollout resumes
     * where it stopped after a restart. Built to grow: stage (0 = the single
     * stage) and paused-style states are plain integers, a stages table can
     * key on (rollout_id, stage) and a health check can add member states. */
    "CREATE TABLE rollouts ("
    "  id           INTEGER PRIMARY KEY,"
    "  product_id   INTEGER NOT NULL,"
    "  version      TEXT    NOT NULL,"
    "  filter       TEXT    NOT NULL DEFAULT '{}',"
    "  reboot       INTEGER NOT NULL DEFAULT 0,"
    "  window_size  INTEGER NOT NULL,"
    "  timeout_s    INTEGER NOT NULL,"
    "  max_failures INTEGER NOT NULL DEFAULT -1,"
    "  state        INTEGER NOT NULL,"
    "  halted       INTEGER NOT NULL DEFAULT 0,"
    "  n_total      BIGINT  NOT NULL DEFAULT 0,"
    "  n_skipped    BIGINT  NOT NULL DEFAULT 0,"
    "  n_waiting    BIGINT  NOT NULL DEFAULT 0,"
    "  n_queued     BIGINT  NOT NULL DEFAULT 0,"
    "  n_active     BIGINT  NOT NULL DEFAULT 0,"
    "  n_delivered  BIGINT  NOT NULL DEFAULT 0,"
    "  n_acked      BIGINT  NOT NULL DEFAULT 0,"
    "  n_succeeded  BIGINT  NOT NULL DEFAULT 0,"
    "  n_failed     BIGINT  NOT NULL DEFAULT 0,"
    "  n_timed_out  BIGINT  NOT NULL DEFAULT 0,"
    "  n_deleted    BIGINT  NOT NULL DEFAULT 0,"
    "  n_cancelled  BIGINT  NOT NULL DEFAULT 0,"
    "  ms_delivered REAL,"
    "  ms_acked     REAL,"
    "  ms_finished  REAL,"
    "  created      BIGINT  NOT NULL,"
    "  updated      BIGINT  NOT NULL"
    ");"
    "CREATE INDEX rollouts_product ON rollouts (product_id, id);"
    "CREATE INDEX rollouts_state ON rollouts (state);"
    "CREATE TABLE rollout_members ("
    "  rollout_id INTEGER NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,"
    "  device_id  INTEGER NOT NULL,"
    "  stage      INTEGER NOT NULL DEFAULT 0,"
    "  state      INTEGER NOT NULL,"
    "  command_id INTEGER NOT NULL DEFAULT 0,"
    "  nonce      BIGINT  NOT NULL,"
    "  pushed     BIGINT  NOT NULL DEFAULT 0,"
    "  updated    BIGINT  NOT NULL,"
    "  PRIMARY KEY (rollout_id, device_id)"
    ");",

    /* 7: Arduino-core fleets over MQTT and explicit targets
     * (store_sqlite_arduino.c): a product's broker, and per device the
     * version an explicit upgrade installed with the product's current
     * release then (the choice holds until that release changes), its
     * Tasmota topic, last LWT and reported version. */
    "ALTER TABLE arduino_products ADD COLUMN mqtt_url TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE arduino_products ADD COLUMN mqtt_username TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE arduino_products ADD COLUMN mqtt_password TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE arduino_devices ADD COLUMN pin_version TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE arduino_devices ADD COLUMN pin_current TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE arduino_devices ADD COLUMN mqtt_topic TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE arduino_devices ADD COLUMN mqtt_lwt TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE arduino_devices ADD COLUMN mqtt_version TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE arduino_devices ADD COLUMN mqtt_seen BIGINT NOT NULL DEFAULT 0;",

    /* 8: a fleet in pages (store_sqlite_devpage.c, store_sqlite_tags.c):
     * devices' tags, and one index per order of the device lists, each
     * ending in the id that completes the order, so a page is a range of
     * one index whatever the fleet's size. (product_id, id) is
     * devices_product itself (an index holds the rowid). */
    "CREATE TABLE device_tags ("
    "  device_id INTEGER NOT NULL REFERENCES devices (id) ON DELETE CASCADE,"
    "  tag       TEXT    NOT NULL,"
    "  PRIMARY KEY (device_id, tag)"
    ");"
    "CREATE INDEX device_tags_tag ON device_tags (tag, device_id);"
    "CREATE INDEX devices_product_name ON devices (product_id, name, id, bssid);"
    "CREATE INDEX devices_product_version ON devices (product_id, rom_version, id);"
    "CREATE INDEX devices_product_active ON devices (product_id, last_active, id);"
    "CREATE INDEX devices_product_created ON devices (product_id, created, id);",
    /* 9: a product's activity per minute (store_sqlite_overview.c): upgrade
     * reports, finished downloads and bytes, counted by message_add and
     * download_add as they write, summed per bucket by product_activity;
     * minutes past FOTA_ACTIVITY_KEEP_S are dropped (the minute index). */
    "CREATE TABLE product_minutes ("
    "  product_id INTEGER NOT NULL,"
    "  minute     BIGINT  NOT NULL,"
    "  upgraded   BIGINT  NOT NULL DEFAULT 0,"
    "  failed     BIGINT  NOT NULL DEFAULT 0,"
    "  downloads  BIGINT  NOT NULL DEFAULT 0,"
    "  bytes      BIGINT  NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (product_id, minute)"
    ");"
    "CREATE INDEX product_minutes_minute ON product_minutes (minute);",
    /* 10: staged rollouts with health checks (server/rollout/,
     * store_sqlite_rollout*.c): a rollout's current stage, pause, health
     * settings and maintenance window; per member why it failed, the boots
     * and report of its health time and the version it ran when selected
     * (what a rollback goes back to); its stages (settings, counters,
     * times) and its progress samples, both keyed by the rollout. */
    "ALTER TABLE rollouts ADD COLUMN n_verifying BIGINT NOT NULL DEFAULT 0;"
    "ALTER TABLE rollouts ADD COLUMN health_s BIGINT NOT NULL DEFAULT 0;"
    "ALTER TABLE rollouts ADD COLUMN max_reboots BIGINT NOT NULL DEFAULT 0;"
    "ALTER TABLE rollouts ADD COLUMN hours_from INTEGER NOT NULL DEFAULT -1;"
    "ALTER TABLE rollouts ADD COLUMN hours_to INTEGER NOT NULL DEFAULT -1;"
    "ALTER TABLE rollouts ADD COLUMN seed BIGINT NOT NULL DEFAULT 0;"
    "ALTER TABLE rollouts ADD COLUMN rollback_of BIGINT NOT NULL DEFAULT 0;"
    "ALTER TABLE rollouts ADD COLUMN paused_at BIGINT NOT NULL DEFAULT 0;"
    "ALTER TABLE rollouts ADD COLUMN pause_reason TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE rollouts ADD COLUMN stage INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE rollout_members ADD COLUMN reason INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE rollout_members ADD COLUMN boots INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE rollout_members ADD COLUMN reported BIGINT NOT NULL DEFAULT 0;"
    "ALTER TABLE rollout_members ADD COLUMN pre_version TEXT NOT NULL DEFAULT '';"
    "CREATE TABLE rollout_stages ("
    "  rollout_id   INTEGER NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,"
    "  idx          INTEGER NOT NULL,"
    "  kind         INTEGER NOT NULL,"
    "  value        BIGINT  NOT NULL,"
    "  success      INTEGER NOT NULL,"
    "  max_failures BIGINT  NOT NULL,"
    "  approval     INTEGER NOT NULL,"
    "  fail_base    BIGINT  NOT NULL DEFAULT 0,"
    "  n_total      BIGINT  NOT NULL DEFAULT 0,"
    "  n_succeeded  BIGINT  NOT NULL DEFAULT 0,"
    "  n_failed     BIGINT  NOT NULL DEFAULT 0,"
    "  n_timed_out  BIGINT  NOT NULL DEFAULT 0,"
    "  n_deleted    BIGINT  NOT NULL DEFAULT 0,"
    "  n_cancelled  BIGINT  NOT NULL DEFAULT 0,"
    "  started      BIGINT  NOT NULL DEFAULT 0,"
    "  approved     BIGINT  NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (rollout_id, idx)"
    ");"
    "CREATE TABLE rollout_samples ("
    "  rollout_id  INTEGER NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,"
    "  t           BIGINT  NOT NULL,"
    "  n_total     BIGINT  NOT NULL,"
    "  n_skipped   BIGINT  NOT NULL,"
    "  n_waiting   BIGINT  NOT NULL,"
    "  n_queued    BIGINT  NOT NULL,"
    "  n_active    BIGINT  NOT NULL,"
    "  n_delivered BIGINT  NOT NULL,"
    "  n_acked     BIGINT  NOT NULL,"
    "  n_succeeded BIGINT  NOT NULL,"
    "  n_failed    BIGINT  NOT NULL,"
    "  n_timed_out BIGINT  NOT NULL,"
    "  n_deleted   BIGINT  NOT NULL,"
    "  n_cancelled BIGINT  NOT NULL,"
    "  n_verifying BIGINT  NOT NULL,"
    "  PRIMARY KEY (rollout_id, t)"
    ");",
    /* 11: nothing here. PostgreSQL's 11 adds the triggers that move device
     * and arduino generations (store_pg_schema.c); SQLite's are TEMP
     * triggers made at every open (store_sqlite.c). The number keeps one
     * version meaning one schema on both stores. */
    "",
    /* 12: nothing here. PostgreSQL's 12 keeps the release files in the
     * database for several instances (store_pg_blob.c); SQLite's are only in
     * DATA/blobs. */
    "",
    /* 13: nothing here. PostgreSQL's 13 adds the tables of several fotad
     * on one database (instances, device_conn, leases, cluster: server/
     * core/cluster.c); one SQLite file has one fotad. */
    "",
    /* 14: nothing here. PostgreSQL's 14 adds rollout_events, the events of
     * rollout members whose device another instance than the driver
     * holds. */
    "",
    /* 15: nothing here. PostgreSQL's 15 carries rollout requests from one
     * fotad to the one driving the rollouts (store_pg_ask.c). */
    "",
    /* 16: nothing here. PostgreSQL's 16 keeps rollout_events as batches of
     * events per row. */
    "",
    /* 17: nothing here. PostgreSQL's 17 tells the writing connection its
     * generations by a message, not by LISTEN. */
    "",
};

#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

int fota_store_sqlite_schema_version(void)
{
    return N_MIGRATIONS;
}

static int exec_sql(struct sql_store *q, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;

    if (sqlite3_exec(q->db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return 0;
    fota_str_copy(err, errlen, msg ? msg : sqlite3_errmsg(q->db));
    sqlite3_free(msg);
    return FOTA_EIO;
}

/* Returns 1 if migration v is recorded, 0 if not, FOTA_EIO on error. */
static int is_applied(struct sql_store *q, int v, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc, ret;

    rc = sqlite3_prepare_v2(q->db, "SELECT COUNT(*) FROM schema_migrations WHERE version = ?", -1,
                            &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int(st, 1, v);
        rc = sqlite3_step(st);
    }
    if (rc != SQLITE_ROW) {
        snprintf(err, errlen, "reading schema_migrations: %s", sqlite3_errmsg(q->db));
        ret = FOTA_EIO;
    } else {
        ret = sqlite3_column_int(st, 0) > 0;
    }
    sqlite3_finalize(st);
    return ret;
}

static int newest_recorded(struct sql_store *q, int *v, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(q->db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                                -1, &st, NULL);

    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        snprintf(err, errlen, "reading schema_migrations: %s", sqlite3_errmsg(q->db));
        sqlite3_finalize(st);
        return FOTA_EIO;
    }
    *v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return 0;
}

static int apply_one(struct sql_store *q, int v, char *err, size_t errlen)
{
    char sql[128];
    int rc;

    /* IMMEDIATE, then re-check inside the lock: two processes opening a new
     * database at once apply each migration exactly once. */
    if (exec_sql(q, "BEGIN IMMEDIATE", err, errlen) != 0)
        return FOTA_EIO;
    rc = is_applied(q, v, err, errlen);
    if (rc == 1) {
        exec_sql(q, "COMMIT", err, errlen);
        return 0;
    }
    if (rc < 0)
        goto fail;
    snprintf(sql, sizeof sql,
             "INSERT INTO schema_migrations (version, applied) VALUES (%d, %lld);"
             "PRAGMA user_version = %d;",
             v, (long long)fota_clock_wall_s(), v);
    if (exec_sql(q, migrations[v - 1], err, errlen) != 0 || exec_sql(q, sql, err, errlen) != 0 ||
        exec_sql(q, "COMMIT", err, errlen) != 0)
        goto fail;
    fota_store_logf(&q->base, FOTA_LOG_INFO, "applied schema migration version=%d", v);
    return 0;
fail:
    {
        size_t len = strnlen(err, errlen);
        if (len + 40 < errlen)
            snprintf(err + len, errlen - len, " (migration %d)", v);
    }
    exec_sql(q, "ROLLBACK", sql, sizeof sql);
    return FOTA_EIO;
}

int fota_store_sqlite_migrate(struct sql_store *q, char *err, size_t errlen)
{
    int have = 0;

    if (exec_sql(q,
                 "CREATE TABLE IF NOT EXISTS schema_migrations ("
                 "  version INTEGER PRIMARY KEY,"
                 "  applied BIGINT  NOT NULL)",
                 err, errlen) != 0)
        return FOTA_EIO;
    if (newest_recorded(q, &have, err, errlen) != 0)
        return FOTA_EIO;
    if (have > N_MIGRATIONS) {
        snprintf(err, errlen,
                 "database schema version %d is newer than this fotad knows (%d): upgrade fotad",
                 have, N_MIGRATIONS);
        return FOTA_EIO;
    }
    for (int v = have + 1; v <= N_MIGRATIONS; v++)
        if (apply_one(q, v, err, errlen) != 0)
            return FOTA_EIO;
    return 0;
}
