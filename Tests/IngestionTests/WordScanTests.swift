import Ingestion
import Testing

/// Decodes the first `body.count` bytes of `body + canary` as a buffer that ends after `body`: the canary bytes follow
/// in memory, so a decoder reading past the end would see them (and, with canaries such as `"`, decode differently).
private func decodeBounded(
    _ body: String, canary: String, _ format: BodyFormat, schema: Schema = regressionSchema(), maxEvents: Int = 1000
) throws(BodyError) -> Decoded {
    let bytes = Array(body.utf8) + Array(canary.utf8)
    let count = body.utf8.count
    var decoded = Decoded()
    let result: Result<DecodeReport, BodyError> = bytes.withUnsafeBytes { raw in
        do throws(BodyError) {
            return .success(
                try decodePredictions(
                    body: UnsafeRawBufferPointer(rebasing: raw[0..<count]), format: format, schema: schema,
                    maxEvents: maxEvents
                ) { event, index in
                    decoded.events.append(event)
                    decoded.indices.append(index)
                })
        } catch { return .failure(error) }
    }
    decoded.report = try result.get()
    return decoded
}

/// A regression schema whose features are `names`, all numeric.
private func numericSchema(_ names: [String]) -> Schema {
    try! Schema(task: .regression, features: names.map { FeatureSpec($0, .numeric) })
}

@Suite("Word-at-a-time scanning")
struct WordScanTests {
    @Test("an escape, a multi-byte character or the closing quote at every offset of an 8-byte word")
    func stopsAtEveryOffset() throws {
        for length in 0..<40 {
            for at in 0...length {
                let head = String(repeating: "a", count: at)
                let tail = String(repeating: "b", count: length - at)
                #expect(try id("\"\(head)\\n\(tail)\"", prefix: length % 8) == head + "\n" + tail)
                #expect(try id("\"\(head)\\u00e9\(tail)\"", prefix: length % 8) == head + "é" + tail)
                #expect(try id("\"\(head)é\(tail)\"", prefix: length % 8) == head + "é" + tail)
                #expect(try id("\"\(head)😀\(tail)\"", prefix: length % 8) == head + "😀" + tail)
                #expect(try id("\"\(head)\\\"\(tail)\"", prefix: length % 8) == head + "\"" + tail)
                #expect(try id("\"\(head)\\\\\(tail)\"", prefix: length % 8) == head + "\\" + tail)
            }
            let plain = String(repeating: "x", count: length)
            #expect(try id("\"\(plain)\"", prefix: length % 8) == plain)
        }
    }

    @Test("control characters and invalid UTF-8 are found at every offset")
    func invalidAtEveryOffset() {
        for length in 0..<24 {
            for at in 0..<length {
                for bad: [UInt8] in [[0x01], [0x1F], [0x0A], [0x00], [0xFF], [0xC3, 0x28], [0xED, 0xA0, 0x80]] {
                    var bytes = Array(#"[{"version":"v","prediction":1,"id":""#.utf8)
                    let quote = bytes.count - 1
                    bytes += Array(repeating: 0x61, count: at) + bad + Array(repeating: 0x62, count: length - at)
                    bytes += Array(#""}]"#.utf8)
                    do {
                        _ = try decodePredictions(
                            body: bytes, format: .json, schema: regressionSchema(), maxEvents: 10
                        ) { _, _ in }
                        Issue.record("accepted \(bad) at \(at) of \(length)")
                    } catch {
                        guard case .malformed(let offset, let message) = error else {
                            Issue.record("\(error)")
                            continue
                        }
                        if bad[0] < 0x20 {
                            #expect(message == "unescaped control character in string")
                            #expect(offset == quote + 1 + at)
                        } else {
                            #expect(message == "invalid UTF-8 in string")
                            #expect(offset == quote + 1 + at)
                        }
                    }
                }
            }
        }
    }

    @Test("a string unterminated at the end of the buffer never reads past it", arguments: [BodyFormat.json, .ndjson])
    func unterminatedAtEnd(_ format: BodyFormat) throws {
        let open = format == .json ? "[" : ""
        for length in 0..<24 {
            let text = String(repeating: "s", count: length)
            for canary in ["\"}", "\"}]", "\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"", "\\"] {
                // In a value, in a key of the event and in a key of `features`, and after an escape.
                for body in [
                    open + #"{"version":"v","prediction":1,"id":""# + text,
                    open + #"{""# + text,
                    open + #"{"features":{""# + text,
                    open + #"{"features":{"ag"#,
                    open + #"{"id":""# + text + "\\",
                    open + #"{"id":""# + text + #"\u00"#,
                ] {
                    if format == .json {
                        #expect(throws: BodyError.self) { try decodeBounded(body, canary: canary, .json) }
                    } else {
                        let decoded = try decodeBounded(body, canary: canary, .ndjson)
                        #expect(decoded.report.accepted == 0)
                        #expect(decoded.report.errors.first?.reason == .invalidJSON)
                    }
                }
            }
        }
    }

    @Test("keys of 1 to 24 bytes match in order, out of order and not as prefixes or near misses")
    func keyLengths() throws {
        for length in 1...24 {
            let name = String((0..<length).map { Character(Unicode.Scalar(UInt8(0x61 + $0 % 26))) })
            let longer = name + "z"
            var lastChanged = Array(name.utf8)
            lastChanged[length - 1] ^= 0x01
            var firstChanged = Array(name.utf8)
            firstChanged[0] ^= 0x01
            let nearLast = String(decoding: lastChanged, as: UTF8.self)
            let nearFirst = String(decoding: firstChanged, as: UTF8.self)
            let prefix = String(name.dropLast())
            let schema = numericSchema([name, longer, "k"])
            let features = #"{"k":3,"\#(longer)":2,"\#(name)":1}"#
            for format in [BodyFormat.json, .ndjson] {
                let event = #"{"version":"v","prediction":1,"features":\#(features)}"#
                let body = format == .json ? "[\(event)]" : event
                let decoded = try decodeBounded(body, canary: "\"\"\"\"", format, schema: schema)
                #expect(decoded.events.first?.features == [.number(1), .number(2), .number(3)])
            }
            // In schema order (every hint hits), then keys that differ only in their first or last byte or length.
            let inOrder = #"{"\#(name)":1,"\#(longer)":2,"k":3}"#
            #expect(
                try single(#"{"version":"v","prediction":1,"features":\#(inOrder)}"#, schema: schema)?.features
                    == [.number(1), .number(2), .number(3)])
            var misses = [nearLast, nearFirst, name + "\u{e9}"]
            if !prefix.isEmpty { misses.append(prefix) }
            for miss in misses {
                let event = try decode(
                    #"[{"version":"v","prediction":1,"features":{"\#(miss)":1,"\#(longer)":2}}]"#, schema: schema
                ).events.first
                #expect(event?.features == [.missing, .number(2), .missing])
                #expect(event?.unknownFeatureCount == 1)
            }
        }
    }

    @Test("a key compared in place may end exactly at the end of the line or of the buffer")
    func keyAtEnd() throws {
        let schema = numericSchema(["abcdefgh", "i"])
        for body in [#"{"features":{"abcdefgh""#, #"{"features":{"abcdefgh":"#, #"{"features":{"abcdefgh"#] {
            let decoded = try decodeBounded(body, canary: #":1}}"#, .ndjson, schema: schema)
            #expect(decoded.report.errors.first?.reason == .invalidJSON)
            let lines = try decodeBounded(body + "\n" + body, canary: #":1}}"#, .ndjson, schema: schema)
            #expect(lines.report.errors.map(\.line) == [1, 2])
        }
        let ok = try decodeBounded(
            #"{"version":"v","prediction":1,"features":{"abcdefgh":5}}"#, canary: "x", .ndjson, schema: schema)
        #expect(ok.events.first?.features == [.number(5), .missing])
    }

    @Test("names with quotes, backslashes or control characters match through their escaped keys")
    func escapedNames() throws {
        let schema = numericSchema(["a\"b", "c\\d", "e\tf", "plain"])
        let features = #"{"a\"b":1,"c\\d":2,"e\tf":3,"plain":4}"#
        #expect(
            try single(#"{"version":"v","prediction":1,"features":\#(features)}"#, schema: schema)?.features
                == [.number(1), .number(2), .number(3), .number(4)])
        // The raw bytes of a name with a quote are not a valid key on their own.
        #expect(malformed(#"[{"features":{"a"b":1}}]"#, schema: schema) != nil)
    }

    @Test("NDJSON line ends are found for bodies of every length modulo 8, with CR, blank lines and no final LF")
    func lineEnds() throws {
        let good = #"{"version":"v","prediction":1}"#
        for pad in 0..<17 {
            let blank = String(repeating: " ", count: pad)
            let body = "\(good)\(blank)\n\n\(blank)\r\n\(good)\r\n\(blank)\(good)\(blank)"
            for canary in ["\n", "x", #"{"version":"v","prediction":1}"#] {
                let decoded = try decodeBounded(body, canary: canary, .ndjson)
                #expect(decoded.report.accepted == 3)
                #expect(decoded.indices == [0, 1, 2])
                let withError = try decodeBounded(body + "\n{\n", canary: canary, .ndjson)
                #expect(withError.report.errors.map(\.line) == [5 + 1])
                #expect(throws: BodyError.tooManyEvents(count: 3, limit: 2)) {
                    try decodeBounded(body, canary: canary, .ndjson, maxEvents: 2)
                }
                // More lines than the limit, but few enough non-blank ones.
                let blanks = String(repeating: "\(blank)\n", count: 9)
                #expect(
                    try decodeBounded(blanks + body + "\n" + blanks, canary: canary, .ndjson, maxEvents: 3).report
                        .accepted == 3)
                #expect(throws: BodyError.tooManyEvents(count: 3, limit: 1)) {
                    try decodeBounded(blanks + body, canary: canary, .ndjson, maxEvents: 1)
                }
            }
        }
    }

    @Test("categorical values and attributes of every length decode exactly when repeated, near misses included")
    func repeatedValues() throws {
        var values: [String] = []
        for length in 1...24 {
            let value = String((0..<length).map { Character(Unicode.Scalar(UInt8(0x41 + ($0 * 7) % 26))) })
            var last = Array(value.utf8)
            last[length - 1] ^= 0x01
            var first = Array(value.utf8)
            first[0] ^= 0x01
            values += [value, String(decoding: last, as: UTF8.self), String(decoding: first, as: UTF8.self)]
            values += [value + "é", "é" + value, String(value.dropLast())]
        }
        values += ["", "true", "false"]
        var body = ""
        var expected: [String] = []
        for round in 0..<3 {
            for (i, value) in values.enumerated() {
                let v = values[(i * (round + 1)) % values.count]
                body +=
                    #"{"version":"v","prediction":1,"features":{"city":"\#(v)"},"attributes":{"gender":"\#(value)"}}"#
                body += "\n"
                expected.append(v.isEmpty ? "?" : v + "|" + value)  // an empty category is a missing value
            }
        }
        let decoded = try decode(body, .ndjson)
        #expect(decoded.report.accepted == expected.count)
        let seen = decoded.events.map { event -> String in
            guard case .category(let city) = event.features[2] else { return "?" }
            return city + "|" + (event.attributes[0] ?? "nil")
        }
        #expect(seen == expected)
    }

    @Test("a negative event limit refuses every NDJSON body, the empty one included, as before")
    func negativeLimit() {
        for body in ["", "\n", " ", #"{"version":"v","prediction":1}"#] {
            #expect(throws: BodyError.self) { try decode(body, .ndjson, maxEvents: -1) }
        }
    }

    /// The decoded `id` of an event whose id is the JSON string `literal`, placed after `prefix` bytes of padding so
    /// that it starts at every offset within a word.
    private func id(_ literal: String, prefix: Int) throws -> String? {
        let pad = String(repeating: " ", count: prefix)
        return try single(#"{"version":"v","prediction":1,\#(pad)"id":\#(literal)}"#)?.id
    }
}
