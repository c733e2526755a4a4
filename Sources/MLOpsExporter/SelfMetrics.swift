import Exposition
import HTTPServer
import Synchronization

/// The exporter's metrics about itself: build, HTTP traffic by handler, code and protocol, scrapes by
/// format and encoding, connections, and errors by reason. Handles are resolved once here, so counting
/// a request is a few atomic adds.
final class SelfMetrics: HTTPServerObserver {
    /// The fixed set of `handler` label values.
    enum Handler: String, CaseIterable {
        case metrics, landing, status, healthy, ready, reload, ingest, cloudevents, other
    }

    let requests: CounterFamily
    let requestDuration: HistogramFamily
    let responseBytes: CounterFamily
    let scrapes: CounterFamily
    let scrapeDurationFamily: HistogramFamily
    let scrapesRejected: CounterFamily
    let scrapesCoalesced: Counter
    let connectionsOpen: Gauge
    let connectionsTotal: Counter
    let errors: CounterFamily
    private let durationHandles: [Histogram]
    private let bytesHandles: [Counter]
    /// Per-scrape handles, resolved once: [text, openmetrics] × [identity, gzip], and durations by format.
    private let scrapeHandles: [[Counter]]
    private let scrapeDurationHandles: [Histogram]
    let rejectedMaxRequests: Counter
    let authRejectedFamily: CounterFamily
    /// Requests refused by `rate_limit`.
    let rateLimited: Counter
    /// `authRejectedFamily` handles by ``AuthRejectReason`` raw value.
    private let authRejectedHandles: [Counter]
    /// `requests` handles by (handler, protocol, common status), resolved on first use without a lock: counting a
    /// request does no label lookup unless its status is uncommon. `nonisolated(unsafe)`: the memory is only
    /// accessed through each element's atomic operations.
    nonisolated(unsafe) private let requestHandles: UnsafeMutablePointer<AtomicLazyReference<Counter>>
    static let protocols = ["http/1.1", "h2", "http/1.0"]
    static let commonStatuses = [
        200, 202, 204, 206, 301, 302, 304, 400, 401, 403, 404, 405, 406, 408, 409, 411, 413, 414, 415, 422, 429, 431,
        500, 501, 502, 503, 504, 505,
    ]
    /// `commonStatuses` position of each status 100...599, or -1.
    static let statusSlots: [Int] = {
        var slots = [Int](repeating: -1, count: 600)
        for (i, status) in commonStatuses.enumerated() { slots[status] = i }
        return slots
    }()
    static let handlers = Handler.allCases
    static var requestHandleCount: Int { handlers.count * protocols.count * commonStatuses.count }

    /// The reasons `HTTPServerObserver.connectionError(reason:)` reports.
    static let errorReasons = [
        "header_timeout", "body_timeout", "idle_timeout", "write_stall", "bad_request", "too_large",
        "incomplete_request", "reset", "shutdown", "emfile", "accept_failed", "body_too_slow", "body_memory",
        "body_connections", "answer_memory", "evicted", "evicted_idle", "stream_refused",
    ]

    init(registry: Registry, version: String, revision: String) throws(ExpositionError) {
        try registry.info(
            "mlops_exporter_build", help: "Version and revision of the running mlops-exporter.",
            labels: ["version": version, "revision": revision])
        requests = try registry.counterFamily(
            "mlops_exporter_http_requests_total", help: "HTTP requests answered, by handler, status code and protocol.",
            labelNames: ["handler", "code", "protocol"])
        requestDuration = try registry.histogramFamily(
            "mlops_exporter_http_request_duration_seconds",
            help: "Time from a request's arrival to its response being handed to the server, by handler.",
            unit: "seconds", labelNames: ["handler"],
            buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])
        responseBytes = try registry.counterFamily(
            "mlops_exporter_http_response_bytes_total",
            help: "Response body bytes handed to the HTTP server, by handler (HEAD counts the body it describes).",
            unit: "bytes", labelNames: ["handler"])
        scrapes = try registry.counterFamily(
            "mlops_exporter_scrapes_total",
            help: "Metrics scrapes served, by negotiated format (text, openmetrics) and encoding (identity, gzip).",
            labelNames: ["format", "encoding"])
        scrapeDurationFamily = try registry.histogramFamily(
            "mlops_exporter_scrape_duration_seconds", help: "Time to render (and compress) one metrics response.",
            unit: "seconds", labelNames: ["format"],
            buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1])
        scrapesRejected = try registry.counterFamily(
            "mlops_exporter_scrapes_rejected_total", help: "Metrics requests refused, by reason (max_requests).",
            labelNames: ["reason"])
        scrapesCoalesced = try registry.counter(
            "mlops_exporter_scrapes_coalesced_total", help: "Metrics requests answered by sharing a concurrent render.")
        authRejectedFamily = try registry.counterFamily(
            "mlops_exporter_auth_rejected_total",
            help:
                "Requests refused by basic authentication, by reason (missing, invalid, client_limit, queue_full, expired, cancelled).",
            labelNames: ["reason"])
        rateLimited = try registry.counter(
            "mlops_exporter_http_rate_limited_total",
            help: "Requests refused with 429 by the web configuration's rate_limit.")
        connectionsOpen = try registry.gauge(
            "mlops_exporter_http_connections_open", help: "HTTP connections currently open.")
        connectionsTotal = try registry.counter(
            "mlops_exporter_http_connections_total", help: "HTTP connections accepted.")
        errors = try registry.counterFamily(
            "mlops_exporter_http_errors_total",
            help: "HTTP connection and protocol errors, by reason (header_timeout, bad_request, too_large, …).",
            labelNames: ["reason"])
        let durations = requestDuration
        let bytes = responseBytes
        durationHandles = try Handler.allCases.map { h throws(ExpositionError) in try durations.labels(h.rawValue) }
        bytesHandles = try Handler.allCases.map { h throws(ExpositionError) in try bytes.labels(h.rawValue) }
        // Pre-initialise the fixed label values, so that rate() and alerts see zeros, not absent series.
        rejectedMaxRequests = try scrapesRejected.labels("max_requests")
        for reason in Self.errorReasons { _ = try errors.labels(reason) }
        let authRejected = authRejectedFamily
        authRejectedHandles = try AuthRejectReason.allCases.map { r throws(ExpositionError) in
            try authRejected.labels(r.label)
        }
        let scrapes = self.scrapes
        scrapeHandles = try ["text", "openmetrics"].map { format throws(ExpositionError) in
            [try scrapes.labels(format, "identity"), try scrapes.labels(format, "gzip")]
        }
        let scrapeDuration = self.scrapeDurationFamily
        scrapeDurationHandles = [try scrapeDuration.labels("text"), try scrapeDuration.labels("openmetrics")]
        requestHandles = .allocate(capacity: Self.requestHandleCount)
        for i in 0..<Self.requestHandleCount { (requestHandles + i).initialize(to: AtomicLazyReference()) }
    }

    deinit {
        requestHandles.deinitialize(count: Self.requestHandleCount)
        requestHandles.deallocate()
    }

    /// The scrapes counter for a negotiated representation.
    func scrapes(_ format: ExpositionFormat, gzip: Bool) -> Counter {
        scrapeHandles[format == .openMetrics ? 1 : 0][gzip ? 1 : 0]
    }

    /// The render-duration histogram for a format.
    func scrapeDuration(_ format: ExpositionFormat) -> Histogram {
        scrapeDurationHandles[format == .openMetrics ? 1 : 0]
    }

    /// Counts a request refused by basic authentication.
    func authRejected(_ reason: AuthRejectReason) { authRejectedHandles[reason.rawValue].inc() }

    func handled(_ handler: Handler, status: Int, protocolName: String, bytes: Int, seconds: Double) {
        let index = Self.handlers.firstIndex(of: handler)!  // a static array: `allCases` builds one per call
        requestCounter(index, handler, status: status, protocolName: protocolName)?.inc()
        durationHandles[index].observe(seconds)
        bytesHandles[index].inc(by: bytes)
    }

    /// The `requests` series of a handler, status and protocol: a pre-resolved handle for the common ones, a label
    /// lookup for the rest.
    private func requestCounter(_ index: Int, _ handler: Handler, status: Int, protocolName: String) -> Counter? {
        let statusSlot = status >= 0 && status < 600 ? Self.statusSlots[status] : -1
        guard statusSlot >= 0, let protocolSlot = Self.protocols.firstIndex(of: protocolName) else {
            return try? requests.labels([handler.rawValue, String(status), protocolName])
        }
        let slot = (index * Self.protocols.count + protocolSlot) * Self.commonStatuses.count + statusSlot
        if let counter = requestHandles[slot].load() { return counter }
        guard let counter = try? requests.labels([handler.rawValue, String(status), protocolName]) else { return nil }
        return requestHandles[slot].storeIfNil(counter)
    }

    // MARK: HTTPServerObserver

    func connectionOpened() {
        connectionsOpen.inc()
        connectionsTotal.inc()
    }

    func connectionClosed() { connectionsOpen.dec() }

    /// Not used: requests are counted by the router, which knows the handler label the server does not.
    func requestCompleted(
        method: String, status: Int, protocolName: String, responseBytes: Int, durationSeconds: Double
    ) {}

    func connectionError(reason: String) { try? errors.labels(reason).inc() }
}

/// Why basic authentication refused a request: the `reason` of `mlops_exporter_auth_rejected_total`.
enum AuthRejectReason: Int, CaseIterable, Sendable {
    /// No `Basic` credentials (401).
    case missing
    /// Wrong user or password, or a NUL in either (401).
    case invalid
    /// The client (remote address) already had its share of the uncached checks in the pool (429).
    case clientLimit
    /// The pool of uncached checks was full (503).
    case queueFull
    /// The check waited in the pool's queue past its deadline (503).
    case expired
    /// The client left before its queued check ran: the check was skipped (nobody to answer).
    case cancelled

    /// The label value.
    var label: String {
        switch self {
        case .missing: "missing"
        case .invalid: "invalid"
        case .clientLimit: "client_limit"
        case .queueFull: "queue_full"
        case .expired: "expired"
        case .cancelled: "cancelled"
        }
    }
}
