#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Clock readings used by the metric model: monotonic nanoseconds for time-to-live and windows,
/// wall-clock seconds for `_created` samples and `setToCurrentTime()`.
enum Clock {
    static func monotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    static func unixSeconds() -> Double { WallClock.now() }
}

/// Unix time in seconds (`CLOCK_REALTIME`), for stamping when something happened (not for measuring
/// durations: it can jump).
public enum WallClock {
    /// Seconds since the Unix epoch, with sub-second precision.
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Seconds by which a time kept from an earlier reading (an arrival, a last event) may be after now before the
    /// clock is taken to have stepped back since (an NTP step, a virtual machine's clock set right): readings by
    /// concurrent threads, and a receipt time read before a short queue, differ by far less. The stores of arrival
    /// times move their times back by such a step rather than wait for the clock to catch up with them.
    public static let stepBackTolerance = 60.0
}

extension Duration {
    /// The duration in seconds as a `Double`, its fraction kept.
    public var seconds: Double {
        let (s, a) = components
        return Double(s) + Double(a) / 1e18
    }

    /// Whole nanoseconds, saturating at `UInt64.max` (and 0 for negative durations).
    var saturatingNanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        guard seconds >= 0 else { return 0 }
        let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return .max }
        let (total, overflow2) = whole.addingReportingOverflow(UInt64(max(0, attoseconds) / 1_000_000_000))
        return overflow2 ? .max : total
    }
}
