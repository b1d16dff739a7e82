/* store_sqlite_delete.c - deletion of releases, devices and products in the
 * SQLite store. Each delete is one durable transaction with explicit DELETEs
 * (no reliance on ON DELETE CASCADE, so the SQL stays the same on
 * PostgreSQL); deleted device, product and command ids are recorded in
 * id_floor so they are never handed out again (keys are derived from device
 * and product ids; waits and bulk-upgrade members may still hold a command id). */
#include <string.h>
#include "store_sqlite_int.h"

#define Q(s) fota_store_sqlite_cast(s)
#define STMT(id, sql) fota_store_sqlite_stmt(q, (id), (sql))

/* Runs st (bound by the caller) to completion; *changed gets its row count. */
static int run(struct sql_store *q, sqlite3_stmt *st, const char *what, int64_t *changed)
{
    int rc = fota_store_sqlite_exec(q, st, what, NULL);

    if (changed)
        *changed = rc == 0 ? sqlite3_changes64(q->db) : 0;
    return rc;
}

/* A statement with one id parameter, run to completion. */
static int run_id(struct sql_store *q, int sid, const char *sql, int64_t id, const char *what,
                  int64_t *changed)
{
    sqlite3_stmt *st = STMT(sid, sql);

    if (st)
        sqlite3_bind_int64(st, 1, id);
    return run(q, st, what, changed);
}

/* Records that id was deleted from table (the largest one is kept). */
static int floor_raise(struct sql_store *q, const char *table, int64_t id)
{
    sqlite3_stmt *st = STMT(SQ_DEL_FLOOR,
                            "INSERT INTO id_floor (tbl, high) VALUES (?, ?)"
                            " ON CONFLICT (tbl) DO UPDATE SET high = CASE"
                            " WHEN excluded.high > id_floor.high THEN excluded.high"
                            " ELSE id_floor.high END");

    if (st) {
        sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, id);
    }
    return run(q, st, "id_floor", NULL);
}

/* Ends the transaction: commit when rc is 0, else roll back. */
static int finish(struct sql_store *q, int rc)
{
    if (rc == 0)
        return fota_store_sqlite_commit(q);
    fota_store_sqlite_rollback(q);
    return rc;
}

/* ---- releases ---------------------------------------------------------- */

/* Reads the release row (and its files) inside the open transaction. */
static int rom_read(struct sql_store *q, int64_t product_id, const char *version,
                    struct fota_rom *r)
{
    sqlite3_stmt *st = STMT(SQ_DEL_ROM_FIND,
                            "SELECT id, product_id, version, codename, changelog, is_current,"
                            " created FROM roms WHERE product_id = ? AND version = ?");
    int rc;

    memset(r, 0, sizeof *r);
    if (!st)
        return FOTA_EIO;
    sqlite3_bind_int64(st, 1, product_id);
    fota_store_sqlite_bind_text(st, 2, version, FOTA_VERSION_MAX);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        fota_store_sqlite_read_rom(st, r);
        rc = 0;
    } else {
        rc = rc == SQLITE_DONE ? FOTA_ENOENT : fota_store_sqlite_err(q, rc, "rom_delete");
    }
    fota_store_sqlite_done(st);
    return rc ? rc : fota_store_sqlite_read_files(q, r);
}

int fota_store_sqlite_rom_delete(struct fota_store *s, int64_t product_id, const char *version,
                                 struct fota_rom *out)
{
    struct sql_store *q = Q(s);
    struct fota_rom rom;
    int rc;

    fota_store_sqlite_lock(q);
    rc = fota_store_sqlite_begin(q, 1);
    if (rc)
        goto out;
    rc = rom_read(q, product_id, version, &rom);
    if (rc == 0 && rom.current) {
        sqlite3_stmt *st = STMT(SQ_DEL_ROM_DEVICES,
                                "SELECT COUNT(*) FROM devices WHERE product_id = ?");
        int64_t ndev = 1;
        if (st) {
            sqlite3_bind_int64(st, 1, product_id);
            if (sqlite3_step(st) == SQLITE_ROW)
                ndev = sqlite3_column_int64(st, 0);
            fota_store_sqlite_done(st);
        }
        if (ndev > 0)
            rc = FOTA_EBUSY;
    }
    if (rc == 0)
        rc = run_id(q, SQ_DEL_ROM_DL,
                    "DELETE FROM downloads WHERE file_id IN"
                    " (SELECT id FROM rom_files WHERE rom_id = ?)",
                    rom.id, "rom_delete", NULL);
    if (rc == 0)
        rc = run_id(q, SQ_DEL_ROM_FILE_ROWS, "DELETE FROM rom_files WHERE rom_id = ?", rom.id,
                    "rom_delete", NULL);
    if (rc == 0)
        rc = run_id(q, SQ_DEL_ROM, "DELETE FROM roms WHERE id = ?", rom.id, "rom_delete", NULL);
    rc = finish(q, rc);
    if (rc == 0 && out)
        *out = rom;
out:
    return fota_store_sqlite_unlock(q, rc);
}

/* ---- devices ----------------------------------------------------------- */

/* The largest command id of device id (0 if none). */
static int max_command(struct sql_store *q, int64_t id, int64_t *out)
{
    sqlite3_stmt *st = STMT(SQ_DEL_DEV_MAXCMD,
                            "SELECT COALESCE(MAX(id), 0) FROM commands WHERE device_id = ?");
    int rc;

    *out = 0;
    if (!st)
        return FOTA_EIO;
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = 0;
    } else {
        rc = fota_store_sqlite_err(q, rc, "device_delete");
    }
    fota_store_sqlite_done(st);
    return rc;
}

int fota_store_sqlite_device_delete(struct fota_store *s, int64_t id)
{
    struct sql_store *q = Q(s);
    int64_t gone = 0, maxcmd = 0;
    int rc;

    fota_store_sqlite_lock(q);
    rc = fota_store_sqlite_begin(q, 1);
    if (rc)
        goto out;
    rc = run_id(q, SQ_DEL_DEV_KEYS, "DELETE FROM api_keys WHERE device_id = ?", id,
                "device_delete", NULL);
    if (rc == 0)
        rc = max_command(q, id, &maxcmd);
    if (rc == 0 && maxcmd > 0)
        rc = floor_raise(q, "commands", maxcmd);
    if (rc == 0)
        rc = run_id(q, SQ_DEL_DEV_CMDS, "DELETE FROM commands WHERE device_id = ?", id,
                    "device_delete", NULL);
    if (rc == 0)
        rc = run_id(q, SQ_DEL_DEV_DL, "DELETE FROM downloads WHERE device_id = ?", id,
                    "device_delete", NULL);
    if (rc == 0)
        rc = run_id(q, SQ_DEL_DEV, "DELETE FROM devices WHERE id = ?", id, "device_delete", &gone);
    if (rc == 0 && gone == 0)
        rc = FOTA_ENOENT;
    if (rc == 0)
        rc = floor_raise(q, "devices", id);
    rc = finish(q, rc);
out:
    return fota_store_sqlite_unlock(q, rc);
}

/* ---- products ---------------------------------------------------------- */

int fota_store_sqlite_product_delete(struct fota_store *s, int64_t id)
{
    struct sql_store *q = Q(s);
    sqlite3_stmt *st;
    int64_t gone = 0;
    int rc;

    fota_store_sqlite_lock(q);
    rc = fota_store_sqlite_begin(q, 1);
    if (rc)
        goto out;
    st = STMT(SQ_DEL_PRODUCT_COUNT,
              "SELECT (SELECT COUNT(*) FROM devices WHERE product_id = ?),"
              " (SELECT COUNT(*) FROM roms WHERE product_id = ?)");
    if (!st) {
        rc = FOTA_EIO;
    } else {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            rc = sqlite3_column_int64(st, 0) + sqlite3_column_int64(st, 1) > 0 ? FOTA_EBUSY : 0;
        else
            rc = fota_store_sqlite_err(q, rc, "product_delete");
        fota_store_sqlite_done(st);
    }
    if (rc == 0)
        rc = run_id(q, SQ_DEL_PRODUCT_KEYS, "DELETE FROM api_keys WHERE product_id = ?", id,
                    "product_delete", NULL);
    if (rc == 0)
        rc = run_id(q, SQ_DEL_PRODUCT, "DELETE FROM products WHERE id = ?", id,
                    "product_delete", &gone);
    if (rc == 0 && gone == 0)
        rc = FOTA_ENOENT;
    if (rc == 0)
        rc = floor_raise(q, "products", id);
    rc = finish(q, rc);
out:
    return fota_store_sqlite_unlock(q, rc);
}
