/* migrate_db.c - the tables of a SQLite store copied into an empty
 * PostgreSQL store in one transaction: COPY FROM STDIN per table, parents
 * before children (the foreign keys of PostgreSQL's schema), ids as they
 * are; then every table read back from PostgreSQL and compared with the
 * source row for row through a SHA-256 of its values in key order (the same
 * encoding computed from both sides, so an escaping or type mistake shows
 * as a different sum), and every identity moved past the largest id SQLite
 * ever handed out (id_floor keeps deleted ones). Nothing is committed
 * unless every table matches. */
#include "migrate_int.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fota_str.h"
#include "hex.h"
#include "store.h"
#include "xmalloc.h"

#define COPY_FLUSH (256u << 10)
#define MAX_COLS 64
#define MAX_TABLES 64

enum col_type { COL_INT = 1,
                COL_FLOAT,
                COL_TEXT };

struct col {
    char name[FOTA_MIGRATE_NAME_MAX];
    enum col_type type;           /* PostgreSQL's type of the column */
};

struct tbl {
    struct col cols[MAX_COLS];    /* SQLite's columns, PostgreSQL's types */
    size_t ncols;
    int key[MAX_COLS];            /* the ORDER BY: primary key columns (indexes into cols) */
    size_t nkey;
    char identity[FOTA_MIGRATE_NAME_MAX];   /* PostgreSQL's identity column, or "" */
    int sqlite_has;
};

struct fota_migrate_db {
    sqlite3 *src;
    PGconn *pg;
    int in_tx;
    struct fota_migrate_table out[MAX_TABLES];
    struct tbl t[MAX_TABLES];
    size_t n;
    char *err;
    size_t errlen;
};

/* A growing buffer for one COPY's lines. */
struct buf {
    char *p;
    size_t len, cap;
};

static int seterr(struct fota_migrate_db *m, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int seterr(struct fota_migrate_db *m, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->err, m->errlen, fmt, ap);
    va_end(ap);
    return code;
}

/* PostgreSQL's message on one line. */
static const char *pg_msg(const PGresult *r, const PGconn *c, char *out, size_t cap)
{
    fota_str_copy(out, cap, r ? PQresultErrorMessage(r) : PQerrorMessage(c));
    for (char *p = out; *p; p++)
        if (*p == '\n')
            *p = p[1] ? ' ' : '\0';
    return out;
}

static int pg_fail(struct fota_migrate_db *m, PGresult *r, const char *what)
{
    char msg[512];
    pg_msg(r, m->pg, msg, sizeof(msg));
    PQclear(r);
    return seterr(m, FOTA_EIO, "postgresql: %s: %s", what, msg);
}

/* A statement without rows (or whose rows are not wanted). */
static int pg_cmd(struct fota_migrate_db *m, const char *sql, const char *what)
{
    PGresult *r = PQexec(m->pg, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        return pg_fail(m, r, what);
    PQclear(r);
    return 0;
}

/* Rows of a statement with text parameters; NULL with err set on failure. */
static PGresult *pg_rows(struct fota_migrate_db *m, const char *sql, int nparams,
                         const char *const *params, const char *what)
{
    PGresult *r = PQexecParams(m->pg, sql, nparams, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        pg_fail(m, r, what);
        return NULL;
    }
    return r;
}

static void quote(const char *name, char *out, size_t cap)
{
    /* Names come from the two schemas: letters, digits and '_'; quoted all
     * the same (and a '"' doubled) so none can be read as SQL. */
    size_t o = 0;
    if (cap < 3)
        return;
    out[o++] = '"';
    for (const char *p = name; *p && o + 3 < cap; p++) {
        if (*p == '"')
            out[o++] = '"';
        out[o++] = *p;
    }
    out[o++] = '"';
    out[o] = '\0';
}

static struct fota_migrate_table *find(struct fota_migrate_db *m, const char *name, size_t *idx)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->out[i].name, name) == 0) {
            if (idx)
                *idx = i;
            return &m->out[i];
        }
    return NULL;
}

/* ------------------------------------------------------------ schemas */

static int src_open(struct fota_migrate_db *m, const char *path)
{
    sqlite3_stmt *st = NULL;
    int have = -1, want = fota_store_sqlite_schema_version();

    if (sqlite3_open_v2(path, &m->src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        return seterr(m, FOTA_EIO, "cannot open %s: %s", path,
                      m->src ? sqlite3_errmsg(m->src) : "no memory");
    if (sqlite3_prepare_v2(m->src, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", -1,
                           &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        have = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (have < 0)
        return seterr(m, FOTA_EINVAL, "the source is not a fotad database (%s)",
                      sqlite3_errmsg(m->src));
    if (have != want)
        return seterr(m, FOTA_EINVAL,
                      "the source database has schema version %d, this fotad's is %d: %s", have,
                      want,
                      have < want ? "start this fotad on the source data dir once (it brings "
                                    "the schema up to date), stop it, then migrate"
                                  : "migrate with the fotad that wrote it (or a newer one)");
    return 0;
}

int fota_migrate_source_check(const char *sqlite_path, char *err, size_t errlen)
{
    struct fota_migrate_db *m = fota_xcalloc(1, sizeof(*m));   /* large: not on the stack */
    m->err = err;
    m->errlen = errlen;
    int rc = src_open(m, sqlite_path);
    fota_migrate_db_free(m);
    return rc;
}

/* The source's tables (schema_migrations aside: the target keeps its own). */
static int src_tables(struct fota_migrate_db *m)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (sqlite3_prepare_v2(m->src,
                           "SELECT name FROM sqlite_schema WHERE type = 'table'"
                           " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
                           " AND name <> 'schema_migrations' ORDER BY name",
                           -1, &st, NULL) != SQLITE_OK)
        return seterr(m, FOTA_EIO, "source tables: %s", sqlite3_errmsg(m->src));
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (m->n == MAX_TABLES || strlen(name) >= FOTA_MIGRATE_NAME_MAX) {
            sqlite3_finalize(st);
            return seterr(m, FOTA_EINVAL, "the source has more tables than a fotad schema");
        }
        fota_str_copy(m->out[m->n].name, FOTA_MIGRATE_NAME_MAX, name);
        m->t[m->n++].sqlite_has = 1;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : seterr(m, FOTA_EIO, "source tables: %s", sqlite3_errmsg(m->src));
}

/* PostgreSQL's tables: those the source lacks are PostgreSQL's alone. */
static int pg_tables(struct fota_migrate_db *m)
{
    PGresult *r = pg_rows(m,
                          "SELECT c.relname FROM pg_class c JOIN pg_namespace n"
                          " ON n.oid = c.relnamespace WHERE n.nspname = current_schema()"
                          " AND c.relkind IN ('r', 'p') AND c.relname <> 'schema_migrations'",
                          0, NULL, "tables");
    if (!r)
        return FOTA_EIO;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *name = PQgetvalue(r, i, 0);
        if (find(m, name, NULL))
            continue;
        if (m->n == MAX_TABLES || strlen(name) >= FOTA_MIGRATE_NAME_MAX) {
            PQclear(r);
            return seterr(m, FOTA_EINVAL, "the target has more tables than a fotad schema");
        }
        fota_str_copy(m->out[m->n].name, FOTA_MIGRATE_NAME_MAX, name);
        m->out[m->n++].pg_only = 1;
    }
    PQclear(r);
    for (size_t i = 0; i < m->n; i++)
        if (!m->out[i].pg_only) {
            PGresult *e = pg_rows(m, "SELECT to_regclass(quote_ident($1)) IS NOT NULL", 1,
                                  (const char *const[]){ m->out[i].name }, "tables");
            int there = e && PQgetvalue(e, 0, 0)[0] == 't';
            PQclear(e);
            if (!e)
                return FOTA_EIO;
            if (!there)
                return seterr(m, FOTA_EINVAL, "the target has no table %s: its schema is not "
                                              "this fotad's",
                              m->out[i].name);
        }
    return 0;
}

static int type_of(const char *pg_type, enum col_type *t)
{
    if (strcmp(pg_type, "bigint") == 0 || strcmp(pg_type, "integer") == 0 ||
        strcmp(pg_type, "smallint") == 0)
        *t = COL_INT;
    else if (strcmp(pg_type, "double precision") == 0 || strcmp(pg_type, "real") == 0)
        *t = COL_FLOAT;
    else if (strcmp(pg_type, "text") == 0)
        *t = COL_TEXT;
    else
        return -1;
    return 0;
}

/* Table i's columns (SQLite's, typed by PostgreSQL), key and identity. */
static int columns(struct fota_migrate_db *m, size_t i)
{
    struct tbl *t = &m->t[i];
    const char *name = m->out[i].name;
    char q[FOTA_MIGRATE_NAME_MAX * 2 + 4], sql[200];
    sqlite3_stmt *st = NULL;
    int pk[MAX_COLS] = { 0 }, rc;
    PGresult *r = pg_rows(m,
                          "SELECT a.attname, format_type(a.atttypid, a.atttypmod),"
                          " a.attidentity <> '' FROM pg_attribute a"
                          " WHERE a.attrelid = to_regclass(quote_ident($1))"
                          " AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                          1, (const char *const[]){ name }, "columns");
    if (!r)
        return FOTA_EIO;
    for (int k = 0; k < PQntuples(r); k++)
        if (PQgetvalue(r, k, 2)[0] == 't')
            fota_str_copy(t->identity, sizeof(t->identity), PQgetvalue(r, k, 0));

    quote(name, q, sizeof(q));
    snprintf(sql, sizeof(sql), "PRAGMA table_info(%s)", q);
    if (sqlite3_prepare_v2(m->src, sql, -1, &st, NULL) != SQLITE_OK) {
        PQclear(r);
        return seterr(m, FOTA_EIO, "source columns of %s: %s", name, sqlite3_errmsg(m->src));
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *cn = (const char *)sqlite3_column_text(st, 1);
        int k, found = 0;
        if (t->ncols == MAX_COLS || strlen(cn) >= FOTA_MIGRATE_NAME_MAX) {
            rc = seterr(m, FOTA_EINVAL, "table %s has more columns than a fotad schema", name);
            goto out;
        }
        struct col *c = &t->cols[t->ncols];
        fota_str_copy(c->name, sizeof(c->name), cn);
        for (k = 0; k < PQntuples(r) && !found; k++)
            if (strcmp(PQgetvalue(r, k, 0), cn) == 0) {
                found = 1;
                if (type_of(PQgetvalue(r, k, 1), &c->type) != 0) {
                    rc = seterr(m, FOTA_EINVAL, "column %s.%s is %s on the target: not a type "
                                                "the source's schema has",
                                name, cn, PQgetvalue(r, k, 1));
                    goto out;
                }
            }
        if (!found) {
            rc = seterr(m, FOTA_EINVAL, "the target's table %s has no column %s: its schema is "
                                        "not this fotad's",
                        name, cn);
            goto out;
        }
        pk[t->ncols++] = sqlite3_column_int(st, 5);
    }
    if (rc != SQLITE_DONE) {
        rc = seterr(m, FOTA_EIO, "source columns of %s: %s", name, sqlite3_errmsg(m->src));
        goto out;
    }
    /* The key in its order (pk is 1, 2, ... for the key's columns); no key:
     * every column, which orders any two different rows. */
    for (int want = 1; (size_t)want <= t->ncols; want++)
        for (size_t k = 0; k < t->ncols; k++)
            if (pk[k] == want)
                t->key[t->nkey++] = (int)k;
    if (!t->nkey)
        for (size_t k = 0; k < t->ncols; k++)
            t->key[t->nkey++] = (int)k;
    rc = 0;
out:
    sqlite3_finalize(st);
    PQclear(r);
    return rc;
}

/* The copy order: a table after every table its foreign keys name. */
static int order_tables(struct fota_migrate_db *m)
{
    PGresult *r = pg_rows(m,
                          "SELECT c.relname, p.relname FROM pg_constraint k"
                          " JOIN pg_class c ON c.oid = k.conrelid"
                          " JOIN pg_class p ON p.oid = k.confrelid"
                          " JOIN pg_namespace n ON n.oid = c.relnamespace"
                          " WHERE k.contype = 'f' AND n.nspname = current_schema()",
                          0, NULL, "foreign keys");
    struct fota_migrate_table out[MAX_TABLES];
    struct tbl *t = NULL;
    int placed[MAX_TABLES] = { 0 };
    size_t n = 0;

    if (!r)
        return FOTA_EIO;
    t = fota_xcalloc(MAX_TABLES, sizeof(*t));
    /* Bounded: each pass places at least one table, or the keys loop. */
    for (size_t pass = 0; pass < m->n && n < m->n; pass++) {
        size_t before = n;
        for (size_t i = 0; i < m->n; i++) {
            int ready = !placed[i];
            for (int k = 0; ready && k < PQntuples(r); k++) {
                size_t parent;
                if (strcmp(PQgetvalue(r, k, 0), m->out[i].name) == 0 &&
                    strcmp(PQgetvalue(r, k, 1), m->out[i].name) != 0 &&
                    find(m, PQgetvalue(r, k, 1), &parent) && !placed[parent])
                    ready = 0;
            }
            if (ready) {
                placed[i] = 1;
                out[n] = m->out[i];
                t[n++] = m->t[i];
            }
        }
        if (n == before)
            break;
    }
    PQclear(r);
    if (n != m->n) {
        free(t);
        return seterr(m, FOTA_EINVAL, "the target's foreign keys go round in a circle");
    }
    memcpy(m->out, out, n * sizeof(out[0]));
    memcpy(m->t, t, n * sizeof(t[0]));
    free(t);
    return 0;
}

/* Locks every table to copy against writers (a fotad started on the target
 * meanwhile waits), then checks that none holds a row. */
static int lock_and_check_empty(struct fota_migrate_db *m)
{
    char sql[4096], q[FOTA_MIGRATE_NAME_MAX * 2 + 4], held[512] = "";
    size_t used = (size_t)snprintf(sql, sizeof(sql), "LOCK TABLE ");
    size_t hl = 0;
    int first = 1, nfull = 0;

    for (size_t i = 0; i < m->n; i++) {
        if (m->out[i].pg_only)
            continue;
        quote(m->out[i].name, q, sizeof(q));
        used += (size_t)snprintf(sql + used, sizeof(sql) - used, "%s%s", first ? "" : ", ", q);
        first = 0;
    }
    snprintf(sql + used, sizeof(sql) - used, " IN EXCLUSIVE MODE");
    if (!first && pg_cmd(m, sql, "lock") != 0)
        return FOTA_EIO;
    for (size_t i = 0; i < m->n; i++) {
        if (m->out[i].pg_only)
            continue;
        quote(m->out[i].name, q, sizeof(q));
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", q);
        PGresult *r = pg_rows(m, sql, 0, NULL, "rows of the target");
        if (!r)
            return FOTA_EIO;
        long long rows = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        if (rows > 0 && hl < sizeof(held)) {
            int w = snprintf(held + hl, sizeof(held) - hl, "%s%s %lld", nfull ? ", " : "",
                             m->out[i].name, rows);
            hl += w > 0 ? (size_t)w : 0;
            nfull++;
        }
    }
    if (nfull)
        return seterr(m, FOTA_EEXIST,
                      "the target database is not empty (%s): fotad migrate copies a fleet into "
                      "a database of its own only; make a new one (CREATE DATABASE) or drop "
                      "what is there",
                      held);
    return 0;
}

int fota_migrate_db_begin(const char *sqlite_path, const char *dsn,
                          struct fota_migrate_db **out, char *err, size_t errlen)
{
    struct fota_migrate_db *m = fota_xcalloc(1, sizeof(*m));
    int rc;

    *out = NULL;
    m->err = err;
    m->errlen = errlen;
    if ((rc = src_open(m, sqlite_path)) != 0 || (rc = src_tables(m)) != 0)
        goto fail;
    m->pg = PQconnectdb(dsn);
    if (PQstatus(m->pg) != CONNECTION_OK) {
        char msg[512];
        rc = seterr(m, FOTA_EUNAVAIL, "cannot connect to the target: %s",
                    pg_msg(NULL, m->pg, msg, sizeof(msg)));
        goto fail;
    }
    /* UTF-8 as SQLite holds text; floats written back with every digit
     * (shortest exact since PostgreSQL 12, 17 digits before). */
    if ((rc = pg_cmd(m, "SET client_encoding = 'UTF8'; SET extra_float_digits = 3", "session")) !=
        0)
        goto fail;
    if ((rc = pg_cmd(m, "BEGIN", "begin")) != 0)
        goto fail;
    m->in_tx = 1;
    if ((rc = pg_tables(m)) != 0)
        goto fail;
    for (size_t i = 0; i < m->n; i++)
        if (!m->out[i].pg_only && (rc = columns(m, i)) != 0)
            goto fail;
    if ((rc = order_tables(m)) != 0 || (rc = lock_and_check_empty(m)) != 0)
        goto fail;
    *out = m;
    return 0;
fail:
    fota_migrate_db_free(m);
    return rc;
}

/* ------------------------------------------------------------- the copy */

static void buf_put(struct buf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->p = fota_xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void buf_str(struct buf *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

/* Text in COPY's text format: backslash, tab, newline and CR escaped. */
static void buf_copy_text(struct buf *b, const unsigned char *s, size_t n)
{
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        const char *esc;
        switch (s[i]) {
        case '\\': esc = "\\\\"; break;
        case '\t': esc = "\\t"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        default: continue;
        }
        buf_put(b, s + from, i - from);
        buf_str(b, esc);
        from = i + 1;
    }
    buf_put(b, s + from, n - from);
}

/* The checksum's encoding of one value, the same from either side:
 * N | I<decimal>; | F<%a>; | T<length>:<bytes>. */
static void sum_null(EVP_MD_CTX *h)
{
    EVP_DigestUpdate(h, "N", 1);
}

static void sum_int(EVP_MD_CTX *h, long long v)
{
    char s[32];
    int n = snprintf(s, sizeof(s), "I%lld;", v);
    EVP_DigestUpdate(h, s, (size_t)n);
}

static void sum_float(EVP_MD_CTX *h, double v)
{
    char s[48];
    int n = snprintf(s, sizeof(s), "F%a;", v);
    EVP_DigestUpdate(h, s, (size_t)n);
}

static void sum_text(EVP_MD_CTX *h, const void *p, size_t len)
{
    char s[32];
    int n = snprintf(s, sizeof(s), "T%zu:", len);
    EVP_DigestUpdate(h, s, (size_t)n);
    EVP_DigestUpdate(h, p, len);
}

static void sum_end(EVP_MD_CTX *h, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_DigestFinal_ex(h, md, &len);
    fota_hex_encode(md, len, hex);
}

/* "SELECT cols FROM t ORDER BY key" for either side. */
static void select_sql(const struct tbl *t, const char *name, int pg, char *sql, size_t cap)
{
    char q[FOTA_MIGRATE_NAME_MAX * 2 + 4];
    size_t used = (size_t)snprintf(sql, cap, "SELECT ");
    for (size_t k = 0; k < t->ncols && used < cap; k++) {
        quote(t->cols[k].name, q, sizeof(q));
        used += (size_t)snprintf(sql + used, cap - used, "%s%s", k ? ", " : "", q);
    }
    quote(name, q, sizeof(q));
    if (used < cap)
        used += (size_t)snprintf(sql + used, cap - used, " FROM %s ORDER BY ", q);
    for (size_t k = 0; k < t->nkey && used < cap; k++) {
        const struct col *c = &t->cols[t->key[k]];
        quote(c->name, q, sizeof(q));
        used += (size_t)snprintf(sql + used, cap - used, "%s%s%s", k ? ", " : "", q,
                                 pg && c->type == COL_TEXT ? " COLLATE \"C\"" : "");
    }
}

static const char *storage_name(int type)
{
    switch (type) {
    case SQLITE_INTEGER: return "an integer";
    case SQLITE_FLOAT: return "a real";
    case SQLITE_TEXT: return "text";
    case SQLITE_BLOB: return "a blob";
    default: return "NULL";
    }
}

/* One source row: its COPY line into b, its values into the checksum. */
static int row_out(struct fota_migrate_db *m, size_t i, sqlite3_stmt *st, struct buf *b,
                   EVP_MD_CTX *h, int64_t row)
{
    const struct tbl *t = &m->t[i];
    char num[48];

    for (size_t k = 0; k < t->ncols; k++) {
        int type = sqlite3_column_type(st, (int)k);
        const struct col *c = &t->cols[k];
        if (k)
            buf_put(b, "\t", 1);
        if (type == SQLITE_NULL) {
            buf_str(b, "\\N");
            sum_null(h);
        } else if (c->type == COL_INT) {
            if (type != SQLITE_INTEGER)
                return seterr(m, FOTA_EINVAL, "table %s, row %" PRId64 ": %s holds %s, "
                                              "not an integer",
                              m->out[i].name, row, c->name, storage_name(type));
            long long v = sqlite3_column_int64(st, (int)k);
            snprintf(num, sizeof(num), "%lld", v);
            buf_str(b, num);
            sum_int(h, v);
        } else if (c->type == COL_FLOAT) {
            if (type != SQLITE_INTEGER && type != SQLITE_FLOAT)
                return seterr(m, FOTA_EINVAL, "table %s, row %" PRId64 ": %s holds %s, "
                                              "not a number",
                              m->out[i].name, row, c->name, storage_name(type));
            double v = sqlite3_column_double(st, (int)k);
            snprintf(num, sizeof(num), "%.17g", v);
            buf_str(b, num);
            sum_float(h, v);
        } else {
            const unsigned char *s = sqlite3_column_text(st, (int)k);
            size_t n = (size_t)sqlite3_column_bytes(st, (int)k);
            buf_copy_text(b, s, n);
            sum_text(h, s, n);
        }
    }
    buf_put(b, "\n", 1);
    return 0;
}

static int put_copy(struct fota_migrate_db *m, struct buf *b, const char *name)
{
    if (b->len && PQputCopyData(m->pg, b->p, (int)b->len) != 1)
        return pg_fail(m, NULL, name);
    b->len = 0;
    return 0;
}

/* Table i from SQLite into PostgreSQL; its rows and checksum in out[i]. */
static int copy_table(struct fota_migrate_db *m, size_t i)
{
    const struct tbl *t = &m->t[i];
    struct fota_migrate_table *o = &m->out[i];
    char sql[4096], q[FOTA_MIGRATE_NAME_MAX * 2 + 4];
    struct buf b = { 0 };
    sqlite3_stmt *st = NULL;
    EVP_MD_CTX *h = EVP_MD_CTX_new();
    PGresult *r;
    int rc = 0, step, copying = 0;

    if (!h || EVP_DigestInit_ex(h, EVP_sha256(), NULL) != 1) {
        rc = seterr(m, FOTA_EIO, "no SHA-256");
        goto out;
    }
    quote(o->name, q, sizeof(q));
    size_t used = (size_t)snprintf(sql, sizeof(sql), "COPY %s (", q);
    for (size_t k = 0; k < t->ncols && used < sizeof(sql); k++) {
        quote(t->cols[k].name, q, sizeof(q));
        used += (size_t)snprintf(sql + used, sizeof(sql) - used, "%s%s", k ? ", " : "", q);
    }
    if (used < sizeof(sql))
        snprintf(sql + used, sizeof(sql) - used, ") FROM STDIN");
    r = PQexec(m->pg, sql);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        rc = pg_fail(m, r, o->name);
        goto out;
    }
    PQclear(r);
    copying = 1;
    select_sql(t, o->name, 0, sql, sizeof(sql));
    if (sqlite3_prepare_v2(m->src, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = seterr(m, FOTA_EIO, "reading %s: %s", o->name, sqlite3_errmsg(m->src));
        goto out;
    }
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if ((rc = row_out(m, i, st, &b, h, o->rows + 1)) != 0)
            goto out;
        o->rows++;
        if (b.len >= COPY_FLUSH && (rc = put_copy(m, &b, o->name)) != 0)
            goto out;
    }
    if (step != SQLITE_DONE) {
        rc = seterr(m, FOTA_EIO, "reading %s: %s", o->name, sqlite3_errmsg(m->src));
        goto out;
    }
    if ((rc = put_copy(m, &b, o->name)) != 0)
        goto out;
    copying = 0;
    if (PQputCopyEnd(m->pg, NULL) != 1) {
        rc = pg_fail(m, NULL, o->name);
        goto out;
    }
    r = PQgetResult(m->pg);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        rc = pg_fail(m, r, o->name);
        goto out;
    }
    long long n = strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    while ((r = PQgetResult(m->pg)) != NULL)
        PQclear(r);
    if (n != o->rows)
        rc = seterr(m, FOTA_EIO, "table %s: %lld of %" PRId64 " rows copied", o->name, n, o->rows);
    sum_end(h, o->sum);
out:
    if (copying) {
        /* End the COPY with an error: PostgreSQL drops what it took. */
        PQputCopyEnd(m->pg, "fotad migrate stopped");
        while ((r = PQgetResult(m->pg)) != NULL)
            PQclear(r);
    }
    sqlite3_finalize(st);
    EVP_MD_CTX_free(h);
    free(b.p);
    return rc;
}

/* Table i read back from PostgreSQL: the same count and checksum. */
static int verify_table(struct fota_migrate_db *m, size_t i)
{
    const struct tbl *t = &m->t[i];
    const struct fota_migrate_table *o = &m->out[i];
    char sql[4096], sum[65];
    EVP_MD_CTX *h = EVP_MD_CTX_new();
    PGresult *r;
    int64_t rows = 0;
    int rc = 0;

    if (!h || EVP_DigestInit_ex(h, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(h);
        return seterr(m, FOTA_EIO, "no SHA-256");
    }
    select_sql(t, o->name, 1, sql, sizeof(sql));
    if (!PQsendQuery(m->pg, sql) || !PQsetSingleRowMode(m->pg)) {
        EVP_MD_CTX_free(h);
        return pg_fail(m, NULL, o->name);
    }
    /* Every result is read, also after a mismatch, so the connection is
     * ready for the next statement. */
    while ((r = PQgetResult(m->pg)) != NULL) {
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_SINGLE_TUPLE && rc == 0) {
            for (size_t k = 0; k < t->ncols; k++) {
                const char *v = PQgetvalue(r, 0, (int)k);
                if (PQgetisnull(r, 0, (int)k))
                    sum_null(h);
                else if (t->cols[k].type == COL_INT)
                    sum_int(h, strtoll(v, NULL, 10));
                else if (t->cols[k].type == COL_FLOAT)
                    sum_float(h, strtod(v, NULL));
                else
                    sum_text(h, v, (size_t)PQgetlength(r, 0, (int)k));
            }
            rows++;
        } else if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK && rc == 0) {
            char msg[512];
            rc = seterr(m, FOTA_EIO, "postgresql: reading %s back: %s", o->name,
                        pg_msg(r, m->pg, msg, sizeof(msg)));
        }
        PQclear(r);
    }
    sum_end(h, sum);
    EVP_MD_CTX_free(h);
    if (rc)
        return rc;
    if (rows != o->rows)
        return seterr(m, FOTA_ECHECKSUM, "table %s: the source has %" PRId64 " rows, the target "
                                         "%" PRId64 " after the copy",
                      o->name, o->rows, rows);
    if (strcmp(sum, o->sum) != 0)
        return seterr(m, FOTA_ECHECKSUM, "table %s: the target's rows differ from the source's "
                                         "(checksum %.16s... against %.16s...)",
                      o->name, sum, o->sum);
    return 0;
}

/* The largest id SQLite ever gave a row of name (id_floor keeps deleted
 * ones); 0 when it has none. */
static int64_t source_floor(struct fota_migrate_db *m, const char *name)
{
    sqlite3_stmt *st = NULL;
    int64_t v = 0;
    if (sqlite3_prepare_v2(m->src, "SELECT high FROM id_floor WHERE tbl = ?", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return v;
}

/* Table i's identity hands out max(largest id, id_floor) + 1 next. */
static int set_identity(struct fota_migrate_db *m, size_t i)
{
    const struct tbl *t = &m->t[i];
    struct fota_migrate_table *o = &m->out[i];
    char sql[400], q[FOTA_MIGRATE_NAME_MAX * 2 + 4], qc[FOTA_MIGRATE_NAME_MAX * 2 + 4], v[32];
    PGresult *r;

    if (!t->identity[0])
        return 0;
    quote(o->name, q, sizeof(q));
    quote(t->identity, qc, sizeof(qc));
    snprintf(sql, sizeof(sql), "SELECT COALESCE(MAX(%s), 0) FROM %s", qc, q);
    if (!(r = pg_rows(m, sql, 0, NULL, "identity")))
        return FOTA_EIO;
    int64_t high = strtoll(PQgetvalue(r, 0, 0), NULL, 10), floor = source_floor(m, o->name);
    PQclear(r);
    if (floor > high)
        high = floor;
    if (high <= 0)
        return 0;   /* nothing ever handed out: the identity starts at 1 */
    snprintf(v, sizeof(v), "%" PRId64, high);
    r = pg_rows(m, "SELECT setval(pg_get_serial_sequence(quote_ident($1), $2), $3::bigint)", 3,
                (const char *const[]){ o->name, t->identity, v }, "identity");
    if (!r)
        return FOTA_EIO;
    PQclear(r);
    o->next_id = high + 1;
    return 0;
}

int fota_migrate_db_copy(struct fota_migrate_db *m, char *err, size_t errlen)
{
    int rc;

    m->err = err;
    m->errlen = errlen;
    for (size_t i = 0; i < m->n; i++)
        if (!m->out[i].pg_only && (rc = copy_table(m, i)) != 0)
            return rc;
    for (size_t i = 0; i < m->n; i++)
        if (!m->out[i].pg_only && ((rc = verify_table(m, i)) != 0 || (rc = set_identity(m, i)) != 0))
            return rc;
    return 0;
}

const struct fota_migrate_table *fota_migrate_db_tables(const struct fota_migrate_db *m,
                                                        size_t *n)
{
    *n = m->n;
    return m->out;
}

int fota_migrate_db_commit(struct fota_migrate_db *m, char *err, size_t errlen)
{
    m->err = err;
    m->errlen = errlen;
    m->in_tx = 0;
    PGresult *r = PQexec(m->pg, "COMMIT");
    /* A transaction that failed answers COMMIT with ROLLBACK. */
    if (PQresultStatus(r) != PGRES_COMMAND_OK || strcmp(PQcmdStatus(r), "COMMIT") != 0)
        return pg_fail(m, r, "commit");
    PQclear(r);
    return 0;
}

void fota_migrate_db_free(struct fota_migrate_db *m)
{
    if (!m)
        return;
    if (m->pg && m->in_tx && PQstatus(m->pg) == CONNECTION_OK)
        PQclear(PQexec(m->pg, "ROLLBACK"));
    PQfinish(m->pg);
    sqlite3_close(m->src);
    free(m);
}
