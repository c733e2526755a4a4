import Ingestion

/// Thrown by the direct (tape-free) readers when a body is not one they handle with certainty: not a failure of the
/// exchange, only "read it with the tape". It carries nothing: the tape path decodes the same bytes from scratch
/// and produces whatever result or error is due.
struct Fallback: Error {}

/// The ``Scanner`` reads of the direct readers, their syntax errors turned into ``Fallback`` (the tape path gives
/// the message), and the byte comparisons of keys and names.
extension Scanner {
    /// The byte at the cursor after whitespace; 0 at the end (never a byte the readers act on, so it falls back).
    /// Whitespace is JSON's four bytes, as ``Scanner`` skips it (here, inlined: the scanner's own is another
    /// module's call).
    @inline(__always) mutating func nextByte() -> UInt8 {
        while pos < end {
            let b = base[pos]
            guard b <= 0x20 && (b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09) else { return b }
            pos &+= 1
        }
        return 0
    }

    /// Consumes `byte`, the next byte after whitespace, or falls back.
    @inline(__always) mutating func consume(_ byte: UInt8) throws(Fallback) {
        guard nextByte() == byte else { throw Fallback() }
        pos &+= 1
    }

    /// Consumes `byte` when it is the next byte after whitespace.
    @inline(__always) mutating func take(_ byte: UInt8) -> Bool {
        guard nextByte() == byte else { return false }
        pos &+= 1
        return true
    }

    /// An object's next key with its ':'. Keys with escapes fall back: they are compared byte for byte.
    ///
    /// A key of printable ASCII followed at once by ':' (compact JSON's keys) is read here, inlined; any other is read
    /// again from its start by ``Scanner/key()``, which validates it (and gives the same token for those).
    @inline(__always) mutating func plainKey() throws(Fallback) -> StringToken {
        if nextByte() == 0x22, let close = plainASCIIStringEnd(), close &+ 1 < end, base[close &+ 1] == 0x3A {
            let token = StringToken(start: pos &+ 1, end: close, hasEscapes: false)
            pos = close &+ 2
            return token
        }
        let token: StringToken
        do { token = try key() } catch { throw Fallback() }
        guard !token.hasEscapes else { throw Fallback() }
        return token
    }

    /// The string value at the cursor.
    @inline(__always) mutating func stringToken() throws(Fallback) -> StringToken {
        guard nextByte() == 0x22 else { throw Fallback() }
        do { return try string() } catch { throw Fallback() }
    }

    /// At '"': the offset of the closing '"' when the string holds printable ASCII only (no escape, no control byte),
    /// which needs no further validation; nil for any other string (or none).
    @inline(__always) func plainASCIIStringEnd() -> Int? {
        // Eight bytes at a time to the first that may end the string (as ``Scanner/string()`` reads), which the byte
        // loop then judges.
        var at = skipStringWords(base, from: pos &+ 1, to: end)
        while at < end {
            let byte = base[at]
            if byte == 0x22 { return at }
            if byte < 0x20 || byte >= 0x80 || byte == 0x5C { return nil }
            at &+= 1
        }
        return nil
    }

    /// A string value without escapes (what a name is compared as).
    @inline(__always) mutating func plainString() throws(Fallback) -> StringToken {
        let token = try stringToken()
        guard !token.hasEscapes else { throw Fallback() }
        return token
    }

    /// A string value's text, escapes decoded (what a category, a label or a version is).
    @inline(__always) mutating func stringText() throws(Fallback) -> String {
        let token = try stringToken()
        var scratch: [UInt8] = []
        return makeString(token, scratch: &scratch)
    }

    /// A number, the cursor at its first byte.
    @inline(__always) mutating func numberToken() throws(Fallback) -> NumberToken {
        do { return try number() } catch { throw Fallback() }
    }

    /// `true`, `false` or `null` (nil), the cursor at its first byte.
    @inline(__always) mutating func literalValue() throws(Fallback) -> Bool? {
        do { return try literal() } catch { throw Fallback() }
    }

    /// Validates and skips the value at the cursor, a value at nesting level `depth` (the body is level 1).
    @inline(__always) mutating func skip(depth: Int) throws(Fallback) {
        do { try skipValue(depth: depth) } catch { throw Fallback() }
    }

    /// After an object member: true at ',', false at '}'.
    @inline(__always) mutating func moreMembers() throws(Fallback) -> Bool {
        if take(0x2C) { return true }
        try consume(0x7D)
        return false
    }

    /// After an array element: true at ',', false at ']'.
    @inline(__always) mutating func moreElements() throws(Fallback) -> Bool {
        if take(0x2C) { return true }
        try consume(0x5D)
        return false
    }

    /// After the body's value: only whitespace may follow.
    @inline(__always) mutating func finish() throws(Fallback) {
        guard nextByte() == 0, pos == end else { throw Fallback() }
    }

    /// Whether the bytes of `token` are `text`.
    @inline(__always) func token(_ token: StringToken, is text: StaticString) -> Bool {
        let count = token.end &- token.start
        guard count == text.utf8CodeUnitCount else { return false }
        let want = text.utf8Start
        for i in 0..<count where base[token.start &+ i] != want[i] { return false }
        return true
    }

    /// The bytes of `token` packed in a word, the first in the low byte, when there are 1 to 8 of them; 0 otherwise
    /// (no packed name is: a string's bytes are never 0). Two tokens of up to 8 bytes are equal exactly when their
    /// words are.
    @inline(__always) func packed(_ token: StringToken) -> UInt64 {
        let count = token.end &- token.start
        guard count > 0 && count <= 8 else { return 0 }
        var word: UInt64 = 0
        for i in 0..<count { word |= UInt64(base[token.start &+ i]) &<< (8 &* i) }
        return word
    }

    /// `text` (1 to 8 bytes, none 0) packed as ``packed(_:)`` packs a token of its bytes.
    static func packed(_ text: StaticString) -> UInt64 {
        precondition(text.utf8CodeUnitCount > 0 && text.utf8CodeUnitCount <= 8, "\(text) cannot be packed")
        var word: UInt64 = 0
        for i in 0..<text.utf8CodeUnitCount { word |= UInt64(text.utf8Start[i]) &<< (8 &* i) }
        return word
    }

    /// Whether the bytes of `token` are `bytes` (a name's UTF-8).
    @inline(__always) func token(_ token: StringToken, isBytes bytes: [UInt8]) -> Bool {
        let count = token.end &- token.start
        guard count == bytes.count else { return false }
        for i in 0..<count where base[token.start &+ i] != bytes[i] { return false }
        return true
    }

    /// Reads the object at the cursor (anything else is skipped: it has no members) and tells whether its member
    /// `key` is present (`presence`) or is `true`. The key given twice falls back (the tape reads the last one).
    /// `depth` is the object's nesting level.
    mutating func flag(_ key: StaticString, presence: Bool, depth: Int) throws(Fallback) -> Bool {
        guard nextByte() == 0x7B else {
            try skip(depth: depth)
            return false
        }
        pos &+= 1
        if take(0x7D) { return false }
        var seen = false
        var set = false
        repeat {
            let name = try plainKey()
            guard token(name, is: key) else {
                try skip(depth: depth + 1)
                continue
            }
            guard !seen else { throw Fallback() }
            seen = true
            if presence {
                set = true
                try skip(depth: depth + 1)
            } else if nextByte() == 0x74 || nextByte() == 0x66 || nextByte() == 0x6E {
                set = try literalValue() == true
            } else {
                try skip(depth: depth + 1)
            }
        } while try moreMembers()
        return set
    }
}
