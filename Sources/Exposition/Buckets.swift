#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Histogram bucket layouts: the validated upper bounds shared by every series of a family, with their
/// `le` label text pre-rendered for both formats.
public enum Buckets {
    /// client_golang's `DefBuckets`: 5 ms to 10 s, for request latencies in seconds.
    public static let defaultSeconds: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    /// `count` buckets of `width`, the first at `start`.
    public static func linear(start: Double, width: Double, count: Int) throws(ExpositionError) -> [Double] {
        guard count >= 1 else { throw .invalidBuckets(metric: "", reason: "count must be at least 1") }
        guard width > 0 && width.isFinite && start.isFinite else {
            throw .invalidBuckets(metric: "", reason: "width must be positive and finite")
        }
        return (0..<count).map { start + Double($0) * width }
    }

    /// `count` buckets, the first at `start`, each `factor` times the previous.
    public static func exponential(start: Double, factor: Double, count: Int) throws(ExpositionError) -> [Double] {
        guard count >= 1 else { throw .invalidBuckets(metric: "", reason: "count must be at least 1") }
        guard start > 0 && start.isFinite else { throw .invalidBuckets(metric: "", reason: "start must be positive") }
        guard factor > 1 && factor.isFinite else { throw .invalidBuckets(metric: "", reason: "factor must exceed 1") }
        var out: [Double] = []
        var v = start
        for _ in 0..<count {
            out.append(v)
            v *= factor
        }
        return out
    }

    /// `count` exponential buckets from `min` to `max` inclusive (client_golang's `ExponentialBucketsRange`).
    public static func exponentialRange(min: Double, max: Double, count: Int) throws(ExpositionError) -> [Double] {
        guard count >= 2 else { throw .invalidBuckets(metric: "", reason: "count must be at least 2") }
        guard min > 0 && max > min && max.isFinite else {
            throw .invalidBuckets(metric: "", reason: "need 0 < min < max")
        }
        let factor = pow(max / min, 1 / Double(count - 1))
        var out = try exponential(start: min, factor: factor, count: count)
        out[count - 1] = max
        return out
    }

    /// The bucket of `value` among increasing upper `bounds`: the first `i` with `value <= bounds[i]`, or
    /// `bounds.count` (the `+Inf` bucket) when there is none (NaN too). A binary search, no allocation.
    @inlinable @inline(__always)
    public static func index(of value: Double, in bounds: UnsafeBufferPointer<Double>) -> Int {
        var lo = 0
        var hi = bounds.count
        while lo < hi {
            let mid = (lo &+ hi) >> 1
            if value <= bounds[mid] { hi = mid } else { lo = mid &+ 1 }
        }
        return lo
    }

    /// Checks bounds: finite, strictly increasing (so no duplicates), at least one. A trailing `+Inf`
    /// is accepted and dropped (it is always added).
    public static func validate(_ bounds: [Double], metric: String) throws(ExpositionError) -> [Double] {
        var b = bounds
        if b.last == .infinity { b.removeLast() }
        guard !b.isEmpty else { throw .invalidBuckets(metric: metric, reason: "at least one finite bound is needed") }
        for (i, v) in b.enumerated() {
            guard v.isFinite else { throw .invalidBuckets(metric: metric, reason: "bound \(v) is not finite") }
            if i > 0 && !(b[i - 1] < v) {
                throw .invalidBuckets(
                    metric: metric,
                    reason: v == b[i - 1]
                        ? "duplicate bound \(v)" : "bounds must increase strictly (\(b[i - 1]) then \(v))")
            }
        }
        return b
    }
}
