import Glibc

/// The field lines of a header section as an HTTP/1.x parser received and checked them (``HTTPHeaders/receivedLines``:
/// each `name:value` ending in LF or CRLF, the name a token, no CR, LF or NUL in the value), read one by one, in
/// place. What ``HTTPHeaders`` decodes on demand and the proxy copies as bytes (``ForwardedFields``).
struct ReceivedFieldLines: IteratorProtocol {
    /// One field line; offsets into the section.
    struct Line {
        /// The whole line, its line break included.
        var whole: Range<Int>
        var name: Range<Int>
        /// The value without the whitespace around it.
        var value: Range<Int>
        /// The line reads exactly `name: value` CRLF, as it is written: it can be copied whole.
        var isCanonical: Bool
    }

    let section: UnsafeBufferPointer<UInt8>
    private var start = 0

    init(_ section: UnsafeBufferPointer<UInt8>) { self.section = section }

    /// The next line, nil after the last.
    @inline(__always)
    mutating func next() -> Line? {
        guard start < section.count, let base = section.baseAddress else { return nil }
        let count = section.count
        let lineFeed = memchr(base + start, 0x0A, count - start).map { UnsafeRawPointer(base).distance(to: $0) }
        let next = lineFeed.map { $0 + 1 } ?? count
        var end = lineFeed ?? count
        let hasCR = end > start && section[end - 1] == 0x0D
        if hasCR { end -= 1 }
        let colon =
            memchr(base + start, Int32(UInt8(ascii: ":")), end - start).map {
                UnsafeRawPointer(base).distance(to: $0)
            } ?? end
        var valueStart = min(colon + 1, end)
        while valueStart < end && ASCII.isWhitespace(section[valueStart]) { valueStart += 1 }
        var valueEnd = end
        while valueEnd > valueStart && ASCII.isWhitespace(section[valueEnd - 1]) { valueEnd -= 1 }
        let canonical =
            hasCR && valueEnd == end && valueStart == colon + 2 && section[colon + 1] == UInt8(ascii: " ")
        let line = Line(whole: start..<next, name: start..<colon, value: valueStart..<valueEnd, isCanonical: canonical)
        start = next
        return line
    }

    /// The `count` fields of `lines` as `String`s (invalid UTF-8 repaired, as the parser always did).
    static func decode(_ lines: [UInt8], count: Int) -> [(name: String, value: String)] {
        var fields: [(name: String, value: String)] = []
        fields.reserveCapacity(count)
        lines.withUnsafeBufferPointer { section in
            var reader = ReceivedFieldLines(section)
            while let line = reader.next() {
                fields.append(
                    (
                        name: String(decoding: section[line.name], as: UTF8.self),
                        value: String(decoding: section[line.value], as: UTF8.self)
                    ))
            }
        }
        return fields
    }

    /// The value of the first line of `lines` named `name` (case-insensitively), or nil.
    static func firstValue(named name: String, in lines: [UInt8]) -> String? {
        var found: String?
        forEachValue(named: name, in: lines) { section, value in
            found = String(decoding: section[value], as: UTF8.self)
            return false
        }
        return found
    }

    /// Whether the first line of `lines` named `name` (case-insensitively) has a value of valid UTF-8 (true when
    /// there is none): a value read as a `String` has U+FFFD in place of invalid bytes, so two different values may
    /// read alike.
    static func firstValueIsValidUTF8(named name: String, in lines: [UInt8]) -> Bool {
        var valid = true
        forEachValue(named: name, in: lines) { section, value in
            valid = String(validating: section[value], as: UTF8.self) != nil
            return false
        }
        return valid
    }

    /// The values of the lines of `lines` named `name` (case-insensitively), in order.
    static func values(named name: String, in lines: [UInt8]) -> [String] {
        var values: [String] = []
        forEachValue(named: name, in: lines) { section, value in
            values.append(String(decoding: section[value], as: UTF8.self))
            return true
        }
        return values
    }

    /// How many lines of `lines` are named `name` (case-insensitively), counting at most to `limit`.
    static func count(named name: String, in lines: [UInt8], limit: Int) -> Int {
        var found = 0
        forEachValue(named: name, in: lines) { _, _ in
            found += 1
            return found < limit
        }
        return found
    }

    /// Whether a line of `lines` is named `name` (case-insensitively).
    static func contains(named name: String, in lines: [UInt8]) -> Bool {
        var found = false
        forEachValue(named: name, in: lines) { _, _ in
            found = true
            return false
        }
        return found
    }

    /// Calls `body` with the value (trimmed, as ``next()`` reads it) of each line named `name`, in order, until it
    /// returns false. Only the line breaks are searched for, and a line is looked at further only when its name could
    /// be `name` (the byte after it a colon: a name, a token, holds none): the lines a lookup passes cost a
    /// `memchr` and a comparison or two, not a full ``next()`` each.
    private static func forEachValue(
        named name: String, in lines: [UInt8], _ body: (UnsafeBufferPointer<UInt8>, Range<Int>) -> Bool
    ) {
        var name = name
        name.withUTF8 { wanted in
            lines.withUnsafeBufferPointer { section in
                // A name with a colon names no line (the name of a line ends at its first colon).
                guard let base = section.baseAddress, !wanted.isEmpty, !wanted.contains(UInt8(ascii: ":")) else {
                    return
                }
                let count = section.count
                let length = wanted.count
                var start = 0
                while start < count {
                    let lineFeed =
                        memchr(base + start, 0x0A, count - start).map { UnsafeRawPointer(base).distance(to: $0) }
                        ?? count
                    if lineFeed - start > length && base[start + length] == UInt8(ascii: ":")
                        && ASCII.equalsIgnoringCase(UnsafeBufferPointer(start: base + start, count: length), wanted)
                    {
                        let end = lineFeed > start && base[lineFeed - 1] == 0x0D ? lineFeed - 1 : lineFeed
                        let value = ASCII.trimmingWhitespace(section[(start + length + 1)..<end])
                        if !body(section, value.startIndex..<value.endIndex) { return }
                    }
                    start = lineFeed + 1
                }
            }
        }
    }
}
