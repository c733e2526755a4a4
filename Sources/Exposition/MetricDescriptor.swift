/// What a family is: its name, type, help, unit and label names. Registered families and
/// collectors describe themselves with descriptors, which the registry checks for conflicts.
///
/// `name` is the OpenMetrics family name: for a counter without `_total`, for an info without `_info`.
/// Constructing a descriptor validates everything that can be validated without a registry.
public struct MetricDescriptor: Sendable, Hashable {
    /// The family name (for counters, without `_total`; for infos, without `_info`).
    public let name: String
    /// The metric type.
    public let type: MetricType
    /// HELP text (may be empty; promtool warns about that).
    public let help: String
    /// UNIT, or empty. When set, `name` ends with `_<unit>`.
    public let unit: String
    /// Label names, in the order the family was declared with.
    public let labelNames: [String]

    /// Validates and builds a descriptor.
    ///
    /// A counter name given with `_total`, or an info name given with `_info`, is accepted and the
    /// suffix removed. Throws for invalid or reserved names, duplicate labels, a reserved label for the
    /// type (`le`, `quantile`, or a state set's own name) and a unit that the name does not end with.
    public init(
        name: String, type: MetricType, help: String, unit: String = "", labelNames: [String] = []
    ) throws(ExpositionError) {
        var base = name
        if type == .counter, base.hasSuffix("_total") { base.removeLast("_total".count) }
        if type == .info, base.hasSuffix("_info") { base.removeLast("_info".count) }
        try Names.validateMetricName(base)
        var reserved = type.reservedLabelNames
        if type == .stateset { reserved.append(base) }
        try Names.validateLabelNames(labelNames, metric: base, reserved: reserved)
        if !unit.isEmpty {
            if type == .info || type == .stateset {
                throw .invalidUnit(metric: base, unit: unit, reason: "info and state set families have no unit")
            }
            if let problem = Names.identifierProblem(unit) {
                throw .invalidUnit(metric: base, unit: unit, reason: problem)
            }
            if !base.hasSuffix("_" + unit) {
                throw .invalidUnit(metric: base, unit: unit, reason: "the metric name must end with \"_\(unit)\"")
            }
        }
        self.name = base
        self.type = type
        self.help = help
        self.unit = unit
        self.labelNames = labelNames
    }

    /// Every sample name this family may write, the family name included.
    var reservedNames: [String] { [name] + type.sampleSuffixes.map { name + $0 } }
}
