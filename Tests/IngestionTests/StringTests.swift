import Ingestion
import Testing

/// The byte offset of the first occurrence of `marker` in `body`.
func offset(of marker: String, in body: String) -> Int {
    let bytes = Array(body.utf8)
    let needle = Array(marker.utf8)
    for i in 0...(bytes.count - needle.count) where Array(bytes[i..<(i + needle.count)]) == needle { return i }
    fatalError("marker \(marker) not in \(body)")
}

@Suite("JSON strings")
struct StringTests {
    private let prefix = #"[{"version":"v","prediction":1,"id":"#

    private func id(_ literal: String) throws -> String? {
        try single(#"{"version":"v","prediction":1,"id":\#(literal)}"#)?.id
    }

    @Test("simple escapes decode")
    func escapes() throws {
        #expect(try id(#""a\"b\\c\/d\be\ff\ng\rh\ti""#) == "a\"b\\c/d\u{8}e\u{C}f\ng\rh\ti")
    }

    @Test("\\u escapes, surrogate pairs and raw UTF-8 decode")
    func unicode() throws {
        #expect(try id(#""\u0041\u00e9\u20AC""#) == "Aé€")
        #expect(try id(#""\uD83D\uDE00""#) == "😀")
        #expect(try id(#""\ud83d\ude00x""#) == "😀x")
        #expect(try id(#""\u0000""#) == "\u{0}")
        #expect(try id(#""héllo wörld 😀 日本""#) == "héllo wörld 😀 日本")
        #expect(try id(#""""#) == "")
    }

    @Test("escaped keys are matched after decoding")
    func escapedKeys() throws {
        let event = try single(#"{"vers\u0069on":"v","prediction":1,"features":{"\u0061ge":3}}"#)
        #expect(event?.version == "v")
        #expect(event?.features[0] == .number(3))
    }

    @Test(
        "invalid strings make the body malformed at the offending byte",
        arguments: [
            (#""\uD800""#, #"\uD800"#, "unpaired high surrogate \\uD800"),
            (#""\uD800\u0041""#, #"\uD800"#, "unpaired high surrogate \\uD800"),
            (#""\uD800x""#, #"\uD800"#, "unpaired high surrogate \\uD800"),
            (#""\uDC00""#, #"\uDC00"#, "unpaired low surrogate \\uDC00"),
            (#""\u12G4""#, #"\u12G4"#, "invalid hex digit in \\u escape"),
            (#""\x""#, #"\x"#, "invalid escape sequence"),
            ("\"a\tb\"", "\t", "unescaped control character in string"),
        ])
    func invalid(_ literal: String, _ marker: String, _ message: String) {
        let body = prefix + literal + "}]"
        let error = malformed(body)
        #expect(error?.offset == offset(of: marker, in: body))
        #expect(error?.message == message)
    }

    @Test("an unterminated string reports its opening quote")
    func unterminated() {
        let body = prefix + #""abc"#
        #expect(malformed(body)! == (prefix.utf8.count, "unterminated string"))
    }

    @Test(
        "invalid UTF-8 makes the body malformed",
        arguments: [
            [0xFF], [0xC0, 0x80], [0xC3], [0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80],
            [0xF8, 0x88, 0x80, 0x80, 0x80], [0x80], [0xE2, 0x82],
        ] as [[UInt8]])
    func invalidUTF8(_ sequence: [UInt8]) {
        let body = Array(prefix.utf8) + [0x22, 0x61] + sequence + Array("\"}]".utf8)
        do {
            _ = try decodePredictions(body: body, format: .json, schema: regressionSchema(), maxEvents: 10) { _, _ in }
            Issue.record("accepted invalid UTF-8 \(sequence)")
        } catch {
            #expect(error == .malformed(offset: prefix.utf8.count + 2, message: "invalid UTF-8 in string"))
        }
    }

    @Test("valid multi-byte UTF-8 at every length is accepted")
    func validUTF8() throws {
        let text = "\u{7F}\u{80}\u{7FF}\u{800}\u{D7FF}\u{E000}\u{FFFF}\u{10000}\u{10FFFF}"
        #expect(try id("\"\(text)\"") == text)
    }
}
