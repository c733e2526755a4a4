import Glibc
import Testing

@testable import HTTPServer

/// A stopped server's event loops are freed once nothing outside holds the server: the connections, upstream
/// connections and exchanges that refer to their loop (strongly, so that reading it on the hot path is no retain) are
/// all let go when the loop stops, whatever state they were in (kept alive idle, a head half sent, an upstream
/// connection idle in its pool). A loop kept alive keeps its epoll and eventfd descriptors: every stop of a server
/// (a reload that moves a listener, a library's restart) would leak them.
@Suite struct EventLoopLifetimeTests {
    final class WeakLoop {
        weak var loop: EventLoop?
        init(_ loop: EventLoop) { self.loop = loop }
    }

    @Test func stoppedLoopsAreFreedWithTheirConnections() throws {
        var loops: [WeakLoop] = []
        var clients: [RawClient] = []
        try withServer { _, upstreamPort in
            try withProxyServer(upstreamPort: upstreamPort) { server, port in
                loops = server.runningLoops.map(WeakLoop.init)
                #expect(loops.count == 2)
                // Kept alive idle after a proxied exchange (its upstream connection idle in the pool) ...
                let keptAlive = try RawClient(port: port)
                try keptAlive.send("GET /one HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(try keptAlive.readResponse().status == 200)
                // ... and a head half sent (awaiting its first request, its header deadline set).
                let halfHead = try RawClient(port: port)
                try halfHead.send("GET /two HTTP/1.1\r\nHo")
                clients = [keptAlive, halfHead]
                #expect(eventually { server.openConnections == 2 })
            }
        }
        #expect(clients.count == 2)  // held open until the servers stopped
        clients.removeAll()
        #expect(eventually { loops.allSatisfy { $0.loop == nil } })
    }
}
