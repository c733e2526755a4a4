import Ingestion
import Testing

private let good = #"{"version":"v","prediction":1}"#

@Suite("Body framing")
struct FramingTests {
    @Test("JSON: empty array and whitespace")
    func emptyArray() throws {
        #expect(try decode("[]").report == DecodeReport())
        #expect(try decode(" \r\n\t[ \n ] \n").report == DecodeReport())
        let decoded = try decode("\n[ \(good) ,\n\t\(good) ]\n")
        #expect(decoded.report.accepted == 2)
        #expect(decoded.indices == [0, 1])
    }

    @Test(
        "JSON: malformed bodies are rejected whole with the byte offset",
        arguments: [
            ("", 0, "expected '[' (a JSON array of events), found end of input"),
            ("   ", 3, "expected '[' (a JSON array of events), found end of input"),
            (good, 0, "expected '[' (a JSON array of events), found '{'"),
            ("[\(good),]", 32, "expected a value, found ']'"),
            ("[\(good)", 31, "expected ',' or ']' in array, found end of input"),
            ("[\(good)] x", 33, "unexpected data after the array"),
            ("[\(good)][]", 32, "unexpected data after the array"),
            (#"[{"version":"v" "prediction":1}]"#, 16, "expected ',' or '}' in object, found '\"'"),
            (#"[{"version":"v",}]"#, 16, "expected string key in object, found '}'"),
            (#"[{"version" "v"}]"#, 12, "expected ':' after object key, found '\"'"),
            (#"[{version:"v"}]"#, 2, "expected string key in object, found 'v'"),
            (#"[{"a":tru}]"#, 6, "invalid literal"),
            (#"[{"a":nul}]"#, 6, "invalid literal"),
            ("[\(good),{\"a\":[1,2,]}]", 42, "expected a value, found ']'"),
            ("[\(good),{\"a\":{\"b\":1,}}]", 44, "expected string key in object, found '}'"),
        ])
    func malformedBodies(_ body: String, _ offset: Int, _ message: String) {
        let error = malformed(body)
        #expect(error?.offset == offset)
        #expect(error?.message == message)
    }

    @Test("JSON: the malformed-body message names the byte offset")
    func malformedDescription() {
        #expect(
            BodyError.malformed(offset: 33, message: "expected a value, found ']'").description
                == "malformed JSON at byte offset 33: expected a value, found ']'")
        #expect(BodyError.malformed(offset: 0, message: "").reason == .invalidJSON)
        #expect(BodyError.tooManyEvents(count: 3, limit: 2).reason == .tooManyEvents)
    }

    @Test("JSON: a syntax error after valid events visits nothing")
    func nothingVisitedOnSyntaxError() {
        var visited = 0
        #expect(throws: BodyError.self) {
            _ = try decodePredictions(
                body: Array("[\(good),\(good),{]".utf8), format: .json, schema: regressionSchema(), maxEvents: 10
            ) { _, _ in visited += 1 }
        }
        #expect(visited == 0)
    }

    @Test("JSON: non-object elements and bad events are rejected, good ones accepted")
    func partialBatch() throws {
        let decoded = try decode(#"[\#(good), 42, {"prediction":1}, [1], \#(good)]"#)
        #expect(decoded.indices == [0, 4])
        #expect(decoded.report.accepted == 2)
        #expect(decoded.report.rejected == 3)
        #expect(decoded.report.errors.map(\.index) == [1, 2, 3])
        #expect(decoded.report.errors.map(\.offset) == [33, 37, 55])
        #expect(decoded.report.errors.map(\.reason) == [.notAnObject, .missingVersion, .notAnObject])
        #expect(decoded.report.rejectedByReason == ["not_an_object": 2, "missing_version": 1])
        #expect(decoded.report.errors[1].description == "event 2: missing 'version'")
    }

    @Test("JSON: nested unknown values are skipped, up to the depth limit")
    func depth() throws {
        let nested = #"{"a":[{"b":{"c":[[],{},"x\"]",1e5,true,false,null]}}]}"#
        #expect(try decode(#"[{"version":"v","prediction":1,"meta":\#(nested)}]"#).report.accepted == 1)
        // The event object is level 1; 63 more levels are fine, 64 are not.
        let ok = String(repeating: "[", count: 63) + String(repeating: "]", count: 63)
        #expect(try decode(#"[{"version":"v","prediction":1,"meta":\#(ok)}]"#).report.accepted == 1)
        let deep = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        let body = #"[{"version":"v","prediction":1,"meta":\#(deep)}]"#
        #expect(malformed(body)! == (38 + 63, "nesting deeper than 64 levels"))
    }

    @Test("maxEvents: more events than the limit reject the whole body, nothing visited")
    func maxEvents() throws {
        let json = "[\(good),\(good),\(good)]"
        #expect(try decode(json, maxEvents: 3).report.accepted == 3)
        #expect(throws: BodyError.tooManyEvents(count: 3, limit: 2)) { try decode(json, maxEvents: 2) }
        let ndjson = "\(good)\n\n\(good)\r\n  \n\(good)\n"
        #expect(try decode(ndjson, .ndjson, maxEvents: 3).report.accepted == 3)
        #expect(throws: BodyError.tooManyEvents(count: 3, limit: 2)) { try decode(ndjson, .ndjson, maxEvents: 2) }
        #expect(throws: BodyError.tooManyEvents(count: 3, limit: 0)) { try decode(ndjson, .ndjson, maxEvents: 0) }
        #expect(BodyError.tooManyEvents(count: 3, limit: 2).description == "too many events: 3 > 2")
    }

    @Test("NDJSON: empty bodies and blank lines")
    func ndjsonBlank() throws {
        #expect(try decode("", .ndjson).report == DecodeReport())
        #expect(try decode("\n\n \t\r\n", .ndjson).report == DecodeReport())
        let decoded = try decode("\n\(good)\n\n   \n\(good)", .ndjson)
        #expect(decoded.report.accepted == 2)
        #expect(decoded.indices == [0, 1])
    }

    @Test("an empty buffer without a base address")
    func nilBase() throws {
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        let schema = regressionSchema()
        #expect(
            try decodePredictions(body: empty, format: .ndjson, schema: schema, maxEvents: 1) { _, _ in }
                == DecodeReport())
        #expect(throws: BodyError.self) {
            try decodePredictions(body: empty, format: .json, schema: schema, maxEvents: 1) { _, _ in }
        }
        #expect(
            try decodeLabels(body: empty, format: .ndjson, schema: schema, maxEvents: 1) { _, _ in } == DecodeReport())
    }

    @Test("NDJSON: CRLF line endings")
    func crlf() throws {
        let decoded = try decode("\(good)\r\n\(good)\r\n", .ndjson)
        #expect(decoded.report.accepted == 2)
        #expect(decoded.report.rejected == 0)
        #expect(try decode("\(good)\r\n\(good)\r", .ndjson).report.accepted == 2)  // CR before the end, no LF
    }

    @Test("NDJSON: only line feeds, with a limit of zero events, and a 1 MB line")
    func framingEdges() throws {
        #expect(try decode("\n\n\n\n", .ndjson, maxEvents: 0).report == DecodeReport())
        #expect(throws: BodyError.tooManyEvents(count: 1, limit: 0)) {
            try decode("\n\n\(good)\n\n", .ndjson, maxEvents: 0)
        }
        let long = #"{"version":"v","prediction":1,"id":""# + String(repeating: "k", count: 1_000_000) + #""}"#
        let decoded = try decode("\(good)\n\(long)\n\(good)", .ndjson)
        #expect(decoded.report.accepted == 3)
        #expect(decoded.events[1].id?.utf8.count == 1_000_000)
    }

    @Test("NDJSON: a malformed line rejects only that line, with its line number and column")
    func badLine() throws {
        let body =
            "\(good)\n\n{\"version\":\"v\",\"prediction\":1,}\r\n\(good)\n[1]\n{\"prediction\":2}\n\(good) x\n\(good)"
        let decoded = try decode(body, .ndjson)
        #expect(decoded.report.accepted == 3)
        #expect(decoded.indices == [0, 2, 6])
        #expect(decoded.report.rejected == 4)
        let errors = decoded.report.errors
        #expect(errors.map(\.line) == [3, 5, 6, 7])
        #expect(errors.map(\.index) == [1, 3, 4, 5])
        #expect(errors.map(\.reason) == [.invalidJSON, .notAnObject, .missingVersion, .invalidJSON])
        #expect(errors[0].message == "malformed JSON at column 31: expected string key in object, found '}'")
        #expect(errors[0].offset == 32 + 30)
        #expect(
            errors[0].description
                == "event 1 (line 3): malformed JSON at column 31: expected string key in object, found '}'")
        #expect(errors[3].message == "malformed JSON at column 32: unexpected data after the event object")
        #expect(decoded.report.rejectedByReason == ["invalid_json": 2, "not_an_object": 1, "missing_version": 1])
    }

    /// Columns count characters, as the CLI's input errors do: after `é€😀` (9 bytes, 3 characters) the column was
    /// the byte's, 6 more than the `FILE:LINE:COLUMN` the batch printed before it (a batch probe).
    @Test func aColumnCountsCharactersNotBytes() throws {
        let decoded = try decode("{\"version\":\"é€😀\",}", .ndjson)
        #expect(
            decoded.report.errors.map(\.message) == [
                "malformed JSON at column 18: expected string key in object, found '}'"
            ])
    }

    @Test("NDJSON: an object cannot span lines; an unterminated string stops at the line end")
    func spanning() throws {
        let decoded = try decode("{\"version\":\"v\",\n\"prediction\":1}\n{\"id\":\"abc\n\(good)", .ndjson)
        #expect(decoded.report.accepted == 1)
        #expect(decoded.report.errors.map(\.line) == [1, 2, 3])
        #expect(
            decoded.report.errors.map(\.message) == [
                "malformed JSON at column 16: expected string key in object, found end of input",
                "malformed JSON at column 13: unexpected data after the event object",
                "malformed JSON at column 7: unterminated string",
            ])
    }

    @Test("only the first 20 errors are kept, all are counted")
    func errorCap() throws {
        let body = Array(repeating: "{}", count: 25).joined(separator: "\n") + "\n" + good
        let decoded = try decode(body, .ndjson)
        #expect(decoded.report.accepted == 1)
        #expect(decoded.report.rejected == 25)
        #expect(decoded.report.errors.count == DecodeReport.maxRecordedErrors)
        #expect(decoded.report.rejectedByReason == ["missing_version": 25])
    }
}
