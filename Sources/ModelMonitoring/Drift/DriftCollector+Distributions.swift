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
            let ranges: [String]
            switch c.kind {
            case .numeric(let p):
                let bounds = [p.min] + p.edges + [p.max]
                ranges = (0..<c.binCount).map { i in
                    if i == 0 { return "< \(Self.short(p.min))" }
                    if i == c.binCount - 1 { return "> \(Self.short(p.max))" }
                    return "\(Self.short(bounds[i - 1])) – \(Self.short(bounds[i]))"
                }
            case .categorical:
                ranges = c.binLabels
            }
            return ColumnDistribution(
                column: c.name, isOutput: isOutput, method: m.method.rawValue, isNumeric: c.isNumeric,
                binLabels: c.binLabels,
                binRanges: ranges, reference: c.referenceRatios, current: current)
        }
    }

    /// A bound with at most 4 significant digits.
    static func short(_ x: Double) -> String {
        if x == x.rounded() && abs(x) < 1e9 { return String(Int(x)) }
        let magnitude = abs(x)
        let decimals = magnitude >= 100 ? 1 : magnitude >= 1 ? 2 : 3
        var s = String(x.formatted(decimals: decimals))
        while s.utf8.contains(UInt8(ascii: ".")) && (s.hasSuffix("0") || s.hasSuffix(".")) { s.removeLast() }
        return s
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
