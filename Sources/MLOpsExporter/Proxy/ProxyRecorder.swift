import Capture
import Compression
import ExporterConfig
import HTTPServer
import Ingestion
import Logging
import ModelMonitoring
import Synchronization

/// What the exporter does with proxied traffic (``ReverseProxyObserver``): attributes each request to a model and
/// version by the routes, and when the exchange ends records its latency and status in the model's `service`
/// series, and (for a sampled, successful exchange of a model with `capture:`) decodes the request and response
/// bodies into prediction events recorded with the ingestion API's rules. Bodies up to ``inlineLimit`` are decoded
/// on the event loop; bigger ones, and compressed ones (``CapturedBodyCoding``: inflated there first), on the
/// ingestion workers (none free: counted as not captured, the request still counts). A capture that fails never
/// changes what the client got: it is counted (`mlops_proxy_capture_failures_total`), and the request counts as a
/// request without a prediction.
final class ProxyRecorder: ReverseProxyObserver {
    /// Per request: its model's entry (nil: unrouted), its version, whether its bodies are decoded. A request that
    /// names no version takes one its routing made in advance (``ProxyRouting/contexts``): no allocation per
    /// request. It holds no reference to the routing (which holds those), so that nothing forms a cycle.
    final class Context: Sendable {
        let entry: ProxyRouting.Entry?
        let counters: ProxyModelCounters
        let version: String?
        let capture: Bool
        /// A `model_pointer` route's: the model is the request body's, found when the exchange ends (``entry`` is
        /// nil until then).
        let bodyModel: BodyName?
        /// A `version_pointer` route's: the version is the request body's, found when the exchange ends.
        let bodyVersion: BodyName?
        /// Whether either is set (tested per exchange without copying them out).
        let byBody: Bool

        init(
            entry: ProxyRouting.Entry?, counters: ProxyModelCounters, version: String?, capture: Bool,
            bodyModel: BodyName? = nil, bodyVersion: BodyName? = nil
        ) {
            self.entry = entry
            self.counters = counters
            self.version = version
            self.capture = capture
            self.bodyModel = bodyModel
            self.bodyVersion = bodyVersion
            byBody = bodyModel != nil || bodyVersion != nil
        }
    }

    static let inlineLimit = 256 * 1024

    let monitor: ModelMonitor
    let metrics: ProxyMetrics
    let workers: WorkerPool
    let logger: Logger
    let routing: PublishedReference<ProxyRouting>
    /// Serialises rebuilds, and holds the settings the routing must have: the latest given to
    /// ``update(settings:)``. A rebuild for new models takes these, never those of the snapshot it read before the
    /// lock (that reverted a reload's routes when an event loop rebuilt for the reload's models just after the
    /// reload had published its settings, until the next reload).
    private let desired: Mutex<ProxyConfiguration>

    init(
        settings: ProxyConfiguration, monitor: ModelMonitor, metrics: ProxyMetrics, workers: WorkerPool,
        logger: Logger
    ) {
        self.monitor = monitor
        self.metrics = metrics
        self.workers = workers
        self.logger = logger
        desired = Mutex(settings)
        routing = PublishedReference(
            ProxyRouting(
                generation: monitor.generation.load(ordering: .acquiring), settings: settings, monitor: monitor,
                metrics: metrics, logMistake: { logger.error("\($0)") }))
    }

    /// The routing for the current models (rebuilt when they changed: a reload or a restore).
    func currentRouting() -> ProxyRouting {
        let current = routing.value
        let generation = monitor.generation.load(ordering: .acquiring)
        guard current.generation != generation else { return current }
        return rebuild(settings: nil)
    }

    /// Rebuilds the routing for `settings` (from now on) and the current models.
    @discardableResult
    func update(settings: ProxyConfiguration) -> ProxyRouting { rebuild(settings: settings) }

    /// Rebuilds the routing for the current models and the desired settings (`settings`, when given, become them),
    /// unless it is already that.
    private func rebuild(settings: ProxyConfiguration?) -> ProxyRouting {
        desired.withLock { desired in
            if let settings { desired = settings }
            let generation = monitor.generation.load(ordering: .acquiring)
            let current = routing.value
            if current.generation == generation && current.settings == desired { return current }
            let fresh = ProxyRouting(
                generation: generation, settings: desired, monitor: monitor, metrics: metrics,
                logMistake: { [logger] in logger.error("\($0)") })
            routing.publish(fresh)
            metrics.retain(Set(fresh.entries.lazy.compactMap { $0?.model.name }))
            return fresh
        }
    }

    /// Counted with the client requests the proxy's server refused (`mlops_proxy_client_connection_errors_total`).
    func proxyRequestRefused(reason: String) { metrics.connectionError(reason: reason) }

    func proxyInterimResponseDropped(reason: String) { metrics.interimResponseDropped() }

    func proxyRequestStarted(_ request: HTTPRequest, requestID: String) -> ProxyTap {
        let routing = currentRouting()
        let attribution = routing.attribute(method: request.method, path: request.path) { request.headers[$0] }
        let entry: ProxyRouting.Entry
        let version: String?
        if case .body(let route, let named) = attribution, let finder = routing.bodyModels[route] {
            // A `model_pointer` route: both bodies are copied (up to `capture.max_body_bytes`) and the exchange is
            // attributed when it ends, by its request body.
            return ProxyTap(
                captureLimit: routing.settings.capture.maxBodyBytes,
                context: Context(
                    entry: nil, counters: routing.unrouted, version: named, capture: false, bodyModel: finder,
                    bodyVersion: routing.bodyVersions[route]))
        }
        switch consume attribution {
        case .body where routing.llmNames.isEmpty && routing.llmCatchAll == nil, .unrouted:
            // No model can be named by a body (none has an `llm` section): unrouted, and nothing watches the bytes.
            routing.unrouted.requests.add(0)
            return ProxyTap(context: routing.unroutedContext)
        case .body(_, let named):
            // Counted when the body names the model.
            return ProxyTap(
                watcher: LLMWatcher(
                    routing: routing, entry: nil, version: named, path: request.path,
                    requestCoding: CapturedBodyCoding(request.headers)))
        case .model(let found, let named, let route):
            found.counters.requests.add(0)
            if route < routing.openAIRoutes.count && routing.openAIRoutes[route] {
                return ProxyTap(
                    watcher: LLMWatcher(
                        routing: routing, entry: found, version: named, path: request.path,
                        requestCoding: CapturedBodyCoding(request.headers)))
            }
            if let finder = routing.bodyVersions[route] {
                // A `version_pointer` route: the request body is copied whether or not it is decoded.
                let limits = routing.settings.capture
                let capture = found.decoderProtocol != nil && found.counters.sampled(rate: limits.sampleRate)
                return ProxyTap(
                    captureLimit: limits.maxBodyBytes,
                    context: Context(
                        entry: found, counters: found.counters, version: nil, capture: capture, bodyVersion: finder))
            }
            entry = found
            version = named
        }
        let limits = routing.settings.capture
        let capture = entry.decoderProtocol != nil && entry.counters.sampled(rate: limits.sampleRate)
        let context: Context
        if version == nil, routing.contexts[entry.index] != nil {
            // The one context read in place (binding the pair copied both: a retain and a release more).
            context = capture ? routing.contexts[entry.index]!.capturing : routing.contexts[entry.index]!.plain
        } else {
            context = Context(entry: entry, counters: entry.counters, version: version, capture: capture)
        }
        return ProxyTap(captureLimit: capture ? limits.maxBodyBytes : 0, context: context)
    }

    func proxyExchangeEnded(_ exchange: inout ProxyExchangeRecord) {
        if let watcher = exchange.tap.watcher as? LLMWatcher {
            watcher.ended(exchange)
            return
        }
        guard let context = exchange.tap.context as? Context else { return }
        if context.byBody { return attributeByBody(&exchange, context) }
        record(&exchange, context: context, onWorker: false)
    }

    /// A `model_pointer` or `version_pointer` route's exchange: its model (unless the route named it) and its version
    /// are those its request body names (read on a worker when the body is over ``inlineLimit``). A body that names
    /// no configured model (or is not JSON, or was over `capture.max_body_bytes`) counts as unrouted; one that names
    /// no version leaves it to the response, as for a route without one.
    private func attributeByBody(_ exchange: inout ProxyExchangeRecord, _ started: Context) {
        let routing = currentRouting()
        let rate = routing.settings.capture.sampleRate
        let (modelFinder, versionFinder) = (started.bodyModel, started.bodyVersion)
        @Sendable func context(_ body: UnsafeRawBufferPointer?) -> Context {
            let version = body.flatMap { body in versionFinder?.name(in: body) } ?? started.version
            if let entry = started.entry {
                return Context(entry: entry, counters: entry.counters, version: version, capture: started.capture)
            }
            guard let name = body.flatMap({ body in modelFinder?.name(in: body) }),
                let entry = routing.entry(named: name)
            else { return routing.unroutedContext }
            let capture = entry.decoderProtocol != nil && entry.counters.sampled(rate: rate)
            return Context(entry: entry, counters: entry.counters, version: version, capture: capture)
        }
        // A request counted when it started (its route named the model) is not counted again.
        let counted = started.entry != nil
        guard let body = exchange.requestBody, !exchange.requestBodyOverLimit else {
            return record(&exchange, context: context(nil), onWorker: false, counted: counted)
        }
        guard body.count > Self.inlineLimit else {
            let found = body.withUnsafeBytes { context($0) }
            return record(&exchange, context: found, onWorker: false, counted: counted)
        }
        // No worker free: the body is not read. A route that named the model still records the request (its
        // latency and status) under the version it named; otherwise it counts as unrouted.
        let unread: Context =
            started.entry.map { Context(entry: $0, counters: $0.counters, version: started.version, capture: false) }
            ?? routing.unroutedContext
        let copy = exchange
        let submission = workers.submit(
            run: { [self] in
                var exchange = copy
                let found = body.withUnsafeBytes { context($0) }
                record(&exchange, context: found, onWorker: true, counted: counted)
            },
            expired: { [self] in
                var exchange = copy
                unread.counters.captureFailures.add(ProxyModelCounters.overloaded)
                record(&exchange, context: unread, onWorker: true, counted: counted)
            })
        if submission != .accepted {
            unread.counters.captureFailures.add(ProxyModelCounters.overloaded)
            record(&exchange, context: unread, onWorker: false, counted: counted)
        }
    }

    /// Records an ended exchange for `context`'s model: its upstream failure or cancellation, its latency and status,
    /// and (sampled, 2xx) its decoded rows. `counted`: the request was counted for the model when it started (a
    /// body-attributed one is counted here).
    @inline(__always)
    private func record(
        _ exchange: inout ProxyExchangeRecord, context: Context, onWorker: Bool, counted: Bool = true
    ) {
        let counters = context.counters
        if !counted { counters.requests.add(0) }
        if let failure = exchange.failure { counters.upstreamError(failure) }
        if let status = exchange.status { counters.response(status: status) }
        if exchange.cancelled {
            // A body the client could not complete is the server's to count (by reason), not a client that left.
            if !exchange.requestBodyFailed { counters.cancelled.add(0) }
            return
        }
        guard let entry = context.entry, let status = exchange.status else { return }
        // An upstream that failed after its head (reset, timed out or broke its framing mid-body) left the client an
        // incomplete response: an error whatever its status, and its bodies are not decoded.
        let isError = exchange.failure != nil || entry.isErrorStatus(status)
        let now = WallClock.now()
        let version = context.version ?? entry.impliedVersion
        if context.capture && !isError && (200..<300).contains(status) {
            if exchange.requestBodyOverLimit || exchange.responseBodyOverLimit {
                counters.captureFailures.add(ProxyModelCounters.tooLarge)
            } else if exchange.requestBodyCut {
                counters.captureFailures.add(ProxyModelCounters.incompleteBody)
            } else if let request = exchange.requestBody, let response = exchange.responseBody,
                entry.decoderProtocol != nil
            {
                if onWorker
                    || BinaryTensorBody.decodingCost(request: request, response: response, limit: Self.inlineLimit)
                        <= Self.inlineLimit
                {
                    decodeAndRecord(
                        exchange, request: request, response: response, entry: entry, version: version, now: now,
                        onWorker: onWorker)
                    return
                }
                // The worker's own record (a retain per field; the bodies' bytes are shared, not copied).
                let exchange = exchange
                let submission = workers.submit(
                    run: { [self] in
                        decodeAndRecord(
                            exchange, request: request, response: response, entry: entry, version: version, now: now,
                            onWorker: true)
                    },
                    expired: {
                        entry.counters.captureFailures.add(ProxyModelCounters.overloaded)
                        Self.recordUndecoded(exchange, entry: entry, version: version, now: now)
                    })
                if submission == .accepted { return }
                counters.captureFailures.add(ProxyModelCounters.overloaded)
            }
        }
        entry.model.recordRequest(
            version: version ?? "default", status: isError ? .error : .ok,
            errorKind: isError ? (exchange.failure?.rawValue ?? "http_\(status)") : nil,
            latencySeconds: exchange.durationSeconds, receivedAt: now)
    }

    /// A served exchange whose rows are not recorded (not decoded, or no rows): the request alone, status ok.
    static func recordUndecoded(
        _ exchange: ProxyExchangeRecord, entry: ProxyRouting.Entry, version: String?, now: Double
    ) {
        entry.model.recordRequest(
            version: version ?? "default", status: .ok, latencySeconds: exchange.durationSeconds, receivedAt: now)
    }

    /// Decodes an exchange's bodies and records each row; on failure counts it and records the request alone. A body
    /// that is not JSON because it is compressed (``CapturedBodyCoding``: its `Content-Encoding` is read only then, so
    /// that an exchange of plain JSON never pays for it) is inflated on a worker (`onWorker`: this is one) and decoded
    /// again; `inflated`: that was done.
    func decodeAndRecord(
        _ exchange: ProxyExchangeRecord, request: [UInt8], response: [UInt8], entry: ProxyRouting.Entry,
        version: String?, now: Double, onWorker: Bool, inflated: Bool = false
    ) {
        guard
            let failure = Self.decode(
                exchange, request: request, response: response, entry: entry, version: version, now: now)
        else { return }
        if failure == .invalidJSON && !inflated {
            let codings = (
                request: CapturedBodyCoding(exchange.request.headers),
                response: CapturedBodyCoding(exchange.responseHeaders)
            )
            if codings.request != .identity || codings.response != .identity {
                return inflateAndRecord(
                    exchange, request: request, response: response, codings: codings, entry: entry, version: version,
                    now: now, onWorker: onWorker)
            }
        }
        entry.counters.captureFailure(failure)
        Self.recordUndecoded(exchange, entry: entry, version: version, now: now)
    }

    /// Inflates the compressed bodies of an exchange (to at most `capture.max_body_bytes`) on a worker, then decodes
    /// them; a coding that cannot be undone, a body that does not inflate or inflates too far, or no worker free, is
    /// counted and the request recorded alone.
    private func inflateAndRecord(
        _ exchange: ProxyExchangeRecord, request: [UInt8], response: [UInt8],
        codings: (request: CapturedBodyCoding, response: CapturedBodyCoding), entry: ProxyRouting.Entry,
        version: String?, now: Double, onWorker: Bool
    ) {
        guard codings.request != .unsupported && codings.response != .unsupported else {
            entry.counters.captureFailures.add(ProxyModelCounters.unsupportedEncoding)
            return Self.recordUndecoded(exchange, entry: entry, version: version, now: now)
        }
        let limit = routing.value.settings.capture.maxBodyBytes
        let inflate: @Sendable () -> Void = { [self] in
            let bodies: (request: [UInt8], response: [UInt8])
            do throws(GzipError) {
                bodies = (
                    try codings.request.undo(request, limit: limit), try codings.response.undo(response, limit: limit)
                )
            } catch {
                entry.counters.captureFailures.add(ProxyModelCounters.reason(error))
                return Self.recordUndecoded(exchange, entry: entry, version: version, now: now)
            }
            decodeAndRecord(
                exchange, request: bodies.request, response: bodies.response, entry: entry, version: version, now: now,
                onWorker: true, inflated: true)
        }
        if onWorker { return inflate() }
        let submission = workers.submit(
            run: inflate,
            expired: {
                entry.counters.captureFailures.add(ProxyModelCounters.overloaded)
                Self.recordUndecoded(exchange, entry: entry, version: version, now: now)
            })
        if submission != .accepted {
            entry.counters.captureFailures.add(ProxyModelCounters.overloaded)
            Self.recordUndecoded(exchange, entry: entry, version: version, now: now)
        }
    }

    /// Decodes an exchange's bodies with its model's decoder and records each row, counting it captured; the
    /// failure, with nothing recorded, when the decoder refuses it.
    private static func decode(
        _ exchange: ProxyExchangeRecord, request: [UInt8], response: [UInt8], entry: ProxyRouting.Entry,
        version: String?, now: Double
    ) -> CaptureFailure? {
        let model = entry.model
        let id = exchange.requestID
        // Rows are recorded as they are decoded (the decoder delivers nothing of an exchange it refuses), knowing the
        // row count: one row takes the request id itself, several get a row suffix.
        var rows = 0
        func record(_ event: inout PredictionEvent, row: Int, only: Bool) {
            if event.id == nil { event.id = only ? id : "\(id)/\(row)" }
            if let version { event.version = version } else if event.version.isEmpty { event.version = "default" }
            // The request's latency is observed once, with its first row.
            event.latencySeconds = row == 0 ? exchange.durationSeconds : nil
            model.record(&event, receivedAt: now)
        }
        // Only a custom mapping reads headers (the decoder takes their names in lower case).
        let headers =
            entry.decoderProtocol == .custom
            ? exchange.request.headers.map { (name: $0.name.lowercased(), value: $0.value) } : []
        let failure: CaptureError? = request.withUnsafeBytes { request in
            response.withUnsafeBytes { response in
                do throws(CaptureError) {
                    // The decoder is read in place from the entry (`let`): a copy of it costs a retain and a release
                    // of each of its references.
                    rows = try entry.decoder!.decode(request: request, response: response, headers: headers) {
                        event, row, count in
                        record(&event, row: row, only: count == 1)
                    }
                    return nil
                } catch {
                    return error
                }
            }
        }
        if let failure { return failure.reason }
        entry.counters.captured.add(0)
        if rows == 0 { recordUndecoded(exchange, entry: entry, version: version, now: now) }
        return nil
    }
}
