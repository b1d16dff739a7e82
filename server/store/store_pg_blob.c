/* store_pg_blob.c - release files in PostgreSQL (migration 12: blobs,
 * blob_chunks), so that several fotad instances share what one of them was
 * given. A blob is a row (sha256, size, chunks) and its pieces of
 * FOTA_BLOB_CHUNK bytes. blob_put writes them in one durable transaction;
 * blob_fetch reads them a piece per statement, so one piece bounds the
 * memory a fetch holds. The bytes travel in binary form both ways (no hex
 * encoding of a megabyte). Callers verify what they fetched against its name
 * (blob.c: fota_blob_fill), so a damaged piece is caught there. */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "store_pg_int.h"

#define FOTA_PG_BYTEA ((Oid)17)

static void param_bytes(struct pg_params *p, const void *data, size_t len)
{
    fota_store_pg_param_null(p, FOTA_PG_BYTEA);
    p->values[p->n - 1] = data;
    p->lengths[p->n - 1] = (int)len;
    p->formats[p->n - 1] = 1;
}

static int put_tx(struct pg_conn *c, const char *sha256, const unsigned char *data, size_t len)
{
    size_t chunks = (len + FOTA_BLOB_CHUNK - 1) / FOTA_BLOB_CHUNK;
    struct pg_params p = { 0 };
    int64_t inserted = 0;
    int rc;

    if ((rc = fota_store_pg_begin(c, 1)) != 0)
        return rc;
    fota_store_pg_param_text(&p, sha256, FOTA_HASH_HEX);
    fota_store_pg_param_int(&p, (int64_t)len);
    fota_store_pg_param_int(&p, (int64_t)chunks);
    fota_store_pg_param_int(&p, fota_clock_wall_s());
    /* A blob another instance stored meanwhile waits on its key until that
     * transaction ends, and then is left as it is. */
    rc = fota_store_pg_exec(c, PQ_BLOB_INSERT,
                            "WITH n AS (INSERT INTO blobs (sha256, size, chunks, created)"
                            " VALUES ($1, $2, $3, $4) ON CONFLICT (sha256) DO NOTHING"
                            " RETURNING 1) SELECT COUNT(*) FROM n",
                            &p, "blob_put", &inserted);
    for (size_t i = 0; rc == 0 && inserted && i < chunks; i++) {
        size_t at = i * FOTA_BLOB_CHUNK, n = len - at < FOTA_BLOB_CHUNK ? len - at : FOTA_BLOB_CHUNK;
        struct pg_params q = { 0 };
        fota_store_pg_param_text(&q, sha256, FOTA_HASH_HEX);
        fota_store_pg_param_int(&q, (int64_t)i);
        param_bytes(&q, data + at, n);
        rc = fota_store_pg_exec(c, PQ_BLOB_CHUNK_INSERT,
                                "INSERT INTO blob_chunks (sha256, idx, data) VALUES ($1, $2, $3)",
                                &q, "blob_put", NULL);
    }
    return fota_store_pg_finish(c, rc);
}

int fota_store_pg_blob_put(struct fota_store *s, const char *sha256, const void *data, size_t len)
{
    struct pg_conn *c;
    int rc;

    if ((rc = fota_store_pg_enter(s, "blob_put", &c)) != 0)
        return rc;
    c->hot = 1;   /* no row of the catalog changes: the release that names it does */
    rc = FOTA_EAGAIN;
    for (int i = 0; i < FOTA_PG_TRIES && rc == FOTA_EAGAIN; i++)
        rc = put_tx(c, sha256, data, len);
    return fota_store_pg_leave(c, rc);
}

struct blob_head {
    int64_t size, chunks;
};

static void read_head(const PGresult *r, int row, void *out)
{
    struct blob_head *h = out;
    h->size = fota_store_pg_col_int(r, row, 0);
    h->chunks = fota_store_pg_col_int(r, row, 1);
}

int fota_store_pg_blob_fetch(struct fota_store *s, const char *sha256,
                             int (*sink)(void *ud, const void *data, size_t len), void *ud,
                             int64_t *size)
{
    struct pg_conn *c;
    struct blob_head h = { 0 };
    struct pg_params p = { 0 };
    int64_t got = 0;
    int rc;

    if ((rc = fota_store_pg_enter(s, "blob_fetch", &c)) != 0)
        return rc;
    fota_store_pg_param_text(&p, sha256, FOTA_HASH_HEX);
    rc = fota_store_pg_one(c, PQ_BLOB_GET, "SELECT size, chunks FROM blobs WHERE sha256 = $1", &p,
                           read_head, &h, "blob_fetch");
    if (rc == 0 && size)
        *size = h.size;
    for (int64_t i = 0; rc == 0 && i < h.chunks; i++) {
        struct pg_params q = { 0 };
        PGresult *r;
        fota_store_pg_param_text(&q, sha256, FOTA_HASH_HEX);
        fota_store_pg_param_int(&q, i);
        r = fota_store_pg_run(c, PQ_BLOB_CHUNK_GET,
                              "SELECT data FROM blob_chunks WHERE sha256 = $1 AND idx = $2", &q,
                              "blob_fetch", &rc);
        if (!r)
            break;
        if (PQntuples(r) != 1) {
            fota_store_logf(s, FOTA_LOG_ERROR, "blob piece missing in the database sha256=%s "
                            "piece=%lld of %lld", sha256, (long long)i, (long long)h.chunks);
            rc = FOTA_EIO;
        } else {
            /* text form: bytea's hex escape, undone here (one piece at a time) */
            size_t n = 0;
            unsigned char *b = PQunescapeBytea((const unsigned char *)PQgetvalue(r, 0, 0), &n);
            if (!b) {
                rc = FOTA_EIO;
            } else {
                got += (int64_t)n;
                rc = n > FOTA_BLOB_CHUNK ? FOTA_EIO : sink(ud, b, n);
                PQfreemem(b);
            }
        }
        PQclear(r);
    }
    if (rc == 0 && got != h.size) {
        fota_store_logf(s, FOTA_LOG_ERROR, "blob size differs in the database sha256=%s "
                        "size=%lld pieces_hold=%lld", sha256, (long long)h.size, (long long)got);
        rc = FOTA_EIO;
    }
    return fota_store_pg_leave(c, rc);
}
