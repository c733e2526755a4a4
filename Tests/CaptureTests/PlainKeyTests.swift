import Ingestion
import Testing

@testable import Capture

/// ``Scanner/plainKey()``, whose compact printable-ASCII keys are read without ``Scanner/key()``: the same token and
/// cursor as `key()` gives, or a fallback where `key()` fails or finds escapes.
@Suite("Plain keys")
struct PlainKeyTests {
    /// `plainKey()` and `key()` on `json`: each one's token (nil: fallback or error) and cursor.
    static func both(_ json: String) -> (plain: (StringToken?, Int), general: (StringToken?, Int)) {
        let bytes = Array(json.utf8)
        return bytes.withUnsafeBufferPointer { buffer in
            var plain = Scanner(buffer)
            let plainToken = try? plain.plainKey()
            var general = Scanner(buffer)
            var generalToken = try? general.key()
            if generalToken?.hasEscapes == true { generalToken = nil }
            return ((plainToken, plain.pos), (generalToken, general.pos))
        }
    }

    @Test(
        "the same token and cursor as key()",
        arguments: [
            #""name":"x""#, #""datatype":"FP64""#, #"  "name":1"#, "\n\"shape\":[1]", #""name" :1"#, #""na me":1"#,
            #""":1"#, #""a\"b":1"#, #""a\\b":1"#, #""\u0041":1"#, "\"na\u{01}me\":1", "\"na\u{7F}me\":1", #""é":1"#,
            "\"caf\u{E9}\":1", #""name""#, #""name"#, #""name","#, #"name":1"#, "", "\"", "\"\":", "\"a\":",
            "\"\u{FF}\":1", String(repeating: "x", count: 3) + #"":1"#,
            "\"" + String(repeating: "k", count: 100) + "\":1",
        ])
    func sameAsKey(_ json: String) {
        let (plain, general) = Self.both(json)
        #expect(plain.0?.start == general.0?.start && plain.0?.end == general.0?.end, "\(json)")
        #expect(plain.0?.hasEscapes ?? false == false)
        if plain.0 != nil { #expect(plain.1 == general.1, "\(json)") }
    }

    @Test("random keys of ASCII and other bytes read as key() reads them")
    func random() {
        var rng = SplitMix64(seed: 23)
        let pieces = ["a", "Z", "_", " ", "\\\"", "\\n", "\u{01}", "\u{1F}", "\u{7F}", "é", "\u{FF}", "\"", ":", "0"]
        for _ in 0..<20_000 {
            var json = ["", " ", "\n"].randomElement(using: &rng)! + "\""
            for _ in 0..<Int.random(in: 0...8, using: &rng) { json += pieces.randomElement(using: &rng)! }
            json += ["\":", "\" :", "\"", "\":1", ""].randomElement(using: &rng)!
            let (plain, general) = Self.both(json)
            #expect(plain.0?.start == general.0?.start && plain.0?.end == general.0?.end, "\(json)")
            if plain.0 != nil { #expect(plain.1 == general.1, "\(json)") }
        }
    }

    @Test("random longer keys, with bytes after them (scanned eight at a time), read as key() reads them")
    func randomLong() {
        var rng = SplitMix64(seed: 24)
        let pieces = ["a", "Z", "_", " ", "\\\"", "\n", "\u{01}", "\u{7F}", "é", "\u{FF}", "\"", "0", "name"]
        for i in 0..<20_000 {
            var json = "\""
            // 0 to 30 pieces: of any kind for every third key, plain key bytes only for the others.
            for _ in 0..<Int.random(in: 0...30, using: &rng) {
                json +=
                    i % 3 == 0
                    ? pieces.randomElement(using: &rng)! : ["k", "e", "y", "_", "9"].randomElement(using: &rng)!
            }
            json += ["\":", "\" :", "\"", "\":1", ""].randomElement(using: &rng)!
            json += String(
                repeating: ["1", ",", "\"", " "].randomElement(using: &rng)!, count: Int.random(in: 0...9, using: &rng))
            let (plain, general) = Self.both(json)
            #expect(plain.0?.start == general.0?.start && plain.0?.end == general.0?.end, "\(json)")
            if plain.0 != nil { #expect(plain.1 == general.1, "\(json)") }
        }
    }
}
