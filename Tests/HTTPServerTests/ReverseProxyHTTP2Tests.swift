import CNghttp2
import Glibc
import Synchronization
import Testing

@testable import HTTPServer

/// Streamed responses over HTTP/2 (h2c with prior knowledge): the reverse proxy in front of HTTP/2 clients, and a
/// handler that streams straight to a slow reader.
@Suite("HTTP/2 streamed responses")
struct ReverseProxyHTTP2Tests {
    /// The byte at `offset` of the test bodies: a pattern that shows a piece lost, repeated or out of order.
    static func patternByte(_ offset: Int) -> UInt8 { UInt8(truncatingIfNeeded: offset % 251 &+ offset >> 12) }

    // MARK: - Through the reverse proxy

    @Test func aWholeBodyTheWatcherRewritesIsSentRewritten() throws {
        let observer = RecordingProxyObserver(watcher: { RewritingWatcher() })
        try withServer { _, upstream in
            try withProxyServer(upstreamPort: upstream, observer: observer) { _, port in
                let client = try HTTP2Client(port: port)
                let echo = try client.response(client.request("POST", "/echo", body: Array("abc".utf8)))
                #expect(echo.status == 200 && echo.text == "rewritten:abc")
                let long = Array(repeating: UInt8(ascii: "x"), count: 100)  // over the hold limit: unchanged
                #expect(try client.response(client.request("POST", "/echo", body: long)).body == long)
            }
        }
        #expect(eventually { observer.all.count == 2 })
        #expect(observer.all.first.map { $0.request.body } == Array("rewritten:abc".utf8))
    }

    /// Exchanges that waited for an upstream connection are let go once they end: the pool kept each one it took
    /// from its queue (its request, its client's connection with the HTTP/2 session, the tap) until 64 had been
    /// taken, and a replaced proxy's pool, never run again, kept them for good (RSS grew ~0.5 MB per reload that
    /// changed the upstream under h2c traffic: a reload probe).
    @Test func exchangesThatWaitedForAConnectionAreLetGo() throws {
        let observer = TokenObserver()
        try withServer { _, upstream in
            var configuration = ReverseProxy.Configuration(
                upstream: try UpstreamAddress.resolve(host: "127.0.0.1", port: upstream), eventLoopCount: 2,
                makeRequestID: { "id" })
            configuration.maxConnections = 2
            try withServer(handler: ReverseProxy(configuration: configuration, observer: observer)) { _, port in
                let client = try HTTP2Client(port: port)
                // One connection for the client's loop: two of the three streams wait.
                let ids = (0..<3).map { _ in client.request("GET", "/slow?ms=50") }
                for id in ids { #expect(try client.response(id).status == 200) }
                #expect(eventually { observer.ended.load(ordering: .relaxed) == 3 })
                #expect(eventually { observer.liveTokens == 0 }, "\(observer.liveTokens) exchanges still held")
            }
        }
    }

    @Test func smallRequestsHEADAndBodiesPassThrough() throws {
        let observer = RecordingProxyObserver()
        let payload = (0..<3_000_000).map(Self.patternByte)
        try withServer { _, upstream in
            try withProxy(upstreamPort: upstream, observer: observer) { port in
                let client = try HTTP2Client(port: port)
                let get = try client.response(client.request("GET", "/hello?x=1"))
                #expect(get.status == 200 && get.errorCode == 0)
                #expect(get.text == "GET /hello?x=1 body=0")
                #expect(get.header("content-length") == "21")
                #expect(get.header("x-request-id") == "generated-id")
                let head = try client.response(client.request("HEAD", "/big?bytes=100"))
                #expect(head.status == 200 && head.errorCode == 0 && head.body.isEmpty)
                #expect(head.header("content-length") == "100")
                // 3 MB up and back down (the upstream echoes it), well past every window and threshold.
                let echo = try client.response(client.request("POST", "/echo", body: payload), timeout: 30)
                #expect(echo.status == 200 && echo.errorCode == 0)
                #expect(echo.header("content-length") == "3000000")
                #expect(echo.body.count == payload.count)
                #expect(echo.body == payload)
            }
        }
        #expect(eventually { observer.all.count == 3 })
        #expect(observer.all.allSatisfy { $0.status == 200 && $0.failure == nil && !$0.cancelled })
        #expect(observer.all.last?.responseBodyBytes == payload.count)
    }

    /// A 304's `Content-Length` (the 200's length, RFC 9110 §8.6) reaches an HTTP/2 client too, without DATA.
    @Test func aNotModifiedKeepsItsContentLength() throws {
        let upstream = try ScriptedUpstream { fd in
            _ = ScriptedUpstream.readHead(fd)
            ScriptedUpstream.write(fd, "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 1234\r\n\r\n")
        }
        try withProxy(upstreamPort: upstream.port) { port in
            let client = try HTTP2Client(port: port)
            let response = try client.response(client.request("GET", "/r", headers: [("if-none-match", "\"v1\"")]))
            #expect(response.status == 304 && response.errorCode == 0 && response.body.isEmpty)
            #expect(response.header("content-length") == "1234" && response.header("etag") == "\"v1\"")
        }
    }

    /// What goes upstream is what an HTTP/1.1 request carries: the cookie fields an HTTP/2 client sends apart are
    /// one `cookie` line joined with "; " (RFC 9113 §8.2.3); a `host` that differs from `:authority`, two of them, or
    /// one that is no host, is refused and never reaches the upstream (§8.3.1).
    @Test func cookiesAreJoinedAndAHostOtherThanTheAuthorityIsRefused() throws {
        let heads = Mutex<[String]>([])
        let upstream = try ScriptedUpstream { fd in
            let head = ScriptedUpstream.readHead(fd)
            heads.withLock { $0.append(head) }
            ScriptedUpstream.write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        }
        let observer = RecordingProxyObserver()
        try withProxy(upstreamPort: upstream.port, observer: observer) { port in
            let client = try HTTP2Client(port: port)
            let refused = [
                [("host", "internal-admin.example")], [("host", "test"), ("host", "test")], [("host", "a b")],
                [("host", "test@evil")],
            ]
            for fields in refused {
                // 400 from the server, or a stream reset from nghttp2 (which checks a host's characters itself).
                let response = try client.response(client.request("GET", "/x", headers: fields))
                #expect(response.status == 400 || (response.status == 0 && response.errorCode != 0), "\(fields)")
            }
            let cookies = try client.response(
                client.request(
                    "GET", "/cookies",
                    headers: [
                        ("cookie", "a=1"), ("x-other", "o"), ("cookie", "b=2"), ("host", "TEST"), ("cookie", "c=3"),
                    ]))
            #expect(cookies.status == 200 && cookies.text == "ok")
        }
        let head = try #require(heads.withLock { $0.first })
        #expect(heads.withLock { $0.count } == 1)
        let lines = head.split(separator: "\r\n").map(String.init)
        #expect(lines.first == "GET /cookies HTTP/1.1")
        #expect(lines.filter { $0.lowercased().hasPrefix("cookie:") } == ["cookie: a=1; b=2; c=3"])
        #expect(lines.contains("Host: TEST"))
    }

    /// An upstream's 103 reaches an HTTP/2 client as a non-final HEADERS frame before the response (RFC 9113 §8.1).
    @Test func interimResponsesArePassedOnAsNonFinalHeaders() throws {
        let upstream = try ScriptedUpstream { fd in
            _ = ScriptedUpstream.readHead(fd)
            ScriptedUpstream.write(
                fd,
                "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nKeep-Alive: 5\r\n\r\n"
                    + "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal")
        }
        try withProxy(upstreamPort: upstream.port, observer: RecordingProxyObserver()) { port in
            let client = try HTTP2Client(port: port)
            let response = try client.response(client.request("GET", "/hints"))
            #expect(response.status == 200 && response.errorCode == 0 && response.text == "final")
            #expect(response.headers.filter { $0.0 == ":status" }.map(\.1) == ["103", "200"])
            #expect(response.header("link") == "</a.css>; rel=preload")
            #expect(response.header("keep-alive") == nil)
        }
    }

    @Test func largeResponseArrivesWhole() throws {
        try withServer { _, upstream in
            try withProxy(upstreamPort: upstream) { port in
                let client = try HTTP2Client(port: port)
                let big = try client.response(client.request("GET", "/big?bytes=3000000"), timeout: 30)
                #expect(big.status == 200 && big.errorCode == 0)
                #expect(big.header("content-length") == "3000000")
                #expect(big.body.count == 3_000_000)
                let allX = big.body.allSatisfy { $0 == UInt8(ascii: "x") }
                #expect(allX)
            }
        }
    }

    /// Proxied answers to a peer whose windows are shut stop their upstreams once the connection holds its bound of
    /// unsent bytes (streams past it wait, not forwarded); when the peer opens its windows the upstreams are read
    /// again and every answer arrives whole.
    @Test func upstreamsPausedForAShutWindowResumeWhenItOpens() throws {
        let observer = RecordingProxyObserver()
        try withServer { _, upstream in
            try withProxy(upstreamPort: upstream, observer: observer) { port in
                let client = try HTTP2Client(port: port, initialWindowSize: 0)
                let ids = (0..<20).map { _ in client.request("GET", "/big?bytes=400000") }
                try client.run { client.responses[ids[0]]?.status == 200 }
                _ = try? client.run(timeout: 0.5) { false }
                client.settings(initialWindowSize: 65535)
                try client.run(timeout: 30) { ids.allSatisfy { client.responses[$0]?.closed == true } }
                for id in ids {
                    let response = try #require(client.responses[id])
                    #expect(response.status == 200 && response.errorCode == 0 && response.body.count == 400_000)
                }
            }
        }
        #expect(eventually { observer.all.count == 20 })
        #expect(observer.all.allSatisfy { $0.status == 200 && $0.failure == nil && !$0.cancelled })
    }

    @Test func errorBeforeTheHeadIsAnsweredWhole() throws {
        var freePort = 0
        try withServer { _, port in freePort = port }
        try withProxy(upstreamPort: freePort) { port in
            let client = try HTTP2Client(port: port)
            let response = try client.response(client.request("GET", "/"))
            #expect(response.status == 502 && response.errorCode == 0)
            #expect(response.text == "upstream refused the connection\n")
            #expect(response.header("x-request-id") == "generated-id")
        }
    }

    @Test func chunkedPiecesReachTheClientOneByOne() throws {
        // Each event (then the last chunk) only after the client saw the previous one.
        let released = Gate()
        let upstream = try ScriptedUpstream.eventStream(gate: released)
        let observer = RecordingProxyObserver()
        try withProxy(upstreamPort: upstream.port, observer: observer) { port in
            let client = try HTTP2Client(port: port)
            let id = client.request("GET", "/events")
            for index in 0..<3 {
                try client.run { client.responses[id]?.text.hasSuffix("data: \(index)\n\n") == true }
                #expect(client.responses[id]?.closed == false)
                released.open(index + 1)
            }
            let response = try client.response(id)
            #expect(response.status == 200 && response.errorCode == 0)
            #expect(response.header("content-type") == "text/event-stream")
            #expect(response.header("content-length") == nil && response.header("transfer-encoding") == nil)
            #expect(response.text == "data: 0\n\ndata: 1\n\ndata: 2\n\n")
        }
        #expect(eventually { observer.all.first?.status == 200 })
        #expect(observer.all.first?.failure == nil)
    }

    @Test func twoStreamsOnOneConnectionStreamTogether() throws {
        // Piece `index` of either response only once the client has seen piece `index - 1` of both.
        let released = Gate()
        let upstream = try ScriptedUpstream(connections: 2) { fd, _ in
            let name = ScriptedUpstream.readHead(fd).hasPrefix("GET /a ") ? "a" : "b"
            ScriptedUpstream.stepped(fd, pieces: (0..<3).map { "\(name)\($0);" }, gate: released)
        }
        let observer = RecordingProxyObserver()
        try withProxy(upstreamPort: upstream.port, observer: observer) { port in
            let client = try HTTP2Client(port: port)
            let streams = [("a", client.request("GET", "/a")), ("b", client.request("GET", "/b"))]
            for index in 0..<3 {
                try client.run {
                    streams.allSatisfy { name, id in client.responses[id]?.text.hasSuffix("\(name)\(index);") == true }
                }
                released.open(index + 1)
            }
            for (name, id) in streams {
                let response = try client.response(id)
                #expect(response.status == 200 && response.errorCode == 0)
                #expect(response.text == "\(name)0;\(name)1;\(name)2;")
            }
        }
        #expect(eventually { observer.all.count == 2 })
        #expect(observer.all.allSatisfy { $0.status == 200 && $0.failure == nil && !$0.cancelled })
        #expect(observer.opened.load(ordering: .relaxed) == 2)
    }

    @Test func upstreamClosingMidBodyResetsTheStream() throws {
        let upstream = try ScriptedUpstream.answering("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
        let observer = RecordingProxyObserver()
        try withProxy(upstreamPort: upstream.port, observer: observer) { port in
            let client = try HTTP2Client(port: port)
            let response = try client.response(client.request("GET", "/"))
            #expect(response.status == 200)
            #expect(response.header("content-length") == "100")
            // RST_STREAM, not END_STREAM: the client knows the body is incomplete.
            #expect(response.errorCode == NGHTTP2_INTERNAL_ERROR.rawValue)
            #expect(response.body.count < 100)
            // Only the stream is cut: the connection goes on.
            _ = try? client.run(timeout: 0.2) { false }
            #expect(!client.connectionClosed && !client.goAwayReceived)
        }
        #expect(eventually { observer.all.first?.failure == .reset })
    }

    @Test func clientResetCancelsTheUpstreamRequest() throws {
        let (upstream, upstreamSawClose) = try endlessUpstream()
        let observer = RecordingProxyObserver()
        try withProxy(upstreamPort: upstream.port, observer: observer) { port in
            let client = try HTTP2Client(port: port)
            let id = client.request("GET", "/")
            try client.run { client.responses[id]?.text == "hello" }
            client.reset(id)
            try client.run { true }
            // (A closure inside `#expect` next to other closures here crashes the 6.3 compiler: computed first.)
            let upstreamClosed = eventually { upstreamSawClose.isSet }
            #expect(upstreamClosed)
            #expect(!client.connectionClosed)
        }
        #expect(eventually { observer.all.first?.cancelled == true })
        #expect(observer.all.count == 1)
    }

    /// Rapid reset through the proxy: requests reset as soon as they are sent (HEADERS and RST_STREAM in one write, or
    /// RST_STREAM once the request went upstream) do not make the proxy open an upstream connection per request. A
    /// connection whose request was not sent goes back to the pool; one whose request was sent keeps its place while
    /// the upstream answers (read and dropped), then serves the next. Before, each reset closed its upstream
    /// connection and freed its place at once: 2 reconnecting clients made the proxy open 35,263 upstream connections
    /// in 10 s (here: one per reset request).
    @Test func resetRequestsDoNotChurnUpstreamConnections() throws {
        let observer = RecordingProxyObserver()
        try withServer { _, upstream in
            try withProxy(upstreamPort: upstream, observer: observer, configure: { $0.maxConnections = 4 }) { port in
                // HEADERS (GET /slow?ms=200) and RST_STREAM(CANCEL) in one write, 50 times.
                let raw = try RawClient(port: port)
                let block: [UInt8] =
                    [0x82, 0x86, 0x04, 12] + Array("/slow?ms=200".utf8) + [0x01, 0x01] + Array("t".utf8)
                var frames = HTTP2Session.clientPreface + HTTP2FloodTests.frame(4) + HTTP2FloodTests.frame(4, flags: 1)
                for index in 0..<50 {
                    let stream = UInt32(2 * index + 1)
                    frames +=
                        HTTP2FloodTests.frame(1, flags: 0x5, stream: stream, block)
                        + HTTP2FloodTests.frame(3, stream: stream, [0, 0, 0, 8])
                }
                try raw.send(frames)
                // RST_STREAM once the request went upstream, 50 times.
                let client = try HTTP2Client(port: port)
                for _ in 0..<50 {
                    let id = client.request("GET", "/slow?ms=200")
                    _ = try? client.run(timeout: 0.01) { false }
                    client.reset(id)
                    try client.run { true }
                }
                _ = try? client.run(timeout: 0.5) { false }  // the upstream answers the requests it got
                let after = try client.response(client.request("GET", "/hello"))
                #expect(after.status == 200 && after.text == "GET /hello body=0")
            }
        }
        let opened = observer.opened.load(ordering: .relaxed)
        #expect(opened <= 8, "\(opened) upstream connections opened for 100 reset requests")
        #expect(eventually { observer.all.count == 101 })
        #expect(observer.all.filter(\.cancelled).count == 100)
    }

    /// A proxy (one loop, at most `maxConnections` upstream connections) whose server cuts a client paused longer
    /// than 500 ms (its write-stall timeout), in front of the test server; `body` gets its port.
    private func withStallingProxy(
        observer: RecordingProxyObserver = RecordingProxyObserver(), maxConnections: Int = 64,
        clientErrors: RecordingObserver, _ body: (Int) throws -> Void
    ) throws {
        try withServer { _, upstream in
            try withProxyServer(
                upstreamPort: upstream, observer: observer,
                configure: {
                    $0.maxConnections = maxConnections
                    $0.eventLoopCount = 1
                },
                configureServer: {
                    $0.writeStallTimeout = .milliseconds(500)
                    $0.eventLoopCount = 1
                }, serverObserver: clientErrors
            ) { _, port in try body(port) }
        }
    }

    /// Streams of one connection that stall while the connection itself makes progress (other streams flowing) are
    /// each reset and each counted `write_stall`: a stream's stall is the stream's, not the connection's (a version
    /// that counted it as the connection's error counted the first stream only, and no later error of the connection).
    @Test func eachStalledStreamIsCountedWhileTheConnectionFlows() throws {
        let clientErrors = RecordingObserver()
        var streamsResetFirst = false
        try withStallingProxy(clientErrors: clientErrors) { port in
            let client = try HTTP2Client(port: port, initialWindowSize: 0, manualWindow: true)
            let held = (0..<2).map { _ in client.request("GET", "/big?bytes=2000000") }
            let started = monotonicSeconds()
            func reset() -> Bool {
                held.allSatisfy { client.responses[$0]?.errorCode == NGHTTP2_INTERNAL_ERROR.rawValue }
            }
            while monotonicSeconds() - started < 4 && !reset() && !client.connectionClosed {
                // Small answers taken whole meanwhile: the connection makes progress, the held streams none.
                let small = client.request("GET", "/big?bytes=8000")
                _ = try? client.run(timeout: 0.01) { false }  // the request goes out: its stream is open
                client.windowUpdate(65_535, stream: small)
                client.windowUpdate(65_535)
                _ = try? client.run(timeout: 0.1) { client.responses[small]?.closed == true }
            }
            // A client starved of the CPU for the whole timeout (a loaded machine) has its connection closed as
            // stalled first: then there is nothing to count per stream.
            streamsResetFirst = reset() && !client.connectionClosed
            #expect(streamsResetFirst || client.connectionClosed)
        }
        if streamsResetFirst {
            #expect(clientErrors.errors.filter { $0 == "write_stall" }.count == 2, "\(clientErrors.errors)")
        }
    }

    /// Opens `slow`'s window a byte at a time on each of `held` (and on the connection) every 0.1 s while another
    /// client, from 0.3 s on, asks `GET /hello`; returns that client's response once it is whole, or what it had
    /// after `seconds`.
    static func askWhileTrickling(
        _ slow: HTTP2Client, _ held: [Int32], port: Int, for seconds: Double
    ) throws -> HTTP2Client.Response? {
        let started = monotonicSeconds()
        var other: HTTP2Client.Response?
        var otherClient: HTTP2Client?
        var otherID: Int32 = 0
        while monotonicSeconds() - started < seconds && other?.closed != true {
            for id in held { slow.windowUpdate(1, stream: id) }
            slow.windowUpdate(Int32(held.count))
            _ = try? slow.run(timeout: 0.1) { false }
            if otherClient == nil && monotonicSeconds() - started > 0.3 {
                otherClient = try HTTP2Client(port: port)
                otherID = otherClient!.request("GET", "/hello")
            }
            if let client = otherClient {
                _ = try? client.run(timeout: 0.01) { false }
                other = client.responses[otherID]
            }
        }
        return other
    }

    /// A client that holds proxied answers open by opening its window a byte at a time does not hold the upstream
    /// connections: an exchange paused for its client longer than the write-stall timeout is cut (the stream reset,
    /// or the connection closed, counted `write_stall`) and its upstream connection freed. Before, 2 connections x 64 such streams held all 64 upstream connections and other clients hung.
    @Test func aClientTricklingItsWindowDoesNotHoldTheUpstreamPool() throws {
        let observer = RecordingProxyObserver()
        let clientErrors = RecordingObserver()
        try withStallingProxy(observer: observer, maxConnections: 2, clientErrors: clientErrors) { port in
            let slow = try HTTP2Client(port: port, initialWindowSize: 0, manualWindow: true)
            let held = (0..<2).map { _ in slow.request("GET", "/big?bytes=2000000") }
            let started = monotonicSeconds()
            let other = try Self.askWhileTrickling(slow, held, port: port, for: 4)
            #expect(other?.status == 200 && other?.closed == true, "another client's request not answered")
            #expect(monotonicSeconds() - started < 2.5)
            // Each held stream is reset, or (a window opened a byte at a time is no progress for the connection
            // either, 4 KiB within the timeout is) the whole connection closed as a write stall.
            #expect(
                slow.connectionClosed
                    || held.allSatisfy { slow.responses[$0]?.errorCode == NGHTTP2_INTERNAL_ERROR.rawValue })
        }
        #expect(clientErrors.errors.filter { $0 == "write_stall" }.count >= 1)
        #expect(eventually { observer.all.count == 3 })
    }

    /// A request waiting for a connection of the full pool takes one whose response has waited 1 s or more on its
    /// client, however that client trickles its window (`reclaimed`: the stream reset), long before the write-stall
    /// timeout. Before, such a client held the connection for as long as it kept taking a little, and the others'
    /// requests got 503 `pool_full` at the response timeout.
    @Test func aWaitingRequestTakesTheConnectionOfATricklingReader() throws {
        let observer = RecordingProxyObserver()
        try withServer { _, upstream in
            try withOneUpstreamConnection(
                upstreamPort: upstream, observer: observer, configureServer: { $0.writeStallTimeout = .seconds(30) }
            ) { port in
                let slow = try HTTP2Client(port: port, initialWindowSize: 0, manualWindow: true)
                let held = slow.request("GET", "/big?bytes=2000000")
                let started = monotonicSeconds()
                let other = try Self.askWhileTrickling(slow, [held], port: port, for: 6)
                #expect(other?.status == 200 && other?.closed == true, "another client's request not answered")
                #expect(monotonicSeconds() - started < 3)
                _ = try? slow.run(timeout: 1) { slow.responses[held]?.errorCode != nil }
                #expect(slow.connectionClosed || slow.responses[held]?.errorCode == NGHTTP2_INTERNAL_ERROR.rawValue)
            }
        }
        #expect(eventually { observer.all.count == 2 })
        #expect(observer.all.first { $0.request.path == "/big" }?.failure?.rawValue == "reclaimed")
    }

    // MARK: - A handler streaming to a slow reader

    @Test func slowReaderStopsItsStreamsWriterOnly() throws {
        let handler = StreamingHandler(total: 1 << 20)
        try withServer(handler: handler) { _, port in
            // A 16 KiB stream window that the client gives back only when the test says so.
            let client = try HTTP2Client(port: port, initialWindowSize: 16384, manualWindow: true)
            let id = client.request("GET", "/stream")
            try client.run { true }  // sends the request
            let stopped = eventually { handler.snapshot.stops == 1 }
            #expect(stopped)
            try client.run { client.responses[id]?.body.count == 16384 }
            // That stream is full, the connection is not: another stream is served meanwhile.
            let other = try client.response(client.request("GET", "/small"))
            #expect(other.text == "small")
            #expect(handler.snapshot.resumes == 0 && !handler.snapshot.finished)
            // Read slowly: one window at a time.
            var granted = 0
            while client.responses[id]?.closed != true {
                let received = client.responses[id]?.body.count ?? 0
                if received > granted {
                    client.consume(id, received - granted)
                    granted = received
                }
                try client.run {
                    (client.responses[id]?.body.count ?? 0) > granted || client.responses[id]?.closed == true
                }
            }
            let response = try client.response(id)
            #expect(response.status == 200 && response.errorCode == 0)
            #expect(response.body.count == handler.total)
            #expect(response.body == (0..<handler.total).map(Self.patternByte))
        }
        let stats = handler.snapshot
        #expect(stats.finished && stats.cancels == 0)
        // The writer was stopped and woken again, and never got far ahead of the reader.
        #expect(stats.stops >= 2 && stats.resumes >= 1)
        #expect(stats.maxPending <= HTTPResponseStream.highWater + StreamingHandler.pieceSize)
    }

    /// A peer whose windows are shut holds at most the connection's bound of unsent answers, streamed ones included:
    /// before, each of its streams' writers went on to ``HTTPResponseStream/highWater`` (20 streams here: 5 MiB; 100
    /// streams of proxied answers: ~19 MiB per connection). Once the peer opens its windows every writer is woken and
    /// every stream completes.
    @Test func streamsOfAPeerThatTakesNothingShareTheConnectionsBound() throws {
        let handler = StreamingHandler(total: 400 * 1024)
        let bound = 300 * 1024
        try withServer(configure: { $0.http2MaxUnsentResponseBytes = bound }, handler: handler) { _, port in
            let client = try HTTP2Client(port: port, initialWindowSize: 0)
            let ids = (0..<20).map { _ in client.request("GET", "/stream") }
            try client.run { client.responses[ids[0]]?.status == 200 }
            // Let the writers run to wherever they are stopped.
            var written = -1
            while handler.snapshot.written != written {
                written = handler.snapshot.written
                _ = try? client.run(timeout: 0.3) { false }
            }
            #expect(written <= bound + StreamingHandler.pieceSize, "held \(written) bytes")
            #expect(written >= HTTPResponseStream.highWater)
            // The peer opens its windows (and reads at its pace): every writer is woken, every answer arrives whole.
            client.settings(initialWindowSize: 65535)
            try client.run(timeout: 30) { ids.allSatisfy { client.responses[$0]?.closed == true } }
            for id in ids {
                let response = try #require(client.responses[id])
                #expect(response.status == 200 && response.errorCode == 0)
                #expect(response.body == (0..<handler.total).map(Self.patternByte))
            }
        }
        #expect(handler.snapshot.finishedCount == 20 && handler.snapshot.cancels == 0)
    }

    @Test func resetOrGoneClientCancelsTheWriterOnce() throws {
        let handler = StreamingHandler(total: 1 << 20)
        try withServer(handler: handler) { _, port in
            let client = try HTTP2Client(port: port, initialWindowSize: 16384, manualWindow: true)
            let reset = client.request("GET", "/stream")
            try client.run { client.responses[reset]?.status == 200 }
            client.reset(reset)
            try client.run { true }
            let cancelled = eventually { handler.snapshot.cancels == 1 }
            #expect(cancelled)
            // The connection goes on; then the client says GOAWAY and leaves in the middle of a second stream.
            let gone = client.request("GET", "/stream")
            try client.run { client.responses[gone]?.status == 200 }
            client.goAway()
            try client.run { true }
            client.raw.close()
            let cancelledBoth = eventually { handler.snapshot.cancels == 2 }
            #expect(cancelledBoth)
        }
        usleep(50_000)
        #expect(handler.snapshot.cancels == 2 && !handler.snapshot.finished)
    }

    @Test func readerThatNeverOpensItsWindowIsClosedAfterTheWriteStallTimeout() throws {
        let handler = StreamingHandler(total: 1 << 20)
        let observer = RecordingObserver()
        try withServer(configure: { $0.writeStallTimeout = .milliseconds(300) }, handler: handler, observer: observer) {
            _, port in
            let client = try HTTP2Client(port: port, initialWindowSize: 16384, manualWindow: true)
            let id = client.request("GET", "/stream")
            try client.run { client.connectionClosed }
            #expect(client.responses[id]?.body.count == 16384)
            let cancelled = eventually { handler.snapshot.cancels == 1 }
            #expect(cancelled)
            #expect(observer.errors.contains("write_stall"))
        }
    }
}

/// Streams ``total`` pattern bytes (``ReverseProxyHTTP2Tests/patternByte(_:)``) for `/stream`, from the event loop,
/// in pieces of ``pieceSize``, as fast as the stream takes them; answers anything else whole. Records what
/// back-pressure and cancellation did.
private final class StreamingHandler: HTTPHandler, @unchecked Sendable {
    struct Stats {
        /// The most bytes the stream held after a write.
        var maxPending = 0
        /// `write` answered false.
        var stops = 0
        /// `onWritable` was called.
        var resumes = 0
        var cancels = 0
        var finished = false
        /// Streams finished.
        var finishedCount = 0
        /// Body bytes written by all streams.
        var written = 0
    }

    static let pieceSize = 16 * 1024
    let total: Int
    let stats = Mutex(Stats())

    init(total: Int) { self.total = total }

    var snapshot: Stats { stats.withLock { $0 } }

    func handle(_ request: HTTPRequest, respond: HTTPResponder) {
        guard request.path == "/stream", let stream = respond.makeStream() else {
            respond(HTTPResponse(status: 200, text: "small"))
            return
        }
        let writer = Writer(stream: stream, handler: self)
        // The closures hold the writer until the stream ends (finish and cancel drop them).
        stream.onCancel = { writer.handler.stats.withLock { $0.cancels += 1 } }
        stream.onWritable = {
            writer.handler.stats.withLock { $0.resumes += 1 }
            writer.pump()
        }
        stream.start(status: 200, headers: ["Content-Type": "application/octet-stream"], contentLength: total)
        writer.pump()
    }

    private final class Writer {
        let stream: HTTPResponseStream
        let handler: StreamingHandler
        var written = 0

        init(stream: HTTPResponseStream, handler: StreamingHandler) {
            self.stream = stream
            self.handler = handler
        }

        func pump() {
            while written < handler.total {
                guard stream.state == .streaming else { return }
                let count = min(StreamingHandler.pieceSize, handler.total - written)
                let piece = (written..<(written + count)).map(ReverseProxyHTTP2Tests.patternByte)
                written += count
                let more = piece.withUnsafeBytes { stream.write($0) }
                let pending = stream.pendingBytes
                handler.stats.withLock {
                    $0.maxPending = max($0.maxPending, pending)
                    $0.written += count
                }
                if !more {
                    handler.stats.withLock { $0.stops += 1 }
                    return
                }
            }
            stream.finish()
            handler.stats.withLock {
                $0.finished = true
                $0.finishedCount += 1
            }
        }
    }
}

/// A watcher that holds bodies of at most 10 bytes and prefixes them with `rewritten:`.
final class RewritingWatcher: ProxyExchangeWatcher {
    func requestBody(_ bytes: UnsafeRawBufferPointer) {}
    func requestEnded(elapsed: Double) {}
    func responseHead(status: Int, headers: HTTPHeaders, elapsed: Double) {}
    func responseBody(_ bytes: UnsafeRawBufferPointer, elapsed: Double) {}
    var requestBodyHoldLimit: Int { 10 }
    func rewriteRequestBody(_ body: [UInt8]) -> [UInt8]? { Array("rewritten:".utf8) + body }
}

/// An observer that gives each exchange a token (its tap's context) and keeps only weak references to them: a token
/// alive after its exchange ended is an exchange something still holds.
final class TokenObserver: ReverseProxyObserver {
    final class Token: Sendable {}
    struct WeakToken: @unchecked Sendable { weak var token: Token? }
    let tokens = Mutex<[WeakToken]>([])
    let ended = Atomic<Int>(0)
    var liveTokens: Int { tokens.withLock { $0.count { $0.token != nil } } }
    func proxyRequestStarted(_ request: HTTPRequest, requestID: String) -> ProxyTap {
        let token = Token()
        tokens.withLock { $0.append(WeakToken(token: token)) }
        return ProxyTap(context: token)
    }
    func proxyExchangeEnded(_ exchange: inout ProxyExchangeRecord) { ended.add(1, ordering: .relaxed) }
}
