#include "CaptureMallocCounter.h"

#include <errno.h>
#include <stddef.h>

#if defined(__linux__) && defined(__GLIBC__)
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static long allocations;

void *malloc(size_t size) {
    allocations++;
    return __libc_malloc(size);
}

void *calloc(size_t count, size_t size) {
    allocations++;
    return __libc_calloc(count, size);
}

void *realloc(void *pointer, size_t size) {
    allocations++;
    return __libc_realloc(pointer, size);
}

int posix_memalign(void **out, size_t alignment, size_t size) {
    allocations++;
    void *p = __libc_memalign(alignment, size);
    if (p == NULL) return ENOMEM;
    *out = p;
    return 0;
}

void *aligned_alloc(size_t alignment, size_t size) {
    allocations++;
    return __libc_memalign(alignment, size);
}
// Referenced from capture_malloc_count so that the linker's section garbage collection keeps the definitions
// (it would drop them otherwise: nothing in the executable calls them by name).
static void *volatile keep[] = {(void *)malloc, (void *)calloc, (void *)realloc, (void *)posix_memalign,
                                (void *)aligned_alloc};

long capture_malloc_count(void) {
    (void)keep[0];
    return allocations;
}
#else
long capture_malloc_count(void) { return -1; }
#endif
