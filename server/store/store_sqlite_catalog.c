/* store_sqlite_catalog.c - products and releases in the SQLite store.
 *
 * A release and its files are inserted in one durable transaction; the
 * current release is switched in one transaction guarded by a partial unique
 * index (at most one is_current row per product). */
#include <stdlib.h>
#include <string.h>
#include "clock.h"
#include "fota_str.h"
#include "store_sqlite_int.h"

#define Q(s) fota_store_sqlite_cast(s)
#define STMT(id, sql) fota_store_sqlite_stmt(q, (id), (sql))

/* ---- products ---------------------------------------------------------- */

/* A product's row; COUNTS: its two device counts (product_get), or two zeros
 * (product_head). */
#define PRODUCT_SELECT(COUNTS)                                                                \
    "SELECT p.id, p.name, p.serial, p.status, p.description, p.flash_map, p.created,"       \
    COUNTS                                                                                    \
    " COALESCE((SELECT r.version FROM roms r WHERE r.product_id = p.id AND r.is_current <> 0), '')," \
    " p.slot_check"                                                                          \
    " FROM products p"
#define PRODUCT_COLS                                                                          \
    PRODUCT_SELECT(" (SELECT COUNT(*) FROM devices d WHERE d.product_id = p.id),"           \
                   " (SELECT COUNT(*) FROM devices d WHERE d.product_id = p.id"            \
                   " AND d.activated <> 0),")
#define PRODUCT_HEAD_COLS PRODUCT_SELECT(" 0, 0,")

static void read_product(sqlite3_stmt *st, void *row)
{
    struct fota_product *p = row;

    memset(p, 0, sizeof *p);
    p->id = sqlite3_column_int64(st, 0);
    fota_store_sqlite_col_text(st, 1, p->name, sizeof p->name);
    fota_store_sqlite_col_text(st, 2, p->serial, sizeof p->serial);
    fota_store_sqlite_col_text(st, 3, p->status, sizeof p->status);
    fota_store_sqlite_col_text(st, 4, p->description, sizeof p->description);
    p->flash_map = sqlite3_column_int(st, 5);
    p->created = sqlite3_column_int64(st, 6);
    p->devices_total = sqlite3_column_int64(st, 7);
    p->devices_activated = sqlite3_column_int64(st, 8);
    fota_store_sqlite_col_text(st, 9, p->current_version, sizeof p->current_version);
    p->slot_check = sqlite3_column_int(st, 10);
}

int fota_store_sqlite_product_create(struct fota_store *s, struct fota_product *p)
{
    struct sql_store *q = Q(s);
    sqlite3_stmt *st;
    int64_t id = 0, now = fota_clock_wall_s();
    int rc;

    if ((rc = fota_store_product_check(p)) != 0)
        return rc;
    fota_store_sqlite_lock(q);
    st = STMT(SQ_PRODUCT_INSERT,
              "INSERT INTO products (id, name, serial, status, description, flash_map, created,"
              " slot_check) VALUES (" SQL_NEXT_ID("products") ", ?, ?, ?, ?, ?, ?, ?) RETURNING id");
    if (st) {
        SQL_BIND_STR(st, 1, p->name);
        SQL_BIND_STR(st, 2, p->serial);
        SQL_BIND_STR(st, 3, p->status);
        SQL_BIND_STR(st, 4, p->description);
        sqlite3_bind_int(st, 5, p->flash_map);
        sqlite3_bind_int64(st, 6, now);
        sqlite3_bind_int(st, 7, p->slot_check);
    }
    rc = fota_store_sqlite_exec_tx(q, st, 1, "product_create", &id);
    if (rc == 0) {
        p->id = id;
        p->created = now;
    }
    return fota_store_sqlite_unlock(q, rc);
}

int fota_store_sqlite_product_get(struct fota_store *s, int64_t id, struct fota_product *out)
{
    struct sql_store *q = Q(s);
    sqlite3_stmt *st;

    fota_store_sqlite_lock(q);
    st = STMT(SQ_PRODUCT_GET, PRODUCT_COLS " WHERE p.id = ?");
    if (st)
        sqlite3_bind_int64(st, 1, id);
    return fota_store_sqlite_unlock(q, fota_store_sqlite_one(q, st, read_product, out, "product_get"));
}

int fota_store_sqlite_product_head(struct fota_store *s, int64_t id, struct fota_product *out)
{
    struct sql_store *q = Q(s);
    sqlite3_stmt *st;

    fota_store_sqlite_lock(q);
    st = STMT(SQ_PRODUCT_HEAD, PRODUCT_HEAD_COLS " WHERE p.id = ?");
    if (st)
        sqlite3_bind_int64(st, 1, id);
    return fota_store_sqlite_unlock(q, fota_store_sqlite_one(q, st, read_product, out, "product_head"));
}

int fota_store_sqlite_product_find(struct fota_store *s, const char *name, struct fota_product *out)
{
    struct sql_store *q = Q(s);
    sqlite3_stmt *st;

    fota_store_sqlite_lock(q);
    st = STMT(SQ_PRODUCT_FIND, PRODUCT_COLS " WHERE p.name = ?");
    if (st)
        fota_store_sqlite_bind_text(st, 1, name, FOTA_NAME_MAX);
    return fota_store_sqlite_unlock(q, fota_store_sqlite_one(q, st, read_product, out, "product_find"));
}

int fota_store_sqlite_product_list(struct fota_store *s, struct fota_product **out, size_t *n)
{
    struct sql_store *q = Q(s);
    sqlite3_stmt *st;

    fota_store_sqlite_lock(q);
    st = STMT(SQ_PRODUCT_LIST, PRODUCT_COLS " ORDER BY p.id");
    return fota_store_sqlite_unlock(q, fota_store_sqlite_collect(q, st, read_product, sizeof **out,
                                                                 (void **)out, n, "product_list"));
}

int fota_store_sqlite_product_heads(struct fota_store *s, struct fota_product **out, size_t *n)
{
    struct sql_store *q = Q(s);
    sqlite3_stmt *st;

    fota_store_sqlite_lock(q);
    st = STMT(SQ_PRODUCT_HEADS, PRODUCT_HEAD_COLS " ORDER BY p.id");
    return fota_store_sqlite_unlock(q, fota_store_sqlite_collect(q, st, read_product, sizeof **out,
                                                                 (void **)out, n, "product_heads"));
}

/* ---- releases ---------------------------------------------------------- */

#define ROM_COLS "SELECT id, product_id, version, codename, changelog, is_current, created FROM roms"

static void read_rom(sqlite3_stmt *st, void *row)
{
    struct fota_rom *r = row;

    memset(r, 0, offsetof(struct fota_rom, files));
    r->id = sqlite3_column_int64(st, 0);
    r->product_id = sqlite3_column_int64(st, 1);
    fota_store_sqlite_col_text(st, 2, r->version, sizeof r->version);
    fota_store_sqlite_col_text(st, 3, r->codename, sizeof r->codename);
    fota_store_sqlite_col_text(st, 4, r->changelog, sizeof r->changelog);
    r->current = sqlite3_column_int(st, 5) != 0;
    r->created = sqlite3_column_int64(st, 6);
}

/* r's file rows (r->id set) in file order, at most FOTA_ROM_MAX_FILES. */
static int read_files(struct sql_store *q, struct fota_rom *r)
{
    sqlite3_stmt *st = STMT(SQ_ROM_FILES,
                            "SELECT id, name, sha256, size, slot, download_count FROM rom_files"
                            " WHERE rom_id = ? ORDER BY file_index");
    int rc;

    r->nfiles = 0;
    if (!st)
        return FOTA_EIO;
    sqlite3_bind_int64(st, 1, r->id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && r->nfiles < FOTA_ROM_MAX_FILES) {
        struct fota_rom_file *f = &r->files[r->nfiles++];
        memset(f, 0, sizeof *f);
        f->id = sqlite3_column_int64(st, 0);
        fota_store_sqlite_col_text(st, 1, f->name, sizeof f->name);
        fota_store_sqlite_col_text(st, 2, f->sha256, sizeof f->sha256);
        f->size = sqlite3_column_int64(st, 3);
        f->slot = sqlite3_column_int(st, 4);
        f->download_count = sqlite3_column_int64(st, 5);
    }
    rc = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? 0 : fota_store_sqlite_err(q, rc, "rom_files");
    fota_store_sqlite_done(st);
    return rc;
}

/* The release st selects (at most one row), with its files. */
static int rom_one(struct sql_store *q, sqlite3_stmt *st, struct fota_rom *out, const char *what)
{
    int rc = fota_store_sqlite_one(q, st, read_rom, out, what);

    return rc ? rc : read_files(q, out);
}

int fota_store_sqlite_rom_read(struct sql_store *q, int64_t product_id, const char *version,
                               struct fota_rom *out)
{
    sqlite3_stmt *st = STMT(SQ_ROM_GET, ROM_COLS " WHERE product_id = ? AND version = ?");

    if (st) {
        sqlite3_bind_int64(st, 1, product_id);
        fota_store_sqlite_bind_text(st, 2, version, FOTA_VERSION_MAX);
    }
    return rom_one(q, st, out, "rom_get");
}

int fota_store_sqlite_rom_create(struct fota_store *s, struct fota_rom *rom)
{
    struct sql_store *q = Q(s);
    int64_t now = fota_clock_wall_s(), id = 0, fid[FOTA_ROM_MAX_FILES];
    sqlite3_stmt *st;
    int rc;

    if (!rom->version[0] || rom->nfiles > FOTA_ROM_MAX_FILES)
        return FOTA_EINVAL;
    fota_store_sqlite_lock(q);
    rc = fota_store_sqlite_begin(q, 1);
    if (rc)
        goto out;
    st = STMT(SQ_ROM_INSERT,
              "INSERT INTO roms (product_id, version, codename, changelog, is_current, created)"
              " VALUES (?, ?, ?, ?, 0, ?) RETURNING id");
    if (st) {
        sqlite3_bind_int64(st, 1, rom->product_id);
        SQL_BIND_STR(st, 2, rom->version);
        SQL_BIND_STR(st, 3, rom->codename);
        SQL_BIND_STR(st, 4, rom->changelog);
        sqlite3_bind_int64(st, 5, now);
    }
    rc = fota_store_sqlite_exec(q, st, "rom_create", &id);
    for (size_t i = 0; rc == 0 && i < rom->nfiles; i++) {
        const struct fota_rom_file *f = &rom->files[i];
        st = STMT(SQ_ROM_FILE_INSERT,
                  "INSERT INTO rom_files (rom_id, file_index, name, sha256, size, slot, download_count)"
                  " VALUES (?, ?, ?, ?, ?, ?, 0) RETURNING id");
        if (st) {
            sqlite3_bind_int64(st, 1, id);
            sqlite3_bind_int(st, 2, (int)i);
            SQL_BIND_STR(st, 3, f->name);
            SQL_BIND_STR(st, 4, f->sha256);
            sqlite3_bind_int64(st, 5, f->size);
            sqlite3_bind_int(st, 6, f->slot);
        }
        rc = fota_store_sqlite_exec(q, st, "rom_create", &fid[i]);
    }
    rc = fota_store_sqlite_finish(q, rc);
    if (rc == 0)
        fota_store_rom_created(rom, id, now, fid);
out:
    return fota_store_sqlite_unlock(q, rc);
}

int fota_store_sqlite_rom_get(struct fota_store *s, int64_t product_id, const char *version,
                              struct fota_rom *out)
{
    struct sql_store *q = Q(s);

    fota_store_sqlite_lock(q);
    return fota_store_sqlite_unlock(q, fota_store_sqlite_rom_read(q, product_id, version, out));
}

int fota_store_sqlite_rom_current(struct fota_store *s, int64_t product_id, struct fota_rom *out)
{
    struct sql_store *q = Q(s);
    sqlite3_stmt *st;

    fota_store_sqlite_lock(q);
    st = STMT(SQ_ROM_CURRENT, ROM_COLS " WHERE product_id = ? AND is_current <> 0");
    if (st)
        sqlite3_bind_int64(st, 1, product_id);
    return fota_store_sqlite_unlock(q, rom_one(q, st, out, "rom_current"));
}

int fota_store_sqlite_rom_list(struct fota_store *s, int64_t product_id, struct fota_rom **out,
                               size_t *n)
{
    struct sql_store *q = Q(s);
    sqlite3_stmt *st;
    int rc;

    fota_store_sqlite_lock(q);
    st = STMT(SQ_ROM_LIST, ROM_COLS " WHERE product_id = ? ORDER BY id DESC");
    if (st)
        sqlite3_bind_int64(st, 1, product_id);
    rc = fota_store_sqlite_collect(q, st, read_rom, sizeof **out, (void **)out, n, "rom_list");
    for (size_t i = 0; rc == 0 && i < *n; i++)
        rc = read_files(q, &(*out)[i]);
    if (rc != 0) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return fota_store_sqlite_unlock(q, rc);
}

int fota_store_sqlite_rom_set_current(struct fota_store *s, int64_t product_id, const char *version)
{
    struct sql_store *q = Q(s);
    sqlite3_stmt *st;
    int64_t id = 0;
    int rc;

    fota_store_sqlite_lock(q);
    rc = fota_store_sqlite_begin(q, 1);
    if (rc)
        goto out;
    st = STMT(SQ_ROM_ID, "SELECT id FROM roms WHERE product_id = ? AND version = ?");
    if (st) {
        sqlite3_bind_int64(st, 1, product_id);
        fota_store_sqlite_bind_text(st, 2, version, FOTA_VERSION_MAX);
    }
    rc = fota_store_sqlite_exec(q, st, "rom_set_current", &id);
    if (rc == 0 && id == 0)
        rc = FOTA_ENOENT;
    if (rc == 0) {
        /* clear first: the partial unique index allows one current row */
        st = STMT(SQ_ROM_CLEAR_CURRENT,
                  "UPDATE roms SET is_current = 0 WHERE product_id = ? AND is_current <> 0");
        if (st)
            sqlite3_bind_int64(st, 1, product_id);
        rc = fota_store_sqlite_exec(q, st, "rom_set_current", NULL);
    }
    if (rc == 0) {
        st = STMT(SQ_ROM_SET_CURRENT, "UPDATE roms SET is_current = 1 WHERE id = ?");
        if (st)
            sqlite3_bind_int64(st, 1, id);
        rc = fota_store_sqlite_exec(q, st, "rom_set_current", NULL);
    }
    rc = fota_store_sqlite_finish(q, rc);
out:
    return fota_store_sqlite_unlock(q, rc);
}

static void read_hash(sqlite3_stmt *st, void *row)
{
    fota_store_sqlite_col_text(st, 0, row, FOTA_HASH_HEX);
}

int fota_store_sqlite_blob_refs(struct fota_store *s, char (**out)[FOTA_HASH_HEX], size_t *n)
{
    struct sql_store *q = Q(s);
    sqlite3_stmt *st;

    fota_store_sqlite_lock(q);
    st = STMT(SQ_BLOB_REFS, "SELECT DISTINCT sha256 FROM rom_files ORDER BY sha256");
    return fota_store_sqlite_unlock(q, fota_store_sqlite_collect(q, st, read_hash, sizeof **out,
                                                                 (void **)out, n, "blob_refs"));
}
