import ExporterConfig
import Foundation
import HTTPServer
import Logging
import ModelMonitoring
import Synchronization

/// The sidecar's reverse proxy (`proxy:` in the configuration; docs/proxy.md): a second HTTP server on its own
/// listen addresses (default `:9748`, so that `/metrics` and the proxied API never share a port), forwarding every
/// request to the model server through ``HTTPServer/ReverseProxy`` and reporting each exchange to a
/// ``ProxyRecorder``.
///
/// Reloads: routes, capture limits, error statuses and the models take effect at once; a changed upstream, pool
/// bound or timeout makes a new proxy (new pools; requests in flight finish on the old one); listen addresses are
/// read at start only (a change is logged and waits for a restart).
final class ProxyService: Sendable {
    let server: HTTPServer
    let recorder: ProxyRecorder
    private let front: ProxyFront
    /// The settings the proxy in use was made with (reloads compare with these: the routing's could have been
    /// rebuilt from others, and a new upstream was then taken for no change).
    private let applied: Mutex<ProxyConfiguration>
    private let listenAddresses: [String]
    private let eventLoopCount: Int
    private let makeRequestID: @Sendable () -> String
    private let logger: Logger

    /// The handler the server calls: the current proxy.
    final class ProxyFront: HTTPHandler {
        let current: PublishedReference<ReverseProxy>
        init(_ proxy: ReverseProxy) { current = PublishedReference(proxy) }
        func handle(_ request: consuming HTTPRequest, respond: HTTPResponder) {
            current.value.handle(consume request, respond: respond)
        }
        func abandoned(_ head: HTTPRequest, clientLeft: Bool) {
            current.value.abandoned(head, clientLeft: clientLeft)
        }
        var streamsRequestBodies: Bool { true }
        /// Every body is admitted, as by the proxy (`admit` is not implemented here).
        var screensRequestBodies: Bool { false }
        /// Requests go to the proxy: the parser plans how their field lines are forwarded.
        var forwardsRequests: Bool { true }
    }

    init(
        settings: ProxyConfiguration, server base: HTTPServer.Configuration, monitor: ModelMonitor,
        metrics: ProxyMetrics, workers: WorkerPool, instanceID: String, logger: Logger
    ) throws {
        self.logger = logger
        eventLoopCount = max(1, min(base.eventLoopCount, settings.maxConnections))
        let ids = RequestIDSource(instance: instanceID)
        makeRequestID = { ids.next() }
        recorder = ProxyRecorder(
            settings: settings, monitor: monitor, metrics: metrics, workers: workers, logger: logger)
        let proxy = try Self.makeProxy(
            settings, eventLoopCount: eventLoopCount, makeRequestID: makeRequestID, recorder: recorder,
            metrics: metrics)
        front = ProxyFront(proxy)
        applied = Mutex(settings)
        var configuration = base
        // No more loops than upstream connections: each loop's pool needs one, and the total must hold.
        configuration.eventLoopCount = max(1, min(base.eventLoopCount, settings.maxConnections))
        configuration.listenAddresses = settings.listenAddresses
        configuration.tls = nil
        listenAddresses = settings.listenAddresses
        server = HTTPServer(configuration: configuration, handler: front, observer: metrics, logger: logger)
    }

    static func makeProxy(
        _ settings: ProxyConfiguration, eventLoopCount: Int, makeRequestID: @escaping @Sendable () -> String,
        recorder: ProxyRecorder, metrics: ProxyMetrics
    ) throws -> ReverseProxy {
        let address = try UpstreamAddress.resolve(host: settings.upstream.host, port: settings.upstream.port)
        var configuration = ReverseProxy.Configuration(
            upstream: address, eventLoopCount: eventLoopCount, makeRequestID: makeRequestID)
        configuration.basePath = settings.upstream.basePath
        configuration.maxConnections = settings.maxConnections
        configuration.maxWaiting = settings.maxWaiting
        configuration.connectTimeout = settings.connectTimeout
        configuration.responseTimeout = settings.responseTimeout
        configuration.readTimeout = settings.readTimeout
        configuration.idleTimeout = settings.idleTimeout
        configuration.requestIDHeader = settings.requestIDHeader
        return ReverseProxy(configuration: configuration, observer: recorder, poolObserver: metrics)
    }

    /// Set at shutdown: the pruning thread ends.
    private final class StopFlag: Sendable { let stopped = Atomic<Bool>(false) }
    private let stopFlag = StopFlag()

    func start() throws {
        // Releases replaced routings and proxies once their grace period is over, four times a second (a routing
        // holds its models: without this, the last reloads' were held until the next reload).
        Thread.detachNewThread { [recorder, front, stopFlag] in
            while !stopFlag.stopped.load(ordering: .relaxed) {
                Thread.sleep(forTimeInterval: 0.25)
                recorder.routing.prune()
                front.current.prune()
            }
        }
        try server.start()
        logger.info(
            "proxy listening",
            metadata: [
                "addresses": "\(server.boundAddresses.map { "\($0)" }.joined(separator: ","))",
                "upstream": "\(front.current.value.configuration.upstream)",
            ])
    }

    var boundAddresses: [String] { server.boundAddresses.map { "\($0)" } }

    func shutdown(deadline: Duration) {
        stopFlag.stopped.store(true, ordering: .relaxed)
        server.shutdown(deadline: deadline)
    }

    /// Begins a graceful stop within `deadline` and returns at once; `completion` runs when the proxy has stopped.
    func shutdown(deadline: Duration, completion: @escaping @Sendable () -> Void) {
        stopFlag.stopped.store(true, ordering: .relaxed)
        server.shutdown(deadline: deadline, completion: completion)
    }

    /// Waits until the routings and upstreams replaced by earlier reloads are few enough to take one more each
    /// (``PublishedReference/waitForRoom()``): on the reloading thread, before the reload's models are applied.
    func waitForRoom() {
        recorder.routing.waitForRoom()
        front.current.waitForRoom()
    }

    /// A reload changed the configuration: applies what can change while running.
    func apply(_ settings: ProxyConfiguration?, metrics: ProxyMetrics) {
        guard let settings else {
            // Said with what the file's own warnings then say of a missing proxy (an llm model "measured by nothing"):
            // that holds from the restart, not before.
            logger.warning(
                "the proxy section was removed: the proxy keeps running with its last settings (routes, captures, llm measurement) until a restart; warnings about the file's missing proxy: section apply from then"
            )
            return
        }
        if settings.listenAddresses != listenAddresses {
            logger.warning("proxy.listen changed: the new addresses take effect at restart")
        }
        if settings.maxConnections < eventLoopCount {
            logger.warning(
                "proxy.max_connections is below the proxy's event loops (set at start): each loop keeps one connection",
                metadata: ["max_connections": "\(settings.maxConnections)", "event_loops": "\(eventLoopCount)"])
        }
        recorder.update(settings: settings)
        applied.withLock { old in
            guard
                old.upstream != settings.upstream || old.maxConnections != settings.maxConnections
                    || old.maxWaiting != settings.maxWaiting || old.connectTimeout != settings.connectTimeout
                    || old.responseTimeout != settings.responseTimeout || old.readTimeout != settings.readTimeout
                    || old.idleTimeout != settings.idleTimeout || old.requestIDHeader != settings.requestIDHeader
            else { return }
            do {
                let replaced = front.current.value
                front.current.publish(
                    try Self.makeProxy(
                        settings, eventLoopCount: eventLoopCount, makeRequestID: makeRequestID, recorder: recorder,
                        metrics: metrics))
                replaced.retire()
                // Said (a new upstream or pool was built without a word: only "configuration reloaded").
                logger.info(
                    "proxy upstream settings changed: a new connection pool serves new requests",
                    metadata: [
                        "upstream": "\(settings.upstream)", "max_connections": "\(settings.maxConnections)",
                        "connect_timeout": "\(settings.connectTimeout)",
                        "response_timeout": "\(settings.responseTimeout)",
                    ])
                old = settings
            } catch {
                logger.error("proxy upstream not changed: \(error)")
            }
        }
    }
}

/// Request ids for requests that came without one (`<instance>~<ULID>`, ``EventID``), without a system call: the
/// ULID's 80 random bits are SplitMix64 outputs of a counter offset by a random seed drawn once. SplitMix64's
/// finaliser is a bijection and every id takes two new counter values, so no two ids of one process share their
/// random bits; across processes the instance prefix and the seed tell them apart. Lock-free; the instance id is
/// checked once, here, and its bytes kept, so that each id costs one allocation and no check.
final class RequestIDSource: Sendable {
    private let counter = Atomic<UInt64>(0)
    private let seed: UInt64
    private let prefix: [UInt8]
    private static let gamma: UInt64 = 0x9E37_79B9_7F4A_7C15

    /// A source of ids of `instance`, which must be valid (``EventID/isValidInstance(_:)``).
    init(instance: String) {
        precondition(EventID.isValidInstance(instance), "invalid instance id \"\(instance)\"")
        prefix = Array(instance.utf8)
        var system = SystemRandomNumberGenerator()
        seed = system.next()
    }

    struct Mixed: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= RequestIDSource.gamma
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// A new id: what ``EventID/generate(instance:milliseconds:using:)`` makes of the instance, now and this
    /// source's next two random words.
    func next() -> String {
        let tick = counter.wrappingAdd(1, ordering: .relaxed).oldValue
        var generator = Mixed(state: seed &+ tick &* 2 &* Self.gamma)
        let high = UInt16(truncatingIfNeeded: generator.next())
        let low = generator.next()
        return prefix.withUnsafeBufferPointer { prefix in
            EventID.generate(
                prefix: prefix, milliseconds: UInt64(WallClock.now() * 1000), randomHigh: high, randomLow: low)
        }
    }
}
