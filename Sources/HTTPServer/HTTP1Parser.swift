import Glibc

/// Why a request was rejected: the status to answer and a one-line reason for the plain-text body.
/// Every parse error leaves the request framing unknown, so the connection is closed after the answer.
struct HTTP1ParseError: Error, Equatable, Sendable {
    /// 400, 408, 413, 414, 431, 501 or 505.
    var status: Int
    /// One line of plain text, without a line break.
    var reason: String

    init(_ status: Int, _ reason: String) {
        self.status = status
        self.reason = reason
    }

    /// The ``HTTPServerObserver/connectionError(reason:)`` label for this error.
    var observerReason: String {
        switch status {
        case 413, 414, 431: "too_large"
        default: "bad_request"
        }
    }
}

/// An incremental HTTP/1.x request parser (RFC 9112) working on a contiguous byte buffer.
///
/// Feed it the unconsumed bytes of the connection's input buffer with ``parse(_:)``; it returns how
/// many bytes it consumed and whether a complete request is available, more bytes are needed, or the
/// input is malformed. It never reads a byte twice while waiting for a request head (the scan position
/// is kept between calls) and copies each body byte once. One call yields at most one request, so the
/// caller controls pipelining back-pressure simply by not calling again.
///
/// Rules enforced:
/// - request line `method SP request-target SP HTTP-version` with single spaces; method a token;
///   origin-form target (absolute-form accepted, `*` only for OPTIONS); `HTTP/1.0` or `HTTP/1.1`
///   (another 1.x minor is treated as 1.1, another major answers 505). CONNECT answers 501.
/// - lines end in CRLF or a bare LF; up to 8 empty lines before a request line are ignored.
/// - header names are tokens directly followed by `:`; values may hold SP, HTAB, VCHAR and obs-text;
///   obs-fold (a line starting with whitespace) is rejected; an HTTP/1.1 request needs exactly one `Host`.
/// - `Content-Length` must be digits, duplicates (as lines or list elements) must agree;
///   `Transfer-Encoding` must be exactly `chunked` (other codings answer 501) and is rejected together
///   with `Content-Length` or in HTTP/1.0; chunk extensions are tolerated and trailers skipped.
/// - size limits from ``Limits`` answer 414, 431 and 413.
struct HTTP1Parser {
    /// Size limits, taken from ``HTTPServer/Configuration``.
    struct Limits: Sendable {
        var maxRequestTargetLength = 8 * 1024
        var maxHeaderBytes = 16 * 1024
        var maxHeaderCount = 100
        var maxBodySize = 16 * 1024 * 1024
        /// A chunk-size line, extensions included.
        var maxChunkLineLength = 4 * 1024

        /// Longest request line: the target plus room for a method and the version.
        var maxRequestLineLength: Int { maxRequestTargetLength + 64 }
    }

    /// The parsed request line and header section.
    struct Head: Sendable, Equatable {
        var method: String
        var path: String
        var query: String?
        var version: HTTPVersion
        var headers: HTTPHeaders
        /// Whether the connection may carry another request after this one.
        var keepAlive: Bool
        /// `Expect: 100-continue` on an HTTP/1.1 request.
        var expectsContinue: Bool
    }

    /// A complete request.
    struct Request: Sendable, Equatable {
        var head: Head
        var body: [UInt8]
    }

    /// The outcome of one ``parse(_:)`` call.
    enum Result: Equatable {
        /// The buffered bytes do not complete a request; read more.
        case needMoreData
        /// One request is complete.
        case request(Request)
        /// The head is complete and a body follows (`contentLength` nil: chunked); no body byte has been
        /// consumed. The caller decides whether to receive it (the server asks its handler); the next call goes
        /// on with the body.
        case bodyAnnounced(Head, contentLength: Int?)
        /// The input is malformed or over a limit; answer and close.
        case error(HTTP1ParseError)
    }

    private enum Phase: Equatable {
        case head
        case fixedBody(length: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case failed(HTTP1ParseError)
    }

    let limits: Limits
    private var phase: Phase = .head
    private var head: Head?
    private var body: [UInt8] = []
    // Head scan state; offsets are relative to the start of the input, which does not move while the
    // parser is in `.head` because nothing is consumed until the head is complete.
    private var scanOffset = 0
    private var lineStart = 0
    private var headStart = 0
    private var requestLineEnd: Int?
    private var headerLineCount = 0
    private var trailerBytes = 0

    init(limits: Limits) {
        self.limits = limits
    }

    /// Body bytes collected so far from a chunked body (a fixed-length body stays in the input until complete).
    var chunkedBodyCount: Int { body.count }

    /// Whether no part of a request has been consumed: a boundary between requests. Together with an
    /// empty input buffer this means the connection is idle.
    var isAtRequestBoundary: Bool { phase == .head }

    /// Parses from the start of `input`, the connection's unconsumed bytes. The caller must drop the
    /// returned number of bytes from its buffer before the next call.
    mutating func parse(_ input: UnsafeBufferPointer<UInt8>) -> (consumed: Int, result: Result) {
        var consumed = 0
        while true {
            let step: Step
            switch phase {
            case .failed(let error):
                return (0, .error(error))
            case .head:
                precondition(consumed == 0, "a request head always starts at the beginning of the input")
                step = parseHead(input)
            case .fixedBody(let length):
                if input.count - consumed < length {
                    step = .needMore
                } else {
                    body = Array(input[consumed..<consumed + length])
                    step = .advance(length, next: nil)
                }
            case .chunkSize:
                step = parseChunkSize(input, at: consumed)
            case .chunkData(let remaining):
                let count = min(remaining, input.count - consumed)
                if count == 0 {
                    step = .needMore
                } else {
                    body.append(contentsOf: input[consumed..<consumed + count])
                    step = .advance(
                        count, next: count == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - count))
                }
            case .chunkDataEnd:
                step = parseLineBreak(input, at: consumed)
            case .trailers:
                step = parseTrailer(input, at: consumed)
            }
            switch step {
            case .needMore:
                return (consumed, .needMoreData)
            case .advance(let count, let next):
                consumed += count
                guard let next else {
                    let request = Request(head: head!, body: body)
                    reset()
                    return (consumed, .request(request))
                }
                if phase == .head {
                    // A body follows: stop so that the caller can decide whether to receive it.
                    phase = next
                    if case .fixedBody(let length) = next {
                        return (consumed, .bodyAnnounced(head!, contentLength: length))
                    }
                    return (consumed, .bodyAnnounced(head!, contentLength: nil))
                }
                phase = next
            case .fail(let error):
                phase = .failed(error)
                return (consumed, .error(error))
            }
        }
    }

    private enum Step {
        case needMore
        /// Consume `count` bytes, then continue in `next` (nil: the request is complete).
        case advance(Int, next: Phase?)
        case fail(HTTP1ParseError)
    }

    private mutating func reset() {
        phase = .head
        head = nil
        body = []
        scanOffset = 0
        lineStart = 0
        headStart = 0
        requestLineEnd = nil
        headerLineCount = 0
        trailerBytes = 0
    }

    // MARK: - Head

    private mutating func parseHead(_ input: UnsafeBufferPointer<UInt8>) -> Step {
        var position = scanOffset
        while position < input.count {
            guard let lineFeed = Self.findLineFeed(input, from: position, to: input.count) else {
                position = input.count
                break
            }
            let contentEnd = Self.trimCarriageReturn(input, lineStart, lineFeed)
            let next = lineFeed + 1
            if requestLineEnd == nil {
                if contentEnd == lineStart {
                    // An empty line before the request line (RFC 9112 §2.2): ignore a few.
                    guard next <= 16 else { return .fail(.init(400, "too many empty lines before the request line")) }
                    headStart = next
                } else {
                    guard contentEnd - lineStart <= limits.maxRequestLineLength else {
                        return .fail(.init(414, "request line longer than \(limits.maxRequestLineLength) bytes"))
                    }
                    requestLineEnd = next
                }
            } else if contentEnd == lineStart {
                return completeHead(input, sectionEnd: lineStart, headEnd: next)
            } else {
                headerLineCount += 1
                guard headerLineCount <= limits.maxHeaderCount else {
                    return .fail(.init(431, "more than \(limits.maxHeaderCount) header fields"))
                }
            }
            lineStart = next
            position = next
            if let requestLineEnd, position - requestLineEnd > limits.maxHeaderBytes {
                return .fail(.init(431, "header section larger than \(limits.maxHeaderBytes) bytes"))
            }
        }
        scanOffset = position
        // The line still arriving: a CR at its end may be the CR of its CRLF, which no limit counts (else the
        // same head would pass or fail depending on whether its CR and LF arrived in one read).
        let pendingCR = input.count > lineStart && input[input.count - 1] == UInt8(ascii: "\r")
        let end = pendingCR ? input.count - 1 : input.count
        if let requestLineEnd {
            if end - requestLineEnd > limits.maxHeaderBytes {
                return .fail(.init(431, "header section larger than \(limits.maxHeaderBytes) bytes"))
            }
        } else if end - headStart > limits.maxRequestLineLength {
            return .fail(.init(414, "request line longer than \(limits.maxRequestLineLength) bytes"))
        }
        return .needMore
    }

    private mutating func completeHead(_ input: UnsafeBufferPointer<UInt8>, sectionEnd: Int, headEnd: Int) -> Step {
        let requestLineEnd = requestLineEnd!
        let parsed: Head
        let framing: Framing
        do {
            (parsed, framing) = try Self.parseHead(
                input, requestLine: headStart..<requestLineEnd, sectionEnd: sectionEnd, limits: limits)
        } catch {
            return .fail(error)
        }
        head = parsed
        switch framing {
        case .none:
            return .advance(headEnd, next: nil)
        case .length(let length):
            return .advance(headEnd, next: .fixedBody(length: length))
        case .chunked:
            return .advance(headEnd, next: .chunkSize)
        }
    }

    private enum Framing {
        case none
        case length(Int)
        case chunked
    }

    private static func parseHead(
        _ input: UnsafeBufferPointer<UInt8>, requestLine: Range<Int>, sectionEnd: Int, limits: Limits
    ) throws(HTTP1ParseError) -> (Head, Framing) {
        // Request line.
        let lineEnd = trimCarriageReturn(input, requestLine.lowerBound, requestLine.upperBound - 1)
        let line = input[requestLine.lowerBound..<lineEnd]
        guard let firstSpace = line.firstIndex(of: UInt8(ascii: " ")) else {
            throw HTTP1ParseError(400, "malformed request line")
        }
        let methodBytes = line[..<firstSpace]
        guard !methodBytes.isEmpty, methodBytes.allSatisfy(ASCII.isTokenCharacter) else {
            throw HTTP1ParseError(400, "invalid method")
        }
        let afterMethod = line[(firstSpace + 1)...]
        guard let secondSpace = afterMethod.firstIndex(of: UInt8(ascii: " ")) else {
            throw HTTP1ParseError(400, "malformed request line")
        }
        let target = afterMethod[..<secondSpace]
        guard target.count <= limits.maxRequestTargetLength else {
            throw HTTP1ParseError(414, "request target longer than \(limits.maxRequestTargetLength) bytes")
        }
        let version = try parseVersion(afterMethod[(secondSpace + 1)...])
        guard !target.isEmpty, target.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw HTTP1ParseError(400, "invalid request target")
        }
        let method = String(decoding: methodBytes, as: UTF8.self)
        if method == "CONNECT" { throw HTTP1ParseError(501, "CONNECT is not supported") }
        let (path, query) = try splitTarget(target, method: method)

        // Header section.
        var headers = HTTPHeaders()
        headers.storage.reserveCapacity(8)
        var contentLength: Int?
        var transferCodings: [String] = []
        var hasTransferEncoding = false
        var hostCount = 0
        var close = false
        var keepAliveToken = false
        var expectsContinue = false
        var start = requestLine.upperBound
        while start < sectionEnd {
            let lineFeed = findLineFeed(input, from: start, to: sectionEnd)!
            let end = trimCarriageReturn(input, start, lineFeed)
            defer { start = lineFeed + 1 }
            let first = input[start]
            if ASCII.isWhitespace(first) {
                throw HTTP1ParseError(400, "obsolete line folding is not allowed")
            }
            let fieldLine = input[start..<end]
            guard let colon = fieldLine.firstIndex(of: UInt8(ascii: ":")) else {
                throw HTTP1ParseError(400, "header line without a colon")
            }
            let name = input[start..<colon]
            guard !name.isEmpty else { throw HTTP1ParseError(400, "empty header name") }
            if ASCII.isWhitespace(input[colon - 1]) {
                throw HTTP1ParseError(400, "whitespace between header name and colon")
            }
            guard name.allSatisfy(ASCII.isTokenCharacter) else { throw HTTP1ParseError(400, "invalid header name") }
            let value = ASCII.trimmingWhitespace(input[(colon + 1)..<end])
            guard value.allSatisfy(isFieldValueCharacter) else {
                throw HTTP1ParseError(400, "invalid character in header value")
            }

            switch name.count {
            case 4 where ASCII.equalsIgnoringCase(name, "host".utf8):
                hostCount += 1
            case 6 where ASCII.equalsIgnoringCase(name, "expect".utf8):
                expectsContinue = ASCII.equalsIgnoringCase(value, "100-continue".utf8)
            case 10 where ASCII.equalsIgnoringCase(name, "connection".utf8):
                forEachListElement(value) { token in
                    if ASCII.equalsIgnoringCase(token, "close".utf8) { close = true }
                    if ASCII.equalsIgnoringCase(token, "keep-alive".utf8) { keepAliveToken = true }
                }
            case 14 where ASCII.equalsIgnoringCase(name, "content-length".utf8):
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
                if invalid || elements == 0 {
                    throw HTTP1ParseError(400, "invalid or conflicting Content-Length")
                }
            case 17 where ASCII.equalsIgnoringCase(name, "transfer-encoding".utf8):
                hasTransferEncoding = true
                forEachListElement(value) { element in
                    let coding = element.prefix { $0 != UInt8(ascii: ";") }
                    transferCodings.append(String(decoding: ASCII.trimmingWhitespace(coding), as: UTF8.self))
                }
            default:
                break
            }
            headers.storage.append(
                (name: String(decoding: name, as: UTF8.self), value: String(decoding: value, as: UTF8.self)))
        }

        if version == .http1_1 && hostCount == 0 { throw HTTP1ParseError(400, "missing Host header") }
        if hostCount > 1 { throw HTTP1ParseError(400, "more than one Host header") }

        let framing: Framing
        if hasTransferEncoding {
            if contentLength != nil {
                throw HTTP1ParseError(400, "both Content-Length and Transfer-Encoding")
            }
            if version == .http1_0 { throw HTTP1ParseError(400, "Transfer-Encoding in an HTTP/1.0 request") }
            if let unknown = transferCodings.first(where: { $0.lowercased() != "chunked" }) {
                throw HTTP1ParseError(501, "unsupported transfer coding \"\(unknown.prefix(32))\"")
            }
            guard transferCodings.count == 1 else { throw HTTP1ParseError(400, "invalid Transfer-Encoding") }
            framing = .chunked
        } else if let contentLength {
            guard contentLength <= limits.maxBodySize else {
                throw HTTP1ParseError(413, "request body larger than \(limits.maxBodySize) bytes")
            }
            framing = contentLength == 0 ? .none : .length(contentLength)
        } else {
            framing = .none
        }

        let keepAlive = !close && (version == .http1_1 || keepAliveToken)
        let head = Head(
            method: method, path: path, query: query, version: version, headers: headers, keepAlive: keepAlive,
            expectsContinue: expectsContinue && version == .http1_1)
        return (head, framing)
    }

    private static func parseVersion(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) throws(HTTP1ParseError) -> HTTPVersion
    {
        let digits = UInt8(ascii: "0")...UInt8(ascii: "9")
        guard bytes.count == 8, bytes.starts(with: "HTTP/".utf8),
            digits.contains(bytes[bytes.startIndex + 5]), bytes[bytes.startIndex + 6] == UInt8(ascii: "."),
            digits.contains(bytes[bytes.startIndex + 7])
        else {
            throw HTTP1ParseError(400, "malformed HTTP version")
        }
        let major = bytes[bytes.startIndex + 5]
        let minor = bytes[bytes.startIndex + 7]
        guard major == UInt8(ascii: "1") else { throw HTTP1ParseError(505, "HTTP version not supported") }
        return minor == UInt8(ascii: "0") ? .http1_0 : .http1_1
    }

    private static func splitTarget(
        _ target: Slice<UnsafeBufferPointer<UInt8>>, method: String
    ) throws(HTTP1ParseError) -> (path: String, query: String?) {
        var rest = target[...]
        if target.first == UInt8(ascii: "/") {
            // origin-form
        } else if target.count == 1 && target.first == UInt8(ascii: "*") {
            guard method == "OPTIONS" else { throw HTTP1ParseError(400, "asterisk-form target is only for OPTIONS") }
            return ("*", nil)
        } else if let schemeEnd = absoluteFormSchemeLength(target) {
            // absolute-form: drop scheme and authority.
            let afterScheme = target[(target.startIndex + schemeEnd)...]
            let authorityEnd =
                afterScheme.firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") } ?? afterScheme.endIndex
            guard authorityEnd > afterScheme.startIndex else { throw HTTP1ParseError(400, "invalid request target") }
            rest = target[authorityEnd...]
            if rest.isEmpty || rest.first == UInt8(ascii: "?") {
                let query = rest.isEmpty ? nil : String(decoding: rest.dropFirst(), as: UTF8.self)
                return ("/", query)
            }
        } else {
            throw HTTP1ParseError(400, "request target must be an absolute path")
        }
        if let question = rest.firstIndex(of: UInt8(ascii: "?")) {
            return (
                String(decoding: rest[..<question], as: UTF8.self),
                String(decoding: rest[(question + 1)...], as: UTF8.self)
            )
        }
        return (String(decoding: rest, as: UTF8.self), nil)
    }

    private static func absoluteFormSchemeLength(_ target: Slice<UnsafeBufferPointer<UInt8>>) -> Int? {
        if target.count > 7, ASCII.equalsIgnoringCase(target.prefix(7), "http://".utf8) { return 7 }
        if target.count > 8, ASCII.equalsIgnoringCase(target.prefix(8), "https://".utf8) { return 8 }
        return nil
    }

    /// RFC 9110 field-value characters: HTAB, SP, VCHAR, obs-text.
    private static func isFieldValueCharacter(_ byte: UInt8) -> Bool {
        byte == 0x09 || (byte >= 0x20 && byte != 0x7F)
    }

    /// Calls `body` with each trimmed, non-empty element of a comma-separated list.
    private static func forEachListElement(
        _ value: Slice<UnsafeBufferPointer<UInt8>>, _ body: (Slice<UnsafeBufferPointer<UInt8>>) -> Void
    ) {
        var start = value.startIndex
        while start <= value.endIndex {
            let end = value[start...].firstIndex(of: UInt8(ascii: ",")) ?? value.endIndex
            let element = ASCII.trimmingWhitespace(value[start..<end])
            if !element.isEmpty { body(element) }
            start = end + 1
        }
    }

    /// 1*DIGIT; values beyond `Int.max` saturate (and then exceed any body limit, answering 413).
    private static func parseContentLength(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> Int? {
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

    // MARK: - Chunked body

    private mutating func parseChunkSize(_ input: UnsafeBufferPointer<UInt8>, at start: Int) -> Step {
        let searchEnd = min(input.count, start + limits.maxChunkLineLength + 2)
        guard let lineFeed = Self.findLineFeed(input, from: start, to: searchEnd) else {
            if searchEnd - start > limits.maxChunkLineLength + 1 {
                return .fail(.init(400, "chunk size line too long"))
            }
            return .needMore
        }
        let end = Self.trimCarriageReturn(input, start, lineFeed)
        var index = start
        var size = 0
        while index < end, let digit = Self.hexValue(input[index]) {
            guard size <= (Int.max >> 4) else {
                return .fail(.init(413, "request body larger than \(limits.maxBodySize) bytes"))
            }
            size = size << 4 | digit
            index += 1
        }
        guard index > start else { return .fail(.init(400, "invalid chunk size")) }
        while index < end, ASCII.isWhitespace(input[index]) { index += 1 }
        guard index == end || input[index] == UInt8(ascii: ";") else {
            return .fail(.init(400, "invalid chunk size"))
        }
        // Chunk extensions (after ';') are tolerated and ignored, but must not hide control characters.
        guard input[index..<end].allSatisfy(Self.isFieldValueCharacter) else {
            return .fail(.init(400, "invalid chunk extension"))
        }
        let lineLength = lineFeed + 1 - start
        if size == 0 { return .advance(lineLength, next: .trailers) }
        guard size <= limits.maxBodySize - body.count else {
            return .fail(.init(413, "request body larger than \(limits.maxBodySize) bytes"))
        }
        return .advance(lineLength, next: .chunkData(remaining: size))
    }

    private func parseLineBreak(_ input: UnsafeBufferPointer<UInt8>, at start: Int) -> Step {
        let available = input.count - start
        guard available >= 1 else { return .needMore }
        if input[start] == UInt8(ascii: "\n") { return .advance(1, next: .chunkSize) }
        guard input[start] == UInt8(ascii: "\r") else { return .fail(.init(400, "missing CRLF after chunk data")) }
        guard available >= 2 else { return .needMore }
        guard input[start + 1] == UInt8(ascii: "\n") else { return .fail(.init(400, "missing CRLF after chunk data")) }
        return .advance(2, next: .chunkSize)
    }

    private mutating func parseTrailer(_ input: UnsafeBufferPointer<UInt8>, at start: Int) -> Step {
        let budget = limits.maxHeaderBytes - trailerBytes
        let searchEnd = min(input.count, start + budget + 2)
        guard let lineFeed = Self.findLineFeed(input, from: start, to: searchEnd) else {
            if searchEnd - start > budget + 1 {
                return .fail(.init(431, "trailer section larger than \(limits.maxHeaderBytes) bytes"))
            }
            return .needMore
        }
        let end = Self.trimCarriageReturn(input, start, lineFeed)
        let lineLength = lineFeed + 1 - start
        if end == start { return .advance(lineLength, next: nil) }  // end of trailers: request complete
        trailerBytes += lineLength
        guard trailerBytes <= limits.maxHeaderBytes else {
            return .fail(.init(431, "trailer section larger than \(limits.maxHeaderBytes) bytes"))
        }
        return .advance(lineLength, next: .trailers)
    }

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    // MARK: - Scanning

    /// Index of the first LF in `input[from..<to]`, using `memchr`.
    @inline(__always)
    private static func findLineFeed(_ input: UnsafeBufferPointer<UInt8>, from: Int, to: Int) -> Int? {
        guard from < to, let base = input.baseAddress else { return nil }
        guard let found = memchr(base + from, 0x0A, to - from) else { return nil }
        return UnsafeRawPointer(found) - UnsafeRawPointer(base)
    }

    /// The end of the line content whose LF is at `lineFeed`: drops one CR before it.
    @inline(__always)
    private static func trimCarriageReturn(_ input: UnsafeBufferPointer<UInt8>, _ start: Int, _ lineFeed: Int) -> Int {
        lineFeed > start && input[lineFeed - 1] == UInt8(ascii: "\r") ? lineFeed - 1 : lineFeed
    }
}
