import Exposition
import Ingestion

/// The built-in `fairness` collector: per sensitive attribute of a binary classifier, each group's
/// selection rate, true positive rate and false positive rate over the model's window, and the fairlearn
/// and AIF360 comparisons between the groups, with a violation flag against configurable bounds; plus raw
/// cumulative counters so that PromQL can compare groups across a fleet.
///
/// Every accepted prediction counts for its group of each attribute (`__other__` for values outside the
/// configured groups, or absent): as a prediction, and as selected when its predicted class is the positive
/// class. Every joined outcome (a prediction with its label, ``record(outcome:receivedAt:)``) counts in one
/// confusion cell: positive means the positive class, anything else is negative (fairlearn's `pos_label`).
/// Predictions are credited to the window slice of their arrival, outcomes to that of their label's arrival.
///
/// Families (`attribute` and `group` from the configuration, `metric` from ``FairnessMetric``):
/// - `mlops_fairness_predictions_total`, `mlops_fairness_selected_total{model,attribute,group}`,
///   `mlops_fairness_outcomes_total{model,attribute,group,outcome}` (`tp`, `fp`, `fn`, `tn`): since start;
/// - `mlops_fairness_window_observations`, `mlops_fairness_selection_rate`,
///   `mlops_fairness_true_positive_rate`, `mlops_fairness_false_positive_rate{model,attribute,group}` and
///   `mlops_fairness_window_outcomes{model,attribute,group,outcome}`: over the window (a rate is absent
///   while its denominator is 0);
/// - `mlops_fairness_metric` and `mlops_fairness_violation{model,attribute,metric}`: absent unless two
///   groups qualify (``FairnessEvaluation``); `mlops_fairness_lower_bound` and `mlops_fairness_upper_bound`;
/// - `mlops_fairness_late_events_total{model,event}`: predictions and outcomes older than the window.
public final class FairnessCollector: ModelCollector {
    /// `fairness`.
    public static let name = "fairness"

    /// Joined outcomes give the true and false positive rates.
    public static let needsOutcomes = true

    /// The families listed above, and their handles.
    struct Families {
        let schema: CollectorSchema
        let predictions: CounterHandle
        let selected: CounterHandle
        let outcomes: CounterHandle
        let windowObservations: GaugeHandle
        let windowOutcomes: GaugeHandle
        let selectionRate: GaugeHandle
        let truePositiveRate: GaugeHandle
        let falsePositiveRate: GaugeHandle
        let metric: GaugeHandle
        let violation: GaugeHandle
        let lowerBound: GaugeHandle
        let upperBound: GaugeHandle
        let lateEvents: CounterHandle

        init() {
            let g = ["model", "attribute", "group"]
            let o = ["model", "attribute", "group", "outcome"]
            let m = ["model", "attribute", "metric"]
            var s = CollectorSchema()
            predictions = s.counter(
                "mlops_fairness_predictions_total", "Predictions per sensitive group, since start.", g)
            selected = s.counter(
                "mlops_fairness_selected_total", "Predictions of the positive class per sensitive group, since start.",
                g)
            outcomes = s.counter(
                "mlops_fairness_outcomes_total",
                "Joined outcomes per sensitive group and confusion cell (tp, fp, fn, tn), since start.", o)
            windowObservations = s.gauge(
                "mlops_fairness_window_observations", "Predictions of the sensitive group in the window.", g)
            windowOutcomes = s.gauge(
                "mlops_fairness_window_outcomes",
                "Joined outcomes of the sensitive group in the window, per confusion cell.", o)
            selectionRate = s.gauge(
                "mlops_fairness_selection_rate",
                "Share of the group's predictions in the window that are of the positive class.", g)
            truePositiveRate = s.gauge(
                "mlops_fairness_true_positive_rate", "TP / (TP + FN) of the group's joined outcomes in the window.",
                g)
            falsePositiveRate = s.gauge(
                "mlops_fairness_false_positive_rate",
                "FP / (FP + TN) of the group's joined outcomes in the window.", g)
            metric = s.gauge(
                "mlops_fairness_metric",
                "Fairness metric between the attribute's groups over the window (fairlearn unsigned, AIF360 signed).",
                m)
            violation = s.gauge(
                "mlops_fairness_violation",
                "Whether the fairness metric lies outside its bounds (1) or not (0); absent without two qualifying groups.",
                m)
            lowerBound = s.gauge("mlops_fairness_lower_bound", "Smallest acceptable value of the fairness metric.", m)
            upperBound = s.gauge("mlops_fairness_upper_bound", "Largest acceptable value of the fairness metric.", m)
            lateEvents = s.counter(
                "mlops_fairness_late_events_total",
                "Predictions and outcomes older than the fairness window, not counted in it.", ["model", "event"])
            schema = s
        }
    }

    static let families = Families()
    /// The families listed above.
    public static var schema: CollectorSchema { families.schema }

    /// One group's label sets: `{model,attribute,group}` and one per confusion cell (`outcome`).
    struct GroupLabels: Sendable {
        let group: LabelSet
        let outcomes: [LabelSet]
    }

    let model: ModelContext
    let options: FairnessOptions
    let positiveClass: Int
    /// Per attribute, the offset of its first group's block in ``slots``.
    let bases: [Int]
    /// Per attribute, its number of groups (`__other__` included).
    let groupCounts: [Int]
    /// Per attribute, the metrics reported (fairlearn's, and AIF360's with a privileged group).
    let metrics: [[FairnessMetric]]
    /// Per attribute: per group, and per metric (``FairnessMetric/allCases`` order), rendered once.
    let groupLabels: [[GroupLabels]]
    let metricLabels: [[LabelSet]]
    let lateLabels: (prediction: LabelSet, outcome: LabelSet)
    /// The window and the totals, with the same layout (one block: attributes × groups × ``GroupCounts``).
    let slots: QualitySlots
    /// Late predictions (slot 0) and late outcomes (slot 1).
    let late: AtomicSlots

    /// Needs a binary classification model with sensitive attributes; options as in ``FairnessOptions``.
    public init(model: ModelContext, options: CollectorOptions) throws(ModelCollectorError) {
        let configuration = model.configuration
        guard configuration.task == .binaryClassification, let positive = model.positiveClassIndex else {
            throw options.error(
                nil,
                "needs a binary classification model with a positive_class (this model's task is "
                    + "\(configuration.task.rawValue))")
        }
        guard !configuration.sensitiveAttributes.isEmpty else {
            throw options.error(nil, "needs sensitive_attributes: the model has none")
        }
        self.options = try FairnessOptions(options)
        self.model = model
        positiveClass = positive
        var bases: [Int] = []
        var width = 0
        for labels in model.groupLabels {
            bases.append(width)
            width += labels.count * GroupCounts.width
        }
        self.bases = bases
        groupCounts = model.groupLabels.map(\.count)
        metrics = model.privilegedGroups.map { $0 == nil ? FairnessMetric.fairlearn : FairnessMetric.allCases }
        // The window grows with the groups: refuse a configuration over its series budget before allocating it.
        try options.requireSeries(groupCounts.reduce(2) { $0 + $1 * 14 })
        slots = QualitySlots(versions: 1, width: width, window: configuration.window)
        late = AtomicSlots(count: 2)
        let f = Self.families
        let attributes = configuration.sensitiveAttributes.map(\.name)
        groupLabels = zip(attributes, model.groupLabels).map { attribute, groups in
            groups.map { group in
                GroupLabels(
                    group: try! f.predictions.labels(model.name, attribute, group),
                    outcomes: GroupCounts.outcomeLabels.map { try! f.outcomes.labels(model.name, attribute, group, $0) }
                )
            }
        }
        metricLabels = attributes.map { attribute in
            FairnessMetric.allCases.map { try! f.metric.labels(model.name, attribute, $0.rawValue) }
        }
        lateLabels = (
            try! f.lateEvents.labels(model.name, "prediction"), try! f.lateEvents.labels(model.name, "outcome")
        )
    }

    /// `fresh`'s configuration with `previous`'s window, totals and late counts (``carryingState(of:)``).
    private init(_ fresh: FairnessCollector, stateOf previous: FairnessCollector) {
        model = fresh.model
        options = fresh.options
        positiveClass = fresh.positiveClass
        bases = fresh.bases
        groupCounts = fresh.groupCounts
        metrics = fresh.metrics
        groupLabels = fresh.groupLabels
        metricLabels = fresh.metricLabels
        lateLabels = fresh.lateLabels
        slots = previous.slots
        late = previous.late
    }

    /// The same attributes and groups counted the same way in a window of the same shape (bounds,
    /// `min_group_observations` or `include_other` changed: they apply when the metrics are computed): `previous`'s
    /// state, carried on.
    public func carryingState(of previous: any ModelCollector) -> (any ModelCollector)? {
        guard let previous = previous as? FairnessCollector, previous.positiveClass == positiveClass,
            previous.bases == bases, previous.groupCounts == groupCounts, previous.slots.width == slots.width,
            previous.slots.ring.hasSameShape(as: slots.ring), previous.slots.totals.count == slots.totals.count
        else { return nil }
        return FairnessCollector(self, stateOf: previous)
    }

    /// Per group: 6 counters and 8 window gauges; per metric: its value, violation flag and one or two
    /// bounds; the two late-event counters.
    public var maxSeries: Int {
        var n = 2
        for a in 0..<groupCounts.count {
            n += groupCounts[a] * 14
            for m in metrics[a] {
                let b = bounds(m)
                n += 2 + (b.lower == nil ? 0 : 1) + (b.upper == nil ? 0 : 1)
            }
        }
        return n
    }

    /// Counts the prediction, and whether it selects the positive class, for its group of every attribute.
    public func record(prediction event: PredictionEvent, receivedAt: Double) {
        let selected = model.classIndex(event.predictionClass) == positiveClass
        let block = slots.ring.block(for: receivedAt)
        if block == nil { late.add(0) }
        let attributes = Swift.min(bases.count, event.attributes.count)
        for a in 0..<attributes {
            let position = bases[a] &+ model.groupIndex(attribute: a, value: event.attributes[a]) &* GroupCounts.width
            slots.add(block, position &+ GroupCounts.predictionsSlot)
            if selected { slots.add(block, position &+ GroupCounts.selectedSlot) }
        }
    }

    /// Counts the outcome in its confusion cell for its prediction's group of every attribute.
    public func record(outcome: JoinedOutcome, receivedAt: Double) {
        let predicted = outcome.prediction.predictedClass == positiveClass
        let actual = outcome.actualClass == positiveClass
        let cell =
            predicted
            ? (actual ? GroupCounts.truePositiveSlot : GroupCounts.falsePositiveSlot)
            : (actual ? GroupCounts.falseNegativeSlot : GroupCounts.trueNegativeSlot)
        let block = slots.ring.block(for: receivedAt)
        if block == nil { late.add(1) }
        let groups = outcome.prediction.groups
        let attributes = Swift.min(bases.count, groups.count)
        for a in 0..<attributes {
            let g = groups[a]
            guard g >= 0 && g < groupCounts[a] else { continue }
            let position = bases[a] &+ g &* GroupCounts.width &+ cell
            slots.add(block, position)
        }
    }

    /// Emits every attribute's counters, window rates and comparisons over the window ending now.
    public func collect(into sink: inout CollectorSink) {
        let f = Self.families
        let totals = slots.ring.window(now: WallClock.now())
        for a in 0..<bases.count {
            var window: [GroupCounts] = []
            for g in 0..<groupCounts[a] {
                let position = bases[a] + g * GroupCounts.width
                let counts = GroupCounts(slots: totals.counts(position, GroupCounts.width))
                window.append(counts)
                let labels = groupLabels[a][g]
                let group = labels.group
                sink.counter(
                    f.predictions, group, value: Double(slots.totals.load(position + GroupCounts.predictionsSlot)))
                sink.counter(f.selected, group, value: Double(slots.totals.load(position + GroupCounts.selectedSlot)))
                for i in GroupCounts.outcomeLabels.indices {
                    let slot = GroupCounts.truePositiveSlot + i
                    sink.counter(f.outcomes, labels.outcomes[i], value: Double(slots.totals.load(position + slot)))
                }
                sink.gauge(f.windowObservations, group, value: counts.predictions)
                let cells = [counts.truePositives, counts.falsePositives, counts.falseNegatives, counts.trueNegatives]
                for (i, value) in cells.enumerated() { sink.gauge(f.windowOutcomes, labels.outcomes[i], value: value) }
                if let r = counts.selectionRate { sink.gauge(f.selectionRate, group, value: r) }
                if let r = counts.truePositiveRate { sink.gauge(f.truePositiveRate, group, value: r) }
                if let r = counts.falsePositiveRate { sink.gauge(f.falsePositiveRate, group, value: r) }
            }
            let compared = (0..<groupCounts[a]).map { options.includeOther || $0 < groupCounts[a] - 1 }
            let results = FairnessEvaluation.evaluate(
                window, compared: compared, privileged: model.privilegedGroups[a],
                minimum: Double(options.minGroupObservations))
            for (metric, value) in results where metrics[a].contains(metric) {
                let l = metricLabels[a][FairnessMetric.allCases.firstIndex(of: metric)!]
                sink.gauge(f.metric, l, value: value)
                sink.gauge(f.violation, l, value: bounds(metric).isViolated(by: value) ? 1 : 0)
            }
            for metric in metrics[a] {
                let l = metricLabels[a][FairnessMetric.allCases.firstIndex(of: metric)!]
                let b = bounds(metric)
                if let lower = b.lower { sink.gauge(f.lowerBound, l, value: lower) }
                if let upper = b.upper { sink.gauge(f.upperBound, l, value: upper) }
            }
        }
        sink.counter(f.lateEvents, lateLabels.prediction, value: Double(late.load(0)))
        sink.counter(f.lateEvents, lateLabels.outcome, value: Double(late.load(1)))
    }

    func bounds(_ metric: FairnessMetric) -> FairnessBounds { options.bounds[metric] ?? metric.defaultBounds }
}
