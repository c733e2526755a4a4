import Dispatch
import Exposition
import HTTPServer
import Synchronization

/// Routes requests to the exporter's endpoints and records every answer in the self metrics.
/// Unknown paths get 404, wrong methods 405 with `Allow`.
struct Router: HTTPHandler {
    let metricsPath: String
    let metrics: MetricsEndpoint
    let selfMetrics: SelfMetrics
    let landingPage: [UInt8]
    let state: ExporterState
    let config: ConfigurationState
    let ingest: IngestEndpoint

    func handle(_ request: HTTPRequest, respond: HTTPResponder) {
        let start = ContinuousClock.now
        let handler: SelfMetrics.Handler
        let ingestRoute = IngestEndpoint.route(request.path)
        switch request.path {
        case _ where ingestRoute != nil: handler = .ingest
        case metricsPath: handler = .metrics
        case "/": handler = .landing
        case "/-/healthy": handler = .healthy
        case "/-/ready": handler = .ready
        case "/-/reload": handler = .reload
        default: handler = .other
        }
        let selfMetrics = self.selfMetrics
        let protocolName = request.protocolName
        let answer: @Sendable (HTTPResponse) -> Void = { response in
            selfMetrics.handled(
                handler, status: response.status, protocolName: protocolName, bytes: response.body.count,
                seconds: (ContinuousClock.now - start).seconds)
            respond(response)
        }
        if handler == .other {
            answer(HTTPResponse(status: 404, text: "404 page not found: \(request.path)\n"))
            return
        }
        let allowed = handler == .reload ? ["POST", "PUT"] : handler == .ingest ? ["POST"] : ["GET", "HEAD"]
        guard allowed.contains(request.method) else {
            var response = HTTPResponse(status: 405, text: "method \(request.method) not allowed on \(request.path)\n")
            response.headers.add(name: "Allow", value: allowed.joined(separator: ", "))
            answer(response)
            return
        }
        switch handler {
        case .metrics:
            metrics.handle(request, respond: answer)
        case .ingest:
            let (model, kind) = ingestRoute!
            ingest.handle(request, model: model, kind: kind, respond: answer)
        case .landing:
            answer(
                HTTPResponse(
                    status: 200, headers: ["Content-Type": "text/html; charset=utf-8"], body: landingPage))
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
            // Reading and validating the file is I/O: keep it off the event loop.
            DispatchQueue.global().async { [config] in
                if let problems = config.reload(trigger: "api") {
                    let reason = problems.errors.map(\.description).joined(separator: "; ")
                    answer(HTTPResponse(status: 500, text: "configuration rejected, previous one kept: \(reason)\n"))
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
}
