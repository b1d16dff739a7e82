/* store_sqlite_delete.c - deletion of releases, devices and products in the
 * SQLite store. Each delete is one durable transaction with explicit DELETEs
 * (no reliance on ON DELETE CASCADE, so the SQL stays the same on
 * PostgreSQL); deleted device, product and command ids are recorded in
 * id_floor so they are never handed out again (keys are derived from device
 * and product ids; waits and bulk-upgrade members may still hold a command id).
 * A delete that finds the disk full gives the disk reserve back and retries
 * once (fota_store_sqlite_make_room): an admin can always free space. */
#include <string.h>
#include "store_sqlite_int.h"

#define Q(s) fota_store_sqlite_cast(s)
#define STMT(id, sql) fota_store_sqlite_stmt(q, (id), (sql))

/* A statement with one id parameter (?1), run to completion; first as for
 * fota_store_sqlite_exec (a count, a maximum). */
static int run_id(struct sql_store *q, int sid, const char *sql, int64_t id, const char *what,
                  int64_t *first)
{
    sqlite3_stmt *st = STMT(sid, sql);

    if (st)
        sqlite3_bind_int64(st, 1, id);
    return fota_store_sqlite_exec(q, st, what, first);
}

/* Deletes the row id of a table with sql ("DELETE ... WHERE id = ?"):
 * ENOENT when there was none. */
static int delete_row(struct sql_store *q, int sid, const char *sql, int64_t id, const char *what)
{
    int rc = run_id(q, sid, sql, id, what, NULL);

    return rc == 0 && sqlite3_changes64(q->db) == 0 ? FOTA_ENOENT : rc;
}

/* ---- releases ---------------------------------------------------------- */

static int rom_delete_tx(struct sql_store *q, int64_t product_id, const char *version,
                         struct fota_rom *out)
{
    struct fota_rom rom = { 0 };
    int rc;

    rc = fota_store_sqlite_begin(q, 1);
    if (rc)
        return rc;
    rc = fota_store_sqlite_rom_read(q, product_id, version, &rom);
    if (rc == 0 && rom.current) {
        int64_t ndev = 0;
        rc = run_id(q, SQ_DEL_ROM_DEVICES, "SELECT COUNT(*) FROM devices WHERE product_id = ?",
                    product_id, "rom_delete", &ndev);
        if (rc == 0 && ndev > 0)
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
    rc = fota_store_sqlite_finish(q, rc);
    if (rc == 0 && out)
        *out = rom;
    return rc;
}

int fota_store_sqlite_rom_delete(struct fota_store *s, int64_t product_id, const char *version,
                                 struct fota_rom *out)
{
    struct sql_store *q = Q(s);
    int rc;

    fota_store_sqlite_lock(q);
    do
        rc = rom_delete_tx(q, product_id, version, out);
    while (fota_store_sqlite_make_room(q, rc, "rom_delete"));
    return fota_store_sqlite_unlock(q, rc);
}

/* ---- devices ----------------------------------------------------------- */

static int device_delete_tx(struct sql_store *q, int64_t id)
{
    int64_t maxcmd = 0;
    int rc;

    rc = fota_store_sqlite_begin(q, 1);
    if (rc)
        return rc;
    rc = run_id(q, SQ_DEL_DEV_KEYS, "DELETE FROM api_keys WHERE device_id = ?", id,
                "device_delete", NULL);
    if (rc == 0)
        rc = run_id(q, SQ_DEL_DEV_MAXCMD,
                    "SELECT COALESCE(MAX(id), 0) FROM commands WHERE device_id = ?", id,
                    "device_delete", &maxcmd);
    if (rc == 0 && maxcmd > 0)
        rc = fota_store_sqlite_floor_raise(q, "commands", maxcmd);
    if (rc == 0)
        rc = run_id(q, SQ_DEL_DEV_CMDS, "DELETE FROM commands WHERE device_id = ?", id,
                    "device_delete", NULL);
    if (rc == 0)
        rc = run_id(q, SQ_DEL_DEV_DL, "DELETE FROM downloads WHERE device_id = ?", id,
                    "device_delete", NULL);
    if (rc == 0)
        rc = run_id(q, SQ_DEL_DEV_TAGS, "DELETE FROM device_tags WHERE device_id = ?", id,
                    "device_delete", NULL);
    if (rc == 0)
        rc = delete_row(q, SQ_DEL_DEV, "DELETE FROM devices WHERE id = ?", id, "device_delete");
    if (rc == 0)
        rc = fota_store_sqlite_floor_raise(q, "devices", id);
    return fota_store_sqlite_finish(q, rc);
}

int fota_store_sqlite_device_delete(struct fota_store *s, int64_t id)
{
    struct sql_store *q = Q(s);
    int rc;

    fota_store_sqlite_lock(q);
    do
        rc = device_delete_tx(q, id);
    while (fota_store_sqlite_make_room(q, rc, "device_delete"));
    return fota_store_sqlite_unlock(q, rc);
}

/* ---- products ---------------------------------------------------------- */

static int product_delete_tx(struct sql_store *q, int64_t id)
{
    int64_t users = 0;
    int rc;

    rc = fota_store_sqlite_begin(q, 1);
    if (rc)
        return rc;
    rc = run_id(q, SQ_DEL_PRODUCT_COUNT,
                "SELECT (SELECT COUNT(*) FROM devices WHERE product_id = ?1)"
                " + (SELECT COUNT(*) FROM roms WHERE product_id = ?1)",
                id, "product_delete", &users);
    if (rc == 0 && users > 0)
        rc = FOTA_EBUSY;
    if (rc == 0)
        rc = run_id(q, SQ_DEL_PRODUCT_KEYS, "DELETE FROM api_keys WHERE product_id = ?", id,
                    "product_delete", NULL);
    if (rc == 0)
        rc = run_id(q, SQ_DEL_PRODUCT_MINUTES, "DELETE FROM product_minutes WHERE product_id = ?",
                    id, "product_delete", NULL);
    if (rc == 0)
        rc = delete_row(q, SQ_DEL_PRODUCT, "DELETE FROM products WHERE id = ?", id,
                        "product_delete");
    if (rc == 0)
        rc = fota_store_sqlite_floor_raise(q, "products", id);
    return fota_store_sqlite_finish(q, rc);
}

int fota_store_sqlite_product_delete(struct fota_store *s, int64_t id)
{
    struct sql_store *q = Q(s);
    int rc;

    fota_store_sqlite_lock(q);
    do
        rc = product_delete_tx(q, id);
    while (fota_store_sqlite_make_room(q, rc, "product_delete"));
    return fota_store_sqlite_unlock(q, rc);
}
