import Dispatch
import Exposition
import HTTPServer
import ModelMonitoring
import Synchronization

/// Routes requests to the exporter's endpoints and records every answer in the self metrics.
/// Unknown paths get 404, wrong methods 405 with `Allow`, methods RFC 9110 does not define 501.
///
/// ``admit(_:admission:)`` decides from the head of a request that announces a body, with the same routing
/// and method checks as ``handle(_:respond:)`` (404, 405): ingestion requests are screened by the
/// ``IngestEndpoint`` (unknown model, token, media type, encoding, workers' room); `/-/reload` may carry a
/// body (it is ignored); every other endpoint takes none (413). Refusals are counted like any answer.
struct Router: HTTPHandler {
    let metricsPath: String
    let metrics: MetricsEndpoint
    let selfMetrics: SelfMetrics
    let status: StatusEndpoint
    let state: ExporterState
    let config: ConfigurationState
    let ingest: IngestEndpoint
    let cloudEvents: CloudEventsEndpoint

    /// Where a request goes.
    private struct Route {
        let handler: SelfMetrics.Handler
        let ingest: (model: Substring, kind: EventKind)?
    }

    /// The `handler` label of `request`'s endpoint (for answers given before routing: basic authentication's).
    func handler(for request: HTTPRequest) -> SelfMetrics.Handler { route(request).handler }

    private func route(_ request: HTTPRequest) -> Route {
        let ingestRoute = IngestEndpoint.route(request.path)
        switch request.path {
        case _ where ingestRoute != nil: return Route(handler: .ingest, ingest: ingestRoute)
        case metricsPath: return Route(handler: .metrics, ingest: nil)
        case "/": return Route(handler: .landing, ingest: nil)
        case _ where request.path.hasPrefix("/models/"): return Route(handler: .status, ingest: nil)
        case "/-/healthy": return Route(handler: .healthy, ingest: nil)
        case "/-/ready": return Route(handler: .ready, ingest: nil)
        case "/-/reload": return Route(handler: .reload, ingest: nil)
        case CloudEventsEndpoint.path: return Route(handler: .cloudevents, ingest: nil)
        default: return Route(handler: .other, ingest: nil)
        }
    }

    /// `deliver`, recording the answer in the self metrics first.
    private func recording(
        _ handler: SelfMetrics.Handler, _ request: HTTPRequest, _ deliver: @escaping @Sendable (HTTPResponse) -> Void
    ) -> @Sendable (HTTPResponse) -> Void {
        let start = ContinuousClock.now
        let selfMetrics = self.selfMetrics
        let protocolName = request.protocolName
        return { response in
            selfMetrics.handled(
                handler, status: response.status, protocolName: protocolName, bytes: response.body.count,
                seconds: (ContinuousClock.now - start).seconds)
            deliver(response)
        }
    }

    /// Whether `method` is one RFC 9110 §9 or RFC 5789 defines: any other is not implemented anywhere here (501,
    /// §15.6.2), where one of these that a path does not take is refused there (405 with `Allow`). Compared, not
    /// hashed: it runs for every request.
    private static func isRecognized(_ method: String) -> Bool {
        switch method {
        case "GET", "POST", "HEAD", "PUT", "OPTIONS", "DELETE", "PATCH", "TRACE", "CONNECT": true
        default: false
        }
    }

    /// 501 for a method no endpoint implements, 404 for an unknown path, 405 with `Allow` for a method the endpoint
    /// does not take; nil otherwise.
    private static func refusal(_ handler: SelfMetrics.Handler, _ request: HTTPRequest) -> HTTPResponse? {
        if !isRecognized(request.method) {
            // Before, a method such as `FOO` got 405 (or 404), which says the server knows it (RFC 9110 §9.1).
            return HTTPResponse(status: 501, text: "method \(request.method) not implemented\n")
        }
        if request.method == "OPTIONS" && request.path == "*" {
            return options(["GET", "HEAD", "POST", "PUT", "OPTIONS"])
        }
        if handler == .other { return .notFound("404 page not found: \(request.path)\n") }
        let allowed =
            handler == .reload
            ? ["POST", "PUT"] : handler == .ingest || handler == .cloudevents ? ["POST"] : ["GET", "HEAD"]
        // What the path takes (RFC 9110 §9.3.7): HAProxy's default health check is `OPTIONS / HTTP/1.0`, which a 405
        // marked down (node_exporter and Prometheus answer it 200).
        if request.method == "OPTIONS" { return options(allowed + ["OPTIONS"]) }
        guard allowed.contains(request.method) else {
            var response = HTTPResponse(status: 405, text: "method \(request.method) not allowed on \(request.path)\n")
            // OPTIONS too: the resource takes it (RFC 9110 §15.5.6: the methods it currently supports).
            response.headers.add(name: "Allow", value: (allowed + ["OPTIONS"]).joined(separator: ", "))
            return response
        }
        return nil
    }

    /// 200 to OPTIONS, empty, with `Allow: methods`.
    private static func options(_ methods: [String]) -> HTTPResponse {
        var response = HTTPResponse(status: 200)
        response.headers.add(name: "Allow", value: methods.joined(separator: ", "))
        return response
    }

    /// The refusal of `request`'s method (``refusal(_:_:)``), or the answer to OPTIONS, unless the path names nothing
    /// here: then the 404 a GET or POST there gets. A 405's `Allow` and OPTIONS' say what the resource takes, so
    /// whether it exists is decided first: a status path that is no page (`/models/`, `/models/a/b`) or names a model
    /// that is not configured, an ingestion path of such a model. (A method the endpoint takes goes on to the
    /// endpoint, which answers the same 404 and counts it as its own.)
    private func refusalOrMissing(_ route: Route, _ request: HTTPRequest) -> HTTPResponse? {
        guard let refusal = Self.refusal(route.handler, request) else { return nil }
        guard refusal.status == 405 || request.method == "OPTIONS" else { return refusal }
        if let (model, _) = route.ingest { return status.unknownModel(String(model)) ?? refusal }
        guard route.handler == .status else { return refusal }
        guard case .model(let name)? = StatusEndpoint.page(request.path) else {
            return .notFound("404 page not found: \(request.path)\n")
        }
        return status.unknownModel(name) ?? refusal
    }

    func admit(_ head: HTTPRequest, admission: HTTPAdmission) {
        let route = route(head)
        let answer = recording(route.handler, head) { admission.reject($0) }
        if let refusal = refusalOrMissing(route, head) { return answer(refusal) }
        guard Self.takesBody(route.handler) else {
            // A body of a length given is refused now. One of unknown length (chunked, an HTTP/2 stream left open
            // after its HEADERS) may be empty, which is no body: received (bounded as any body is) and refused in
            // `handle` unless it is empty (an empty chunked body was refused 413).
            if let length = head.headers["Content-Length"], length != "0" { return answer(Self.noBodyTaken(head)) }
            return admission.accept()
        }
        if let (model, kind) = route.ingest {
            ingest.admit(head, model: model, kind: kind, accept: admission.accept, refuse: answer)
        } else {
            admission.accept()
        }
    }

    /// Whether `handler`'s endpoint takes a request body (the ingestion API, reloads, the KServe logger's events).
    static func takesBody(_ handler: SelfMetrics.Handler) -> Bool {
        switch handler {
        case .ingest, .reload, .cloudevents: true
        case .metrics, .landing, .status, .healthy, .ready, .other: false
        }
    }

    /// The answer to a request with a body at an endpoint that takes none.
    static func noBodyTaken(_ request: HTTPRequest) -> HTTPResponse {
        HTTPResponse(status: 413, text: "\(request.path) takes no request body\n")
    }

    func handle(_ request: HTTPRequest, respond: HTTPResponder) {
        let route = route(request)
        let handler = route.handler
        let answer = recording(handler, request) { respond($0) }
        if let refusal = refusalOrMissing(route, request) { return answer(refusal) }
        if !request.body.isEmpty && !Self.takesBody(handler) { return answer(Self.noBodyTaken(request)) }
        switch handler {
        case .metrics:
            metrics.handle(request, respond: answer)
        case .ingest:
            let (model, kind) = route.ingest!
            ingest.handle(request, model: model, kind: kind, respond: answer)
        case .cloudevents:
            cloudEvents.handle(request, respond: answer)
        case .landing, .status:
            guard let page = StatusEndpoint.page(request.path) else {
                return answer(.notFound("404 page not found: \(request.path)\n"))
            }
            status.handle(request, page: page, cancelled: { respond.isCancelled }, respond: answer)
        case .healthy:
            answer(HTTPResponse(status: 200, text: "mlops-exporter is Healthy.\n"))
        case .ready:
            if state.ready.load(ordering: .relaxed) {
                answer(HTTPResponse(status: 200, text: "mlops-exporter is Ready.\n"))
            } else {
                answer(HTTPResponse(status: 503, text: "mlops-exporter is not ready (starting or shutting down).\n"))
            }
        case .reload:
            guard config.hasFile else {
                answer(HTTPResponse(status: 409, text: "no --config file is in use: nothing to reload\n"))
                return
            }
            // Reading and validating the file is I/O: off the event loop, and requests that arrive while a reload
            // runs share the next one.
            config.requestReload(trigger: "api") { problems in
                if let problems {
                    answer(HTTPResponse(status: 500, text: ConfigurationState.rejection(problems)))
                } else {
                    answer(HTTPResponse(status: 200, text: "configuration reloaded\n"))
                }
            }
        case .other:
            break
        }
    }
}

/// Lifecycle flags shared by the exporter and its handlers.
final class ExporterState: Sendable {
    let ready = Atomic<Bool>(false)
    /// Whether ``Exporter/startStorage()`` ran.
    let storageStarted = Atomic<Bool>(false)
    /// Whether ``Exporter/start()`` was called (``startedOnce``), and whether it failed (``startFailed``): it is
    /// called once.
    let started = Atomic<Int>(notStarted)
    static let notStarted = 0
    static let startedOnce = 1
    static let startFailed = 2
}

extension HTTPResponse {
    /// A 404 whose text repeats what the client sent (its path, a model name): `nosniff`, so that no browser reads it
    /// as anything but text.
    static func notFound(_ text: String) -> HTTPResponse {
        var response = HTTPResponse(status: 404, text: text)
        response.headers.add(name: "X-Content-Type-Options", value: "nosniff")
        return response
    }
}
