import Synchronization

import var Glibc.CLOCK_MONOTONIC
import func Glibc.clock_gettime
import struct Glibc.timespec

/// The web configuration's `rate_limit`: a token bucket of `burst` tokens that gains one per `interval` (the
/// generic cell rate algorithm: one atomic "theoretical arrival time", no lock), as exporter-toolkit's
/// `rate.NewLimiter(rate.Every(interval), burst)`. ``allow()`` takes a token or says there is none.
///
/// Contract: safe from any thread; one compare-and-swap loop per request; a full bucket at creation.
final class RateLimiter: Sendable {
    /// The limit it enforces.
    let limit: (interval: Duration, burst: Int)
    private let interval: UInt64
    private let capacity: UInt64
    /// When the bucket would be full again, in monotonic nanoseconds (0: full now).
    private let theoreticalArrival = Atomic<UInt64>(0)

    init(interval: Duration, burst: Int) {
        limit = (interval, burst)
        let (seconds, attoseconds) = interval.components
        self.interval = max(1, UInt64(seconds) * 1_000_000_000 + UInt64(attoseconds / 1_000_000_000))
        // Saturated: a day's interval times a million burst is past 2^64 ns (a wrapped product made a small bucket,
        // or none). Half the range keeps `theoretical arrival − now` clear of wrapping too.
        let (product, overflow) = self.interval.multipliedReportingOverflow(by: UInt64(max(1, burst)))
        capacity = overflow ? UInt64.max >> 1 : min(product, UInt64.max >> 1)
        retryAfterSeconds = max(1, Int((Double(self.interval) / 1e9).rounded(.up)))
    }

    /// Seconds until a token comes at the latest (the interval, rounded up, at least 1): a 429's `Retry-After`.
    let retryAfterSeconds: Int

    /// Takes a token now: false when the bucket is empty (the request gets 429).
    func allow() -> Bool { allow(now: Self.now()) }

    /// ``allow()`` at `now` (monotonic nanoseconds).
    func allow(now: UInt64) -> Bool {
        var seen = theoreticalArrival.load(ordering: .relaxed)
        while true {
            let next = max(seen, now) &+ interval
            guard next &- now <= capacity else { return false }
            let (exchanged, original) = theoreticalArrival.compareExchange(
                expected: seen, desired: next, ordering: .relaxed)
            if exchanged { return true }
            seen = original
        }
    }

    /// Whether a token is there now, without taking it: a request's head is refused early (before its body is
    /// received) when it would be refused whole; the token is taken by ``allow()`` once the request is complete.
    func hasToken() -> Bool {
        let now = Self.now()
        return max(theoreticalArrival.load(ordering: .relaxed), now) &+ interval &- now <= capacity
    }

    static func now() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
    }
}
