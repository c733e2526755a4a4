/// The metric types of OpenMetrics 1.0 that this library produces.
///
/// Text 0.0.4 has fewer types: an info or state set is written there as a `gauge`, unknown as `untyped`.
public enum MetricType: String, Sendable, Hashable {
    case counter, gauge, histogram, summary, info, stateset, unknown

    var openMetricsName: String { rawValue }

    var textName: String {
        switch self {
        case .counter: return "counter"
        case .gauge, .info, .stateset: return "gauge"
        case .histogram: return "histogram"
        case .summary: return "summary"
        case .unknown: return "untyped"
        }
    }

    /// Label names the type itself uses, which a user may not declare.
    var reservedLabelNames: [String] {
        switch self {
        case .histogram: return ["le"]
        case .summary: return ["quantile"]
        default: return []
        }
    }

    /// Suffixes the type appends to the family name; all of them are reserved for the family.
    var sampleSuffixes: [String] {
        switch self {
        case .counter: return ["_total", "_created"]
        case .histogram: return ["_bucket", "_count", "_sum", "_created"]
        case .summary: return ["_count", "_sum", "_created"]
        case .info: return ["_info"]
        case .gauge, .stateset, .unknown: return []
        }
    }
}
