/// Every way the metric model can refuse a definition or an input.
///
/// Each case carries enough context for a one-line message (``description``) naming the metric,
/// label or value at fault. The library never traps on bad input: it throws one of these.
public enum ExpositionError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A metric name does not match `[a-zA-Z_][a-zA-Z0-9_]*` or uses a reserved form.
    case invalidMetricName(String, reason: String)
    /// A label name does not match `[a-zA-Z_][a-zA-Z0-9_]*` or is reserved.
    case invalidLabelName(metric: String, label: String, reason: String)
    /// The same label name appears twice in one family.
    case duplicateLabelName(metric: String, label: String)
    /// `labels(...)` was given a different number of values than the family has label names.
    case labelCountMismatch(metric: String, expected: Int, got: Int)
    /// `labels([name: value])` named a label the family does not have, or left one out.
    case labelNamesMismatch(metric: String, expected: [String], got: [String])
    /// Histogram bucket bounds are not finite, not strictly increasing, or empty where required.
    case invalidBuckets(metric: String, reason: String)
    /// Summary quantiles are not in (0, 1), or not unique.
    case invalidQuantiles(metric: String, reason: String)
    /// A unit is malformed or the family name does not end with `_<unit>`.
    case invalidUnit(metric: String, unit: String, reason: String)
    /// Another family (or a collector) already produces this name, or one of its sample names.
    case alreadyRegistered(name: String, reason: String)
    /// An exemplar has too many characters in its labels, an invalid label, or a bad value.
    case invalidExemplar(reason: String)
    /// A state set was defined with no states, duplicate states, or `set` named an unknown state.
    case invalidState(metric: String, reason: String)
    /// Another option (time-to-live, window, sample) was out of its allowed range.
    case invalidOption(metric: String, reason: String)

    /// A one-line, human-readable message.
    public var description: String {
        switch self {
        case .invalidMetricName(let name, let reason):
            return "invalid metric name \"\(name)\": \(reason)"
        case .invalidLabelName(let metric, let label, let reason):
            return "metric \"\(metric)\": invalid label name \"\(label)\": \(reason)"
        case .duplicateLabelName(let metric, let label):
            return "metric \"\(metric)\": label name \"\(label)\" given more than once"
        case .labelCountMismatch(let metric, let expected, let got):
            return "metric \"\(metric)\": expected \(expected) label values, got \(got)"
        case .labelNamesMismatch(let metric, let expected, let got):
            return "metric \"\(metric)\": expected labels \(expected), got \(got)"
        case .invalidBuckets(let metric, let reason):
            return "histogram \"\(metric)\": invalid buckets: \(reason)"
        case .invalidQuantiles(let metric, let reason):
            return "summary \"\(metric)\": invalid quantiles: \(reason)"
        case .invalidUnit(let metric, let unit, let reason):
            return "metric \"\(metric)\": invalid unit \"\(unit)\": \(reason)"
        case .alreadyRegistered(let name, let reason):
            return "metric \"\(name)\" cannot be registered: \(reason)"
        case .invalidExemplar(let reason):
            return "invalid exemplar: \(reason)"
        case .invalidState(let metric, let reason):
            return "state set \"\(metric)\": \(reason)"
        case .invalidOption(let metric, let reason):
            return "metric \"\(metric)\": \(reason)"
        }
    }
}
