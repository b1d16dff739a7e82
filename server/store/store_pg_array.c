/* store_pg_array.c - array parameters of the PostgreSQL store: a batch of
 * rows travels as one array per column ($N::int8[], text[], float8[]) that
 * the statement takes apart with unnest(), so n rows cost one statement
 * and one round trip instead of n. Arrays are sent in PostgreSQL's binary
 * form (array_recv): a header (dimensions, whether any element is NULL,
 * the element type, the length and lower bound of the one dimension), then
 * each element as a 32-bit length (-1 for NULL) and its bytes, integers
 * and doubles in network order. The server reads each element with a
 * byte swap instead of a decimal parse (the text form's int8in and its
 * separators, quotes and escapes), and fotad writes them without printf:
 * a push to 100,000 devices binds some millions of elements. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "store_pg_int.h"
#include "xmalloc.h"

#define HEAD 20   /* ndim, flags, element type, then the one dimension's length and lbound */

static void put32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
}

static void put64(char *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

static Oid elem_type(Oid array_type)
{
    switch (array_type) {
    case FOTA_PG_INT8_ARRAY: return (Oid)20;     /* int8 */
    case FOTA_PG_FLOAT8_ARRAY: return (Oid)701;  /* float8 */
    default: return (Oid)25;                     /* text */
    }
}

void fota_store_pg_array_init(struct pg_array_param *a, Oid type)
{
    memset(a, 0, sizeof *a);
    a->type = type;
    a->cap = 256;
    a->buf = fota_xmalloc(a->cap);
    a->len = HEAD;   /* written when bound: the count and the NULL flag are known then */
}

void fota_store_pg_array_free(struct pg_array_param *a)
{
    free(a->buf);
    a->buf = NULL;
}

/* Room for need more bytes. */
static void room(struct pg_array_param *a, size_t need)
{
    if (a->len + need <= a->cap)
        return;
    while (a->len + need > a->cap)
        a->cap *= 2;
    a->buf = fota_xrealloc(a->buf, a->cap);
}

/* An element of n bytes: its length word, room for its bytes at the
 * returned offset (buf may have moved: take it after the call). */
static size_t element(struct pg_array_param *a, size_t n)
{
    room(a, 4 + n);
    put32(a->buf + a->len, (uint32_t)n);
    a->len += 4;
    a->n++;
    size_t at = a->len;
    a->len += n;
    return at;
}

void fota_store_pg_array_int(struct pg_array_param *a, int64_t v)
{
    size_t at = element(a, 8);   /* first: it may move buf */
    put64(a->buf + at, (uint64_t)v);
}

void fota_store_pg_array_double(struct pg_array_param *a, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    size_t at = element(a, 8);
    put64(a->buf + at, bits);
}

void fota_store_pg_array_null(struct pg_array_param *a)
{
    room(a, 4);
    put32(a->buf + a->len, 0xFFFFFFFFu);
    a->len += 4;
    a->n++;
    a->nulls = 1;
}

void fota_store_pg_array_text(struct pg_array_param *a, const char *s, size_t n)
{
    size_t k = s ? strnlen(s, n) : 0;
    size_t at = element(a, k);
    if (k)
        memcpy(a->buf + at, s, k);
}

void fota_store_pg_param_array(struct pg_params *p, struct pg_array_param *a)
{
    int i = p->n++;

    if (i >= FOTA_PG_PARAMS_MAX)
        abort();   /* a statement with more parameters than the array: a bug, not input */
    /* An empty array has no dimension: its 12-byte header ends where the
     * elements would begin. */
    size_t at = a->n ? 0 : 8;
    put32(a->buf + at, a->n ? 1 : 0);
    put32(a->buf + at + 4, a->nulls ? 1 : 0);
    put32(a->buf + at + 8, elem_type(a->type));
    if (a->n) {
        put32(a->buf + 12, (uint32_t)a->n);
        put32(a->buf + 16, 1);
    }
    p->types[i] = a->type;
    p->values[i] = a->buf + at;
    p->lengths[i] = (int)(a->len - at);
    p->formats[i] = 1;
}

int fota_store_pg_array_next(const char **pp, char *out, size_t cap)
{
    const char *p = *pp;
    size_t k = 0;

    if (*p == '}')
        return 0;
    if (*p != '{' && *p != ',')
        return -1;
    p++;
    if (**pp == '{' && *p == '}') {   /* {} */
        *pp = p;
        return 0;
    }
    if (*p == '"') {
        for (p++; *p && *p != '"'; p++) {
            if (*p == '\\' && p[1])
                p++;
            if (k + 1 < cap)
                out[k++] = *p;
        }
        if (*p != '"')
            return -1;
        p++;
    } else {
        const char *s = p;
        for (; *p && *p != ',' && *p != '}'; p++)
            if (k + 1 < cap)
                out[k++] = *p;
        if (p - s == 4 && strncasecmp(s, "NULL", 4) == 0)
            k = 0;
    }
    if (*p != ',' && *p != '}')
        return -1;
    if (cap)
        out[k] = '\0';
    *pp = p;
    return 1;
}
