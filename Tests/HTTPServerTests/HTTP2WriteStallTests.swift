import Glibc
import Testing

@testable import HTTPServer

/// An HTTP/2 peer that never opens its flow-control window for an answer is closed at the write-stall timeout,
/// whatever else it sends.
@Suite("HTTP/2 write stall")
struct HTTP2WriteStallTests {
    @Test(arguments: [false, true])
    func aPeerThatNeverOpensItsWindowIsClosedAtTheWriteStallTimeout(pings: Bool) throws {
        let observer = RecordingObserver()
        try withServer(configure: { $0.writeStallTimeout = .milliseconds(400) }, observer: observer) { server, port in
            // Window 0: the answer's HEADERS go out, none of its DATA. Before, the connection was `idle` (60 s, restarted
            // by anything read) with the answer held; with PINGs every 100 ms it was never closed.
            let client = try HTTP2Client(port: port, initialWindowSize: 0, manualWindow: true)
            let id = client.request("GET", "/big?bytes=100000")
            let started = monotonicSeconds()
            while !client.connectionClosed && monotonicSeconds() - started < 5 {
                if pings { client.ping() }
                _ = try? client.run(timeout: 0.1) { false }
            }
            #expect(client.connectionClosed, "still open after 5 s")
            #expect(monotonicSeconds() - started < 3)
            #expect(client.responses[id]?.status == 200)
            #expect(client.responses[id]?.body.isEmpty == true)
            #expect(eventually { observer.errors.contains("write_stall") })
            #expect(eventually { server.openConnections == 0 })
        }
    }

    @Test func aReaderThatOpensItsWindowSlowlyIsNotCut() throws {
        let observer = RecordingObserver()
        try withServer(configure: { $0.writeStallTimeout = .milliseconds(400) }, observer: observer) { _, port in
            // 16 KiB of window every 200 ms (below the timeout): the body moves, so the timer restarts each time.
            let client = try HTTP2Client(port: port, initialWindowSize: 16384, manualWindow: true)
            let total = 16384 * 8
            let id = client.request("GET", "/big?bytes=\(total)")
            var credited = 0
            let started = monotonicSeconds()
            while client.responses[id]?.closed != true && monotonicSeconds() - started < 10 {
                _ = try? client.run(timeout: 0.2) { false }
                let received = client.responses[id]?.body.count ?? 0
                if received > credited {
                    client.consume(id, received - credited)
                    credited = received
                }
            }
            #expect(client.responses[id]?.body.count == total)
            #expect(!observer.errors.contains("write_stall"))
        }
    }
}
