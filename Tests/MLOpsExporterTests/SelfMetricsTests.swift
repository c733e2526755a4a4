import Dispatch
import Exposition
import Testing

@testable import MLOpsExporter

@Suite("Self metrics")
struct SelfMetricsTests {
    /// The value of the `mlops_exporter_http_requests_total` sample with these labels, or nil when absent.
    func requests(_ text: String, _ handler: String, _ code: Int, _ proto: String) -> Double? {
        let prefix = #"mlops_exporter_http_requests_total{code="\#(code)",handler="\#(handler)",protocol="\#(proto)"} "#
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) else { return nil }
        return Double(line.dropFirst(prefix.count))
    }

    @Test("requests are counted by handler, code and protocol: common codes by handle, the rest by label lookup")
    func requestCounts() throws {
        let registry = Registry(options: .init(selfMetricsPrefix: nil))
        let metrics = try SelfMetrics(registry: registry, version: "t", revision: "t")
        // Concurrent first uses of the same handles, and of uncommon codes and protocols.
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<1000 {
                metrics.handled(.ingest, status: 202, protocolName: "http/1.1", bytes: 10, seconds: 0.001)
                metrics.handled(.metrics, status: 200, protocolName: "h2", bytes: 10, seconds: 0.001)
            }
            metrics.handled(.ingest, status: 299, protocolName: "http/1.1", bytes: 0, seconds: 0.001)
            metrics.handled(.other, status: 404, protocolName: "spdy/3", bytes: 0, seconds: 0.001)
            metrics.handled(.reload, status: 1000, protocolName: "http/1.0", bytes: 0, seconds: 0.001)
        }
        let text = String(decoding: registry.render(format: .text), as: UTF8.self)
        #expect(requests(text, "ingest", 202, "http/1.1") == 8000)
        #expect(requests(text, "metrics", 200, "h2") == 8000)
        #expect(requests(text, "ingest", 299, "http/1.1") == 8)
        #expect(requests(text, "other", 404, "spdy/3") == 8)
        #expect(requests(text, "reload", 1000, "http/1.0") == 8)
        #expect(requests(text, "ingest", 200, "http/1.1") == nil)  // never answered: no series
    }
}
