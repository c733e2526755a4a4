// Lets ThreadSanitizer see Synchronization.Mutex when it is contended. Built and LD_PRELOADed by scripts/sanitize --tsan.
//
// Swift's `Mutex` on Linux (Swift 6.3) is a futex word. Its fast paths are inlined into our code (`_lock`: a CAS
// 0 -> tid with acquire ordering; `_unlock`: a CAS tid -> 0 with release ordering), so TSan instruments them and sees
// the happens-before edge of an uncontended lock hand-over. The contended paths are not inlined: `_lockSlow` (spins,
// then FUTEX_LOCK_PI), `_tryLockSlow` (FUTEX_TRYLOCK_PI) and `_unlockSlow` (FUTEX_UNLOCK_PI) live in
// libswiftSynchronization.so, which is not instrumented, and with PI futexes the kernel hands the lock to the next
// owner. So TSan misses the edge and reports every access made under a contended Mutex as a data race (checked with a
// 4-thread counter under one Mutex: races reported without this file, none with it, and an access outside the lock
// still reported).
//
// This library defines those three exported functions (Swift calling convention: the handle, i.e. the address of the
// futex word, is `self` in the swiftself register, r13), calls the real ones and tells TSan what they did: acquire
// on the handle after a slow lock succeeds, release on it before a slow unlock. The fast paths release and acquire on
// the same address, so every hand-over of a Mutex is now a happens-before edge TSan knows. `__tsan_acquire` and
// `__tsan_release` come from the instrumented executable (weak: in an uninstrumented process that loads this library
// through LD_PRELOAD, such as `swift test` itself, they are absent and nothing is annotated).
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

__attribute__((weak)) void __tsan_acquire(void *addr);
__attribute__((weak)) void __tsan_release(void *addr);

#define LOCK_SLOW "$s15Synchronization12_MutexHandleV9_lockSlowyys6UInt32VF"
#define TRY_LOCK_SLOW "$s15Synchronization12_MutexHandleV12_tryLockSlowSbyF"
#define UNLOCK_SLOW "$s15Synchronization12_MutexHandleV11_unlockSlowyyF"
#define SWIFTCALL __attribute__((swiftcall))
#define SELF __attribute__((swift_context)) // swift_context is LLVM's swiftself (r13)

static void *real(const char *name) {
    void *f = dlsym(RTLD_NEXT, name);
    if (f == NULL) {
        fprintf(stderr, "tsan-mutex: %s not found in libswiftSynchronization.so (another Swift version?)\n", name);
        abort();
    }
    return f;
}

static void acquire(void *handle) {
    if (__tsan_acquire) __tsan_acquire(handle);
}

static void release(void *handle) {
    if (__tsan_release) __tsan_release(handle);
}

SWIFTCALL void lock_slow(uint32_t self_id, SELF void *handle) __asm__(LOCK_SLOW);
SWIFTCALL void lock_slow(uint32_t self_id, SELF void *handle) {
    static SWIFTCALL void (*f)(uint32_t, SELF void *);
    if (f == NULL) f = real(LOCK_SLOW);
    f(self_id, handle);
    acquire(handle);
}

SWIFTCALL bool try_lock_slow(SELF void *handle) __asm__(TRY_LOCK_SLOW);
SWIFTCALL bool try_lock_slow(SELF void *handle) {
    static SWIFTCALL bool (*f)(SELF void *);
    if (f == NULL) f = real(TRY_LOCK_SLOW);
    bool locked = f(handle);
    if (locked) acquire(handle);
    return locked;
}

SWIFTCALL void unlock_slow(SELF void *handle) __asm__(UNLOCK_SLOW);
SWIFTCALL void unlock_slow(SELF void *handle) {
    static SWIFTCALL void (*f)(SELF void *);
    if (f == NULL) f = real(UNLOCK_SLOW);
    release(handle);
    f(handle);
}
