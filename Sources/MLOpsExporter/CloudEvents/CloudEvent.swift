import Foundation
import HTTPServer
import Ingestion

/// One CloudEvent of KServe's inference logger, read from a request in binary content mode (`ce-*` headers, the
/// body is the data) or structured mode (`Content-Type: application/cloudevents+json`, one JSON object with the
/// attributes and `data` or `data_base64`).
struct CloudEvent: Sendable {
    /// `org.kubeflow.serving.inference.request` and `.response`.
    static let requestType = "org.kubeflow.serving.inference.request"
    static let responseType = "org.kubeflow.serving.inference.response"

    var id: String
    var kind: CloudEventPairs.Kind
    /// `ce-inferenceservicename`.
    var service: String
    /// `ce-endpoint` (the predictor, or a canary's name), if any.
    var endpoint: String?
    /// `ce-time`, if present (an event whose `ce-time` is not RFC 3339 is refused: the spec's MUST).
    var time: RFC3339.Instant?
    var data: [UInt8]
    /// Every context attribute as the header binary mode carries it (`ce-id`, `ce-endpoint`, an extension's
    /// `ce-<name>`; names lower-case), in arrival order: what a `custom` mapping's `header:` sources read, since
    /// logger events carry none of the original request's headers.
    var attributes: [(name: String, value: String)] = []

    /// Why a request is not a logger event (`mlops_cloudevents_rejected_total{reason}`), with its message.
    struct Invalid: Error, Sendable {
        var reason: CloudEventsMetrics.RejectReason
        var message: String
    }

    /// Most members of a structured-mode event (its attributes, `data`, `datacontenttype`): as many as the header
    /// lines a binary-mode event may have.
    static let maxMembers = 100

    /// The media type of `request`'s `Content-Type`, lower-case, without parameters or spaces.
    static func mediaType(_ request: HTTPRequest) -> Substring? {
        guard let value = request.headers["Content-Type"] else { return nil }
        let type = value.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        return Substring(type.trimmingCharacters(in: .whitespaces).lowercased())
    }

    /// Whether `request` is in structured content mode (`Content-Type: application/cloudevents+json`, parameters
    /// such as `charset` allowed; `application/cloudevents+jsonx` is another type).
    static func isStructured(_ request: HTTPRequest) -> Bool { mediaType(request) == "application/cloudevents+json" }

    /// Reads the event of `request`.
    static func read(_ request: HTTPRequest) throws(Invalid) -> CloudEvent {
        // Two `Content-Type` lines: structured or binary mode, and the data's type, would be a guess.
        if request.headers.isRepeated("Content-Type") {
            throw Invalid(reason: .invalidEvent, message: "more than one Content-Type header: send one")
        }
        if isStructured(request) { return try structured(request.body) }
        if mediaType(request) == "application/cloudevents-batch+json" {
            // Batched content mode: KServe's logger never sends it, and its `ce-*` headers (if any) would describe
            // no event of the batch.
            throw Invalid(
                reason: .invalidEvent,
                message: "batched content mode (application/cloudevents-batch+json) is not accepted: send each event "
                    + "alone, in binary or structured content mode")
        }
        guard let id = request.headers["ce-id"], !id.isEmpty else {
            throw Invalid(
                reason: .invalidEvent,
                message:
                    "not a CloudEvent: no ce-id header (binary content mode) and Content-Type is not application/cloudevents+json"
            )
        }
        var attributes: [(name: String, value: String)] = []
        for field in request.headers {
            let name = field.name.lowercased()
            guard name.hasPrefix("ce-") else { continue }
            // An attribute has one value: of two, which one the sender meant is a guess (the first was taken: two ids
            // paired with either half).
            guard !attributes.contains(where: { $0.name == name }) else {
                throw Invalid(
                    reason: .invalidEvent, message: "\(name) appears twice: a context attribute has one value")
            }
            attributes.append((name, field.value))
        }
        return try make(
            id: id, type: request.headers["ce-type"], specVersion: request.headers["ce-specversion"],
            source: request.headers["ce-source"], service: request.headers["ce-inferenceservicename"],
            endpoint: request.headers["ce-endpoint"], time: request.headers["ce-time"],
            data: jsonStringUnwrapped(request.body), attributes: attributes)
    }

    /// A binary-mode body that is one JSON string (the CloudEvents SDKs send `str` data with a JSON content type as
    /// a JSON string) is its decoded text, as structured mode's `data` string is; any other body as it is.
    static func jsonStringUnwrapped(_ body: [UInt8]) -> [UInt8] {
        guard let first = body.firstIndex(where: { $0 != 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D }),
            body[first] == 0x22
        else { return body }
        return body.withUnsafeBufferPointer { buffer in
            guard let tape = try? JSONTape(parsingTopLevel: buffer, maxCount: 1), tape.nodes[0].kind == .string
            else { return body }
            return Array(tape.string(0).utf8)
        }
    }

    /// An event from its attributes, checked: CloudEvents 1.0 (`specversion` "1.0", a non-empty `source` and `id`,
    /// the id valid UTF-8: a header's invalid bytes are read as U+FFFD, and two different ids would pair), a logger
    /// type, a service. An empty `endpoint` is none: KServe sends `ce-endpoint` empty unless its pod has an
    /// `endpoint` label, which current releases do not set (it was taken for the version "", and every row refused).
    static func make(
        id: String, type: String?, specVersion: String?, source: String?, service: String?, endpoint: String?,
        time: String?, data: [UInt8], attributes: [(name: String, value: String)] = []
    ) throws(Invalid) -> CloudEvent {
        guard specVersion == "1.0" else {
            throw Invalid(
                reason: .invalidEvent,
                message: specVersion.map { "specversion \"\($0)\" is not 1.0" }
                    ?? "no specversion (ce-specversion): not a CloudEvent 1.0")
        }
        guard let source, !source.isEmpty else {
            throw Invalid(reason: .invalidEvent, message: "no source (ce-source): not a CloudEvent 1.0")
        }
        guard !id.unicodeScalars.contains("\u{FFFD}") else {
            throw Invalid(reason: .invalidEvent, message: "ce-id is not valid UTF-8")
        }
        let kind: CloudEventPairs.Kind
        switch type {
        case requestType?: kind = .request
        case responseType?: kind = .response
        default:
            throw Invalid(
                reason: .unknownType,
                message: "ce-type \"\(type ?? "")\" is neither \(requestType) nor \(responseType)")
        }
        guard let service, !service.isEmpty else {
            throw Invalid(reason: .invalidEvent, message: "no ce-inferenceservicename: which model is this?")
        }
        // The spec's `id` is a non-empty string: without one, unrelated halves would pair under "".
        guard !id.isEmpty else { throw Invalid(reason: .invalidEvent, message: "CloudEvent without an id (a string)") }
        guard id.utf8.count <= 256 else {
            throw Invalid(reason: .invalidEvent, message: "ce-id longer than 256 bytes")
        }
        // The spec's `time` MUST be RFC 3339: one that is not was taken as absent, and its pair's latency went
        // unrecorded without a word.
        var instant: RFC3339.Instant?
        if let time {
            guard let parsed = RFC3339.instant(time) else {
                throw Invalid(
                    reason: .invalidEvent, message: "ce-time \"\(time.prefix(64))\" is not an RFC 3339 timestamp")
            }
            instant = parsed
        }
        return CloudEvent(
            id: id, kind: kind, service: service, endpoint: endpoint.flatMap { $0.isEmpty ? nil : $0 },
            time: instant, data: data, attributes: attributes)
    }

    /// Structured content mode: one JSON object, read with `Ingestion`'s ``JSONTape``. `data` is handed over as the
    /// exact bytes of its JSON value (an object or an array; a string's decoded text), so the decoder sees the
    /// producer's numbers (`1.0`, integers beyond 2^53) and keys as they were sent; `data_base64` is decoded.
    ///
    /// Only the object's own members are laid out (``JSONTape/init(parsingTopLevel:)``): `data` is validated and
    /// copied as bytes, never a node per element. At most ``maxMembers`` members: a binary-mode event carries at
    /// most the server's 100 header lines, and every attribute is kept with the half while it waits.
    static func structured(_ body: [UInt8]) throws(Invalid) -> CloudEvent {
        let fields = body.withUnsafeBufferPointer { buffer -> Result<StructuredFields, Invalid> in
            // The tape points into `buffer`: it is read only inside this closure.
            let tape: JSONTape
            do throws(JSONTapeError) {
                tape = try JSONTape(parsingTopLevel: buffer, maxCount: maxMembers, nonFinite: true)
            } catch {
                // The root's member bound, or a syntax error, named with its offset (a lone surrogate or nesting
                // too deep inside `data` was said as "not a JSON object").
                let message =
                    error.overLimit
                    ? "structured CloudEvent: more than \(maxMembers) attributes"
                    : "structured CloudEvent: not valid JSON at byte offset \(error.offset): \(error.message)"
                return .failure(Invalid(reason: .invalidEvent, message: message))
            }
            guard tape.nodes[0].kind == .object else {
                return .failure(
                    Invalid(reason: .invalidEvent, message: "structured CloudEvent: the body is not a JSON object"))
            }
            func text(_ key: String) -> String? {
                guard let node = tape.member(0, key), tape.nodes[node].kind == .string else { return nil }
                return tape.string(node)
            }
            let data: [UInt8]
            if tape.member(0, "data_base64") != nil && tape.member(0, "data") != nil {
                return .failure(
                    Invalid(
                        reason: .invalidEvent, message: "structured CloudEvent with both data and data_base64"))
            }
            if let encoded = text("data_base64") {
                guard let decoded = Data(base64Encoded: encoded) else {
                    return .failure(
                        Invalid(reason: .invalidEvent, message: "structured CloudEvent: data_base64 is not base64"))
                }
                data = Array(decoded)
            } else if let value = tape.member(0, "data") {
                let node = tape.nodes[value]
                switch node.kind {
                case .string: data = Array(tape.string(value).utf8)
                case .object, .array: data = Array(buffer[node.start..<node.end])
                // A null member is an absent one (the JSON format's rule for every attribute).
                case .null: data = []
                default:
                    return .failure(
                        Invalid(
                            reason: .invalidEvent,
                            message: "structured CloudEvent: data is a number or a boolean, not a request or "
                                + "response (a JSON object, array or string)"))
                }
            } else {
                // No data (optional in CloudEvents): an event without a body, as in binary mode (where a metadata or
                // readiness call's request has none: `not_inference` once paired). It was refused 400 here.
                data = []
            }
            // The attributes as binary mode's headers: strings as they are, numbers as written, booleans as
            // true/false (`datacontenttype` is binary mode's Content-Type, not a ce- header).
            var attributes: [(name: String, value: String)] = []
            var seen = Set<String>()
            for (key, value) in tape.members(0) {
                let name = tape.string(key)
                // As in binary mode: an attribute (or data) has one value; of two, which one was meant is a guess
                // (the pair was made under the last id, the prediction recorded under the first).
                guard seen.insert(name).inserted else {
                    return .failure(
                        Invalid(
                            reason: .invalidEvent,
                            message: "structured CloudEvent: \(name) appears twice: a context attribute has one value"))
                }
                guard name != "data" && name != "data_base64" && name != "datacontenttype" else { continue }
                let node = tape.nodes[value]
                let text: String
                switch node.kind {
                case .string: text = tape.string(value)
                case .number: text = tape.numberText(value)
                case .bool: text = node.flag ? "true" : "false"
                default: continue
                }
                attributes.append(("ce-" + name.lowercased(), text))
            }
            return .success(
                StructuredFields(
                    id: text("id") ?? "", type: text("type"), specVersion: text("specversion"),
                    source: text("source"), service: text("inferenceservicename"), endpoint: text("endpoint"),
                    time: text("time"), data: data, attributes: attributes))
        }
        switch fields {
        case .failure(let invalid): throw invalid
        case .success(let f):
            return try make(
                id: f.id, type: f.type, specVersion: f.specVersion, source: f.source, service: f.service,
                endpoint: f.endpoint, time: f.time, data: f.data, attributes: f.attributes)
        }
    }

    /// What ``structured(_:)`` reads from the JSON object.
    private struct StructuredFields {
        var id: String
        var type: String?
        var specVersion: String?
        var source: String?
        var service: String?
        var endpoint: String?
        var time: String?
        var data: [UInt8]
        var attributes: [(name: String, value: String)]
    }
}

/// RFC 3339 timestamps (`2026-12-02T18:40:48.123456Z`, `…+01:00`) as Unix time.
enum RFC3339 {
    /// A time as whole Unix seconds and the fraction of the next: the difference of two is exact to the fraction's
    /// precision (as one Double near 1.8e9, a 1 µs difference read 0.954 µs).
    struct Instant: Sendable, Equatable {
        let seconds: Int
        let fraction: Double

        /// Unix time.
        var unix: Double { Double(seconds) + fraction }

        /// Seconds from `start` to this time.
        func seconds(since start: Instant) -> Double { Double(seconds - start.seconds) + (fraction - start.fraction) }
    }

    /// `text` as an ``Instant``, or nil when it is not RFC 3339 (a date that does not exist, such as February 30, an
    /// offset past 23:59, included).
    static func instant(_ text: String) -> Instant? {
        let b = Array(text.utf8)
        func digits(_ at: Int, _ n: Int) -> Int? {
            guard at + n <= b.count else { return nil }
            var v = 0
            for i in at..<(at + n) {
                guard b[i] >= 0x30 && b[i] <= 0x39 else { return nil }
                v = v * 10 + Int(b[i] - 0x30)
            }
            return v
        }
        guard b.count >= 20, let year = digits(0, 4), b[4] == 0x2D, let month = digits(5, 2), b[7] == 0x2D,
            let day = digits(8, 2), b[10] == 0x54 || b[10] == 0x74 || b[10] == 0x20, let hour = digits(11, 2),
            b[13] == 0x3A, let minute = digits(14, 2), b[16] == 0x3A, let second = digits(17, 2),
            (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year), hour < 24, minute < 60,
            second < 61
        else { return nil }
        var i = 19
        var fraction = 0.0
        if i < b.count && b[i] == 0x2E {
            i += 1
            var scale = 0.1
            let start = i
            while i < b.count && b[i] >= 0x30 && b[i] <= 0x39 {
                fraction += Double(b[i] - 0x30) * scale
                scale /= 10
                i += 1
            }
            guard i > start else { return nil }
        }
        guard i < b.count else { return nil }
        var offset = 0
        if b[i] == 0x5A || b[i] == 0x7A {
            i += 1
        } else if b[i] == 0x2B || b[i] == 0x2D, let h = digits(i + 1, 2), i + 3 < b.count, b[i + 3] == 0x3A,
            let m = digits(i + 4, 2), h < 24, m < 60
        {
            offset = (h * 3600 + m * 60) * (b[i] == 0x2B ? 1 : -1)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        // Days from the civil date (proleptic Gregorian), as in Howard Hinnant's days_from_civil.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return Instant(seconds: days * 86_400 + hour * 3600 + minute * 60 + second - offset, fraction: fraction)
    }

    /// Days in `month` (1...12) of `year` (Gregorian leap years).
    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }
}
