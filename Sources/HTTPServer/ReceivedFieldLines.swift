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
        lines.withUnsafeBufferPointer { section in
            var reader = ReceivedFieldLines(section)
            while let line = reader.next() {
                if ASCII.equalsIgnoringCase(section[line.name], name.utf8) {
                    return String(decoding: section[line.value], as: UTF8.self)
                }
            }
            return nil
        }
    }

    /// The values of the lines of `lines` named `name` (case-insensitively), in order.
    static func values(named name: String, in lines: [UInt8]) -> [String] {
        var values: [String] = []
        lines.withUnsafeBufferPointer { section in
            var reader = ReceivedFieldLines(section)
            while let line = reader.next() {
                if ASCII.equalsIgnoringCase(section[line.name], name.utf8) {
                    values.append(String(decoding: section[line.value], as: UTF8.self))
                }
            }
        }
        return values
    }

    /// Whether a line of `lines` is named `name` (case-insensitively).
    static func contains(named name: String, in lines: [UInt8]) -> Bool {
        lines.withUnsafeBufferPointer { section in
            var reader = ReceivedFieldLines(section)
            while let line = reader.next() {
                if ASCII.equalsIgnoringCase(section[line.name], name.utf8) { return true }
            }
            return false
        }
    }
}
