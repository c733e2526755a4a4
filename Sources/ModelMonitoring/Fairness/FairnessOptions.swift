/// The `fairness` collector's options, validated.
///
/// ```yaml
/// collectors:
///   - name: fairness
///     options:
///       min_group_observations: 30   # a group's rate joins the comparisons from this many observations
///       include_other: true          # whether __other__ (unknown or missing attribute values) is compared
///       bounds:                      # per metric; defaults in FairnessMetric.defaultBounds
///         demographic_parity_ratio: 0.9          # ratios: the lower bound
///         equalized_odds_difference: 0.05        # unsigned differences: the upper bound
///         disparate_impact: [0.8, 1.2]           # [lower, upper], or b in (0, 1] for [b, 1/b]
///         statistical_parity_difference: 0.05    # [lower, upper], or b >= 0 for [-b, b]
/// ```
struct FairnessOptions: Sendable {
    /// The default ``minGroupObservations``.
    static let defaultMinGroupObservations = 30

    /// The smallest denominator a group's rate needs in the window to join a comparison: predictions for
    /// the selection rate, actual positives (TP + FN) for the true positive rate, actual negatives
    /// (FP + TN) for the false positive rate.
    var minGroupObservations = defaultMinGroupObservations
    /// Whether `__other__` takes part in the comparisons (and in AIF360's unprivileged pool).
    var includeOther = true
    /// The acceptable range of each metric.
    var bounds: [FairnessMetric: FairnessBounds] = Dictionary(
        uniqueKeysWithValues: FairnessMetric.allCases.map { ($0, $0.defaultBounds) })

    init(_ options: CollectorOptions) throws(ModelCollectorError) {
        try options.checkAllowed(["min_group_observations", "include_other", "bounds"])
        if let n = try options.integer("min_group_observations", in: 1...1_000_000_000) { minGroupObservations = n }
        if let b = try options.bool("include_other") { includeOther = b }
        if let b = try options.map("bounds") {
            for key in b.values.keys.sorted() {
                guard let metric = FairnessMetric(rawValue: key) else {
                    throw b.error(
                        key,
                        "unknown metric (known: \(FairnessMetric.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                bounds[metric] = try Self.bounds(metric, b, key)
            }
        }
    }

    /// Parses one metric's bound: a number whose meaning depends on the metric's kind, or (two-sided
    /// metrics) a `[lower, upper]` pair.
    static func bounds(
        _ metric: FairnessMetric, _ options: CollectorOptions, _ key: String
    ) throws(ModelCollectorError) -> FairnessBounds {
        let value = options.values[key]
        if case .list = value {
            guard metric.kind == .signedRatio || metric.kind == .signedDifference else {
                throw options.error(key, "expected one number (a \(metric.kind == .ratio ? "lower" : "upper") bound)")
            }
            guard let pair = try options.numbers(key), pair.count == 2, pair.allSatisfy(\.isFinite),
                pair[0] <= pair[1]
            else {
                throw options.error(key, "expected [lower, upper] with lower <= upper")
            }
            if metric.kind == .signedRatio && pair[0] <= 0 {
                throw options.error(key, "the lower bound of a ratio must be > 0")
            }
            return FairnessBounds(lower: pair[0], upper: pair[1])
        }
        guard let b = try options.number(key), b.isFinite else { throw options.error(key, "expected a number") }
        switch metric.kind {
        case .ratio:
            guard b >= 0 && b <= 1 else { throw options.error(key, "a ratio's lower bound must lie in [0, 1]") }
            return FairnessBounds(lower: b)
        case .difference:
            guard b >= 0 && b <= 1 else { throw options.error(key, "a difference's upper bound must lie in [0, 1]") }
            return FairnessBounds(upper: b)
        case .signedRatio:
            guard b > 0 && b <= 1 else {
                throw options.error(key, "expected b in (0, 1] (the range [b, 1/b]) or [lower, upper]")
            }
            return FairnessBounds(lower: b, upper: 1 / b)
        case .signedDifference:
            guard b >= 0 else { throw options.error(key, "expected b >= 0 (the range [-b, b]) or [lower, upper]") }
            return FairnessBounds(lower: -b, upper: b)
        }
    }
}
