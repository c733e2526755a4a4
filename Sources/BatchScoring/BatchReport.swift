import Exposition

/// What a batch run found, read from the model's collectors as the exporter would export them (every figure is a
/// sample of a `/metrics` family: ``build(model:snapshot:rows:labelRows:)`` names them). Encodes as the JSON of
/// `--format json`; ``text`` is the table of `--format text`.
public struct BatchReport: Sendable, Codable, Equatable {
    /// The model.
    public var model: String
    /// The predictions file.
    public var input: String
    /// The labels file, if any.
    public var labels: String?
    /// What was read and what became of it.
    public var counts: Counts
    /// Dataset and per-feature drift (nil without a `drift` collector).
    public var drift: Drift?
    /// Quality per version (empty without a `quality` collector or joined labels).
    public var quality: [Quality]
    /// Fairness metrics per sensitive attribute (empty without a `fairness` collector).
    public var fairness: [Fairness]
    /// Collector parts left out of the run (they failed), as `collector/model`.
    public var skipped: [String]

    /// Whether dataset drift was detected (what `--fail-on-drift` gates on).
    public var driftDetected: Bool { drift?.detected == true }

    /// Rows and events.
    public struct Counts: Sendable, Codable, Equatable {
        /// Prediction rows (CSV records, NDJSON events) read.
        public var rows: Int
        /// Predictions accepted (`mlops_ingest_events_total{kind="predictions"}`).
        public var accepted: Double
        /// Prediction rows rejected, by reason (`mlops_ingest_rejected_total`, less the labels' rejections).
        public var rejected: [String: Double]
        /// Label rows read (nil without labels).
        public var labelRows: Int?
        /// Labels accepted (`mlops_ingest_events_total{kind="labels"}`).
        public var labelsAccepted: Double?
        /// Label rows rejected, by reason (nil without labels; they were counted among the predictions' before).
        public var labelsRejected: [String: Double]?
        /// Labels of the labels file joined to their prediction (`mlops_labels_joined_total{source="endpoint"}`).
        public var labelsJoined: Double?
        /// Inline labels (the predictions' own `label` column or key) joined (`mlops_labels_joined_total{
        /// source="inline"}`; nil when none). They were added to ``labelsJoined``: with a labels file of the same
        /// labels, "200 joined, 200 unmatched" read as a contradiction.
        public var inlineLabelsJoined: Double?
        /// Labels that joined no prediction, by reason (`mlops_labels_unmatched_total`).
        public var labelsUnmatched: [String: Double]?
        /// Predictions whose id an earlier one had (`mlops_predictions_duplicate_id_total`; only the last is joined).
        public var duplicateIDs: Double?
        /// Feature keys the model does not declare (`mlops_ingest_unknown_features_total`; ignored).
        public var unknownFeatures: Double?
        /// Per sensitive attribute with predictions in `__other__` (a value not among its groups, or none), how many
        /// (`mlops_fairness_predictions_total{group="__other__"}`; nil without the fairness collector). A report whose
        /// groups are all unknown otherwise only lacked its fairness section.
        public var otherGroups: [String: Double]?
        /// Predictions of a version the model does not list, recorded under `__other__`
        /// (`mlops_model_requests_total{version="__other__"}`; nil when none).
        public var otherVersions: Double?
        /// Predictions of a class the model does not list, recorded under `__other__`
        /// (`mlops_model_predicted_class_total{class="__other__"}`; nil when none). A misspelt class in a nightly file
        /// was said nowhere.
        public var otherClasses: Double?
        /// Labels of a class the model does not list, joined under `__other__`
        /// (`mlops_model_confusion_total{actual="__other__"}`, with the quality collector; nil when none).
        public var otherLabelClasses: Double?
    }

    /// Drift of the dataset and of each feature and output.
    public struct Drift: Sendable, Codable, Equatable {
        /// `mlops_dataset_drift_share`.
        public var share: Double?
        /// `mlops_dataset_drift_detected` (nil: no verdict).
        public var detected: Bool?
        /// Each feature's drift.
        public var features: [Column]
        /// The prediction's and the score's drift.
        public var outputs: [Column]
    }

    /// One feature's (or output's) drift: `mlops_feature_drift_*` / `mlops_prediction_drift_*`.
    public struct Column: Sendable, Codable, Equatable {
        /// The feature, or the output (`prediction`, `score`).
        public var name: String
        /// The method (`psi`, `wasserstein`, `jensenshannon`, `ks`...).
        public var method: String
        /// `*_drift_score` (a p-value for the tests).
        public var score: Double?
        /// `*_drift_threshold`.
        public var threshold: Double?
        /// `*_drift_statistic`.
        public var statistic: Double?
        /// `*_drift_detected`; nil: no verdict (below `min_observations`).
        public var detected: Bool?
        /// `*_window_observations`: non-missing values.
        public var observations: Double?
        /// `mlops_feature_window_missing` (features only).
        public var missing: Double?
    }

    /// One version's quality figures (`mlops_model_*` gauges of the `quality` collector) by figure name, without
    /// the `mlops_model_` prefix (`accuracy`, `macro_f1`, `roc_auc`, `mae`...); per-class figures as
    /// `precision{class}`.
    public struct Quality: Sendable, Codable, Equatable {
        /// The model version.
        public var version: String
        /// `mlops_model_window_outcomes`: joined outcomes.
        public var outcomes: Double?
        /// The figures present, by name.
        public var figures: [String: Double]
    }

    /// One fairness metric of one attribute: `mlops_fairness_metric`, its bounds and violation.
    public struct Fairness: Sendable, Codable, Equatable {
        /// The sensitive attribute.
        public var attribute: String
        /// The metric (`demographic_parity_difference`...).
        public var metric: String
        /// `mlops_fairness_metric`.
        public var value: Double
        /// `mlops_fairness_lower_bound`, if any.
        public var lower: Double?
        /// `mlops_fairness_upper_bound`, if any.
        public var upper: Double?
        /// `mlops_fairness_violation`; nil: no verdict (fewer than two qualifying groups).
        public var violation: Bool?
    }
}

extension BatchReport {
    /// Figures of the `quality` collector shown per version, in this order.
    static let qualityFigures = [
        "accuracy", "macro_precision", "macro_recall", "macro_f1", "log_loss", "brier_score",
        "expected_calibration_error", "roc_auc", "mae", "rmse", "mape", "r2", "mean_error",
    ]
    static let perClassFigures = ["precision", "recall", "f1"]
    /// How many outcomes the figures that leave some out were computed over, so that the report says so (log loss,
    /// Brier score and calibration: outcomes with a probability; MAPE: those with a nonzero actual).
    static let coverageFigures = [
        ("probability_outcomes", "mlops_model_probability_outcomes_total"),
        ("probability_skipped", "mlops_model_probability_skipped_total"),
        ("mape_skipped", "mlops_model_mape_skipped_total"),
    ]

    /// The report of model `model` from `snapshot` (its parts' run), with the rows the readers counted.
    static func build(
        model: String, input: String, labels: String?, snapshot s: MetricSnapshot, rows: Int, labelRows: Int?,
        predictionRejections: [String: UInt64]? = nil
    ) -> BatchReport {
        let m = ["model": model]
        func byLabel(_ name: String, _ label: String) -> [String: Double] {
            var out: [String: Double] = [:]
            for sample in s.samples(name, matching: m) {
                if let v = sample.label(label), sample.value != 0 { out[v, default: 0] += sample.value }
            }
            return out
        }
        var counts = Counts(
            rows: rows, accepted: s.sum("mlops_ingest_events_total", ["model": model, "kind": "predictions"]),
            rejected: byLabel("mlops_ingest_rejected_total", "reason"))
        counts.duplicateIDs = s.samples("mlops_predictions_duplicate_id_total", matching: m).first.map { _ in
            s.sum("mlops_predictions_duplicate_id_total", m)
        }
        counts.unknownFeatures = s.samples("mlops_ingest_unknown_features_total", matching: m).first.map { _ in
            s.sum("mlops_ingest_unknown_features_total", m)
        }
        let other = s.samples("mlops_fairness_predictions_total", matching: ["model": model, "group": "__other__"])
        if !other.isEmpty {
            counts.otherGroups = [:]
            for sample in other where sample.value > 0 {
                if let attribute = sample.label("attribute") {
                    counts.otherGroups?[attribute, default: 0] += sample.value
                }
            }
        }
        let otherVersions = s.sum("mlops_model_requests_total", ["model": model, "version": "__other__"])
        if otherVersions > 0 { counts.otherVersions = otherVersions }
        let otherClasses = s.sum("mlops_model_predicted_class_total", ["model": model, "class": "__other__"])
        if otherClasses > 0 { counts.otherClasses = otherClasses }
        let otherLabelClasses = s.sum("mlops_model_confusion_total", ["model": model, "actual": "__other__"])
        if otherLabelClasses > 0 { counts.otherLabelClasses = otherLabelClasses }
        let inline = s.sum("mlops_labels_joined_total", ["model": model, "source": "inline"])
        if inline > 0 { counts.inlineLabelsJoined = inline }
        if let labelRows {
            counts.labelRows = labelRows
            counts.labelsAccepted = s.sum("mlops_ingest_events_total", ["model": model, "kind": "labels"])
            if let predictionRejections {
                var labelsRejected: [String: Double] = [:]
                for (reason, all) in counts.rejected {
                    let predictions = Double(predictionRejections[reason] ?? 0)
                    if all > predictions { labelsRejected[reason] = all - predictions }
                    counts.rejected[reason] = predictions > 0 ? predictions : nil
                }
                counts.labelsRejected = labelsRejected
            }
            counts.labelsJoined = s.sum("mlops_labels_joined_total", ["model": model, "source": "endpoint"])
            counts.labelsUnmatched = byLabel("mlops_labels_unmatched_total", "reason")
        }
        var report = BatchReport(
            model: model, input: input, labels: labels, counts: counts, drift: nil, quality: [], fairness: [],
            skipped: s.skipped)
        report.drift = drift(s, model: model)
        report.quality = quality(s, model: model)
        report.fairness = fairness(s, model: model)
        return report
    }

    static func drift(_ s: MetricSnapshot, model: String) -> Drift? {
        let m = ["model": model]
        // Every column the collector watches, from its threshold (always exported): one without a value in the
        // window (all missing) has no score, and is listed with its observations and missing count all the same.
        func columns(_ prefix: String, _ key: String) -> [Column] {
            s.samples("mlops_\(prefix)_drift_threshold", matching: m).compactMap { sample in
                guard let name = sample.label(key), let method = sample.label("method") else { return nil }
                let l = ["model": model, key: name, "method": method]
                let window = prefix == "feature" ? "mlops_feature_window" : "mlops_prediction_window"
                return Column(
                    name: name, method: method, score: s.value("mlops_\(prefix)_drift_score", l),
                    threshold: sample.value,
                    statistic: s.value("mlops_\(prefix)_drift_statistic", l),
                    detected: s.value("mlops_\(prefix)_drift_detected", l).map { $0 == 1 },
                    observations: s.value("\(window)_observations", ["model": model, key: name]),
                    missing: prefix == "feature"
                        ? s.value("mlops_feature_window_missing", ["model": model, key: name]) : nil)
            }
        }
        let features = columns("feature", "feature")
        let outputs = columns("prediction", "output")
        let share = s.value("mlops_dataset_drift_share", m)
        guard !features.isEmpty || !outputs.isEmpty || share != nil else { return nil }
        return Drift(
            share: share, detected: s.value("mlops_dataset_drift_detected", m).map { $0 == 1 }, features: features,
            outputs: outputs)
    }

    static func quality(_ s: MetricSnapshot, model: String) -> [Quality] {
        var versions: [String] = []
        for sample in s.samples("mlops_model_window_outcomes", matching: ["model": model]) {
            if let v = sample.label("version"), !versions.contains(v) { versions.append(v) }
        }
        return versions.map { version in
            let l = ["model": model, "version": version]
            var figures: [String: Double] = [:]
            for name in qualityFigures { if let v = s.value("mlops_model_\(name)", l) { figures[name] = v } }
            for (name, family) in coverageFigures {
                let n = s.samples(family, matching: l).reduce(0) { $0 + $1.value }
                if !s.samples(family, matching: l).isEmpty { figures[name] = n }
            }
            for name in perClassFigures {
                for sample in s.samples("mlops_model_\(name)", matching: l) {
                    if let c = sample.label("class") { figures["\(name){\(c)}"] = sample.value }
                }
            }
            return Quality(version: version, outcomes: s.value("mlops_model_window_outcomes", l), figures: figures)
        }
    }

    static func fairness(_ s: MetricSnapshot, model: String) -> [Fairness] {
        s.samples("mlops_fairness_metric", matching: ["model": model]).compactMap { sample in
            guard let attribute = sample.label("attribute"), let metric = sample.label("metric") else { return nil }
            let l = ["model": model, "attribute": attribute, "metric": metric]
            return Fairness(
                attribute: attribute, metric: metric, value: sample.value,
                lower: s.value("mlops_fairness_lower_bound", l), upper: s.value("mlops_fairness_upper_bound", l),
                violation: s.value("mlops_fairness_violation", l).map { $0 == 1 })
        }
    }
}
