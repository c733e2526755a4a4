import Capture
import Compression
import Exposition
import HTTPServer
import ModelMonitoring
import Synchronization

/// One model's proxy counters (or `__unrouted__`'s), resolved once per routing snapshot so that a proxied request
/// adds to atomics without looking anything up.
final class ProxyModelCounters: Sendable {
    /// Capture failure reasons: the decoder's, then `too_large` (a body over `capture.max_body_bytes`, received or
    /// inflated), `overloaded` (a body over 256 KiB or compressed found no free decoding worker),
    /// `unsupported_encoding` (a `Content-Encoding` other than gzip or deflate), `invalid_encoding` (a compressed
    /// body that does not inflate) and `incomplete_body` (the client's body stopped short after the upstream had
    /// answered).
    static let captureReasons =
        CaptureFailure.allCases.map(\.rawValue) + [
            "too_large", "overloaded", "unsupported_encoding", "invalid_encoding", "incomplete_body",
        ]
    static let tooLarge = CaptureFailure.allCases.count
    static let overloaded = CaptureFailure.allCases.count + 1
    static let unsupportedEncoding = CaptureFailure.allCases.count + 2
    static let invalidEncoding = CaptureFailure.allCases.count + 3
    static let incompleteBody = CaptureFailure.allCases.count + 4
    /// The decoder's `invalid_value`: also an LLM response's `usage` count that is no token count.
    static let invalidValue = CaptureFailure.allCases.firstIndex(of: .invalidValue)!

    /// The capture failure of a body whose coding could not be undone: `too_large` past the limit, else
    /// `invalid_encoding`.
    static func reason(_ error: GzipError) -> Int {
        if case .outputLimitExceeded = error { return tooLarge }
        return invalidEncoding
    }

    let model: String
    let requests = AtomicSlots(count: 1)
    let cancelled = AtomicSlots(count: 1)
    let captured = AtomicSlots(count: 1)
    /// By status class, 1xx to 5xx (``responseClasses``).
    let responses = AtomicSlots(count: 5)
    let upstreamErrors = AtomicSlots(count: UpstreamFailure.allCases.count)
    let captureFailures = AtomicSlots(count: captureReasons.count)
    /// Decides which requests are sampled: the n-th request is when ⌊(n+1)·rate⌋ > ⌊n·rate⌋.
    let sampleCounter = Atomic<UInt64>(0)

    init(model: String) { self.model = model }

    /// The `code` label values of ``responses``.
    static let responseClasses = ["1xx", "2xx", "3xx", "4xx", "5xx"]

    /// Counts a response with `status` (100-599) by its class.
    @inline(__always)
    func response(status: Int) { responses.add(Swift.min(Swift.max(status / 100, 1), 5) - 1) }

    func upstreamError(_ failure: UpstreamFailure) {
        upstreamErrors.add(UpstreamFailure.allCases.firstIndex(of: failure)!)
    }

    func captureFailure(_ failure: CaptureFailure) {
        captureFailures.add(CaptureFailure.allCases.firstIndex(of: failure)!)
    }

    /// Whether this request's bodies are decoded, at `rate` (0...1).
    func sampled(rate: Double) -> Bool {
        if rate >= 1 { return true }
        if rate <= 0 { return false }
        let n = sampleCounter.wrappingAdd(1, ordering: .relaxed).oldValue
        return UInt64(Double(n + 1) * rate) > UInt64(Double(n) * rate)
    }
}

/// The reverse proxy's own series (`mlops_proxy_*`, docs/proxy.md). Per model (a configured model's name, or
/// `__unrouted__` for requests no route matched or naming no configured model): requests, upstream errors by reason,
/// capture failures by reason, decoded exchanges, client cancellations. Upstream connections: open, opened, reused.
/// A model's series last while it is configured (bounded by the models configured, plus one): a reload that removes
/// it removes them (they were kept for good, so a removed model's requests stayed in fleet sums). The proxy port's own
/// client connections: open, and errors by reason (the server's ``HTTPServerObserver`` labels).
final class ProxyMetrics: Collector, UpstreamPoolObserver, HTTPServerObserver {
    static let unrouted = ExporterConfiguration.unroutedModelName
    /// The server's connection error labels (``HTTPServerObserver/connectionError(reason:)``), then `other`.
    static let connectionErrorReasons = [
        "header_timeout", "body_timeout", "idle_timeout", "write_stall", "bad_request", "too_large",
        "incomplete_request", "reset", "shutdown", "emfile", "accept_failed", "body_too_slow", "body_memory",
        "body_connections", "answer_memory", "stream_refused", "evicted", "evicted_idle", "other",
    ]

    struct Families {
        let schema: CollectorSchema
        let requests: CounterHandle
        let upstreamErrors: CounterHandle
        let captureFailures: CounterHandle
        let captured: CounterHandle
        let responses: CounterHandle
        let cancelled: CounterHandle
        let open: GaugeHandle
        let opened: CounterHandle
        let reused: CounterHandle
        let clientConnections: GaugeHandle
        let clientErrors: CounterHandle
        let interimDropped: CounterHandle

        init() {
            var s = CollectorSchema()
            requests = try! s.counter(
                "mlops_proxy_requests_total",
                help: "Requests forwarded by the proxy, per model (__unrouted__: no route or no configured model).",
                labels: ["model"])
            upstreamErrors = try! s.counter(
                "mlops_proxy_upstream_errors_total",
                help:
                    "Proxied requests the upstream failed, per model and reason (connect_refused, connect_failed, connect_timeout, reset, response_timeout, read_timeout, bad_response, pool_full, reclaimed).",
                labels: ["model", "reason"])
            captureFailures = try! s.counter(
                "mlops_proxy_capture_failures_total",
                help:
                    "Proxied exchanges whose bodies could not be decoded into predictions, per model and reason (the decoder's reasons; too_large: a body over capture.max_body_bytes, received or inflated; overloaded: no decoding worker free; unsupported_encoding: a Content-Encoding other than gzip or deflate; invalid_encoding: a compressed body that does not inflate; incomplete_body: the client's body stopped short after the upstream had answered). The client's response is never affected.",
                labels: ["model", "reason"])
            captured = try! s.counter(
                "mlops_proxy_captured_total",
                help: "Proxied exchanges decoded into predictions, per model.", labels: ["model"])
            responses = try! s.counter(
                "mlops_proxy_responses_total",
                help:
                    "Responses the proxy's clients got, per model and status class (code: 1xx to 5xx; the upstream's status, or 502/503/504 from the proxy), whether or not error_statuses counts them as model errors.",
                labels: ["model", "code"])
            cancelled = try! s.counter(
                "mlops_proxy_client_cancelled_total",
                help:
                    "Proxied requests whose client left before the response was complete (the upstream request is cancelled).",
                labels: ["model"])
            open = try! s.gauge("mlops_proxy_upstream_connections", help: "Connections to the upstream open now.")
            opened = try! s.counter(
                "mlops_proxy_upstream_connections_opened_total", help: "Connections to the upstream opened.")
            reused = try! s.counter(
                "mlops_proxy_upstream_connections_reused_total",
                help: "Proxied requests sent on a kept-alive upstream connection.")
            clientConnections = try! s.gauge(
                "mlops_proxy_client_connections", help: "Client connections to the proxy port open now.")
            clientErrors = try! s.counter(
                "mlops_proxy_client_connection_errors_total",
                help:
                    "Client connections and requests of the proxy port ended by an error, by reason (the exporter's own port counts the same in mlops_exporter_http_errors_total).",
                labels: ["reason"])
            interimDropped = try! s.counter(
                "mlops_proxy_interim_responses_dropped_total",
                help:
                    "Interim (1xx) responses from the upstream not passed on to the client, by reason (over_limit: beyond 8 in one exchange).",
                labels: ["reason"])
            schema = s
        }
    }

    static let families = Families()
    var schema: CollectorSchema { Self.families.schema }
    var name: String { "proxy" }

    private let models = Mutex<[String: ProxyModelCounters]>([:])
    private let connections = AtomicSlots(count: 3)  // open, opened, reused
    private let clients = AtomicSlots(count: 1 + connectionErrorReasons.count)  // open, then errors by reason
    private let interimDropped = AtomicSlots(count: 1)  // over_limit

    /// The counters of `model` (made on first use; kept while it is configured).
    func counters(_ model: String) -> ProxyModelCounters {
        models.withLock { table in
            if let existing = table[model] { return existing }
            let made = ProxyModelCounters(model: model)
            table[model] = made
            return made
        }
    }

    /// Drops the counters (and so the series) of every model but `configured` and `__unrouted__`. A request still in
    /// flight for a dropped model counts into counters no scrape reads.
    func retain(_ configured: Set<String>) {
        models.withLock { table in
            table = table.filter { configured.contains($0.key) || $0.key == Self.unrouted }
        }
    }

    func upstreamConnectionOpened() {
        connections.add(0)
        connections.add(1)
    }

    func upstreamConnectionClosed() { connections.add(0, UInt64.max) }  // wrapping: -1

    func upstreamConnectionBusy(reused: Bool) { if reused { connections.add(2) } }

    func connectionOpened() { clients.add(0) }

    func connectionClosed() { clients.add(0, UInt64.max) }  // wrapping: -1

    func requestCompleted(
        method: String, status: Int, protocolName: String, responseBytes: Int, durationSeconds: Double
    ) {}

    func connectionError(reason: String) {
        let index = Self.connectionErrorReasons.firstIndex(of: reason) ?? Self.connectionErrorReasons.count - 1
        clients.add(1 + index)
    }

    /// An upstream's interim response beyond the exchange's limit was not passed on.
    func interimResponseDropped() { interimDropped.add(0) }

    func collect(into sink: inout CollectorSink) {
        let f = Self.families
        sink.counter(f.interimDropped, ["over_limit"], value: Double(interimDropped.load(0)))
        sink.gauge(f.open, value: Double(Int64(bitPattern: connections.load(0))))
        sink.counter(f.opened, value: Double(connections.load(1)))
        sink.counter(f.reused, value: Double(connections.load(2)))
        sink.gauge(f.clientConnections, value: Double(Int64(bitPattern: clients.load(0))))
        for (i, reason) in Self.connectionErrorReasons.enumerated() {
            sink.counter(f.clientErrors, [reason], value: Double(clients.load(1 + i)))
        }
        for (model, c) in models.withLock({ $0 }).sorted(by: { $0.key < $1.key }) {
            sink.counter(f.requests, [model], value: Double(c.requests.load(0)))
            for (i, failure) in UpstreamFailure.allCases.enumerated() {
                sink.counter(f.upstreamErrors, [model, failure.rawValue], value: Double(c.upstreamErrors.load(i)))
            }
            for (i, reason) in ProxyModelCounters.captureReasons.enumerated() {
                sink.counter(f.captureFailures, [model, reason], value: Double(c.captureFailures.load(i)))
            }
            sink.counter(f.captured, [model], value: Double(c.captured.load(0)))
            for (i, code) in ProxyModelCounters.responseClasses.enumerated() {
                sink.counter(f.responses, [model, code], value: Double(c.responses.load(i)))
            }
            sink.counter(f.cancelled, [model], value: Double(c.cancelled.load(0)))
        }
    }
}
