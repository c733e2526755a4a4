/// One group's counts (over the window, or since start): predictions and how many were selected
/// (predicted positive), and the confusion counts of its joined outcomes.
struct GroupCounts: Sendable, Equatable {
    /// The slots per group in the collector's layout, in this order.
    static let width = 6
    /// Slot offsets within a group's block.
    static let predictionsSlot = 0
    static let selectedSlot = 1
    static let truePositiveSlot = 2
    static let falsePositiveSlot = 3
    static let falseNegativeSlot = 4
    static let trueNegativeSlot = 5
    /// The `outcome` label values of the confusion slots, in slot order (from ``truePositiveSlot``).
    static let outcomeLabels = ["tp", "fp", "fn", "tn"]

    var predictions: Double = 0
    var selected: Double = 0
    var truePositives: Double = 0
    var falsePositives: Double = 0
    var falseNegatives: Double = 0
    var trueNegatives: Double = 0

    /// Counts from `slots`, laid out as above.
    init(slots: [Double]) {
        predictions = slots[Self.predictionsSlot]
        selected = slots[Self.selectedSlot]
        truePositives = slots[Self.truePositiveSlot]
        falsePositives = slots[Self.falsePositiveSlot]
        falseNegatives = slots[Self.falseNegativeSlot]
        trueNegatives = slots[Self.trueNegativeSlot]
    }

    init() {}

    /// Joined outcomes whose actual class is the positive one (the TPR's denominator).
    var positives: Double { truePositives + falseNegatives }
    /// Joined outcomes whose actual class is not the positive one (the FPR's denominator).
    var negatives: Double { falsePositives + trueNegatives }
    /// P(ŷ = 1), nil without predictions.
    var selectionRate: Double? { predictions > 0 ? selected / predictions : nil }
    /// TP / (TP + FN), nil without actual positives.
    var truePositiveRate: Double? { positives > 0 ? truePositives / positives : nil }
    /// FP / (FP + TN), nil without actual negatives.
    var falsePositiveRate: Double? { negatives > 0 ? falsePositives / negatives : nil }

    /// The sum of two groups' counts (AIF360's pooled unprivileged group).
    static func + (a: GroupCounts, b: GroupCounts) -> GroupCounts {
        var s = a
        s.predictions += b.predictions
        s.selected += b.selected
        s.truePositives += b.truePositives
        s.falsePositives += b.falsePositives
        s.falseNegatives += b.falseNegatives
        s.trueNegatives += b.trueNegatives
        return s
    }
}
