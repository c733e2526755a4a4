import Compression
import ExporterConfig
import Exposition
import Foundation
import Ingestion
import Logging
import ModelMonitoring
import Testing

@testable import MLOpsExporter

/// An exporter never started (no socket), with `fraud` (no token) and `eta` (token `t0ken`) built in code.
private func embedded(
    maxBodyBytes: Int = 16 << 20, maxEvents: Int = 10_000, models: ExporterConfiguration? = codeModels,
    instanceID: String? = nil, telemetryPath: String = "/metrics"
) throws -> Exporter {
    var configuration = Exporter.Configuration()
    if let instanceID { configuration.instanceID = instanceID }
    configuration.telemetryPath = telemetryPath
    configuration.processMetrics = false
    configuration.models = models
    configuration.server.maxBodySize = maxBodyBytes
    configuration.ingestMaxEvents = maxEvents
    return try Exporter(configuration: configuration, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
}

private let codeModels = ExporterConfiguration(
    models: [
        ModelConfiguration(
            name: "fraud", task: .binaryClassification, versions: ["v1"], classes: ["legit", "fraud"],
            positiveClass: "fraud"),
        ModelConfiguration(name: "eta", task: .regression, versions: ["v1"], token: "t0ken"),
    ], source: "<code>")

private func get(_ path: String, _ headers: [(name: String, value: String)] = []) -> ExporterEndpoints.Request {
    ExporterEndpoints.Request(method: "GET", path: path, headers: headers)
}

private func post(
    _ path: String, _ body: String, _ headers: [(name: String, value: String)] = []
) -> ExporterEndpoints.Request {
    ExporterEndpoints.Request(method: "POST", path: path, headers: headers, body: Array(body.utf8))
}

private func header(_ response: ExporterEndpoints.Response, _ name: String) -> String? {
    response.headers.first { $0.name.lowercased() == name.lowercased() }?.value
}

private func text(_ response: ExporterEndpoints.Response) -> String { String(decoding: response.body, as: UTF8.self) }

private let fraudEvent = #"{"version":"v1","prediction":"fraud","latency_seconds":0.01}"# + "\n"

/// A user's collector that reads labels as received (declares `usesLabels`), without a joiner.
private final class LabelCounter: ModelCollector {
    static let name = "label_counter"
    static let usesLabels = true
    static let (schema, labelsSeen) = try! CollectorSchema.build { s in
        try s.counter("test_labels_seen_total", help: "Labels this collector saw.", labels: ["model"])
    }
    let seen = AtomicSlots(count: 1)
    let labels: LabelSet

    init(model: ModelContext, options: CollectorOptions) throws(ModelCollectorError) {
        labels = try! Self.labelsSeen.labels(model.name)
    }

    var maxSeries: Int { 1 }
    func record(prediction: PredictionEvent, receivedAt: Double) {}
    func record(label: LabelEvent, receivedAt: Double) { seen.add(0) }
    func collect(into sink: inout CollectorSink) {
        sink.counter(Self.labelsSeen, labels, value: Double(seen.load(0)))
    }
}

@Suite("Exporter endpoints, mounted without the exporter's server")
struct ExporterEndpointsTests {
    @Test("an exporter that is never started binds nothing and its endpoints serve")
    func servesWithoutASocket() async throws {
        let exporter = try embedded()
        #expect(exporter.boundAddresses.isEmpty)
        let response = await exporter.endpoints.respond(to: get("/metrics"))
        #expect(response.status == 200)
        #expect(text(response).contains("mlops_exporter_build_info"))
    }

    /// After `shutdown(deadline:)` every ingestion request a host still routes to the endpoints gets 503, counted,
    /// with no `Retry-After`: a small body was accepted inline (202) and counted, a large one told to retry (an
    /// embedding probe, docs/embedding.md: "get 503").
    @Test func ingestionAfterShutdownIsRefused() async throws {
        let exporter = try embedded()
        exporter.shutdown(deadline: .seconds(1))
        let small = await exporter.endpoints.respond(
            to: post("/api/v1/models/fraud/predictions", fraudEvent, [("Content-Type", "application/x-ndjson")]))
        #expect(small.status == 503 && header(small, "Retry-After") == nil)
        #expect(text(small) == "the exporter has shut down: it takes no more events\n")
        let large = await exporter.endpoints.respond(
            to: post(
                "/api/v1/models/fraud/predictions", String(repeating: fraudEvent, count: 8_000),
                [("Content-Type", "application/x-ndjson")]))
        #expect(large.status == 503 && header(large, "Retry-After") == nil)
        let metrics = text(await exporter.endpoints.respond(to: get("/metrics")))
        #expect(metrics.contains(#"mlops_ingest_events_total{kind="predictions",model="fraud"} 0"#), "\(metrics)")
        #expect(
            metrics.contains(#"mlops_ingest_rejected_requests_total{model="fraud",reason="overloaded"} 2"#),
            "\(metrics)")
    }

    @Test("/metrics negotiates the format from Accept")
    func negotiation() async throws {
        let endpoints = try embedded().endpoints
        let plain = await endpoints.respond(to: get("/metrics"))
        #expect(header(plain, "Content-Type") == "text/plain; version=0.0.4; charset=utf-8")
        #expect(header(plain, "Vary") == "Accept, Accept-Encoding")
        let open = await endpoints.respond(
            to: get("/metrics", [("Accept", "application/openmetrics-text;version=1.0.0")]))
        #expect(header(open, "Content-Type")?.hasPrefix("application/openmetrics-text; version=1.0.0") == true)
        #expect(text(open).hasSuffix("# EOF\n"))
    }

    @Test("/metrics is gzipped when Accept-Encoding allows")
    func gzip() async throws {
        let endpoints = try embedded().endpoints
        let zipped = await endpoints.respond(to: get("/metrics", [("Accept-Encoding", "gzip")]))
        #expect(zipped.status == 200)
        #expect(header(zipped, "Content-Encoding") == "gzip")
        let inflated = try Gzip.gunzip(zipped.body, maxOutputSize: 1 << 24)
        #expect(String(decoding: inflated, as: UTF8.self).contains("mlops_exporter_build_info"))
        let identity = await endpoints.respond(to: get("/metrics", [("Accept-Encoding", "gzip;q=0")]))
        #expect(header(identity, "Content-Encoding") == nil)
    }

    @Test("concurrent scrapes all get the metrics")
    func concurrentScrapes() async throws {
        let endpoints = try embedded().endpoints
        let statuses = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<16 {
                group.addTask { await endpoints.respond(to: get("/metrics")).status }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(statuses == Array(repeating: 200, count: 16))
    }

    @Test("ingestion: the token is checked, accepted events show up in /metrics")
    func ingestionWithToken() async throws {
        let exporter = try embedded()
        let endpoints = exporter.endpoints
        let path = "/api/v1/models/eta/predictions"
        let event = #"{"version":"v1","prediction":12.5}"# + "\n"
        let missing = await endpoints.respond(to: post(path, event))
        #expect(missing.status == 401)
        #expect(text(missing) == "missing or wrong bearer token for model \"eta\"\n")
        let wrong = await endpoints.respond(to: post(path, event, [("Authorization", "Bearer nope")]))
        #expect(wrong.status == 401)
        let accepted = await endpoints.respond(
            to: post(
                path, event + event, [("Authorization", "Bearer t0ken"), ("Content-Type", "application/x-ndjson")]))
        #expect(accepted.status == 202)
        #expect(text(accepted) == "{\"accepted\":2,\"rejected\":0,\"errors\":[]}\n")
        // The scheme and the token separated by `1*SP` (RFC 9110 §11.4): two spaces were read as part of the token.
        let spaced = await endpoints.respond(to: post(path, event, [("Authorization", "bearer   t0ken")]))
        #expect(spaced.status == 202)
        let empty = await endpoints.respond(to: post(path, event, [("Authorization", "Bearer   ")]))
        #expect(empty.status == 401)
        let fraud = await endpoints.respond(to: post("/api/v1/models/fraud/predictions", fraudEvent))
        #expect(fraud.status == 202)
        let scrape = text(await endpoints.respond(to: get("/metrics")))
        #expect(scrape.contains("mlops_ingest_events_total{kind=\"predictions\",model=\"eta\"} 3\n"))
        #expect(scrape.contains("mlops_ingest_events_total{kind=\"predictions\",model=\"fraud\"} 1\n"))
        #expect(
            scrape.contains("mlops_ingest_rejected_requests_total{model=\"eta\",reason=\"unauthorized\"} 3\n"))
    }

    /// Labels for a model without a quality or fairness collector are refused, with the reason, and counted (inline
    /// ones counted as not used); before, they were answered 202 "accepted" and dropped without a count. A model with
    /// quality takes them.
    @Test func labelsForAModelThatCannotUseThemAreRefused() async throws {
        let models = ExporterConfiguration(
            models: [
                ModelConfiguration(
                    name: "plain", task: .regression, versions: ["v1"],
                    collectors: [CollectorConfiguration(name: "service")]),
                ModelConfiguration(
                    name: "eta", task: .regression, versions: ["v1"],
                    collectors: [CollectorConfiguration(name: "service"), CollectorConfiguration(name: "quality")]),
            ], source: "<code>")
        let exporter = try embedded(models: models)
        let endpoints = exporter.endpoints
        let label = #"{"id":"a","label":3.5}"# + "\n"
        let refused = await endpoints.respond(to: post("/api/v1/models/plain/labels", label))
        #expect(refused.status == 409)
        #expect(
            text(refused)
                == "model \"plain\" has no quality or fairness collector: its labels would join nothing (add one to its collectors)\n"
        )
        let taken = await endpoints.respond(to: post("/api/v1/models/eta/labels", label))
        #expect(taken.status == 202, "\(text(taken))")
        // Inline labels too: the predictions are accepted, their labels counted as not used (ignored uncounted before).
        let inline = #"{"version":"v1","prediction":1,"label":2}"# + "\n" + #"{"version":"v1","prediction":1}"#
        let predictions = await endpoints.respond(to: post("/api/v1/models/plain/predictions", inline))
        #expect(predictions.status == 202)
        let joined = await endpoints.respond(to: post("/api/v1/models/eta/predictions", inline))
        #expect(joined.status == 202)
        let scrape = text(await endpoints.respond(to: get("/metrics")))
        #expect(scrape.contains("mlops_ingest_labels_not_used_total{model=\"plain\"} 1\n"))
        // In process too: counted as not used, not as accepted (it was counted accepted and changed nothing).
        #expect(try #require(exporter.model("plain")).record(label: LabelEvent(id: "b", label: .number(1))) == nil)
        let after = text(await endpoints.respond(to: get("/metrics")))
        #expect(after.contains("mlops_ingest_labels_not_used_total{model=\"plain\"} 2\n"))
        #expect(after.contains("mlops_ingest_events_total{kind=\"labels\",model=\"plain\"} 0\n"))
        #expect(scrape.contains("mlops_ingest_labels_not_used_total{model=\"eta\"} 0\n"))
        #expect(scrape.contains("mlops_labels_joined_total{model=\"eta\",source=\"inline\"} 1\n"))
        #expect(scrape.contains("mlops_ingest_rejected_requests_total{model=\"plain\",reason=\"labels_not_used\"} 1\n"))
        #expect(scrape.contains("mlops_ingest_rejected_requests_total{model=\"eta\",reason=\"labels_not_used\"} 0\n"))
        #expect(scrape.contains("mlops_ingest_events_total{kind=\"labels\",model=\"eta\"} 1\n"))
    }

    /// A key that is no event field is skipped, and said: in the answer (count and first key) and counted per model
    /// (`mlops_ingest_unknown_keys_total`); before, a misspelt `probabilites` lost its values without a trace. A key
    /// of `features` that is no feature is said too (`unknown_features`); before, a misspelt `amout` was dropped with
    /// `{"accepted":1,...}` alone, and the feature counted missing.
    @Test(arguments: [
        (
            #"{"version":"v1","prediction":"fraud","probabilites":{"fraud":0.9}}"# + "\n" + fraudEvent
                + #"{"version":"v1","prediction":"legit","latency_secs":0.2}"# + "\n",
            #"{"accepted":3,"rejected":0,"errors":[],"unknown_keys":{"count":2,"first":"probabilites"}}"#,
            "mlops_ingest_unknown_keys_total"
        ),
        (
            #"{"version":"v1","prediction":"fraud","features":{"amout":3,"amount":1,"zip\u0031":2}}"# + "\n"
                + fraudEvent,
            #"{"accepted":2,"rejected":0,"errors":[],"unknown_features":{"count":3,"first":"amout"}}"#,
            "mlops_ingest_unknown_features_total"
        ),
        (
            // An attribute the model does not declare: skipped without a trace before.
            #"{"version":"v1","prediction":"fraud","attributes":{"gendre":"f"}}"# + "\n"
                + #"{"version":"v1","prediction":"fraud","attributes":{"x\u0031":1}}"# + "\n",
            #"{"accepted":2,"rejected":0,"errors":[],"unknown_keys":{"count":2,"first":"attributes.gendre"}}"#,
            "mlops_ingest_unknown_keys_total"
        ),
    ])
    func unknownKeysAndFeaturesAreAnsweredAndCounted(body: String, expected: String, metric: String) async throws {
        let endpoints = try embedded().endpoints
        let answer = await endpoints.respond(to: post("/api/v1/models/fraud/predictions", body))
        #expect(answer.status == 202)
        #expect(text(answer) == expected + "\n")
        let count = expected.contains("\"count\":2") ? 2 : 3
        let scrape = text(await endpoints.respond(to: get("/metrics")))
        #expect(scrape.contains("\(metric){model=\"fraud\"} \(count)\n"))
        #expect(scrape.contains("\(metric){model=\"eta\"} 0\n"))
    }

    /// Values recorded under `__other__` (a version, class or group the model does not list) and timestamps far ahead
    /// (milliseconds sent for seconds) are accepted and said in the answer, the count and the first, for predictions
    /// and for labels; before, `{"accepted":n,...}` alone, so a misspelt version or class went unseen until a
    /// dashboard showed `__other__`.
    @Test func valuesRecordedUnderOtherAndFutureTimestampsAreAnswered() async throws {
        let models = ExporterConfiguration(
            models: [
                ModelConfiguration(
                    name: "fraud", task: .binaryClassification, versions: ["v1"], classes: ["legit", "fraud"],
                    positiveClass: "fraud",
                    sensitiveAttributes: [SensitiveAttribute(name: "region", groups: ["eu", "us"])],
                    collectors: [CollectorConfiguration(name: "service"), CollectorConfiguration(name: "quality")])
            ], source: "<code>")
        let endpoints = try embedded(models: models).endpoints
        let body = [
            #"{"version":"V1","prediction":"fraud"}"#, #"{"version":"v1","prediction":"frawd","label":"legitt"}"#,
            #"{"version":"v1","prediction":"fraud","attributes":{"region":"asia"}}"#,
            #"{"version":"v1","prediction":"fraud","attributes":{"region":"eu"},"timestamp":1796000000000}"#,
            #"{"version":"v1","prediction":"legit","timestamp":1796000000}"#,
            #"{"version":"v1","prediction":"legit","timestamp":1,"id":"old"}"#,
        ].joined(separator: "\n")
        let answer = await endpoints.respond(to: post("/api/v1/models/fraud/predictions", body))
        #expect(answer.status == 202)
        #expect(
            text(answer)
                == #"{"accepted":6,"rejected":0,"errors":[],"unknown_versions":{"count":1,"first":"V1"},"#
                + #""unknown_classes":{"count":2,"first":"frawd"},"unknown_groups":{"count":1,"first":"region=asia"},"#
                + #""future_timestamps":{"count":1,"first":"1796000000000"},"past_timestamps":{"count":1,"first":"1"}}"#
                + "\n")
        // Both are ignored, counted: a label of the 1970 one is joined with its delay from its arrival (it was 57
        // years, in a histogram sum that never resets).
        let old = await endpoints.respond(to: post("/api/v1/models/fraud/labels", #"{"id":"old","label":"legit"}"#))
        #expect(text(old).contains(#""joined":1"#))
        let metrics = text(await endpoints.respond(to: get("/metrics")))
        for reason in ["future", "past"] {
            #expect(metrics.contains("mlops_ingest_ignored_timestamps_total{model=\"fraud\",reason=\"\(reason)\"} 1\n"))
        }
        let delay = metrics.split(separator: "\n").first { $0.hasPrefix("mlops_labels_join_delay_seconds_sum{") }
        let seconds = try #require(delay.flatMap { Double($0.split(separator: " ").last!) })
        #expect(seconds >= 0 && seconds < 60, "\(delay!)")
        let labels = await endpoints.respond(
            to: post("/api/v1/models/fraud/labels", #"{"id":"a","label":"fraud"}"# + "\n" + #"{"id":"b","label":"x"}"#))
        #expect(text(labels).contains(#""errors":[],"unknown_classes":{"count":1,"first":"x"},"joined":0,"#))
        // A long value is repeated cut to 256 bytes, between characters, ending with "…" (a 15 MB class name was sent
        // back whole, in every answer).
        let long = String(repeating: "ab", count: 300)
        let cut = await endpoints.respond(
            to: post("/api/v1/models/fraud/predictions", #"{"version":"v1","prediction":""# + long + #""}"#))
        #expect(text(cut).contains(#""unknown_classes":{"count":1,"first":""# + long.prefix(253) + #"…"}"#))
        let unknownKey = await endpoints.respond(
            to: post("/api/v1/models/fraud/predictions", #"{"version":"v1","prediction":"legit",""# + long + #"":1}"#))
        #expect(text(unknownKey).contains(#""unknown_keys":{"count":1,"first":""# + long.prefix(253) + #"…"}"#))
        // An error's message that quotes the input is cut to 512 bytes (an unknown class of `probabilities` was
        // repeated whole).
        let message = await endpoints.respond(
            to: post(
                "/api/v1/models/fraud/predictions",
                #"{"version":"v1","prediction":"legit","probabilities":{""# + long + #"":1}}"#))
        let cutMessage = #"'probabilities' has unknown class '"# + long.prefix(253) + "…'"
        #expect(text(message).contains(#""reason":"invalid_probabilities","message":""# + cutMessage + #"""#))
        let plain = await endpoints.respond(
            to: post("/api/v1/models/fraud/predictions", #"{"version":"v1","prediction":"legit"}"#))
        #expect(text(plain) == #"{"accepted":1,"rejected":0,"errors":[]}"# + "\n")
    }

    /// A model whose only label reader is a user's collector that declares `usesLabels` takes labels (202), and the
    /// collector sees them; without the declaration they would be refused (409).
    @Test func aCustomCollectorThatReadsLabelsKeepsThem() async throws {
        var configuration = Exporter.Configuration()
        configuration.processMetrics = false
        configuration.collectors = .builtIn
        try configuration.collectors.register(LabelCounter.self)
        configuration.models = ExporterConfiguration(
            models: [
                ModelConfiguration(
                    name: "custom", task: .regression, versions: ["v1"],
                    collectors: [CollectorConfiguration(name: "label_counter")])
            ], source: "<code>")
        let exporter = try Exporter(
            configuration: configuration, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        let answer = await exporter.endpoints.respond(
            to: post("/api/v1/models/custom/labels", #"{"id":"a","label":1}"# + "\n"))
        #expect(answer.status == 202, "\(text(answer))")
        let scrape = text(await exporter.endpoints.respond(to: get("/metrics")))
        #expect(scrape.contains("test_labels_seen_total{model=\"custom\"} 1\n"))
    }

    @Test("a gzip body is inflated and ingested")
    func gzipBody() async throws {
        let endpoints = try embedded().endpoints
        let body = GzipPool.shared.compress(Array((fraudEvent + fraudEvent + fraudEvent).utf8))
        let response = await endpoints.respond(
            to: ExporterEndpoints.Request(
                method: "POST", path: "/api/v1/models/fraud/predictions",
                headers: [("Content-Encoding", "gzip"), ("Content-Type", "application/x-ndjson")], body: body))
        #expect(response.status == 202)
        #expect(text(response).hasPrefix("{\"accepted\":3,"))
    }

    @Test("unknown models, paths and methods, and bad media types are refused with a reason")
    func refusals() async throws {
        let endpoints = try embedded().endpoints
        let unknown = await endpoints.respond(to: post("/api/v1/models/nope/predictions", fraudEvent))
        #expect(unknown.status == 404)
        #expect(text(unknown) == "unknown model \"nope\" (configured: fraud, eta)\n")
        #expect(await endpoints.respond(to: get("/nowhere")).status == 404)
        let method = await endpoints.respond(to: get("/api/v1/models/fraud/predictions"))
        #expect(method.status == 405)
        #expect(header(method, "Allow") == "POST, OPTIONS")
        // A method RFC 9110 does not define is not implemented anywhere (it was 405, or 404 on an unknown path).
        for path in ["/metrics", "/api/v1/models/fraud/predictions", "/nowhere"] {
            let foo = await endpoints.respond(to: ExporterEndpoints.Request(method: "FOO", path: path, headers: []))
            #expect(foo.status == 501)
            #expect(text(foo) == "method FOO not implemented\n")
        }
        let media = await endpoints.respond(
            to: post("/api/v1/models/fraud/predictions", predictions, [("Content-Type", "text/csv")]))
        #expect(media.status == 415)
        #expect(await endpoints.admit(post("/api/v1/models/nope/labels", ""))?.status == 404)
        #expect(await endpoints.admit(post("/api/v1/models/fraud/predictions", "")) == nil)
        #expect(await endpoints.admit(post("/api/v1/models/fraud/labels", ""))?.status == 409)  // no quality
        // A scrape's head, for a host that calls admit on every request (it was answered 413 "takes no request body").
        #expect(await endpoints.admit(get("/metrics")) == nil)
        #expect(await endpoints.admit(get("/metrics", [("Content-Length", "5")]))?.status == 413)
    }

    @Test("bodies too large: beyond maxBodyBytes, and beyond the event limit")
    func bodiesTooLarge() async throws {
        let exporter = try embedded(maxBodyBytes: 1000, maxEvents: 2)
        let endpoints = exporter.endpoints
        #expect(endpoints.maxBodyBytes == 1000)
        let big = await endpoints.respond(
            to: post("/api/v1/models/fraud/predictions", String(repeating: fraudEvent, count: 20)))
        #expect(big.status == 413)
        #expect(text(big) == "request body larger than 1000 bytes\n")
        // Counted as the exporter's own server counts a body too large; and so is a host's own refusal.
        let tooLarge = #"mlops_exporter_http_errors_total{reason="too_large"}"#
        func count() -> String? {
            String(decoding: exporter.registry.render(format: .text), as: UTF8.self).split(separator: "\n")
                .first { $0.hasPrefix(tooLarge + " ") }.map { String($0.dropFirst(tooLarge.count + 1)) }
        }
        #expect(count() == "1")
        let refused = endpoints.bodyTooLarge()
        #expect(refused.status == 413 && text(refused) == "request body larger than 1000 bytes\n")
        #expect(count() == "2")
        // Announced larger than the limit: 413 from the head, before anything is read (it was nil: a host collecting
        // up to the limit waited for the body).
        let announced = await endpoints.admit(
            post("/api/v1/models/fraud/predictions", "", [("Content-Length", "1001")]))
        #expect(announced?.status == 413)
        #expect(
            await endpoints.admit(post("/api/v1/models/fraud/predictions", "", [("Content-Length", "1000")])) == nil)
        #expect(count() == "3")
        let many = await endpoints.respond(
            to: post("/api/v1/models/fraud/predictions", String(repeating: fraudEvent, count: 3)))
        #expect(many.status == 413)
    }

    @Test("no model configuration means no models, not the demo ones")
    func noModels() async throws {
        let exporter = try embedded(models: nil)
        #expect(exporter.models.models.isEmpty)
        let response = await exporter.endpoints.respond(to: post("/api/v1/models/fraud/predictions", fraudEvent))
        #expect(response.status == 404)
        #expect(!text(await exporter.endpoints.respond(to: get("/metrics"))).contains("model=\"fraud\""))
    }

    @Test("a configuration built in code is checked when the exporter is built")
    func invalidCodeConfiguration() throws {
        let bad = ExporterConfiguration(
            models: [ModelConfiguration(name: "m", task: .binaryClassification, versions: ["v1"])], source: "<code>")
        #expect(throws: ConfigErrors.self) { try embedded(models: bad) }
        #expect(throws: ConfigErrors.self) { try Exporter.checkConfiguration(bad) }
        #expect(try Exporter.checkConfiguration(codeModels).models.map(\.name) == ["fraud", "eta"])
        // A problem found while the collectors are built (an option out of range) is a ConfigErrors too, as from
        // checkConfiguration (it came out as ModelSetupErrors, which a host catching ConfigErrors missed).
        var model = ModelConfiguration(name: "m", task: .regression, versions: ["v1"])
        model.collectors = [CollectorConfiguration(name: "service", options: ["max_error_kinds": .number(5000)])]
        let building = ExporterConfiguration(models: [model], source: "<code>")
        #expect(throws: ConfigErrors.self) { try embedded(models: building) }
    }

    /// A timestamp before 1970 is refused over HTTP as in process (the in-process check alone left the API open:
    /// a prediction at -1e300, once labelled, made the join delay histogram's sum 1e300 for good).
    @Test func aNegativeTimestampIsRefusedOverHTTP() async throws {
        let endpoints = try embedded().endpoints
        let answer = await endpoints.respond(
            to: post(
                "/api/v1/models/fraud/predictions",
                #"{"id":"n","version":"v1","prediction":"fraud","timestamp":-1e300}"# + "\n" + fraudEvent))
        #expect(answer.status == 202)
        #expect(
            text(answer).hasPrefix(
                #"{"accepted":1,"rejected":1,"errors":[{"index":0,"line":1,"reason":"invalid_number""#))
        #expect(text(answer).contains("before 1970"))
    }

    @Test("a configuration that fails leaves the registry as it found it, so that a fixed one can use it")
    func failedBuildUnregistersWhatItRegistered() throws {
        let registry = Registry()
        let before = registry.descriptors.map(\.name)
        var configuration = Exporter.Configuration()
        configuration.processMetrics = false
        configuration.models = ExporterConfiguration(
            models: [ModelConfiguration(name: "m", task: .binaryClassification, versions: ["v1"])], source: "<code>")
        let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        #expect(throws: ConfigErrors.self) {
            try Exporter(configuration: configuration, registry: registry, logger: logger)
        }
        #expect(registry.descriptors.map(\.name) == before)
        configuration.models = codeModels
        let exporter = try Exporter(configuration: configuration, registry: registry, logger: logger)
        #expect(exporter.models.models.map(\.name) == ["fraud", "eta"])
    }

    @Test("a labels answer says which labels joined, why the others did not, and which instances hold them")
    func labelsAnswerNamesOtherInstances() async throws {
        let models = ExporterConfiguration(
            models: [
                ModelConfiguration(
                    name: "fraud", task: .binaryClassification, versions: ["v1"], classes: ["legit", "fraud"],
                    positiveClass: "fraud", collectors: [CollectorConfiguration(name: "quality")]),
                ModelConfiguration(name: "eta", task: .regression, versions: ["v1"], token: "t0ken"),
            ], source: "<code>")
        let endpoints = try embedded(models: models, instanceID: "pod-a").endpoints
        let ulid = "01ARYZ6S4104HMASW9NF6YY093"
        let prediction = #"{"id":"pod-a~\#(ulid)","version":"v1","prediction":"fraud"}"# + "\n"
        #expect(await endpoints.respond(to: post("/api/v1/models/fraud/predictions", prediction)).status == 202)
        let labels = ["pod-a~\(ulid)", "pod-b~\(ulid)", "pod-c~\(ulid)", "pod-b~\(ulid)", "order~1", "pod-a~\(ulid)"]
        let body = labels.map { #"{"id":"\#($0)","label":"legit"}"# }.joined(separator: "\n")
        let answer = await endpoints.respond(to: post("/api/v1/models/fraud/labels", body))
        #expect(answer.status == 202)
        #expect(
            text(answer)
                == #"{"accepted":6,"rejected":0,"errors":[],"joined":1,"unmatched":{"unknown":2,"expired":0,"evicted":0,"other_instance":3},"other_instances":{"pod-b":2,"pod-c":1}}"#
                + "\n")
        let scrape = text(await endpoints.respond(to: get("/metrics")))
        #expect(scrape.contains(#"mlops_labels_unmatched_total{model="fraud",reason="other_instance"} 3"# + "\n"))
        #expect(scrape.contains(#"mlops_labels_unmatched_total{model="fraud",reason="unknown"} 2"# + "\n"))
        // A model without label joining (no quality or fairness collector) refuses them (409).
        let eta = await endpoints.respond(
            to: post("/api/v1/models/eta/labels", #"{"id":"x","label":1}"#, [("Authorization", "Bearer t0ken")]))
        #expect(eta.status == 409)
    }

    @Test("the instance id defaults to the host name and must be 1 to 64 characters of [A-Za-z0-9._-]")
    func instanceID() throws {
        let host = try String(contentsOfFile: "/proc/sys/kernel/hostname", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(Exporter.Configuration().instanceID == host)
        for bad in ["", "a~b", "pod a", String(repeating: "x", count: 65)] {
            #expect(throws: Exporter.InvalidInstanceID.self) { try embedded(instanceID: bad) }
        }
        #expect(throws: Never.self) { try embedded(instanceID: String(repeating: "x", count: 64)) }
    }

    /// A metrics path that hides one of the exporter's own (`/-/ready` served metrics to the readiness probe,
    /// `/api/v1/cloudevents` turned the KServe logger away with 405) or that no request can reach (`?`, a space,
    /// non-ASCII: they arrive percent-encoded, or start the query) is refused; they were accepted.
    @Test("the telemetry path must be reachable and none of the exporter's own")
    func telemetryPath() throws {
        for bad in [
            "metrics", "/", "/-/ready", "/-/healthy", "/api/v1/cloudevents", "/api/v1/models/m/predictions",
            "/models/x", "/m?x", "/m x", "/métrics", "/m%41", "/m#x",
        ] {
            #expect(throws: Exporter.InvalidTelemetryPath.self, "\(bad)") { try embedded(telemetryPath: bad) }
        }
        for good in ["/metrics", "/prom", "/internal/metrics", "/-metrics", "/v1.0/m_x~y"] {
            #expect(throws: Never.self, "\(good)") { try embedded(telemetryPath: good) }
        }
        #expect(Exporter.telemetryPathProblem("/-/ready")?.contains("own paths") == true)
    }

    /// Listen addresses that cannot all be bound are a usage error naming the pair: `:P` with `127.0.0.1:P` passed
    /// the check (only an address given twice failed it) and failed at bind with "address already in use".
    @Test func overlappingListenAddressesAreRefused() {
        #expect(
            Exporter.listenAddressesProblem([":9747", "127.0.0.1:9747"])
                == #""127.0.0.1:9747" overlaps ":9747" (the same port, and one of them listens on every address of the other); give one of them another port"#
        )
        #expect(
            Exporter.listenAddressesProblem(["127.0.0.1:9747", "localhost:9747"])
                == #""localhost:9747" is given twice (the same address as an earlier one); give it once"#)
        #expect(Exporter.listenAddressesProblem(["127.0.0.1:9747", "[::1]:9747", ":0", ":0"]) == nil)
    }

    /// A configuration built in code is held to the web configuration file's checks of its basic auth hashes: a
    /// cost-31 hash (every unknown user's check ran at that cost, for days) or a malformed one is refused; they
    /// reached the authenticator unchecked.
    @Test func basicAuthHashesBuiltInCodeAreChecked() throws {
        let salt = String(repeating: "a", count: 52) + "e"
        for (hash, refused) in [
            ("$2y$31$" + salt, true), ("$2y$+5$" + salt, true), ("plain", true), ("$2y$10$" + salt, false),
        ] {
            var configuration = Exporter.Configuration()
            configuration.processMetrics = false
            configuration.web.basicAuthUsers = ["prom": hash]
            let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
            if refused {
                let error = #expect(throws: Exporter.InvalidBasicAuthUser.self, "\(hash)") {
                    try Exporter(configuration: configuration, logger: logger)
                }
                #expect(error?.user == "prom")
            } else {
                #expect(throws: Never.self) { try Exporter(configuration: configuration, logger: logger) }
            }
        }
    }
}
