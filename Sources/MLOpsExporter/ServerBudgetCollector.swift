import Exposition
import HTTPServer

/// Exports the HTTP server's request-body budget at scrape time: bytes held and their bound, and connections
/// receiving a body. Refusals are counted by the server's observer in
/// `mlops_exporter_http_errors_total{reason="body_memory"|"body_connections"|"body_too_slow"}`.
struct ServerBudgetCollector: Collector {
    /// Weak: the server holds the registry (through its handler), which holds this collector.
    let server: WeakServer

    init(server: HTTPServer) {
        self.server = WeakServer(server: server)
    }

    var name: String { "http_server" }

    var descriptors: [MetricDescriptor] {
        [
            try! MetricDescriptor(
                name: "mlops_exporter_http_buffered_body_bytes", type: .gauge,
                help: "Request-body bytes the server holds now (being received, or handed on and not yet answered).",
                unit: "bytes"),
            try! MetricDescriptor(
                name: "mlops_exporter_http_buffered_body_limit_bytes", type: .gauge,
                help:
                    "Most request-body bytes the server holds at once (--web.max-buffered-body-bytes); new bodies beyond it get 503.",
                unit: "bytes"),
            try! MetricDescriptor(
                name: "mlops_exporter_http_connections_receiving_bodies", type: .gauge,
                help:
                    "Connections receiving a request body now (at most --web.max-connections minus --web.reserved-connections)."
            ),
        ]
    }

    func collect(into sink: inout CollectorSink) {
        guard let server = server.server else { return }
        sink.gauge("mlops_exporter_http_buffered_body_bytes", [], value: Double(server.bufferedBodyBytes))
        sink.gauge("mlops_exporter_http_buffered_body_limit_bytes", [], value: Double(server.bufferedBodyLimit))
        sink.gauge(
            "mlops_exporter_http_connections_receiving_bodies", [], value: Double(server.connectionsReceivingBodies))
    }
}
