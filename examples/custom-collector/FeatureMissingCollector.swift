import Exposition
import Ingestion
import ModelMonitoring

/// An example of a user-defined model collector: counts, per feature, the predictions that arrived
/// without it (`null` or absent), so a broken feature pipeline shows up as a rising rate:
///
///     mlops_model_feature_missing_total{model="fraud",feature="amount"} 3
///
/// It follows the ``ModelCollector`` contract: static name and families, options validated at creation,
/// lock-free recording into slots resolved once (one per feature), samples emitted at scrape time.
final class FeatureMissingCollector: ModelCollector {
    static let name = "feature_missing"
    static let descriptors: [MetricDescriptor] = [
        try! MetricDescriptor(
            name: "mlops_model_feature_missing_total", type: .counter,
            help: "Predictions received without this feature (null or absent).", labelNames: ["model", "feature"])
    ]

    let model: ModelContext
    let missing: AtomicSlots

    init(model: ModelContext, options: CollectorOptions) throws(ModelCollectorError) {
        try options.checkAllowed([])
        self.model = model
        missing = AtomicSlots(count: model.schema.features.count)
    }

    var maxSeries: Int { model.schema.features.count }

    func record(prediction: PredictionEvent, receivedAt: Double) {
        for (i, value) in prediction.features.enumerated() where value == .missing { missing.add(i) }
    }

    func collect(into sink: inout CollectorSink) {
        for (i, feature) in model.schema.features.enumerated() {
            sink.counter(
                "mlops_model_feature_missing_total", [model.name, feature.name], value: Double(missing.load(i)))
        }
    }
}
