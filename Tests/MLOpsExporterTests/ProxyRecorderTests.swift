import Capture
import Compression
import Dispatch
import ExporterConfig
import HTTPServer
import Logging
import Testing

@testable import MLOpsExporter

/// An exporter (never started) with a proxy section, and `credit` (v2 capture, two features) and `plain` (no capture).
private func proxied(
    sampleRate: Double = 1, maxBodyBytes: Int = 1 << 20, moreRoutes: [ProxyConfiguration.Route] = [],
    workers: WorkerLimits? = nil
) throws -> Exporter {
    var credit = ModelConfiguration(
        name: "credit", task: .binaryClassification, versions: ["v1", "v2"], classes: ["0", "1"], positiveClass: "1")
    credit.features = [
        FeatureConfiguration(name: "x0", kind: .numeric), FeatureConfiguration(name: "x1", kind: .numeric),
    ]
    credit.capture = CaptureConfiguration(protocolName: "open_inference_v2")
    let plain = ModelConfiguration(name: "plain", task: .regression, versions: ["v1"])
    var models = ExporterConfiguration(models: [credit, plain], source: "<code>")
    var proxy = ProxyConfiguration(upstream: .init(host: "127.0.0.1", port: 9))
    proxy.capture = .init(maxBodyBytes: maxBodyBytes, sampleRate: sampleRate)
    proxy.routes += moreRoutes
    models.proxy = proxy
    var configuration = Exporter.Configuration()
    configuration.processMetrics = false
    configuration.models = models
    if let workers { configuration.ingestWorkers = workers }
    return try Exporter(configuration: configuration, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
}

private let v2Request = Array(#"{"inputs":[{"name":"in","shape":[2,2],"datatype":"FP64","data":[1,2,3,4]}]}"#.utf8)
private let v2Response = Array(
    #"{"model_name":"credit","outputs":[{"name":"predict","shape":[2],"datatype":"INT64","data":[1,0]}]}"#.utf8)

/// Runs one exchange through the recorder as the proxy would.
private func exchange(
    _ recorder: ProxyRecorder, path: String, body: [UInt8] = v2Request, status: Int = 200,
    response: [UInt8] = v2Response, failure: UpstreamFailure? = nil, cancelled: Bool = false,
    requestHeaders: HTTPHeaders = HTTPHeaders(), responseHeaders: HTTPHeaders? = nil
) {
    let request = HTTPRequest(method: "POST", path: path, headers: requestHeaders, body: body)
    let tap = recorder.proxyRequestStarted(request, requestID: "req-1")
    let limit = tap.captureLimit
    var record = ProxyExchangeRecord(
        request, requestBody: limit > 0 ? Array(body.prefix(limit)) : nil,
        requestBodyOverLimit: limit > 0 && body.count > limit, requestID: "req-1", tap: tap,
        status: cancelled ? nil : status, responseHeaders: responseHeaders,
        responseBody: limit > 0 ? Array(response.prefix(limit)) : nil,
        responseBodyOverLimit: response.count > limit && limit > 0,
        responseBodyBytes: response.count, failure: failure, cancelled: cancelled, durationSeconds: 0.25)
    recorder.proxyExchangeEnded(&record)
}

/// `bytes` in the zlib format (RFC 1950: what HTTP calls `deflate`), in one stored block.
private func zlibStored(_ bytes: [UInt8]) -> [UInt8] {
    let length = UInt16(bytes.count)
    var a: UInt32 = 1
    var b: UInt32 = 0
    for byte in bytes {
        a = (a + UInt32(byte)) % 65521
        b = (b + a) % 65521
    }
    let adler = b << 16 | a
    return [0x78, 0x01, 0x01, UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8(~length >> 8)]
        + bytes + [UInt8(adler >> 24), UInt8(adler >> 16 & 0xFF), UInt8(adler >> 8 & 0xFF), UInt8(adler & 0xFF)]
}

@Suite("The proxy's recorder: attribution, capture and counts")
struct ProxyRecorderTests {
    @Test("a captured exchange records each row as a prediction and the latency once")
    func capturedRows() async throws {
        let exporter = try proxied()
        exchange(exporter.proxy!.recorder, path: "/v2/models/credit/versions/v2/infer")
        let m = await scrape(exporter)
        #expect(m[#"mlops_proxy_requests_total{model="credit"}"#] == 1)
        #expect(m[#"mlops_proxy_captured_total{model="credit"}"#] == 1)
        #expect(m[#"mlops_model_predicted_class_total{class="1",model="credit",version="v2"}"#] == 1)
        #expect(m[#"mlops_model_predicted_class_total{class="0",model="credit",version="v2"}"#] == 1)
        #expect(m[#"mlops_model_requests_total{model="credit",status="ok",version="v2"}"#] == 2)
        #expect(m[#"mlops_model_latency_seconds_count{model="credit",version="v2"}"#] == 1)
        #expect(m[#"mlops_model_latency_seconds_sum{model="credit",version="v2"}"#] == 0.25)
    }

    @Test("errors, failures, unrouted requests, cancellations and a model without capture")
    func requestsWithoutPredictions() async throws {
        let exporter = try proxied()
        let recorder = exporter.proxy!.recorder
        exchange(recorder, path: "/v2/models/credit/infer", status: 503)
        exchange(recorder, path: "/v2/models/credit/infer", status: 502, failure: .connectRefused)
        exchange(recorder, path: "/v2/models/credit/infer", cancelled: true)
        exchange(recorder, path: "/v2/models/nobody/infer")
        exchange(recorder, path: "/health")
        exchange(recorder, path: "/v2/models/plain/infer")
        exchange(recorder, path: "/v2/models/credit/infer", response: Array("not json".utf8))
        let m = await scrape(exporter)
        #expect(m[#"mlops_proxy_requests_total{model="credit"}"#] == 4)
        #expect(m[#"mlops_proxy_requests_total{model="__unrouted__"}"#] == 2)
        #expect(m[#"mlops_proxy_requests_total{model="plain"}"#] == 1)
        #expect(m[#"mlops_proxy_upstream_errors_total{model="credit",reason="connect_refused"}"#] == 1)
        #expect(m[#"mlops_proxy_client_cancelled_total{model="credit"}"#] == 1)
        #expect(m[#"mlops_proxy_capture_failures_total{model="credit",reason="invalid_json"}"#] == 1)
        #expect(m[#"mlops_model_requests_total{model="credit",status="error",version="__other__"}"#] == 2)
        #expect(m[#"mlops_model_errors_total{kind="http_503",model="credit",version="__other__"}"#] == 1)
        #expect(m[#"mlops_model_errors_total{kind="connect_refused",model="credit",version="__other__"}"#] == 1)
        // The undecodable exchange still counts as a request (ok), without a prediction.
        #expect(m[#"mlops_model_requests_total{model="credit",status="ok",version="__other__"}"#] == 1)
        // A model with one version: a request that names none is for it.
        #expect(m[#"mlops_model_requests_total{model="plain",status="ok",version="v1"}"#] == 1)
        #expect(m[#"mlops_model_latency_seconds_count{model="credit",version="__other__"}"#] == 3)
    }

    @Test("sampling decodes exactly the configured share; bodies over the limit are counted too_large")
    func samplingAndLimits() async throws {
        let exporter = try proxied(sampleRate: 0.25)
        for _ in 0..<100 { exchange(exporter.proxy!.recorder, path: "/v2/models/credit/infer") }
        var m = await scrape(exporter)
        #expect(m[#"mlops_proxy_captured_total{model="credit"}"#] == 25)
        #expect(m[#"mlops_model_latency_seconds_count{model="credit",version="__other__"}"#] == 100)
        let small = try proxied(maxBodyBytes: 40)
        exchange(small.proxy!.recorder, path: "/v2/models/credit/infer")
        m = await scrape(small)
        #expect(m[#"mlops_proxy_capture_failures_total{model="credit",reason="too_large"}"#] == 1)
        #expect(m[#"mlops_proxy_captured_total{model="credit"}"#] == 0)
    }

    @Test("gzip and deflate bodies are inflated (bounded) before decoding; other codings are counted, not decoded")
    func compressedBodies() async throws {
        let exporter = try proxied(maxBodyBytes: 400)
        let recorder = exporter.proxy!.recorder
        let gzip = HTTPHeaders([("Content-Encoding", "gzip")])
        // A gzip request and a deflate (zlib) response, as a client and an upstream that compress send them.
        exchange(
            recorder, path: "/v2/models/credit/versions/v1/infer", body: GzipPool.shared.compress(v2Request),
            response: zlibStored(v2Response), requestHeaders: gzip,
            responseHeaders: HTTPHeaders([("content-encoding", " Deflate ")]))
        // identity listed, and an empty list element, change nothing.
        exchange(
            recorder, path: "/v2/models/credit/versions/v1/infer",
            requestHeaders: HTTPHeaders([("Content-Encoding", "identity,")]))
        // Brotli (its bytes here) is not undone.
        exchange(
            recorder, path: "/v2/models/credit/infer", body: [0x1B, 0x5B, 0x00, 0x00, 0x60],
            requestHeaders: HTTPHeaders([("Content-Encoding", "br")]))
        exchange(
            recorder, path: "/v2/models/credit/infer", body: GzipPool.shared.compress(v2Request),
            requestHeaders: HTTPHeaders([("Content-Encoding", "gzip"), ("Content-Encoding", "gzip")]))
        exchange(recorder, path: "/v2/models/credit/infer", body: Array("not gzip".utf8), requestHeaders: gzip)
        // Inflating beyond capture.max_body_bytes (400) is too_large, though the compressed body is small.
        let padded =
            Array(#"{"inputs":[{"name":"in","shape":[2,2],"datatype":"FP64","data":[1,2,3,4]}]"#.utf8)
            + Array(repeating: UInt8(ascii: " "), count: 1000) + Array("}".utf8)
        exchange(
            recorder, path: "/v2/models/credit/infer", body: GzipPool.shared.compress(padded), requestHeaders: gzip)
        let failures = #"mlops_proxy_capture_failures_total{model="credit",reason="#
        let expected: [String: Double] = [
            #"mlops_proxy_captured_total{model="credit"}"#: 2,
            #"mlops_model_predicted_class_total{class="1",model="credit",version="v1"}"#: 2,
            #"mlops_model_predicted_class_total{class="0",model="credit",version="v1"}"#: 2,
            failures + #""unsupported_encoding"}"#: 2,
            failures + #""invalid_encoding"}"#: 1,
            failures + #""too_large"}"#: 1,
            failures + #""invalid_json"}"#: 0,
            // Every exchange counts for latency, decoded or not.
            #"mlops_model_latency_seconds_count{model="credit",version="v1"}"#: 2,
            #"mlops_model_latency_seconds_count{model="credit",version="__other__"}"#: 4,
        ]
        let m = try await scrape(exporter, until: expected)
        let jobs = exporter.proxy!.recorder.workers.jobs  // (for the message: what the ingestion workers still hold)
        for (series, value) in expected { #expect(m[series] == value, "\(series); worker jobs left: \(jobs)") }
    }

    @Test("a model_pointer route attributes each exchange to the model its request body names")
    func modelFromTheBody() async throws {
        let exporter = try proxied(moreRoutes: [ProxyConfiguration.Route(path: "/predict", modelPointer: "/meta/model")]
        )
        let recorder = exporter.proxy!.recorder
        func body(_ model: String, padding: Int = 0) -> [UInt8] {
            Array(
                #"{"meta": {"model": \#(model)}, "inputs":[{"name":"in","shape":[2,2],"datatype":"FP64","data":[1,2,3,4]}]"#
                    .utf8) + Array(repeating: UInt8(ascii: " "), count: padding) + Array("}".utf8)
        }
        exchange(recorder, path: "/predict", body: body(#""credit""#))
        exchange(recorder, path: "/predict", body: body(#""plain""#))
        exchange(recorder, path: "/predict", body: body(#""nobody""#))
        exchange(recorder, path: "/predict", body: body("42"))
        exchange(recorder, path: "/predict", body: Array("not json".utf8))
        // Over 256 KiB: read on a worker.
        exchange(recorder, path: "/predict", body: body(#""credit""#, padding: 300_000))
        let expected: [String: Double] = [
            #"mlops_proxy_requests_total{model="credit"}"#: 2,
            #"mlops_proxy_captured_total{model="credit"}"#: 2,
            #"mlops_model_predicted_class_total{class="1",model="credit",version="__other__"}"#: 2,
            #"mlops_proxy_requests_total{model="plain"}"#: 1,
            #"mlops_model_requests_total{model="plain",status="ok",version="v1"}"#: 1,
            #"mlops_proxy_requests_total{model="__unrouted__"}"#: 3,
            #"mlops_model_latency_seconds_count{model="credit",version="__other__"}"#: 2,
        ]
        let m = try await scrape(exporter, until: expected)
        let jobs = exporter.proxy!.recorder.workers.jobs  // (for the message: what the ingestion workers still hold)
        for (series, value) in expected { #expect(m[series] == value, "\(series); worker jobs left: \(jobs)") }
    }

    @Test("a scrape rendered before a worker ran an exchange's job is not the last word, however late it is answered")
    func lateScrapeOfAWorkersExchange() async throws {
        let exporter = try proxied(
            moreRoutes: [ProxyConfiguration.Route(path: "/predict", modelPointer: "/meta/model")],
            workers: WorkerLimits(threads: 1, queue: 4, maxQueueWait: .seconds(600)))
        let recorder = exporter.proxy!.recorder
        // The only worker is held until the first scrape was rendered: the exchange's job waits for it.
        let gate = DispatchSemaphore(value: 0)
        #expect(recorder.workers.submit(run: { gate.wait() }, expired: { gate.wait() }) == .accepted)
        let inputs = #""inputs":[{"name":"in","shape":[2,2],"datatype":"FP64","data":[1,2,3,4]}]"#
        let body =
            Array(#"{"meta": {"model": "credit"}, \#(inputs)"#.utf8)
            + Array(repeating: UInt8(ascii: " "), count: 300_000) + Array("}".utf8)
        exchange(recorder, path: "/predict", body: body)  // over 256 KiB: read on a worker
        let expected: [String: Double] = [
            #"mlops_proxy_requests_total{model="credit"}"#: 1,
            #"mlops_proxy_captured_total{model="credit"}"#: 1,
            #"mlops_model_latency_seconds_count{model="credit",version="__other__"}"#: 1,
        ]
        var scrapes = 0
        let m = try await samples(until: expected, timeout: .milliseconds(100)) {
            scrapes += 1
            let m = await scrape(exporter)
            if scrapes == 1 {
                // What a busy test runner does to a scrape: rendered before the job ran, its answer comes back after
                // the deadline, the job long done.
                gate.signal()
                let until = ContinuousClock.now + .seconds(30)
                while recorder.workers.jobs > 0, ContinuousClock.now < until {
                    try await Task.sleep(for: .milliseconds(1))
                }
                try await Task.sleep(for: .milliseconds(150))
            }
            return m
        }
        for (series, value) in expected { #expect(m[series] == value, "\(series) after \(scrapes) scrapes") }
    }

    @Test("a version_pointer route takes each exchange's version from its request body, decoded or not")
    func versionFromTheBody() async throws {
        let exporter = try proxied(
            sampleRate: 0.5,
            moreRoutes: [
                ProxyConfiguration.Route(path: "/score/{model}", versionPointer: "/meta/version"),
                ProxyConfiguration.Route(path: "/any", modelPointer: "/meta/model", versionPointer: "/meta/version"),
            ])
        let recorder = exporter.proxy!.recorder
        func body(_ meta: String) -> [UInt8] {
            Array(
                #"{"meta": {\#(meta)}, "inputs":[{"name":"in","shape":[2,2],"datatype":"FP64","data":[1,2,3,4]}]}"#
                    .utf8)
        }
        // Sampled at 0.5: of each pair of credit's exchanges one is decoded; every one has its version.
        for _ in 0..<2 { exchange(recorder, path: "/score/credit", body: body(#""version": "v2""#)) }
        exchange(recorder, path: "/score/credit", body: body(#""version": 1"#))  // not a version of credit
        exchange(recorder, path: "/score/credit", body: body(""))  // none: the response's, else default
        exchange(recorder, path: "/any", body: body(#""model": "plain", "version": "v1""#))
        exchange(recorder, path: "/any", body: body(#""version": "v1""#))  // no model: unrouted
        let m = await scrape(exporter)
        #expect(m[#"mlops_proxy_requests_total{model="credit"}"#] == 4)
        #expect(m[#"mlops_proxy_captured_total{model="credit"}"#] == 2)
        #expect(m[#"mlops_model_latency_seconds_count{model="credit",version="v2"}"#] == 2)
        #expect(m[#"mlops_model_latency_seconds_count{model="credit",version="__other__"}"#] == 2)
        #expect(m[#"mlops_model_latency_seconds_count{model="plain",version="v1"}"#] == 1)
        #expect(m[#"mlops_proxy_requests_total{model="__unrouted__"}"#] == 1)
    }

    @Test("every body pointer the configuration accepts is one the proxy reads (the loader checks it apart, to locate)")
    func configurationAndProxyAgreeOnPointers() throws {
        for pointer in ["/a", "/a~0b", "/a~1b", "/", "//", "/a/0", "/a*", "/a~2", "/a~", "a", "", "/*", "/a/*/b"] {
            let yaml = """
                models: [{name: m, task: regression, versions: [v1]}]
                proxy:
                  upstream: http://127.0.0.1:8080
                  routes: [{path: /x, model_pointer: "\(pointer)", version_pointer: "\(pointer)"}]
                """
            let accepted = (try? ConfigLoader.parse(yaml, file: "test.yaml")) != nil
            let readable = (try? BodyName(pointer: pointer)) != nil
            // The loader is as strict or stricter ("" is the whole body to a pointer, not a name).
            #expect(!accepted || readable, "\(pointer)")
            if ["/a", "/a~0b", "/a~1b", "/", "//", "/a/0", "/a*"].contains(pointer) { #expect(accepted, "\(pointer)") }
        }
    }

    @Test("a custom mapping reads request headers through the proxy, whatever their case")
    func customHeaders() async throws {
        var model = ModelConfiguration(
            name: "custom", task: .binaryClassification, versions: ["v1", "v2"], classes: ["0", "1"], positiveClass: "1"
        )
        model.features = [FeatureConfiguration(name: "x0", kind: .numeric)]
        model.capture = CaptureConfiguration(
            protocolName: "custom", fields: ["prediction": "response:/label", "version": "header:x-model-version"],
            features: ["x0": "request:/a"])
        var models = ExporterConfiguration(models: [model], source: "<code>")
        models.proxy = ProxyConfiguration(upstream: .init(host: "127.0.0.1", port: 9))
        models.proxy!.routes = [.init(path: "/score", model: "custom")]
        var configuration = Exporter.Configuration()
        configuration.processMetrics = false
        configuration.models = models
        let exporter = try Exporter(
            configuration: configuration, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        let recorder = exporter.proxy!.recorder
        let request = HTTPRequest(
            method: "POST", path: "/score", headers: HTTPHeaders([("X-Model-Version", "v2")]),
            body: Array(#"{"a": 1.5}"#.utf8))
        let tap = recorder.proxyRequestStarted(request, requestID: "r")
        var record = ProxyExchangeRecord(
            request, requestBody: request.body, requestID: "r", tap: tap, status: 200,
            responseBody: Array(#"{"label": "1"}"#.utf8), durationSeconds: 0.1)
        recorder.proxyExchangeEnded(&record)
        let m = await scrape(exporter)
        #expect(m[#"mlops_proxy_captured_total{model="custom"}"#] == 1)
        #expect(m[#"mlops_model_predicted_class_total{class="1",model="custom",version="v2"}"#] == 1)
    }
}

/// The version of a proxied request that names none.
@Suite struct ImpliedVersionTests {
    private func model(_ versions: [String], adapters: [LLMConfiguration.Adapter]? = nil) -> ModelConfiguration {
        var m = ModelConfiguration(name: "chat", task: .textGeneration, versions: versions)
        if let adapters { m.llm = LLMConfiguration(servedNames: ["base-model"], adapters: adapters) }
        return m
    }

    /// docs/llm.md's example (`versions: [base, sql]`, `adapters: {sql-lora: sql}`): the served name is `base`; before,
    /// `default`, recorded as `__other__`.
    @Test func anLLMsBaseVersionIsTheOneNoAdapterTakes() {
        #expect(
            ProxyRouting.impliedVersion(model(["base", "sql"], adapters: [.init(name: "sql-lora", version: "sql")]))
                == "base")
        #expect(ProxyRouting.impliedVersion(model(["v1"])) == "v1")
        #expect(ProxyRouting.impliedVersion(model(["a", "b"])) == nil)
        #expect(
            ProxyRouting.impliedVersion(model(["a", "b", "sql"], adapters: [.init(name: "l", version: "sql")])) == nil)
        #expect(ProxyRouting.impliedVersion(model(["a", "b"], adapters: [])) == nil)
    }
}
