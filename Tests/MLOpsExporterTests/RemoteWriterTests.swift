import ExporterConfig
import Exposition
import Foundation
import Logging
import RemoteWrite
import SwiftProtobuf
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

    /// What the exporter sends names its version (the remote-write spec: `User-Agent: <name & version>`).
    @Test func theTransportSaysWhichVersionSends() {
        let transport = RemoteWriteHTTP(
            configuration: RemoteWriteConfiguration(
                url: ProxyConfiguration.Upstream(host: "127.0.0.1", port: 9, basePath: "/api/v1/write")))
        #expect(transport.receiver?.userAgent == "mlops-exporter/\(MLOpsExporterVersion.version)")
    }

    private func dropped(_ registry: Registry, _ reason: String) -> Double {
        let text = String(decoding: registry.render(format: .text), as: UTF8.self)
        let line = text.split(separator: "\n").first {
            $0.hasPrefix(#"mlops_remote_write_samples_dropped_total{reason="\#(reason)"}"#)
        }
        return line.flatMap { Double($0.split(separator: " ").last!) } ?? 0
    }

    /// The samples of an encoded request body.
    private func decode(_ body: [UInt8]) throws -> [(name: String, value: Double)] {
        let request = try Prometheus_WriteRequest(serializedBytes: try Snappy.uncompress(body, limit: 1 << 24))
        return request.timeseries.map { series in
            (series.labels.first { $0.name == "__name__" }!.value, series.samples[0].value)
        }
    }

    /// A series removed between two renders is sent a staleness marker with the second; before, nothing was sent and
    /// a receiver kept its last sample for 5 minutes (a removed model counted in fleet sums).
    @Test func aSeriesThatLeavesTheRegistryIsMarkedStale() throws {
        let (writer, registry) = try writer(series: 3, outcome: .retry("network"))
        let family = try registry.gaugeFamily("gone_soon", help: "A series that goes.", labelNames: ["model"])
        try family.labels("a").set(1)
        writer.collectOnce()
        #expect(try family.remove(["a"]))
        writer.collectOnce()
        let bodies = writer.queue.withLock { $0.pending.map(\.body) }
        #expect(bodies.count == 2)
        let first = try decode(bodies[0])
        let second = try decode(bodies[1])
        #expect(first.contains { $0.name == "gone_soon" && $0.value == 1 })
        let markers = second.filter { StaleMarkers.isMarker($0.value) }
        #expect(markers.map(\.name) == ["gone_soon"])
        #expect(second.count == first.count)
    }

    /// At stop every series of the last render is sent a staleness marker, once, after the queue's last request.
    @Test func stoppingMarksEverySeriesStale() throws {
        let sent = Mutex<[[UInt8]]>([])
        let registry = Registry()
        try SyntheticSeries.register(count: 4, in: registry)
        var configuration = RemoteWriteConfiguration(
            url: ProxyConfiguration.Upstream(host: "127.0.0.1", port: 9, basePath: "/api/v1/write"))
        configuration.interval = .seconds(3600)
        let writer = try RemoteWriter(
            configuration: configuration, registry: registry, instanceID: "t",
            logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() },
            transport: { body in
                sent.withLock { $0.append(body) }
                return .delivered
            })
        writer.start()
        let deadline = ContinuousClock.now + .seconds(10)
        while sent.withLock({ $0.isEmpty }) && ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.01) }
        writer.stop(within: .seconds(5))
        let bodies = sent.withLock { $0 }
        #expect(bodies.count == 2)
        let render = try decode(bodies[0])
        let last = try decode(bodies[1])
        #expect(render.allSatisfy { !StaleMarkers.isMarker($0.value) })
        #expect(last.count == render.count && last.allSatisfy { StaleMarkers.isMarker($0.value) })
        #expect(dropped(registry, "shutdown") == 0)
    }

    /// At stop, what is queued behind the send under way is sent too (one attempt each), before the staleness
    /// markers. Before, it was dropped (`shutdown`) though the receiver answered: a render queued just before SIGTERM
    /// never arrived.
    @Test func stoppingSendsWhatIsQueuedFirst() throws {
        let sent = Mutex<[[UInt8]]>([])
        let gate = DispatchSemaphore(value: 0)
        let registry = Registry()
        try SyntheticSeries.register(count: 4, in: registry)
        var configuration = RemoteWriteConfiguration(
            url: ProxyConfiguration.Upstream(host: "127.0.0.1", port: 9, basePath: "/api/v1/write"))
        configuration.interval = .seconds(3600)  // the default timeout (10 s), longer than the stop's wait below
        let writer = try RemoteWriter(
            configuration: configuration, registry: registry, instanceID: "t",
            logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() },
            transport: { body in
                // The second request is held until the test lets it go.
                if sent.withLock({
                    $0.append(body); return $0.count
                }) == 2 {
                    _ = gate.wait(timeout: .now() + 5)
                }
                return .delivered
            })
        func waitForSent(_ count: Int) {
            let deadline = ContinuousClock.now + .seconds(10)
            while sent.withLock({ $0.count }) < count && ContinuousClock.now < deadline {
                Thread.sleep(forTimeInterval: 0.01)
            }
        }
        writer.start()
        waitForSent(1)
        writer.collectOnce()  // sent, and held at the gate
        waitForSent(2)
        writer.collectOnce()  // queued behind it
        // A thread of its own: Dispatch's pool, starved by the suites running beside it, released it too late (a CI
        // run saw this test fail after 122 s).
        Thread.detachNewThread {
            Thread.sleep(forTimeInterval: 0.2)
            gate.signal()
        }
        writer.stop(within: .seconds(5))
        let bodies = sent.withLock { $0 }
        #expect(bodies.count == 4)
        #expect(try decode(bodies[2]).allSatisfy { !StaleMarkers.isMarker($0.value) })
        #expect(try bodies.last.map(decode)?.allSatisfy { StaleMarkers.isMarker($0.value) } == true)
        #expect(dropped(registry, "shutdown") == 0)
    }

    /// A render under way when the stop comes is queued and sent before the staleness markers: before, the sender's
    /// drain found the queue still empty and ended, and the render queued just after was dropped at shutdown
    /// (`reason="shutdown"`) with a healthy receiver.
    @Test func aRenderUnderWayAtTheStopIsSent() throws {
        let sent = Mutex<[[UInt8]]>([])
        let registry = Registry()
        try SyntheticSeries.register(count: 4, in: registry)
        let slow = BlockingCollector()
        try registry.register(slow)
        let writer = try RemoteWriter(
            configuration: RemoteWriteConfiguration(
                url: ProxyConfiguration.Upstream(host: "127.0.0.1", port: 9, basePath: "/api/v1/write")),
            registry: registry, instanceID: "t", logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() },
            transport: { body in
                sent.withLock { $0.append(body) }
                return .delivered
            })
        writer.start()
        #expect(slow.entered.wait(timeout: .now() + 10) == .success)  // the first render is under way, held
        Thread.detachNewThread {  // not Dispatch's pool (see stoppingSendsWhatIsQueuedFirst)
            Thread.sleep(forTimeInterval: 0.3)
            slow.release.signal()
        }
        writer.stop(within: .seconds(5))
        let bodies = sent.withLock { $0 }
        #expect(bodies.count == 2)
        #expect(try bodies.first.map(decode)?.allSatisfy { !StaleMarkers.isMarker($0.value) } == true)
        #expect(try bodies.last.map(decode)?.allSatisfy { StaleMarkers.isMarker($0.value) } == true)
        #expect(dropped(registry, "shutdown") == 0)
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
