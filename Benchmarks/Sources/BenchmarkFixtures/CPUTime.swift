#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// CPU time of the calling thread, in nanoseconds (`CLOCK_THREAD_CPUTIME_ID`): not inflated by other
/// processes sharing the core.
public func threadCPUNanos() -> Int {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return Int(t.tv_sec) * 1_000_000_000 + Int(t.tv_nsec)
}

/// CPU time of the whole process (all threads, user + system), in nanoseconds.
public func processCPUNanos() -> Int {
    var t = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
    return Int(t.tv_sec) * 1_000_000_000 + Int(t.tv_nsec)
}
