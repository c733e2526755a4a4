import Exposition
import Ingestion

/// The built-in `drift` collector: data drift per feature and prediction drift, against the model's
/// reference profile, over a sliding window; and raw per-bin counters so that PromQL can compute drift
/// across a fleet.
///
/// Each event's features (and prediction and score) are binned on the reference's bins and counted in the
/// current slice of a ``SliceRing`` (the model's `window`: `duration` split in `slices`), whose cumulative
/// positions also give the totals since start (a rotation retires a reused slice's counts). At scrape time the window's counts are compared with the reference by each column's method
/// (``DriftOptions``; `auto` follows Evidently's rule, resolved once from the reference), giving:
/// - `mlops_feature_drift_score{model,feature,method}`: the value compared with the threshold (a distance;
///   for `ks`, `chisquare` and `z` the p-value, as Evidently reports it), `mlops_feature_drift_threshold`,
///   `mlops_feature_drift_statistic` (the distance, or KS D, chi-square, z), `mlops_feature_drift_p_value`
///   (tests only), and `mlops_feature_drift_detected` (0/1; absent while the window holds fewer than
///   `min_observations` values, so an idle model does not flap);
/// - `mlops_feature_window_observations{model,feature}`, `mlops_feature_window_missing{model,feature}`,
///   `mlops_feature_missing_total{model,feature}`;
/// - the same for the outputs as `mlops_prediction_drift_*{model,output,method}` (`output` is
///   `prediction` or `score`) and `mlops_prediction_window_observations{model,output}`;
/// - `mlops_dataset_drift_share{model}` (drifted / features with a verdict) and
///   `mlops_dataset_drift_detected{model}` (share >= `drift_share`);
/// - with `bin_series` (default on): `mlops_feature_bin_observations_total{model,feature,bin}` (cumulative)
///   and `mlops_feature_reference_ratio{model,feature,bin}`, likewise `mlops_prediction_bin_observations_total`
///   and `mlops_prediction_reference_ratio{model,output,bin}`;
/// - `mlops_drift_late_events_total{model}`: events whose time is older than the window (not counted in it).
///
/// Numeric bins are labelled `underflow`, `1`…`k` (the reference's quantile bins), `overflow`;
/// categorical bins by value, plus `__other__`.
public final class DriftCollector: ModelCollector {
    /// `drift`.
    public static let name = "drift"

    /// The families of one subject (`mlops_feature_*` or `mlops_prediction_*`).
    struct SubjectFamilies {
        let score: GaugeHandle
        let threshold: GaugeHandle
        let statistic: GaugeHandle
        let pValue: GaugeHandle
        let detected: GaugeHandle
        let observations: GaugeHandle
        let binObservations: CounterHandle
        let referenceRatio: GaugeHandle

        init(_ s: inout CollectorSchema, feature: Bool) {
            let (prefix, subject) = feature ? ("mlops_feature", "feature") : ("mlops_prediction", "output")
            let help =
                feature
                ? [
                    "Drift score of a feature over the window (p-value for ks, chisquare, z).",
                    "Threshold the feature's drift score is compared with.",
                    "Drift statistic of a feature (distance, KS D, chi-square or z).",
                    "p-value of the feature's drift test (ks, chisquare, z).",
                    "Whether the feature drifted (1) or not (0); absent below min_observations.",
                    "Non-missing values of the feature in the window.",
                    "Values of the feature per reference bin, since start.",
                    "Share of the reference in each bin of the feature.",
                ]
                : [
                    "Drift score of the model's prediction or score over the window.",
                    "Threshold the prediction drift score is compared with.",
                    "Drift statistic of the prediction or score.",
                    "p-value of the prediction drift test (ks, chisquare, z).",
                    "Whether the prediction or score drifted; absent below min_observations.",
                    "Predictions (or scores) in the window.",
                    "Predictions (or scores) per reference bin, since start.",
                    "Share of the reference in each prediction (or score) bin.",
                ]
            let labels = ["model", subject, "method"]
            score = try! s.gauge(prefix + "_drift_score", help: help[0], labels: labels)
            threshold = try! s.gauge(prefix + "_drift_threshold", help: help[1], labels: labels)
            statistic = try! s.gauge(prefix + "_drift_statistic", help: help[2], labels: labels)
            pValue = try! s.gauge(prefix + "_drift_p_value", help: help[3], labels: labels)
            detected = try! s.gauge(prefix + "_drift_detected", help: help[4], labels: labels)
            observations = try! s.gauge(prefix + "_window_observations", help: help[5], labels: ["model", subject])
            binObservations = try! s.counter(
                prefix + "_bin_observations_total", help: help[6], labels: ["model", subject, "bin"])
            referenceRatio = try! s.gauge(
                prefix + "_reference_ratio", help: help[7], labels: ["model", subject, "bin"])
        }
    }

    /// The families listed above, and their handles.
    struct Families {
        let schema: CollectorSchema
        let feature: SubjectFamilies
        let prediction: SubjectFamilies
        let windowMissing: GaugeHandle
        let missing: CounterHandle
        let driftShare: GaugeHandle
        let datasetDetected: GaugeHandle
        let late: CounterHandle

        init() {
            var s = CollectorSchema()
            feature = SubjectFamilies(&s, feature: true)
            prediction = SubjectFamilies(&s, feature: false)
            windowMissing = try! s.gauge(
                "mlops_feature_window_missing", help: "Missing values of the feature in the window.",
                labels: ["model", "feature"])
            missing = try! s.counter(
                "mlops_feature_missing_total", help: "Events without a value for the feature (absent or null).",
                labels: ["model", "feature"])
            driftShare = try! s.gauge(
                "mlops_dataset_drift_share", help: "Share of the features with a verdict that drifted.",
                labels: ["model"])
            datasetDetected = try! s.gauge(
                "mlops_dataset_drift_detected", help: "Whether at least drift_share of the features drifted.",
                labels: ["model"])
            late = try! s.counter(
                "mlops_drift_late_events_total", help: "Events older than the drift window, not counted in it.",
                labels: ["model"])
            schema = s
        }
    }

    static let families = Families()
    /// The families listed above.
    public static var schema: CollectorSchema { families.schema }

    /// A monitored column's label sets, rendered once: `{model, subject}`, `{model, subject, method}`, and one
    /// per bin.
    final class ColumnLabels: Sendable {
        let subject: LabelSet
        let method: LabelSet
        /// `{model, subject, method="chisquare"}` and its threshold, for a `z` picked by `auto` while `chisquare`
        /// scores it (``Monitored/widenedThreshold``).
        let widened: (labels: LabelSet, threshold: FormattedValue)?
        let bins: [LabelSet]
        /// The reference's share of each bin (whole sample lines) and the threshold, rendered once: they change
        /// only with the configuration.
        let referenceRatios: ConstantSeries
        let threshold: FormattedValue

        /// Throws when two bins would be the same series (a reference listing a value twice, or `__other__`, which
        /// the profile loader refuses first): a configuration is refused, never trapped on, at start or reload.
        init(_ f: SubjectFamilies, model: String, subject: String, _ m: Monitored) throws(ExpositionError) {
            self.subject = try f.observations.labels(model, subject)
            method = try f.score.labels(model, subject, m.method.rawValue)
            widened = try m.widenedThreshold.map { (t) throws(ExpositionError) in
                (try f.score.labels(model, subject, DriftMethod.chiSquare.rawValue), FormattedValue(t))
            }
            var bins: [LabelSet] = []
            for label in m.column.binLabels { bins.append(try f.binObservations.labels(model, subject, label)) }
            self.bins = bins
            referenceRatios = try ConstantSeries(
                f.referenceRatio, Array(zip(bins, m.column.referenceRatios.map(FormattedValue.init))))
            threshold = FormattedValue(m.threshold)
        }
    }

    /// A monitored column. A class: a scrape walks every column, and copying a struct of arrays would retain
    /// each of them.
    final class Monitored: Sendable {
        let column: DriftColumn
        let method: DriftMethod
        let threshold: Double
        /// Reference std for Wasserstein's normalisation.
        let std: Double
        let referenceCount: Int
        /// For a `z` that `auto` picked, the threshold of the `chisquare` that scores the column while its reference
        /// and window together hold more than two values (``evaluate(_:window:scratch:)``); nil otherwise.
        let widenedThreshold: Double?

        init(
            column: DriftColumn, method: DriftMethod, threshold: Double, std: Double, referenceCount: Int,
            widenedThreshold: Double? = nil
        ) {
            self.column = column
            self.method = method
            self.threshold = threshold
            self.std = std
            self.referenceCount = referenceCount
            self.widenedThreshold = widenedThreshold
        }
    }

    let model: ModelContext
    let options: DriftOptions
    let features: [Monitored]
    let prediction: Monitored?
    let score: Monitored?
    let ring: SliceRing

    /// Per feature, what `record` needs, trivially copyable: no reference counting per feature and event.
    struct RecordPlan: Equatable {
        let base: Int
        let binCount: Int
        let fineCount: Int
        let missingOffset: Int
        let fine: FineGrid
        let min: Double
        let max: Double
        let edgesStart: Int
        let edgesCount: Int
        /// The listed values' start in `planEdges` and their slots (values + 1 for any other value; 0: not counted).
        let valuesStart: Int
        let valueCount: Int
        /// Index in `categoricalIndexes`, or -1 for a numeric feature.
        let categorical: Int
    }
    let plans: [RecordPlan]
    let predictionPlan: RecordPlan?
    let scorePlan: RecordPlan?
    /// A binary classifier's positive class index and class count: an event without `score` but with `probabilities`
    /// gives the score output its positive class's probability (the same P(positive), as quality reads it).
    let positiveIndex: Int?
    let classCount: Int
    /// The numeric columns' quantile edges and listed values, each plan's at its own offsets.
    let planEdges: [Double]
    let categoricalIndexes: [NameIndex]
    let late: AtomicSlots
    let featureLabels: [ColumnLabels]
    let predictionLabels: ColumnLabels?
    let scoreLabels: ColumnLabels?
    let modelLabels: LabelSet

    /// Needs the model's reference profile; options as in ``DriftOptions``.
    public init(model: ModelContext, options: CollectorOptions) throws(ModelCollectorError) {
        guard let reference = model.reference else {
            throw options.error(
                nil, "needs a reference profile: set `reference:` for the model (mlops-exporter profile)")
        }
        let configuration = model.configuration
        let parsed = try DriftOptions(options, featureNames: configuration.features.map(\.name))
        self.model = model
        self.options = parsed
        var base = 0
        var totalsBase = 0
        func column(
            _ name: String, _ profile: ColumnProfile, _ method: DriftMethod
        ) throws(ModelCollectorError) -> DriftColumn {
            let c: DriftColumn
            if let n = profile.numeric {
                c = DriftColumn(
                    name: name, numeric: n, keepsFine: method.usesFineBins,
                    countsValues: try Self.countsValues(name, n, method, options), base: base, totalsBase: totalsBase)
            } else if let k = profile.categorical {
                do {
                    c = try DriftColumn(name: name, categorical: k, base: base, totalsBase: totalsBase)
                } catch {
                    throw options.error(nil, "reference column \(name): \(error)")
                }
            } else {
                throw options.error(nil, "reference column \(name) is neither numeric nor categorical")
            }
            base += c.width
            totalsBase += c.totalsWidth
            return c
        }
        // A column's method is resolved from its profile first: it decides whether the column keeps fine counts.
        func monitored(
            _ columnName: String, _ profile: ColumnProfile, ownThreshold: Double? = nil,
            _ pick: ((DriftOptions.Choice) -> DriftMethod) -> (DriftMethod, Double)
        ) throws(ModelCollectorError) -> Monitored {
            var picked = false
            let resolve: (DriftOptions.Choice) -> DriftMethod = { choice in
                if case .method(let m) = choice { return m }
                picked = true
                // A numeric column's distinct values (a profile written before they were counted: its non-empty fine
                // bins, a lower bound). A categorical column's are the values any window can hold, its known ones
                // (configured, or learned from the reference), or more when the reference had others (`__other__`):
                // Evidently counts reference and current together, so a class the reference never predicted counts
                // once it comes, and the z test refuses more than two known values.
                let unique =
                    profile.numeric.map { $0.distinct ?? $0.fine.count { $0 > 0 } }
                    ?? profile.categorical.map { max($0.counts.count { $0 > 0 }, $0.values.count) } ?? 0
                // The column's own values, missing ones left out (as Evidently drops NaN before it chooses).
                return DriftMethod.auto(
                    numeric: profile.numeric != nil, uniqueValues: unique, referenceRows: profile.count)
            }
            let (method, threshold) = pick(resolve)
            // A test's score is a p-value: a threshold above 1 would call every column drifted (a method picked by
            // `auto`, or a per-feature threshold without a method, is only known here).
            if method.isPValue && threshold > 1 {
                throw options.error(
                    nil,
                    "column \(columnName): \(method.rawValue) scores a p-value, so its threshold must lie in [0, 1] "
                        + "(got \(threshold))")
            }
            // Evidently picks `z` from the values of reference and window together: once the window brings a third
            // (a value the reference lacks, `__other__`), `chisquare` (``evaluate(_:window:scratch:)``).
            let widened =
                picked && method == .z
                ? ownThreshold ?? parsed.thresholds[.chiSquare] ?? DriftMethod.chiSquare.defaultThreshold : nil
            return Monitored(
                column: try column(columnName, profile, method), method: method, threshold: threshold,
                std: profile.numeric?.std ?? 0, referenceCount: profile.count, widenedThreshold: widened)
        }
        var features: [Monitored] = []
        for feature in configuration.features {
            guard let profile = reference.feature(named: feature.name) else {
                throw options.error(nil, "the reference profile has no column for feature \(feature.name)")
            }
            features.append(
                try monitored(feature.name, profile, ownThreshold: parsed.features[feature.name]?.threshold) {
                    resolve in
                    parsed.resolved(
                        feature: feature.name,
                        fits: { m in
                            if let k = profile.categorical {
                                return m != .ks && m != .wasserstein && (m != .z || k.values.count <= 2)
                            }
                            return m != .z
                        }, resolve: resolve)
                })
        }
        for m in features { try Self.check(m, options) }
        self.features = features
        var planEdges: [Double] = []
        var categoricalIndexes: [NameIndex] = []
        func plan(_ c: DriftColumn) -> RecordPlan {
            switch c.kind {
            case .numeric(let p):
                defer { planEdges += p.edges + c.values }
                return RecordPlan(
                    base: c.base, binCount: c.binCount, fineCount: c.fineCount,
                    missingOffset: c.missingOffset, fine: c.fineGrid, min: p.min, max: p.max,
                    edgesStart: planEdges.count, edgesCount: p.edges.count,
                    valuesStart: planEdges.count + p.edges.count, valueCount: c.valueCount, categorical: -1)
            case .categorical(_, let index):
                defer { categoricalIndexes.append(index) }
                return RecordPlan(
                    base: c.base, binCount: c.binCount, fineCount: 0,
                    missingOffset: c.missingOffset, fine: c.fineGrid, min: 0, max: 0, edgesStart: 0, edgesCount: 0,
                    valuesStart: 0, valueCount: 0, categorical: categoricalIndexes.count)
            }
        }
        plans = features.map { plan($0.column) }
        prediction = try reference.prediction.map { (p) throws(ModelCollectorError) in
            try monitored("prediction", p) { parsed.resolved(parsed.predictionMethod, resolve: $0) }
        }
        score = try reference.score.map { (p) throws(ModelCollectorError) in
            try monitored("score", p) { parsed.resolved(parsed.predictionMethod, resolve: $0) }
        }
        predictionPlan = prediction.map { plan($0.column) }
        scorePlan = score.map { plan($0.column) }
        positiveIndex = model.positiveClassIndex
        classCount = configuration.classes.count
        self.planEdges = planEdges
        self.categoricalIndexes = categoricalIndexes
        for m in [prediction, score].compactMap({ $0 }) { try Self.check(m, options) }
        // The window grows with the columns: refuse a configuration over its series budget before allocating it.
        try options.requireSeries(
            Self.series(features + [prediction, score].compactMap { $0 }, binSeries: parsed.binSeries))
        // The tails' distance totals of numeric columns (Wasserstein reads them) are kept with the window's closed
        // totals.
        let doubleSlots = (features + [prediction, score].compactMap { $0 }).flatMap { m -> [Int] in
            m.column.isNumeric
                ? [m.column.base + m.column.belowDistanceOffset, m.column.base + m.column.aboveDistanceOffset] : []
        }
        // The columns' bins and missing counts since start (`totalsBase` order): kept by the ring, each event counted
        // once, in its block.
        let cumulative = (features + [prediction, score].compactMap { $0 }).flatMap { m -> [Int] in
            (0..<m.column.binCount).map { m.column.base + $0 } + [m.column.base + m.column.missingOffset]
        }
        precondition(cumulative.count == totalsBase)
        ring = SliceRing(
            window: configuration.window, width: base, doubleSlots: doubleSlots, cumulative: cumulative)
        late = AtomicSlots(count: 1)
        let f = Self.families
        func labels(_ f: SubjectFamilies, _ subject: String, _ m: Monitored) throws(ModelCollectorError) -> ColumnLabels
        {
            do {
                return try ColumnLabels(f, model: model.name, subject: subject, m)
            } catch {
                throw options.error(nil, "reference column \(m.column.name): \(error)")
            }
        }
        var featureLabels: [ColumnLabels] = []
        for m in features { featureLabels.append(try labels(f.feature, m.column.name, m)) }
        self.featureLabels = featureLabels
        predictionLabels = try prediction.map { (m) throws(ModelCollectorError) in
            try labels(f.prediction, "prediction", m)
        }
        scoreLabels = try score.map { (m) throws(ModelCollectorError) in try labels(f.prediction, "score", m) }
        modelLabels = try! f.late.labels(model.name)
    }

    /// `fresh`'s configuration with `previous`'s window, totals and late count (``carryingState(of:)``).
    private init(_ fresh: DriftCollector, stateOf previous: DriftCollector) {
        model = fresh.model
        options = fresh.options
        features = fresh.features
        prediction = fresh.prediction
        score = fresh.score
        ring = previous.ring
        plans = fresh.plans
        predictionPlan = fresh.predictionPlan
        scorePlan = fresh.scorePlan
        positiveIndex = fresh.positiveIndex
        classCount = fresh.classCount
        planEdges = fresh.planEdges
        categoricalIndexes = fresh.categoricalIndexes
        late = previous.late
        featureLabels = fresh.featureLabels
        predictionLabels = fresh.predictionLabels
        scoreLabels = fresh.scoreLabels
        modelLabels = fresh.modelLabels
    }

    /// The same columns binned the same way (bins, fine counts, listed values: a method, threshold or minimum changed
    /// among those that count alike) in a window of the same shape: `previous`'s state, carried on.
    public func carryingState(of previous: any ModelCollector) -> (any ModelCollector)? {
        guard let previous = previous as? DriftCollector, previous.ring.hasSameShape(as: ring),
            previous.plans == plans, previous.predictionPlan == predictionPlan, previous.scorePlan == scorePlan,
            previous.planEdges == planEdges
        else { return nil }
        return DriftCollector(self, stateOf: previous)
    }

    /// Whether chi-square, PSI, KL and Jensen-Shannon compare numeric column `name` value by value: when its profile
    /// lists its values (at most ``NumericProfile/maxListedValues``), as Evidently counts them; over the quantile bins
    /// when it has more values. A profile written before values were listed, of a column that may have that few values
    /// (that few non-empty fine bins), is refused for chi-square: it would merge values a quantile bin holds together.
    static func countsValues(
        _ name: String, _ profile: NumericProfile, _ method: DriftMethod, _ options: CollectorOptions
    ) throws(ModelCollectorError) -> Bool {
        guard [.chiSquare, .psi, .klDiv, .jensenShannon].contains(method) else { return false }
        if profile.values != nil { return true }
        guard method == .chiSquare else { return false }
        if profile.distinct == nil && profile.fine.count(where: { $0 > 0 }) <= NumericProfile.maxListedValues {
            throw options.error(
                nil,
                "column \(name): chisquare compares a numeric column of at most \(NumericProfile.maxListedValues) "
                    + "distinct values value by value (as Evidently), and the reference profile does not list this "
                    + "column's values (it predates them): rebuild it with mlops-exporter profile")
        }
        return false
    }

    /// Rejects a method that cannot apply to a column: KS and Wasserstein need a numeric column, the z test
    /// a categorical one with at most two values (plus `__other__`).
    static func check(_ m: Monitored, _ options: CollectorOptions) throws(ModelCollectorError) {
        let c = m.column
        switch m.method {
        case .ks where !c.isNumeric, .wasserstein where !c.isNumeric:
            throw options.error(nil, "column \(c.name): \(m.method.rawValue) needs a numeric column")
        case .z where c.isNumeric || c.binCount > 3:
            throw options.error(nil, "column \(c.name): z needs a categorical column with at most two values")
        default: break
        }
    }

    /// The window's fixed memory: slots per slice (8 bytes each, times the window's slices), for capacity
    /// planning. A numeric column takes its bins + 5 slots, plus 1000 fine counts when its method is KS or
    /// Wasserstein, or its listed values + 1 when chi-square counts it per value.
    public var windowSlotsPerSlice: Int { ring.width }

    /// Per feature: 5 drift series, 3 window/missing series, and 2 per bin with `bin_series`; the same for
    /// the outputs; 2 dataset series and the late-events counter.
    public var maxSeries: Int {
        Self.series(features + [prediction, score].compactMap { $0 }, binSeries: options.binSeries)
    }

    private static func series(_ columns: [Monitored], binSeries: Bool) -> Int {
        columns.reduce(0) { $0 + 8 + (binSeries ? 2 * $1.column.binCount : 0) } + 3
    }

    /// Bins every feature (and the prediction and score) of the event into the current slice.
    public func record(prediction event: PredictionEvent, receivedAt: Double) {
        guard let block = ring.block(for: receivedAt) else {
            late.add(0)
            return
        }
        // The block's slots read through a run: their storage's address is not read again for each of the three or
        // four updates of a column. The totals since start are the ring's (``SliceRing/cumulativeTotals()``).
        ring.withBlock(block) { slots in record(event, slots: slots) }
        ring.wrote(block)
    }

    /// Bins the event's columns into the block's `slots`.
    @inline(__always)
    private func record(_ event: PredictionEvent, slots: AtomicSlots.Run) {
        plans.withUnsafeBufferPointer { plans in
            planEdges.withUnsafeBufferPointer { edges in
                event.features.withUnsafeBufferPointer { values in
                    for i in 0..<Swift.min(plans.count, values.count) {
                        // The plan read in place, field by field: a copy of it (18 words) per column cost more than
                        // the binning.
                        let p = plans.baseAddress! + i
                        // A number read in place (`FeatureValue.numberValue`): a switch over the value would copy it
                        // and destroy the copy (a call per column).
                        if let x = values[i].numberValue {
                            if p.pointee.categorical < 0 {
                                Self.record(number: x, p, edges, slots: slots)
                                continue
                            }
                        } else if p.pointee.categorical >= 0, case .category(let s) = values[i] {
                            let b =
                                categoricalIndexes[p.pointee.categorical].index(of: s) ?? (p.pointee.binCount &- 1)
                            slots.add(p.pointee.base &+ b)
                            continue
                        }
                        Self.recordMissing(p.pointee, slots: slots)
                    }
                }
            }
        }
        planEdges.withUnsafeBufferPointer { edges in
            if let p = predictionPlan {
                switch event.prediction {
                case .number(let x) where p.categorical < 0:
                    withUnsafePointer(to: p) { Self.record(number: x, $0, edges, slots: slots) }
                case .label where p.categorical >= 0:
                    let b = event.predictionClass ?? (p.binCount &- 1)
                    slots.add(p.base &+ b)
                default: Self.recordMissing(p, slots: slots)
                }
            }
            if let p = scorePlan, p.categorical < 0 {
                if let x = event.score ?? positiveProbability(event) {
                    withUnsafePointer(to: p) { Self.record(number: x, $0, edges, slots: slots) }
                } else {
                    Self.recordMissing(p, slots: slots)
                }
            }
        }
    }

    /// A binary classifier's event without `score`: its positive class's probability, when it sent `probabilities`
    /// (they fed no score drift: the output showed no observations and no score, and nothing said why).
    @inline(__always)
    func positiveProbability(_ event: PredictionEvent) -> Double? {
        guard let positiveIndex, event.probabilities.count == classCount else { return nil }
        return event.probabilities[positiveIndex]
    }

    @inline(__always)
    static func recordMissing(_ p: RecordPlan, slots: AtomicSlots.Run) {
        slots.add(p.base &+ p.missingOffset)
    }

    /// Bins a numeric value: reference bin (underflow, quantile bins closed on the right, overflow), its listed value's
    /// count (or the other values') when chi-square counts per value, then the fine bin or the tail's count and total
    /// distance from the range (in ``DriftStatistics/tailUnit``s: a sum of the values themselves overflows with two
    /// values near 1e308).
    @inline(__always)
    static func record(
        number x: Double, _ plan: UnsafePointer<RecordPlan>, _ edges: UnsafeBufferPointer<Double>,
        slots: AtomicSlots.Run
    ) {
        let base = plan.pointee.base
        let binCount = plan.pointee.binCount
        let fineCount = plan.pointee.fineCount
        let valueCount = plan.pointee.valueCount
        let below = binCount &+ fineCount &+ valueCount
        let b: Int
        if x < plan.pointee.min {
            b = 0
            slots.add(base &+ below)
            slots.addDouble(base &+ below &+ 1, DriftStatistics.tailDistance(x, from: plan.pointee.min))
        } else if x > plan.pointee.max {
            b = plan.pointee.edgesCount &+ 2
            slots.add(base &+ below &+ 2)
            slots.addDouble(base &+ below &+ 3, DriftStatistics.tailDistance(x, from: plan.pointee.max))
        } else {
            // The column's edges without a slice of `edges` (its bounds checks cost as much as the search).
            let own = UnsafeBufferPointer(
                start: edges.baseAddress! + plan.pointee.edgesStart, count: plan.pointee.edgesCount)
            b = Buckets.index(of: x, in: own) &+ 1
            // The profile's own binning: on a range narrower than the bins' precision a plain `Int((x − min)·scale)`
            // puts values one bin off the profile's.
            if fineCount > 0 { slots.add(base &+ binCount &+ plan.pointee.fine.bin(of: x)) }
        }
        slots.add(base &+ b)
        if valueCount > 0 {
            // At most 5 values: a scan. Past the last listed value, the slot of every other value.
            let listed = valueCount &- 1
            let values = edges.baseAddress! + plan.pointee.valuesStart
            var k = 0
            while k < listed && values[k] != x { k &+= 1 }
            slots.add(base &+ binCount &+ fineCount &+ k)
        }
    }

    /// The window's comparison of one column with its reference, or nil when the window has no values.
    /// `widened`: a `z` picked by `auto` scored by `chisquare` (``Monitored/widenedThreshold``).
    func evaluate(
        _ m: Monitored, window: SliceRing.Window, scratch: inout [Double]
    ) -> (result: DriftResult, observations: Double, missing: Double, widened: Bool) {
        let current = window.counts(m.column.base, m.column.binCount)
        let observations = current.reduce(0, +)
        let missing = Double(window.total(m.column.base + m.column.missingOffset))
        guard observations > 0 else { return (DriftResult(distance: .nan), 0, missing, false) }
        let result: DriftResult
        var widened = false
        // A numeric column of few values (its profile lists them) is compared value by value, as Evidently bins it
        // (any value the reference lacks in one slot: for chi-square expected 0, so χ² is infinite whatever their
        // number): over quantile bins a value at the minimum shares its bin with the next one, so a 0/1 flag was one
        // bin and no shift of it ever showed.
        let perValue = m.column.valueCount > 0
        let reference = perValue ? m.column.referenceValueCounts : m.column.referenceBins
        let compared =
            perValue ? window.counts(m.column.base + m.column.valuesOffset, m.column.valueCount) : current
        switch m.method {
        case .psi: result = DriftStatistics.psi(reference: reference, current: compared)
        case .klDiv: result = DriftStatistics.klDivergence(reference: reference, current: compared)
        case .jensenShannon:
            result = DriftStatistics.jensenShannon(
                reference: reference, current: compared, base: options.jensenShannonBase)
        case .chiSquare: result = DriftStatistics.chiSquare(reference: reference, current: compared)
        case .z where m.widenedThreshold != nil && Self.valuesSeen(reference, compared) > 2:
            // `auto` picked `z` for at most two values; Evidently picks from reference and window together, so a
            // third (one the reference never showed, `__other__`) makes it `chisquare` (``isWidened(_:window:)``).
            result = DriftStatistics.chiSquare(reference: reference, current: compared)
            widened = true
        case .z:
            // Evidently's `x = 0` is the first category in sorted order, not the profile's order (configured or by
            // frequency); `__other__` last (``DriftColumn/sortedBins``). At most three bins.
            let order = m.column.sortedBins
            result = DriftStatistics.zTest(
                reference: order.map { m.column.referenceBins[$0] }, current: order.map { current[$0] })
        case .wasserstein, .ks:
            let currentBins = current
            // The range from the column, not by binding its profile: that would copy (and retain) its arrays.
            guard m.column.isNumeric else {
                // Configuration validation keeps distribution methods off categorical columns.
                return (DriftResult(distance: .nan), observations, missing, false)
            }
            window.cumulativeCounts(m.column.base + m.column.fineOffset, m.column.fineCount, into: &scratch)
            let below = Double(window.total(m.column.base + m.column.belowCountOffset))
            let above = Double(window.total(m.column.base + m.column.aboveCountOffset))
            result = m.column.referenceFineCumulative.withUnsafeBufferPointer { reference in
                scratch.withUnsafeBufferPointer { current in
                    if m.method == .ks {
                        let fine = DriftStatistics.ksStatistic(
                            referenceCumulative: reference, currentCumulative: current, currentBelow: below,
                            currentAbove: above)
                        guard !fine.isNaN else { return DriftResult(statistic: .nan, pValue: .nan) }
                        // Also at the quantile bins' edges, where far values do not stretch the grid: each is a
                        // point of both empirical CDFs, so D stays a lower bound of the exact one and comes close
                        // where the fine bins crowd (799 values near 100 and one of 1e6: D 0.001 from the fine
                        // bins alone, 0.86 here, exact 0.87).
                        let d = Swift.max(
                            fine,
                            DriftStatistics.ksStatistic(
                                referenceFine: m.column.referenceBins, currentFine: currentBins, currentBelow: 0,
                                currentAbove: 0)
                        )
                        return DriftResult(
                            statistic: d,
                            pValue: SpecialFunctions.ksTwoSampleAsymptoticPValue(
                                d: d, n: m.referenceCount, m: Int(observations)))
                    }
                    // Divided inside: the distance may exceed Double's range where the score does not.
                    return DriftResult(
                        distance: DriftStatistics.wasserstein(
                            referenceCumulative: reference, lower: m.column.lower, upper: m.column.upper,
                            currentCumulative: current,
                            currentBelow: (below, window.totalDouble(m.column.base + m.column.belowDistanceOffset)),
                            currentAbove: (above, window.totalDouble(m.column.base + m.column.aboveDistanceOffset)),
                            dividedBy: Swift.max(m.std, 0.001)))
                }
            }
        }
        return (result, observations, missing, widened)
    }

    /// Whether `m`, a `z` picked by `auto`, is scored by `chisquare` over `window`: its reference and window together
    /// hold more than two values (``evaluate(_:window:scratch:)``).
    func isWidened(_ m: Monitored, window: SliceRing.Window) -> Bool {
        guard m.widenedThreshold != nil else { return false }
        return Self.valuesSeen(m.column.referenceBins, window.counts(m.column.base, m.column.binCount)) > 2
    }

    /// The values with a count in the reference or in the window (bin by bin; `__other__` one more).
    static func valuesSeen(_ reference: [Double], _ current: [Double]) -> Int {
        zip(reference, current).count { $0 > 0 || $1 > 0 }
    }

    /// Computes every column's drift over the window ending now and emits the families. A run that keeps only
    /// some families (a status page's) skips the work of those it drops: a subject's evaluation when none of
    /// its figures is kept, the per-bin series when neither bin family is.
    public func collect(into sink: inout CollectorSink) {
        let f = Self.families
        let window = ring.window(now: WallClock.now())
        var verdicts = 0
        var drifted = 0
        let evaluatingFeatures =
            Self.wantsEvaluation(f.feature, sink) || sink.wants(f.windowMissing) || sink.wants(f.driftShare)
            || sink.wants(f.datasetDetected)
        // One buffer for every column's fine running totals (KS, Wasserstein), reused: collect never runs concurrently with
        // itself.
        var scratch: [Double] = []
        // The bins' and missing counts since start, read at once (``SliceRing/cumulativeTotals()``).
        let totals = ring.cumulativeTotals()
        for (m, labels) in zip(features, featureLabels) {
            let (verdict, missing) = emitDrift(
                m, f.feature, labels, window: window, totals: totals, evaluating: evaluatingFeatures,
                scratch: &scratch, into: &sink)
            if evaluatingFeatures { sink.gauge(f.windowMissing, labels.subject, value: missing) }
            sink.counter(f.missing, labels.subject, value: Double(totals[m.column.totalsBase + m.column.binCount]))
            if let verdict {
                verdicts += 1
                if verdict { drifted += 1 }
            }
        }
        let evaluatingOutputs = Self.wantsEvaluation(f.prediction, sink)
        if let prediction, let predictionLabels {
            _ = emitDrift(
                prediction, f.prediction, predictionLabels, window: window, totals: totals,
                evaluating: evaluatingOutputs, scratch: &scratch, into: &sink)
        }
        if let score, let scoreLabels {
            _ = emitDrift(
                score, f.prediction, scoreLabels, window: window, totals: totals, evaluating: evaluatingOutputs,
                scratch: &scratch, into: &sink)
        }
        if verdicts > 0 {
            let share = Double(drifted) / Double(verdicts)
            sink.gauge(f.driftShare, modelLabels, value: share)
            sink.gauge(f.datasetDetected, modelLabels, value: share >= options.driftShare ? 1 : 0)
        }
        sink.counter(f.late, modelLabels, value: Double(late.load(0)))
    }

    /// Whether the run keeps any family that needs a subject's columns evaluated.
    static func wantsEvaluation(_ f: SubjectFamilies, _ sink: CollectorSink) -> Bool {
        sink.wants(f.observations) || sink.wants(f.score) || sink.wants(f.statistic) || sink.wants(f.pValue)
            || sink.wants(f.detected)
    }

    func emitDrift(
        _ m: Monitored, _ f: SubjectFamilies, _ labels: ColumnLabels, window: SliceRing.Window, totals: [UInt64],
        evaluating: Bool, scratch: inout [Double], into sink: inout CollectorSink
    ) -> (verdict: Bool?, missing: Double) {
        if options.binSeries && (sink.wants(f.binObservations) || sink.wants(f.referenceRatio)) {
            emitBins(m, f, labels, totals: totals, into: &sink)
        }
        guard evaluating else {
            // The method the scores would be of (a run that keeps the thresholds alone: the same series).
            let widened = isWidened(m, window: window)
            sink.gauge(
                f.threshold, widened ? labels.widened!.labels : labels.method,
                value: widened ? labels.widened!.threshold : labels.threshold)
            return (nil, 0)
        }
        let (result, observations, missing, widened) = evaluate(m, window: window, scratch: &scratch)
        // The method the figures are of: the column's, or `chisquare` for a widened `z` (and its threshold).
        let (method, methodLabels, threshold, shownThreshold) =
            widened
            ? (DriftMethod.chiSquare, labels.widened!.labels, m.widenedThreshold!, labels.widened!.threshold)
            : (m.method, labels.method, m.threshold, labels.threshold)
        sink.gauge(f.threshold, methodLabels, value: shownThreshold)
        sink.gauge(f.observations, labels.subject, value: observations)
        var verdict: Bool?
        if observations > 0 && !result.score.isNaN {
            sink.gauge(f.score, methodLabels, value: result.score)
            sink.gauge(f.statistic, methodLabels, value: result.statistic)
            if let p = result.pValue { sink.gauge(f.pValue, methodLabels, value: p) }
            if observations >= Double(options.minObservations) {
                verdict = method.isDrift(score: result.score, threshold: threshold)
                sink.gauge(f.detected, methodLabels, value: verdict! ? 1 : 0)
            }
        }
        return (verdict, missing)
    }

    func emitBins(
        _ m: Monitored, _ f: SubjectFamilies, _ labels: ColumnLabels, totals: [UInt64], into sink: inout CollectorSink
    ) {
        let c = m.column
        for b in 0..<c.binCount {
            sink.counter(f.binObservations, labels.bins[b], value: Double(totals[c.totalsBase + b]))
        }
        sink.gauge(f.referenceRatio, constant: labels.referenceRatios)
    }
}
