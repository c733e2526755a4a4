import Dispatch
import Exposition
import HTTPServer
import Logging
import Synchronization
import Testing

@testable import MLOpsExporter

private final class Answers: Sendable {
    let responses = Mutex<[String: (status: Int, body: String)]>([:])
    let arrived = DispatchSemaphore(value: 0)

    func record(_ name: String) -> @Sendable (HTTPResponse) -> Void {
        { response in
            self.responses.withLock { $0[name] = (response.status, String(decoding: response.body, as: UTF8.self)) }
            self.arrived.signal()
        }
    }
}

/// An endpoint over a registry whose one collector blocks its first run until released.
private func blockedEndpoint() throws -> (MetricsEndpoint, BlockingCollector, Answers) {
    let registry = Registry()
    let collector = BlockingCollector()
    try registry.register(collector)
    let selfMetrics = try SelfMetrics(registry: registry, version: "t", revision: "t")
    let endpoint = MetricsEndpoint(
        registry: registry, selfMetrics: selfMetrics, maxRequests: 0, logger: Logger(label: "test"))
    return (endpoint, collector, Answers())
}

@Suite("Metrics endpoint")
struct MetricsEndpointTests {
    @Test("a scrape with a short timeout does not join a longer render under way: it answers at its own deadline")
    func shortTimeoutDoesNotWaitForLongerRender() throws {
        let (endpoint, collector, answers) = try blockedEndpoint()
        defer { collector.release.signal() }

        // A: no scrape-timeout header, so the 10 s default; its render blocks on the collector.
        endpoint.handle(HTTPRequest(method: "GET", path: "/metrics"), respond: answers.record("long"))
        #expect(collector.entered.wait(timeout: .now() + 10) == .success)
        // B: same representation, 1 s timeout: must not wait behind A's 10 s deadline.
        let start = ContinuousClock.now
        endpoint.handle(
            HTTPRequest(method: "GET", path: "/metrics", headers: ["X-Prometheus-Scrape-Timeout-Seconds": "1"]),
            respond: answers.record("short"))
        #expect(answers.arrived.wait(timeout: .now() + 5) == .success)
        #expect(ContinuousClock.now - start < .seconds(4))
        let short = try #require(answers.responses.withLock { $0["short"] })
        #expect(short.status == 200)
        #expect(!short.body.contains("blocking_value"))
        #expect(answers.responses.withLock { $0["long"] } == nil)
        // Released, A completes with the collector's value.
        collector.release.signal()
        #expect(answers.arrived.wait(timeout: .now() + 10) == .success)
        #expect(answers.responses.withLock { $0["long"] }?.body.contains("blocking_value 1") == true)
    }

    @Test("a scrape with a longer timeout does not join a shorter render under way: it is not cut at that deadline")
    func longTimeoutDoesNotJoinShorterRender() throws {
        let (endpoint, collector, answers) = try blockedEndpoint()
        defer { collector.release.signal() }

        // A: a 0.5 s scrape timeout; its render blocks on the collector.
        endpoint.handle(
            HTTPRequest(method: "GET", path: "/metrics", headers: ["X-Prometheus-Scrape-Timeout-Seconds": "0.5"]),
            respond: answers.record("short"))
        #expect(collector.entered.wait(timeout: .now() + 10) == .success)
        // B: the 10 s default, same representation. A answers at its own deadline, without the collector's value.
        endpoint.handle(HTTPRequest(method: "GET", path: "/metrics"), respond: answers.record("long"))
        #expect(answers.arrived.wait(timeout: .now() + 5) == .success)
        #expect(answers.responses.withLock { $0["short"] }?.body.contains("blocking_value") == false)
        #expect(answers.responses.withLock { $0["long"] } == nil)
        // B was not cut at A's deadline: it waits for the collector, and has its value.
        collector.release.signal()
        #expect(answers.arrived.wait(timeout: .now() + 10) == .success)
        #expect(answers.responses.withLock { $0["long"] }?.body.contains("blocking_value 1") == true)
    }
}
