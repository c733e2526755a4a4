import Synchronization
import Testing

@testable import HTTPServer

/// The proxy's byte path (``ForwardedFields``): field lines copied from the received bytes must come out exactly as
/// the `String` path (``ForwardedRequest``) writes them, hop-by-hop fields removed whatever their case.
@Suite struct ForwardedFieldsTests {
    /// The head of a request as the server's parser makes it (its fields keep their received lines).
    private func parsedHead(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> HTTP1Parser.Head? {
        parsedHead(Array(text.utf8), sourceLocation: sourceLocation)
    }

    private func parsedHead(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) -> HTTP1Parser.Head? {
        var parser = HTTP1Parser(limits: .init())
        switch bytes.withUnsafeBufferPointer({ parser.parse($0) }).result {
        case .request(let request): return request.head
        case .bodyAnnounced(let head, _): return head
        case let other:
            Issue.record("not a request head: \(other)", sourceLocation: sourceLocation)
            return nil
        }
    }

    private func request(_ head: HTTP1Parser.Head, body: String = "", remote: String = "127.0.0.1:5555") -> HTTPRequest
    {
        HTTPRequest(
            method: head.method, path: head.path, query: head.query, version: head.version, headers: head.headers,
            body: Array(body.utf8), remoteAddress: remote)
    }

    private func encoded(_ request: HTTPRequest, addRequestID: Bool = false) -> [UInt8] {
        let (head, body) = ForwardedRequest.encode(
            request, basePath: "/base", hostFallback: "upstream:8080", forwardedProto: "http",
            requestIDHeader: "X-Request-Id", requestID: "rid", addRequestID: addRequestID)
        return head + (body ?? [])
    }

    /// The same request with fields built in code (no received lines): the `String` path.
    private func withoutReceivedLines(_ request: HTTPRequest) -> HTTPRequest {
        var copy = request
        copy.headers = HTTPHeaders(request.headers.map { ($0.name, $0.value) })
        return copy
    }

    @Test func requestFieldsAreCopiedAsBytesLikeTheStringPathWritesThem() throws {
        // The field `Connection` names comes before it (so the first pass copied it), hop-by-hop names in odd case, a
        // bare LF, whitespace around values, an empty value, repeated fields, a value that is not UTF-8.
        var raw = Array(
            ("POST /v2/x?a=1 HTTP/1.1\r\nX-Secret: s\r\nHost: api.example\r\naccept: a\r\nAccept: b\r\n"
                + "cOnNeCtIoN: Keep-Alive, x-SECRET , close\r\nKEEP-ALIVE: timeout=5\r\nte: trailers\r\n"
                + "uPgRaDe: h2c\r\nproxy-CONNECTION: x\r\nTRAILER: X\r\nexpect: 100-continue\r\n"
                + "x-forwarded-for: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2\nX-Forwarded-Proto: https\r\n"
                + "x-forwarded-host: evil\r\nX-Pad: \t v  w \t\r\nX-Empty:\r\nContent-Type:application/json\r\n"
                + "X-Raw: caf").utf8)
        raw += [0xE9] + Array("\r\nContent-Length: 2\r\n\r\n".utf8)
        let head = try #require(parsedHead(raw))
        #expect(head.headers.receivedLines != nil)
        let forwarded = request(head, body: "{}")
        let fields =
            "POST /base/v2/x?a=1 HTTP/1.1\r\naccept: a\r\nAccept: b\r\nX-Pad: v  w\r\nX-Empty: \r\n"
            + "Content-Type: application/json\r\nX-Raw: caf"
        let forwarding =
            "\r\nHost: api.example\r\nX-Forwarded-For: 10.0.0.1, 10.0.0.2, 127.0.0.1\r\nX-Forwarded-Proto: http\r\n"
            + "X-Forwarded-Host: api.example\r\nContent-Length: 2\r\n\r\n{}"
        // The byte path passes the value's bytes as they came; the `String`s hold U+FFFD for the invalid one.
        #expect(encoded(forwarded) == Array(fields.utf8) + [0xE9] + Array(forwarding.utf8))
        #expect(
            String(decoding: encoded(withoutReceivedLines(forwarded)), as: UTF8.self) == fields + "\u{FFFD}"
                + forwarding)
    }

    @Test func bothPathsAgreeOnUsualRequests() throws {
        let heads = [
            "GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: curl/8\r\nAccept: */*\r\n\r\n",
            "POST /v2/models/m/infer HTTP/1.1\r\nhost: h:81\r\ncontent-type: application/json\r\n"
                + "Connection: keep-alive\r\ncontent-length: 2\r\n\r\n",
            "GET /a HTTP/1.1\r\nConnection: X-A, x-b\r\nX-B: 1\r\nHost: h\r\nX-A: 2\r\nX-C: 3\r\nx-forwarded-for:\r\n\r\n",
            "GET /old HTTP/1.0\r\nAccept: x\r\n\r\n",
            // Several X-Forwarded-For lines are one list, joined in order (empty ones add nothing).
            "GET /x HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\nx-forwarded-for:\r\n"
                + "X-Forwarded-For: 2.2.2.2, 3.3.3.3\r\n\r\n",
            // X-Forwarded-For named by `Connection`: hop-by-hop, the client's values dropped (they were passed on).
            "GET /y HTTP/1.1\r\nHost: h\r\nConnection: x-forwarded-for\r\nX-Forwarded-For: 6.6.6.6\r\n"
                + "X-Forwarded-For: 7.7.7.7\r\n\r\n",
        ]
        for text in heads {
            let head = try #require(parsedHead(text))
            let forwarded = request(head, body: head.method == "POST" ? "{}" : "", remote: "[::1]:7")
            for addRequestID in [false, true] {
                let bytes = encoded(forwarded, addRequestID: addRequestID)
                #expect(bytes == encoded(withoutReceivedLines(forwarded), addRequestID: addRequestID), "\(text)")
            }
        }
        // Named by `Connection`: X-A and X-B gone, X-C kept; an empty X-Forwarded-For is the client alone; no Host:
        // the upstream's.
        let named = try #require(parsedHead(heads[2]))
        #expect(
            String(decoding: encoded(request(named)), as: UTF8.self)
                == "GET /base/a HTTP/1.1\r\nX-C: 3\r\nHost: h\r\nX-Forwarded-For: 127.0.0.1\r\n"
                + "X-Forwarded-Proto: http\r\nX-Forwarded-Host: h\r\n\r\n")
        // An HTTP/1.0 request without Host: the upstream's own Host, and no X-Forwarded-Host (before, the upstream's
        // authority was sent as the one the client asked for).
        let noHost = String(decoding: encoded(request(try #require(parsedHead(heads[3])))), as: UTF8.self)
        #expect(noHost.contains("\r\nHost: ") && !noHost.contains("X-Forwarded-Host"), "\(noHost)")
        let several = try #require(parsedHead(heads[4]))
        #expect(
            String(decoding: encoded(request(several)), as: UTF8.self).contains(
                "\r\nX-Forwarded-For: 1.1.1.1, 2.2.2.2, 3.3.3.3, 127.0.0.1\r\n"))
        let listed = String(decoding: encoded(request(try #require(parsedHead(heads[5])))), as: UTF8.self)
        #expect(listed.contains("\r\nX-Forwarded-For: 127.0.0.1\r\n"), "\(listed)")
        #expect(!listed.contains("6.6.6.6") && !listed.contains("7.7.7.7"), "\(listed)")
        let old = try #require(parsedHead(heads[3]))
        #expect(
            String(decoding: encoded(request(old, remote: "[::1]:7")), as: UTF8.self).contains(
                "\r\nHost: upstream:8080\r\nX-Forwarded-For: ::1\r\n"))
    }

    /// Random heads (hop-by-hop names in random case, `Connection` naming fields before or after them, repeated
    /// fields, optional whitespace, bare LF, long values): the byte path writes what the `String` path writes, within
    /// the capacity it computed (a piece beyond it traps).
    @Test func randomHeadsComeOutAsTheStringPathWritesThem() throws {
        var generator = Splitter(state: 0x5EED)
        let names = [
            "Host", "Accept", "Connection", "Keep-Alive", "TE", "Trailer", "Upgrade", "Proxy-Connection", "Expect",
            "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Request-Id", "X-A", "x-b", "Set-Cookie",
            "Content-Type",
        ]
        func randomCase(_ text: String) -> String {
            String(text.map { generator.next(2) == 0 ? Character($0.uppercased()) : Character($0.lowercased()) })
        }
        for round in 0..<300 {
            var lines: [String] = []
            var hosts = 0
            for _ in 0..<(1 + generator.next(12)) {
                let name = names[generator.next(names.count)]
                if name == "Host" {
                    if hosts == 1 { continue }
                    hosts += 1
                }
                let value: String
                switch name {
                case "Connection":
                    value = ["keep-alive", "X-A, close", "x-B , upgrade", " , X-a,,"][generator.next(4)]
                case "Expect": value = "100-continue"
                default: value = String(repeating: "v\(round)", count: generator.next(40))
                }
                let before = ["", " ", "\t ", "  "][generator.next(4)]
                let after = ["", " ", "\t"][generator.next(3)]
                let end = generator.next(3) == 0 ? "\n" : "\r\n"
                lines.append(randomCase(name) + ":" + before + value + after + end)
            }
            let version = hosts == 0 ? "HTTP/1.0" : "HTTP/1.1"
            let head = try #require(parsedHead("GET /r?q=\(round) \(version)\r\n" + lines.joined() + "\r\n"))
            let remote = round % 2 == 0 ? "[2001:db8::1]:443" : "10.1.2.3:9"
            let forwarded = request(head, remote: remote)
            for addRequestID in [false, true] {
                #expect(
                    encoded(forwarded, addRequestID: addRequestID)
                        == encoded(withoutReceivedLines(forwarded), addRequestID: addRequestID),
                    "\(lines)")
            }
            // The same lines in a response head.
            let response = try #require(
                responseHeaders("HTTP/1.1 200 OK\r\n" + lines.joined() + "Content-Length: 0\r\n\r\n"))
            let kept = ForwardedRequest.responseFields(response).map { "\($0.name): \($0.value)\r\n" }.joined()
            #expect(try #require(forwardedResponse(response)).lines == kept, "\(lines)")
        }
    }

    @Test func anEmptyClientRequestIDIsReplacedAndAGivenOneKept() throws {
        let empty = try #require(parsedHead("GET / HTTP/1.1\r\nHost: h\r\nx-REQUEST-id:\r\n\r\n"))
        let text = String(decoding: encoded(request(empty), addRequestID: true), as: UTF8.self)
        #expect(!text.contains("x-REQUEST-id"))
        #expect(text.hasSuffix("X-Request-Id: rid\r\n\r\n"))
        let given = try #require(parsedHead("GET / HTTP/1.1\r\nHost: h\r\nx-request-id: mine\r\n\r\n"))
        #expect(String(decoding: encoded(request(given)), as: UTF8.self).contains("\r\nx-request-id: mine\r\n"))
    }

    /// The fields of an upstream response head as the proxy's parser makes them.
    private func responseHeaders(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> HTTPHeaders? {
        var parser = HTTP1ResponseParser(limits: (maxHeaderBytes: 4096, maxHeaderCount: 32))
        let bytes = Array(text.utf8)
        guard
            case .head(let head) = bytes.withUnsafeBufferPointer({ parser.parse($0, isHEAD: false, limit: 1024) }).event
        else {
            Issue.record("not a response head", sourceLocation: sourceLocation)
            return nil
        }
        return head.headers
    }

    private func forwardedResponse(_ headers: HTTPHeaders) -> (lines: String, hasDate: Bool)? {
        guard let received = headers.receivedLines else { return nil }
        var hasDate = false
        // Exactly the capacity the proxy gives it: a line written longer than promised traps.
        let capacity = ForwardedFields.capacity(sectionBytes: received.count, lines: headers.count)
        let out = ByteWriter.array(capacity: capacity) { out in
            hasDate = received.withUnsafeBufferPointer { ForwardedFields.appendResponseFields($0, into: &out) }
        }
        return (String(decoding: out, as: UTF8.self), hasDate)
    }

    @Test func responseFieldsAreCopiedAsBytesWithoutHopByHopOnes() throws {
        let headers = try #require(
            responseHeaders(
                "HTTP/1.1 200 OK\r\nX-Internal: 1\r\nContent-Type: text/plain\r\nset-cookie: a=1\r\nSet-Cookie: b=2\r\n"
                    + "CONNECTION: x-INTERNAL, Keep-Alive\r\nKeep-Alive: timeout=5\r\ncontent-LENGTH: 5\r\n"
                    + "X-Ows:   v \r\nTRAILER: X\r\nuPgRaDe: h2c\r\nProxy-Connection: x\r\nTe: trailers\r\n"
                    + "date: Mon\n\r\nhello"))
        let forwarded = try #require(forwardedResponse(headers))
        #expect(
            forwarded.lines
                == "Content-Type: text/plain\r\nset-cookie: a=1\r\nSet-Cookie: b=2\r\nX-Ows: v\r\ndate: Mon\r\n")
        #expect(forwarded.hasDate)
        // The `String` path keeps the same fields.
        let kept = ForwardedRequest.responseFields(headers).map { "\($0.name): \($0.value)\r\n" }.joined()
        #expect(kept == forwarded.lines)

        let chunked = try #require(
            responseHeaders(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: a\r\nConnection: close\r\n\r\n"))
        let second = try #require(forwardedResponse(chunked))
        #expect(second.lines == "Content-Type: a\r\n")
        #expect(!second.hasDate)
    }

    @Test func receivedLinesLastWhileTheListIsUnchanged() throws {
        let text = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\nB:2\r\n\r\n"
        // Fed in two reads, the head split inside a field line.
        var parser = HTTP1Parser(limits: .init())
        let bytes = Array(text.utf8)
        let first = bytes.prefix(20).withUnsafeBufferPointer { parser.parse($0) }
        #expect(first.result == .needMoreData)
        guard case .request(let whole) = bytes.withUnsafeBufferPointer({ parser.parse($0) }).result else {
            Issue.record("no request")
            return
        }
        let headers = whole.head.headers
        #expect(headers.receivedLines == Array("Host: h\r\nA: 1\nB:2\r\n".utf8))
        var added = headers
        added.add(name: "C", value: "3")
        #expect(added.receivedLines == nil)
        var removed = headers
        removed.remove(name: "A")
        #expect(removed.receivedLines == nil)
        var replaced = headers
        replaced.replaceOrAdd(name: "B", value: "4")
        #expect(replaced.receivedLines == nil)
        #expect(headers.receivedLines != nil)
        #expect(HTTPHeaders([("A", "1")]).receivedLines == nil)
        // A request whose fields a handler changed goes the `String` way, with the change.
        let head = try #require(parsedHead(text))
        var changed = request(head)
        changed.headers.add(name: "X-Added", value: "yes")
        #expect(String(decoding: encoded(changed), as: UTF8.self).contains("B: 2\r\nX-Added: yes\r\nHost: h\r\n"))
    }

    @Test func fieldLinesEncodeTheSameHeadAsFields() {
        let fields = HTTPHeaders([("Content-Type", "text/plain"), ("Date", "Mon"), ("Set-Cookie", "a=1")])
        let lines = Array("Content-Type: text/plain\r\nDate: Mon\r\nSet-Cookie: a=1\r\n".utf8)
        let cases: [(Int?, Bool, HTTP1ResponseEncoder.ConnectionField)] = [
            (5, false, .none), (nil, true, .close), (nil, false, .keepAlive),
        ]
        for (contentLength, chunked, connection) in cases {
            var date = DateCache()
            var fromFields: [UInt8] = []
            HTTP1ResponseEncoder.encodeHead(
                status: 404, headers: fields, contentLength: contentLength, chunked: chunked, connection: connection,
                date: &date, into: &fromFields)
            var fromLines: [UInt8] = []
            HTTP1ResponseEncoder.encodeHead(
                status: 404, fieldLines: lines, hasDate: true, contentLength: contentLength, chunked: chunked,
                connection: connection, date: &date, into: &fromLines)
            #expect(fromLines == fromFields)
        }
        var date = DateCache()
        var withDate: [UInt8] = []
        HTTP1ResponseEncoder.encodeHead(
            status: 200, fieldLines: [], hasDate: false, contentLength: 0, chunked: false, connection: .none,
            date: &date, into: &withDate)
        let text = String(decoding: withDate, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nDate: "))
        #expect(text.hasSuffix(" GMT\r\n\r\n"))
    }
}

@Suite struct ForwardedFieldsProxyTests {
    @Test func aGeneratedIDGoesBackUnderTheConfiguredNameAndAnUnsafeOneNever() throws {
        try withServer { _, upstream in
            try withProxy(upstreamPort: upstream, configure: { $0.requestIDHeader = "x-trace" }) { port in
                let client = try RawClient(port: port)
                try client.send("GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
                let response = try client.readResponse()
                #expect(response.text == "GET /a body=0")
                #expect(response.headers.filter { $0.0 == "x-trace" }.map(\.1) == ["generated-id"])
            }
            try withProxy(upstreamPort: upstream, configure: { $0.makeRequestID = { "bad\r\nX-Injected: 1" } }) {
                port in
                let client = try RawClient(port: port)
                try client.send("GET /b HTTP/1.1\r\nHost: h\r\n\r\n")
                let response = try client.readResponse()
                #expect(response.status == 200)
                #expect(response.header("X-Request-Id") == nil && response.header("X-Injected") == nil)
            }
        }
    }

    @Test func hopByHopFieldsInOddCaseAreRemovedBothWays() throws {
        let seen = Mutex<String>("")
        let upstream = try ScriptedUpstream { fd in
            let head = ScriptedUpstream.readHead(fd)
            seen.withLock { $0 = head }
            ScriptedUpstream.write(
                fd,
                "HTTP/1.1 201 Created\r\nX-Hidden: 1\r\nx-kept:  k \r\nCONNECTION: X-hidden\r\nKEEP-alive: 5\r\n"
                    + "transfer-ENCODING: chunked\r\nSet-Cookie: a\nSet-Cookie: b\r\n\r\n2\r\nok\r\n0\r\n\r\n")
        }
        try withProxy(upstreamPort: upstream.port) { port in
            let client = try RawClient(port: port)
            try client.send(
                "GET /p HTTP/1.1\r\nHost: example\r\nx-drop: d\r\nconnection: X-DROP, keep-alive\r\n"
                    + "Te: trailers\r\nUPGRADE: websocket\r\nAccept: a\nAccept:  b \r\n\r\n")
            let response = try client.readResponse(bodyExpected: false)
            #expect(response.status == 201)
            #expect(
                response.headers.filter { $0.0 != "Date" }.map { "\($0.0): \($0.1)" } == [
                    "x-kept: k", "Set-Cookie: a", "Set-Cookie: b", "X-Request-Id: generated-id",
                    "Transfer-Encoding: chunked",
                ])
        }
        #expect(
            seen.withLock { $0 }
                == "GET /p HTTP/1.1\r\nAccept: a\r\nAccept: b\r\nHost: example\r\nX-Forwarded-For: 127.0.0.1\r\n"
                + "X-Forwarded-Proto: http\r\nX-Forwarded-Host: example\r\nX-Request-Id: generated-id\r\n\r\n")
    }

    /// A 304's `Content-Length` is the length the 200 would have had (RFC 9110 §8.6: a server may send it, caches
    /// read it): it reaches the client, with no body, and the connection goes on; a 204's is never sent (MUST NOT).
    @Test func aNotModifiedKeepsItsContentLengthAndANoContentDropsIt() throws {
        let upstream = try ScriptedUpstream { fd in
            _ = ScriptedUpstream.readHead(fd)
            ScriptedUpstream.write(fd, "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 1234\r\n\r\n")
            _ = ScriptedUpstream.readHead(fd)
            ScriptedUpstream.write(fd, "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
            _ = ScriptedUpstream.readHead(fd)
            ScriptedUpstream.write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        }
        try withProxy(upstreamPort: upstream.port) { port in
            let client = try RawClient(port: port)
            try client.send("GET /r HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"v1\"\r\n\r\n")
            let notModified = try client.readResponse(bodyExpected: false)
            #expect(notModified.status == 304)
            #expect(notModified.header("Content-Length") == "1234" && notModified.header("ETag") == "\"v1\"")
            try client.send("GET /r HTTP/1.1\r\nHost: h\r\n\r\n")
            let noContent = try client.readResponse(bodyExpected: false)
            #expect(noContent.status == 204 && noContent.header("Content-Length") == nil)
            try client.send("GET /r HTTP/1.1\r\nHost: h\r\n\r\n")
            let ok = try client.readResponse()
            #expect(ok.status == 200 && ok.text == "ok")
        }
    }
}
