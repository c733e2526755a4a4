import Dispatch
import ExporterConfig
import Exposition
import Foundation
import Logging
import RemoteWrite
import Synchronization

/// The running exporter's own Prometheus remote write (`remote_write:`, docs/fleet.md).
///
/// A producer thread renders the registry every `interval` (the same render a scrape gets, so the receiver stores
/// the series a scrape would), parses it into samples stamped with the render's time, adds the external labels,
/// and queues the encoded requests; a sender thread posts them in order, retrying a request that met a network
/// error, a 5xx or a 429 with a backoff doubling from `min_backoff` to `max_backoff`, dropping one a 4xx refused.
/// Bound: `max_pending_requests` requests, and a render's own requests whatever their number; a render that finds the
/// queue full drops the oldest requests of earlier renders, never its own (a render of more requests than the bound,
/// 50,000 series and up at the defaults, dropped its own first requests, with the family metadata, every interval
/// while the receiver was healthy). A 429's or 5xx's `Retry-After` (seconds, at most 300) is waited for when longer
/// than the backoff, as Prometheus does. A series that the last render had and this one has not is sent a staleness
/// marker (the spec's MUST: without one a receiver kept its last sample for 5 minutes, so fleet sums counted a removed
/// model or a replaced pod twice); at ``stop(within:)`` what is queued is sent (one attempt each), then every series of
/// the last render is marked stale, in one attempt bounded by the timeout and the shutdown's deadline; the last
/// render's series are held for that (one render's samples).
/// Every sample that is not delivered is counted in
/// `mlops_remote_write_samples_dropped_total{reason}`. Neither thread holds anything that
/// ingestion or scrapes need: a receiver that hangs costs one thread waiting up to `timeout` per attempt.
final class RemoteWriter: Sendable {
    /// What one send did.
    enum Outcome: Sendable, Equatable {
        case delivered
        /// Retry later (network error, 5xx, 429); the reason label, the receiver's `Retry-After` in seconds, and what
        /// happened (the network error, or the status and the receiver's answer) for the log.
        case retry(String, retryAfter: Double? = nil, detail: String = "")
        /// Never retry (4xx); the reason label and the receiver's answer.
        case rejected(String, String)
    }

    /// Sends one encoded body; blocking, bounded by the configuration's timeout.
    typealias Transport = @Sendable ([UInt8]) -> Outcome

    struct Pending: Sendable {
        let body: [UInt8]
        let samples: Int
        /// The render it came from (the producer drops only earlier renders' requests).
        var render: UInt64 = 0
    }

    /// Renders queued so far (the producer's sequence number).
    let renders = Atomic<UInt64>(0)

    let configuration: RemoteWriteConfiguration
    let registry: Registry
    let metrics: RemoteWriteMetrics
    let encoder: WriteRequestEncoder
    let transport: Transport
    let logger: Logger
    /// The pending requests, oldest first, and whether the first is being sent (the producer then never drops it:
    /// its samples are counted once, as sent or dropped, by the sender).
    let queue = Mutex<(pending: [Pending], headInFlight: Bool, closed: Bool)>(([], false, false))
    /// At stop: when ``stop(within:)`` stops waiting for the threads (the sender sends what is queued until then).
    let stopWaitEnds = Mutex<ContinuousClock.Instant?>(nil)
    let wake = DispatchSemaphore(value: 0)
    let stopping = Atomic<Bool>(false)
    let started = Atomic<Bool>(false)
    /// The render thread has ended: its last render is queued (the sender's drain at stop waits for it).
    let producerDone = Atomic<Bool>(false)
    let threadsDone = DispatchGroup()
    /// The series of the last render queued: those the next render lacks, and all of them at stop, are marked stale.
    let lastSeries = Mutex<[ExpositionSample]>([])
    /// Whether the last render found the queue full (its drops are logged once per streak).
    let queueWasFull = Atomic<Bool>(false)

    init(
        configuration: RemoteWriteConfiguration, registry: Registry, instanceID: String, logger: Logger,
        transport: Transport? = nil
    ) throws {
        self.configuration = configuration
        self.registry = registry
        self.logger = logger
        // The request being sent stays until its attempt ends: with `max_pending_requests: 1`, it and the newest
        // render's request are held.
        metrics = try RemoteWriteMetrics(registry: registry, maxPending: max(2, configuration.maxPendingRequests))
        var labels = configuration.externalLabels
        if labels["job"] == nil { labels["job"] = "mlops-exporter" }
        if labels["instance"] == nil { labels["instance"] = instanceID }
        encoder = WriteRequestEncoder(externalLabels: labels)
        self.transport = transport ?? RemoteWriteHTTP(configuration: configuration).send
    }

    /// Starts both threads (once).
    func start() {
        guard !started.exchange(true, ordering: .relaxed) else { return }
        threadsDone.enter()
        threadsDone.enter()
        Thread.detachNewThread { [self] in
            produce()
            producerDone.store(true, ordering: .releasing)
            wake.signal()
            threadsDone.leave()
        }
        Thread.detachNewThread { [self] in
            sendLoop()
            threadsDone.leave()
        }
    }

    /// Stops both threads: a send under way is waited for up to the timeout, and no longer than `within` (the
    /// shutdown's deadline: a hung receiver held the exit, and the last checkpoint, for the whole timeout, up to
    /// 300 s); what is still pending is dropped (`reason="shutdown"`).
    func stop(within: Duration = .seconds(3600)) {
        guard started.load(ordering: .relaxed), !stopping.exchange(true, ordering: .relaxed) else { return }
        let began = ContinuousClock.now
        let wait = min(configuration.timeout + .seconds(2), max(.zero, within))
        stopWaitEnds.withLock { $0 = began + wait }
        wake.signal()
        _ = threadsDone.wait(timeout: .now() + wait.seconds)
        let left = queue.withLock { q in
            defer {
                q.pending.removeAll()
                q.closed = true  // a send still under way is not counted sent as well
            }
            return q.pending.reduce(0) { $0 + $1.samples }
        }
        if left > 0 {
            metrics.dropped("shutdown", left)
            // Counted just before exit, where no scrape or write can carry the count: said in the log too.
            logger.warning("remote write: samples not sent at shutdown, dropped", metadata: ["samples": "\(left)"])
        }
        markEverySeriesStale(within: within - (ContinuousClock.now - began))
        metrics.pending.set(0)
    }

    /// Sends a staleness marker for every series of the last render, the exporter's last word to the receiver: one
    /// attempt (no retries), waited for up to `within` (what is left of the shutdown's deadline) and the timeout.
    /// Markers not delivered are counted dropped (`reason="shutdown"`).
    private func markEverySeriesStale(within: Duration) {
        let last = lastSeries.withLock { series in
            defer { series = [] }
            return series
        }
        guard !last.isEmpty else { return }
        let markers = StaleMarkers.all(last)
        metrics.staleMarkers.inc(by: Double(markers.count))
        let timestamp = Int64((WallClock.now() * 1000).rounded())
        guard within > .zero, let bodies = try? encoder.encode(markers, timestamp: timestamp) else {
            metrics.dropped("shutdown", markers.count)
            // Said in the log: counted just before exit, where nothing carries the count (before, silent).
            logger.warning(
                "remote write: staleness markers not sent at shutdown (no time left of --shutdown-timeout)",
                metadata: ["series": "\(markers.count)"])
            return
        }
        let per = encoder.maxSamplesPerRequest
        let progress = ShutdownSend()
        Thread.detachNewThread { [transport] in
            for (i, body) in bodies.enumerated() {
                guard transport(body) == .delivered else { break }
                progress.delivered.add(min(per, markers.count - i * per), ordering: .relaxed)
            }
            progress.done.signal()
        }
        _ = progress.done.wait(timeout: .now() + min(within.seconds, configuration.timeout.seconds + 1))
        let delivered = progress.delivered.load(ordering: .relaxed)
        metrics.sent.inc(by: Double(delivered))
        if delivered < markers.count {
            metrics.dropped("shutdown", markers.count - delivered)
            logger.warning(
                "remote write: staleness markers not delivered at shutdown",
                metadata: ["series": "\(markers.count - delivered)"])
        }
    }

    /// What the shutdown's marker send did, shared with the thread that sends.
    private final class ShutdownSend: Sendable {
        let delivered = Atomic<Int>(0)
        let done = DispatchSemaphore(value: 0)
    }

    /// Waits `seconds`, or less when stopping; false when stopping. Timed on the monotonic clock: a wall clock
    /// stepped back (an NTP step) stalled sending for as long as the step.
    private func pause(_ seconds: Double) -> Bool {
        let deadline = ContinuousClock.now + .seconds(max(0, seconds))
        while !stopping.load(ordering: .relaxed) {
            let left = (deadline - ContinuousClock.now).seconds
            if left <= 0 { return true }
            Thread.sleep(forTimeInterval: min(left, 0.05))
        }
        return false
    }

    private func produce() {
        while !stopping.load(ordering: .relaxed) {
            let began = ContinuousClock.now
            collectOnce()
            guard pause(configuration.interval.seconds - (ContinuousClock.now - began).seconds) else { return }
        }
    }

    /// Renders, encodes and queues the registry's samples now.
    func collectOnce() {
        let timestamp = Int64((WallClock.now() * 1000).rounded())
        let text = registry.render(format: .text, timeout: min(configuration.interval, .seconds(10)))
        let parsed = ExpositionText.parse(text)
        var samples = parsed.samples
        let metadata = parsed.metadata
        let gone = lastSeries.withLock { last in
            defer { last = samples }
            return StaleMarkers.gone(from: last, in: samples)
        }
        if !gone.isEmpty {
            metrics.staleMarkers.inc(by: Double(gone.count))
            samples += gone
        }
        let bodies: [[UInt8]]
        do {
            bodies = try encoder.encode(samples, metadata: metadata, timestamp: timestamp)
        } catch {
            metrics.dropped("encode", samples.count)
            logger.error("remote write: a request could not be encoded", metadata: ["error": "\(error)"])
            return
        }
        let per = encoder.maxSamplesPerRequest
        let render = renders.add(1, ordering: .relaxed).newValue
        let entries = bodies.enumerated().map { i, body in
            Pending(body: body, samples: min(per, samples.count - i * per), render: render)
        }
        let dropped = queue.withLock { q -> Int? in
            guard !q.closed else { return nil }
            q.pending += entries
            var evicted = 0
            let oldest = q.headInFlight ? 1 : 0
            // Earlier renders' requests go first, oldest first; this render's are all kept.
            while q.pending.count > max(configuration.maxPendingRequests, oldest + 1), oldest < q.pending.count,
                q.pending[oldest].render != render
            {
                evicted += q.pending.remove(at: oldest).samples
            }
            metrics.pending.set(Double(q.pending.count))
            metrics.renderQueued(requests: entries.count)
            return evicted
        }
        // A render that ended after the stop had counted what was queued: dropped at shutdown too.
        guard let droppedSamples = dropped else { return metrics.dropped("shutdown", samples.count) }
        if droppedSamples > 0 {
            metrics.dropped("queue_full", droppedSamples)
            // Said once per streak of full renders, not every interval (the counter has every one).
            if !queueWasFull.exchange(true, ordering: .relaxed) {
                logger.warning(
                    "remote write: the queue is full, the oldest requests are dropped until the receiver keeps up",
                    metadata: [
                        "samples": "\(droppedSamples)", "max_pending_requests": "\(configuration.maxPendingRequests)",
                    ])
            }
        } else {
            queueWasFull.store(false, ordering: .relaxed)
        }
        wake.signal()
    }

    private func sendLoop() {
        var backoff = configuration.minBackoff.seconds
        var failuresInARow = 0  // logged at the first failure of a streak and when it ends, not at each retry
        var rejectionsInARow = 0  // the same for requests the receiver refused
        defer { drain() }
        while !stopping.load(ordering: .relaxed) {
            let head = queue.withLock { q -> Pending? in
                q.headInFlight = !q.pending.isEmpty
                return q.pending.first
            }
            guard let next = head else {
                _ = wake.wait(timeout: .now() + 0.5)
                continue
            }
            let outcome = transport(next.body)
            switch outcome {
            case .delivered:
                // Said after failed sends only: a receiver refusing some requests (out-of-order samples) and taking
                // the others would log this line at each turn.
                if failuresInARow > 0 {
                    logger.info("remote write: delivering again", metadata: ["failed_sends": "\(failuresInARow)"])
                    failuresInARow = 0
                }
                rejectionsInARow = 0
                delivered(next)
                backoff = configuration.minBackoff.seconds
            case .rejected(let reason, let answer):
                metrics.failed(reason)
                if removeHead() { metrics.dropped("rejected", next.samples) }
                // Once per streak too: a receiver that refuses every request (a revoked tenant token) logged each one,
                // for as long as it refused (the counters have every one).
                rejectionsInARow += 1
                if rejectionsInARow == 1 {
                    logger.warning(
                        "remote write: the receiver refused a request (not retried; said again after a send succeeds)",
                        metadata: ["reason": "\(reason)", "answer": "\(answer.prefix(200))"])
                }
            case .retry(let reason, let retryAfter, let detail):
                metrics.failed(reason)
                failuresInARow += 1
                if failuresInARow == 1 {
                    // The detail says which network error (a refused connection, a timeout, a redirect loop, a head
                    // too large): the reason alone said `network` for all of them.
                    logger.warning(
                        "remote write: a send failed, retrying with backoff",
                        metadata: ["reason": "\(reason)", "detail": "\(detail)"])
                }
                // While it waits, the head may be dropped for room like any other pending request.
                queue.withLock { $0.headInFlight = false }
                // The receiver's Retry-After, when longer (it was ignored: a 429 saying 30 s got ten retries).
                guard pause(max(backoff, min(retryAfter ?? 0, Self.maxRetryAfter))) else { return }
                backoff = min(backoff * 2, configuration.maxBackoff.seconds)
            }
        }
    }

    /// The longest `Retry-After` waited for, in seconds.
    static let maxRetryAfter = 300.0

    /// Removes the head of the queue, the request just sent (the producer never drops a head in flight); false when
    /// ``stop(within:)`` already took (and counted dropped) everything queued.
    @discardableResult
    private func removeHead() -> Bool {
        queue.withLock { q in
            guard !q.closed else { return false }
            if !q.pending.isEmpty { q.pending.removeFirst() }
            q.headInFlight = false
            metrics.pending.set(Double(q.pending.count))
            return true
        }
    }

    /// `request`, the head, was delivered.
    private func delivered(_ request: Pending) {
        guard removeHead() else { return }
        metrics.sent.inc(by: Double(request.samples))
        metrics.requests.inc()
        metrics.lastSuccess.set(WallClock.now())
    }

    /// At stop, what is queued (the last renders) is sent, one attempt each, oldest first, while ``stop(within:)``
    /// still waits (before, it was all dropped, counted `shutdown`, though the receiver was up: a render queued just
    /// before SIGTERM never arrived). The first failure ends it; what is left when the stop stops waiting is counted
    /// there (an attempt still under way then and delivered later is not counted sent as well: the queue is closed).
    private func drain() {
        guard let ends = stopWaitEnds.withLock({ $0 }) else { return }
        // A render under way when the stop came is queued first (the drain found the queue empty, ended, and the
        // render queued just after was dropped at shutdown with a healthy receiver).
        while !producerDone.load(ordering: .acquiring) && ContinuousClock.now < ends {
            _ = wake.wait(timeout: .now() + 0.05)
        }
        while ContinuousClock.now < ends {
            let head = queue.withLock { q -> Pending? in
                guard !q.closed else { return nil }
                q.headInFlight = !q.pending.isEmpty
                return q.pending.first
            }
            guard let next = head else { return }
            guard transport(next.body) == .delivered else {
                queue.withLock { $0.headInFlight = false }
                return
            }
            delivered(next)
        }
    }
}
