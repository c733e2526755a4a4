import Glibc
import Testing

@testable import HTTPServer

/// A connection that an error ends is counted once (``HTTPServerObserver/connectionError(reason:)``), under its first
/// reason: scanners and attackers close at once, without reading their answer, which reset the connection while it
/// lingered and counted it `reset` as well (every `bad_request`, `too_large`, `header_timeout` twice).
@Suite("Connection errors are counted once")
struct ConnectionErrorCountTests {
    /// Sends `bytes`, waits until the server has answered and shut its side down (it then lingers, reading what the
    /// client may still send), and closes with a reset (`SO_LINGER` 0; the answer is unread too).
    private func leaveUnread(_ bytes: [UInt8], port: Int) throws {
        let client = try RawClient(port: port)
        try client.send(bytes)
        let peerShutDown: Int16 = 0x2000  // POLLRDHUP (<poll.h> declares it with _GNU_SOURCE only)
        var poller = pollfd(fd: client.fd, events: peerShutDown, revents: 0)
        #expect(poll(&poller, 1, 5_000) == 1 && poller.revents & peerShutDown != 0)
        var reset = linger(l_onoff: 1, l_linger: 0)
        setsockopt(client.fd, SOL_SOCKET, SO_LINGER, &reset, socklen_t(MemoryLayout<linger>.size))
        client.close()
    }

    @Test func anHTTP1ClientThatLeavesAfterItsErrorAnswerIsNotAResetToo() throws {
        let observer = RecordingObserver()
        try withServer(observer: observer) { _, port in
            try leaveUnread(Array("GET / HTTP/1.1\r\nHost: x\r\nX A: b\r\n\r\n".utf8), port: port)
            #expect(eventually { observer.closed == 1 })
            #expect(observer.errors == ["bad_request"])
            let fields = (0..<101).map { "X-\($0): v\r\n" }.joined()
            try leaveUnread(Array("GET / HTTP/1.1\r\nHost: x\r\n\(fields)\r\n".utf8), port: port)
            #expect(eventually { observer.closed == 2 })
            #expect(observer.errors == ["bad_request", "too_large"])
        }
    }

    @Test func anHTTP2ClientThatLeavesAfterItsGoawayIsNotAResetToo() throws {
        let observer = RecordingObserver()
        try withServer(observer: observer) { _, port in
            // The preface, then a frame on stream 2 (even: a client may not open it): GOAWAY(PROTOCOL_ERROR).
            try leaveUnread(
                HTTP2Session.clientPreface + HTTP2FloodTests.frame(4)
                    + HTTP2FloodTests.frame(1, flags: 0x05, stream: 2, [0x82]), port: port)
            #expect(eventually { observer.closed == 1 })
            #expect(observer.errors == ["bad_request"])
        }
    }
}
