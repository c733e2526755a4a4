import Dispatch
import Glibc
import Synchronization
import Testing

@testable import HTTPServer

/// At the connection cap, a client waiting in the backlog makes room by evicting the oldest connection that has had no
/// request yet (``HTTPServer/Configuration/capacityEvictionAge``), else the connection kept alive idle the longest.
@Suite("Eviction at the connection cap")
struct CapacityEvictionTests {
    /// Runs `body` against a server of `maxConnections` slots evicting at `evictionAge`, with an observer.
    private func withCap(
        _ maxConnections: Int, evictionAge: Duration, _ body: (HTTPServer, Int, RecordingObserver) throws -> Void
    ) throws {
        let observer = RecordingObserver()
        try withServer(
            configure: {
                $0.maxConnections = maxConnections
                $0.capacityEvictionAge = evictionAge
            }, observer: observer
        ) { server, port in try body(server, port, observer) }
    }

    @Test func connectionsThatSentNoRequestMakeRoomForAWaitingClient() throws {
        // An eviction age of 1 ms: the holders are old enough at once, so they go before the clients kept alive idle.
        try withCap(4, evictionAge: .milliseconds(1)) { server, port, observer in
            // Four ways of holding a slot without asking anything, oldest first: nothing, half a request head, only the
            // HTTP/2 preface and SETTINGS, nothing again.
            let silent = try RawClient(port: port)
            #expect(eventually { server.openConnections == 1 })
            let partial = try RawClient(port: port)
            try partial.send("GET / HTTP/1.1\r\nHost: t\r\n")
            #expect(eventually { server.openConnections == 2 })
            let preface = try RawClient(port: port)
            try preface.send(HTTP2Session.clientPreface + HTTP2FloodTests.frame(4))
            #expect(eventually { server.openConnections == 3 })
            let last = try RawClient(port: port)
            #expect(eventually { server.openConnections == 4 })
            var holders = [silent, partial, preface, last]

            // Each new client is answered well before the 10 s header timeout, the oldest holder going first; the new
            // clients stay (kept alive idle, they go only when no connection awaits its first request).
            var served: [RawClient] = []
            for expected in 0..<3 {
                let started = monotonicSeconds()
                let client = try RawClient(port: port)
                served.append(client)
                try client.send("GET /new HTTP/1.1\r\nHost: t\r\n\r\n")
                let response = try client.readResponse(timeout: 5)
                #expect(response.status == 200)
                #expect(monotonicSeconds() - started < 3)
                let evicted = holders[0].waitForClose(timeout: 3)
                // On failure, say what happened instead: which holders are closed now, the server's count and what
                // the observer saw. (Its occasional CI failure was two holders accepted in one iteration of the
                // acceptor, with equal accept times: `connectionsAcceptedTogetherAreEvictedInAcceptOrder`.)
                #expect(
                    evicted,
                    """
                    holder \(expected) evicted first; holders closed now: \(holders.map { $0.waitForClose(timeout: 0.2) }), \
                    open connections \(server.openConnections), errors \(observer.errors), \
                    \(monotonicSeconds() - started) s into the round
                    """)
                holders.removeFirst()
                #expect(eventually { observer.errors.filter { $0 == "evicted" }.count == expected + 1 })
            }
            #expect(server.openConnections == 4)
            // The fourth holder is all that is left to evict; then the next client takes the slot of the client kept
            // alive idle the longest.
            let fourth = try RawClient(port: port)
            try fourth.send("GET /fourth HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try fourth.readResponse(timeout: 5).status == 200)
            #expect(holders[0].waitForClose(timeout: 3))
            let fifth = try RawClient(port: port)
            try fifth.send("GET /fifth HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try fifth.readResponse(timeout: 5).status == 200)
            #expect(served[0].waitForClose(timeout: 3))
            #expect(observer.errors.filter { $0 == "evicted" }.count == 4)
            #expect(observer.errors.filter { $0 == "evicted_idle" }.count == 1)
        }
    }

    /// Connections accepted in one iteration of the acceptor (they arrived while it was busy) are evicted in accept
    /// order. Before, both had the iteration's one clock reading as their accept time, and with equal times the order
    /// of the loops decided: the cause of the first test's occasional failure (a holder accepted in the same
    /// iteration as the one before it, on loop 0, went first).
    @Test func connectionsAcceptedTogetherAreEvictedInAcceptOrder() throws {
        let handler = LoopBlockingHandler()
        let observer = RecordingObserver()
        try withServer(
            configure: {
                $0.maxConnections = 4
                // 1 ms: the two awaiting their first request are old enough when the third comes, so they go before
                // the two kept alive idle.
                $0.capacityEvictionAge = .milliseconds(1)
            }, handler: handler, observer: observer
        ) { server, port in
            // The first connection goes to loop 0 (the acceptor), the second to loop 1; each has a request, and the
            // first's blocks loop 0.
            let blocker = try RawClient(port: port)
            let other = try RawClient(port: port)
            try other.send("GET /other HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try other.readResponse(timeout: 5).status == 200)
            try blocker.send("GET /block HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(eventually { handler.blocking.load(ordering: .sequentiallyConsistent) })
            let loops = handler.loops.withLock { $0 }
            try #require(loops.count == 2 && loops[0] !== loops[1])
            let (loop0, loop1) = (loops[1], loops[0])  // the blocked request came second
            #expect(loop0.index == 0 && loop1.index == 1)

            // Two clients wait in the backlog while loop 0 is busy; released, it accepts both in one iteration: the
            // first to itself (1 connection each), the second to loop 1 (loop 0 now has 2).
            let first = try RawClient(port: port)
            let second = try RawClient(port: port)
            handler.release.signal()
            #expect(try blocker.readResponse(timeout: 5).status == 200)
            #expect(eventually { loop0.connectionCount.load(ordering: .relaxed) == 2 })
            #expect(eventually { loop1.connectionCount.load(ordering: .relaxed) == 2 })
            let since0 = loop0.oldestAwaitingSince.load(ordering: .relaxed)
            let since1 = loop1.oldestAwaitingSince.load(ordering: .relaxed)
            #expect(since0 != .max && since1 != .max)
            #expect(since0 < since1, "accepted first, on loop 0: \(since0); second, on loop 1: \(since1)")
            // Both older than the eviction age before the third comes (else the two kept alive idle go first).
            #expect(eventually { Syscall.monotonicNow() > since1 &+ 1_000_000 })

            // At the cap, a new client makes room by evicting the first; the second stays.
            let third = try RawClient(port: port)
            try third.send("GET /third HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try third.readResponse(timeout: 5).status == 200)
            #expect(first.waitForClose(timeout: 3))
            #expect(!second.waitForClose(timeout: 0.2))
            #expect(observer.errors == ["evicted"])
        }
    }

    /// Connections that had a request and are kept alive idle make room too, the one idle the longest first, however
    /// briefly idle (an attacker renewing its requests more often than any age would keep them), when no connection
    /// awaits its first request. Before, they were kept: clients that made a request on every slot and then renewed it
    /// now and then (a probe: 1024 connections asking `/-/healthy` every 2.5 s) held the server from everyone else for
    /// good.
    @Test func connectionsKeptAliveIdleMakeRoomLongestIdleFirst() throws {
        try withCap(2, evictionAge: .seconds(30)) { server, port, observer in
            // Two kept-alive connections, idle after their request (HTTP/2, then HTTP/1.1: the HTTP/2 one idle longer).
            let first = try HTTP2Client(port: port)
            #expect(try first.response(first.request("GET", "/a")).status == 200)
            let second = try RawClient(port: port)
            try second.send("GET /b HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try second.readResponse().status == 200)

            // A third client waits in the backlog: the HTTP/2 connection, idle the longest, goes for it.
            let third = try RawClient(port: port)
            try third.send("GET /third HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try third.readResponse(timeout: 5).text == "GET /third body=0")
            #expect(first.raw.waitForClose(timeout: 3))
            #expect(observer.errors == ["evicted_idle"])

            // A fourth: the HTTP/1.1 connection, idle longer than the third.
            let fourth = try RawClient(port: port)
            try fourth.send("GET /fourth HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try fourth.readResponse(timeout: 5).status == 200)
            #expect(second.waitForClose(timeout: 3))
            #expect(!third.waitForClose(timeout: 0.2))
            #expect(server.openConnections == 2)
        }
    }

    /// An HTTP/2 connection evicted while kept alive idle is told first: GOAWAY before the close, so that a client whose
    /// next request crossed the close knows that it was not taken (before: closed without a word).
    @Test func anHTTP2ConnectionEvictedIdleGetsAGoawayFirst() throws {
        try withCap(1, evictionAge: .seconds(30)) { _, port, observer in
            let idle = try HTTP2Client(port: port)
            #expect(try idle.response(idle.request("GET", "/a")).status == 200)
            let next = try RawClient(port: port)
            try next.send("GET /next HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try next.readResponse(timeout: 5).status == 200)
            try idle.run(timeout: 5) { idle.connectionClosed }
            #expect(idle.goAwayReceived)
            #expect(observer.errors == ["evicted_idle"])
        }
    }

    /// A connection awaiting its first request that is younger than the eviction age does not hold idle eviction
    /// back: the kept-alive idle one goes at once. Before, any such connection deferred it, to its age (a flood of
    /// silent connections switched idle eviction off, and the one accepted after each eviction paced evictions to ~15
    /// a second: a probe).
    @Test func youngSilentConnectionsDoNotHoldIdleEvictionBack() throws {
        try withCap(2, evictionAge: .seconds(30)) { server, port, observer in
            let kept = try RawClient(port: port)
            try kept.send("GET /a HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try kept.readResponse().status == 200)
            let silent = try RawClient(port: port)
            #expect(eventually { server.openConnections == 2 })
            let third = try RawClient(port: port)
            try third.send("GET /third HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try third.readResponse(timeout: 5).text == "GET /third body=0")
            #expect(kept.waitForClose(timeout: 3))
            #expect(!silent.waitForClose(timeout: 0.2))
            #expect(observer.errors == ["evicted_idle"])
        }
    }

    /// A request under way (its answer not yet written) keeps its connection, whatever the wait.
    @Test func connectionsWithARequestUnderWayAreKept() throws {
        try withCap(2, evictionAge: .milliseconds(100)) { server, port, observer in
            let first = try RawClient(port: port)
            try first.send("GET /slow?ms=1500 HTTP/1.1\r\nHost: t\r\n\r\n")
            let second = try RawClient(port: port)
            try second.send("GET /slow?ms=1500 HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(eventually { server.openConnections == 2 })

            // A third client waits in the backlog until the first answers: nobody is evicted for it.
            let third = try RawClient(port: port)
            try third.send("GET /third HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(!third.hasInput(within: 0.5))
            #expect(observer.errors.isEmpty)
            #expect(try first.readResponse(timeout: 5).text == "slow")
            #expect(try second.readResponse(timeout: 5).text == "slow")
            #expect(try third.readResponse(timeout: 5).text == "GET /third body=0")
            #expect(observer.errors == ["evicted_idle"])
        }
    }

    @Test func youngConnectionsAreNotEvicted() throws {
        try withCap(2, evictionAge: .seconds(30)) { server, port, observer in
            // A burst of clients that have not sent their request yet, younger than the eviction age, keep their slots.
            let one = try RawClient(port: port)
            let two = try RawClient(port: port)
            #expect(eventually { server.openConnections == 2 })
            let three = try RawClient(port: port)
            try three.send("GET /three HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(!three.hasInput(within: 0.5))
            #expect(!observer.errors.contains("evicted"))
            try one.send("GET /one HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            #expect(try one.readResponse().status == 200)
            #expect(try three.readResponse(timeout: 5).status == 200)
            two.close()
        }
    }

    /// An HTTP/2 HEADERS frame without END_HEADERS (then CONTINUATION frames, or nothing) is a request head still being
    /// read: the header timeout, not restarted by progress, and evictable at the cap. Before, the open header block
    /// put the connection in its body phase: a CONTINUATION trickle held it past any header timeout (counted
    /// `body_timeout` at last), and such holders were never evicted.
    @Test func anHTTP2HeaderBlockThatNeverEndsIsAHeadBeingRead() throws {
        let observer = RecordingObserver()
        try withServer(configure: { $0.headerReadTimeout = .milliseconds(400) }, observer: observer) { _, port in
            let started = monotonicSeconds()
            let client = try RawClient(port: port)
            // HEADERS on stream 1 without END_HEADERS: `:method: GET` (HPACK static index 2), then a CONTINUATION
            // of one more indexed field (`accept-encoding: gzip, deflate`, index 16) every 100 ms.
            try client.send(
                HTTP2Session.clientPreface + HTTP2FloodTests.frame(4) + HTTP2FloodTests.frame(1, stream: 1, [0x82]))
            var closed = false
            while !closed && monotonicSeconds() - started < 4 {
                try? client.send(HTTP2FloodTests.frame(9, stream: 1, [0x90]))
                closed = client.waitForClose(timeout: 0.1)
            }
            #expect(closed)
            #expect(monotonicSeconds() - started < 2)
            #expect(eventually { observer.errors == ["header_timeout"] })
        }
        try withCap(1, evictionAge: .milliseconds(200)) { _, port, observer in
            let holder = try RawClient(port: port)
            try holder.send(
                HTTP2Session.clientPreface + HTTP2FloodTests.frame(4) + HTTP2FloodTests.frame(1, stream: 1, [0x82]))
            let started = monotonicSeconds()
            let client = try RawClient(port: port)
            try client.send("GET /new HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try client.readResponse(timeout: 5).status == 200)
            #expect(monotonicSeconds() - started < 3)
            #expect(holder.waitForClose(timeout: 3))
            #expect(eventually { observer.errors.contains("evicted") })
        }
    }

    @Test func anHTTP2ConnectionWithoutARequestGetsTheHeaderTimeout() throws {
        let observer = RecordingObserver()
        try withServer(configure: { $0.headerReadTimeout = .milliseconds(300) }, observer: observer) { server, port in
            // The preface and SETTINGS, then nothing: closed at the header timeout (before: the 60 s idle timeout).
            let started = monotonicSeconds()
            let client = try HTTP2Client(port: port)
            try client.run(timeout: 5) { client.connectionClosed }
            #expect(client.goAwayReceived)
            #expect(monotonicSeconds() - started < 3)
            #expect(eventually { observer.errors == ["header_timeout"] })
            // One that made a request may idle.
            let busy = try HTTP2Client(port: port)
            #expect(try busy.response(busy.request("GET", "/a")).status == 200)
            #expect(throws: TestFailure.self) { try busy.run(timeout: 0.6) { false } }
            #expect(!busy.connectionClosed)
            #expect(server.openConnections == 1)
        }
    }
}

/// Answers every request with 200, noting the loop that served it; `/block` first holds its loop's thread until
/// ``release`` is signalled (at most 5 s).
final class LoopBlockingHandler: HTTPHandler {
    let release = DispatchSemaphore(value: 0)
    /// Set once `/block` is holding its loop.
    let blocking = Atomic<Bool>(false)
    /// The loops that served the requests, in order.
    let loops = Mutex<[EventLoop]>([])

    func handle(_ request: HTTPRequest, respond: HTTPResponder) {
        if let loop = respond.eventLoop { loops.withLock { $0.append(loop) } }
        if request.path == "/block" {
            blocking.store(true, ordering: .sequentiallyConsistent)
            _ = release.wait(timeout: .now() + 5)
        }
        respond(HTTPResponse(status: 200, text: "ok"))
    }
}
