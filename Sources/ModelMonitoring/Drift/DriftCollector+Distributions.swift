import Exposition

/// One monitored column's reference distribution beside its current window, per reference bin: what a status
/// page draws next to the column's drift score (which `/metrics` carries; the window's counts per bin it does
/// not, as they would double the drift series).
public struct ColumnDistribution: Sendable {
    /// The feature's name, or `prediction` / `score`.
    public let column: String
    /// Whether this is the model's `prediction` or `score` rather than a feature.
    public let isOutput: Bool
    /// The drift method's name (the `method` label).
    public let method: String
    /// Whether the column is numeric (bins are value ranges) or categorical (bins are values).
    public let isNumeric: Bool
    /// The `bin` label of each bin: `underflow`, `1`…, `overflow` for a numeric column; the values, then
    /// `__other__`, for a categorical one.
    public let binLabels: [String]
    /// A numeric column's bin ranges as text (`< 3.2`, `3.2 – 7.9`, `> 12`); the values for a categorical one.
    public let binRanges: [String]
    /// Each bin's share of the reference.
    public let reference: [Double]
    /// Each bin's count in the current window.
    public let current: [UInt64]
}

extension DriftCollector {
    /// Every monitored column's reference and window counts per bin (features in configuration order, then
    /// `prediction`, then `score`), from the same sliding window the drift scores are computed over.
    public func windowDistributions(now: Double = WallClock.now()) -> [ColumnDistribution] {
        let window = ring.window(now: now)
        let outputs = [prediction, score].compactMap { $0 }
        return (features.map { ($0, false) } + outputs.map { ($0, true) }).map { (m, isOutput) in
            let c = m.column
            let current = (0..<c.binCount).map { window.total(c.base + $0) }
            let method = isWidened(m, window: window) ? DriftMethod.chiSquare : m.method
            return ColumnDistribution(
                column: c.name, isOutput: isOutput, method: method.rawValue, isNumeric: c.isNumeric,
                binLabels: c.binLabels,
                binRanges: c.binRanges, reference: c.referenceRatios, current: current)
        }
    }
}

extension Double {
    /// Fixed-point text with `decimals` digits after the point (no Foundation).
    func formatted(decimals: Int) -> String {
        guard isFinite else { return description }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (self * scale).rounded()
        let negative = scaled < 0
        let magnitude = Swift.abs(scaled)
        guard magnitude < 9e15 else { return description }
        let n = Int64(magnitude)
        let s = Int64(scale)
        var text = String(n / s)
        if decimals > 0 {
            var fraction = String(n % s)
            while fraction.count < decimals { fraction = "0" + fraction }
            text += "." + fraction
        }
        return negative && n != 0 ? "-" + text : text
    }
}
