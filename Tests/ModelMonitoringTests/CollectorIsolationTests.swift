import Dispatch
import ExporterConfig
import Exposition
import Ingestion
import ModelMonitoring
import Testing

/// A user collector that emits one good series per version, then, as its `mode` option says, something wrong.
private final class BrokenCollector: ModelCollector {
    static let name = "broken"
    static let (schema, handles) = try! CollectorSchema.build { s in
        (
            value: try s.gauge(
                "mlops_broken_value", help: "Good until the bad emission.", labels: ["model", "version"]),
            total: try s.counter("mlops_broken_events_total", help: "Never negative.", labels: ["model"])
        )
    }
    /// A handle of a schema this collector did not declare.
    static let (_, foreign) = try! CollectorSchema.build { try $0.gauge("mlops_foreign_value", help: "") }
    /// Released by the test once a render has given up on the `slow` mode.
    static let gate = DispatchSemaphore(value: 0)

    let model: ModelContext
    let mode: String
    let labels: [LabelSet]

    init(model: ModelContext, options: CollectorOptions) throws(ModelCollectorError) {
        self.model = model
        mode = try options.string("mode") ?? "fine"
        labels = model.versionLabels.map { try! Self.handles.value.labels(model.name, $0) }
    }

    var maxSeries: Int { labels.count + 1 }
    func record(prediction: PredictionEvent, receivedAt: Double) {}

    func collect(into sink: inout CollectorSink) {
        for l in labels { sink.gauge(Self.handles.value, l, value: 1) }
        switch mode {
        case "nan": sink.counter(Self.handles.total, [model.name], value: .nan)
        case "labels": sink.counter(Self.handles.total, [model.name, "extra"], value: 1)
        case "duplicate": sink.gauge(Self.handles.value, labels[0], value: 2)
        case "foreign": sink.gauge(Self.foreign, value: 1)
        case "slow": _ = Self.gate.wait(timeout: .now() + 10)
        case "many":
            // Valid series, more than `maxSeries` declares: a collector's series must stay within the model's
            // `max_series` budget it was checked against (before, any number was served).
            for i in 0..<5 { sink.gauge(Self.handles.value, [model.name, "unbounded-\(i)"], value: 1) }
        default: sink.counter(Self.handles.total, [model.name], value: 1)
        }
    }
}

/// A user collector with a required option, as examples/custom-collector's `high_score`.
private final class ThresholdCollector: ModelCollector {
    static let name = "threshold"
    static let schema = CollectorSchema()
    init(model: ModelContext, options: CollectorOptions) throws(ModelCollectorError) {
        guard try options.number("threshold") != nil else {
            throw options.error("threshold", "required: the score at or above which a prediction counts")
        }
    }
    var maxSeries: Int { 0 }
    func record(prediction: PredictionEvent, receivedAt: Double) {}
    func collect(into sink: inout CollectorSink) {}
}

/// A bad required option was two problems: its own, then "required" from the retry without it (untrue: it was given).
@Test("a bad required option is one problem")
func aBadRequiredOptionIsOneProblem() throws {
    var catalog = CollectorCatalog.builtIn
    try catalog.register(ThresholdCollector.self)
    var model = fraud
    model.collectors = [CollectorConfiguration(name: "threshold", options: ["threshold": .string("hi")])]
    do {
        _ = try ModelMonitor(catalog: catalog).prepare(
            ExporterConfiguration(models: [model], source: "t"), references: [:])
        Issue.record("should have thrown")
    } catch {
        #expect(error.problems.count == 1, "\(error.problems)")
        #expect(error.problems.first?.contains("required") == false, "\(error.problems)")
    }
}

@Suite("Per (model, collector) isolation")
struct CollectorIsolationTests {
    static func harness(mode: String) throws -> Harness {
        var catalog = CollectorCatalog.builtIn
        try catalog.register(BrokenCollector.self)
        var bad = fraud
        bad.collectors = [
            CollectorConfiguration(name: "service"),
            CollectorConfiguration(name: "broken", options: ["mode": .string(mode)]),
        ]
        var good = eta
        good.collectors += [CollectorConfiguration(name: "broken")]
        return try Harness([bad, good], catalog: catalog)
    }

    @Test(
        "a broken collector of one model loses only its own families for that model; everything else is served",
        arguments: ["nan", "labels", "duplicate", "foreign", "slow", "many"])
    func brokenCollectorIsIsolated(mode: String) throws {
        let h = try Self.harness(mode: mode)
        let reason = mode == "slow" ? "deadline" : "invalid"
        var out: [UInt8] = []
        let report = h.registry.render(
            format: .text, into: &out, timeout: mode == "slow" ? .milliseconds(300) : .seconds(10))
        if mode == "slow" { BrokenCollector.gate.signal() }
        let text = String(decoding: out, as: UTF8.self)
        let lines = Set(text.split(separator: "\n").map(String.init))

        // The broken part is gone, and only it.
        #expect(!text.contains(#"mlops_broken_value{model="fraud""#))
        #expect(lines.contains(#"mlops_broken_value{model="eta",version="2024.06"} 1"#))
        #expect(lines.contains(#"mlops_broken_events_total{model="eta"} 1"#))
        for series in [
            #"mlops_model_requests_total{model="fraud",status="ok",version="v1"} 0"#,
            #"mlops_model_requests_total{model="fraud",status="error",version="v2"} 0"#,
            #"mlops_model_info{model="fraud",reference_sha256="",task="binary_classification",version="v2"} 1"#,
            #"mlops_model_requests_total{model="eta",status="ok",version="2024.06"} 0"#,
            #"mlops_ingest_events_total{kind="predictions",model="fraud"} 0"#,
            #"mlops_ingest_events_total{kind="predictions",model="eta"} 0"#,
        ] {
            #expect(lines.contains(series), "missing \(series)")
        }
        #expect(
            lines.contains(
                #"mlops_exporter_collector_skipped_total{collector="broken",model="fraud",reason="\#(reason)"} 1"#))
        #expect(report.skipped.map(\.model) == ["fraud"] && report.skipped.map(\.reason) == [reason])
        #expect(report.firstSkips == report.skipped)

        // Counted at every scrape, reported (for the log) once.
        if mode != "slow" {
            var again: [UInt8] = []
            let second = h.registry.render(format: .openMetrics, into: &again)
            #expect(second.skipped.count == 1 && second.firstSkips.isEmpty)
            #expect(
                String(decoding: again, as: UTF8.self).contains(
                    #"mlops_exporter_collector_skipped_total{collector="broken",model="fraud",reason="invalid"} 2"#))
        }
    }

    @Test("a healthy configuration skips nothing, and label sets built once render like label values given each time")
    func healthy() throws {
        let h = try Self.harness(mode: "fine")
        var out: [UInt8] = []
        let report = h.registry.render(format: .text, into: &out)
        #expect(report.skipped.isEmpty)
        let text = String(decoding: out, as: UTF8.self)
        #expect(text.contains(#"mlops_broken_value{model="fraud",version="v1"} 1"#))
        #expect(text.contains(#"mlops_broken_events_total{model="fraud"} 1"#))
        #expect(!text.contains("collector_skipped_total"))
    }
}
