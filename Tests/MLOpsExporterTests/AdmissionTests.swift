import Compression
import Dispatch
import ExporterConfig
import Foundation
import HTTPServer
import Logging
import Synchronization
import Testing

@testable import MLOpsExporter

/// What a handler decided about a head: recorded from any thread.
final class Decision: Sendable {
    enum Outcome: Sendable {
        case pending
        case accepted
        case rejected(HTTPResponse)
    }

    private let state = Mutex<Outcome>(.pending)
    private let decided = DispatchSemaphore(value: 0)

    var admission: HTTPAdmission {
        HTTPAdmission { response in
            self.state.withLock { $0 = response.map(Outcome.rejected) ?? .accepted }
            self.decided.signal()
        }
    }

    /// The decision so far (`pending` when none yet).
    var now: Outcome { state.withLock { $0 } }

    /// The decision, waiting at most 10 s for it.
    func wait() -> Outcome {
        _ = decided.wait(timeout: .now() + 10)
        decided.signal()
        return now
    }

    /// The status of a rejection, 0 for an acceptance, -1 while pending.
    var status: Int { Self.status(now) }
    static func status(_ outcome: Outcome) -> Int {
        switch outcome {
        case .pending: -1
        case .accepted: 0
        case .rejected(let response): response.status
        }
    }
}

/// A flag set from any thread.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
}

/// An exporter built (never started) with basic auth for `prom`/`secret` (cost 4) and two models: `fraud`
/// without a token, `eta` with token `t0ken`.
func makeExporter(
    auth: WorkerLimits = WorkerLimits(threads: 1, queue: 4, perKey: 2, maxQueueWait: .seconds(10)),
    ingest: WorkerLimits = WorkerLimits(threads: 1, queue: 1, maxQueueWait: .seconds(10))
) throws -> Exporter {
    var configuration = Exporter.Configuration()
    configuration.processMetrics = false
    configuration.models = try ConfigLoader.parse(
        """
        models:
          - {name: fraud, task: binary_classification, versions: [v1], classes: [legit, fraud],
             positive_class: fraud, collectors: [service]}
          - {name: eta, task: regression, versions: [v1], token: t0ken, collectors: [service]}
        """, file: "test.yaml")
    configuration.web.basicAuthUsers = ["prom": BasicAuthTests.hash]
    configuration.authWorkers = auth
    configuration.ingestWorkers = ingest
    return try Exporter(
        configuration: configuration, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
}

/// The value of one sample line `name{labels}` in the text exposition, or nil.
func sampleValue(_ exporter: Exporter, _ series: String) -> Double? {
    let text = String(decoding: exporter.registry.render(format: .text), as: UTF8.self)
    for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
        return Double(line.dropFirst(series.count + 1))
    }
    return nil
}

func head(
    _ path: String, _ fields: [(String, String)] = [], method: String = "POST", client: String = "10.0.0.1:4000"
) -> HTTPRequest {
    HTTPRequest(method: method, path: path, headers: HTTPHeaders(fields), remoteAddress: client)
}

let predictions = "/api/v1/models/fraud/predictions"
let good = ("Authorization", BasicAuthTests.header("prom", "secret"))
let ndjson = ("Content-Type", "application/x-ndjson")

@Suite("Admission: basic auth from the head")
struct WebHandlerAdmissionTests {
    @Test func missingWrongAndNulCredentialsAreRefusedWith401() throws {
        let exporter = try makeExporter()
        let missing = Decision()
        exporter.handler.admit(head(predictions, [ndjson]), admission: missing.admission)
        #expect(missing.status == 401)  // at once, on the calling thread
        if case .rejected(let response) = missing.now {
            #expect(response.headers["WWW-Authenticate"] == "Basic realm=\"mlops-exporter\"")
        }
        let nul = Decision()
        let nulHeader = ("Authorization", BasicAuthTests.header("prom", "secret\0junk"))
        exporter.handler.admit(head(predictions, [nulHeader, ndjson]), admission: nul.admission)
        #expect(nul.status == 401)  // at once: never hashed
        let wrong = Decision()
        let wrongHeader = ("Authorization", BasicAuthTests.header("prom", "wrong"))
        exporter.handler.admit(head(predictions, [wrongHeader, ndjson]), admission: wrong.admission)
        #expect(Decision.status(wrong.wait()) == 401)
        #expect(sampleValue(exporter, "mlops_exporter_auth_rejected_total{reason=\"missing\"}") == 1)
        #expect(sampleValue(exporter, "mlops_exporter_auth_rejected_total{reason=\"invalid\"}") == 2)
        // Answered, so counted with every answer, under the endpoint asked for (a dashboard of non-2xx codes sees them).
        #expect(
            sampleValue(
                exporter, "mlops_exporter_http_requests_total{code=\"401\",handler=\"ingest\",protocol=\"http/1.1\"}")
                == 3)
        let scrape = Decision()
        exporter.handler.admit(head("/metrics", method: "GET"), admission: scrape.admission)
        #expect(scrape.status == 401)
        #expect(
            sampleValue(
                exporter, "mlops_exporter_http_requests_total{code=\"401\",handler=\"metrics\",protocol=\"http/1.1\"}")
                == 1)
    }

    @Test func goodCredentialsAreCheckedOnceOnThePoolThenAcceptedAtOnce() throws {
        let exporter = try makeExporter()
        let first = Decision()
        exporter.handler.admit(head(predictions, [good, ndjson]), admission: first.admission)
        #expect(Decision.status(first.wait()) == 0)
        let cached = Decision()
        exporter.handler.admit(head(predictions, [good, ndjson]), admission: cached.admission)
        #expect(cached.status == 0)  // decided before admit returned: no bcrypt, no pool
    }

    @Test func uncachedChecksAreBoundedPerClientAndInAll() throws {
        // One thread, blocked by a job of ours; 4 places in the queue, 2 per client.
        let exporter = try makeExporter()
        let gate = DispatchSemaphore(value: 0)
        let started = DispatchSemaphore(value: 0)
        let pool = exporter.handler.checks
        defer { gate.signal() }
        #expect(
            pool.submit(
                run: {
                    started.signal()
                    gate.wait()
                }, expired: {}) == .accepted)
        #expect(started.wait(timeout: .now() + 10) == .success)
        let wrong = ("Authorization", BasicAuthTests.header("prom", "wrong"))
        let decisions = (0..<10).map { _ in Decision() }
        for decision in decisions {
            exporter.handler.admit(head("/metrics", [wrong], method: "GET"), admission: decision.admission)
        }
        #expect(decisions.map(\.status) == [-1, -1] + Array(repeating: 429, count: 8))
        if case .rejected(let response) = decisions[2].now { #expect(response.headers["Retry-After"] == "1") }
        // Other clients fill the rest of the queue, then find it full.
        let others = (0..<3).map { _ in Decision() }
        for (i, decision) in others.enumerated() {
            exporter.handler.admit(
                head("/metrics", [wrong], method: "GET", client: "10.0.0.\(i + 2):4000"), admission: decision.admission)
        }
        #expect(others.map(\.status) == [-1, -1, 503])
        // Shutting the pool down expires the queued checks: 503.
        exporter.handler.checks.shutdown()
        gate.signal()
        for decision in decisions.prefix(2) + others.prefix(2) { #expect(Decision.status(decision.wait()) == 503) }
        #expect(sampleValue(exporter, "mlops_exporter_auth_rejected_total{reason=\"client_limit\"}") == 8)
        #expect(sampleValue(exporter, "mlops_exporter_auth_rejected_total{reason=\"queue_full\"}") == 1)
        #expect(sampleValue(exporter, "mlops_exporter_auth_rejected_total{reason=\"expired\"}") == 4)
    }

    @Test func aCheckWhoseClientLeftIsSkipped() throws {
        let exporter = try makeExporter()
        let gate = DispatchSemaphore(value: 0)
        let started = DispatchSemaphore(value: 0)
        #expect(
            exporter.handler.checks.submit(
                run: {
                    started.signal()
                    gate.wait()
                }, expired: {}) == .accepted)
        #expect(started.wait(timeout: .now() + 10) == .success)
        let gone = Flag()
        let decided = Flag()
        let admission = HTTPAdmission(isCancelled: { gone.isSet }) { _ in decided.set() }
        let wrong = ("Authorization", BasicAuthTests.header("prom", "wrong"))
        exporter.handler.admit(head("/metrics", [wrong], method: "GET"), admission: admission)
        gone.set()  // the client leaves while its check waits
        gate.signal()
        let deadline = ContinuousClock.now + .seconds(10)
        while sampleValue(exporter, "mlops_exporter_auth_rejected_total{reason=\"cancelled\"}") != 1 || !decided.isSet {
            try #require(ContinuousClock.now < deadline)
            Thread.sleep(forTimeInterval: 0.001)
        }
        // The hash is skipped (no `invalid`), and the request is still answered: an embedding host's task awaits an
        // answer (`ExporterEndpoints.respond` hung for good on a cancelled task); the server drops it for a closed
        // connection.
        #expect(decided.isSet)
        #expect(sampleValue(exporter, "mlops_exporter_auth_rejected_total{reason=\"invalid\"}") == 0)
    }

    @Test func cachedCredentialsPassWhileThePoolIsFull() throws {
        let exporter = try makeExporter(auth: WorkerLimits(threads: 1, queue: 0, perKey: 1, maxQueueWait: .seconds(10)))
        let first = Decision()
        exporter.handler.admit(head("/-/reload", [good]), admission: first.admission)
        #expect(Decision.status(first.wait()) == 0)
        let gate = DispatchSemaphore(value: 0)
        defer { gate.signal() }
        // The first check's job ends just after its decision: poll until the pool takes ours.
        let deadline = ContinuousClock.now + .seconds(10)
        while exporter.handler.checks.submit(run: { gate.wait() }, expired: {}) != .accepted {
            try #require(ContinuousClock.now < deadline)
            Thread.sleep(forTimeInterval: 0.001)
        }
        let cached = Decision()
        exporter.handler.admit(head("/-/reload", [good], method: "POST"), admission: cached.admission)
        #expect(cached.status == 0)
    }

    @Test func aModelTokenSkipsBasicAuthAndIsCheckedByTheEndpoint() throws {
        let exporter = try makeExporter()
        let path = "/api/v1/models/eta/predictions"
        let right = Decision()
        exporter.handler.admit(head(path, [("Authorization", "Bearer t0ken"), ndjson]), admission: right.admission)
        #expect(right.status == 0)
        let wrong = Decision()
        exporter.handler.admit(head(path, [("Authorization", "Bearer nope"), ndjson]), admission: wrong.admission)
        #expect(wrong.status == 401)
        if case .rejected(let response) = wrong.now {
            #expect(response.headers["WWW-Authenticate"] == "Bearer realm=\"mlops-exporter\"")
        }
        #expect(
            sampleValue(exporter, "mlops_ingest_rejected_requests_total{model=\"eta\",reason=\"unauthorized\"}") == 1)
        // Basic auth passes but the model wants its token.
        let basicOnly = Decision()
        exporter.handler.admit(head(path, [good, ndjson]), admission: basicOnly.admission)
        #expect(Decision.status(basicOnly.wait()) == 401)
    }

    /// Two `Authorization` lines are refused whatever they hold: a proxy in front may have checked the other one (the
    /// first was taken: a right one first passed, a wrong one first was refused).
    @Test func twoAuthorizationLinesAreRefused() throws {
        let exporter = try makeExporter()
        let warm = Decision()
        exporter.handler.admit(head(predictions, [good, ndjson]), admission: warm.admission)
        #expect(Decision.status(warm.wait()) == 0)  // the credentials are cached now
        let wrong = ("Authorization", BasicAuthTests.header("prom", "wrong"))
        for fields in [[good, wrong], [good, good], [wrong, good]] {
            let decision = Decision()
            exporter.handler.admit(head(predictions, fields + [ndjson]), admission: decision.admission)
            #expect(decision.status == 401)  // at once: never hashed
        }
        #expect(sampleValue(exporter, "mlops_exporter_auth_rejected_total{reason=\"invalid\"}") == 3)
        // A model's bearer token given twice: refused by the web handler's check (basic auth is on) ...
        let tokenTwice = [("Authorization", "Bearer t0ken"), ("Authorization", "Bearer t0ken"), ndjson]
        let twice = Decision()
        exporter.handler.admit(head("/api/v1/models/eta/predictions", tokenTwice), admission: twice.admission)
        #expect(twice.status == 401)
        // ... and by the endpoint's own when it is off.
        var configuration = Exporter.Configuration()
        configuration.processMetrics = false
        configuration.models = try ConfigLoader.parse(
            "models: [{name: eta, task: regression, versions: [v1], token: t0ken, collectors: [service]}]",
            file: "test.yaml")
        let open = try Exporter(
            configuration: configuration, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        let endpoint = Decision()
        open.handler.admit(head("/api/v1/models/eta/predictions", tokenTwice), admission: endpoint.admission)
        #expect(endpoint.status == 401)
        #expect(sampleValue(open, "mlops_ingest_rejected_requests_total{model=\"eta\",reason=\"unauthorized\"}") == 1)
        let once = Decision()
        open.handler.admit(
            head("/api/v1/models/eta/predictions", Array(tokenTwice.dropFirst())), admission: once.admission)
        #expect(once.status == 0)
    }
}

@Suite("Admission: routing and ingestion checks from the head")
struct RouterAdmissionTests {
    /// The router's decision on a head (the credentials are cached first).
    static func admit(_ exporter: Exporter, _ request: HTTPRequest) -> Int {
        let warm = Decision()
        exporter.handler.admit(head("/-/reload", [good], method: "POST"), admission: warm.admission)
        _ = warm.wait()
        var request = request
        request.headers.add(name: good.0, value: good.1)
        let decision = Decision()
        exporter.handler.admit(request, admission: decision.admission)
        return decision.status  // decided at once: every router check is cheap
    }

    @Test func cheapRefusalsFromTheHead() throws {
        let exporter = try makeExporter()
        #expect(Self.admit(exporter, head(predictions, [ndjson])) == 0)
        #expect(Self.admit(exporter, head(predictions, [("Content-Type", "application/json")])) == 0)
        #expect(Self.admit(exporter, head(predictions)) == 0)  // no Content-Type: sniffed from the body
        #expect(Self.admit(exporter, head("/api/v1/models/nope/predictions", [ndjson])) == 404)
        #expect(Self.admit(exporter, head(predictions, [ndjson], method: "PUT")) == 405)
        #expect(Self.admit(exporter, head(predictions, [("Content-Type", "text/csv")])) == 415)
        // Two type lines: the format would be a guess (the first was taken, whatever the second said).
        #expect(Self.admit(exporter, head(predictions, [ndjson, ("Content-Type", "application/json")])) == 415)
        #expect(Self.admit(exporter, head(predictions, [ndjson, ("Content-Encoding", "br")])) == 415)
        // Two coding lines are two codings, as `gzip, gzip` on one line (before, only the first line was read).
        #expect(
            Self.admit(
                exporter, head(predictions, [ndjson, ("Content-Encoding", "gzip"), ("Content-Encoding", "gzip")]))
                == 415)
        #expect(Self.admit(exporter, head(predictions, [ndjson, ("Content-Encoding", "gzip, gzip")])) == 415)
        #expect(Self.admit(exporter, head(predictions, [ndjson, ("Content-Encoding", "gzip")])) == 0)
        // No quality or fairness collector: labels would change nothing (they were accepted and dropped uncounted).
        #expect(Self.admit(exporter, head("/api/v1/models/fraud/labels", [ndjson])) == 409)
        #expect(Self.admit(exporter, head("/metrics", [("Content-Length", "5")], method: "GET")) == 413)
        // A body of unknown length may be empty: received, and refused then unless it is (an empty chunked body was
        // refused here).
        #expect(Self.admit(exporter, head("/metrics", [("Transfer-Encoding", "chunked")], method: "GET")) == 0)
        #expect(Self.admit(exporter, head("/nowhere", method: "GET")) == 404)
        #expect(Self.admit(exporter, head("/-/reload", method: "POST")) == 0)
        #expect(
            sampleValue(
                exporter, "mlops_ingest_rejected_requests_total{model=\"__unknown__\",reason=\"unknown_model\"}") == 1)
        #expect(
            sampleValue(
                exporter, "mlops_ingest_rejected_requests_total{model=\"fraud\",reason=\"unsupported_media_type\"}")
                == 2)
        #expect(
            sampleValue(
                exporter, "mlops_ingest_rejected_requests_total{model=\"fraud\",reason=\"unsupported_encoding\"}") == 3)
        #expect(
            sampleValue(
                exporter, "mlops_ingest_rejected_requests_total{model=\"fraud\",reason=\"labels_not_used\"}") == 1)
        #expect(
            sampleValue(
                exporter, "mlops_exporter_http_requests_total{code=\"413\",handler=\"metrics\",protocol=\"http/1.1\"}")
                == 1)
        #expect(
            sampleValue(
                exporter, "mlops_exporter_http_requests_total{code=\"405\",handler=\"ingest\",protocol=\"http/1.1\"}")
                == 1)
    }

    @Test func aBodyThatNeedsAWorkerIsRefusedWhenTheWorkersAreFull() throws {
        let exporter = try makeExporter(ingest: WorkerLimits(threads: 1, queue: 0, maxQueueWait: .seconds(10)))
        let workers = exporter.handler.next.ingest.workers
        let gate = DispatchSemaphore(value: 0)
        defer { gate.signal() }
        #expect(workers.submit(run: { gate.wait() }, expired: {}) == .accepted)
        let gzip = ("Content-Encoding", "gzip")
        #expect(Self.admit(exporter, head(predictions, [ndjson, gzip, ("Content-Length", "1000000")])) == 503)
        #expect(Self.admit(exporter, head(predictions, [ndjson, gzip])) == 0)  // may inflate within the inline limit
        #expect(Self.admit(exporter, head(predictions, [ndjson, ("Content-Length", "1000000")])) == 503)
        #expect(Self.admit(exporter, head(predictions, [ndjson, ("Content-Length", "1000")])) == 0)  // inline
        #expect(
            sampleValue(exporter, "mlops_ingest_rejected_requests_total{model=\"fraud\",reason=\"overloaded\"}") == 2)
    }
}

@Suite("Ingestion endpoint: where bodies are decoded")
struct IngestOffLoopTests {
    final class Responses: Sendable {
        let list = Mutex<[HTTPResponse]>([])
        let arrived = DispatchSemaphore(value: 0)
        var respond: @Sendable (HTTPResponse) -> Void {
            { response in
                self.list.withLock { $0.append(response) }
                self.arrived.signal()
            }
        }
        var count: Int { list.withLock { $0.count } }
        func wait() -> HTTPResponse? {
            _ = arrived.wait(timeout: .now() + 10)
            return list.withLock { $0.last }
        }
    }

    static let body = Array("{\"version\":\"v1\",\"prediction\":\"fraud\"}\n".utf8)
    static func gzipped(_ body: [UInt8]) -> HTTPRequest {
        HTTPRequest(
            method: "POST", path: predictions, headers: HTTPHeaders([ndjson, ("Content-Encoding", "gzip")]),
            body: GzipPool.shared.compress(body))
    }
    /// 300 KB of events: a small gzip body that inflates beyond the inline limit (256 KiB).
    static let bomb = gzipped(Array(repeating: body, count: 300_000 / body.count).flatMap { $0 })

    @Test func smallBodiesAreDecodedInlineGzipBodiesInflatingFurtherOnAWorker() throws {
        let exporter = try makeExporter()
        let endpoint = exporter.handler.next.ingest
        let inline = Responses()
        endpoint.handle(
            HTTPRequest(method: "POST", path: predictions, headers: HTTPHeaders([ndjson]), body: Self.body),
            model: "fraud", kind: .predictions, respond: inline.respond)
        endpoint.handle(Self.gzipped(Self.body), model: "fraud", kind: .predictions, respond: inline.respond)
        #expect(inline.count == 2)  // both answered before handle returned
        let gate = DispatchSemaphore(value: 0)
        #expect(endpoint.workers.submit(run: { gate.wait() }, expired: {}) == .accepted)
        let zipped = Responses()
        endpoint.handle(Self.bomb, model: "fraud", kind: .predictions, respond: zipped.respond)
        #expect(zipped.count == 0)  // queued behind our job: inflated beyond the inline limit only there
        gate.signal()
        #expect(zipped.wait()?.status == 202)
    }

    @Test func aBodyFindingTheWorkersFullIsRefusedBeforeInflating() throws {
        let exporter = try makeExporter(ingest: WorkerLimits(threads: 1, queue: 0, maxQueueWait: .seconds(10)))
        let endpoint = exporter.handler.next.ingest
        let gate = DispatchSemaphore(value: 0)
        defer { gate.signal() }
        #expect(endpoint.workers.submit(run: { gate.wait() }, expired: {}) == .accepted)
        let refused = Responses()
        endpoint.handle(Self.bomb, model: "fraud", kind: .predictions, respond: refused.respond)
        let response = try #require(refused.list.withLock { $0.first })
        #expect(response.status == 503 && response.headers["Retry-After"] == "1")
        #expect(
            sampleValue(exporter, "mlops_ingest_rejected_requests_total{model=\"fraud\",reason=\"overloaded\"}") == 1)
    }
}
