import ModelMonitoring

/// An inline SVG of a column's reference shares beside its current window's, one pair of bars per reference
/// bin. Each pair has a `<title>` with both shares in words, and the chart an `aria-label`, so nothing is
/// said by colour alone.
enum BarChart {
    /// The chart's size (the markup below spells out 320 × 110, the text baseline 108) and its axis' space.
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
        h.raw("<svg class=\"bars\" viewBox=\"0 0 320 110\" role=\"img\" aria-label=\"")
        h.text(d.column)
        h.raw(": reference and current window share per bin\">")
        for i in d.reference.indices {
            let x = Double(i) * slot + slot * 0.1
            let r = d.reference[i] / top * plot
            let c = current[i] / top * plot
            h.raw("<g><title>")
            h.text(d.binRanges[i])
            h.raw(": reference ")
            h.shown(d.reference[i], .percent)
            h.raw(", current ")
            h.shown(current[i], .percent)
            h.raw(" (")
            h.int(Int(d.current[i]))
            h.raw(")</title><rect class=\"ref\" x=\"")
            h.oneDecimal(x)
            h.raw("\" y=\"")
            h.oneDecimal(plot - r)
            h.raw("\" width=\"")
            h.oneDecimal(bar)
            h.raw("\" height=\"")
            h.oneDecimal(r)
            h.raw("\"/><rect class=\"cur\" x=\"")
            h.oneDecimal(x + bar)
            h.raw("\" y=\"")
            h.oneDecimal(plot - c)
            h.raw("\" width=\"")
            h.oneDecimal(bar)
            h.raw("\" height=\"")
            h.oneDecimal(c)
            h.raw("\"/></g>")
        }
        h.raw("<line class=\"axis\" x1=\"0\" y1=\"")
        h.oneDecimal(plot)
        h.raw("\" x2=\"320\" y2=\"")
        h.oneDecimal(plot)
        h.raw("\"/>")
        // First and last bin names under the axis (a categorical column's values, a numeric one's range ends).
        if let first = d.binRanges.first {
            h.raw("<text x=\"0\" y=\"108\">")
            h.text(clip(first))
            h.raw("</text>")
        }
        if d.binRanges.count > 1, let last = d.binRanges.last {
            h.raw("<text x=\"320\" y=\"108\" text-anchor=\"end\">")
            h.text(clip(last))
            h.raw("</text>")
        }
        h.raw("</svg>")
    }

    static func clip(_ s: String) -> String { s.count > 24 ? String(s.prefix(23)) + "…" : s }
}
