import Exposition

/// Histogram bucket upper bounds, validated once, with the bucket index of a value found by binary search.
/// Bucket `i` holds values `<= bounds[i]` (and above the previous bound); index `bounds.count` is `+Inf`.
public struct BucketLayout: Sendable, Equatable {
    /// Finite, strictly increasing upper bounds (without `+Inf`).
    public let bounds: [Double]
    /// The same bounds with their `le` labels rendered, for emitting histograms.
    public let histogram: HistogramBounds

    /// Validates `bounds` (finite, strictly increasing; a trailing `+Inf` is dropped).
    public init(_ bounds: [Double], metric: String) throws(ExpositionError) {
        self.bounds = try Buckets.validate(bounds, metric: metric)
        histogram = try HistogramBounds(self.bounds, metric: metric)
    }

    /// Equal bounds.
    public static func == (a: BucketLayout, b: BucketLayout) -> Bool { a.bounds == b.bounds }

    /// Number of buckets including `+Inf`.
    public var bucketCount: Int { bounds.count + 1 }

    /// The bucket of `value` (NaN goes to `+Inf`; callers reject NaN before).
    @inline(__always)
    public func index(_ value: Double) -> Int {
        bounds.withUnsafeBufferPointer { Buckets.index(of: value, in: $0) }
    }
}
