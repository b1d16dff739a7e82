/* store_pg_delete.c - deletion of releases, devices and products in the
 * PostgreSQL store (store_sqlite_delete.c's transactions in PostgreSQL's
 * form). Each delete is one durable transaction with explicit DELETEs that
 * first holds the row it hangs on: a release or product delete the
 * product's row (fota_store_pg_product_lock), so its check (a current
 * release with devices, a product with devices or releases) and its
 * deletes see no device or release arrive in between; a device delete the
 * device's row, so no key or command of it arrives in between. A deadlock or
 * serialization failure runs the transaction again (FOTA_PG_TRIES in all).
 * Identities never hand out an id twice, so no id floor is kept. */
#include <string.h>
#include "store_pg_int.h"

/* A statement with one id parameter ($1), run to completion; first as for
 * fota_store_pg_exec (a count). */
static int run_id(struct pg_conn *c, int sid, const char *sql, int64_t id, const char *what,
                  int64_t *first)
{
    struct pg_params a = { 0 };

    fota_store_pg_param_int(&a, id);
    return fota_store_pg_exec(c, sid, sql, &a, what, first);
}

/* ---- releases ---------------------------------------------------------- */

static int rom_delete_tx(struct pg_conn *c, int64_t product_id, const char *version,
                         struct fota_rom *out)
{
    struct fota_rom rom = { 0 };
    int rc;

    if ((rc = fota_store_pg_begin(c, 1)) != 0)
        return rc;
    rc = fota_store_pg_product_lock(c, product_id, "rom_delete");
    if (rc == 0)
        rc = fota_store_pg_rom_read(c, product_id, version, &rom);
    if (rc == 0 && rom.current) {
        int64_t ndev = 0;
        rc = run_id(c, PQ_DEL_ROM_DEVICES, "SELECT COUNT(*) FROM devices WHERE product_id = $1",
                    product_id, "rom_delete", &ndev);
        if (rc == 0 && ndev > 0)
            rc = FOTA_EBUSY;
    }
    if (rc == 0)
        rc = run_id(c, PQ_DEL_ROM_DL,
                    "DELETE FROM downloads WHERE file_id IN"
                    " (SELECT id FROM rom_files WHERE rom_id = $1)",
                    rom.id, "rom_delete", NULL);
    if (rc == 0)
        rc = run_id(c, PQ_DEL_ROM_FILE_ROWS, "DELETE FROM rom_files WHERE rom_id = $1", rom.id,
                    "rom_delete", NULL);
    if (rc == 0)
        rc = run_id(c, PQ_DEL_ROM, "DELETE FROM roms WHERE id = $1", rom.id, "rom_delete", NULL);
    rc = fota_store_pg_finish(c, rc);
    if (rc == 0 && out)
        *out = rom;
    return rc;
}

int fota_store_pg_rom_delete(struct fota_store *s, int64_t product_id, const char *version,
                             struct fota_rom *out)
{
    struct pg_conn *c;
    int rc;

    if ((rc = fota_store_pg_enter(s, "rom_delete", &c)) != 0)
        return rc;
    rc = FOTA_EAGAIN;
    for (int i = 0; i < FOTA_PG_TRIES && rc == FOTA_EAGAIN; i++)
        rc = rom_delete_tx(c, product_id, version, out);
    return fota_store_pg_leave(c, rc);
}

/* ---- devices ----------------------------------------------------------- */

static int device_delete_tx(struct pg_conn *c, int64_t id)
{
    int64_t found = 0;
    int rc;

    if ((rc = fota_store_pg_begin(c, 1)) != 0)
        return rc;
    /* The device's row first: a key or command being inserted for it (their
     * foreign key shares the row) finishes before, or fails after. */
    rc = run_id(c, PQ_DEL_DEV_LOCK, "SELECT 1 FROM devices WHERE id = $1 FOR UPDATE", id,
                "device_delete", &found);
    if (rc == 0 && !found)
        rc = FOTA_ENOENT;
    if (rc == 0)
        rc = run_id(c, PQ_DEL_DEV_KEYS, "DELETE FROM api_keys WHERE device_id = $1", id,
                    "device_delete", NULL);
    if (rc == 0)
        rc = run_id(c, PQ_DEL_DEV_CMDS, "DELETE FROM commands WHERE device_id = $1", id,
                    "device_delete", NULL);
    if (rc == 0)
        rc = run_id(c, PQ_DEL_DEV_DL, "DELETE FROM downloads WHERE device_id = $1", id,
                    "device_delete", NULL);
    if (rc == 0)
        rc = run_id(c, PQ_DEL_DEV_TAGS, "DELETE FROM device_tags WHERE device_id = $1", id,
                    "device_delete", NULL);
    if (rc == 0)
        rc = run_id(c, PQ_DEL_DEV, "DELETE FROM devices WHERE id = $1", id, "device_delete",
                    NULL);
    return fota_store_pg_finish(c, rc);
}

int fota_store_pg_device_delete(struct fota_store *s, int64_t id)
{
    struct pg_conn *c;
    int rc;

    if ((rc = fota_store_pg_enter(s, "device_delete", &c)) != 0)
        return rc;
    rc = FOTA_EAGAIN;
    for (int i = 0; i < FOTA_PG_TRIES && rc == FOTA_EAGAIN; i++)
        rc = device_delete_tx(c, id);
    return fota_store_pg_leave(c, rc);
}

/* ---- products ---------------------------------------------------------- */

static int product_delete_tx(struct pg_conn *c, int64_t id)
{
    int64_t users = 0;
    int rc;

    if ((rc = fota_store_pg_begin(c, 1)) != 0)
        return rc;
    rc = fota_store_pg_product_lock(c, id, "product_delete");
    if (rc == 0)
        rc = run_id(c, PQ_DEL_PRODUCT_COUNT,
                    "SELECT (SELECT COUNT(*) FROM devices WHERE product_id = $1)"
                    " + (SELECT COUNT(*) FROM roms WHERE product_id = $1)",
                    id, "product_delete", &users);
    if (rc == 0 && users > 0)
        rc = FOTA_EBUSY;
    if (rc == 0)
        rc = run_id(c, PQ_DEL_PRODUCT_KEYS, "DELETE FROM api_keys WHERE product_id = $1", id,
                    "product_delete", NULL);
    if (rc == 0)
        rc = run_id(c, PQ_DEL_PRODUCT_MINUTES,
                    "DELETE FROM product_minutes WHERE product_id = $1", id, "product_delete",
                    NULL);
    if (rc == 0) {
        rc = run_id(c, PQ_DEL_PRODUCT, "DELETE FROM products WHERE id = $1", id,
                    "product_delete", NULL);
        if (rc == FOTA_ENOENT)   /* 23503: a row still names the product */
            rc = FOTA_EBUSY;
    }
    return fota_store_pg_finish(c, rc);
}

int fota_store_pg_product_delete(struct fota_store *s, int64_t id)
{
    struct pg_conn *c;
    int rc;

    if ((rc = fota_store_pg_enter(s, "product_delete", &c)) != 0)
        return rc;
    rc = FOTA_EAGAIN;
    for (int i = 0; i < FOTA_PG_TRIES && rc == FOTA_EAGAIN; i++)
        rc = product_delete_tx(c, id);
    return fota_store_pg_leave(c, rc);
}
