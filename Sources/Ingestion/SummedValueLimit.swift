/// The largest magnitude accepted for a number the exporter adds into running sums: a regression model's prediction
/// and label, and `latency_seconds`. Beyond it the event is refused as ``RejectReason/invalidNumber``.
///
/// Why a bound below `Double.greatestFiniteMagnitude`: the sums are cumulative (counters since start, histogram sums,
/// Σe² and Σy² of regression quality). Two finite values near 1e308, or one squared error above ~1e154, make a sum
/// infinite; a counter that is not finite is refused at every scrape, and with it every series of its collector,
/// until a restart. With |x| ≤ 1e140, a square is at most 4e280 (an error of two such values), and 2^53 of them
/// still add up to less than `Double.greatestFiniteMagnitude`; a percentage error (|e| / max(|y|, ε)) stays below
/// 1e157. No meaningful prediction, label or latency comes near it.
public enum SummedValueLimit {
    /// The largest magnitude accepted: 1e140.
    public static let magnitude: Double = 1e140

    /// Whether `x` is finite and within ±``magnitude``.
    @inline(__always)
    public static func accepts(_ x: Double) -> Bool { abs(x) <= magnitude }
}
