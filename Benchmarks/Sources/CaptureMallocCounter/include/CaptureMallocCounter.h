// Counts the process's allocations (malloc, calloc, realloc, posix_memalign, aligned_alloc) for capture-profile:
// the executable's definitions take precedence over glibc's, which they call through its __libc_* entry points.
#ifndef CAPTURE_MALLOC_COUNTER_H
#define CAPTURE_MALLOC_COUNTER_H

/// Allocations so far (not thread-safe: the profile is single-threaded while it measures).
long capture_malloc_count(void);

#endif
