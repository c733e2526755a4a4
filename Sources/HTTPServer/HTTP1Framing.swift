import Glibc

/// The pieces of HTTP/1.1 message syntax (RFC 9112) shared by the request parser (``HTTP1Parser``) and the
/// response parser (``HTTP1ResponseParser``): line scanning, field lines, `Content-Length` and `Transfer-Encoding`
/// values, and the version token. The head scan is ``HTTP1HeadScanner``, the chunked coding ``ChunkedDecoder``.
///
/// Everything works on the contiguous unconsumed bytes of a connection; offsets are relative to their start.
enum HTTP1Framing {
    /// A slice of the input.
    typealias Bytes = Slice<UnsafeBufferPointer<UInt8>>

    /// A malformed line: one line of plain text saying why, without a line break.
    struct Malformed: Error, Equatable {
        var reason: String

        init(_ reason: String) { self.reason = reason }
    }

    /// The version token of a start line.
    enum Version: Equatable {
        case version(HTTPVersion)
        /// Not `HTTP/DIGIT.DIGIT`.
        case malformed
        /// A major version other than 1.
        case unsupported
    }

    /// Reads `HTTP/1.0` or `HTTP/1.1`; another 1.x minor reads as 1.1.
    static func parseVersion(_ bytes: Bytes) -> Version {
        let digits = UInt8(ascii: "0")...UInt8(ascii: "9")
        let start = bytes.startIndex
        // Byte by byte: the generic `starts(with:)` over a String's UTF-8 costs several times as much, twice per
        // proxied request.
        guard bytes.count == 8, bytes[start] == UInt8(ascii: "H"), bytes[start + 1] == UInt8(ascii: "T"),
            bytes[start + 2] == UInt8(ascii: "T"), bytes[start + 3] == UInt8(ascii: "P"),
            bytes[start + 4] == UInt8(ascii: "/"),
            digits.contains(bytes[bytes.startIndex + 5]), bytes[bytes.startIndex + 6] == UInt8(ascii: "."),
            digits.contains(bytes[bytes.startIndex + 7])
        else {
            return .malformed
        }
        guard bytes[bytes.startIndex + 5] == UInt8(ascii: "1") else { return .unsupported }
        return .version(bytes[bytes.startIndex + 7] == UInt8(ascii: "0") ? .http1_0 : .http1_1)
    }

    /// Calls `body` with the name and the trimmed value of each field line in `lines` (whole lines, each ending
    /// in LF), then adds the fields to `headers`: when it was empty, as a copy of the lines checked
    /// (``HTTPHeaders/receivedLines``, no `String` made; in an array of `arrays` when given), else appended one by
    /// one. Throws on obs-fold (a line starting with whitespace), a line without a
    /// colon, an empty or invalid name, whitespace before the colon, or a control character in a value.
    static func forEachField(
        _ input: UnsafeBufferPointer<UInt8>, in lines: Range<Int>, into headers: inout HTTPHeaders,
        arrays: ByteArrayPool? = nil, _ body: (_ name: Bytes, _ value: Bytes) throws(Malformed) -> Void
    ) throws(Malformed) {
        let keepsLines = headers.isEmpty
        var start = lines.lowerBound
        var count = 0
        var names: UInt32 = 0
        while start < lines.upperBound {
            let (name, value, next) = try nextField(input, from: start, to: lines.upperBound)
            try body(name, value)
            if !keepsLines { headers.append(name: name, value: value) }
            names |= HTTPHeaders.nameBit(count: name.count, first: input[name.startIndex])  // a name is never empty
            count += 1
            start = next
        }
        if keepsLines {
            let copy = arrays?.copy(input[lines]) ?? Array(input[lines])
            headers = HTTPHeaders(receivedLines: copy, count: count, names: names)
        }
    }

    /// The field line at `start` (`limit`: the end of the lines, each ending in LF): its name, trimmed value, and where
    /// the next line starts, as ``parseFieldLine(_:_:)`` reads the line up to its line break, throwing the same errors.
    /// One pass over the line: the name up to its colon, then the value's bytes up to the line break, a word at a time,
    /// which both finds the break and checks the bytes (no separate search for it). A line whose name part is not
    /// `token:` goes through ``parseFieldLine(_:_:)`` for its error.
    @inline(__always)
    static func nextField(
        _ input: UnsafeBufferPointer<UInt8>, from start: Int, to limit: Int
    ) throws(Malformed) -> (name: Bytes, value: Bytes, next: Int) {
        guard let base = input.baseAddress else { return try nextFieldChecking(input, from: start, to: limit) }
        let colon = tokenEnd(base, from: start, to: limit)
        guard colon > start, colon < limit, base[colon] == UInt8(ascii: ":") else {
            return try nextFieldChecking(input, from: start, to: limit)
        }
        var valueStart = colon + 1
        while valueStart < limit && ASCII.isWhitespace(base[valueStart]) { valueStart += 1 }
        // To the first byte that is not a field-value character. The lines end in LF, a control byte: `index` is on the
        // line break, or on a byte a value may not hold.
        let index = fieldValueEnd(base, from: valueStart, to: limit)
        let next: Int
        if index < limit && base[index] == UInt8(ascii: "\n") {
            next = index + 1
        } else if index + 1 < limit && base[index] == UInt8(ascii: "\r") && base[index + 1] == UInt8(ascii: "\n") {
            next = index + 2
        } else {
            throw Malformed("invalid character in header value")
        }
        var valueEnd = index
        while valueEnd > valueStart && ASCII.isWhitespace(base[valueEnd - 1]) { valueEnd -= 1 }
        return (input[start..<colon], input[valueStart..<valueEnd], next)
    }

    /// ``nextField(_:from:to:)`` by finding the line break first, then ``parseFieldLine(_:_:)``.
    static func nextFieldChecking(
        _ input: UnsafeBufferPointer<UInt8>, from start: Int, to limit: Int
    ) throws(Malformed) -> (name: Bytes, value: Bytes, next: Int) {
        let lineFeed = findLineFeed(input, from: start, to: limit)!
        let (name, value) = try parseFieldLine(input, start..<trimCarriageReturn(input, start, lineFeed))
        return (name, value, lineFeed + 1)
    }

    /// The name and trimmed value of one field line (`line` without its line break, not empty), each check with its
    /// own reason: obs-fold, no colon, an empty name, whitespace before the colon, an invalid name, an invalid value.
    static func parseFieldLine(
        _ input: UnsafeBufferPointer<UInt8>, _ line: Range<Int>
    ) throws(Malformed) -> (name: Bytes, value: Bytes) {
        if ASCII.isWhitespace(input[line.lowerBound]) {
            throw Malformed("obsolete line folding is not allowed")
        }
        guard let base = input.baseAddress,
            let found = memchr(base + line.lowerBound, Int32(UInt8(ascii: ":")), line.count)
        else {
            throw Malformed("header line without a colon")
        }
        let colon = UnsafeRawPointer(found) - UnsafeRawPointer(base)
        guard colon > line.lowerBound else { throw Malformed("empty header name") }
        if ASCII.isWhitespace(input[colon - 1]) {
            throw Malformed("whitespace between header name and colon")
        }
        var index = line.lowerBound
        while index < colon {
            guard ASCII.isTokenCharacter(input[index]) else { throw Malformed("invalid header name") }
            index += 1
        }
        var valueStart = colon + 1
        var valueEnd = line.upperBound
        while valueStart < valueEnd && ASCII.isWhitespace(input[valueStart]) { valueStart += 1 }
        while valueEnd > valueStart && ASCII.isWhitespace(input[valueEnd - 1]) { valueEnd -= 1 }
        guard isFieldValue(input, valueStart..<valueEnd) else { throw Malformed("invalid character in header value") }
        return (input[line.lowerBound..<colon], input[valueStart..<valueEnd])
    }

    /// The fields that frame a message (`Connection`, `Content-Length`, `Transfer-Encoding`), gathered line by line.
    struct FramingFields {
        /// The length all `Content-Length` lines and list elements agree on.
        var contentLength: Int?
        var hasTransferEncoding = false
        /// The codings of all `Transfer-Encoding` lines in order, parameters dropped, as written.
        var transferCodings: [String] = []
        /// Whether a coding had parameters (`chunked;x=1`: `chunked` defines none, RFC 9112 §7.1; a parser that
        /// reads such a coding as unknown frames the body otherwise).
        var transferCodingHasParameters = false
        /// A `close` connection option.
        var close = false
        /// A `keep-alive` connection option.
        var keepAlive = false

        /// Reads the field if it is one of those; throws on an invalid, empty or conflicting `Content-Length`
        /// (every list element must be 1*DIGIT and equal to all others).
        mutating func read(name: Bytes, value: Bytes) throws(Malformed) {
            switch name.count {
            case 10 where ASCII.equalsLowercase(name, "connection"):
                // The usual values, a single option, without walking a list.
                if ASCII.equalsLowercase(value, "keep-alive") {
                    keepAlive = true
                    return
                }
                if ASCII.equalsLowercase(value, "close") {
                    close = true
                    return
                }
                forEachListElement(value) { token in
                    if ASCII.equalsLowercase(token, "close") { close = true }
                    if ASCII.equalsLowercase(token, "keep-alive") { keepAlive = true }
                }
            case 14 where ASCII.equalsLowercase(name, "content-length"):
                // The usual value, digits only, as the one element of the list it is.
                if let length = parseContentLength(value) {
                    guard contentLength == nil || contentLength == length else {
                        throw Malformed("invalid or conflicting Content-Length")
                    }
                    contentLength = length
                    return
                }
                var invalid = false
                var elements = 0
                forEachListElement(value) { element in
                    elements += 1
                    guard let length = parseContentLength(element), contentLength == nil || contentLength == length
                    else {
                        invalid = true
                        return
                    }
                    contentLength = length
                }
                if invalid || elements == 0 { throw Malformed("invalid or conflicting Content-Length") }
            case 17 where ASCII.equalsLowercase(name, "transfer-encoding"):
                hasTransferEncoding = true
                forEachListElement(value) { element in
                    let coding = element.prefix { $0 != UInt8(ascii: ";") }
                    if coding.count < element.count { transferCodingHasParameters = true }
                    transferCodings.append(String(decoding: ASCII.trimmingWhitespace(coding), as: UTF8.self))
                }
            default:
                break
            }
        }
    }

    /// Whether every byte of `input[range]` is a field-value character: eight at a time while none is below SP or
    /// DEL (the usual case), byte by byte around them (HTAB is allowed, other control bytes not).
    @inline(__always)
    static func isFieldValue(_ input: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Bool {
        guard let base = input.baseAddress else { return range.isEmpty }
        return fieldValueEnd(base, from: range.lowerBound, to: range.upperBound) == range.upperBound
    }

    /// The offset of the first byte in `start..<limit` that is not a field-value character (``limit`` when none):
    /// eight bytes at a time (SWAR); in a word that holds one (a control byte, DEL, or an HTAB that may pass) the
    /// first is found by its bit position, the rest of the word byte by byte only after an HTAB.
    @inline(__always)
    static func fieldValueEnd(_ base: UnsafePointer<UInt8>, from start: Int, to limit: Int) -> Int {
        var index = start
        while true {
            // A byte below 0x20, or a byte equal to 0x7F (zero after the XOR). The lowest flagged byte is exact in
            // each mask (a borrow only flags bytes above a true one): the first control byte or DEL.
            let (at, found) = ByteWords.firstFlagged(base, from: index, to: limit) { word in
                let delete = word ^ (0x7F &* ByteWords.ones)
                return ((word &- 0x20 &* ByteWords.ones) & ~word | (delete &- ByteWords.ones) & ~delete)
                    & ByteWords.highs
            }
            index = at
            guard found != 0 else { break }
            let offset = found.trailingZeroBitCount >> 3
            // An HTAB passes: the rest of its word byte by byte.
            if base[index + offset] != 0x09 { return index + offset }
            for next in (offset + 1)..<8 where !isFieldValueCharacter(base[index + next]) { return index + next }
            index += 8
        }
        while index < limit {
            guard isFieldValueCharacter(base[index]) else { return index }
            index += 1
        }
        return limit
    }

    /// The offset of the first byte in `start..<limit` that is not a token character (``limit`` when none): eight
    /// bytes at a time while a word holds only letters, digits and `-` (what header names are made of), by
    /// ``ASCII/isTokenCharacter(_:)`` from the first other byte on. Per byte the word tests are exact (no carry
    /// crosses a byte: every byte is below 0x80 when they are made).
    @inline(__always)
    static func tokenEnd(_ base: UnsafePointer<UInt8>, from start: Int, to limit: Int) -> Int {
        let ones = ByteWords.ones
        let highs = ByteWords.highs
        // Bit 7 of a byte set when the byte is at least `low` and at most `high` (bytes below 0x80).
        @inline(__always) func within(_ x: UInt64, _ low: UInt8, _ high: UInt8) -> UInt64 {
            (x &+ UInt64(0x80 - low) &* ones) & ~(x &+ UInt64(0x7F - high) &* ones) & highs
        }
        let (at, other) = ByteWords.firstFlagged(base, from: start, to: limit) { word in
            guard word & highs == 0 else { return highs }  // non-ASCII: from the word's start, byte by byte
            let dash = word ^ (UInt64(UInt8(ascii: "-")) &* ones)
            let isDash = ~(((dash & ~highs) &+ ~highs) | dash) & highs
            let plain =
                within(word | 0x20 &* ones, UInt8(ascii: "a"), UInt8(ascii: "z"))
                | within(word, UInt8(ascii: "0"), UInt8(ascii: "9")) | isDash
            return ~plain & highs
        }
        var index = other == 0 ? at : at + other.trailingZeroBitCount >> 3
        while index < limit && ASCII.isTokenCharacter(base[index]) { index += 1 }
        return index
    }

    /// Whether `value` is a `Host` field value (RFC 9110 §7.2, RFC 3986 §3.2.2): empty, or `uri-host [ ":" port ]`,
    /// where uri-host is a reg-name (unreserved, sub-delims, `%HH`) or an IP literal in brackets, and port is digits.
    /// Whitespace, `/`, `@`, `?`, `#` or a second `:` make it no host (what a proxy must refuse with 400 rather than
    /// pass on, RFC 9112 §3.2).
    static func isHostValue<Bytes: Collection<UInt8>>(_ value: Bytes) -> Bool where Bytes.Index == Int {
        var i = value.startIndex
        let end = value.endIndex
        if i < end && value[i] == UInt8(ascii: "[") {
            guard let close = value[i...].firstIndex(of: UInt8(ascii: "]")), close > i + 1 else { return false }
            for byte in value[(i + 1)..<close] {
                // IPv6 (hex, ':', '.'), a zone id ("%25..."), IPvFuture ("v" hex "." unreserved / sub-delims / ":").
                guard isRegNameByte(byte) || byte == UInt8(ascii: ":") else { return false }
            }
            i = close + 1
        } else {
            while i < end && value[i] != UInt8(ascii: ":") {
                let byte = value[i]
                if byte == UInt8(ascii: "%") {
                    guard i + 2 < end, hexValue(value[i + 1]) != nil, hexValue(value[i + 2]) != nil else {
                        return false
                    }
                    i += 3
                    continue
                }
                guard isRegNameByte(byte) else { return false }
                i += 1
            }
        }
        guard i < end else { return true }
        guard value[i] == UInt8(ascii: ":") else { return false }
        return value[(i + 1)...].allSatisfy { $0 &- UInt8(ascii: "0") < 10 }
    }

    /// unreserved / sub-delims / '%' (RFC 3986): a byte a reg-name may hold ('%' checked by the caller). A bit per
    /// byte below 0x80 (ALPHA, DIGIT, `-._~!$&'()*+,;=%`), one test per byte (a host is read per request).
    @inline(__always)
    private static func isRegNameByte(_ byte: UInt8) -> Bool {
        let low: UInt64 = 0x2BFF_7FF2_0000_0000
        let high: UInt64 = 0x47FF_FFFE_87FF_FFFE
        guard byte < 0x80 else { return false }
        return (byte < 0x40 ? low : high) >> (byte & 0x3F) & 1 != 0
    }

    /// RFC 9110 field-value characters: HTAB, SP, VCHAR, obs-text.
    @inline(__always)
    static func isFieldValueCharacter(_ byte: UInt8) -> Bool {
        byte == 0x09 || (byte >= 0x20 && byte != 0x7F)
    }

    /// Calls `body` with each trimmed, non-empty element of a comma-separated list.
    static func forEachListElement(_ value: Bytes, _ body: (Bytes) -> Void) {
        var start = value.startIndex
        while start <= value.endIndex {
            let end = value[start...].firstIndex(of: UInt8(ascii: ",")) ?? value.endIndex
            let element = ASCII.trimmingWhitespace(value[start..<end])
            if !element.isEmpty { body(element) }
            start = end + 1
        }
    }

    /// 1*DIGIT; values beyond `Int.max` saturate (and then exceed any body limit).
    static func parseContentLength(_ bytes: Bytes) -> Int? {
        guard !bytes.isEmpty else { return nil }
        var value = 0
        for byte in bytes {
            let digit = byte &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(Int(digit))
            value = overflow1 || overflow2 ? Int.max : sum
        }
        return value
    }

    static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    /// Index of the first LF in `input[from..<to]`, using `memchr`.
    @inline(__always)
    static func findLineFeed(_ input: UnsafeBufferPointer<UInt8>, from: Int, to: Int) -> Int? {
        guard from < to, let base = input.baseAddress else { return nil }
        guard let found = memchr(base + from, 0x0A, to - from) else { return nil }
        return UnsafeRawPointer(found) - UnsafeRawPointer(base)
    }

    /// The end of the line content whose LF is at `lineFeed`: drops one CR before it.
    @inline(__always)
    static func trimCarriageReturn(_ input: UnsafeBufferPointer<UInt8>, _ start: Int, _ lineFeed: Int) -> Int {
        lineFeed > start && input[lineFeed - 1] == UInt8(ascii: "\r") ? lineFeed - 1 : lineFeed
    }
}

extension HTTPHeaders {
    /// Appends a field line as parsed (name and value decoded as UTF-8, invalid bytes repaired).
    mutating func append(name: HTTP1Framing.Bytes, value: HTTP1Framing.Bytes) {
        storage.append((name: String(decoding: name, as: UTF8.self), value: String(decoding: value, as: UTF8.self)))
    }
}

/// Finds the end of a message head (start line, field lines, empty line) in a growing input, under size limits.
///
/// The head must start at offset 0 of the input and nothing may be consumed until ``scan(_:limits:)`` reports it
/// complete: the scan position is kept between calls, so no byte is examined twice. Lines end in CRLF or a bare
/// LF; up to 16 bytes of empty lines before the start line are skipped (RFC 9112 §2.2). A CR at the very end of
/// the input may be the first half of a CRLF and counts against no limit, so a head passes or fails the same
/// whichever way it was split.
struct HTTP1HeadScanner {
    struct Limits {
        /// The start line, without its line break.
        var maxFirstLineLength: Int
        /// The field lines, line breaks included.
        var maxHeaderBytes: Int
        var maxHeaderCount: Int
    }

    enum Failure: Error, Equatable {
        case tooManyEmptyLines
        case firstLineTooLong
        case tooManyFields
        case sectionTooLarge
    }

    enum Result: Equatable {
        case needMore
        /// `firstLine`: the start line without its line break; `fields`: the field lines, each ending in LF;
        /// `headEnd`: the length of the head, the empty line included.
        case complete(firstLine: Range<Int>, fields: Range<Int>, headEnd: Int)
        case fail(Failure)
    }

    private var scanOffset = 0
    private var lineStart = 0
    private var headStart = 0
    private var firstLineEnd: Int?
    private var fieldCount = 0

    mutating func scan(_ input: UnsafeBufferPointer<UInt8>, limits: Limits) -> Result {
        var position = scanOffset
        while position < input.count {
            guard let lineFeed = HTTP1Framing.findLineFeed(input, from: position, to: input.count) else {
                position = input.count
                break
            }
            let contentEnd = HTTP1Framing.trimCarriageReturn(input, lineStart, lineFeed)
            let next = lineFeed + 1
            if firstLineEnd == nil {
                if contentEnd == lineStart {
                    guard next <= 16 else { return .fail(.tooManyEmptyLines) }
                    headStart = next
                } else {
                    guard contentEnd - lineStart <= limits.maxFirstLineLength else { return .fail(.firstLineTooLong) }
                    firstLineEnd = next
                }
            } else if contentEnd == lineStart {
                let firstLineEnd = firstLineEnd!
                let firstLine = headStart..<HTTP1Framing.trimCarriageReturn(input, headStart, firstLineEnd - 1)
                return .complete(firstLine: firstLine, fields: firstLineEnd..<lineStart, headEnd: next)
            } else {
                fieldCount += 1
                guard fieldCount <= limits.maxHeaderCount else { return .fail(.tooManyFields) }
            }
            lineStart = next
            position = next
            if let firstLineEnd, position - firstLineEnd > limits.maxHeaderBytes { return .fail(.sectionTooLarge) }
        }
        scanOffset = position
        let pendingCR = input.count > lineStart && input[input.count - 1] == UInt8(ascii: "\r")
        let end = pendingCR ? input.count - 1 : input.count
        if let firstLineEnd {
            if end - firstLineEnd > limits.maxHeaderBytes { return .fail(.sectionTooLarge) }
        } else if end - headStart > limits.maxFirstLineLength {
            return .fail(.firstLineTooLong)
        }
        return .needMore
    }
}

/// Decodes the chunked transfer coding (RFC 9112 §7.1) one step at a time: chunk-size lines (extensions checked
/// against the grammar and ignored), chunk data, the line break after it, and the trailer section.
///
/// Line breaks: with ``Limits/requiresCRLF`` a chunk-size line and the end of chunk data must be CRLF (a request
/// body: a bare LF there is read differently by other parsers on the path, the way requests are smuggled; RFC 9112
/// allows a lone LF only in the start line and field lines), otherwise a lone LF is accepted too (an upstream's
/// response, which the proxy frames anew for its client). The trailer section's lines, its closing empty line
/// included, follow the same rule: they end the body, and `0\r\nX: 1\n\r\n` followed by a request was a trailer
/// line and a new request here, one long trailer line to a parser in front that takes only CRLF.
///
/// Each call to ``next(_:at:limit:)`` looks at the input from `start` and returns one ``Step``; the caller must
/// consume exactly the bytes the step names before the next call (the decoder has already moved on). After
/// ``Step/end(_:)`` or ``Step/fail(_:)`` the decoder is finished; make a new one for the next body.
struct ChunkedDecoder {
    struct Limits {
        /// A chunk-size line, extensions included, without its line break.
        var maxChunkLineLength: Int
        /// The sum of the chunk sizes.
        var maxBodySize: Int
        /// The trailer field lines, line breaks included.
        var maxTrailerBytes: Int
        var maxTrailerCount: Int
        /// Chunk-size lines and chunk data end in CRLF, never a lone LF.
        var requiresCRLF = false
    }

    enum Failure: Error, Equatable {
        /// Bad syntax: one line of plain text saying what.
        case malformed(String)
        /// The chunk sizes add up to more than ``Limits/maxBodySize``.
        case bodyTooLarge
        case trailerSectionTooLarge
        case tooManyTrailerFields
    }

    enum Step: Equatable {
        /// Nothing can be decoded from the bytes after `start`; consume nothing and read more.
        case needMore
        /// Consume this many bytes of framing (a chunk-size line, the line break after chunk data).
        case framing(Int)
        /// Consume these bytes of chunk data: body bytes, starting at `start`.
        case data(Range<Int>)
        /// Consume `length` bytes: a trailer field line whose content (line break excluded) is `line`.
        case trailer(line: Range<Int>, length: Int)
        /// Consume this many bytes, the empty line ending the trailer section: the body is complete.
        case end(Int)
        /// The input is malformed or over a limit.
        case fail(Failure)
    }

    private enum State: Equatable {
        case size
        case data(remaining: Int)
        case dataEnd
        case trailers
    }

    let limits: Limits
    private var state = State.size
    private var declaredSize = 0
    private var trailerBytes = 0
    private var trailerCount = 0

    init(limits: Limits) {
        self.limits = limits
    }

    /// The next step from `input[start...]`, giving at most `limit` (> 0) bytes of chunk data.
    mutating func next(_ input: UnsafeBufferPointer<UInt8>, at start: Int, limit: Int = .max) -> Step {
        switch state {
        case .size:
            return chunkSize(input, at: start)
        case .data(let remaining):
            let count = min(remaining, input.count - start, limit)
            if count == 0 { return .needMore }
            state = count == remaining ? .dataEnd : .data(remaining: remaining - count)
            return .data(start..<start + count)
        case .dataEnd:
            return lineBreak(input, at: start)
        case .trailers:
            return trailer(input, at: start)
        }
    }

    private mutating func chunkSize(_ input: UnsafeBufferPointer<UInt8>, at start: Int) -> Step {
        let searchEnd = min(input.count, start + limits.maxChunkLineLength + 2)
        guard let lineFeed = HTTP1Framing.findLineFeed(input, from: start, to: searchEnd) else {
            if searchEnd - start > limits.maxChunkLineLength + 1 {
                return .fail(.malformed("chunk size line too long"))
            }
            return .needMore
        }
        let end = HTTP1Framing.trimCarriageReturn(input, start, lineFeed)
        if limits.requiresCRLF && end == lineFeed { return .fail(.malformed("chunk size line without CRLF")) }
        var index = start
        var size = 0
        while index < end, let digit = HTTP1Framing.hexValue(input[index]) {
            guard size <= (Int.max >> 4) else { return .fail(.bodyTooLarge) }
            size = size << 4 | digit
            index += 1
        }
        guard index > start else { return .fail(.malformed("invalid chunk size")) }
        let digitsEnd = index
        while index < end, ASCII.isWhitespace(input[index]) { index += 1 }
        guard index == end || input[index] == UInt8(ascii: ";") else {
            return .fail(.malformed("invalid chunk size"))
        }
        // BWS only before an extension's ';' (RFC 9112 §7.1.1): `5 ` CRLF is off the grammar.
        if limits.requiresCRLF && index == end && index > digitsEnd { return .fail(.malformed("invalid chunk size")) }
        guard Self.isChunkExtensions(input, index..<end, trailingWhitespace: !limits.requiresCRLF) else {
            return .fail(.malformed("invalid chunk extension"))
        }
        if size == 0 {
            state = .trailers
        } else {
            guard size <= limits.maxBodySize - declaredSize else { return .fail(.bodyTooLarge) }
            declaredSize += size
            state = .data(remaining: size)
        }
        return .framing(lineFeed + 1 - start)
    }

    private mutating func lineBreak(_ input: UnsafeBufferPointer<UInt8>, at start: Int) -> Step {
        let available = input.count - start
        guard available >= 1 else { return .needMore }
        var length = 1
        if input[start] == UInt8(ascii: "\n") {
            guard !limits.requiresCRLF else { return .fail(.malformed("missing CRLF after chunk data")) }
        } else {
            guard input[start] == UInt8(ascii: "\r") else { return .fail(.malformed("missing CRLF after chunk data")) }
            guard available >= 2 else { return .needMore }
            guard input[start + 1] == UInt8(ascii: "\n") else {
                return .fail(.malformed("missing CRLF after chunk data"))
            }
            length = 2
        }
        state = .size
        return .framing(length)
    }

    /// Whether `input[range]` is `*( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )` (RFC 9112 §7.1.1):
    /// a quoted string must close on its line (one that does not reads differently to a parser that ends the line at
    /// a CRLF inside quotes), names and values are tokens, no control byte but HTAB. Whitespace after the last
    /// extension, which the grammar has no place for, only with `trailingWhitespace`.
    static func isChunkExtensions(
        _ input: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, trailingWhitespace: Bool = true
    ) -> Bool {
        var i = range.lowerBound
        let end = range.upperBound
        func skipWhitespace() { while i < end, input[i] == 0x20 || input[i] == 0x09 { i += 1 } }
        func token() -> Bool {
            let start = i
            while i < end, ASCII.isTokenCharacter(input[i]) { i += 1 }
            return i > start
        }
        while true {
            let before = i
            skipWhitespace()
            if i == end { return trailingWhitespace || i == before }
            guard input[i] == UInt8(ascii: ";") else { return false }
            i += 1
            skipWhitespace()
            guard token() else { return false }
            let afterName = i
            skipWhitespace()
            guard i < end, input[i] == UInt8(ascii: "=") else {
                i = afterName  // the whitespace is the next extension's BWS, or trailing
                continue
            }
            i += 1
            skipWhitespace()
            guard i < end else { return false }
            if input[i] != UInt8(ascii: "\"") {
                guard token() else { return false }
                continue
            }
            // quoted-string: qdtext (HTAB, SP, VCHAR but '"' and '\\', obs-text) or a quoted-pair, then '"'.
            i += 1
            var closed = false
            while i < end {
                let byte = input[i]
                if byte == UInt8(ascii: "\"") {
                    closed = true
                    i += 1
                    break
                }
                if byte == UInt8(ascii: "\\") {
                    i += 1
                    guard i < end, HTTP1Framing.isFieldValueCharacter(input[i]) else { return false }
                } else if !HTTP1Framing.isFieldValueCharacter(byte) {
                    return false
                }
                i += 1
            }
            guard closed else { return false }
        }
    }

    private mutating func trailer(_ input: UnsafeBufferPointer<UInt8>, at start: Int) -> Step {
        let budget = limits.maxTrailerBytes - trailerBytes
        let searchEnd = min(input.count, start + budget + 2)
        guard let lineFeed = HTTP1Framing.findLineFeed(input, from: start, to: searchEnd) else {
            if searchEnd - start > budget + 1 { return .fail(.trailerSectionTooLarge) }
            return .needMore
        }
        let end = HTTP1Framing.trimCarriageReturn(input, start, lineFeed)
        if limits.requiresCRLF && end == lineFeed {
            return .fail(.malformed("a trailer line ends in a lone LF, not CRLF"))
        }
        let lineLength = lineFeed + 1 - start
        if end == start { return .end(lineLength) }
        trailerBytes += lineLength
        guard trailerBytes <= limits.maxTrailerBytes else { return .fail(.trailerSectionTooLarge) }
        trailerCount += 1
        guard trailerCount <= limits.maxTrailerCount else { return .fail(.tooManyTrailerFields) }
        return .trailer(line: start..<end, length: lineLength)
    }
}

/// The chunked transfer coding's pieces, for bodies sent piece by piece (a streamed response, a proxied request body).
enum ChunkedEncoding {
    static let crlf: [UInt8] = Array("\r\n".utf8)
    /// The last chunk with an empty trailer section.
    static let lastChunk: [UInt8] = Array("0\r\n\r\n".utf8)

    /// The chunk-size line of a chunk of `count` (> 0) bytes: lower-case hex, then CRLF.
    static func sizeLine(_ count: Int) -> [UInt8] {
        var line = [UInt8](repeating: 0, count: 18)
        let n = line.withUnsafeMutableBytes { writeSizeLine(count, into: $0) }
        line.removeLast(line.count - n)
        return line
    }

    /// Writes the chunk-size line of `count` (> 0) bytes at the start of `out` (18 bytes at least: 16 hex digits
    /// and CRLF) and returns its length.
    static func writeSizeLine(_ count: Int, into out: UnsafeMutableRawBufferPointer) -> Int {
        precondition(out.count >= 18)
        var n = 0
        var shift = max(0, (Int.bitWidth - count.leadingZeroBitCount + 3) / 4 * 4 - 4)
        while shift >= 0 {
            let digit = (count >> shift) & 0xF
            out[n] = digit < 10 ? UInt8(ascii: "0") + UInt8(digit) : UInt8(ascii: "a") + UInt8(digit - 10)
            n += 1
            shift -= 4
        }
        out[n] = UInt8(ascii: "\r")
        out[n + 1] = UInt8(ascii: "\n")
        return n + 2
    }
}

/// Eight bytes at a time (SWAR): the scans of field names and values.
enum ByteWords {
    static let ones: UInt64 = 0x0101_0101_0101_0101
    static let highs: UInt64 = 0x8080_8080_8080_8080

    /// The words of eight bytes from `start` while `flags` finds nothing in them (returns 0): the offset of the first
    /// word in which it finds something and what it found, or of the bytes left, fewer than eight, and 0.
    @inline(__always)
    static func firstFlagged(
        _ base: UnsafePointer<UInt8>, from start: Int, to limit: Int, _ flags: (UInt64) -> UInt64
    ) -> (index: Int, flags: UInt64) {
        var index = start
        while index + 8 <= limit {
            let found = flags(UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self))
            if found != 0 { return (index, found) }
            index += 8
        }
        return (index, 0)
    }
}
