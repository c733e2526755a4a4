import Compression
import Dispatch
import Exposition
import HTTPServer
import Logging
import Synchronization

/// `GET /metrics`: negotiates the format from `Accept`, compresses when `Accept-Encoding` allows,
/// shares one render among concurrent scrapes of the same representation, bounds the render by the
/// scrape's `X-Prometheus-Scrape-Timeout-Seconds`, and refuses more than `maxRequests` at once with 503.
/// A scrape joins a render under way only if that render's deadline is no later than its own; otherwise
/// it renders on its own, so a short scrape timeout is never stretched by a longer one.
///
/// Rendering runs on a Dispatch queue, never on an event-loop thread. Render buffers are kept per
/// representation and reused: once the server has written a response and dropped its reference, the
/// next render of that representation writes into the same storage.
final class MetricsEndpoint: Sendable {
    struct Key: Hashable, Sendable {
        let format: ExpositionFormat
        let gzip: Bool
    }

    struct Waiter: Sendable {
        let respond: @Sendable (HTTPResponse) -> Void
    }

    let registry: Registry
    let selfMetrics: SelfMetrics
    let maxRequests: Int
    let defaultTimeout: Duration
    let inFlight = Atomic<Int>(0)
    /// Renders under way, by representation: their deadline and the scrapes waiting for them.
    let pending = Mutex<[Key: (deadline: ContinuousClock.Instant, waiters: [Waiter])]>([:])
    let buffers = Mutex<[Key: [UInt8]]>([:])
    let compressors: GzipPool
    let queue = DispatchQueue(label: "mlops-exporter.render", qos: .userInitiated, attributes: .concurrent)
    let logger: Logger
    /// Called on the render queue before each render, with a tenth of its timeout: waits at most that long for what
    /// was answered before the render to be recorded (the proxy's exchanges, recorded just after their answers are
    /// written).
    let settle: @Sendable (Duration) -> Void

    init(
        registry: Registry, selfMetrics: SelfMetrics, maxRequests: Int, logger: Logger,
        defaultTimeout: Duration = .seconds(10), settle: @escaping @Sendable (Duration) -> Void = { _ in }
    ) {
        self.settle = settle
        self.logger = logger
        self.registry = registry
        self.selfMetrics = selfMetrics
        self.maxRequests = maxRequests
        self.defaultTimeout = defaultTimeout
        self.compressors = GzipPool()
    }

    func handle(_ request: HTTPRequest, respond: @escaping @Sendable (HTTPResponse) -> Void) {
        let now = inFlight.wrappingAdd(1, ordering: .relaxed).newValue
        if maxRequests > 0 && now > maxRequests {
            inFlight.wrappingSubtract(1, ordering: .relaxed)
            selfMetrics.rejectedMaxRequests.inc()
            respond(
                HTTPResponse(
                    status: 503, text: "Limit of concurrent requests reached (\(maxRequests)), try again later.\n"))
            return
        }
        // Repeated Accept / Accept-Encoding lines count as one comma-separated list (RFC 9110 §5.3).
        let negotiated = ScrapeNegotiation(
            acceptLines: request.headers.values(for: "accept"),
            acceptEncodingLines: request.headers.values(for: "accept-encoding"),
            scrapeTimeout: request.headers["x-prometheus-scrape-timeout-seconds"])
        let key = Key(format: negotiated.format, gzip: negotiated.gzip)
        var timeout = defaultTimeout
        if let scrapeTimeout = negotiated.scrapeTimeout {
            // Leave Prometheus a margin to receive the body before its own deadline.
            timeout = max(scrapeTimeout * 0.9, .milliseconds(100))
        }
        let waiter = Waiter { response in
            self.inFlight.wrappingSubtract(1, ordering: .relaxed)
            respond(response)
        }
        let deadline = ContinuousClock.now + timeout
        enum Role { case joined, leader, alone }
        let role = pending.withLock { p -> Role in
            if let current = p[key] {
                // Joined only when the render under way ends by this scrape's deadline and not much before it: a
                // render bounded by a far shorter timeout would cut this scrape's collectors short (alone, it still
                // shares the collector runs under way).
                guard current.deadline <= deadline, deadline - current.deadline <= timeout / 10 else { return .alone }
                p[key]!.waiters.append(waiter)
                return .joined
            }
            p[key] = (deadline, [waiter])
            return .leader
        }
        let renderTimeout = timeout
        switch role {
        case .joined:
            selfMetrics.scrapesCoalesced.inc()
        case .leader:
            queue.async { self.renderAndAnswer(key, timeout: renderTimeout, alone: nil) }
        case .alone:
            queue.async { self.renderAndAnswer(key, timeout: renderTimeout, alone: waiter) }
        }
    }

    /// Renders `key` and answers its waiters: the pending ones, or only `alone` for a scrape that did not
    /// join (nor lead) the shared render.
    private func renderAndAnswer(_ key: Key, timeout: Duration, alone: Waiter?) {
        let start = ContinuousClock.now
        settle(timeout / 10)
        var buffer = (alone == nil ? buffers.withLock { $0.removeValue(forKey: key) } : nil) ?? []
        // The wait comes out of the render's time (the scrape's margin for compressing and sending is kept).
        let report = registry.render(
            format: key.format, into: &buffer, timeout: timeout - (ContinuousClock.now - start))
        var body = buffer
        if key.gzip {
            body = compressors.compress(buffer)
        }
        if alone == nil { buffers.withLock { $0[key] = buffer } }
        let seconds = (ContinuousClock.now - start).seconds
        selfMetrics.scrapeDuration(key.format).observe(seconds)
        // Once per distinct problem: a collector failing at every scrape is logged once, counted every time.
        for skipped in report.firstSkips {
            logger.warning(
                "collector left out of scrapes",
                metadata: [
                    "collector": "\(skipped.collector)", "model": "\(skipped.model)", "reason": "\(skipped.reason)",
                    "detail": "\(skipped.detail)",
                ])
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: key.format.contentType)
        if key.gzip { headers.add(name: "Content-Encoding", value: "gzip") }
        headers.add(name: "Vary", value: "Accept, Accept-Encoding")
        let response = HTTPResponse(status: 200, headers: headers, body: body)
        let waiters = alone.map { [$0] } ?? pending.withLock { $0.removeValue(forKey: key)?.waiters } ?? []
        let scrapes = selfMetrics.scrapes(key.format, gzip: key.gzip)
        for w in waiters {
            scrapes.inc()
            w.respond(response)
        }
    }
}
