import Ingestion
import Testing

@Suite("JSON numbers")
struct NumberTests {
    @Test(
        "valid numbers parse like Double(String)",
        arguments: [
            "0", "-0", "1", "-1", "0.5", "-0.5", "1e3", "1E3", "1e+3", "1e-3", "1.25e-2",
            "123456789012345678901234567890",
            "9007199254740992", "9007199254740993", "0.1", "0.30000000000000004", "1.7976931348623157e308",
            "2.2250738585072014e-308", "5e-324", "4.9406564584124654e-324", "1e-400", "0.000000000000000000000001",
            "1e22", "1e23", "123456789e30", "0e10", "-0.0e-5", "0.12345678901234567", "18446744073709551615",
            "18446744073709551616", "3.141592653589793238462643383279", "100000000000000000000e-5",
            "1.00000000000000000000000000000001",
            "9007199254740995", "18014398509481985", "18014398509481987", "1.7976931348623158e308",
            "1.7976931348623159e308", "2.2250738585072011e-308", "2.2250738585072012e-308", "7.2057594037927933e16",
            "1e-342", "1e-343", "9999999999999999999e-343", "1e308", "1e309", "8.98846567431158e307",
            "0.1000000000000000055511151231257827", "2.4703282292062327e-324", "2.4703282292062328e-324",
            // Around the 19-digit fast path: exact integers, Clinger's division, Eisel-Lemire above 2^53.
            "1234567890.123456789", "9999999999999999999", "999999999999999999.9", "0.000000000000000001",
            "0.0000000000000000001", "-1947.35", "5000.0", "9007199254740993.5", "-0.7887", "1764410000.009",
        ])
    func valid(_ text: String) {
        let parsed = JSONNumber.parse(text)
        let expected = Double(text)!
        #expect(parsed?.bitPattern == expected.bitPattern, "\(text): \(String(describing: parsed)) vs \(expected)")
    }

    @Test("overflow gives infinity like Double(String)")
    func overflow() {
        #expect(JSONNumber.parse("1e400") == .infinity)
        #expect(JSONNumber.parse("-1e400") == -.infinity)
    }

    @Test(
        "invalid numbers are rejected",
        arguments: [
            "", "-", "+1", ".5", "5.", "01", "-01", "00", "1e", "1e+", "1.e3", "NaN", "Infinity", "-Infinity", "0x10",
            " 1", "1 ", "1.5.2", "--1", "1e5e5", "inf", "nan", "-.5", "0.", "-0.", "1.5e", "-", "-e1",
        ])
    func invalid(_ text: String) {
        #expect(JSONNumber.parse(text) == nil, "\(text)")
    }

    @Test("100,000 random valid JSON numbers parse exactly like Double(String)")
    func property() {
        var rng = SplitMix64(seed: 42)
        var mismatches: [String] = []
        func digits(_ count: Int, _ rng: inout SplitMix64) -> String {
            String((0..<count).map { _ in Character(String(Int.random(in: 0...9, using: &rng))) })
        }
        for i in 0..<100_000 {
            var text: String
            if i % 4 == 3 {
                // Up to 19 significant digits with any exponent (the Eisel-Lemire range and beyond).
                text = String(Int.random(in: 1...9, using: &rng)) + digits(Int.random(in: 0...18, using: &rng), &rng)
                text += "e" + String(Int.random(in: -360...320, using: &rng))
            } else if i % 3 == 0 {
                // Shortest representations of random finite doubles (what most clients send).
                var value: Double
                repeat { value = Double(bitPattern: rng.next()) } while !value.isFinite
                if i % 2 == 0 { value = Double.random(in: -1000...1000, using: &rng) }
                text = "\(value)"
            } else {
                text = Bool.random(using: &rng) ? "-" : ""
                let intDigits = Int.random(in: 0...22, using: &rng)
                text += intDigits == 0 ? "0" : String(Int.random(in: 1...9, using: &rng)) + digits(intDigits - 1, &rng)
                if Bool.random(using: &rng) { text += "." + digits(Int.random(in: 1...25, using: &rng), &rng) }
                if Bool.random(using: &rng) {
                    text += ["e", "E"].randomElement(using: &rng)! + ["", "+", "-"].randomElement(using: &rng)!
                    text += digits(Int.random(in: 1...3, using: &rng), &rng)
                }
            }
            let parsed = JSONNumber.parse(text)
            let expected = Double(text)!
            if parsed?.bitPattern != expected.bitPattern && mismatches.count < 10 { mismatches.append(text) }
        }
        #expect(mismatches.isEmpty, "\(mismatches)")
    }

    @Test("number syntax errors in a body report their byte offset")
    func offsets() {
        #expect(malformed(#"[{"version":"v","prediction":01}]"#)! == (29, "invalid number: leading zeros"))
        #expect(malformed(#"[{"version":"v","prediction":1.}]"#)! == (31, "invalid number: expected a digit after '.'"))
        #expect(malformed(#"[{"version":"v","prediction":-x}]"#)! == (30, "invalid number: expected a digit"))
        #expect(malformed(#"[{"version":"v","prediction":+1}]"#)! == (29, "expected a value, found '+'"))
        #expect(malformed(#"[{"version":"v","prediction":.5}]"#)! == (29, "expected a value, found '.'"))
        #expect(malformed(#"[{"version":"v","prediction":Nan}]"#)! == (29, "expected a value, found 'N'"))
        #expect(malformed(#"[{"version":"v","prediction":Inf}]"#)! == (29, "expected a value, found 'I'"))
        #expect(
            malformed(#"[{"version":"v","prediction":1e}]"#)! == (31, "invalid number: expected a digit in exponent"))
    }

    /// `NaN`, `Infinity` and `-Infinity`, as Python's `json` writes them (a pandas missing value sent with
    /// `requests.post(json=...)`): `NaN` is a missing value, an infinity a number out of range, as `profile`, `batch`
    /// and the proxy's capture read them. Before, the whole event was refused `invalid_json`, and one NDJSON line
    /// meant two things.
    @Test("Python's non-finite literals: NaN missing, infinities out of range")
    func pythonNonFinite() throws {
        let event = try #require(
            try single(#"{"version":"v","prediction":1.5,"features":{"age":NaN,"income":2,"city":NaN}}"#))
        #expect(event.features == [.missing, .number(2), .missing])
        let nd = try decode(
            "{\"version\":\"v\",\"prediction\":1,\"features\":{\"age\":NaN}}\n"
                + "{\"version\":\"v\",\"prediction\":1,\"features\":{\"age\":-Infinity}}\n", .ndjson)
        #expect(nd.events.count == 1 && nd.events.first?.features.first == .missing)
        #expect(nd.report.errors.first?.reason == .invalidNumber)
        #expect(nd.report.errors.first?.message == "feature 'age' is out of range")
        #expect(try rejection(#"{"version":"v","prediction":Infinity}"#)?.reason == .invalidNumber)
    }

    @Test("out-of-range numbers reject the event as invalid_number")
    func outOfRange() throws {
        let error = try rejection(#"{"version":"v","prediction":1e999}"#)
        #expect(error?.reason == .invalidNumber)
        #expect(error?.message == "'prediction' is out of range (at most ±1e140)")
    }
}
