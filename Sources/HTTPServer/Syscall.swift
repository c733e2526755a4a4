import CSystemShims
import Glibc

/// Thin helpers over system calls: errno text, EINTR retries, the monotonic clock.
enum Syscall {
    /// The text for an errno value, e.g. "Connection reset by peer".
    static func describe(_ error: Int32) -> String {
        String(cString: cshims_strerror(error))
    }

    /// Nanoseconds on `CLOCK_MONOTONIC`; all deadlines use this clock.
    @inline(__always)
    static func monotonicNow() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) &* 1_000_000_000 &+ UInt64(spec.tv_nsec)
    }

    /// Whether bytes wait to be read from socket `fd` (a peek that takes none; a closed peer's end of stream is none).
    static func hasPendingInput(_ fd: Int32) -> Bool {
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) > 0
    }

    /// Closes `fd`, ignoring errors: on Linux the descriptor is released even when `close` fails,
    /// and retrying after EINTR could close a descriptor reused by another thread.
    static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }

    /// Sets an integer socket option; returns errno on failure.
    @discardableResult
    static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) -> Int32? {
        var value = value
        let result = setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size))
        return result == 0 ? nil : errno
    }
}
