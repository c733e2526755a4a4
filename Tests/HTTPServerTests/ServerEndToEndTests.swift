import Dispatch
import Glibc
import Synchronization
import Testing

@testable import HTTPServer

@Suite("HTTP server end to end")
struct ServerEndToEndTests {
    @Test func keepAliveReusesTheConnection() throws {
        let observer = RecordingObserver()
        try withServer(observer: observer) { server, port in
            let client = try RawClient(port: port)
            try client.send("GET /one HTTP/1.1\r\nHost: t\r\n\r\n")
            let first = try client.readResponse()
            try client.send("GET /two?x=1 HTTP/1.1\r\nHost: t\r\n\r\n")
            let second = try client.readResponse()
            #expect(first.status == 200)
            #expect(first.text == "GET /one body=0")
            #expect(second.text == "GET /two?x=1 body=0")
            #expect(first.header("connection") == nil)
            #expect(first.header("date")?.hasSuffix(" GMT") == true)
            #expect(first.header("content-type") == "text/plain; charset=utf-8")
            #expect(observer.opened == 1)
            #expect(server.openConnections == 1)
            #expect(eventually { observer.completed.count == 2 })
            #expect(observer.completed.first?.method == "GET")
            #expect(observer.completed.first?.status == 200)
            #expect(observer.completed.first?.protocolName == "http/1.1")
            #expect((observer.completed.first?.responseBytes ?? 0) > first.body.count)
        }
    }

    @Test func pipelinedResponsesComeBackInOrder() throws {
        try withServer { _, port in
            let client = try RawClient(port: port)
            // The first request is answered last by the handler (from another thread, after 100 ms).
            try client.send(
                "GET /slow?ms=100 HTTP/1.1\r\nHost: t\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\n\r\n"
                    + "POST /c HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc")
            let responses = try (0..<3).map { _ in try client.readResponse() }
            #expect(responses.map(\.text) == ["slow", "GET /b body=0", "POST /c body=3"])
        }
    }

    /// Pipelined requests reach the handler together only when all are safe: an unsafe one (or one behind an unsafe
    /// one) starts once every earlier response is done (RFC 9112 §9.3.2), so a proxy never sends a POST upstream
    /// while the POST before it is unanswered.
    @Test(arguments: [
        (["POST /a", "POST /b"], false), (["GET /a", "POST /b"], false), (["POST /a", "GET /b"], false),
        (["GET /a", "HEAD /b"], true), (["OPTIONS /a", "GET /b"], true),
    ])
    func onlySafePipelinedRequestsOverlap(requests: [String], overlap: Bool) throws {
        let handler = OrderRecordingHandler()
        try withServer(handler: handler) { _, port in
            let client = try RawClient(port: port)
            try client.send(requests.map { "\($0) HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n" }.joined())
            let answers = try requests.map { request in
                try client.readResponse(bodyExpected: !request.hasPrefix("HEAD")).status
            }
            #expect(answers == [200, 200])
        }
        let events = handler.events.withLock { $0 }
        #expect(events.count == 4, "\(events)")
        // Overlapping: /b started before /a answered; else /a answered first.
        #expect((events.firstIndex(of: "start /b")! < events.firstIndex(of: "end /a")!) == overlap, "\(events)")
    }

    @Test func pipeliningBeyondTheInFlightLimitIsThrottledNotDropped() throws {
        try withServer(configure: { $0.maxPipelinedRequests = 2 }) { _, port in
            let client = try RawClient(port: port)
            let requests = (0..<7).map { "GET /r\($0) HTTP/1.1\r\nHost: t\r\n\r\n" }.joined()
            try client.send(requests)
            let texts = try (0..<7).map { _ in try client.readResponse().text }
            #expect(texts == (0..<7).map { "GET /r\($0) body=0" })
        }
    }

    /// A client that pipelines requests for big answers and reads none holds at most
    /// ``HTTPServer/Configuration/maxPipelinedResponseBytes`` of them (plus the answer that crossed it and what the
    /// kernel took): the requests behind wait unparsed. Before, all 16 of ``HTTPServer/Configuration/maxPipelinedRequests``
    /// were answered and queued, 16 answers of any size per connection (a memory attack without credentials). Once
    /// it reads, every answer comes, in order.
    @Test func pipelinedAnswersAreBoundedInBytes() throws {
        let handler = TestHandler()
        try withServer(configure: { $0.maxPipelinedResponseBytes = 1 << 20 }, handler: handler) { server, port in
            let client = try RawClient(port: port, receiveBuffer: 4096)
            let requests = (0..<16).map { "GET /big?bytes=\(1_000_000 + $0) HTTP/1.1\r\nHost: t\r\n\r\n" }
            try client.send(requests.joined())
            // A bounded observation: the count the handler reaches, then holds while the client reads nothing.
            #expect(eventually { handler.started.load(ordering: .sequentiallyConsistent) >= 3 })
            let deadline = monotonicSeconds() + 1
            while monotonicSeconds() < deadline { usleep(20_000) }
            let started = handler.started.load(ordering: .sequentiallyConsistent)
            #expect(started < 12, "requests answered for a client that reads nothing: \(started) of 16")
            let sizes = try (0..<16).map { _ in try client.readResponse(timeout: 10).body.count }
            #expect(sizes == (0..<16).map { 1_000_000 + $0 })
        }
    }

    /// Answers their clients do not take are bounded over the whole process: while the connections hold more than
    /// ``HTTPServer/Configuration/maxUnreadAnswerBytes`` unwritten, a new request gets a short 503 (counted
    /// `answer_memory`), not another answer to hold. Before, each connection held its answer (a scrape of a large
    /// /metrics): 100 clients that asked and never read made the process hold 1.5 GB (a web-port probe). Once the
    /// answers are read, requests are served again: the count went back to nothing.
    @Test func unreadAnswersAreBoundedOverTheProcess() throws {
        let observer = RecordingObserver()
        try withServer(configure: { $0.maxUnreadAnswerBytes = 1 << 20 }, observer: observer) { _, port in
            let reader = try RawClient(port: port, receiveBuffer: 4096)
            try reader.send("GET /big?bytes=16000000 HTTP/1.1\r\nHost: t\r\n\r\n")
            // The answer is written as far as the kernel takes it; the rest is held for the reader.
            var refused: ClientResponse?
            #expect(
                eventually {
                    guard let client = try? RawClient(port: port) else { return false }
                    try? client.send("GET /small HTTP/1.1\r\nHost: t\r\n\r\n")
                    guard let answer = try? client.readResponse(), answer.status == 503 else { return false }
                    refused = answer
                    return true
                })
            #expect(refused?.text == "the server holds too many answers its clients have not read; retry later\n")
            #expect(refused?.header("retry-after") == "1")
            #expect(observer.errors.contains("answer_memory"))
            // So does an HTTP/2 stream.
            let h2 = try HTTP2Client(port: port)
            let answer = try h2.response(h2.request("GET", "/small"))
            #expect(answer.status == 503 && answer.text.hasPrefix("the server holds too many answers"))
            #expect(try reader.readResponse(timeout: 20).body.count == 16_000_000)
            #expect(
                eventually {
                    guard let client = try? RawClient(port: port) else { return false }
                    try? client.send("GET /small HTTP/1.1\r\nHost: t\r\n\r\n")
                    return (try? client.readResponse())?.status == 200
                })
        }
    }

    @Test func headHasTheContentLengthOfGetButNoBody() throws {
        try withServer { _, port in
            let client = try RawClient(port: port)
            try client.send("GET /big?bytes=1234 HTTP/1.1\r\nHost: t\r\n\r\n")
            let get = try client.readResponse()
            try client.send("HEAD /big?bytes=1234 HTTP/1.1\r\nHost: t\r\n\r\n")
            let head = try client.readResponse(bodyExpected: false)
            // If the HEAD response had carried a body, this response would not parse.
            try client.send("GET /after HTTP/1.1\r\nHost: t\r\n\r\n")
            let after = try client.readResponse()
            #expect(get.body.count == 1234)
            #expect(head.status == 200)
            #expect(head.header("content-length") == "1234")
            #expect(after.text == "GET /after body=0")
        }
    }

    @Test func connectionCloseIsHonoured() throws {
        try withServer { _, port in
            let client = try RawClient(port: port)
            try client.send("GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            let response = try client.readResponse()
            #expect(response.status == 200)
            #expect(response.header("connection") == "close")
            #expect(client.waitForClose())
        }
    }

    @Test func http10ClosesUnlessKeepAliveIsRequested() throws {
        try withServer { _, port in
            let plain = try RawClient(port: port)
            try plain.send("GET /old HTTP/1.0\r\n\r\n")
            let response = try plain.readResponse()
            #expect(response.text == "GET /old body=0")
            #expect(response.header("connection") == "close")
            #expect(plain.waitForClose())

            let keepAlive = try RawClient(port: port)
            try keepAlive.send("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            let first = try keepAlive.readResponse()
            #expect(first.header("connection") == "keep-alive")
            try keepAlive.send("GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            #expect(try keepAlive.readResponse().text == "GET /b body=0")
        }
    }

    @Test func slowHeaderSenderGets408AtTheHeaderTimeout() throws {
        let observer = RecordingObserver()
        try withServer(configure: { $0.headerReadTimeout = .milliseconds(300) }, observer: observer) { server, port in
            let client = try RawClient(port: port)
            let start = monotonicSeconds()
            try client.send("GET / HTTP/1.1\r\nHost: t\r\n")
            try client.send("X-Slow: 1\r\n")  // still no end of head
            let response = try client.readResponse(timeout: 5)
            let elapsed = monotonicSeconds() - start
            #expect(response.status == 408)
            #expect(response.text == "request header read timeout\n")
            #expect(response.header("connection") == "close")
            #expect(elapsed >= 0.25 && elapsed < 3, "cut after \(elapsed) s")
            #expect(client.waitForClose())
            client.close()  // ends the server's lingering close at once
            #expect(eventually { server.openConnections == 0 })
            #expect(observer.errors.contains("header_timeout"))
        }
    }

    @Test func idleKeepAliveConnectionIsClosedAtTheIdleTimeout() throws {
        let observer = RecordingObserver()
        try withServer(configure: { $0.idleTimeout = .milliseconds(200) }, observer: observer) { server, port in
            let client = try RawClient(port: port)
            try client.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try client.readResponse().status == 200)
            #expect(client.waitForClose(timeout: 5))
            #expect(eventually { server.openConnections == 0 })
            #expect(observer.errors.contains("idle_timeout"))
        }
    }

    /// The idle deadline is pushed back by every request (the heap only records a later deadline, and moves the
    /// connection when its old place comes up): a connection in use for several idle timeouts stays open, and closes
    /// one idle timeout after its last response, not at a place recorded earlier.
    @Test func connectionInUseOutlivesTheIdleTimeoutAndClosesOneTimeoutAfterItsLastRequest() throws {
        let observer = RecordingObserver()
        try withServer(configure: { $0.idleTimeout = .milliseconds(1000) }, observer: observer) { server, port in
            let client = try RawClient(port: port)
            var last = monotonicSeconds()
            // A request every ~0.1 s, well within the idle timeout, for 2.5 timeouts.
            let requests = try paced(for: 2.5) { () throws in
                try client.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(try client.readResponse().status == 200)
                last = monotonicSeconds()
            }
            #expect(requests >= 5)
            #expect(!observer.errors.contains("idle_timeout"), "closed while in use")
            #expect(client.waitForClose(timeout: 5))
            let idle = monotonicSeconds() - last
            #expect(idle >= 0.95 && idle < 5, "closed \(idle) s after the last response (idle timeout 1 s)")
            #expect(eventually { server.openConnections == 0 })
            #expect(observer.errors.contains("idle_timeout"))
        }
    }

    /// The header timeout is per request head: a client whose writes each end one head and begin the next (pipelining
    /// split across segments) is not cut while every head completes in time, however long it keeps going.
    @Test func headerTimeoutIsPerHeadWhenWritesSplitPipelinedHeads() throws {
        let observer = RecordingObserver()
        try withServer(configure: { $0.headerReadTimeout = .milliseconds(1000) }, observer: observer) { _, port in
            let client = try RawClient(port: port)
            let head = "GET / HTTP/1.1\r\nHost: t\r\n\r\n"
            let split = head.index(head.startIndex, offsetBy: 10)
            try client.send(String(head[..<split]))
            // Each head completes ~0.1 s after it began (well within the timeout), for 2.5 timeouts: the end of one
            // head and the beginning of the next in one write.
            let requests = try paced(for: 2.5) { () throws in
                try client.send(String(head[split...]) + String(head[..<split]))
                #expect(try client.readResponse().status == 200)
            }
            #expect(requests >= 5)
            #expect(!observer.errors.contains("header_timeout"), "cut after \(requests) requests")
        }
    }

    @Test func slowBodySenderGets408AtTheBodyTimeout() throws {
        let observer = RecordingObserver()
        try withServer(configure: { $0.bodyReadTimeout = .milliseconds(300) }, observer: observer) { _, port in
            let client = try RawClient(port: port)
            try client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
            let response = try client.readResponse(timeout: 5)
            #expect(response.status == 408)
            #expect(response.text == "request body read timeout\n")
            #expect(client.waitForClose())
            #expect(observer.errors.contains("body_timeout"))
        }
    }

    @Test func peerThatStopsReadingIsDroppedAtTheWriteStallTimeout() throws {
        let observer = RecordingObserver()
        try withServer(configure: { $0.writeStallTimeout = .milliseconds(300) }, observer: observer) { server, port in
            let client = try RawClient(port: port)
            var small: Int32 = 4096
            setsockopt(client.fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
            try client.send("GET /big?bytes=\(64 * 1024 * 1024) HTTP/1.1\r\nHost: t\r\n\r\n")
            // The client never reads; the server must give up instead of holding the response forever.
            #expect(eventually { observer.opened == 1 })
            #expect(eventually(timeout: 10) { server.openConnections == 0 })
            #expect(observer.errors.contains("write_stall"))
        }
    }

    @Test func maxConnectionsIsHonoured() throws {
        try withServer(configure: { $0.maxConnections = 2 }) { server, port in
            // Two connections with a request under way (each answered after 1 s) fill the cap.
            let first = try RawClient(port: port)
            let second = try RawClient(port: port)
            for client in [first, second] { try client.send("GET /slow?ms=1000 HTTP/1.1\r\nHost: t\r\n\r\n") }
            // The kernel completes the third handshake (backlog), but the server does not accept it.
            let third = try RawClient(port: port)
            try third.send("GET /third HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(!third.hasInput(within: 0.3))
            #expect(server.openConnections == 2)

            // Once a connection is idle (its answer written), it makes room for the third.
            #expect(try first.readResponse(timeout: 5).text == "slow")
            #expect(try second.readResponse(timeout: 5).text == "slow")
            let response = try third.readResponse(timeout: 5)
            #expect(response.text == "GET /third body=0")
            #expect(eventually { server.openConnections == 2 })
        }
    }

    @Test func bodyOverTheLimitGets413() throws {
        let observer = RecordingObserver()
        try withServer(configure: { $0.maxBodySize = 1000 }, observer: observer) { _, port in
            let declared = try RawClient(port: port)
            try declared.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n")
            try declared.send([UInt8](repeating: 0x61, count: 2000))
            let response = try declared.readResponse()
            #expect(response.status == 413)
            #expect(response.text == "request body larger than 1000 bytes\n")
            #expect(response.header("connection") == "close")
            #expect(declared.waitForClose())

            let chunked = try RawClient(port: port)
            try chunked.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
            try chunked.send("258\r\n" + String(repeating: "b", count: 600) + "\r\n")
            try chunked.send("258\r\n" + String(repeating: "b", count: 600) + "\r\n")
            #expect(try chunked.readResponse().status == 413)
            #expect(eventually { observer.errors.filter { $0 == "too_large" }.count == 2 })
        }
    }

    @Test func malformedRequestGets400AndTheConnectionCloses() throws {
        try withServer { _, port in
            let client = try RawClient(port: port)
            try client.send("GET / HTTP/1.1\r\nHost: t\r\nX-Bad : x\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n")
            let response = try client.readResponse()
            #expect(response.status == 400)
            #expect(response.reason == "Bad Request")
            #expect(response.text == "whitespace between header name and colon\n")
            #expect(client.waitForClose())
        }
    }

    @Test func errorAfterGoodPipelinedRequestsKeepsTheirResponses() throws {
        try withServer { _, port in
            let client = try RawClient(port: port)
            try client.send("GET /ok HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/9.9\r\nHost: t\r\n\r\n")
            #expect(try client.readResponse().text == "GET /ok body=0")
            let error = try client.readResponse()
            #expect(error.status == 505)
            #expect(client.waitForClose())
        }
    }

    @Test func clientVanishingMidRequestLeavesNoConnection() throws {
        let observer = RecordingObserver()
        try withServer(observer: observer) { server, port in
            do {
                let client = try RawClient(port: port)
                try client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\npartial")
                #expect(eventually { server.openConnections == 1 })
            }  // the client socket is closed here
            #expect(eventually { server.openConnections == 0 })
            #expect(eventually { observer.closed == 1 })
            #expect(observer.errors.contains("incomplete_request"))
        }
    }

    @Test func halfClosedPeerStillGetsItsResponses() throws {
        try withServer { server, port in
            let client = try RawClient(port: port)
            try client.send("GET /slow?ms=50 HTTP/1.1\r\nHost: t\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\n\r\n")
            client.shutdownWrite()
            #expect(try client.readResponse().text == "slow")
            let last = try client.readResponse()
            #expect(last.text == "GET /b body=0")
            #expect(last.header("connection") == "close")
            #expect(client.waitForClose())
            #expect(eventually { server.openConnections == 0 })
        }
    }

    @Test func chunkedRequestBodyAndExpectContinue() throws {
        try withServer { _, port in
            let client = try RawClient(port: port)
            try client.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
            try client.send("4\r\nWiki\r\n")
            try client.send("5\r\npedia\r\n0\r\n\r\n")
            #expect(try client.readResponse().text == "Wikipedia")

            try client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
            let interim = try client.readResponse(bodyExpected: false)
            #expect(interim.status == 100)
            try client.send("data")
            #expect(try client.readResponse().text == "data")
        }
    }

    /// A request with `Expect: 100-continue` pipelined behind one not answered yet gets its 100 after that answer
    /// (RFC 9110 §10.1.1). Before, no 100 was ever sent: the client waited, and got 408 at the body timeout.
    @Test func aPipelinedExpectContinueGetsItsContinueAfterTheEarlierAnswer() throws {
        try withServer { _, port in
            let client = try RawClient(port: port)
            try client.send(
                "GET /slow?ms=150 HTTP/1.1\r\nHost: t\r\n\r\n"
                    + "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
            #expect(try client.readResponse().text == "slow")
            let interim = try client.readResponse(bodyExpected: false, timeout: 3)
            #expect(interim.status == 100)
            try client.send("data")
            #expect(try client.readResponse().text == "data")
        }
    }

    @Test func largeResponseIsWrittenCompletely() throws {
        try withServer { _, port in
            let client = try RawClient(port: port)
            let size = 4 * 1024 * 1024
            try client.send("GET /big?bytes=\(size) HTTP/1.1\r\nHost: t\r\n\r\nGET /next HTTP/1.1\r\nHost: t\r\n\r\n")
            let big = try client.readResponse()
            #expect(big.body.count == size)
            #expect(big.body.allSatisfy { $0 == UInt8(ascii: "x") })
            #expect(try client.readResponse().text == "GET /next body=0")
        }
    }

    @Test func serverManagedHeadersCannotBeOverriddenOrInjected() throws {
        let handler = HTTPClosureHandler { _, respond in
            respond(
                HTTPResponse(
                    status: 201,
                    headers: [
                        "Content-Length": "999", "Transfer-Encoding": "chunked", "X-Evil": "a\r\nInjected: 1",
                        "X-Fine": "yes", "Date": "custom",
                    ], body: Array("created".utf8)))
        }
        try withServer(handler: handler) { _, port in
            let client = try RawClient(port: port)
            try client.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            let response = try client.readResponse()
            #expect(response.status == 201)
            #expect(response.reason == "Created")
            #expect(response.header("content-length") == "7")
            #expect(response.header("transfer-encoding") == nil)
            #expect(response.header("x-evil") == nil && response.header("injected") == nil)
            #expect(response.header("x-fine") == "yes")
            #expect(response.header("date") == "custom")
            #expect(response.text == "created")
        }
    }

    /// A connection's slot in its loop is reused by the next connection, with a new generation in its id: a response
    /// given after its client left goes nowhere, not to the request with the same number on the slot's new connection.
    @Test func aLateResponseForAClosedConnectionIsNotDeliveredToTheOneInItsSlot() throws {
        let held = Mutex<[String: HTTPResponder]>([:])
        let handler = HTTPClosureHandler { request, respond in held.withLock { $0[request.path] = respond } }
        let observer = RecordingObserver()
        try withServer(configure: { $0.eventLoopCount = 1 }, handler: handler, observer: observer) { _, port in
            let gone = try RawClient(port: port)
            try gone.send("GET /gone HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(eventually { held.withLock { $0["/gone"] != nil } })
            // A reset (not a FIN, after which the answer would still be sent) closes the connection on the server.
            var reset = linger(l_onoff: 1, l_linger: 0)
            setsockopt(gone.fd, SOL_SOCKET, SO_LINGER, &reset, socklen_t(MemoryLayout<linger>.size))
            gone.close()
            #expect(eventually { observer.closed == 1 })
            // The next connection takes the freed slot; its first request has the same request number (0).
            let next = try RawClient(port: port)
            try next.send("GET /next HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(eventually { held.withLock { $0["/next"] != nil } })
            held.withLock { $0["/gone"]! }(HTTPResponse(status: 200, text: "stale"))
            #expect(!next.hasInput(within: 0.3))
            held.withLock { $0["/next"]! }(HTTPResponse(status: 200, text: "mine"))
            #expect(try next.readResponse().text == "mine")
        }
    }

    @Test func noContentResponseHasNoBodyOrLength() throws {
        let handler = HTTPClosureHandler { _, respond in
            respond(HTTPResponse(status: 204, body: Array("ignored".utf8)))
        }
        try withServer(handler: handler) { _, port in
            let client = try RawClient(port: port)
            try client.send("GET / HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n")
            let first = try client.readResponse()
            #expect(first.status == 204)
            #expect(first.header("content-length") == nil)
            #expect(try client.readResponse().status == 204)
        }
    }

    @Test func gracefulShutdownLetsAnInFlightResponseComplete() throws {
        let handler = TestHandler()
        var configuration = HTTPServer.Configuration(listenAddresses: ["127.0.0.1:0"])
        configuration.eventLoopCount = 2
        let server = HTTPServer(configuration: configuration, handler: handler, logger: quietLogger)
        try server.start()
        let port = server.boundAddresses[0].port

        let idle = try RawClient(port: port)
        try idle.send("GET /idle HTTP/1.1\r\nHost: t\r\n\r\n")
        _ = try idle.readResponse()

        let busy = try RawClient(port: port)
        try busy.send("GET /slow?ms=400 HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(eventually { handler.started.load(ordering: .sequentiallyConsistent) == 2 })

        let finished = Atomic<Bool>(false)
        let start = monotonicSeconds()
        server.shutdown(deadline: .seconds(5)) { finished.store(true, ordering: .sequentiallyConsistent) }

        // The idle keep-alive connection is closed at once, and new connections are refused.
        #expect(idle.waitForClose(timeout: 2))
        #expect(eventually { (try? RawClient(port: port)) == nil })
        // The in-flight request still gets its response, marked as the last one.
        let response = try busy.readResponse()
        #expect(response.text == "slow")
        #expect(response.header("connection") == "close")
        #expect(busy.waitForClose())
        #expect(eventually { finished.load(ordering: .sequentiallyConsistent) })
        #expect(monotonicSeconds() - start < 4)
        #expect(server.openConnections == 0)
        #expect(!server.isRunning)
    }

    @Test func shutdownDeadlineCutsAHandlerThatNeverAnswers() throws {
        let handler = HTTPClosureHandler { _, _ in }  // never responds
        var configuration = HTTPServer.Configuration(listenAddresses: ["127.0.0.1:0"])
        configuration.eventLoopCount = 1
        let observer = RecordingObserver()
        let server = HTTPServer(configuration: configuration, handler: handler, observer: observer, logger: quietLogger)
        try server.start()
        let client = try RawClient(port: server.boundAddresses[0].port)
        try client.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(eventually { observer.opened == 1 })
        let start = monotonicSeconds()
        server.shutdown(deadline: .milliseconds(200))
        let elapsed = monotonicSeconds() - start
        #expect(elapsed >= 0.15 && elapsed < 3, "shutdown took \(elapsed) s")
        #expect(client.waitForClose())
        #expect(observer.errors.contains("shutdown"))
        #expect(observer.closed == 1)
    }

    @Test func asyncShutdownAndRepeatedShutdownAreHarmless() async throws {
        var configuration = HTTPServer.Configuration(listenAddresses: ["127.0.0.1:0"])
        configuration.eventLoopCount = 1
        let server = HTTPServer(configuration: configuration, handler: TestHandler(), logger: quietLogger)
        try server.start()
        #expect(server.isRunning)
        await server.shutdown(deadline: .seconds(1))
        #expect(!server.isRunning)
        await server.shutdown(deadline: .seconds(1))
        #expect(throws: HTTPServerError.self) { try server.start() }
    }

    @Test(.enabled(if: ipv6LoopbackAvailable)) func ipv6LoopbackListener() throws {
        try withServer(configure: { $0.listenAddresses = ["[::1]:0", "127.0.0.1:0"] }) { server, _ in
            let addresses = server.boundAddresses
            #expect(addresses.count == 2)
            #expect(addresses[0].isIPv6 && addresses[0].host == "::1")
            #expect(addresses[0].description == "[::1]:\(addresses[0].port)")
            let client = try RawClient(host: "::1", port: addresses[0].port, ipv6: true)
            try client.send("GET /v6 HTTP/1.1\r\nHost: [::1]\r\n\r\n")
            #expect(try client.readResponse().text == "GET /v6 body=0")
            let v4 = try RawClient(port: addresses[1].port)
            try v4.send("GET /v4 HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try v4.readResponse().text == "GET /v4 body=0")
        }
    }

    @Test func wildcardAddressAcceptsIPv4() throws {
        try withServer(configure: { $0.listenAddresses = [":0"] }) { server, port in
            #expect(port > 0)
            let client = try RawClient(port: port)
            try client.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try client.readResponse().status == 200)
            _ = server
        }
    }

    @Test func bindingABusyPortFailsWithAClearError() throws {
        try withServer { _, port in
            let second = HTTPServer(
                configuration: .init(listenAddresses: ["127.0.0.1:\(port)"]), handler: TestHandler(),
                logger: quietLogger)
            let error = try #require(throws: HTTPServerError.self) { try second.start() }
            #expect(error.kind == .bindFailed)
            #expect(error.errno == EADDRINUSE)
            #expect(error.description.contains("127.0.0.1:\(port)"))
            #expect(error.description.contains("Address already in use"))
            #expect(!second.isRunning)
        }
    }

    @Test func invalidConfigurationIsRejected() {
        var configuration = HTTPServer.Configuration(listenAddresses: ["nonsense"])
        let server = HTTPServer(configuration: configuration, handler: TestHandler(), logger: quietLogger)
        #expect(throws: HTTPServerError.self) { try server.start() }
        configuration = .init(listenAddresses: ["127.0.0.1:0"])
        configuration.maxConnections = 0
        let other = HTTPServer(configuration: configuration, handler: TestHandler(), logger: quietLogger)
        let error = #expect(throws: HTTPServerError.self) { try other.start() }
        #expect(error?.kind == .invalidConfiguration)
    }
}

/// Answers each request 100 ms later from another thread, noting when each started and when it was answered.
final class OrderRecordingHandler: HTTPHandler {
    let events = Mutex<[String]>([])

    func handle(_ request: consuming HTTPRequest, respond: HTTPResponder) {
        let path = request.path
        events.withLock { $0.append("start \(path)") }
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(100)) {
            self.events.withLock { $0.append("end \(path)") }
            respond(HTTPResponse(status: 200, text: "ok"))
        }
    }
}
