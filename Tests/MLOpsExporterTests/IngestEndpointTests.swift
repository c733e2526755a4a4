import Foundation
import Ingestion
import Testing

@testable import MLOpsExporter

@Suite("Ingestion endpoint: request parsing")
struct IngestEndpointTests {
    @Test(
        "Content-Type picks the body format; parameters, case and blanks do not matter",
        arguments: [
            ("application/json", BodyFormat.json), ("APPLICATION/JSON", .json),
            ("application/json; charset=utf-8", .json),
            (" \tapplication/json ;charset=utf-8", .json), ("application/x-ndjson", .ndjson),
            ("Application/X-NDJSON; charset=UTF-8", .ndjson), ("application/ndjson", .ndjson),
            ("application/jsonl", .ndjson), ("application/x-jsonlines", .ndjson), ("application/jsonlines", .ndjson),
        ] as [(String, BodyFormat)])
    func known(_ contentType: String, _ expected: BodyFormat) {
        #expect(IngestEndpoint.format(contentType, body: []) == expected, "\(contentType)")
    }

    @Test(
        "other media types are refused (415)",
        arguments: [
            "", ";", "text/plain", "application/jsonx", "application/jso", "application/json-seq",
            "application/x-ndjson2",
            "application/ json", "applicationjson", "application/ndjson\u{00E9}",
        ])
    func unknown(_ contentType: String) {
        #expect(IngestEndpoint.format(contentType, body: []) == nil, "\(contentType)")
    }

    @Test("without Content-Type, a body starting with '[' is JSON, anything else NDJSON")
    func sniffed() {
        #expect(IngestEndpoint.format(nil, body: Array(" \n[{}]".utf8)) == .json)
        #expect(IngestEndpoint.format(nil, body: Array("{}\n{}".utf8)) == .ndjson)
        #expect(IngestEndpoint.format(nil, body: []) == .ndjson)
    }

    @Test("ingestion paths name a model and a kind; anything else is not one")
    func routes() {
        #expect(IngestEndpoint.route("/api/v1/models/fraud/predictions")?.model == "fraud")
        #expect(IngestEndpoint.route("/api/v1/models/fraud/labels")?.kind == .labels)
        #expect(IngestEndpoint.route("/api/v1/models/fraud/predictions")?.kind == .predictions)
        for path in [
            "/api/v1/models//predictions", "/api/v1/models/fraud", "/api/v1/models/fraud/",
            "/api/v1/models/fraud/other",
            "/api/v1/models/fraud/predictions/x", "/api/v2/models/fraud/predictions", "/metrics",
        ] {
            #expect(IngestEndpoint.route(path) == nil, "\(path)")
        }
    }
}

@Suite("JSON string literals")
struct JSONStringLiteralTests {
    @Test("every literal parses back (Foundation's JSON parser) to the string it was made from")
    func roundTrip() throws {
        let samples = ["", "plain", "quote \" backslash \\ slash /", "\n\r\t\u{0}\u{1}\u{1F}\u{7F}", "é 日本 😀"]
        for s in samples {
            let data = Data("[\(jsonStringLiteral(s))]".utf8)
            let parsed = try #require(try JSONSerialization.jsonObject(with: data) as? [String])
            #expect(parsed.first.map { Array($0.utf8) } == Array(s.utf8), "\(s.debugDescription)")
        }
    }
}
