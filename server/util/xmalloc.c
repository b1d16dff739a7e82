/* xmalloc.c - allocate or abort (xmalloc.h). */
#include "xmalloc.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef FOTA_ALLOC_TORTURE
static unsigned long fail_at, counted;

void fota_xmalloc_fail_at(unsigned long n)
{
    __atomic_store_n(&counted, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&fail_at, n, __ATOMIC_RELAXED);
}

static int should_fail(void)
{
    unsigned long at = __atomic_load_n(&fail_at, __ATOMIC_RELAXED);
    return at && __atomic_add_fetch(&counted, 1, __ATOMIC_RELAXED) >= at;
}
#else
void fota_xmalloc_fail_at(unsigned long n)
{
    (void)n;
}

static int should_fail(void)
{
    return 0;
}
#endif

static void oom(size_t n)
{
    fprintf(stderr, "fotad: out of memory allocating %zu bytes\n", n);
    abort();
}

void *fota_xmalloc(size_t n)
{
    void *p = should_fail() ? NULL : malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *fota_xcalloc(size_t count, size_t size)
{
    void *p = should_fail() ? NULL : calloc(count ? count : 1, size ? size : 1);
    if (!p)
        oom(count * size);
    return p;
}

void *fota_xrealloc(void *p, size_t n)
{
    void *q = should_fail() ? NULL : realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

void *fota_xreallocarray(void *p, size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        oom(SIZE_MAX);
    return fota_xrealloc(p, count * size);
}

void *fota_xmemdup(const void *p, size_t n)
{
    void *q = fota_xmalloc(n);
    if (n)
        memcpy(q, p, n);
    return q;
}

char *fota_xstrndup(const char *s, size_t n)
{
    const char *nul = memchr(s, '\0', n);
    size_t k = nul ? (size_t)(nul - s) : n;
    char *q = fota_xmalloc(k + 1);
    memcpy(q, s, k);
    q[k] = '\0';
    return q;
}

char *fota_xstrdup(const char *s)
{
    return fota_xmemdup(s, strlen(s) + 1);
}

void fota_xmalloc_install(void)
{
    json_set_alloc_funcs(fota_xmalloc, free);
    event_set_mem_functions(fota_xmalloc, fota_xrealloc, free);
}
