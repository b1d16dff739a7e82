/* store_pg_array.c - array parameters of the PostgreSQL store: a batch of
 * rows travels as one array per column ($N::int8[], text[], float8[]) that
 * the statement takes apart with unnest(), so n rows cost one statement
 * and one round trip instead of n. Arrays are sent in PostgreSQL's text
 * form ({1,2,NULL}, {"a","b"}), every text element quoted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store_pg_int.h"
#include "xmalloc.h"

void fota_store_pg_array_init(struct pg_array_param *a, Oid type)
{
    memset(a, 0, sizeof *a);
    a->type = type;
    a->cap = 256;
    a->buf = fota_xmalloc(a->cap);
    a->buf[a->len++] = '{';
}

void fota_store_pg_array_free(struct pg_array_param *a)
{
    free(a->buf);
    a->buf = NULL;
}

/* Room for need more bytes, the closing brace and the NUL included. */
static void room(struct pg_array_param *a, size_t need)
{
    if (a->len + need + 2 <= a->cap)
        return;
    while (a->len + need + 2 > a->cap)
        a->cap *= 2;
    a->buf = fota_xrealloc(a->buf, a->cap);
}

static void sep(struct pg_array_param *a)
{
    if (a->n++)
        a->buf[a->len++] = ',';
}

void fota_store_pg_array_int(struct pg_array_param *a, int64_t v)
{
    room(a, 24);
    sep(a);
    a->len += (size_t)snprintf(a->buf + a->len, 22, "%lld", (long long)v);
}

void fota_store_pg_array_double(struct pg_array_param *a, double v)
{
    room(a, 32);
    sep(a);
    a->len += (size_t)snprintf(a->buf + a->len, 30, "%.17g", v);
}

void fota_store_pg_array_null(struct pg_array_param *a)
{
    room(a, 5);
    sep(a);
    memcpy(a->buf + a->len, "NULL", 4);
    a->len += 4;
}

void fota_store_pg_array_text(struct pg_array_param *a, const char *s, size_t n)
{
    size_t k = s ? strnlen(s, n) : 0;

    room(a, 2 * k + 3);
    sep(a);
    a->buf[a->len++] = '"';
    for (size_t i = 0; i < k; i++) {
        if (s[i] == '"' || s[i] == '\\')
            a->buf[a->len++] = '\\';
        a->buf[a->len++] = s[i];
    }
    a->buf[a->len++] = '"';
}

void fota_store_pg_param_array(struct pg_params *p, struct pg_array_param *a)
{
    int i = p->n++;

    if (i >= FOTA_PG_PARAMS_MAX)
        abort();   /* a statement with more parameters than the array: a bug, not input */
    a->buf[a->len] = '}';
    a->buf[a->len + 1] = '\0';
    p->types[i] = a->type;
    p->values[i] = a->buf;
    p->lengths[i] = 0;
    p->formats[i] = 0;
}
