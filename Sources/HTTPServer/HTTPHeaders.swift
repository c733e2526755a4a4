/// An ordered list of HTTP header fields with case-insensitive name lookup.
///
/// Order and duplicates are preserved exactly as received (or as added), because some fields
/// (`Set-Cookie`, `Via`) may legitimately repeat and their order matters. Names are compared
/// ASCII-case-insensitively; values are kept verbatim, with surrounding whitespace already trimmed
/// by the parser.
///
/// ```swift
/// var headers: HTTPHeaders = ["Content-Type": "text/plain; charset=utf-8"]
/// headers.add(name: "Vary", value: "Accept-Encoding")
/// headers["content-type"]  // "text/plain; charset=utf-8"
/// ```
public struct HTTPHeaders: Sendable, Equatable {
    /// One header field line: a name as it was spelled and its value.
    public typealias Field = (name: String, value: String)

    /// The fields as `String`s; empty while ``receivedLines`` holds them.
    private var fields: [(name: String, value: String)]

    /// The header section as an HTTP/1.x parser (or, as `name: value` lines, an HTTP/2 session: its regular
    /// fields, `host` from `:authority` when absent, cookies joined) received it, while the list is unchanged since:
    /// then it *is* the list (``fields`` is empty), its field lines in order, each `name:value` with optional whitespace around the
    /// value and ending in CRLF or a bare LF, the names tokens and the values free of CR, LF and NUL (the parser
    /// checked them). `String`s are made only for what is read: a lookup by name scans the bytes and decodes the
    /// value found; iterating or changing the list decodes every field (changing it also drops these bytes). Nil
    /// for a list built in code. A proxy forwards these bytes as they are (``ForwardedFields``).
    private(set) var receivedLines: [UInt8]?
    /// The number of lines in ``receivedLines``.
    private var receivedCount: UInt32 = 0
    /// The names of ``receivedLines``, one bit each (``nameBit(count:first:)``): a lookup of a name whose bit is clear
    /// is answered without a pass over the lines (most lookups of a proxied request are for names it lacks). All
    /// bits set: not known. 32 bits, beside the 32-bit count: the list is no larger (a larger one made the moves of
    /// the structures holding it calls of memcpy).
    private var receivedNames = UInt32.max

    /// The fields as `String`s, decoded from ``receivedLines`` when it holds them; changing them drops the bytes.
    @usableFromInline var storage: [(name: String, value: String)] {
        get { receivedLines.map { ReceivedFieldLines.decode($0, count: Int(receivedCount)) } ?? fields }
        _modify {
            if let lines = receivedLines {
                fields = ReceivedFieldLines.decode(lines, count: Int(receivedCount))
                receivedLines = nil
                receivedCount = 0
                receivedNames = .max
            }
            yield &fields
        }
    }

    /// Creates an empty header list.
    public init() {
        fields = []
    }

    /// Creates a header list from `(name, value)` pairs, keeping their order and duplicates.
    public init(_ fields: [(String, String)]) {
        self.fields = fields.map { (name: $0.0, value: $0.1) }
    }

    /// A list that is `lines`, `count` field lines as a parser received and checked them (see ``receivedLines``).
    /// `names`: the bits of the lines' names (``nameBit(count:first:)``), or all bits set.
    init(receivedLines lines: [UInt8], count: Int, names: UInt32 = .max) {
        fields = []
        receivedLines = lines
        receivedCount = UInt32(count)  // a section bounded in bytes has far fewer lines than 2^32
        receivedNames = names
    }

    /// Takes ``receivedLines`` out (for reuse, ``ByteArrayPool``), leaving an empty list; nil when there are none.
    mutating func takeReceivedLines() -> [UInt8]? {
        guard let lines = receivedLines.take() else { return nil }
        receivedCount = 0
        receivedNames = .max
        return lines
    }

    /// A name's bit, by its length and its first byte with case folded (names equal case-insensitively have the
    /// same bit); different names may share one.
    @inline(__always)
    static func nameBit(count: Int, first: UInt8) -> UInt32 {
        1 &<< UInt32(truncatingIfNeeded: (count &+ Int(first | 0x20)) & 31)
    }

    /// Whether a received line may be named `name`: false only when none is.
    @inline(__always)
    private func mayHaveReceived(_ name: String) -> Bool {
        guard let first = name.utf8.first else { return receivedNames == .max }
        return mayHaveReceived(nameBit: Self.nameBit(count: name.utf8.count, first: first))
    }

    /// ``mayHaveReceived(_:)`` for a name whose ``nameBit(count:first:)`` was worked out once (a configured name
    /// looked up per request): false only when no received line can have that name.
    @inline(__always)
    func mayHaveReceived(nameBit: UInt32) -> Bool { receivedNames == .max || receivedNames & nameBit != 0 }

    /// The number of field lines, counting duplicates separately.
    public var count: Int { receivedLines == nil ? fields.count : Int(receivedCount) }

    /// Whether there are no field lines.
    public var isEmpty: Bool { count == 0 }

    /// Appends a field line, keeping any existing lines with the same name.
    public mutating func add(name: String, value: String) {
        storage.append((name: name, value: value))
    }

    /// Removes every line named `name` (case-insensitively), then appends `name: value`.
    public mutating func replaceOrAdd(name: String, value: String) {
        remove(name: name)
        storage.append((name: name, value: value))
    }

    /// Sets a field a wrapping handler adds to every response (``HTTPResponder/settingHeaders(_:)``): replaces the
    /// lines of that name, except `Content-Security-Policy`, which is added beside the response's own: a browser
    /// enforces every policy it receives, so the configured one tightens the page's own instead of replacing it (a
    /// page's hashes for its inline style, its `frame-ancestors`, would be lost).
    mutating func setWrapping(name: String, value: String) {
        if Self.namesEqual(name, "content-security-policy") {
            storage.append((name: name, value: value))
        } else {
            replaceOrAdd(name: name, value: value)
        }
    }

    /// Makes the first `Host` line read `authority` in place, or appends one when there is none.
    mutating func setHost(_ authority: String) {
        if let first = storage.firstIndex(where: { Self.namesEqual($0.name, "host") }) {
            storage[first].value = authority
        } else {
            storage.append((name: "Host", value: authority))
        }
    }

    /// Removes every line named `name` (case-insensitively).
    public mutating func remove(name: String) {
        guard contains(name) else { return }  // received bytes are kept when nothing changes
        storage.removeAll { Self.namesEqual($0.name, name) }
    }

    /// Removes every line named one of `names` (case-insensitively), keeping the other lines' received bytes when
    /// the list holds them (``remove(name:)`` decodes every field: a value that is not UTF-8 became U+FFFD).
    mutating func removeKeepingReceivedBytes(_ names: [String]) {
        guard let lines = receivedLines else {
            for name in names { remove(name: name) }
            return
        }
        var kept: [UInt8] = []
        kept.reserveCapacity(lines.count)
        var count = 0
        lines.withUnsafeBufferPointer { section in
            var reader = ReceivedFieldLines(section)
            while let line = reader.next() {
                let name = section[line.name]
                if names.contains(where: { ASCII.equalsIgnoringCase(name, $0.utf8) }) { continue }
                kept.append(contentsOf: section[line.whole])
                count += 1
            }
        }
        self = HTTPHeaders(receivedLines: kept, count: count)
    }

    /// The value of the first line named `name` (case-insensitively), or `nil`.
    public subscript(name: String) -> String? {
        if let lines = receivedLines {
            guard mayHaveReceived(name) else { return nil }
            return ReceivedFieldLines.firstValue(named: name, in: lines)
        }
        for field in fields where Self.namesEqual(field.name, name) {
            return field.value
        }
        return nil
    }

    /// Whether the value of the first line named `name` was received as valid UTF-8 (true when there is none, and for
    /// fields set as `String`s): ``subscript(name:)`` reads invalid bytes as U+FFFD.
    func firstValueIsValidUTF8(_ name: String) -> Bool {
        guard let lines = receivedLines, mayHaveReceived(name) else { return true }
        return ReceivedFieldLines.firstValueIsValidUTF8(named: name, in: lines)
    }

    /// The values of all lines named `name` (case-insensitively), in order. Values are not split on commas.
    public func values(for name: String) -> [String] {
        if let lines = receivedLines {
            guard mayHaveReceived(name) else { return [] }
            return ReceivedFieldLines.values(named: name, in: lines)
        }
        return fields.compactMap { Self.namesEqual($0.name, name) ? $0.value : nil }
    }

    /// Whether more than one line is named `name` (case-insensitively): for a field that holds one value
    /// (`Authorization`, `Content-Type`), a request whose readers may take either line (the first, the last, both).
    public func isRepeated(_ name: String) -> Bool {
        if let lines = receivedLines {
            guard mayHaveReceived(name) else { return false }
            return ReceivedFieldLines.count(named: name, in: lines, limit: 2) > 1
        }
        var seen = false
        for field in fields where Self.namesEqual(field.name, name) {
            if seen { return true }
            seen = true
        }
        return false
    }

    /// Whether at least one line is named `name` (case-insensitively).
    public func contains(_ name: String) -> Bool {
        if let lines = receivedLines {
            guard mayHaveReceived(name) else { return false }
            return ReceivedFieldLines.contains(named: name, in: lines)
        }
        return fields.contains { Self.namesEqual($0.name, name) }
    }

    /// Whether some line named `name` holds `token` as one of its comma-separated elements,
    /// compared case-insensitively (e.g. `containsToken("close", in: "Connection")`).
    public func containsToken(_ token: String, in name: String) -> Bool {
        for value in values(for: name) {
            for element in value.utf8.split(separator: UInt8(ascii: ",")) {
                if ASCII.equalsIgnoringCase(ASCII.trimmingWhitespace(element), token.utf8) {
                    return true
                }
            }
        }
        return false
    }

    /// Two lists are equal when they hold the same lines in the same order; names compare case-insensitively.
    public static func == (lhs: HTTPHeaders, rhs: HTTPHeaders) -> Bool {
        guard lhs.storage.count == rhs.storage.count else { return false }
        for (left, right) in zip(lhs.storage, rhs.storage) {
            guard namesEqual(left.name, right.name), left.value == right.value else { return false }
        }
        return true
    }

    @inlinable
    static func namesEqual(_ lhs: String, _ rhs: String) -> Bool {
        ASCII.equalsIgnoringCase(lhs.utf8, rhs.utf8)
    }
}

extension HTTPHeaders: Sequence {
    /// Iterates the field lines in order.
    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> {
        storage.makeIterator()
    }
}

extension HTTPHeaders: ExpressibleByDictionaryLiteral {
    /// Creates a header list from a literal such as `["Content-Type": "text/plain"]`, keeping the literal's order.
    public init(dictionaryLiteral elements: (String, String)...) {
        self.init(elements)
    }
}

extension HTTPHeaders: CustomStringConvertible {
    /// The lines as `Name: value`, separated by commas, for logs and test failures.
    public var description: String {
        "[" + storage.map { "\($0.name): \($0.value)" }.joined(separator: ", ") + "]"
    }
}

extension HTTPHeaders {
    /// Whether a handler's header field may be sent: a token name, a value without CR, LF or NUL (no response
    /// splitting, in either protocol).
    static func isSendable(name: String.UTF8View, value: String) -> Bool {
        guard !name.isEmpty else { return false }
        // Over the contiguous bytes when there are (native and small strings): the generic iteration costs several
        // times as much, and every field of every response is checked.
        let tokenName =
            name.withContiguousStorageIfAvailable { $0.allSatisfy(ASCII.isTokenCharacter) }
            ?? name.allSatisfy(ASCII.isTokenCharacter)
        guard tokenName else { return false }
        return isSendable(value: value)
    }

    /// Whether a field value may be sent: no CR, LF or NUL.
    static func isSendable(value: String) -> Bool {
        let safe: (UInt8) -> Bool = { $0 != 0x0D && $0 != 0x0A && $0 != 0 }
        // Eight bytes at a time through the stricter field-value scan (no control byte but HTAB, no DEL: none of CR,
        // LF, NUL), byte by byte only from where it stops (a request id per response is checked: ~200 instructions for
        // 26 bytes byte by byte).
        return value.utf8.withContiguousStorageIfAvailable { bytes in
            guard let base = bytes.baseAddress else { return true }
            let end = HTTP1Framing.fieldValueEnd(base, from: 0, to: bytes.count)
            return end == bytes.count || bytes[end...].allSatisfy(safe)
        } ?? value.utf8.allSatisfy(safe)
    }
}

/// ASCII helpers shared by the header list, the parser and the encoder.
@usableFromInline
enum ASCII {
    @inlinable
    static func lowercased(_ byte: UInt8) -> UInt8 {
        byte &+ ((byte &- UInt8(ascii: "A")) < 26 ? 32 : 0)
    }

    @inlinable
    static func equalsIgnoringCase<L: Collection<UInt8>, R: Collection<UInt8>>(_ lhs: L, _ rhs: R) -> Bool {
        guard lhs.count == rhs.count else { return false }
        // Contiguous bytes (native strings, arrays, buffers): a plain loop; zip's generic iterators cost several
        // times as much, and header names are compared on every request.
        let contiguous = lhs.withContiguousStorageIfAvailable { l in
            rhs.withContiguousStorageIfAvailable { r in
                for i in 0..<l.count where lowercased(l[i]) != lowercased(r[i]) { return false }
                return true
            }
        }
        if let contiguous, let result = contiguous { return result }
        return zip(lhs, rhs).allSatisfy { lowercased($0) == lowercased($1) }
    }

    /// Whether `bytes` equal `lowercase` (ASCII, already lowercase: a field name as the code spells it) ignoring the
    /// case of `bytes`. A plain loop over both: the generic ``equalsIgnoringCase(_:_:)`` with a `String` literal costs
    /// several times as much, and header names are classified on every request.
    @inline(__always)
    static func equalsLowercase<Bytes: Collection<UInt8>>(_ bytes: Bytes, _ lowercase: StaticString) -> Bool {
        guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
        // Contiguous bytes (buffers and their slices, as the parsers pass): indexed loads, no iterator.
        let contiguous = bytes.withContiguousStorageIfAvailable { b in
            let expected = lowercase.utf8Start
            for i in 0..<b.count where lowercased(b[i]) != expected[i] { return false }
            return true
        }
        if let contiguous { return contiguous }
        var expected = lowercase.utf8Start
        for byte in bytes {
            guard lowercased(byte) == expected.pointee else { return false }
            expected += 1
        }
        return true
    }

    @usableFromInline
    static func trimmingWhitespace<C: BidirectionalCollection<UInt8>>(_ bytes: C) -> C.SubSequence {
        var start = bytes.startIndex
        var end = bytes.endIndex
        while start < end, isWhitespace(bytes[start]) { start = bytes.index(after: start) }
        while end > start, isWhitespace(bytes[bytes.index(before: end)]) { end = bytes.index(before: end) }
        return bytes[start..<end]
    }

    /// SP or HTAB (RFC 9110 OWS).
    @inlinable
    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
    }

    /// RFC 9110 `tchar`: the characters of a token (method, header name, transfer-coding).
    @inlinable
    static func isTokenCharacter(_ byte: UInt8) -> Bool {
        // A 128-bit set in two constants (digits, letters and !#$%&'*+-.^_`|~): a global table would be initialised
        // lazily, with a check on every byte of every header name.
        let low: UInt64 = 0x03FF_6CFA_0000_0000  // bytes 0...63
        let high: UInt64 = 0x57FF_FFFF_C7FF_FFFE  // bytes 64...127
        if byte < 64 { return (low >> UInt64(byte)) & 1 != 0 }
        if byte < 128 { return (high >> UInt64(byte &- 64)) & 1 != 0 }
        return false
    }
}
