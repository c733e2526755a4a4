import Exposition
import Ingestion

/// The built-in `quality` collector: model quality from predictions joined with their delayed labels, per
/// model and version, over the model's sliding window and as cumulative raw counters (so that PromQL can
/// aggregate a fleet of replicas with `increase()`).
///
/// It declares ``needsOutcomes``: the model keeps predictions with an `id` until their label arrives, and
/// each joined label reaches ``record(outcome:receivedAt:)`` with `receivedAt` the **label's arrival**. An
/// outcome is credited to the window slice of that arrival (not of the prediction's time): the window
/// answers "how good were the predictions whose labels arrived in the last hour", and an outcome never
/// lands in a slice that has already left the window. Outcomes older than the window are counted in
/// `mlops_quality_late_outcomes_total` and only in the cumulative counters.
///
/// Classification (classes from the configuration plus `__other__`):
/// - counters `mlops_model_confusion_total{model,version,actual,predicted}`,
///   `mlops_model_correct_predictions_total`, `mlops_model_classification_outcomes_total`,
///   `mlops_model_probability_outcomes_total`, `mlops_model_probability_skipped_total`,
///   `mlops_model_log_loss_sum_total`; binary also `mlops_model_brier_score_sum_total` and, with
///   `bin_series`, `mlops_model_calibration_bin_total{bin}`, `..._probability_sum_total{bin}`,
///   `..._positives_total{bin}`; with `score_bin_series`, `mlops_model_score_bin_total{actual,bin}`;
/// - window gauges `mlops_model_window_outcomes`, `mlops_model_accuracy`,
///   `mlops_model_precision|recall|f1{class}` (configured classes), `mlops_model_macro_precision|recall|f1`,
///   `mlops_model_log_loss`; binary also `mlops_model_brier_score`,
///   `mlops_model_expected_calibration_error`, `mlops_model_roc_auc` and `mlops_model_roc_auc_error_bound`.
///
/// Regression (error `e = predicted − actual`):
/// - counters `mlops_model_regression_outcomes_total`, `mlops_model_absolute_error_sum_total`,
///   `mlops_model_squared_error_sum_total`, `mlops_model_absolute_percentage_error_sum_total`,
///   `mlops_model_mape_skipped_total`, `mlops_model_positive_error_sum_total`,
///   `mlops_model_negative_error_sum_total`, `mlops_model_positive_actual_sum_total`,
///   `mlops_model_negative_actual_sum_total`, `mlops_model_actual_squared_sum_total`; cumulative signed
///   gauges `mlops_model_cumulative_error`, `mlops_model_cumulative_actual`;
/// - window gauges `mlops_model_window_outcomes`, `mlops_model_mae`, `mlops_model_rmse`, `mlops_model_mape`,
///   `mlops_model_r2`, `mlops_model_mean_error`.
///
/// Window gauges are absent while undefined (no outcomes in the window; for AUC, one class absent). The
/// formulas, bins and error bounds are in `docs/quality.md`. Recording is lock-free: atomic adds at
/// positions computed from the outcome's indices, no allocation.
public final class QualityCollector: ModelCollector {
    /// `quality`.
    public static let name = "quality"
    /// Joined outcomes feed this collector.
    public static let needsOutcomes = true

    /// The families listed above, and their handles.
    struct Families {
        let schema: CollectorSchema
        let confusion: CounterHandle
        let correctPredictions: CounterHandle
        let classificationOutcomes: CounterHandle
        let probabilityOutcomes: CounterHandle
        let probabilitySkipped: CounterHandle
        let logLossSum: CounterHandle
        let brierScoreSum: CounterHandle
        let calibrationBin: CounterHandle
        let calibrationBinProbabilitySum: CounterHandle
        let calibrationBinPositives: CounterHandle
        let scoreBin: CounterHandle
        let windowOutcomes: GaugeHandle
        let accuracy: GaugeHandle
        let precision: GaugeHandle
        let recall: GaugeHandle
        let f1: GaugeHandle
        let macroPrecision: GaugeHandle
        let macroRecall: GaugeHandle
        let macroF1: GaugeHandle
        let logLoss: GaugeHandle
        let brierScore: GaugeHandle
        let expectedCalibrationError: GaugeHandle
        let rocAuc: GaugeHandle
        let rocAucErrorBound: GaugeHandle
        let regressionOutcomes: CounterHandle
        let absoluteErrorSum: CounterHandle
        let squaredErrorSum: CounterHandle
        let absolutePercentageErrorSum: CounterHandle
        let mapeSkipped: CounterHandle
        let positiveErrorSum: CounterHandle
        let negativeErrorSum: CounterHandle
        let positiveActualSum: CounterHandle
        let negativeActualSum: CounterHandle
        let actualSquaredSum: CounterHandle
        let errorSum: GaugeHandle
        let actualSum: GaugeHandle
        let mae: GaugeHandle
        let rmse: GaugeHandle
        let mape: GaugeHandle
        let r2: GaugeHandle
        let meanError: GaugeHandle
        let qualityLateOutcomes: CounterHandle

        init() {
            var s = CollectorSchema()
            confusion = s.counter(
                "mlops_model_confusion_total", "Joined outcomes by actual and predicted class, since start.",
                ["model", "version", "actual", "predicted"])
            correctPredictions = s.counter(
                "mlops_model_correct_predictions_total",
                "Joined outcomes whose predicted class is their actual, configured class, since start.")
            classificationOutcomes = s.counter(
                "mlops_model_classification_outcomes_total", "Joined outcomes of a classifier, since start.")
            probabilityOutcomes = s.counter(
                "mlops_model_probability_outcomes_total",
                "Joined outcomes with a usable probability of their actual class, since start.")
            probabilitySkipped = s.counter(
                "mlops_model_probability_skipped_total",
                "Joined outcomes whose probability or score could not be used (actual __other__, score outside [0, 1])."
            )
            logLossSum = s.counter(
                "mlops_model_log_loss_sum_total",
                "Sum of the outcomes' log loss (probabilities clipped to [eps, 1-eps]).")
            brierScoreSum = s.counter(
                "mlops_model_brier_score_sum_total", "Sum of the outcomes' squared error of P(positive), binary models."
            )
            calibrationBin = s.counter(
                "mlops_model_calibration_bin_total", "Outcomes per equal-width bin of P(positive), since start.",
                ["model", "version", "bin"])
            calibrationBinProbabilitySum = s.counter(
                "mlops_model_calibration_bin_probability_sum_total",
                "Sum of P(positive) per calibration bin, since start.",
                ["model", "version", "bin"])
            calibrationBinPositives = s.counter(
                "mlops_model_calibration_bin_positives_total", "Positive outcomes per calibration bin, since start.",
                ["model", "version", "bin"])
            scoreBin = s.counter(
                "mlops_model_score_bin_total",
                "Outcomes per equal-width bin of P(positive) and actual class, since start.",
                ["model", "version", "actual", "bin"])
            windowOutcomes = s.gauge(
                "mlops_model_window_outcomes", "Joined outcomes in the window (credited at the label's arrival).")
            accuracy = s.gauge("mlops_model_accuracy", "Share of the window's outcomes predicted correctly.")
            precision = s.gauge(
                "mlops_model_precision", "Precision of each configured class over the window (0 when never predicted).",
                ["model", "version", "class"])
            recall = s.gauge(
                "mlops_model_recall", "Recall of each configured class over the window (0 when never actual).",
                ["model", "version", "class"])
            f1 = s.gauge(
                "mlops_model_f1", "F1 score of each configured class over the window (0 when undefined).",
                ["model", "version", "class"])
            macroPrecision = s.gauge(
                "mlops_model_macro_precision", "Mean precision over the configured classes, over the window.")
            macroRecall = s.gauge(
                "mlops_model_macro_recall", "Mean recall over the configured classes, over the window.")
            macroF1 = s.gauge("mlops_model_macro_f1", "Mean F1 score over the configured classes, over the window.")
            logLoss = s.gauge("mlops_model_log_loss", "Mean log loss over the window's outcomes with probabilities.")
            brierScore = s.gauge(
                "mlops_model_brier_score", "Mean squared error of P(positive) over the window, binary models.")
            expectedCalibrationError = s.gauge(
                "mlops_model_expected_calibration_error",
                "Expected calibration error over the window, on equal-width bins of P(positive).")
            rocAuc = s.gauge(
                "mlops_model_roc_auc", "ROC AUC over the window, from binned scores (ties within a bin count 1/2).")
            rocAucErrorBound = s.gauge(
                "mlops_model_roc_auc_error_bound", "Largest possible distance of the binned ROC AUC from the exact one."
            )
            regressionOutcomes = s.counter(
                "mlops_model_regression_outcomes_total", "Joined outcomes of a regression model, since start.")
            absoluteErrorSum = s.counter(
                "mlops_model_absolute_error_sum_total", "Sum of absolute errors |predicted - actual|, since start.")
            squaredErrorSum = s.counter(
                "mlops_model_squared_error_sum_total", "Sum of squared errors (predicted - actual)^2, since start.")
            absolutePercentageErrorSum = s.counter(
                "mlops_model_absolute_percentage_error_sum_total",
                "Sum of |predicted - actual| / |actual| over nonzero actuals, since start.")
            mapeSkipped = s.counter(
                "mlops_model_mape_skipped_total", "Joined outcomes with a zero actual, left out of MAPE.")
            positiveErrorSum = s.counter(
                "mlops_model_positive_error_sum_total", "Sum of positive errors (over-predictions), since start.")
            negativeErrorSum = s.counter(
                "mlops_model_negative_error_sum_total",
                "Sum of the magnitudes of negative errors (under-predictions), since start.")
            positiveActualSum = s.counter(
                "mlops_model_positive_actual_sum_total", "Sum of the positive actual values, since start.")
            negativeActualSum = s.counter(
                "mlops_model_negative_actual_sum_total",
                "Sum of the magnitudes of the negative actual values, since start.")
            actualSquaredSum = s.counter(
                "mlops_model_actual_squared_sum_total", "Sum of the squared actual values, since start.")
            errorSum = s.gauge("mlops_model_cumulative_error", "Sum of errors predicted - actual since start (signed).")
            actualSum = s.gauge("mlops_model_cumulative_actual", "Sum of actual values since start (signed).")
            mae = s.gauge("mlops_model_mae", "Mean absolute error over the window.")
            rmse = s.gauge("mlops_model_rmse", "Root mean squared error over the window.")
            mape = s.gauge(
                "mlops_model_mape", "Mean absolute percentage error (a fraction) over the window's nonzero actuals.")
            r2 = s.gauge(
                "mlops_model_r2", "Coefficient of determination R^2 over the window (as scikit-learn's r2_score).")
            meanError = s.gauge("mlops_model_mean_error", "Mean error predicted - actual over the window (bias).")
            qualityLateOutcomes = s.counter(
                "mlops_quality_late_outcomes_total",
                "Joined outcomes older than the quality window, not counted in it.",
                ["model"])
            schema = s
        }
    }

    static let families = Families()
    /// The families listed above.
    public static var schema: CollectorSchema { families.schema }

    let model: ModelContext
    let options: QualityOptions
    let task: QualityTask
    let versions: Int
    let classification: ClassificationQuality?
    let slots: QualitySlots
    let late: AtomicSlots
    /// Per version, the label sets emitted at every scrape, rendered once.
    let labels: [VersionLabels]
    let modelLabels: LabelSet

    /// One version's label sets: `{model,version}`, the confusion cells (actual × predicted), the configured
    /// classes, the calibration bins and the score bins of the positive and negative actual class.
    struct VersionLabels: Sendable {
        let version: LabelSet
        let confusion: [LabelSet]
        let classes: [LabelSet]
        let calibration: [LabelSet]
        let scorePositive: [LabelSet]
        let scoreNegative: [LabelSet]
    }

    /// Options as in ``QualityOptions`` (binary models only).
    public init(model: ModelContext, options: CollectorOptions) throws(ModelCollectorError) {
        let configuration = model.configuration
        switch configuration.task {
        case .binaryClassification:
            guard model.positiveClassIndex != nil else {
                throw options.error(nil, "a binary classifier needs its positive_class")
            }
            task = .binary
        case .multiclassClassification: task = .multiclass
        case .regression: task = .regression
        case .textGeneration:
            throw options.error(
                nil, "a text_generation model has no labels to score (its health is the llm collector's)")
        }
        let parsed = try QualityOptions(options, task: task)
        self.model = model
        self.options = parsed
        versions = model.versionLabels.count
        let width: Int
        if task == .regression {
            classification = nil
            width = RegressionQuality.width
        } else {
            let c = ClassificationQuality(
                classes: model.classLabels.count, positive: task == .binary ? model.positiveClassIndex : nil,
                options: parsed)
            classification = c
            width = c.width
        }
        // The window grows with the series (K² confusion cells): refuse before allocating it.
        try options.requireSeries(Self.series(versions: versions, classification: classification, options: parsed))
        let f = Self.families
        // The bins' label sets only for the series exported (`bin_series`, `score_bin_series`): made for every
        // bin of every version whatever the options, a 5 KiB version with `score_bins: 100000` took 1.7 GB.
        let calibrationBins = (0..<(parsed.binSeries ? classification?.calibrationBins ?? 0 : 0)).map { String($0 + 1) }
        let scoreBins = (0..<(parsed.scoreBinSeries ? classification?.scoreBins ?? 0 : 0)).map { String($0 + 1) }
        let classes = model.classLabels
        let positive = classification?.positive
        let configured = classification?.configured ?? 0
        labels = model.versionLabels.map { version in
            let m = model.name
            return VersionLabels(
                version: try! f.accuracy.labels(m, version),
                confusion: classes.flatMap { a in classes.map { p in try! f.confusion.labels(m, version, a, p) } },
                classes: classes.prefix(configured).map { try! f.precision.labels(m, version, $0) },
                calibration: positive == nil
                    ? [] : calibrationBins.map { try! f.calibrationBin.labels(m, version, $0) },
                scorePositive: positive.map { p in scoreBins.map { try! f.scoreBin.labels(m, version, classes[p], $0) }
                }
                    ?? [],
                scoreNegative: positive.map { p in
                    scoreBins.map { try! f.scoreBin.labels(m, version, classes[p == 0 ? 1 : 0], $0) }
                } ?? [])
        }
        modelLabels = try! f.qualityLateOutcomes.labels(model.name)
        slots = QualitySlots(versions: versions, width: width, window: configuration.window)
        late = AtomicSlots(count: 1)
    }

    /// `fresh`'s configuration with `previous`'s window, totals and late count (``carryingState(of:)``).
    private init(_ fresh: QualityCollector, stateOf previous: QualityCollector) {
        model = fresh.model
        options = fresh.options
        task = fresh.task
        versions = fresh.versions
        classification = fresh.classification
        labels = fresh.labels
        modelLabels = fresh.modelLabels
        slots = previous.slots
        late = previous.late
    }

    /// The same outcomes counted in the same bins (calibration and score bins unchanged: `bin_series` or
    /// `score_bin_series` turned on or off, which only choose the series exported) in a window of the same shape:
    /// `previous`'s state, carried on. Other changes start it empty.
    public func carryingState(of previous: any ModelCollector) -> (any ModelCollector)? {
        guard let previous = previous as? QualityCollector, previous.task == task, previous.versions == versions,
            previous.classification?.calibrationBins == classification?.calibrationBins,
            previous.classification?.scoreBins == classification?.scoreBins,
            previous.classification?.classes == classification?.classes, previous.slots.width == slots.width,
            previous.slots.ring.hasSameShape(as: slots.ring), previous.slots.totals.count == slots.totals.count
        else { return nil }
        return QualityCollector(self, stateOf: previous)
    }

    /// Per version: classification K² confusion + 5 counters + 6 + 3C window gauges (binary: + 5, + 3 per
    /// calibration bin with `bin_series`, + 2 per score bin with `score_bin_series`); regression 18. Plus the
    /// late-outcomes counter.
    public var maxSeries: Int { Self.series(versions: versions, classification: classification, options: options) }

    private static func series(versions: Int, classification c: ClassificationQuality?, options: QualityOptions) -> Int
    {
        guard let c else { return versions * 18 + 1 }
        var perVersion = c.classes * c.classes + 5 + 6 + 3 * c.configured
        if c.positive != nil {
            perVersion += 5
            if options.binSeries { perVersion += 3 * c.calibrationBins }
            if options.scoreBinSeries { perVersion += 2 * c.scoreBins }
        }
        return versions * perVersion + 1
    }

    /// Predictions alone say nothing about quality.
    public func record(prediction: PredictionEvent, receivedAt: Double) {}

    /// Records a joined outcome in the window slice of `receivedAt` (the label's arrival) and in the
    /// cumulative totals. Outcomes with indices out of range (which the join never produces) are ignored.
    public func record(outcome: JoinedOutcome, receivedAt: Double) {
        let v = outcome.prediction.version
        guard v >= 0 && v < versions else { return }
        let base = v &* slots.width
        if let c = classification {
            let actual = outcome.actualClass
            let predicted = outcome.prediction.predictedClass
            guard actual >= 0 && actual < c.classes && predicted >= 0 && predicted < c.classes else { return }
            c.record(outcome, base: base, block: block(receivedAt), slots: slots)
        } else {
            let predicted = outcome.prediction.value
            let actual = outcome.actualValue
            guard predicted.isFinite && actual.isFinite else { return }
            RegressionQuality.record(
                predicted: predicted, actual: actual, base: base, block: block(receivedAt), slots: slots)
        }
    }

    /// The window block for `t`, counting a late outcome.
    @inline(__always)
    func block(_ t: Double) -> Int? {
        let block = slots.ring.block(for: t)
        if block == nil { late.add(0) }
        return block
    }

    /// Emits every version's counters and window gauges (the `__other__` version only once it has outcomes).
    public func collect(into sink: inout CollectorSink) {
        let window = slots.ring.window(now: WallClock.now())
        for v in 0..<versions {
            if let c = classification {
                collectClassification(c, version: v, window: window, into: &sink)
            } else {
                collectRegression(version: v, window: window, into: &sink)
            }
        }
        sink.counter(Self.families.qualityLateOutcomes, modelLabels, value: Double(late.load(0)))
    }

    func collectClassification(
        _ c: ClassificationQuality, version v: Int, window totals: SliceRing.Window, into sink: inout CollectorSink
    ) {
        let f = Self.families
        let k = c.classes
        let totalMatrix = (0..<k * k).map { slots.total(v, c.confusion + $0) }
        let total = c.scores(totalMatrix)
        if v == versions - 1 && total.count == 0 { return }
        let l = self.labels[v]
        let labels = l.version
        for cell in 0..<k * k { sink.counter(f.confusion, l.confusion[cell], value: totalMatrix[cell]) }
        sink.counter(f.correctPredictions, labels, value: total.correct)
        sink.counter(f.classificationOutcomes, labels, value: total.count)
        sink.counter(f.probabilityOutcomes, labels, value: slots.total(v, c.probabilityCount))
        sink.counter(f.probabilitySkipped, labels, value: slots.total(v, c.probabilitySkipped))
        sink.counter(f.logLossSum, labels, value: slots.totalDouble(v, c.logLossSum))
        if c.positive != nil {
            sink.counter(f.brierScoreSum, labels, value: slots.totalDouble(v, c.brierSum))
            // A run that keeps only some families (a status page's) skips the loops of those it drops.
            if options.binSeries
                && (sink.wants(f.calibrationBin) || sink.wants(f.calibrationBinProbabilitySum)
                    || sink.wants(f.calibrationBinPositives))
            {
                for b in 0..<c.calibrationBins {
                    let bin = l.calibration[b]
                    sink.counter(f.calibrationBin, bin, value: slots.total(v, c.calibrationCount + b))
                    sink.counter(
                        f.calibrationBinProbabilitySum, bin,
                        value: slots.totalDouble(v, c.calibrationProbabilitySum + b))
                    sink.counter(f.calibrationBinPositives, bin, value: slots.total(v, c.calibrationPositives + b))
                }
            }
            if options.scoreBinSeries && sink.wants(f.scoreBin) {
                for (bins, start) in [(l.scorePositive, c.scorePositives), (l.scoreNegative, c.scoreNegatives)] {
                    for b in 0..<c.scoreBins { sink.counter(f.scoreBin, bins[b], value: slots.total(v, start + b)) }
                }
            }
        }
        let w = slots.window(version: v, totals: totals)
        let window = c.scores(w.counts(c.confusion, k * k))
        sink.gauge(f.windowOutcomes, labels, value: window.count)
        guard window.count > 0 else { return }
        sink.gauge(f.accuracy, labels, value: window.accuracy)
        for i in 0..<c.configured {
            sink.gauge(f.precision, l.classes[i], value: window.precision[i])
            sink.gauge(f.recall, l.classes[i], value: window.recall[i])
            sink.gauge(f.f1, l.classes[i], value: window.f1[i])
        }
        sink.gauge(f.macroPrecision, labels, value: window.macroPrecision)
        sink.gauge(f.macroRecall, labels, value: window.macroRecall)
        sink.gauge(f.macroF1, labels, value: window.macroF1)
        let n = w.count(c.probabilityCount)
        guard n > 0 else { return }
        sink.gauge(f.logLoss, labels, value: w.sum(c.logLossSum) / n)
        guard c.positive != nil else { return }
        sink.gauge(f.brierScore, labels, value: w.sum(c.brierSum) / n)
        if sink.wants(f.expectedCalibrationError) {
            sink.gauge(
                f.expectedCalibrationError, labels,
                value: ProbabilityBins.expectedCalibrationError(
                    counts: w.counts(c.calibrationCount, c.calibrationBins),
                    probabilities: w.sums(c.calibrationProbabilitySum, c.calibrationBins),
                    positives: w.counts(c.calibrationPositives, c.calibrationBins)))
        }
        if sink.wants(f.rocAuc) || sink.wants(f.rocAucErrorBound),
            let (auc, bound) = ProbabilityBins.rocAUC(
                positives: w.counts(c.scorePositives, c.scoreBins),
                negatives: w.counts(c.scoreNegatives, c.scoreBins))
        {
            sink.gauge(f.rocAuc, labels, value: auc)
            sink.gauge(f.rocAucErrorBound, labels, value: bound)
        }
    }

    func collectRegression(version v: Int, window totals: SliceRing.Window, into sink: inout CollectorSink) {
        typealias R = RegressionQuality
        let f = Self.families
        let count = slots.total(v, R.count)
        if v == versions - 1 && count == 0 { return }
        let labels = self.labels[v].version
        sink.counter(f.regressionOutcomes, labels, value: count)
        sink.counter(f.absoluteErrorSum, labels, value: slots.totalDouble(v, R.absoluteError))
        sink.counter(f.squaredErrorSum, labels, value: slots.totalDouble(v, R.squaredError))
        sink.counter(f.absolutePercentageErrorSum, labels, value: slots.totalDouble(v, R.absolutePercentageError))
        sink.counter(f.mapeSkipped, labels, value: slots.total(v, R.mapeSkipped))
        sink.counter(f.positiveErrorSum, labels, value: slots.totalDouble(v, R.positiveError))
        sink.counter(f.negativeErrorSum, labels, value: slots.totalDouble(v, R.negativeError))
        sink.counter(f.positiveActualSum, labels, value: slots.totalDouble(v, R.positiveActual))
        sink.counter(f.negativeActualSum, labels, value: slots.totalDouble(v, R.negativeActual))
        sink.counter(f.actualSquaredSum, labels, value: slots.totalDouble(v, R.actualSquared))
        sink.gauge(f.errorSum, labels, value: slots.totalDouble(v, R.error))
        sink.gauge(f.actualSum, labels, value: slots.totalDouble(v, R.actual))
        let w = slots.window(version: v, totals: totals)
        let maxKey = w.maxKey(R.actualMaxKey)
        let minKey = w.maxKey(R.actualMinKey)
        let constant =
            maxKey != 0 && minKey != 0
            && QualitySlots.value(ofKey: maxKey) == -QualitySlots.value(ofKey: minKey)
        let s = R.scores(
            count: w.count(R.count), absoluteError: w.sum(R.absoluteError), squaredError: w.sum(R.squaredError),
            error: w.sum(R.error), actual: w.sum(R.actual), actualSquared: w.sum(R.actualSquared),
            absolutePercentageError: w.sum(R.absolutePercentageError), skipped: w.count(R.mapeSkipped),
            constant: constant)
        sink.gauge(f.windowOutcomes, labels, value: s.count)
        for (handle, value) in [
            (f.mae, s.mae), (f.rmse, s.rmse), (f.mape, s.mape), (f.r2, s.r2), (f.meanError, s.meanError),
        ] where !value.isNaN {
            sink.gauge(handle, labels, value: value)
        }
    }
}
