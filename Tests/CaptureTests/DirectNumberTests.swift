import Ingestion
import Testing

@testable import Capture

/// ``Scanner/shortNumber()``, the direct reader's fast path, against `Double(String)` and ``Scanner/number()``: the
/// same value to the bit for every short plain number, nil (cursor unmoved) for everything else.
@Suite("Short plain numbers")
struct ShortNumberTests {
    /// What `shortNumber()` does with `bytes`: its value and where the cursor ends.
    static func read(_ bytes: [UInt8]) -> (value: Double?, pos: Int) {
        bytes.withUnsafeBufferPointer { buffer in
            var scanner = Scanner(buffer)
            let value = scanner.shortNumber()
            return (value, scanner.pos)
        }
    }

    /// What `number()` reads from `bytes`: the number's text and value, nil for a syntax error.
    static func number(_ bytes: [UInt8]) -> (text: String, value: Double)? {
        bytes.withUnsafeBufferPointer { buffer in
            var scanner = Scanner(buffer)
            guard let token = try? scanner.number() else { return nil }
            return (String(decoding: bytes[token.start..<token.end], as: UTF8.self), token.value)
        }
    }

    /// Whether `text` is short and plain: `-`?, an integer part without leading zeros, a fraction of one digit or
    /// more, no exponent, 15 digits at most.
    static func isShort(_ text: String) -> Bool {
        var digits = Substring(text)
        if digits.first == "-" { digits = digits.dropFirst() }
        let parts = digits.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } })
        else { return false }
        guard parts[0].count == 1 || parts[0].first != "0" else { return false }
        return parts.map(\.count).reduce(0, +) <= 15
    }

    /// Checks one input: when `number()` reads a short plain number from it, `shortNumber()` reads the same, to the
    /// bit, ending where it ends, and that is `Double(String)` of its text; otherwise nil, the cursor unmoved.
    static func check(_ input: String, _ mismatches: inout [String]) { check(bytes: Array(input.utf8), &mismatches) }

    /// ``check(_:_:)`` on bytes that need not be UTF-8.
    static func check(bytes: [UInt8], _ mismatches: inout [String]) {
        let input = bytes.map { $0 < 0x80 ? String(UnicodeScalar($0)) : "\\x\(String($0, radix: 16))" }.joined()
        let (value, pos) = read(bytes)
        if let (text, expected) = number(bytes), isShort(text) {
            if value?.bitPattern != expected.bitPattern || Double(text)?.bitPattern != expected.bitPattern
                || pos != text.utf8.count
            {
                mismatches.append("\(input): \(String(describing: value)) at \(pos), expected \(expected)")
            }
        } else if value != nil || pos != 0 {
            mismatches.append("\(input): \(String(describing: value)) at \(pos), expected nil at 0")
        }
    }

    @Test(
        "edge cases",
        arguments: [
            "0", "-0", "0.0", "-0.0", "0.1", "-0.1", "0.75", "1", "-1", "1.0", "5.25", "0.3", "0.000000000000001",
            "0.00000000000001", "999999999999999", "99999999999999.9", "9.99999999999999", "123456789012345",
            "0.123456789012345", "1e22", "1E3", "2.5e-3", "-1.25E+2", "1e400", "9007199254740993", "9007199254740992",
            "1234567890123456", "0.1234567890123456", "12345678901234567890", "0.1000000000000000055511151231257827",
            "5e-324", "2.2250738585072014e-308", "4.9406564584124654e-324", "01", "-01", "00", "1.", "-", "-.5", ".5",
            "+1", "", "x", "-x", "0.", "-0.", "1.5.2", "--1", "1e", "0x10", "true", "null", "\"1\"",
        ])
    func edges(_ text: String) {
        var mismatches: [String] = []
        // Alone and with bytes after it (a number and the byte after it within 8 bytes are read as one word).
        for tail in ["", ",", "]", " ", "}", "e5", "E", ".5", "5", "x"] {
            for more in ["", "        ", ",0.25,1]}", "5555555"] { Self.check(text + tail + more, &mismatches) }
        }
        // Short ones are read (not left to the general parser).
        #expect(!Self.isShort(text) || Self.read(Array(text.utf8)).value != nil, "\(text)")
        #expect(mismatches.isEmpty, "\(mismatches)")
    }

    @Test("200,000 random numbers of up to 18 digits read like Double(String), or are left to number()")
    func random() {
        var rng = SplitMix64(seed: 16)
        func digits(_ count: Int) -> String {
            String((0..<count).map { _ in Character(String(Int.random(in: 0...9, using: &rng))) })
        }
        var mismatches: [String] = []
        var short = 0
        for i in 0..<200_000 {
            var text = Int.random(in: 0..<4, using: &rng) == 0 ? "-" : ""
            let integerDigits = Int.random(in: 1...(i % 5 == 0 ? 18 : 8), using: &rng)
            text +=
                integerDigits == 1 || Int.random(in: 0..<50, using: &rng) == 0
                ? digits(integerDigits) : String(Int.random(in: 1...9, using: &rng)) + digits(integerDigits - 1)
            if Bool.random(using: &rng) {
                text += "." + digits(Int.random(in: i % 7 == 0 ? 0...18 : 1...6, using: &rng))
            }
            if i % 11 == 0 {
                text += ["e", "E"].randomElement(using: &rng)! + digits(Int.random(in: 1...3, using: &rng))
            }
            if Self.isShort(text) { short += 1 }
            Self.check(text + [",", "]", " ", ""].randomElement(using: &rng)!, &mismatches)
            if mismatches.count >= 10 { break }
        }
        #expect(mismatches.isEmpty, "\(mismatches)")
        #expect(short > 100_000)
    }

    @Test("500,000 random strings of number bytes, at every length and cut, read like number(), or are left to it")
    func randomBytes() {
        var rng = SplitMix64(seed: 8)
        let alphabet = Array("0123456789012345678901234567890123456789.-.eE,] x".utf8) + [0x80, 0xFF, 0x00, 0x2F, 0x3A]
        var mismatches: [String] = []
        for _ in 0..<500_000 {
            let count = Int.random(in: 1...20, using: &rng)
            Self.check(bytes: (0..<count).map { _ in alphabet.randomElement(using: &rng)! }, &mismatches)
            if mismatches.count >= 10 { break }
        }
        #expect(mismatches.isEmpty, "\(mismatches)")
    }

    @Test("the shortest text of random doubles in [-1000, 1000] and [0, 1] reads like Double(String)")
    func shortest() {
        var rng = SplitMix64(seed: 61)
        var mismatches: [String] = []
        for i in 0..<100_000 {
            let value =
                i % 2 == 0 ? Double.random(in: -1000...1000, using: &rng) : Double.random(in: 0...1, using: &rng)
            // Swift prints the shortest round-trip digits, at most 17: those of 15 or fewer are short.
            let text = "\(value)"
            guard !text.contains("e") else { continue }
            Self.check(text + ",", &mismatches)
            if mismatches.count >= 10 { break }
        }
        #expect(mismatches.isEmpty, "\(mismatches)")
    }

    /// `shortInteger()` on `input`: what `number()` reads there when it is digits only (15 at most, no leading zero)
    /// as an `Int`, ending where it ends; nil with the cursor unmoved otherwise.
    static func checkInteger(_ input: String, _ mismatches: inout [String]) {
        let bytes = Array(input.utf8)
        let (value, pos) = bytes.withUnsafeBufferPointer { buffer in
            var scanner = Scanner(buffer)
            let value = scanner.shortInteger()
            return (value, scanner.pos)
        }
        if let (text, expected) = number(bytes), isShort(text), !text.contains("."), !text.hasPrefix("-") {
            if value != Int(expected) || pos != text.utf8.count {
                mismatches.append("\(input): \(String(describing: value)) at \(pos), expected \(expected)")
            }
        } else if value != nil || pos != 0 {
            mismatches.append("\(input): \(String(describing: value)) at \(pos), expected nil at 0")
        }
    }

    @Test("shape integers: digits only, 15 at most, read like number(); anything else left to it")
    func integers() {
        var mismatches: [String] = []
        var rng = SplitMix64(seed: 5)
        let fixed = [
            "0", "1", "20", "-1", "-0", "01", "00", "1.0", "1e3", "1E3", "999999999999999", "1000000000000000",
            "123456789012345678901", "", "x", "1.", "12,", "3]", "7 ",
        ]
        for text in fixed { Self.checkInteger(text, &mismatches) }
        for _ in 0..<50_000 {
            var text = Int.random(in: 0..<10, using: &rng) == 0 ? "-" : ""
            for _ in 0..<Int.random(in: 1...18, using: &rng) { text += String(Int.random(in: 0...9, using: &rng)) }
            text += ["", ",", "]", ".5", "e2", " "].randomElement(using: &rng)!
            Self.checkInteger(text, &mismatches)
            if mismatches.count >= 10 { break }
        }
        #expect(mismatches.isEmpty, "\(mismatches)")
    }
}
