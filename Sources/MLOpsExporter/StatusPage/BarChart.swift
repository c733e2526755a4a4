import ModelMonitoring

/// An inline SVG of a column's reference shares beside its current window's, one pair of bars per reference
/// bin. Each pair has a `<title>` with both shares in words, and the chart an `aria-label`, so nothing is
/// said by colour alone.
enum BarChart {
    static let width = 320.0
    static let height = 110.0
    static let bottom = 14.0

    static func render(_ d: ColumnDistribution, into h: inout HTMLText) {
        let total = Double(d.current.reduce(0, &+))
        let current = d.current.map { total > 0 ? Double($0) / total : 0 }
        let top = max(d.reference.max() ?? 0, current.max() ?? 0, 0.01)
        let n = Double(max(1, d.reference.count))
        let slot = width / n
        let bar = max(1, slot * 0.4)
        let plot = height - bottom
        h.raw(
            "<svg class=\"bars\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"")
        h.raw(HTMLText.attribute("\(d.column): reference and current window share per bin"))
        h.raw("\">")
        for i in d.reference.indices {
            let x = Double(i) * slot + slot * 0.1
            let r = d.reference[i] / top * plot
            let c = current[i] / top * plot
            h.raw("<g><title>")
            h.text(
                "\(d.binRanges[i]): reference \(Shown.percent(d.reference[i])), current \(Shown.percent(current[i])) (\(d.current[i]))"
            )
            h.raw("</title>")
            h.raw("<rect class=\"ref\" x=\"\(f(x))\" y=\"\(f(plot - r))\" width=\"\(f(bar))\" height=\"\(f(r))\"/>")
            h.raw(
                "<rect class=\"cur\" x=\"\(f(x + bar))\" y=\"\(f(plot - c))\" width=\"\(f(bar))\" height=\"\(f(c))\"/>")
            h.raw("</g>")
        }
        h.raw("<line class=\"axis\" x1=\"0\" y1=\"\(f(plot))\" x2=\"\(Int(width))\" y2=\"\(f(plot))\"/>")
        // First and last bin names under the axis (a categorical column's values, a numeric one's range ends).
        if let first = d.binRanges.first {
            h.raw("<text x=\"0\" y=\"\(Int(height - 2))\">")
            h.text(clip(first))
            h.raw("</text>")
        }
        if d.binRanges.count > 1, let last = d.binRanges.last {
            h.raw("<text x=\"\(Int(width))\" y=\"\(Int(height - 2))\" text-anchor=\"end\">")
            h.text(clip(last))
            h.raw("</text>")
        }
        h.raw("</svg>")
    }

    static func clip(_ s: String) -> String { s.count > 24 ? String(s.prefix(23)) + "…" : s }

    /// A coordinate with one decimal (coordinates are never negative).
    static func f(_ v: Double) -> String {
        let t = Int((max(0, v) * 10).rounded())
        return "\(t / 10).\(t % 10)"
    }
}
