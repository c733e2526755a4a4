/// The two exposition formats, and how to choose between them from an HTTP `Accept` header.
public enum ExpositionFormat: Sendable, Hashable, CaseIterable {
    /// Prometheus text format 0.0.4.
    case text
    /// OpenMetrics 1.0.0 text.
    case openMetrics

    /// The exact `Content-Type` a scraper expects for this format.
    public var contentType: String {
        switch self {
        case .text: return "text/plain; version=0.0.4; charset=utf-8"
        case .openMetrics: return "application/openmetrics-text; version=1.0.0; charset=utf-8"
        }
    }
}

/// Constraints OpenMetrics puts on values that text 0.0.4 does not.
enum OpenMetricsRules {
    /// Histogram and summary `_sum` samples are counter-like in OpenMetrics: never negative or NaN, and
    /// absent when a bucket bound is negative or a negative value was ever observed (`negativeBounds` then: a
    /// sum that could go down is no counter). `_count` is written only together with `_sum`.
    static func allowsSum(_ sum: Double, negativeBounds: Bool) -> Bool {
        !negativeBounds && sum >= 0
    }

    /// Summary quantile values must not be negative in OpenMetrics (NaN, for "no observations", is allowed).
    static func allowsQuantile(_ value: Double) -> Bool { !(value < 0) }
}
