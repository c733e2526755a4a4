import Exposition
import ModelMonitoring

/// The batch's own families, pushed beside the model's (docs/metrics.md "Batch jobs"): when the run finished
/// successfully, how long it took and how many rows it read.
struct BatchMetrics: Sendable {
    struct Families {
        let schema: CollectorSchema
        let lastSuccess: GaugeHandle
        let duration: GaugeHandle
        let rows: GaugeHandle

        init() {
            var s = CollectorSchema()
            lastSuccess = try! s.gauge(
                "mlops_batch_last_success_timestamp_seconds",
                help: "Unix time the batch run (mlops-exporter batch) finished successfully.", unit: "seconds",
                labels: ["model"])
            duration = try! s.gauge(
                "mlops_batch_duration_seconds", help: "Seconds the batch run took to read and score its input.",
                unit: "seconds", labels: ["model"])
            rows = try! s.gauge(
                "mlops_batch_rows", help: "Rows (events) the batch run read, by kind (predictions, labels).",
                labels: ["model", "kind"])
            schema = s
        }
    }

    static let families = Families()

    /// The part that writes the figures of one run.
    static func part(
        model: String, finishedAt: Double, duration: Double, predictions: Int, labels: Int?
    )
        -> CollectorPart
    {
        let f = families
        return CollectorPart(collector: "batch", model: model, schema: f.schema) { sink in
            sink.gauge(f.lastSuccess, [model], value: finishedAt)
            sink.gauge(f.duration, [model], value: duration)
            sink.gauge(f.rows, [model, "predictions"], value: Double(predictions))
            if let labels { sink.gauge(f.rows, [model, "labels"], value: Double(labels)) }
        }
    }
}

/// The parts of one model of a ``ModelMonitor`` (not the other models, nor the requests for unknown models) and
/// the batch's own part, as one registry group: what a batch run pushes.
final class BatchGroup: CollectorGroup {
    let descriptors: [MetricDescriptor]
    private let modelParts: [CollectorPart]
    private let batchPart: CollectorPart

    init(monitor: ModelMonitor, model: String, batchPart: CollectorPart) {
        descriptors = monitor.descriptors + BatchMetrics.families.schema.descriptors
        modelParts = monitor.parts().filter { $0.model == model && $0.collector != "batch" }
        self.batchPart = batchPart
    }

    func parts() -> [CollectorPart] { modelParts + [batchPart] }
}
