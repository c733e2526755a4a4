/// A JSON syntax error at a byte offset of the scanned buffer.
package struct SyntaxError: Error {
    package var offset: Int
    package var message: String
}

/// A scanned JSON string: the raw bytes between the quotes (escapes not yet decoded).
package struct StringToken {
    package var start: Int
    package var end: Int
    package var hasEscapes: Bool
    var count: Int { end - start }

    /// The string whose bytes are `start..<end` of the scanned input (a reader of its own that found them).
    package init(start: Int, end: Int, hasEscapes: Bool) {
        self.start = start
        self.end = end
        self.hasEscapes = hasEscapes
    }
}

/// A scanned JSON number: its bytes, its value and whether it has neither fraction nor exponent.
package struct NumberToken {
    package var start: Int
    package var end: Int
    package var value: Double
    package var isInteger: Bool
}

/// The maximum nesting level of arrays and objects, the event object being level 1 (the enclosing batch array of a
/// JSON body is not counted).
package let maximumDepth = 64

/// A cursor over UTF-8 bytes that validates and tokenizes JSON (RFC 8259) without allocating.
///
/// All reads are bounds-checked against `end`; `base` is only dereferenced below `end`.
package struct Scanner {
    package let base: UnsafePointer<UInt8>
    package var pos: Int
    package let end: Int
    /// Whether `NaN`, `Infinity` and `-Infinity` are read as numbers (``nonFiniteLiteral()``): not JSON, but what
    /// Python's `json.dumps`, tritonclient (rapidjson) and Triton write for non-finite floats. Off by default.
    package var allowsNonFinite = false

    package init(_ buffer: UnsafeBufferPointer<UInt8>, from start: Int = 0, to end: Int? = nil) {
        // An empty buffer may have a nil base address; point at a static NUL byte instead (never read: end is 0).
        base = buffer.baseAddress ?? ("" as StaticString).utf8Start
        pos = start
        self.end = end ?? buffer.count
    }

    @inline(__always) var atEnd: Bool { pos >= end }

    @inline(__always) func error(_ message: String, at offset: Int? = nil) -> SyntaxError {
        SyntaxError(offset: offset ?? pos, message: message)
    }

    @inline(__always) mutating func skipWhitespace() {
        while pos < end {
            let b = base[pos]
            if b > 0x20 { return }  // the common case: one compare for any non-blank byte
            if b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 { pos += 1 } else { return }
        }
    }

    /// The byte at the cursor after whitespace, or nil at the end.
    @inline(__always) mutating func peek() -> UInt8? {
        skipWhitespace()
        return pos < end ? base[pos] : nil
    }

    func describe(_ byte: UInt8?) -> String {
        guard let byte else { return "end of input" }
        if byte >= 0x21 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
        return "byte 0x" + String(byte, radix: 16, uppercase: true)
    }

    /// Consumes `byte` after whitespace or throws "expected <what>".
    @inline(__always) mutating func expect(_ byte: UInt8, _ what: String) throws(SyntaxError) {
        skipWhitespace()
        guard pos < end, base[pos] == byte else {
            throw error("expected \(what), found \(describe(pos < end ? base[pos] : nil))")
        }
        pos += 1
    }

    /// After an object member: consumes ',' (returns true) or '}' (returns false).
    @inline(__always) mutating func objectContinues() throws(SyntaxError) -> Bool {
        skipWhitespace()
        if pos < end {
            let b = base[pos]
            pos += 1
            if b == 0x2C { return true }
            if b == 0x7D { return false }
            pos -= 1
        }
        throw error("expected ',' or '}' in object, found \(describe(pos < end ? base[pos] : nil))")
    }

    /// After an array element: consumes ',' (returns true) or ']' (returns false).
    @inline(__always) mutating func arrayContinues() throws(SyntaxError) -> Bool {
        skipWhitespace()
        if pos < end {
            let b = base[pos]
            pos += 1
            if b == 0x2C { return true }
            if b == 0x5D { return false }
            pos -= 1
        }
        throw error("expected ',' or ']' in array, found \(describe(pos < end ? base[pos] : nil))")
    }

    /// At '{' (already consumed): whether the object is empty (consumes '}' then).
    @inline(__always) mutating func objectIsEmpty() -> Bool {
        skipWhitespace()
        if pos < end && base[pos] == 0x7D {
            pos += 1
            return true
        }
        return false
    }

    /// Reads `"key":` and returns the key token; the cursor is then before the value.
    @inline(__always) package mutating func key() throws(SyntaxError) -> StringToken {
        skipWhitespace()
        guard pos < end, base[pos] == 0x22 else {
            throw error("expected string key in object, found \(describe(pos < end ? base[pos] : nil))")
        }
        let token = try string()
        try expect(0x3A, "':' after object key")
        return token
    }

    /// Consumes the `count` bytes at `pattern` (a key's `"name":`) when the input continues with exactly them and
    /// returns true; otherwise returns false and consumes nothing. `count` is -1 for names that are never compared
    /// in place. The name must contain no '"', '\\' or byte below 0x20, so that the match is the whole, valid,
    /// escape-free key and its ':' (what ``key()`` reads from the same input without whitespace).
    @inline(__always) mutating func skipKey(_ pattern: UnsafePointer<UInt8>, count: Int) -> Bool {
        guard count > 0, pos &+ count <= end, bytesEqual(base + pos, pattern, count) else { return false }
        pos &+= count
        return true
    }

    // MARK: Strings

    /// At '"': scans a string, validating escapes (including surrogate pairs) and UTF-8.
    package mutating func string() throws(SyntaxError) -> StringToken {
        let open = pos
        pos += 1
        let start = pos
        var escapes = false
        while true {
            pos = skipStringWords(base, from: pos, to: end)
            // ASCII loop: the last bytes before `end`, or the stop found above.
            while pos < end {
                let b = base[pos]
                if b == 0x22 || b == 0x5C || b < 0x20 || b >= 0x80 { break }
                pos += 1
            }
            guard pos < end else { throw error("unterminated string", at: open) }
            let b = base[pos]
            if b == 0x22 {
                pos += 1
                return StringToken(start: start, end: pos - 1, hasEscapes: escapes)
            }
            if b == 0x5C {
                escapes = true
                try escape()
            } else if b < 0x20 {
                throw error("unescaped control character in string")
            } else {
                try utf8Sequence()
            }
        }
    }

    /// At '\': validates one escape sequence.
    mutating func escape() throws(SyntaxError) {
        let at = pos
        pos += 1
        guard pos < end else { throw error("unterminated string", at: at) }
        switch base[pos] {
        case 0x22, 0x5C, 0x2F, 0x62, 0x66, 0x6E, 0x72, 0x74:
            pos += 1
        case 0x75:
            pos += 1
            let unit = try hex4(at)
            if unit >= 0xD800 && unit <= 0xDBFF {
                guard pos + 1 < end, base[pos] == 0x5C, base[pos + 1] == 0x75 else {
                    throw error("unpaired high surrogate \\u\(String(unit, radix: 16, uppercase: true))", at: at)
                }
                let low = pos
                pos += 2
                let second = try hex4(low)
                guard second >= 0xDC00 && second <= 0xDFFF else {
                    throw error("unpaired high surrogate \\u\(String(unit, radix: 16, uppercase: true))", at: at)
                }
            } else if unit >= 0xDC00 && unit <= 0xDFFF {
                throw error("unpaired low surrogate \\u\(String(unit, radix: 16, uppercase: true))", at: at)
            }
        default:
            throw error("invalid escape sequence", at: at)
        }
    }

    /// Reads 4 hex digits.
    mutating func hex4(_ escapeStart: Int) throws(SyntaxError) -> UInt32 {
        guard pos + 4 <= end else { throw error("truncated \\u escape", at: escapeStart) }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let b = base[pos]
            let digit: UInt8
            switch b {
            case 0x30...0x39: digit = b - 0x30
            case 0x41...0x46: digit = b - 0x41 + 10
            case 0x61...0x66: digit = b - 0x61 + 10
            default: throw error("invalid hex digit in \\u escape", at: escapeStart)
            }
            value = value << 4 | UInt32(digit)
            pos += 1
        }
        return value
    }

    /// At a byte >= 0x80: validates one UTF-8 multi-byte sequence (no overlongs, surrogates or > U+10FFFF).
    mutating func utf8Sequence() throws(SyntaxError) {
        let at = pos
        let b0 = base[pos]
        var low: UInt8 = 0x80
        var high: UInt8 = 0xBF
        let continuation: Int
        switch b0 {
        case 0xC2...0xDF: continuation = 1
        case 0xE0:
            continuation = 2
            low = 0xA0
        case 0xE1...0xEC, 0xEE, 0xEF: continuation = 2
        case 0xED:
            continuation = 2
            high = 0x9F
        case 0xF0:
            continuation = 3
            low = 0x90
        case 0xF1...0xF3: continuation = 3
        case 0xF4:
            continuation = 3
            high = 0x8F
        default: throw error("invalid UTF-8 in string", at: at)
        }
        guard pos + continuation < end else { throw error("invalid UTF-8 in string", at: at) }
        let b1 = base[pos + 1]
        guard b1 >= low && b1 <= high else { throw error("invalid UTF-8 in string", at: at) }
        var i = 2
        while i <= continuation {
            let b = base[pos + i]
            guard b >= 0x80 && b <= 0xBF else { throw error("invalid UTF-8 in string", at: at) }
            i += 1
        }
        pos += continuation + 1
    }

    /// The bytes of a token without escapes, as a buffer into the scanned input.
    @inline(__always) package func raw(_ token: StringToken) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: base + token.start, count: token.count)
    }

    /// Decodes a validated string token's escapes into `out` (cleared first).
    func unescape(_ token: StringToken, into out: inout [UInt8]) {
        out.removeAll(keepingCapacity: true)
        var i = token.start
        while i < token.end {
            let b = base[i]
            if b != 0x5C {
                out.append(b)
                i += 1
                continue
            }
            let e = base[i + 1]
            i += 2
            switch e {
            case 0x62: out.append(0x08)
            case 0x66: out.append(0x0C)
            case 0x6E: out.append(0x0A)
            case 0x72: out.append(0x0D)
            case 0x74: out.append(0x09)
            case 0x75:
                var scalar = hexValue(i)
                i += 4
                if scalar >= 0xD800 && scalar <= 0xDBFF {
                    let lowUnit = hexValue(i + 2)
                    i += 6
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (lowUnit - 0xDC00)
                }
                appendUTF8(scalar, to: &out)
            default: out.append(e)  // '"', '\\', '/'
            }
        }
    }

    private func hexValue(_ at: Int) -> UInt32 {
        var value: UInt32 = 0
        for k in 0..<4 {
            let b = base[at + k]
            let digit: UInt32 =
                b <= 0x39 ? UInt32(b - 0x30) : b <= 0x46 ? UInt32(b - 0x41 + 10) : UInt32(b - 0x61 + 10)
            value = value << 4 | digit
        }
        return value
    }

    private func appendUTF8(_ scalar: UInt32, to out: inout [UInt8]) {
        switch scalar {
        case 0..<0x80:
            out.append(UInt8(scalar))
        case 0x80..<0x800:
            out.append(UInt8(0xC0 | scalar >> 6))
            out.append(UInt8(0x80 | scalar & 0x3F))
        case 0x800..<0x10000:
            out.append(UInt8(0xE0 | scalar >> 12))
            out.append(UInt8(0x80 | (scalar >> 6) & 0x3F))
            out.append(UInt8(0x80 | scalar & 0x3F))
        default:
            out.append(UInt8(0xF0 | scalar >> 18))
            out.append(UInt8(0x80 | (scalar >> 12) & 0x3F))
            out.append(UInt8(0x80 | (scalar >> 6) & 0x3F))
            out.append(UInt8(0x80 | scalar & 0x3F))
        }
    }

    /// The decoded string value of a validated token.
    package func makeString(_ token: StringToken, scratch: inout [UInt8]) -> String {
        if !token.hasEscapes { return makeUTF8String(raw(token)) }
        unescape(token, into: &scratch)
        return scratch.withUnsafeBufferPointer { makeUTF8String($0) }
    }

    /// The raw bytes between `start` and `end` as a String (used for number text).
    package func text(_ start: Int, _ end: Int) -> String {
        makeUTF8String(UnsafeBufferPointer(start: base + start, count: end - start))
    }

    // MARK: Numbers

    /// At '-' or a digit: scans and converts a number per RFC 8259.
    @inline(__always) package mutating func number() throws(SyntaxError) -> NumberToken {
        let start = pos
        switch NumberParser.scan(base, pos, end) {
        case .success(let (next, value, isInteger)):
            pos = next
            return NumberToken(start: start, end: next, value: value, isInteger: isInteger)
        case .failure(let failure):
            throw error(failure.message, at: failure.offset)
        }
    }

    // MARK: Literals and skipping

    /// At 't', 'f' or 'n': consumes the literal and returns its bool (nil for `null`).
    package mutating func literal() throws(SyntaxError) -> Bool? {
        let b = base[pos]
        if b == 0x74, pos + 4 <= end, base[pos + 1] == 0x72, base[pos + 2] == 0x75, base[pos + 3] == 0x65 {
            pos += 4
            return true
        }
        if b == 0x66, pos + 5 <= end, base[pos + 1] == 0x61, base[pos + 2] == 0x6C, base[pos + 3] == 0x73,
            base[pos + 4] == 0x65
        {
            pos += 5
            return false
        }
        if b == 0x6E, pos + 4 <= end, base[pos + 1] == 0x75, base[pos + 2] == 0x6C, base[pos + 3] == 0x6C {
            pos += 4
            return nil
        }
        throw error("invalid literal")
    }

    /// At `N`, `I` or `-` when ``allowsNonFinite``: consumes `NaN`, `Infinity` or `-Infinity` and returns its value;
    /// nil (nothing consumed) when the bytes are none of them, or non-finite literals are not allowed.
    @inline(__always) package mutating func nonFiniteLiteral() -> Double? {
        guard allowsNonFinite else { return nil }
        func matches(_ text: StaticString, at offset: Int) -> Bool {
            let count = text.utf8CodeUnitCount
            guard offset + count <= end else { return false }
            for i in 0..<count where base[offset + i] != text.utf8Start[i] { return false }
            return true
        }
        if matches("NaN", at: pos) {
            pos += 3
            return .nan
        }
        if matches("Infinity", at: pos) {
            pos += 8
            return .infinity
        }
        if matches("-Infinity", at: pos) {
            pos += 9
            return -.infinity
        }
        return nil
    }

    /// Validates and skips one value of any type at nesting level `depth` (the event object is level 1).
    package mutating func skipValue(depth: Int) throws(SyntaxError) {
        skipWhitespace()
        guard pos < end else { throw error("expected a value, found end of input") }
        if allowsNonFinite, nonFiniteLiteral() != nil { return }
        switch base[pos] {
        case 0x22: _ = try string()
        case 0x2D, 0x30...0x39: _ = try number()
        case 0x74, 0x66, 0x6E: _ = try literal()
        case 0x7B:
            guard depth <= maximumDepth else { throw error("nesting deeper than \(maximumDepth) levels") }
            pos += 1
            if objectIsEmpty() { return }
            repeat {
                _ = try key()
                try skipValue(depth: depth + 1)
            } while try objectContinues()
        case 0x5B:
            guard depth <= maximumDepth else { throw error("nesting deeper than \(maximumDepth) levels") }
            pos += 1
            skipWhitespace()
            if pos < end && base[pos] == 0x5D {
                pos += 1
                return
            }
            repeat {
                try skipValue(depth: depth + 1)
            } while try arrayContinues()
        default:
            throw error("expected a value, found \(describe(base[pos]))")
        }
    }
}

/// The String of validated UTF-8 `bytes`. Up to 15 bytes (a small String, stored inline) it is built in place
/// with `String(unsafeUninitializedCapacity:)`, whose ASCII check is a word mask (non-ASCII is still validated);
/// longer ones go through `String(decoding:as:)`.
@inline(__always)
func makeUTF8String(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
    let count = bytes.count
    guard count <= 15, let source = bytes.baseAddress else { return String(decoding: bytes, as: UTF8.self) }
    return String(unsafeUninitializedCapacity: count) { buffer in
        buffer.baseAddress!.update(from: source, count: count)
        return count
    }
}

/// From `start`, eight bytes at a time while a whole word lies before `end`: the offset of the first byte that may end
/// a plain run of string bytes ('"', '\\', a control byte or a byte >= 0x80), or of the last bytes, fewer than eight,
/// which the caller reads one by one.
@inline(__always)
package func skipStringWords(_ base: UnsafePointer<UInt8>, from start: Int, to end: Int) -> Int {
    var at = start
    while at &+ 8 <= end {
        let found = stringStops(UInt64(littleEndian: UnsafeRawPointer(base + at).loadUnaligned(as: UInt64.self)))
        if found != 0 { return at &+ found.trailingZeroBitCount &>> 3 }
        at &+= 8
    }
    return at
}

/// For a word of 8 input bytes (byte 0 in the low bits), the high bit of each byte that is '"', '\\', below 0x20
/// or >= 0x80. Bits above the lowest set one may be spurious (borrows), the lowest one is exact.
@inline(__always)
func stringStops(_ word: UInt64) -> UInt64 {
    let ones: UInt64 = 0x0101_0101_0101_0101
    let quote = word ^ (ones &* 0x22)
    let backslash = word ^ (ones &* 0x5C)
    let zeroQuote = (quote &- ones) & ~quote
    let zeroBackslash = (backslash &- ones) & ~backslash
    let control = (word &- ones &* 0x20) & ~word
    return (zeroQuote | zeroBackslash | control | word) & (ones &* 0x80)
}

/// Whether the `count` bytes at `a` and `b` are equal; reads exactly those bytes (word by word, the last words
/// overlapping), nothing beyond.
@inline(__always)
func bytesEqual(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ count: Int) -> Bool {
    let ra = UnsafeRawPointer(a)
    let rb = UnsafeRawPointer(b)
    if count >= 8 {
        var i = 0
        while i &+ 8 < count {
            if ra.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                != rb.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            {
                return false
            }
            i &+= 8
        }
        return ra.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self)
            == rb.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self)
    }
    if count >= 4 {
        return ra.loadUnaligned(as: UInt32.self) == rb.loadUnaligned(as: UInt32.self)
            && ra.loadUnaligned(fromByteOffset: count &- 4, as: UInt32.self)
                == rb.loadUnaligned(fromByteOffset: count &- 4, as: UInt32.self)
    }
    if count >= 2 {
        return ra.loadUnaligned(as: UInt16.self) == rb.loadUnaligned(as: UInt16.self)
            && ra.loadUnaligned(fromByteOffset: count &- 2, as: UInt16.self)
                == rb.loadUnaligned(fromByteOffset: count &- 2, as: UInt16.self)
    }
    return count == 0 || a.pointee == b.pointee
}

extension Scanner {
    /// The top-level keys, decoded, of the JSON object that is `buffer[start..<end]` (whitespace around it allowed);
    /// nil when that is not one object (the decoder reports what is wrong with it). Validates as it skips the values.
    package static func objectKeys(_ buffer: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int) -> [String]? {
        var s = Scanner(buffer, from: start, to: end)
        s.skipWhitespace()
        guard s.pos < s.end, s.base[s.pos] == 0x7B else { return nil }
        s.pos += 1
        var keys: [String] = []
        var scratch: [UInt8] = []
        do throws(SyntaxError) {
            if !s.objectIsEmpty() {
                repeat {
                    let key = try s.key()
                    keys.append(s.makeString(key, scratch: &scratch))
                    try s.skipValue(depth: 2)
                } while try s.objectContinues()
            }
        } catch {
            return nil
        }
        s.skipWhitespace()
        return s.pos == s.end ? keys : nil
    }
}
