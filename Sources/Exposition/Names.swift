/// Validation of metric and label names against the Prometheus data model and OpenMetrics.
///
/// Metric and label names: `[a-zA-Z][a-zA-Z0-9_]*`. Colons are legal in Prometheus but reserved for
/// recording rules, so an exporter refuses them; a leading `_` is reserved by OpenMetrics (and `__` by
/// Prometheus), so it is refused too.
enum Names {
    static func isNameStart(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
            || c == UInt8(ascii: "_")
    }

    static func isNameContinue(_ c: UInt8) -> Bool {
        isNameStart(c) || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"))
    }

    /// Returns the reason a name is not a legal identifier, or `nil` when it is.
    static func identifierProblem(_ name: String) -> String? {
        let bytes = Array(name.utf8)
        guard let first = bytes.first else { return "must not be empty" }
        if bytes.contains(UInt8(ascii: ":")) { return "colons are reserved for recording rules" }
        guard isNameStart(first) else { return "must start with a letter" }
        for c in bytes.dropFirst() where !isNameContinue(c) {
            return "may contain only letters, digits and underscores"
        }
        if bytes[0] == UInt8(ascii: "_") {
            return "names starting with \"_\" are reserved (\"__\" by Prometheus, any by OpenMetrics)"
        }
        return nil
    }

    static func validateMetricName(_ name: String) throws(ExpositionError) {
        if let problem = identifierProblem(name) { throw .invalidMetricName(name, reason: problem) }
    }

    /// Validates the label names of a family and returns them; `reserved` lists names that the
    /// family's type uses itself (`le` for histograms, `quantile` for summaries).
    static func validateLabelNames(
        _ labels: [String], metric: String, reserved: [String]
    ) throws(ExpositionError) {
        var seen = Set<String>()
        for label in labels {
            if let problem = identifierProblem(label) {
                throw .invalidLabelName(metric: metric, label: label, reason: problem)
            }
            if reserved.contains(label) {
                throw .invalidLabelName(
                    metric: metric, label: label, reason: "reserved by the metric type")
            }
            if !seen.insert(label).inserted { throw .duplicateLabelName(metric: metric, label: label) }
        }
    }
}
