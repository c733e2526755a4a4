import Capture
import Compression
import Exposition
import Foundation
import HTTPServer
import Ingestion
import ModelMonitoring

/// `POST /api/v1/cloudevents`: the receiver of KServe's inference logger (docs/proxy.md). Each request event waits
/// for the response event with the same `ce-id` (and InferenceService) in a bounded ``CloudEventPairs``; a complete
/// pair is decoded with the protocol of the model that captures that service, and each row becomes a prediction
/// event recorded with the ingestion API's rules and counters: `id` the `ce-id` (`<ce-id>/<row>` for a batch of
/// several rows, unless the mapping names an id), `version` the response's model version, else `ce-endpoint`, else
/// `default`, latency the difference of the two events' `ce-time` when both carry one. A `custom` mapping's `header:`
/// sources read the events' attributes as `ce-*` headers (the request event's, then the response event's).
///
/// Answers `200` (`{"status":"waiting"}`, or `{"status":"paired","accepted":a,"rejected":r}`, or
/// `{"status":"capture_failed","reason":…}`: a pair that cannot be decoded is counted, never an error to the
/// logger; a request event without a body, a metadata or readiness call, is `not_inference`); `400` for a request
/// that is not a CloudEvents 1.0 logger event, `404` for an InferenceService no model captures, `503` when a large
/// pair (or a large structured-mode body) needs a worker and none has room (the half it completed waits again, for a
/// retry). Pairs up to ``inlineLimit``
/// bytes are decoded on the event loop, larger ones on `workers`; a structured-mode body (JSON to validate) larger
/// than ``inlineLimit`` is read on `workers` too, and its pair decoded there. A half whose data is a gzip stream (the
/// logger passes on what the model server wrote: MLServer gzips its answers for a client that accepts gzip) is
/// inflated on `workers`, to at most ``maxInflatedBytes`` (beyond: `too_large`; corrupt: `invalid_encoding`).
struct CloudEventsEndpoint: Sendable {
    static let path = "/api/v1/cloudevents"

    let monitor: ModelMonitor
    let pairs: CloudEventPairs
    let routes: CaptureRoutes
    let metrics: CloudEventsMetrics
    let workers: WorkerPool
    var inlineLimit = 256 * 1024
    /// The most a gzip half may inflate to (`--ingest.max-decompressed-bytes`).
    var maxInflatedBytes = 64 << 20

    func handle(_ request: HTTPRequest, respond: @escaping @Sendable (HTTPResponse) -> Void) {
        // After the exporter's shutdown nothing is taken (a small event was still paired inline), as for ingestion.
        guard !workers.isStopped else {
            metrics.refused(.overloaded)
            return respond(HTTPResponse(status: 503, text: IngestEndpoint.shutDownMessage + "\n"))
        }
        // A structured-mode body is JSON to validate: up to `inlineLimit` here, beyond on a worker (as ingestion).
        guard CloudEvent.isStructured(request) && request.body.count > inlineLimit else {
            return receive(request, onWorker: false, respond: respond)
        }
        offload(respond: respond) { receive(request, onWorker: true, respond: respond) }
    }

    /// Runs `job` on `workers`; 503 `overloaded` (counted) when they have no room, or when it waited too long, after
    /// `refused` (which puts back what the job would have consumed).
    private func offload(
        respond: @escaping @Sendable (HTTPResponse) -> Void, refused: @escaping @Sendable () -> Void = {},
        _ job: @escaping @Sendable () -> Void
    ) {
        let refuse: @Sendable () -> Void = { [metrics] in
            refused()
            metrics.refused(.overloaded)
            respond(Self.overloaded)
        }
        if workers.submit(run: job, expired: refuse) != .accepted { refuse() }
    }

    /// Reads the event, stores its half and, when that completes a pair, decodes it: on this thread when already on a
    /// worker or when the pair is small, else on a worker.
    private func receive(
        _ request: HTTPRequest, onWorker: Bool, respond: @escaping @Sendable (HTTPResponse) -> Void
    ) {
        let event: CloudEvent
        do throws(CloudEvent.Invalid) {
            event = try CloudEvent.read(request)
        } catch {
            metrics.refused(error.reason)
            return respond(HTTPResponse(status: 400, text: IngestEndpoint.shownMessage(error.message) + "\n"))
        }
        guard let route = routes.route(service: event.service, monitor: monitor) else {
            metrics.refused(.unknownService)
            return respond(
                HTTPResponse(
                    status: 404,
                    text:
                        "no model captures InferenceService \"\(event.service)\" (set capture.inference_service on a model)\n"
                ))
        }
        let now = WallClock.now()
        let half = CloudEventPairs.Half(
            body: event.data, arrival: now, eventTime: event.time, endpoint: event.endpoint,
            attributes: event.attributes)
        let pair: CloudEventPairs.Pair
        let key = CloudEventPairs.Key(event.service + "\u{1F}" + event.id)
        switch pairs.add(half, kind: event.kind, key: key, now: now) {
        case .tooLarge:
            metrics.refused(.tooLarge)
            return respond(
                HTTPResponse(
                    status: 413,
                    text: "the event (\(half.bytes) bytes) is larger than cloudevents.max_pending_bytes "
                        + "(\(pairs.maxBytes)): it could not wait for its other half\n"))
        case .waiting:
            metrics.received.add(event.kind.rawValue)
            return respond(Self.json(#"{"status":"waiting"}"#))
        case .paired(let found):
            pair = found
        }
        let inflating = Self.isGzip(pair.request.body) || Self.isGzip(pair.response.body)
        guard
            !onWorker
                && (inflating
                    || BinaryTensorBody.decodingCost(
                        request: pair.request.body, response: pair.response.body, limit: inlineLimit) > inlineLimit)
        else {
            metrics.received.add(event.kind.rawValue)
            return respond(record(pair, id: event.id, route: route, now: now))
        }
        // No worker: this event is refused (503, for a retry) and the half it took from the store waits again, so
        // that the retry can pair (before, that half was lost, counted nowhere).
        let waited: (half: CloudEventPairs.Half, kind: CloudEventPairs.Kind) =
            event.kind == .request ? (pair.response, .response) : (pair.request, .request)
        offload(
            respond: respond,
            refused: { [pairs] in pairs.restore(waited.half, kind: waited.kind, key: key, now: WallClock.now()) }
        ) { [metrics] in
            metrics.received.add(event.kind.rawValue)
            respond(record(pair, id: event.id, route: route, now: now))
        }
    }

    static let overloaded: HTTPResponse = {
        var r = HTTPResponse(status: 503, text: "decoding workers busy, try again later\n")
        r.headers.add(name: "Retry-After", value: "1")
        return r
    }()

    /// An answer of 200 (KServe's logger takes any other status for an error, and logs it with each event).
    static func json(_ text: String) -> HTTPResponse {
        HTTPResponse(status: 200, headers: ["Content-Type": "application/json"], body: Array((text + "\n").utf8))
    }

    /// Whether `body` starts as a gzip stream does (RFC 1952: ID1 ID2 CM=deflate), which JSON never does.
    static func isGzip(_ body: [UInt8]) -> Bool {
        body.count >= 3 && body[0] == 0x1F && body[1] == 0x8B && body[2] == 8
    }

    /// Decodes a pair (its gzip halves inflated) and records its rows into the route's model; the answer.
    func record(_ pair: CloudEventPairs.Pair, id: String, route: CaptureRoutes.Route, now: Double) -> HTTPResponse {
        let model = route.model
        let bodies: (request: [UInt8], response: [UInt8])
        do throws(GzipError) {
            bodies = (try inflated(pair.request.body), try inflated(pair.response.body))
        } catch {
            let reason: String
            if case .outputLimitExceeded = error { reason = "too_large" } else { reason = "invalid_encoding" }
            metrics.failed(model: model.name, reason: reason)
            return Self.json(#"{"status":"capture_failed","reason":"\#(reason)"}"#)
        }
        // The logger logs every call the model server answered 200, metadata and readiness GETs too: a request
        // event without a body is no inference (before, counted `invalid_json` with the broken ones).
        if bodies.request.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }) {
            metrics.failed(model: model.name, reason: "not_inference")
            return Self.json(#"{"status":"capture_failed","reason":"not_inference"}"#)
        }
        var events: [PredictionEvent] = []
        let failure: CaptureError? = bodies.request.withUnsafeBytes { request in
            bodies.response.withUnsafeBytes { response in
                func decode(_ decoder: CaptureDecoder) -> CaptureError? {
                    do throws(CaptureError) {
                        // A `custom` mapping's `header:` sources see the events' ce- attributes (the request event's
                        // first: a header is read from its first line), not the original request's headers.
                        _ = try decoder.decode(
                            request: request, response: response,
                            headers: pair.request.attributes + pair.response.attributes
                        ) {
                            events.append($0)
                        }
                        return nil
                    } catch {
                        return error
                    }
                }
                // A decoder that refuses a pair has delivered none of its rows: the other KServe protocol may read it.
                guard let refused = decode(route.decoder) else { return nil }
                guard let other = route.other, decode(other) == nil else { return refused }
                return nil
            }
        }
        if let failure {
            metrics.failed(model: model.name, reason: failure.reason.rawValue)
            return Self.json(#"{"status":"capture_failed","reason":"\#(failure.reason.rawValue)"}"#)
        }
        metrics.paired(model: model.name)
        var latency: Double? = nil
        // Taken only within the store's time-to-live (a pair whose halves came further apart never pairs): a forged
        // request `ce-time` of 1970 added 1.8e9 s to the latency sum, for good.
        if let start = pair.request.eventTime, let end = pair.response.eventTime,
            case let seconds = end.seconds(since: start), seconds >= 0, seconds <= pairs.ttl
        {
            latency = seconds
        }
        var accepted = 0
        for (row, var event) in events.enumerated() {
            if event.id == nil { event.id = events.count == 1 ? id : "\(id)/\(row)" }
            if event.version.isEmpty { event.version = pair.response.endpoint ?? pair.request.endpoint ?? "default" }
            // The exchange's latency is observed once, with its first row, as the proxy observes a request's.
            if event.latencySeconds == nil && row == 0 { event.latencySeconds = latency }
            if model.record(event, receivedAt: now) == nil { accepted += 1 }
        }
        return Self.json(#"{"status":"paired","accepted":\#(accepted),"rejected":\#(events.count - accepted)}"#)
    }

    /// `body`, inflated when it is a gzip stream.
    private func inflated(_ body: [UInt8]) throws(GzipError) -> [UInt8] {
        Self.isGzip(body) ? try Gzip.gunzip(body, maxOutputSize: maxInflatedBytes) : body
    }
}
