import HTTPServer
import Synchronization

/// The exporter's HTTP endpoints as one transport-neutral handler, for any Swift HTTP server to mount
/// (Hummingbird, Vapor, a server of your own): a request in (method, path, query, headers, body bytes), a
/// response out (status, headers, body bytes). It is the very handler chain ``Exporter``'s own server calls
/// (the web configuration's basic auth and headers, then the router and its endpoints), so each path answers
/// exactly as it does there:
/// - `GET`/`HEAD` on ``metricsPath``: the format negotiated from `Accept` (Prometheus text 0.0.4 or
///   OpenMetrics 1.0), gzip when `Accept-Encoding` allows, concurrent scrapes of the same representation
///   sharing one render, the render bounded by `X-Prometheus-Scrape-Timeout-Seconds`, and 503 beyond
///   `Exporter.Configuration.maxRequests` scrapes at once;
/// - `POST` on ``ingestionPathPrefix`` followed by `{model}/predictions` or `{model}/labels`: the ingestion API,
///   with the model's bearer token (401), media types (415), gzip bodies, event and inflation limits (413), large
///   bodies decoded on the exporter's bounded worker pool (503 with `Retry-After` when it is full), unknown
///   models (404);
/// - `/`, `/-/healthy`, `/-/ready` (200 only once ``Exporter/start()`` ran), `/-/reload`; any other path 404,
///   a wrong method 405 with `Allow`.
///
/// Contract for the host:
/// - Pass the path without the query and not percent-decoded, the headers as received (repeated fields kept),
///   and the whole body; collect at most ``maxBodyBytes`` of it (a larger body is answered 413 here, without
///   being looked at, and counted in `mlops_exporter_http_errors_total{reason="too_large"}` as the exporter's
///   server counts one). A host whose collection stops at the limit answers ``bodyTooLarge()``.
/// - Pass the client's address as ``Request/remoteAddress``: basic auth limits uncached password checks per
///   client, and requests without an address all share one client's quota.
/// - Send the response's status, headers and body as they are; add what the host's protocol needs
///   (`Content-Length`, `Date`). For `HEAD` the body is a `GET`'s: send none, as for any `HEAD`.
/// - ``respond(to:)`` may be called from any task, concurrently; it suspends, never blocks, while it waits.
///   Ingestion bodies up to 256 KiB (inflated) are decoded on the calling task's thread, as on the server's
///   event loop (about 0.2 ms per 100 events); renders, uncached password checks and larger or inflating
///   bodies run on the exporter's own threads. Every refusal has a one-line `text/plain` reason.
/// - A request with a body is first screened from its head, as the exporter's server does before reading a
///   body (auth, unknown model, token, media type, workers' room); a host that wants to refuse before it reads
///   the body can call ``admit(_:)`` with the head itself.
public struct ExporterEndpoints: Sendable {
    /// One request as the host received it.
    public struct Request: Sendable {
        /// The method, case-sensitive (`GET`, `POST`, ...).
        public var method: String
        /// The path of the target, without the query, not percent-decoded (`/metrics`).
        public var path: String
        /// The raw query after `?`, if any (only the status pages read it: `?refresh=N`).
        public var query: String?
        /// The header fields in the order received, duplicates kept; names in any case.
        public var headers: [(name: String, value: String)]
        /// The whole body (empty when there is none).
        public var body: [UInt8]
        /// The client as `address:port`, for basic auth's per-client limit; empty when unknown.
        public var remoteAddress: String
        /// The protocol that carried the request (`http/1.1`, `h2`), for the self metrics' labels.
        public var protocolName: String

        /// Creates a request.
        public init(
            method: String, path: String, query: String? = nil, headers: [(name: String, value: String)] = [],
            body: [UInt8] = [], remoteAddress: String = "", protocolName: String = "http/1.1"
        ) {
            self.method = method
            self.path = path
            self.query = query
            self.headers = headers
            self.body = body
            self.remoteAddress = remoteAddress
            self.protocolName = protocolName
        }
    }

    /// One response, for the host to send.
    public struct Response: Sendable {
        /// The status code.
        public var status: Int
        /// The header fields to send, in order (`Content-Type`, `Content-Encoding`, `Vary`, `Retry-After`, ...).
        public var headers: [(name: String, value: String)]
        /// The body.
        public var body: [UInt8]

        /// Creates a response.
        public init(status: Int, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
            self.status = status
            self.headers = headers
            self.body = body
        }

        init(_ response: HTTPResponse) {
            self.init(status: response.status, headers: response.headers.fields, body: response.body)
        }
    }

    /// What the exporter's own server calls: auth and headers, then the router.
    let handler: any HTTPHandler
    /// The path of the metrics endpoint (`Exporter.Configuration.telemetryPath`).
    public let metricsPath: String
    /// The largest request body accepted (`Exporter.Configuration.server.maxBodySize`): collect at most this
    /// much; more is answered 413.
    public let maxBodyBytes: Int
    /// The ingestion paths: this prefix, a model name, then `/predictions` or `/labels`.
    public static let ingestionPathPrefix = IngestEndpoint.prefix

    /// Counts a body refused for its size, as the exporter's server counts one
    /// (`mlops_exporter_http_errors_total{reason="too_large"}`).
    let countTooLarge: @Sendable () -> Void

    init(
        handler: any HTTPHandler, metricsPath: String, maxBodyBytes: Int,
        countTooLarge: @escaping @Sendable () -> Void
    ) {
        self.handler = handler
        self.metricsPath = metricsPath
        self.maxBodyBytes = maxBodyBytes
        self.countTooLarge = countTooLarge
    }

    /// The answer to `request`: screened from its head first when it has a body (see ``admit(_:)``), then
    /// handled. Returns when the response is ready; a cancelled task still gets its answer (work already
    /// queued for it, a password check, is skipped where the exporter can).
    public func respond(to request: Request) async -> Response {
        guard request.body.count <= maxBodyBytes else { return bodyTooLarge() }
        let full = Self.httpRequest(request)
        if !request.body.isEmpty {
            var head = full
            head.body = []
            if head.headers["Content-Length"] == nil {
                head.headers.add(name: "Content-Length", value: String(request.body.count))
            }
            if let refusal = await decide(head) { return refusal }
        }
        let answer = await Self.awaitAnswer { [handler] cancelled, answer in
            handler.handle(full, respond: HTTPResponder(isCancelled: cancelled) { answer($0) })
        }
        return Response(answer ?? HTTPResponse(status: 500, text: "no response\n"))  // handlers always answer
    }

    /// The answer to a request whose body is larger than ``maxBodyBytes`` (413 `request body larger than N
    /// bytes`), counted as the exporter's server counts one: for a host whose body collection stopped at the limit
    /// (Hummingbird's `collect(upTo:)` throws there), so that the client gets the exporter's answer and the
    /// refusal is in `mlops_exporter_http_errors_total{reason="too_large"}`.
    public func bodyTooLarge() -> Response {
        countTooLarge()
        return Response(HTTPResponse(status: 413, text: "request body larger than \(maxBodyBytes) bytes\n"))
    }

    /// The screening of a request that announces a body, from its head alone (its `body` is ignored): nil
    /// when the body may be read, else the answer (401, 404, 405, 413, 415, 429, 503 with its reason). What
    /// the exporter's server does before it reads a body; ``respond(to:)`` does it too, so calling this is
    /// optional. A `GET` or `HEAD` head that announces no body (no `Transfer-Encoding`, no `Content-Length` other
    /// than 0) is nil at once: a host may call this on every request, a scrape included (before, a scrape's head was
    /// answered 413 "takes no request body").
    public func admit(_ head: Request) async -> Response? {
        let length = head.headers.first { $0.name.lowercased() == "content-length" }?.value
        let chunked = head.headers.contains { $0.name.lowercased() == "transfer-encoding" }
        if !chunked && (length == nil || length == "0") && (head.method == "GET" || head.method == "HEAD") {
            return nil
        }
        // A body announced larger than the limit: 413 from the head, as the exporter's server answers it (before, nil:
        // a host collecting up to the limit waited for a body that the client would only send whole).
        if let announced = length.flatMap({ Int($0) }), announced > maxBodyBytes { return bodyTooLarge() }
        var request = Self.httpRequest(head)
        request.body = []
        return await decide(request)
    }

    private func decide(_ head: HTTPRequest) async -> Response? {
        await Self.awaitAnswer { [handler] cancelled, answer in
            handler.admit(head, admission: HTTPAdmission(isCancelled: cancelled, answer))
        }.map(Response.init)
    }

    private static func httpRequest(_ request: Request) -> HTTPRequest {
        HTTPRequest(
            method: request.method, path: request.path, query: request.query,
            headers: HTTPHeaders(request.headers.map { ($0.name, $0.value) }), body: request.body,
            protocolName: request.protocolName, remoteAddress: request.remoteAddress)
    }

    /// Runs `start`, which hands an answer to the closure it is given, from any thread (only the first call
    /// counts), and returns that answer. The task's cancellation is reported through `start`'s first closure.
    private static func awaitAnswer(
        _ start: (_ cancelled: @escaping @Sendable () -> Bool, _ answer: @escaping @Sendable (HTTPResponse?) -> Void)
            -> Void
    ) async -> HTTPResponse? {
        let state = PendingAnswer()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<HTTPResponse?, Never>) in
                start({ state.cancelled.load(ordering: .relaxed) }) { answer in
                    guard !state.answered.exchange(true, ordering: .acquiringAndReleasing) else { return }
                    continuation.resume(returning: answer)
                }
            }
        } onCancel: {
            state.cancelled.store(true, ordering: .relaxed)
        }
    }
}

/// The state of one awaited answer: whether it came (only the first counts) and whether the task was cancelled.
private final class PendingAnswer: Sendable {
    let answered = Atomic<Bool>(false)
    let cancelled = Atomic<Bool>(false)
}

extension HTTPHeaders {
    /// The field lines, in order.
    var fields: [(name: String, value: String)] { Array(self) }
}
