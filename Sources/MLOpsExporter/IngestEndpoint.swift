import Compression
import Dispatch
import Exposition
import Foundation
import HTTPServer
import Ingestion
import ModelMonitoring

/// The ingestion API: `POST /api/v1/models/{model}/predictions` and `.../labels`.
///
/// Answers `202` with `{"accepted": n, "rejected": m, "errors": [...]}` (the first
/// ``DecodeReport/maxRecordedErrors`` rejections, each with `index`, `line` for NDJSON, `reason` and
/// `message`); a batch with bad events still records the good ones. Refused as a whole, with a one-line
/// reason and counted in `mlops_ingest_rejected_requests_total{model,reason}`: unknown model `404`, missing
/// or wrong bearer token `401`, malformed JSON `400` (with the byte offset), more events than
/// ``maxEvents`` or a gzip body inflating beyond ``maxDecompressedBytes`` `413`, a `Content-Type` other than
/// JSON or NDJSON `415`, a `Content-Encoding` other than gzip `415`, a corrupt gzip body `400`.
struct IngestEndpoint: Sendable {
    static let prefix = "/api/v1/models/"

    let monitor: ModelMonitor
    /// Most events in one request.
    let maxEvents: Int
    /// Most bytes a gzip body may inflate to.
    let maxDecompressedBytes: Int
    /// Bodies up to this size are decoded on the event loop (a 100-event batch takes ~0.2 ms); larger
    /// ones on a worker thread, so that one big batch cannot stall the loop's other connections.
    let inlineBodyLimit = 256 * 1024

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

    func handle(
        _ request: HTTPRequest, model name: Substring, kind: EventKind,
        respond: @escaping @Sendable (HTTPResponse) -> Void
    ) {
        guard let model = monitor.model(named: String(name)) else {
            monitor.unknownModelRequested()
            let known = monitor.modelNames.joined(separator: ", ")
            respond(HTTPResponse(status: 404, text: "unknown model \"\(name)\" (configured: \(known))\n"))
            return
        }
        let counters = model.counters
        func refuse(_ status: Int, _ reason: RequestRejectReason, _ message: String, headers: HTTPHeaders = [:]) {
            counters.rejectedRequest(reason)
            var response = HTTPResponse(status: status, text: message + "\n")
            for field in headers { response.headers.add(name: field.name, value: field.value) }
            respond(response)
        }
        if let token = model.context.configuration.token {
            guard let given = request.headers["Authorization"], Self.bearerMatches(given, token: token) else {
                refuse(
                    401, .unauthorized, "missing or wrong bearer token for model \"\(name)\"",
                    headers: ["WWW-Authenticate": "Bearer realm=\"mlops-exporter\""])
                return
            }
        }
        guard let format = Self.format(request.headers["Content-Type"], body: request.body) else {
            refuse(
                415, .unsupportedMediaType,
                "unsupported Content-Type \"\(request.headers["Content-Type"] ?? "")\": send application/json (an array of events) or application/x-ndjson"
            )
            return
        }
        var inflated = request.body
        switch request.headers["Content-Encoding"]?.lowercased() {
        case nil, "identity": break
        case "gzip", "x-gzip":
            do {
                inflated = try Gzip.gunzip(inflated, maxOutputSize: maxDecompressedBytes)
            } catch .outputLimitExceeded(let limit) {
                refuse(413, .bodyTooLarge, "gzip body inflates beyond \(limit) bytes")
                return
            } catch {
                refuse(400, .invalidGzip, "gzip body cannot be decompressed: \(error)")
                return
            }
        case let other?:
            refuse(415, .unsupportedEncoding, "unsupported Content-Encoding \"\(other)\": send gzip or identity")
            return
        }
        let body = inflated
        let maxEvents = self.maxEvents
        let work: @Sendable () -> Void = {
            let receivedAt = WallClock.now()
            let result: Result<DecodeReport, BodyError> = body.withUnsafeBytes { raw in
                do throws(BodyError) {
                    return .success(
                        try model.ingest(kind, body: raw, format: format, maxEvents: maxEvents, receivedAt: receivedAt))
                } catch {
                    return .failure(error)
                }
            }
            switch result {
            case .success(let report):
                respond(
                    HTTPResponse(
                        status: 202, headers: ["Content-Type": "application/json"],
                        body: Self.reportJSON(report)))
            case .failure(let error):
                let status = error.reason == .tooManyEvents ? 413 : 400
                respond(HTTPResponse(status: status, text: "\(error)\n"))
            }
        }
        if body.count <= inlineBodyLimit { work() } else { DispatchQueue.global().async(execute: work) }
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
        guard let (name, _) = route(request.path), let given = request.headers["Authorization"],
            bearerToken(given) != nil
        else { return false }
        return monitor.model(named: String(name))?.context.configuration.token != nil
    }

    /// The credentials of an `Authorization: Bearer <token>` value (scheme case-insensitive), or nil.
    static func bearerToken(_ header: String) -> Substring? {
        guard header.utf8.count > 7, header.prefix(7).lowercased() == "bearer " else { return nil }
        return header.dropFirst(7)
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

    /// `{"accepted":n,"rejected":m,"errors":[{"index":i,"line":l,"reason":"...","message":"..."}]}`.
    static func reportJSON(_ report: DecodeReport) -> [UInt8] {
        var out = "{\"accepted\":\(report.accepted),\"rejected\":\(report.rejected),\"errors\":["
        for (i, error) in report.errors.enumerated() {
            if i > 0 { out += "," }
            out += "{\"index\":\(error.index),"
            if let line = error.line { out += "\"line\":\(line)," }
            out += "\"reason\":\"\(error.reason.rawValue)\",\"message\":" + jsonStringLiteral(error.message) + "}"
        }
        out += "]}\n"
        return Array(out.utf8)
    }
}
