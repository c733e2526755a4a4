import Glibc
import Testing

@testable import HTTPServer

/// The budget of HTTP/2 frames that ask nothing of the server (``HTTP2FrameBudget``): floods are answered with
/// GOAWAY(ENHANCE_YOUR_CALM) and closed, busy legitimate clients never are.
@Suite("HTTP/2 frame budget")
struct HTTP2FloodTests {
    static let enhanceYourCalm: UInt32 = 0xB

    /// One frame: 9-byte header and `payload`.
    static func frame(_ type: UInt8, flags: UInt8 = 0, stream: UInt32 = 0, _ payload: [UInt8] = []) -> [UInt8] {
        let length = UInt32(payload.count)
        return [UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF), type, flags]
            + withUnsafeBytes(of: stream.bigEndian) { Array($0) } + payload
    }

    @Test func framesAreCountedFromTheirHeadersWhereverInputIsSplit() {
        var input = HTTP2Session.clientPreface
        for _ in 0..<10 { input += Self.frame(8, [0, 0, 0, 1]) }  // WINDOW_UPDATE
        input += Self.frame(0, stream: 1, [UInt8](repeating: 7, count: 40))  // DATA: its payload is not a header
        input += Self.frame(2, stream: 3, [0, 0, 0, 0, 15])  // PRIORITY
        for step in [1, 2, 5, 9, 10, 64, input.count] {
            var budget = HTTP2FrameBudget(now: 0)
            var offset = 0
            while offset < input.count {
                let end = min(input.count, offset + step)
                let allowed = input[offset..<end].withUnsafeBufferPointer { budget.charge($0) }
                #expect(allowed == end - offset)
                offset = end
            }
            #expect(budget.tokens == HTTP2FrameBudget.burst - 12, "split every \(step) bytes")
        }
    }

    @Test func timeRefillsUpToTheBurstAndWorkEarnsMore() {
        var budget = HTTP2FrameBudget(now: 0, prefaceBytes: 0)
        let flood = [UInt8](
            (0..<HTTP2FrameBudget.burst + 1).map { _ in Self.frame(6, [UInt8](repeating: 0, count: 8)) }.joined())
        // The frame beyond the tokens, and everything after it, is not handed on; with no token back once the frames
        // before it were, it is a flood.
        #expect(flood.withUnsafeBufferPointer { budget.charge($0) } == 17 * HTTP2FrameBudget.burst)
        #expect(budget.ranOut && !budget.isExhausted)
        let resumed = budget.resume()
        #expect(!resumed)
        #expect(budget.isExhausted)
        #expect(budget.tokens == 0)
        budget.refill(now: 10_000_000)  // 10 ms: one token
        #expect(budget.tokens == 1)
        budget.refill(now: 3_600_000_000_000)
        #expect(budget.tokens == HTTP2FrameBudget.burst)
        budget.credit(HTTP2FrameBudget.creditPerRequest)
        #expect(budget.tokens == HTTP2FrameBudget.burst + HTTP2FrameBudget.creditPerRequest)
        #expect(HTTP2FrameBudget.credit(forDataFrameOf: 16384) == HTTP2FrameBudget.creditPerDataFrameSent + 16)
    }

    /// What each flood repeats: (name, frames to open with, the frame repeated). (A PING flood is closed by nghttp2's
    /// bound on queued replies, `bad_request` too, unless the flooder reads them: then by this budget.)
    static let floods: [(String, [UInt8], [UInt8])] = [
        ("PRIORITY", [], frame(2, stream: 3, [0, 0, 0, 0, 15])),
        ("WINDOW_UPDATE", [], frame(8, [0, 0, 0, 1])),
        ("unknown extension frames", [], frame(0xEE)),
        // An empty DATA frame on an open request stream (its body never comes).
        ("empty DATA", frame(1, flags: 0x4, stream: 1, [0x83, 0x86, 0x84, 0x41, 0x01, 0x74]), frame(0, stream: 1)),
    ]

    @Test(arguments: 0..<4) func aFloodOfFramesThatAskNothingIsCalmed(_ index: Int) throws {
        let (name, opening, repeated) = Self.floods[index]
        let observer = RecordingObserver()
        try withServer(observer: observer) { server, port in
            let flooder = try RawClient(port: port)
            try flooder.send(HTTP2Session.clientPreface + Self.frame(4) + Self.frame(4, flags: 1) + opening)
            // Three budgets' worth, in batches, reading the answers in between.
            var received: [UInt8] = []
            let batch = [UInt8]((0..<100).map { _ in repeated }.joined())
            for _ in 0..<(HTTP2FrameBudget.burst * 3 / 100) {
                guard (try? flooder.send(batch)) != nil, drain(flooder, into: &received) else { break }
            }
            let (frames, closed) = readFrames(flooder, timeout: 5, after: received)
            let goAway = frames.first { $0.type == 7 }
            #expect(goAway?.errorCode == Self.enhanceYourCalm, "\(name): \(frames.map(\.type))")
            #expect(closed, "\(name)")
            #expect(eventually { observer.errors.filter { $0 == "bad_request" }.count == 1 }, "\(name)")
            // The loop serves others meanwhile and after.
            let client = try HTTP2Client(port: port)
            #expect(try client.response(client.request("GET", "/after")).status == 200)
            #expect(eventually { server.openConnections == 1 })
        }
    }

    /// The frames before the one the tokens ran out at are handed over first; their refunds pay for it, which is
    /// charged from its header again.
    @Test func aFrameTheTokensRanOutAtIsChargedAgainAfterRefunds() {
        var budget = HTTP2FrameBudget(now: 0, prefaceBytes: 0)
        let data = Self.frame(0, stream: 1, [1, 2, 3])
        let frames = [UInt8]((0..<HTTP2FrameBudget.burst + 10).map { _ in data }.joined())
        var offset = 0
        var runs = 0
        while offset < frames.count {
            let allowed = frames[offset...].withUnsafeBufferPointer { budget.charge($0) }
            // nghttp2 refunds each DATA frame with body bytes.
            for _ in 0..<(allowed / data.count) { budget.refund() }
            offset += allowed
            runs += 1
            if budget.ranOut {
                let resumed = budget.resume()
                #expect(resumed)
            }
        }
        #expect(runs == 2 && !budget.isExhausted && budget.tokens == HTTP2FrameBudget.burst)
    }

    /// A body written as many small DATA frames within the window, all in one write (a client streaming small
    /// messages): each frame carries body bytes, so none may count against the budget, however many come at once.
    /// Before, the whole batch was charged before nghttp2 saw it (the refunds of its DATA frames came only after):
    /// 2,000 frames of 32 bytes got GOAWAY(ENHANCE_YOUR_CALM).
    @Test func manySmallDataFramesWithinTheWindowAreNotAFlood() throws {
        let observer = RecordingObserver()
        try withServer(observer: observer) { _, port in
            let client = try RawClient(port: port)
            // POST / (:method POST, :scheme http, :path /, :authority t), its body to come.
            let headers = Self.frame(1, flags: 0x4, stream: 1, [0x83, 0x86, 0x84, 0x41, 0x01, 0x74])
            let frames = 2000
            var body: [UInt8] = []
            for index in 0..<frames {
                body += Self.frame(
                    0, flags: index == frames - 1 ? 0x1 : 0, stream: 1, [UInt8](repeating: 0x6D, count: 32))
            }
            try client.send(HTTP2Session.clientPreface + Self.frame(4) + Self.frame(4, flags: 1) + headers + body)
            var received: [UInt8] = []
            var open = true
            let answered = eventually {
                open = open && drain(client, into: &received)
                return !open || String(decoding: received, as: UTF8.self).contains("POST / body=64000")
            }
            let (answer, _) = readFrames(client, timeout: 0.2, after: received)
            #expect(answered && open, "answered \(answered), open \(open)")
            #expect(!answer.contains { $0.type == 7 }, "GOAWAY: \(answer.map(\.type))")
            #expect(observer.errors.isEmpty)
        }
    }

    @Test func aBusyLegitimateClientIsNeverCalmed() throws {
        let observer = RecordingObserver()
        try withServer(observer: observer) { _, port in
            // A 1 KiB stream window: every response comes in 1 KiB DATA frames, each answered by a WINDOW_UPDATE;
            // four PRIORITY frames and a PING per request on top, for 300 requests on one connection.
            let client = try HTTP2Client(port: port, initialWindowSize: 1024)
            for _ in 0..<300 {
                let id = client.request("GET", "/big?n=20000")
                for _ in 0..<4 { client.prioritize(id) }
                client.ping()
                let response = try client.response(id)
                #expect(response.status == 200)
                #expect(response.body.count == 20000)
                if response.status != 200 { break }
            }
            #expect(!client.goAwayReceived)
            #expect(!client.connectionClosed)
            #expect(observer.errors.isEmpty)
        }
    }
}

/// Appends what `client` can read at once to `received`; false once the server closed the connection.
func drain(_ client: RawClient, into received: inout [UInt8]) -> Bool {
    while true {
        var poller = pollfd(fd: client.fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, 0) > 0 else { return true }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let count = chunk.withUnsafeMutableBytes { Glibc.read(client.fd, $0.baseAddress, $0.count) }
        if count <= 0 { return false }
        received += chunk[0..<count]
    }
}

/// A frame the server sent: its type, stream, and the error code of a GOAWAY.
struct ReceivedFrame {
    let type: UInt8
    let stream: UInt32
    let errorCode: UInt32?
}

/// Reads what the server sends until it closes the connection or `timeout` passes; returns the frames (after the
/// server's preface-less start: HTTP/2 servers send frames only) and whether it closed.
func readFrames(_ client: RawClient, timeout: Double, after earlier: [UInt8] = []) -> ([ReceivedFrame], Bool) {
    var received = earlier
    var closed = false
    let end = monotonicSeconds() + timeout
    while monotonicSeconds() < end {
        var poller = pollfd(fd: client.fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, Int32(max(1, (end - monotonicSeconds()) * 1000))) > 0 else { continue }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let count = chunk.withUnsafeMutableBytes { Glibc.read(client.fd, $0.baseAddress, $0.count) }
        if count <= 0 {
            closed = true
            break
        }
        received += chunk[0..<count]
    }
    var frames: [ReceivedFrame] = []
    var offset = 0
    while offset + 9 <= received.count {
        let length = Int(received[offset]) << 16 | Int(received[offset + 1]) << 8 | Int(received[offset + 2])
        guard offset + 9 + length <= received.count else { break }
        let type = received[offset + 3]
        let stream = received[offset + 5..<offset + 9].reduce(UInt32(0)) { $0 << 8 | UInt32($1) } & 0x7FFF_FFFF
        var code: UInt32?
        if type == 7 && length >= 8 {
            code = received[offset + 13..<offset + 17].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        }
        frames.append(ReceivedFrame(type: type, stream: stream, errorCode: code))
        offset += 9 + length
    }
    return (frames, closed)
}
