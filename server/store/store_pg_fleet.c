/* store_pg_fleet.c - devices, keys, messages and the download and transfer
 * ledgers in the PostgreSQL store (store_sqlite_fleet.c's statements in
 * PostgreSQL's form; commands: store_pg_command.c).
 *
 * Devices and keys are written durably; the high-rate rows (presence,
 * reported device fields, messages, ledgers, transfers) commit with
 * synchronous_commit off, where SQLite's commit is not fsynced either
 * (docs/store.md). A presence batch is one UPDATE over unnest()ed arrays,
 * whatever its size, a batch of reports three statements. Message ids are
 * handed out under an advisory lock held to the commit, so they are in
 * commit order and a follower reading "after id N" skips none; each insert
 * rings fota_msg in its commit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "clock.h"
#include "store_pg_int.h"
#include "xmalloc.h"

/* ---- devices ----------------------------------------------------------- */

#define DEVICE_COLS                                                                           \
    "SELECT id, product_id, name, bssid, activated, activated_at, rom_version, running_slot," \
    " last_active, online, created, key_generation FROM devices"

void fota_store_pg_read_device(const PGresult *r, int row, void *out)
{
    struct fota_device *d = out;

    memset(d, 0, sizeof *d);
    d->id = fota_store_pg_col_int(r, row, 0);
    d->product_id = fota_store_pg_col_int(r, row, 1);
    fota_store_pg_col_text(r, row, 2, d->name, sizeof d->name);
    fota_store_pg_col_text(r, row, 3, d->bssid, sizeof d->bssid);
    d->activated = (int)fota_store_pg_col_int(r, row, 4);
    d->activated_at = fota_store_pg_col_int(r, row, 5);
    fota_store_pg_col_text(r, row, 6, d->rom_version, sizeof d->rom_version);
    d->running_slot = (int)fota_store_pg_col_int(r, row, 7);
    d->last_active = fota_store_pg_col_int(r, row, 8);
    d->online = (int)fota_store_pg_col_int(r, row, 9);
    d->created = fota_store_pg_col_int(r, row, 10);
    d->key_generation = (int)fota_store_pg_col_int(r, row, 11);
}

int fota_store_pg_device_create(struct fota_store *s, struct fota_device *d)
{
    int64_t now = fota_clock_wall_s(), id = 0;
    struct pg_params a = { 0 };
    struct pg_conn *c;
    int rc;

    if ((rc = fota_store_pg_enter(s, "device_create", &c)) != 0)
        return rc;
    fota_store_pg_param_int(&a, d->product_id);
    PG_PARAM_STR(&a, d->name);
    PG_PARAM_STR(&a, d->bssid);
    fota_store_pg_param_int(&a, d->activated);
    fota_store_pg_param_int(&a, d->activated_at);
    PG_PARAM_STR(&a, d->rom_version);
    fota_store_pg_param_int(&a, d->running_slot);
    fota_store_pg_param_int(&a, d->last_active);
    fota_store_pg_param_int(&a, d->online);
    fota_store_pg_param_int(&a, now);
    fota_store_pg_param_int(&a, d->key_generation);
    rc = fota_store_pg_exec_tx(c, PQ_DEVICE_INSERT,
                               "INSERT INTO devices (product_id, name, bssid, activated,"
                               " activated_at, rom_version, running_slot, last_active, online,"
                               " created, key_generation)"
                               " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
                               &a, 1, "device_create", &id);
    if (rc == 0) {
        d->id = id;
        d->created = now;
    }
    return fota_store_pg_leave(c, rc);
}

enum { DC_ID, DC_PRODUCT, DC_NAME, DC_BSSID, DC_ACTIVATED, DC_ACTIVATED_AT, DC_ROM, DC_SLOT,
       DC_LAST_ACTIVE, DC_ONLINE, DC_KEYGEN, DC_NCOL };
enum { KC_HASH, KC_KIND, KC_PRODUCT, KC_DEVICE, KC_NCOL };

/* One INSERT of device_create_many: the n columns as array parameters $1..$n,
 * the creation time as $n+1. */
static int insert_arrays(struct pg_conn *c, int stmt, const char *sql, struct pg_array_param *col,
                         int n, int64_t now)
{
    struct pg_params a = { 0 };
    for (int k = 0; k < n; k++)
        fota_store_pg_param_array(&a, &col[k]);
    fota_store_pg_param_int(&a, now);
    return fota_store_pg_exec(c, stmt, sql, &a, "device_create_many", NULL);
}

/* device_create_many's transaction: the ids first (from the identity's
 * sequence, ascending, so device i's is known before the insert, as
 * command_create_many's), then the devices and their keys, one statement
 * each over arrays. */
static int create_many_tx(struct pg_conn *c, struct fota_device *d, size_t n, int64_t now,
                          fota_store_device_keys_fn keys, void *ud)
{
    struct pg_array_param dc[DC_NCOL], kc[KC_NCOL];
    struct pg_params a = { 0 };
    PGresult *r;
    int rc = fota_store_pg_begin(c, 1);

    for (int k = 0; k < DC_NCOL; k++)
        fota_store_pg_array_init(&dc[k], k == DC_NAME || k == DC_BSSID || k == DC_ROM
                                             ? FOTA_PG_TEXT_ARRAY : FOTA_PG_INT8_ARRAY);
    for (int k = 0; k < KC_NCOL; k++)
        fota_store_pg_array_init(&kc[k], k == KC_HASH ? FOTA_PG_TEXT_ARRAY : FOTA_PG_INT8_ARRAY);
    if (rc == 0) {
        fota_store_pg_param_int(&a, (int64_t)n);
        r = fota_store_pg_run(c, PQ_DEVICE_IDS,
                              "SELECT nextval(pg_get_serial_sequence('devices', 'id')) AS id"
                              " FROM generate_series(1, $1) ORDER BY id",
                              &a, "device_create_many", &rc);
        if (r && (size_t)PQntuples(r) != n)
            rc = FOTA_EIO;
        for (size_t i = 0; r && rc == 0 && i < n; i++) {
            d[i].id = fota_store_pg_col_int(r, (int)i, 0);
            d[i].created = now;
        }
        PQclear(r);
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct fota_key ks[FOTA_DEVICE_KEYS];
        const int64_t v[DC_NCOL] = { [DC_ID] = d[i].id, [DC_PRODUCT] = d[i].product_id,
                                     [DC_ACTIVATED] = d[i].activated,
                                     [DC_ACTIVATED_AT] = d[i].activated_at,
                                     [DC_SLOT] = d[i].running_slot,
                                     [DC_LAST_ACTIVE] = d[i].last_active,
                                     [DC_ONLINE] = d[i].online,
                                     [DC_KEYGEN] = d[i].key_generation };
        for (int k = 0; k < DC_NCOL; k++)
            if (k != DC_NAME && k != DC_BSSID && k != DC_ROM)
                fota_store_pg_array_int(&dc[k], v[k]);
        PG_ARRAY_STR(&dc[DC_NAME], d[i].name);
        PG_ARRAY_STR(&dc[DC_BSSID], d[i].bssid);
        PG_ARRAY_STR(&dc[DC_ROM], d[i].rom_version);
        memset(ks, 0, sizeof ks);
        keys(ud, &d[i], ks);
        for (int j = 0; j < FOTA_DEVICE_KEYS; j++) {
            if (!ks[j].hash[0])
                rc = FOTA_EINVAL;
            PG_ARRAY_STR(&kc[KC_HASH], ks[j].hash);
            fota_store_pg_array_int(&kc[KC_KIND], ks[j].kind);
            fota_store_pg_array_int(&kc[KC_PRODUCT], d[i].product_id);
            fota_store_pg_array_int(&kc[KC_DEVICE], d[i].id);
        }
    }
    if (rc == 0)
        rc = insert_arrays(c, PQ_DEVICE_INSERT_MANY,
                           "INSERT INTO devices (id, product_id, name, bssid, activated,"
                           " activated_at, rom_version, running_slot, last_active, online,"
                           " key_generation, created)"
                           " SELECT *, $12 FROM unnest($1::int8[], $2::int8[], $3::text[],"
                           " $4::text[], $5::int8[], $6::int8[], $7::text[], $8::int8[],"
                           " $9::int8[], $10::int8[], $11::int8[])",
                           dc, DC_NCOL, now);
    if (rc == 0)
        rc = insert_arrays(c, PQ_KEY_INSERT_MANY,
                           "INSERT INTO api_keys (hash, kind, product_id, device_id, created)"
                           " SELECT *, $5 FROM unnest($1::text[], $2::int8[], $3::int8[],"
                           " $4::int8[])",
                           kc, KC_NCOL, now);
    for (int k = 0; k < DC_NCOL; k++)
        fota_store_pg_array_free(&dc[k]);
    for (int k = 0; k < KC_NCOL; k++)
        fota_store_pg_array_free(&kc[k]);
    return fota_store_pg_finish(c, rc);
}

int fota_store_pg_device_create_many(struct fota_store *s, struct fota_device *d, size_t n,
                                     fota_store_device_keys_fn keys, void *ud)
{
    int64_t now = fota_clock_wall_s();
    struct pg_conn *c;
    int rc;

    if (n == 0 || n > FOTA_DEVICE_BATCH_MAX || !keys)
        return FOTA_EINVAL;
    if ((rc = fota_store_pg_enter(s, "device_create_many", &c)) != 0)
        return rc;
    rc = FOTA_EAGAIN;
    for (int i = 0; i < FOTA_PG_TRIES && rc == FOTA_EAGAIN; i++)
        rc = create_many_tx(c, d, n, now, keys, ud);
    return fota_store_pg_leave(c, rc);
}

int fota_store_pg_device_get(struct fota_store *s, int64_t id, struct fota_device *out)
{
    struct pg_params a = { 0 };
    struct pg_conn *c;
    int rc;

    if ((rc = fota_store_pg_enter(s, "device_get", &c)) != 0)
        return rc;
    fota_store_pg_param_int(&a, id);
    rc = fota_store_pg_one(c, PQ_DEVICE_GET, DEVICE_COLS " WHERE id = $1", &a,
                           fota_store_pg_read_device, out, "device_get");
    return fota_store_pg_leave(c, rc);
}

int fota_store_pg_device_list(struct fota_store *s, int64_t product_id, struct fota_device **out,
                              size_t *n)
{
    struct pg_params a = { 0 };
    struct pg_conn *c;
    int rc;

    *out = NULL;
    *n = 0;
    if ((rc = fota_store_pg_enter(s, "device_list", &c)) != 0)
        return rc;
    if (product_id) {
        fota_store_pg_param_int(&a, product_id);
        rc = fota_store_pg_collect(c, PQ_DEVICE_LIST,
                                   DEVICE_COLS " WHERE product_id = $1 ORDER BY id", &a,
                                   fota_store_pg_read_device, sizeof **out, (void **)out, n,
                                   "device_list");
    } else {
        rc = fota_store_pg_collect(c, PQ_DEVICE_LIST_ALL, DEVICE_COLS " ORDER BY id", NULL,
                                   fota_store_pg_read_device, sizeof **out, (void **)out, n,
                                   "device_list");
    }
    return fota_store_pg_leave(c, rc);
}

int fota_store_pg_device_update(struct fota_store *s, const struct fota_device *d,
                                unsigned fields)
{
    struct pg_params a = { 0 };
    struct pg_conn *c;
    int rc;

    if ((rc = fota_store_pg_enter(s, "device_update", &c)) != 0)
        return rc;
    c->hot = !(fields & FOTA_DEV_F_KEYGEN);   /* only keys are cached (store.h) */
    fota_store_pg_param_int(&a, !!(fields & FOTA_DEV_F_NAME));
    PG_PARAM_STR(&a, d->name);
    fota_store_pg_param_int(&a, !!(fields & FOTA_DEV_F_BSSID));
    PG_PARAM_STR(&a, d->bssid);
    fota_store_pg_param_int(&a, !!(fields & FOTA_DEV_F_ACTIVATION));
    fota_store_pg_param_int(&a, d->activated);
    fota_store_pg_param_int(&a, d->activated_at);
    fota_store_pg_param_int(&a, !!(fields & FOTA_DEV_F_ROM_VERSION));
    PG_PARAM_STR(&a, d->rom_version);
    fota_store_pg_param_int(&a, !!(fields & FOTA_DEV_F_SLOT));
    fota_store_pg_param_int(&a, d->running_slot);
    fota_store_pg_param_int(&a, !!(fields & FOTA_DEV_F_PRESENCE));
    fota_store_pg_param_int(&a, d->last_active);
    fota_store_pg_param_int(&a, d->online);
    fota_store_pg_param_int(&a, !!(fields & FOTA_DEV_F_KEYGEN));
    fota_store_pg_param_int(&a, d->key_generation);
    fota_store_pg_param_int(&a, d->id);
    /* One statement for every mask: each column keeps its value unless its
     * flag is set. Every column is a target of the SET list, so the device's
     * generation moves with any update (the UPDATE OF trigger), as in
     * SQLite. Admin fields and KEYGEN are durable; what the device reports
     * is written like its report message (store.h). */
    rc = fota_store_pg_exec_tx(c, PQ_DEVICE_UPDATE,
                               "UPDATE devices SET"
                               " name = CASE WHEN $1 <> 0 THEN $2 ELSE name END,"
                               " bssid = CASE WHEN $3 <> 0 THEN $4 ELSE bssid END,"
                               " activated = CASE WHEN $5 <> 0 THEN $6 ELSE activated END,"
                               " activated_at = CASE WHEN $5 <> 0 THEN $7 ELSE activated_at END,"
                               " rom_version = CASE WHEN $8 <> 0 THEN $9 ELSE rom_version END,"
                               " running_slot = CASE WHEN $10 <> 0 THEN $11 ELSE running_slot END,"
                               " last_active = CASE WHEN $12 <> 0 THEN $13 ELSE last_active END,"
                               " online = CASE WHEN $12 <> 0 THEN $14 ELSE online END,"
                               " key_generation = CASE WHEN $15 <> 0 THEN $16"
                               " ELSE key_generation END"
                               " WHERE id = $17",
                               &a, (fields & ~(unsigned)FOTA_DEV_F_REPORTED) != 0, "device_update",
                               NULL);
    if (rc == 0 && c->changes == 0)
        rc = FOTA_ENOENT;
    return fota_store_pg_leave(c, rc);
}

/* A PostgreSQL array literal of integers ("{1,2,3}") in a growing
 * buffer, bound in text form as an int8[] parameter; the caller frees s
 * once the statement has run. */
struct int_array {
    char *s;
    size_t len, cap;
};

static void array_room(struct int_array *b, size_t need)
{
    if (b->cap - b->len >= need)
        return;
    b->cap = b->cap ? b->cap * 2 : 256;
    b->s = fota_xrealloc(b->s, b->cap);
}

static void array_put(struct int_array *b, int64_t v)
{
    array_room(b, 24);   /* a separator, 20 digits with the sign, the NUL */
    b->len += (size_t)snprintf(b->s + b->len, b->cap - b->len, "%c%lld", b->len ? ',' : '{',
                               (long long)v);
}

static void array_bind(struct pg_params *p, struct int_array *b)
{
    int i = p->n++;

    if (i >= FOTA_PG_PARAMS_MAX)
        abort();   /* a statement with more parameters than the array: a bug, not input */
    array_room(b, 3);
    if (!b->len)
        b->s[b->len++] = '{';
    b->s[b->len++] = '}';
    b->s[b->len] = '\0';
    p->types[i] = FOTA_PG_INT8_ARRAY;
    p->values[i] = b->s;
    p->lengths[i] = 0;
    p->formats[i] = 0;
}

int fota_store_pg_device_presence_batch(struct fota_store *s, const struct fota_presence *rows,
                                        size_t n)
{
    struct int_array ids = { 0 }, active = { 0 }, online = { 0 };
    struct pg_params a = { 0 };
    struct pg_conn *c;
    int rc;

    if (n == 0)
        return 0;
    if ((rc = fota_store_pg_enter(s, "device_presence_batch", &c)) != 0)
        return rc;
    c->hot = 1;
    for (size_t i = 0; i < n; i++) {
        array_put(&ids, rows[i].device_id);
        array_put(&active, rows[i].last_active);
        array_put(&online, rows[i].online);
    }
    array_bind(&a, &ids);
    array_bind(&a, &active);
    array_bind(&a, &online);
    /* One statement for the batch; unknown ids join nothing. A device named
     * twice (offline, then back) takes its last row, as the rows written in
     * order do in SQLite: an UPDATE ... FROM would take any one of them.
     * Only last_active and online are set: the device's generation stays. */
    if (!s->instance_id) {
        rc = fota_store_pg_exec_tx(c, PQ_DEVICE_PRESENCE,
                                   "UPDATE devices d SET last_active = v.la, online = v.o"
                                   " FROM (SELECT DISTINCT ON (id) id, la, o"
                                   " FROM unnest($1::int8[], $2::int8[], $3::int8[])"
                                   " WITH ORDINALITY AS u(id, la, o, k) ORDER BY id, k DESC) AS v"
                                   " WHERE d.id = v.id",
                                   &a, 0, "device_presence_batch", NULL);
    } else {
        /* Several instances (store.h, instance_id): in the same statement,
         * a device marked online is held by this instance (device_conn; a
         * row of its own already there costs one index probe, a ping
         * writes nothing more), one marked offline is let go, and goes
         * offline only while no other instance holds it: a device that
         * reconnected elsewhere before this instance's batch saw it leave
         * stays online. All parts read the snapshot the statement began
         * with. */
        fota_store_pg_param_int(&a, s->instance_id);
        rc = fota_store_pg_exec_tx(
            c, PQ_DEVICE_PRESENCE_HELD,
            "WITH v AS (SELECT DISTINCT ON (id) id, la, o"
            " FROM unnest($1::int8[], $2::int8[], $3::int8[])"
            " WITH ORDINALITY AS u(id, la, o, k) ORDER BY id, k DESC),"
            " held AS (INSERT INTO device_conn (device_id, instance_id, conn_id, since)"
            " SELECT v.id, $4, 0, v.la FROM v JOIN devices d ON d.id = v.id"
            " WHERE v.o <> 0 AND NOT EXISTS (SELECT 1 FROM device_conn h"
            " WHERE h.device_id = v.id AND h.instance_id = $4)"
            " ON CONFLICT (device_id) DO UPDATE SET instance_id = excluded.instance_id,"
            " conn_id = excluded.conn_id, since = excluded.since),"
            " gone AS (DELETE FROM device_conn h USING v"
            " WHERE h.device_id = v.id AND v.o = 0 AND h.instance_id = $4)"
            " UPDATE devices d SET last_active = v.la, online = v.o FROM v"
            " WHERE d.id = v.id AND (v.o <> 0 OR NOT EXISTS (SELECT 1 FROM device_conn h"
            " WHERE h.device_id = v.id AND h.instance_id <> $4))",
            &a, 0, "device_presence_batch", NULL);
    }
    free(ids.s);
    free(active.s);
    free(online.s);
    return fota_store_pg_leave(c, rc);
}

/* ---- keys -------------------------------------------------------------- */

static void read_key(const PGresult *r, int row, void *out)
{
    struct fota_key *k = out;

    memset(k, 0, sizeof *k);
    fota_store_pg_col_text(r, row, 0, k->hash, sizeof k->hash);
    k->kind = (int)fota_store_pg_col_int(r, row, 1);
    k->product_id = fota_store_pg_col_int(r, row, 2);
    k->device_id = fota_store_pg_col_int(r, row, 3);
    k->created = fota_store_pg_col_int(r, row, 4);
}

int fota_store_pg_key_create(struct fota_store *s, const struct fota_key *k)
{
    struct pg_params a = { 0 };
    struct pg_conn *c;
    int rc;

    if (!k->hash[0])
        return FOTA_EINVAL;
    if ((rc = fota_store_pg_enter(s, "key_create", &c)) != 0)
        return rc;
    PG_PARAM_STR(&a, k->hash);
    fota_store_pg_param_int(&a, k->kind);
    fota_store_pg_param_id(&a, k->product_id);
    fota_store_pg_param_id(&a, k->device_id);
    fota_store_pg_param_int(&a, k->created ? k->created : fota_clock_wall_s());
    rc = fota_store_pg_exec_tx(c, PQ_KEY_INSERT,
                               "INSERT INTO api_keys (hash, kind, product_id, device_id, created)"
                               " VALUES ($1, $2, $3, $4, $5)",
                               &a, 1, "key_create", NULL);
    return fota_store_pg_leave(c, rc);
}

int fota_store_pg_key_lookup(struct fota_store *s, const char *hash_hex, struct fota_key *out)
{
    struct pg_params a = { 0 };
    struct pg_conn *c;
    int rc;

    if ((rc = fota_store_pg_enter(s, "key_lookup", &c)) != 0)
        return rc;
    fota_store_pg_param_text(&a, hash_hex, FOTA_HASH_HEX);
    rc = fota_store_pg_one(c, PQ_KEY_LOOKUP,
                           "SELECT hash, kind, COALESCE(product_id, 0), COALESCE(device_id, 0),"
                           " created FROM api_keys WHERE hash = $1",
                           &a, read_key, out, "key_lookup");
    return fota_store_pg_leave(c, rc);
}

int fota_store_pg_key_delete_for_device(struct fota_store *s, int64_t device_id, int kind)
{
    struct pg_params a = { 0 };
    struct pg_conn *c;
    int rc;

    if ((rc = fota_store_pg_enter(s, "key_delete_for_device", &c)) != 0)
        return rc;
    fota_store_pg_param_int(&a, device_id);
    fota_store_pg_param_int(&a, kind);
    rc = fota_store_pg_exec_tx(c, PQ_KEY_DELETE,
                               "DELETE FROM api_keys WHERE device_id = $1 AND ($2 = 0 OR kind = $2)",
                               &a, 1, "key_delete_for_device", NULL);
    return fota_store_pg_leave(c, rc);
}

/* ---- activity per minute (store_sqlite_overview.c's writes) ------------- */

int fota_store_pg_minutes_prune(struct pg_conn *c)
{
    int64_t now_min = fota_clock_wall_s() / 60;
    struct pg_params a = { 0 };
    int rc;

    if (__atomic_load_n(&c->q->minutes_pruned, __ATOMIC_RELAXED) == now_min)
        return 0;
    fota_store_pg_param_int(&a, now_min - FOTA_ACTIVITY_KEEP_S / 60);
    rc = fota_store_pg_exec(c, PQ_MINUTE_PRUNE, "DELETE FROM product_minutes WHERE minute < $1",
                            &a, "activity prune", NULL);
    if (rc == 0)
        __atomic_store_n(&c->q->minutes_pruned, now_min, __ATOMIC_RELAXED);
    return rc;
}

int fota_store_pg_activity_reports(struct pg_conn *c, int64_t product_id, int64_t when,
                                   int64_t upgraded, int64_t failed)
{
    struct pg_params a = { 0 };
    int rc;

    fota_store_pg_param_int(&a, product_id);
    fota_store_pg_param_int(&a, when / 60);
    fota_store_pg_param_int(&a, upgraded);
    fota_store_pg_param_int(&a, failed);
    rc = fota_store_pg_exec(c, PQ_MINUTE_COUNT,
                            "INSERT INTO product_minutes (product_id, minute, upgraded, failed)"
                            " VALUES ($1, $2, $3, $4) ON CONFLICT (product_id, minute) DO UPDATE SET"
                            " upgraded = product_minutes.upgraded + excluded.upgraded,"
                            " failed = product_minutes.failed + excluded.failed",
                            &a, "activity", NULL);
    return rc ? rc : fota_store_pg_minutes_prune(c);
}

static int activity_download(struct pg_conn *c, int64_t file_id, int64_t bytes,
                             int64_t completed)
{
    struct pg_params a = { 0 };
    int rc;

    /* The file's product through its release; no row for an unknown file. */
    fota_store_pg_param_int(&a, fota_clock_wall_s() / 60);
    fota_store_pg_param_int(&a, completed);
    fota_store_pg_param_int(&a, bytes);
    fota_store_pg_param_int(&a, file_id);
    rc = fota_store_pg_exec(c, PQ_MINUTE_DOWNLOAD,
                            "INSERT INTO product_minutes (product_id, minute, downloads, bytes)"
                            " SELECT r.product_id, $1, $2, $3 FROM rom_files f"
                            " JOIN roms r ON r.id = f.rom_id WHERE f.id = $4"
                            " ON CONFLICT (product_id, minute) DO UPDATE SET"
                            " downloads = product_minutes.downloads + excluded.downloads,"
                            " bytes = product_minutes.bytes + excluded.bytes",
                            &a, "activity", NULL);
    return rc ? rc : fota_store_pg_minutes_prune(c);
}

/* ---- messages ---------------------------------------------------------- */

static void read_message(const PGresult *r, int row, void *out)
{
    struct fota_message *m = out;

    memset(m, 0, sizeof *m);
    m->id = fota_store_pg_col_int(r, row, 0);
    m->product_id = fota_store_pg_col_int(r, row, 1);
    m->device_id = fota_store_pg_col_int(r, row, 2);
    fota_store_pg_col_text(r, row, 3, m->action, sizeof m->action);
    fota_store_pg_col_text(r, row, 4, m->body, sizeof m->body);
    m->created = fota_store_pg_col_int(r, row, 5);
}

/* pg_advisory_xact_lock's key pair for message ids: "fota", then 1. */
#define MESSAGE_LOCK "1718580321, 1"

/* m's row, inside the caller's transaction; an upgrade report also counts
 * in its product's minute (product_activity). */
static int message_insert(struct pg_conn *c, const struct fota_message *m, int64_t created,
                          int64_t *id)
{
    struct pg_params a = { 0 };
    int up = strcmp(m->action, "device_upgrade_success") == 0;
    int failed = strcmp(m->action, "device_upgrade_failed") == 0;
    int rc;

    fota_store_pg_param_int(&a, m->product_id);
    fota_store_pg_param_int(&a, m->device_id);
    PG_PARAM_STR(&a, m->action);
    PG_PARAM_STR(&a, m->body);
    fota_store_pg_param_int(&a, created);
    /* The lock (held to the commit) is taken before the id is drawn: ids
     * are handed out in commit order. The doorbell fota_msg (the new id)
     * rings at the commit: other instances' followers read after their
     * last id (server_bus.c). */
    rc = fota_store_pg_exec(c, PQ_MSG_INSERT,
                            "WITH l AS MATERIALIZED (SELECT pg_advisory_xact_lock(" MESSAGE_LOCK ")"
                            " AS locked),"
                            " m AS (INSERT INTO messages"
                            " (product_id, device_id, action, body, created)"
                            " SELECT $1, $2, $3, $4, $5 FROM l RETURNING id)"
                            " SELECT id, pg_notify('fota_msg', id::text) FROM m",
                            &a, "message_add", id);
    if (rc == 0 && (up || failed) && m->product_id > 0)
        rc = fota_store_pg_activity_reports(c, m->product_id, created, up, failed);
    return rc;
}

static int message_add_tx(struct pg_conn *c, const struct fota_message *m, int64_t created,
                          int64_t *id)
{
    int rc = fota_store_pg_begin(c, 0);
    if (rc != 0)
        return rc;
    return fota_store_pg_finish(c, message_insert(c, m, created, id));
}

int fota_store_pg_message_add(struct fota_store *s, struct fota_message *m)
{
    int64_t created = m->created ? m->created : fota_clock_wall_s(), id = 0;
    struct pg_conn *c;
    int rc;

    if (!m->action[0])
        return FOTA_EINVAL;
    if ((rc = fota_store_pg_enter(s, "message_add", &c)) != 0)
        return rc;
    c->hot = 1;   /* not a cached table (store.h) */
    rc = FOTA_EAGAIN;
    for (int i = 0; i < FOTA_PG_TRIES && rc == FOTA_EAGAIN; i++)
        rc = message_add_tx(c, m, created, &id);
    if (rc == 0) {
        m->id = id;
        m->created = created;
    }
    return fota_store_pg_leave(c, rc);
}

/* report_batch's statements, each over unnest()ed arrays whatever the
 * batch's size: the batch holds the message lock and its product's minute
 * row to its commit, with its devices' replies waiting for it, so it costs
 * a few round trips, not a few per row. The devices: each reported field
 * from the last row of its device that reports it. The messages: their
 * rows in row order under the message lock (ids in row order), each
 * ringing fota_msg as message_add's does. The devices are taken in id
 * order, as the presence batch takes them (DISTINCT ON (id) ... ORDER BY
 * id): two batches that share devices then lock them in the same order
 * rather than deadlock and retry. */
static const char REPORT_DEVICES_SQL[] =
    "UPDATE devices d SET rom_version = COALESCE(v.ver, d.rom_version),"
    " running_slot = COALESCE(v.slot, d.running_slot)"
    " FROM (SELECT u.id,"
    " (array_agg(u.ver ORDER BY u.k DESC) FILTER (WHERE u.fv <> 0))[1] AS ver,"
    " (array_agg(u.slot ORDER BY u.k DESC) FILTER (WHERE u.fs <> 0))[1] AS slot"
    " FROM unnest($1::int8[], $2::int8[], $3::text[], $4::int8[], $5::int8[])"
    " WITH ORDINALITY AS u(id, fv, ver, fs, slot, k) GROUP BY u.id ORDER BY u.id) v"
    " WHERE d.id = v.id";

static const char REPORT_MESSAGES_SQL[] =
    "WITH l AS MATERIALIZED (SELECT pg_advisory_xact_lock(" MESSAGE_LOCK ") AS locked),"
    " m AS (INSERT INTO messages (product_id, device_id, action, body, created)"
    " SELECT u.p, u.d, u.a, u.b, u.c FROM l, unnest($1::int8[], $2::int8[], $3::text[],"
    " $4::text[], $5::int8[]) WITH ORDINALITY AS u(p, d, a, b, c, k) ORDER BY u.k"
    " RETURNING id)"
    " SELECT id, pg_notify('fota_msg', id::text) FROM m ORDER BY id";

enum { RD_DEV, RD_FV, RD_VER, RD_FS, RD_SLOT, RD_NCOL };
enum { RM_PRODUCT, RM_DEV, RM_ACTION, RM_BODY, RM_CREATED, RM_NCOL };

static int report_devices(struct pg_conn *c, const struct fota_report_row *rows, size_t n)
{
    static const Oid types[RD_NCOL] = { FOTA_PG_INT8_ARRAY, FOTA_PG_INT8_ARRAY,
                                        FOTA_PG_TEXT_ARRAY, FOTA_PG_INT8_ARRAY,
                                        FOTA_PG_INT8_ARRAY };
    struct pg_array_param col[RD_NCOL];
    struct pg_params p = { 0 };
    size_t k = 0;
    int rc = 0;

    for (int j = 0; j < RD_NCOL; j++)
        fota_store_pg_array_init(&col[j], types[j]);
    for (size_t i = 0; i < n; i++) {
        const struct fota_report_row *r = &rows[i];
        if (!r->fields)
            continue;
        fota_store_pg_array_int(&col[RD_DEV], r->m.device_id);
        fota_store_pg_array_int(&col[RD_FV], !!(r->fields & FOTA_DEV_F_ROM_VERSION));
        PG_ARRAY_STR(&col[RD_VER], r->rom_version);
        fota_store_pg_array_int(&col[RD_FS], !!(r->fields & FOTA_DEV_F_SLOT));
        fota_store_pg_array_int(&col[RD_SLOT], r->running_slot);
        k++;
    }
    if (k > 0) {
        for (int j = 0; j < RD_NCOL; j++)
            fota_store_pg_param_array(&p, &col[j]);
        rc = fota_store_pg_exec(c, PQ_REPORT_DEVICE, REPORT_DEVICES_SQL, &p, "report_batch",
                                NULL);
    }
    for (int j = 0; j < RD_NCOL; j++)
        fota_store_pg_array_free(&col[j]);
    return rc;
}

/* The rows' messages; their ids into rows[i].m.id. */
static int report_messages(struct pg_conn *c, struct fota_report_row *rows, size_t n,
                           int64_t now)
{
    static const Oid types[RM_NCOL] = { FOTA_PG_INT8_ARRAY, FOTA_PG_INT8_ARRAY,
                                        FOTA_PG_TEXT_ARRAY, FOTA_PG_TEXT_ARRAY,
                                        FOTA_PG_INT8_ARRAY };
    struct pg_array_param col[RM_NCOL];
    struct pg_params p = { 0 };
    int rc;

    for (int j = 0; j < RM_NCOL; j++)
        fota_store_pg_array_init(&col[j], types[j]);
    for (size_t i = 0; i < n; i++) {
        const struct fota_message *m = &rows[i].m;
        fota_store_pg_array_int(&col[RM_PRODUCT], m->product_id);
        fota_store_pg_array_int(&col[RM_DEV], m->device_id);
        PG_ARRAY_STR(&col[RM_ACTION], m->action);
        PG_ARRAY_STR(&col[RM_BODY], m->body);
        fota_store_pg_array_int(&col[RM_CREATED], m->created ? m->created : now);
    }
    for (int j = 0; j < RM_NCOL; j++)
        fota_store_pg_param_array(&p, &col[j]);
    PGresult *r = fota_store_pg_run(c, PQ_MSG_INSERT_MANY, REPORT_MESSAGES_SQL, &p,
                                    "report_batch", &rc);
    for (int j = 0; j < RM_NCOL; j++)
        fota_store_pg_array_free(&col[j]);
    if (!r)
        return rc;
    /* Drawn in row order (the insert's ORDER BY), so the ids sorted are the rows'. */
    if ((size_t)PQntuples(r) != n)
        rc = FOTA_EIO;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rows[i].m.id = fota_store_pg_col_int(r, (int)i, 0);
    PQclear(r);
    return rc;
}

/* The upgrade reports among the rows, counted in their products' minutes
 * (product_activity): one upsert per product and minute. */
static int report_activity(struct pg_conn *c, const struct fota_report_row *rows, size_t n,
                           int64_t now)
{
    struct minute { int64_t product_id, minute, up, failed; } *g = NULL;
    size_t ng = 0;
    int rc = 0;

    for (size_t i = 0; i < n; i++) {
        const struct fota_message *m = &rows[i].m;
        int up = strcmp(m->action, "device_upgrade_success") == 0;
        int failed = strcmp(m->action, "device_upgrade_failed") == 0;
        if ((!up && !failed) || m->product_id <= 0)
            continue;
        int64_t minute = (m->created ? m->created : now) / 60;
        size_t k = 0;
        while (k < ng && (g[k].product_id != m->product_id || g[k].minute != minute))
            k++;
        if (k == ng) {
            g = fota_xreallocarray(g, ng + 1, sizeof *g);
            g[ng++] = (struct minute){ m->product_id, minute, 0, 0 };
        }
        g[k].up += up;
        g[k].failed += failed;
    }
    for (size_t k = 0; rc == 0 && k < ng; k++)
        rc = fota_store_pg_activity_reports(c, g[k].product_id, g[k].minute * 60, g[k].up,
                                            g[k].failed);
    free(g);
    return rc;
}

/* One try of report_batch: the rows' device fields, messages and counts,
 * one transaction (devices first, then the message lock, then the minute
 * row: message_add's order for the two it shares). */
static int report_batch_tx(struct pg_conn *c, struct fota_report_row *rows, size_t n, int64_t now)
{
    int rc = fota_store_pg_begin(c, 0);
    if (rc == 0)
        rc = report_devices(c, rows, n);
    if (rc == 0)
        rc = report_messages(c, rows, n, now);
    if (rc == 0)
        rc = report_activity(c, rows, n, now);
    return fota_store_pg_finish(c, rc);
}

int fota_store_pg_report_batch(struct fota_store *s, struct fota_report_row *rows, size_t n)
{
    int64_t now = fota_clock_wall_s();
    struct pg_conn *c;
    int rc;

    if (fota_store_report_rows_check(rows, n) != 0)
        return FOTA_EINVAL;
    if (n == 0)
        return 0;
    if ((rc = fota_store_pg_enter(s, "report_batch", &c)) != 0)
        return rc;
    c->hot = 1;   /* reported fields and messages: not cached (store.h) */
    rc = FOTA_EAGAIN;
    for (int i = 0; i < FOTA_PG_TRIES && rc == FOTA_EAGAIN; i++)
        rc = report_batch_tx(c, rows, n, now);
    for (size_t i = 0; i < n; i++) {
        if (rc == 0 && !rows[i].m.created)
            rows[i].m.created = now;
        else if (rc != 0)
            rows[i].m.id = 0;
    }
    return fota_store_pg_leave(c, rc);
}

int fota_store_pg_message_list(struct fota_store *s, const struct fota_message_filter *f,
                               struct fota_message **out, size_t *n)
{
    /* Eight fixed statements, one per (product?, device?, ascending?), so
     * each can use its index. The id window is always bound: (after_id,
     * before_id) with 0/INT64_MAX. */
    int variant = (f->product_id ? 1 : 0) | (f->device_id ? 2 : 0) | (f->after_id ? 4 : 0);
    struct pg_params a = { 0 };
    char sql[320], prod[32] = "", dev[32] = "";
    struct pg_conn *c;
    int k = 3, rc;

    *out = NULL;
    *n = 0;
    if (variant & 1)
        snprintf(prod, sizeof prod, " AND product_id = $%d", k++);
    if (variant & 2)
        snprintf(dev, sizeof dev, " AND device_id = $%d", k++);
    snprintf(sql, sizeof sql,
             "SELECT id, product_id, device_id, action, body, created FROM messages"
             " WHERE id > $1 AND id < $2%s%s ORDER BY id %s LIMIT $%d",
             prod, dev, (variant & 4) ? "ASC" : "DESC", k);
    fota_store_pg_param_int(&a, f->after_id > 0 ? f->after_id : 0);
    fota_store_pg_param_int(&a, f->before_id > 0 ? f->before_id : INT64_MAX);
    if (variant & 1)
        fota_store_pg_param_int(&a, f->product_id);
    if (variant & 2)
        fota_store_pg_param_int(&a, f->device_id);
    fota_store_pg_param_int(&a, (int64_t)fota_store_limit(f->limit));
    if ((rc = fota_store_pg_enter(s, "message_list", &c)) != 0)
        return rc;
    rc = fota_store_pg_collect(c, PQ_MSG_LIST0 + variant, sql, &a, read_message, sizeof **out,
                               (void **)out, n, "message_list");
    return fota_store_pg_leave(c, rc);
}

/* ---- download ledger and transfers ------------------------------------- */

int fota_store_pg_ledger_row(struct pg_conn *c, int64_t device_id, int64_t file_id,
                             int64_t bytes, int completed)
{
    struct pg_params a = { 0 };
    int64_t wrote = 0;
    int rc;

    /* Through rom_files: an unknown file writes nothing (ENOENT) and leaves
     * the transaction usable for the batch's other rows. */
    fota_store_pg_param_int(&a, device_id);
    fota_store_pg_param_int(&a, file_id);
    fota_store_pg_param_int(&a, bytes);
    fota_store_pg_param_int(&a, completed);
    rc = fota_store_pg_exec(c, PQ_DL_UPSERT,
                            "INSERT INTO downloads (device_id, file_id, bytes, completions)"
                            " SELECT $1, f.id, $3, $4 FROM rom_files f WHERE f.id = $2"
                            " ON CONFLICT (device_id, file_id) DO UPDATE SET"
                            " bytes = downloads.bytes + excluded.bytes,"
                            " completions = downloads.completions + excluded.completions"
                            " RETURNING 1",
                            &a, "download_add", &wrote);
    return rc == 0 && !wrote ? FOTA_ENOENT : rc;
}

int fota_store_pg_ledger_file(struct pg_conn *c, int64_t file_id, int64_t bytes,
                              int64_t completed)
{
    struct pg_params a = { 0 };
    int rc = 0;

    if (completed) {
        fota_store_pg_param_int(&a, completed);
        fota_store_pg_param_int(&a, file_id);
        rc = fota_store_pg_exec(c, PQ_DL_COUNT_FILE,
                                "UPDATE rom_files SET download_count = download_count + $1"
                                " WHERE id = $2",
                                &a, "download_add", NULL);
    }
    if (rc == 0 && (completed || bytes))
        rc = activity_download(c, file_id, bytes, completed);
    return rc;
}

static int download_add_tx(struct pg_conn *c, int64_t device_id, int64_t file_id, int64_t bytes,
                           int completed)
{
    int rc;

    if ((rc = fota_store_pg_begin(c, 0)) != 0)
        return rc;
    rc = fota_store_pg_ledger_row(c, device_id, file_id, bytes, completed);
    if (rc == 0)
        rc = fota_store_pg_ledger_file(c, file_id, bytes, completed);
    return fota_store_pg_finish(c, rc);
}

int fota_store_pg_download_add(struct fota_store *s, int64_t device_id, int64_t file_id,
                               int64_t bytes, int completed)
{
    struct pg_conn *c;
    int rc;

    if (bytes < 0 || completed < 0)
        return FOTA_EINVAL;
    if ((rc = fota_store_pg_enter(s, "download_add", &c)) != 0)
        return rc;
    c->hot = 1;
    rc = FOTA_EAGAIN;
    for (int i = 0; i < FOTA_PG_TRIES && rc == FOTA_EAGAIN; i++)
        rc = download_add_tx(c, device_id, file_id, bytes, completed);
    return fota_store_pg_leave(c, rc);
}

int fota_store_pg_download_bytes(struct fota_store *s, int64_t device_id, int64_t *bytes)
{
    struct pg_params a = { 0 };
    struct pg_conn *c;
    int64_t sum = 0;
    int rc;

    if ((rc = fota_store_pg_enter(s, "download_bytes", &c)) != 0)
        return rc;
    fota_store_pg_param_int(&a, device_id);
    /* SUM(bigint) is numeric: whole, read as text. */
    rc = fota_store_pg_exec(c, PQ_DL_SUM,
                            "SELECT COALESCE(SUM(bytes), 0) FROM downloads WHERE device_id = $1",
                            &a, "download_bytes", &sum);
    if (rc == 0)
        *bytes = sum;
    return fota_store_pg_leave(c, rc);
}

static void read_transfer(const PGresult *r, int row, void *out)
{
    struct fota_transfer *t = out;

    memset(t, 0, sizeof *t);
    t->id = fota_store_pg_col_int(r, row, 0);
    fota_store_pg_col_text(r, row, 1, t->peer, sizeof t->peer);
    t->section = (int)fota_store_pg_col_int(r, row, 2);
    t->bytes = fota_store_pg_col_int(r, row, 3);
    fota_store_pg_col_text(r, row, 4, t->result, sizeof t->result);
    t->duration_ms = fota_store_pg_col_int(r, row, 5);
    fota_store_pg_col_text(r, row, 6, t->mode, sizeof t->mode);
    t->created = fota_store_pg_col_int(r, row, 7);
}

int fota_store_pg_transfer_add(struct fota_store *s, struct fota_transfer *t)
{
    int64_t created = t->created ? t->created : fota_clock_wall_s(), id = 0;
    struct pg_params a = { 0 };
    struct pg_conn *c;
    int rc;

    if ((rc = fota_store_pg_enter(s, "transfer_add", &c)) != 0)
        return rc;
    c->hot = 1;   /* not a cached table (store.h) */
    PG_PARAM_STR(&a, t->peer);
    fota_store_pg_param_int(&a, t->section);
    fota_store_pg_param_int(&a, t->bytes);
    PG_PARAM_STR(&a, t->result);
    fota_store_pg_param_int(&a, t->duration_ms);
    PG_PARAM_STR(&a, t->mode);
    fota_store_pg_param_int(&a, created);
    rc = fota_store_pg_exec_tx(c, PQ_XFER_INSERT,
                               "INSERT INTO transfers (peer, section, bytes, result, duration_ms,"
                               " mode, created) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                               &a, 0, "transfer_add", &id);
    if (rc == 0) {
        t->id = id;
        t->created = created;
    }
    return fota_store_pg_leave(c, rc);
}

int fota_store_pg_transfer_list(struct fota_store *s, size_t limit, struct fota_transfer **out,
                                size_t *n)
{
    struct pg_params a = { 0 };
    struct pg_conn *c;
    int rc;

    *out = NULL;
    *n = 0;
    if ((rc = fota_store_pg_enter(s, "transfer_list", &c)) != 0)
        return rc;
    fota_store_pg_param_int(&a, (int64_t)fota_store_limit(limit));
    rc = fota_store_pg_collect(c, PQ_XFER_LIST,
                               "SELECT id, peer, section, bytes, result, duration_ms, mode,"
                               " created FROM transfers ORDER BY id DESC LIMIT $1",
                               &a, read_transfer, sizeof **out, (void **)out, n,
                               "transfer_list");
    return fota_store_pg_leave(c, rc);
}
