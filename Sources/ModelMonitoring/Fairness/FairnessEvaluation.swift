/// The between-group comparisons of one sensitive attribute, from its groups' window counts.
///
/// A group takes part in a comparison of a rate only when that rate's denominator reaches the minimum
/// (predictions for the selection rate, actual positives for the TPR, both actual positives and actual
/// negatives for equalized odds), and only if it is compared at all (`__other__` may be left out). A metric
/// needs at least two such groups; AIF360's need the privileged group and at least one other.
enum FairnessEvaluation {
    /// The metrics that are defined, in ``FairnessMetric`` order.
    ///
    /// - Parameters:
    ///   - groups: every group's counts, by group index.
    ///   - compared: whether each group may take part.
    ///   - privileged: the privileged group's index, for the AIF360 metrics.
    ///   - minimum: the smallest denominator a rate needs.
    static func evaluate(
        _ groups: [GroupCounts], compared: [Bool], privileged: Int?, minimum: Double
    ) -> [(metric: FairnessMetric, value: Double)] {
        let indices = groups.indices.filter { compared[$0] }
        let bySelection = indices.filter { groups[$0].predictions >= minimum }
        let byOpportunity = indices.filter { groups[$0].positives >= minimum }
        let byOdds = byOpportunity.filter { groups[$0].negatives >= minimum }
        var out: [(metric: FairnessMetric, value: Double)] = []
        func add(_ metric: FairnessMetric, _ value: Double?) {
            if let value { out.append((metric, value)) }
        }
        if bySelection.count >= 2 {
            let rates = bySelection.map { groups[$0].selected / groups[$0].predictions }
            add(.demographicParityDifference, difference(rates))
            add(.demographicParityRatio, ratio(rates))
        }
        if byOdds.count >= 2 {
            let tpr = byOdds.map { groups[$0].truePositives / groups[$0].positives }
            let fpr = byOdds.map { groups[$0].falsePositives / groups[$0].negatives }
            add(.equalizedOddsDifference, max(difference(tpr), difference(fpr)))
            let ratios = [ratio(tpr), ratio(fpr)].compactMap { $0 }
            add(.equalizedOddsRatio, ratios.min())
        }
        if byOpportunity.count >= 2 {
            let tpr = byOpportunity.map { groups[$0].truePositives / groups[$0].positives }
            add(.equalOpportunityDifference, difference(tpr))
            add(.equalOpportunityRatio, ratio(tpr))
        }
        guard let p = privileged else { return out }
        let privilegedCounts = groups[p]
        func pooled(_ set: [Int]) -> GroupCounts? {
            guard set.contains(p) && set.count >= 2 else { return nil }
            return set.filter { $0 != p }.reduce(GroupCounts()) { $0 + groups[$1] }
        }
        if let u = pooled(bySelection) {
            let su = u.selected / u.predictions
            let sp = privilegedCounts.selected / privilegedCounts.predictions
            add(.disparateImpact, su == 0 && sp == 0 ? nil : su / sp)
            add(.statisticalParityDifference, su - sp)
        }
        if let u = pooled(byOdds) {
            let p = privilegedCounts
            add(
                .averageOddsDifference,
                0.5
                    * ((u.falsePositives / u.negatives - p.falsePositives / p.negatives)
                        + (u.truePositives / u.positives - p.truePositives / p.positives)))
        }
        if let u = pooled(byOpportunity) {
            add(
                .aif360EqualOpportunityDifference,
                u.truePositives / u.positives - privilegedCounts.truePositives / privilegedCounts.positives)
        }
        return out
    }

    /// max − min (fairlearn's `difference(method="between_groups")`).
    static func difference(_ values: [Double]) -> Double { values.max()! - values.min()! }

    /// min / max (fairlearn's `ratio(method="between_groups")`); nil when every value is 0 (0/0, where
    /// fairlearn gives NaN).
    static func ratio(_ values: [Double]) -> Double? {
        let high = values.max()!
        return high == 0 ? nil : values.min()! / high
    }
}
