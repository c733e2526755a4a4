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

    func handle(_ request: HTTPRequest, respond: HTTPResponder) {
        let start = ContinuousClock.now
        let handler: SelfMetrics.Handler
        switch request.path {
        case metricsPath: handler = .metrics
        case "/": handler = .landing
        case "/-/healthy": handler = .healthy
        case "/-/ready": handler = .ready
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
        guard request.method == "GET" || request.method == "HEAD" else {
            var response = HTTPResponse(status: 405, text: "method \(request.method) not allowed on \(request.path)\n")
            response.headers.add(name: "Allow", value: "GET, HEAD")
            answer(response)
            return
        }
        switch handler {
        case .metrics:
            metrics.handle(request, respond: answer)
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
        case .other:
            break
        }
    }
}

/// Lifecycle flags shared by the exporter and its handlers.
final class ExporterState: Sendable {
    let ready = Atomic<Bool>(false)
}
