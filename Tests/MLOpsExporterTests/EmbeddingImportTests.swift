import Logging
import MLOpsExporter
import Testing

/// `import MLOpsExporter` alone (and Logging, for the exporter's logger) names what a service that embeds the
/// exporter uses: the models and their events, a delayed label included. This file imports nothing else of the
/// package: before, `LabelEvent`, `MonitoredModel` and `RejectReason` could not be named and it did not compile.
@Suite struct EmbeddingImportTests {
    @Test func aDelayedLabelIsRecordedWithTheExportersImportAlone() throws {
        // The configuration's feature kind, named as before the events were re-exported (ambiguous when Ingestion
        // was re-exported whole: it has a `FeatureKind` of its own).
        let kind: FeatureKind = .numeric
        #expect(FeatureConfiguration(name: "x", kind: kind).kind == .numeric)
        var configuration = Exporter.Configuration()
        configuration.processMetrics = false
        configuration.models = ExporterConfiguration(
            models: [
                ModelConfiguration(
                    name: "fraud", task: .binaryClassification, versions: ["v1"], classes: ["legit", "fraud"],
                    positiveClass: "fraud", collectors: [CollectorConfiguration(name: "quality")])
            ], source: "<code>")
        let exporter = try Exporter(
            configuration: configuration, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        let model: MonitoredModel = try #require(exporter.monitor.model(named: "fraud"))
        let refused: RejectReason? = model.record(version: "v1", prediction: .label("fraud"), id: "e1")
        #expect(refused == nil)
        var event = PredictionEvent(schema: model.context.schema)
        event.version = "v1"
        event.prediction = .label("legit")
        #expect(model.record(&event) == nil)
        #expect(model.record(label: LabelEvent(id: "e1", label: .label("fraud"))) == nil)
        let text = String(decoding: exporter.registry.render(format: .text), as: UTF8.self)
        #expect(text.contains(#"mlops_ingest_events_total{kind="labels",model="fraud"} 1"#))
    }
}
