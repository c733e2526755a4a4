import Exposition
import Ingestion
import ModelMonitoring

/// An example of a user-defined model collector: counts, per model version, the predictions whose score is
/// at or above a configured threshold (say, transactions a fraud model would block), so a sudden rise shows
/// up as a rate:
///
///     collectors:
///       - name: high_score
///         options: {threshold: 0.9}
///
///     mlops_model_high_score_predictions_total{model="fraud",version="v1"} 3
///
/// It follows the ``ModelCollector`` contract:
/// - a static `name` and a static `schema`: the family is declared once, with
///   `static let (schema, handle) = try! CollectorSchema.build { s in try s.counter(...) }`, and the collector
///   emits through the handle (no family name at scrape time, no lookup);
/// - options validated at creation (errors name the option), and the label sets that repeat at every scrape
///   built there too, once (`handle.labels(model.name, version)`), from configured values only;
/// - lock-free recording into slots resolved once (one per version, through the context's version index);
/// - samples emitted at scrape time with `sink.counter(handle, labelSet, value:)`.
///
/// Each (model, collector) is run and checked on its own: if this collector emits something invalid (a
/// negative or non-finite counter, a label set built for another family, the same series twice) or misses the
/// scrape's deadline, only its families for that model are left out of that scrape, counted in
/// `mlops_exporter_collector_skipped_total{collector="high_score",model="fraud",reason="invalid"}` and logged
/// once per distinct problem; every other model and collector is still served.
final class HighScoreCollector: ModelCollector {
    static let name = "high_score"
    /// The family, declared once, and the handle the collector emits through.
    static let (schema, highScores) = try! CollectorSchema.build { s in
        try s.counter(
            "mlops_model_high_score_predictions_total",
            help: "Predictions whose score is at or above the high_score collector's threshold.",
            labels: ["model", "version"])
    }

    let model: ModelContext
    let threshold: Double
    let counts: AtomicSlots
    /// `{model, version}` per version, rendered once.
    let labels: [LabelSet]

    init(model: ModelContext, options: CollectorOptions) throws(ModelCollectorError) {
        try options.checkAllowed(["threshold"])
        guard let threshold = try options.number("threshold") else {
            throw options.error("threshold", "required: the score at or above which a prediction counts")
        }
        guard threshold.isFinite else { throw options.error("threshold", "must be a finite number") }
        self.model = model
        self.threshold = threshold
        counts = AtomicSlots(count: model.versionLabels.count)
        labels = model.versionLabels.map { try! Self.highScores.labels(model.name, $0) }
    }

    var maxSeries: Int { model.versionLabels.count }

    func record(prediction: PredictionEvent, receivedAt: Double) {
        if let score = prediction.score, score >= threshold { counts.add(model.versionIndex(prediction.version)) }
    }

    func collect(into sink: inout CollectorSink) {
        for i in labels.indices { sink.counter(Self.highScores, labels[i], value: Double(counts.load(i))) }
    }
}
