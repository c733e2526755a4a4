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
    /// A client that leaves stops its generation: the upstream connection closes at once, before the response head
    /// too (a server aborts a request in its queue or prefill when its connection closes).
    var cancelClosesUpstream: Bool { true }
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
    /// How a body is read by the meter.
    private enum Reading {
        /// As it is sent (no content coding), or (a response) not yet: nothing has been read of it.
        case plain
        /// A successful response whose coding is known; its inflater is made when its first piece is read.
        case pending(CapturedBodyCoding)
        /// Through an inflater that undoes its coding.
        case inflating(InflateStream)
        /// Not at all: its coding cannot be undone, undoing it failed, or (a non-streamed response) it is over the
        /// limit.
        case unread
    }

    private var requestReading = Reading.plain
    private var responseReading = Reading.plain
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
        requestReading = reading(requestCoding, factor: 1)
    }

    /// How to read a body in `coding`, inflated to at most `factor` x `capture.max_body_bytes`.
    private func reading(_ coding: CapturedBodyCoding, factor: Int) -> Reading {
        switch coding {
        case .identity:
            return .plain
        case .unsupported:
            failures.insert(ProxyModelCounters.unsupportedEncoding)
            return .unread
        case .inflate:
            let limit = routing.settings.capture.maxBodyBytes.multipliedReportingOverflow(by: factor)
            do throws(GzipError) {
                return .inflating(try InflateStream(maxOutput: limit.overflow ? Int.max : limit.partialValue))
            } catch {
                failures.insert(ProxyModelCounters.reason(error))
                return .unread
            }
        }
    }

    /// Hands `bytes`, a piece of a body read as `reading` says, to `meter` (inflated first, if need be); a piece
    /// that does not inflate stops the reading.
    private func feed(
        _ reading: inout Reading, _ bytes: UnsafeRawBufferPointer, to meter: (UnsafeRawBufferPointer) -> Void
    ) {
        switch reading {
        case .plain:
            meter(bytes)
        case .inflating(let inflater):
            do throws(GzipError) {
                try inflater.feed(bytes, meter)
            } catch {
                failures.insert(ProxyModelCounters.reason(error))
                reading = .unread
            }
        case .pending, .unread:
            break
        }
    }

    /// The whole body came: one that did not end its compressed stream is not trusted (`invalid_encoding`).
    private func bodyEnded(_ reading: inout Reading) {
        guard case .inflating(let inflater) = reading, inflater.fed > 0, !inflater.atEnd else { return }
        failures.insert(ProxyModelCounters.reason(.truncatedInput))
        reading = .unread
    }

    /// The version recorded: an adapter's or the route's, else the model's only one, else `default`.
    var recordedVersion: String { version ?? entry?.impliedVersion ?? "default" }

    func requestBody(_ bytes: UnsafeRawBufferPointer) {
        feed(&requestReading, bytes) { meter.requestBody($0) }
    }

    func requestEnded(elapsed: Double) {
        bodyEnded(&requestReading)
        meter.requestEnded(elapsed: elapsed)
        resolve()
    }

    /// Attributes the request (once): the body's model for a body route (the `model` read so far when the request did
    /// not complete; none: the catch-all model); counts it for its model (or unrouted) and puts it in flight.
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
        guard routing.settings.injectIncludeUsage, case .plain = requestReading,
            meter.endpoint == .chatCompletions || meter.endpoint == .completions
        else { return 0 }
        return routing.settings.capture.maxBodyBytes
    }

    func rewriteRequestBody(_ body: [UInt8]) -> [UInt8]? { IncludeUsageInjection.rewrite(body) }

    func responseHead(status: Int, headers: HTTPHeaders, elapsed: Double) {
        meter.responseHead(status: status, contentType: headers["Content-Type"])
        // Only a successful response's body is read (and so only its coding matters).
        if (200..<300).contains(status) { responseReading = .pending(CapturedBodyCoding(headers)) }
    }

    func responseBody(_ bytes: UnsafeRawBufferPointer, elapsed: Double) {
        // A request that no `llm` collector records (unrouted, or a model without the section) is not parsed (unread:
        // see ``ended(_:)``).
        guard let collector else { return }
        if case .pending(let coding) = responseReading {
            responseReading = reading(coding, factor: Self.inflationFactor)
        }
        feed(&responseReading, bytes) { meterResponse($0, elapsed: elapsed, collector) }
        // A non-streamed response past the limit: the rest is not worth inflating.
        if meter.responseOverLimit { responseReading = .unread }
    }

    /// A piece of the response body as sent (or inflated): its tokens recorded as they arrive.
    private func meterResponse(_ bytes: UnsafeRawBufferPointer, elapsed: Double, _ collector: LLMCollector) {
        let arrival = meter.responseBody(bytes, elapsed: elapsed)
        if let ttft = arrival.timeToFirstToken { collector.firstToken(version: versionIndex, seconds: ttft) }
        if arrival.gap != nil || arrival.zeroGaps > 0 {
            collector.tokenGaps(version: versionIndex, gap: arrival.gap, zeros: arrival.zeroGaps)
        }
        for gap in arrival.moreGaps { collector.tokenGaps(version: versionIndex, gap: gap, zeros: 0) }
    }

    /// The exchange ended: records it in the model's `llm` collector and `service` series, and the proxy's counters.
    func ended(_ exchange: ProxyExchangeRecord) {
        // A request that never completed (its client left, or the upstream failed, before the body's end) is still
        // counted: on a body route, for the model its body named so far, else the catch-all model.
        if !resolved { resolve() }
        // A successful response no collector parsed (unrouted, or a model without `llm`) is unread: its end is not
        // known, so a client leaving it after the head (maybe at `[DONE]`) is not counted as cancelling.
        if collector == nil, case .pending = responseReading { responseReading = .unread }
        // Only a response that came whole is judged (a client that left, even at `[DONE]` as the SDKs do, may have
        // left before the stream's last bytes).
        if exchange.failure == nil && !exchange.cancelled { bodyEnded(&responseReading) }
        if case .unread = responseReading {} else { meter.finish() }
        let cancelled = Self.cancelled(exchange, meter, unreadStream: unreadStream)
        if meter.responseOverLimit { failures.insert(ProxyModelCounters.tooLarge) }
        // A `usage` count that is no token count (1e18, a fraction, a string) was not taken: said here.
        if meter.usage?.hasInvalidCount == true { failures.insert(ProxyModelCounters.invalidValue) }
        let counters = entry?.counters ?? routing.unrouted
        for reason in failures { counters.captureFailures.add(reason) }
        if let failure = exchange.failure { counters.upstreamError(failure) }
        if cancelled && !exchange.requestBodyFailed { counters.cancelled.add(0) }
        guard let entry else { return }
        let record = Self.record(exchange, meter: meter, unreadStream: unreadStream)
        if let collector {
            collector.requestEnded(version: versionIndex, record, wasInFlight: inFlight)
        }
        guard !cancelled, let status = exchange.status ?? meter.status else { return }
        // The service series count as any proxied request does: a status is an error by `error_statuses` (a client's
        // 4xx, or a redirect, is a served request there, though the LLM series call it an error); a failure or an
        // error event is one.
        let byStatus = exchange.failure == nil && !(200..<300).contains(status)
        let isError =
            byStatus
            ? routing.settings.isErrorStatus(status)
            : record.outcome == .error || routing.settings.isErrorStatus(status)
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

    /// A successful event stream the meter could not read (a coding it cannot undo, or that did not inflate): whether
    /// it said it was over is not known.
    private var unreadStream: Bool {
        guard case .unread = responseReading else { return false }
        return meter.isEventStream
    }

    /// Whether the client left before it had the response: a client that leaves after the stream said it was over
    /// (`[DONE]`, a Responses API end event), or after every choice it gave had a finish reason, had all of it (the OpenAI SDKs close the connection there, before the
    /// HTTP body's last chunk arrives); one that leaves after an error event left because of it (the SDKs raise and
    /// close, sometimes before `[DONE]` arrives): the request failed with `stream_error`, it was not cancelled. Of a
    /// stream the meter could not read (`unreadStream`) the end is not known: as the SDKs leave every stream at its
    /// end, a client leaving it is not counted as cancelling, and the request is recorded by its status.
    static func cancelled(
        _ exchange: ProxyExchangeRecord, _ meter: LLMExchangeMeter, unreadStream: Bool = false
    ) -> Bool {
        exchange.cancelled && !meter.streamEnded && !meter.allChoicesFinished && meter.errorEvents == 0
            && !unreadStream
    }

    /// What the exchange and the meter say, as the collector records it.
    static func record(
        _ exchange: ProxyExchangeRecord, meter: LLMExchangeMeter, unreadStream: Bool = false
    ) -> LLMRequestRecord {
        let outcome: LLMRequestRecord.Outcome
        var reason: String?
        let status = exchange.status ?? meter.status
        if cancelled(exchange, meter, unreadStream: unreadStream) {
            outcome = .cancelled
        } else if let failure = exchange.failure {
            outcome = .error
            reason = exchange.responseHeaders == nil ? failure.rawValue : "stream_interrupted"
        } else if let status, !(200..<300).contains(status) {
            // Only a 2xx answer is one: a redirect (an ingress sending clients to a login page) generated nothing.
            outcome = .error
            reason = "http_\(status)"
        } else if meter.errorEvents > 0 {
            outcome = .error
            reason = "stream_error"
        } else if meter.isEventStream && !meter.streamEnded && !meter.everyChoiceGivenFinished && !unreadStream
            && meter.endpoint != .other
        {
            // A 2xx stream that ended without saying so (no `[DONE]`, no end event, a choice without a finish reason):
            // cut short, as a close-delimited body closed mid-way is (it was ok, and within every objective). Only
            // where OpenAI's protocol says how a stream ends: another route's stream (llama.cpp's `/completion`,
            // TGI's `/generate_stream`) ends its own way.
            outcome = .error
            reason = "stream_interrupted"
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
                // One choice's tokens after its first: with `n` choices the count is every choice's.
                let perChoice = Double(completion.count) / Double(meter.choiceCount)
                if perChoice >= 2 {
                    r.timePerOutputTokenSeconds = max(0, sinceRequestEnd - ttft) / (perChoice - 1)
                }
            }
        }
        r.finishReasons = meter.finishReasons
        r.malformedEvents = meter.malformedEvents
        return r
    }
}
