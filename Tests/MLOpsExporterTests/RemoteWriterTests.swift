import ExporterConfig
import Exposition
import Logging
import Synchronization
import Testing

@testable import MLOpsExporter

/// The remote writer's queue and retries, with a transport that records instead of posting.
@Suite struct RemoteWriterTests {
    /// `synthetic_requests_total` series in a registry, and a writer of `max_pending_requests` 2 over it whose
    /// transport answers `outcome`.
    private func writer(series: Int, outcome: RemoteWriter.Outcome) throws -> (RemoteWriter, Registry) {
        let registry = Registry()
        try SyntheticSeries.register(count: series, in: registry)
        var configuration = RemoteWriteConfiguration(
            url: ProxyConfiguration.Upstream(host: "127.0.0.1", port: 9, basePath: "/api/v1/write"))
        configuration.maxPendingRequests = 2
        let writer = try RemoteWriter(
            configuration: configuration, registry: registry, instanceID: "t",
            logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() }, transport: { _ in outcome })
        return (writer, registry)
    }

    private func dropped(_ registry: Registry, _ reason: String) -> Double {
        let text = String(decoding: registry.render(format: .text), as: UTF8.self)
        let line = text.split(separator: "\n").first {
            $0.hasPrefix(#"mlops_remote_write_samples_dropped_total{reason="\#(reason)"}"#)
        }
        return line.flatMap { Double($0.split(separator: " ").last!) } ?? 0
    }

    /// A render of more requests than `max_pending_requests` keeps all of them; the next render drops the earlier
    /// one's, oldest first. Before, each render dropped its own first requests (and the family metadata, which goes
    /// with the first) every interval, however healthy the receiver.
    @Test func aRenderLargerThanTheBoundKeepsItsOwnRequests() throws {
        let (writer, registry) = try writer(series: 12_000, outcome: .retry("network"))
        writer.collectOnce()
        let first = writer.queue.withLock { $0.pending.map(\.samples) }
        #expect(first.count >= 3, "\(first)")
        #expect(dropped(registry, "queue_full") == 0)
        writer.collectOnce()
        let second = writer.queue.withLock { $0.pending }
        #expect(second.count == first.count && Set(second.map(\.render)).count == 1)
        #expect(dropped(registry, "queue_full") == Double(first.reduce(0, +)))
    }
}
