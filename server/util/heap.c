/* heap.c - the heap's count and give-back over whichever allocator this
 * tree links (heap.h). */
#include "heap.h"

#include <malloc.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HEAP_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define HEAP_TSAN 1
#endif
#endif
#if defined(HEAP_ASAN) || defined(HEAP_TSAN)
#include <sanitizer/allocator_interface.h>
#endif

int64_t fota_heap_in_use(void)
{
#if defined(HEAP_ASAN) || defined(HEAP_TSAN)
    return (int64_t)__sanitizer_get_current_allocated_bytes();
#else
    /* Every arena: small chunks in use plus the mmap()ed large ones. */
    struct mallinfo2 mi = mallinfo2();
    return (int64_t)(mi.uordblks + mi.hblkhd);
#endif
}

int fota_heap_give_back(void)
{
#if defined(HEAP_ASAN)
    __sanitizer_purge_allocator();
    return 1;
#elif defined(HEAP_TSAN)
    /* The runtime has no purge entry point; what it keeps, it keeps. */
    return 0;
#else
    return malloc_trim(0);
#endif
}
