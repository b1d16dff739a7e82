/* heap.h - what fotad's heap holds, and its freed pages handed back.
 *
 * Resident memory (RSS) is what the system sees; the heap count is what the
 * program itself still holds, so the two together tell a leak from memory the
 * allocator keeps for later. Each tree has its own allocator: glibc's in the
 * release tree, the sanitizers' runtimes in theirs. */
#ifndef FOTA_HEAP_H
#define FOTA_HEAP_H

#include <stdint.h>

/* Bytes allocated and not yet freed, all threads; -1 if unknown. */
int64_t fota_heap_in_use(void);
/* Hands freed pages back to the system where the allocator can (glibc's
 * malloc_trim, ASan's purge); returns 1 if it did, 0 if there was nothing
 * to hand back or the allocator cannot (ThreadSanitizer's runtime). */
int fota_heap_give_back(void);

#endif
