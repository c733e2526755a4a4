import ExporterConfig
import Exposition
import Foundation
import Ingestion
import ModelMonitoring
import Testing

@Suite struct MonitoredModelTests {
    /// The schema the capture decoders get knows the positive class (its probability is a derived score), first
    /// or second.
    @Test func theSchemaKnowsThePositiveClass() throws {
        for (positive, index) in [("churn", 0), ("stay", 1)] {
            let context = try ModelContext(
                configuration: ModelConfiguration(
                    name: "m", task: .binaryClassification, classes: ["churn", "stay"], positiveClass: positive,
                    features: [FeatureConfiguration(name: "x", kind: .numeric)]))
            #expect(context.schema.positiveClassIndex == index)
        }
    }

    @Test func inProcessRecordAppliesTheDecodersRules() throws {
        let h = try Harness([fraud, eta])
        let f = h.model("fraud")
        #expect(f.record(version: "", prediction: .label("fraud")) == .missingVersion)
        #expect(f.record(version: "v1", prediction: .number(1)) == .wrongType)
        #expect(f.record(version: "v1", prediction: .label("fraud"), latencySeconds: -1) == .invalidNumber)
        // A time before 1970 is none (a join delay from -1e300 made the delay histogram's sum 1e300 for good).
        #expect(f.record(version: "v1", prediction: .label("fraud"), timestamp: -1e300) == .invalidNumber)
        #expect(f.record(label: LabelEvent(id: "7", label: .label("fraud"), timestamp: -1)) == .invalidNumber)
        #expect(f.record(version: "v1", prediction: .label("fraud"), probabilities: [0.5]) == .invalidProbabilities)
        #expect(
            f.record(version: "v1", prediction: .label("fraud"), probabilities: [0.2, 1.5]) == .invalidProbabilities)
        #expect(
            f.record(version: "v1", prediction: .label("fraud"), features: ["amount": .category("x")]) == .wrongType)
        #expect(
            f.record(version: "v1", prediction: .label("fraud"), features: ["amount": .number(.nan)]) == .invalidNumber)
        // An attribute the model does not declare is counted and ignored, as the ingestion API does (it was refused
        // as wrong_type, the whole prediction lost, while the API accepted the same event).
        #expect(f.record(version: "v1", prediction: .label("fraud"), attributes: ["shoe_size": "9"]) == nil)
        #expect(h.value(#"mlops_ingest_unknown_keys_total{model="fraud"}"#) == 1)
        #expect(
            f.record(version: "v1", prediction: .label("fraud"), features: ["amount": .number(3), "zzz": .number(1)])
                == nil)
        // A number for a categorical feature is the category it names, as the JSON decoder reads `"country": 3` (it
        // was accepted and kept a number, which no category takes: counted missing); not finite, it is refused.
        var event = PredictionEvent(schema: f.context.schema)
        event.version = "v1"
        event.prediction = .label("fraud")
        event.features = [.number(3), .number(3)]
        #expect(f.record(&event) == nil)
        #expect(event.features == [.number(3), .category("3")])
        event.features = [.number(3), .number(2.5)]
        #expect(f.record(&event) == nil)
        #expect(event.features[1] == .category("2.5"))
        #expect(
            f.record(version: "v1", prediction: .label("fraud"), features: ["country": .number(.infinity)])
                == .invalidNumber)
        #expect(f.record(label: LabelEvent(id: "", label: .label("fraud"))) == .missingID)
        #expect(f.record(label: LabelEvent(id: "7", label: .number(1))) == .wrongType)
        #expect(f.record(label: LabelEvent(id: "7", label: .label("fraud"))) == nil)
        #expect(h.model("eta").record(version: "2024.06", prediction: .number(.infinity)) == .invalidNumber)
        #expect(h.value(#"mlops_ingest_rejected_total{model="fraud",reason="wrong_type"}"#) == 3)
        #expect(h.value(#"mlops_ingest_rejected_total{model="fraud",reason="invalid_number"}"#) == 5)
        #expect(h.value(#"mlops_ingest_rejected_total{model="fraud",reason="invalid_probabilities"}"#) == 2)
        #expect(h.value(#"mlops_ingest_rejected_total{model="fraud",reason="missing_version"}"#) == 1)
        #expect(h.value(#"mlops_ingest_rejected_total{model="fraud",reason="missing_id"}"#) == 1)
        #expect(h.value(#"mlops_ingest_events_total{kind="predictions",model="fraud"}"#) == 4)
        // fraud has no quality or fairness collector: its valid label is counted as not used, not as accepted.
        #expect(h.value(#"mlops_ingest_events_total{kind="labels",model="fraud"}"#) == 0)
        #expect(h.value(#"mlops_ingest_labels_not_used_total{model="fraud"}"#) == 1)
        #expect(h.value(#"mlops_ingest_unknown_features_total{model="fraud"}"#) == 1)
        #expect(h.value(#"mlops_ingest_rejected_total{model="eta",reason="invalid_number"}"#) == 1)
    }

    @Test func summedValuesBeyondTheirBoundAreRefusedAndQualityKeepsRendering() throws {
        // One outcome whose squared error overflowed (2e154² = +Inf) made the cumulative Σe² infinite: the quality
        // collector's output was refused at every scrape, every version's series gone until a restart. Such values
        // are refused now (invalid_number), and the model's other series stay.
        let h = try Harness([
            ModelConfiguration(
                name: "eta", task: .regression, versions: ["v1", "v2"],
                collectors: [CollectorConfiguration(name: "quality"), CollectorConfiguration(name: "service")])
        ])
        let m = h.model("eta")
        #expect(m.record(version: "v2", prediction: .number(3), latencySeconds: 0.5, label: .number(2)) == nil)
        #expect(m.record(version: "v1", prediction: .number(2e154), label: .number(0)) == .invalidNumber)
        #expect(m.record(version: "v1", prediction: .number(1), label: .number(-1e141)) == .invalidNumber)
        #expect(m.record(version: "v1", prediction: .number(1), latencySeconds: 1e308) == .invalidNumber)
        #expect(m.record(version: "v1", prediction: .number(1)) == nil)
        #expect(m.record(version: "v1", prediction: .number(1), latencySeconds: 1e308) == .invalidNumber)
        #expect(m.record(label: LabelEvent(id: "x", label: .number(1e300))) == .invalidNumber)
        // At the bound: accepted, and the sums stay finite.
        #expect(m.record(version: "v1", prediction: .number(1e140), label: .number(-1e140)) == nil)
        #expect(m.record(version: "v1", prediction: .number(-1e140), label: .number(1e140)) == nil)
        #expect(h.value(#"mlops_ingest_rejected_total{model="eta",reason="invalid_number"}"#) == 5)
        #expect(h.value(#"mlops_model_mae{model="eta",version="v2"}"#) == 1)
        let squares = try #require(h.value(#"mlops_model_squared_error_sum_total{model="eta",version="v1"}"#))
        #expect(abs(squares / 8e280 - 1) < 1e-12)
        #expect(h.value(#"mlops_model_latency_seconds_sum{model="eta",version="v2"}"#) == 0.5)
        #expect(h.value(#"mlops_model_requests_total{model="eta",status="ok",version="v1"}"#) == 3)
    }

    /// A request without a prediction whose latency was NaN or negative was counted, its latency dropped without a
    /// word; it is refused as the same latency in an event is.
    @Test func aRequestWithAnInvalidLatencyIsRefusedAndCounted() throws {
        let h = try Harness([ModelConfiguration(name: "eta", task: .regression, versions: ["v1"])])
        let m = h.model("eta")
        #expect(m.recordRequest(version: "v1", status: .ok, latencySeconds: 0.5) == nil)
        #expect(m.recordRequest(version: "v1", status: .ok, latencySeconds: nil) == nil)
        for bad in [Double.nan, -5, .infinity, 1e141] {
            #expect(m.recordRequest(version: "v1", status: .ok, latencySeconds: bad) == .invalidNumber, "\(bad)")
        }
        #expect(h.value(#"mlops_ingest_rejected_total{model="eta",reason="invalid_number"}"#) == 4)
        #expect(h.value(#"mlops_model_requests_total{model="eta",status="ok",version="v1"}"#) == 2)
        #expect(h.value(#"mlops_model_latency_seconds_count{model="eta",version="v1"}"#) == 1)
    }

    @Test func preShapedEventsUseResolvedIndices() throws {
        let h = try Harness([fraud])
        let f = h.model("fraud")
        let amount = try #require(f.featureIndex("amount"))
        let gender = try #require(f.attributeIndex("gender"))
        var event = f.makePrediction(version: "v2", prediction: .label("legit"))
        event.features[amount] = .number(10)
        event.attributes[gender] = "f"
        #expect(f.record(event) == nil)
        #expect(h.value(#"mlops_model_predicted_class_total{class="legit",model="fraud",version="v2"}"#) == 1)
    }

    @Test func recordingInPlaceMatchesRecordingACopy() throws {
        // The same events, valid and not, through record(_:) and record(&_:) on two models: the same reasons and
        // the same series; the in-place event keeps everything but its class indices, set from its labels.
        let byCopy = try Harness([fraud])
        let inPlace = try Harness([fraud])
        let f = byCopy.model("fraud")
        let amount = try #require(f.featureIndex("amount"))
        var events: [PredictionEvent] = []
        // Valid without a label, valid with one, a categorical value for a numeric feature, no version.
        for (i, version) in ["v1", "v2", "v2", ""].enumerated() {
            for prediction in [Outcome.label("fraud"), .label("legit"), .label("other"), .number(1)] {
                var event = f.makePrediction(version: version, prediction: prediction)
                event.features[amount] = i == 2 ? .category("x") : .number(Double(i))
                event.label = i == 1 ? .label("legit") : nil
                event.predictionClass = 7
                event.labelClass = 9
                event.id = "e\(events.count)"
                events.append(event)
            }
        }
        for (i, event) in events.enumerated() {
            var copy = event
            let reason = inPlace.model("fraud").record(&copy, receivedAt: 5)
            #expect(f.record(event, receivedAt: 5) == reason)
            var expected = event
            if i < 8, case .label(let label) = event.prediction {
                #expect(reason == nil)
                expected.predictionClass = ["legit", "fraud"].firstIndex(of: label)
                expected.labelClass = event.label == nil ? nil : 0
            } else {
                #expect(reason != nil)  // refused before any normalisation
            }
            #expect(copy == expected, "\(event)")
        }
        let timed = "mlops_exporter_collector_duration_seconds"
        #expect(byCopy.samples().filter { !$0.hasPrefix(timed) } == inPlace.samples().filter { !$0.hasPrefix(timed) })
        #expect(byCopy.value(#"mlops_ingest_events_total{kind="predictions",model="fraud"}"#) == 6)
    }

    @Test func bodiesAreDecodedRecordedAndCounted() throws {
        let h = try Harness([fraud])
        let f = h.model("fraud")
        let body = Array(
            """
            {"version":"v1","prediction":"fraud"}
            {"version":"v1"}
            nope
            {"version":"v2","prediction":"legit","features":{"unknown":1}}
            """.utf8)
        let report = try body.withUnsafeBytes { raw in
            try f.ingest(.predictions, body: raw, format: .ndjson, maxEvents: 10, receivedAt: 1)
        }
        #expect(report.accepted == 2 && report.rejected == 2)
        #expect(h.value(#"mlops_ingest_events_total{kind="predictions",model="fraud"}"#) == 2)
        #expect(h.value(#"mlops_ingest_rejected_total{model="fraud",reason="missing_prediction"}"#) == 1)
        #expect(h.value(#"mlops_ingest_rejected_total{model="fraud",reason="invalid_json"}"#) == 1)
        #expect(h.value(#"mlops_ingest_unknown_features_total{model="fraud"}"#) == 1)
        #expect(throws: BodyError.self) {
            try body.withUnsafeBytes { raw in
                try f.ingest(.predictions, body: raw, format: .ndjson, maxEvents: 3, receivedAt: 1)
            }
        }
        #expect(h.value(#"mlops_ingest_rejected_requests_total{model="fraud",reason="too_many_events"}"#) == 1)
        #expect(h.value(#"mlops_ingest_events_total{kind="predictions",model="fraud"}"#) == 2)
    }
}

@Suite struct ModelMonitorTests {
    @Test func badOptionsAndSeriesCapsAreReportedPerModel() throws {
        let monitor = ModelMonitor()
        var badBuckets = eta
        badBuckets.collectors = [
            CollectorConfiguration(name: "service", options: ["prediction_buckets": .list([.number(5), .number(1)])])
        ]
        var unknownOption = fraud
        unknownOption.collectors = [CollectorConfiguration(name: "service", options: ["buckets": .number(1)])]
        var capped = fraud
        capped.name = "capped"
        capped.maxSeries = 10
        let error = #expect(throws: ModelSetupErrors.self) {
            try monitor.prepare(ExporterConfiguration(models: [badBuckets, unknownOption, capped], source: "t"))
        }
        let problems = try #require(error?.problems)
        #expect(problems.count == 3)
        #expect(problems[0].contains(#"model "eta": collector "service": option prediction_buckets"#))
        #expect(problems[1].contains("option buckets: unknown option"))
        #expect(problems[2].contains(#"model "capped""#) && problems[2].contains("max_series (10)"))
        #expect(monitor.modelNames.isEmpty)
    }

    @Test func reloadKeepsUnchangedModelsAndIngestCounts() throws {
        let h = try Harness([fraud, eta])
        let before = h.model("fraud")
        before.record(version: "v1", prediction: .label("fraud"))
        h.model("eta").record(version: "2024.06", prediction: .number(3))
        var changedEta = eta
        changedEta.versions = ["2024.07"]
        h.monitor.apply(try h.monitor.prepare(ExporterConfiguration(models: [fraud, changedEta], source: "t")))
        #expect(h.model("fraud") === before)
        #expect(h.value(#"mlops_model_requests_total{model="fraud",status="ok",version="v1"}"#) == 1)
        // The changed model gets new collectors (new label sets) but keeps its ingestion counters.
        #expect(h.value(#"mlops_model_requests_total{model="eta",status="ok",version="2024.07"}"#) == 0)
        #expect(h.value(#"mlops_ingest_events_total{kind="predictions",model="eta"}"#) == 1)
        h.monitor.apply(try h.monitor.prepare(ExporterConfiguration(models: [changedEta], source: "t")))
        #expect(h.monitor.model(named: "fraud") == nil)
        #expect(!h.samples().contains { $0.contains(#"model="fraud""#) })
    }

    /// Prediction buckets from 0 and a negative prediction: the version's histogram has no `_sum`/`_count` in
    /// OpenMetrics from then on (a probe saw its sum go down 5 → 4, then vanish and come back with its sign); text
    /// keeps them.
    @Test func aNegativePredictionDropsTheSumForGoodInOpenMetrics() throws {
        var fromZero = eta
        fromZero.collectors = [
            CollectorConfiguration(
                name: "service", options: ["prediction_buckets": .list([.number(0), .number(1), .number(10)])])
        ]
        let h = try Harness([fromZero])
        func lines(_ format: ExpositionFormat, _ prefix: String) -> [String] {
            String(decoding: h.registry.render(format: format), as: UTF8.self).split(separator: "\n")
                .filter { $0.hasPrefix(prefix) }.map(String.init)
        }
        let version = #"{model="eta",version="2024.06"}"#
        var sums: [Int] = []
        for x in [5.0, -1, -10, 20] {
            h.model("eta").record(version: "2024.06", prediction: .number(x))
            sums.append(lines(.openMetrics, "mlops_model_prediction_value_sum" + version).count)
            #expect(lines(.text, "mlops_model_prediction_value_count" + version).count == 1)
        }
        #expect(sums == [1, 0, 0, 0])
        #expect(lines(.openMetrics, "mlops_model_prediction_value_count" + version).isEmpty)
    }

    @Test func aCaptureOnlyChangeKeepsTheStateUnderTheNewConfiguration() throws {
        var withQuality = fraud
        withQuality.collectors = [CollectorConfiguration(name: "service"), CollectorConfiguration(name: "quality")]
        withQuality.capture = CaptureConfiguration(protocolName: "kserve_v1")
        let h = try Harness([withQuality])
        let before = h.model("fraud")
        #expect(before.record(version: "v1", prediction: .label("fraud"), id: "p-1") == nil)
        let generation = h.monitor.generation.load(ordering: .relaxed)
        var changed = withQuality
        changed.capture = CaptureConfiguration(protocolName: "mlflow", inferenceService: "isvc")
        h.monitor.apply(try h.monitor.prepare(ExporterConfiguration(models: [changed], source: "t")))
        let after = h.model("fraud")
        // A new object (the routes read its capture), with the same collectors, counters and pending labels.
        #expect(after !== before && after.context.configuration == changed)
        #expect(h.monitor.generation.load(ordering: .relaxed) != generation)
        #expect(after.collectors.count == 2 && zip(after.collectors, before.collectors).allSatisfy { $0 === $1 })
        #expect(after.counters === before.counters && after.joiner === before.joiner)
        #expect(h.value(#"mlops_model_requests_total{model="fraud",status="ok",version="v1"}"#) == 1)
        #expect(h.value(#"mlops_labels_pending{model="fraud"}"#) == 1)
        #expect(after.record(label: LabelEvent(id: "p-1", label: .label("fraud"))) == nil)
        #expect(h.value(#"mlops_labels_joined_total{model="fraud",source="endpoint"}"#) == 1)
        #expect(h.value(#"mlops_labels_pending{model="fraud"}"#) == 0)
        // Any other change still rebuilds the model.
        changed.versions = ["v1"]
        h.monitor.apply(try h.monitor.prepare(ExporterConfiguration(models: [changed], source: "t")))
        #expect(h.model("fraud").collectors.first !== before.collectors.first)
    }

    /// The token, SLOs and max_series are read by no collector: a reload that changes only them keeps the model's
    /// windows and pending predictions (as a restart does), unless the collectors no longer fit max_series.
    @Test func aTokenSLOOrMaxSeriesChangeKeepsTheState() throws {
        var withQuality = fraud
        withQuality.collectors = [CollectorConfiguration(name: "service"), CollectorConfiguration(name: "quality")]
        let h = try Harness([withQuality])
        let before = h.model("fraud")
        #expect(before.record(version: "v1", prediction: .label("fraud"), id: "p-1") == nil)
        var changed = withQuality
        changed.token = "rotated"
        changed.slos = [SLOConfiguration(type: .availability, objective: 0.99)]
        changed.maxSeries = withQuality.maxSeries + 1
        h.monitor.apply(try h.monitor.prepare(ExporterConfiguration(models: [changed], source: "t")))
        let after = h.model("fraud")
        #expect(after.context.configuration == changed)
        #expect(after.collectors.count == 2 && zip(after.collectors, before.collectors).allSatisfy { $0 === $1 })
        #expect(after.joiner === before.joiner)
        #expect(h.value(#"mlops_labels_pending{model="fraud"}"#) == 1)
        #expect(h.value(#"mlops_predictions_evicted_total{model="fraud",reason="reload"}"#) == 0)
        #expect(after.record(label: LabelEvent(id: "p-1", label: .label("fraud"))) == nil)
        #expect(h.value(#"mlops_labels_joined_total{model="fraud",source="endpoint"}"#) == 1)
        // A max_series the collectors no longer fit in is refused, as at the start.
        var capped = changed
        capped.maxSeries = 1
        #expect(throws: ModelSetupErrors.self) {
            try h.monitor.prepare(ExporterConfiguration(models: [capped], source: "t"))
        }
    }

    @Test func unknownModelsAreCountedUnderOneLabel() throws {
        let h = try Harness([fraud])
        h.monitor.unknownModelRequested()
        h.monitor.unknownModelRequested()
        #expect(h.value(#"mlops_ingest_rejected_requests_total{model="__unknown__",reason="unknown_model"}"#) == 2)
    }

    @Test func catalogRejectsNameAndFamilyClashes() {
        var catalog = CollectorCatalog.builtIn
        #expect(throws: CatalogError.self) { try catalog.register(ServiceCollector.self) }
        #expect(catalog.names == ConfigLoader.builtInCollectors)
    }
}

@Suite struct SHA256Tests {
    @Test(arguments: [0, 1, 55, 56, 63, 64, 65, 1000, 100_000])
    func matchesSha256sum(length: Int) throws {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("sha-\(UUID().uuidString)")
        try Data(bytes).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        process.arguments = [url.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(SHA256.hex(bytes) == String(output.prefix(64)))
    }
}
