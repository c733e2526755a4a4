import FuzzSupport

@testable import HTTPServer

/// Answers every request, either at once from inside `handle` (as a handler that responds synchronously on
/// the event loop, re-entering the session while it parses) or later, when the harness delivers the answers
/// it collected (as a handler that responds from another thread); `/stream` paths are streamed
/// (``HTTPResponseStream``), some of them across the driver's rounds.
///
/// `@unchecked Sendable`: a harness runs on one thread, and so does everything it drives.
final class FuzzHandler: HTTPHandler, @unchecked Sendable {
    /// The connection being fuzzed, for synchronous answers.
    var connection: Connection?
    /// Answer inside `handle` rather than collect.
    var synchronous = false
    /// Requests waiting for their answer, in arrival order.
    private(set) var waiting: [(request: HTTPRequest, responder: HTTPResponder)] = []
    /// Heads waiting for the decision on their body, in arrival order.
    private(set) var admissions: [(head: HTTPRequest, admission: HTTPAdmission)] = []

    func admit(_ head: HTTPRequest, admission: HTTPAdmission) {
        if synchronous, let connection {
            Self.decide(head, admission, on: connection)
        } else {
            admissions.append((head, admission))
        }
    }

    /// Takes the heads waiting for a decision.
    func takeAdmissions() -> [(head: HTTPRequest, admission: HTTPAdmission)] {
        defer { admissions = [] }
        return admissions
    }

    /// Decides as the event loop delivers a decision (`EventLoop.decideAdmissionNow`): `/deny` is refused with
    /// 401 (the body is then discarded), anything else admitted.
    static func decide(_ head: HTTPRequest, _ admission: HTTPAdmission, on connection: Connection) {
        let rejection = head.path == "/deny" ? HTTPResponse(status: 401, text: "no\n") : nil
        connection.protocolHandler.admissionDecided(rejection, requestID: admission.requestID!, connection: connection)
    }

    func handle(_ request: HTTPRequest, respond: HTTPResponder) {
        if synchronous, let connection {
            answer(request, respond, on: connection)
        } else {
            waiting.append((request, respond))
        }
    }

    /// Takes the requests waiting for an answer.
    func takeWaiting() -> [(request: HTTPRequest, responder: HTTPResponder)] {
        defer { waiting = [] }
        return waiting
    }

    /// Delivers the answer to `request` as the event loop does (`EventLoop.deliverNow`): straight to the
    /// connection's protocol handler. (Calling `respond` here would post it to a loop that never runs.) Paths under
    /// `/stream` are answered through an ``HTTPResponseStream`` (see ``startStream(_:_:on:)``).
    func answer(_ request: HTTPRequest, _ respond: HTTPResponder, on connection: Connection) {
        if request.path.hasPrefix("/stream") && startStream(request, respond, on: connection) { return }
        connection.protocolHandler.deliver(
            Self.response(to: request), requestID: respond.requestID, connection: connection)
    }

    // MARK: - Streamed answers

    /// A streamed answer being written, and what its writer was told.
    final class Writer {
        let stream: HTTPResponseStream
        /// Pieces still to write before `finish` (`/stream-open`).
        var piecesLeft = 0
        var cancels = 0

        init(stream: HTTPResponseStream) { self.stream = stream }
    }

    /// Every stream made for the current input, and those written a piece per round (`/stream-open`).
    private(set) var writers: [Writer] = []
    private var openWriters: [Writer] = []

    /// Streams the answer (as `makeStream` does, without its loop-thread check): `/stream` three pieces over
    /// 64 KiB then the end; `/stream-open` a piece per driver round (``writeOpenStreams()``), its length given;
    /// `/stream-cut` a piece then an abort; `/stream-length` fewer bytes than its length; `/stream-error` a whole
    /// 502; `/stream-empty` a 204 with a piece. False when the protocol cannot stream the request.
    func startStream(_ request: HTTPRequest, _ respond: HTTPResponder, on connection: Connection) -> Bool {
        let stream = HTTPResponseStream(requestID: respond.requestID, connection: connection)
        guard connection.protocolHandler.attachStream(stream, connection: connection) else { return false }
        let writer = Writer(stream: stream)
        writers.append(writer)
        stream.onCancel = { [unowned writer] in
            writer.cancels += 1
            invariant(writer.cancels == 1, "a stream was cancelled twice")
        }
        let piece = [UInt8](repeating: 0x62, count: 30_000)
        switch request.path {
        case "/stream-error":
            stream.respond(HTTPResponse(status: 502, text: "bad gateway\n"))
        case "/stream-open":
            writer.piecesLeft = 3
            stream.onWritable = { [unowned self, unowned writer] in
                if !openWriters.contains(where: { $0 === writer }) { openWriters.append(writer) }
            }
            stream.start(status: 200, headers: [:], contentLength: 4 * piece.count)
            if piece.withUnsafeBytes({ stream.write($0) }) { openWriters.append(writer) }
        case "/stream-cut":
            stream.start(status: 200, headers: [:], contentLength: nil)
            piece.withUnsafeBytes { _ = stream.write($0) }
            stream.abort()
        case "/stream-length":
            stream.start(status: 200, headers: [:], contentLength: 10)
            [UInt8]("short".utf8).withUnsafeBytes { _ = stream.write($0) }
            stream.finish()
        case "/stream-empty":
            stream.start(status: 204, headers: [:], contentLength: nil)
            piece.withUnsafeBytes { _ = stream.write($0) }
            stream.finish()
        default:
            stream.start(status: 200, headers: ["Content-Type": "application/octet-stream"], contentLength: nil)
            for _ in 0..<3 { piece.withUnsafeBytes { _ = stream.write($0) } }
            stream.finish()
        }
        return true
    }

    /// Writes one more piece to each open stream that may take it (the last one finishes it); true when any was
    /// written.
    func writeOpenStreams() -> Bool {
        let writers = openWriters
        openWriters = []
        for writer in writers where writer.stream.state == .streaming {
            let piece = [UInt8](repeating: 0x63, count: 30_000)
            let more = piece.withUnsafeBytes { writer.stream.write($0) }
            writer.piecesLeft -= 1
            if writer.piecesLeft == 0 {
                writer.stream.finish()
            } else if more {
                openWriters.append(writer)
            }
        }
        return !writers.isEmpty
    }

    /// After the connection closed: every stream ended or was cancelled (none left waiting for a cancel), once.
    func checkStreamsAfterClose() {
        for writer in writers {
            invariant(
                writer.stream.state != .idle && writer.stream.state != .streaming,
                "a stream outlived its connection without being cancelled")
            invariant(writer.cancels <= 1, "a stream was cancelled twice")
        }
        writers = []
        openWriters = []
    }

    /// `/big`: a body over the HTTP/2 output threshold; `/empty`: 204; anything else a short text (also what a
    /// `/stream` path gets when its protocol cannot stream it).
    static func response(to request: HTTPRequest) -> HTTPResponse {
        switch request.path {
        case "/big": HTTPResponse(status: 200, body: [UInt8](repeating: 0x61, count: 70_000))
        case "/empty": HTTPResponse(status: 204)
        default: HTTPResponse(status: 200, text: "\(request.method) \(request.path) \(request.body.count)\n")
        }
    }
}
