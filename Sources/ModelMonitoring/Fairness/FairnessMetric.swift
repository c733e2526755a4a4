/// The between-group comparisons the `fairness` collector reports per sensitive attribute: fairlearn's
/// unsigned definitions (between groups) and AIF360's signed ones (unprivileged minus privileged).
///
/// Each metric compares one rate across groups: the selection rate (P(ŷ=1), from every prediction), the
/// true positive rate (TP / (TP + FN), from joined outcomes) or the false positive rate (FP / (FP + TN)).
public enum FairnessMetric: String, Sendable, CaseIterable {
    /// fairlearn: max − min selection rate over the groups.
    case demographicParityDifference = "demographic_parity_difference"
    /// fairlearn: min / max selection rate over the groups.
    case demographicParityRatio = "demographic_parity_ratio"
    /// fairlearn (`agg="worst_case"`): max of the TPR difference and the FPR difference.
    case equalizedOddsDifference = "equalized_odds_difference"
    /// fairlearn (`agg="worst_case"`): min of the TPR ratio and the FPR ratio.
    case equalizedOddsRatio = "equalized_odds_ratio"
    /// fairlearn: max − min true positive rate over the groups.
    case equalOpportunityDifference = "equal_opportunity_difference"
    /// fairlearn: min / max true positive rate over the groups.
    case equalOpportunityRatio = "equal_opportunity_ratio"
    /// AIF360: SR(unprivileged) / SR(privileged).
    case disparateImpact = "disparate_impact"
    /// AIF360: SR(unprivileged) − SR(privileged).
    case statisticalParityDifference = "statistical_parity_difference"
    /// AIF360: ½[(FPR_u − FPR_p) + (TPR_u − TPR_p)].
    case averageOddsDifference = "average_odds_difference"
    /// AIF360's `equal_opportunity_difference`: TPR(unprivileged) − TPR(privileged) (signed; renamed so it
    /// cannot be mistaken for fairlearn's unsigned metric of the same name).
    case aif360EqualOpportunityDifference = "aif360_equal_opportunity_difference"

    /// The fairlearn metrics, reported for every attribute.
    public static let fairlearn: [FairnessMetric] = [
        .demographicParityDifference, .demographicParityRatio, .equalizedOddsDifference, .equalizedOddsRatio,
        .equalOpportunityDifference, .equalOpportunityRatio,
    ]

    /// The AIF360 metrics, reported for attributes with a `privileged` group.
    public static let aif360: [FairnessMetric] = [
        .disparateImpact, .statisticalParityDifference, .averageOddsDifference, .aif360EqualOpportunityDifference,
    ]

    /// The default acceptable range: a value below `lower` or above `upper` is a violation.
    ///
    /// Ratios: at least 0.8 (the four-fifths rule); unsigned differences: at most 0.1; disparate impact:
    /// [0.8, 1.25] (1.25 = 1 / 0.8); signed differences: [−0.1, 0.1].
    public var defaultBounds: FairnessBounds {
        switch self {
        case .demographicParityRatio, .equalizedOddsRatio, .equalOpportunityRatio: FairnessBounds(lower: 0.8)
        case .demographicParityDifference, .equalizedOddsDifference, .equalOpportunityDifference:
            FairnessBounds(upper: 0.1)
        case .disparateImpact: FairnessBounds(lower: 0.8, upper: 1.25)
        case .statisticalParityDifference, .averageOddsDifference, .aif360EqualOpportunityDifference:
            FairnessBounds(lower: -0.1, upper: 0.1)
        }
    }

    /// The shape of this metric's range, which decides how its `bounds` option is written
    /// (``FairnessOptions``).
    var kind: Kind {
        switch self {
        case .demographicParityRatio, .equalizedOddsRatio, .equalOpportunityRatio: .ratio
        case .demographicParityDifference, .equalizedOddsDifference, .equalOpportunityDifference: .difference
        case .disparateImpact: .signedRatio
        case .statisticalParityDifference, .averageOddsDifference, .aif360EqualOpportunityDifference:
            .signedDifference
        }
    }

    /// The shape of a metric's acceptable range.
    enum Kind {
        /// In [0, 1]; a lower bound.
        case ratio
        /// In [0, 1]; an upper bound.
        case difference
        /// Positive, 1 when equal; a lower and an upper bound.
        case signedRatio
        /// In [−1, 1], 0 when equal; a lower and an upper bound.
        case signedDifference
    }
}

/// A metric's acceptable range: values below ``lower`` or above ``upper`` are violations (the bounds
/// themselves are acceptable, to 12 significant digits: rates are ratios of counts, and a ratio of exactly four
/// fifths, 6/30 over 8/50, is 0.7999999999999999 in floating point; it was a violation).
public struct FairnessBounds: Sendable, Equatable {
    /// The smallest acceptable value, if bounded below.
    public var lower: Double?
    /// The largest acceptable value, if bounded above.
    public var upper: Double?

    /// Creates bounds.
    public init(lower: Double? = nil, upper: Double? = nil) {
        self.lower = lower
        self.upper = upper
    }

    /// Whether `value` lies outside the range.
    public func isViolated(by value: Double) -> Bool {
        if let lower, value < lower - Self.tolerance(lower) { return true }
        if let upper, value > upper + Self.tolerance(upper) { return true }
        return false
    }

    /// How far beyond `bound` a value still counts as on it: rounding, not unfairness.
    @inline(__always)
    static func tolerance(_ bound: Double) -> Double { abs(bound) * 1e-12 + 1e-15 }
}
