/* xmalloc.h - fotad's one allocation policy: allocate or abort.
 *
 * Every heap allocation of the daemon goes through these (redis zmalloc):
 * on out-of-memory they print one line to stderr and abort, so no caller
 * checks for NULL and no code path invents its own "out of memory" reply.
 * fota_xmalloc_install() routes jansson's and libevent's allocations through
 * the same functions. The device library and common/ allocate nothing. */
#ifndef FOTA_XMALLOC_H
#define FOTA_XMALLOC_H

#include <stddef.h>

void *fota_xmalloc(size_t n);
void *fota_xcalloc(size_t count, size_t size);
void *fota_xrealloc(void *p, size_t n);
/* fota_xreallocarray: realloc of count * size bytes; aborts on overflow too. */
void *fota_xreallocarray(void *p, size_t count, size_t size);
char *fota_xstrdup(const char *s);
char *fota_xstrndup(const char *s, size_t n);
void *fota_xmemdup(const void *p, size_t n);

/* Makes jansson and libevent allocate through the functions above. Call
 * once, before any JSON value or event base exists. */
void fota_xmalloc_install(void);

/* Test builds (FOTA_ALLOC_TORTURE): allocation number n (1-based, counted
 * from this call) and every one after it fail; 0 turns failures off. A
 * failure aborts as a real out-of-memory would. */
void fota_xmalloc_fail_at(unsigned long n);

#endif
