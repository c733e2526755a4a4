import Testing

@testable import HTTPServer

/// Feeds `input` to a parser in pieces of `pieceSize` bytes (all at once when nil), the way a
/// connection does: unconsumed bytes stay buffered and are presented again with the next read.
private func parse(
    _ input: String, limits: HTTP1Parser.Limits = .init(), pieceSize: Int? = nil
) -> (requests: [HTTP1Parser.Request], error: HTTP1ParseError?, buffered: Int) {
    parse(Array(input.utf8), limits: limits, pieceSize: pieceSize)
}

private func parse(
    _ bytes: [UInt8], limits: HTTP1Parser.Limits = .init(), pieceSize: Int? = nil
) -> (requests: [HTTP1Parser.Request], error: HTTP1ParseError?, buffered: Int) {
    var parser = HTTP1Parser(limits: limits)
    var buffer: [UInt8] = []
    var requests: [HTTP1Parser.Request] = []
    var announced: HTTP1Parser.Head?
    var offset = 0
    let step = pieceSize ?? max(bytes.count, 1)
    while offset < bytes.count {
        let end = min(bytes.count, offset + step)
        buffer.append(contentsOf: bytes[offset..<end])
        offset = end
        while !buffer.isEmpty {
            let (consumed, result) = buffer.withUnsafeBufferPointer { parser.parse($0) }
            buffer.removeFirst(consumed)
            switch result {
            case .needMoreData:
                break
            case .request(let request):
                requests.append(request)
                continue
            case .bodyAnnounced(let head, _):
                announced = head
                continue  // the server admits every body here
            case .body(let body):
                requests.append(HTTP1Parser.Request(head: announced!, body: body))
                announced = nil
                continue
            case .error(let error):
                return (requests, error, buffer.count)
            }
            break
        }
    }
    return (requests, nil, buffer.count)
}

private func expectError(
    _ input: String, _ status: Int, limits: HTTP1Parser.Limits = .init(),
    sourceLocation: SourceLocation = #_sourceLocation
) {
    let result = parse(input, limits: limits)
    #expect(result.requests.isEmpty, sourceLocation: sourceLocation)
    #expect(result.error?.status == status, "got \(String(describing: result.error))", sourceLocation: sourceLocation)
    if let reason = result.error?.reason {
        #expect(!reason.isEmpty && !reason.contains("\n") && !reason.contains("\r"), sourceLocation: sourceLocation)
    }
}

@Suite("HTTP/1 parser: happy paths")
struct HTTP1ParserHappyPathTests {
    @Test func simpleGet() throws {
        let result = parse("GET /metrics?name=a&b HTTP/1.1\r\nHost: localhost:9464\r\nAccept: */*\r\n\r\n")
        #expect(result.error == nil)
        let request = try #require(result.requests.first)
        #expect(request.head.method == "GET")
        #expect(request.head.path == "/metrics")
        #expect(request.head.query == "name=a&b")
        #expect(request.head.version == .http1_1)
        #expect(request.head.keepAlive)
        #expect(request.head.headers["host"] == "localhost:9464")
        #expect(request.head.headers["ACCEPT"] == "*/*")
        #expect(request.body.isEmpty)
        #expect(result.buffered == 0)
    }

    @Test func headerValuesAreTrimmedAndDuplicatesKeptInOrder() throws {
        let result = parse("GET / HTTP/1.1\r\nHost: h\r\nX-A:  one \t\r\nx-a: two\r\nEmpty:\r\n\r\n")
        let request = try #require(result.requests.first)
        #expect(request.head.headers.values(for: "X-A") == ["one", "two"])
        #expect(request.head.headers["empty"] == "")
        #expect(request.head.headers.count == 4)
    }

    @Test func pipelinedRequestsInOneBuffer() {
        let input =
            "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
            + "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
            + "GET /c HTTP/1.1\r\nHost: h\r\n\r\n"
        let result = parse(input)
        #expect(result.error == nil)
        #expect(result.requests.map(\.head.path) == ["/a", "/b", "/c"])
        #expect(result.requests[1].body == Array("hello".utf8))
    }

    @Test(arguments: [1, 2, 3, 7, 64])
    func requestSplitAcrossManySmallReads(pieceSize: Int) {
        let input =
            "POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\n"
            + "GET /next HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
        let result = parse(input, pieceSize: pieceSize)
        #expect(result.error == nil)
        #expect(result.requests.count == 2)
        #expect(result.requests.first?.body == Array("hello, world".utf8))
        #expect(result.requests.last?.head.path == "/next")
        #expect(result.requests.last?.body == Array("abc".utf8))
        #expect(result.buffered == 0)
    }

    @Test func chunkedBodyWithExtensionsAndTrailers() throws {
        let input =
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n"
            + "A;name=value;other\r\n0123456789\r\n1a ; q = \"a \\\" b;c\"\t;x\r\nabcdefghijklmnopqrstuvwxyz\r\n"
            + "0\r\nX-Checksum: 1\r\nX-Other: 2\r\n\r\n"
        let request = try #require(parse(input).requests.first)
        #expect(request.body == Array("0123456789abcdefghijklmnopqrstuvwxyz".utf8))
        // BWS before each ';' and around '=' is the grammar's (RFC 9112 §7.1.1); only whitespace at a line's end is not.
        for line in ["5 ;a", "5\t;a=b", "5;a ;b", "5;a=\"x\" ;b", "5; a = b", "5;a ; b = \"c d\" ;e"] {
            let chunked =
                "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\(line)\r\nhello\r\n0\r\n\r\n"
            let result = parse(chunked)
            #expect(result.error == nil, "\(line)")
            #expect(result.requests.first?.body == Array("hello".utf8), "\(line)")
        }
    }

    /// A field given on two lines is told from one given once (the received bytes are searched, no `String` made).
    @Test func repeatedFieldsAreTold() throws {
        let input = "GET / HTTP/1.1\r\nHost: h\r\nauthorization: a\r\nX: 1\r\nAuthorization: b\r\n\r\n"
        let request = try #require(parse(input).requests.first)
        #expect(request.head.headers.isRepeated("Authorization"))
        #expect(!request.head.headers.isRepeated("X"))
        #expect(!request.head.headers.isRepeated("Content-Type"))
        let built = HTTPHeaders([("A", "1"), ("b", "2"), ("a", "3")])
        #expect(built.isRepeated("a") && !built.isRepeated("B") && !built.isRepeated("c"))
    }

    @Test func http10DefaultsToClose() throws {
        let plain = try #require(parse("GET / HTTP/1.0\r\n\r\n").requests.first)
        #expect(plain.head.version == .http1_0)
        #expect(!plain.head.keepAlive)
        let keepAlive = try #require(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").requests.first)
        #expect(keepAlive.head.keepAlive)
    }

    @Test func connectionCloseOnHTTP11() throws {
        let request = try #require(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, close\r\n\r\n").requests.first)
        #expect(!request.head.keepAlive)
    }

    @Test func bareLineFeedsAndLeadingEmptyLinesAreAccepted() throws {
        let request = try #require(parse("\r\n\nGET /x HTTP/1.1\nHost: h\n\n").requests.first)
        #expect(request.head.path == "/x")
    }

    @Test func identicalDuplicateContentLengthsAreAccepted() throws {
        let result = parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3, 3\r\n\r\nabc")
        #expect(result.error == nil)
        #expect(result.requests.first?.body == Array("abc".utf8))
    }

    @Test func absoluteFormAndAsteriskForm() throws {
        let absolute = try #require(
            parse("GET http://example.com:80/p/q?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n").requests.first)
        #expect(absolute.head.path == "/p/q")
        #expect(absolute.head.query == "x=1")
        let bare = try #require(parse("GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n").requests.first)
        #expect(bare.head.path == "/")
        let options = try #require(parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n").requests.first)
        #expect(options.head.path == "*")
    }

    @Test func anAbsoluteFormTargetsAuthorityIsTheHost() throws {
        // RFC 9112 §3.2.2: the Host field received is ignored for the target's authority, in place.
        let request = try #require(
            parse("GET http://model.example:8080/p HTTP/1.1\r\nA: 1\r\nHost: other\r\nB: 2\r\n\r\n").requests.first)
        #expect(request.head.headers["host"] == "model.example:8080")
        #expect(request.head.headers.map(\.name) == ["A", "Host", "B"])
        // HTTP/1.0 needs no Host: one is added.
        let old = try #require(parse("GET HTTP://h:1?q HTTP/1.0\r\n\r\n").requests.first)
        #expect(old.head.headers["Host"] == "h:1")
        #expect(old.head.path == "/" && old.head.query == "q")
        // HTTP/1.1 still needs one; userinfo is refused.
        #expect(parse("GET http://h/p HTTP/1.1\r\n\r\n").error?.status == 400)
        #expect(parse("GET http://u:pw@h/p HTTP/1.1\r\nHost: h\r\n\r\n").error?.status == 400)
    }

    @Test func emptyQueryIsDistinctFromNoQuery() throws {
        #expect(try #require(parse("GET /a? HTTP/1.1\r\nHost: h\r\n\r\n").requests.first).head.query == "")
        #expect(try #require(parse("GET /a HTTP/1.1\r\nHost: h\r\n\r\n").requests.first).head.query == nil)
    }

    /// `Expect` is a list: `100-continue` among other expectations asks for a 100 (before, only the whole value was
    /// compared, and curl's request with another expectation stalled a second).
    @Test(arguments: ["100-continue", "100-Continue", "foo, 100-continue", " 100-continue ,x"])
    func expectIsAList(_ value: String) {
        var parser = HTTP1Parser(limits: .init())
        let input = Array("POST / HTTP/1.1\r\nHost: h\r\nExpect: \(value)\r\nContent-Length: 2\r\n\r\n".utf8)
        let (_, result) = input.withUnsafeBufferPointer { parser.parse($0) }
        guard case .bodyAnnounced(let head, _) = result else {
            Issue.record("expected the body to be announced, got \(result)")
            return
        }
        #expect(head.expectsContinue, "\(value)")
    }

    @Test func aHeadThatAnnouncesABodyStopsBeforeTheBody() {
        var parser = HTTP1Parser(limits: .init())
        let input = Array(
            "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nokGET".utf8)
        let (consumed, result) = input.withUnsafeBufferPointer { parser.parse($0) }
        #expect(consumed == input.count - 5)  // the head only
        guard case .bodyAnnounced(let head, let contentLength) = result else {
            Issue.record("expected the body to be announced, got \(result)")
            return
        }
        #expect(head.expectsContinue && contentLength == 2)
        let rest = Array(input[consumed...])
        let (used, final) = rest.withUnsafeBufferPointer { parser.parse($0) }
        guard case .body(let body) = final else {
            Issue.record("expected the announced body, got \(final)")
            return
        }
        #expect(used == 2 && body == Array("ok".utf8))
        // The parser kept nothing of the head: the next request is whole.
        let (next, after) = Array("GET / HTTP/1.1\r\nHost: h\r\n\r\n".utf8).withUnsafeBufferPointer { parser.parse($0) }
        guard case .request(let request) = after else {
            Issue.record("expected the next request, got \(after)")
            return
        }
        #expect(next == 27 && request.head.method == "GET" && request.body.isEmpty)

        var chunked = HTTP1Parser(limits: .init())
        let chunkedHead = Array("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
        let (_, announced) = chunkedHead.withUnsafeBufferPointer { chunked.parse($0) }
        guard case .bodyAnnounced(_, nil) = announced else {
            Issue.record("expected a chunked body to be announced, got \(announced)")
            return
        }
    }

    @Test func higherHTTP1MinorIsTreatedAsHTTP11() throws {
        #expect(try #require(parse("GET / HTTP/1.2\r\nHost: h\r\n\r\n").requests.first).head.version == .http1_1)
    }

    @Test func requestAtExactLimitsIsAccepted() {
        var limits = HTTP1Parser.Limits()
        limits.maxRequestTargetLength = 32
        limits.maxHeaderCount = 2
        limits.maxBodySize = 4
        let target = "/" + String(repeating: "a", count: 31)
        let result = parse("POST \(target) HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nabcd", limits: limits)
        #expect(result.error == nil)
        #expect(result.requests.count == 1)
    }
}

@Suite("HTTP/1 parser: errors")
struct HTTP1ParserErrorTests {
    /// The eight-bytes-at-a-time value check answers as the byte-by-byte rule for every length, position and byte
    /// class: control bytes (HTAB allowed), DEL, obs-text, and values of all-valid bytes.
    @Test func fieldValueCheckMatchesTheByteRule() {
        let samples: [UInt8] = [0x00, 0x01, 0x09, 0x0A, 0x0D, 0x1F, 0x20, 0x41, 0x7E, 0x7F, 0x80, 0xA0, 0xFF]
        var generator = Splitter(state: 0xF1E1D)
        for length in 0...40 {
            for _ in 0..<12 {
                var bytes = (0..<length).map { _ in UInt8(0x21 + generator.next(0x5E)) }
                if length > 0 {
                    bytes[generator.next(length)] = samples[generator.next(samples.count)]
                    if generator.next(3) == 0 { bytes[generator.next(length)] = samples[generator.next(samples.count)] }
                }
                let expected = bytes.allSatisfy(HTTP1Framing.isFieldValueCharacter)
                // Inside a larger buffer, at an odd offset (unaligned loads).
                let buffer = [0x0D, 0x41, 0x41] + bytes + [0x00, 0x7F]
                let checked = buffer.withUnsafeBufferPointer { HTTP1Framing.isFieldValue($0, 3..<(3 + length)) }
                #expect(checked == expected, "\(bytes)")
            }
        }
    }

    /// ``HTTP1Framing/tokenEnd(_:from:to:)`` stops at the first byte that is not a token character, as a byte-by-byte
    /// scan does: names of letters, digits and `-` (the word path) mixed with the other token characters, separators,
    /// control bytes and non-ASCII bytes, at every position in a word.
    @Test func tokenEndIsTheFirstByteOutsideTheTokenSet() {
        let plain = Array("abcxyzABCXYZ0189-".utf8)
        let others =
            Array("!#$%&'*+.^_`|~:;@[]{}\"/ \t".utf8) + [0x00, 0x1A, 0x40, 0x5B, 0x60, 0x7B, 0x7F, 0x80, 0xC3, 0xFF]
        var generator = Splitter(state: 0x70_4E_E4D)
        for _ in 0..<20_000 {
            let length = generator.next(41)
            var bytes = (0..<length).map { _ in plain[generator.next(plain.count)] }
            for _ in 0..<generator.next(3) where length > 0 {
                bytes[generator.next(length)] = others[generator.next(others.count)]
            }
            let expected = 3 + (bytes.firstIndex { !ASCII.isTokenCharacter($0) } ?? length)
            let buffer = [0x3A, 0x41, 0x41] + bytes + [0x41, 0x41]
            let end = buffer.withUnsafeBufferPointer { HTTP1Framing.tokenEnd($0.baseAddress!, from: 3, to: 3 + length) }
            #expect(end == expected, "\(bytes)")
        }
    }

    /// ``HTTP1Framing/fieldValueEnd(_:from:to:)`` stops at the first byte that is not a field-value character, as a
    /// byte-by-byte scan does, wherever it is in a word and whatever comes after it (HTABs, which pass, before
    /// control bytes and DEL in the same word).
    @Test func fieldValueEndIsTheFirstByteOutsideTheRule() {
        let samples: [UInt8] = [0x00, 0x09, 0x09, 0x09, 0x0A, 0x0D, 0x1F, 0x7F, 0x80, 0xFF]
        var generator = Splitter(state: 0xF1E1D_E4D)
        for _ in 0..<20_000 {
            let length = generator.next(41)
            var bytes = (0..<length).map { _ in UInt8(0x20 + generator.next(0x5F)) }
            for _ in 0..<generator.next(4) where length > 0 {
                bytes[generator.next(length)] = samples[generator.next(samples.count)]
            }
            let expected = 3 + (bytes.firstIndex { !HTTP1Framing.isFieldValueCharacter($0) } ?? length)
            let buffer = [0x0D, 0x41, 0x41] + bytes + [0x00, 0x7F]
            let end = buffer.withUnsafeBufferPointer {
                HTTP1Framing.fieldValueEnd($0.baseAddress!, from: 3, to: 3 + length)
            }
            #expect(end == expected, "\(bytes)")
        }
    }

    @Test(arguments: [
        "GET\r\nHost: h\r\n\r\n",  // no target
        "GET /\r\nHost: h\r\n\r\n",  // no version
        "GET  / HTTP/1.1\r\nHost: h\r\n\r\n",  // double space
        "G(T / HTTP/1.1\r\nHost: h\r\n\r\n",  // method not a token
        "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n",  // space in target
        "GET relative HTTP/1.1\r\nHost: h\r\n\r\n",  // not origin-form
        "GET * HTTP/1.1\r\nHost: h\r\n\r\n",  // asterisk-form outside OPTIONS
        "GET / HTTX/1.1\r\nHost: h\r\n\r\n",  // malformed version
        "GET / HTTP/1.1 \r\nHost: h\r\n\r\n",  // trailing space
        "GET / http/1.1\r\nHost: h\r\n\r\n",  // version is case-sensitive
        "GET /\u{7F} HTTP/1.1\r\nHost: h\r\n\r\n",  // DEL in target
    ])
    func malformedRequestLine(input: String) {
        expectError(input, 400)
    }

    @Test func obsoleteLineFoldingIsRejected() {
        expectError("GET / HTTP/1.1\r\nHost: h\r\nX-Long: part one\r\n  part two\r\n\r\n", 400)
        expectError("GET / HTTP/1.1\r\nHost: h\r\nX-Long: part one\r\n\tpart two\r\n\r\n", 400)
    }

    @Test func whitespaceBeforeColonIsRejected() {
        expectError("GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400)
        expectError("GET / HTTP/1.1\r\nHost: h\r\nX-A\t: 1\r\n\r\n", 400)
    }

    @Test(arguments: [
        "GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\n: empty name\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nBad[Name]: 1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX-A: bad\u{0}value\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX-A: bare\rcr\r\n\r\n",
    ])
    func malformedHeaderLine(input: String) {
        expectError(input, 400)
    }

    @Test func hostHeaderRules() {
        expectError("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 400)
        expectError("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400)
    }

    @Test(arguments: [
        "Content-Length: 3\r\nContent-Length: 4",
        "Content-Length: 3, 4",
        "Content-Length: -1",
        "Content-Length: 0x10",
        "Content-Length: 1 2",
        "Content-Length: +5",
        "Content-Length:",
    ])
    func invalidContentLength(field: String) {
        expectError("POST / HTTP/1.1\r\nHost: h\r\n\(field)\r\n\r\nabcd", 400)
    }

    @Test func contentLengthWithTransferEncodingIsRejected() {
        expectError(
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400)
        expectError(
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400)
    }

    @Test func transferEncodingRules() {
        expectError("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501)
        expectError("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501)
        expectError("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400)
        expectError("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n", 400)
        expectError("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400)
        // `chunked` has no parameters: a parser reading `chunked;x=1` as an unknown coding frames the body otherwise.
        expectError("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;x=1\r\n\r\n0\r\n\r\n", 501)
        expectError("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked ; x\r\n\r\n0\r\n\r\n", 501)
    }

    @Test(arguments: [
        "zz\r\nhello\r\n0\r\n\r\n",  // not hex
        "\r\nhello\r\n0\r\n\r\n",  // empty size
        "5 x\r\nhello\r\n0\r\n\r\n",  // junk after size
        "5\r\nhelloXX0\r\n\r\n",  // data not followed by CRLF
        "5\r\nhello\rX",  // CR not followed by LF
        "-5\r\nhello\r\n0\r\n\r\n",  // negative
        // A lone LF where a request's chunk framing needs CRLF (RFC 9112 §7.1; other parsers read it differently):
        "5\nhello\r\n0\r\n\r\n",  // after the size
        "5;ext\nhello\r\n0\r\n\r\n",  // after an extension
        "5\r\nhello\n0\r\n\r\n",  // after the data
        "5\r\nhello\r\n0\n\r\n",  // after the last chunk's size
        // Extensions off the grammar: a quoted string that does not close on its line (a parser that reads the
        // CRLF inside the quotes as part of it sees another body), a value missing, a name missing, junk.
        "5;a=\"x\r\nhello\r\n0\r\n\r\n",
        "5;a=\r\nhello\r\n0\r\n\r\n",
        "5;=b\r\nhello\r\n0\r\n\r\n",
        "5;a b\r\nhello\r\n0\r\n\r\n",
        "5;a=\"x\\\r\nhello\r\n0\r\n\r\n",
        // Whitespace the grammar has no place for: BWS comes only before an extension's ';'.
        "5 \r\nhello\r\n0\r\n\r\n",
        "5\t\r\nhello\r\n0\r\n\r\n",
        "5;a \r\nhello\r\n0\r\n\r\n",
        "5;a=b\t\r\nhello\r\n0\r\n\r\n",
        "5;a=\"b\" \r\nhello\r\n0\r\n\r\n",
        "5\r\nhello\r\n0 \r\n\r\n",
    ])
    func badChunks(body: String) {
        expectError("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\(body)", 400)
    }

    /// A `Host` that is no `uri-host [":" port]` is refused (RFC 9112 §3.2), and so is such an authority in an
    /// absolute-form target: a proxy must not pass on a host other parsers read differently.
    @Test(arguments: [
        "a b/c", "a, b", "a:80@evil", "a/../b", "a:b", "[::1", "[::1]x", "a:80:90", "a%zz", "a?b", "a#b", "[]",
        "a\tb",
    ])
    func invalidHostsAre400(host: String) {
        expectError("GET / HTTP/1.1\r\nHost: \(host)\r\n\r\n", 400)
        if !host.contains(" ") && !host.contains("\t") && !host.contains("/") && !host.contains("?")
            && !host.contains("#")
        {
            expectError("GET http://\(host)/ HTTP/1.1\r\nHost: h\r\n\r\n", 400)
        }
    }

    @Test func validHostsAreAccepted() throws {
        for host in [
            "example.com", "example.com:8080", "127.0.0.1:9", "[::1]:80", "[fe80::1%25eth0]", "xn--bcher-kva.example",
            "a_b-c~d.e", "%41bc", "h:", "",
        ] {
            let request = try #require(parse("GET / HTTP/1.1\r\nHost: \(host)\r\n\r\n").requests.first, "\(host)")
            #expect(request.head.headers["Host"] == host)
        }
    }

    @Test func chunkSizeOverflowIsTooLarge() {
        expectError(
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n", 413)
    }

    @Test func bodyOverLimit() {
        var limits = HTTP1Parser.Limits()
        limits.maxBodySize = 10
        expectError("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", 413, limits: limits)
        expectError(
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n", 413, limits: limits)
        expectError(
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n5\r\nabcde\r\n", 413,
            limits: limits)
    }

    @Test func targetTooLong() {
        var limits = HTTP1Parser.Limits()
        limits.maxRequestTargetLength = 32
        let target = "/" + String(repeating: "a", count: 32)
        expectError("GET \(target) HTTP/1.1\r\nHost: h\r\n\r\n", 414, limits: limits)
        // Also while the request line is still arriving (no line feed yet).
        expectError("GET /" + String(repeating: "a", count: 200), 414, limits: limits)
    }

    @Test func headersTooLarge() {
        var limits = HTTP1Parser.Limits()
        limits.maxHeaderBytes = 100
        limits.maxHeaderCount = 3
        expectError(
            "GET / HTTP/1.1\r\nHost: h\r\nX-Big: \(String(repeating: "b", count: 120))\r\n\r\n", 431, limits: limits)
        // Detected before the head completes, too.
        expectError("GET / HTTP/1.1\r\nHost: h\r\nX-Big: \(String(repeating: "b", count: 120))", 431, limits: limits)
        expectError("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 431, limits: limits)
    }

    /// Found by Fuzz/ (http1-parser): a request line or header section of exactly the limit was refused when its
    /// final CR arrived without its LF (then counted as content), and accepted otherwise.
    @Test func headsAtTheLimitPassWhereverThePiecesEnd() {
        var limits = HTTP1Parser.Limits()
        limits.maxRequestTargetLength = 32
        limits.maxHeaderBytes = 100
        let target = "/" + String(repeating: "a", count: 31)
        // A request line of `methodLength` + 42 bytes; a header section of `valueLength` + 14 bytes.
        func line(_ methodLength: Int) -> String {
            "\(String(repeating: "M", count: methodLength)) \(target) HTTP/1.1\r\nHost: h\r\n\r\n"
        }
        func headers(_ valueLength: Int) -> String {
            "GET / HTTP/1.1\r\nHost: h\r\nX: \(String(repeating: "x", count: valueLength))\r\n\r\n"
        }
        for input in [line(54), headers(86)] {
            for pieceSize in 1...input.utf8.count {
                let result = parse(input, limits: limits, pieceSize: pieceSize)
                #expect(result.error == nil && result.requests.count == 1, "in pieces of \(pieceSize): \(result)")
            }
        }
        expectError(line(55), 414, limits: limits)
        expectError(headers(87), 431, limits: limits)
    }

    @Test func trailersTooLarge() {
        var limits = HTTP1Parser.Limits()
        limits.maxHeaderBytes = 64
        expectError(
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "0\r\nT: \(String(repeating: "t", count: 80))\r\n\r\n",
            431, limits: limits)
        // More trailer fields than the header limit, within its bytes: 431 too (before: 3,200 trailer fields passed).
        var counted = HTTP1Parser.Limits()
        counted.maxHeaderCount = 5
        let fields = { (n: Int) in (0..<n).map { "T\($0): x\r\n" }.joined() }
        let body = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n"
        expectError(body + fields(6) + "\r\n", 431, limits: counted)
        #expect(parse(body + fields(5) + "\r\n", limits: counted).requests.count == 1)
    }

    /// Trailer lines follow the header section's rules (RFC 9112 §7.1.2): before, any bytes were skipped (no colon, a
    /// bare CR, NUL, obs-fold, a space before the colon) and the request served.
    @Test func malformedTrailersAre400() {
        let body = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n"
        for trailer in ["bad trailer", "X: a\rb", "X : a", ": empty", "X\u{0}: a", "X: \u{1}"] {
            expectError(body + trailer + "\r\n\r\n", 400)
        }
        expectError(body + "X: 1\r\n folded\r\n\r\n", 400)
        #expect(parse(body + "X-Checksum: abc\r\n\r\n").requests.count == 1)
    }

    @Test func unsupportedVersions() {
        expectError("GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505)
        expectError("GET / HTTP/0.9\r\nHost: h\r\n\r\n", 505)
        // The HTTP/2 client preface is answered as an unsupported version (no h2c yet).
        expectError("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505)
    }

    @Test func connectIsNotImplemented() {
        expectError("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 501)
    }

    @Test func tooManyEmptyLinesBeforeRequest() {
        expectError(String(repeating: "\r\n", count: 20) + "GET / HTTP/1.1\r\nHost: h\r\n\r\n", 400)
    }

    @Test func errorIsSticky() {
        var parser = HTTP1Parser(limits: .init())
        let bad = Array("BAD REQUEST LINE HERE\r\n\r\n".utf8)
        let (_, first) = bad.withUnsafeBufferPointer { parser.parse($0) }
        let good = Array("GET / HTTP/1.1\r\nHost: h\r\n\r\n".utf8)
        let (_, second) = good.withUnsafeBufferPointer { parser.parse($0) }
        #expect(first == second)
        guard case .error(let error) = second else {
            Issue.record("expected an error")
            return
        }
        #expect(error.status == 400)
    }
}
