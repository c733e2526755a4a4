import Capture
import Compression
import HTTPServer
import ModelMonitoring

/// One request on an OpenAI route, watched as it passes (issue 17, docs/llm.md): an ``LLMExchangeMeter`` fed the
/// bytes, the model and version resolved when the request body is complete (from the route, or the body's `model`),
/// time to first token and the gaps between tokens recorded as they arrive, the rest when the exchange ends.
///
/// A body sent with `Content-Encoding: gzip`, `x-gzip` or `deflate` is inflated as it passes, for the meter only
/// (the client and the upstream get the bytes as they were sent): a request body to at most
/// `capture.max_body_bytes` (the client's, so the CPU it can make the event loop spend on one request is that of
/// inflating 1 MiB by default), a response body to ``inflationFactor`` times that (the upstream's: an event stream
/// may be long); beyond: `too_large`. A body that does not inflate is `invalid_encoding`, any other coding
/// `unsupported_encoding` (`mlops_proxy_capture_failures_total`; the exchange still counts for everything else). A
/// non-streamed response longer than `capture.max_body_bytes` (inflated) is `too_large`: its usage is unknown.
///
/// Confined to the exchange's event loop (``ProxyExchangeWatcher``'s contract): `@unchecked Sendable` only so that
/// the tap that carries it may cross the observer protocol.
final class LLMWatcher: ProxyExchangeWatcher, @unchecked Sendable {
    let routing: ProxyRouting
    /// The route names the model (nil: the body does).
    private(set) var entry: ProxyRouting.Entry?
    /// The version the route or the adapter names.
    private var version: String?
    private let modelFromBody: Bool
    private(set) var meter: LLMExchangeMeter
    private var collector: LLMCollector?
    private var versionIndex = 0
    private var inFlight = false
    /// The model was resolved (attributed, or found unrouted) when the request ended.
    private var resolved = false
    /// The request body's content coding, undone as it passes (nil: none, or the body is not read).
    private var requestInflater: InflateStream?
    /// The response body's, likewise (made when its first piece is read).
    private var responseInflater: InflateStream?
    /// The coding of a successful response, until its first piece is read.
    private var responseCoding: CapturedBodyCoding?
    /// The request body is not read (its coding cannot be undone, or undoing it failed).
    private var requestUnread = false
    /// The response body is not read (likewise, or it is over the limit).
    private var responseUnread = false
    /// Why a body went unread (capture-failure reasons, ``ProxyModelCounters`` indices), counted at the end.
    private var failures: Set<Int> = []

    /// A compressed response is inflated to at most this many times `capture.max_body_bytes`: room for an event
    /// stream much longer than what a non-streamed response may be (64 MiB at the default 1 MiB), and a bound on
    /// the CPU a decompression bomb costs.
    static let inflationFactor = 64

    init(
        routing: ProxyRouting, entry: ProxyRouting.Entry?, version: String?, path: String,
        requestCoding: CapturedBodyCoding = .identity
    ) {
        self.routing = routing
        self.entry = entry
        self.version = version
        modelFromBody = entry == nil
        meter = LLMExchangeMeter(
            endpoint: LLMExchangeMeter.Endpoint(path: path), maxResponseBytes: routing.settings.capture.maxBodyBytes)
        requestInflater = startInflating(requestCoding, factor: 1, unread: &requestUnread)
    }

    /// An inflater for a body in `coding` (nil for identity), producing at most `factor` x `capture.max_body_bytes`;
    /// `unread` set when the body cannot be read.
    private func startInflating(_ coding: CapturedBodyCoding, factor: Int, unread: inout Bool) -> InflateStream? {
        switch coding {
        case .identity:
            return nil
        case .unsupported:
            unread = true
            failures.insert(ProxyModelCounters.unsupportedEncoding)
            return nil
        case .inflate:
            let limit = routing.settings.capture.maxBodyBytes.multipliedReportingOverflow(by: factor)
            guard let inflater = try? InflateStream(maxOutput: limit.overflow ? Int.max : limit.partialValue) else {
                unread = true
                failures.insert(ProxyModelCounters.invalidEncoding)
                return nil
            }
            return inflater
        }
    }

    /// A body stops being read because undoing its coding failed.
    private func inflationFailed(_ error: GzipError, unread: inout Bool) {
        unread = true
        if case .outputLimitExceeded = error {
            failures.insert(ProxyModelCounters.tooLarge)
        } else {
            failures.insert(ProxyModelCounters.invalidEncoding)
        }
    }

    /// The version recorded: an adapter's or the route's, else the model's only one, else `default`.
    var recordedVersion: String { version ?? entry?.impliedVersion ?? "default" }

    func requestBody(_ bytes: UnsafeRawBufferPointer) {
        guard !requestUnread else { return }
        guard let inflater = requestInflater else { return meter.requestBody(bytes) }
        do throws(GzipError) {
            try inflater.feed(bytes) { meter.requestBody($0) }
        } catch {
            inflationFailed(error, unread: &requestUnread)
        }
    }

    func requestEnded(elapsed: Double) {
        if let inflater = requestInflater, !requestUnread, inflater.fed > 0, !inflater.atEnd {
            inflationFailed(.truncatedInput, unread: &requestUnread)
        }
        meter.requestEnded(elapsed: elapsed)
        resolve()
    }

    /// Attributes the request (once): the body's model for a body route; counts it for its model (or unrouted) and
    /// puts it in flight.
    private func resolve() {
        guard !resolved else { return }
        resolved = true
        if modelFromBody {
            if let target = routing.llmTarget(meter.request.model) {
                entry = target.entry
                if let v = target.version { version = v }
            }
            if let entry { entry.counters.requests.add(0) } else { routing.unrouted.requests.add(0) }
        }
        guard let entry, let collector = entry.llm else { return }
        self.collector = collector
        versionIndex = entry.model.context.versionIndex(recordedVersion)
        collector.requestStarted(version: versionIndex)
        inFlight = true
    }

    /// With `inject_include_usage`, a chat or completions request is held (up to `capture.max_body_bytes`) so that a
    /// streamed one that does not ask for usage can be made to.
    var requestBodyHoldLimit: Int {
        guard routing.settings.injectIncludeUsage, requestInflater == nil, !requestUnread,
            meter.endpoint == .chatCompletions || meter.endpoint == .completions
        else { return 0 }
        return routing.settings.capture.maxBodyBytes
    }

    func rewriteRequestBody(_ body: [UInt8]) -> [UInt8]? { IncludeUsageInjection.rewrite(body) }

    func responseHead(status: Int, headers: HTTPHeaders, elapsed: Double) {
        meter.responseHead(status: status, contentType: headers["Content-Type"])
        // Only a successful response's body is read (and so only its coding matters).
        if (200..<300).contains(status) { responseCoding = CapturedBodyCoding(headers) }
    }

    func responseBody(_ bytes: UnsafeRawBufferPointer, elapsed: Double) {
        // A request that no `llm` collector records (unrouted, or a model without the section) is not parsed.
        guard let collector, !responseUnread else { return }
        if let coding = responseCoding {
            responseCoding = nil
            responseInflater = startInflating(coding, factor: Self.inflationFactor, unread: &responseUnread)
            if responseUnread { return }
        }
        guard let inflater = responseInflater else { return meterResponse(bytes, elapsed: elapsed, collector) }
        do throws(GzipError) {
            try inflater.feed(bytes) { meterResponse($0, elapsed: elapsed, collector) }
        } catch {
            inflationFailed(error, unread: &responseUnread)
        }
        // A non-streamed response past the limit: the rest is not worth inflating.
        if meter.responseOverLimit { responseUnread = true }
    }

    /// A piece of the response body as sent (or inflated): its tokens recorded as they arrive.
    private func meterResponse(_ bytes: UnsafeRawBufferPointer, elapsed: Double, _ collector: LLMCollector) {
        let arrival = meter.responseBody(bytes, elapsed: elapsed)
        if let ttft = arrival.timeToFirstToken { collector.firstToken(version: versionIndex, seconds: ttft) }
        if arrival.gap != nil || arrival.zeroGaps > 0 {
            collector.tokenGaps(version: versionIndex, gap: arrival.gap, zeros: arrival.zeroGaps)
        }
    }

    /// The exchange ended: records it in the model's `llm` collector and `service` series, and the proxy's counters.
    func ended(_ exchange: ProxyExchangeRecord) {
        if !resolved && !modelFromBody { resolve() }  // (a request that never completed: still counted)
        if let inflater = responseInflater, !responseUnread, inflater.fed > 0, !inflater.atEnd,
            exchange.failure == nil, !exchange.cancelled
        {
            // The whole response came and did not end its compressed stream: what was read is not trusted. (A
            // client that left, even at `[DONE]` as the SDKs do, may have left before the stream's last bytes.)
            inflationFailed(.truncatedInput, unread: &responseUnread)
        }
        if !responseUnread { meter.finish() }
        let cancelled = Self.cancelled(exchange, meter)
        if meter.responseOverLimit { failures.insert(ProxyModelCounters.tooLarge) }
        let counters = entry?.counters ?? routing.unrouted
        for reason in failures { counters.captureFailures.add(reason) }
        if let failure = exchange.failure { counters.upstreamError(failure) }
        if cancelled { counters.cancelled.add(0) }
        guard let entry else {
            if !resolved { routing.unrouted.requests.add(0) }  // left before its body was complete
            return
        }
        let record = Self.record(exchange, meter: meter)
        if let collector {
            collector.requestEnded(version: versionIndex, record, wasInFlight: inFlight)
        }
        guard !cancelled, let status = exchange.status ?? meter.status else { return }
        let isError = record.outcome == .error || routing.settings.isErrorStatus(status)
        let errorKind = isError ? (record.errorReason ?? "http_\(status)") : nil
        let lengths = entry.lengthFeatures
        guard lengths.prompt != nil || lengths.completion != nil else {
            entry.model.recordRequest(
                version: recordedVersion, status: isError ? .error : .ok, errorKind: errorKind,
                latencySeconds: exchange.durationSeconds)
            return
        }
        // The model declares the length features: the request is a prediction with its prompt and completion
        // lengths (missing when unknown), which its drift collector compares with the reference.
        var event = entry.model.makePrediction(version: recordedVersion, prediction: .label(""))
        event.id = exchange.requestID
        event.status = isError ? .error : .ok
        event.errorKind = errorKind
        event.latencySeconds = exchange.durationSeconds
        if let p = lengths.prompt, let n = record.promptTokens { event.features[p] = .number(Double(n)) }
        if let c = lengths.completion, let n = record.completionTokens { event.features[c] = .number(Double(n)) }
        entry.model.record(event)
    }

    /// Whether the client left before it had the response: a client that leaves after the stream said it was over
    /// (`[DONE]`, a Responses API end event) had all of it (the OpenAI SDKs close the connection there, before the
    /// HTTP body's last chunk arrives); one that leaves after an error event left because of it (the SDKs raise and
    /// close, sometimes before `[DONE]` arrives): the request failed with `stream_error`, it was not cancelled.
    static func cancelled(_ exchange: ProxyExchangeRecord, _ meter: LLMExchangeMeter) -> Bool {
        exchange.cancelled && !meter.streamEnded && meter.errorEvents == 0
    }

    /// What the exchange and the meter say, as the collector records it.
    static func record(
        _ exchange: ProxyExchangeRecord, meter: LLMExchangeMeter
    ) -> LLMRequestRecord {
        let outcome: LLMRequestRecord.Outcome
        var reason: String?
        let status = exchange.status ?? meter.status
        if cancelled(exchange, meter) {
            outcome = .cancelled
        } else if let failure = exchange.failure {
            outcome = .error
            reason = exchange.responseHeaders == nil ? failure.rawValue : "stream_interrupted"
        } else if let status, status >= 400 {
            outcome = .error
            reason = "http_\(status)"
        } else if meter.errorEvents > 0 {
            outcome = .error
            reason = "stream_error"
        } else {
            outcome = .ok
        }
        var r = LLMRequestRecord(endpoint: meter.endpoint.rawValue, outcome: outcome)
        r.errorReason = reason
        if outcome != .cancelled { r.durationSeconds = exchange.durationSeconds }
        r.timeToFirstTokenSeconds = meter.timeToFirstToken
        if let usage = meter.usage {
            r.promptTokens = usage.promptTokens
            r.cachedTokens = usage.cachedTokens
        }
        if let completion = meter.completionTokens {
            r.completionTokens = completion.count
            r.completionEstimated = completion.estimated
            if outcome == .ok, completion.count >= 2, let ttft = meter.timeToFirstToken {
                let sinceRequestEnd = exchange.durationSeconds - (meter.requestEndedAt ?? 0)
                r.timePerOutputTokenSeconds = max(0, sinceRequestEnd - ttft) / Double(completion.count - 1)
            }
        }
        r.finishReasons = meter.finishReasons
        r.malformedEvents = meter.malformedEvents
        return r
    }
}
