import Testing

@testable import MLOpsExporter

/// The 404 reason for a model that is not configured stays one line and bounded, whatever the name asked for and
/// however many models are configured (a status page attacker: `/models/fraud%00%0d%0aX-Evil:%201` put a NUL and a
/// line break in the reason, and 400 configured names of 105 characters made each 404 43 KB).
@Suite struct UnknownModelMessageTests {
    @Test func theNameIsEscapedAndCut() {
        let text = UnknownModelMessage.text("fraud\u{0}\r\nX-Evil: 1\u{2028}\"\\é", known: ["fraud"])
        #expect(text == #"unknown model "fraud\u{0}\r\nX-Evil: 1\u{2028}\"\\\u{e9}" (configured: fraud)"#)
        #expect(!text.unicodeScalars.contains { $0.value < 0x20 || $0.value > 0x7E })
        let long = UnknownModelMessage.text(Substring(String(repeating: "a", count: 10_000)), known: [])
        #expect(long == "unknown model \"\(String(repeating: "a", count: 256))…\" (no models are configured)")
    }

    @Test func atMostTwentyNamesAreListed() {
        let names = (0..<400).map { "model-\($0)-" + String(repeating: "x", count: 100) }
        let text = UnknownModelMessage.text("nope", known: names)
        #expect(text.hasSuffix(" and 380 more)"))
        #expect(text.contains(names[19]) && !text.contains(names[20]))
        #expect(text.utf8.count < 3_000)
        #expect(UnknownModelMessage.text("nope", known: ["a", "b"]) == #"unknown model "nope" (configured: a, b)"#)
    }
}
