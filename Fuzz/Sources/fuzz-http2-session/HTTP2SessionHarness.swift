import FuzzSupport
import Logging

@testable import HTTPServer

/// Small limits, so that short inputs reach them.
private let configuration = {
    var configuration = HTTPServer.Configuration()
    configuration.maxRequestTargetLength = 256
    configuration.maxHeaderBytes = 1024
    configuration.maxHeaderCount = 16
    configuration.maxBodySize = 4096
    configuration.maxPipelinedRequests = 4
    configuration.http2MaxConcurrentStreams = 4
    return configuration
}()

private let handler = FuzzHandler()
private let context = ServerContext(
    configuration: configuration, handler: handler, observer: nil,
    logger: Logger(label: "fuzz") { _ in SwiftLogNoOpLogHandler() })

/// One connection of the real server, without a socket: the payload is what a client sends, in the pieces
/// chosen by the control byte. It goes to an `HTTP1Session`, as on every cleartext connection, which hands
/// over to `HTTP2Session` (nghttp2 in memory mode) on the client preface or an `Upgrade: h2c` request; the
/// seeds start with the preface, so most of the fuzzing is HTTP/2 frames.
///
/// The harness plays the part of `Connection.process()` and the event loop (which need a socket and epoll):
/// it appends each piece to the connection's input buffer while the protocol wants input, lets the protocol
/// process it, delivers the handler's answers as `EventLoop.deliverNow` does, and writes the output to a
/// transport that takes everything. Then the peer stops sending (the timeout of the connection's phase may
/// expire: 408, or GOAWAY for HTTP/2) and closes.
///
/// Control bits: 7, the handler answers inside `handle` (else after `process`); 6, collected answers are
/// delivered newest first; 5, a graceful shutdown starts after the first piece; 4, the timeout expires; 3, the
/// payload is frame records (see ``frames(from:)``) rather than bytes; 2, answers collected are held until the
/// client has sent everything (a slow handler: streams reset meanwhile stay outstanding).
///
/// Paths under `/stream` are answered through an `HTTPResponseStream` (``FuzzHandler/startStream(_:_:on:)``), some
/// written a piece per round; once the connection is closed, every stream must have ended or been cancelled, once.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTP2Session(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = FuzzInput(data, size)
    guard let loop = try? EventLoop(index: 0, context: context) else { fatalError("cannot create an event loop") }
    let transport = MemoryTransport()
    let connection = Connection(
        id: 1, loop: loop, transport: transport, remoteAddress: "127.0.0.1:40000",
        protocolHandler: HTTP1Session(context: context))
    _ = context.reserveConnectionSlot()  // as the acceptor does; closing the connection releases it
    handler.connection = connection
    handler.synchronous = input.flag(7)
    defer {
        handler.connection = nil
        _ = handler.takeWaiting()
        _ = handler.takeAdmissions()
        loop.releaseHeldObjects()  // the loop never ran: what it keeps (dirty list, deadlines) holds the connection
    }
    var driver = Driver(
        connection: connection, transport: transport, newestFirst: input.flag(6), holdingAnswers: input.flag(2))
    let bytes = input.flag(3) ? frames(from: input.payload) : Array(input.payload)

    for (index, piece) in input.chunks(of: bytes.count, maxLength: 128).enumerated() {
        guard !connection.isClosed, connection.protocolHandler.wantsInput(connection) else { break }
        _ = connection.input.write(minimumSpace: piece.count) { buffer in
            bytes[piece].withUnsafeBytes { buffer.copyMemory(from: $0) }
            return piece.count
        }
        driver.run()
        if index == 0 && input.flag(5) && !connection.isClosed {
            connection.protocolHandler.beginDrain(connection)
            driver.run()
        }
    }
    driver.holdingAnswers = false
    if !connection.isClosed { driver.run() }
    // The peer goes quiet and, with bit 4, the timeout of the phase the connection is in expires; then it closes.
    if input.flag(4) && !connection.isClosed {
        let phase = connection.protocolHandler.timerPhase(connection)
        if phase == .idle || phase == .head || phase == .body {
            connection.protocolHandler.timerExpired(phase, connection: connection)
            driver.run()
        }
    }
    if !connection.isClosed {
        connection.protocolHandler.inputEnded(connection)
        driver.run()
    }
    if !connection.isClosed { connection.close(reason: nil) }
    handler.checkStreamsAfterClose()
    return 0
}

/// The client preface, then one frame per record of `payload`: `type, flags, stream, length` and `length`
/// bytes of frame payload (fewer at the end). The frame headers are right, so the fuzzer spends its time on
/// frame contents and sequences rather than on framing.
private func frames(from payload: UnsafeBufferPointer<UInt8>) -> [UInt8] {
    var bytes = HTTP2Session.clientPreface
    var start = 0
    while start + 4 <= payload.count {
        let end = min(payload.count, start + 4 + Int(payload[start + 3]))
        let (type, flags, stream) = (payload[start], payload[start + 1], payload[start + 2])
        bytes += [0, 0, UInt8(end - start - 4), type, flags, 0, 0, 0, stream]
        bytes += payload[(start + 4)..<end]
        start = end
    }
    return bytes
}

/// What `Connection.process()` does after reading, minus epoll and timers.
private struct Driver {
    let connection: Connection
    let transport: MemoryTransport
    let newestFirst: Bool
    /// The handler is slow: its answers wait until the peer has sent everything.
    var holdingAnswers: Bool

    func run() {
        for _ in 0..<64 {
            connection.protocolHandler.process(connection)
            if connection.isClosed { return }
            var admissions = holdingAnswers ? [] : handler.takeAdmissions()
            if newestFirst { admissions.reverse() }
            for (head, admission) in admissions {
                FuzzHandler.decide(head, admission, on: connection)
                if connection.isClosed { return }
            }
            var waiting = holdingAnswers ? [] : handler.takeWaiting()
            if newestFirst { waiting.reverse() }
            for (request, responder) in waiting {
                handler.answer(request, responder, on: connection)
                if connection.isClosed { return }
            }
            let wroteStreams = handler.writeOpenStreams()
            if connection.isClosed { return }
            let hadOutput = !connection.output.isEmpty
            if hadOutput {
                let result = connection.output.write(to: transport, scratch: connection.loop.iovecScratch) { _ in }
                invariant(connection.output.isEmpty, "the transport took everything, yet output remains: \(result)")
                connection.protocolHandler.outputWritten(connection)
                if connection.isClosed { return }
            }
            if waiting.isEmpty && admissions.isEmpty && !hadOutput && !wroteStreams
                && !connection.protocolHandler.hasMoreOutput(connection)
            {
                break
            }
        }
        if connection.output.isEmpty && connection.protocolHandler.isFinished(connection) {
            connection.close(reason: nil)
        }
    }
}
