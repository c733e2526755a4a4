import Exposition
import HTTPServer

/// Exports the HTTP server's request-body budget at scrape time: bytes held and their bound, and connections
/// receiving a body; and the answer bytes held for peers that have not read them, and their bound. Refusals are
/// counted by the server's observer in
/// `mlops_exporter_http_errors_total{reason="body_memory"|"body_connections"|"body_too_slow"|"answer_memory"}`.
struct ServerBudgetCollector: Collector {
    /// Weak: the server holds the registry (through its handler), which holds this collector.
    let server: WeakServer

    init(server: HTTPServer) {
        self.server = WeakServer(server: server)
    }

    var name: String { "http_server" }

    struct Families {
        let schema: CollectorSchema
        let buffered: GaugeHandle
        let limit: GaugeHandle
        let receiving: GaugeHandle
        let unread: GaugeHandle
        let unreadLimit: GaugeHandle

        init() {
            var s = CollectorSchema()
            buffered = try! s.gauge(
                "mlops_exporter_http_buffered_body_bytes",
                help: "Request-body bytes the server holds now (being received, or handed on and not yet answered).",
                unit: "bytes")
            limit = try! s.gauge(
                "mlops_exporter_http_buffered_body_limit_bytes",
                help:
                    "Most request-body bytes the server holds at once (--web.max-buffered-body-bytes); new bodies beyond it get 503.",
                unit: "bytes")
            receiving = try! s.gauge(
                "mlops_exporter_http_connections_receiving_bodies",
                help:
                    "Connections receiving a request body now (at most --web.max-connections minus --web.reserved-connections)."
            )
            unread = try! s.gauge(
                "mlops_exporter_http_unread_answer_bytes",
                help:
                    "Answer bytes the server holds for clients that have not read them yet (counted per connection once a write leaves some: a shared answer once per connection holding it).",
                unit: "bytes")
            unreadLimit = try! s.gauge(
                "mlops_exporter_http_unread_answer_limit_bytes",
                help:
                    "Most answer bytes held for clients that have not read them (--web.max-unread-answer-bytes); new requests beyond it get 503.",
                unit: "bytes")
            schema = s
        }
    }

    static let families = Families()
    var schema: CollectorSchema { Self.families.schema }

    func collect(into sink: inout CollectorSink) {
        guard let server = server.server else { return }
        let f = Self.families
        sink.gauge(f.buffered, value: Double(server.bufferedBodyBytes))
        sink.gauge(f.limit, value: Double(server.bufferedBodyLimit))
        sink.gauge(f.receiving, value: Double(server.connectionsReceivingBodies))
        sink.gauge(f.unread, value: Double(server.unreadAnswerBytes))
        sink.gauge(f.unreadLimit, value: Double(server.unreadAnswerLimit))
    }
}
