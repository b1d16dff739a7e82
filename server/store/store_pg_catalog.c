/* store_pg_catalog.c - products and releases in the PostgreSQL store
 * (store_sqlite_catalog.c's statements in PostgreSQL's form).
 *
 * A release and its files are inserted in one durable transaction; the
 * current release is switched in one transaction that holds the product's
 * row (FOR UPDATE: writers of one product's catalog take turns, as SQLite's
 * one writer does), guarded by a partial unique index (at most one
 * is_current row per product). A release is read with its files in one
 * statement, so it is never seen half deleted. */
#include <stdlib.h>
#include <string.h>
#include "clock.h"
#include "fota_str.h"
#include "store_pg_int.h"
#include "xmalloc.h"

/* ---- products ---------------------------------------------------------- */

/* A product's row; COUNTS: its two device counts (product_get), or two zeros
 * (product_head). */
#define PRODUCT_SELECT(COUNTS)                                                                \
    "SELECT p.id, p.name, p.serial, p.status, p.description, p.flash_map, p.created,"       \
    COUNTS                                                                                    \
    " COALESCE((SELECT r.version FROM roms r"                                               \
    "           WHERE r.product_id = p.id AND r.is_current <> 0), ''),"                     \
    " p.slot_check"                                                                          \
    " FROM products p"
#define PRODUCT_COLS                                                                          \
    PRODUCT_SELECT(" (SELECT COUNT(*) FROM devices d WHERE d.product_id = p.id),"           \
                   " (SELECT COUNT(*) FROM devices d WHERE d.product_id = p.id"            \
                   " AND d.activated <> 0),")
#define PRODUCT_HEAD_COLS PRODUCT_SELECT(" 0, 0,")

static void read_product(const PGresult *r, int row, void *out)
{
    struct fota_product *p = out;

    memset(p, 0, sizeof *p);
    p->id = fota_store_pg_col_int(r, row, 0);
    fota_store_pg_col_text(r, row, 1, p->name, sizeof p->name);
    fota_store_pg_col_text(r, row, 2, p->serial, sizeof p->serial);
    fota_store_pg_col_text(r, row, 3, p->status, sizeof p->status);
    fota_store_pg_col_text(r, row, 4, p->description, sizeof p->description);
    p->flash_map = (int)fota_store_pg_col_int(r, row, 5);
    p->created = fota_store_pg_col_int(r, row, 6);
    p->devices_total = fota_store_pg_col_int(r, row, 7);
    p->devices_activated = fota_store_pg_col_int(r, row, 8);
    fota_store_pg_col_text(r, row, 9, p->current_version, sizeof p->current_version);
    p->slot_check = (int)fota_store_pg_col_int(r, row, 10);
}

int fota_store_pg_product_create(struct fota_store *s, struct fota_product *p)
{
    int64_t id = 0, now = fota_clock_wall_s();
    struct pg_params a = { 0 };
    struct pg_conn *c;
    int rc;

    if ((rc = fota_store_product_check(p)) != 0)
        return rc;
    if ((rc = fota_store_pg_enter(s, "product_create", &c)) != 0)
        return rc;
    PG_PARAM_STR(&a, p->name);
    PG_PARAM_STR(&a, p->serial);
    PG_PARAM_STR(&a, p->status);
    PG_PARAM_STR(&a, p->description);
    fota_store_pg_param_int(&a, p->flash_map);
    fota_store_pg_param_int(&a, now);
    fota_store_pg_param_int(&a, p->slot_check);
    rc = fota_store_pg_exec_tx(c, PQ_PRODUCT_INSERT,
                               "INSERT INTO products (name, serial, status, description,"
                               " flash_map, created, slot_check)"
                               " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                               &a, 1, "product_create", &id);
    if (rc == 0) {
        p->id = id;
        p->created = now;
    }
    return fota_store_pg_leave(c, rc);
}

int fota_store_pg_product_get(struct fota_store *s, int64_t id, struct fota_product *out)
{
    struct pg_params a = { 0 };
    struct pg_conn *c;
    int rc;

    if ((rc = fota_store_pg_enter(s, "product_get", &c)) != 0)
        return rc;
    fota_store_pg_param_int(&a, id);
    rc = fota_store_pg_one(c, PQ_PRODUCT_GET, PRODUCT_COLS " WHERE p.id = $1", &a, read_product,
                           out, "product_get");
    return fota_store_pg_leave(c, rc);
}

int fota_store_pg_product_head(struct fota_store *s, int64_t id, struct fota_product *out)
{
    struct pg_params a = { 0 };
    struct pg_conn *c;
    int rc;

    if ((rc = fota_store_pg_enter(s, "product_head", &c)) != 0)
        return rc;
    fota_store_pg_param_int(&a, id);
    rc = fota_store_pg_one(c, PQ_PRODUCT_HEAD, PRODUCT_HEAD_COLS " WHERE p.id = $1", &a,
                           read_product, out, "product_head");
    return fota_store_pg_leave(c, rc);
}

int fota_store_pg_product_find(struct fota_store *s, const char *name, struct fota_product *out)
{
    struct pg_params a = { 0 };
    struct pg_conn *c;
    int rc;

    if ((rc = fota_store_pg_enter(s, "product_find", &c)) != 0)
        return rc;
    fota_store_pg_param_text(&a, name, FOTA_NAME_MAX);
    rc = fota_store_pg_one(c, PQ_PRODUCT_FIND, PRODUCT_COLS " WHERE p.name = $1", &a,
                           read_product, out, "product_find");
    return fota_store_pg_leave(c, rc);
}

int fota_store_pg_product_list(struct fota_store *s, struct fota_product **out, size_t *n)
{
    struct pg_conn *c;
    int rc;

    *out = NULL;
    *n = 0;
    if ((rc = fota_store_pg_enter(s, "product_list", &c)) != 0)
        return rc;
    rc = fota_store_pg_collect(c, PQ_PRODUCT_LIST, PRODUCT_COLS " ORDER BY p.id", NULL,
                               read_product, sizeof **out, (void **)out, n, "product_list");
    return fota_store_pg_leave(c, rc);
}

int fota_store_pg_product_heads(struct fota_store *s, struct fota_product **out, size_t *n)
{
    struct pg_conn *c;
    int rc;

    *out = NULL;
    *n = 0;
    if ((rc = fota_store_pg_enter(s, "product_heads", &c)) != 0)
        return rc;
    rc = fota_store_pg_collect(c, PQ_PRODUCT_HEADS, PRODUCT_HEAD_COLS " ORDER BY p.id", NULL,
                               read_product, sizeof **out, (void **)out, n, "product_heads");
    return fota_store_pg_leave(c, rc);
}

int fota_store_pg_product_lock(struct pg_conn *c, int64_t id, const char *what)
{
    struct pg_params a = { 0 };
    int64_t found = 0;
    int rc;

    fota_store_pg_param_int(&a, id);
    rc = fota_store_pg_exec(c, PQ_PRODUCT_LOCK, "SELECT 1 FROM products WHERE id = $1 FOR UPDATE",
                            &a, what, &found);
    return rc == 0 && !found ? FOTA_ENOENT : rc;
}

/* ---- releases ---------------------------------------------------------- */

/* A release and its files, one row per file (a release without files: one
 * row whose file columns are NULL), in file order. */
#define ROM_COLS                                                                        \
    "SELECT r.id, r.product_id, r.version, r.codename, r.changelog, r.is_current,"    \
    " r.created, f.id, f.name, f.sha256, f.size, f.slot, f.download_count"            \
    " FROM roms r LEFT JOIN rom_files f ON f.rom_id = r.id"

/* Reads the releases of ROM_COLS's rows (ordered by release, then file)
 * into out[0..cap), with their files; returns how many. */
static size_t read_roms(const PGresult *r, struct fota_rom *out, size_t cap)
{
    int rows = PQntuples(r);
    size_t n = 0;

    for (int i = 0; i < rows; i++) {
        int64_t id = fota_store_pg_col_int(r, i, 0);
        struct fota_rom *rom = n ? &out[n - 1] : NULL;

        if (!rom || rom->id != id) {
            if (n == cap)
                break;
            rom = &out[n++];
            memset(rom, 0, offsetof(struct fota_rom, files));
            rom->id = id;
            rom->product_id = fota_store_pg_col_int(r, i, 1);
            fota_store_pg_col_text(r, i, 2, rom->version, sizeof rom->version);
            fota_store_pg_col_text(r, i, 3, rom->codename, sizeof rom->codename);
            fota_store_pg_col_text(r, i, 4, rom->changelog, sizeof rom->changelog);
            rom->current = fota_store_pg_col_int(r, i, 5) != 0;
            rom->created = fota_store_pg_col_int(r, i, 6);
        }
        if (PQgetisnull(r, i, 7) || rom->nfiles == FOTA_ROM_MAX_FILES)
            continue;
        struct fota_rom_file *f = &rom->files[rom->nfiles++];
        memset(f, 0, sizeof *f);
        f->id = fota_store_pg_col_int(r, i, 7);
        fota_store_pg_col_text(r, i, 8, f->name, sizeof f->name);
        fota_store_pg_col_text(r, i, 9, f->sha256, sizeof f->sha256);
        f->size = fota_store_pg_col_int(r, i, 10);
        f->slot = (int)fota_store_pg_col_int(r, i, 11);
        f->download_count = fota_store_pg_col_int(r, i, 12);
    }
    return n;
}

/* The one release statement id selects (with a's parameters), into out. */
static int rom_one(struct pg_conn *c, int id, const char *sql, const struct pg_params *a,
                   struct fota_rom *out, const char *what)
{
    int rc;
    PGresult *r = fota_store_pg_run(c, id, sql, a, what, &rc);

    if (!r)
        return rc;
    rc = read_roms(r, out, 1) == 1 ? 0 : FOTA_ENOENT;
    PQclear(r);
    return rc;
}

int fota_store_pg_rom_read(struct pg_conn *c, int64_t product_id, const char *version,
                           struct fota_rom *out)
{
    struct pg_params a = { 0 };

    fota_store_pg_param_int(&a, product_id);
    fota_store_pg_param_text(&a, version, FOTA_VERSION_MAX);
    return rom_one(c, PQ_ROM_GET,
                   ROM_COLS " WHERE r.product_id = $1 AND r.version = $2 ORDER BY f.file_index",
                   &a, out, "rom_get");
}

/* rom_create's transaction: the release row, then its files, their ids
 * into id and fid. */
static int rom_create_tx(struct pg_conn *c, const struct fota_rom *rom, int64_t now, int64_t *id,
                         int64_t *fid)
{
    struct pg_params a;
    int rc;

    if ((rc = fota_store_pg_begin(c, 1)) != 0)
        return rc;
    memset(&a, 0, sizeof a);
    fota_store_pg_param_int(&a, rom->product_id);
    PG_PARAM_STR(&a, rom->version);
    PG_PARAM_STR(&a, rom->codename);
    PG_PARAM_STR(&a, rom->changelog);
    fota_store_pg_param_int(&a, now);
    rc = fota_store_pg_exec(c, PQ_ROM_INSERT,
                            "INSERT INTO roms (product_id, version, codename, changelog,"
                            " is_current, created) VALUES ($1, $2, $3, $4, 0, $5) RETURNING id",
                            &a, "rom_create", id);
    for (size_t i = 0; rc == 0 && i < rom->nfiles; i++) {
        const struct fota_rom_file *f = &rom->files[i];
        memset(&a, 0, sizeof a);
        fota_store_pg_param_int(&a, *id);
        fota_store_pg_param_int(&a, (int64_t)i);
        PG_PARAM_STR(&a, f->name);
        PG_PARAM_STR(&a, f->sha256);
        fota_store_pg_param_int(&a, f->size);
        fota_store_pg_param_int(&a, f->slot);
        rc = fota_store_pg_exec(c, PQ_ROM_FILE_INSERT,
                                "INSERT INTO rom_files (rom_id, file_index, name, sha256, size,"
                                " slot, download_count) VALUES ($1, $2, $3, $4, $5, $6, 0)"
                                " RETURNING id",
                                &a, "rom_create", &fid[i]);
    }
    return fota_store_pg_finish(c, rc);
}

int fota_store_pg_rom_create(struct fota_store *s, struct fota_rom *rom)
{
    int64_t now = fota_clock_wall_s(), id = 0, fid[FOTA_ROM_MAX_FILES];
    struct pg_conn *c;
    int rc;

    if (!rom->version[0] || rom->nfiles > FOTA_ROM_MAX_FILES)
        return FOTA_EINVAL;
    if ((rc = fota_store_pg_enter(s, "rom_create", &c)) != 0)
        return rc;
    rc = FOTA_EAGAIN;
    for (int i = 0; i < FOTA_PG_TRIES && rc == FOTA_EAGAIN; i++)
        rc = rom_create_tx(c, rom, now, &id, fid);
    if (rc == 0)
        fota_store_rom_created(rom, id, now, fid);
    return fota_store_pg_leave(c, rc);
}

int fota_store_pg_rom_get(struct fota_store *s, int64_t product_id, const char *version,
                          struct fota_rom *out)
{
    struct pg_conn *c;
    int rc;

    if ((rc = fota_store_pg_enter(s, "rom_get", &c)) != 0)
        return rc;
    return fota_store_pg_leave(c, fota_store_pg_rom_read(c, product_id, version, out));
}

int fota_store_pg_rom_current(struct fota_store *s, int64_t product_id, struct fota_rom *out)
{
    struct pg_params a = { 0 };
    struct pg_conn *c;
    int rc;

    if ((rc = fota_store_pg_enter(s, "rom_current", &c)) != 0)
        return rc;
    fota_store_pg_param_int(&a, product_id);
    rc = rom_one(c, PQ_ROM_CURRENT,
                 ROM_COLS " WHERE r.product_id = $1 AND r.is_current <> 0 ORDER BY f.file_index",
                 &a, out, "rom_current");
    return fota_store_pg_leave(c, rc);
}

int fota_store_pg_rom_list(struct fota_store *s, int64_t product_id, struct fota_rom **out,
                           size_t *n)
{
    struct pg_params a = { 0 };
    struct pg_conn *c;
    PGresult *r;
    size_t cap;
    int rc;

    *out = NULL;
    *n = 0;
    if ((rc = fota_store_pg_enter(s, "rom_list", &c)) != 0)
        return rc;
    fota_store_pg_param_int(&a, product_id);
    r = fota_store_pg_run(c, PQ_ROM_LIST,
                          ROM_COLS " WHERE r.product_id = $1 ORDER BY r.id DESC, f.file_index",
                          &a, "rom_list", &rc);
    if (r) {
        cap = 0;
        for (int i = 0; i < PQntuples(r); i++)   /* a release's rows are together */
            if (i == 0 || fota_store_pg_col_int(r, i, 0) != fota_store_pg_col_int(r, i - 1, 0))
                cap++;
        *out = fota_xcalloc(cap ? cap : 1, sizeof **out);
        *n = read_roms(r, *out, cap);
        PQclear(r);
    }
    return fota_store_pg_leave(c, rc);
}

static int set_current_tx(struct pg_conn *c, int64_t product_id, const char *version)
{
    struct pg_params a = { 0 };
    int64_t id = 0;
    int rc;

    if ((rc = fota_store_pg_begin(c, 1)) != 0)
        return rc;
    rc = fota_store_pg_product_lock(c, product_id, "rom_set_current");
    if (rc == 0) {
        fota_store_pg_param_int(&a, product_id);
        fota_store_pg_param_text(&a, version, FOTA_VERSION_MAX);
        rc = fota_store_pg_exec(c, PQ_ROM_ID,
                                "SELECT id FROM roms WHERE product_id = $1 AND version = $2", &a,
                                "rom_set_current", &id);
    }
    if (rc == 0 && id == 0)
        rc = FOTA_ENOENT;
    if (rc == 0) {
        /* clear first: the partial unique index allows one current row */
        memset(&a, 0, sizeof a);
        fota_store_pg_param_int(&a, product_id);
        rc = fota_store_pg_exec(c, PQ_ROM_CLEAR_CURRENT,
                                "UPDATE roms SET is_current = 0"
                                " WHERE product_id = $1 AND is_current <> 0",
                                &a, "rom_set_current", NULL);
    }
    if (rc == 0) {
        memset(&a, 0, sizeof a);
        fota_store_pg_param_int(&a, id);
        rc = fota_store_pg_exec(c, PQ_ROM_SET_CURRENT,
                                "UPDATE roms SET is_current = 1 WHERE id = $1", &a,
                                "rom_set_current", NULL);
    }
    return fota_store_pg_finish(c, rc);
}

int fota_store_pg_rom_set_current(struct fota_store *s, int64_t product_id, const char *version)
{
    struct pg_conn *c;
    int rc;

    if ((rc = fota_store_pg_enter(s, "rom_set_current", &c)) != 0)
        return rc;
    rc = FOTA_EAGAIN;
    for (int i = 0; i < FOTA_PG_TRIES && rc == FOTA_EAGAIN; i++)
        rc = set_current_tx(c, product_id, version);
    return fota_store_pg_leave(c, rc);
}

static void read_hash(const PGresult *r, int row, void *out)
{
    fota_store_pg_col_text(r, row, 0, out, FOTA_HASH_HEX);
}

int fota_store_pg_blob_refs(struct fota_store *s, char (**out)[FOTA_HASH_HEX], size_t *n)
{
    struct pg_conn *c;
    int rc;

    *out = NULL;
    *n = 0;
    if ((rc = fota_store_pg_enter(s, "blob_refs", &c)) != 0)
        return rc;
    /* sha256 is COLLATE "C": strcmp order. */
    rc = fota_store_pg_collect(c, PQ_BLOB_REFS,
                               "SELECT DISTINCT sha256 FROM rom_files ORDER BY sha256", NULL,
                               read_hash, sizeof **out, (void **)out, n, "blob_refs");
    return fota_store_pg_leave(c, rc);
}
