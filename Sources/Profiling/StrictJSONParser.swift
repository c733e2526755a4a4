/// Parses one NDJSON line of a reference input: JSON (RFC 8259) plus the three words Python's `json` writes for
/// non-finite floats, `NaN`, `Infinity` and `-Infinity`, and nothing else. Trailing commas, comments, unquoted or
/// single-quoted keys, single-quoted strings, hexadecimal, `+1`, `.5`, `nan` and the other forms of JSON5 are refused,
/// and so is a key given twice in one object (which value would count?).
///
/// The line must be valid UTF-8 (the reader checks it first: strings are decoded from the bytes as they are). An
/// error gives the byte offset of the fault in the line, the key it lies in (`key "amount"`, `key "features.amount"`
/// for nested objects) or after (`after key "amount"`, between members), and what is wrong. Numbers are read as
/// Swift's `Double(String)` reads their text (correctly rounded; `1e400` is infinite, for the caller to refuse).
/// Nesting deeper than ``maximumDepth`` is refused rather than recursed into.
struct StrictJSONParser {
    /// A syntax error: where, in which key, what.
    struct SyntaxError: Error, Equatable {
        /// Byte offset of the fault in the line.
        var offset: Int
        /// `key "a.b"`, `after key "a.b"`, `key a` (an unquoted key), or empty at the top level.
        var field: String
        /// What is wrong.
        var message: String
    }

    /// Most levels of nested arrays and objects (a profile reads at most two: an event's `features`; the parser
    /// recurses, and a deep line must not exhaust a thread's stack).
    static let maximumDepth = 64

    private let bytes: ArraySlice<UInt8>
    private var i: Int
    private var depth = 0
    /// The keys from the root to the member being read (or just read, until the next one starts).
    private var keys: [String] = []

    private init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        i = bytes.startIndex
    }

    /// The value of `line` (one line, without its line break).
    static func parse(_ line: ArraySlice<UInt8>) throws(SyntaxError) -> JSONValue {
        var parser = StrictJSONParser(line)
        let value = try parser.value()
        parser.skipSpace()
        if parser.i < line.endIndex { throw parser.fail("text after the JSON value") }
        return value
    }

    // MARK: Values

    private mutating func value() throws(SyntaxError) -> JSONValue {
        skipSpace()
        guard i < bytes.endIndex else { throw fail("the line ends where a value should be") }
        switch bytes[i] {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .string(try string())
        case let b where Self.isWordByte(b): return try word()
        default: throw fail("expected a value, got \(shown(i))")
        }
    }

    /// `true`, `false`, `null`, a number, or Python's `NaN`, `Infinity`, `-Infinity`.
    private mutating func word() throws(SyntaxError) -> JSONValue {
        let start = i
        while i < bytes.endIndex && Self.isWordByte(bytes[i]) { i += 1 }
        let token = bytes[start..<i]
        let text = String(decoding: token, as: UTF8.self)
        switch text {
        case "true": return .bool(true)
        case "false": return .bool(false)
        case "null": return .null
        case "NaN": return .number(.nan)
        case "Infinity": return .number(.infinity)
        case "-Infinity": return .number(-.infinity)
        default:
            guard Self.isNumber(token), let x = Double(text) else {
                throw fail("\(text) is not a JSON value", at: start)
            }
            return .number(x)
        }
    }

    private mutating func object() throws(SyntaxError) -> JSONValue {
        try enter()
        defer { depth -= 1 }
        i += 1
        var members: [String: JSONValue] = [:]
        skipSpace()
        if i < bytes.endIndex && bytes[i] == UInt8(ascii: "}") {
            i += 1
            return .object(members)
        }
        // Whether a member was read (its key still ends `keys`), and the comma after it.
        var previous = false
        var comma = i
        while true {
            skipSpace()
            guard i < bytes.endIndex else { throw fail("the line ends inside an object", after: previous) }
            let c = bytes[i]
            if c != UInt8(ascii: "\"") {
                if previous && c == UInt8(ascii: "}") {
                    throw fail("a comma before \"}\" (trailing commas are not JSON)", after: true, at: comma)
                }
                if Self.isWordByte(c) {
                    // An unquoted key: named as written.
                    let start = i
                    while i < bytes.endIndex && Self.isWordByte(bytes[i]) { i += 1 }
                    let parents = (previous ? keys.dropLast() : keys[...]).map { $0 + "." }.joined()
                    throw SyntaxError(
                        offset: start - bytes.startIndex,
                        field: "key " + parents + String(decoding: bytes[start..<i], as: UTF8.self),
                        message: "not in double quotes (JSON keys are strings)")
                }
                throw fail("expected a key in double quotes, got \(shown(i))", after: previous)
            }
            if previous { keys.removeLast() }
            previous = false
            let keyStart = i
            let key = try string()
            keys.append(key)
            if members[key] != nil { throw fail("appears twice in the object", at: keyStart) }
            skipSpace()
            guard i < bytes.endIndex else { throw fail("the line ends inside an object") }
            guard bytes[i] == UInt8(ascii: ":") else { throw fail("expected \":\", got \(shown(i))") }
            i += 1
            members[key] = try value()
            previous = true
            skipSpace()
            guard i < bytes.endIndex else { throw fail("the line ends inside an object", after: true) }
            switch bytes[i] {
            case UInt8(ascii: ","):
                comma = i
                i += 1
            case UInt8(ascii: "}"):
                i += 1
                keys.removeLast()
                return .object(members)
            default: throw fail("expected \",\" or \"}\", got \(shown(i))", after: true)
            }
        }
    }

    private mutating func array() throws(SyntaxError) -> JSONValue {
        try enter()
        defer { depth -= 1 }
        i += 1
        var elements: [JSONValue] = []
        skipSpace()
        if i < bytes.endIndex && bytes[i] == UInt8(ascii: "]") {
            i += 1
            return .array(elements)
        }
        var comma = i
        while true {
            skipSpace()
            if !elements.isEmpty && i < bytes.endIndex && bytes[i] == UInt8(ascii: "]") {
                throw fail("a comma before \"]\" (trailing commas are not JSON)", at: comma)
            }
            elements.append(try value())
            skipSpace()
            guard i < bytes.endIndex else { throw fail("the line ends inside an array") }
            switch bytes[i] {
            case UInt8(ascii: ","):
                comma = i
                i += 1
            case UInt8(ascii: "]"):
                i += 1
                return .array(elements)
            default: throw fail("expected \",\" or \"]\", got \(shown(i))")
            }
        }
    }

    private mutating func enter() throws(SyntaxError) {
        depth += 1
        if depth > Self.maximumDepth { throw fail("arrays and objects nested deeper than \(Self.maximumDepth) levels") }
    }

    // MARK: Strings

    /// The string at `i` (its opening quote), unescaped; `i` moves past its closing quote.
    private mutating func string() throws(SyntaxError) -> String {
        i += 1
        var start = i
        var unescaped: [UInt8] = []
        var escaped = false
        while true {
            guard i < bytes.endIndex else { throw fail("the line ends inside a string") }
            let b = bytes[i]
            if b == UInt8(ascii: "\"") {
                defer { i += 1 }
                guard escaped else { return String(decoding: bytes[start..<i], as: UTF8.self) }
                unescaped += bytes[start..<i]
                return String(decoding: unescaped, as: UTF8.self)
            }
            if b < 0x20 {
                let code = Self.hex(UInt32(b), digits: 4)
                throw fail("control character U+\(code) in a string (escape it as \\u\(code))")
            }
            guard b == UInt8(ascii: "\\") else {
                i += 1
                continue
            }
            unescaped += bytes[start..<i]
            escaped = true
            try escape(into: &unescaped)
            start = i
        }
    }

    /// The escape at `i` (its backslash), appended to `out` as UTF-8; `i` moves past it.
    private mutating func escape(into out: inout [UInt8]) throws(SyntaxError) {
        guard i + 1 < bytes.endIndex else { throw fail("the line ends inside a string") }
        let simple: UInt8?
        switch bytes[i + 1] {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): simple = bytes[i + 1]
        case UInt8(ascii: "b"): simple = 0x08
        case UInt8(ascii: "f"): simple = 0x0C
        case UInt8(ascii: "n"): simple = 0x0A
        case UInt8(ascii: "r"): simple = 0x0D
        case UInt8(ascii: "t"): simple = 0x09
        case UInt8(ascii: "u"): simple = nil
        default: throw fail("invalid escape \\\(shownCharacter(i + 1)) in a string")
        }
        if let simple {
            out.append(simple)
            i += 2
            return
        }
        guard let unit = hexUnit(at: i + 2) else {
            throw fail("invalid escape \(text(i, count: 6)) in a string (\\u takes 4 hexadecimal digits)")
        }
        var scalar = unit
        var length = 6
        if (0xD800...0xDFFF).contains(unit) {
            // A surrogate: only a high one followed by an escaped low one makes a character.
            guard unit <= 0xDBFF, i + 7 < bytes.endIndex, bytes[i + 6] == UInt8(ascii: "\\"),
                bytes[i + 7] == UInt8(ascii: "u"), let low = hexUnit(at: i + 8), (0xDC00...0xDFFF).contains(low)
            else {
                throw fail("\(text(i, count: 6)) is half of a surrogate pair, without its other half")
            }
            scalar = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
            length = 12
        }
        // A scalar: not a surrogate (those were paired above), at most 0x10FFFF.
        out += Array(String(Character(Unicode.Scalar(scalar)!)).utf8)
        i += length
    }

    /// The 4 hexadecimal digits at `offset` as a UTF-16 code unit, nil if they are not.
    private func hexUnit(at offset: Int) -> UInt32? {
        guard offset + 4 <= bytes.endIndex else { return nil }
        var unit: UInt32 = 0
        for b in bytes[offset..<(offset + 4)] {
            let digit: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = b - UInt8(ascii: "A") + 10
            default: return nil
            }
            unit = unit << 4 | UInt32(digit)
        }
        return unit
    }

    // MARK: Lexical helpers

    private mutating func skipSpace() {
        while i < bytes.endIndex, bytes[i] == 0x20 || bytes[i] == 0x09 || bytes[i] == 0x0A || bytes[i] == 0x0D {
            i += 1
        }
    }

    /// Bytes of a bare word: letters, digits, `+`, `-`, `.`, `_` (so that `0x1F`, `+1`, `.5` or `nan` is shown whole).
    private static func isWordByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
            UInt8(ascii: "_"):
            true
        default: false
        }
    }

    /// Whether `token` is a JSON number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    static func isNumber(_ token: ArraySlice<UInt8>) -> Bool {
        var k = token.startIndex
        let end = token.endIndex
        func digits() -> Int {
            let start = k
            while k < end && (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(token[k]) { k += 1 }
            return k - start
        }
        if k < end && token[k] == UInt8(ascii: "-") { k += 1 }
        guard k < end else { return false }
        if token[k] == UInt8(ascii: "0") {
            k += 1
        } else if digits() == 0 {
            return false
        }
        if k < end && token[k] == UInt8(ascii: ".") {
            k += 1
            if digits() == 0 { return false }
        }
        if k < end && (token[k] == UInt8(ascii: "e") || token[k] == UInt8(ascii: "E")) {
            k += 1
            if k < end && (token[k] == UInt8(ascii: "+") || token[k] == UInt8(ascii: "-")) { k += 1 }
            if digits() == 0 { return false }
        }
        return k == end
    }

    /// The character at `offset` as an error shows it: quoted, with a hint for `/` (comments) and `'` (single
    /// quotes); a control character as `U+XXXX`.
    private func shown(_ offset: Int) -> String {
        switch bytes[offset] {
        case UInt8(ascii: "/"): return "\"/\" (comments are not JSON)"
        case UInt8(ascii: "'"): return "\"'\" (single-quoted strings are not JSON)"
        case let b where b < 0x20 || b == 0x7F: return "U+\(Self.hex(UInt32(b), digits: 4))"
        default: return "\"\(shownCharacter(offset))\""
        }
    }

    /// The (UTF-8) character starting at `offset`.
    private func shownCharacter(_ offset: Int) -> String {
        var end = offset + 1
        while end < bytes.endIndex && bytes[end] & 0xC0 == 0x80 { end += 1 }
        return String(decoding: bytes[offset..<end], as: UTF8.self)
    }

    /// Up to `count` bytes of the line from `offset`, as text.
    private func text(_ offset: Int, count: Int) -> String {
        String(decoding: bytes[offset..<Swift.min(offset + count, bytes.endIndex)], as: UTF8.self)
    }

    static func hex(_ value: UInt32, digits: Int) -> String {
        let text = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: Swift.max(0, digits - text.count)) + text
    }

    /// An error at `offset` (default: the current byte), in the key being read or, with `after`, after it.
    private func fail(_ message: String, after: Bool = false, at offset: Int? = nil) -> SyntaxError {
        let path = keys.joined(separator: ".")
        let field = keys.isEmpty ? "" : (after ? "after key \"\(path)\"" : "key \"\(path)\"")
        return SyntaxError(offset: (offset ?? i) - bytes.startIndex, field: field, message: message)
    }
}
