import Compression
import Exposition
import Foundation
import HTTPServer
import Ingestion
import ModelMonitoring

/// The ingestion API: `POST /api/v1/models/{model}/predictions` and `.../labels`.
///
/// Answers `202` with `{"accepted": n, "rejected": m, "errors": [...]}` (the first
/// ``DecodeReport/maxRecordedErrors`` rejections, each with `index`, `line` for NDJSON, `reason` and
/// `message`); a batch with bad events still records the good ones. Keys skipped are said: `"unknown_keys"` (no
/// event field, or no attribute of the model: `attributes.<key>`) and `"unknown_features"` (no feature of the
/// model), each `{"count": n, "first": "<key>"}`, only when there are some; so are values recorded under `__other__` (``IngestNotices``: `"unknown_versions"`,
/// `"unknown_classes"`, `"unknown_groups"` with `"first": "<attribute>=<value>"`), `"future_timestamps"`
/// (more than a day ahead: milliseconds sent for seconds) and `"past_timestamps"` (ten years back), both ignored.
/// A `"first"` longer than ``firstMaxBytes`` bytes (an error's `"message"` longer than ``messageMaxBytes``) is cut
/// there, between Unicode scalars, and ends with `…`.
/// A labels answer (for a model that joins
/// labels) also says what became of the accepted labels: `"joined": j`, `"unmatched": {"unknown": u, "expired": x,
/// "evicted": v, "other_instance": o}` and `"other_instances": {"<instance>": count, ...}` (the instances named by
/// the `other_instance` ids, at most ``UnmatchedLabels/maximumListedInstances``, the labels of any further ones
/// counted in `"other_instances_unlisted"`); still `202`: a partial-accept report, not an error. Refused as a whole, with a one-line
/// reason and counted in `mlops_ingest_rejected_requests_total{model,reason}`: unknown model `404`, missing
/// or wrong bearer token `401`, malformed JSON `400` (with the byte offset), more events than
/// ``maxEvents`` or a gzip body inflating beyond ``maxDecompressedBytes`` `413`, a `Content-Type` other than
/// JSON or NDJSON `415`, a `Content-Encoding` other than gzip `415`, a corrupt gzip body `400`, and `503`
/// with `Retry-After` (`overloaded`) when the body needs a worker and `workers` has no room.
///
/// Where the work runs: bodies up to ``inlineBodyLimit`` are decoded on the event loop (a 100-event batch takes
/// ~0.2 ms: the fast path), gzip ones too when they inflate to at most ``inlineBodyLimit`` (inflating is stopped
/// there, so the loop never does more than for an identity body of that size); larger bodies, and gzip bodies
/// that inflate further (a 64 KiB body can inflate to 64 MiB), are inflated and decoded on `workers`, a bounded
/// ``WorkerPool``. Whether a body gets a worker is decided before it is inflated beyond ``inlineBodyLimit``. The head checks (model, token, media type, encoding) are
/// ``screen(_:model:)``, shared by ``admit(_:model:accept:refuse:)`` and ``handle(_:model:kind:respond:)``.
struct IngestEndpoint: Sendable {
    static let prefix = "/api/v1/models/"

    let monitor: ModelMonitor
    /// Most events in one request.
    let maxEvents: Int
    /// Most bytes a gzip body may inflate to.
    let maxDecompressedBytes: Int
    /// Inflates gzip bodies and decodes large ones, off the event loops.
    let workers: WorkerPool
    /// Identity bodies up to this size are decoded on the event loop; larger ones on `workers`.
    var inlineBodyLimit = 256 * 1024

    /// The model and kind of an ingestion path, or nil when `path` is not one.
    static func route(_ path: String) -> (model: Substring, kind: EventKind)? {
        guard path.hasPrefix(prefix) else { return nil }
        let rest = path.dropFirst(prefix.count)
        guard let slash = rest.firstIndex(of: "/") else { return nil }
        let model = rest[..<slash]
        let kind: EventKind
        switch rest[rest.index(after: slash)...] {
        case "predictions": kind = .predictions
        case "labels": kind = .labels
        default: return nil
        }
        return model.isEmpty ? nil : (model, kind)
    }

    /// What the head of an ingestion request says, once ``screen(_:model:)`` let it through.
    struct Screened: Sendable {
        let model: MonitoredModel
        /// From `Content-Type`; nil when there is none (the body is sniffed).
        let format: BodyFormat?
        let gzip: Bool
    }

    /// A request refused as a whole: its status, message and counting reason, and the model it is counted
    /// under (nil: `__unknown__`).
    struct Refusal: Error, Sendable {
        let model: MonitoredModel?
        let status: Int
        let reason: RequestRejectReason
        let message: String
        var headers: HTTPHeaders = [:]
    }

    /// The checks that need only the head: the model exists (404), the bearer token (401), labels only for a model
    /// that uses them (409), `Content-Type` and `Content-Encoding` (415).
    func screen(_ head: HTTPRequest, model name: Substring, kind: EventKind) -> Result<Screened, Refusal> {
        guard let model = monitor.model(named: String(name)) else {
            return .failure(
                Refusal(
                    model: nil, status: 404, reason: .unknownModel,
                    message: UnknownModelMessage.text(name, known: monitor.modelNames)))
        }
        if let token = model.context.configuration.token {
            // Two `Authorization` lines: which one a proxy in front checked is unknown (the first was taken).
            if head.headers.isRepeated("Authorization") {
                return .failure(
                    Refusal(
                        model: model, status: 401, reason: .unauthorized,
                        message: "more than one Authorization header: send the bearer token once",
                        headers: ["WWW-Authenticate": "Bearer realm=\"mlops-exporter\""]))
            }
            guard let given = head.headers["Authorization"], Self.bearerMatches(given, token: token) else {
                return .failure(
                    Refusal(
                        model: model, status: 401, reason: .unauthorized,
                        message: "missing or wrong bearer token for model \"\(name)\"",
                        headers: ["WWW-Authenticate": "Bearer realm=\"mlops-exporter\""]))
            }
        }
        if kind == .labels && !model.usesLabels {
            return .failure(
                Refusal(
                    model: model, status: 409, reason: .labelsNotUsed,
                    message:
                        "model \"\(name)\" has no quality or fairness collector: its labels would join nothing (add one to its collectors)"
                ))
        }
        var format: BodyFormat? = nil
        // Two `Content-Type` lines: the body's format is a guess (the first was taken, the second unseen).
        if head.headers.isRepeated("Content-Type") {
            let given = head.headers.values(for: "Content-Type").joined(separator: "\", \"")
            return .failure(
                Refusal(
                    model: model, status: 415, reason: .unsupportedMediaType,
                    message: "more than one Content-Type header (\"\(given.prefix(200))\"): send one"))
        }
        if let contentType = head.headers["Content-Type"] {
            guard let known = Self.format(contentType, body: []) else {
                return .failure(
                    Refusal(
                        model: model, status: 415, reason: .unsupportedMediaType,
                        message:
                            "unsupported Content-Type \"\(contentType)\": send application/json (an array of events) or application/x-ndjson"
                    ))
            }
            format = known
        }
        let gzip: Bool
        // Every `Content-Encoding` line, as one list (RFC 9110 §5.3): two `gzip` lines are two codings, refused as
        // `gzip, gzip` on one line is (before, only the first line was read, and a second coding went unseen).
        let encodings = head.headers.values(for: "Content-Encoding")
        switch encodings.isEmpty ? nil : encodings.joined(separator: ", ").lowercased() {
        case nil, "identity": gzip = false
        case "gzip", "x-gzip": gzip = true
        case let other?:
            return .failure(
                Refusal(
                    model: model, status: 415, reason: .unsupportedEncoding,
                    message: "unsupported Content-Encoding \"\(other)\": send gzip or identity"))
        }
        return .success(Screened(model: model, format: format, gzip: gzip))
    }

    /// Counts `refusal` (under its model, or `__unknown__`) and answers it.
    func refuse(_ refusal: Refusal, respond: @Sendable (HTTPResponse) -> Void) {
        if let model = refusal.model {
            model.counters.rejectedRequest(refusal.reason)
        } else {
            monitor.unknownModelRequested()
        }
        var response = HTTPResponse(status: refusal.status, text: refusal.message + "\n")
        for field in refusal.headers { response.headers.add(name: field.name, value: field.value) }
        respond(response)
    }

    /// The refusal of every ingestion request once the exporter has shut down (its workers stopped, its last checkpoint
    /// written): a small body was still accepted inline and counted after it, and a large one was told to retry.
    /// Counted `overloaded`; no `Retry-After`, a retry will not help.
    func shutDown(_ model: MonitoredModel) -> Refusal {
        Refusal(model: model, status: 503, reason: .overloaded, message: Self.shutDownMessage)
    }

    /// The reason ingestion and the KServe logger receiver give once the exporter has shut down.
    static let shutDownMessage = "the exporter has shut down: it takes no more events"

    /// The refusal of a body for `model` that needs a worker when `workers` has no room.
    func overloaded(_ model: MonitoredModel) -> Refusal {
        Refusal(
            model: model, status: 503, reason: .overloaded,
            message:
                "ingestion workers busy (\(workers.limits.threads) running, \(workers.limits.queue) queued), try again later",
            headers: ["Retry-After": "1"])
    }

    /// Decides from the head whether the body may be received: ``screen(_:model:)``, then, for a body that will
    /// need a worker (a `Content-Length` above ``inlineBodyLimit``), whether `workers` has room now.
    func admit(
        _ head: HTTPRequest, model name: Substring, kind: EventKind, accept: () -> Void,
        refuse respond: @escaping @Sendable (HTTPResponse) -> Void
    ) {
        switch screen(head, model: name, kind: kind) {
        case .failure(let refusal):
            refuse(refusal, respond: respond)
        case .success(let screened):
            guard !workers.isStopped else { return refuse(shutDown(screened.model), respond: respond) }
            let length = head.headers["Content-Length"].flatMap { Int($0) } ?? 0
            if length > inlineBodyLimit && !workers.hasRoom {
                refuse(overloaded(screened.model), respond: respond)
            } else {
                accept()
            }
        }
    }

    func handle(
        _ request: HTTPRequest, model name: Substring, kind: EventKind,
        respond: @escaping @Sendable (HTTPResponse) -> Void
    ) {
        let screened: Screened
        switch screen(request, model: name, kind: kind) {
        case .failure(let refusal):
            refuse(refusal, respond: respond)
            return
        case .success(let value): screened = value
        }
        let model = screened.model
        guard !workers.isStopped else { return refuse(shutDown(model), respond: respond) }
        let body = request.body
        guard body.count <= inlineBodyLimit else {
            return offload(
                body, gzip: screened.gzip, model: model, kind: kind, format: screened.format, respond: respond)
        }
        guard screened.gzip else {
            return ingest(body, model: model, kind: kind, format: screened.format, respond: respond)
        }
        // A small gzip body is inflated here, but never beyond what an identity body may be on the loop, nor beyond
        // --ingest.max-decompressed-bytes (a limit under 256 KiB was not applied here: 1001 bytes inflated past a
        // limit of 1000 were recorded); one that inflates further goes to a worker, inflated again up to the limit.
        let ceiling = inflateLimit(compressed: body.count)
        let inlineLimit = min(inlineBodyLimit, ceiling)
        do throws(GzipError) {
            let inflated = try Gzip.gunzip(body, maxOutputSize: inlineLimit)
            ingest(inflated, model: model, kind: kind, format: screened.format, respond: respond)
        } catch .outputLimitExceeded(let limit) where inlineLimit == ceiling {
            refuse(gzipRefusal(.outputLimitExceeded(limit: limit), model: model), respond: respond)
        } catch .outputLimitExceeded {
            offload(body, gzip: true, model: model, kind: kind, format: screened.format, respond: respond)
        } catch {
            refuse(gzipRefusal(error, model: model), respond: respond)
        }
    }

    /// Inflates (gzip) and decodes `body` on a worker; refused with 503 when the workers have no room, decided
    /// before anything more is inflated.
    private func offload(
        _ body: [UInt8], gzip: Bool, model: MonitoredModel, kind: EventKind, format: BodyFormat?,
        respond: @escaping @Sendable (HTTPResponse) -> Void
    ) {
        let submission = workers.submit(
            run: { [self] in
                guard gzip else { return ingest(body, model: model, kind: kind, format: format, respond: respond) }
                do throws(GzipError) {
                    let inflated = try Gzip.gunzip(body, maxOutputSize: inflateLimit(compressed: body.count))
                    ingest(inflated, model: model, kind: kind, format: format, respond: respond)
                } catch {
                    refuse(gzipRefusal(error, model: model), respond: respond)
                }
            },
            expired: { [self] in refuse(overloaded(model), respond: respond) })
        if submission != .accepted { refuse(overloaded(model), respond: respond) }
    }

    /// How many times its compressed size a gzip body may inflate to (past ``inflateRatioFloor``), as Apache's
    /// `DeflateInflateRatioLimit` (200): NDJSON events compress 5 to 50 times, a bomb 1,000 times. Before, only
    /// ``maxDecompressedBytes`` bound it: a 64 KB bomb inflated to 64 MiB; now to 13 MB. (A 1 MB bomb still reaches
    /// the 64 MiB limit: 0.17 CPU-s each, four clients kept both cores busy, a DoS probe.)
    static let inflateRatio = 200
    /// Below this inflated size the ratio does not apply (a small body of repeated events may compress further).
    static let inflateRatioFloor = 1 << 20

    /// The most a gzip body of `compressed` bytes may inflate to: ``maxDecompressedBytes``, and ``inflateRatio``
    /// times its size past ``inflateRatioFloor``.
    func inflateLimit(compressed: Int) -> Int {
        let (scaled, overflow) = compressed.multipliedReportingOverflow(by: Self.inflateRatio)
        return min(maxDecompressedBytes, max(Self.inflateRatioFloor, overflow ? .max : scaled))
    }

    /// The answer to a gzip body that cannot be inflated: 413 beyond ``inflateLimit(compressed:)``, 400 when corrupt.
    private func gzipRefusal(_ error: GzipError, model: MonitoredModel) -> Refusal {
        if case .outputLimitExceeded(let limit) = error {
            let why =
                limit < maxDecompressedBytes
                ? " (\(Self.inflateRatio) times its compressed size: a compression bomb?)" : ""
            return Refusal(
                model: model, status: 413, reason: .bodyTooLarge,
                message: "gzip body inflates beyond \(limit) bytes\(why)")
        }
        return Refusal(
            model: model, status: 400, reason: .invalidGzip, message: "gzip body cannot be decompressed: \(error)")
    }

    /// Decodes `body` (already inflated) into `model` on the calling thread and answers.
    private func ingest(
        _ body: [UInt8], model: MonitoredModel, kind: EventKind, format: BodyFormat?,
        respond: @Sendable (HTTPResponse) -> Void
    ) {
        let format = format ?? Self.format(nil, body: body)!  // without Content-Type the body is sniffed: never nil
        let receivedAt = WallClock.now()
        var unmatched = UnmatchedLabels()
        let result: Result<DecodeReport, BodyError> = body.withUnsafeBytes { raw in
            do throws(BodyError) {
                return .success(
                    try model.ingest(
                        kind, body: raw, format: format, maxEvents: maxEvents, receivedAt: receivedAt,
                        unmatched: &unmatched))
            } catch {
                return .failure(error)
            }
        }
        switch result {
        case .success(let report):
            let joins = kind == .labels && model.joiner != nil ? unmatched : nil
            respond(
                HTTPResponse(
                    status: 202, headers: ["Content-Type": "application/json"],
                    body: Self.reportJSON(report, labels: joins)))
        case .failure(let error):
            let status = error.reason == .tooManyEvents ? 413 : 400
            respond(HTTPResponse(status: status, text: "\(error)\n"))
        }
    }

    /// The body format from `Content-Type` (parameters ignored, media type case-insensitive); without one, a
    /// body starting with `[` is JSON and anything else NDJSON. Works on the bytes (no Foundation): it runs for
    /// every request.
    static func format(_ contentType: String?, body: [UInt8]) -> BodyFormat? {
        guard var contentType else {
            let first = body.first { $0 != 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D }
            return first == UInt8(ascii: "[") ? .json : .ndjson
        }
        return contentType.withUTF8 { bytes in
            var start = 0
            var end = bytes.firstIndex(of: UInt8(ascii: ";")) ?? bytes.count
            while start < end && (bytes[start] == 0x20 || bytes[start] == 0x09) { start += 1 }
            while end > start && (bytes[end - 1] == 0x20 || bytes[end - 1] == 0x09) { end -= 1 }
            let mediaType = UnsafeBufferPointer(rebasing: bytes[start..<end])
            if asciiCaseInsensitiveEqual(mediaType, "application/json") { return .json }
            for name in ndjsonMediaTypes where asciiCaseInsensitiveEqual(mediaType, name) { return .ndjson }
            return nil
        }
    }

    /// The media types read as NDJSON.
    static let ndjsonMediaTypes: [StaticString] = [
        "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines",
        "application/jsonlines",
    ]

    /// Whether `bytes` spell `lowercase` (ASCII, lower case) in any case.
    static func asciiCaseInsensitiveEqual(_ bytes: UnsafeBufferPointer<UInt8>, _ lowercase: StaticString) -> Bool {
        guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
        let expected = lowercase.utf8Start
        for i in 0..<bytes.count {
            var b = bytes[i]
            if b >= 0x41 && b <= 0x5A { b |= 0x20 }
            if b != expected[i] { return false }
        }
        return true
    }

    /// Whether `request` is an ingestion request with `Authorization: Bearer …` for a model that has a `token`:
    /// such a request is authenticated here, by the token, instead of by the web configuration's basic auth.
    static func carriesModelToken(_ request: HTTPRequest, monitor: ModelMonitor) -> Bool {
        guard let (name, _) = route(request.path), !request.headers.isRepeated("Authorization"),
            let given = request.headers["Authorization"], bearerToken(given) != nil
        else { return false }
        return monitor.model(named: String(name))?.context.configuration.token != nil
    }

    /// The credentials of an `Authorization: Bearer <token>` value (scheme case-insensitive, then `1*SP` as RFC 9110
    /// §11.4 writes it: two spaces were part of the token), or nil when there are none.
    static func bearerToken(_ header: String) -> Substring? {
        guard header.utf8.count > 7, header.prefix(7).lowercased() == "bearer " else { return nil }
        let credentials = header.dropFirst(7).drop { $0 == " " }
        return credentials.isEmpty ? nil : credentials
    }

    /// Whether an `Authorization` value is `Bearer <token>`, compared in constant time.
    static func bearerMatches(_ header: String, token: String) -> Bool {
        guard let credentials = bearerToken(header) else { return false }
        let given = Array(credentials.utf8)
        let expected = Array(token.utf8)
        var difference = UInt8(given.count == expected.count ? 0 : 1)
        for i in 0..<expected.count { difference |= expected[i] ^ (i < given.count ? given[i] : 0) }
        return difference == 0
    }

    /// `{"accepted":n,"rejected":m,"errors":[{"index":i,"line":l,"reason":"...","message":"..."}]}`, with, when
    /// `labels` is given, `"joined":j,"unmatched":{"unknown":u,...},"other_instances":{"<instance>":c,...}` and
    /// `"other_instances_unlisted":k` (only when some were not listed).
    static func reportJSON(_ report: DecodeReport, labels: UnmatchedLabels? = nil) -> [UInt8] {
        var out = "{\"accepted\":\(report.accepted),\"rejected\":\(report.rejected),\"errors\":["
        for (i, error) in report.errors.enumerated() {
            if i > 0 { out += "," }
            out += "{\"index\":\(error.index),"
            if let line = error.line { out += "\"line\":\(line)," }
            // Cut as the "first" values are: a message that quotes the input could repeat much of it.
            out += "\"reason\":\"\(error.reason.rawValue)\",\"message\":"
            out += jsonStringLiteral(shownMessage(error.message)) + "}"
        }
        out += "]"
        if report.unknownKeys > 0 {
            // Skipped, so said: a misspelt key (`probabilites`) loses its value without any event being rejected.
            out += ",\"unknown_keys\":{\"count\":\(report.unknownKeys),\"first\":"
            out += jsonStringLiteral(shownFirst(report.firstUnknownKey)) + "}"
        }
        if report.unknownFeatures > 0 {
            // Likewise a misspelt feature (`amout`): its value is not recorded, and the feature counts missing.
            out += ",\"unknown_features\":{\"count\":\(report.unknownFeatures),\"first\":"
            out += jsonStringLiteral(shownFirst(report.firstUnknownFeature)) + "}"
        }
        if !report.notices.isEmpty {
            appendNotices(report.notices, to: &out)
        }
        if let labels {
            out += ",\"joined\":\(labels.joined),\"unmatched\":{"
            out += UnmatchedReason.allCases.map { "\"\($0.name)\":\(labels[$0])" }.joined(separator: ",")
            // Instance names are [A-Za-z0-9._-] (EventID.instance(of:)): nothing to escape.
            out += "},\"other_instances\":{"
            out += labels.otherInstances.map { "\"\($0.name)\":\($0.count)" }.joined(separator: ",") + "}"
            if labels.unlistedOtherInstances > 0 {
                out += ",\"other_instances_unlisted\":\(labels.unlistedOtherInstances)"
            }
        }
        out += "}\n"
        return Array(out.utf8)
    }

    /// `IngestNotices`' non-zero tallies as `,"key":{"count":n,"first":"..."}` members.
    static func appendNotices(_ notices: IngestNotices, to out: inout String) {
        for (key, tally) in [
            ("unknown_versions", notices.unknownVersions), ("unknown_classes", notices.unknownClasses),
            ("unknown_groups", notices.unknownGroups), ("future_timestamps", notices.futureTimestamps),
            ("past_timestamps", notices.pastTimestamps),
        ] where tally.count > 0 {
            // Accepted, recorded under __other__ (or, for a timestamp, ignored: the join delay is measured from the
            // event's arrival): said, not silent.
            out += ",\"\(key)\":{\"count\":\(tally.count),\"first\":" + jsonStringLiteral(shownFirst(tally.first)) + "}"
        }
    }

    /// The most UTF-8 bytes of a `"first"` value an answer repeats (a 15 MB class name was sent back whole).
    static let firstMaxBytes = 256

    /// The most UTF-8 bytes of an error's `"message"` an answer gives.
    static let messageMaxBytes = 512

    /// `message` as an answer gives it: whole within ``messageMaxBytes``, else cut there and ended with `…`.
    static func shownMessage(_ message: String) -> String { message.shortened(toUTF8Bytes: messageMaxBytes) }

    /// `first` as an answer repeats it: whole within ``firstMaxBytes``, else its first Unicode scalars and `…`.
    static func shownFirst(_ first: String?) -> String { first?.shortened(toUTF8Bytes: firstMaxBytes) ?? "" }
}
