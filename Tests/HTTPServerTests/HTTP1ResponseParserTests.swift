import Testing

@testable import HTTPServer

/// An event as a test compares it: body pieces joined, each end with the parser's reuse verdict.
private enum Seen: Equatable, CustomStringConvertible {
    case informational(Int, HTTPHeaders)
    case head(UpstreamResponseHead)
    case body(String)
    case end(HTTPHeaders?, reusable: Bool)
    case error(UpstreamParseError)

    var description: String {
        switch self {
        case .informational(let status, let headers): "informational(\(status), \(headers))"
        case .head(let head): "head(\(head.status) \(head.framing) \(head.headers))"
        case .body(let text): "body(\(text.debugDescription))"
        case .end(let trailers, let reusable): "end(\(String(describing: trailers)), reusable: \(reusable))"
        case .error(let error): "error(\(error.kind): \(error.reason))"
        }
    }
}

private let defaultLimits = (maxHeaderBytes: 1024, maxHeaderCount: 16)

/// Feeds `input` in `pieces` as a connection does (unconsumed bytes stay buffered and are given again with the next
/// read), calling `parse` until it needs more; `closes`: then the connection closes (``inputEnded()``). Stops at
/// the first error. Checks on the way that no call consumes more than it was given and no body piece is empty,
/// outside the consumed bytes or over `limit`.
private func run(
    _ input: [UInt8], pieces: [Range<Int>], isHEAD: Bool = false, limit: Int = .max, closes: Bool = false,
    limits: (maxHeaderBytes: Int, maxHeaderCount: Int) = defaultLimits,
    sourceLocation: SourceLocation = #_sourceLocation
) -> [Seen] {
    var parser = HTTP1ResponseParser(limits: limits)
    var buffer: [UInt8] = []
    var seen: [Seen] = []
    func record(_ event: UpstreamEvent, _ bytes: ArraySlice<UInt8>) -> Bool {
        switch event {
        case .needMore:
            return false
        case .informational(let status, let headers):
            seen.append(.informational(status, headers))
        case .head(var head):
            head.copyPlan = nil  // checked in FieldLineCopyPlanTests: the tables here spell out the fields only
            seen.append(.head(head))
        case .body:
            let text = String(decoding: bytes, as: UTF8.self)
            if case .body(let earlier) = seen.last {
                seen[seen.count - 1] = .body(earlier + text)
            } else {
                seen.append(.body(text))
            }
        case .end(let trailers):
            seen.append(.end(trailers, reusable: parser.canReuseConnection))
        case .error(let error):
            seen.append(.error(error))
            #expect(!parser.canReuseConnection, sourceLocation: sourceLocation)
            return false
        }
        return true
    }
    for piece in pieces {
        buffer.append(contentsOf: input[piece])
        while true {
            let (consumed, event) = buffer.withUnsafeBufferPointer { parser.parse($0, isHEAD: isHEAD, limit: limit) }
            #expect(consumed >= 0 && consumed <= buffer.count, sourceLocation: sourceLocation)
            var bytes: ArraySlice<UInt8> = []
            if case .body(let range) = event {
                #expect(!range.isEmpty && range.upperBound <= consumed, sourceLocation: sourceLocation)
                #expect(range.count <= limit, sourceLocation: sourceLocation)
                bytes = buffer[range]
            }
            buffer.removeFirst(consumed)
            if case .error = event {
                _ = record(event, bytes)
                return seen
            }
            if !record(event, bytes) { break }
        }
    }
    if closes {
        _ = record(parser.inputEnded(), [])
    }
    return seen
}

private func run(
    _ text: String, isHEAD: Bool = false, limit: Int = .max, closes: Bool = false,
    limits: (maxHeaderBytes: Int, maxHeaderCount: Int) = defaultLimits
) -> [Seen] {
    let input = Array(text.utf8)
    return run(input, pieces: [0..<input.count], isHEAD: isHEAD, limit: limit, closes: closes, limits: limits)
}

private func head(
    _ status: Int, _ reason: String, _ headers: HTTPHeaders, _ framing: UpstreamResponseHead.Framing,
    version: HTTPVersion = .http1_1
) -> Seen {
    .head(UpstreamResponseHead(version: version, status: status, reason: reason, headers: headers, framing: framing))
}

private func head(
    _ status: Int, _ headers: HTTPHeaders, _ framing: UpstreamResponseHead.Framing, version: HTTPVersion = .http1_1
) -> Seen {
    head(status, "OK", headers, framing, version: version)
}

/// The error's kind, for tables that do not spell reasons out.
private func kinds(_ seen: [Seen]) -> [Seen] {
    seen.map {
        if case .error(let error) = $0 { return .error(UpstreamParseError(error.kind, "")) }
        return $0
    }
}

private func error(_ kind: UpstreamParseError.Kind) -> Seen {
    .error(UpstreamParseError(kind, ""))
}

/// A response stream and what the parser must make of it.
struct ResponseCase: Sendable, CustomTestStringConvertible {
    var name: String
    var input: String
    var isHEAD = false
    var closes = false
    fileprivate var expected: [Seen]

    var testDescription: String { name }
}

private let responseCases: [ResponseCase] = [
    ResponseCase(
        name: "Content-Length",
        input: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
        expected: [
            head(200, ["Content-Length": "5", "Content-Type": "text/plain"], .contentLength(5)), .body("hello"),
            .end(nil, reusable: true),
        ]),
    ResponseCase(
        name: "Content-Length 0, then a second response on the same connection",
        input: "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        expected: [
            head(201, "Created", ["Content-Length": "0"], .contentLength(0)), .end(nil, reusable: true),
            head(200, ["Content-Length": "2"], .contentLength(2)), .body("ok"), .end(nil, reusable: true),
        ]),
    ResponseCase(
        name: "agreeing Content-Length list and lines",
        input: "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\ncontent-length: 3\r\n\r\nabc",
        expected: [
            head(200, ["Content-Length": "3, 3", "content-length": "3"], .contentLength(3)), .body("abc"),
            .end(nil, reusable: true),
        ]),
    ResponseCase(
        name: "chunked with extensions and trailers",
        input: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "5;ext=1\r\nhello\r\n6 ; a=\"b\"\r\n world\r\n0\r\nX-Checksum: abc\r\nX-Other:  1 \r\n\r\n",
        expected: [
            head(200, ["Transfer-Encoding": "chunked"], .chunked), .body("hello world"),
            .end(["X-Checksum": "abc", "X-Other": "1"], reusable: true),
        ]),
    ResponseCase(
        name: "chunked without trailers, bare LF line ends",
        input: "HTTP/1.1 200 OK\nTransfer-Encoding: Chunked\n\na\n0123456789\n0\n\n",
        expected: [
            head(200, ["Transfer-Encoding": "Chunked"], .chunked), .body("0123456789"),
            .end(nil, reusable: true),
        ]),
    ResponseCase(
        name: "chunked and Content-Length: chunked wins, no reuse",
        input: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        expected: [
            head(200, ["Content-Length": "100", "Transfer-Encoding": "chunked"], .chunked), .body("abc"),
            .end(nil, reusable: false),
        ]),
    ResponseCase(
        name: "chunked applied twice",
        input: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        expected: [error(.malformed)]),
    // A coding other than chunked would reach the client still applied, and unnamed (Transfer-Encoding is
    // hop-by-hop): refused whether chunked comes last (chunked framing) or not (close-delimited).
    ResponseCase(
        name: "another coding before chunked",
        input: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        expected: [error(.unsupported)]),
    ResponseCase(
        name: "another last coding",
        input: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\nContent-Length: 2\r\n\r\nbytes until close",
        expected: [error(.unsupported)]),
    ResponseCase(
        name: "another coding alone",
        input: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nbytes until close", expected: [error(.unsupported)]),
    ResponseCase(
        name: "another coding, no body (HEAD-like 304): nothing to pass on",
        input: "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        expected: [head(304, "Not Modified", ["Transfer-Encoding": "gzip, chunked"], .none), .end(nil, reusable: true)]),
    ResponseCase(
        name: "no length: close-delimited",
        input: "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: 1\n\ndata: 2\n\n", closes: true,
        expected: [
            head(200, ["Content-Type": "text/event-stream"], .closeDelimited), .body("data: 1\n\ndata: 2\n\n"),
            .end(nil, reusable: false),
        ]),
    ResponseCase(
        name: "invalid Content-Length",
        input: "HTTP/1.1 200 OK\r\nContent-Length: 5a\r\n\r\nhello", expected: [error(.malformed)]),
    ResponseCase(
        name: "conflicting Content-Length list",
        input: "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello", expected: [error(.malformed)]),
    ResponseCase(
        name: "conflicting Content-Length lines",
        input: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 4\r\n\r\nhello", expected: [error(.malformed)]),
    ResponseCase(
        name: "empty Content-Length",
        input: "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n", expected: [error(.malformed)]),
    ResponseCase(
        name: "HEAD with Content-Length: no body, the next response follows",
        input: "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 1000\r\n\r\n",
        isHEAD: true,
        expected: [
            head(200, ["Content-Length": "1000"], .none), .end(nil, reusable: true),
            head(404, "Not Found", ["Content-Length": "1000"], .none), .end(nil, reusable: true),
        ]),
    ResponseCase(
        name: "HEAD with chunked",
        input: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", isHEAD: true,
        expected: [head(200, ["Transfer-Encoding": "chunked"], .none), .end(nil, reusable: true)]),
    ResponseCase(
        name: "204 and 304 have no body",
        input: "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n"
            + "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
        expected: [
            head(204, "No Content", ["Content-Length": "7"], .none), .end(nil, reusable: true),
            head(304, "Not Modified", ["Transfer-Encoding": "chunked"], .none), .end(nil, reusable: true),
        ]),
    ResponseCase(
        name: "100 Continue and 103 Early Hints, then the final response",
        input: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
            + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        expected: [
            .informational(100, [:]), .informational(103, ["Link": "</style.css>; rel=preload"]),
            head(200, ["Content-Length": "2"], .contentLength(2)), .body("ok"), .end(nil, reusable: true),
        ]),
    ResponseCase(
        name: "101 is refused",
        input: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", expected: [error(.unsupported)]),
    ResponseCase(
        name: "Connection: close",
        input: "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 1\r\n\r\nx",
        expected: [
            head(200, ["Connection": "keep-alive, Close", "Content-Length": "1"], .contentLength(1)), .body("x"),
            .end(nil, reusable: false),
        ]),
    ResponseCase(
        name: "HTTP/1.0 is not reused",
        input: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx",
        expected: [
            head(200, ["Connection": "keep-alive", "Content-Length": "1"], .contentLength(1), version: .http1_0),
            .body("x"), .end(nil, reusable: false),
        ]),
    ResponseCase(
        name: "Transfer-Encoding in HTTP/1.0",
        input: "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", expected: [error(.malformed)]),
    ResponseCase(
        name: "status lines: no reason, empty reason, empty lines before, other minor",
        input: "\r\n\nHTTP/1.1 204\r\n\r\nHTTP/1.1 204 \r\n\r\nHTTP/1.9 500 Internal\tError \r\n\r\n",
        expected: [
            head(204, "", [:], .none), .end(nil, reusable: true), head(204, "", [:], .none),
            .end(nil, reusable: true), head(500, "Internal\tError ", [:], .closeDelimited),
        ]),
    ResponseCase(
        name: "HTTP/2 status line", input: "HTTP/2.0 200 OK\r\n\r\n", expected: [error(.unsupported)]),
    // Another protocol's greeting is refused at its first bytes (before, the head was awaited: a wrong upstream port
    // was a 504 after the response timeout, not a 502).
    ResponseCase(name: "another protocol", input: "SSH-2.0-OpenSSH_9.2\r\n", expected: [error(.malformed)]),
    ResponseCase(name: "another protocol after empty lines", input: "\r\nHTTX", expected: [error(.malformed)]),
    // Whole, the same verdict as split (the fuzzer: whole, a first line over the limit was `tooLarge`; split, the first
    // bytes said `malformed`).
    ResponseCase(
        name: "another protocol with a long first line",
        input: "3;ext=1\r\n" + String(repeating: "x", count: 1100) + "\r\n\r\n", expected: [error(.malformed)]),
    // A length past Int.max (it saturated, and was passed on to the client as 9223372036854775807).
    ResponseCase(
        name: "Content-Length past Int.max",
        input: "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\nabcd", expected: [error(.malformed)]),
    ResponseCase(
        name: "two-digit status", input: "HTTP/1.1 20 OK\r\n\r\n", expected: [error(.malformed)]),
    ResponseCase(
        name: "status out of range", input: "HTTP/1.1 600 OK\r\n\r\n", expected: [error(.malformed)]),
    ResponseCase(
        name: "no space after the status", input: "HTTP/1.1 200OK\r\n\r\n", expected: [error(.malformed)]),
    ResponseCase(
        name: "control character in the reason", input: "HTTP/1.1 200 O\u{1}K\r\n\r\n",
        expected: [error(.malformed)]),
    ResponseCase(
        name: "obs-fold", input: "HTTP/1.1 200 OK\r\nX-A: 1\r\n  folded\r\nContent-Length: 0\r\n\r\n",
        expected: [error(.malformed)]),
    ResponseCase(
        name: "obs-fold in trailers",
        input: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-A: 1\r\n folded\r\n\r\n",
        expected: [head(200, ["Transfer-Encoding": "chunked"], .chunked), error(.malformed)]),
    ResponseCase(
        name: "header without a colon", input: "HTTP/1.1 200 OK\r\nnocolon\r\n\r\n", expected: [error(.malformed)]),
    ResponseCase(
        name: "invalid chunk size",
        input: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        expected: [head(200, ["Transfer-Encoding": "chunked"], .chunked), error(.malformed)]),
    ResponseCase(
        name: "missing CRLF after chunk data",
        input: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n",
        expected: [head(200, ["Transfer-Encoding": "chunked"], .chunked), .body("abc"), error(.malformed)]),
    ResponseCase(
        name: "closed before the head is complete", input: "HTTP/1.1 200 OK\r\nContent-Len", closes: true,
        expected: [error(.truncated)]),
    ResponseCase(
        name: "closed mid-body", input: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", closes: true,
        expected: [head(200, ["Content-Length": "10"], .contentLength(10)), .body("hello"), error(.truncated)]),
    ResponseCase(
        name: "closed mid-chunk",
        input: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", closes: true,
        expected: [head(200, ["Transfer-Encoding": "chunked"], .chunked), .body("hel"), error(.truncated)]),
    ResponseCase(
        name: "closed before the last chunk's trailers end",
        input: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-A: 1\r\n", closes: true,
        expected: [head(200, ["Transfer-Encoding": "chunked"], .chunked), error(.truncated)]),
    ResponseCase(
        name: "closed after a complete response while the next one is expected",
        input: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", closes: true,
        expected: [
            head(200, ["Content-Length": "2"], .contentLength(2)), .body("ok"), .end(nil, reusable: true),
            error(.truncated),
        ]),
]

/// A deterministic generator for random splits and test cases (SplitMix64).
struct Splitter {
    var state: UInt64

    mutating func next(_ bound: Int) -> Int {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E4B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int((z ^ (z >> 31)) % UInt64(bound))
    }

    /// Consecutive non-empty ranges covering `0..<count`, of 1...`maxLength` bytes each.
    mutating func pieces(of count: Int, maxLength: Int) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        var start = 0
        while start < count {
            let end = min(count, start + 1 + next(maxLength))
            ranges.append(start..<end)
            start = end
        }
        return ranges
    }
}

@Suite("HTTP/1 response parser")
struct HTTP1ResponseParserTests {
    @Test(arguments: responseCases)
    func framing(_ testCase: ResponseCase) {
        let input = Array(testCase.input.utf8)
        let whole = run(input, pieces: [0..<input.count], isHEAD: testCase.isHEAD, closes: testCase.closes)
        #expect(kinds(whole) == testCase.expected)
    }

    /// Fed one byte at a time, in random pieces, and with small body limits, every case gives the same events.
    @Test(arguments: responseCases)
    func splitsChangeNothing(_ testCase: ResponseCase) {
        let input = Array(testCase.input.utf8)
        let whole = run(input, pieces: [0..<input.count], isHEAD: testCase.isHEAD, closes: testCase.closes)
        let bytes = run(
            input, pieces: (0..<input.count).map { $0..<$0 + 1 }, isHEAD: testCase.isHEAD, closes: testCase.closes)
        #expect(bytes == whole, "one byte at a time")
        var splitter = Splitter(state: 0x5EED)
        for round in 0..<20 {
            let pieces = splitter.pieces(of: input.count, maxLength: 1 + round)
            let limit = 1 + splitter.next(8)
            let split = run(input, pieces: pieces, isHEAD: testCase.isHEAD, limit: limit, closes: testCase.closes)
            #expect(split == whole, "pieces \(pieces), limit \(limit)")
        }
    }

    @Test func bodyPiecesAreBoundedByTheLimit() {
        func pieceSizes(_ text: String, limit: Int) -> [Int] {
            var parser = HTTP1ResponseParser(limits: defaultLimits)
            var buffer = Array(text.utf8)
            var sizes: [Int] = []
            while true {
                let (consumed, event) = buffer.withUnsafeBufferPointer { parser.parse($0, isHEAD: false, limit: limit) }
                buffer.removeFirst(consumed)
                switch event {
                case .body(let range): sizes.append(range.count)
                case .head: continue
                default: return sizes
                }
            }
        }
        #expect(pieceSizes("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", limit: 3) == [3, 3, 3, 1])
        #expect(pieceSizes("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", limit: 100) == [10])
        #expect(
            pieceSizes(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n2\r\nab\r\n0\r\n\r\n", limit: 4)
                == [4, 1, 2])
        #expect(pieceSizes("HTTP/1.1 200 OK\r\n\r\n0123456789", limit: 4) == [4, 4, 2])
    }

    @Test func headerLimits() {
        let limits = (maxHeaderBytes: 64, maxHeaderCount: 3)
        let three = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nContent-Length: 0\r\n\r\n"
        #expect(kinds(run(three, limits: limits)) == [error(.tooLarge)])
        let fits = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nContent-Length: 0\r\n\r\n"
        #expect(kinds(run(fits, limits: limits)).count == 2)
        let long = "HTTP/1.1 200 OK\r\nA: \(String(repeating: "x", count: 64))\r\n\r\n"
        #expect(kinds(run(long, limits: limits)) == [error(.tooLarge)])
        let longStatus = "HTTP/1.1 200 \(String(repeating: "x", count: 64))\r\n\r\n"
        #expect(kinds(run(longStatus, limits: limits)) == [error(.tooLarge)])
        // Over the limit before the head is complete: no need to wait for the rest.
        #expect(
            kinds(run("HTTP/1.1 200 OK\r\nA: \(String(repeating: "x", count: 80))", limits: limits)) == [
                error(.tooLarge)
            ])
    }

    @Test func trailerLimits() {
        let limits = (maxHeaderBytes: 64, maxHeaderCount: 2)
        let prefix = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
        let chunkedHead = head(200, ["Transfer-Encoding": "chunked"], .chunked)
        #expect(
            kinds(run(prefix + "A: 1\r\nB: 2\r\n\r\n", limits: limits)) == [
                chunkedHead, .end(["A": "1", "B": "2"], reusable: true),
            ])
        #expect(kinds(run(prefix + "A: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits: limits)) == [chunkedHead, error(.tooLarge)])
        let long = prefix + "A: \(String(repeating: "x", count: 70))\r\n\r\n"
        #expect(kinds(run(long, limits: limits)) == [chunkedHead, error(.tooLarge)])
    }

    @Test func errorsAndTheEndOfInputAreFinal() {
        var parser = HTTP1ResponseParser(limits: defaultLimits)
        let bad = Array("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n".utf8)
        let first = bad.withUnsafeBufferPointer { parser.parse($0, isHEAD: false, limit: 10) }
        guard case .error(let error) = first.event else {
            Issue.record("expected an error, got \(first.event)")
            return
        }
        let again = bad.withUnsafeBufferPointer { parser.parse($0, isHEAD: false, limit: 10) }
        #expect(again.consumed == 0 && again.event == .error(error))
        #expect(parser.inputEnded() == .error(error))
        #expect(!parser.canReuseConnection)

        var closed = HTTP1ResponseParser(limits: defaultLimits)
        let open = Array("HTTP/1.1 200 OK\r\n\r\nab".utf8)
        _ = open.withUnsafeBufferPointer { closed.parse($0, isHEAD: false, limit: 10) }
        #expect(closed.inputEnded() == .end(trailers: nil))
        #expect(closed.inputEnded() == .end(trailers: nil))
        let after = open.withUnsafeBufferPointer { closed.parse($0, isHEAD: false, limit: 10) }
        #expect(after.consumed == 0 && after.event == .end(trailers: nil))
        #expect(!closed.canReuseConnection)

        // The last body byte was delivered but the end not yet asked for: the close ends the response.
        var due = HTTP1ResponseParser(limits: defaultLimits)
        var buffer = Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".utf8)
        for _ in 0..<2 {
            let (consumed, _) = buffer.withUnsafeBufferPointer { due.parse($0, isHEAD: false, limit: 10) }
            buffer.removeFirst(consumed)
        }
        #expect(due.inputEnded() == .end(trailers: nil))
    }

    @Test func reuseIsDecidedAtTheEndOnly() {
        var parser = HTTP1ResponseParser(limits: defaultLimits)
        #expect(!parser.canReuseConnection)
        var buffer = Array(
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n".utf8)
        var reuse: [Bool] = []
        for _ in 0..<5 {
            let (consumed, _) = buffer.withUnsafeBufferPointer { parser.parse($0, isHEAD: false, limit: 10) }
            buffer.removeFirst(consumed)
            reuse.append(parser.canReuseConnection)
        }
        // head, body, end, next head, needMore (its body has not arrived).
        #expect(reuse == [false, false, true, false, false])
    }
}
