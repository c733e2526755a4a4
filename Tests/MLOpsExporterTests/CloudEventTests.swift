import Capture
import HTTPServer
import Ingestion
import Testing

@testable import MLOpsExporter

/// The refusal of an event without an id.
private let noID = "CloudEvent without an id (a string)"
/// The refusal of structured data that is no request or response.
private let dataNotARequest =
    "structured CloudEvent: data is a number or a boolean, not a request or response (a JSON object, array or string)"
/// The attributes that make an object a CloudEvent 1.0 (the members before the one a case is about).
private let v1 = #""specversion": "1.0", "source": "t", "#

@Suite struct CloudEventTests {
    /// A categorical `1.0` and an integer beyond 2^53 in the request, a prediction in the response.
    static let request = #"{"rows": [{"c": 1.0, "big": 9007199254740993}, {"c": 2, "big": -0.0}]}"#
    static let response = #"{"p": ["1", "0"], "p": ["0", "1"]}"#

    static func binary(_ type: String, _ data: String, extra: [(String, String)] = []) -> HTTPRequest {
        var headers: [(String, String)] = [
            ("Content-Type", "application/json"), ("ce-id", "e-1"), ("ce-specversion", "1.0"), ("ce-type", type),
            ("ce-source", "test"), ("ce-inferenceservicename", "svc"), ("ce-endpoint", "canary"),
        ]
        headers += extra
        return HTTPRequest(
            method: "POST", path: CloudEventsEndpoint.path, headers: HTTPHeaders(headers), body: Array(data.utf8))
    }

    static func structured(
        _ type: String, _ data: String, extra: String = "", endpoint: String = "canary"
    )
        -> HTTPRequest
    {
        let body = """
            {"specversion": "1.0", "id": "e-1", "type": "\(type)", "source": "test", "inferenceservicename": "svc",
             "endpoint": "\(endpoint)", \(extra) "datacontenttype": "application/json", "data": \(data)}
            """
        return HTTPRequest(
            method: "POST", path: CloudEventsEndpoint.path,
            headers: ["Content-Type": "application/cloudevents+json; charset=utf-8"], body: Array(body.utf8))
    }

    static func decoder() throws -> CaptureDecoder {
        let schema = try Schema(
            task: .classification, classes: ["0", "1"],
            features: [FeatureSpec("c", .categorical), FeatureSpec("big", .categorical)])
        return try CaptureDecoder(
            protocol: .custom, schema: schema,
            custom: CustomMapping(
                features: ["c": .init(.request, "/rows/*/c"), "big": .init(.request, "/rows/*/big")],
                prediction: .init(.response, "/p/*")))
    }

    static func decode(_ request: CloudEvent, _ response: CloudEvent) throws -> [PredictionEvent] {
        var events: [PredictionEvent] = []
        try request.data.withUnsafeBytes { q in
            try response.data.withUnsafeBytes { r in
                _ = try decoder().decode(request: q, response: r, headers: []) { events.append($0) }
            }
        }
        return events
    }

    @Test func structuredDataIsTheProducersBytes() throws {
        let binary = try Self.decode(
            CloudEvent.read(Self.binary(CloudEvent.requestType, Self.request)),
            CloudEvent.read(Self.binary(CloudEvent.responseType, Self.response)))
        let structured = try Self.decode(
            CloudEvent.read(Self.structured(CloudEvent.requestType, Self.request)),
            CloudEvent.read(Self.structured(CloudEvent.responseType, Self.response)))
        #expect(binary.count == 2)
        #expect(
            binary.map(\.features) == [
                [.category("1.0"), .category("9007199254740993")], [.category("2"), .category("-0.0")],
            ])
        // JSON's last duplicate key wins, as in binary mode.
        #expect(binary.map(\.prediction) == [.label("0"), .label("1")])
        #expect(structured == binary)
        // The data's bytes exactly, whitespace and all.
        let event = try CloudEvent.read(Self.structured(CloudEvent.requestType, #"{ "rows" : [ 1.0 ] }"#))
        #expect(event.data == Array(#"{ "rows" : [ 1.0 ] }"#.utf8))
        #expect(event.id == "e-1" && event.service == "svc" && event.endpoint == "canary" && event.kind == .request)
    }

    /// The SDKs send `str` data with a JSON content type as a JSON string, in either mode: binary mode's body is then
    /// its text as structured mode's `data` string is (it was read as the string itself: missing_field).
    @Test func aJSONStringBodyIsItsTextInBothModes() throws {
        let quoted = "\"" + Self.request.replacingOccurrences(of: "\"", with: "\\\"") + "\""
        let binary = try CloudEvent.read(Self.binary(CloudEvent.requestType, " " + quoted + "\n"))
        let structured = try CloudEvent.read(Self.structured(CloudEvent.requestType, quoted))
        #expect(binary.data == Array(Self.request.utf8))
        #expect(structured.data == binary.data)
        let events = try Self.decode(binary, CloudEvent.read(Self.binary(CloudEvent.responseType, Self.response)))
        #expect(events.count == 2)
        // A body that is not one JSON string is its bytes.
        #expect(try CloudEvent.read(Self.binary(CloudEvent.requestType, "\"a\" x")).data == Array("\"a\" x".utf8))
    }

    @Test func attributesAreTheBinaryModesCeHeaders() throws {
        let binary = try CloudEvent.read(
            Self.binary(CloudEvent.requestType, "{}", extra: [("Ce-Region", "eu"), ("X-Other", "no")]))
        #expect(
            binary.attributes.map { "\($0.name)=\($0.value)" } == [
                "ce-id=e-1", "ce-specversion=1.0", "ce-type=\(CloudEvent.requestType)", "ce-source=test",
                "ce-inferenceservicename=svc", "ce-endpoint=canary", "ce-region=eu",
            ])
        let structured = try CloudEvent.read(
            Self.structured(CloudEvent.requestType, "{}", extra: #""region": "eu", "n": 2.50, "b": true, "o": {},"#))
        #expect(
            structured.attributes.map { "\($0.name)=\($0.value)" } == [
                "ce-specversion=1.0", "ce-id=e-1", "ce-type=\(CloudEvent.requestType)", "ce-source=test",
                "ce-inferenceservicename=svc", "ce-endpoint=canary", "ce-region=eu", "ce-n=2.50", "ce-b=true",
            ])
    }

    /// `data` is optional in CloudEvents, and a null member is an absent one: such an event has no body, as a binary
    /// one without a body (a metadata or readiness call's: `not_inference` once paired). Both were refused 400
    /// `invalid_event` (a CloudEvents probe).
    @Test(arguments: [#", "data": null"#, ""])
    func aStructuredEventWithoutDataHasNoBody(data: String) throws {
        let body =
            #"{\#(v1)"id": "a", "type": "\#(CloudEvent.requestType)", "inferenceservicename": "s"\#(data)}"#
        let request = HTTPRequest(
            method: "POST", path: CloudEventsEndpoint.path, headers: ["Content-Type": "application/cloudevents+json"],
            body: Array(body.utf8))
        let event = try CloudEvent.read(request)
        #expect(event.data.isEmpty && event.id == "a")
        let binary = try CloudEvent.read(Self.binary(CloudEvent.requestType, ""))
        #expect(binary.data.isEmpty)
    }

    @Test(arguments: [
        ("[1, 2]", "structured CloudEvent: the body is not a JSON object"),
        (
            #"{"id": "a", "#,
            "structured CloudEvent: not valid JSON at byte offset 12: expected string key in object, found end of input"
        ),
        ("", "structured CloudEvent: not valid JSON at byte offset 0: expected a value, found end of input"),
        // A lone surrogate in an attribute: the parser's reason (it was "the body is not a JSON object").
        (
            #"{"id": "\ud800", "specversion": "1.0"}"#,
            "structured CloudEvent: not valid JSON at byte offset 8: unpaired high surrogate \\uD800"
        ),
        (#"{"id": "a", "type": "x", "data": 3}"#, dataNotARequest),
        (#"{"id": "a", "type": "x", "data": true}"#, dataNotARequest),
        (#"{"id": "a", "data_base64": "!!"}"#, "structured CloudEvent: data_base64 is not base64"),
        (#"{"id": "a", "data_base64": "e30=", "data": {}}"#, "structured CloudEvent with both data and data_base64"),
        (
            #"{\#(v1)"id": "a", "type": "x", "data": {}}"#,
            #"ce-type "x" is neither \#(CloudEvent.requestType) nor \#(CloudEvent.responseType)"#
        ),
        (
            #"{\#(v1)"id": "a", "type": "\#(CloudEvent.requestType)", "data": {}}"#,
            "no ce-inferenceservicename: which model is this?"
        ),
        // No id, or one that is no non-empty string: such halves all paired under "" before.
        (#"{\#(v1)"type": "\#(CloudEvent.requestType)", "inferenceservicename": "s", "data": {}}"#, noID),
        (#"{\#(v1)"id": "", "type": "\#(CloudEvent.requestType)", "inferenceservicename": "s", "data": {}}"#, noID),
        (#"{\#(v1)"id": 12345, "type": "\#(CloudEvent.responseType)", "inferenceservicename": "s", "data": {}}"#, noID),
        (#"{\#(v1)"id": null, "type": "\#(CloudEvent.requestType)", "inferenceservicename": "s", "data": {}}"#, noID),
        (#"{\#(v1)"id": {}, "type": "\#(CloudEvent.requestType)", "inferenceservicename": "s", "data": {}}"#, noID),
        // Not CloudEvents 1.0 (accepted before).
        (
            #"{"specversion": "0.3", "source": "t", "id": "a", "type": "\#(CloudEvent.requestType)", "data": {}}"#,
            #"specversion "0.3" is not 1.0"#
        ),
        (
            #"{"source": "t", "id": "a", "type": "\#(CloudEvent.requestType)", "data": {}}"#,
            "no specversion (ce-specversion): not a CloudEvent 1.0"
        ),
        (
            #"{"specversion": "1.0", "id": "a", "type": "\#(CloudEvent.requestType)", "data": {}}"#,
            "no source (ce-source): not a CloudEvent 1.0"
        ),
    ])
    func structuredRefusalsAreKept(body: String, message: String) {
        let request = HTTPRequest(
            method: "POST", path: CloudEventsEndpoint.path, headers: ["Content-Type": "application/cloudevents+json"],
            body: Array(body.utf8))
        #expect(throws: CloudEvent.Invalid.self) { try CloudEvent.read(request) }
        do {
            _ = try CloudEvent.read(request)
        } catch {
            #expect(error.message == message)
            #expect(error.reason == (message.hasPrefix("ce-type") ? .unknownType : .invalidEvent))
        }
    }

    @Test func base64DataIsDecoded() throws {
        let event = try CloudEvent.read(
            HTTPRequest(
                method: "POST", path: CloudEventsEndpoint.path,
                headers: ["Content-Type": "application/cloudevents+json"],
                body: Array(
                    #"{\#(v1)"id": "b", "type": "\#(CloudEvent.responseType)", "inferenceservicename": "svc", "data_base64": "eyJwIjogWzEuMF19"}"#
                        .utf8)))
        #expect(event.data == Array(#"{"p": [1.0]}"#.utf8) && event.kind == .response)
    }

    /// KServe sends `ce-endpoint` empty unless the predictor's pod has an `endpoint` label, which current releases do
    /// not set: an empty endpoint is none (it was the version "", and every row was refused `missing_version`).
    @Test func anEmptyEndpointIsNone() throws {
        let binary = try CloudEvent.read(
            Self.binary(CloudEvent.requestType, "{}").replacing("ce-endpoint", with: ""))
        #expect(binary.endpoint == nil)
        let structured = try CloudEvent.read(
            Self.structured(CloudEvent.requestType, "{}", endpoint: ""))
        #expect(structured.endpoint == nil)
    }

    /// A header's bytes that are not UTF-8 are read as U+FFFD, so `a\xff` and `a\xfe` were one id and paired.
    @Test func anIDThatIsNotUTF8IsRefused() {
        let request = Self.binary(CloudEvent.requestType, "{}").replacing("ce-id", with: "a\u{FFFD}")
        #expect {
            try CloudEvent.read(request)
        } throws: { error in
            (error as? CloudEvent.Invalid)?.message == "ce-id is not valid UTF-8"
        }
    }

    /// Two `Content-Type` lines (structured or binary mode, and the data's type, a guess): refused, in both modes.
    @Test(arguments: ["application/json", "application/cloudevents+json"])
    func twoContentTypesAreRefused(second: String) {
        let request = Self.binary(
            CloudEvent.requestType, Self.request, extra: [("Content-Type", second)])
        #expect {
            try CloudEvent.read(request)
        } throws: { error in
            (error as? CloudEvent.Invalid)?.message == "more than one Content-Type header: send one"
        }
    }

    /// A binary event without `ce-specversion` 1.0 or without `ce-source` (both accepted before).
    @Test(arguments: [("ce-specversion", "0.3"), ("ce-source", "")])
    func binaryEventsAreCloudEvents1(name: String, value: String) {
        let request = Self.binary(CloudEvent.requestType, "{}").replacing(name, with: value)
        #expect(throws: CloudEvent.Invalid.self) { try CloudEvent.read(request) }
    }

    @Test("a structured event with more members than a binary one may have headers is refused")
    func tooManyStructuredAttributes() throws {
        let extra = (0..<CloudEvent.maxMembers).map { #""x\#($0)": 1, "# }.joined()
        let request = Self.structured(CloudEvent.requestType, "{}", extra: extra)
        #expect(throws: CloudEvent.Invalid.self) { try CloudEvent.read(request) }
        do throws(CloudEvent.Invalid) {
            _ = try CloudEvent.read(request)
        } catch {
            #expect(error.reason == .invalidEvent && error.message == "structured CloudEvent: more than 100 attributes")
        }
        let fits = (0..<(CloudEvent.maxMembers - 8)).map { #""x\#($0)": 1, "# }.joined()
        let event = try CloudEvent.read(Self.structured(CloudEvent.requestType, "[1, [2]]", extra: fits))
        #expect(event.data == Array("[1, [2]]".utf8) && event.attributes.count == CloudEvent.maxMembers - 8 + 6)
    }
}

extension HTTPRequest {
    /// This request with the value of its field `name` (case-insensitive) replaced by `value`.
    fileprivate func replacing(_ name: String, with value: String) -> HTTPRequest {
        var fields: [(String, String)] = []
        for field in headers {
            fields.append((field.name, field.name.lowercased() == name.lowercased() ? value : field.value))
        }
        return HTTPRequest(method: method, path: path, headers: HTTPHeaders(fields), body: body)
    }
}
