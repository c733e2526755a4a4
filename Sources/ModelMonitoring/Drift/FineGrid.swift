/// The fine histogram's equal-width bins over a reference range `[min, max]`, and the one function that bins a value
/// into them: ``ProfileBuilder`` builds a profile's `fine` counts with it and the drift collector bins every live value
/// with it, so that the same value lands in the same bin on both sides whatever the range (a range narrower than the
/// bins' precision included: identical data then compares equal, KS D 0).
///
/// The binning is `numpy.histogram`'s: bin `i` holds `x` with `edge(i) <= x < edge(i + 1)`, the last bin closed at
/// `max`, where `edge(k) = k·((max − min)/bins) + min` and `edge(bins) = max`; the index comes from the scaled offset
/// `(x − min)·(bins/(max − min))`, then is corrected by one against those edges. Trivially copyable (the collector
/// keeps one per column in its per-event plan).
public struct FineGrid: Sendable, Equatable {
    /// The range's lower end (the reference's smallest value).
    public let min: Double
    /// The range's upper end (the reference's largest value).
    public let max: Double
    /// Number of bins (at least 1).
    public let bins: Int
    /// `bins / (max − min)`: infinite for a range narrower than Double's precision, 0 for one wider than its range.
    let norm: Double
    /// `(max − min) / bins`, the bins' width.
    let step: Double

    /// The grid of `bins` bins over `[min, max]`.
    public init(min: Double, max: Double, bins: Int) {
        precondition(bins >= 1)
        self.min = min
        self.max = max
        self.bins = bins
        norm = Double(bins) / (max - min)
        step = (max - min) / Double(bins)
    }

    /// The bin of `x`, a value in `[min, max]`: always in `0..<bins`, and 0 when `min == max` (a point mass). A range
    /// Double cannot scale (`max − min` infinite, or below the bins' precision) gives NaN or infinite scaled offsets:
    /// they are clamped, never converted, so no value traps.
    @inline(__always)
    public func bin(of x: Double) -> Int {
        guard max > min else { return 0 }
        let last = bins &- 1
        let scaled = (x - min) * norm
        var index = scaled >= 0 ? (scaled < Double(bins) ? Int(scaled) : last) : 0
        // ``edge(_:)`` of bins below the last, inlined: neither edge read here is `edge(bins)`.
        if x < Double(index) * step + min {
            index &-= 1
        } else if index != last && x >= Double(index &+ 1) * step + min {
            index &+= 1
        }
        return Swift.max(0, Swift.min(last, index))
    }

    /// The left edge of bin `k` (`max` for `k == bins`).
    @inline(__always)
    func edge(_ k: Int) -> Double { k == bins ? max : Double(k) * step + min }
}
